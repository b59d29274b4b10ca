import Foundation
import QuorumTestKit
import Synchronization
import Testing

/// Three real `quorumd` processes on loopback with certificates from `quorumctl certs init`:
/// they find each other by heartbeats, `quorumctl status` and `quorumd health` show it, a stopped
/// node shows as unreachable and unhealthy (exit 1), and SIGTERM stops each cleanly (exit 0).
@Suite("quorumd and quorumctl status", .serialized, .timeLimit(.minutes(3)))
struct QuorumdStatusTests {
    static let quorumd = Daemon.executable

    @Test("3 nodes see each other; status and quorumd health show it; a stopped node is unreachable and unhealthy")
    func cluster() async throws {
        try #require(
            FileManager.default.isExecutableFile(atPath: Self.quorumd.path), "no quorumd at \(Self.quorumd.path)")
        try await Workspace.with { ws in
            let init_ = try await ws.quorumctl("certs", "init", "--nodes", "3", "--out", ws.path("certs"))
            try #require(init_.status == 0, "\(init_)")
            let ports = try TestCluster.freePorts(3)
            var cluster = ""
            for id in 1...3 {
                cluster += "[[nodes]]\nid = \(id)\naddress = \"127.0.0.1:\(ports[id - 1])\"\n\n"
                var config = """
                    node_id = \(id)
                    listen = "127.0.0.1:\(ports[id - 1])"
                    data_dir = "data-\(id)"

                    [tls]
                    certificate = "certs/node-\(id).pem"
                    private_key = "certs/node-\(id).key"
                    cluster_ca = "certs/ca.pem"

                    [membership]
                    heartbeat_interval_ms = 200
                    peer_timeout_ms = 1500

                    """
                for peer in 1...3 where peer != id {
                    config += "\n[[peers]]\nid = \(peer)\naddress = \"127.0.0.1:\(ports[peer - 1])\"\n"
                }
                try ws.write("node-\(id).toml", config)
            }
            try ws.write("cluster.toml", cluster)

            var daemons: [Daemon] = []
            defer {
                for daemon in daemons where daemon.isRunning { kill(daemon.child.process.processIdentifier, SIGKILL) }
            }
            for id in 1...3 {
                daemons.append(
                    try Daemon(
                        id: id, port: ports[id - 1],
                        arguments: ["--config", ws.path("node-\(id).toml"), "--ready-file", ws.path("ready-\(id)")]))
            }
            for daemon in daemons {
                let ready = await eventually(within: .seconds(30)) {
                    FileManager.default.fileExists(atPath: ws.path("ready-\(daemon.id)")) || !daemon.isRunning
                }
                try #require(ready && daemon.isRunning, "node \(daemon.id) did not start:\n\(daemon.stderr)")
                let port = String(decoding: try ws.read("ready-\(daemon.id)"), as: UTF8.self)
                #expect(port == "\(daemon.port)\n")
            }

            let status = ["status", "--cluster", ws.path("cluster.toml"), "--certs-dir", ws.path("certs")]
            var last: TestKit.ProcessOutput?
            let converged = try await eventually(within: .seconds(30)) {
                let result = try await ws.quorumctl(status)
                last = result
                guard result.status == 0 else { return false }
                let rows = result.stdoutLines.dropFirst()
                let seen = ["2,3", "1,3", "1,2"]
                return rows.count == 3
                    && zip(rows, seen).allSatisfy { row, peers in row.contains(" up ") && row.hasSuffix(peers) }
            }
            #expect(converged, "status never showed all three up and seeing each other:\n\(String(describing: last))")
            if let last {
                #expect(last.stdoutLines.first?.hasPrefix("NODE") == true)
                #expect(last.stdout.contains("127.0.0.1:\(ports[0])"))
                for row in last.stdoutLines.dropFirst() { #expect(row.contains("  no  "), "key present: \(row)") }
            }

            // `quorumd health` asks its own node with the node's certificate: healthy, exit 0.
            let health = try await TestKit.run(
                Self.quorumd, ["health", "--config", ws.path("node-1.toml")], timeout: .seconds(30))
            #expect(health.status == 0, "\(health)")
            #expect(health.stdout == "node 1: healthy; keys not yet installed, 2 of 2 peers up\n", "\(health)")

            // Node 3 stops: status reports it unreachable and exits 1; the others notice.
            let third = await daemons[2].terminate(within: .seconds(10))
            #expect(third == 0, "node 3:\n\(daemons[2].stderr)")
            let stopped = try await TestKit.run(
                Self.quorumd, ["health", "--config", ws.path("node-3.toml"), "--timeout", "2"], timeout: .seconds(30))
            #expect(stopped.status == 1, "\(stopped)")
            #expect(
                stopped.stderr.hasPrefix("quorumd: unhealthy: node 3 at 127.0.0.1:\(ports[2]): connect-failed"),
                "\(stopped)")
            let down = try await eventually(within: .seconds(15)) {
                let result = try await ws.quorumctl(status)
                last = result
                let rows = result.stdoutLines
                return result.status == 1 && rows.count == 4 && rows[3].contains("unreachable")
                    && rows[1].hasSuffix("2 (down: 3)") && rows[2].hasSuffix("1 (down: 3)")
                    && result.stderr.contains("node 3 at 127.0.0.1:\(ports[2]): connect-failed")
            }
            #expect(down, "status did not show node 3 down:\n\(String(describing: last))")

            for daemon in daemons.prefix(2) {
                let exit = await daemon.terminate(within: .seconds(10))
                #expect(exit == 0, "node \(daemon.id) exit \(String(describing: exit)):\n\(daemon.stderr)")
                #expect(daemon.stderr.contains("stopped"), "\(daemon.stderr)")
                #expect(!daemon.stderr.contains("BEGIN"), "a key in the log")
            }
        }
    }

    @Test("a node id that is not the certificate's (run and health), and status with a node certificate: exit 2")
    func refusals() async throws {
        try #require(
            FileManager.default.isExecutableFile(atPath: Self.quorumd.path), "no quorumd at \(Self.quorumd.path)")
        try await Workspace.with { ws in
            let init_ = try await ws.quorumctl("certs", "init", "--nodes", "2", "--out", ws.path("certs"))
            try #require(init_.status == 0, "\(init_)")
            try ws.write(
                "node.toml",
                """
                node_id = 2
                listen = "127.0.0.1:0"
                data_dir = "data"

                [tls]
                certificate = "certs/node-1.pem"
                private_key = "certs/node-1.key"
                cluster_ca = "certs/ca.pem"
                """)
            let daemon = try await TestKit.run(Self.quorumd, ["--config", ws.path("node.toml")], timeout: .seconds(30))
            #expect(daemon.status == 2, "\(daemon)")
            #expect(daemon.stderrLines.count == 1, "\(daemon)")
            #expect(
                daemon.stderr.hasPrefix("quorumd: error: \(ws.path("node.toml")): tls.certificate: "), "\(daemon)")
            #expect(daemon.stderr.contains("is the certificate of node 1, but node_id is 2"), "\(daemon)")
            // The health check cannot know a port the node picks, and refuses another node's
            // certificate as the node does: exit 2, before dialling anything.
            let anyPort = try await TestKit.run(
                Self.quorumd, ["health", "--config", ws.path("node.toml")], timeout: .seconds(30))
            #expect(anyPort.status == 2, "\(anyPort)")
            #expect(anyPort.stderr.contains("listen: port 0 lets the node pick a free port"), "\(anyPort)")
            try ws.write(
                "fixed.toml", String(decoding: try ws.read("node.toml"), as: UTF8.self).replacing(":0\"", with: ":1\""))
            let wrongCertificate = try await TestKit.run(
                Self.quorumd, ["health", "--config", ws.path("fixed.toml")], timeout: .seconds(30))
            #expect(wrongCertificate.status == 2, "\(wrongCertificate)")
            #expect(
                wrongCertificate.stderr.contains("is the certificate of node 1, but node_id is 2"),
                "\(wrongCertificate)")

            try ws.write("cluster.toml", "[[nodes]]\nid = 1\naddress = \"127.0.0.1:1\"\n")
            let status = try await ws.quorumctl(
                "status", "--cluster", ws.path("cluster.toml"), "--cert", ws.path("certs/node-2.pem"), "--key",
                ws.path("certs/node-2.key"), "--ca", ws.path("certs/ca.pem"))
            #expect(status.status == 2, "\(status)")
            #expect(isOneLineError(status), "\(status)")
            #expect(status.stderr.contains("status needs an operator certificate"), "\(status)")
        }
    }

    @Test(
        "a bad [metrics] table, [log] format or --log-format stops quorumd and quorum-proxy at start: one line naming it, exit 2"
    )
    func telemetryRefusals() async throws {
        try await Workspace.with { ws in
            let made = try await ws.quorumctl("certs", "init", "--nodes", "1", "--out", ws.path("certs"))
            try #require(made.status == 0, "\(made)")
            let node = """
                node_id = 1
                listen = "127.0.0.1:7311"
                data_dir = "data"

                [tls]
                certificate = "certs/node-1.pem"
                private_key = "certs/node-1.key"
                cluster_ca = "certs/ca.pem"

                """
            let cases: [(String, [String], String)] = [
                (node + "[metrics]\nlisten = \"127.0.0.1:7311\"\n", [], "metrics.listen: port 7311 is also listen"),
                (node + "[metrics]\nlisten = \"localhost\"\n", [], "metrics.listen: 'localhost' is not host:port"),
                (node + "[log]\nformat = \"xml\"\n", [], "log.format: 'xml' is not a log format"),
                (node, ["--log-format", "yaml"], "--log-format yaml: not a log format; use text or json"),
            ]
            for (text, flags, message) in cases {
                try ws.write("node.toml", text)
                let daemon = try await TestKit.run(
                    Self.quorumd, ["--config", ws.path("node.toml")] + flags, timeout: .seconds(30))
                #expect(daemon.status == 2, "\(daemon)")
                #expect(daemon.stderrLines.count == 1 && daemon.stderr.hasPrefix("quorumd: error: "), "\(daemon)")
                #expect(daemon.stderr.contains(message), "\(daemon)")
            }

            try ws.write(
                "proxy.toml",
                """
                listen = "127.0.0.1:7312"
                [bundle]
                file = "missing.json"
                trusted_signers = ["\(String(repeating: "ab", count: 32))"]
                [metrics]
                listen = "127.0.0.1:7312"
                """)
            for (flags, message) in [
                ([String](), "proxy.toml: metrics.listen: port 7312 is also listen (127.0.0.1:7312)"),
                (["--log-format", "xml"], "--log-format xml: not a log format"),
            ] {
                let proxy = try await TestKit.run(
                    ProxyQuorum.proxyBinary, ["run", "--config", ws.path("proxy.toml")] + flags, timeout: .seconds(30))
                #expect(proxy.status == 2, "\(proxy)")
                #expect(proxy.stderrLines.count == 1 && proxy.stderr.hasPrefix("quorum-proxy: error: "), "\(proxy)")
                #expect(proxy.stderr.contains(message), "\(proxy)")
            }
        }
    }
}
