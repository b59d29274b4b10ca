import Foundation
import Logging
import QuorumCrypto
import QuorumNode
import QuorumProtocol
import QuorumTestKit
import Synchronization
import Testing

/// The key ceremony across real quorumd processes on loopback: `quorumctl keygen --cluster` and
/// `keygen refresh` end to end, and, through the same runner the CLI uses, a node crashed
/// mid-ceremony, an equivocating participant, a forged identity key and certificates of the wrong
/// role.
@Suite("The key ceremony across real nodes", .serialized, .timeLimit(.minutes(6)))
struct CeremonyClusterTests {
    @Test(
        "4 nodes: keygen --cluster installs one group on every node; FROST signs, sealing opens, refresh keeps the key")
    func ceremonyAndRefresh() async throws {
        try await TestCluster.with(nodes: 4) { cluster in
            let ws = cluster.workspace
            try await cluster.startAll()
            let keygen = try await ws.quorumctl(
                ["keygen"] + cluster.operatorArguments + ["--threshold", "3", "--out", ws.path("out")])
            try #require(keygen.status == 0, "\(keygen)\n\(cluster.logs)")
            #expect(keygen.stdout.contains("committed on every node"))

            // group.json is what every node installed, and status shows its key on every node.
            let groupFile = try KeyFiles.readFile(ws.path("out/group.json"))
            let group = try KeyFiles.decodeGroup(groupFile, as: Ed25519Suite.self, file: "group.json")
            let groupKey = Hex.encode(try group.verifyingKey.serialized())
            #expect(keygen.stdout.contains("signing group key: \(groupKey)"))
            for id in 1...4 {
                #expect(try KeyFiles.readFile(ws.path("data-\(id)/keys/group.json")) == groupFile)
                #expect(try mode(ws.path("data-\(id)/keys/signing-share.json")) == 0o600)
                #expect(try mode(ws.path("data-\(id)/keys/sealing-share.json")) == 0o600)
            }
            try await expectStatus(cluster, groupKey: groupKey)

            // A FROST signature from the installed shares of nodes 1, 3 and 4 is a plain Ed25519
            // signature under the group key.
            let shares = try (1...4).map { try share(ws, node: $0, "signing") }
            let message = Array("receipt 1".utf8)
            let signature = try SigningHelpers.sign(message, keys: [shares[0], shares[2], shares[3]], group: group)
            #expect(
                Ed25519KeyPair.verify(
                    signature: signature.bytes, message: message, publicKey: try group.verifyingKey.serialized()))

            // The sealing key: sealed to sealing-group.json, opened with 3 nodes' decryption shares.
            let sealingGroup = try KeyFiles.decodeGroup(
                try KeyFiles.readFile(ws.path("out/sealing-group.json")), as: Ed25519Suite.self,
                file: "sealing-group.json")
            let box = try ThresholdSealing<Ed25519Suite>.seal(SecretBytes(Array("sk-upstream".utf8)), to: sealingGroup)
            let decryption = try [1, 2, 4].map {
                try ThresholdSealing<Ed25519Suite>.decryptionShare(for: box, key: try share(ws, node: $0, "sealing"))
            }
            let opened = try ThresholdSealing<Ed25519Suite>.open(box, shares: decryption, group: sealingGroup)
            #expect(opened.copyBytes() == Array("sk-upstream".utf8))

            // ceremony.json: the certificate verifies under each node's identity key.
            let record = try #require(
                try JSONSerialization.jsonObject(with: ws.read("out/ceremony.json")) as? [String: Any])
            let ceremonyID = Hex.decode(try #require(record["ceremony_id"] as? String))!
            let digest = Hex.decode(try #require(record["transcript_digest"] as? String))!
            let certificate = try #require(record["certificate"] as? [[String: Any]])
            let participants = try #require(record["participants"] as? [[String: Any]])
            #expect(certificate.count == 4)
            for (entry, participant) in zip(certificate, participants) {
                #expect(
                    CeremonyTranscriptSignature.verify(
                        Hex.decode(entry["signature"] as! String)!, ceremonyID: ceremonyID, transcriptDigest: digest,
                        identityKey: Hex.decode(participant["identity_key"] as! String)!))
            }

            // Sending the certificate again changes nothing: every node answers committed.
            let recommit = try await ws.quorumctl(
                ["keygen", "commit"] + cluster.operatorArguments + ["--ceremony", ws.path("out/ceremony.json")])
            #expect(recommit.status == 0, "\(recommit)")
            #expect(recommit.stdoutLines == (1...4).map { "node \($0): committed" }, "\(recommit)")

            // A second keygen is refused while the nodes hold keys.
            let again = try await ws.quorumctl(
                ["keygen"] + cluster.operatorArguments + ["--threshold", "3", "--out", ws.path("again")])
            #expect(again.status == 2, "\(again)")
            #expect(again.stderr.contains("already hold keys") && again.stderr.contains("--replace"), "\(again)")

            // Refresh: same group key, new shares, and the new shares sign.
            let refresh = try await ws.quorumctl(
                ["keygen", "refresh"] + cluster.operatorArguments + ["--out", ws.path("out")])
            try #require(refresh.status == 0, "\(refresh)\n\(cluster.logs)")
            #expect(refresh.stdout.contains("signing group key: \(groupKey) (unchanged)"))
            try await expectStatus(cluster, groupKey: groupKey)
            let refreshed = try (1...4).map { try share(ws, node: $0, "signing") }
            for (old, new) in zip(shares, refreshed) {
                #expect(old.verifyingKey == new.verifyingKey)
                #expect(old.verifyingShare != new.verifyingShare)
            }
            let newGroup = try KeyFiles.decodeGroup(
                try KeyFiles.readFile(ws.path("out/group.json")), as: Ed25519Suite.self, file: "group.json")
            let after = try SigningHelpers.sign(
                message, keys: [refreshed[0], refreshed[1], refreshed[2]], group: newGroup)
            #expect(
                Ed25519KeyPair.verify(
                    signature: after.bytes, message: message, publicKey: try group.verifyingKey.serialized()))
            await cluster.stopAll()
        }
    }

    @Test("a node killed mid-ceremony fails it naming the node; no node keeps keys; after a restart a re-run succeeds")
    func crashMidCeremony() async throws {
        try await TestCluster.with(nodes: 4) { cluster in
            let ws = cluster.workspace
            try await cluster.startAll()
            let client = try operatorClient(cluster)
            let plan = CeremonyPlan(kind: .dkg, threshold: 3, participants: try await participants(cluster, client))
            let relay = ClusterRelay(cluster: try clusterFile(cluster), client: client)
            let daemon3 = try #require(cluster.daemons[3])
            let runner = CeremonyRunner(relay: relay, timeout: .seconds(10)) { phase, _ in
                if phase == .begin { await daemon3.crash() }
            }
            await #expect {
                _ = try await runner.run(plan)
            } throws: { error in
                let failure = try #require(error as? CeremonyFailure)
                #expect(failure.phase == .round2)
                #expect(failure.nodes == [3])
                #expect(failure.description.contains("node 3"), "\(failure)")
                #expect(failure.description.contains("aborted on nodes 1, 2, 4"), "\(failure)")
                return true
            }
            await relay.close()
            for id in 1...4 {
                #expect(!FileManager.default.fileExists(atPath: ws.path("data-\(id)/keys/group.json")))
                let staged = (try? FileManager.default.contentsOfDirectory(atPath: ws.path("data-\(id)"))) ?? []
                #expect(!staged.contains { $0.hasPrefix("keys.pending-") }, "node \(id) kept staged keys")
            }

            // The CLI with node 3 still down names it before beginning.
            let down = try await ws.quorumctl(
                ["keygen"] + cluster.operatorArguments + [
                    "--threshold", "3", "--out", ws.path("out"), "--timeout", "3",
                ])
            #expect(down.status == 1, "\(down)")
            #expect(down.stderr.contains("node 3"), "\(down)")

            try await cluster.start(3)
            try await cluster.waitUntilConverged()
            let rerun = try await ws.quorumctl(
                ["keygen"] + cluster.operatorArguments + ["--threshold", "3", "--out", ws.path("out")])
            try #require(rerun.status == 0, "\(rerun)\n\(cluster.logs)")
            let group = try KeyFiles.decodeGroup(
                try KeyFiles.readFile(ws.path("out/group.json")), as: Ed25519Suite.self, file: "group.json")
            try await expectStatus(cluster, groupKey: Hex.encode(try group.verifyingKey.serialized()))
            await cluster.stopAll()
        }
    }

    @Test("a node killed after round 3 keeps its staged keys: the others install them, and after a restart so does it")
    func crashBeforeCommit() async throws {
        try await TestCluster.with(nodes: 4) { cluster in
            let ws = cluster.workspace
            try await cluster.startAll()
            let client = try operatorClient(cluster)
            let plan = CeremonyPlan(kind: .dkg, threshold: 3, participants: try await participants(cluster, client))
            let relay = ClusterRelay(cluster: try clusterFile(cluster), client: client)
            let daemon3 = try #require(cluster.daemons[3])
            let runner = CeremonyRunner(relay: relay, timeout: .seconds(10)) { phase, _ in
                if phase == .round3 { await daemon3.crash() }
            }
            var certificate: CeremonyCommit?
            do throws(CeremonyFailure) {
                _ = try await runner.run(plan)
                Issue.record("node 3 cannot have confirmed the commit")
            } catch {
                #expect(error.phase == .commit)
                #expect(error.committed == [1, 2, 4], "\(error)")
                #expect(error.description.contains("keep them staged"), "\(error)")
                certificate = error.commit
            }
            await relay.close()
            let staged = try FileManager.default.contentsOfDirectory(atPath: ws.path("data-3"))
            #expect(staged.contains { $0.hasPrefix("keys.pending-") }, "\(staged)")
            #expect(!FileManager.default.fileExists(atPath: ws.path("data-3/keys/group.json")))

            try await cluster.start(3)
            try await cluster.waitUntilConverged()
            let again = ClusterRelay(cluster: try clusterFile(cluster), client: client)
            let resent = await CeremonyRunner(relay: again, timeout: .seconds(10))
                .sendCommit(try #require(certificate), to: [1, 2, 3, 4])
            await again.close()
            #expect(resent.committed == [1, 2, 3, 4], "\(resent.problems)")
            let group = try KeyFiles.decodeGroup(
                try KeyFiles.readFile(ws.path("data-1/keys/group.json")), as: Ed25519Suite.self, file: "group.json")
            #expect(
                try KeyFiles.readFile(ws.path("data-3/keys/group.json"))
                    == KeyFiles.readFile(ws.path("data-1/keys/group.json")))
            try await expectStatus(cluster, groupKey: Hex.encode(try group.verifyingKey.serialized()))
            let shares = try [1, 3, 4].map { try share(ws, node: $0, "signing") }
            let message = Array("after the restart".utf8)
            let signature = try SigningHelpers.sign(message, keys: shares, group: group)
            #expect(
                Ed25519KeyPair.verify(
                    signature: signature.bytes, message: message, publicKey: try group.verifyingKey.serialized()))
            await cluster.stopAll()
        }
    }

    @Test("equivocation is named; a wrong identity key is refused; only operators speak ceremony; unsafe needs a flag")
    func refusals() async throws {
        try await TestCluster.with(nodes: 4) { cluster in
            let ws = cluster.workspace
            try await cluster.startAll()
            let client = try operatorClient(cluster)
            let members = try await participants(cluster, client)
            let relay = ClusterRelay(cluster: try clusterFile(cluster), client: client)

            // Node 2's identity key, read from its data directory, signs a second round-1 message
            // that a malicious operator shows to node 1 only.
            let node2 = try KeyFiles.decodeEd25519Key(
                try KeyFiles.readSecretFile(ws.path("data-2/identity.key")), role: "node-identity", file: "identity.key"
            )
            let equivocating = TamperingRelay(inner: relay) { message, node in
                guard let request = message as? CeremonyRound2Request, node == 1 else { return message }
                let signing = try! DKG<Ed25519Suite>.part1(
                    identifier: try! Identifier(2), maxSigners: 4, minSigners: 3, purpose: .signing)
                let sealing = try! DKG<Ed25519Suite>.part1(
                    identifier: try! Identifier(2), maxSigners: 4, minSigners: 3, purpose: .sealing)
                let second = try! CeremonyRound1(
                    ceremonyID: request.ceremonyID, nodeID: 2, threshold: 3, signingPackage: try! signing.1.encoded(),
                    sealingPackage: try! sealing.1.encoded(), signedBy: node2)
                return try! CeremonyRound2Request(
                    ceremonyID: request.ceremonyID, round1: request.round1.map { $0.nodeID == 2 ? second : $0 })
            }
            await #expect {
                _ = try await CeremonyRunner(relay: equivocating, timeout: .seconds(10))
                    .run(CeremonyPlan(kind: .dkg, threshold: 3, participants: members))
            } throws: { error in
                let failure = try #require(error as? CeremonyFailure)
                #expect(failure.culprits == [2], "\(failure)")
                #expect(failure.description.contains("participant 2 sent different round-1 packages"), "\(failure)")
                return true
            }

            // Node 3 listed with someone else's identity key: every node refuses, naming node 3.
            var forged = members
            forged[2] = try CeremonyParticipant(nodeID: 3, identityKey: Ed25519KeyPair().publicKey)
            await #expect {
                _ = try await CeremonyRunner(relay: relay, timeout: .seconds(10))
                    .run(CeremonyPlan(kind: .dkg, threshold: 3, participants: forged))
            } throws: { error in
                let failure = try #require(error as? CeremonyFailure)
                #expect(failure.phase == .begin)
                #expect(failure.culprits == [3], "\(failure)")
                #expect(failure.description.contains("identity key listed for node 3"), "\(failure)")
                return true
            }
            await relay.close()

            // Only operators may speak ceremony: a node certificate is answered unauthorized, a
            // proxy certificate cannot get an answer at all.
            let begin = try CeremonyPlan(kind: .dkg, threshold: 3, participants: members).begin()
            let file = try clusterFile(cluster)
            for holder in ["node-2", "proxy"] {
                let other = try operatorClient(cluster, holder: holder)
                await #expect {
                    _ = try await other.ask(
                        file.nodes[0], begin, expecting: CeremonyRound1.self, deadline: .seconds(10))
                } throws: { error in
                    let error = try #require(error as? TransportError)
                    if holder == "node-2" {
                        #expect(error.code == .refusedByPeer && error.response?.code == .unauthorized, "\(error)")
                    }
                    return true
                }
            }
            for id in 1...4 { #expect(!FileManager.default.fileExists(atPath: ws.path("data-\(id)/keys/group.json"))) }

            // 2-of-4 breaks DESIGN.md §4: refused without --allow-unsafe, before any node is asked.
            let unsafe = try await ws.quorumctl(
                ["keygen"] + cluster.operatorArguments + ["--threshold", "2", "--out", ws.path("out")])
            #expect(unsafe.status == 2, "\(unsafe)")
            #expect(isOneLineError(unsafe) && unsafe.stderr.contains("--allow-unsafe"), "\(unsafe)")
            let allowed = try await ws.quorumctl(
                ["keygen"] + cluster.operatorArguments + [
                    "--threshold", "2", "--out", ws.path("out"), "--allow-unsafe",
                ])
            #expect(allowed.status == 0, "\(allowed)\n\(cluster.logs)")
            #expect(allowed.stderr.contains("warning"))
            await cluster.stopAll()
        }
    }

    // MARK: Helpers

    private func share(_ ws: Workspace, node: Int, _ purpose: String) throws -> KeyPackage<Ed25519Suite> {
        let path = ws.path("data-\(node)/keys/\(purpose)-share.json")
        return try KeyFiles.decodeShare(try KeyFiles.readSecretFile(path), as: Ed25519Suite.self, file: path)
    }

    /// `quorumctl status` shows every node up with a key, all with `groupKey`.
    private func expectStatus(_ cluster: TestCluster, groupKey: String) async throws {
        let status = try await cluster.workspace.quorumctl(["status"] + cluster.operatorArguments)
        #expect(status.status == 0, "\(status)")
        let rows = status.stdoutLines.dropFirst()
        #expect(rows.count == 4)
        for row in rows { #expect(row.contains(" yes ") && row.contains(groupKey), "\(row)") }
    }

    private func clusterFile(_ cluster: TestCluster) throws -> ClusterFile {
        try ClusterFile.load(path: cluster.workspace.path("cluster.toml"))
    }

    private func operatorClient(_ cluster: TestCluster, holder: String = "operator") throws -> NodeClient {
        let certs = cluster.workspace.path("certs")
        var transport = try TransportConfiguration.make(
            certificatePath: "\(certs)/\(holder).pem", privateKeyPath: "\(certs)/\(holder).key",
            clusterCAPath: "\(certs)/ca.pem")
        transport.connectTimeout = .seconds(10)
        transport.handshakeTimeout = .seconds(10)
        transport.defaultRequestDeadline = .seconds(10)
        var logger = Logger(label: "ceremony-test")
        logger.logLevel = .critical
        return try NodeClient(configuration: transport, logger: logger)
    }

    /// Every node with the identity key it reports over mutual TLS, as the CLI reads them.
    private func participants(_ cluster: TestCluster, _ client: NodeClient) async throws -> [CeremonyParticipant] {
        let entries = await ClusterStatus.query(try clusterFile(cluster), client: client, timeout: .seconds(10))
        return try entries.map { entry in
            let status = try entry.result.get()
            return try CeremonyParticipant(nodeID: status.nodeID, identityKey: try #require(status.identityKey))
        }
    }
}

/// A relay that rewrites what the operator sends: a malicious operator, or one colluding with a
/// participant.
struct TamperingRelay: CeremonyRelay {
    let inner: ClusterRelay
    let rewrite: @Sendable (any WireMessage, UInt16) -> any WireMessage

    init(inner: ClusterRelay, rewrite: @escaping @Sendable (any WireMessage, UInt16) -> any WireMessage) {
        self.inner = inner
        self.rewrite = rewrite
    }

    func request(_ message: any WireMessage, to node: UInt16, deadline: Duration) async throws(TransportError) -> Frame
    {
        try await inner.request(rewrite(message, node), to: node, deadline: deadline)
    }

    func describe(_ node: UInt16) -> String { inner.describe(node) }
}
