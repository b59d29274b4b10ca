import Foundation
import Logging
import MetricsTestKit
import QuorumCrypto
import QuorumIdentity
import QuorumProtocol
import QuorumTestKit
import Synchronization
import Testing

@testable import QuorumNode

/// A 3-of-4 dealer group, signing and sealing, as NodeKeys per node.
struct SigningFixture: Sendable {
    let signing: [KeyPackage<Ed25519Suite>]
    let group: PublicKeyPackage<Ed25519Suite>
    let sealing: [KeyPackage<Ed25519Suite>]
    let sealingGroup: PublicKeyPackage<Ed25519Suite>

    init(k: Int = 3, n: Int = 4) throws {
        (signing, group) = try SigningHelpers.dealer(Ed25519Suite.self, k: k, n: n)
        (sealing, sealingGroup) = try SigningHelpers.dealer(Ed25519Suite.self, k: k, n: n, purpose: .sealing)
    }

    func keys(_ id: UInt16) throws -> NodeKeys {
        try NodeKeys(
            signing: signing[Int(id) - 1], sealing: sealing[Int(id) - 1], signingGroup: group,
            sealingGroup: sealingGroup)
    }
}

/// One node's signing service over a store in a temporary directory, with a clock the test moves.
final class TestSigner: Sendable {
    let id: UInt16
    let directory: URL
    let store: NodeStore
    let service: SigningService
    let clock = TestClock()
    let logs = LogCapture()

    init(
        _ id: UInt16, keys: NodeKeys?, epoch: UInt64 = UInt64.random(in: 1...UInt64.max), directory: URL? = nil,
        configuration: SigningService.Configuration = SigningService.Configuration(),
        metrics: NodeMetrics = NodeMetrics()
    ) throws {
        self.id = id
        self.directory = try directory ?? TestKit.temporaryDirectory("signing-test")
        let clock = clock
        let store = try NodeStore(dataDirectory: self.directory.path)
        self.store = store
        service = SigningService(
            nodeID: id, bootEpoch: epoch, keys: { keys }, store: store, configuration: configuration,
            metrics: metrics, logger: logs.logger, now: { clock.now })
        // These tests are about the signer's own rules, so each message stands for its own
        // decision here; in a node the verdict service decides what a message stands for (the
        // verdict cluster tests cover that coupling).
        service.checkDecisions { request in .success(sha256Digest(request.message)) }
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }

    func ask(_ message: some WireMessage, as peer: PeerIdentity = .proxy) async throws -> Frame {
        try #require(try await service.handle(peer, try Frame.request(message, correlationID: 1)))
    }

    func commitments(_ count: Int = 4) async throws -> CommitmentsResponse {
        try await ask(try CommitmentsRequest(count: count)).decode(CommitmentsResponse.self)
    }

    /// The refusal the answer carries; fails the test if it is a share.
    func refusal(_ request: SignRequest) async throws -> SigningRefusal {
        let frame = try await ask(request)
        #expect(frame.kind == .errorResponse)
        return try #require(SigningRefusal(try frame.errorResponse()))
    }
}

/// Milliseconds since the Unix epoch, moved by the test.
final class TestClock: Sendable {
    private let value = Mutex<Int64>(1_700_000_000_000)
    var now: Int64 { value.withLock { $0 } }
    func advance(_ milliseconds: Int64) { value.withLock { $0 += milliseconds } }
}

/// Signers 1…count of a fixture, each with one fresh commitment; builds sign requests over them.
struct SigningRound {
    let signers: [TestSigner]
    let issued: [UInt16: (epoch: UInt64, entry: NonceCommitment)]

    static func start(_ signers: [TestSigner]) async throws -> SigningRound {
        var issued: [UInt16: (UInt64, NonceCommitment)] = [:]
        for signer in signers {
            let batch = try await signer.commitments(1)
            issued[signer.id] = (batch.bootEpoch, batch.commitments[0])
        }
        return SigningRound(signers: signers, issued: issued)
    }

    var list: [SignerCommitment] {
        get throws {
            try issued.keys.sorted().map {
                try SignerCommitment(identifier: $0, commitment: issued[$0]!.entry.commitment)
            }
        }
    }

    func request(
        for id: UInt16, requestID: String = "req-1", message: [UInt8] = Array("allow".utf8)
    ) throws
        -> SignRequest
    {
        try SignRequest(
            bootEpoch: issued[id]!.epoch, nonceID: issued[id]!.entry.nonceID, requestID: requestID, message: message,
            commitments: try list)
    }
}

@Suite(.serialized) struct SigningServiceChecks {
    let fixture: SigningFixture

    init() throws { fixture = try SigningFixture() }

    func signers(_ ids: [UInt16] = [1, 2, 3]) throws -> [TestSigner] {
        try ids.map { try TestSigner($0, keys: try fixture.keys($0)) }
    }

    @Test func threeSharesAggregateToAnEd25519SignatureUnderTheGroupKey() async throws {
        let signers = try signers()
        defer { signers.forEach { $0.remove() } }
        let round = try await SigningRound.start(signers)
        let message = Array("decision: allow request req-1".utf8)
        var shares: [SignatureShare<Ed25519Suite>] = []
        for signer in signers {
            let answer = try await signer.ask(try round.request(for: signer.id, message: message))
            let response = try answer.decode(SignResponse.self)
            #expect(response.nodeID == signer.id)
            #expect(response.requestID == "req-1")
            #expect(response.bootEpoch == signer.service.bootEpoch)
            shares.append(try SignatureShare(identifier: try Identifier(signer.id), encoded: response.share))
        }
        let package = try SigningPackage<Ed25519Suite>(
            message: message,
            commitments: try round.list.map {
                try SigningCommitments(identifier: try Identifier($0.identifier), encoded: $0.commitment)
            })
        let session = try SigningSession(package: package, verifyingKey: fixture.group.verifyingKey)
        for share in shares {
            #expect(try FROST<Ed25519Suite>.verifyShare(share, session: session, group: fixture.group))
        }
        let signature = try FROST<Ed25519Suite>.aggregate(session: session, shares: shares, group: fixture.group)
        #expect(
            Ed25519KeyPair.verify(
                signature: signature.bytes, message: message, publicKey: try fixture.group.verifyingKey.serialized()))
        // Neither a share nor anything secret reached the log.
        for signer in signers {
            for share in shares {
                #expect(!signer.logs.all.contains { $0.contains(Hex.encode(share.encoded)) })
            }
        }
    }

    @Test func beforeKeysEverythingIsRefusedAsUnavailable() async throws {
        let signer = try TestSigner(1, keys: nil)
        defer { signer.remove() }
        let commitments = try await signer.ask(try CommitmentsRequest(count: 1))
        #expect(try commitments.errorResponse().code == .unavailable)
        #expect(SigningRefusal(try commitments.errorResponse())?.reason == .noGroupKey)
        let request = try SignRequest(
            bootEpoch: signer.service.bootEpoch, nonceID: 1, requestID: "r", message: [1],
            commitments: [SignerCommitment(identifier: 1, commitment: Array(repeating: 1, count: 64))])
        let refusal = try await signer.refusal(request)
        #expect(refusal.reason == .noGroupKey)
        #expect(refusal.detail.contains("no group key yet"))
        #expect(signer.service.poolDepth == 0)
    }

    @Test func commitmentsOfAnotherEpochAreRefusedNamingBothEpochs() async throws {
        let signers = try signers()
        defer { signers.forEach { $0.remove() } }
        let round = try await SigningRound.start(signers)
        var stale = try round.request(for: 1)
        stale = try SignRequest(
            bootEpoch: 0xABC, nonceID: stale.nonceID, requestID: stale.requestID, message: stale.message,
            commitments: stale.commitments)
        let refusal = try await signers[0].refusal(stale)
        #expect(refusal.reason == .staleEpoch)
        #expect(refusal.detail.contains("commitments of an earlier boot"))
        #expect(refusal.detail.contains("0000000000000abc"))
        #expect(refusal.detail.contains(NoncePool<Ed25519Suite>.TakeFailure.hex(signers[0].service.bootEpoch)))
        // The stale request touched nothing: the right epoch still signs with that nonce.
        #expect(try await signers[0].ask(try round.request(for: 1)).kind == .response)
    }

    @Test func sharesGivenAndRefusedAreCountedByResultAndReason() async throws {
        let counted = TestMetrics()
        let signer = try TestSigner(1, keys: try fixture.keys(1), metrics: NodeMetrics(factory: counted))
        let others = try signers([2, 3])
        defer { ([signer] + others).forEach { $0.remove() } }
        let round = try await SigningRound.start([signer] + others)
        #expect(try await signer.ask(try round.request(for: 1)).kind == .response)
        #expect(try await signer.refusal(try round.request(for: 1, requestID: "req-2")).reason == .nonceAlreadyUsed)
        let given = try counted.expectCounter(
            NodeMetrics.Names.signingShares, [("result", "given"), ("reason", "none")])
        #expect(given.totalValue == 1)
        let reused = try counted.expectCounter(
            NodeMetrics.Names.signingShares, [("result", "refused"), ("reason", "nonce-already-used")])
        #expect(reused.totalValue == 1)
    }

    @Test func aNonceSignsOnceAndReuseIsKeptAsEvidence() async throws {
        let signers = try signers()
        defer { signers.forEach { $0.remove() } }
        let round = try await SigningRound.start(signers)
        #expect(try await signers[0].ask(try round.request(for: 1)).kind == .response)
        let again = try await signers[0].refusal(try round.request(for: 1, requestID: "req-2"))
        #expect(again.reason == .nonceAlreadyUsed)
        let evidence = try signers[0].service.ledger.evidence()
        #expect(evidence.count == 1)
        #expect(evidence.first?.kind == "nonce-already-used")
        #expect(evidence.first?.requestID == "req-2")
        #expect(evidence.first?.peer == "proxy")
    }

    @Test func withoutADecisionPointNothingIsSignedAndTheNonceIsSpent() async throws {
        let signers = try signers()
        defer { signers.forEach { $0.remove() } }
        let round = try await SigningRound.start(signers)
        // A check that finds no decision, as a node's verdict service does for a request id it
        // never decided.
        signers[0].service.checkDecisions { request in
            .failure(SigningRefusal(.noDecision, "node 1 reached no decision for request \(request.requestID)"))
        }
        let refused = try await signers[0].refusal(try round.request(for: 1))
        #expect(refused.reason == .noDecision)
        // The nonce went with the refusal: even a request the check would now pass cannot use it.
        signers[0].service.checkDecisions { request in .success(sha256Digest(request.message)) }
        let reused = try await signers[0].refusal(try round.request(for: 1))
        #expect(reused.reason == .nonceAlreadyUsed)
    }

    @Test func aNonceNeverIssuedIsUnknown() async throws {
        let signers = try signers()
        defer { signers.forEach { $0.remove() } }
        let round = try await SigningRound.start(signers)
        let good = try round.request(for: 1)
        let unknown = try SignRequest(
            bootEpoch: good.bootEpoch, nonceID: 999, requestID: "r", message: [1], commitments: good.commitments)
        let refusal = try await signers[0].refusal(unknown)
        #expect(refusal.reason == .unknownNonce)
        #expect(refusal.detail.contains("nonce 999 was never issued"))
    }

    @Test func theNodesOwnCommitmentMustBePresent() async throws {
        let signers = try signers([1, 2, 3, 4])
        defer { signers.forEach { $0.remove() } }
        let round = try await SigningRound.start(signers)
        let full = try round.request(for: 1)
        let withoutOwn = try SignRequest(
            bootEpoch: full.bootEpoch, nonceID: full.nonceID, requestID: "r", message: [1],
            commitments: full.commitments.filter { $0.identifier != 1 })
        let refusal = try await signers[0].refusal(withoutOwn)
        #expect(refusal.reason == .missingOwnCommitment)
        #expect(refusal.detail.contains("identifier 1"))
        // The nonce went with the refused request.
        #expect(try await signers[0].refusal(full).reason == .nonceAlreadyUsed)
    }

    @Test func theNodesOwnCommitmentMustBeTheOneItIssued() async throws {
        let signers = try signers()
        defer { signers.forEach { $0.remove() } }
        let round = try await SigningRound.start(signers)
        let other = try await signers[0].commitments(1).commitments[0]
        let good = try round.request(for: 1)
        let swapped = try SignRequest(
            bootEpoch: good.bootEpoch, nonceID: good.nonceID, requestID: "r", message: [1],
            commitments: good.commitments.map {
                $0.identifier == 1 ? try SignerCommitment(identifier: 1, commitment: other.commitment) : $0
            })
        let refusal = try await signers[0].refusal(swapped)
        #expect(refusal.reason == .commitmentMismatch)
        #expect(refusal.detail.contains("nonce \(good.nonceID)"))
    }

    @Test func fewerSignersThanTheThresholdAreRefused() async throws {
        let signers = try signers([1, 2])
        defer { signers.forEach { $0.remove() } }
        let round = try await SigningRound.start(signers)
        let refusal = try await signers[0].refusal(try round.request(for: 1))
        #expect(refusal.reason == .tooFewSigners)
        #expect(refusal.detail == "2 signers committed; the group's threshold is 3")
    }

    @Test func aSignerOutsideTheGroupIsRefused() async throws {
        let signers = try signers([1, 2])
        defer { signers.forEach { $0.remove() } }
        let round = try await SigningRound.start(signers)
        let good = try round.request(for: 1)
        let stranger = try SignerCommitment(identifier: 9, commitment: try round.list[1].commitment)
        let request = try SignRequest(
            bootEpoch: good.bootEpoch, nonceID: good.nonceID, requestID: "r", message: [1],
            commitments: good.commitments + [stranger])
        let refusal = try await signers[0].refusal(request)
        #expect(refusal.reason == .unknownSigner)
        #expect(refusal.detail.contains("identifier 9 is not a member"))
    }

    @Test(arguments: [
        ("not a point", Array(repeating: UInt8(0xFF), count: 64)),
        ("identity element", [1] + Array(repeating: UInt8(0), count: 31) + [1] + Array(repeating: UInt8(0), count: 31)),
        ("secp256k1 length", Array(repeating: UInt8(2), count: 66)),
    ])
    func aCommitmentThatDoesNotDecodeIsRefused(_ name: String, _ bytes: [UInt8]) async throws {
        let signers = try signers()
        defer { signers.forEach { $0.remove() } }
        let round = try await SigningRound.start(signers)
        let good = try round.request(for: 1)
        let bad = try SignRequest(
            bootEpoch: good.bootEpoch, nonceID: good.nonceID, requestID: "r", message: [1],
            commitments: good.commitments.map {
                $0.identifier == 3 ? try SignerCommitment(identifier: 3, commitment: bytes) : $0
            })
        let refusal = try await signers[0].refusal(bad)
        #expect(refusal.reason == .invalidCommitment, "\(name)")
        #expect(refusal.detail.contains("participant 3"), "\(name): \(refusal.detail)")
    }

    @Test func anUnsortedListIsRefusedAsMalformedNamingTheField() async throws {
        let signers = try signers()
        defer { signers.forEach { $0.remove() } }
        let round = try await SigningRound.start(signers)
        let good = try round.request(for: 1)
        var writer = WireWriter()
        writer.write(good.bootEpoch)
        writer.write(good.nonceID)
        writer.write(string: "r")
        writer.write(bytes: [1])
        writer.write(array: good.commitments.reversed()) { $0.write($1) }
        let frame = try Frame(kind: .request, messageType: SignRequest.type, correlationID: 1, payload: writer.bytes)
        let error = await #expect(throws: WireError.self) { try await signers[0].service.handle(.proxy, frame) }
        #expect(error?.field == "SignRequest.commitments")
        #expect(error?.reason.contains("sorted by identifier") == true)
        // A malformed request is refused before the pool is touched.
        #expect(try await signers[0].ask(good).kind == .response)
    }

    @Test func aRequestIDSignsOneDecisionAndAConflictIsEvidence() async throws {
        let signers = try signers()
        defer { signers.forEach { $0.remove() } }
        var round = try await SigningRound.start(signers)
        #expect(try await signers[0].ask(try round.request(for: 1, message: Array("allow".utf8))).kind == .response)
        // The same message again, with a fresh nonce: signed.
        round = try await SigningRound.start(signers)
        #expect(try await signers[0].ask(try round.request(for: 1, message: Array("allow".utf8))).kind == .response)
        // A different message for the same request id: refused, kept.
        round = try await SigningRound.start(signers)
        let refusal = try await signers[0].refusal(try round.request(for: 1, message: Array("deny".utf8)))
        #expect(refusal.reason == .conflictingDecision)
        #expect(refusal.detail.contains(Hex.encode(sha256Digest(Array("allow".utf8)))))
        #expect(refusal.detail.contains(Hex.encode(sha256Digest(Array("deny".utf8)))))
        let evidence = try #require(try signers[0].service.ledger.evidence().first)
        #expect(evidence.kind == "conflicting-decision")
        #expect(evidence.signedDigest == Hex.encode(sha256Digest(Array("allow".utf8))))
        #expect(evidence.requestedDigest == Hex.encode(sha256Digest(Array("deny".utf8))))
        #expect(try signers[0].service.ledger.decisionCount() == 1)
    }

    @Test func theDecisionOutlivesTheProcess() async throws {
        let keys = try fixture.keys(1)
        let directory = try TestKit.temporaryDirectory("signing-restart")
        defer { try? FileManager.default.removeItem(at: directory) }
        let others = try signers([2, 3])
        defer { others.forEach { $0.remove() } }
        weak var firstStore: NodeStore?
        func firstProcess() async throws {
            let first = try TestSigner(1, keys: keys, directory: directory)
            firstStore = first.store
            let round = try await SigningRound.start([first] + others)
            #expect(try await first.ask(try round.request(for: 1, message: Array("allow".utf8))).kind == .response)
        }
        try await firstProcess()
        // Its store closes once the last reference goes (a prune or evidence write may still hold it).
        for _ in 0..<500 where firstStore != nil { try await Task.sleep(for: .milliseconds(20)) }
        #expect(firstStore == nil)
        // A new process: another epoch, an empty pool, the same store.
        let second = try TestSigner(1, keys: keys, directory: directory)
        let round = try await SigningRound.start([second] + others)
        let refusal = try await second.refusal(try round.request(for: 1, message: Array("deny".utf8)))
        #expect(refusal.reason == .conflictingDecision)
    }

    @Test func decisionsPastTheRetentionWindowArePruned() async throws {
        var configuration = SigningService.Configuration()
        configuration.retention = .seconds(3600)
        let signers = try [1, 2, 3].map {
            try TestSigner(UInt16($0), keys: try fixture.keys(UInt16($0)), configuration: configuration)
        }
        defer { signers.forEach { $0.remove() } }
        var round = try await SigningRound.start(signers)
        #expect(try await signers[0].ask(try round.request(for: 1, requestID: "old")).kind == .response)
        signers[0].clock.advance(1_800_000)
        round = try await SigningRound.start(signers)
        #expect(try await signers[0].ask(try round.request(for: 1, requestID: "recent")).kind == .response)
        signers[0].clock.advance(1_800_001)
        #expect(try await signers[0].service.pruneNow() == 1)
        #expect(try signers[0].service.ledger.decision(for: "old") == nil)
        #expect(try signers[0].service.ledger.decision(for: "recent") != nil)
        // Past the window the request id is free again; inside it, not.
        round = try await SigningRound.start(signers)
        #expect(
            try await signers[0].ask(try round.request(for: 1, requestID: "old", message: Array("deny".utf8))).kind
                == .response)
        round = try await SigningRound.start(signers)
        #expect(
            try await signers[0].refusal(try round.request(for: 1, requestID: "recent", message: [9])).reason
                == .conflictingDecision)
    }

    @Test func concurrentRequestsForOneIDSignAtMostOneMessage() async throws {
        let signers = try signers()
        defer { signers.forEach { $0.remove() } }
        let signer = signers[0]
        var requests: [SignRequest] = []
        for index in 0..<16 {
            let round = try await SigningRound.start(signers)
            requests.append(try round.request(for: 1, requestID: "race", message: [UInt8(index % 2)]))
        }
        let kinds = try await withThrowingTaskGroup(of: (UInt8, FrameKind).self) { group in
            for request in requests {
                group.addTask { (request.message[0], try await signer.ask(request).kind) }
            }
            return try await group.reduce(into: [(UInt8, FrameKind)]()) { $0.append($1) }
        }
        let signed = Set(kinds.filter { $0.1 == .response }.map(\.0))
        #expect(signed.count == 1)
        let stored = try #require(try signer.service.ledger.decision(for: "race"))
        #expect(stored.digest == sha256Digest([signed.first!]))
    }

    @Test func commitmentBatchesAreCappedAndThePoolBounded() async throws {
        var configuration = SigningService.Configuration()
        configuration.pool = NoncePool.Configuration(capacity: 8, maximumPerRequest: 5)
        let signer = try TestSigner(1, keys: try fixture.keys(1), configuration: configuration)
        defer { signer.remove() }
        let batch = try await signer.commitments(200)
        #expect(batch.commitments.count == 5)
        #expect(batch.commitments.map(\.nonceID) == [1, 2, 3, 4, 5])
        _ = try await signer.commitments(5)
        #expect(signer.service.poolDepth == 8)
        #expect(Set(batch.commitments.map(\.commitment)).count == 5)
    }
}

@Suite struct SigningNoncePoolRules {
    let key: KeyPackage<Ed25519Suite>

    init() throws { key = try SigningHelpers.dealer(Ed25519Suite.self, k: 2, n: 3).0[0] }

    func fresh(_ count: Int) -> [SigningNonces<Ed25519Suite>] { (0..<count).map { _ in FROST.commit(key) } }

    @Test func takeRemovesTheNonceAndASecondTakeIsReuse() throws {
        var pool = NoncePool<Ed25519Suite>(bootEpoch: 5)
        let issued = pool.admit(fresh(3))
        #expect(issued.map(\.nonceID) == [1, 2, 3])
        #expect(pool.depth == 3)
        let nonce = try pool.take(2, epoch: 5).get()
        #expect(nonce.commitments == issued[1].commitments)
        #expect(nonce.isUsable)
        #expect(pool.depth == 2)
        #expect(pool.take(2, epoch: 5) == .failure(.alreadyUsed(nonceID: 2)))
    }

    @Test func idsNeverRepeatWithinAnEpoch() {
        var pool = NoncePool<Ed25519Suite>(bootEpoch: 5)
        var seen = Set<UInt64>()
        for _ in 0..<5 {
            for issued in pool.admit(fresh(4)) { #expect(seen.insert(issued.nonceID).inserted) }
            _ = pool.take(seen.min()!, epoch: 5)
        }
        #expect(seen.count == 20)
    }

    @Test func anotherEpochFindsNothing() {
        var old = NoncePool<Ed25519Suite>(bootEpoch: 1)
        _ = old.admit(fresh(2))
        #expect(old.take(1, epoch: 2) == .failure(.staleEpoch(requested: 2, current: 1)))
        #expect(old.depth == 2)
        // The next process: a new epoch and a pool that never saw the old ids' nonces.
        var restarted = NoncePool<Ed25519Suite>(bootEpoch: 2)
        #expect(restarted.take(1, epoch: 1) == .failure(.staleEpoch(requested: 1, current: 2)))
        #expect(restarted.take(1, epoch: 2) == .failure(.neverIssued(nonceID: 1)))
    }

    @Test func idsNeverIssuedAreNamedSo() {
        var pool = NoncePool<Ed25519Suite>(bootEpoch: 1)
        _ = pool.admit(fresh(1))
        #expect(pool.take(0, epoch: 1) == .failure(.neverIssued(nonceID: 0)))
        #expect(pool.take(2, epoch: 1) == .failure(.neverIssued(nonceID: 2)))
    }

    @Test func aFullPoolDiscardsTheOldest() {
        var pool = NoncePool<Ed25519Suite>(bootEpoch: 1, configuration: .init(capacity: 4))
        _ = pool.admit(fresh(3))
        _ = pool.admit(fresh(3))
        #expect(pool.depth == 4)
        #expect(pool.discardedCount == 2)
        #expect(pool.take(1, epoch: 1) == .failure(.discarded(nonceID: 1)))
        #expect(pool.take(2, epoch: 1) == .failure(.discarded(nonceID: 2)))
        #expect((try? pool.take(3, epoch: 1).get()) != nil)
        // Taken ids do not count against the capacity.
        _ = pool.admit(fresh(1))
        #expect(pool.depth == 4)
        #expect(pool.discardedCount == 2)
    }

    @Test func manyRoundsKeepMemoryBounded() {
        var pool = NoncePool<Ed25519Suite>(bootEpoch: 1, configuration: .init(capacity: 8, rememberedUses: 4))
        for round in 0..<200 {
            let issued = pool.admit(fresh(2))
            if round % 2 == 0 { _ = pool.take(issued[0].nonceID, epoch: 1) }
        }
        #expect(pool.depth == 8)
        // A use older than the remembered window is still refused, as no longer held.
        #expect(pool.take(1, epoch: 1) == .failure(.discarded(nonceID: 1)))
    }

    @Test func failuresNameTheEpochsAndTheNonce() {
        #expect(
            NoncePool<Ed25519Suite>.TakeFailure.staleEpoch(requested: 0xAB, current: 0xCD).description
                == "commitments of an earlier boot: the request names epoch 00000000000000ab, this node's epoch is "
                + "00000000000000cd; fetch fresh commitments")
        #expect(
            NoncePool<Ed25519Suite>.TakeFailure.alreadyUsed(nonceID: 7).description
                == "nonce 7 was already used for a signature; a nonce signs once")
    }
}

extension Result where Success == SigningNonces<Ed25519Suite>, Failure == NoncePool<Ed25519Suite>.TakeFailure {
    static func == (lhs: Self, rhs: Self) -> Bool {
        switch (lhs, rhs) {
        case (.failure(let a), .failure(let b)): a == b
        case (.success(let a), .success(let b)): a === b
        default: false
        }
    }
}
