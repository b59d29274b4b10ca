import Logging
import QuorumIdentity
import QuorumProtocol

/// Whether a running `quorumd` serves: what `quorumd health` (a container's or a supervisor's
/// health check) asks.
///
/// The check goes the whole way a peer's request goes: a TCP connection to the node's own listener,
/// the mutual-TLS handshake with the node's own certificate (so an expired certificate, or a CA
/// that does not match, fails it), and a ``StatusRequest`` answered by the node as itself. It reads
/// only the configuration and the certificate files, never the data directory, which the running
/// node holds locked.
public enum NodeHealth {
    /// Where to dial a listener bound to `listen`: a wildcard host (`0.0.0.0`, `::`) is dialled on
    /// the loopback address of its family, any other host as configured.
    public static func probeAddress(for listen: NodeAddress) -> NodeAddress {
        switch listen.host {
        case "0.0.0.0", "": return NodeAddress(host: "127.0.0.1", port: listen.port)
        case "::", "0:0:0:0:0:0:0:0": return NodeAddress(host: "::1", port: listen.port)
        default: return listen
        }
    }

    /// Why a node is not healthy: its configuration or certificate files cannot be used, or it did
    /// not answer as itself.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// Which side failed: the files this end reads, or the node.
        public enum Kind: Sendable, Hashable {
            /// The configuration or certificate files cannot be used: the check never reached the node.
            case configuration
            /// The node did not answer, refused, or answered as another node.
            case node
        }

        /// Which side failed.
        public let kind: Kind
        /// One line: what failed and where.
        public let description: String

        init(_ kind: Kind, _ description: String) {
            self.kind = kind
            self.description = description
        }
    }

    /// Asks the node `configuration` describes for its status at its own listen address, with its
    /// own certificate, every wait bounded by `timeout`.
    ///
    /// - Returns: the node's status, whose `nodeID` is the configuration's.
    /// - Throws: ``Failure`` naming the configuration file, or the node and the transport's reason.
    public static func check(
        _ configuration: NodeConfiguration, timeout: Duration,
        logger: Logger = Logger(label: "quorumd.health")
    ) async throws(Failure) -> StatusResponse {
        guard configuration.listen.port != 0 else {
            throw Failure(
                .configuration,
                "\(configuration.file): listen: port 0 lets the node pick a free port, which the health check "
                    + "cannot know; give a fixed port")
        }
        var transport: TransportConfiguration
        do { transport = try configuration.transport() } catch { throw Failure(.configuration, error.description) }
        transport.connectTimeout = timeout
        transport.handshakeTimeout = timeout
        transport.defaultRequestDeadline = timeout
        let client: NodeClient
        do { client = try NodeClient(configuration: transport, logger: logger) } catch {
            throw Failure(.configuration, "\(configuration.file): \(error.peer): \(error.reason)")
        }
        let node = ClusterFile.Node(id: configuration.nodeID, address: probeAddress(for: configuration.listen))
        let entries = await ClusterStatus.query(ClusterFile(nodes: [node]), client: client, timeout: timeout)
        switch entries.first?.result {
        case .success(let status)?:
            return status
        case .failure(let error)?:
            throw Failure(.node, "node \(node.id) at \(node.address): \(error.code.rawValue): \(error.reason)")
        case nil:
            throw Failure(.node, "node \(node.id) at \(node.address): no answer")
        }
    }
}
