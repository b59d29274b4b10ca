import AsyncHTTPClient
import Foundation
import QuorumAudit
import QuorumCrypto
import QuorumNode
import QuorumProtocol
import QuorumTestKit
import Testing

/// The auditor's commands against a live quorum: four quorumd replicating their log and serving it
/// on `[audit] listen`, and quorum-proxy forwarding `/.well-known/quorum/audit/`, with receipts
/// the proxy made for real calls.
@Suite("quorumctl audit against a live replicated quorum", .serialized, .timeLimit(.minutes(10)))
struct AuditQuorumTests {
    @Test(
        "checkpoints of all four nodes verify and agree; a proxy receipt checks end to end through the proxy; its allow and a deny replay byte for byte; the monitor starts quiet"
    )
    func endToEnd() async throws {
        try await ProxyQuorum.with(bundle: { ProxyClusterTests.bundle(upstreamPort: $0) }, audit: true) { setup in
            let ws = setup.workspace
            let allowed = try await setup.call(.POST, "/openai/v1/chat/completions", body: ProxyClusterTests.chat)
            #expect(allowed.status == 200, "\(allowed.body)")
            let allowID = try Receipt.verified(try #require(allowed.receipt), groupKey: setup.groupKey).claims.requestID
            let denied = try await setup.call(.POST, "/openai/v1/embeddings", body: "{}")
            #expect(denied.status == 403, "\(denied.body)")
            let denyID = try Receipt.verified(try #require(denied.receipt), groupKey: setup.groupKey).claims.requestID

            // Every node serves both receipts once a quorum checkpoint covers them.
            let served = try await eventually(within: .seconds(90)) {
                for node in 1...4 {
                    for id in [allowID, denyID] {
                        var request = HTTPClientRequest(url: setup.nodeAuditURLs[node]! + "/receipts/" + id)
                        request.method = .GET
                        guard let response = try? await setup.client.execute(request, timeout: .seconds(10)),
                            response.status.code == 200
                        else { return false }
                        _ = try? await response.body.collect(upTo: 1 << 20)
                    }
                }
                return true
            }
            try #require(served, "the receipts never reached a checkpoint on every node:\n\(setup.cluster.logs)")

            // The nodes' identity keys, public halves only, as ceremony.json lists them.
            var participants: [String] = []
            for node in 1...4 {
                let path = ws.path("data-\(node)/identity.key")
                let key = try KeyFiles.decodeEd25519Key(
                    try KeyFiles.readSecretFile(path), role: NodeIdentityKey.role, file: path)
                participants.append("{\"node_id\":\(node),\"identity_key\":\"\(Hex.encode(key.publicKey))\"}")
            }
            try ws.write("participants.json", "{\"participants\":[" + participants.joined(separator: ",") + "]}\n")
            let trust = ["--group", ws.path("dealer/group.json"), "--cosigners", ws.path("participants.json")]

            let nodes = (1...4).map { setup.nodeAuditURLs[$0]! }
            let checkpoint = try await ws.quorumctl(["audit", "checkpoint", "--node"] + nodes + trust)
            #expect(checkpoint.status == 0, "\(checkpoint)")
            #expect(checkpoint.stdout.contains("consistent: the 4 verified checkpoints are one log"), "\(checkpoint)")
            #expect(!checkpoint.stdout.contains("no cosignature by a known node"), "\(checkpoint)")

            let viaProxy = setup.url + AuditHTTP.proxyPrefix
            let receipt = try await ws.quorumctl(
                ["audit", "receipt", "-", "--node", viaProxy] + trust, stdin: Array(allowed.receipt!.utf8))
            #expect(receipt.status == 0, "\(receipt)")
            #expect(receipt.stdout.hasPrefix("receipt: valid, allow of request \(allowID)"), "\(receipt)")
            #expect(receipt.stdout.contains("decision: allow of POST /openai/v1/chat/completions"), "\(receipt)")
            #expect(receipt.stdout.contains(", signed by its identity key"), "\(receipt)")
            #expect(!receipt.stdout.contains("DOES NOT VERIFY"), "\(receipt)")

            try ws.write("token.txt", ProxyQuorum.token + "\n")
            try ws.write("body.json", ProxyClusterTests.chat)
            let replay = try await ws.quorumctl(
                [
                    "audit", "replay", allowID, "--node", nodes[1], "--token", ws.path("token.txt"), "--body",
                    ws.path("body.json"),
                ] + trust)
            #expect(replay.status == 0, "\(replay)")
            #expect(replay.stdout.contains("reproduced allow, byte for byte"), "\(replay)")
            #expect(!replay.stdout.contains("DIFFERS") && !replay.stdout.contains("[taken from the log"), "\(replay)")
            let denyReplay = try await ws.quorumctl(["audit", "replay", denyID, "--node", nodes[2]] + trust)
            #expect(denyReplay.status == 0, "\(denyReplay)")
            #expect(denyReplay.stdout.contains("reproduced deny"), "\(denyReplay)")

            let monitor = try await ws.quorumctl(
                ["audit", "monitor", "--state", ws.path("monitor.json"), "--node", nodes[3]] + trust)
            #expect(monitor.status == 0 && monitor.stdout.isEmpty, "\(monitor)")
        }
    }
}
