import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import QuorumCrypto
import QuorumProtocol
import QuorumTestKit
import Testing

/// The whole decision path with real processes: four quorumd with dealer keys (k = 3), the
/// quorum-proxy binary deciding with them, the demo upstream that answers 401 without its key,
/// and AsyncHTTPClient as the agent.
@Suite("quorum-proxy deciding with a real quorum", .serialized, .timeLimit(.minutes(6)))
struct ProxyClusterTests {
    static let proxyBinary = TestKit.executable("quorum-proxy")
    static let apiKey = "sk-demo-7c1f0b6e9d2a4c58b3e1"
    static let token = VerdictClusterTests.token

    /// POST chat completions and GET models are allowed; anything else is denied by the endpoint
    /// filter; the response's `id` is redacted.
    static func bundle(upstreamPort: Int) -> String {
        """
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
                  - response:
                      redact: [$.id]

        """
    }

    /// A running cluster, upstream and proxy.
    struct Setup {
        let cluster: TestCluster
        let proxy: Daemon
        let upstream: Daemon
        let url: String
        let groupKey: [UInt8]
    }

    static func readPort(_ path: String, _ process: Daemon) async throws -> Int {
        var port: Int?
        let up = await eventually(within: .seconds(60)) {
            port = (try? String(contentsOfFile: path, encoding: .utf8)).flatMap {
                Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            return port != nil || !process.isRunning
        }
        try #require(up && process.isRunning, "not listening:\n\(process.stderr)")
        return try #require(port)
    }

    static func withSetup(_ body: (Setup, HTTPClient) async throws -> Void) async throws {
        try await Workspace.with { workspace in
            let trusted = try VerdictClusterTests.operatorKey(workspace, "operator-key.json")
            let cluster = try await TestCluster(workspace, nodes: 4, dealerThreshold: 3, operatorKeys: [trusted])
            var children: [Daemon] = []
            defer {
                for daemon in cluster.daemons.values where daemon.isRunning {
                    kill(daemon.child.process.processIdentifier, SIGKILL)
                }
                for child in children where child.isRunning { kill(child.child.process.processIdentifier, SIGKILL) }
            }
            try await cluster.startAll()

            try workspace.write("api-key", apiKey + "\n")
            let upstream = try Daemon(
                id: 100, port: 0,
                arguments: [
                    "demo-upstream", "--listen", "127.0.0.1:0", "--api-key-file", workspace.path("api-key"),
                    "--ready-file", workspace.path("upstream-port"),
                ],
                executable: proxyBinary)
            children.append(upstream)
            let upstreamPort = try await readPort(workspace.path("upstream-port"), upstream)

            try workspace.write("bundle.yaml", bundle(upstreamPort: upstreamPort))
            let sign = try await workspace.quorumctl(
                "policy", "sign", workspace.path("bundle.yaml"), "--key", workspace.path("operator-key.json"), "--out",
                workspace.path("bundle.signed.json"))
            try #require(sign.status == 0, "\(sign)")
            let push = try await workspace.quorumctl(
                ["policy", "push", workspace.path("bundle.signed.json")] + cluster.operatorArguments)
            try #require(push.status == 0, "\(push)")
            let sealed = try await workspace.quorumctl(
                [
                    "secrets", "set", "openai", "--value-file", "-", "--sealing-group",
                    workspace.path("dealer/sealing-group.json"), "--proxy-dir", workspace.path("proxy-data"),
                ], stdin: Array((apiKey + "\n").utf8))
            try #require(sealed.status == 0, "\(sealed)")
            let pushed = try await workspace.quorumctl(
                ["secrets", "push", "openai", "--proxy-dir", workspace.path("proxy-data")] + cluster.operatorArguments)
            try #require(pushed.status == 0, "\(pushed)")

            // No bundle file: the proxy fetches the bundle from the nodes and checks its signature.
            try workspace.write(
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
                decision_timeout_ms = 3000

                [bundle]
                trusted_signers = ["\(trusted)"]
                """)
            let proxy = try Daemon(
                id: 101, port: 0,
                arguments: [
                    "run", "--config", workspace.path("proxy.toml"), "--ready-file", workspace.path("proxy-port"),
                ],
                executable: proxyBinary)
            children.append(proxy)
            let proxyPort = try await readPort(workspace.path("proxy-port"), proxy)
            let group = try KeyFiles.decodeGroup(
                try KeyFiles.readFile(workspace.path("dealer/group.json")), as: Ed25519Suite.self, file: "group.json")
            let setup = Setup(
                cluster: cluster, proxy: proxy, upstream: upstream, url: "http://127.0.0.1:\(proxyPort)",
                groupKey: try group.verifyingKey.serialized())
            let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
            do {
                try await body(setup, client)
            } catch {
                try? await client.shutdown()
                Issue.record("proxy log:\n\(proxy.stderr)\n\(cluster.logs)")
                throw error
            }
            try await client.shutdown()

            // The credential never reaches the proxy's disk or its log.
            for file in FileManager.default.enumerator(atPath: workspace.path("proxy-data"))?.allObjects as? [String]
                ?? []
            {
                let bytes =
                    (try? Data(contentsOf: URL(fileURLWithPath: workspace.path("proxy-data/" + file)))) ?? Data()
                #expect(!String(decoding: bytes, as: UTF8.self).contains(apiKey), "\(file) holds the credential")
            }
            #expect(!proxy.stderr.contains(apiKey), "the proxy's log holds the credential")
            #expect(!proxy.stderr.contains(token), "the proxy's log holds the agent's token")
            #expect(await proxy.terminate(within: .seconds(10)) == 0, "\(proxy.stderr)")
        }
    }

    struct Answer {
        let status: Int
        let body: String
        let receipt: String?
    }

    static func call(
        _ client: HTTPClient, _ setup: Setup, _ method: HTTPMethod, _ path: String, body: String? = nil
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: setup.url + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer " + token)
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await client.execute(request, timeout: .seconds(30))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        return Answer(
            status: Int(response.status.code), body: text, receipt: response.headers.first(name: "Latch-Receipt"))
    }

    static let chat = #"{"model":"demo-small","messages":[{"role":"user","content":"hello there"}]}"#

    @Test(
        "allow forwards with the credential and a receipt that verifies; deny is 403 with reasons and a signed deny receipt; a tampered receipt fails; one node down still allows, two is 503"
    )
    func decisionPath() async throws {
        try await Self.withSetup { setup, client in
            // Allow: the demo upstream answers 200 only with the sealed key injected.
            let allowed = try await Self.call(client, setup, .POST, "/openai/v1/chat/completions", body: Self.chat)
            #expect(allowed.status == 200, "\(allowed.body)")
            #expect(allowed.body.contains("Echo: hello there"))
            #expect(allowed.body.contains(#""id":"[REDACTED]""#), "the verdict's obligations were applied")
            let compact = try #require(allowed.receipt, "no Latch-Receipt on an allow")
            let receipt = try Receipt.verified(compact, groupKey: setup.groupKey)
            #expect(receipt.claims.decision == .allow)
            #expect(receipt.claims.latch == "assistant" && receipt.claims.mount == "/openai")
            #expect(receipt.claims.signers.count == 3)
            #expect(receipt.claims.bodySHA256 == Hex.encode(sha256Digest(Array(Self.chat.utf8))))
            #expect(
                Ed25519KeyPair.verify(
                    signature: receipt.signature, message: receipt.signingInput, publicKey: setup.groupKey),
                "the group signature is a plain Ed25519 signature")

            // A tampered receipt: other claims under the same signature.
            var forged = receipt.claims
            forged.path = "/openai/v1/admin"
            let tampered = try Receipt(claims: forged, groupKey: setup.groupKey, signature: receipt.signature).compact
            #expect(throws: ReceiptError.self) { try Receipt.verified(tampered, groupKey: setup.groupKey) }

            // Deny: every node's reason, and a deny receipt signed by the quorum.
            let denied = try await Self.call(client, setup, .POST, "/openai/v1/embeddings", body: "{}")
            #expect(denied.status == 403, "\(denied.body)")
            #expect(denied.body.contains("endpoint"), "\(denied.body)")
            let reasons =
                (try JSONSerialization.jsonObject(with: Data(denied.body.utf8)) as? [String: Any])?["reasons"]
                as? [[String: Any]]
            #expect(reasons?.count ?? 0 >= 3, "\(denied.body)")
            let denyCompact = try #require(denied.receipt, "no deny receipt: \(denied.body)")
            let denyReceipt = try Receipt.verified(denyCompact, groupKey: setup.groupKey)
            #expect(denyReceipt.claims.decision == .deny)
            #expect(denyReceipt.claims.reasons.first?.hasPrefix("endpoint") == true)

            // SSE end to end: several events, then [DONE].
            let streamed = try await Self.call(
                client, setup, .POST, "/openai/v1/chat/completions",
                body: #"{"model":"demo-small","stream":true,"messages":[{"role":"user","content":"one two three"}]}"#)
            #expect(streamed.status == 200, "\(streamed.body)")
            #expect(streamed.body.components(separatedBy: "data: ").count >= 4, "\(streamed.body)")
            #expect(streamed.body.contains("data: [DONE]"))

            // One node down, and it is a chosen signer (the lowest ids are picked): the proxy signs
            // again with the three nodes that allowed.
            await setup.cluster.daemons[2]?.crash()
            let oneDown = try await Self.call(client, setup, .GET, "/openai/v1/models")
            #expect(oneDown.status == 200, "\(oneDown.body)")
            let oneDownReceipt = try Receipt.verified(try #require(oneDown.receipt), groupKey: setup.groupKey)
            #expect(oneDownReceipt.claims.signers == [1, 3, 4])
            let again = try await Self.call(client, setup, .GET, "/openai/v1/models")
            #expect(again.status == 200, "\(again.body)")

            // Two nodes down: fewer than k answers.
            await setup.cluster.daemons[4]?.crash()
            let twoDown = try await Self.call(client, setup, .GET, "/openai/v1/models")
            #expect(twoDown.status == 503, "\(twoDown.body)")
            #expect(twoDown.body.contains("unavailable"))
        }
    }
}
