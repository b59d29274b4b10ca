import Foundation
import QuorumCrypto
import QuorumLog
import QuorumTestKit
import Testing

/// `quorumctl log …` run as a real process against a data directory, checked against the library
/// in process: what it appends, the proofs it prints (verified with RFC 9162), the tiles it
/// writes, how it refuses bad arguments, and what `verify` says about a damaged store.
@Suite("quorumctl log", .serialized, .timeLimit(.minutes(5)))
struct LogCommandTests {
    // MARK: append and info

    @Test("append files as one batch, then info prints the size and root as JSON")
    func appendFilesAndInfo() async throws {
        try await Workspace.with { ws in
            try ws.write("a.txt", "alpha\n")
            try ws.write("b.txt", "beta")
            try ws.write("empty.txt", "")
            let db = ws.path("db")
            let files = ["a.txt", "b.txt", "a.txt", "empty.txt"].map(ws.path)
            let appended = try await ws.quorumctl(["log", "append", "--db", db] + files)
            try #require(appended.status == 0, "\(appended)")
            let root = try inProcess(db) { (log: MerkleLog) throws in
                #expect(log.size == 3)
                #expect(try log.entry(at: 0) == Array("alpha\n".utf8))
                #expect(try log.entry(at: 1) == Array("beta".utf8))
                #expect(try log.entry(at: 2) == [])
                return log.root
            }
            #expect(
                appended.stdoutLines == [
                    "index 0 \(files[0])", "index 1 \(files[1])", "index 0 \(files[2]) (already in the log)",
                    "index 2 \(files[3])", "size 3", "root \(base64(root))",
                ])

            let info = try await ws.quorumctl("log", "info", "--db", db)
            try #require(info.status == 0, "\(info)")
            #expect(info.stdoutLines == ["{\"size\": 3, \"root\": \"\(base64(root))\"}"])
            let object = try json(info.stdout)
            #expect(object["size"] as? Int == 3)
            #expect(object["root"] as? String == base64(root))
        }
    }

    @Test("append --lines commits a batch at a time and reports each size")
    func appendLines() async throws {
        try await Workspace.with { ws in
            let db = ws.path("db")
            let lines = (0..<10).map { "line \($0)" }
            // The last line has no newline; it is still an entry.
            let stdin = Array(lines.joined(separator: "\n").utf8)
            let result = try await ws.quorumctl(
                ["log", "append", "--db", db, "--lines", "--batch-size", "4"], stdin: stdin)
            try #require(result.status == 0, "\(result)")
            let root = try inProcess(db) { (log: MerkleLog) throws in
                #expect(try (0..<log.size).map { try log.entry(at: $0) } == lines.map { Array($0.utf8) })
                return log.root
            }
            #expect(result.stdoutLines == ["size 4", "size 8", "size 10", "root \(base64(root))"])

            // More lines continue the log; a line already in it keeps its index.
            let more = try await ws.quorumctl(
                ["log", "append", "--db", db, "--lines"], stdin: Array("line 3\nline 10\n".utf8))
            try #require(more.status == 0, "\(more)")
            #expect(more.stdoutLines.first == "size 11")
            try inProcess(db) { (log: MerkleLog) throws in #expect(try log.entry(at: 10) == Array("line 10".utf8)) }
        }
    }

    // MARK: proofs

    @Test(
        "prove inclusion prints a proof that verifies",
        arguments: [(0, 1), (0, 1000), (5, 10), (255, 256), (256, 257), (511, 1000), (999, 1000), (3, 1000)]
    )
    func proveInclusion(index: Int, size: Int) async throws {
        try await Workspace.with { ws in
            let db = try await makeLog(ws, entries: 1000)
            let result = try await ws.quorumctl(
                "log", "prove", "inclusion", "--db", db, "--index", "\(index)", "--size", "\(size)")
            try #require(result.status == 0, "\(result)")
            let object = try json(result.stdout)
            #expect(object["index"] as? Int == index)
            #expect(object["size"] as? Int == size)
            let leafHash = try bytes(object["leaf_hash"])
            let root = try bytes(object["root"])
            let hashes = try #require(object["hashes"] as? [String]).map { try bytes($0) }
            #expect(leafHash == RFC9162.leafHash(Array(lineText(index).utf8)))
            try inProcess(db) { (log: MerkleLog) throws in #expect(try log.root(at: UInt64(size)) == root) }
            try RFC9162.verifyInclusion(
                leafHash: leafHash, index: UInt64(index), size: UInt64(size), proof: hashes, root: root)
            if !hashes.isEmpty {
                var tampered = hashes
                tampered[0][0] ^= 1
                #expect(throws: MerkleError.self) {
                    try RFC9162.verifyInclusion(
                        leafHash: leafHash, index: UInt64(index), size: UInt64(size), proof: tampered, root: root)
                }
            }
        }
    }

    @Test("prove inclusion defaults to the log's size")
    func proveInclusionDefaultSize() async throws {
        try await Workspace.with { ws in
            let db = try await makeLog(ws, entries: 7)
            let result = try await ws.quorumctl("log", "prove", "inclusion", "--db", db, "--index", "2")
            try #require(result.status == 0, "\(result)")
            let object = try json(result.stdout)
            #expect(object["size"] as? Int == 7)
            let root = try inProcess(db) { $0.root }
            #expect(try bytes(object["root"]) == root)
        }
    }

    @Test(
        "prove consistency prints a proof that verifies",
        arguments: [(0, 1000), (1, 1000), (7, 8), (256, 1000), (300, 1000), (999, 1000), (1000, 1000), (3, 5)]
    )
    func proveConsistency(from: Int, to: Int) async throws {
        try await Workspace.with { ws in
            let db = try await makeLog(ws, entries: 1000)
            let result = try await ws.quorumctl(
                "log", "prove", "consistency", "--db", db, "--from", "\(from)", "--to", "\(to)")
            try #require(result.status == 0, "\(result)")
            let object = try json(result.stdout)
            #expect(object["from"] as? Int == from)
            #expect(object["to"] as? Int == to)
            let root1 = try bytes(object["root1"])
            let root2 = try bytes(object["root2"])
            let hashes = try #require(object["hashes"] as? [String]).map { try bytes($0) }
            try inProcess(db) { (log: MerkleLog) throws in
                #expect(try log.root(at: UInt64(from)) == root1)
                #expect(try log.root(at: UInt64(to)) == root2)
            }
            try RFC9162.verifyConsistency(
                size1: UInt64(from), size2: UInt64(to), proof: hashes, root1: root1, root2: root2)
            if !hashes.isEmpty {
                var tampered = hashes
                tampered[tampered.count - 1][31] ^= 1
                #expect(throws: MerkleError.self) {
                    try RFC9162.verifyConsistency(
                        size1: UInt64(from), size2: UInt64(to), proof: tampered, root1: root1, root2: root2)
                }
            }
        }
    }

    // MARK: tiles

    @Test("tile writes the bytes of the library's hash tiles and entry bundles")
    func tiles() async throws {
        try await Workspace.with { ws in
            // 1000 = 3·256 + 232: three full level-0 tiles and a partial one; level 1 has 3 hashes.
            let db = try await makeLog(ws, entries: 1000)
            let cases: [(arguments: [String], expected: (MerkleLog) throws -> [UInt8])] = [
                (["--level", "0", "--index", "0"], { try $0.hashTile(level: 0, index: 0) }),
                (["--level", "0", "--index", "2", "--width", "256"], { try $0.hashTile(level: 0, index: 2) }),
                (
                    ["--level", "0", "--index", "3", "--width", "232"],
                    { try $0.hashTile(level: 0, index: 3, width: 232) }
                ),
                (["--level", "1", "--index", "0", "--width", "3"], { try $0.hashTile(level: 1, index: 0, width: 3) }),
                (["--entries", "--index", "1"], { try $0.entryBundle(index: 1) }),
                (["--entries", "--index", "3", "--width", "232"], { try $0.entryBundle(index: 3, width: 232) }),
            ]
            for (arguments, expected) in cases {
                let (status, output) = try await binaryOutput(ws, ["log", "tile", "--db", db] + arguments)
                try #require(status == 0, "log tile \(arguments)")
                let library = try inProcess(db) { try expected($0) }
                #expect(output == library, "log tile \(arguments.joined(separator: " "))")
            }
            // A level-0 tile is the leaf hashes; the entry bundle is length-prefixed entries.
            let (_, leaves) = try await binaryOutput(ws, ["log", "tile", "--db", db, "--level", "0", "--index", "0"])
            #expect(leaves.count == 256 * 32)
            #expect(Array(leaves[32..<64]) == RFC9162.leafHash(Array(lineText(1).utf8)))
            let (_, bundle) = try await binaryOutput(
                ws, ["log", "tile", "--db", db, "--entries", "--index", "0", "--width", "1"])
            #expect(bundle == [0, UInt8(lineText(0).utf8.count)] + Array(lineText(0).utf8))
        }
    }

    // MARK: refusals

    /// One bad invocation of `quorumctl log <command> --db DB <options>`, DB a log of 10 entries.
    struct BadArguments: CustomTestStringConvertible, Sendable {
        let name: String
        let command: [String]
        let options: [String]
        /// Text the one-line error must contain.
        let message: String
        var testDescription: String { name }
    }

    static let badArguments: [BadArguments] = [
        .init(
            name: "index equal to size", command: ["prove", "inclusion"], options: ["--index", "10"], message: "0…9"),
        .init(
            name: "index beyond an explicit size", command: ["prove", "inclusion"],
            options: ["--index", "5", "--size", "5"], message: "--index 5"),
        .init(
            name: "size beyond the log", command: ["prove", "inclusion"], options: ["--index", "0", "--size", "11"],
            message: "size 11 is beyond"),
        .init(
            name: "from greater than to", command: ["prove", "consistency"], options: ["--from", "5", "--to", "3"],
            message: "--from 5 is greater than --to 3"),
        .init(
            name: "to beyond the log", command: ["prove", "consistency"], options: ["--from", "3", "--to", "11"],
            message: "size 11 is beyond"),
        .init(
            name: "tile beyond the log", command: ["tile"], options: ["--level", "0", "--index", "0"], message: "beyond"
        ),
        .init(name: "tile level 8", command: ["tile"], options: ["--level", "8", "--index", "0"], message: "level 8"),
        .init(
            name: "tile width 0", command: ["tile"], options: ["--level", "0", "--index", "0", "--width", "0"],
            message: "1…256"),
        .init(
            name: "tile width 257", command: ["tile"], options: ["--level", "0", "--index", "0", "--width", "257"],
            message: "1…256"),
        .init(
            name: "entries with a level", command: ["tile"], options: ["--entries", "--level", "0", "--index", "0"],
            message: "--entries"),
        .init(name: "tile without a level", command: ["tile"], options: ["--index", "0"], message: "--level"),
        .init(name: "append nothing", command: ["append"], options: [], message: "nothing to append"),
    ]

    @Test("bad arguments exit 2 with one line", arguments: badArguments)
    func refusesBadArguments(_ bad: BadArguments) async throws {
        try await Workspace.with { ws in
            let db = try await makeLog(ws, entries: 10)
            let result = try await ws.quorumctl(["log"] + bad.command + ["--db", db] + bad.options)
            #expect(result.status == 2, "\(result)")
            #expect(isOneLineError(result), "\(result)")
            #expect(result.stderr.contains(bad.message), "\(result)")
            #expect(result.stdout.isEmpty)
            try inProcess(db) { #expect($0.size == 10) }
        }
    }

    @Test("read commands refuse a missing, empty or non-directory --db and create nothing")
    func refusesMissingDatabase() async throws {
        try await Workspace.with { ws in
            try FileManager.default.createDirectory(atPath: ws.path("empty"), withIntermediateDirectories: false)
            try ws.write("file", "not a directory")
            for (db, message) in [
                ("missing", "no such log directory"), ("empty", "not a log database"),
                ("file", "not a directory"),
            ] {
                for command in [
                    ["info"], ["verify"], ["prove", "inclusion", "--index", "0"],
                    ["prove", "consistency", "--from", "0", "--to", "0"], ["tile", "--level", "0", "--index", "0"],
                ] {
                    let result = try await ws.quorumctl(["log"] + command + ["--db", ws.path(db)])
                    #expect(result.status == 2, "\(command) on \(db): \(result)")
                    #expect(isOneLineError(result) && result.stderr.contains(message), "\(command): \(result)")
                }
            }
            #expect(!FileManager.default.fileExists(atPath: ws.path("missing")))
            #expect(try FileManager.default.contentsOfDirectory(atPath: ws.path("empty")).isEmpty)
        }
    }

    @Test("append refuses an oversized entry, a directory that holds something else, and bad options")
    func appendRefusals() async throws {
        try await Workspace.with { ws in
            let db = try await makeLog(ws, entries: 3)
            try Data(repeating: 0x61, count: 65_536).write(to: URL(fileURLWithPath: ws.path("big")))
            try ws.write("small", "small")
            var result = try await ws.quorumctl("log", "append", "--db", db, ws.path("small"), ws.path("big"))
            #expect(result.status == 2 && isOneLineError(result), "\(result)")
            #expect(result.stderr.contains(ws.path("big")) && result.stderr.contains("65535"), "\(result)")

            let long = Array(String(repeating: "x", count: 70_000).utf8) + [0x0a]
            result = try await ws.quorumctl(["log", "append", "--db", db, "--lines"], stdin: Array("ok\n".utf8) + long)
            #expect(result.status == 2 && isOneLineError(result), "\(result)")
            #expect(result.stderr.contains("stdin line 2"), "\(result)")
            try inProcess(db) { #expect($0.size == 3, "nothing of a refused batch is written") }

            result = try await ws.quorumctl("log", "append", "--db", db, "--lines", ws.path("small"))
            #expect(result.status == 2 && isOneLineError(result), "\(result)")
            result = try await ws.quorumctl("log", "append", "--db", db, "--lines", "--batch-size", "0")
            #expect(result.status == 2 && isOneLineError(result), "\(result)")

            // A directory that holds other files is not turned into a database.
            try FileManager.default.createDirectory(atPath: ws.path("other"), withIntermediateDirectories: false)
            try ws.write("other/notes.txt", "mine")
            result = try await ws.quorumctl("log", "append", "--db", ws.path("other"), ws.path("small"))
            #expect(result.status == 2 && isOneLineError(result), "\(result)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: ws.path("other")) == ["notes.txt"])
        }
    }

    @Test("a negative or non-numeric index is a usage error, exit 2")
    func usageErrors() async throws {
        try await Workspace.with { ws in
            let db = try await makeLog(ws, entries: 3)
            for value in ["-1", "x", "18446744073709551616"] {
                let result = try await ws.quorumctl("log", "prove", "inclusion", "--db", db, "--index", value)
                #expect(result.status == 2, "\(result)")
                #expect(result.stderrLines.first?.hasPrefix("quorumctl: error: ") == true, "\(result)")
            }
        }
    }

    // MARK: verify

    @Test("verify passes an intact log")
    func verifyIntact() async throws {
        try await Workspace.with { ws in
            let db = try await makeLog(ws, entries: 600)
            let result = try await ws.quorumctl("log", "verify", "--db", db)
            let root = try inProcess(db) { $0.root }
            #expect(result.status == 0, "\(result)")
            #expect(result.stdoutLines == ["ok: 600 entries, root \(base64(root))"])
        }
    }

    @Test("a flipped byte in any SST file makes verify fail with the damaged file named")
    func verifyFindsFlippedBytes() async throws {
        try await Workspace.with { ws in
            let db = try await makeLog(ws, entries: 600)
            // Reopening replays the write-ahead log into SST files, one per column family.
            try inProcess(db) { #expect($0.size == 600) }
            let tables = try FileManager.default.contentsOfDirectory(atPath: db).filter { $0.hasSuffix(".sst") }
                .sorted()
            try #require(tables.count >= 3, "expected SST files for entries, hashes and dedup, found \(tables)")
            var trial = 0
            for table in tables {
                let length = try #require(
                    try FileManager.default.attributesOfItem(atPath: db + "/" + table)[.size] as? Int)
                // The first data block, the middle, the index and properties blocks, the footer's
                // magic number. (Not the padding after the footer's block handles: RocksDB never
                // reads it, so a flip there changes nothing.)
                for offset in Set([0, 17, length / 2, length - 120, length - 1]) {
                    trial += 1
                    let copy = ws.path("damaged-\(trial)")
                    try FileManager.default.copyItem(atPath: db, toPath: copy)
                    try flipByte(copy + "/" + table, at: offset)
                    let result = try await ws.quorumctl("log", "verify", "--db", copy)
                    let place = "\(table) offset \(offset) of \(length)"
                    #expect(result.status == 1, "\(place): \(result)")
                    #expect(result.stdoutLines.last?.hasPrefix("not ok:") == true, "\(place): \(result)")
                    #expect(
                        result.stdout.contains(table) || result.stdout.contains("MANIFEST"),
                        "\(place): the problem should name the damaged file: \(result)")
                    try FileManager.default.removeItem(atPath: copy)
                }
            }
        }
    }

    @Test("a flipped byte in the write-ahead log is reported, not silently cut off")
    func verifyFindsFlippedWriteAheadLog() async throws {
        try await Workspace.with { ws in
            // One process's batches are still in its write-ahead log until the next open.
            let db = try await makeLog(ws, entries: 600)
            let wal = try #require(
                try FileManager.default.contentsOfDirectory(atPath: db).filter { $0.hasSuffix(".log") }.max {
                    let sizes = try [$0, $1].map {
                        try FileManager.default.attributesOfItem(atPath: db + "/" + $0)[.size] as? Int ?? 0
                    }
                    return sizes[0] < sizes[1]
                })
            let length = try #require(try FileManager.default.attributesOfItem(atPath: db + "/" + wal)[.size] as? Int)
            try flipByte(db + "/" + wal, at: length / 2)
            let result = try await ws.quorumctl("log", "verify", "--db", db)
            // The store opens with tolerate-corrupted-tail WAL recovery: damage before the last
            // record fails the open, which `verify` reports, instead of a silently shorter log.
            #expect(result.status == 1, "\(result)")
            #expect(result.stdoutLines.last?.hasPrefix("not ok:") == true, "\(result)")
        }
    }

    @Test("other commands refuse a database RocksDB cannot open, exit 2")
    func corruptDatabaseRefused() async throws {
        try await Workspace.with { ws in
            let db = try await makeLog(ws, entries: 100)
            try inProcess(db) { _ in }
            let table = try #require(
                try FileManager.default.contentsOfDirectory(atPath: db).filter { $0.hasSuffix(".sst") }.sorted().first)
            let length = try #require(try FileManager.default.attributesOfItem(atPath: db + "/" + table)[.size] as? Int)
            try flipByte(db + "/" + table, at: length - 1)
            let result = try await ws.quorumctl("log", "info", "--db", db)
            #expect(result.status == 2 && isOneLineError(result), "\(result)")
            #expect(result.stderr.contains("Corruption") && result.stderr.contains("log verify"), "\(result)")
        }
    }

    // MARK: helpers

    /// The text of entry `index` in logs made by ``makeLog(_:entries:)``.
    private func lineText(_ index: Int) -> String { "entry \(index) of the test log" }

    /// A log of `entries` distinct lines, appended through the CLI; returns its directory.
    @Test("read commands change nothing on disk and work while a writer holds the log open")
    func readCommandsAreReadOnly() async throws {
        try await Workspace.with { ws in
            let db = try await makeLog(ws, entries: 300)
            func snapshot() throws -> [String: Date] {
                var files: [String: Date] = [:]
                for name in try FileManager.default.contentsOfDirectory(atPath: db) {
                    let attributes = try FileManager.default.attributesOfItem(atPath: db + "/" + name)
                    files[name] = attributes[.modificationDate] as? Date
                }
                return files
            }
            let before = try snapshot()
            for arguments in [
                ["log", "info", "--db", db], ["log", "prove", "inclusion", "--db", db, "--index", "7"],
                ["log", "prove", "consistency", "--db", db, "--from", "3", "--to", "300"],
                ["log", "verify", "--db", db],
            ] {
                let result = try await ws.quorumctl(arguments)
                #expect(result.status == 0, "\(arguments): \(result)")
            }
            #expect(try snapshot() == before, "a read command changed the data directory")

            // A writer (as a running node would be) holds the log; readers still get answers.
            let writer = try MerkleLog(directory: db)
            try writer.append([Array("written while readers look".utf8)])
            let info = try await ws.quorumctl("log", "info", "--db", db)
            #expect(info.status == 0, "\(info)")
            #expect(info.stdout.contains("\"size\": 301"), "\(info)")
            let verify = try await ws.quorumctl("log", "verify", "--db", db)
            #expect(verify.status == 0, "\(verify)")
            withExtendedLifetime(writer) {}
        }
    }

    @Test("verify checks stored checkpoints' signatures under the given verifier keys")
    func verifyChecksCheckpointSignatures() async throws {
        try await Workspace.with { ws in
            let db = try await makeLog(ws, entries: 50)
            let signer = try Ed25519NoteSigner(name: "log.quorum.test", keyPair: Ed25519KeyPair())
            let other = try Ed25519NoteSigner(name: "log.quorum.test", keyPair: Ed25519KeyPair())
            try inProcess(db) { log in
                let checkpoint = try Checkpoint(origin: "log.quorum.test", size: 40, rootHash: log.root(at: 40))
                let note = try SignedNote(text: checkpoint.text, signers: [signer])
                try log.storeCheckpoint(note, origin: "log.quorum.test", verifiers: [signer.verifier])
            }
            let plain = try await ws.quorumctl("log", "verify", "--db", db)
            #expect(plain.status == 0, "\(plain)")
            let good = try await ws.quorumctl(
                "log", "verify", "--db", db, "--verifier-key", signer.verifier.verifierKey)
            #expect(good.status == 0, "\(good)")
            // Under another key the stored checkpoint has no verified signature: a problem, exit 1.
            let wrong = try await ws.quorumctl(
                "log", "verify", "--db", db, "--verifier-key", other.verifier.verifierKey)
            #expect(wrong.status == 1, "\(wrong)")
            #expect(wrong.stdout.contains("checkpoints size 40"), "\(wrong)")
            let malformed = try await ws.quorumctl("log", "verify", "--db", db, "--verifier-key", "not-a-key")
            #expect(malformed.status == 2, "\(malformed)")
            #expect(malformed.stderr.contains("--verifier-key"), "\(malformed)")
        }
    }

    private func makeLog(_ ws: Workspace, entries: Int) async throws -> String {
        let db = ws.path("db")
        let stdin = Array((0..<entries).map { lineText($0) + "\n" }.joined().utf8)
        let result = try await ws.quorumctl(["log", "append", "--db", db, "--lines"], stdin: stdin)
        try #require(result.status == 0, "\(result)")
        return db
    }

    /// Opens the log in this process, runs `body`, and closes it again before the next CLI run.
    @discardableResult
    private func inProcess<T>(_ db: String, _ body: (MerkleLog) throws -> T) throws -> T {
        let log = try MerkleLog(directory: db)
        return try withExtendedLifetime(log) { try body(log) }
    }

    /// Runs quorumctl with stdout sent to a file, for binary output.
    private func binaryOutput(_ ws: Workspace, _ arguments: [String]) async throws -> (Int32, [UInt8]) {
        let file = ws.path("stdout.bin")
        let result = try await TestKit.run(
            URL(fileURLWithPath: "/bin/sh"), ["-c", "\"$@\" > \"$0\"", file, Workspace.quorumctl.path] + arguments,
            timeout: .seconds(60))
        #expect(!result.timedOut)
        return (result.status, Array(try Data(contentsOf: URL(fileURLWithPath: file))))
    }

    private func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not JSON: \(text)")
    }

    private func bytes(_ value: Any?) throws -> [UInt8] {
        let text = try #require(value as? String, "not a string: \(String(describing: value))")
        return Array(try #require(Data(base64Encoded: text), "not base64: \(text)"))
    }

    private func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    private func flipByte(_ path: String, at offset: Int) throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[offset] ^= 0x40
        try data.write(to: URL(fileURLWithPath: path))
    }
}
