import Foundation
import QuorumTestKit
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `quorumctl testnet up` and `down` as a user runs them: real quorumd, quorum-proxy and demo
/// upstream processes in the background, real mutual TLS, the real ceremony, real HTTP.
@Suite("quorumctl testnet", .serialized, .timeLimit(.minutes(4)))
struct TestnetCommandTests {
    static let services = ["proxy", "upstream", "node-1", "node-2", "node-3", "node-4"]

    /// The pid in `dir/run/NAME.pid`, if any.
    static func pid(_ dir: String, _ name: String) -> pid_t? {
        guard let text = try? String(contentsOfFile: "\(dir)/run/\(name).pid", encoding: .utf8) else { return nil }
        return pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static func isAlive(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        // A zombie has exited; only its parent has yet to collect it.
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        guard let close = stat.lastIndex(of: ")") else { return true }
        return !stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    /// curl, wherever PATH has it.
    static func curl() throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let found = path.split(separator: ":").map { "\($0)/curl" }.first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        return URL(fileURLWithPath: try #require(found, "no curl on PATH (scripts/install-deps.sh installs it)"))
    }

    /// The status code and headers (names lowercased) of `curl -i` output.
    static func head(_ output: String) -> (status: Int?, headers: [String: String]) {
        let lines = output.components(separatedBy: "\r\n")
        let status = lines.first.flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Int($0) }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        return (status, headers)
    }

    @Test("up serves a 200 with a valid receipt and a capped 403; up again refuses; down: all exit 0, data kept")
    func upThenDown() async throws {
        try await Workspace.with { ws in
            let dir = ws.path("net")
            var recorded: [pid_t] = []
            defer {
                // Whatever happened above, no process of this test outlives it.
                for pid in recorded where Self.isAlive(pid) { kill(pid, SIGKILL) }
            }
            let up = try await ws.quorumctl(
                ["testnet", "up", "--nodes", "4", "--threshold", "3", "--dir", dir], timeout: .seconds(150))
            recorded = Self.services.compactMap { Self.pid(dir, $0) }
            try #require(up.status == 0, "\(up)")

            // Every process runs, under its pid file, with its log.
            #expect(recorded.count == Self.services.count, "pid files: \(recorded)")
            for name in Self.services {
                let pid = try #require(Self.pid(dir, name), "no pid file for \(name)")
                #expect(Self.isAlive(pid), "\(name) (pid \(pid)) is not running")
                #expect(FileManager.default.fileExists(atPath: "\(dir)/\(name).log"), "no log for \(name)")
            }

            // The token is kept 0600 and printed once, in the summary and the two calls.
            let token = try String(contentsOfFile: "\(dir)/token", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(token.hasPrefix("lat_demo_"))
            #expect(try mode("\(dir)/token") == 0o600)
            #expect(try mode("\(dir)/upstream-api-key") == 0o600)
            let groupKey = try #require(
                (try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/group.json")))
                    as? [String: Any])?["group_public_key"] as? String)
            let proxyPort = try #require(
                Int(
                    try String(contentsOfFile: "\(dir)/run/proxy.ready", encoding: .utf8).trimmingCharacters(
                        in: .whitespacesAndNewlines)))
            #expect(up.stdout.contains("proxy:      http://127.0.0.1:\(proxyPort)"), "\(up.stdout)")
            #expect(up.stdout.contains("token:      \(token)"))
            #expect(up.stdout.contains("group key:  \(groupKey)"))
            let calls = up.stdoutLines.map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0.hasPrefix("curl ") }
            #expect(calls.count == 2, "\(up.stdout)")
            #expect(calls.first?.contains(#""max_tokens":50"#) == true)
            #expect(calls.last?.contains(#""max_tokens":4000"#) == true)
            #expect(calls.allSatisfy { $0.contains("Bearer \(token)") })
            // The upstream's key never reaches the output; only its sealed record is in the proxy's directory.
            let apiKey = try String(contentsOfFile: "\(dir)/upstream-api-key", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(!up.stdout.contains(apiKey) && !up.stderr.contains(apiKey))
            let sealed = try String(contentsOfFile: "\(dir)/proxy-data/credentials/openai.json", encoding: .utf8)
            #expect(!sealed.contains(apiKey))

            // status sees the four nodes, each with the ceremony's group key and the pushed bundle.
            let validate = try await ws.quorumctl("policy", "validate", "\(dir)/bundle.signed.json")
            let digest = try #require(
                validate.stdout.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) },
                "\(validate)")
            let status = try await ws.quorumctl(
                "status", "--cluster", "\(dir)/cluster.toml", "--certs-dir", "\(dir)/certs")
            #expect(status.status == 0, "\(status)")
            let rows = status.stdoutLines.dropFirst()
            #expect(rows.count == 4, "\(status)")
            for row in rows {
                #expect(row.contains(" up ") && row.contains(groupKey) && row.contains(digest), "\(row)")
            }

            // The proxy answers HTTP.
            let probe = try await TestKit.run(
                try Self.curl(), ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(proxyPort)/"],
                timeout: .seconds(20))
            #expect(probe.status == 0 && probe.stdout.count == 3 && probe.stdout != "000", "\(probe)")

            // The two printed calls, run as printed: the allowed one reaches the demo upstream with the
            // sealed key injected (it answers 401 without it) and carries a receipt the group key
            // verifies; the one over the token cap is denied by the quorum, naming the filter.
            let sh = URL(fileURLWithPath: "/bin/sh")
            let allowed = try await TestKit.run(sh, ["-c", try #require(calls.first)], timeout: .seconds(30))
            let allowedHead = Self.head(allowed.stdout)
            #expect(allowedHead.status == 200, "\(allowed)")
            #expect(allowed.stdout.contains("Echo: Hello from the testnet"), "\(allowed.stdout)")
            let receipt = try #require(allowedHead.headers["latch-receipt"], "no Latch-Receipt: \(allowed.stdout)")
            let verified = try await ws.quorumctl("receipt", "verify", receipt, "--group", "\(dir)/group.json")
            #expect(verified.status == 0, "\(verified)")
            #expect(verified.stdout.hasPrefix("valid: allow of request "), "\(verified.stdout)")
            let denied = try await TestKit.run(sh, ["-c", try #require(calls.last)], timeout: .seconds(30))
            #expect(Self.head(denied.stdout).status == 403, "\(denied)")
            #expect(denied.stdout.contains("token-cap"), "\(denied.stdout)")
            let denyReceipt = try #require(Self.head(denied.stdout).headers["latch-receipt"], "\(denied.stdout)")
            let denyVerified = try await ws.quorumctl(
                "receipt", "verify", denyReceipt, "--group", "\(dir)/group.json")
            #expect(denyVerified.status == 0, "\(denyVerified)")
            #expect(denyVerified.stdout.hasPrefix("valid: deny of request "), "\(denyVerified.stdout)")
            #expect(!allowed.stdout.contains(apiKey) && !denied.stdout.contains(apiKey))

            // up on a running testnet refuses, naming down, and leaves it running.
            let again = try await ws.quorumctl(["testnet", "up", "--dir", dir])
            #expect(again.status == 2, "\(again)")
            #expect(again.stderr.contains("a testnet is running in \(dir)"), "\(again.stderr)")
            #expect(again.stderr.contains("quorumctl testnet down --dir \(dir)"))
            #expect(recorded.allSatisfy(Self.isAlive))

            // down stops everything: SIGTERM, exit status 0 each, nothing left; the data stays.
            let down = try await ws.quorumctl(["testnet", "down", "--dir", dir])
            #expect(down.status == 0, "\(down)")
            for name in ["proxy", "demo upstream", "node 1", "node 2", "node 3", "node 4"] {
                #expect(
                    down.stdoutLines.contains {
                        $0.hasPrefix("\(name) (pid ") && $0.hasSuffix("stopped, exit status 0")
                    },
                    "\(name): \(down.stdout)")
            }
            #expect(down.stdout.contains("the data is kept in \(dir)"))
            for pid in recorded { #expect(!Self.isAlive(pid), "pid \(pid) still runs after down") }
            for name in Self.services {
                let exit = try String(contentsOfFile: "\(dir)/run/\(name).exit", encoding: .utf8)
                #expect(exit == "0\n", "\(name) exit status \(exit)")
                #expect(Self.pid(dir, name) == nil, "\(name)'s pid file is still there")
            }
            for kept in ["group.json", "bundle.signed.json", "data-1", "data-4", "proxy-data", "node-1.log", "token"] {
                #expect(FileManager.default.fileExists(atPath: "\(dir)/\(kept)"), "\(kept) was not kept")
            }

            // down again: nothing to stop, exit 0; up on the kept data refuses rather than mixing testnets.
            let downAgain = try await ws.quorumctl(["testnet", "down", "--dir", dir])
            #expect(downAgain.status == 0, "\(downAgain)")
            #expect(downAgain.stdout.contains("nothing to stop"))
            let upOnKept = try await ws.quorumctl(["testnet", "up", "--dir", dir])
            #expect(upOnKept.status == 2, "\(upOnKept)")
            #expect(upOnKept.stderr.contains("is not empty"), "\(upOnKept.stderr)")
        }
    }

    @Test("up refuses a node plan it cannot keep (--node-host count, name, twice; --node-launcher), and starts nothing")
    func badNodePlan() async throws {
        try await Workspace.with { ws in
            let dir = ws.path("net")
            let hosts = (1...4).flatMap { ["--node-host", "10.77.0.\($0)"] }
            let cases: [([String], String)] = [
                (["--node-host", "10.77.0.1"], "--node-host: given 1 times for 4 nodes"),
                (Array(hosts.dropLast(2)) + ["--node-host", "node4.example"], "expected an IP address"),
                (Array(hosts.dropLast(2)) + ["--node-host", "10.77.0.1"], "given for two nodes"),
                (hosts + ["--node-launcher", ws.path("no-such-launcher")], "not an executable file"),
            ]
            for (arguments, message) in cases {
                let up = try await ws.quorumctl(["testnet", "up", "--dir", dir] + arguments)
                #expect(up.status == 2, "\(arguments): \(up)")
                #expect(up.stderr.contains(message), "\(arguments): \(up.stderr)")
                #expect(!FileManager.default.fileExists(atPath: dir))
            }
        }
    }

    @Test("up refuses parameters that tolerate no faulty node, and starts nothing")
    func unsafeParameters() async throws {
        try await Workspace.with { ws in
            let dir = ws.path("net")
            let up = try await ws.quorumctl(["testnet", "up", "--nodes", "3", "--threshold", "2", "--dir", dir])
            #expect(up.status == 2, "\(up)")
            #expect(up.stderr.contains("tolerates no faulty node"), "\(up.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir))
        }
    }
}
