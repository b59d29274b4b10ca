import Foundation
import QuorumTestKit
import Testing

/// `quorumctl keygen repair` against 4 real nodes with dealer keys: a node that lost its keys and
/// its identity key gets exactly its old shares back from three helpers.
@Suite("keygen repair over mutual TLS", .serialized, .timeLimit(.minutes(4)))
struct KeyRepairTests {
    /// The hex secret of a share file.
    static func secret(_ ws: Workspace, _ relative: String) throws -> String {
        let object = try JSONSerialization.jsonObject(with: try ws.read(relative)) as? [String: Any]
        return try #require(object?["signing_share"] as? String)
    }

    @Test("a wiped node gets its own shares back; a node holding keys and too few helpers are refused")
    func repair() async throws {
        try await TestCluster.with(nodes: 4, dealerThreshold: 3) { cluster in
            let ws = cluster.workspace
            try await cluster.startAll()

            let tooFew = try await ws.quorumctl(
                ["keygen", "repair", "--node", "2", "--group-dir", ws.path("dealer"), "--helpers", "1", "3"]
                    + cluster.operatorArguments)
            #expect(tooFew.status == 2, "\(tooFew)")
            #expect(tooFew.stderr.contains("2 helpers; the group's threshold is 3"), "\(tooFew)")

            let holding = try await ws.quorumctl(
                ["keygen", "repair", "--node", "2", "--group-dir", ws.path("dealer")] + cluster.operatorArguments)
            #expect(holding.status == 1, "\(holding)")
            #expect(holding.stderr.contains("step 3 (install), node 2"), "\(holding)")
            #expect(holding.stderr.contains("repair only a node that has lost them"), "\(holding)")

            // Node 2 loses its keys and its identity key.
            #expect(await cluster.daemons[2]?.terminate(within: .seconds(10)) == 0)
            try FileManager.default.removeItem(atPath: ws.path("data-2/keys"))
            try FileManager.default.removeItem(atPath: ws.path("data-2/identity.key"))
            try await cluster.start(2)
            try await cluster.waitUntilConverged()

            let repaired = try await ws.quorumctl(
                ["keygen", "repair", "--node", "2", "--group-dir", ws.path("dealer")] + cluster.operatorArguments)
            #expect(repaired.status == 0, "\(repaired)\n\(cluster.logs)")
            #expect(repaired.stdout.contains("node 2: repaired; group key "), "\(repaired)")
            for name in ["signing-share.json", "sealing-share.json"] {
                #expect(
                    try Self.secret(ws, "data-2/keys/\(name)") == Self.secret(ws, "dealer/node-2/\(name)"),
                    "the rebuilt \(name) is node 2's old share")
                #expect(try mode(ws.path("data-2/keys/\(name)")) == 0o600)
            }
            #expect(try ws.read("data-2/keys/group.json") == ws.read("dealer/group.json"))
            let status = try await ws.quorumctl(["status"] + cluster.operatorArguments)
            #expect(status.stdoutLines.dropFirst().allSatisfy { $0.contains("  yes  ") }, "\(status)")
            for id in 1...4 {
                #expect(
                    !(cluster.daemons[id]?.stderr.contains(try Self.secret(ws, "dealer/node-2/signing-share.json"))
                        ?? true))
            }
            await cluster.stopAll()
        }
    }
}
