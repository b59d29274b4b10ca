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
    /// One allowed and one denied call through the proxy: the allowed call, and both request ids.
    static func allowAndDeny(_ setup: ProxyQuorum) async throws -> (ProxyQuorum.Answer, String, String) {
        let allowed = try await setup.call(.POST, "/openai/v1/chat/completions", body: ProxyClusterTests.chat)
        #expect(allowed.status == 200, "\(allowed.body)")
        let allowID = try Receipt.verified(try #require(allowed.receipt), groupKey: setup.groupKey).claims.requestID
        let denied = try await setup.call(.POST, "/openai/v1/embeddings", body: "{}")
        #expect(denied.status == 403, "\(denied.body)")
        let denyID = try Receipt.verified(try #require(denied.receipt), groupKey: setup.groupKey).claims.requestID
        return (allowed, allowID, denyID)
    }

    @Test(
        "checkpoints of all four nodes verify and agree; a proxy receipt checks end to end through the proxy; its allow and a deny replay byte for byte; the monitor starts quiet"
    )
    func endToEnd() async throws {
        try await ProxyQuorum.with(bundle: { ProxyClusterTests.bundle(upstreamPort: $0) }, audit: true) { setup in
            let ws = setup.workspace
            let (allowed, allowID, denyID) = try await Self.allowAndDeny(setup)

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

    @Test(
        "a proxy that withholds receipts is caught: every node that decided lists the request id, the audit unlogged command calls it withheld, honest calls are not listed"
    )
    func withheldReceipts() async throws {
        try await ProxyQuorum.with(
            bundle: { ProxyClusterTests.bundle(upstreamPort: $0) }, telemetry: true, audit: true,
            unloggedAfterMilliseconds: 1500
        ) { setup in
            let ws = setup.workspace
            let (_, allowID, denyID) = try await Self.allowAndDeny(setup)

            // A proxy that asks for verdicts (and gets the decryption shares) but logs nothing: the
            // test holds the proxy's certificate. One request goes to all four nodes, one to two.
            let proxy = try SigningClusterTests.client(setup.cluster, as: .proxy)
            let nodes = try ClusterFile.load(path: ws.path("cluster.toml")).nodes
            let body = Array(ProxyClusterTests.chat.utf8)
            func request(_ id: String) throws -> DecideRequest {
                try DecideRequest(
                    requestID: id, time: Int64(Date().timeIntervalSince1970 * 1000), method: "POST",
                    target: "/openai/v1/chat/completions",
                    headers: [try DecisionHeader(name: "content-type", value: "application/json")], body: body,
                    bodyLength: UInt64(body.count), clientAddress: "10.0.0.9", token: ProxyQuorum.token, signers: [])
            }
            for node in nodes {
                let answer = try await proxy.ask(
                    node, try request("withheld-1"), expecting: DecideResponse.self, deadline: .seconds(30))
                let verdict = (try? JSONSerialization.jsonObject(with: Data(answer.verdict))) as? [String: Any]
                #expect(verdict?["decision"] as? String == "allow", "node \(node.id): \(String(describing: verdict))")
                #expect(!answer.decryptionShare.isEmpty, "node \(node.id) gave no decryption share")
            }
            for node in nodes.prefix(2) {
                _ = try await proxy.ask(
                    node, try request("partial-1"), expecting: DecideResponse.self, deadline: .seconds(30))
            }

            // Every node lists withheld-1 (and the first two partial-1) once its 1.5 s are up.
            var listed: [Int: UnloggedDocument] = [:]
            let found = try await eventually(within: .seconds(60)) {
                for node in 1...4 {
                    var request = HTTPClientRequest(url: setup.nodeAuditURLs[node]! + "/unlogged")
                    request.method = .GET
                    guard let response = try? await setup.client.execute(request, timeout: .seconds(10)),
                        response.status.code == 200,
                        let bytes = try? await response.body.collect(upTo: 1 << 20),
                        let document = try? UnloggedDocument(json: Array(bytes.readableBytesView))
                    else { return false }
                    listed[node] = document
                    let ids = Set(document.decisions.map(\.requestID))
                    guard ids.contains("withheld-1"), node > 2 || ids.contains("partial-1") else { return false }
                }
                return true
            }
            try #require(found, "not every node listed the withheld decision: \(listed)\n\(setup.cluster.logs)")
            for (node, document) in listed {
                let ids = document.decisions.map(\.requestID)
                #expect(!ids.contains(allowID) && !ids.contains(denyID), "node \(node) lists an honest call: \(ids)")
                let withheld = try #require(document.decisions.first { $0.requestID == "withheld-1" })
                #expect(withheld.allow && withheld.decryptionShare, "node \(node): \(withheld)")
                #expect(ids.filter { $0 == "withheld-1" }.count == 1, "node \(node) lists it twice: \(ids)")
            }
            #expect(setup.cluster.daemons[1]!.stderr.contains("has no receipt in the log"))
            let samples = try await setup.scrape(setup.nodeMetricsURLs[3]!)
            #expect(samples.count("quorum_node_unlogged_decisions_total", ["decision": "allow"]) >= 1)

            let urls = (1...4).map { setup.nodeAuditURLs[$0]! }
            let audit = try await ws.quorumctl(
                ["audit", "unlogged", "--node"] + urls + ["--group", ws.path("dealer/group.json")])
            #expect(audit.status == 1, "\(audit)")
            #expect(
                audit.stdout.contains(
                    "WITHHELD withheld-1: a quorum (k=3) decided allow and no receipt is in the log; "
                        + "4 allow (4 with a decryption share), 0 deny"), "\(audit)")
            #expect(audit.stdout.contains("note partial-1: fewer than k=3 nodes report it"), "\(audit)")
            #expect(!audit.stdout.contains(allowID) && !audit.stdout.contains(denyID), "\(audit)")
            let twice = try await ws.quorumctl(
                ["audit", "unlogged", "--node", urls[0], urls[0], "--group", ws.path("dealer/group.json")])
            #expect(twice.status != 0 && twice.stderr.contains("is given twice"), "\(twice)")
        }
    }
}
