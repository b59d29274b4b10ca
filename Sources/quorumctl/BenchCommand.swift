import ArgumentParser
import Foundation
import Logging
import QuorumCrypto
import QuorumIdentity
import QuorumNode
import QuorumPolicy
import QuorumProtocol

/// `quorumctl bench …`: load tools for measuring a running cluster. Hidden: they are for
/// `scripts/bench-*.sh` and docs/benchmarks.md, not for operating a cluster.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure a running cluster under load (for scripts/bench-*.sh).",
        shouldDisplay: false,
        subcommands: [BenchSigning.self, BenchProxy.self, BenchLog.self]
    )
}

/// `quorumctl bench signing`: open-loop load on the signing service with the proxy certificate.
///
/// Requests start at fixed times (rate × duration of them, one every 1/rate s) whether or not
/// earlier ones have finished, and each latency counts from the request's scheduled start, so a
/// stalled node or a lagging generator shows up in the figures instead of slowing the load down
/// (no coordinated omission).
struct BenchSigning: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signing",
        abstract: "Open-loop signing load: one node's sign round trip, then the full k-node signature.",
        discussion: """
            node: one SignRequest to --node and its SignResponse back over mutual TLS (frame out, share back); the \
            node's own commitment is fresh for every request, the other signers' commitments are fetched once and \
            reused (their nonces are never used). full: SigningCoordinator.sign with the first k nodes, shares \
            requested in parallel, each verified, then aggregated and the signature verified. Commitments are \
            fetched ahead of time in batches and refilled in the background, as a proxy would. Every request has \
            its own request id, so each costs the node one synced RocksDB write.
            """
    )

    @Option(help: ArgumentHelp("The cluster file: [[nodes]] id = N, address = \"host:port\".", valueName: "file"))
    var cluster: String

    @Option(help: ArgumentHelp("A `certs init` directory: uses proxy.pem, proxy.key and ca.pem.", valueName: "dir"))
    var certsDir: String

    @Option(help: ArgumentHelp("The signing group's public file (group.json).", valueName: "file"))
    var group: String

    @Option(help: "Requests per second.")
    var rate: Int = 500

    @Option(help: "Seconds of measured load per mode.")
    var duration: Double = 10

    @Option(help: "Seconds of unmeasured load before each mode.")
    var warmup: Double = 2

    @Option(help: "The node whose round trip `node` mode measures.")
    var node: UInt16 = 1

    @Option(help: "Which measurements: node, full or both.")
    var mode: String = "both"

    @Option(help: "Commitments fetched per batch (1-256).")
    var batch: Int = 128

    @Flag(help: "node mode: one request id throughout, so the node records its verdict and decision only once.")
    var sameRequest = false

    @Option(help: "The latch token the bench bundle's latch accepts (POST under /bench).")
    var token: String = "lat_assistant_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc"

    func run() throws {
        guard (1...20000).contains(rate) else { throw CLIError("--rate \(rate): must be 1-20000") }
        guard duration > 0, duration <= 3600, warmup >= 0, warmup <= 600 else {
            throw CLIError("--duration must be in (0, 3600] and --warmup in [0, 600] seconds")
        }
        guard ["node", "full", "both"].contains(mode) else { throw CLIError("--mode \(mode): node, full or both") }
        guard (1...256).contains(batch) else { throw CLIError("--batch \(batch): must be 1-256") }
        let clusterFile: ClusterFile
        do { clusterFile = try ClusterFile.load(path: cluster) } catch { throw CLIError(error.description) }
        let groupPackage = try KeyFiles.decodeGroup(try KeyFiles.readFile(group), as: Ed25519Suite.self, file: group)
        var transport: TransportConfiguration
        do {
            transport = try TransportConfiguration.make(directory: CertificateDirectory(certsDir), identity: .proxy)
        } catch {
            throw CLIError("\(error.peer): \(error.reason)")
        }
        transport.defaultRequestDeadline = .seconds(10)
        var logger = Logger(label: "quorumctl.bench")
        logger.logLevel = .critical
        let client: NodeClient
        do { client = try NodeClient(configuration: transport, logger: logger) } catch {
            throw CLIError("\(error.peer): \(error.reason)")
        }
        var configuration = SigningCoordinator.Configuration()
        configuration.commitmentBatch = batch
        configuration.refillBelow = max(1, batch / 2)
        configuration.deadline = .seconds(10)
        let coordinator = SigningCoordinator(
            client: client, nodes: clusterFile.nodes, group: groupPackage, configuration: configuration, logger: logger)
        let signers = Array(clusterFile.nodes.map(\.id).sorted().prefix(groupPackage.minSigners))
        guard signers.count == groupPackage.minSigners else {
            throw CLIError("\(cluster): \(signers.count) nodes; the group's threshold is \(groupPackage.minSigners)")
        }
        let plan = Load(rate: rate, duration: duration, warmup: warmup)
        let run = "\(UInt32.random(in: 0...UInt32.max))"
        Output.line(
            "signing load: \(rate) requests/s, \(plan.measured) measured over \(duration) s after \(warmup) s warm-up; "
                + "signers \(signers.map(String.init).joined(separator: ",")); \(ProcessInfo.processInfo.activeProcessorCount) CPUs"
        )
        var failed = false
        let token = token
        /// A call the bench bundle allows, with `slots` as the signer set.
        @Sendable func call(_ requestID: String, slots: [SignerSlot]) throws -> DecideRequest {
            try DecideRequest(
                requestID: requestID, time: Int64(Date().timeIntervalSince1970 * 1000), method: "POST",
                target: "/bench/decision", headers: [], body: Array(#"{"bench":true}"#.utf8), bodyLength: 14,
                clientAddress: "127.0.0.1", token: token, signers: slots)
        }
        @Sendable func slot(_ commitment: SigningCoordinator.Commitment) throws -> SignerSlot {
            try SignerSlot(
                identifier: commitment.nodeID, bootEpoch: commitment.bootEpoch, nonceID: commitment.entry.nonceID,
                commitment: commitment.entry.commitment)
        }
        if mode != "full" {
            var rest = signers.filter { $0 != node }
            if rest.count == signers.count { rest.removeLast() }
            let others = rest
            let target = node
            let same = sameRequest
            let result = Blocking.wait { () -> Result<Load.Report, CLIError> in
                do {
                    // The other signers' commitments are fixed; only the target's nonce is spent.
                    var fixed: [SignerSlot] = []
                    for id in others { fixed.append(try slot(try await coordinator.nextCommitment(from: id))) }
                    try await coordinator.refill(target)
                    let fixedSlots = fixed
                    return .success(
                        await plan.run { index in
                            let own = try slot(try await coordinator.nextCommitment(from: target))
                            let request = try call(
                                same ? "bench-\(run)-same" : "bench-\(run)-n-\(index)",
                                slots: (fixedSlots + [own]).sorted { $0.identifier < $1.identifier })
                            let started = ContinuousClock.now
                            let answer = try await coordinator.ask(target, request, DecideResponse.self)
                            guard answer.share.count == 32 else {
                                throw CLIError("node \(target) decided but returned no share (see its log)")
                            }
                            return started
                        })
                } catch {
                    return .failure(CLIError("cannot prepare the node load: \(error)"))
                }
            }
            let report = try result.get()
            Output.line(
                report.render(
                    "node \(node) decide-and-sign round trip (DecideRequest naming it a signer out, verdict and share back)"
                        + (sameRequest ? ", one request id: verdict and decision recorded once, no write after" : "")))
            failed = failed || report.errors > 0
        }
        if mode != "node" {
            let nodes = clusterFile.nodes.map(\.id)
            let groupKey = try groupPackage.verifyingKey.serialized()
            let result = Blocking.wait { () -> Result<Load.Report, CLIError> in
                do {
                    for id in signers { try await coordinator.refill(id) }
                    return .success(
                        await plan.run { index in
                            var slots: [SignerSlot] = []
                            for id in signers { slots.append(try slot(try await coordinator.nextCommitment(from: id))) }
                            let request = try call("bench-\(run)-f-\(index)", slots: slots)
                            let started = ContinuousClock.now
                            let answers = try await withThrowingTaskGroup(of: DecideResponse.self) { group in
                                for id in nodes {
                                    group.addTask { try await coordinator.ask(id, request, DecideResponse.self) }
                                }
                                var answers: [DecideResponse] = []
                                for try await answer in group { answers.append(answer) }
                                return answers
                            }
                            _ = try BenchSigning.receipt(
                                request, answers, slots: slots, coordinator: coordinator, key: groupKey)
                            return started
                        })
                } catch {
                    return .failure(CLIError("cannot prepare the full load: \(error)"))
                }
            }
            let report = try result.get()
            Output.line(
                report.render(
                    "full decision (\(nodes.count) nodes decide, \(signers.count) sign in the same round; shares aggregated, "
                        + "the signature verified)"))
            failed = failed || report.errors > 0
        }
        Blocking.wait { await coordinator.close() }
        if failed { throw ExitCode(1) }
    }
}

extension BenchSigning {
    /// The receipt the signers' shares make, as the proxy builds it: the claims of the first
    /// signer's verdict, the shares aggregated and the signature verified.
    static func receipt(
        _ request: DecideRequest, _ answers: [DecideResponse], slots: [SignerSlot], coordinator: SigningCoordinator,
        key: [UInt8]
    ) throws -> Receipt {
        let signers = slots.map(\.identifier)
        let bySigner = Dictionary(answers.map { ($0.nodeID, $0) }, uniquingKeysWith: { first, _ in first })
        guard let first = bySigner[signers[0]] else { throw CLIError("signer \(signers[0]) did not answer") }
        let claims = ReceiptClaims(request: request, verdict: try Verdict(decoding: first.verdict), signers: signers)
        let message = try Receipt.signingInput(claims: claims, groupKey: key)
        let commitments = try slots.map {
            try SigningCommitments<Ed25519Suite>(identifier: try Identifier($0.identifier), encoded: $0.commitment)
        }
        let session = try SigningSession(
            package: try SigningPackage(message: message, commitments: commitments),
            verifyingKey: coordinator.group.verifyingKey)
        // As the proxy does: shares are parsed, and the aggregate's own verification checks them
        // (each share is checked only when the signature does not verify).
        let shares = try signers.map { id throws in
            guard let answer = bySigner[id], answer.share.count == 32 else {
                throw CLIError("signer \(id) returned no share")
            }
            return try SignatureShare<Ed25519Suite>(identifier: try Identifier(id), encoded: answer.share)
        }
        let signature = try coordinator.aggregate(shares, session: session)
        // FROST.aggregate verified the signature over this signing input.
        return try Receipt(claims: claims, groupKey: key, signature: signature.bytes)
    }
}

/// An open-loop schedule and its measurements.
struct Load: Sendable {
    let rate: Int
    let duration: Double
    let warmup: Double

    var warmupCount: Int { Int((Double(rate) * warmup).rounded()) }
    var measured: Int { Int((Double(rate) * duration).rounded()) }

    /// The figures of one run.
    struct Report: Sendable {
        /// Latencies from scheduled start to answer, seconds, sorted.
        let latencies: [Double]
        /// Latencies from the moment the request was sent (after any client-side preparation).
        let sendLatencies: [Double]
        let errors: Int
        let firstError: String?
        let elapsed: Double
        let maximumLag: Double

        func render(_ title: String) -> String {
            func ms(_ seconds: Double) -> String { String(format: "%.3f ms", seconds * 1000) }
            func percentile(_ values: [Double], _ p: Double) -> Double {
                guard !values.isEmpty else { return .nan }
                return values[min(values.count - 1, Int((Double(values.count) * p).rounded(.up)) - 1)]
            }
            var lines = [title + ":"]
            lines.append(
                "  \(latencies.count) ok, \(errors) failed in \(String(format: "%.2f", elapsed)) s "
                    + "(\(String(format: "%.0f", Double(latencies.count + errors) / elapsed)) requests/s offered)")
            lines.append(
                "  from scheduled start: p50 \(ms(percentile(latencies, 0.5)))  p99 \(ms(percentile(latencies, 0.99)))  "
                    + "p99.9 \(ms(percentile(latencies, 0.999)))  max \(ms(latencies.last ?? .nan))")
            lines.append(
                "  from send:            p50 \(ms(percentile(sendLatencies, 0.5)))  p99 \(ms(percentile(sendLatencies, 0.99)))  "
                    + "p99.9 \(ms(percentile(sendLatencies, 0.999)))  max \(ms(sendLatencies.last ?? .nan))")
            lines.append("  generator lag: max \(ms(maximumLag))")
            if let firstError { lines.append("  first error: \(firstError)") }
            return lines.joined(separator: "\n")
        }
    }

    private enum Outcome: Sendable {
        case done(
            index: Int, scheduled: ContinuousClock.Instant, sent: ContinuousClock.Instant, end: ContinuousClock.Instant)
        case failed(index: Int, String)
    }

    /// Starts `body(i)` at its scheduled time for the warm-up and measured requests; `body`
    /// returns when it sent its request. Only the measured requests are reported.
    func run(_ body: @escaping @Sendable (Int) async throws -> ContinuousClock.Instant) async -> Report {
        let total = warmupCount + measured
        let interval = Duration.seconds(1) / rate
        let clock = ContinuousClock()
        let start = clock.now + .milliseconds(50)
        let (outcomes, lag) = await withTaskGroup(of: Outcome.self) { group -> ([Outcome], Duration) in
            var lag = Duration.zero
            for index in 0..<total {
                let scheduled = start + interval * index
                try? await clock.sleep(until: scheduled)
                lag = max(lag, clock.now - scheduled)
                group.addTask {
                    do {
                        let sent = try await body(index)
                        return .done(index: index, scheduled: scheduled, sent: sent, end: ContinuousClock.now)
                    } catch {
                        return .failed(index: index, "\(error)")
                    }
                }
            }
            var outcomes: [Outcome] = []
            for await outcome in group { outcomes.append(outcome) }
            return (outcomes, lag)
        }
        let measuredStart = start + interval * warmupCount
        var latencies: [Double] = []
        var sendLatencies: [Double] = []
        var errors = 0
        var firstError: String?
        for outcome in outcomes {
            switch outcome {
            case .done(let index, let scheduled, let sent, let end) where index >= warmupCount:
                latencies.append(Self.seconds(end - scheduled))
                sendLatencies.append(Self.seconds(end - sent))
            case .failed(let index, let error) where index >= warmupCount:
                errors += 1
                if firstError == nil { firstError = error }
            default:
                break
            }
        }
        return Report(
            latencies: latencies.sorted(), sendLatencies: sendLatencies.sorted(), errors: errors,
            firstError: firstError, elapsed: Self.seconds(clock.now - measuredStart), maximumLag: Self.seconds(lag))
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
