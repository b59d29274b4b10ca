import Foundation
import QuorumAudit
import QuorumCrypto
import QuorumIdentity
import TOMLKit

/// A bad `quorumd` configuration file: the file, the key at fault and what would be valid.
public struct NodeConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The configuration file.
    public let file: String
    /// The key at fault, dotted (`tls.certificate`, `peers[2].address`), or empty for the file as
    /// a whole.
    public let key: String
    /// What is wrong and what would be valid.
    public let reason: String

    /// An error about `key` in `file`.
    public init(file: String, key: String, _ reason: String) {
        self.file = file
        self.key = key
        self.reason = reason
    }

    /// `FILE: KEY: reason`, one line.
    public var description: String {
        key.isEmpty ? "\(file): \(reason)" : "\(file): \(key): \(reason)"
    }
}

/// A `host:port` address, with an IPv6 host in brackets (`[::1]:7100`).
public struct NodeAddress: Sendable, Hashable, CustomStringConvertible {
    /// The host name or address, without brackets.
    public let host: String
    /// The port.
    public let port: Int

    /// An address from its parts.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`; `ports` bounds the port (0 allowed only where a listener may ask for
    /// any free port).
    public static func parse(_ text: String, ports: ClosedRange<Int>) throws(Problem) -> NodeAddress {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw Problem("'\(text)' is not host:port; an IPv6 host goes in brackets, as [::1]:7100")
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else {
                throw Problem("'\(text)' is not host:port, as 127.0.0.1:7100 or [::1]:7100")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, !host.contains(where: \.isWhitespace) else {
            throw Problem("'\(text)' has no host; write host:port, as 127.0.0.1:7100")
        }
        guard let port = Int(portText), ports.contains(port) else {
            throw Problem("'\(text)' has port '\(portText)'; a port is \(ports.lowerBound)-\(ports.upperBound)")
        }
        return NodeAddress(host: String(host), port: port)
    }

    /// Why a text is not an address.
    public struct Problem: Error, Sendable, Hashable {
        /// What is wrong and what would be valid.
        public let reason: String

        init(_ reason: String) { self.reason = reason }
    }

    /// `host:port`, the host bracketed if it is IPv6.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// What `quorumd --config FILE` reads: who this node is, where it listens, its certificate
/// files, its data directory and its peers (STYLE.md 6: configuration is a value).
///
/// ```toml
/// node_id = 1
/// listen = "127.0.0.1:7101"
/// data_dir = "/var/lib/quorum/node-1"
///
/// [tls]
/// certificate = "certs/node-1.pem"
/// private_key = "certs/node-1.key"
/// cluster_ca = "certs/ca.pem"
///
/// [[peers]]
/// id = 2
/// address = "127.0.0.1:7102"
///
/// [metrics]                    # optional: Prometheus GET /metrics on its own listener
/// listen = "127.0.0.1:9101"
///
/// [log]                        # optional: "text" (default) or "json"
/// format = "json"
///
/// [audit]                      # optional: the read-only audit API (docs/auditing.md)
/// listen = "127.0.0.1:7301"
/// ```
///
/// Relative paths are relative to the directory of the configuration file. Unknown keys are
/// refused, so a misspelt key is an error rather than a silent default.
public struct NodeConfiguration: Sendable, Hashable {
    /// One peer node to send heartbeats to.
    public struct Peer: Sendable, Hashable {
        /// Its node id, which its certificate must carry.
        public var id: UInt16
        /// Where it listens.
        public var address: NodeAddress
    }

    /// The file this was read from, for messages.
    public var file: String
    /// This node's id; its certificate must carry the same.
    public var nodeID: UInt16
    /// Where the node RPC listener binds; port 0 asks for any free port.
    public var listen: NodeAddress
    /// The node's data directory.
    public var dataDirectory: String
    /// The node's certificate (PEM).
    public var certificatePath: String
    /// The certificate's private key (PKCS#8 PEM), read into zeroizing memory.
    public var privateKeyPath: String
    /// The cluster CA certificate (PEM).
    public var clusterCAPath: String
    /// The other nodes, ascending by id.
    public var peers: [Peer]
    /// How often heartbeats are sent.
    public var heartbeatInterval: Duration = .milliseconds(500)
    /// How long a peer may be silent before it counts as down.
    public var peerTimeout: Duration = .seconds(3)
    /// Connections the listener holds at once (``TransportConfiguration/maximumConnections``).
    public var maximumConnections = 256
    /// Requests one connection runs at once (``TransportConfiguration/maximumInFlightRequests``).
    public var maximumInFlightRequests = 64
    /// How long a connection with no frames stays open (``TransportConfiguration/idleTimeout``).
    public var idleTimeout: Duration = .seconds(120)
    /// The operators' bundle-signing public keys (32 bytes each): a pushed bundle is installed only
    /// if one of them signed it. Empty: the node accepts no bundle, so it decides nothing.
    public var operatorKeys: [[UInt8]] = []
    /// How far a proxy's stated request time may be from this node's clock before the node
    /// refuses to decide (``DecideRequest/time``).
    public var maximumClockSkew: Duration = .seconds(5)
    /// The `[metrics]` listener and `[log]` format.
    public var telemetry = TelemetrySettings()
    /// The `[audit]` listener of the read-only audit API; `nil` serves none.
    public var audit: AuditServerConfiguration?

    /// The replicated log's timings and bounds (`[replication]`).
    public var log = LogService.Configuration()
    static let topKeys =
        ["node_id", "listen", "data_dir", "tls", "peers", "membership", "transport", "policy", "audit", "replication"]
        + TelemetrySettings.tables
    static let replicationKeys = [
        "batch_interval_ms", "max_batch_entries", "max_pending", "failover_ms", "unlogged_after_ms",
    ]
    static let policyKeys = ["operator_keys", "max_clock_skew_ms"]
    static let tlsKeys = ["certificate", "private_key", "cluster_ca"]
    static let peerKeys = ["id", "address"]
    static let membershipKeys = ["heartbeat_interval_ms", "peer_timeout_ms"]
    static let transportKeys = ["max_connections", "max_in_flight_requests", "idle_timeout_ms"]

    /// Reads and checks the configuration at `path`.
    public static func load(path: String) throws(NodeConfigurationError) -> NodeConfiguration {
        let (text, base) = try TOMLFieldReader.contents(of: path)
        return try parse(text, file: path, baseDirectory: base)
    }

    /// Parses configuration `text` read from `file`, resolving relative paths against
    /// `baseDirectory`.
    public static func parse(
        _ text: String, file: String, baseDirectory: String
    ) throws(NodeConfigurationError) -> NodeConfiguration {
        let table = try TOMLFieldReader.table(text, file: file)
        let reader = TOMLFieldReader(file: file, base: baseDirectory)
        try reader.refuseUnknown(table, allowed: topKeys, prefix: "")

        let nodeID = try reader.nodeID(table["node_id"], key: "node_id")
        let listen = try reader.address(table["listen"], key: "listen", ports: 0...65535)
        let dataDirectory = try reader.path(table["data_dir"], key: "data_dir")

        guard let tlsValue = table["tls"] else {
            throw reader.error("tls", "missing; a [tls] table with certificate, private_key and cluster_ca is required")
        }
        guard let tls = tlsValue.table else {
            throw reader.error("tls", "is a \(tlsValue.type); it must be a table ([tls])")
        }
        try reader.refuseUnknown(tls, allowed: tlsKeys, prefix: "tls.")
        let certificate = try reader.path(tls["certificate"], key: "tls.certificate")
        let privateKey = try reader.path(tls["private_key"], key: "tls.private_key")
        let clusterCA = try reader.path(tls["cluster_ca"], key: "tls.cluster_ca")

        var peers: [Peer] = []
        if let peersValue = table["peers"] {
            guard let array = peersValue.array else {
                throw reader.error("peers", "is a \(peersValue.type); it must be an array of tables ([[peers]])")
            }
            for (index, element) in array.enumerated() {
                let prefix = "peers[\(index + 1)]"
                guard let peer = element.table else {
                    throw reader.error(prefix, "is a \(element.type); each peer is a table with id and address")
                }
                try reader.refuseUnknown(peer, allowed: peerKeys, prefix: prefix + ".")
                let id = try reader.nodeID(peer["id"], key: prefix + ".id")
                if id == nodeID {
                    throw reader.error(prefix + ".id", "\(id) is this node's own node_id; list only the other nodes")
                }
                if peers.contains(where: { $0.id == id }) {
                    throw reader.error(prefix + ".id", "node \(id) is listed twice; list each peer once")
                }
                let address = try reader.address(peer["address"], key: prefix + ".address", ports: 1...65535)
                peers.append(Peer(id: id, address: address))
            }
        }
        peers.sort { $0.id < $1.id }

        var configuration = NodeConfiguration(
            file: file, nodeID: nodeID, listen: listen, dataDirectory: dataDirectory, certificatePath: certificate,
            privateKeyPath: privateKey, clusterCAPath: clusterCA, peers: peers)
        if let membershipValue = table["membership"] {
            guard let membership = membershipValue.table else {
                throw reader.error("membership", "is a \(membershipValue.type); it must be a table ([membership])")
            }
            try reader.refuseUnknown(membership, allowed: membershipKeys, prefix: "membership.")
            let interval = try reader.milliseconds(
                membership["heartbeat_interval_ms"], key: "membership.heartbeat_interval_ms", default: 500)
            let timeout = try reader.milliseconds(
                membership["peer_timeout_ms"], key: "membership.peer_timeout_ms", default: 3000)
            guard timeout > interval else {
                throw reader.error(
                    "membership.peer_timeout_ms",
                    "\(timeout) is not longer than heartbeat_interval_ms (\(interval)); a peer would flap")
            }
            configuration.heartbeatInterval = .milliseconds(interval)
            configuration.peerTimeout = .milliseconds(timeout)
        }
        if let transportValue = table["transport"] {
            guard let transport = transportValue.table else {
                throw reader.error("transport", "is a \(transportValue.type); it must be a table ([transport])")
            }
            try reader.refuseUnknown(transport, allowed: transportKeys, prefix: "transport.")
            configuration.maximumConnections = try reader.count(
                transport["max_connections"], key: "transport.max_connections", default: 256)
            configuration.maximumInFlightRequests = try reader.count(
                transport["max_in_flight_requests"], key: "transport.max_in_flight_requests", default: 64)
            let idle = try reader.milliseconds(
                transport["idle_timeout_ms"], key: "transport.idle_timeout_ms", default: 120_000)
            guard Int64(idle) > Self.milliseconds(configuration.heartbeatInterval) else {
                throw reader.error(
                    "transport.idle_timeout_ms",
                    "\(idle) is not longer than membership.heartbeat_interval_ms; peers' connections would be closed")
            }
            configuration.idleTimeout = .milliseconds(idle)
        }
        if let policyValue = table["policy"] {
            guard let policy = policyValue.table else {
                throw reader.error("policy", "is a \(policyValue.type); it must be a table ([policy])")
            }
            try reader.refuseUnknown(policy, allowed: policyKeys, prefix: "policy.")
            if let keysValue = policy["operator_keys"] {
                guard let keys = keysValue.array else {
                    throw reader.error(
                        "policy.operator_keys", "is a \(keysValue.type); it is a list of hex Ed25519 public keys")
                }
                for (index, key) in keys.enumerated() {
                    guard let text = key.string, let bytes = Hex.decode(text), bytes.count == 32 else {
                        throw reader.error(
                            "policy.operator_keys[\(index)]",
                            "is not 64 hex digits; it is an operator's Ed25519 public key (`quorumctl policy keygen` prints it)"
                        )
                    }
                    configuration.operatorKeys.append(bytes)
                }
            }
            let skew = try reader.milliseconds(
                policy["max_clock_skew_ms"], key: "policy.max_clock_skew_ms", default: 5000)
            configuration.maximumClockSkew = .milliseconds(skew)
        }
        configuration.telemetry = try reader.telemetry(table, listeners: [("listen", listen)])
        configuration.audit = try reader.auditServer(
            table,
            listeners: [("listen", listen)]
                + (configuration.telemetry.metricsListen.map { [("metrics.listen", $0)] } ?? []))
        if let logValue = table["replication"] {
            guard let log = logValue.table else {
                throw reader.error("replication", "is a \(logValue.type); it must be a table ([replication])")
            }
            try reader.refuseUnknown(log, allowed: replicationKeys, prefix: "replication.")
            // The defaults are LogService.Configuration's own.
            var replication = configuration.log
            func milliseconds(_ key: String, _ current: Duration) throws(NodeConfigurationError) -> Duration {
                .milliseconds(
                    try reader.milliseconds(
                        log[key], key: "replication." + key, default: Int(current / .milliseconds(1))))
            }
            replication.batchInterval = try milliseconds("batch_interval_ms", replication.batchInterval)
            let entries = try reader.count(
                log["max_batch_entries"], key: "replication.max_batch_entries", default: replication.maximumBatchEntries
            )
            guard entries <= 4096 else {
                throw reader.error(
                    "replication.max_batch_entries", "\(entries) is above 4096, the most a batch carries")
            }
            replication.maximumBatchEntries = entries
            replication.maximumPending = try reader.count(
                log["max_pending"], key: "replication.max_pending", default: replication.maximumPending)
            replication.failoverAfter = try milliseconds("failover_ms", replication.failoverAfter)
            replication.unloggedAfter = try milliseconds("unlogged_after_ms", replication.unloggedAfter)
            configuration.log = replication
        }
        return configuration
    }

    /// Loads the certificate files into a transport configuration for the listen address, and
    /// checks that the certificate is this node's.
    public func transport() throws(NodeConfigurationError) -> TransportConfiguration {
        var transport: TransportConfiguration
        do {
            transport = try TransportConfiguration.make(
                certificatePath: certificatePath, privateKeyPath: privateKeyPath, clusterCAPath: clusterCAPath)
        } catch {
            throw NodeConfigurationError(file: file, key: "tls", "\(error.peer): \(error.reason)")
        }
        guard transport.identity.role == .node, transport.identity.nodeID == nodeID else {
            throw NodeConfigurationError(
                file: file, key: "tls.certificate",
                "\(certificatePath) is the certificate of \(transport.identity), but node_id is \(nodeID); "
                    + "give node \(nodeID)'s certificate (node-\(nodeID).pem) or fix node_id")
        }
        transport.listenHost = listen.host
        transport.listenPort = listen.port
        transport.maximumConnections = maximumConnections
        transport.maximumInFlightRequests = maximumInFlightRequests
        transport.idleTimeout = idleTimeout
        return transport
    }

}

/// Reads typed values out of a TOML tree, with errors naming the file and key. Shared by every
/// process's configuration (`quorumd`, `quorum-proxy`) so that they read and refuse values alike.
package struct TOMLFieldReader {
    package let file: String
    package let base: String

    /// A configuration file's text and the directory its relative paths are resolved against.
    package static func contents(of path: String) throws(NodeConfigurationError) -> (text: String, base: String) {
        do {
            return (
                try String(contentsOfFile: path, encoding: .utf8),
                URL(fileURLWithPath: path).deletingLastPathComponent().path
            )
        } catch {
            throw NodeConfigurationError(
                file: path, key: "", "cannot read the configuration file (\(error.localizedDescription))")
        }
    }

    /// The TOML table of configuration `text` from `file`; a syntax error names its line and column.
    package static func table(_ text: String, file: String) throws(NodeConfigurationError) -> TOMLTable {
        do {
            return try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw NodeConfigurationError(
                file: file, key: "",
                "not valid TOML at line \(error.source.begin.line), column \(error.source.begin.column): \(error.description)"
            )
        } catch {
            throw NodeConfigurationError(file: file, key: "", "not valid TOML (\(error))")
        }
    }

    /// A reader for `file`, resolving relative paths against `base`.
    package init(file: String, base: String) {
        self.file = file
        self.base = base
    }

    package func error(_ key: String, _ reason: String) -> NodeConfigurationError {
        NodeConfigurationError(file: file, key: key, reason)
    }

    package func refuseUnknown(_ table: TOMLTable, allowed: [String], prefix: String) throws(NodeConfigurationError) {
        for key in table.keys.sorted() where !allowed.contains(key) {
            throw error(prefix + key, "unknown key; valid keys here are \(allowed.joined(separator: ", "))")
        }
    }

    package func nodeID(_ value: (any TOMLValueConvertible)?, key: String) throws(NodeConfigurationError) -> UInt16 {
        guard let value else { throw error(key, "missing; a node id is an integer 1-65535") }
        guard let id = value.int else { throw error(key, "is a \(value.type); a node id is an integer 1-65535") }
        guard (1...65535).contains(id) else { throw error(key, "\(id) is out of range; a node id is 1-65535") }
        return UInt16(id)
    }

    package func string(
        _ value: (any TOMLValueConvertible)?, key: String, what: String
    ) throws(NodeConfigurationError)
        -> String
    {
        guard let value else { throw error(key, "missing; expected \(what)") }
        guard let text = value.string else { throw error(key, "is a \(value.type); expected \(what)") }
        guard !text.isEmpty else { throw error(key, "is empty; expected \(what)") }
        return text
    }

    package func address(
        _ value: (any TOMLValueConvertible)?, key: String, ports: ClosedRange<Int>
    ) throws(NodeConfigurationError) -> NodeAddress {
        let text = try string(value, key: key, what: "a \"host:port\" string, as \"127.0.0.1:7101\"")
        do { return try NodeAddress.parse(text, ports: ports) } catch let problem {
            throw error(key, problem.reason)
        }
    }

    package func path(_ value: (any TOMLValueConvertible)?, key: String) throws(NodeConfigurationError) -> String {
        let text = try string(value, key: key, what: "a path string (relative paths are from the config's directory)")
        if text.hasPrefix("/") { return text }
        return URL(fileURLWithPath: base).appendingPathComponent(text).standardizedFileURL.path
    }

    package func count(
        _ value: (any TOMLValueConvertible)?, key: String, default fallback: Int
    ) throws(NodeConfigurationError) -> Int {
        guard let value else { return fallback }
        guard let number = value.int, (1...100_000).contains(number) else {
            throw error(key, "\(value) is not a whole number 1-100000")
        }
        return number
    }

    package func milliseconds(
        _ value: (any TOMLValueConvertible)?, key: String, default fallback: Int
    ) throws(NodeConfigurationError) -> Int {
        guard let value else { return fallback }
        guard let number = value.int, (1...3_600_000).contains(number) else {
            throw error(key, "\(value) is not a whole number of milliseconds 1-3600000")
        }
        return number
    }
}

extension NodeConfiguration {
    /// A fresh ``Membership`` for this node and its peers, with a new random boot epoch.
    public func membership(identityKey: [UInt8]? = nil) -> Membership {
        Membership(
            nodeID: nodeID, peers: peers.map(\.id), intervalMilliseconds: Self.milliseconds(heartbeatInterval),
            timeoutMilliseconds: Self.milliseconds(peerTimeout), identityKey: identityKey)
    }

    /// The peers as ``MembershipService`` dials them.
    public var peerAddresses: [MembershipService.PeerAddress] {
        peers.map { MembershipService.PeerAddress(nodeID: $0.id, address: $0.address) }
    }

    /// Creates the data directory (0700) if it is missing.
    public func prepareDataDirectory() throws(NodeConfigurationError) {
        do {
            try FileManager.default.createDirectory(
                atPath: dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw NodeConfigurationError(
                file: file, key: "data_dir",
                "\(dataDirectory): cannot create the data directory (\(error.localizedDescription))")
        }
    }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
