import Foundation
import QuorumNode
import QuorumPolicy
import QuorumTestKit
import Testing

@testable import QuorumProxy

/// The example production cluster in `cluster/` (cluster/README.md), read with the loaders the
/// processes use, so the documented files cannot rot: every node TOML through quorumd's
/// `NodeConfiguration`, the proxy's through `ProxyConfiguration`, `cluster.toml` through
/// `ClusterFile`, and the bundle through the bundle decoder and the policy engine. The loaders
/// resolve the certificate paths without opening them (the processes open them at start), so the
/// files need not exist here; the cross-file facts that would break a real deployment (peers,
/// operator keys, data directories against the systemd units) are checked instead.
@Suite("The example production cluster (cluster/)")
struct ClusterExampleTests {
    static let directory = TestKit.packageRoot.appendingPathComponent("cluster")

    static func path(_ relative: String) -> String { directory.appendingPathComponent(relative).path }

    static func text(_ relative: String) throws -> String {
        try String(contentsOfFile: path(relative), encoding: .utf8)
    }

    static func nodes() throws -> [NodeConfiguration] {
        try (1...4).map { id in try NodeConfiguration.load(path: path("nodes/node\(id).toml")) }
    }

    @Test("every node file loads, names its own id, and lists exactly the other nodes of cluster.toml")
    func nodeFiles() throws {
        let cluster = try ClusterFile.load(path: Self.path("cluster.toml"))
        #expect(cluster.nodes.map(\.id) == [1, 2, 3, 4])
        for (index, node) in try Self.nodes().enumerated() {
            let id = UInt16(index + 1)
            #expect(node.nodeID == id)
            #expect(node.listen == NodeAddress(host: "0.0.0.0", port: 7100))
            #expect(node.dataDirectory == "/var/lib/quorum/node-\(id)")
            #expect(node.certificatePath == "/etc/quorum/certs/node-\(id).pem")
            #expect(node.privateKeyPath == "/etc/quorum/certs/node-\(id).key")
            #expect(node.clusterCAPath == "/etc/quorum/certs/ca.pem")
            let others = cluster.nodes.filter { $0.id != id }
            #expect(node.peers.map(\.id) == others.map(\.id), "node \(id)'s peers")
            #expect(node.peers.map(\.address) == others.map(\.address), "node \(id)'s peer addresses")
            #expect(node.operatorKeys.count == 1)
            #expect(node.audit?.host == "0.0.0.0" && node.audit?.port == 7301, "node \(id) serves the audit API")
            #expect(node.telemetry.metricsListen == NodeAddress(host: "127.0.0.1", port: 9101))
        }
    }

    @Test("the proxy file loads with [cluster] and [tls], and trusts the nodes' operator key")
    func proxyFile() throws {
        let proxy = try ProxyConfiguration.load(path: Self.path("proxy.toml"))
        #expect(proxy.listen == NodeAddress(host: "127.0.0.1", port: 8080))
        #expect(proxy.dataDirectory == "/var/lib/quorum/proxy")
        #expect(proxy.bundlePath == nil, "the proxy fetches the bundle from the nodes")
        let cluster = try #require(proxy.cluster)
        #expect(cluster.nodesFile == "/etc/quorum/cluster.toml")
        #expect(cluster.certificate == "/etc/quorum/certs/proxy.pem")
        #expect(cluster.group == "/etc/quorum/group.json")
        #expect(cluster.effectiveSignerBudget < cluster.decisionTimeout / 2)
        #expect(proxy.tls?.listen == NodeAddress(host: "0.0.0.0", port: 8443))
        #expect(proxy.audit?.nodes == (1...4).map { "http://node\($0).quorum.example:7301" })
        #expect(proxy.telemetry.metricsListen == NodeAddress(host: "127.0.0.1", port: 9100))
        let nodeKeys = Set(try Self.nodes().flatMap(\.operatorKeys))
        #expect(nodeKeys.count == 1, "every node trusts the same operator key")
        #expect(Set(proxy.trustedSigners) == nodeKeys, "the proxy trusts the key the nodes trust")
    }

    @Test("the systemd units run the example files and write only their data directories")
    func systemdUnits() throws {
        let node = try Self.text("systemd/quorumd@.service")
        #expect(node.contains("ExecStart=/usr/local/bin/quorumd --config /etc/quorum/node-%i.toml\n"))
        #expect(node.contains("StateDirectory=quorum/node-%i\n"), "data_dir /var/lib/quorum/node-<i>")
        #expect(node.contains("ReadWritePaths=/var/lib/quorum/node-%i\n"))
        let proxy = try Self.text("systemd/quorum-proxy.service")
        #expect(proxy.contains("ExecStart=/usr/local/bin/quorum-proxy run --config /etc/quorum/proxy.toml\n"))
        #expect(proxy.contains("StateDirectory=quorum/proxy\n"))
        #expect(proxy.contains("ReadWritePaths=/var/lib/quorum/proxy\n"))
        for unit in [node, proxy] {
            for line in [
                "User=quorum", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "LimitNOFILE=65536",
                "Restart=on-failure", "KillSignal=SIGTERM", "RestartPreventExitStatus=2", "CapabilityBoundingSet=",
            ] {
                #expect(unit.contains("\n\(line)\n"), "missing \(line)")
            }
        }
    }

    @Test("the bundle decodes; its profile is revoked; a latch made like it allows, denies and redacts as documented")
    func bundle() throws {
        let bytes = Array(try Data(contentsOf: Self.directory.appendingPathComponent("bundle.yaml")))
        let bundle = try BundleDocument.decode(bytes, fileName: "bundle.yaml")
        let profile = try #require(bundle.latches.first { $0.id == "support-assistant" })
        #expect(profile.revoked)
        #expect(profile.mounts?.map(\.path) == ["/openai"])
        #expect(profile.mounts?.first?.secret == "openai")
        #expect(bundle.secrets["openai"] != nil)

        // What `quorumctl latch create --id support-bot --like support-assistant` adds.
        let token = LatchToken(latchID: "support-bot", randomBytes: [UInt8](repeating: 9, count: 32))
        let bot = Latch(
            id: "support-bot", tokenDigest: token.secretDigest, filters: profile.filters, mounts: profile.mounts)
        let engine = PolicyEngine(bundle: try bundle.upserting(bot))
        func chat(maxTokens: Int, client: String = "10.20.3.4", token: String = token.text) -> DecisionRequest {
            let body =
                #"{"model":"gpt-4o-mini","max_tokens":\#(maxTokens),"messages":[{"role":"user","content":"Hi"}]}"#
            return DecisionRequest(
                requestID: "r", method: "POST", target: "/openai/v1/chat/completions",
                headers: [HeaderField(name: "Content-Type", value: "application/json")], body: Array(body.utf8),
                clientAddress: client, token: token)
        }
        // A weekday at noon in Berlin.
        let noon = Date(timeIntervalSince1970: 1_795_518_000)
        let allowed = engine.evaluate(chat(maxTokens: 500), state: PolicyState(), at: noon)
        #expect(allowed.decision == .allow, "\(allowed.reason ?? "")")
        #expect(allowed.obligations.redact.map(\.description) == ["$.id"])
        #expect(allowed.obligations.trim.map(\.description) == ["$.system_fingerprint"])
        #expect(allowed.obligations.blockIf.count == 1)
        #expect(allowed.reservation != nil, "the chat budget reserves")

        let overCap = engine.evaluate(chat(maxTokens: 16_000), state: PolicyState(), at: noon)
        #expect(overCap.decision == .deny)
        #expect(overCap.reason?.hasPrefix("chat-rules: ") == true, "\(overCap.reason ?? "")")
        let outside = engine.evaluate(chat(maxTokens: 500, client: "192.0.2.1"), state: PolicyState(), at: noon)
        #expect(outside.reason?.hasPrefix("ip_allowlist#1") == true, "\(outside.reason ?? "")")
        // The profile's own id never authenticates: its digest is all zeros, and it is revoked.
        let profileToken = LatchToken(latchID: "support-assistant", randomBytes: [UInt8](repeating: 0, count: 32))
        let asProfile = engine.evaluate(chat(maxTokens: 500, token: profileToken.text), state: PolicyState(), at: noon)
        #expect(asProfile.decision == .deny)
    }
}
