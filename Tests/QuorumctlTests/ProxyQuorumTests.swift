import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import QuorumCrypto
import QuorumProtocol
import QuorumTestKit
import Testing

/// `assistant` as ProxyClusterTests has it, and `metered`, whose calls reserve 0.01 each
/// against 0.05 a day: five calls' worth.
func sharedQuorumBundle(upstreamPort: Int) -> String {
    let metered = Hex.encode(sha256Digest(Array(String(repeating: "m", count: 43).utf8)))
    return """
        format: quorum-latch/bundle/v1
        version: 1
        secrets:
          - name: openai
            inject: bearer
        latches:
          - id: assistant
            token_sha256: dc4bf80c77473d130fa0de86ba4018fe98bb214005e6a5891d12ba91446f9e81
            mounts:
              - path: /openai
                upstream: http://127.0.0.1:\(upstreamPort)
                secret: openai
                filters:
                  - method: [GET, POST]
                  - endpoint:
                      allow: [/v1/chat/completions, /v1/models]
          - id: metered
            token_sha256: \(metered)
            mounts:
              - path: /openai
                upstream: http://127.0.0.1:\(upstreamPort)
                secret: openai
                filters:
                  - method: [POST]
                  - id: daily
                    budget: {day: 0.05, cost: {per_request: 0.01}}

        """
}

/// The rest of issue 6's end-to-end cases, on one quorum started for the whole suite (four real
/// quorumd, the demo upstream and quorum-proxy with its HTTP and HTTPS listeners, as
/// ``ProxyQuorum`` sets them up). Each test leaves the quorum as it found it: every node running
/// and answering, every node on one honest bundle.
@Suite(
    "quorum-proxy on a shared quorum: sender constraints, Server-Timing, a hung signer, a permissive node, budgets, revocation, /self, metrics and JSON logs",
    .serialized, .timeLimit(.minutes(5)),
    ProxyQuorum.Shared(bundle: { sharedQuorumBundle(upstreamPort: $0) }, telemetry: true)
)
struct ProxyQuorumTests {
    /// The `metered` latch's token: any 43 base64url characters make a secret.
    static let meteredToken = "lat_metered_" + String(repeating: "m", count: 43)
    static let chat = ProxyClusterTests.chat

    /// A bundle under which `assistant` may call anything on its mount: what a node that allows
    /// everything runs.
    static func allowAll(version: Int, upstreamPort: Int) -> String {
        """
        format: quorum-latch/bundle/v1
        version: \(version)
        secrets:
          - name: openai
            inject: bearer
        latches:
          - id: assistant
            token_sha256: dc4bf80c77473d130fa0de86ba4018fe98bb214005e6a5891d12ba91446f9e81
            mounts:
              - path: /openai
                upstream: http://127.0.0.1:\(upstreamPort)
                secret: openai

        """
    }

    var quorum: ProxyQuorum {
        get throws { try #require(ProxyQuorum.shared, "no shared quorum: the suite's trait did not start one") }
    }

    /// Runs `body` with `clients` and shuts them down whatever happens.
    func using(_ clients: [HTTPClient], _ body: () async throws -> Void) async throws {
        do { try await body() } catch {
            for client in clients { try? await client.shutdown() }
            throw error
        }
        for client in clients { try await client.shutdown() }
    }

    @Test(
        "a latch bound to a client certificate (RFC 8705) is allowed over TLS with it, and denied (403, sender-constraint) without one, with another, and over plain HTTP"
    )
    func senderConstrained() async throws {
        let quorum = try quorum
        for name in ["agent", "intruder"] {
            let issued = try await quorum.workspace.quorumctl(
                "certs", "issue", "--ca-dir", quorum.workspace.path("certs"), "--role", "operator", "--name", name,
                "--out-prefix", quorum.workspace.path(name))
            try #require(issued.status == 0, "\(issued)")
        }
        let token = try await quorum.latch(
            "create", "--id", "bound", "--like", "assistant", "--client-certificate", quorum.workspace.path("agent.pem")
        )
        try await quorum.publish()
        let agent = try quorum.tlsClient(presenting: "agent")
        let intruder = try quorum.tlsClient(presenting: "intruder")
        let anonymous = try quorum.tlsClient(presenting: nil)
        try await using([agent, intruder, anonymous]) {
            let allowed = try await quorum.callUntil(
                .POST, "/openai/v1/chat/completions", body: Self.chat, token: token, client: agent,
                base: quorum.tlsURL
            ) { $0.status == 200 }
            #expect(allowed.status == 200, "\(allowed.body)")
            #expect(allowed.body.contains("Echo: hello there"), "the credential was injected over the TLS listener")
            let receipt = try Receipt.verified(try #require(allowed.receipt), groupKey: quorum.groupKey)
            #expect(receipt.claims.latch == "bound" && receipt.claims.decision == .allow)

            let refusals: [(String, HTTPClient, String)] = [
                ("no client certificate", anonymous, quorum.tlsURL),
                ("another client certificate", intruder, quorum.tlsURL),
                ("plain HTTP", quorum.client, quorum.url),
            ]
            for (label, client, base) in refusals {
                let denied = try await quorum.call(
                    .POST, "/openai/v1/chat/completions", body: Self.chat, token: token, client: client, base: base)
                #expect(denied.status == 403, "\(label): \(denied.body)")
                #expect(
                    denied.reasons.count >= 3 && denied.reasons.allSatisfy { $0.contains("deny sender-constraint") },
                    "\(label): \(denied.reasons)")
                if label == "another client certificate" {
                    #expect(denied.body.contains("is not the one latch 'bound' is bound to"), "\(denied.body)")
                }
            }

            // The TLS listener serves agents without a certificate, and latches without a binding.
            let unbound = try await quorum.call(.GET, "/openai/v1/models", client: anonymous, base: quorum.tlsURL)
            #expect(unbound.status == 200, "\(unbound.body)")
        }
    }

    @Test(
        "every answer after asking the quorum has Server-Timing: verdict, signing, credential, upstream and total on an allow; quorumctl bench proxy prints their means"
    )
    func serverTiming() async throws {
        let quorum = try quorum
        let allowed = try await quorum.call(.POST, "/openai/v1/chat/completions", body: Self.chat)
        #expect(allowed.status == 200, "\(allowed.body)")
        let phases = allowed.timings
        #expect(
            Array((allowed.serverTiming ?? "").split(separator: ",").map { $0.split(separator: ";")[0] })
                .map { $0.trimmingCharacters(in: .whitespaces) }
                == ["verdict", "signing", "credential", "upstream", "total"],
            "\(allowed.serverTiming ?? "no Server-Timing")")
        let parts = ["verdict", "signing", "credential", "upstream"].compactMap { phases[$0] }
        #expect(parts.count == 4 && parts.allSatisfy { $0 >= 0 })
        let total = try #require(phases["total"])
        #expect(total + 0.01 >= parts.reduce(0, +), "the phases add up to more than the total: \(phases)")
        #expect(total <= allowed.elapsed.milliseconds + 0.01, "total \(total) ms; the agent waited \(allowed.elapsed)")

        let denied = try await quorum.call(.POST, "/openai/v1/embeddings", body: "{}")
        #expect(denied.status == 403, "\(denied.body)")
        #expect(Set(denied.timings.keys) == ["verdict", "signing", "total"], "\(denied.serverTiming ?? "none")")

        try quorum.workspace.write("token", ProxyQuorum.token + "\n")
        let bench = try await quorum.workspace.quorumctl(
            "bench", "proxy", "--url", quorum.url + "/openai/v1/chat/completions", "--token-file",
            quorum.workspace.path("token"), "--mode", "latency", "--rate", "5", "--duration", "1", "--warmup", "0")
        #expect(bench.status == 0, "\(bench)")
        let line = try #require(bench.stdoutLines.first { $0.hasPrefix("where the time goes") }, "\(bench)")
        for name in ["verdict", "signing", "credential", "upstream", "total"] {
            #expect(line.contains("\(name) ") && line.contains(" ms"), "\(line)")
        }
    }

    @Test(
        "a chosen signer that hangs (SIGSTOP) is given up after the per-signer budget: the call is allowed by the others within the deadline"
    )
    func hungSigner() async throws {
        let quorum = try quorum
        // Nodes the proxy saw fail earlier are passed over as chosen signers for 2 s; let that lapse so
        // node 1, the lowest id, is chosen again.
        try await Task.sleep(for: .milliseconds(2500))
        let daemon = try #require(quorum.cluster.daemons[1])
        let proxyMetrics = try #require(quorum.proxyMetricsURL)
        let missedBefore = try await quorum.scrape(proxyMetrics).count(
            "quorum_proxy_signer_missed_total", ["node": "1"])
        let pid = daemon.child.process.processIdentifier
        #expect(kill(pid, SIGSTOP) == 0)
        defer { kill(pid, SIGCONT) }

        let hung = try await quorum.call(.GET, "/openai/v1/models")
        #expect(hung.status == 200, "\(hung.body)")
        #expect(hung.elapsed < .seconds(3), "took \(hung.elapsed); the decision deadline is 3 s")
        let receipt = try Receipt.verified(try #require(hung.receipt), groupKey: quorum.groupKey)
        #expect(receipt.claims.signers == [2, 3, 4])
        #expect((hung.timings["signing"] ?? 0) > 0, "the others signed in a sign request round: \(hung.timings)")
        #expect(quorum.proxy.stderr.contains("did not answer within the per-signer budget"))
        let missed = try await quorum.scrape(proxyMetrics).count("quorum_proxy_signer_missed_total", ["node": "1"])
        #expect(missed == missedBefore + 1, "node 1 missed once as a chosen signer: \(missedBefore) → \(missed)")

        // Passed over as a chosen signer now: the optimistic round is 2, 3 and 4, no extra signing.
        let next = try await quorum.call(.GET, "/openai/v1/models")
        #expect(next.status == 200, "\(next.body)")
        #expect(
            try Receipt.verified(try #require(next.receipt), groupKey: quorum.groupKey).claims.signers == [2, 3, 4])
        #expect(next.timings["signing"] == 0, "\(next.timings)")

        #expect(kill(pid, SIGCONT) == 0)
        let back = try await quorum.callUntil(.GET, "/openai/v1/models") { answer in
            answer.status == 200 && answer.reasons.isEmpty
        }
        #expect(back.status == 200)
    }

    @Test("a node that allows everything cannot produce an allow alone: a call the others deny is 403")
    func permissiveNode() async throws {
        let quorum = try quorum
        let version = try quorum.bundleVersion()
        try quorum.workspace.write("rogue.yaml", Self.allowAll(version: version + 1, upstreamPort: quorum.upstreamPort))
        try quorum.workspace.write(
            "cluster-4.toml", "[[nodes]]\nid = 4\naddress = \"127.0.0.1:\(quorum.cluster.ports[3])\"\n")
        try await quorum.publish("rogue.yaml", key: "rogue-key.json", clusterFile: "cluster-4.toml")

        let denied = try await quorum.call(.POST, "/openai/v1/embeddings", body: "{}")
        #expect(denied.status == 403, "\(denied.body)")
        #expect(denied.reasons.contains { $0.hasPrefix("4: allow") }, "node 4 allows everything: \(denied.reasons)")
        #expect(denied.reasons.filter { $0.contains("deny endpoint") }.count >= 2, "\(denied.reasons)")

        // Every node back on one honest bundle, newer than the permissive one.
        let text = String(decoding: try quorum.workspace.read("bundle.yaml"), as: UTF8.self)
        try quorum.workspace.write(
            "bundle.yaml",
            text.replacingOccurrences(of: "version: \(version)\n", with: "version: \(version + 2)\n"))
        try #require(try quorum.bundleVersion() == version + 2)
        try await quorum.publish()
        let honest = try await quorum.call(.POST, "/openai/v1/embeddings", body: "{}")
        #expect(honest.status == 403 && !honest.reasons.contains { $0.hasPrefix("4: allow") }, "\(honest.reasons)")
    }

    @Test("a budget exhausted by concurrent calls never overshoots by more than one reservation")
    func concurrentBudget() async throws {
        let quorum = try quorum
        let calls = 16
        let answers = try await withThrowingTaskGroup(of: ProxyQuorum.Answer.self) { group in
            for _ in 0..<calls {
                group.addTask {
                    try await quorum.call(
                        .POST, "/openai/v1/chat/completions", body: Self.chat, token: Self.meteredToken)
                }
            }
            var answers: [ProxyQuorum.Answer] = []
            for try await answer in group { answers.append(answer) }
            return answers
        }
        let statuses = answers.map(\.status)
        #expect(statuses.allSatisfy { $0 == 200 || $0 == 403 }, "\(statuses)")
        let allowed = statuses.filter { $0 == 200 }.count
        // 0.05 a day at 0.01 a call: five reservations, and at most one more.
        #expect((1...6).contains(allowed), "\(allowed) of \(calls) concurrent calls allowed against five: \(statuses)")
        for denied in answers where denied.status == 403 {
            #expect(denied.reasons.contains { $0.contains("daily") }, "\(denied.reasons)")
        }
        let after = try await quorum.call(
            .POST, "/openai/v1/chat/completions", body: Self.chat, token: Self.meteredToken)
        #expect(after.status == 403 && after.body.contains("daily"), "\(after.body)")
    }

    @Test("revoking a parent latch (latch revoke, sign, push) denies its children through the proxy")
    func parentRevocation() async throws {
        let quorum = try quorum
        let parent = try await quorum.latch("create", "--id", "team", "--like", "assistant")
        let child = try await quorum.latch("derive", "--id", "team-bot", "--parent", "team")
        try await quorum.publish()
        let before = try await quorum.callUntil(.GET, "/openai/v1/models", token: child) { $0.status == 200 }
        #expect(before.status == 200, "\(before.body)")

        let revoke = try await quorum.workspace.quorumctl(
            "latch", "revoke", "--bundle", quorum.workspace.path("bundle.yaml"), "--id", "team")
        try #require(revoke.status == 0, "\(revoke)")
        #expect(revoke.stdout.contains("team-bot"), "\(revoke.stdout)")
        try await quorum.publish()

        let after = try await quorum.callUntil(.GET, "/openai/v1/models", token: child) { $0.status != 200 }
        #expect(after.status == 403, "\(after.body)")
        #expect(
            after.reasons.count >= 3 && after.reasons.allSatisfy { $0.contains("revoked with its ancestor 'team'") },
            "\(after.reasons)")
        let parentAfter = try await quorum.call(.GET, "/openai/v1/models", token: parent)
        #expect(parentAfter.status == 403, "\(parentAfter.body)")
        let other = try await quorum.call(.GET, "/openai/v1/models")
        #expect(other.status == 200, "a latch outside the revoked chain still works: \(other.body)")
    }

    @Test(
        "metrics over real HTTP: an allowed and a denied call move the proxy's and every node's counters with the filter that denied as the reason, and the histograms get samples"
    )
    func metrics() async throws {
        let quorum = try quorum
        let proxyURL = try #require(quorum.proxyMetricsURL)
        let warm = try await quorum.callUntil(.GET, "/openai/v1/models") { $0.status == 200 }
        try #require(warm.status == 200, "\(warm.body)")
        // A node may still be evaluating an earlier call the proxy decided without it: wait until
        // each node's count stands still, so the deltas below are this test's calls only.
        var nodesBefore: [Int: PrometheusSamples] = [:]
        for (id, url) in quorum.nodeMetricsURLs {
            nodesBefore[id] = try await settled(quorum, url)
        }
        let before = try await quorum.scrape(proxyURL)

        let allowed = try await quorum.call(.POST, "/openai/v1/chat/completions", body: Self.chat)
        #expect(allowed.status == 200, "\(allowed.body)")
        let denied = try await quorum.call(.GET, "/openai/v1/files")
        #expect(denied.status == 403, "\(denied.body)")
        let rejected = try await quorum.call(.GET, "/nowhere")
        #expect(rejected.status == 404, "\(rejected.body)")

        let after = try await quorum.scrape(proxyURL)
        func moved(_ name: String, _ labels: [String: String]) -> Double {
            after.count(name, labels) - before.count(name, labels)
        }
        #expect(moved("quorum_proxy_decisions_total", ["outcome": "allow", "reason": "none"]) == 1, "\(after.text)")
        #expect(
            moved("quorum_proxy_decisions_total", ["outcome": "deny", "reason": "endpoint"]) == 1,
            "a signed deny names the filter that denied:\n\(after.text)")
        #expect(moved("quorum_proxy_rejected_total", ["reason": "no_mount"]) == 1)
        #expect(moved("quorum_proxy_phase_seconds_count", ["phase": "verdict"]) == 2)
        #expect(moved("quorum_proxy_phase_seconds_count", ["phase": "credential"]) == 1)
        #expect(moved("quorum_proxy_phase_seconds_count", ["phase": "upstream"]) == 1)
        #expect(moved("quorum_proxy_request_seconds_count", ["outcome": "deny"]) == 1)
        #expect(after.count("quorum_proxy_phase_seconds_sum", ["phase": "verdict"]) > 0)
        #expect(
            after.count("quorum_proxy_phase_seconds_bucket", ["phase": "verdict", "le": "+Inf"])
                == after.count("quorum_proxy_phase_seconds_count", ["phase": "verdict"]))
        for node in 1...4 {
            #expect(
                after.value("quorum_proxy_nonce_commitments_available", ["node": "\(node)"]) != nil,
                "node \(node)'s commitment gauge:\n\(after.text)")
        }
        for (role, subject) in [("proxy", "proxy"), ("ca", nil), ("agent-tls", "proxy")] {
            let left = after.samples.filter {
                $0.name == "quorum_certificate_expiry_seconds" && $0.labels["role"] == role
                    && (subject == nil || $0.labels["subject"] == subject)
            }
            #expect(left.count == 1 && left[0].value > 86_400, "\(role) certificate:\n\(after.text)")
        }

        var sharesGiven = 0.0
        for (id, url) in quorum.nodeMetricsURLs.sorted(by: { $0.key < $1.key }) {
            let earlier = try #require(nodesBefore[id])
            let evaluated = "quorum_node_verdict_evaluation_seconds_count"
            var later = try await quorum.scrape(url)
            let deadline = ContinuousClock.now + .seconds(10)
            func everyPeerUp(_ samples: PrometheusSamples) -> Bool {
                (1...4).filter { $0 != id }.allSatisfy { samples.value("quorum_node_peer_up", ["peer": "\($0)"]) == 1 }
            }
            // A peer stopped by an earlier test may take a heartbeat or two to count as up again.
            while later.count(evaluated) < earlier.count(evaluated) + 2 || !everyPeerUp(later),
                ContinuousClock.now < deadline
            {
                try await Task.sleep(for: .milliseconds(100))
                later = try await quorum.scrape(url)
            }
            func moved(_ name: String, _ labels: [String: String] = [:]) -> Double {
                later.count(name, labels) - earlier.count(name, labels)
            }
            #expect(moved(evaluated) == 2, "node \(id) evaluated both calls")
            #expect(moved("quorum_node_verdicts_total", ["decision": "allow", "reason": "none"]) == 1, "node \(id)")
            #expect(moved("quorum_node_verdicts_total", ["decision": "deny", "reason": "endpoint"]) == 1, "node \(id)")
            #expect(moved("quorum_node_verdict_write_seconds_count") == 2, "node \(id)")
            #expect(later.value("quorum_node_nonce_pool_depth") != nil, "node \(id)")
            #expect(everyPeerUp(later), "node \(id) sees every peer up:\n\(later.text)")
            let own = later.value("quorum_certificate_expiry_seconds", ["role": "node", "subject": "node-\(id)"])
            #expect((own ?? 0) > 86_400, "node \(id)'s certificate expiry:\n\(later.text)")
            sharesGiven += moved("quorum_node_signing_shares_total", ["result": "given", "reason": "none"])
            #expect(!later.text.contains("req_"), "no request id is a label or a value")
        }
        #expect(sharesGiven >= 6, "three signers for the allow and three for the deny receipt: \(sharesGiven)")
    }

    @Test(
        "JSON logs: every line of the proxy and the nodes is one JSON object; each call's lines carry its request id; no token or credential in any log line or metrics output"
    )
    func jsonLogs() async throws {
        let quorum = try quorum
        let allowed = try await quorum.callUntil(.POST, "/openai/v1/chat/completions", body: Self.chat) {
            $0.status == 200
        }
        try #require(allowed.status == 200, "\(allowed.body)")
        let denied = try await quorum.call(.GET, "/openai/v1/files")
        #expect(denied.status == 403, "\(denied.body)")
        let allowedID = try #require(allowed.requestID)
        let deniedID = try #require(denied.requestID)

        func lines(_ text: String, of process: String) throws -> [[String: Any]] {
            try text.split(separator: "\n").map { line in
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                let fields = try #require(object, "\(process): not a JSON object: \(line)")
                for key in ["ts", "level", "label", "source", "message"] {
                    #expect(fields[key] is String, "\(process): no \(key) in \(line)")
                }
                let ts = fields["ts"] as? String ?? ""
                #expect(
                    ts.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/) != nil, "\(process): ts \(ts)")
                return fields
            }
        }
        let proxyLines = try lines(quorum.proxy.stderr, of: "proxy")
        #expect(
            proxyLines.contains { $0["message"] as? String == "allowed" && $0["request_id"] as? String == allowedID },
            "no 'allowed' line with \(allowedID)")
        #expect(
            proxyLines.contains { $0["message"] as? String == "denied" && $0["request_id"] as? String == deniedID },
            "no 'denied' line with \(deniedID)")
        #expect(proxyLines.contains { $0["label"] as? String == "quorum-proxy" })

        for (id, daemon) in quorum.cluster.daemons.sorted(by: { $0.key < $1.key }) {
            // Every node evaluates every call; the slowest may log a moment after the proxy answered.
            var nodeLines: [[String: Any]] = []
            let deadline = ContinuousClock.now + .seconds(10)
            repeat {
                nodeLines = try lines(daemon.stderr, of: "node \(id)")
                if nodeLines.contains(where: { $0["request_id"] as? String == deniedID }) { break }
                try await Task.sleep(for: .milliseconds(100))
            } while ContinuousClock.now < deadline
            let verdicts = nodeLines.filter { $0["message"] as? String == "verdict" }
            #expect(
                verdicts.contains {
                    $0["request_id"] as? String == allowedID && $0["decision"] as? String == "allow"
                        && $0["node"] as? String == "\(id)"
                }, "node \(id): no allow verdict line for \(allowedID)")
            #expect(
                verdicts.contains {
                    $0["request_id"] as? String == deniedID && $0["decision"] as? String == "deny"
                        && $0["step"] as? String == "endpoint"
                }, "node \(id): no deny verdict line for \(deniedID)")
        }

        var outputs = ["proxy log": quorum.proxy.stderr]
        for (id, daemon) in quorum.cluster.daemons { outputs["node \(id) log"] = daemon.stderr }
        if let url = quorum.proxyMetricsURL { outputs["proxy /metrics"] = try await quorum.scrape(url).text }
        for (id, url) in quorum.nodeMetricsURLs { outputs["node \(id) /metrics"] = try await quorum.scrape(url).text }
        let secret = String(ProxyQuorum.token.split(separator: "_").last ?? "")
        for (name, text) in outputs {
            #expect(!text.contains(ProxyQuorum.token), "\(name) holds the agent's token")
            #expect(!text.contains(secret), "\(name) holds the token's secret part")
            #expect(!text.contains(ProxyQuorum.apiKey), "\(name) holds the credential")
        }
    }

    /// Node metrics once its verdict count stands still across two scrapes 300 ms apart.
    private func settled(_ quorum: ProxyQuorum, _ url: String) async throws -> PrometheusSamples {
        let name = "quorum_node_verdict_evaluation_seconds_count"
        var last = try await quorum.scrape(url)
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(300))
            let next = try await quorum.scrape(url)
            if next.count(name) == last.count(name) { return next }
            last = next
        }
        return last
    }

    @Test("/self is answered by the quorum: the latch's own view, with an allow receipt that verifies")
    func selfThroughQuorum() async throws {
        let quorum = try quorum
        let answer = try await quorum.call(.GET, "/self")
        #expect(answer.status == 200, "\(answer.body)")
        let object = try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]
        #expect(object != nil, "not a JSON object: \(answer.body)")
        #expect(answer.body.contains("assistant") && answer.body.contains("/openai"), "\(answer.body)")
        #expect(!answer.body.contains(ProxyQuorum.apiKey))
        let receipt = try Receipt.verified(try #require(answer.receipt), groupKey: quorum.groupKey)
        #expect(receipt.claims.decision == .allow && receipt.claims.latch == "assistant")
        #expect(receipt.claims.path == "/self", "\(receipt.claims.path)")
        #expect(answer.timings["credential"] != nil, "\(answer.serverTiming ?? "no Server-Timing")")
    }
}

extension Duration {
    /// This duration in milliseconds.
    var milliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}
