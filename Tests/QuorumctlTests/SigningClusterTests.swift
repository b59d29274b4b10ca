import Foundation
import Logging
import QuorumCrypto
import QuorumIdentity
import QuorumNode
import QuorumProtocol
import QuorumTestKit
import Testing

/// The signing service in real quorumd processes: 4 nodes with 3-of-4 dealer keys, a client
/// holding the proxy certificate, signatures that verify as plain Ed25519 under the group key of
/// `group.json`, and every refusal the service owes: stale epochs after a crash, nonce reuse, a
/// second decision for one request id (also after a restart), a node without keys, and
/// certificates of the wrong role.
@Suite("signing service across quorumd processes", .serialized, .timeLimit(.minutes(4)))
struct SigningClusterTests {
    /// A client of `cluster` holding `identity`'s certificate from `certs/`, with deadlines long
    /// enough for a loaded two-core machine.
    static func client(_ cluster: TestCluster, as identity: PeerIdentity) throws -> NodeClient {
        var transport = try TransportConfiguration.make(
            directory: CertificateDirectory(cluster.workspace.path("certs")), identity: identity)
        transport.connectTimeout = .seconds(30)
        transport.handshakeTimeout = .seconds(30)
        transport.defaultRequestDeadline = .seconds(30)
        var logger = Logger(label: "signing-test")
        logger.logLevel = .critical
        return try NodeClient(configuration: transport, logger: logger)
    }

    static func coordinator(_ cluster: TestCluster) throws -> SigningCoordinator {
        let nodes = try ClusterFile.load(path: cluster.workspace.path("cluster.toml")).nodes
        var configuration = SigningCoordinator.Configuration()
        configuration.commitmentBatch = 8
        configuration.refillBelow = 2
        configuration.deadline = .seconds(30)
        var logger = Logger(label: "signing-test")
        logger.logLevel = .critical
        return SigningCoordinator(
            client: try client(cluster, as: .proxy), nodes: nodes, group: try group(cluster),
            configuration: configuration, logger: logger)
    }

    static func group(_ cluster: TestCluster) throws -> PublicKeyPackage<Ed25519Suite> {
        let path = cluster.workspace.path("dealer/group.json")
        return try KeyFiles.decodeGroup(try KeyFiles.readFile(path), as: Ed25519Suite.self, file: path)
    }

    /// Whether `signature` verifies as an RFC 8032 signature under `group.json`'s key.
    static func verifies(_ signature: Signature, _ message: [UInt8], _ cluster: TestCluster) throws -> Bool {
        Ed25519KeyPair.verify(
            signature: signature.bytes, message: message, publicKey: try group(cluster).verifyingKey.serialized())
    }

    /// One sign request for `node` over fresh commitments of `signers`.
    static func request(
        _ coordinator: SigningCoordinator, for node: UInt16, signers: [UInt16], requestID: String, message: [UInt8]
    ) async throws -> (SignRequest, [SigningCoordinator.Commitment]) {
        var commitments: [SigningCoordinator.Commitment] = []
        for id in signers { commitments.append(try await coordinator.nextCommitment(from: id)) }
        let list = try commitments.map { try SignerCommitment(identifier: $0.nodeID, commitment: $0.entry.commitment) }
        let own = try #require(commitments.first { $0.nodeID == node })
        let request = try SignRequest(
            bootEpoch: own.bootEpoch, nonceID: own.entry.nonceID, requestID: requestID, message: message,
            commitments: list)
        return (request, commitments)
    }

    /// The signing refusal node `node` answers `request` with.
    static func refusal(
        _ coordinator: SigningCoordinator, _ request: SignRequest, from node: UInt16
    ) async throws -> SigningRefusal {
        let error: SigningCoordinator.SigningError
        do {
            let answer = try await coordinator.requestShare(request, from: node)
            Issue.record("node \(node) signed request \(answer.requestID)")
            throw SigningTestFailure.signed
        } catch let failure as SigningCoordinator.SigningError {
            error = failure
        }
        #expect(error.code == .refused, "\(error)")
        return try #require(error.refusal, "\(error)")
    }

    @Test(
        "a proxy gets a signature that verifies as Ed25519; reuse, undecided messages, keyless nodes and other roles are refused"
    )
    func signAndRefusals() async throws {
        // Node 4 starts without keys: as before a ceremony.
        try await DecidingCluster.with(beforeStart: { cluster in
            try FileManager.default.removeItem(atPath: cluster.workspace.path("data-4/keys"))
        }) { deciding in
            let cluster = deciding.cluster
            let coordinator = try Self.coordinator(cluster)
            defer { Task { await coordinator.close() } }

            // 1. Commitments from nodes 1-3, shares in parallel, verified and aggregated, over the
            // receipt of a decision the nodes reached.
            let message = try await deciding.decidedReceipt("req-a", signers: [1, 2, 3])
            let signature = try await coordinator.sign(requestID: "req-a", message: message, signers: [1, 2, 3])
            #expect(try Self.verifies(signature, message, cluster))
            #expect(try !Self.verifies(signature, Array("decision: deny".utf8), cluster))

            // 2. The same decision again is signed, with fresh nonces.
            let again = try await coordinator.sign(requestID: "req-a", message: message, signers: [1, 2, 3])
            #expect(try Self.verifies(again, message, cluster))
            #expect(again != signature)

            // 3. A message that is not the receipt of the node's decision is refused: arbitrary
            // bytes, and a receipt of a request id nobody decided.
            let (arbitrary, _) = try await Self.request(
                coordinator, for: 1, signers: [1, 2, 3], requestID: "req-a", message: Array("decision: deny".utf8))
            let refusal = try await Self.refusal(coordinator, arbitrary, from: 1)
            #expect(refusal.reason == .noDecision)

            // 4. A nonce signs once.
            let messageB = try await deciding.decidedReceipt("req-b", signers: [1, 2, 3])
            let (fresh, _) = try await Self.request(
                coordinator, for: 2, signers: [1, 2, 3], requestID: "req-b", message: messageB)
            #expect(try await coordinator.requestShare(fresh, from: 2).nodeID == 2)
            let reuse = try await Self.refusal(coordinator, fresh, from: 2)
            #expect(reuse.reason == .nonceAlreadyUsed)

            // 5. Node 4 has no keys: it refuses commitments and signatures alike.
            do throws(SigningCoordinator.SigningError) {
                _ = try await coordinator.fetchCommitments(from: 4, count: 1)
                Issue.record("a node without keys handed out commitments")
            } catch {
                #expect(error.response?.code == .unavailable)
                #expect(error.refusal?.reason == .noGroupKey)
            }
            let keyless = try SignRequest(
                bootEpoch: fresh.bootEpoch, nonceID: 1, requestID: "req-c", message: [1], commitments: fresh.commitments
            )
            #expect(try await Self.refusal(coordinator, keyless, from: 4).reason == .noGroupKey)
            // Left to pick, the coordinator takes the threshold's worth of nodes, lowest id first.
            let messageD = try await deciding.decidedReceipt("req-d", signers: [1, 2, 3])
            let picked = try await coordinator.sign(requestID: "req-d", message: messageD)
            #expect(try Self.verifies(picked, messageD, cluster))

            // 6. Operator and node certificates may not ask for shares; an operator may not ask for
            // commitments either (a node may: the log's sequencer gathers checkpoint signer slots).
            let node1 = deciding.node(1)
            let served = try await Self.client(cluster, as: .node(id: 4)).ask(
                node1, try CommitmentsRequest(count: 1), expecting: CommitmentsResponse.self, deadline: .seconds(30))
            #expect(served.nodeID == 1)
            for identity in [PeerIdentity.operator(name: "operator"), .node(id: 4)] {
                let client = try Self.client(cluster, as: identity)
                let messages: [any WireMessage] =
                    identity.role == .node ? [fresh] : [try CommitmentsRequest(count: 1), fresh]
                for message in messages {
                    do throws(TransportError) {
                        _ = try await client.askAny(node1, message)
                        Issue.record("\(identity) was served \(type(of: message))")
                    } catch {
                        #expect(error.code == .refusedByPeer, "\(identity): \(error)")
                        #expect(error.response?.code == .unauthorized, "\(identity): \(error)")
                        #expect(error.response?.message.contains("proxy") == true, "\(identity): \(error)")
                    }
                }
            }

            // quorumctl status still works beside the signing service.
            let status = try await cluster.workspace.quorumctl(["status"] + cluster.operatorArguments)
            #expect(status.status == 0, "\(status)")
            await cluster.stopAll()
            #expect(cluster.daemons[1]?.stderr.contains("signing refused") == true)
        }
    }

    @Test("a node restarted mid-stream has a new epoch, refuses the old commitments and remembers its decisions")
    func restartMidStream() async throws {
        try await DecidingCluster.with { deciding in
            let cluster = deciding.cluster
            let coordinator = try Self.coordinator(cluster)
            defer { Task { await coordinator.close() } }
            let message = try await deciding.decidedReceipt("req-r", signers: [1, 2, 3])
            let signature = try await coordinator.sign(requestID: "req-r", message: message, signers: [1, 2, 3])
            #expect(try Self.verifies(signature, message, cluster))

            // Commitments taken, then node 2 crashes before they are used.
            let messageS = try await deciding.decidedReceipt("req-s", signers: [1, 2, 3])
            let (pending, commitments) = try await Self.request(
                coordinator, for: 2, signers: [1, 2, 3], requestID: "req-s", message: messageS)
            let oldEpoch = try #require(commitments.first { $0.nodeID == 2 }?.bootEpoch)
            await cluster.daemons[2]?.crash()
            try await cluster.start(2)

            let stale = try await Self.refusal(coordinator, pending, from: 2)
            #expect(stale.reason == .staleEpoch)
            #expect(stale.detail.contains("commitments of an earlier boot"))
            #expect(stale.detail.contains(String(format: "%016llx", oldEpoch)))
            let newEpoch = try await coordinator.fetchCommitments(from: 2, count: 1).bootEpoch
            #expect(newEpoch != oldEpoch)
            #expect(stale.detail.contains(String(format: "%016llx", newEpoch)))

            // Fresh commitments work: the coordinator's first attempt meets the stale cache,
            // drops it and signs with fresh ones; node 2 remembers it decided req-s.
            let after = try await coordinator.sign(requestID: "req-s", message: messageS, signers: [1, 2, 3])
            #expect(try Self.verifies(after, messageS, cluster))

            // The decision for req-r survived the crash: node 2 still signs its receipt, and
            // still refuses a deny for it.
            let again = try await coordinator.sign(requestID: "req-r", message: message, signers: [1, 2, 3])
            #expect(try Self.verifies(again, message, cluster))
            var claims = try Receipt.claims(
                inSigningInput: message, groupKey: try deciding.group.verifyingKey.serialized())
            claims.decision = .deny
            let deny = try Receipt.signingInput(claims: claims, groupKey: try deciding.group.verifyingKey.serialized())
            let (conflict, _) = try await Self.request(
                coordinator, for: 2, signers: [1, 2, 3], requestID: "req-r", message: deny)
            let refused = try await Self.refusal(coordinator, conflict, from: 2)
            #expect(refused.reason == .noDecision)
            #expect(refused.detail.contains("decided otherwise"))
            await cluster.stopAll()
        }
    }
}

enum SigningTestFailure: Error { case signed }

extension NodeClient {
    /// Sends `message` to `node` and returns the answer frame; refusals throw.
    fileprivate func askAny(_ node: ClusterFile.Node, _ message: any WireMessage) async throws(TransportError) -> Frame
    {
        let connection = try await connect(
            host: node.address.host, port: node.address.port, expecting: .node(id: node.id))
        defer { Task { await connection.close() } }
        return try await connection.request(messageType: type(of: message).type, payload: message.encodedPayload())
    }
}
