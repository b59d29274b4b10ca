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

    static func withSetup(_ body: (ProxyQuorum) async throws -> Void) async throws {
        try await ProxyQuorum.with(bundle: { bundle(upstreamPort: $0) }, body)
    }

    static let chat = #"{"model":"demo-small","messages":[{"role":"user","content":"hello there"}]}"#

    @Test(
        "allow forwards with the credential and a receipt that verifies; deny is 403 with reasons and a signed deny receipt; a tampered receipt fails; one node down still allows, two is 503"
    )
    func decisionPath() async throws {
        try await Self.withSetup { setup in
            // Allow: the demo upstream answers 200 only with the sealed key injected.
            let allowed = try await setup.call(.POST, "/openai/v1/chat/completions", body: Self.chat)
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
            let denied = try await setup.call(.POST, "/openai/v1/embeddings", body: "{}")
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
            let streamed = try await setup.call(
                .POST, "/openai/v1/chat/completions",
                body: #"{"model":"demo-small","stream":true,"messages":[{"role":"user","content":"one two three"}]}"#)
            #expect(streamed.status == 200, "\(streamed.body)")
            #expect(streamed.body.components(separatedBy: "data: ").count >= 4, "\(streamed.body)")
            #expect(streamed.body.contains("data: [DONE]"))

            // One node down, and it is a chosen signer (the lowest ids are picked): the proxy signs
            // again with the three nodes that allowed.
            await setup.cluster.daemons[2]?.crash()
            let oneDown = try await setup.call(.GET, "/openai/v1/models")
            #expect(oneDown.status == 200, "\(oneDown.body)")
            let oneDownReceipt = try Receipt.verified(try #require(oneDown.receipt), groupKey: setup.groupKey)
            #expect(oneDownReceipt.claims.signers == [1, 3, 4])
            let again = try await setup.call(.GET, "/openai/v1/models")
            #expect(again.status == 200, "\(again.body)")

            // Two nodes down: fewer than k answers.
            await setup.cluster.daemons[4]?.crash()
            let twoDown = try await setup.call(.GET, "/openai/v1/models")
            #expect(twoDown.status == 503, "\(twoDown.body)")
            #expect(twoDown.body.contains("unavailable"))
        }
    }
}
