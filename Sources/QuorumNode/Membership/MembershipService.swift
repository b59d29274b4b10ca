import Foundation
import Logging
import NIOConcurrencyHelpers
import QuorumIdentity
import QuorumProtocol
import ServiceLifecycle

/// The I/O shell around ``Membership``: a timer that ticks it, one dialler per peer that keeps a
/// ``NodeConnection`` (reconnecting with ``ReconnectBackoff``) and sends it the heartbeats the
/// ticks ask for, and the request handler that records incoming heartbeats and answers
/// ``StatusRequest``.
///
/// Runs until graceful shutdown, then closes its connections.
public final class MembershipService: Service, NodeFrameHandler, Sendable {
    /// A peer to dial: its node id and address.
    public struct PeerAddress: Sendable, Hashable {
        /// The node id its certificate must carry.
        public let nodeID: UInt16
        /// Where it listens.
        public let address: NodeAddress

        /// A peer at `address`.
        public init(nodeID: UInt16, address: NodeAddress) {
            self.nodeID = nodeID
            self.address = address
        }
    }

    /// The messages membership serves: heartbeats from nodes (the transport checks the claimed
    /// node id against the certificate), status requests from operators, proxies and nodes (status
    /// holds only public facts; a proxy learns each node's identity key from it, to check signed
    /// verdicts, and `quorumd health` asks its own node with the node's certificate, so a health
    /// check needs no operator key on the node's machine).
    public static let roles: [UInt16: Set<ClusterRole>] = [
        Heartbeat.type: [.node], StatusRequest.type: [.operator, .proxy, .node],
    ]

    /// ``roles``, as ``NodeFrameHandler`` asks.
    public var requestRoles: [UInt16: Set<ClusterRole>] { Self.roles }

    private let state: NIOLockedValueBox<Membership>
    private let client: NodeClient
    private let peers: [PeerAddress]
    private let tick: Duration
    private let backoff: ReconnectBackoff
    private let logger: Logger
    private let now: @Sendable () -> Int64
    private let facts: @Sendable () -> Membership.LocalFacts

    /// A service for `membership`, dialling `peers` with `client`.
    public init(
        membership: Membership, peers: [PeerAddress], client: NodeClient,
        backoff: ReconnectBackoff = ReconnectBackoff(
            initial: .milliseconds(100), maximum: .seconds(2), maximumAttempts: nil, jitter: 0.2),
        logger: Logger = Logger(label: "quorum.membership"),
        now: @escaping @Sendable () -> Int64 = { Int64((Date().timeIntervalSince1970 * 1000).rounded()) },
        facts: @escaping @Sendable () -> Membership.LocalFacts = { Membership.LocalFacts() }
    ) {
        self.state = NIOLockedValueBox(membership)
        self.peers = peers
        self.client = client
        self.backoff = backoff
        self.logger = logger
        self.now = now
        self.facts = facts
        self.tick = .milliseconds(max(10, membership.intervalMilliseconds / 5))
    }

    /// The current view, for tests and status.
    public var membership: Membership { state.withLockedValue { $0 } }

    /// Answers the frames membership owns; pass it to ``NodeServer`` (with ``authorization``).
    public func handle(_ peer: PeerIdentity, _ frame: Frame) async throws -> Frame? {
        switch frame.messageType {
        case Heartbeat.type:
            guard frame.kind == .oneWay else {
                return try Frame.errorResponse(
                    ErrorResponse(.malformedRequest, "a heartbeat is a one-way frame, not a request"), to: frame)
            }
            let heartbeat = try frame.decode(Heartbeat.self)
            let at = now()
            let directives = state.withLockedValue { $0.onHeartbeat(heartbeat, at: at) }
            carryOut(directives)
            return nil
        case StatusRequest.type:
            guard frame.kind == .request else { return nil }
            _ = try frame.decode(StatusRequest.self)
            let at = now()
            let facts = facts()
            let status = try state.withLockedValue { membership throws(WireError) in
                membership.facts = facts
                return try membership.status(at: at)
            }
            return try Frame.response(status, to: frame)
        default:
            guard frame.kind == .request else { return nil }
            return try Frame.errorResponse(
                ErrorResponse(.unknownMessageType, "message type \(frame.messageType) is not served here"), to: frame)
        }
    }

    /// Ticks membership and dials the peers until graceful shutdown or cancellation.
    public func run() async throws {
        var streams: [(PeerAddress, AsyncStream<Heartbeat>)] = []
        var continuations: [AsyncStream<Heartbeat>.Continuation] = []
        for peer in peers {
            let (stream, continuation) = AsyncStream.makeStream(
                of: Heartbeat.self, bufferingPolicy: .bufferingNewest(1))
            streams.append((peer, stream))
            continuations.append(continuation)
        }
        let outlets = continuations
        await withDiscardingTaskGroup { group in
            for (peer, stream) in streams {
                group.addTask { await self.dial(peer, heartbeats: stream) }
            }
            group.addTask {
                try? await cancelWhenGracefulShutdown {
                    while !Task.isCancelled {
                        let at = self.now()
                        let facts = self.facts()
                        let directives = self.state.withLockedValue {
                            $0.facts = facts
                            return $0.onTick(now: at)
                        }
                        self.carryOut(directives, outlets: outlets)
                        try await Task.sleep(for: self.tick)
                    }
                }
                for outlet in outlets { outlet.finish() }
            }
        }
        logger.info("membership stopped")
    }

    private func carryOut(_ directives: [Membership.Directive], outlets: [AsyncStream<Heartbeat>.Continuation] = []) {
        for directive in directives {
            switch directive {
            case .sendHeartbeat(let heartbeat):
                for outlet in outlets { outlet.yield(heartbeat) }
            case .peerUp(let id):
                logger.info("peer up", metadata: ["peer": "node \(id)"])
            case .peerDown(let id):
                logger.warning("peer down", metadata: ["peer": "node \(id)"])
            }
        }
    }

    /// Sends each heartbeat of `heartbeats` to `peer`, connecting first when there is no open
    /// connection and the backoff allows an attempt; heartbeats that find no connection are
    /// dropped (the next one carries newer facts).
    private func dial(_ peer: PeerAddress, heartbeats: AsyncStream<Heartbeat>) async {
        var connection: NodeConnection?
        var backoff = backoff
        var nextAttempt = ContinuousClock.now
        var logger = logger
        logger[metadataKey: "peer"] = "node \(peer.nodeID) at \(peer.address)"
        let expected: PeerIdentity
        do { expected = try PeerIdentity.node(Int(peer.nodeID)) } catch {
            logger.error("not dialling: \(error)")
            return
        }
        for await heartbeat in heartbeats {
            if connection.map({ !$0.isActive }) ?? false {
                await connection?.close()
                connection = nil
                logger.info("connection lost; reconnecting")
            }
            if connection == nil {
                guard ContinuousClock.now >= nextAttempt else { continue }
                do {
                    connection = try await client.connect(
                        host: peer.address.host, port: peer.address.port, expecting: expected)
                    backoff.reset()
                    logger.info("connected")
                } catch {
                    let delay = backoff.nextDelay() ?? .seconds(2)
                    nextAttempt = ContinuousClock.now + delay
                    let level: Logger.Level =
                        error.code == .identityMismatch || error.code == .untrustedPeer ? .error : .debug
                    logger.log(level: level, "connect failed", metadata: ["error": "\(error)", "retry": "\(delay)"])
                    continue
                }
            }
            do {
                try await connection?.send(oneWay: heartbeat)
            } catch {
                logger.info("heartbeat not sent", metadata: ["error": "\(error)"])
                await connection?.close()
                connection = nil
            }
        }
        await connection?.close()
    }
}

/// Runs a ``NodeServer`` as a service: starts listening, reports the bound port, and on graceful
/// shutdown stops accepting and closes every connection.
public struct NodeServerService: Service {
    private let server: NodeServer
    private let onListening: @Sendable (Int) throws -> Void
    private let logger: Logger

    /// A service for `server`; `onListening` is called with the bound port once it listens.
    public init(
        server: NodeServer, logger: Logger = Logger(label: "quorum.server"),
        onListening: @escaping @Sendable (Int) throws -> Void = { _ in }
    ) {
        self.server = server
        self.logger = logger
        self.onListening = onListening
    }

    /// Listens until graceful shutdown or cancellation, then stops the server.
    public func run() async throws {
        let port = try await server.start()
        do {
            try onListening(port)
            try? await gracefulShutdown()
        } catch {
            await server.stop()
            throw error
        }
        logger.info("stopping the listener")
        await server.stop()
    }
}
