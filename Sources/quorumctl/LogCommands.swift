import ArgumentParser
import Foundation
import QuorumLog

/// `quorumctl log …`: the audit log on a data directory, offline (docs/audit-log.md).
struct Log: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Append to, inspect, prove and verify an audit log (RFC 9162) in a data directory.",
        discussion: """
            Offline: the log's RocksDB directory must not be open in another process. Read commands \
            never create a database; append creates one in a new or empty directory.
            """,
        subcommands: [LogAppend.self, LogInfo.self, LogProve.self, LogTile.self, LogVerify.self]
    )
}

/// `quorumctl log append`: files, or lines of stdin, as entries.
struct LogAppend: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "append",
        abstract: "Append each file (or each line of stdin) as one entry.",
        discussion: """
            Files are appended in one atomic batch. With --lines, each line of stdin (without its \
            newline) is one entry, appended in batches of --batch-size; after each batch is on disk \
            `size N` is printed. An entry already in the log keeps its index and is not added again. \
            Ends with the log's size and base64 root.
            """
    )

    @OptionGroup var database: DatabaseOption

    @Flag(help: "Append each line of stdin as one entry instead of files.")
    var lines = false

    @Option(help: ArgumentHelp("Lines per atomic batch with --lines.", valueName: "n"))
    var batchSize = 256

    @Argument(help: ArgumentHelp("Files to append, one entry each (- for stdin).", valueName: "file"))
    var files: [String] = []

    func run() throws {
        if lines && !files.isEmpty {
            throw CLIError("--lines reads stdin; give either --lines or files, not both")
        }
        if !lines && files.isEmpty { throw CLIError("nothing to append: give one or more files, or --lines") }
        guard (1...1_000_000).contains(batchSize) else {
            throw CLIError("--batch-size \(batchSize) is outside 1…1000000")
        }
        // Read the inputs before touching the database, so a bad file creates nothing.
        let entries = lines ? [] : try files.map(Self.readEntry)
        let log = try LogDatabase.open(database.db, creating: true)
        try LogDatabase.run(database.db) {
            if lines {
                try appendLines(to: log)
            } else {
                let before = log.size
                let indices = try log.append(entries)
                var seen: Set<UInt64> = []
                for (file, index) in zip(files, indices) {
                    let present = index < before || !seen.insert(index).inserted
                    Output.line("index \(index) \(file)\(present ? " (already in the log)" : "")")
                }
                Output.line("size \(log.size)")
            }
            Output.line("root \(Base64.encode(log.root))")
        }
    }

    /// Reads stdin line by line and appends a batch every `batchSize` lines and at the end, printing
    /// `size N` after each, so a reader knows what is durable even if this process is killed.
    private func appendLines(to log: MerkleLog) throws {
        var batch: [[UInt8]] = []
        batch.reserveCapacity(batchSize)
        var line: [UInt8] = []
        var lineNumber = 0
        var printedSize: UInt64?
        func commit() throws {
            try log.append(batch)
            batch.removeAll(keepingCapacity: true)
            printedSize = log.size
            Output.line("size \(log.size)")
        }
        func tooLong() -> CLIError {
            CLIError(
                "stdin line \(lineNumber + 1): longer than \(MerkleLog.maximumEntryLength) bytes, the most an entry "
                    + "may hold; the log keeps the \(log.size) entries appended before its batch")
        }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = read(STDIN_FILENO, &buffer, buffer.count)
            if n < 0, errno == EINTR { continue }
            if n < 0 { throw CLIError("stdin: cannot read: \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            var start = 0
            while start < n {
                guard let newline = buffer[start..<n].firstIndex(of: UInt8(ascii: "\n")) else {
                    line += buffer[start..<n]
                    if line.count > MerkleLog.maximumEntryLength { throw tooLong() }
                    break
                }
                line += buffer[start..<newline]
                if line.count > MerkleLog.maximumEntryLength { throw tooLong() }
                batch.append(line)
                line.removeAll(keepingCapacity: true)
                lineNumber += 1
                start = newline + 1
                if batch.count == batchSize { try commit() }
            }
        }
        if !line.isEmpty { batch.append(line) }
        if !batch.isEmpty { try commit() }
        if printedSize != log.size { Output.line("size \(log.size)") }
    }

    /// One file's bytes as an entry, refused early (naming the file) if too large to be one.
    private static func readEntry(_ path: String) throws -> [UInt8] {
        let limit = MerkleLog.maximumEntryLength
        var status = stat()
        if path != "-", stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFREG, status.st_size > limit {
            throw CLIError("\(path): \(status.st_size) bytes; an entry may be at most \(limit) bytes")
        }
        let bytes = try Inputs.contents(of: path, what: "the entry")
        guard bytes.count <= limit else {
            throw CLIError(
                "\(path == "-" ? "stdin" : path): \(bytes.count) bytes; an entry may be at most \(limit) bytes")
        }
        return bytes
    }
}

/// `quorumctl log info`: size and root as JSON.
struct LogInfo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print the log's size and root as JSON: {\"size\": N, \"root\": \"<base64>\"}."
    )

    @OptionGroup var database: DatabaseOption

    func run() throws {
        let log = try LogDatabase.open(database.db)
        try LogDatabase.run(database.db) {
            Output.line(JSONObject().number("size", log.size).string("root", Base64.encode(log.root)).text)
        }
    }
}

/// `quorumctl log prove …`: RFC 9162 proofs as JSON.
struct LogProve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prove",
        abstract: "Print an inclusion or consistency proof (RFC 9162) as JSON, hashes in base64.",
        subcommands: [LogProveInclusion.self, LogProveConsistency.self]
    )
}

/// `quorumctl log prove inclusion`.
struct LogProveInclusion: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inclusion",
        abstract: "Prove that the entry at --index is in the tree of --size entries.",
        discussion: "Prints index, size, leaf_hash, root and hashes (the audit path, deepest first)."
    )

    @OptionGroup var database: DatabaseOption

    @Option(help: ArgumentHelp("The entry's index, from 0.", valueName: "i"))
    var index: UInt64

    @Option(help: ArgumentHelp("The tree size to prove against (default: the log's size).", valueName: "n"))
    var size: UInt64?

    func run() throws {
        let log = try LogDatabase.open(database.db)
        try LogDatabase.run(database.db) {
            let size = self.size ?? log.size
            guard index < size else {
                let valid = size == 0 ? "the tree is empty" : "valid: 0…\(size - 1)"
                throw CLIError("\(database.db): --index \(index) is not below the tree size \(size); \(valid)")
            }
            let proof = try log.inclusionProof(index: index, size: size)
            Output.line(
                JSONObject().number("index", index).number("size", size)
                    .string("leaf_hash", Base64.encode(try log.leafHash(at: index)))
                    .string("root", Base64.encode(try log.root(at: size)))
                    .strings("hashes", proof.map(Base64.encode)).text)
        }
    }
}

/// `quorumctl log prove consistency`.
struct LogProveConsistency: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consistency",
        abstract: "Prove that the tree of --from entries is a prefix of the tree of --to entries.",
        discussion: "Prints from, to, root1, root2 and hashes. From 0, or from equal to to, the proof is empty."
    )

    @OptionGroup var database: DatabaseOption

    @Option(help: ArgumentHelp("The smaller tree size.", valueName: "m"))
    var from: UInt64

    @Option(help: ArgumentHelp("The larger tree size, at most the log's size.", valueName: "n"))
    var to: UInt64

    func run() throws {
        guard from <= to else { throw CLIError("--from \(from) is greater than --to \(to); need from ≤ to") }
        let log = try LogDatabase.open(database.db)
        try LogDatabase.run(database.db) {
            let proof = try log.consistencyProof(from: from, to: to)
            Output.line(
                JSONObject().number("from", from).number("to", to)
                    .string("root1", Base64.encode(try log.root(at: from)))
                    .string("root2", Base64.encode(try log.root(at: to)))
                    .strings("hashes", proof.map(Base64.encode)).text)
        }
    }
}

/// `quorumctl log tile`: one C2SP tlog-tiles hash tile or entry bundle, raw, to stdout.
struct LogTile: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tile",
        abstract: "Write a hash tile (or with --entries an entry bundle) of C2SP tlog-tiles to stdout.",
        discussion: """
            The bytes served at tile/<L>/<N>[.p/<W>] (or tile/entries/<N>[.p/<W>]). A tile must lie \
            wholly within the log: width 256 is a full tile, 1…255 a partial one.
            """
    )

    @OptionGroup var database: DatabaseOption

    @Option(help: ArgumentHelp("The tile level (0…7); not with --entries.", valueName: "l"))
    var level: Int?

    @Option(help: ArgumentHelp("The tile index.", valueName: "n"))
    var index: UInt64

    @Option(help: ArgumentHelp("Hashes (or entries) in the tile, 1…256.", valueName: "w"))
    var width = TlogTiles.width

    @Flag(help: "Write the entry bundle at --index instead of a hash tile.")
    var entries = false

    func run() throws {
        if entries, let level {
            throw CLIError("--level \(level) with --entries: entry bundles have no level; give one or the other")
        }
        if !entries && level == nil { throw CLIError("missing --level (0…7) for a hash tile, or --entries") }
        guard (1...TlogTiles.width).contains(width) else { throw CLIError("--width \(width) is outside 1…256") }
        let log = try LogDatabase.open(database.db)
        try LogDatabase.run(database.db) {
            let bytes =
                if let level {
                    try log.hashTile(level: level, index: index, width: width)
                } else {
                    try log.entryBundle(index: index, width: width)
                }
            try Output.raw(bytes)
        }
    }
}

/// `quorumctl log verify`: recomputes the tree and checks every stored record.
struct LogVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Recompute the tree from the entries and check every stored hash and record.",
        discussion: """
            Prints `ok: N entries, root <base64>` and exits 0, or prints each problem with its \
            location and exits 1. Damage RocksDB itself detects (a block checksum that does not \
            match, a file that cannot be read) is a problem too, named by the file RocksDB reports. \
            Stored checkpoints are checked against the tree; with --verifier-key their signatures \
            are checked too.
            """
    )

    @OptionGroup var database: DatabaseOption

    @Option(
        name: .customLong("verifier-key"),
        help: ArgumentHelp(
            "A note verifier key (name+keyid+base64) whose signatures on stored checkpoints must verify; repeatable.",
            valueName: "key"))
    var verifierKeys: [String] = []

    func run() throws {
        let db = database.db
        var verifiers: [NoteVerifier] = []
        for key in verifierKeys {
            do { verifiers.append(try NoteVerifier(verifierKey: key)) } catch {
                throw CLIError("--verifier-key \(key): \(error)")
            }
        }
        let problems: [String]
        let log: MerkleLog
        try LogDatabase.checkDirectory(db)
        do {
            log = try MerkleLog(directory: db, readOnly: true)
            problems = try log.auditStore(verifiers: verifiers).map(\.description)
        } catch let error as StorageError where LogDatabase.isCorruption(error) {
            throw fail(db, ["RocksDB \(error.operation): \(error.message)"])
        } catch let error as MerkleError where error.code == .corruptStore {
            throw fail(db, [error.reason])
        } catch let error as MerkleError {
            throw LogDatabase.cliError(error, db: db)
        } catch let error as StorageError {
            throw LogDatabase.cliError(error, db: db)
        }
        guard problems.isEmpty else { throw fail(db, problems) }
        Output.line("ok: \(log.size) entries, root \(Base64.encode(log.root))")
    }

    /// Prints the problems, one a line, and returns exit status 1 (the log does not verify).
    private func fail(_ db: String, _ problems: [String]) -> ExitCode {
        for problem in problems { Output.line(problem) }
        Output.line("not ok: \(problems.count) problem\(problems.count == 1 ? "" : "s") in \(db)")
        return ExitCode(1)
    }
}

/// `--db DIR`, shared by every log command.
struct DatabaseOption: ParsableArguments {
    @Option(help: ArgumentHelp("The log's data directory (RocksDB).", valueName: "dir"))
    var db: String
}

/// Opening a log directory and turning the library's errors into one-line CLI errors.
enum LogDatabase {
    /// Opens the log in `directory`. Only `creating` may make a new database, and only in a new
    /// or empty directory, so a mistyped path never turns into an empty log or litters a
    /// directory that holds something else.
    static func open(_ directory: String, creating: Bool = false) throws -> MerkleLog {
        try checkDirectory(directory, creating: creating)
        // Read commands open read-only: they change nothing on disk and work beside a running node.
        return try run(directory) { try MerkleLog(directory: directory, readOnly: !creating) }
    }

    /// Refuses a `directory` that is not a log database (or, when `creating`, not a place for a
    /// new one) before RocksDB sees it.
    static func checkDirectory(_ directory: String, creating: Bool = false) throws(CLIError) {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory)
        let hasDatabase = FileManager.default.fileExists(atPath: directory + "/CURRENT")
        if exists && !isDirectory.boolValue {
            throw CLIError("\(directory): not a directory; --db takes the log's data directory")
        }
        if !creating {
            guard exists else {
                throw CLIError("\(directory): no such log directory (quorumctl log append creates one)")
            }
            guard hasDatabase else {
                throw CLIError("\(directory): not a log database (no RocksDB CURRENT file in it)")
            }
        } else if exists && !hasDatabase {
            let contents = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            guard contents.isEmpty else {
                throw CLIError(
                    "\(directory): not empty and not a log database; give an existing log or a new or empty directory")
            }
        }
    }

    /// Runs `body`, rethrowing the log's errors as ``CLIError``s that name `directory`.
    static func run<T>(_ directory: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as MerkleError {
            throw cliError(error, db: directory)
        } catch let error as StorageError {
            throw cliError(error, db: directory)
        }
    }

    static func cliError(_ error: MerkleError, db: String) -> CLIError {
        // Reasons about stored records already start with the directory.
        let reason = error.reason.hasPrefix(db + ": ") ? String(error.reason.dropFirst(db.count + 2)) : error.reason
        let hint = error.code == .corruptStore ? " (run quorumctl log verify --db \(db))" : ""
        return CLIError("\(db): \(error.code.rawValue): \(reason)\(hint)")
    }

    static func cliError(_ error: StorageError, db: String) -> CLIError {
        var hint = ""
        if isCorruption(error) {
            hint = "; the database is damaged (quorumctl log verify --db \(db) lists what it can)"
        } else if error.message.contains("LOCK") {
            hint = "; is another process using this log?"
        }
        return CLIError("\(db): RocksDB \(error.operation) failed: \(error.message)\(hint)")
    }

    /// RocksDB's status for damaged files (checksum mismatch, bad magic number, truncated file).
    static func isCorruption(_ error: StorageError) -> Bool { error.message.hasPrefix("Corruption") }
}

/// Standard base64 with padding, as C2SP checkpoints and the JSON output use.
enum Base64 {
    static func encode(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
}

/// A one-line JSON object with keys in the order given. Values are numbers and base64 strings, so
/// nothing needs escaping.
struct JSONObject {
    private var fields: [String] = []

    func number(_ key: String, _ value: UInt64) -> JSONObject { adding(key, String(value)) }
    func string(_ key: String, _ value: String) -> JSONObject { adding(key, "\"\(value)\"") }
    func strings(_ key: String, _ values: [String]) -> JSONObject {
        adding(key, "[" + values.map { "\"\($0)\"" }.joined(separator: ", ") + "]")
    }

    var text: String { "{" + fields.joined(separator: ", ") + "}" }

    private func adding(_ key: String, _ value: String) -> JSONObject {
        var copy = self
        copy.fields.append("\"\(key)\": \(value)")
        return copy
    }
}

extension Output {
    /// Writes `bytes` to stdout as they are (a tile is binary).
    static func raw(_ bytes: [UInt8]) throws(CLIError) {
        let ok = bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Foundation.write(STDOUT_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0, errno == EINTR { continue }
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
        guard ok else { throw CLIError("cannot write to stdout: \(String(cString: strerror(errno)))") }
    }
}
