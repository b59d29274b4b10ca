import Logging
import NIOConcurrencyHelpers
import QuorumIdentity
import QuorumProtocol

/// One mutual-TLS connection per peer node, opened on first use and again after it closes: how
/// the replicated log sends gossip, batches, checkpoints, status claims and fetches to its peers.
/// A peer that cannot be reached fails the call with a ``TransportError`` naming it; the next call
/// dials again.
public final class PeerLinks: Sendable {
    private let client: NodeClient
    private let peers: [UInt16: NodeAddress]
    private let connections = NIOLockedValueBox<[UInt16: NodeConnection]>([:])
    /// The dial in progress to each peer: callers that find no open connection wait for it
    /// instead of dialling again, so a burst of gossip opens one connection, not one per message.
    private let dialling = NIOLockedValueBox<[UInt16: Task<Result<NodeConnection, TransportError>, Never>]>([:])

    /// Links to `peers` over `client` (holding this node's certificate).
    public init(client: NodeClient, peers: [MembershipService.PeerAddress]) {
        self.client = client
        self.peers = Dictionary(peers.map { ($0.nodeID, $0.address) }, uniquingKeysWith: { first, _ in first })
    }

    /// The peers' ids, ascending.
    public var peerIDs: [UInt16] { peers.keys.sorted() }

    /// The open connection to `peer`, dialled first if there is none.
    public func connection(to peer: UInt16) async throws(TransportError) -> NodeConnection {
        if let open = connections.withLockedValue({ $0[peer] }), open.isActive { return open }
        let dial = dialling.withLockedValue { table in
            if let running = table[peer] { return running }
            let task = Task { await self.dial(peer) }
            table[peer] = task
            return task
        }
        let result = await dial.value
        dialling.withLockedValue { table in
            if table[peer] == dial { table[peer] = nil }
        }
        return try result.get()
    }

    private func dial(_ peer: UInt16) async -> Result<NodeConnection, TransportError> {
        do throws(TransportError) {
            return .success(try await connect(peer))
        } catch {
            return .failure(error)
        }
    }

    private func connect(_ peer: UInt16) async throws(TransportError) -> NodeConnection {
        if let open = connections.withLockedValue({ $0[peer] }), open.isActive { return open }
        guard let address = peers[peer] else {
            throw TransportError(.configuration, peer: "node \(peer)", "is not a configured peer")
        }
        let expected: PeerIdentity
        do { expected = try PeerIdentity.node(Int(peer)) } catch {
            throw TransportError(.configuration, peer: "node \(peer)", error.reason)
        }
        let made = try await client.connect(host: address.host, port: address.port, expecting: expected)
        let (winner, stale) = connections.withLockedValue { table -> (NodeConnection, NodeConnection?) in
            if let other = table[peer], other.isActive { return (other, made) }
            let replaced = table[peer]
            table[peer] = made
            return (made, replaced)
        }
        if let stale { await stale.close() }
        return winner
    }

    /// Sends `message` to `peer` as a request and decodes the answer as `Response`.
    ///
    /// - Throws: ``TransportError``; a refusal is ``TransportError/Code/refusedByPeer`` carrying the
    ///   peer's ``ErrorResponse`` (read a ``LogRefusal`` from it).
    public func ask<Response: WireMessage>(
        _ peer: UInt16, _ message: some WireMessage, _: Response.Type, deadline: Duration
    ) async throws(TransportError) -> Response {
        let connection = try await connection(to: peer)
        let frame = try await connection.request(message, deadline: deadline)
        do { return try frame.decode(Response.self) } catch {
            throw TransportError(
                .refusedByPeer, peer: "node \(peer)", "an answer that does not decode as \(Response.name) (\(error))")
        }
    }

    /// ``ask(_:_:_:deadline:)`` with the failure as a value, for task-group children (a typed
    /// `do`/`catch` inline in a child task's closure crashed release builds; see `NodeClient.answer`).
    public func answer<Response: WireMessage>(
        _ peer: UInt16, _ message: some WireMessage, _: Response.Type, deadline: Duration
    ) async -> Result<Response, TransportError> {
        do throws(TransportError) {
            return .success(try await ask(peer, message, Response.self, deadline: deadline))
        } catch {
            return .failure(error)
        }
    }

    /// Sends `message` one-way to `peer`; false (and the connection dropped) when it could not.
    @discardableResult
    public func send(_ message: some WireMessage, to peer: UInt16) async -> Bool {
        do throws(TransportError) {
            let connection = try await connection(to: peer)
            try await connection.send(oneWay: message)
            return true
        } catch {
            return false
        }
    }

    /// Closes every connection.
    public func close() async {
        let open = connections.withLockedValue { table in
            defer { table = [:] }
            return Array(table.values)
        }
        for connection in open { await connection.close() }
    }
}
