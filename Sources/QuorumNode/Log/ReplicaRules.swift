import QuorumCrypto
import QuorumLog
import QuorumProtocol

/// A log's end or a checkpoint's claim: a tree size and its root.
public struct TreeHead: Sendable, Hashable, CustomStringConvertible {
    /// The number of entries.
    public let size: UInt64
    /// The RFC 9162 root at that size (32 bytes).
    public let root: [UInt8]

    /// A head.
    public init(size: UInt64, root: [UInt8]) {
        self.size = size
        self.root = root
    }

    /// `size N root <hex prefix>`, for messages.
    public var description: String { "size \(size) root \(Hex.encode(root.prefix(8)))…" }
}

/// The replica's decisions as plain values (STYLE.md 2): given what a node knows (its highest term,
/// its log's end, what it signed, what the shell looked up), each function says what to do, with a
/// refusal that names the rule. The ``LogService`` shell gathers the facts, writes and sends.
public enum ReplicaRules {
    /// The node whose term `term` is: terms carry their proposer's id in their low 16 bits, so two
    /// sequencers can never claim the same term.
    public static func proposer(of term: UInt64) -> UInt16 { UInt16(truncatingIfNeeded: term) }

    /// The smallest term of `proposer` above `term`.
    public static func term(after term: UInt64, for proposer: UInt16) -> UInt64 {
        ((term >> 16) + 1) << 16 | UInt64(proposer)
    }

    // MARK: - Batches

    /// What a node knows when a batch arrives, looked up by the shell.
    public struct BatchFacts: Sendable {
        /// The highest term the node has seen.
        public var highestTerm: UInt64
        /// The end of the node's Merkle log (its newest quorum checkpoint).
        public var log: TreeHead
        /// Why the node signs nothing, if it does not.
        public var stopped: String?
        /// Whether the node holds the group key.
        public var hasGroupKey: Bool
        /// Positions in the batch of entries that do not pass ``EntryCheck`` (well formed, and an
        /// allow receipt signed by the group), with the refusal; the first is reported.
        public var invalidEntries: [(position: Int, refusal: LogRefusal)]
        /// Positions in the batch of entries whose leaf is already in the node's log.
        public var alreadyLogged: [Int]
        /// The head the log would have with the batch appended (from ``MerkleFrontier``).
        public var result: TreeHead
        /// The root this node signed for `result.size` before, if it signed one.
        public var signedRoot: [UInt8]?

        /// Facts for a batch.
        public init(
            highestTerm: UInt64, log: TreeHead, stopped: String?, hasGroupKey: Bool,
            invalidEntries: [(position: Int, refusal: LogRefusal)], alreadyLogged: [Int], result: TreeHead,
            signedRoot: [UInt8]?
        ) {
            self.highestTerm = highestTerm
            self.log = log
            self.stopped = stopped
            self.hasGroupKey = hasGroupKey
            self.invalidEntries = invalidEntries
            self.alreadyLogged = alreadyLogged
            self.result = result
            self.signedRoot = signedRoot
        }
    }

    /// What the node does with a batch it accepts: stage it (one synced write, with the raised
    /// term and the signed-root record) before it answers.
    public struct Acceptance: Sendable, Hashable {
        /// The batch as it is stored.
        public let staged: StagedBatch
        /// The node's highest term after the batch.
        public let highestTerm: UInt64
    }

    /// The terms, cheapest first: refusing a batch of a stale term costs no entry check. The shell
    /// calls this before it checks entries.
    public static func checkTerm(_ batch: LogBatch, highestTerm: UInt64) -> LogRefusal? {
        guard batch.term >= highestTerm else {
            return LogRefusal(
                .staleTerm,
                "batch of term \(batch.term) (node \(proposer(of: batch.term))) is below the highest term seen, "
                    + "\(highestTerm) (node \(proposer(of: highestTerm)))")
        }
        guard proposer(of: batch.term) == batch.proposer else {
            return LogRefusal(
                .wrongProposer, "term \(batch.term) belongs to node \(proposer(of: batch.term)), not \(batch.proposer)")
        }
        return nil
    }

    /// Whether to stage `batch`, given `facts`; a refusal names the first rule it breaks.
    ///
    /// The rules, in order: a node that stopped signing or holds no key refuses; the term must be
    /// at least the highest seen and belong to the proposer; the base must be the node's log end
    /// (a base beyond it means the node is behind); every entry well formed, allow receipts signed
    /// by the group; no entry already logged or twice in the batch; and the checkpoint it makes
    /// must not be of a size for which the node signed another root.
    public static func acceptBatch(
        _ batch: LogBatch, facts: BatchFacts
    ) -> Result<Acceptance, LogRefusal> {
        if let stopped = facts.stopped { return .failure(LogRefusal(.stopped, stopped)) }
        guard facts.hasGroupKey else {
            return .failure(LogRefusal(.noGroupKey, "no group key yet; run the key ceremony first"))
        }
        if let refusal = checkTerm(batch, highestTerm: facts.highestTerm) { return .failure(refusal) }
        guard batch.baseSize <= facts.log.size else {
            return .failure(
                LogRefusal(
                    .behind,
                    "the batch extends size \(batch.baseSize); this node's log ends at \(facts.log.size) "
                        + "and is catching up"))
        }
        guard batch.baseSize == facts.log.size, batch.baseRoot == facts.log.root else {
            return .failure(
                LogRefusal(
                    .wrongBase,
                    "the batch extends \(TreeHead(size: batch.baseSize, root: batch.baseRoot)); this node's log ends "
                        + "at \(facts.log)"))
        }
        if let (position, refusal) = facts.invalidEntries.min(by: { $0.position < $1.position }) {
            return .failure(LogRefusal(refusal.reason, "entry \(position) of the batch: \(refusal.detail)"))
        }
        if let position = facts.alreadyLogged.min() {
            return .failure(LogRefusal(.duplicateEntry, "entry \(position) of the batch is already in the log"))
        }
        var seen = Set<[UInt8]>()
        for (position, entry) in batch.entries.enumerated() where !seen.insert(RFC9162.leafHash(entry)).inserted {
            return .failure(LogRefusal(.duplicateEntry, "entry \(position) of the batch appears twice in it"))
        }
        if let signed = facts.signedRoot, signed != facts.result.root {
            return .failure(
                LogRefusal(
                    .conflictingCheckpoint,
                    "this node signed root \(Hex.encode(signed)) for size \(facts.result.size); the batch makes root "
                        + "\(Hex.encode(facts.result.root)), and a node never signs two roots for one size"))
        }
        do {
            let staged = try StagedBatch(
                term: batch.term, proposer: batch.proposer, baseSize: batch.baseSize, baseRoot: batch.baseRoot,
                size: facts.result.size, root: facts.result.root, entries: batch.entries)
            return .success(Acceptance(staged: staged, highestTerm: max(facts.highestTerm, batch.term)))
        } catch {
            return .failure(LogRefusal(.malformedEntry, "\(error)"))
        }
    }

    // MARK: - Terms

    /// A claim of `term` against the node's `highestTerm`: promised (and raised, durably) only when
    /// it is above every term seen before.
    public static func claim(_ term: UInt64, highestTerm: UInt64) -> (promised: Bool, highestTerm: UInt64) {
        term > highestTerm ? (true, term) : (false, highestTerm)
    }

    // MARK: - Published checkpoints

    /// What a node does with a checkpoint the quorum signed (its group signature verified).
    public enum PublishedStep: Sendable, Hashable {
        /// Its log already holds it (same root): store the note if it is the newest and carries news.
        case alreadyHeld
        /// It covers exactly the staged batch: append the batch with the note, in one write.
        case appendStaged(StagedBatch)
        /// It is beyond the log and the staged batch does not make it: fetch entries from peers.
        case catchUp(TreeHead)
        /// The log has another root at its size: this node's store disagrees with the quorum.
        case disagree(String)
    }

    /// The step for a published `checkpoint`, given the node's `log`, its root at the checkpoint's
    /// size when that is within the log (`rootAtSize`), and its `staged` batch.
    public static func onPublished(
        _ checkpoint: TreeHead, log: TreeHead, rootAtSize: [UInt8]?, staged: StagedBatch?
    ) -> PublishedStep {
        if checkpoint.size <= log.size {
            guard let rootAtSize else { return .catchUp(checkpoint) }
            return rootAtSize == checkpoint.root
                ? .alreadyHeld
                : .disagree(
                    "the quorum signed root \(Hex.encode(checkpoint.root)) for size \(checkpoint.size); "
                        + "this node's log has root \(Hex.encode(rootAtSize)) there")
        }
        if let staged, staged.baseSize == log.size, staged.baseRoot == log.root, staged.size == checkpoint.size,
            staged.root == checkpoint.root
        {
            return .appendStaged(staged)
        }
        return .catchUp(checkpoint)
    }

    // MARK: - Equivocation

    /// What one valid cosignature over (size, root) means, given the root the same key was seen
    /// signing for that size before (`recorded`).
    public enum CosignatureStep: Sendable, Hashable {
        /// First seen for this key and size: record it.
        case record
        /// The same root as before: nothing new.
        case same
        /// Another root for the same size: the key signed a fork; keep both notes as evidence.
        case equivocation
    }

    /// See ``CosignatureStep``.
    public static func observe(root: [UInt8], recorded: [UInt8]?) -> CosignatureStep {
        guard let recorded else { return .record }
        return recorded == root ? .same : .equivocation
    }
}

/// A new sequencer's plan from the states of the nodes that answered its term claim (DESIGN.md
/// §5, "The log"): catch up first if anyone holds a newer quorum checkpoint, then propose again
/// the staged batch of the highest term that extends the newest checkpoint (a batch some node may
/// have signed, which must never be replaced by another root of its size), and only then anything
/// new. A plain value: the shell gathers the answers and carries the plan out.
public struct SequencerPlan: Sendable, Hashable {
    /// One node's answer, reduced to what planning needs. `checkpoint` is the newest quorum
    /// checkpoint it knows, already verified under the group key by the shell.
    public struct NodeState: Sendable, Hashable {
        /// The node.
        public let nodeID: UInt16
        /// Whether it promised the claimed term.
        public let promised: Bool
        /// Its highest term.
        public let highestTerm: UInt64
        /// Its log's end.
        public let log: TreeHead
        /// The newest verified quorum checkpoint it knows (nil: none).
        public let checkpoint: TreeHead?
        /// Its staged batch.
        public let staged: StagedBatch?

        /// A state.
        public init(
            nodeID: UInt16, promised: Bool, highestTerm: UInt64, log: TreeHead, checkpoint: TreeHead?,
            staged: StagedBatch?
        ) {
            self.nodeID = nodeID
            self.promised = promised
            self.highestTerm = highestTerm
            self.log = log
            self.checkpoint = checkpoint
            self.staged = staged
        }
    }

    /// What the sequencer does next.
    public enum Step: Sendable, Hashable {
        /// Fewer than k nodes promised: claim a term above `highestTerm` later.
        case claimAgain(highestTerm: UInt64)
        /// A node holds a newer checkpoint than the sequencer's log: catch up to it, then plan again.
        case catchUp(TreeHead, from: [UInt16])
        /// Propose these entries again, extending the sequencer's log, before anything new.
        case repropose(StagedBatch)
        /// Nothing is in flight: propose new entries.
        case proposeNew
    }

    /// The plan for the sequencer whose log ends at `own`, claiming a term with `threshold` k,
    /// from `states` (its own included).
    public static func plan(own: TreeHead, states: [NodeState], threshold: Int) -> Step {
        let promised = states.filter(\.promised)
        guard promised.count >= threshold else {
            return .claimAgain(highestTerm: states.map(\.highestTerm).max() ?? 0)
        }
        let newest = states.compactMap(\.checkpoint).max { $0.size < $1.size }
        if let newest, newest.size > own.size {
            let holders = states.filter { $0.log.size >= newest.size }.map(\.nodeID).sorted()
            return .catchUp(newest, from: holders)
        }
        let extending = states.compactMap(\.staged).filter { $0.baseSize == own.size && $0.baseRoot == own.root }
        if let highest = extending.max(by: { $0.term < $1.term }) { return .repropose(highest) }
        return .proposeNew
    }
}
