import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import QuorumCrypto
import QuorumIdentity
import QuorumNode
import QuorumPolicy
import QuorumTestKit
import ServiceLifecycle
import Testing

@testable import QuorumProxy

/// The demo upstream's key in these tests: what the decision path "releases" as the credential.
let demoKey = "sk-demo-0123456789abcdefSECRETKEY"

/// A latch token for latch `agent`, and the bundle routing `/openai` and `/probe` to the demo.
struct TestLatch {
    static let token = LatchToken(latchID: "agent", randomBytes: Array(repeating: 7, count: 32))

    static func bundle(upstreamPort: Int) throws -> PolicyBundle {
        let base = "http://127.0.0.1:\(upstreamPort)"
        let latch = Latch(
            id: "agent", tokenDigest: token.secretDigest,
            mounts: [
                Mount(path: "/openai", upstream: base, secret: "openai", filters: []),
                Mount(path: "/probe", upstream: base + "/echo", secret: nil, filters: []),
            ])
        return try PolicyBundle(
            version: 1, secrets: [SecretSpec(name: "openai", injection: .bearer)], fieldAliases: [:], prices: [:],
            latches: [latch], digest: "sha256:test")
    }
}

/// Log lines kept in memory, to check what the proxy wrote.
final class LogCapture: Sendable {
    private let lines = NIOLockedValueBox<[String]>([])

    var text: String { lines.withLockedValue { $0.joined(separator: "\n") } }

    func logger(_ label: String) -> Logger {
        var logger = Logger(label: label) { label in CapturingHandler(label: label, capture: self) }
        logger.logLevel = .trace
        return logger
    }

    fileprivate func append(_ line: String) { lines.withLockedValue { $0.append(line) } }

    private struct CapturingHandler: LogHandler {
        let label: String
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        // swift-format-ignore: ReplaceForEachWithForLoop
        func log(event: LogEvent) {
            var all = metadata
            event.metadata?.forEach { all[$0.key] = $0.value }
            capture.append("\(event.level) \(label): \(event.message) \(all)")
        }
    }
}

/// What the test authorizer saw and what settle reported.
final class Recorder: Sendable {
    private let state = NIOLockedValueBox<(calls: [AgentCall], settled: [SpendUsage?])>(([], []))

    var calls: [AgentCall] { state.withLockedValue { $0.calls } }
    var settled: [SpendUsage?] { state.withLockedValue { $0.settled } }

    func record(_ call: AgentCall) { state.withLockedValue { $0.calls.append(call) } }
    func settle(_ usage: SpendUsage?) { state.withLockedValue { $0.settled.append(usage) } }

    /// Waits up to `seconds` for `count` settlements.
    func waitForSettlements(_ count: Int, seconds: Double = 10) async throws -> [SpendUsage?] {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let settled = self.settled
            if settled.count >= count { return settled }
            try await Task.sleep(for: .milliseconds(20))
        }
        return settled
    }
}

/// A test seam for the HTTP layer only: answers each call with what `decide` says, recording it.
/// The end-to-end tests replace it with the real decision path.
struct FixedAuthorizer: CallAuthorizer {
    let recorder: Recorder
    let decide: @Sendable (AgentCall) -> CallAuthorization

    func authorize(_ call: AgentCall) async -> CallAuthorization {
        recorder.record(call)
        return decide(call)
    }
}

/// An allow for `call` to the demo upstream at `port`, with the mount-relative path the nodes
/// would approve.
func allow(
    _ call: AgentCall, upstream: String, credential: String? = demoKey, injection: SecretSpec.Injection? = .bearer,
    obligations: ResponseObligations = .none, recorder: Recorder, receipt: String = "eyJhbGciOiJFZERTQSJ9.e30.c2ln"
) -> CallAuthorization {
    let path: String
    switch RequestTarget.parse(call.decisionRequest.target) {
    case .success(let target):
        let mount = call.mountPath ?? ""
        let rest = String(target.path.value.dropFirst(mount.count))
        path = rest.isEmpty ? "/" : rest
    case .failure:
        return .deny(DeniedCall(receipt: nil, reasons: [NodeReason(node: 1, decision: "deny", reason: "path: bad")]))
    }
    return .allow(
        AllowedCall(
            upstream: URL(string: upstream)!, path: path, credential: credential.map { SecretBytes(Array($0.utf8)) },
            injection: credential == nil ? nil : injection, receipt: receipt, obligations: obligations,
            settle: { usage in recorder.settle(usage) }))
}

/// A demo upstream and a proxy on loopback, with the proxy's logs captured.
struct ProxyHarness {
    let upstreamPort: Int
    let proxyPort: Int
    let logs: LogCapture
    let recorder: Recorder
    let client: HTTPClient
    /// The HTTPS listener's port, with `tls`.
    let tlsPort: Int?
    /// With `tls`: a directory from `CertificateFiles.initialize` (one node): `ca.pem`, the
    /// proxy's server certificate `proxy.pem`, and `node-1` and `operator` to present as
    /// client certificates.
    let certificates: String?

    var proxyURL: String { "http://127.0.0.1:\(proxyPort)" }
    var tlsURL: String { "https://127.0.0.1:\(tlsPort ?? 0)" }
    var upstreamURL: String { "http://127.0.0.1:\(upstreamPort)" }

    /// Runs `body` with a demo upstream and a proxy deciding with `decide`, then stops both.
    static func with(
        limits: RequestLimits = RequestLimits(),
        upstream: UpstreamConfiguration = UpstreamConfiguration(),
        tls: Bool = false,
        audit: AuditForwarding? = nil,
        decide: @escaping @Sendable (AgentCall, ProxyHarnessContext) -> CallAuthorization,
        _ body: (ProxyHarness) async throws -> Void
    ) async throws {
        let logs = LogCapture()
        let recorder = Recorder()
        let upstreamPorts = AsyncStream.makeStream(of: Int.self)
        let demo = DemoUpstream.application(
            apiKey: demoKey, host: "127.0.0.1", port: 0, logger: Logger(label: "demo")
        ) { port in upstreamPorts.continuation.yield(port) }
        let demoGroup = ServiceGroup(services: [demo], logger: Logger(label: "demo"))
        let demoTask = Task { try await demoGroup.run() }
        defer { demoTask.cancel() }
        var iterator = upstreamPorts.stream.makeAsyncIterator()
        let upstreamPort = try #require(await iterator.next())

        var configuration = ProxyConfiguration(
            file: "test", listen: NodeAddress(host: "127.0.0.1", port: 0), bundlePath: "", trustedSigners: [])
        configuration.limits = limits
        configuration.upstream = upstream
        configuration.audit = audit
        var certificates: String?
        if tls {
            let directory = try TestKit.temporaryDirectory("proxy-tls").path
            try CertificateFiles.initialize(
                CertificateDirectory(directory), plan: ClusterCertificatesPlan(nodes: 1), force: true)
            configuration.tls = AgentTLSSettings(
                listen: NodeAddress(host: "127.0.0.1", port: 0), certificate: directory + "/proxy.pem",
                privateKey: directory + "/proxy.key")
            certificates = directory
        }
        defer { if let certificates { try? FileManager.default.removeItem(atPath: certificates) } }
        let context = ProxyHarnessContext(upstream: "http://127.0.0.1:\(upstreamPort)", recorder: recorder)
        let runtime = ProxyRuntime(
            configuration: configuration,
            routing: RoutingTable(RoutingView(bundle: try TestLatch.bundle(upstreamPort: upstreamPort))),
            authorizer: FixedAuthorizer(recorder: recorder) { decide($0, context) },
            logger: logs.logger("quorum-proxy"))
        let proxyPorts = AsyncStream.makeStream(of: Int.self)
        let tlsPorts = AsyncStream.makeStream(of: Int.self)
        let proxyGroup = ServiceGroup(
            services: try runtime.services(
                onListening: { port in proxyPorts.continuation.yield(port) },
                onTLSListening: { port in tlsPorts.continuation.yield(port) }),
            logger: Logger(label: "group"))
        let proxyTask = Task { try await proxyGroup.run() }
        var proxyIterator = proxyPorts.stream.makeAsyncIterator()
        let proxyPort = try #require(await proxyIterator.next())
        var tlsPort: Int?
        if tls {
            var tlsIterator = tlsPorts.stream.makeAsyncIterator()
            tlsPort = try #require(await tlsIterator.next())
        }

        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        let harness = ProxyHarness(
            upstreamPort: upstreamPort, proxyPort: proxyPort, logs: logs, recorder: recorder, client: client,
            tlsPort: tlsPort, certificates: certificates)
        do {
            try await body(harness)
        } catch {
            try? await client.shutdown()
            await proxyGroup.triggerGracefulShutdown()
            _ = try? await proxyTask.value
            await demoGroup.triggerGracefulShutdown()
            throw error
        }
        try await client.shutdown()
        await proxyGroup.triggerGracefulShutdown()
        try await proxyTask.value
        await demoGroup.triggerGracefulShutdown()
        try await demoTask.value
    }

    /// Sends a request to the proxy and reads the whole answer.
    func send(
        _ method: HTTPMethod = .GET, _ path: String, token: String? = TestLatch.token.text,
        headers: [(String, String)] = [],
        body: String? = nil, client: HTTPClient? = nil, base: String? = nil
    ) async throws -> (status: Int, headers: HTTPHeaders, body: String) {
        let client = client ?? self.client
        var request = HTTPClientRequest(url: (base ?? proxyURL) + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer " + token) }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 8 << 20)
        return (Int(response.status.code), response.headers, String(buffer: bytes))
    }
}

/// What a test's decision closure may use.
struct ProxyHarnessContext: Sendable {
    let upstream: String
    let recorder: Recorder
}

/// Parses a JSON answer with QuorumPolicy's parser.
func json(_ text: String) throws -> JSONValue {
    try JSONParser(configuration: JSONParserConfiguration(maxDepth: 64, maxBytes: 8 << 20)).parse(Array(text.utf8))
}

/// The `[name, value]` pairs of an /echo answer's headers.
func echoedHeaders(_ answer: JSONValue) -> [(name: String, value: String)] {
    guard case .array(let pairs)? = answer["headers"] else { return [] }
    return pairs.compactMap { pair in
        guard case .array(let items) = pair, items.count == 2, case .string(let name) = items[0],
            case .string(let value) = items[1]
        else { return nil }
        return (name, value)
    }
}

extension JSONValue {
    var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }
}
