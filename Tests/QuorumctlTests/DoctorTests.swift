import Foundation
import QuorumCrypto
import QuorumIdentity
import QuorumNode
import QuorumProtocol
import QuorumTestKit
import Testing

/// `quorumctl doctor` as a real process against a real cluster: four quorumd processes with
/// certificates from `certs init`, dealer keys and a pushed bundle. First every check passes;
/// then one thing at a time is broken, and the FAIL line must name the problem and its fix.
@Suite("quorumctl doctor", .serialized, .timeLimit(.minutes(6)))
struct DoctorTests {
    @Test("cluster and local checks: ok on a healthy cluster, then each break gives its FAIL line and fix")
    func doctor() async throws {
        try await DecidingCluster.with(
            nodes: 4, dealerThreshold: 3,
            beforeStart: { cluster in
                // Node 2 presents a certificate that expires in 10 days: the cluster check reads it
                // off the handshake and warns.
                let directory = CertificateDirectory(cluster.workspace.path("certs"))
                let ca = try CertificateFiles.readCA(in: directory)
                let issued = try ca.issue(LeafRequest(identity: .node(id: 2), validityDays: 10))
                try CertificateFiles.write(issued, prefix: directory.prefix(for: .node(id: 2)), force: true)
            }
        ) { deciding in
            let cluster = deciding.cluster
            let ws = cluster.workspace
            let group = ws.path("dealer/group.json")
            let signer = try Self.publicKey(ws.path("operator-key.json"))
            // A proxy holds commitments of every node's boot epoch, as a running proxy does.
            for node in deciding.nodes {
                _ = try await deciding.proxy.ask(
                    node, CommitmentsRequest(count: 4), expecting: CommitmentsResponse.self, deadline: .seconds(30))
            }
            let clusterDoctor = ["doctor"] + cluster.operatorArguments + ["--group", group, "--signer", signer]

            // Healthy: every node reachable, each check ok; node 2's certificate warns.
            let healthy = try await ws.quorumctl(clusterDoctor)
            #expect(healthy.status == 0, "\(healthy)")
            for id in 1...4 {
                for check in ["reach", "clock", "group_key", "bundle", "nonces", "peers", "log"] {
                    #expect(Self.line(healthy, "ok", "\(check) node \(id)") != nil, "no ok \(check) for node \(id)")
                }
            }
            #expect(Self.line(healthy, "ok", "bundle node 1")?.contains("version 1 sha256:") == true)
            #expect(Self.line(healthy, "ok", "bundle node 1")?.contains("a trusted operator key") == true)
            // At least the proxy's 4: the log's sequencer holds commitments of its checkpoint signers too.
            let nonces = Self.line(healthy, "ok", "nonces node 3") ?? ""
            let outstanding = nonces.components(separatedBy: " nonce commitments outstanding").first?
                .split(separator: " ").last.flatMap { Int($0) }
            #expect((outstanding ?? 0) >= 4, "\(nonces)")
            #expect(Self.line(healthy, "ok", "certificate node 1")?.contains("role node") == true)
            let expiring = try #require(Self.line(healthy, "warn", "certificate node 2"), "\(healthy)")
            #expect(expiring.contains("within 30 days"))
            #expect(expiring.contains("fix: renew it: quorumctl certs issue") && expiring.contains("--id 2"))
            #expect(Self.line(healthy, "ok", "quorum")?.contains("4 of 4 nodes") == true)
            #expect(Self.line(healthy, "ok", "bundle")?.contains("every answering node (4 of 4)") == true)
            #expect(Self.line(healthy, "ok", "log_agreement")?.contains("the 4 answering nodes' logs") == true)
            #expect(healthy.stdoutLines.last == "doctor: \(healthy.stdoutLines.count - 2) ok, 1 warn, 0 FAIL")

            // --json: the same findings for machines.
            let json = try await ws.quorumctl(clusterDoctor + ["--json"])
            #expect(json.status == 0, "\(json)")
            let document = try #require(
                try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            #expect(document["mode"] as? String == "cluster")
            #expect(document["fail"] as? Int == 0)
            #expect(document["warn"] as? Int == 1)
            let checks = try #require(document["checks"] as? [[String: Any]])
            let warned = checks.filter { $0["status"] as? String == "warn" }
            #expect(warned.first?["check"] as? String == "certificate" && warned.first?["node"] as? Int == 2)
            #expect((warned.first?["fix"] as? String)?.contains("certs issue") == true)

            // Local, beside a running node: it says so and leaves the store alone.
            let running = try await ws.quorumctl("doctor", "--config", ws.path("node-1.toml"), "--group", group)
            #expect(running.status == 0, "\(running)")
            let pid = cluster.daemons[1]!.child.process.processIdentifier
            #expect(Self.line(running, "ok", "process")?.contains("runs here as pid \(pid)") == true, "\(running)")
            let skipped = try #require(Self.line(running, "warn", "store"), "\(running)")
            #expect(skipped.contains("the node is running (pid \(pid) holds its lock)"))
            #expect(Self.line(running, "ok", "group")?.contains("matches \(group)") == true, "\(running)")

            // A wrong group.json: every node's group key FAILs, with the fix; nothing can sign.
            try await ws.keygen("other", threshold: 3, nodes: 4)
            let other = ws.path("other/group.json")
            let wrongGroup = try await ws.quorumctl(
                ["doctor"] + cluster.operatorArguments + ["--group", other, "--signer", signer])
            #expect(wrongGroup.status == 1, "\(wrongGroup)")
            for id in 1...4 {
                let line = try #require(Self.line(wrongGroup, "FAIL", "group_key node \(id)"), "\(wrongGroup)")
                #expect(line.contains("but \(other) has"))
                #expect(
                    line.contains("fix: if \(other) is this cluster's") && line.contains("keygen repair --node \(id)"))
            }
            #expect(Self.line(wrongGroup, "FAIL", "quorum")?.contains("0 of 4 nodes") == true, "\(wrongGroup)")

            // One node runs a newer bundle: the others agree, node 4 is named the odd one out.
            let newer = try await VerdictClusterTests.signed(ws, version: 2, key: "operator-key.json")
            let node4 = cluster.ports[3]
            try ws.write("node-4-only.toml", "[[nodes]]\nid = 4\naddress = \"127.0.0.1:\(node4)\"\n")
            let pushed = try await ws.quorumctl(
                "policy", "push", newer, "--cluster", ws.path("node-4-only.toml"), "--certs-dir", ws.path("certs"))
            try #require(pushed.status == 0, "\(pushed)")
            let split = try await ws.quorumctl(clusterDoctor)
            #expect(split.status == 1, "\(split)")
            #expect(Self.line(split, "ok", "bundle node 4")?.contains("version 2") == true, "\(split)")
            let odd = try #require(Self.line(split, "FAIL", "bundle"), "\(split)")
            #expect(odd.contains("nodes 1, 2, 3") && odd.contains("the odd one out is node 4"), "\(odd)")
            #expect(odd.contains("fix: push the bundle every node should run, version 2 or newer"))
            #expect(odd.contains("quorumctl policy push SIGNED-BUNDLE --cluster \(ws.path("cluster.toml"))"))

            // Node 4 down: unreachable, with the fix; the others miss it as a peer.
            let stopped = await cluster.daemons[4]!.terminate(within: .seconds(15))
            #expect(stopped == 0)
            let down = try await ws.quorumctl(clusterDoctor)
            #expect(down.status == 1, "\(down)")
            let unreachable = try #require(Self.line(down, "FAIL", "reach node 4"), "\(down)")
            #expect(unreachable.contains("127.0.0.1:\(node4): unreachable: connect-failed"))
            #expect(unreachable.contains("fix: start quorumd on node 4's host"))
            #expect(Self.line(down, "ok", "reach node 1") != nil)
            #expect(Self.line(down, "ok", "bundle node 4") == nil, "an unreachable node gets only its reach line")

            // Local on the stopped node: the store opens read-only, the port is free, all is ok.
            let local = ["doctor", "--config", ws.path("node-4.toml"), "--group", group]
            let stoppedNode = try await ws.quorumctl(local)
            #expect(stoppedNode.status == 0, "\(stoppedNode)")
            for check in [
                "config", "process", "tls.cluster_ca", "tls.certificate", "tls.private_key", "identity_key", "keys",
                "group", "store", "listen", "policy.operator_keys",
            ] {
                #expect(Self.line(stoppedNode, "ok", check) != nil, "no ok \(check):\n\(stoppedNode)")
            }
            #expect(
                Self.line(stoppedNode, "ok", "store")?.contains("opens read-only, format quorum-node-state 1") == true)
            #expect(Self.line(stoppedNode, "ok", "listen")?.contains("127.0.0.1:\(node4): free") == true)

            // A key file others can read.
            let key = ws.path("certs/node-4.key")
            chmod(key, 0o644)
            let open = try await ws.quorumctl(local)
            chmod(key, 0o600)
            #expect(open.status == 1, "\(open)")
            let wide = try #require(Self.line(open, "FAIL", "tls.private_key"), "\(open)")
            #expect(
                wide.contains("mode 0644 lets group or others read a secret key")
                    && wide.contains("fix: chmod 600 \(key)"))

            // A key share others can read.
            let share = ws.path("data-4/keys/signing-share.json")
            chmod(share, 0o644)
            let shared = try await ws.quorumctl(local)
            chmod(share, 0o600)
            #expect(shared.status == 1, "\(shared)")
            #expect(Self.line(shared, "FAIL", "keys")?.contains("fix: chmod 600 \(share)") == true, "\(shared)")

            // The proxy's certificate in a node's configuration: wrong role.
            let config = String(decoding: try ws.read("node-4.toml"), as: UTF8.self)
            try ws.write(
                "node-4-proxy-cert.toml",
                config.replacingOccurrences(of: "certs/node-4.pem", with: "certs/proxy.pem")
                    .replacingOccurrences(of: "certs/node-4.key", with: "certs/proxy.key"))
            let wrongRole = try await ws.quorumctl("doctor", "--config", ws.path("node-4-proxy-cert.toml"))
            #expect(wrongRole.status == 1, "\(wrongRole)")
            let role = try #require(Self.line(wrongRole, "FAIL", "tls.certificate"), "\(wrongRole)")
            #expect(role.contains("is the certificate of proxy, but") && role.contains("expects node 4"))
            #expect(role.contains("fix: give node 4's certificate (node-4.pem)"))

            // An expired certificate, from a CA made ten days ago with one-day leaves.
            try CertificateFiles.initialize(
                CertificateDirectory(ws.path("old-certs")),
                plan: ClusterCertificatesPlan(nodes: 4, leafValidityDays: 1, caValidityDays: 30), force: false,
                now: Date() - 10 * 86400)
            try ws.write(
                "node-4-expired.toml",
                config.replacingOccurrences(of: "certs/", with: "old-certs/"))
            let expired = try await ws.quorumctl("doctor", "--config", ws.path("node-4-expired.toml"))
            #expect(expired.status == 1, "\(expired)")
            let stale = try #require(Self.line(expired, "FAIL", "tls.certificate"), "\(expired)")
            #expect(stale.contains("expired at"), "\(stale)")
            #expect(
                stale.contains("fix: quorumctl certs issue --ca-dir") && stale.contains("--role node --id 4 --force"))

            // A configuration that does not parse names the file and line.
            try ws.write("broken.toml", "node_id = 1\nlisten = \"127.0.0.1:7101\nx")
            let broken = try await ws.quorumctl("doctor", "--config", ws.path("broken.toml"))
            #expect(broken.status == 1, "\(broken)")
            let parse = try #require(Self.line(broken, "FAIL", "config"), "\(broken)")
            #expect(parse.contains("\(ws.path("broken.toml")): not valid TOML at line 2"), "\(parse)")

            // A misspelt key: the configuration reader names the key, doctor adds its line.
            try ws.write(
                "node-4-typo.toml",
                config.replacingOccurrences(of: "heartbeat_interval_ms", with: "heartbeat_interval_msx"))
            let typo = try await ws.quorumctl("doctor", "--config", ws.path("node-4-typo.toml"))
            #expect(typo.status == 1, "\(typo)")
            let misspelt = try #require(Self.line(typo, "FAIL", "config"), "\(typo)")
            #expect(misspelt.contains("membership.heartbeat_interval_msx: unknown key"), "\(misspelt)")
            #expect(misspelt.contains("(\(ws.path("node-4-typo.toml")) line 11)"), "\(misspelt)")

            // The proxy's configuration: its certificate, groups and credentials directory.
            try ws.write(
                "proxy.toml",
                """
                listen = "127.0.0.1:0"
                data_dir = "proxy-data"

                [cluster]
                nodes = "cluster.toml"
                certificate = "certs/proxy.pem"
                private_key = "certs/proxy.key"
                cluster_ca = "certs/ca.pem"
                group = "dealer/group.json"
                sealing_group = "dealer/sealing-group.json"

                [bundle]
                trusted_signers = ["\(signer)"]
                """)
            let proxy = try await ws.quorumctl("doctor", "--config", ws.path("proxy.toml"), "--group", group)
            #expect(proxy.status == 0, "\(proxy)")
            #expect(Self.line(proxy, "ok", "cluster.certificate")?.contains("proxy, issued by the cluster CA") == true)
            #expect(Self.line(proxy, "ok", "cluster.group")?.contains("the same as \(group)") == true, "\(proxy)")

            // Bad usage is exit 2.
            let both = try await ws.quorumctl(
                ["doctor", "--config", ws.path("node-1.toml")] + cluster.operatorArguments)
            #expect(both.status == 2 && isOneLineError(both), "\(both)")
        }
    }

    /// The line of `result` for `check` (`reach node 4`, `tls.private_key`) with status `word`.
    static func line(_ result: TestKit.ProcessOutput, _ word: String, _ check: String) -> String? {
        // The check column is 22 wide: a shorter name is followed by at least two spaces, so
        // `bundle` does not match `bundle node 1`.
        let prefix = word.padding(toLength: 6, withPad: " ", startingAt: 0) + check + (check.count > 20 ? " " : "  ")
        return result.stdoutLines.first { $0.hasPrefix(prefix) }
    }

    /// The public key of an operator key file.
    static func publicKey(_ path: String) throws -> String {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
        return try #require((object as? [String: Any])?["public_key"] as? String)
    }
}
