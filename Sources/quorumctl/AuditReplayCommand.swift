import ArgumentParser
import Foundation
import QuorumAudit
import QuorumCrypto
import QuorumLog
import QuorumPolicy
import QuorumProtocol

/// `quorumctl audit replay ID --node URL --group group.json`: re-evaluate a logged decision.
struct AuditReplay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract:
            "Re-evaluate a logged decision against the bundle its receipt names, and compare with each node's verdict.",
        discussion: """
            The receipt entry is fetched and checked as `audit receipt` does. The bundle is the one whose digest \
            the receipt names: a bundle entry in the log (proven included in the checkpoint) or --bundle FILE. \
            Each logged verdict is replayed with QuorumPolicy's engine at the logged time, against the state \
            readings the verdict records (rate windows, budgets), and compared byte for byte. The log holds the \
            token and the body only as SHA-256 digests: without --token the authentication step is taken from \
            the logged verdict, and without --body every filter that reads the body (payload rules, token-counting \
            rate limits, LLM budgets) is; each such step is named. Exit 1 if any replayed step differs.
            """
    )

    @Argument(help: ArgumentHelp("The request id of the decision.", valueName: "id"))
    var requestID: String

    @OptionGroup var nodes: AuditNodeOptions
    @OptionGroup var trust: AuditTrustOptions

    @Option(help: ArgumentHelp("The signed bundle file, when the log holds only its digest.", valueName: "file"))
    var bundle: String?

    @Option(help: ArgumentHelp("The request body, checked against its logged SHA-256 and length.", valueName: "file"))
    var body: String?

    @Option(
        help: ArgumentHelp(
            "A file holding the agent's latch token, checked against its logged SHA-256.", valueName: "file"))
    var token: String?

    @Option(
        help: ArgumentHelp("The proxy's limits.decision_body_bytes: how much of --body the nodes saw.", valueName: "n"))
    var decisionBodyBytes = 1 << 20

    @Option(
        name: .customLong("operator-key"),
        help: ArgumentHelp(
            "An operator public key (64 hex) the bundle must be signed by; repeatable.", valueName: "hex"))
    var operatorKeys: [String] = []

    func run() throws {
        if let problem = SigningLimits.requestIDProblem(requestID) {
            throw CLIError("request id \(requestID): \(problem)")
        }
        guard decisionBodyBytes >= 0 else { throw CLIError("--decision-body-bytes \(decisionBodyBytes) is negative") }
        let pinned = try operatorKeys.map { hex in
            guard let key = Hex.decode(hex), key.count == 32 else {
                throw CLIError("--operator-key \(hex): not an Ed25519 public key as 64 hex digits")
            }
            return key
        }
        let url = try nodes.urls().first!
        let (trust, group, _) = try trust.load(command: "audit replay")
        let fetcher = AuditFetcher(timeout: nodes.timeout)
        defer { fetcher.shutdown() }

        let document: ReceiptDocument
        switch fetcher.get(url, AuditRoute.receipt(requestID: requestID).path).flatMap({ body in
            Result { () throws(CLIError) -> ReceiptDocument in
                do { return try ReceiptDocument(json: body) } catch {
                    throw CLIError("\(url): /receipts/\(requestID): \(error)")
                }
            }
        }) {
        case .failure(let error):
            Output.line("FAIL \(error.message)")
            throw ExitCode(1)
        case .success(let fetched): document = fetched
        }
        let audit = try ReceiptAudit.check(document.proof, requestID: requestID, given: nil, trust: trust)
        Output.line("receipt: valid, " + ReceiptInput.summary(audit.receipt, group: group))
        Output.line(
            "included: index \(document.proof.index) of the checkpoint "
                + AuditText.describe(audit.checkpoint, knownNodes: trust.nodeKeys.count))
        if audit.problems > 0 { throw ExitCode(1) }

        let digestHex = audit.receipt.claims.bundle
        guard !digestHex.isEmpty else {
            Output.line(
                "FAIL the receipt names no bundle: the decision was made without one, so there is nothing to replay")
            throw ExitCode(1)
        }
        let policy = try loadBundle(
            digest: "sha256:" + digestHex, pinned: pinned, checkpoint: audit.checkpoint, url: url, fetcher: fetcher)
        let request = try decisionRequest(audit.entry.request)
        Output.line(
            "request: \(request.request.method) \(request.request.target) at \(AuditReceipt.time(audit.entry.request.time)) "
                + "from \(request.request.clientAddress); " + request.bodyNote)

        let engine = PolicyEngine(bundle: policy)
        let instant = Date(timeIntervalSince1970: Double(audit.entry.request.time) / 1000)
        var differing = 0
        for signed in audit.entry.verdicts {
            let logged: Verdict
            do { logged = try Verdict(decoding: signed.verdict) } catch {
                Output.line("node \(signed.nodeID): FAIL its logged verdict does not decode: \(error)")
                differing += 1
                continue
            }
            let substitutes = ReplaySubstitutes(
                authentication: request.tokenKnown ? nil : logged.trace.first { $0.filter == "authentication" },
                bodyUnavailable: !request.bodyKnown, logged: logged.trace)
            let outcome = engine.replay(
                request.request, state: RecordedState(logged.stateReads), at: instant, substitutes: substitutes)
            differing += report(node: signed.nodeID, logged: logged, bytes: signed.verdict, outcome: outcome)
        }
        if audit.entry.verdicts.isEmpty { Output.line("FAIL the entry logs no verdicts to compare with") }
        if differing > 0 || audit.entry.verdicts.isEmpty { throw ExitCode(1) }
    }

    /// Prints one node's comparison; returns 1 if a replayed step differs, else 0.
    private func report(node: UInt16, logged: Verdict, bytes: [UInt8], outcome: ReplayOutcome) -> Int {
        let replayed = outcome.verdict
        let sameTrace = replayed.trace == logged.trace
        let same = replayed.decision == logged.decision && sameTrace
        if replayed.encoded() == bytes {
            Output.line(
                "node \(node): reproduced \(replayed.decision.rawValue), byte for byte (\(replayed.trace.count) steps)")
        } else if same {
            Output.line(
                "node \(node): reproduced \(replayed.decision.rawValue) and its trace; the verdict's other members differ "
                    + "only where steps were taken from the log (their state changes and reservations are not re-derived)"
            )
        } else {
            Output.line(
                "node \(node): DIFFERS: logged \(logged.decision.rawValue), replayed \(replayed.decision.rawValue)")
        }
        for entry in replayed.trace {
            let taken = outcome.standIns.contains(entry) ? "  [taken from the log: \(Self.why(entry))]" : ""
            Output.line("  \(entry.outcome.rawValue) \(entry.filter): \(entry.detail)\(taken)")
        }
        if !sameTrace {
            for (index, entry) in logged.trace.enumerated()
            where index >= replayed.trace.count || replayed.trace[index] != entry {
                Output.line(
                    "  logged step \(index + 1) was: \(entry.outcome.rawValue) \(entry.filter): \(entry.detail)")
            }
        }
        for read in logged.stateReads { Output.line("  state read as logged: " + Self.describe(read)) }
        return same ? 0 : 1
    }

    private static func why(_ entry: TraceEntry) -> String {
        entry.filter == "authentication"
            ? "the token is logged only as its SHA-256; --token FILE re-checks it"
            : "it reads the body, logged only as its SHA-256; --body FILE re-runs it"
    }

    private static func describe(_ read: StateRead) -> String {
        switch read {
        case .rateWindow(let key, let window, let requests, let tokens, let expiry):
            return "\(key): \(requests) requests, \(tokens) tokens in the last \(window) ms"
                + (expiry.map { ", oldest counts until \($0)" } ?? "")
        case .budget(let key, let windows):
            return "\(key): "
                + windows.map {
                    "\($0.window) committed \($0.committed) micro-units" + ($0.latest.map { " (latest \($0))" } ?? "")
                }
                .joined(separator: ", ")
        }
    }

    /// The logged request as the nodes saw it, with the body and token when given and matching.
    private func decisionRequest(
        _ logged: LoggedRequest
    ) throws -> (request: DecisionRequest, bodyKnown: Bool, tokenKnown: Bool, bodyNote: String) {
        var bodyBytes: [UInt8] = []
        var bodyKnown = logged.bodyLength == 0
        var note = "the body is empty"
        if let body {
            let bytes = try Inputs.contents(of: body, what: "the body")
            guard UInt64(bytes.count) == logged.bodyLength, sha256Digest(bytes) == logged.bodySHA256 else {
                throw CLIError(
                    "\(body): \(bytes.count) bytes with SHA-256 \(Hex.encode(sha256Digest(bytes))); the logged body is "
                        + "\(logged.bodyLength) bytes with SHA-256 \(Hex.encode(logged.bodySHA256))")
            }
            bodyBytes = Array(bytes.prefix(decisionBodyBytes))
            bodyKnown = true
            note = "body from \(body), matching its logged SHA-256"
        } else if !bodyKnown {
            note =
                "body not given (\(logged.bodyLength) bytes, logged as SHA-256 only): steps that read it are taken from the log"
        } else if sha256Digest([]) != logged.bodySHA256 {
            throw CLIError("the log says the body is empty but its SHA-256 is not that of nothing")
        }
        var tokenText = ""
        if let token {
            tokenText = String(decoding: try Inputs.contents(of: token, what: "the token"), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard sha256Digest(Array(tokenText.utf8)) == logged.tokenSHA256 else {
                throw CLIError("\(token): its SHA-256 is not the logged token's; it is not the token of this call")
            }
            note += "; token from \(token), matching its logged SHA-256"
        }
        let request = DecisionRequest(
            requestID: logged.requestID, method: logged.method, target: logged.target,
            headers: logged.headers.map { HeaderField(name: $0.name, value: $0.value) }, body: bodyBytes,
            bodyLength: Int(clamping: logged.bodyLength), clientAddress: logged.clientAddress, token: tokenText,
            clientCertificateSHA256: logged.clientCertificateSHA256.isEmpty ? nil : logged.clientCertificateSHA256)
        return (request, bodyKnown, token != nil, note)
    }

    /// The bundle the receipt names: --bundle, or the bundle entry with that digest in the log,
    /// proven included in the verified checkpoint.
    private func loadBundle(
        digest: String, pinned: [[UInt8]], checkpoint: VerifiedCheckpoint, url: String, fetcher: AuditFetcher
    ) throws -> PolicyBundle {
        let envelope: [UInt8]
        let source: String
        var signer: [UInt8]?
        if let bundle {
            envelope = try Inputs.contents(of: bundle, what: "the signed bundle")
            source = bundle
        } else {
            let (index, leaf, entry) = try findBundleEntry(
                digest: digest, size: checkpoint.checkpoint.size, url: url, fetcher: fetcher)
            guard !entry.signedBundle.isEmpty else {
                throw CLIError(
                    "the log's bundle entry \(index) for \(digest) holds only its digest (the bundle is too large for a "
                        + "leaf); pass --bundle FILE")
            }
            switch fetcher.get(url, "proof/inclusion?index=\(index)&size=\(checkpoint.checkpoint.size)") {
            case .failure(let error):
                Output.line("FAIL \(error.message)")
                throw ExitCode(1)
            case .success(let body):
                do {
                    let proof = try InclusionProofDocument(json: body)
                    try RFC9162.verifyInclusion(
                        leafHash: RFC9162.leafHash(leaf), index: index,
                        size: checkpoint.checkpoint.size, proof: proof.hashes, root: checkpoint.checkpoint.rootHash)
                } catch {
                    Output.line("FAIL the bundle entry at \(index) is not proven included in the checkpoint: \(error)")
                    throw ExitCode(1)
                }
            }
            envelope = entry.signedBundle
            signer = entry.operatorKey
            source = "the log (entry \(index), proven included)"
        }
        let envelopeSigner = Self.signer(of: envelope)
        if let signer, envelopeSigner != signer {
            throw CLIError("\(source): the envelope's signer differs from the operator key the entry names")
        }
        let trusted = pinned.isEmpty ? envelopeSigner.map { [$0] } ?? [] : pinned
        let policy: PolicyBundle
        do {
            policy = try SignedBundle.open(envelope, fileName: source, trustedSigners: trusted, newerThan: nil)
        } catch {
            throw CLIError("\(source): \(error.description)")
        }
        guard policy.digest == digest else {
            throw CLIError("\(source): is bundle \(policy.digest), but the receipt names \(digest)")
        }
        Output.line(
            "bundle: \(digest) version \(policy.version) from \(source), signed by operator "
                + "\(envelopeSigner.map(Hex.encode) ?? "?")\(pinned.isEmpty ? " (not pinned; --operator-key pins it)" : " (pinned)")"
        )
        return policy
    }

    /// The `signer` of a signed bundle envelope, if it has one.
    private static func signer(of envelope: [UInt8]) -> [UInt8]? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(envelope)) as? [String: Any],
            let hex = object["signer"] as? String
        else { return nil }
        return Hex.decode(hex)
    }

    /// Scans the log's entry bundles (C2SP tlog-tiles) up to `size` for the bundle entry of `digest`.
    private func findBundleEntry(
        digest: String, size: UInt64, url: String, fetcher: AuditFetcher
    ) throws -> (UInt64, [UInt8], BundleEntry) {
        var tile: UInt64 = 0
        while tile * 256 < size {
            let width = Int(min(256, size - tile * 256))
            let route = AuditRoute.entryBundle(index: tile, width: width)
            let bytes: [UInt8]
            switch fetcher.get(url, route.path) {
            case .failure(let error):
                Output.line("FAIL \(error.message)")
                throw ExitCode(1)
            case .success(let body): bytes = body
            }
            guard let entries = TlogTiles.entries(inBundle: bytes), entries.count == width else {
                Output.line("FAIL \(url)/\(route.path): not an entry bundle of \(width) entries")
                throw ExitCode(1)
            }
            for (offset, leaf) in entries.enumerated() {
                if case .bundle(let entry)? = try? LogEntry(decoding: leaf), entry.digest == digest {
                    return (tile * 256 + UInt64(offset), leaf, entry)
                }
            }
            tile += 1
        }
        throw CLIError(
            "no bundle entry for \(digest) in the log's \(size) entries; pass --bundle FILE with the signed bundle")
    }
}
