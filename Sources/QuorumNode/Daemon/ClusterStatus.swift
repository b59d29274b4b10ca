import Foundation
import QuorumIdentity
import QuorumProtocol
import TOMLKit

/// The nodes of a cluster as an operator's tools reach them: a `cluster.toml` of
/// `[[nodes]] id, address`.
///
/// ```toml
/// [[nodes]]
/// id = 1
/// address = "127.0.0.1:7101"
/// ```
public struct ClusterFile: Sendable, Hashable {
    /// One node: its id (which its certificate must carry) and address.
    public struct Node: Sendable, Hashable {
        /// The node id.
        public let id: UInt16
        /// Where it listens.
        public let address: NodeAddress
    }

    /// The nodes, ascending by id.
    public let nodes: [Node]

    /// Reads `path`.
    public static func load(path: String) throws(NodeConfigurationError) -> ClusterFile {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw NodeConfigurationError(
                file: path, key: "", "cannot read the cluster file (\(error.localizedDescription))")
        }
        return try parse(text, file: path)
    }

    /// Parses a cluster file's `text`, read from `file`.
    public static func parse(_ text: String, file: String) throws(NodeConfigurationError) -> ClusterFile {
        let table: TOMLTable
        do { table = try TOMLTable(string: text) } catch let error as TOMLParseError {
            throw NodeConfigurationError(
                file: file, key: "",
                "not valid TOML at line \(error.source.begin.line), column \(error.source.begin.column): \(error.description)"
            )
        } catch {
            throw NodeConfigurationError(file: file, key: "", "not valid TOML (\(error))")
        }
        let reader = TOMLFieldReader(file: file, base: "")
        try reader.refuseUnknown(table, allowed: ["nodes"], prefix: "")
        guard let value = table["nodes"] else {
            throw reader.error("nodes", "missing; list each node as [[nodes]] with id and address")
        }
        guard let array = value.array, !array.isEmpty else {
            throw reader.error("nodes", "must be a non-empty array of tables ([[nodes]] with id and address)")
        }
        var nodes: [Node] = []
        for (index, element) in array.enumerated() {
            let prefix = "nodes[\(index + 1)]"
            guard let entry = element.table else {
                throw reader.error(prefix, "is a \(element.type); each node is a table with id and address")
            }
            try reader.refuseUnknown(entry, allowed: ["id", "address"], prefix: prefix + ".")
            let id = try reader.nodeID(entry["id"], key: prefix + ".id")
            if nodes.contains(where: { $0.id == id }) {
                throw reader.error(prefix + ".id", "node \(id) is listed twice; list each node once")
            }
            nodes.append(
                Node(id: id, address: try reader.address(entry["address"], key: prefix + ".address", ports: 1...65535)))
        }
        return ClusterFile(nodes: nodes.sorted { $0.id < $1.id })
    }
}

/// Asks every node of a cluster for its ``StatusResponse`` over mutual TLS, concurrently.
public enum ClusterStatus {
    /// One node's answer, or why there is none.
    public struct Entry: Sendable {
        /// The node asked.
        public let node: ClusterFile.Node
        /// Its status, or the reason it is unreachable or refused.
        public let result: Result<StatusResponse, TransportError>
    }

    /// Queries every node in `cluster` with `client`, each within `timeout`; the entries come back
    /// in the order of `cluster.nodes`.
    public static func query(
        _ cluster: ClusterFile, client: NodeClient, timeout: Duration
    ) async -> [Entry] {
        await withTaskGroup(of: (Int, Entry).self) { group in
            for (index, node) in cluster.nodes.enumerated() {
                group.addTask {
                    (index, Entry(node: node, result: await ask(node, client: client, timeout: timeout)))
                }
            }
            var entries: [(Int, Entry)] = []
            for await entry in group { entries.append(entry) }
            return entries.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    private static func ask(
        _ node: ClusterFile.Node, client: NodeClient, timeout: Duration
    ) async -> Result<StatusResponse, TransportError> {
        do throws(TransportError) {
            let status = try await client.ask(node, StatusRequest(), expecting: StatusResponse.self, deadline: timeout)
            guard status.nodeID == node.id else {
                throw TransportError(
                    .identityMismatch, peer: "node \(node.id) at \(node.address)", "answered as node \(status.nodeID)")
            }
            return .success(status)
        } catch {
            return .failure(error)
        }
    }
}

extension NodeClient {
    /// Sends `message` to every node of `nodes` at once, each on its own connection within
    /// `deadline`, and returns each node's answer or failure in the order of `nodes`: what an
    /// operator command that changes every node (policy push, secrets push) reports line by line.
    public func askEach<Response: WireMessage>(
        _ nodes: [ClusterFile.Node], _ message: some WireMessage, expecting _: Response.Type, deadline: Duration
    ) async -> [(node: ClusterFile.Node, result: Result<Response, TransportError>)] {
        await withTaskGroup(of: (Int, Result<Response, TransportError>).self) { group in
            for (index, node) in nodes.enumerated() {
                group.addTask {
                    (index, await self.answer(node, message, expecting: Response.self, deadline: deadline))
                }
            }
            var answers: [(Int, Result<Response, TransportError>)] = []
            for await answer in group { answers.append(answer) }
            return answers.sorted { $0.0 < $1.0 }.map { (nodes[$0.0], $0.1) }
        }
    }

    /// ``ask(_:_:expecting:deadline:)`` with its failure as a value, for task-group children.
    /// (A typed-throws `do`/`catch` written inline in a task-group child closure aborted about one
    /// release-built `policy push` in three inside the concurrency runtime, "pure virtual method
    /// called" in `AsyncTask::completeFuture`; moved into a function, as here, 0 in 120 runs.)
    public func answer<Response: WireMessage>(
        _ node: ClusterFile.Node, _ message: some WireMessage, expecting _: Response.Type, deadline: Duration
    ) async -> Result<Response, TransportError> {
        do throws(TransportError) {
            return .success(try await ask(node, message, expecting: Response.self, deadline: deadline))
        } catch {
            return .failure(error)
        }
    }

    /// Connects to `node` expecting its node certificate, sends `message` as a request, and
    /// returns the answer decoded as `Response`, closing the connection either way.
    ///
    /// - Throws: ``TransportError`` naming the node: a connection or handshake failure, the
    ///   node's error response (``TransportError/Code/refusedByPeer``), or an answer that does not
    ///   decode as `Response`.
    public func ask<Response: WireMessage>(
        _ node: ClusterFile.Node, _ message: some WireMessage, expecting _: Response.Type, deadline: Duration
    ) async throws(TransportError) -> Response {
        let target = "node \(node.id) at \(node.address)"
        let expected: PeerIdentity
        do { expected = try PeerIdentity.node(Int(node.id)) } catch {
            throw TransportError(.configuration, peer: target, error.reason)
        }
        let connection = try await connect(host: node.address.host, port: node.address.port, expecting: expected)
        let frame: Frame
        do {
            frame = try await connection.request(message, deadline: deadline)
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
        do { return try frame.decode(Response.self) } catch {
            throw TransportError(
                .refusedByPeer, peer: target, "an answer that does not decode as \(Response.name) (\(error))")
        }
    }
}
