import Foundation
import QuorumAudit
import QuorumCrypto
import QuorumLog
import QuorumNode
import QuorumPolicy
import QuorumProtocol
import QuorumTestKit
import Testing

/// A log served as its latest checkpoint says, except that it serves `note` as the checkpoint: an
/// older one, or a tampered one.
struct ServedNote: AuditLogSource {
    let log: MerkleLog
    let note: SignedNote
    func latestCheckpoint() throws -> SignedNote? { note }
    func receiptIndex(requestID: String) throws -> UInt64? { nil }
    func evidence() throws -> [EquivocationEvidence] { [] }
    func unlogged() throws -> [UnloggedDecision] { [] }
}

/// Logs signed by the group a dealer keygen wrote into the workspace (`keys/`), cosigned by four
/// node keys listed in `keys/ceremony.json`, as `quorumctl audit` finds them by default.
final class AuditCluster {
    let ws: Workspace
    let group: PublicKeyPackage<Ed25519Suite>
    let shares: [KeyPackage<Ed25519Suite>]
    let nodeKeys: [UInt16: Ed25519KeyPair]

    init(_ ws: Workspace) async throws {
        self.ws = ws
        try await ws.keygen("keys")
        group = try KeyFiles.decodeGroup(
            try KeyFiles.readFile(ws.path("keys/group.json")), as: Ed25519Suite.self, file: "group.json")
        shares = try (1...3).map { node in
            try KeyFiles.decodeShare(
                try KeyFiles.readSecretFile(ws.path("keys/node-\(node)/signing-share.json")), as: Ed25519Suite.self,
                file: "share")
        }
        var keys: [UInt16: Ed25519KeyPair] = [:]
        for node: UInt16 in 1...4 { keys[node] = Ed25519KeyPair() }
        nodeKeys = keys
        let log = try self.log("probe")
        try ws.write("keys/ceremony.json", log.participantsJSON)
    }

    /// A new, empty log under the workspace.
    func log(_ name: String) throws -> AuditedLog {
        try AuditedLog(directory: ws.path(name), group: group, shares: shares, nodeKeys: nodeKeys)
    }

    /// A log holding `count` entries `<prefix> <i>`, signed at its size.
    func signedLog(_ name: String, entries count: Int, prefix: String = "entry") throws -> AuditedLog {
        let log = try log(name)
        try log.append((0..<count).map { Array("\(prefix) \($0)".utf8) })
        try log.signCheckpoint()
        return log
    }

    var groupFile: String { ws.path("keys/group.json") }
}

/// `quorumctl audit` as a real process against logs served by the real audit server on loopback.
@Suite("quorumctl audit", .serialized, .timeLimit(.minutes(10)))
struct AuditCommandTests {
    @Test("checkpoint: each node's note verifies, the cosigning nodes are named, and two sizes of one log are linked")
    func checkpointConsistent() async throws {
        try await Workspace.with { ws in
            let cluster = try await AuditCluster(ws)
            let log = try cluster.signedLog("log", entries: 10)
            let older = try #require(try log.log.checkpoint(at: 10))
            try log.append((10..<300).map { Array("entry \($0)".utf8) })
            try log.signCheckpoint(cosigners: [1, 2, 4])
            try await AuditedLog.serve(ServedNote(log: log.log, note: older)) { a in
                try await log.serving { b in
                    let run = try await ws.quorumctl([
                        "audit", "checkpoint", "--node", a, b, "--group", cluster.groupFile,
                    ])
                    #expect(run.status == 0, "\(run)")
                    #expect(run.stdout.contains("ok   \(a): size 10, root "), "\(run)")
                    #expect(run.stdout.contains("cosigned by nodes 1, 2, 3, 4 (4 of 4 known)"), "\(run)")
                    #expect(run.stdout.contains("ok   \(b): size 300, root "), "\(run)")
                    #expect(run.stdout.contains("cosigned by nodes 1, 2, 4 (3 of 4 known)"), "\(run)")
                    #expect(run.stdout.contains("consistent: the 2 verified checkpoints are one log (sizes 10, 300)"))
                }
            }
        }
    }

    @Test("checkpoint: a tampered group signature or cosignature fails with exit 1 and shows the note")
    func checkpointTampered() async throws {
        try await Workspace.with { ws in
            let cluster = try await AuditCluster(ws)
            let log = try cluster.signedLog("log", entries: 5)
            let note = try #require(try log.log.latestCheckpoint())
            for line in [0, 2] {
                var signatures = note.signatures
                var bytes = signatures[line].signature
                bytes[bytes.count - 1] ^= 0x01
                signatures[line] = try NoteSignature(
                    name: signatures[line].name, keyID: signatures[line].keyID, signature: bytes)
                let tampered = try SignedNote(text: note.text, signatures: signatures)
                try await AuditedLog.serve(ServedNote(log: log.log, note: tampered)) { url in
                    let run = try await ws.quorumctl([
                        "audit", "checkpoint", "--node", url, "--group", cluster.groupFile,
                    ])
                    #expect(run.status == 1, "\(run)")
                    #expect(run.stdout.contains("FAIL \(url): invalid-signature: the "), "\(run)")
                    #expect(run.stdout.contains(tampered.serialized.trimmingCharacters(in: .newlines)), "\(run)")
                }
            }
            // Another group's file: the note carries no line by that group.
            try await ws.keygen("other")
            try await log.serving { url in
                let run = try await ws.quorumctl([
                    "audit", "checkpoint", "--node", url, "--group", ws.path("other/group.json"),
                ])
                #expect(run.status == 1, "\(run)")
                #expect(
                    run.stdout.contains("no-group-signature") || run.stdout.contains("malformed-checkpoint"), "\(run)")
            }
        }
    }

    @Test("checkpoint: two nodes serving forks of one group's log are a split view, with both notes as evidence")
    func splitView() async throws {
        try await Workspace.with { ws in
            let cluster = try await AuditCluster(ws)
            let honest = try cluster.signedLog("honest", entries: 10)
            let fork = try cluster.signedLog("fork", entries: 12, prefix: "forged")
            let sameSize = try cluster.signedLog("same-size", entries: 10, prefix: "other")
            for other in [fork, sameSize] {
                try await honest.serving { a in
                    try await other.serving { b in
                        let run = try await ws.quorumctl([
                            "audit", "checkpoint", "--node", a, b, "--group", cluster.groupFile,
                        ])
                        #expect(run.status == 1, "\(run)")
                        #expect(run.stdout.contains("SPLIT VIEW between \(a) and \(b): "), "\(run)")
                        let notes = [try honest.log.latestCheckpoint()!, try other.log.latestCheckpoint()!]
                        for note in notes {
                            #expect(run.stdout.contains(note.serialized.trimmingCharacters(in: .newlines)), "\(run)")
                        }
                        #expect(!run.stdout.contains("consistent:"))
                    }
                }
            }
        }
    }

    @Test("monitor: quiet while the log grows, then exits 1 with both notes and the failing proof on a fork")
    func monitor() async throws {
        try await Workspace.with { ws in
            let cluster = try await AuditCluster(ws)
            let log = try cluster.signedLog("log", entries: 20)
            let state = ws.path("monitor.json")
            let arguments = ["audit", "monitor", "--state", state, "--group", cluster.groupFile, "--node"]
            try await log.serving { url in
                let first = try await ws.quorumctl(arguments + [url])
                #expect(first.status == 0 && first.stdout.isEmpty && first.stderr.isEmpty, "\(first)")
                #expect(String(decoding: try ws.read("monitor.json"), as: UTF8.self).contains("\"size\":20"))
                try log.append((20..<40).map { Array("entry \($0)".utf8) })
                try log.signCheckpoint()
                let second = try await ws.quorumctl(arguments + [url])
                #expect(second.status == 0 && second.stdout.isEmpty, "\(second)")
                let verbose = try await ws.quorumctl(arguments + [url, "-v"])
                #expect(verbose.status == 0, "\(verbose)")
                #expect(verbose.stdout.hasPrefix("consistent: size 40 → 40 at \(url)"), "\(verbose)")
            }
            let remembered = try ws.read("monitor.json")
            // A second log, with different entries, signed by the same group.
            let fork = try cluster.signedLog("fork", entries: 50, prefix: "forged")
            try await fork.serving { url in
                let run = try await ws.quorumctl(arguments + [url])
                #expect(run.status == 1, "\(run)")
                #expect(run.stdout.hasPrefix("INCONSISTENT: from size 40 to 50: "), "\(run)")
                #expect(run.stdout.contains("--- remembered checkpoint (from http://127.0.0.1:"))
                #expect(
                    run.stdout.contains(try log.log.latestCheckpoint()!.serialized.trimmingCharacters(in: .newlines)))
                #expect(run.stdout.contains("--- checkpoint now served by \(url)"))
                #expect(
                    run.stdout.contains(try fork.log.latestCheckpoint()!.serialized.trimmingCharacters(in: .newlines)))
                #expect(run.stdout.contains("--- consistency proof from 40 to 50 served by \(url)"), "\(run)")
            }
            #expect(try ws.read("monitor.json") == remembered, "the state must not move to a fork")
        }
    }

    @Test(
        "receipt: the logged receipt verifies under the group, is included in a verified checkpoint, and its verdicts are the nodes'"
    )
    func receipt() async throws {
        try await Workspace.with { ws in
            let cluster = try await AuditCluster(ws)
            let decisions = try Decisions(cluster)
            let log = try decisions.log()
            try await log.serving { url in
                let run = try await ws.quorumctl([
                    "audit", "receipt", "req-allow", "--node", url, "--group", cluster.groupFile,
                ])
                #expect(run.status == 0, "\(run)")
                #expect(
                    run.stdout.hasPrefix("receipt: valid, allow of request req-allow, signed by the 3-of-4 group "),
                    "\(run)")
                #expect(run.stdout.contains("included: index 1 of the checkpoint size 5, root "), "\(run)")
                #expect(run.stdout.contains("decision: allow of POST /openai/v1/chat/completions at "), "\(run)")
                for node in 1...3 {
                    #expect(run.stdout.contains("verdict: node \(node) allow, signed by its identity key"))
                }

                // The receipt itself, inline: the same answer; and the proof, saved, verifies offline.
                let inline = try await ws.quorumctl([
                    "audit", "receipt", decisions.receipts["req-allow"]!, "--node", url, "--group", cluster.groupFile,
                ])
                #expect(inline.status == 0, "\(inline)")
                let proof = try await ws.quorumctl([
                    "audit", "receipt", "req-deny", "--node", url, "--group", cluster.groupFile, "--proof",
                ])
                #expect(proof.status == 0 && proof.stdout.hasPrefix("c2sp.org/tlog-proof@v1\nextra "), "\(proof)")
                try ws.write("deny.tlog-proof", proof.stdout)
                let offline = try await ws.quorumctl([
                    "audit", "receipt", "@" + ws.path("deny.tlog-proof"), "--group", cluster.groupFile,
                ])
                #expect(offline.status == 0, "\(offline)")
                #expect(offline.stdout.contains("receipt: valid, deny of request req-deny"), "\(offline)")
                var forged = proof.stdout
                forged = forged.replacingOccurrences(of: "\nindex 2\n", with: "\nindex 1\n")
                try ws.write("forged.tlog-proof", forged)
                let refused = try await ws.quorumctl([
                    "audit", "receipt", "@" + ws.path("forged.tlog-proof"), "--group", cluster.groupFile,
                ])
                #expect(refused.status == 1 && refused.stdout.hasPrefix("FAIL inclusion-proof: "), "\(refused)")

                let missing = try await ws.quorumctl([
                    "audit", "receipt", "req-none", "--node", url, "--group", cluster.groupFile,
                ])
                #expect(missing.status == 1 && missing.stdout.contains("404 not_found"), "\(missing)")
            }
        }
    }

    @Test(
        "replay: an allow and two denies reproduce byte for byte; without token and body the steps taken from the log are named"
    )
    func replay() async throws {
        try await Workspace.with { ws in
            let cluster = try await AuditCluster(ws)
            let decisions = try Decisions(cluster)
            let log = try decisions.log()
            try ws.write("body.json", Decisions.body)
            try ws.write("token.txt", Decisions.token.text + "\n")
            try await log.serving { url in
                let base = ["--node", url, "--group", cluster.groupFile]
                let full = try await ws.quorumctl(
                    ["audit", "replay", "req-allow"] + base + [
                        "--body", ws.path("body.json"), "--token", ws.path("token.txt"),
                    ])
                #expect(full.status == 0, "\(full)")
                #expect(
                    full.stdout.contains(
                        "bundle: \(decisions.bundle.digest) version 7 from the log (entry 0, proven included)"),
                    "\(full)")
                for node in 1...3 {
                    #expect(full.stdout.contains("node \(node): reproduced allow, byte for byte"), "\(full)")
                }
                #expect(!full.stdout.contains("[taken from the log"))
                #expect(
                    full.stdout.contains("state read as logged: assistant//openai/per-minute: 0 requests"), "\(full)")

                let bare = try await ws.quorumctl(["audit", "replay", "req-allow"] + base)
                #expect(bare.status == 0, "\(bare)")
                #expect(bare.stdout.contains("[taken from the log: the token is logged only as its SHA-256"), "\(bare)")
                #expect(
                    bare.stdout.contains("pass token-cap: ")
                        && bare.stdout.contains("[taken from the log: it reads the body"), "\(bare)")
                #expect(bare.stdout.contains("pass method#1: POST allowed\n"), "\(bare)")

                let method = try await ws.quorumctl(["audit", "replay", "req-deny"] + base)
                #expect(method.status == 0, "\(method)")
                #expect(method.stdout.contains("node 1: reproduced deny, byte for byte"), "\(method)")
                let limited = try await ws.quorumctl(
                    ["audit", "replay", "req-limited"] + base + [
                        "--body", ws.path("body.json"), "--token", ws.path("token.txt"),
                    ])
                #expect(limited.status == 0, "\(limited)")
                #expect(limited.stdout.contains("node 2: reproduced deny, byte for byte"), "\(limited)")
                #expect(limited.stdout.contains("deny per-minute: 2 requests per 1m reached"), "\(limited)")

                let wrongBody = try await ws.quorumctl(
                    ["audit", "replay", "req-allow"] + base + ["--body", ws.path("token.txt")])
                #expect(wrongBody.status == 2 && wrongBody.stderr.contains("the logged body is"), "\(wrongBody)")
            }
        }
    }

    @Test("replay: a node whose logged verdict does not follow from the policy is caught")
    func replayCatchesALyingNode() async throws {
        try await Workspace.with { ws in
            let cluster = try await AuditCluster(ws)
            let decisions = try Decisions(cluster, lyingNode: 3)
            let log = try decisions.log()
            try await log.serving { url in
                let run = try await ws.quorumctl([
                    "audit", "replay", "req-deny", "--node", url, "--group", cluster.groupFile,
                ])
                #expect(run.status == 1, "\(run)")
                #expect(run.stdout.contains("node 1: reproduced deny"), "\(run)")
                #expect(run.stdout.contains("node 3: DIFFERS: logged allow, replayed deny"), "\(run)")
            }
        }
    }
}

/// Decisions as nodes make and log them: a signed bundle entry, then receipt entries whose verdicts
/// the real engine reached, signed by node identity keys, with receipts FROST-signed by the group.
struct Decisions {
    static let token = LatchToken(latchID: "assistant", randomBytes: Array(repeating: 5, count: 32))
    static let body = #"{"model":"gpt-4o","max_tokens":100}"#
    /// 2026-11-24 09:00 UTC, in milliseconds.
    static let time: Int64 = 1_795_510_800_000

    static let bundleText = """
        format: quorum-latch/bundle/v1
        version: 7
        fields:
          token_cap: [$.max_tokens]
        latches:
          - id: assistant
            token_sha256: \(Hex.encode(token.secretDigest))
            mounts:
              - path: /openai
                upstream: https://api.example.test
                filters:
                  - method: [POST]
                  - id: token-cap
                    payload:
                      - {field: token_cap, op: le, value: 4096, required: true}
                  - id: per-minute
                    rate_limit: {requests: 2, window: 1m, key: latch}
        """

    let cluster: AuditCluster
    let bundle: PolicyBundle
    let entries: [[UInt8]]
    let ids: [String?]
    let receipts: [String: String]

    init(_ cluster: AuditCluster, lyingNode: UInt16? = nil) throws {
        self.cluster = cluster
        bundle = try BundleDocument.decode(Array(Self.bundleText.utf8), fileName: "audit.yaml")
        let operatorKey = Ed25519KeyPair()
        var entries = [
            LogEntry.bundle(
                BundleEntry(
                    version: bundle.version, digest: bundle.digest, operatorKey: operatorKey.publicKey,
                    signedBundle: SignedBundle.sign(bundle, with: operatorKey))
            ).encoded()
        ]
        var ids: [String?] = [nil]
        var receipts: [String: String] = [:]
        let engine = PolicyEngine(bundle: bundle)
        var state = PolicyState()
        for (id, method, time) in [
            ("req-allow", "POST", Self.time), ("req-deny", "GET", Self.time + 1), ("req-again", "POST", Self.time + 2),
            ("req-limited", "POST", Self.time + 3),
        ] {
            let decide = try DecideRequest(
                requestID: id, time: time, method: method, target: "/openai/v1/chat/completions",
                headers: [try DecisionHeader(name: "Content-Type", value: "application/json")],
                body: Array(Self.body.utf8), bodyLength: UInt64(Self.body.utf8.count), clientAddress: "10.1.2.3",
                token: Self.token.text, signers: [])
            let request = DecisionRequest(
                requestID: id, method: method, target: decide.target,
                headers: [HeaderField(name: "Content-Type", value: "application/json")], body: decide.body,
                clientAddress: decide.clientAddress, token: decide.token)
            let instant = Date(timeIntervalSince1970: Double(time) / 1000)
            let verdict = engine.evaluate(request, state: state, at: instant)
            state.apply(verdict.stateChanges)
            var verdicts: [SignedVerdict] = []
            for node: UInt16 in 1...3 {
                var bytes = verdict.encoded()
                if node == lyingNode {
                    var honest = request
                    honest.method = "POST"
                    bytes = engine.evaluate(honest, state: PolicyState(), at: instant).encoded()
                }
                let signed = DecideResponse.signedBytes(nodeID: node, requestID: id, verdict: bytes)
                verdicts.append(
                    SignedVerdict(nodeID: node, verdict: bytes, signature: cluster.nodeKeys[node]!.sign(signed)))
            }
            let claims = ReceiptClaims(request: decide, verdict: verdict, signers: [1, 2, 3])
            let groupKey = try cluster.group.verifyingKey.serialized()
            let signature = try SigningHelpers.sign(
                try Receipt.signingInput(claims: claims, groupKey: groupKey), keys: cluster.shares, group: cluster.group
            )
            let receipt = try Receipt(claims: claims, groupKey: groupKey, signature: signature.bytes).compact
            receipts[id] = receipt
            entries.append(
                LogEntry.receipt(ReceiptEntry(receipt: receipt, request: LoggedRequest(decide), verdicts: verdicts))
                    .encoded())
            ids.append(id)
        }
        self.entries = entries
        self.ids = ids
        self.receipts = receipts
    }

    /// A log holding the entries, checkpointed.
    func log() throws -> AuditedLog {
        let log = try cluster.log("decisions")
        try log.append(entries, receipts: ids)
        try log.signCheckpoint()
        return log
    }
}
