import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import QuorumCrypto

/// `quorumctl bench proxy`: whole-system load through `quorum-proxy` (issue 6's figures), with the
/// same calls made straight to the upstream in the same run for comparison.
struct BenchProxy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Open-loop latency through the proxy beside direct upstream calls, then closed-loop throughput.",
        discussion: """
            latency: two open-loop loads at --rate each, run at the same time: the call through the proxy (--url, \
            with the latch token) and the same call straight to the upstream (--direct, with the upstream's key). \
            Latency counts from each request's scheduled start. The added latency is the proxy's percentile minus the \
            direct one. If the proxy answers with Server-Timing, the mean of each phase is printed. throughput: \
            --concurrency callers send calls back to back through the proxy for --duration seconds; only 200 \
            answers carrying a Latch-Receipt count.
            """
    )

    @Option(help: ArgumentHelp("The call through the proxy (full URL).", valueName: "url"))
    var url: String

    @Option(help: ArgumentHelp("The same call straight to the upstream (full URL).", valueName: "url"))
    var direct: String?

    @Option(help: ArgumentHelp("A file holding the latch token.", valueName: "file"))
    var tokenFile: String

    @Option(help: ArgumentHelp("A file holding the upstream's API key (for --direct).", valueName: "file"))
    var directKeyFile: String?

    @Option(help: "The JSON body of each call.")
    var body: String =
        #"{"model":"gpt-4o-mini","max_tokens":50,"messages":[{"role":"user","content":"Say hello."}]}"#

    @Option(help: "latency, throughput or both.")
    var mode: String = "both"

    @Option(help: "Calls per second of each open-loop load (latency).")
    var rate: Int = 200

    @Option(help: "Seconds measured per load.")
    var duration: Double = 10

    @Option(help: "Seconds of unmeasured load first.")
    var warmup: Double = 2

    @Option(help: "Callers sending back to back (throughput).")
    var concurrency: Int = 64

    func run() throws {
        guard ["latency", "throughput", "both"].contains(mode) else {
            throw CLIError("--mode \(mode): latency, throughput or both")
        }
        guard (1...20000).contains(rate), (1...4096).contains(concurrency), duration > 0, warmup >= 0 else {
            throw CLIError("--rate 1-20000, --concurrency 1-4096, --duration > 0, --warmup >= 0")
        }
        let token = try Self.firstLine(tokenFile)
        let directKey = try directKeyFile.map(Self.firstLine)
        if direct != nil, directKey == nil { throw CLIError("--direct needs --direct-key-file") }
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(30))
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 512)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        defer { try? client.syncShutdown() }
        let call = Call(client: client, body: Array(body.utf8))
        Output.line(
            "proxy load: \(url); \(ProcessInfo.processInfo.activeProcessorCount) CPUs; "
                + "\(Date().formatted(.iso8601))")
        var failed = false
        if mode != "throughput" {
            let plan = Load(rate: rate, duration: duration, warmup: warmup)
            let proxyURL = url
            let directURL = direct
            let timings = Timings()
            let (proxied, straight) = Blocking.wait { () -> (Load.Report, Load.Report?) in
                async let viaProxy = plan.run { _ in
                    let started = ContinuousClock.now
                    let answer = try await call.send(proxyURL, bearer: token)
                    try answer.expectAllowed()
                    await timings.add(answer.serverTiming)
                    return started
                }
                guard let directURL, let directKey else { return (await viaProxy, nil) }
                async let viaDirect = plan.run { _ in
                    let started = ContinuousClock.now
                    let answer = try await call.send(directURL, bearer: directKey)
                    guard answer.status == 200 else { throw CLIError("direct call answered \(answer.status)") }
                    return started
                }
                return (await viaProxy, await viaDirect)
            }
            Output.line(proxied.render("through the proxy at \(rate)/s"))
            failed = failed || proxied.errors > 0
            if let straight {
                Output.line(straight.render("straight to the upstream at \(rate)/s, same run"))
                failed = failed || straight.errors > 0
                Output.line(
                    String(
                        format: "added latency: p50 %.3f ms  p99 %.3f ms",
                        (Self.percentile(proxied.latencies, 0.50) - Self.percentile(straight.latencies, 0.50)) * 1000,
                        (Self.percentile(proxied.latencies, 0.99) - Self.percentile(straight.latencies, 0.99)) * 1000))
            }
            let phases = Blocking.wait { await timings.means() }
            if !phases.isEmpty {
                Output.line(
                    "where the time goes (proxy Server-Timing, mean): "
                        + phases.map { String(format: "%@ %.3f ms", $0.name, $0.milliseconds) }.joined(separator: ", "))
            }
        }
        if mode != "latency" {
            let seconds = duration
            let workers = concurrency
            let proxyURL = url
            let (ok, errors, firstError, elapsed) = Blocking.wait { () -> (Int, Int, String?, Double) in
                let clock = ContinuousClock()
                let warmEnd = clock.now + .seconds(warmup)
                let end = warmEnd + .seconds(seconds)
                let results = await withTaskGroup(of: (Int, Int, String?).self) { group in
                    for _ in 0..<workers {
                        group.addTask {
                            var ok = 0
                            var errors = 0
                            var first: String?
                            while clock.now < end {
                                let counted = clock.now >= warmEnd
                                do {
                                    let answer = try await call.send(proxyURL, bearer: token)
                                    try answer.expectAllowed()
                                    if counted { ok += 1 }
                                } catch {
                                    if counted { errors += 1 }
                                    if first == nil { first = "\(error)" }
                                }
                            }
                            return (ok, errors, first)
                        }
                    }
                    var total = (0, 0, String?.none)
                    for await (ok, errors, first) in group {
                        total.0 += ok
                        total.1 += errors
                        total.2 = total.2 ?? first
                    }
                    return total
                }
                return (results.0, results.1, results.2, seconds)
            }
            Output.line(
                String(
                    format: "throughput: %d allowed, signed calls in %.1f s = %.0f calls/s with %d callers; %d errors",
                    ok, elapsed, Double(ok) / elapsed, workers, errors))
            if let firstError { Output.line("  first error: \(firstError)") }
            failed = failed || errors > 0
        }
        if failed { throw ExitCode(1) }
    }

    static func firstLine(_ path: String) throws -> String {
        let text = String(decoding: try KeyFiles.readFile(path), as: UTF8.self)
        guard let line = text.split(whereSeparator: \.isNewline).first, !line.isEmpty else {
            throw CLIError("\(path): empty")
        }
        return String(line)
    }

    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
    }

    /// One call: POST the body with a bearer credential, read the whole answer.
    struct Call: Sendable {
        let client: HTTPClient
        let body: [UInt8]

        struct Answer {
            let status: UInt
            let receipt: String?
            let serverTiming: String?

            func expectAllowed() throws {
                guard status == 200 else { throw CLIError("the proxy answered \(status)") }
                guard receipt != nil else { throw CLIError("a 200 without a Latch-Receipt") }
            }
        }

        func send(_ url: String, bearer: String) async throws -> Answer {
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(bearer)")
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
            let response = try await client.execute(request, timeout: .seconds(30))
            _ = try await response.body.collect(upTo: 1 << 20)
            return Answer(
                status: response.status.code, receipt: response.headers.first(name: "Latch-Receipt"),
                serverTiming: response.headers.first(name: "Server-Timing"))
        }
    }

    /// Sums of the proxy's `Server-Timing` phases (`name;dur=ms`).
    actor Timings {
        private var sums: [String: (total: Double, count: Int)] = [:]
        private var order: [String] = []

        func add(_ header: String?) {
            guard let header else { return }
            for entry in header.split(separator: ",") {
                let parts = entry.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
                guard let name = parts.first, let duration = parts.dropFirst().first(where: { $0.hasPrefix("dur=") }),
                    let value = Double(duration.dropFirst(4))
                else { continue }
                if sums[name] == nil { order.append(name) }
                sums[name, default: (0, 0)].total += value
                sums[name, default: (0, 0)].count += 1
            }
        }

        func means() -> [(name: String, milliseconds: Double)] {
            order.map { ($0, sums[$0]!.total / Double(max(1, sums[$0]!.count))) }
        }
    }
}
