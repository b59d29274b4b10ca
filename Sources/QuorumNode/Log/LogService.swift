import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QuorumCrypto
import QuorumIdentity
import QuorumLog
import QuorumProtocol
import ServiceLifecycle

/// The replicated audit log's node side (DESIGN.md §5, "The log"; docs/audit-log.md,
/// "Replication"): the I/O shell around ``ReplicaRules`` and ``SequencerPlan``.
///
/// - **Entries in.** ``LogSubmit`` (proxies' receipts) and the node's own entries are checked
///   (``EntryCheck``), kept in the durable pending pool (one group-committed synced write) and
///   gossiped once to every peer (``LogGossip``), which checks them alike and does not pass them on.
/// - **Sequencer.** The lowest node id membership sees live (less any it suspects of making no
///   progress) claims a term (``LogStatusRequest`` to the live nodes, its own id in the term's low
///   bits), plans from the answers (catch up, propose a staged batch again, or propose new entries)
///   and then proposes ``LogBatch``es every `batchInterval` with k signer slots.
/// - **Append then sign.** A node stages a batch it accepts in one synced write (the batch, the
///   raised term, the root signed for its size) before it answers with its cosignature and FROST
///   share. The sequencer aggregates k shares, checks the group signature under the group key,
///   and broadcasts ``CheckpointPublish``; a node appends its staged batch together with the
///   checkpoint in one synced write. The Merkle log therefore only ever holds what a quorum
///   checkpoint covers, and needs no truncation when a sequencer dies mid-batch.
/// - **Catch-up.** A node behind a quorum checkpoint fetches entries from peers (``LogFetchRequest``),
///   checks each, and appends them only when they make the root of a checkpoint the quorum signed.
/// - **Stopping.** A node whose stored log fails its audit at start, or disagrees with a quorum
///   checkpoint, stops signing, logs it at error and reports it in ``LogStatusResponse``.
/// - **Evidence.** Every valid cosignature in a note seen is remembered per key and size; another
///   root for the same key and size is kept as ``EquivocationEvidence``.
public final class LogService: NodeFrameHandler, Service, Sendable {
    /// Timings and bounds.
    public struct Configuration: Sendable, Hashable {
        /// How long the sequencer lets entries gather before it proposes them.
        public var batchInterval: Duration = .milliseconds(100)
        /// The most entries in one batch.
        public var maximumBatchEntries = 1024
        /// The most bytes of entries in one batch.
        public var maximumBatchBytes = 1 << 20
        /// The most entries the pending pool holds; submissions beyond it are refused `overloaded`.
        public var maximumPending = 100_000
        /// The deadline of each request to a peer.
        public var requestDeadline: Duration = .seconds(3)
        /// How long the sequencer waits for the rest of the nodes' answers once its k signers answered.
        public var cosignatureGrace: Duration = .milliseconds(50)
        /// Entries pending longer than this are sent to the sequencer again (it may have missed them).
        public var forwardAfter: Duration = .seconds(2)
        /// Entries pending this long with no batch or checkpoint seen meanwhile make a node suspect
        /// the sequencer it expects, and pass it over for ``suspicion``.
        public var failoverAfter: Duration = .seconds(5)
        /// How long a suspected sequencer is passed over.
        public var suspicion: Duration = .seconds(30)
        /// How often a node with nothing else to catch up asks its peers whether it is behind.
        public var catchUpProbe: Duration = .seconds(10)
        /// How long after deciding a node expects the decision's receipt in the log (``UnloggedWatch``).
        public var unloggedAfter: Duration = .seconds(60)

        /// The defaults.
        public init() {}
    }

    /// Who may send what: entries from proxies and nodes; the replication protocol between nodes;
    /// status and entries to anyone of the cluster (they are public facts).
    public static let roles: [UInt16: Set<ClusterRole>] = [
        LogSubmit.type: [.proxy, .node], LogGossip.type: [.node], LogBatch.type: [.node],
        CheckpointPublish.type: [.node], LogStatusRequest.type: [.node, .operator, .proxy],
        LogFetchRequest.type: [.node, .operator, .proxy],
    ]

    /// ``roles``, as ``NodeFrameHandler`` asks.
    public var requestRoles: [UInt16: Set<ClusterRole>] { Self.roles }

    /// The log on disk, as the audit API reads it.
    public let replicated: ReplicatedLog

    /// The newest quorum checkpoint known, verified under the group key.
    struct Known: Sendable {
        var note: SignedNote
        var head: TreeHead
        var at: Int64
    }

    /// The in-memory mirror of what the store holds, and the sequencer's own state.
    struct Core: Sendable {
        var highestTerm: UInt64 = 0
        var staged: StagedBatch?
        var known: Known?
        var stopped: String?
        var pending = PendingPool()
        var nextSequence: UInt64 = 1
        /// Leaf hashes of the batch this node is proposing as sequencer.
        var inFlight: Set<[UInt8]> = []
        /// The term this node holds as sequencer, once k nodes promised it.
        var term: UInt64?
        /// The highest term seen in answers, so the next claim goes above it.
        var claimFloor: UInt64 = 0
        var lastProgress = ContinuousClock.now
        var suspected: [UInt16: ContinuousClock.Instant] = [:]
        var catchingUp = false
        /// A catch-up was asked for while one ran.
        var catchUpAgain = false
        /// When a catch-up last started (or was asked for).
        var lastCatchUp = ContinuousClock.now
        var lastForward = ContinuousClock.now
        var started = false

        /// The node that holds the highest term, when another: this node defers to it as long as
        /// it is live (until `yieldUntil`), so two nodes that disagree on who should sequence do
        /// not take the term from each other again and again.
        var yieldTo: UInt16?
        var yieldUntil = ContinuousClock.now

        /// Records that `term` is the highest seen; a term of another node makes this one give up
        /// its own and defer to that node for `duration`.
        mutating func follow(_ term: UInt64, this nodeID: UInt16, for duration: Duration) {
            let proposer = ReplicaRules.proposer(of: term)
            guard proposer != nodeID else { return }
            self.term = nil
            yieldTo = proposer
            yieldUntil = .now + duration
        }

        /// What decisions read, without the pending pool: a copy of the whole state would copy
        /// the pool as soon as the state changes while the copy lives.
        var summary: Summary {
            Summary(
                highestTerm: highestTerm, staged: staged, known: known, stopped: stopped, pending: pending.count)
        }
    }

    /// See ``Core/summary``.
    struct Summary: Sendable {
        var highestTerm: UInt64
        var staged: StagedBatch?
        var known: Known?
        var stopped: String?
        var pending: Int
    }

    private struct Admission: Sendable {
        let items: [(leaf: [UInt8], entry: [UInt8])]
        let promise: EventLoopPromise<[Bool]>
    }

    private let nodeID: UInt16
    private let identity: Ed25519KeyPair
    private let keys: @Sendable () -> NodeKeys?
    private let signing: SigningService
    private let membership: MembershipService
    private let links: PeerLinks
    private let client: NodeClient
    private let peerNodes: [ClusterFile.Node]
    private let coordinator = NIOLockedValueBox<(groupKey: [UInt8], coordinator: SigningCoordinator)?>(nil)
    private let threadPool: NIOThreadPool
    private let eventLoop: any EventLoop
    private let configuration: Configuration
    private let logger: Logger
    private let core: NIOLockedValueBox<Core>
    /// Held across every decision that reads the store and writes it, on the thread pool, so that
    /// admissions, staging, appends and term claims never interleave.
    private let writing = NIOLock()
    private let admissions: BatchWriter<Admission>

    /// A service for node `nodeID` over `replicated`, reaching `peers` with `client`.
    ///
    /// - Throws: when the stored replica records cannot be read.
    public init(
        nodeID: UInt16, identity: Ed25519KeyPair, replicated: ReplicatedLog, keys: @escaping @Sendable () -> NodeKeys?,
        signing: SigningService, membership: MembershipService, client: NodeClient,
        peers: [MembershipService.PeerAddress], configuration: Configuration = Configuration(),
        threadPool: NIOThreadPool = .singleton, logger: Logger
    ) throws {
        self.nodeID = nodeID
        self.identity = identity
        self.replicated = replicated
        self.keys = keys
        self.signing = signing
        self.membership = membership
        self.client = client
        self.links = PeerLinks(client: client, peers: peers)
        self.peerNodes = peers.map { ClusterFile.Node(id: $0.nodeID, address: $0.address) }
        self.configuration = configuration
        self.threadPool = threadPool
        self.eventLoop = MultiThreadedEventLoopGroup.singleton.any()
        self.logger = logger
        var initial = Core()
        initial.highestTerm = try replicated.highestTerm()
        initial.staged = try replicated.staged()
        if let (note, at) = try replicated.knownCheckpoint(), let checkpoint = try? Checkpoint.parse(note.text) {
            initial.known = Known(note: note, head: TreeHead(size: checkpoint.size, root: checkpoint.rootHash), at: at)
        }
        let now = ContinuousClock.now
        for (sequence, entry) in try replicated.pendingEntries() {
            initial.pending.insert(
                leaf: RFC9162.leafHash(entry), PendingPool.Item(entry: entry, sequence: sequence, arrived: now))
            initial.nextSequence = max(initial.nextSequence, sequence + 1)
        }
        initial.stopped = "checking the stored log against its checkpoints (start-up audit)"
        let core = NIOLockedValueBox(initial)
        self.core = core
        let writing = writing
        let log = replicated.log
        admissions = BatchWriter(threadPool: threadPool) { batch, active in
            guard active else {
                for item in batch { item.promise.fail(CancellationError()) }
                return
            }
            writing.withLock {
                do {
                    var flags: [[Bool]] = []
                    var fresh: [(leaf: [UInt8], entry: [UInt8])] = []
                    var chosen = Set<[UInt8]>()
                    let inPool = core.withLockedValue { state in
                        Set(batch.flatMap { $0.items.map(\.leaf) }.filter { state.pending.contains($0) })
                    }
                    let all = batch.flatMap { $0.items.map(\.leaf) }
                    let logged = try log.indices(ofLeafHashes: all)
                    var position = 0
                    for item in batch {
                        var itemFlags: [Bool] = []
                        for entry in item.items {
                            let new =
                                logged[position] == nil && !inPool.contains(entry.leaf)
                                && chosen.insert(entry.leaf).inserted
                            if new { fresh.append(entry) }
                            itemFlags.append(new)
                            position += 1
                        }
                        flags.append(itemFlags)
                    }
                    let sequence = core.withLockedValue { $0.nextSequence }
                    try log.writeCompanion(ReplicatedLog.pend(fresh, from: sequence))
                    let arrived = ContinuousClock.now
                    core.withLockedValue { state in
                        for (offset, item) in fresh.enumerated() {
                            state.pending.insert(
                                leaf: item.leaf,
                                PendingPool.Item(
                                    entry: item.entry, sequence: sequence + UInt64(offset), arrived: arrived))
                        }
                        state.nextSequence = sequence + UInt64(fresh.count)
                    }
                    for (item, itemFlags) in zip(batch, flags) { item.promise.succeed(itemFlags) }
                } catch {
                    for item in batch { item.promise.fail(error) }
                }
            }
        }
    }

    // MARK: - Facts for status

    /// This node's log state, as ``LogStatusResponse`` reports it.
    public func status() -> LogStatusResponse? {
        let state = core.withLockedValue { $0.summary }
        let log = replicated.log
        return try? LogStatusResponse(
            nodeID: nodeID, highestTerm: state.highestTerm, promised: false, sequencer: expectedSequencer(),
            logSize: log.size, logRoot: log.root, checkpoint: state.known?.note.serialized,
            checkpointAt: state.known?.at ?? 0, staged: state.staged, pending: UInt64(state.pending),
            stopped: state.stopped)
    }

    /// Why this node signs nothing, if it does not.
    public var stopped: String? { core.withLockedValue { $0.stopped } }

    // MARK: - Frames

    /// Answers the log's messages.
    public func handle(_ peer: PeerIdentity, _ frame: Frame) async throws -> Frame? {
        switch frame.messageType {
        case LogSubmit.type:
            guard frame.kind == .request else { return nil }
            let message = try frame.decode(LogSubmit.self)
            let outcomes = await submit(message.entries, gossip: true)
            return try Frame.response(LogSubmitResponse(nodeID: nodeID, outcomes: outcomes), to: frame)
        case LogGossip.type:
            let message = try frame.decode(LogGossip.self)
            _ = await submit(message.entries, gossip: false)
            return frame.kind == .request
                ? try Frame.errorResponse(ErrorResponse(.malformedRequest, "gossip is one-way"), to: frame) : nil
        case LogBatch.type:
            guard frame.kind == .request else { return nil }
            let batch = try frame.decode(LogBatch.self)
            guard peer.role == .node, peer.nodeID == batch.proposer else {
                return try Frame.errorResponse(
                    ErrorResponse(.unauthorized, "\(peer) may not propose as node \(batch.proposer)"), to: frame)
            }
            switch await stage(batch) {
            case .success(let response): return try Frame.response(response, to: frame)
            case .failure(let refusal): return try Frame.errorResponse(refusal.errorResponse, to: frame)
            }
        case CheckpointPublish.type:
            let message = try frame.decode(CheckpointPublish.self)
            await published(message.note, from: "\(peer)")
            return frame.kind == .request
                ? try Frame.errorResponse(ErrorResponse(.malformedRequest, "a publication is one-way"), to: frame)
                : nil
        case LogStatusRequest.type:
            guard frame.kind == .request else { return nil }
            let request = try frame.decode(LogStatusRequest.self)
            if request.term != 0 {
                guard peer.role == .node, peer.nodeID == ReplicaRules.proposer(of: request.term) else {
                    return try Frame.errorResponse(
                        ErrorResponse(
                            .unauthorized,
                            "\(peer) may not claim term \(request.term) of node \(ReplicaRules.proposer(of: request.term))"
                        ), to: frame)
                }
            }
            guard let response = try await status(claiming: request.term) else {
                return try Frame.errorResponse(ErrorResponse(.internal, "cannot read the log state"), to: frame)
            }
            return try Frame.response(response, to: frame)
        case LogFetchRequest.type:
            guard frame.kind == .request else { return nil }
            let request = try frame.decode(LogFetchRequest.self)
            return try Frame.response(try await fetch(request), to: frame)
        default:
            guard frame.kind == .request else { return nil }
            return try Frame.errorResponse(
                ErrorResponse(.unknownMessageType, "message type \(frame.messageType) is not served here"), to: frame)
        }
    }

    // MARK: - Entries in

    /// Submits an entry this node made itself (a bundle it installed, a ceremony it completed),
    /// as a proxy would: checked, pending, gossiped.
    public func submitLocal(_ entry: LogEntry) {
        Task {
            let outcome = await submit([entry.encoded()], gossip: true).first
            if outcome?.status == .refused {
                logger.warning(
                    "own log entry refused", metadata: ["kind": "\(entry.kindName)", "reason": "\(outcome!.reason)"])
            }
        }
    }

    /// Checks `entries` and keeps the new valid ones pending (durably) before it answers; with
    /// `gossip`, pushes them once to every peer.
    func submit(_ entries: [[UInt8]], gossip: Bool) async -> [LogSubmitOutcome] {
        let groupKey = keys()?.groupKeyBytes
        let leaves = entries.map(RFC9162.leafHash)
        var outcomes = [LogSubmitOutcome](repeating: LogSubmitOutcome(.known), count: entries.count)
        var candidates: [Int] = []
        core.withLockedValue { state in
            var seen = Set<[UInt8]>()
            for (position, leaf) in leaves.enumerated()
            where !state.pending.contains(leaf) && seen.insert(leaf).inserted {
                candidates.append(position)
            }
        }
        guard !candidates.isEmpty else { return outcomes }
        let identityKeys = identityKeys()
        let checked = candidates
        let checks: [Result<LogEntry, LogRefusal>]
        do {
            checks = try await threadPool.runIfActive {
                checked.map {
                    EntryCheck.submitted(entries[$0], groupKey: groupKey, identityKeys: identityKeys)
                }
            }
        } catch {
            return outcomes.map { _ in LogSubmitOutcome(.refused, reason: "the node is shutting down") }
        }
        var valid: [Int] = []
        for (position, check) in zip(candidates, checks) {
            switch check {
            case .success: valid.append(position)
            case .failure(let refusal): outcomes[position] = LogSubmitOutcome(.refused, reason: refusal.description)
            }
        }
        let room = configuration.maximumPending - core.withLockedValue { $0.pending.count }
        if valid.count > room {
            for position in valid.dropFirst(max(0, room)) {
                outcomes[position] = LogSubmitOutcome(
                    .refused,
                    reason: LogRefusal(
                        .overloaded, "\(configuration.maximumPending) entries are pending on node \(nodeID)"
                    ).description)
            }
            valid = Array(valid.prefix(max(0, room)))
        }
        guard !valid.isEmpty else { return outcomes }
        let promise = eventLoop.makePromise(of: [Bool].self)
        admissions.enqueue(Admission(items: valid.map { (leaves[$0], entries[$0]) }, promise: promise))
        let added: [Bool]
        do { added = try await promise.futureResult.get() } catch {
            logger.error("cannot keep entries pending", metadata: ["error": "\(error)"])
            for position in valid {
                outcomes[position] = LogSubmitOutcome(.refused, reason: "the node cannot store entries: \(error)")
            }
            return outcomes
        }
        var fresh: [[UInt8]] = []
        for (position, new) in zip(valid, added) where new {
            outcomes[position] = LogSubmitOutcome(.accepted)
            fresh.append(entries[position])
        }
        if gossip && !fresh.isEmpty, let message = try? LogGossip(entries: fresh) {
            for peer in livePeers() { Task { await links.send(message, to: peer) } }
        }
        return outcomes
    }

    /// The identity keys of this node and of every peer whose heartbeats carried one.
    private func identityKeys() -> [UInt16: [UInt8]] {
        var keys: [UInt16: [UInt8]] = [nodeID: identity.publicKey]
        for (id, peer) in membership.membership.peers { if let key = peer.identityKey { keys[id] = key } }
        return keys
    }

    // MARK: - Append then sign

    /// Stages `batch` if ``ReplicaRules/acceptBatch(_:facts:)`` accepts it, in one synced write,
    /// then cosigns the checkpoint it makes and, as a signer, makes its FROST share.
    func stage(_ batch: LogBatch) async -> Result<LogBatchResponse, LogRefusal> {
        guard let keys = keys() else {
            return .failure(LogRefusal(.noGroupKey, "no group key yet; run the key ceremony first"))
        }
        let groupKey = keys.groupKeyBytes
        let (highestTerm, pendingHere) = core.withLockedValue { state in
            (state.highestTerm, batch.entries.map { state.pending.contains(RFC9162.leafHash($0)) })
        }
        if let refusal = ReplicaRules.checkTerm(batch, highestTerm: highestTerm) { return .failure(refusal) }
        let log = replicated.log
        let replicated = replicated
        let core = core
        let writing = writing
        let decided: Result<ReplicaRules.Acceptance, LogRefusal>
        do {
            decided = try await threadPool.runIfActive {
                // Entries this node holds pending were checked when they arrived.
                var invalid: [(position: Int, refusal: LogRefusal)] = []
                for (position, entry) in batch.entries.enumerated() where !pendingHere[position] {
                    if case .failure(let refusal) = EntryCheck.batch(entry, groupKey: groupKey) {
                        invalid.append((position, refusal))
                    }
                }
                return writing.withLock { () -> Result<ReplicaRules.Acceptance, LogRefusal> in
                    do {
                        let state = core.withLockedValue { $0.summary }
                        var frontier = log.frontier
                        for entry in batch.entries { frontier.append(entry: entry) }
                        let logged = try log.indices(ofLeafHashes: batch.entries.map(RFC9162.leafHash))
                        let facts = ReplicaRules.BatchFacts(
                            highestTerm: state.highestTerm, log: TreeHead(size: log.size, root: log.root),
                            stopped: state.stopped, hasGroupKey: true, invalidEntries: invalid,
                            alreadyLogged: logged.indices.filter { logged[$0] != nil },
                            result: TreeHead(size: frontier.size, root: frontier.root),
                            signedRoot: try replicated.signedRoot(size: frontier.size))
                        let decision = ReplicaRules.acceptBatch(batch, facts: facts)
                        if case .success(let acceptance) = decision {
                            try log.writeCompanion(
                                ReplicatedLog.stage(acceptance.staged, highestTerm: acceptance.highestTerm))
                            core.withLockedValue { state in
                                state.highestTerm = acceptance.highestTerm
                                state.staged = acceptance.staged
                                state.lastProgress = .now
                                state.follow(
                                    acceptance.highestTerm, this: self.nodeID, for: self.configuration.suspicion)
                            }
                        }
                        return decision
                    } catch {
                        return .failure(LogRefusal(.stopped, "cannot stage the batch: \(error)"))
                    }
                }
            }
        } catch {
            return .failure(LogRefusal(.stopped, "the node is shutting down"))
        }
        let acceptance: ReplicaRules.Acceptance
        switch decided {
        case .success(let accepted): acceptance = accepted
        case .failure(let refusal):
            if refusal.reason == .behind { startCatchUp() }
            if refusal.reason != .behind && refusal.reason != .staleTerm {
                logger.notice(
                    "batch refused: \(refusal)", metadata: ["term": "\(batch.term)", "proposer": "\(batch.proposer)"])
            }
            return .failure(refusal)
        }
        let origin = CheckpointNames.origin(groupPublicKey: groupKey)
        let staged = acceptance.staged
        do {
            let text = try Checkpoint(origin: origin, size: staged.size, rootHash: staged.root).text
            let cosigner = try CosignatureNoteSigner(
                name: CheckpointNames.nodeKeyName(origin: origin, nodeID: nodeID), keyPair: identity,
                timestamp: UInt64(Date().timeIntervalSince1970))
            let line = try cosigner.signature(for: Array(text.utf8))
            var share: [UInt8] = []
            if let slot = batch.slot(of: nodeID) {
                let request = try SignRequest(
                    bootEpoch: slot.bootEpoch, nonceID: slot.nonceID, requestID: "checkpoint-\(staged.size)",
                    message: Array(text.utf8), commitments: batch.signers.map(\.signerCommitment))
                switch signing.signCheckpoint(request) {
                case .signed(let response): share = response.share
                case .refused(let refusal):
                    logger.notice("checkpoint share withheld: \(refusal)", metadata: ["size": "\(staged.size)"])
                case .failed(let error):
                    logger.error("checkpoint share withheld: \(error)", metadata: ["size": "\(staged.size)"])
                }
            }
            return .success(
                try LogBatchResponse(
                    nodeID: nodeID, term: batch.term, size: staged.size, root: staged.root,
                    cosignature: Self.bigEndian(line.keyID) + line.signature, share: share))
        } catch {
            return .failure(LogRefusal(.stopped, "cannot cosign the checkpoint: \(error)"))
        }
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    // MARK: - Published checkpoints

    /// Handles a checkpoint note from the sequencer (or this node as sequencer): if the group
    /// signed it, the staged batch is appended with it, or the node catches up, or (its log has
    /// another root there) stops; then, whatever the group signature, its cosignatures are checked
    /// for equivocation.
    func published(_ serialized: String, from source: String) async {
        guard let keys = keys() else { return }
        let groupKey = keys.groupKeyBytes
        let origin = CheckpointNames.origin(groupPublicKey: groupKey)
        let note: SignedNote
        do { note = try SignedNote.parse(serialized) } catch {
            logger.notice("unreadable checkpoint note", metadata: ["from": "\(source)", "error": "\(error)"])
            return
        }
        // Applied first, so that the note is usually stored by the time its cosignatures are
        // compared with what the log holds (nothing more to remember for them then).
        let caughtUp = await applyIfQuorum(note, origin: origin, groupKey: groupKey, from: source)
        await observeCosignatures(in: note, origin: origin)
        if !caughtUp { startCatchUp() }
    }

    /// Applies `note` if the group signed it; false when the node must catch up to it.
    private func applyIfQuorum(_ note: SignedNote, origin: String, groupKey: [UInt8], from source: String) async -> Bool
    {
        let verifier: NoteVerifier
        let checkpoint: Checkpoint
        do {
            verifier = try CheckpointNames.groupVerifier(groupPublicKey: groupKey)
            checkpoint = try note.verifiedCheckpoint(with: [verifier])
            guard checkpoint.origin == origin else {
                throw NoteError(.malformedCheckpoint, "origin \(checkpoint.origin), not \(origin)")
            }
        } catch {
            logger.warning(
                "a checkpoint that the group did not sign was refused",
                metadata: ["from": "\(source)", "error": "\(error)"])
            return true
        }
        let head = TreeHead(size: checkpoint.size, root: checkpoint.rootHash)
        do {
            // The publication can overtake this node's own staging of the batch it covers (the
            // sequencer publishes once k signers answered): give the staging a moment to land
            // before fetching the entries from a peer.
            for attempt in 0..<3 {
                guard try await apply(note, head: head, verifier: verifier, origin: origin) else { return true }
                if attempt < 2 { try await Task.sleep(for: .milliseconds(100)) }
            }
        } catch {
            logger.error(
                "cannot apply a published checkpoint", metadata: ["size": "\(head.size)", "error": "\(error)"])
            return true
        }
        return false
    }

    /// Applies a verified quorum checkpoint; true when the node must catch up to it.
    private func apply(_ note: SignedNote, head: TreeHead, verifier: NoteVerifier, origin: String) async throws -> Bool
    {
        let log = replicated.log
        let core = core
        let writing = writing
        let logger = logger
        let at = Int64(Date().timeIntervalSince1970 * 1000)
        return try await threadPool.runIfActive {
            try writing.withLock { () throws -> Bool in
                let state = core.withLockedValue { $0.summary }
                let end = TreeHead(size: log.size, root: log.root)
                let rootAtSize = head.size <= end.size ? try log.root(at: head.size) : nil
                let newer = (state.known?.head.size ?? 0) < head.size || state.known == nil
                switch ReplicaRules.onPublished(head, log: end, rootAtSize: rootAtSize, staged: state.staged) {
                case .alreadyHeld:
                    if try log.checkpoint(at: head.size) == nil {
                        try log.storeCheckpoint(note, origin: origin, verifiers: [verifier])
                    }
                    if newer {
                        var batch = WriteBatch()
                        ReplicatedLog.know(note, at: at, into: &batch)
                        try log.writeCompanion(batch)
                        core.withLockedValue { $0.known = Known(note: note, head: head, at: at) }
                    }
                    return false
                case .appendStaged(let staged):
                    let decoded = staged.entries.map { try? LogEntry(decoding: $0) }
                    var extra = ReplicatedLog.appended(
                        staged.entries, decoded: decoded, start: end.size, clearStaged: true)
                    ReplicatedLog.know(note, at: at, into: &extra)
                    try log.append(
                        staged.entries, certifiedBy: note, origin: origin, verifiers: [verifier], alongside: extra)
                    core.withLockedValue { state in
                        for entry in staged.entries {
                            let leaf = RFC9162.leafHash(entry)
                            state.pending.remove(leaf)
                            state.inFlight.remove(leaf)
                        }
                        state.staged = nil
                        state.known = Known(note: note, head: head, at: at)
                        state.lastProgress = .now
                    }
                    return false
                case .catchUp:
                    if newer {
                        var batch = WriteBatch()
                        ReplicatedLog.know(note, at: at, into: &batch)
                        try log.writeCompanion(batch)
                        core.withLockedValue { $0.known = Known(note: note, head: head, at: at) }
                    }
                    return true
                case .disagree(let reason):
                    let message = "the stored log disagrees with a quorum checkpoint: \(reason)"
                    core.withLockedValue { $0.stopped = message }
                    logger.error("stopped signing: \(message)")
                    return false
                }
            }
        }
    }

    // MARK: - Equivocation

    /// Checks every cosignature in `note` by a known node key of this log (`origin`) against
    /// what the same key signed for the same size before: the quorum checkpoint stored at that
    /// size (which carries the cosignatures of every node that took part), the log's root there,
    /// or a cosignature remembered from an earlier note (only notes that agree with nothing the log
    /// holds are remembered, so the records stay few). Another root for one key and size is
    /// equivocation: both notes are kept as evidence and it is logged.
    func observeCosignatures(in note: SignedNote, origin: String) async {
        guard let checkpoint = try? Checkpoint.parse(note.text), checkpoint.origin == origin else { return }
        var valid: [NoteVerifier] = []
        for (id, key) in identityKeys().sorted(by: { $0.key < $1.key }) {
            guard let verifier = try? CheckpointNames.nodeVerifier(origin: origin, nodeID: id, identityKey: key),
                Self.cosigned(note, by: verifier)
            else { continue }
            valid.append(verifier)
        }
        guard !valid.isEmpty else { return }
        let log = replicated.log
        let replicated = replicated
        let writing = writing
        let logger = logger
        let serialized = note.serialized
        let root = checkpoint.rootHash
        let size = checkpoint.size
        let verifiers = valid
        do {
            try await threadPool.runIfActive {
                try writing.withLock {
                    var batch = WriteBatch()
                    var number = try replicated.evidenceCount()
                    let stored = try log.checkpoint(at: size)
                    let storedRoot = try stored.map { try Checkpoint.parse($0.text).rootHash }
                    let logRoot = size <= log.size ? try log.root(at: size) : nil
                    for verifier in verifiers {
                        let name = verifier.name
                        var earlier: (root: [UInt8], note: String)?
                        if let stored, let storedRoot, storedRoot != root, Self.cosigned(stored, by: verifier) {
                            // Kept once: the fork's root is remembered, and the same note again is no news.
                            if try replicated.cosigned(keyName: name, size: size)?.root == root { continue }
                            ReplicatedLog.cosign(keyName: name, size: size, root: root, note: serialized, into: &batch)
                            earlier = (storedRoot, stored.serialized)
                        } else if storedRoot == root || logRoot == root {
                            continue
                        } else {
                            earlier = try replicated.cosigned(keyName: name, size: size)
                        }
                        switch ReplicaRules.observe(root: root, recorded: earlier?.root) {
                        case .same: continue
                        case .record:
                            ReplicatedLog.cosign(keyName: name, size: size, root: root, note: serialized, into: &batch)
                        case .equivocation:
                            let evidence = EquivocationEvidence(
                                keyName: name, size: size, noteA: earlier!.note, noteB: serialized)
                            ReplicatedLog.keep(evidence, number: number, into: &batch)
                            number += 1
                            logger.error(
                                "equivocation: a node key cosigned two roots for one size; evidence kept",
                                metadata: [
                                    "key": "\(name)", "size": "\(size)", "root_a": "\(Hex.encode(earlier!.root))",
                                    "root_b": "\(Hex.encode(root))",
                                ])
                        }
                    }
                    try log.writeCompanion(batch)
                }
            }
        } catch {
            logger.error("cannot record cosignatures", metadata: ["error": "\(error)"])
        }
    }

    /// Whether `note` carries a cosignature by `verifier`'s key that verifies.
    static func cosigned(_ note: SignedNote, by verifier: NoteVerifier) -> Bool {
        let lines = note.signatures.filter { $0.name == verifier.name && $0.keyID == verifier.keyID }
        guard !lines.isEmpty, let single = try? SignedNote(text: note.text, signatures: lines) else { return false }
        return (try? single.verifiedSignatures(with: [verifier])) != nil
    }

    // MARK: - Status and fetch

    /// This node's state; a term claim (not 0) raises the highest term, durably, when it is above
    /// every term seen (and the node has not stopped).
    func status(claiming term: UInt64) async throws -> LogStatusResponse? {
        var promised = false
        if term != 0 {
            let log = replicated.log
            let core = core
            let writing = writing
            let nodeID = nodeID
            let suspicion = configuration.suspicion
            promised = try await threadPool.runIfActive {
                try writing.withLock { () throws -> Bool in
                    let state = core.withLockedValue { $0.summary }
                    guard state.stopped == nil else { return false }
                    let (promised, highest) = ReplicaRules.claim(term, highestTerm: state.highestTerm)
                    guard promised else { return false }
                    var batch = WriteBatch()
                    ReplicatedLog.raise(term: highest, into: &batch)
                    try log.writeCompanion(batch)
                    core.withLockedValue { state in
                        state.highestTerm = highest
                        state.follow(highest, this: nodeID, for: suspicion)
                    }
                    return true
                }
            }
        }
        guard let current = status() else { return nil }
        return try LogStatusResponse(
            nodeID: current.nodeID, highestTerm: current.highestTerm, promised: promised,
            sequencer: current.sequencer, logSize: current.logSize, logRoot: current.logRoot,
            checkpoint: current.checkpoint, checkpointAt: current.checkpointAt,
            // The staged batch's entries matter only to a sequencer planning its term.
            staged: term == 0 ? nil : current.staged, pending: current.pending, stopped: current.stopped)
    }

    private func fetch(_ request: LogFetchRequest) async throws -> LogFetchResponse {
        let log = replicated.log
        let nodeID = nodeID
        return try await threadPool.runIfActive {
            var entries: [[UInt8]] = []
            var bytes = 0
            let end = min(log.size, request.from &+ UInt64(request.count))
            var index = request.from
            while index < end, bytes < LogLimits.maximumBatchBytes {
                let entry = try log.entry(at: index)
                entries.append(entry)
                bytes += entry.count + 4
                index += 1
            }
            let notes = try log.checkpoints(after: request.from, through: index).map(\.serialized)
            return try LogFetchResponse(nodeID: nodeID, from: request.from, entries: entries, checkpoints: notes)
        }
    }

    // MARK: - Catch-up

    /// Starts catching up in the background unless it already is.
    func startCatchUp() {
        let start = core.withLockedValue { state -> Bool in
            state.lastCatchUp = .now
            guard !state.catchingUp, state.started else {
                state.catchUpAgain = state.catchingUp
                return false
            }
            state.catchingUp = true
            return true
        }
        guard start else { return }
        Task {
            // A checkpoint published while a catch-up ran asks for another round once it ends.
            var rounds = 0
            repeat {
                core.withLockedValue { $0.catchUpAgain = false }
                await catchUp()
                rounds += 1
            } while rounds < 16
                && core.withLockedValue({ state in
                    state.catchUpAgain || (state.known?.head.size ?? 0) > replicated.log.size
                })
            core.withLockedValue { $0.catchingUp = false }
        }
    }

    /// Learns the newest quorum checkpoint from the peers and fetches entries up to it, appending
    /// each stretch only once its entries make the root of a checkpoint the group signed.
    private func catchUp() async {
        guard let keys = keys() else { return }
        let groupKey = keys.groupKeyBytes
        let origin = CheckpointNames.origin(groupPublicKey: groupKey)
        guard let verifier = try? CheckpointNames.groupVerifier(groupPublicKey: groupKey) else { return }
        let answers = await ask(peers: links.peerIDs, LogStatusRequest(), LogStatusResponse.self)
        var target = core.withLockedValue { $0.known }
        for (_, response) in answers {
            guard let text = response.checkpoint, let note = try? SignedNote.parse(text),
                let checkpoint = try? note.verifiedCheckpoint(with: [verifier]), checkpoint.origin == origin,
                checkpoint.size > (target?.head.size ?? 0)
            else { continue }
            target = Known(
                note: note, head: TreeHead(size: checkpoint.size, root: checkpoint.rootHash), at: response.checkpointAt)
        }
        guard let target, target.head.size > replicated.log.size else { return }
        _ = try? await apply(target.note, head: target.head, verifier: verifier, origin: origin)
        let holders = answers.filter { $0.value.logSize > replicated.log.size }.sorted {
            $0.value.logSize > $1.value.logSize
        }.map(\.key)
        guard !holders.isEmpty else { return }
        logger.info(
            "catching up",
            metadata: ["from": "\(replicated.log.size)", "to": "\(target.head.size)", "peers": "\(holders)"])
        for peer in holders where replicated.log.size < target.head.size {
            do {
                try await fetchAndAppend(
                    from: peer, until: target, verifier: verifier, origin: origin, groupKey: groupKey)
            } catch {
                logger.warning("catch-up from a peer failed", metadata: ["peer": "\(peer)", "error": "\(error)"])
            }
        }
        if replicated.log.size >= target.head.size {
            logger.info("caught up", metadata: ["size": "\(replicated.log.size)"])
        }
    }

    struct CatchUpFailure: Error, CustomStringConvertible {
        let description: String
    }

    private func fetchAndAppend(
        from peer: UInt16, until target: Known, verifier: NoteVerifier, origin: String, groupKey: [UInt8]
    ) async throws {
        var frontier = replicated.log.frontier
        var base = frontier.size
        var gathered: [[UInt8]] = []
        var notes: [UInt64: SignedNote] = [target.head.size: target.note]
        while base + UInt64(gathered.count) < target.head.size {
            let from = base + UInt64(gathered.count)
            let request = try LogFetchRequest(
                from: from, count: UInt32(min(UInt64(LogLimits.maximumBatchEntries), target.head.size - from)))
            let response = try await links.ask(
                peer, request, LogFetchResponse.self, deadline: configuration.requestDeadline * 3)
            guard response.from == from, !response.entries.isEmpty else {
                throw CatchUpFailure(description: "node \(peer) returned no entries from \(from)")
            }
            for text in response.checkpoints {
                guard let note = try? SignedNote.parse(text),
                    let checkpoint = try? note.verifiedCheckpoint(with: [verifier]), checkpoint.origin == origin
                else { continue }
                notes[checkpoint.size] = note
            }
            let entries = response.entries
            let checks = try await threadPool.runIfActive {
                entries.map { EntryCheck.batch($0, groupKey: groupKey) }
            }
            for (offset, (entry, check)) in zip(entries, checks).enumerated() {
                if case .failure(let refusal) = check {
                    throw CatchUpFailure(description: "entry \(from + UInt64(offset)) from node \(peer): \(refusal)")
                }
                frontier.append(entry: entry)
                gathered.append(entry)
                guard let note = notes[frontier.size] else { continue }
                let checkpoint = try Checkpoint.parse(note.text)
                guard checkpoint.rootHash == frontier.root else {
                    throw CatchUpFailure(
                        description: "the entries from node \(peer) make another root at size \(frontier.size) "
                            + "than the quorum checkpoint")
                }
                try await appendFetched(gathered, at: base, note: note, verifier: verifier, origin: origin)
                base = frontier.size
                gathered = []
            }
            if gathered.count > 65_536 {
                throw CatchUpFailure(description: "node \(peer) sent 65536 entries without a checkpoint covering them")
            }
        }
    }

    private func appendFetched(
        _ entries: [[UInt8]], at base: UInt64, note: SignedNote, verifier: NoteVerifier, origin: String
    ) async throws {
        let log = replicated.log
        let core = core
        let writing = writing
        let at = Int64(Date().timeIntervalSince1970 * 1000)
        let checkpoint = try Checkpoint.parse(note.text)
        let head = TreeHead(size: checkpoint.size, root: checkpoint.rootHash)
        try await threadPool.runIfActive {
            try writing.withLock {
                guard log.size == base else {
                    throw CatchUpFailure(description: "the log moved from \(base) to \(log.size) meanwhile")
                }
                let state = core.withLockedValue { $0.summary }
                let decoded = entries.map { try? LogEntry(decoding: $0) }
                let obsolete = state.staged.map { $0.baseSize < head.size } ?? false
                var extra = ReplicatedLog.appended(entries, decoded: decoded, start: base, clearStaged: obsolete)
                let newer = (state.known?.head.size ?? 0) <= head.size
                if newer { ReplicatedLog.know(note, at: at, into: &extra) }
                try log.append(entries, certifiedBy: note, origin: origin, verifiers: [verifier], alongside: extra)
                core.withLockedValue { state in
                    for entry in entries {
                        let leaf = RFC9162.leafHash(entry)
                        state.pending.remove(leaf)
                        state.inFlight.remove(leaf)
                    }
                    if obsolete { state.staged = nil }
                    if newer { state.known = Known(note: note, head: head, at: at) }
                    state.lastProgress = .now
                }
            }
        }
    }

    // MARK: - Running

    /// Audits the stored log, catches up, then runs the sequencer's loop (when this node is the
    /// sequencer) until graceful shutdown.
    public func run() async throws {
        await startupCheck()
        core.withLockedValue { $0.started = true }
        startCatchUp()
        let tick = configuration.batchInterval / 2
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.tick()
                try await Task.sleep(for: tick)
            }
        }
        await links.close()
        if let coordinator = coordinator.withLockedValue({ $0?.coordinator }) { await coordinator.close() }
        logger.info("log replication stopped")
    }

    /// The start-up audit: the whole store recomputed (``MerkleLog/auditStore(verifiers:)``), every
    /// stored checkpoint compared with the tree, and
    /// the newest quorum checkpoint known compared with the log. Any problem stops signing.
    private func startupCheck() async {
        let log = replicated.log
        let known = core.withLockedValue { $0.known }
        let problems: [String]
        do {
            problems = try await threadPool.runIfActive {
                // The stored checkpoints' roots and sizes are checked against the tree; their
                // signatures were checked when they were stored (and an older group key, before a
                // new ceremony, would not verify under today's).
                var problems = try log.auditStore().map(\.description)
                if let known, known.head.size <= log.size, try log.root(at: known.head.size) != known.head.root {
                    problems.append(
                        "the quorum checkpoint of size \(known.head.size) has another root than the log at that size")
                }
                return problems
            }
        } catch {
            problems = ["the store cannot be read: \(error)"]
        }
        let stopped =
            problems.isEmpty
            ? nil
            : "the stored log disagrees with its checkpoints (\(problems.count) problem\(problems.count == 1 ? "" : "s")); "
                + "first: \(problems[0])"
        core.withLockedValue { $0.stopped = stopped }
        if let stopped {
            logger.error("stopped signing: \(stopped)")
        } else {
            logger.info("log audited", metadata: ["size": "\(log.size)"])
        }
    }

    /// The live peers, ascending.
    private func livePeers() -> [UInt16] { membership.membership.peersUp }

    /// The sequencer this node expects: the node holding the highest term while it is live (for
    /// a while after it claimed it), else the lowest id among itself (unless stopped) and the live
    /// peers, less those it suspects.
    func expectedSequencer() -> UInt16 {
        let now = ContinuousClock.now
        let (stopped, suspected, yieldTo, yieldUntil) = core.withLockedValue {
            ($0.stopped, $0.suspected, $0.yieldTo, $0.yieldUntil)
        }
        let live = livePeers()
        // The holder of the highest term, while it is live and not suspected, keeps sequencing.
        if let yieldTo, now < yieldUntil, live.contains(yieldTo), (suspected[yieldTo] ?? now) <= now {
            return yieldTo
        }
        var candidates = live.filter { (suspected[$0] ?? now) <= now }
        if stopped == nil { candidates.append(nodeID) }
        return candidates.min() ?? 0
    }

    private func tick() async {
        guard let keys = keys() else { return }
        let now = ContinuousClock.now
        // Behind a checkpoint it knows, or quiet for a while (it may have missed a publication):
        // ask the peers where the log is.
        let probe = core.withLockedValue { state in
            !state.catchingUp
                && (((state.known?.head.size ?? 0) > replicated.log.size && state.lastCatchUp + .seconds(1) <= now)
                    || state.lastCatchUp + configuration.catchUpProbe <= now)
        }
        if probe { startCatchUp() }
        let sequencer = expectedSequencer()
        let (stopped, catchingUp, term) = core.withLockedValue { ($0.stopped, $0.catchingUp, $0.term) }
        guard sequencer == nodeID, stopped == nil else {
            core.withLockedValue { $0.term = nil }
            forwardStale(to: sequencer, now: now)
            suspectIfStuck(sequencer, now: now)
            return
        }
        guard !catchingUp else { return }
        guard let term else {
            // Too few nodes live to promise a term (at start, before membership has heard from
            // the peers): claiming would only raise this node's own term, and refuse the batches
            // of the node that does become sequencer.
            guard livePeers().count + 1 >= keys.signingGroup.minSigners else { return }
            await claimTerm(keys)
            return
        }
        let due = core.withLockedValue { state -> [[UInt8]] in
            let waiting = state.pending.oldest(
                excluding: state.inFlight, limit: configuration.maximumBatchEntries,
                maximumBytes: configuration.maximumBatchBytes)
            guard let oldest = waiting.first else { return [] }
            // A full batch goes at once; otherwise the oldest entry has waited the batch interval.
            guard
                waiting.count >= configuration.maximumBatchEntries
                    || oldest.item.arrived + configuration.batchInterval <= now
            else { return [] }
            return waiting.map(\.item.entry)
        }
        guard !due.isEmpty else { return }
        await propose(due, term: term, keys: keys)
    }

    /// Sends entries pending too long to the sequencer, which may have missed their gossip.
    private func forwardStale(to sequencer: UInt16, now: ContinuousClock.Instant) {
        guard sequencer != 0, sequencer != nodeID else { return }
        let stale = core.withLockedValue { state -> [[UInt8]] in
            guard state.lastForward + configuration.forwardAfter <= now else { return [] }
            state.lastForward = now
            return state.pending.oldest(
                excluding: [], limit: LogLimits.maximumSubmitted, maximumBytes: LogLimits.maximumBatchBytes
            ).filter { $0.item.arrived + configuration.forwardAfter <= now }.map(\.item.entry)
        }
        guard !stale.isEmpty, let message = try? LogGossip(entries: stale) else { return }
        Task { await links.send(message, to: sequencer) }
    }

    /// Passes the expected sequencer over for a while when entries have waited long with no batch
    /// or checkpoint seen meanwhile (it may be stopped, or stuck), so the next node takes over.
    private func suspectIfStuck(_ sequencer: UInt16, now: ContinuousClock.Instant) {
        guard sequencer != 0, sequencer != nodeID else { return }
        let suspect = core.withLockedValue { state -> Bool in
            guard state.lastProgress + configuration.failoverAfter <= now,
                let oldest = state.pending.oldest(excluding: [], limit: 1, maximumBytes: .max).first,
                oldest.item.arrived + configuration.failoverAfter <= now
            else { return false }
            state.suspected[sequencer] = now + configuration.suspicion
            state.lastProgress = now
            return true
        }
        if suspect {
            logger.warning(
                "the sequencer makes no progress; passing it over",
                metadata: ["sequencer": "\(sequencer)", "for": "\(configuration.suspicion)"])
        }
    }

    // MARK: - Sequencer

    /// Sends `message` to each of `peers` and returns the answers that came, by peer.
    private func ask<Response: WireMessage>(
        peers: [UInt16], _ message: some WireMessage, _: Response.Type
    ) async -> [UInt16: Response] {
        let links = links
        let deadline = configuration.requestDeadline
        return await withTaskGroup(of: (UInt16, Result<Response, TransportError>).self) { group in
            for peer in peers {
                group.addTask { (peer, await links.answer(peer, message, Response.self, deadline: deadline)) }
            }
            var answers: [UInt16: Response] = [:]
            for await (peer, result) in group { if case .success(let response) = result { answers[peer] = response } }
            return answers
        }
    }

    /// Claims a new term from the live nodes and carries out ``SequencerPlan``'s step.
    private func claimTerm(_ keys: NodeKeys) async {
        let floor = core.withLockedValue { max($0.highestTerm, $0.claimFloor) }
        let term = ReplicaRules.term(after: floor, for: nodeID)
        guard let verifier = try? CheckpointNames.groupVerifier(groupPublicKey: keys.groupKeyBytes) else { return }
        let origin = CheckpointNames.origin(groupPublicKey: keys.groupKeyBytes)
        var answers = await ask(peers: livePeers(), LogStatusRequest(term: term), LogStatusResponse.self)
        if let own = try? await status(claiming: term) { answers[nodeID] = own }
        var notes: [UInt64: SignedNote] = [:]
        let states = answers.values.map { response -> SequencerPlan.NodeState in
            var checkpoint: TreeHead?
            if let text = response.checkpoint, let note = try? SignedNote.parse(text),
                let verified = try? note.verifiedCheckpoint(with: [verifier]), verified.origin == origin
            {
                checkpoint = TreeHead(size: verified.size, root: verified.rootHash)
                notes[verified.size] = note
            }
            return SequencerPlan.NodeState(
                nodeID: response.nodeID, promised: response.promised && response.stopped == nil,
                highestTerm: response.highestTerm, log: TreeHead(size: response.logSize, root: response.logRoot),
                checkpoint: checkpoint, staged: response.staged)
        }
        let own = TreeHead(size: replicated.log.size, root: replicated.log.root)
        let step = SequencerPlan.plan(own: own, states: states, threshold: keys.signingGroup.minSigners)
        switch step {
        case .claimAgain(let highest):
            core.withLockedValue { $0.claimFloor = max($0.claimFloor, highest, term) }
            logger.info(
                "term not promised by enough nodes; claiming again",
                metadata: ["term": "\(term)", "promised": "\(states.filter(\.promised).map(\.nodeID).sorted())"])
            try? await Task.sleep(for: .milliseconds(Int.random(in: 100...400)))
        case .catchUp(let target, let from):
            logger.info(
                "a newer checkpoint exists; catching up first",
                metadata: ["size": "\(target.size)", "holders": "\(from)"])
            if let note = notes[target.size] { await published(note.serialized, from: "term claim") }
            startCatchUp()
        case .repropose(let staged):
            core.withLockedValue { $0.term = term }
            logger.notice(
                "sequencer term claimed; proposing a staged batch again",
                metadata: ["term": "\(term)", "size": "\(staged.size)", "staged_term": "\(staged.term)"])
            await propose(staged.entries, term: term, keys: keys)
        case .proposeNew:
            core.withLockedValue { $0.term = term }
            logger.notice("sequencer term claimed", metadata: ["term": "\(term)", "size": "\(own.size)"])
        }
    }

    /// The coordinator that fetches the peers' nonce commitments for `keys`' group.
    private func commitmentSource(_ keys: NodeKeys) -> SigningCoordinator {
        let groupKey = keys.groupKeyBytes
        return coordinator.withLockedValue { current in
            if let current, current.groupKey == groupKey { return current.coordinator }
            var settings = SigningCoordinator.Configuration()
            settings.commitmentBatch = 32
            settings.refillBelow = 8
            settings.deadline = configuration.requestDeadline
            let made = SigningCoordinator(
                client: client, nodes: peerNodes, group: keys.signingGroup, configuration: settings, logger: logger)
            current = (groupKey, made)
            return made
        }
    }

    /// One commitment for each of `signers`: this node's own from its signing service, the
    /// peers' from the commitment cache (waiting at most the request deadline).
    private func slots(_ signers: [UInt16], keys: NodeKeys) async -> [SigningCoordinator.Commitment] {
        let source = commitmentSource(keys)
        let deadline = configuration.requestDeadline
        return await withTaskGroup(of: SigningCoordinator.Commitment?.self) { group in
            for signer in signers {
                group.addTask {
                    if signer == self.nodeID { return await self.signing.localCommitment() }
                    if let cached = source.cachedCommitment(from: signer) { return cached }
                    return await Self.commitment(from: signer, source: source, within: deadline)
                }
            }
            var found: [SigningCoordinator.Commitment] = []
            for await slot in group { if let slot { found.append(slot) } }
            return found.sorted { $0.nodeID < $1.nodeID }
        }
    }

    private static func commitment(
        from signer: UInt16, source: SigningCoordinator, within limit: Duration
    ) async -> SigningCoordinator.Commitment? {
        await withTaskGroup(of: SigningCoordinator.Commitment?.self) { group in
            group.addTask { try? await source.nextCommitment(from: signer) }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// What a round of a batch came to.
    private struct Round {
        var accepted: [UInt16: LogBatchResponse] = [:]
        var refused: [UInt16: LogRefusal] = [:]
    }

    /// Proposes `entries` under `term`: stages them here, sends the batch to the live peers,
    /// aggregates k shares (asking k nodes that staged it again with fresh slots if a signer
    /// failed), and publishes the checkpoint.
    private func propose(_ entries: [[UInt8]], term: UInt64, keys: NodeKeys) async {
        let leaves = Set(entries.map(RFC9162.leafHash))
        core.withLockedValue { $0.inFlight.formUnion(leaves) }
        defer { core.withLockedValue { $0.inFlight.subtract(leaves) } }
        let threshold = keys.signingGroup.minSigners
        let live = livePeers()
        let base = TreeHead(size: replicated.log.size, root: replicated.log.root)
        let chosen = Array(([nodeID] + live).sorted().prefix(threshold))
        var round = Round()
        var signature: [UInt8]?
        var text = ""
        for attempt in 0..<2 {
            let signers: [UInt16]
            if attempt == 0 {
                signers = chosen
            } else {
                let staged = round.accepted.keys.sorted()
                guard staged.count >= threshold else { break }
                signers = Array(([nodeID] + staged.filter { $0 != nodeID }).prefix(threshold)).sorted()
            }
            let commitments = await slots(signers, keys: keys)
            guard commitments.count >= threshold else {
                logger.info(
                    "too few signer slots for a batch", metadata: ["have": "\(commitments.map(\.nodeID))"])
                return
            }
            let batch: LogBatch
            do {
                batch = try LogBatch(
                    term: term, proposer: nodeID, baseSize: base.size, baseRoot: base.root, entries: entries,
                    signers: try commitments.map { commitment throws(WireError) in
                        try SignerSlot(
                            identifier: commitment.nodeID, bootEpoch: commitment.bootEpoch,
                            nonceID: commitment.entry.nonceID, commitment: commitment.entry.commitment)
                    })
            } catch {
                logger.error("cannot build a batch", metadata: ["error": "\(error)"])
                return
            }
            let targets = attempt == 0 ? [nodeID] + live : signers
            let answered = await send(batch, to: targets, signers: Set(commitments.map(\.nodeID)))
            for (id, response) in answered.accepted { round.accepted[id] = response }
            for (id, refusal) in answered.refused { round.refused[id] = refusal }
            if let (refuser, refusal) = answered.refused.first(where: { $0.value.reason == .staleTerm }) {
                core.withLockedValue { $0.term = nil }
                logger.info(
                    "a newer term exists; claiming again",
                    metadata: ["term": "\(term)", "node": "\(refuser)", "refusal": "\(refusal)"])
                return
            }
            guard let own = round.accepted[nodeID] else {
                logger.warning(
                    "the sequencer could not stage its own batch",
                    metadata: ["refusal": "\(round.refused[nodeID].map(\.description) ?? "no answer")"])
                return
            }
            text =
                (try? Checkpoint(
                    origin: CheckpointNames.origin(groupPublicKey: keys.groupKeyBytes), size: own.size,
                    rootHash: own.root
                ).text) ?? ""
            let shares = commitments.compactMap { commitment -> SignatureShare<Ed25519Suite>? in
                guard let response = answered.accepted[commitment.nodeID], response.size == own.size,
                    response.root == own.root, !response.share.isEmpty
                else { return nil }
                return try? SignatureShare<Ed25519Suite>(
                    identifier: try Identifier(commitment.nodeID), encoded: response.share)
            }
            if shares.count == commitments.count {
                let source = commitmentSource(keys)
                do {
                    let session = try source.prepare(message: Array(text.utf8), commitments: commitments).1
                    signature = try source.aggregate(shares, session: session).bytes
                    break
                } catch {
                    logger.warning("checkpoint shares did not aggregate", metadata: ["error": "\(error)"])
                }
            }
        }
        guard let signature, let own = round.accepted[nodeID] else {
            let refusals = round.refused.map { "node \($0.key): \($0.value)" }.sorted()
            logger.info("no checkpoint this round", metadata: ["refusals": "\(refusals)"])
            return
        }
        let origin = CheckpointNames.origin(groupPublicKey: keys.groupKeyBytes)
        let note: SignedNote
        do {
            let group = try FROSTGroupNoteSigner(name: origin, groupPublicKey: keys.groupKeyBytes) { _ in signature }
            var lines = [try group.signature(for: Array(text.utf8))]
            let identities = identityKeys()
            for (id, response) in round.accepted.sorted(by: { $0.key < $1.key })
            where response.size == own.size && response.root == own.root {
                guard let key = identities[id],
                    let verifier = try? CheckpointNames.nodeVerifier(origin: origin, nodeID: id, identityKey: key)
                else { continue }
                let keyID = response.cosignature.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                guard keyID == verifier.keyID,
                    let line = try? NoteSignature(
                        name: verifier.name, keyID: keyID, signature: Array(response.cosignature.dropFirst(4))),
                    (try? SignedNote(text: text, signatures: [line]).verifiedSignatures(with: [verifier])) != nil
                else { continue }
                lines.append(line)
            }
            note = try SignedNote(text: text, signatures: lines)
        } catch {
            logger.error("the aggregated checkpoint signature was refused", metadata: ["error": "\(error)"])
            return
        }
        await published(note.serialized, from: "self")
        if let message = try? CheckpointPublish(term: term, note: note.serialized) {
            for peer in links.peerIDs { Task { await links.send(message, to: peer) } }
        }
    }

    /// Sends `batch` to `targets` (this node's own staged locally) and gathers the answers: all of
    /// them, or, once every signer answered, those that come within the cosignature grace.
    private func send(_ batch: LogBatch, to targets: [UInt16], signers: Set<UInt16>) async -> Round {
        enum Event: Sendable {
            case answer(UInt16, Result<LogBatchResponse, LogRefusal>)
            case grace
            case deadline
        }
        let (events, continuation) = AsyncStream.makeStream(of: Event.self)
        let links = links
        let deadline = configuration.requestDeadline
        for target in targets {
            Task {
                if target == self.nodeID {
                    continuation.yield(.answer(target, await self.stage(batch)))
                    return
                }
                switch await links.answer(target, batch, LogBatchResponse.self, deadline: deadline) {
                case .success(let response): continuation.yield(.answer(target, .success(response)))
                case .failure(let error):
                    let refusal =
                        error.response.flatMap(LogRefusal.init) ?? LogRefusal(.behind, "no answer: \(error)")
                    continuation.yield(.answer(target, .failure(refusal)))
                }
            }
        }
        let timer = Task {
            try? await Task.sleep(for: deadline + .milliseconds(100))
            continuation.yield(.deadline)
        }
        defer {
            timer.cancel()
            continuation.finish()
        }
        var round = Round()
        var graceStarted = false
        for await event in events {
            switch event {
            case .answer(let id, .success(let response)): round.accepted[id] = response
            case .answer(let id, .failure(let refusal)): round.refused[id] = refusal
            case .grace, .deadline: return round
            }
            if round.accepted.count + round.refused.count == targets.count { return round }
            if !graceStarted, signers.isSubset(of: Set(round.accepted.keys).union(round.refused.keys)) {
                graceStarted = true
                let grace = configuration.cosignatureGrace
                Task {
                    try? await Task.sleep(for: grace)
                    continuation.yield(.grace)
                }
            }
        }
        return round
    }
}
