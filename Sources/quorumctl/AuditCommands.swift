import ArgumentParser
import Foundation
import QuorumAudit
import QuorumCrypto
import QuorumLog
import QuorumProtocol

/// `quorumctl audit …`: check a live cluster's log through its audit API with nothing but the
/// group's public key (docs/auditing.md).
struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify checkpoints, receipts and the log's consistency through the nodes' audit API.",
        discussion: """
            Every command trusts only --group (group.json) and, for cosignatures, the nodes' identity keys \
            (--cosigners, default ceremony.json beside --group). Exit status: 0 everything verified, 1 something \
            did not (a signature, a proof, a split view, an unreachable node), 2 bad input.
            """,
        subcommands: [
            AuditCheckpoint.self, AuditReceipt.self, AuditMonitor.self, AuditReplay.self, AuditUnlogged.self,
        ]
    )
}

/// `quorumctl audit checkpoint --node URL... --group group.json`.
struct AuditCheckpoint: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Fetch each node's checkpoint, verify its signatures, and check that all of them are one log.",
        discussion: """
            For each node: the group signature and every cosignature by a known node must verify; the nodes \
            whose cosignature verified are listed. Then every pair of nodes: equal sizes must have equal roots, \
            and a smaller checkpoint must be linked to a larger one by the larger node's consistency proof. Two \
            checkpoints that nothing links are a split view: both notes are printed as evidence.
            """
    )

    @OptionGroup var nodes: AuditNodeOptions
    @OptionGroup var trust: AuditTrustOptions

    func run() throws {
        let urls = try nodes.urls()
        let (trust, _, keysFile) = try trust.load(command: "audit checkpoint")
        let fetcher = AuditFetcher(timeout: nodes.timeout)
        defer { fetcher.shutdown() }
        var failures = 0
        var verified: [(url: String, checkpoint: VerifiedCheckpoint)] = []
        for url in urls {
            switch fetcher.checkpoint(url) {
            case .failure(let error):
                Output.line("FAIL \(url): \(error.message)")
                failures += 1
            case .success(let note):
                do {
                    let checkpoint = try trust.verifyCheckpoint(note)
                    verified.append((url, checkpoint))
                    Output.line("ok   \(url): " + AuditText.describe(checkpoint, knownNodes: trust.nodeKeys.count))
                } catch {
                    Output.line("FAIL \(url): \(error.description)")
                    Output.line(AuditText.note("checkpoint served by \(url)", note))
                    failures += 1
                }
            }
        }
        if keysFile == nil {
            Output.line(
                "note: cosignatures were not checked; give --cosigners (node identity keys) to see which nodes signed")
        }
        var splits = 0
        for (i, a) in verified.enumerated() {
            for b in verified[(i + 1)...] {
                let (older, newer) = a.checkpoint.checkpoint.size <= b.checkpoint.checkpoint.size ? (a, b) : (b, a)
                if let problem = linkProblem(older.checkpoint, newer, trust: trust, fetcher: fetcher) {
                    splits += 1
                    Output.line("SPLIT VIEW between \(older.url) and \(newer.url): \(problem)")
                    Output.line(AuditText.note("checkpoint served by \(older.url)", older.checkpoint.note))
                    Output.line(AuditText.note("checkpoint served by \(newer.url)", newer.checkpoint.note))
                }
            }
        }
        if verified.count > 1, splits == 0 {
            let sizes = verified.map { String($0.checkpoint.checkpoint.size) }.joined(separator: ", ")
            Output.line("consistent: the \(verified.count) verified checkpoints are one log (sizes \(sizes))")
        }
        if failures + splits > 0 { throw ExitCode(1) }
    }

    /// Why `older` and `newer` cannot both be the log, or nil when a proof (or equality) links them.
    private func linkProblem(
        _ older: VerifiedCheckpoint, _ newer: (url: String, checkpoint: VerifiedCheckpoint), trust: AuditTrust,
        fetcher: AuditFetcher
    ) -> String? {
        var proof: [[UInt8]] = []
        if older.checkpoint.size < newer.checkpoint.checkpoint.size {
            switch fetcher.consistency(newer.url, from: older.checkpoint.size, to: newer.checkpoint.checkpoint.size) {
            case .failure(let error): return "no consistency proof: \(error.message)"
            case .success(let document): proof = document.hashes
            }
        }
        do {
            try trust.verifyConsistency(from: older, to: newer.checkpoint, proof: proof)
            return nil
        } catch {
            return error.reason
        }
    }
}

/// `quorumctl audit receipt ID|FILE --node URL --group group.json`.
struct AuditReceipt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receipt",
        abstract:
            "Check a receipt end to end: its signature, its inclusion in a verified checkpoint, and the decision.",
        discussion: """
            The argument is a request id, a receipt (compact JWS, inline, @FILE or -), or @FILE holding a \
            c2sp.org/tlog-proof saved from GET /receipts/<id> (checked offline, no --node needed). The log entry \
            must be the receipt the group signed, proven included in a checkpoint signed by the group; the \
            request it records and each node's signed verdict (checked with --cosigners' node keys) are printed.
            """
    )

    @Argument(
        help: ArgumentHelp(
            "A request id, a receipt (inline, @FILE or -), or @FILE with a tlog-proof.", valueName: "id-or-file"))
    var receipt: String

    @OptionGroup var nodes: AuditNodeOptions
    @OptionGroup var trust: AuditTrustOptions

    @Flag(help: "Write the tlog-proof (c2sp.org/tlog-proof@v1) to stdout instead of the report, once verified.")
    var proof = false

    func run() throws {
        let (trust, group, _) = try trust.load(command: "audit receipt")
        let (requestID, given, offline) = try readArgument(groupKey: trust.groupKey)
        let tlogProof: TlogProof
        if let offline {
            tlogProof = offline
        } else {
            let url = try nodes.urls().first!
            let fetcher = AuditFetcher(timeout: nodes.timeout)
            defer { fetcher.shutdown() }
            let path = AuditRoute.receipt(requestID: requestID!).path
            let body: [UInt8]
            switch fetcher.get(url, path) {
            case .failure(let error): throw failure(error.message)
            case .success(let bytes): body = bytes
            }
            let document: ReceiptDocument
            do { document = try ReceiptDocument(json: body) } catch {
                throw failure("\(url)/\(path): \(error)")
            }
            guard document.requestID == requestID else {
                throw failure("\(url) answered for request id \(document.requestID), not \(requestID!)")
            }
            tlogProof = document.proof
        }
        let report = try ReceiptAudit.check(tlogProof, requestID: requestID, given: given, trust: trust)
        if proof {
            Output.line(tlogProof.text.trimmingCharacters(in: .newlines))
            return
        }
        Output.line("receipt: valid, " + ReceiptInput.summary(report.receipt, group: group))
        Output.line(
            "included: index \(tlogProof.index) of the checkpoint "
                + AuditText.describe(report.checkpoint, knownNodes: trust.nodeKeys.count))
        let request = report.entry.request
        Output.line(
            "decision: \(report.receipt.claims.decision.rawValue) of \(request.method) \(request.target) at "
                + "\(Self.time(request.time)) from \(request.clientAddress); latch \"\(report.receipt.claims.latch)\", "
                + "bundle \(report.receipt.claims.bundle.isEmpty ? "none" : report.receipt.claims.bundle)")
        for line in report.verdictLines { Output.line(line) }
        if !report.receipt.claims.reasons.isEmpty {
            Output.line("reasons: " + report.receipt.claims.reasons.joined(separator: "; "))
        }
        Output.line(report.receipt.claims.prettyJSON())
        if report.problems > 0 { throw ExitCode(1) }
    }

    /// The request id to look up, the receipt given (if one was), and an offline proof (if a
    /// tlog-proof file was given).
    private func readArgument(groupKey: [UInt8]) throws -> (String?, Receipt?, TlogProof?) {
        let isFile = receipt == "-" || receipt.hasPrefix("@")
        guard isFile || receipt.contains(".") && receipt.split(separator: ".").count == 3 else {
            if let problem = SigningLimits.requestIDProblem(receipt) {
                throw CLIError("request id \(receipt): \(problem)")
            }
            return (receipt, nil, nil)
        }
        let source: String
        let text: String
        if isFile {
            // Read once: stdin cannot be read twice, and a tlog-proof may be longer than a receipt.
            source = receipt == "-" ? "stdin" : String(receipt.dropFirst())
            let bytes = try Inputs.contents(
                of: receipt == "-" ? "-" : source, what: "the receipt or proof")
            guard bytes.count <= 1 << 20 else {
                throw CLIError(
                    "\(source): \(bytes.count) bytes; a receipt or a tlog-proof is far smaller (at most 1 MiB)")
            }
            guard let decoded = String(validating: bytes, as: UTF8.self) else {
                throw CLIError("\(source): not UTF-8 text; expected a receipt or a tlog-proof")
            }
            if decoded.hasPrefix(TlogProof.header) {
                do { return (nil, nil, try TlogProof.parse(decoded)) } catch {
                    throw CLIError("\(source): not a valid tlog-proof: \(error.reason)")
                }
            }
            text = decoded.trimmingCharacters(in: .whitespacesAndNewlines)
        } else {
            (source, text) = ("RECEIPT", receipt)
        }
        let parsed: Receipt
        do { parsed = try Receipt(parsing: text) } catch {
            throw CLIError("\(source): not a valid receipt: \(error.description)")
        }
        do { try parsed.verify(groupKey: groupKey) } catch {
            Output.line("receipt: INVALID: \(error.description)")
            throw ExitCode(1)
        }
        return (parsed.claims.requestID, parsed, nil)
    }

    private func failure(_ message: String) -> ExitCode {
        Output.line("FAIL \(message)")
        return ExitCode(1)
    }

    static func time(_ milliseconds: Int64) -> String {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000).formatted(.iso8601)
    }
}

/// What `audit receipt` (and `audit replay`) establish about one logged receipt.
struct ReceiptAudit {
    let checkpoint: VerifiedCheckpoint
    let entry: ReceiptEntry
    let receipt: Receipt
    /// One line per logged verdict: its node, decision, and whether its signature verified.
    let verdictLines: [String]
    /// Verdict signatures that did not verify.
    let problems: Int

    /// Verifies `proof` (checkpoint, inclusion), decodes its entry as a receipt entry for
    /// `requestID` (when known), verifies the logged receipt under the group and, when `given`,
    /// that it is the same receipt; checks each verdict's node signature with the known node keys.
    /// Any failure prints `FAIL …` and exits 1.
    static func check(_ proof: TlogProof, requestID: String?, given: Receipt?, trust: AuditTrust) throws -> ReceiptAudit
    {
        func fail(_ message: String) -> ExitCode {
            Output.line("FAIL \(message)")
            return ExitCode(1)
        }
        let checkpoint: VerifiedCheckpoint
        let leaf: [UInt8]
        do { (checkpoint, leaf) = try trust.verifyInclusion(proof) } catch {
            Output.line("FAIL \(error.description)")
            Output.line(AuditText.note("checkpoint", proof.checkpoint))
            throw ExitCode(1)
        }
        let entry: ReceiptEntry
        do {
            guard case .receipt(let decoded) = try LogEntry(decoding: leaf) else {
                throw fail("entry \(proof.index) is not a receipt entry")
            }
            entry = decoded
        } catch let error as WireError {
            throw fail("entry \(proof.index) is not a log entry: \(error)")
        }
        if let requestID, entry.requestID != requestID {
            throw fail("entry \(proof.index) records request \(entry.requestID), not \(requestID)")
        }
        let receipt: Receipt
        do { receipt = try Receipt.verified(entry.receipt, groupKey: trust.groupKey) } catch {
            throw fail("the logged receipt does not verify under the group: \(error.description)")
        }
        guard receipt.claims.requestID == entry.requestID else {
            throw fail(
                "the logged receipt is for request \(receipt.claims.requestID), the entry for \(entry.requestID)")
        }
        if let given, given.compact != receipt.compact {
            throw fail("the receipt given differs from the one logged for request \(entry.requestID)")
        }
        var lines: [String] = []
        var problems = 0
        for verdict in entry.verdicts {
            let decision = Self.decision(of: verdict.verdict)
            var line = "verdict: node \(verdict.nodeID) \(decision)"
            if let key = trust.nodeKeys[verdict.nodeID] {
                let signed = DecideResponse.signedBytes(
                    nodeID: verdict.nodeID, requestID: entry.requestID, verdict: verdict.verdict)
                if Ed25519KeyPair.verify(signature: verdict.signature, message: signed, publicKey: key) {
                    line += ", signed by its identity key"
                } else {
                    line += ", SIGNATURE DOES NOT VERIFY under node \(verdict.nodeID)'s identity key"
                    problems += 1
                }
            } else {
                line += ", signature not checked (node key unknown)"
            }
            lines.append(line)
        }
        if entry.verdicts.isEmpty { lines.append("verdicts: none logged") }
        return ReceiptAudit(
            checkpoint: checkpoint, entry: entry, receipt: receipt, verdictLines: lines, problems: problems)
    }

    /// The `decision` (and deny `reason`) of a verdict's canonical JSON, without QuorumPolicy.
    static func decision(of verdict: [UInt8]) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(verdict)) as? [String: Any],
            let decision = object["decision"] as? String
        else { return "(unreadable verdict)" }
        if let reason = object["reason"] as? String { return "\(decision) (\(reason))" }
        return decision
    }
}

/// `quorumctl audit monitor --state FILE --node URL --group group.json`.
struct AuditMonitor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitor",
        abstract: "Check that the log only grew since the last run; for cron.",
        discussion: """
            Verifies the node's checkpoint, then its consistency with the checkpoint remembered in --state (a \
            missing file starts the record). On success the state file is replaced atomically and nothing is \
            printed (unless -v). On any inconsistency it prints both checkpoints and the failing proof as \
            evidence, keeps the state file as it was, and exits 1.
            """
    )

    @Option(help: ArgumentHelp("The file remembering the last verified checkpoint.", valueName: "file"))
    var state: String

    @OptionGroup var nodes: AuditNodeOptions
    @OptionGroup var trust: AuditTrustOptions

    @Flag(name: .shortAndLong, help: "Say what was checked, also on success.")
    var verbose = false

    func run() throws {
        let url = try nodes.urls().first!
        let (trust, _, _) = try trust.load(command: "audit monitor")
        let remembered = try MonitorState.load(state, trust: trust)
        let fetcher = AuditFetcher(timeout: nodes.timeout)
        defer { fetcher.shutdown() }
        let note: SignedNote
        switch fetcher.checkpoint(url) {
        case .failure(let error):
            Output.line("FAIL \(error.message)")
            throw ExitCode(1)
        case .success(let served): note = served
        }
        let current: VerifiedCheckpoint
        do { current = try trust.verifyCheckpoint(note) } catch {
            Output.line("FAIL \(url): the checkpoint does not verify: \(error.description)")
            Output.line(AuditText.note("checkpoint served by \(url)", note))
            throw ExitCode(1)
        }
        guard let remembered else {
            try MonitorState(node: url, checkpoint: current).save(state)
            if verbose {
                Output.line(
                    "first run: remembered \(url)'s checkpoint: "
                        + AuditText.describe(current, knownNodes: trust.nodeKeys.count))
            }
            return
        }
        let (old, new) = (remembered.checkpoint.checkpoint, current.checkpoint)
        if new.size < old.size {
            Output.error(
                "warning: \(url) serves size \(new.size), older than the remembered \(old.size) (from \(remembered.node)); "
                    + "kept the remembered checkpoint")
            return
        }
        var proof = ConsistencyProofDocument(from: old.size, to: new.size, root1: [], root2: [], hashes: [])
        if old.size < new.size {
            switch fetcher.consistency(url, from: old.size, to: new.size) {
            case .failure(let error):
                evidence(
                    "no consistency proof from \(old.size) to \(new.size): \(error.message)", remembered, current, url,
                    nil)
                throw ExitCode(1)
            case .success(let document): proof = document
            }
        }
        do {
            try trust.verifyConsistency(from: remembered.checkpoint, to: current, proof: proof.hashes)
        } catch {
            evidence(error.reason, remembered, current, url, old.size < new.size ? proof : nil)
            throw ExitCode(1)
        }
        try MonitorState(node: url, checkpoint: current).save(state)
        if verbose {
            Output.line(
                "consistent: size \(old.size) → \(new.size) at \(url); "
                    + AuditText.describe(current, knownNodes: trust.nodeKeys.count))
        }
    }

    private func evidence(
        _ reason: String, _ remembered: MonitorState, _ current: VerifiedCheckpoint, _ url: String,
        _ proof: ConsistencyProofDocument?
    ) {
        Output.line("INCONSISTENT: \(reason)")
        Output.line(AuditText.note("remembered checkpoint (from \(remembered.node))", remembered.checkpoint.note))
        Output.line(AuditText.note("checkpoint now served by \(url)", current.note))
        if let proof {
            Output.line("--- consistency proof from \(proof.from) to \(proof.to) served by \(url)")
            for hash in proof.hashes { Output.line(Base64.encode(hash)) }
        }
    }
}

/// What `audit monitor` remembers between runs: the last verified checkpoint and who served it.
/// Re-verified when loaded, so a state file edited by hand cannot vouch for a fork.
struct MonitorState {
    static let format = "quorum-latch/audit-monitor/v1"
    let node: String
    let checkpoint: VerifiedCheckpoint

    /// The state in `path`, or nil if there is none yet.
    static func load(_ path: String, trust: AuditTrust) throws -> MonitorState? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let bytes = try Inputs.contents(of: path, what: "the monitor state")
        let value: CanonicalJSON.Value
        do { value = try CanonicalJSON.parse(bytes.last == 0x0a ? Array(bytes.dropLast()) : bytes) } catch {
            throw CLIError("\(path): not a monitor state file: \(error)")
        }
        guard value["format"] == .string(format), case .string(let node)? = value["node"],
            case .string(let text)? = value["checkpoint"]
        else {
            throw CLIError("\(path): not a monitor state file (\(format) with node and checkpoint)")
        }
        do {
            return MonitorState(node: node, checkpoint: try trust.verifyCheckpoint(try SignedNote.parse(text)))
        } catch let error as AuditFailure {
            throw CLIError("\(path): the remembered checkpoint does not verify under --group: \(error.description)")
        } catch {
            throw CLIError("\(path): the remembered checkpoint is not a signed note: \(error)")
        }
    }

    /// Replaces `path` atomically: a temporary file beside it, written and synced, then renamed
    /// over it and the directory synced, so a crash leaves the old state or the new, never half.
    func save(_ path: String) throws {
        let value = CanonicalJSON.Value.object([
            "format": .string(Self.format), "node": .string(node), "checkpoint": .string(checkpoint.note.serialized),
            "size": .integer(Int64(clamping: checkpoint.checkpoint.size)),
            "root": .string(Base64.encode(checkpoint.checkpoint.rootHash)),
        ])
        try AtomicFile.write(CanonicalJSON.encode(value) + [0x0a], to: path)
    }
}

/// Writing a file so that readers see the old contents or the new, never a mix.
enum AtomicFile {
    static func write(_ bytes: [UInt8], to path: String) throws {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let temporary = "\(path).tmp-\(getpid())"
        func fail(_ what: String) -> CLIError {
            CLIError("\(path): cannot \(what): \(String(cString: strerror(errno)))")
        }
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw fail("create \(temporary)") }
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Foundation.write(fd, $0.baseAddress!, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                close(fd)
                unlink(temporary)
                throw fail("write \(temporary)")
            }
            written += n
        }
        guard fsync(fd) == 0 else {
            close(fd)
            unlink(temporary)
            throw fail("sync \(temporary)")
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw fail("replace it")
        }
        let directoryFD = open(directory, O_RDONLY | O_CLOEXEC)
        if directoryFD >= 0 {
            _ = fsync(directoryFD)
            close(directoryFD)
        }
    }
}
