import QuorumCrypto
import QuorumLog
import QuorumProtocol
import Testing

@testable import QuorumNode

/// The replica's and the sequencer's decisions as plain values: what a node does with a batch, a
/// published checkpoint, a term claim and a cosignature, and what a new sequencer proposes first.
/// No sockets, no store, no clock.
@Suite("Replica rules")
struct ReplicaRulesTests {
    static let emptyRoot = RFC9162.emptyRoot

    static func entries(_ range: Range<Int>) -> [[UInt8]] { range.map { Array("entry \($0)".utf8) } }

    /// The head of a log made of `entries(0..<size)`.
    static func head(_ size: Int) -> TreeHead {
        var frontier = MerkleFrontier()
        for entry in entries(0..<size) { frontier.append(entry: entry) }
        return TreeHead(size: frontier.size, root: frontier.root)
    }

    static func slot(_ id: UInt16) throws -> SignerSlot {
        try SignerSlot(identifier: id, bootEpoch: 1, nonceID: 1, commitment: [UInt8](repeating: UInt8(id), count: 64))
    }

    /// A batch of term `term` (node `proposer`'s) extending `base` with `entries`.
    static func batch(
        term: UInt64 = ReplicaRules.term(after: 0, for: 1), proposer: UInt16 = 1, base: TreeHead = head(10),
        entries: [[UInt8]] = entries(10..<14)
    ) throws -> LogBatch {
        try LogBatch(
            term: term, proposer: proposer, baseSize: base.size, baseRoot: base.root, entries: entries,
            signers: [try slot(1), try slot(2), try slot(3)])
    }

    /// Facts of a healthy node whose log ends at `head(10)`, for a batch of `entries(10..<14)`.
    static func facts(highestTerm: UInt64 = 0) -> ReplicaRules.BatchFacts {
        ReplicaRules.BatchFacts(
            highestTerm: highestTerm, log: head(10), stopped: nil, hasGroupKey: true, invalidEntries: [],
            alreadyLogged: [], result: head(14), signedRoot: nil)
    }

    static func refusal(_ result: Result<ReplicaRules.Acceptance, LogRefusal>) -> LogRefusal? {
        if case .failure(let refusal) = result { return refusal }
        return nil
    }

    @Test("Terms carry their proposer in the low 16 bits and only grow")
    func terms() {
        let first = ReplicaRules.term(after: 0, for: 3)
        #expect(ReplicaRules.proposer(of: first) == 3)
        let next = ReplicaRules.term(after: first, for: 2)
        #expect(next > first)
        #expect(ReplicaRules.proposer(of: next) == 2)
        #expect(ReplicaRules.term(after: next, for: 3) > next)
    }

    @Test("A batch that extends the log is staged with the checkpoint it makes and the raised term")
    func accepts() throws {
        let batch = try Self.batch()
        let result = ReplicaRules.acceptBatch(batch, facts: Self.facts())
        let acceptance = try result.get()
        #expect(acceptance.staged.size == 14)
        #expect(acceptance.staged.root == Self.head(14).root)
        #expect(acceptance.staged.baseSize == 10)
        #expect(acceptance.staged.entries == batch.entries)
        #expect(acceptance.highestTerm == batch.term)
        // The same batch again (a retry with other signers) is accepted again: same root.
        var again = Self.facts(highestTerm: batch.term)
        again.signedRoot = Self.head(14).root
        #expect((try? ReplicaRules.acceptBatch(batch, facts: again).get()) != nil)
    }

    @Test("A batch of a lower term is refused: stale-term, naming both terms")
    func lowerTerm() throws {
        let old = ReplicaRules.term(after: 0, for: 1)
        let newer = ReplicaRules.term(after: old, for: 2)
        let refusal = try #require(
            Self.refusal(ReplicaRules.acceptBatch(try Self.batch(term: old), facts: Self.facts(highestTerm: newer))))
        #expect(refusal.reason == .staleTerm)
        #expect(refusal.detail.contains("\(old)") && refusal.detail.contains("\(newer)"))
    }

    @Test("A base other than the log's end is refused: wrong-base, or behind when it is beyond")
    func wrongBase() throws {
        let other = try #require(
            Self.refusal(ReplicaRules.acceptBatch(try Self.batch(base: Self.head(9)), facts: Self.facts())))
        #expect(other.reason == .wrongBase)
        #expect(other.detail.contains("size 9") && other.detail.contains("size 10"))
        let forged = TreeHead(size: 10, root: Self.head(9).root)
        #expect(
            Self.refusal(ReplicaRules.acceptBatch(try Self.batch(base: forged), facts: Self.facts()))?.reason
                == .wrongBase)
        let ahead = try #require(
            Self.refusal(ReplicaRules.acceptBatch(try Self.batch(base: Self.head(12)), facts: Self.facts())))
        #expect(ahead.reason == .behind)
    }

    @Test("An entry already logged, or twice in the batch, is refused: duplicate-entry, naming it")
    func duplicates() throws {
        var facts = Self.facts()
        facts.alreadyLogged = [2]
        let logged = try #require(Self.refusal(ReplicaRules.acceptBatch(try Self.batch(), facts: facts)))
        #expect(logged.reason == .duplicateEntry)
        #expect(logged.detail.contains("entry 2"))
        let twice = try Self.batch(entries: Self.entries(10..<13) + Self.entries(11..<12))
        let refusal = try #require(Self.refusal(ReplicaRules.acceptBatch(twice, facts: Self.facts())))
        #expect(refusal.reason == .duplicateEntry)
        #expect(refusal.detail.contains("entry 3") && refusal.detail.contains("twice"))
    }

    @Test("An allow receipt without a valid group signature refuses the batch, naming the entry")
    func badGroupSignature() throws {
        var facts = Self.facts()
        facts.invalidEntries = [(1, LogRefusal(.invalidReceipt, "request req_1: the receipt does not verify"))]
        let refusal = try #require(Self.refusal(ReplicaRules.acceptBatch(try Self.batch(), facts: facts)))
        #expect(refusal.reason == .invalidReceipt)
        #expect(refusal.detail.contains("entry 1 of the batch"))
    }

    @Test("A node that signed another root for the size refuses: conflicting-checkpoint, both roots named")
    func conflictingSize() throws {
        var facts = Self.facts()
        let signed = [UInt8](repeating: 7, count: 32)
        facts.signedRoot = signed
        let refusal = try #require(Self.refusal(ReplicaRules.acceptBatch(try Self.batch(), facts: facts)))
        #expect(refusal.reason == .conflictingCheckpoint)
        #expect(refusal.detail.contains(Hex.encode(signed)) && refusal.detail.contains(Hex.encode(Self.head(14).root)))
    }

    @Test("A stopped node, or one without keys, signs nothing")
    func stoppedOrKeyless() throws {
        var stopped = Self.facts()
        stopped.stopped = "the stored log disagrees"
        #expect(Self.refusal(ReplicaRules.acceptBatch(try Self.batch(), facts: stopped))?.reason == .stopped)
        var keyless = Self.facts()
        keyless.hasGroupKey = false
        #expect(Self.refusal(ReplicaRules.acceptBatch(try Self.batch(), facts: keyless))?.reason == .noGroupKey)
    }

    @Test("A term claim is promised only above every term seen")
    func claims() {
        #expect(ReplicaRules.claim(5, highestTerm: 4) == (true, 5))
        #expect(ReplicaRules.claim(4, highestTerm: 4) == (false, 4))
        #expect(ReplicaRules.claim(3, highestTerm: 4) == (false, 4))
    }

    @Test("A published checkpoint: append the staged batch, catch up, already held, or disagree")
    func published() throws {
        let staged = try StagedBatch(
            term: 1, proposer: 1, baseSize: 10, baseRoot: Self.head(10).root, size: 14, root: Self.head(14).root,
            entries: Self.entries(10..<14))
        #expect(
            ReplicaRules.onPublished(Self.head(14), log: Self.head(10), rootAtSize: nil, staged: staged)
                == .appendStaged(staged))
        #expect(
            ReplicaRules.onPublished(Self.head(20), log: Self.head(10), rootAtSize: nil, staged: staged)
                == .catchUp(Self.head(20)))
        #expect(
            ReplicaRules.onPublished(Self.head(14), log: Self.head(10), rootAtSize: nil, staged: nil)
                == .catchUp(Self.head(14)))
        #expect(
            ReplicaRules.onPublished(Self.head(8), log: Self.head(10), rootAtSize: Self.head(8).root, staged: nil)
                == .alreadyHeld)
        guard
            case .disagree(let reason) = ReplicaRules.onPublished(
                Self.head(8), log: Self.head(10), rootAtSize: Self.head(7).root, staged: nil)
        else {
            Issue.record("a checkpoint with another root at a held size must be a disagreement")
            return
        }
        #expect(reason.contains("size 8"))
    }

    @Test("Cosignatures: first seen is recorded, the same root is nothing, another root is equivocation")
    func cosignatures() {
        let root = [UInt8](repeating: 1, count: 32)
        #expect(ReplicaRules.observe(root: root, recorded: nil) == .record)
        #expect(ReplicaRules.observe(root: root, recorded: root) == .same)
        #expect(ReplicaRules.observe(root: root, recorded: [UInt8](repeating: 2, count: 32)) == .equivocation)
    }

    // MARK: - The sequencer's plan

    static func state(
        _ id: UInt16, promised: Bool = true, log: TreeHead = head(10), checkpoint: TreeHead? = head(10),
        staged: StagedBatch? = nil
    ) -> SequencerPlan.NodeState {
        SequencerPlan.NodeState(
            nodeID: id, promised: promised, highestTerm: 7, log: log, checkpoint: checkpoint, staged: staged)
    }

    @Test("Fewer than k promises: claim again above the highest term seen")
    func tooFewPromises() {
        let step = SequencerPlan.plan(
            own: Self.head(10), states: [Self.state(1), Self.state(2, promised: false), Self.state(3)], threshold: 3)
        #expect(step == .claimAgain(highestTerm: 7))
    }

    @Test("A node holding a newer checkpoint: catch up from the nodes whose log reaches it")
    func newerCheckpoint() {
        let step = SequencerPlan.plan(
            own: Self.head(10),
            states: [
                Self.state(1), Self.state(2, log: Self.head(14), checkpoint: Self.head(14)),
                Self.state(3, log: Self.head(10), checkpoint: Self.head(14)),
            ], threshold: 3)
        #expect(step == .catchUp(Self.head(14), from: [2]))
    }

    @Test("A staged batch that extends the log is proposed again, the one of the highest term")
    func reproposes() throws {
        let older = try StagedBatch(
            term: ReplicaRules.term(after: 0, for: 1), proposer: 1, baseSize: 10, baseRoot: Self.head(10).root,
            size: 12, root: Self.head(12).root, entries: Self.entries(10..<12))
        let newer = try StagedBatch(
            term: ReplicaRules.term(after: older.term, for: 2), proposer: 2, baseSize: 10,
            baseRoot: Self.head(10).root, size: 14, root: Self.head(14).root, entries: Self.entries(10..<14))
        let stale = try StagedBatch(
            term: ReplicaRules.term(after: newer.term, for: 2), proposer: 2, baseSize: 8, baseRoot: Self.head(8).root,
            size: 9, root: Self.head(9).root, entries: Self.entries(8..<9))
        let step = SequencerPlan.plan(
            own: Self.head(10),
            states: [Self.state(1, staged: older), Self.state(2, staged: newer), Self.state(3, staged: stale)],
            threshold: 3)
        #expect(step == .repropose(newer))
    }

    @Test("Nothing staged and nothing newer: propose new entries")
    func proposesNew() {
        let step = SequencerPlan.plan(
            own: Self.head(10), states: [Self.state(1), Self.state(2), Self.state(3), Self.state(4)], threshold: 3)
        #expect(step == .proposeNew)
    }
}

/// The pending pool: arrival order kept, entries leaving from anywhere, a batch of the oldest
/// within its limits.
@Suite("Pending pool")
struct PendingPoolTests {
    static func leaf(_ index: Int) -> [UInt8] { RFC9162.leafHash(Array("entry \(index)".utf8)) }

    static func pool(_ count: Int) -> PendingPool {
        var pool = PendingPool()
        for index in 0..<count {
            pool.insert(
                leaf: leaf(index),
                PendingPool.Item(
                    entry: [UInt8](repeating: UInt8(index % 256), count: 10), sequence: UInt64(index), arrived: .now))
        }
        return pool
    }

    @Test("The oldest entries come first, skipping those in flight and those gone")
    func oldestFirst() {
        var pool = Self.pool(10)
        pool.remove(Self.leaf(0))
        pool.remove(Self.leaf(3))
        let taken = pool.oldest(excluding: [Self.leaf(1)], limit: 4, maximumBytes: .max)
        #expect(taken.map(\.item.sequence) == [2, 4, 5, 6])
        #expect(pool.count == 8)
        #expect(!pool.contains(Self.leaf(3)) && pool.contains(Self.leaf(9)))
    }

    @Test("A batch stops at its byte budget, but never comes back empty")
    func byteBudget() {
        let pool = Self.pool(10)
        #expect(pool.oldest(excluding: [], limit: 100, maximumBytes: 35).count == 3)
        #expect(pool.oldest(excluding: [], limit: 100, maximumBytes: 1).count == 1)
    }

    @Test("Inserting an entry already in changes nothing; many removals keep the order right")
    func churn() {
        var pool = Self.pool(3000)
        pool.insert(leaf: Self.leaf(5), PendingPool.Item(entry: [1], sequence: 99_999, arrived: .now))
        #expect(pool.count == 3000)
        for index in 0..<2500 { pool.remove(Self.leaf(index)) }
        #expect(pool.count == 500)
        #expect(pool.oldest(excluding: [], limit: 2, maximumBytes: .max).map(\.item.sequence) == [2500, 2501])
    }
}
