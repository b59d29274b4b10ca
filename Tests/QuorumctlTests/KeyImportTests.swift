import Foundation
import QuorumCrypto
import QuorumTestKit
import Testing

/// `quorumctl keygen import` against 4 real nodes: dealer keys reach every node sealed to its
/// identity key, status shows the group key everywhere, and the refusals say what is wrong.
@Suite("keygen import over mutual TLS", .serialized, .timeLimit(.minutes(4)))
struct KeyImportTests {
    @Test("dealer keys install on every node; status shows them; a second import needs --replace")
    func importKeys() async throws {
        try await TestCluster.with(nodes: 4) { cluster in
            let ws = cluster.workspace
            try await cluster.startAll()
            try await ws.keygen("dealer", threshold: 3, nodes: 4)
            let group = try JSONSerialization.jsonObject(with: try ws.read("dealer/group.json")) as? [String: Any]
            let groupKey = try #require(group?["group_public_key"] as? String)

            let imported = try await ws.quorumctl(
                ["keygen", "import", "--from", ws.path("dealer")] + cluster.operatorArguments)
            #expect(imported.status == 0, "\(imported)\n\(cluster.logs)")
            for id in 1...4 { #expect(imported.stdout.contains("node \(id): imported; group key \(groupKey)")) }

            let status = try await ws.quorumctl(["status"] + cluster.operatorArguments)
            #expect(status.status == 0, "\(status)")
            let rows = status.stdoutLines.dropFirst()
            #expect(rows.count == 4)
            for row in rows { #expect(row.contains("  yes  ") && row.contains(groupKey), "\(row)") }
            for id in 1...4 {
                let share = ws.path("data-\(id)/keys/signing-share.json")
                #expect(try mode(share) == 0o600)
                #expect(
                    try ws.read("data-\(id)/keys/signing-share.json") == ws.read("dealer/node-\(id)/signing-share.json")
                )
            }

            // A second dealer's keys: refused while keys are held, nothing replaced.
            try await ws.keygen("dealer2", threshold: 3, nodes: 4)
            let again = try await ws.quorumctl(
                ["keygen", "import", "--from", ws.path("dealer2")] + cluster.operatorArguments)
            #expect(again.status == 1, "\(again)")
            #expect(again.stderr.contains("node 1 at 127.0.0.1:\(cluster.ports[0]): refused-by-peer"), "\(again)")
            #expect(again.stderr.contains("already holds keys for group \(groupKey)"), "\(again)")
            #expect(try ws.read("data-2/keys/group.json") == ws.read("dealer/group.json"))

            let replaced = try await ws.quorumctl(
                ["keygen", "import", "--from", ws.path("dealer2"), "--replace"] + cluster.operatorArguments)
            #expect(replaced.status == 0, "\(replaced)")
            #expect(try ws.read("data-3/keys/group.json") == ws.read("dealer2/group.json"))

            // A restarted node still holds the imported keys.
            #expect(await cluster.daemons[3]?.terminate(within: .seconds(10)) == 0)
            try await cluster.start(3)
            try await cluster.waitUntilConverged()
            let after = try await ws.quorumctl(["status"] + cluster.operatorArguments)
            let key2 = try #require(
                (try JSONSerialization.jsonObject(with: try ws.read("dealer2/group.json")) as? [String: Any])?[
                    "group_public_key"] as? String)
            #expect(after.stdoutLines.dropFirst().allSatisfy { $0.contains(key2) }, "\(after)")
            await cluster.stopAll()
        }
    }

    @Test(
        "a group made for other nodes, a missing share file, and a node certificate are refused before anything is sent"
    )
    func refusals() async throws {
        // Nothing is started: every refusal happens before a connection.
        try await TestCluster.with(nodes: 4) { cluster in
            let ws = cluster.workspace
            try await ws.keygen("dealer5", threshold: 4, nodes: 5)
            let wrongSize = try await ws.quorumctl(
                ["keygen", "import", "--from", ws.path("dealer5")] + cluster.operatorArguments)
            #expect(wrongSize.status == 2, "\(wrongSize)")
            #expect(isOneLineError(wrongSize), "\(wrongSize)")
            #expect(wrongSize.stderr.contains("participants are nodes [1, 2, 3, 4, 5]"), "\(wrongSize)")
            #expect(wrongSize.stderr.contains("lists nodes [1, 2, 3, 4]"), "\(wrongSize)")

            try await ws.keygen("dealer4", threshold: 3, nodes: 4)
            try FileManager.default.removeItem(atPath: ws.path("dealer4/node-2/sealing-share.json"))
            let missing = try await ws.quorumctl(
                ["keygen", "import", "--from", ws.path("dealer4")] + cluster.operatorArguments)
            #expect(missing.status == 2, "\(missing)")
            #expect(missing.stderr.contains("dealer4/node-2/sealing-share.json"), "\(missing)")

            let asNode = try await ws.quorumctl(
                [
                    "keygen", "import", "--from", ws.path("dealer4"), "--cluster", ws.path("cluster.toml"), "--cert",
                    ws.path("certs/node-1.pem"), "--key", ws.path("certs/node-1.key"), "--ca", ws.path("certs/ca.pem"),
                ])
            #expect(asNode.status == 2, "\(asNode)")
            #expect(asNode.stderr.contains("keygen import needs an operator certificate"), "\(asNode)")
        }
    }
}
