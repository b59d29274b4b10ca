import Testing

@testable import QuorumNode

/// `quorumd`'s TOML configuration: a good file parses, and each bad one is refused naming the
/// file, the key and what would be valid.
@Suite struct NodeConfigurationTests {
    static let good = """
        node_id = 1
        listen = "127.0.0.1:7101"
        data_dir = "data/node-1"

        [tls]
        certificate = "certs/node-1.pem"
        private_key = "certs/node-1.key"
        cluster_ca = "/etc/quorum/ca.pem"

        [[peers]]
        id = 3
        address = "127.0.0.1:7103"

        [[peers]]
        id = 2
        address = "[::1]:7102"
        """

    func parse(_ text: String) throws(NodeConfigurationError) -> NodeConfiguration {
        try NodeConfiguration.parse(text, file: "node.toml", baseDirectory: "/srv/quorum")
    }

    func refusal(_ text: String) -> NodeConfigurationError? {
        do {
            _ = try parse(text)
            return nil
        } catch {
            return error
        }
    }

    @Test("a complete file: paths resolved from the file's directory, peers sorted")
    func good() throws {
        let config = try parse(Self.good)
        #expect(config.nodeID == 1)
        #expect(config.listen == NodeAddress(host: "127.0.0.1", port: 7101))
        #expect(config.dataDirectory == "/srv/quorum/data/node-1")
        #expect(config.certificatePath == "/srv/quorum/certs/node-1.pem")
        #expect(config.privateKeyPath == "/srv/quorum/certs/node-1.key")
        #expect(config.clusterCAPath == "/etc/quorum/ca.pem")
        #expect(config.peers.map(\.id) == [2, 3])
        #expect(config.peers[0].address == NodeAddress(host: "::1", port: 7102))
        #expect(config.heartbeatInterval == .milliseconds(500))
        #expect(config.peerTimeout == .seconds(3))
    }

    @Test("membership timings are optional and checked")
    func timings() throws {
        let config = try parse(Self.good + "\n[membership]\nheartbeat_interval_ms = 100\npeer_timeout_ms = 900\n")
        #expect(config.heartbeatInterval == .milliseconds(100))
        #expect(config.peerTimeout == .milliseconds(900))
        let flapping = refusal(Self.good + "\n[membership]\nheartbeat_interval_ms = 1000\npeer_timeout_ms = 900\n")
        #expect(flapping?.key == "membership.peer_timeout_ms")
    }

    @Test("policy: operator keys are hex Ed25519 keys, the clock skew optional")
    func policySection() throws {
        #expect(try parse(Self.good).operatorKeys.isEmpty)
        let key = String(repeating: "ab", count: 32)
        let configured = try parse(Self.good + "\n[policy]\noperator_keys = [\"\(key)\"]\nmax_clock_skew_ms = 2000\n")
        #expect(configured.operatorKeys == [Array(repeating: 0xAB, count: 32)])
        #expect(configured.maximumClockSkew == .milliseconds(2000))
        let short = refusal(Self.good + "\n[policy]\noperator_keys = [\"abcd\"]\n")
        #expect(short?.key == "policy.operator_keys[0]")
        #expect(short?.reason.contains("64 hex digits") == true)
        let notList = refusal(Self.good + "\n[policy]\noperator_keys = \"\(key)\"\n")
        #expect(notList?.key == "policy.operator_keys")
        let unknown = refusal(Self.good + "\n[policy]\noperators = []\n")
        #expect(unknown?.key == "policy.operators")
    }

    @Test("transport limits are optional and checked")
    func transportLimits() throws {
        let defaults = try parse(Self.good)
        #expect(defaults.maximumConnections == 256)
        #expect(defaults.maximumInFlightRequests == 64)
        #expect(defaults.idleTimeout == .seconds(120))
        let config = try parse(
            Self.good + "\n[transport]\nmax_connections = 8\nmax_in_flight_requests = 4\nidle_timeout_ms = 30000\n")
        #expect(config.maximumConnections == 8)
        #expect(config.maximumInFlightRequests == 4)
        #expect(config.idleTimeout == .seconds(30))
        let none = refusal(Self.good + "\n[transport]\nmax_connections = 0\n")
        #expect(none?.key == "transport.max_connections")
        #expect(none?.description.contains("1-100000") == true)
        let belowHeartbeat = refusal(Self.good + "\n[transport]\nidle_timeout_ms = 400\n")
        #expect(belowHeartbeat?.key == "transport.idle_timeout_ms")
        let unknown = refusal(Self.good + "\n[transport]\nidle_timeout = 3\n")
        #expect(unknown?.key == "transport.idle_timeout")
    }

    @Test(
        "each bad file names the key and what is valid",
        arguments: [
            ("node_id = 1", "node_id = 0", "node_id", "1-65535"),
            ("node_id = 1", "node_id = \"one\"", "node_id", "integer 1-65535"),
            ("node_id = 1\n", "", "node_id", "missing"),
            ("listen = \"127.0.0.1:7101\"", "listen = \"127.0.0.1\"", "listen", "host:port"),
            ("listen = \"127.0.0.1:7101\"", "listen = \"127.0.0.1:70000\"", "listen", "0-65535"),
            ("data_dir = \"data/node-1\"", "data_dir = \"\"", "data_dir", "is empty"),
            ("private_key = \"certs/node-1.key\"", "", "tls.private_key", "missing"),
            ("cluster_ca = \"/etc/quorum/ca.pem\"", "cluster_ca = 3", "tls.cluster_ca", "path string"),
            ("id = 3", "id = 1", "peers[1].id", "own node_id"),
            ("id = 3", "id = 2", "peers[2].id", "listed twice"),
            ("address = \"127.0.0.1:7103\"", "address = \"127.0.0.1:0\"", "peers[1].address", "1-65535"),
            ("data_dir", "datadir", "datadir", "valid keys here are node_id, listen, data_dir"),
            ("id = 3", "id = 3\nhost = \"x\"", "peers[1].host", "valid keys here are id, address"),
        ])
    func refused(replacing: String, with: String, key: String, hint: String) throws {
        let text = Self.good.replacingOccurrences(of: replacing, with: with)
        let error = try #require(refusal(text), "accepted: \(text)")
        #expect(error.file == "node.toml")
        #expect(error.key == key, "\(error)")
        #expect(error.description.contains(hint), "\(error)")
        #expect(error.description.hasPrefix("node.toml: \(key): "), "\(error)")
    }

    @Test("[metrics] and [log] are optional: no listener and no format by default")
    func telemetryDefaults() throws {
        let plain = try parse(Self.good)
        #expect(plain.telemetry.metricsListen == nil)
        #expect(plain.telemetry.logFormat == nil)
        let configured = try parse(
            Self.good.replacingOccurrences(
                of: "[[peers]]\nid = 3",
                with: """
                    [metrics]
                    listen = "127.0.0.1:9101"

                    [log]
                    format = "json"

                    [[peers]]
                    id = 3
                    """))
        #expect(configured.telemetry.metricsListen == NodeAddress(host: "127.0.0.1", port: 9101))
        #expect(configured.telemetry.logFormat == .json)
    }

    @Test(
        "a bad [metrics] or [log] table names the key and what is valid",
        arguments: [
            ("[metrics]\nlisten = \"127.0.0.1\"", "metrics.listen", "host:port"),
            ("[metrics]\nlisten = \"127.0.0.1:0\"", "metrics.listen", "1-65535"),
            ("[metrics]\nlisten = \"127.0.0.1:7101\"", "metrics.listen", "is also listen (127.0.0.1:7101)"),
            ("[metrics]\nport = 9101", "metrics.port", "valid keys here are listen"),
            ("[metrics]\n", "metrics.listen", "missing; give the Prometheus listener's"),
            ("metrics = \"127.0.0.1:9101\"", "metrics", "must be a table ([metrics])"),
            ("[log]\nformat = \"yaml\"", "log.format", "'yaml' is not a log format; expected \"text\" or \"json\""),
            ("[log]\nformat = 1", "log.format", "expected \"text\" or \"json\""),
            ("[log]\nlevel = \"debug\"", "log.level", "valid keys here are format"),
        ])
    func telemetryRefused(table: String, key: String, hint: String) throws {
        try expectRefused(table, key: key, hint: hint)
    }

    /// `table` added to a good configuration (a top-level key before the first table) is refused,
    /// naming `key`, with `hint` in the message.
    func expectRefused(_ table: String, key: String, hint: String) throws {
        let text =
            table.hasPrefix("[")
            ? Self.good + "\n" + table + "\n" : Self.good.replacingOccurrences(of: "[tls]", with: table + "\n\n[tls]")
        let error = try #require(refusal(text), "accepted: \(text)")
        #expect(error.key == key, "\(error)")
        #expect(error.description.contains(hint), "\(error)")
    }

    @Test("[audit] is optional: no audit API by default; with it, its listener and per-client limits")
    func auditTable() throws {
        #expect(try parse(Self.good).audit == nil)
        let configured = try parse(Self.good + "\n[audit]\nlisten = \"127.0.0.1:7301\"\nburst = 30\nper_second = 5\n")
        let audit = try #require(configured.audit)
        #expect(audit.host == "127.0.0.1" && audit.port == 7301)
        #expect(audit.limits.burst == 30 && audit.limits.refillPerSecond == 5)
        let defaults = try #require(try parse(Self.good + "\n[audit]\nlisten = \"[::1]:0\"\n").audit)
        #expect(defaults.host == "::1" && defaults.port == 0 && defaults.limits.burst == 120)
    }

    @Test(
        "a bad [audit] table names the key and what is valid",
        arguments: [
            ("[audit]\n", "audit.listen", "missing; give the audit API's"),
            ("[audit]\nlisten = \"localhost\"", "audit.listen", "host:port"),
            ("[audit]\nlisten = \"127.0.0.1:7101\"", "audit.listen", "is also listen (127.0.0.1:7101)"),
            ("[audit]\nlisten = \"127.0.0.1:7301\"\nburst = 0", "audit.burst", "1-100000"),
            ("[audit]\nlisten = \"127.0.0.1:7301\"\nnodes = []", "audit.nodes", "valid keys here are"),
            ("audit = true", "audit", "must be a table ([audit])"),
        ])
    func auditRefused(table: String, key: String, hint: String) throws {
        try expectRefused(table, key: key, hint: hint)
    }

    @Test("[replication] is optional: the defaults without it; with it, each timing and limit it sets")
    func replicationTable() throws {
        let defaults = try parse(Self.good).log
        #expect(defaults.batchInterval == .milliseconds(100) && defaults.maximumBatchEntries == 1024)
        #expect(defaults.maximumPending == 100_000 && defaults.failoverAfter == .seconds(5))
        #expect(defaults.unloggedAfter == .seconds(60))
        let configured = try parse(
            Self.good
                + "\n[replication]\nbatch_interval_ms = 20\nmax_batch_entries = 4096\nmax_pending = 500\n"
                + "failover_ms = 1500\nunlogged_after_ms = 2000\n"
        ).log
        #expect(configured.batchInterval == .milliseconds(20) && configured.maximumBatchEntries == 4096)
        #expect(configured.maximumPending == 500 && configured.failoverAfter == .milliseconds(1500))
        #expect(configured.unloggedAfter == .seconds(2))
    }

    @Test(
        "a bad [replication] table names the key and what is valid",
        arguments: [
            ("[replication]\nmax_batch_entries = 5000", "replication.max_batch_entries", "above 4096"),
            ("[replication]\nunlogged_after_ms = 0", "replication.unlogged_after_ms", "milliseconds 1-3600000"),
            ("[replication]\nfailover_ms = \"5s\"", "replication.failover_ms", "milliseconds"),
            ("[replication]\nbatch_ms = 100", "replication.batch_ms", "valid keys here are"),
            ("replication = 1", "replication", "must be a table ([replication])"),
        ])
    func replicationRefused(table: String, key: String, hint: String) throws {
        try expectRefused(table, key: key, hint: hint)
    }

    @Test("not TOML at all: the line is named")
    func syntax() {
        let error = refusal("node_id = = 1")
        #expect(error?.key == "")
        #expect(
            error?.description.hasPrefix("node.toml: not valid TOML at line 1") == true, "\(String(describing: error))")
    }

    @Test("a missing file is named")
    func missing() {
        #expect(throws: NodeConfigurationError.self) { try NodeConfiguration.load(path: "/nonexistent/node.toml") }
    }

    @Test("cluster files: nodes sorted, duplicates and unknown keys refused")
    func clusterFile() throws {
        let cluster = try ClusterFile.parse(
            "[[nodes]]\nid = 2\naddress = \"127.0.0.1:2\"\n[[nodes]]\nid = 1\naddress = \"localhost:1\"\n",
            file: "c.toml")
        #expect(cluster.nodes.map(\.id) == [1, 2])
        #expect(throws: NodeConfigurationError.self) {
            try ClusterFile.parse(
                "[[nodes]]\nid = 1\naddress = \"a:1\"\n[[nodes]]\nid = 1\naddress = \"b:1\"\n", file: "c")
        }
        #expect(throws: NodeConfigurationError.self) { try ClusterFile.parse("peers = 1", file: "c") }
    }
}
