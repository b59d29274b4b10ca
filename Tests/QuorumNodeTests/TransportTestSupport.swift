import Foundation
import Logging
import QuorumIdentity
import QuorumProtocol
import Synchronization
import Testing

@testable import QuorumNode

/// Message types the transport tests speak; none is a real cluster message.
enum TestMessage {
    /// Answers with the request's payload, after waiting as many milliseconds as its first byte.
    static let echo: UInt16 = 0x7001
    /// Answers after five seconds: for deadlines.
    static let slow: UInt16 = 0x7002
    /// Answers with the caller's identity URI; operators only.
    static let operatorWhoAmI: UInt16 = 0x7003
    /// Answers with the caller's identity URI; nodes only.
    static let whoAmI: UInt16 = 0x7004
    /// Waits at a ``Gate`` before answering (the test's own handler): for the in-flight limit.
    static let gated: UInt16 = 0x7005
}

/// Holds requests until it is opened, counting how many are held at once.
final class Gate: Sendable {
    private struct State {
        var open = false
        var started = 0
        var running = 0
        var mostRunning = 0
    }
    private let state = Mutex(State())

    /// Requests that reached the handler.
    var started: Int { state.withLock { $0.started } }
    /// Requests in the handler now.
    var running: Int { state.withLock { $0.running } }
    /// The most requests that were in the handler at once.
    var mostRunning: Int { state.withLock { $0.mostRunning } }

    func open() { state.withLock { $0.open = true } }

    /// Waits until the gate opens, at most ten seconds.
    func pass() async throws {
        state.withLock { state in
            state.started += 1
            state.running += 1
            state.mostRunning = max(state.mostRunning, state.running)
        }
        defer { state.withLock { $0.running -= 1 } }
        let end = ContinuousClock.now + .seconds(10)
        while !state.withLock({ $0.open }) {
            guard ContinuousClock.now < end else { throw BoundExceeded(seconds: 10) }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

/// Polls `condition` every 10 ms until it holds, at most `seconds`; checks once more after the
/// bound, so a stall of the shared pool cannot make it give up without looking.
func eventually(_ seconds: Double = 10, _ condition: () -> Bool) async -> Bool {
    let end = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while true {
        if condition() { return true }
        if ContinuousClock.now >= end { return false }
        try? await Task.sleep(for: .milliseconds(10))
    }
}

/// Log lines captured from the transport, so tests can check that a refusal names its reason.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])

    func append(_ line: String) { lines.withLock { $0.append(line) } }

    var all: [String] { lines.withLock { $0 } }

    /// Whether some line contains every one of `parts`, waiting up to `seconds` for it to appear
    /// (the server logs from its event loop while the client has already moved on).
    func waitFor(_ parts: String..., seconds: Double = 10) async -> Bool {
        await eventually(seconds) { all.contains(where: { line in parts.allSatisfy { line.contains($0) } }) }
    }

    var logger: Logger {
        var logger = Logger(label: "test") { _ in CapturingHandler(capture: self) }
        logger.logLevel = .debug
        return logger
    }
}

struct CapturingHandler: LogHandler {
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        capture.append("\(event.level) \(event.message) \(fields)")
    }
}

/// A cluster CA and the transport pieces made from it.
struct TestCluster {
    let ca: ClusterCA

    init(caIssuedDaysAgo days: Double = 0) throws {
        ca = try ClusterCA.generate(validityDays: 3650, now: Date() - days * 86400)
    }

    /// A configuration for `identity`, its certificate issued `issuedDaysAgo` days ago and valid
    /// for `validityDays`.
    func configuration(
        _ identity: PeerIdentity, issuedDaysAgo: Double = 0, validityDays: Int = 30
    ) throws -> TransportConfiguration {
        let issued = try ca.issue(
            LeafRequest(identity: identity, validityDays: validityDays), now: Date() - issuedDaysAgo * 86400)
        var configuration = try TransportConfiguration.make(issued: issued, clusterCA: ca.certificate)
        // Certificate checks no longer wait for the shared pool (VerificationExecutor), so the
        // handshake keeps its default. Request handlers still run there, and the suite runs
        // beside CPU-heavy suites on two cores: requests get more than the default.
        configuration.defaultRequestDeadline = .seconds(20)
        return configuration
    }

    /// A configuration for `identity` whose certificate comes from another CA but which trusts
    /// this one: what an outsider with a certificate of their own would have.
    func foreignConfiguration(_ identity: PeerIdentity) throws -> TransportConfiguration {
        let foreign = try ClusterCA.generate()
        let issued = try foreign.issue(LeafRequest(identity: identity, validityDays: 30))
        // The outsider's own CA has to be its configuration's CA (the factory checks the chain);
        // it trusts the foreign CA, so its own side of the handshake is not what is tested.
        return try TransportConfiguration.make(issued: issued, clusterCA: foreign.certificate)
    }

    /// The tests' listener policy: every role may connect; each test message has its roles.
    static let policy = AuthorizationPolicy(
        connectionRoles: [.node, .proxy, .operator],
        requestRoles: [
            TestMessage.echo: [.node], TestMessage.slow: [.node], TestMessage.whoAmI: [.node, .proxy],
            TestMessage.operatorWhoAmI: [.operator], Heartbeat.type: [.node], TestMessage.gated: [.node],
        ])

    /// The tests' request handler.
    static let handler: NodeRequestHandler = { peer, request in
        guard request.kind == .request else { return nil }
        switch request.messageType {
        case TestMessage.echo:
            if let wait = request.payload.first, wait > 0 { try await Task.sleep(for: .milliseconds(Int(wait))) }
            return try Frame(
                kind: .response, messageType: request.messageType, correlationID: request.correlationID,
                payload: request.payload)
        case TestMessage.slow:
            try await Task.sleep(for: .seconds(5))
            return try Frame(
                kind: .response, messageType: request.messageType, correlationID: request.correlationID, payload: [])
        case TestMessage.whoAmI, TestMessage.operatorWhoAmI:
            return try Frame(
                kind: .response, messageType: request.messageType, correlationID: request.correlationID,
                payload: Array(peer.uri.utf8))
        case Heartbeat.type:
            return try Frame(
                kind: .response, messageType: request.messageType, correlationID: request.correlationID, payload: [])
        default:
            return try Frame.errorResponse(ErrorResponse(.unknownMessageType, "no such test message"), to: request)
        }
    }

    /// Starts a server for `identity` answering with `handler`, runs `body` with it and its port,
    /// and stops it.
    func withServer<T>(
        _ identity: PeerIdentity = .node(id: 1), configuration: TransportConfiguration? = nil,
        policy: AuthorizationPolicy = TestCluster.policy, logs: LogCapture,
        handler: @escaping NodeRequestHandler = TestCluster.handler, _ body: (NodeServer, Int) async throws -> T
    ) async throws -> T {
        let server = try NodeServer(
            configuration: configuration ?? self.configuration(identity), policy: policy, logger: logs.logger,
            handler: handler)
        let port = try await server.start()
        do {
            let result = try await body(server, port)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }
}

/// Runs `body`, failing if it takes longer than `seconds`: every wait in these tests is bounded.
/// The default leaves room for CPU-bound suites running beside this one, which can hold both
/// threads of the shared pool (where this body and the servers' request handlers run) for seconds.
func bounded<T: Sendable>(
    _ seconds: Double = 30, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            return nil
        }
        guard let first = try await group.next(), let value = first else {
            group.cancelAll()
            throw BoundExceeded(seconds: seconds)
        }
        group.cancelAll()
        return value
    }
}

struct BoundExceeded: Error, CustomStringConvertible {
    let seconds: Double
    var description: String { "did not finish within \(seconds) s" }
}

/// The error `body` throws as a `TransportError`, or nil if it succeeds.
func transportError(_ body: () async throws -> Void) async -> TransportError? {
    do {
        try await body()
        return nil
    } catch let error as TransportError {
        return error
    } catch {
        Issue.record("expected a TransportError, got \(error)")
        return nil
    }
}

/// `length` as the four big-endian bytes of a frame's length prefix.
func lengthPrefix(_ length: UInt32) -> [UInt8] {
    [UInt8(length >> 24), UInt8((length >> 16) & 0xff), UInt8((length >> 8) & 0xff), UInt8(length & 0xff)]
}

/// Keeps every thread of Swift's shared cooperative pool busy with CPU-bound tasks that never
/// suspend, as CPU-heavy test suites do on a 2-core machine, until stopped or `limit` has passed.
final class PoolSaturation: Sendable {
    /// The pool's width: one thread per active core.
    let threads = ProcessInfo.processInfo.activeProcessorCount
    private let spinning = Atomic<Int>(0)
    private let stopped = Atomic<Bool>(false)

    init(limit: Duration) {
        let end = ContinuousClock.now + limit
        for _ in 0..<threads {
            Task.detached { [self] in
                spinning.add(1, ordering: .sequentiallyConsistent)
                var sink: UInt64 = 0
                while !stopped.load(ordering: .relaxed), ContinuousClock.now < end {
                    for step in 0..<10_000 { sink = sink &* 6_364_136_223_846_793_005 &+ UInt64(step) }
                }
                blackHole(sink)
                spinning.subtract(1, ordering: .sequentiallyConsistent)
            }
        }
    }

    /// How many spinners are running now.
    var spinners: Int { spinning.load(ordering: .sequentiallyConsistent) }

    /// Blocks the calling thread (never a pool thread: the pool is what is saturated) until every
    /// spinner runs, at most `seconds`.
    func waitUntilSaturated(seconds: Double) -> Bool {
        let end = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while spinners < threads {
            guard ContinuousClock.now < end else { return false }
            usleep(1000)
        }
        return true
    }

    func stop() { stopped.store(true, ordering: .relaxed) }
}

@inline(never)
func blackHole(_ value: UInt64) { _ = value }
