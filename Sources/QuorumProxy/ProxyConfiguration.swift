import Foundation
import QuorumCrypto
import QuorumNode
import QuorumPolicy
import TOMLKit

/// A bad `quorum-proxy` configuration file: the file, the key at fault and what would be valid.
public struct ProxyConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The configuration file.
    public let file: String
    /// The key at fault, dotted (`upstream.read_timeout_ms`), or empty for the file as a whole.
    public let key: String
    /// What is wrong and what would be valid.
    public let reason: String

    /// An error about `key` in `file`.
    public init(file: String, key: String, _ reason: String) {
        self.file = file
        self.key = key
        self.reason = reason
    }

    init(_ error: NodeConfigurationError) {
        self.init(file: error.file, key: error.key, error.reason)
    }

    /// `FILE: KEY: reason`, one line.
    public var description: String {
        key.isEmpty ? "\(file): \(reason)" : "\(file): \(key): \(reason)"
    }
}

/// How the proxy talks to upstreams.
public struct UpstreamConfiguration: Sendable, Hashable {
    /// Longest wait for a TCP (and TLS) connection to an upstream.
    public var connectTimeout: Duration = .seconds(10)
    /// Longest wait from sending the request to the upstream's response head; past it the agent
    /// gets 504.
    public var responseTimeout: Duration = .seconds(120)
    /// Longest silence while reading the upstream's body (an idle timeout, not a total: a long
    /// stream that keeps sending is never cut by it).
    public var readTimeout: Duration = .seconds(300)

    /// Defaults: 10 s to connect, 120 s to the response head, 300 s of silence in a body.
    public init() {}
}

/// Bounds on what the front reads from an agent before asking the quorum.
public struct RequestLimits: Sendable, Hashable {
    /// Most body bytes sent to the nodes in the decision request. A longer body is described by
    /// its first bytes and its full length, so a `payload` rule cannot see it whole (it denies) and
    /// a `body_size` filter decides on the length.
    public var decisionBodyBytes = 1 << 20
    /// Most body bytes held while deciding a request whose length the agent did not declare
    /// (chunked): the front must know the length before it asks. Past it: 413, nothing asked.
    public var maxBufferedBodyBytes = 32 << 20

    /// Defaults: 1 MiB to the nodes, 32 MiB buffered.
    public init() {}
}

/// How the proxy reaches the quorum: the `[cluster]` table. With it, `quorum-proxy run` decides
/// with a ``QuorumAuthorizer``; without it, every call is 503.
public struct ClusterSettings: Sendable, Hashable {
    /// `cluster.toml`: the nodes' ids and addresses.
    public var nodesFile: String
    /// The proxy's certificate (role proxy), its private key, and the cluster CA.
    public var certificate: String
    public var privateKey: String
    public var clusterCA: String
    /// `group.json`: the signing group whose key receipts are verified under.
    public var group: String
    /// `sealing-group.json`: the group the proxy's credentials are sealed to.
    public var sealingGroup: String
    /// How long a call waits for its decision, signing included; past it, 503.
    public var decisionTimeout: Duration = .milliseconds(2000)
    /// How long the proxy waits for one chosen signer before it signs with other nodes that
    /// allowed: an optimistic signer that has not answered this long after the decide request went
    /// out, or a signer of a sign request round that has not sent its share, is given up for the
    /// call (and passed over as a chosen signer for a while). `nil` takes a third of
    /// ``decisionTimeout``, so the wait and one more sign request round both fit in the deadline.
    public var signerBudget: Duration?

    /// The per-signer budget in force: ``signerBudget``, or a third of the decision timeout.
    public var effectiveSignerBudget: Duration { signerBudget ?? decisionTimeout / 3 }

    /// Settings; the decision timeout defaults to 2 s.
    public init(
        nodesFile: String, certificate: String, privateKey: String, clusterCA: String, group: String,
        sealingGroup: String
    ) {
        self.nodesFile = nodesFile
        self.certificate = certificate
        self.privateKey = privateKey
        self.clusterCA = clusterCA
        self.group = group
        self.sealingGroup = sealingGroup
    }
}

/// Everything `quorum-proxy` needs to serve agents: where it listens, the routing view's source,
/// upstream timeouts and the front's limits.
///
/// The TOML file (docs/operations.md, "The proxy"):
///
/// ```toml
/// listen = "127.0.0.1:8080"
/// data_dir = "proxy-data"              # credentials/ (quorumctl secrets set) is read from here
///
/// [cluster]                            # optional: without it every call is 503
/// nodes = "cluster.toml"
/// certificate = "certs/proxy.pem"
/// private_key = "certs/proxy.key"
/// cluster_ca = "certs/ca.pem"
/// group = "group.json"
/// sealing_group = "sealing-group.json"
/// decision_timeout_ms = 2000
/// signer_budget_ms = 666                # default: a third of decision_timeout_ms
///
/// [tls]                                # optional: an HTTPS listener for agents, beside `listen`
/// listen = "0.0.0.0:8443"
/// certificate = "agent-tls/proxy.pem"  # PEM chain, leaf first
/// private_key = "agent-tls/proxy.key"  # PEM
///
/// [bundle]
/// file = "bundle.signed.json"          # a signed policy bundle; optional with [cluster], which
///                                      # fetches it from the nodes
/// trusted_signers = ["<64 hex>"]       # operator public keys it must be signed by
/// refresh_ms = 5000                    # with [cluster]: how often to ask the nodes for a newer one
///
/// [upstream]                           # optional
/// connect_timeout_ms = 10000
/// response_timeout_ms = 120000
/// read_timeout_ms = 300000
///
/// [limits]                             # optional
/// decision_body_bytes = 1048576
/// max_buffered_body_bytes = 33554432
///
/// [metrics]                            # optional: Prometheus GET /metrics on its own listener
/// listen = "127.0.0.1:9100"
///
/// [log]                                # optional: "text" (default) or "json"
/// format = "json"
///
/// [audit]                              # optional: forward GET /.well-known/quorum/audit/… to a node
/// nodes = ["http://127.0.0.1:7301", "http://127.0.0.1:7302"]   # audit API URLs, tried in order
/// timeout_ms = 5000                    # per node, to its response head
/// burst = 120                          # per client address
/// per_second = 20
/// ```
public struct ProxyConfiguration: Sendable {
    /// The file this was read from, for messages.
    public var file: String
    /// Where the agent-facing plain HTTP listener binds; port 0 asks for any free port.
    public var listen: NodeAddress
    /// The agent-facing HTTPS listener, if any: it asks every agent for a client certificate and
    /// passes its SHA-256 to the nodes, which sender-constrained latches (RFC 8705) require.
    public var tls: AgentTLSSettings?
    /// The signed policy bundle whose mounts route calls; `nil` with ``cluster``, when the proxy
    /// fetches the bundle from the nodes.
    public var bundlePath: String?
    /// Operator Ed25519 public keys (32 bytes each) the bundle must be signed by.
    public var trustedSigners: [[UInt8]]
    /// The proxy's data directory (sealed credentials in `credentials/`); required with ``cluster``.
    public var dataDirectory: String?
    /// How to reach the quorum; `nil` keeps the proxy at 503.
    public var cluster: ClusterSettings?
    /// With ``cluster``: how often the proxy asks the nodes for a newer signed bundle.
    public var bundleRefresh: Duration = .seconds(5)
    /// Upstream timeouts.
    public var upstream = UpstreamConfiguration()
    /// Request limits.
    public var limits = RequestLimits()
    /// Bounds on inspecting responses (QuorumPolicy's ``ResponseLimits``); not in the file yet.
    public var responseLimits = ResponseLimits.default
    /// The `[metrics]` listener and `[log]` format.
    public var telemetry = TelemetrySettings()
    /// The `[audit]` table: the nodes' audit APIs the proxy forwards to; `nil` forwards none.
    public var audit: AuditForwarding?

    /// A configuration.
    public init(file: String, listen: NodeAddress, bundlePath: String?, trustedSigners: [[UInt8]]) {
        self.file = file
        self.listen = listen
        self.bundlePath = bundlePath
        self.trustedSigners = trustedSigners
    }

    static let topKeys =
        ["listen", "data_dir", "cluster", "tls", "bundle", "upstream", "limits", "audit"] + TelemetrySettings.tables
    static let tlsKeys = ["listen", "certificate", "private_key"]
    static let bundleKeys = ["file", "trusted_signers", "refresh_ms"]
    static let clusterKeys = [
        "nodes", "certificate", "private_key", "cluster_ca", "group", "sealing_group", "decision_timeout_ms",
        "signer_budget_ms",
    ]
    static let upstreamKeys = ["connect_timeout_ms", "response_timeout_ms", "read_timeout_ms"]
    static let limitsKeys = ["decision_body_bytes", "max_buffered_body_bytes"]

    /// Reads and checks the configuration at `path`.
    public static func load(path: String) throws(ProxyConfigurationError) -> ProxyConfiguration {
        let contents: (text: String, base: String)
        do { contents = try TOMLFieldReader.contents(of: path) } catch { throw ProxyConfigurationError(error) }
        return try parse(contents.text, file: path, baseDirectory: contents.base)
    }

    /// Parses configuration `text` read from `file`, resolving relative paths against
    /// `baseDirectory`.
    public static func parse(
        _ text: String, file: String, baseDirectory: String
    ) throws(ProxyConfigurationError) -> ProxyConfiguration {
        do {
            return try parseFields(text, file: file, baseDirectory: baseDirectory)
        } catch {
            throw ProxyConfigurationError(error)
        }
    }

    private static func parseFields(
        _ text: String, file: String, baseDirectory: String
    ) throws(NodeConfigurationError) -> ProxyConfiguration {
        let table = try TOMLFieldReader.table(text, file: file)
        let reader = TOMLFieldReader(file: file, base: baseDirectory)
        try reader.refuseUnknown(table, allowed: topKeys, prefix: "")
        let listen = try reader.address(table["listen"], key: "listen", ports: 0...65535)

        guard let bundleValue = table["bundle"] else {
            throw reader.error(
                "bundle",
                "missing; a [bundle] table with trusted_signers (and file, unless [cluster] is set) is required")
        }
        guard let bundle = bundleValue.table else {
            throw reader.error("bundle", "is a \(bundleValue.type); it must be a table ([bundle])")
        }
        try reader.refuseUnknown(bundle, allowed: bundleKeys, prefix: "bundle.")
        var cluster: ClusterSettings?
        if let clusterValue = table["cluster"] {
            guard let clusterTable = clusterValue.table else {
                throw reader.error("cluster", "is a \(clusterValue.type); it must be a table ([cluster])")
            }
            try reader.refuseUnknown(clusterTable, allowed: clusterKeys, prefix: "cluster.")
            var settings = ClusterSettings(
                nodesFile: try reader.path(clusterTable["nodes"], key: "cluster.nodes"),
                certificate: try reader.path(clusterTable["certificate"], key: "cluster.certificate"),
                privateKey: try reader.path(clusterTable["private_key"], key: "cluster.private_key"),
                clusterCA: try reader.path(clusterTable["cluster_ca"], key: "cluster.cluster_ca"),
                group: try reader.path(clusterTable["group"], key: "cluster.group"),
                sealingGroup: try reader.path(clusterTable["sealing_group"], key: "cluster.sealing_group"))
            settings.decisionTimeout = .milliseconds(
                try reader.milliseconds(
                    clusterTable["decision_timeout_ms"], key: "cluster.decision_timeout_ms", default: 2000))
            if clusterTable["signer_budget_ms"] != nil {
                let budget = try reader.milliseconds(
                    clusterTable["signer_budget_ms"], key: "cluster.signer_budget_ms", default: 0)
                guard .milliseconds(budget) < settings.decisionTimeout else {
                    throw reader.error(
                        "cluster.signer_budget_ms",
                        "\(budget) is not below decision_timeout_ms (\(settings.decisionTimeout)); a signer given up "
                            + "at or after the deadline leaves no time to sign with another")
                }
                settings.signerBudget = .milliseconds(budget)
            }
            cluster = settings
        }
        var dataDirectory: String?
        if table["data_dir"] != nil {
            dataDirectory = try reader.path(table["data_dir"], key: "data_dir")
        } else if cluster != nil {
            throw reader.error(
                "data_dir", "missing; with [cluster] the proxy reads its sealed credentials from data_dir")
        }
        var bundlePath: String?
        if bundle["file"] != nil || cluster == nil {
            bundlePath = try reader.path(bundle["file"], key: "bundle.file")
        }
        guard let signersValue = bundle["trusted_signers"] else {
            throw reader.error(
                "bundle.trusted_signers",
                "missing; list the operator public keys (64 hex digits) the bundle is signed by")
        }
        guard let signers = signersValue.array, !signers.isEmpty else {
            throw reader.error(
                "bundle.trusted_signers", "must be a non-empty array of operator public keys (64 hex digits each)")
        }
        var trusted: [[UInt8]] = []
        for (index, element) in signers.enumerated() {
            let key = "bundle.trusted_signers[\(index + 1)]"
            guard let text = element.string, text.utf8.count == 64, let bytes = Hex.decode(text) else {
                throw reader.error(key, "is not an Ed25519 public key as 64 hex digits")
            }
            trusted.append(bytes)
        }

        var configuration = ProxyConfiguration(
            file: file, listen: listen, bundlePath: bundlePath, trustedSigners: trusted)
        configuration.cluster = cluster
        configuration.dataDirectory = dataDirectory
        if let tlsValue = table["tls"] {
            guard let tls = tlsValue.table else {
                throw reader.error("tls", "is a \(tlsValue.type); it must be a table ([tls])")
            }
            try reader.refuseUnknown(tls, allowed: tlsKeys, prefix: "tls.")
            configuration.tls = AgentTLSSettings(
                listen: try reader.address(tls["listen"], key: "tls.listen", ports: 0...65535),
                certificate: try reader.path(tls["certificate"], key: "tls.certificate"),
                privateKey: try reader.path(tls["private_key"], key: "tls.private_key"))
        }
        configuration.bundleRefresh = .milliseconds(
            try reader.milliseconds(bundle["refresh_ms"], key: "bundle.refresh_ms", default: 5000))
        if let upstreamValue = table["upstream"] {
            guard let upstream = upstreamValue.table else {
                throw reader.error("upstream", "is a \(upstreamValue.type); it must be a table ([upstream])")
            }
            try reader.refuseUnknown(upstream, allowed: upstreamKeys, prefix: "upstream.")
            configuration.upstream.connectTimeout = .milliseconds(
                try reader.milliseconds(
                    upstream["connect_timeout_ms"], key: "upstream.connect_timeout_ms", default: 10_000))
            configuration.upstream.responseTimeout = .milliseconds(
                try reader.milliseconds(
                    upstream["response_timeout_ms"], key: "upstream.response_timeout_ms", default: 120_000))
            configuration.upstream.readTimeout = .milliseconds(
                try reader.milliseconds(upstream["read_timeout_ms"], key: "upstream.read_timeout_ms", default: 300_000))
        }
        if let limitsValue = table["limits"] {
            guard let limits = limitsValue.table else {
                throw reader.error("limits", "is a \(limitsValue.type); it must be a table ([limits])")
            }
            try reader.refuseUnknown(limits, allowed: limitsKeys, prefix: "limits.")
            configuration.limits.decisionBodyBytes = try byteCount(
                limits["decision_body_bytes"], key: "limits.decision_body_bytes", default: 1 << 20, reader: reader)
            configuration.limits.maxBufferedBodyBytes = try byteCount(
                limits["max_buffered_body_bytes"], key: "limits.max_buffered_body_bytes", default: 32 << 20,
                reader: reader)
            guard configuration.limits.maxBufferedBodyBytes >= configuration.limits.decisionBodyBytes else {
                throw reader.error(
                    "limits.max_buffered_body_bytes",
                    "\(configuration.limits.maxBufferedBodyBytes) is below decision_body_bytes "
                        + "(\(configuration.limits.decisionBodyBytes)); it must be at least as large")
            }
        }
        configuration.telemetry = try reader.telemetry(
            table, listeners: [("listen", listen)] + (configuration.tls.map { [("tls.listen", $0.listen)] } ?? []))
        configuration.audit = try AuditForwarding.parse(table, reader: reader)
        return configuration
    }

    private static func byteCount(
        _ value: (any TOMLValueConvertible)?, key: String, default fallback: Int, reader: TOMLFieldReader
    ) throws(NodeConfigurationError) -> Int {
        guard let value else { return fallback }
        guard let number = value.int, (0...(1 << 30)).contains(number) else {
            throw reader.error(key, "\(value) is not a byte count 0-1073741824")
        }
        return number
    }
}
