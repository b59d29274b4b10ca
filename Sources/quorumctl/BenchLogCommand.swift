import ArgumentParser
import Foundation
import Logging
import NIOConcurrencyHelpers
import QuorumCrypto
import QuorumIdentity
import QuorumLog
import QuorumNode
import QuorumProtocol

/// `quorumctl bench log`: open-loop receipt load on the replicated log, and how long each receipt
/// takes to be inside a quorum-signed checkpoint (issue 7: "within 1 s at p99 under 500
/// receipts/s").
struct BenchLog: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "Open-loop receipt load on the replicated log: submit to checkpoint latency.",
        discussion: """
            Makes rate × (warm-up + duration) receipt entries ahead of time, each a distinct allow receipt signed \
            with k of the dealer's shares (--dealer, as `keygen --dealer` wrote it: a plain Ed25519 signature under \
            the group key, as the quorum makes it). Then submits them at fixed times, whether or not earlier ones \
            are done, through the proxy's LogSubmitter (batched LogSubmit to every node). Meanwhile it asks --node \
            for its log status every --poll-ms; when the newest quorum checkpoint grows, it fetches the entries \
            the checkpoint covers and stamps each with that moment. Latency counts from the entry's scheduled \
            submit time to the first poll that finds it covered, so it is at most --poll-ms late. Entries not \
            covered --grace seconds after the last submit count as lost.
            """
    )

    @Option(help: ArgumentHelp("The cluster file: [[nodes]] id = N, address = \"host:port\".", valueName: "file"))
    var cluster: String

    @Option(help: ArgumentHelp("A `certs init` directory: uses proxy.pem, proxy.key and ca.pem.", valueName: "dir"))
    var certsDir: String

    @Option(
        help: ArgumentHelp("`keygen --dealer` output: group.json and node-<i>/signing-share.json.", valueName: "dir"))
    var dealer: String

    @Option(help: "Receipts per second.")
    var rate: Int = 500

    @Option(help: "Seconds of measured load.")
    var seconds: Double = 10

    @Option(help: "Seconds of unmeasured load before.")
    var warmup: Double = 2

    @Option(help: "The node whose checkpoints are watched.")
    var node: UInt16 = 2

    @Option(help: "How often the watched node is asked for its status, in milliseconds.")
    var pollMs: Int = 10

    @Option(help: "Seconds to wait for the last receipts to be covered.")
    var grace: Double = 10

    func run() throws {
        guard (1...20000).contains(rate) else { throw CLIError("--rate \(rate): must be 1-20000") }
        guard seconds > 0, seconds <= 600, warmup >= 0, warmup <= 60, grace > 0, grace <= 120 else {
            throw CLIError("--seconds must be in (0, 600], --warmup in [0, 60], --grace in (0, 120]")
        }
        guard (1...1000).contains(pollMs) else { throw CLIError("--poll-ms \(pollMs): must be 1-1000") }
        let clusterFile: ClusterFile
        do { clusterFile = try ClusterFile.load(path: cluster) } catch { throw CLIError(error.description) }
        guard let watched = clusterFile.nodes.first(where: { $0.id == node }) else {
            throw CLIError("--node \(node): not in \(cluster)")
        }
        let groupFile = (dealer as NSString).appendingPathComponent("group.json")
        let group = try KeyFiles.decodeGroup(try KeyFiles.readFile(groupFile), as: Ed25519Suite.self, file: groupFile)
        var shares: [KeyPackage<Ed25519Suite>] = []
        for id in 1...group.minSigners {
            let path = (dealer as NSString).appendingPathComponent("node-\(id)/signing-share.json")
            shares.append(
                try KeyFiles.decodeShare(try KeyFiles.readSecretFile(path), as: Ed25519Suite.self, file: path))
        }
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
        var settings = SigningCoordinator.Configuration()
        settings.deadline = .seconds(10)
        let coordinator = SigningCoordinator(
            client: client, nodes: clusterFile.nodes, group: group, configuration: settings, logger: logger)
        let submitter = LogSubmitter(coordinator: coordinator, logger: logger)

        let warmupCount = Int((Double(rate) * warmup).rounded())
        let measured = Int((Double(rate) * seconds).rounded())
        let total = warmupCount + measured
        let groupKey = try group.verifyingKey.serialized()
        let run = "\(UInt32.random(in: 0...UInt32.max))"
        Output.line("making \(total) signed receipt entries …")
        let entries = try (0..<total).map { index in
            try Self.entry(requestID: "req_bench_\(run)_\(index)", groupKey: groupKey, shares: shares, group: group)
        }
        Output.line(
            "log load: \(rate) receipts/s, \(measured) measured over \(seconds) s after \(warmup) s warm-up; "
                + "watching node \(node); \(ProcessInfo.processInfo.activeProcessorCount) CPUs")
        let report = Blocking.wait {
            await Self.measure(
                entries: entries, rate: rate, warmupCount: warmupCount, submitter: submitter, client: coordinator,
                watched: watched.id, poll: .milliseconds(pollMs), grace: .seconds(grace))
        }
        Output.line(report)
        Blocking.wait { await coordinator.close() }
    }

    /// An allow receipt entry for `requestID`, signed by `shares`.
    static func entry(
        requestID: String, groupKey: [UInt8], shares: [KeyPackage<Ed25519Suite>], group: PublicKeyPackage<Ed25519Suite>
    ) throws -> [UInt8] {
        let body = Array(#"{"bench":true}"#.utf8)
        let request = try DecideRequest(
            requestID: requestID, time: Int64(Date().timeIntervalSince1970 * 1000), method: "POST",
            target: "/bench/decision", headers: [], body: body, bodyLength: UInt64(body.count),
            clientAddress: "127.0.0.1", token: "lat_bench", signers: [])
        let claims = ReceiptClaims(
            requestID: requestID, issuedAt: request.time / 1000, latch: "assistant", mount: "/bench",
            method: request.method, path: request.target, bodySHA256: Hex.encode(request.bodySHA256),
            decision: .allow, bundle: "", signers: shares.map { Int($0.identifier.value) }, reasons: [])
        let input = try Receipt.signingInput(claims: claims, groupKey: groupKey)
        let nonces = shares.map { FROST<Ed25519Suite>.commit($0) }
        let package = try SigningPackage<Ed25519Suite>(
            message: input, commitments: nonces.map(\.commitments).sorted { $0.identifier < $1.identifier })
        let session = try SigningSession(package: package, verifyingKey: group.verifyingKey)
        let signed = try zip(shares, nonces).map { try FROST<Ed25519Suite>.sign(session: session, nonces: $1, key: $0) }
        let signature = try FROST<Ed25519Suite>.aggregate(session: session, shares: signed, group: group)
        let receipt = try Receipt(claims: claims, groupKey: groupKey, signature: signature.bytes).compact
        return LogEntry.receipt(ReceiptEntry(receipt: receipt, request: LoggedRequest(request), verdicts: []))
            .encoded()
    }

    /// Submits `entries` at `rate`, watches node `watched`'s checkpoints, and renders the figures
    /// of the entries after the warm-up.
    static func measure(
        entries: [[UInt8]], rate: Int, warmupCount: Int, submitter: LogSubmitter, client: SigningCoordinator,
        watched: UInt16, poll: Duration, grace: Duration
    ) async -> String {
        let clock = ContinuousClock()
        let interval = Duration.seconds(1) / rate
        let start = clock.now + .milliseconds(100)
        let index = Dictionary(entries.enumerated().map { (RFC9162.leafHash($1), $0) }, uniquingKeysWith: { a, _ in a })
        let covered = NIOLockedValueBox<[Int: ContinuousClock.Instant]>([:])
        let submitting = NIOLockedValueBox(true)
        var initialSize: UInt64 = 0
        if let status = try? await client.ask(watched, LogStatusRequest(), LogStatusResponse.self) {
            initialSize = checkpointSize(status) ?? 0
        }
        let firstSize = initialSize
        let watcher = Task {
            var seen = firstSize
            var lastCovered = clock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: poll)
                guard let status = try? await client.ask(watched, LogStatusRequest(), LogStatusResponse.self),
                    let size = checkpointSize(status), size > seen
                else {
                    let done = !submitting.withLockedValue { $0 }
                    if done
                        && (covered.withLockedValue { $0.count } == entries.count || clock.now - lastCovered > grace)
                    {
                        return
                    }
                    continue
                }
                let at = clock.now
                lastCovered = at
                var from = seen
                while from < size {
                    guard
                        let fetched = try? await client.ask(
                            watched, try LogFetchRequest(from: from, count: UInt32(min(4096, size - from))),
                            LogFetchResponse.self),
                        !fetched.entries.isEmpty
                    else { break }
                    covered.withLockedValue { table in
                        for entry in fetched.entries {
                            if let position = index[RFC9162.leafHash(entry)], table[position] == nil {
                                table[position] = at
                            }
                        }
                    }
                    from += UInt64(fetched.entries.count)
                }
                seen = size
            }
        }
        var lag = Duration.zero
        for (position, entry) in entries.enumerated() {
            let scheduled = start + interval * position
            try? await clock.sleep(until: scheduled)
            lag = max(lag, clock.now - scheduled)
            submitter.submit(entry)
        }
        _ = await submitter.flush(within: .seconds(60))
        submitting.withLockedValue { $0 = false }
        await watcher.value
        let stamps = covered.withLockedValue { $0 }
        var latencies: [Double] = []
        var lost = 0
        for position in warmupCount..<entries.count {
            guard let at = stamps[position] else {
                lost += 1
                continue
            }
            latencies.append(seconds(at - (start + interval * position)))
        }
        latencies.sort()
        func ms(_ value: Double) -> String { String(format: "%.1f ms", value * 1000) }
        func percentile(_ p: Double) -> Double {
            guard !latencies.isEmpty else { return .nan }
            return latencies[min(latencies.count - 1, Int((Double(latencies.count) * p).rounded(.up)) - 1)]
        }
        return [
            "submit to quorum-signed checkpoint (node \(watched)):",
            "  \(latencies.count) covered, \(lost) not covered within the grace period",
            "  p50 \(ms(percentile(0.5)))  p90 \(ms(percentile(0.9)))  p99 \(ms(percentile(0.99)))  "
                + "max \(ms(latencies.last ?? .nan))",
            "  generator lag: max \(ms(seconds(lag)))",
        ].joined(separator: "\n")
    }

    static func checkpointSize(_ status: LogStatusResponse) -> UInt64? {
        status.checkpoint.flatMap { try? SignedNote.parse($0) }.flatMap { try? Checkpoint.parse($0.text) }?.size
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
