import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import QuorumCrypto
import QuorumIdentity
import QuorumProtocol

/// The node's FROST signer (DESIGN.md §5 "A call", §7): publishes nonce commitments of its boot
/// epoch to proxies and answers sign requests with signature shares, under these rules:
///
/// - Nothing before keys: until a ceremony or an import has installed the node's share, every
///   request is refused `unavailable` (`no-group-key`). Keys are read per request, so a ceremony
///   completing while the node runs takes effect at once.
/// - A nonce signs once: the nonce is taken out of the ``NoncePool`` before anything is checked or
///   computed with it, so a refused request also uses it up; a second request naming it is refused
///   (`nonce-already-used`) and kept as evidence. Commitments of another boot epoch are refused
///   (`stale-epoch`), naming both epochs.
/// - RFC 9591's signer checks: the node's own identifier present with exactly the commitment it
///   issued, identifiers sorted and distinct, members of the group, at least the threshold, every
///   commitment two valid non-identity elements.
/// - One decision per request id: the SHA-256 of the message signed for a request id is recorded
///   (``DecisionLedger``, synced) before the share leaves the node, and kept for the retention
///   window. The same message again is signed (with a fresh nonce); a different one is refused
///   (`conflicting-decision`) and kept as evidence.
///
/// Only proxies may ask for shares: the proxy is the signing coordinator (DESIGN.md §2). Operators
/// sign bundles with their own keys and have no use for the group key. Nodes may ask for
/// commitments: the log's sequencer names signer slots in its batches, and each node makes its
/// checkpoint share itself, for a batch it stored (``signCheckpoint(_:)``, from `LogService`).
///
/// Nonces and shares are never logged; a refusal is logged with its request id, reason and peer.
public final class SigningService: NodeFrameHandler, Sendable {
    /// The service's bounds and windows.
    public struct Configuration: Sendable {
        /// The nonce pool's bounds.
        public var pool = NoncePool<Ed25519Suite>.Configuration()
        /// How long a signed decision is remembered; after that its request id may be signed again
        /// with another message.
        public var retention: Duration = .seconds(24 * 3600)
        /// How often retired decisions are pruned.
        public var pruneInterval: Duration = .seconds(60)
        /// The most evidence records kept; beyond it, refusals are still logged but not stored.
        public var maximumEvidenceRecords = 10_000

        /// The defaults: a 1024-nonce pool, 24 hours' retention, pruning every minute.
        public init() {}
    }

    /// The messages the service serves, and who may send them: proxies, and for commitments
    /// also nodes (the log's sequencer gathers signer slots for checkpoints as a proxy does for
    /// receipts). Sign requests come from proxies only; a node's checkpoint share is made by the
    /// node itself, for a batch it stored (``signCheckpoint(_:)``).
    public static let roles: [UInt16: Set<ClusterRole>] = [
        CommitmentsRequest.type: [.proxy, .node], SignRequest.type: [.proxy],
    ]

    /// ``roles``, as ``NodeFrameHandler`` asks.
    public var requestRoles: [UInt16: Set<ClusterRole>] { Self.roles }

    /// This node's id.
    public let nodeID: UInt16
    /// This process's boot epoch; the pool's nonces belong to it.
    public let bootEpoch: UInt64
    /// What the node has signed, and the evidence it keeps.
    public let ledger: DecisionLedger

    private struct Pending {
        var digest: [UInt8]
        var count: Int
    }

    private struct State {
        var pool: NoncePool<Ed25519Suite>
        /// Request ids being signed right now, so two requests for one id cannot both pass the
        /// ledger check before either has written.
        var pending: [String: Pending] = [:]
        var nextPruneAt: Int64 = 0
        var pruning = false
        var evidenceCount: Int
    }

    private let keys: @Sendable () -> NodeKeys?
    private let state: NIOLockedValueBox<State>
    private let configuration: Configuration
    private let threadPool: NIOThreadPool
    private let committer: DecisionCommitter
    private let logger: Logger
    private let metrics: NodeMetrics
    private let now: @Sendable () -> Int64

    /// A signing service for node `nodeID` in `bootEpoch`, reading the keys per request from
    /// `keys` and keeping decisions in `store`, which the caller owns (once it closes it, sign requests
    /// are answered `internal`).
    ///
    /// `now` is milliseconds since the Unix epoch; blocking store work runs on `threadPool`.
    public init(
        nodeID: UInt16, bootEpoch: UInt64, keys: @escaping @Sendable () -> NodeKeys?, store: NodeStore,
        configuration: Configuration = Configuration(), threadPool: NIOThreadPool = .singleton,
        metrics: NodeMetrics = NodeMetrics(), logger: Logger = Logger(label: "quorum.signing"),
        now: @escaping @Sendable () -> Int64 = { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
    ) {
        self.nodeID = nodeID
        self.bootEpoch = bootEpoch
        self.keys = keys
        self.ledger = DecisionLedger(store: store)
        self.committer = DecisionCommitter(ledger: ledger, threadPool: threadPool)
        self.configuration = configuration
        self.threadPool = threadPool
        self.logger = logger
        self.metrics = metrics
        self.now = now
        // Counted once at start; a store that cannot be read fails every later write anyway.
        let evidence = (try? ledger.evidenceCount()) ?? 0
        // Decisions that expired while the node was down go before it serves; later prunes run
        // every pruneInterval, off the request path.
        let started = now()
        do {
            try ledger.prune(signedBefore: started - Self.milliseconds(configuration.retention))
        } catch {
            logger.error("cannot prune decisions", metadata: ["error": "\(error)"])
        }
        state = NIOLockedValueBox(
            State(
                pool: NoncePool(bootEpoch: bootEpoch, configuration: configuration.pool),
                nextPruneAt: started + Self.milliseconds(configuration.pruneInterval), evidenceCount: evidence))
    }

    /// The service of a node runtime's parts: its store, its key store, and membership's node id
    /// and boot epoch.
    public convenience init(
        store: NodeStore, keys: NodeKeyStore, membership: MembershipService, logger: Logger,
        configuration: Configuration = Configuration(), metrics: NodeMetrics = NodeMetrics()
    ) {
        let view = membership.membership
        self.init(
            nodeID: view.nodeID, bootEpoch: view.bootEpoch, keys: { keys.current }, store: store,
            configuration: configuration, metrics: metrics, logger: logger)
    }

    /// How many nonces are outstanding (handed out, not yet used).
    public var poolDepth: Int { state.withLockedValue { $0.pool.depth } }

    /// Answers ``CommitmentsRequest`` and ``SignRequest``.
    public func handle(_ peer: PeerIdentity, _ frame: Frame) async throws -> Frame? {
        guard frame.kind == .request else { return nil }
        switch frame.messageType {
        case CommitmentsRequest.type:
            return try await commitments(peer, frame)
        case SignRequest.type:
            let answer = try await sign(peer, frame)
            pruneIfDue()
            return answer
        default:
            return try Frame.errorResponse(
                ErrorResponse(.unknownMessageType, "message type \(frame.messageType) is not served here"), to: frame)
        }
    }

    // MARK: - Round one

    private func commitments(_ peer: PeerIdentity, _ frame: Frame) async throws -> Frame {
        let request = try frame.decode(CommitmentsRequest.self)
        guard let keys = keys() else {
            return try refuse(frame, peer, requestID: nil, SigningRefusal(.noGroupKey, Self.noKeyDetail))
        }
        let count = min(Int(request.count), configuration.pool.maximumPerRequest)
        let signing = keys.signing
        // Each nonce costs two base-point multiplications; a batch runs off the cooperative pool
        // so it never holds up sign requests waiting there.
        let nonces = try await threadPool.runIfActive { (0..<count).map { _ in FROST<Ed25519Suite>.commit(signing) } }
        let issued = state.withLockedValue { $0.pool.admit(nonces) }
        let response = try CommitmentsResponse(
            nodeID: nodeID, bootEpoch: bootEpoch,
            commitments: issued.map { issued throws(WireError) in
                try NonceCommitment(nonceID: issued.nonceID, commitment: issued.commitments.encoded)
            })
        return try Frame.response(response, to: frame)
    }

    /// One fresh commitment of this node, taken as a peer's ``CommitmentsRequest`` would be
    /// answered: what the sequencer names for itself in a batch's signer set. `nil` without keys.
    public func localCommitment() async -> SigningCoordinator.Commitment? {
        guard let keys = keys() else { return nil }
        let signing = keys.signing
        guard let nonce = try? await threadPool.runIfActive({ FROST<Ed25519Suite>.commit(signing) }) else {
            return nil
        }
        guard let issued = state.withLockedValue({ $0.pool.admit([nonce]) }).first,
            let entry = try? NonceCommitment(nonceID: issued.nonceID, commitment: issued.commitments.encoded)
        else { return nil }
        return SigningCoordinator.Commitment(nodeID: nodeID, bootEpoch: bootEpoch, entry: entry)
    }

    /// This node's share over a checkpoint note's text, under every signer rule of
    /// ``sign(_:decisionDigest:peer:)`` but the decision ledger: the caller (the replicated log)
    /// has durably recorded the root it signs for the checkpoint's size before it asks, and never
    /// asks for another root of that size.
    public func signCheckpoint(_ request: SignRequest) -> Outcome {
        guard let keys = keys() else { return .refused(SigningRefusal(.noGroupKey, Self.noKeyDetail)) }
        let taken = state.withLockedValue { $0.pool.take(request.nonceID, epoch: request.bootEpoch) }
        let nonces: SigningNonces<Ed25519Suite>
        switch taken {
        case .success(let found): nonces = found
        case .failure(let failure):
            switch failure {
            case .staleEpoch: return .refused(SigningRefusal(.staleEpoch, failure.description))
            case .alreadyUsed: return .refused(SigningRefusal(.nonceAlreadyUsed, failure.description))
            case .discarded, .neverIssued: return .refused(SigningRefusal(.unknownNonce, failure.description))
            }
        }
        switch Self.computeShare(request, nonces: nonces, keys: keys) {
        case .failure(let refusal): return .refused(refusal)
        case .success(let share):
            do {
                return .signed(
                    try SignResponse(
                        nodeID: nodeID, bootEpoch: bootEpoch, requestID: request.requestID, share: share.encoded))
            } catch {
                return .failed(ErrorResponse(.internal, "\(error)"))
            }
        }
    }

    // MARK: - Round two

    typealias LedgerOutcome = DecisionCommitter.Outcome

    /// Decides whether a proxy's ``SignRequest`` names a decision this node reached, and what
    /// that decision's digest is (the one ``DecisionLedger`` keeps per request id); a refusal
    /// otherwise. Set once by the node's runtime to its ``VerdictService``: until it is set,
    /// every sign request is refused, so a node never signs a message it did not decide.
    public typealias DecisionCheck = @Sendable (SignRequest) async -> Result<[UInt8], SigningRefusal>

    private let decisionCheck = NIOLockedValueBox<DecisionCheck?>(nil)

    /// Attaches the check every proxy ``SignRequest`` must pass; see ``DecisionCheck``.
    public func checkDecisions(with check: @escaping DecisionCheck) {
        decisionCheck.withLockedValue { $0 = check }
    }

    /// What one attempt to sign came to.
    public enum Outcome: Sendable {
        /// The share, made and answered for.
        case signed(SignResponse)
        /// One of the signer's rules refused it; nothing was signed.
        case refused(SigningRefusal)
        /// The node failed (its store); nothing was signed.
        case failed(ErrorResponse)
    }

    private func sign(_ peer: PeerIdentity, _ frame: Frame) async throws -> Frame {
        let request = try frame.decode(SignRequest.self)
        let digest: [UInt8]
        guard let check = decisionCheck.withLockedValue({ $0 }) else {
            metrics.share("refused", reason: SigningRefusal.Reason.noDecision.rawValue)
            return try refuse(
                frame, peer, requestID: request.requestID,
                SigningRefusal(
                    .noDecision, "node \(nodeID) has no decision point attached; it signs only decisions it reached"))
        }
        switch await check(request) {
        case .success(let decided): digest = decided
        case .failure(let refusal):
            // The nonce is spent all the same: a refused request never leaves it usable.
            _ = state.withLockedValue { $0.pool.take(request.nonceID, epoch: request.bootEpoch) }
            metrics.share("refused", reason: refusal.reason.rawValue)
            return try refuse(frame, peer, requestID: request.requestID, refusal)
        }
        switch await sign(request, decisionDigest: digest, peer: peer) {
        case .signed(let response): return try Frame.response(response, to: frame)
        case .refused(let refusal): return try refuse(frame, peer, requestID: request.requestID, refusal)
        case .failed(let error): return try Frame.errorResponse(error, to: frame)
        }
    }

    /// Signs `request.message` for `request.requestID` under the rules of this type, recording
    /// `decisionDigest` as the decision for the request id: the same digest again is signed with a
    /// fresh nonce, another is refused as a conflicting decision. The caller has established that
    /// the message stands for that decision (``DecisionCheck``, or the verdict it just reached).
    public func sign(_ request: SignRequest, decisionDigest digest: [UInt8], peer: PeerIdentity) async -> Outcome {
        let outcome = await share(request, decisionDigest: digest, peer: peer)
        switch outcome {
        case .signed: metrics.share("given")
        case .refused(let refusal): metrics.share("refused", reason: refusal.reason.rawValue)
        case .failed: metrics.share("failed")
        }
        return outcome
    }

    /// ``sign(_:decisionDigest:peer:)``'s work, before the outcome is counted.
    private func share(_ request: SignRequest, decisionDigest digest: [UInt8], peer: PeerIdentity) async -> Outcome {
        let requestID = request.requestID
        guard let keys = keys() else { return .refused(SigningRefusal(.noGroupKey, Self.noKeyDetail)) }
        // The nonce leaves the pool first: whatever is wrong with the request, it is never
        // handed to anyone again.
        let taken = state.withLockedValue { $0.pool.take(request.nonceID, epoch: request.bootEpoch) }
        let nonces: SigningNonces<Ed25519Suite>
        switch taken {
        case .success(let found):
            nonces = found
        case .failure(let failure):
            switch failure {
            case .staleEpoch:
                return .refused(SigningRefusal(.staleEpoch, failure.description))
            case .alreadyUsed:
                await keepEvidence(
                    kind: SigningRefusal.Reason.nonceAlreadyUsed.rawValue, request: request, peer: peer,
                    signedDigest: nil, requestedDigest: digest)
                return .refused(SigningRefusal(.nonceAlreadyUsed, failure.description))
            case .discarded, .neverIssued:
                return .refused(SigningRefusal(.unknownNonce, failure.description))
            }
        }
        let share: SignatureShare<Ed25519Suite>
        switch Self.computeShare(request, nonces: nonces, keys: keys) {
        case .success(let made): share = made
        case .failure(let refusal): return .refused(refusal)
        }
        // The share exists only here until the decision is on disk.
        if let conflict = reserve(requestID, digest) {
            await keepEvidence(
                kind: SigningRefusal.Reason.conflictingDecision.rawValue, request: request, peer: peer,
                signedDigest: conflict, requestedDigest: digest)
            return .refused(Self.conflictRefusal(requestID, conflict, digest))
        }
        let outcome: LedgerOutcome
        do {
            outcome = try await committer.commit(requestID: requestID, digest: digest, at: now())
        } catch {
            release(requestID)
            logger.error(
                "cannot record a decision; share withheld",
                metadata: ["request_id": "\(requestID)", "error": "\(error)"])
            return .failed(
                ErrorResponse(.internal, "cannot record the decision for request \(requestID); nothing was signed"))
        }
        release(requestID)
        if case .conflict(let existing) = outcome {
            await keepEvidence(
                kind: SigningRefusal.Reason.conflictingDecision.rawValue, request: request, peer: peer,
                signedDigest: existing.digest, requestedDigest: digest)
            return .refused(Self.conflictRefusal(requestID, existing.digest, digest))
        }
        do {
            return .signed(
                try SignResponse(nodeID: nodeID, bootEpoch: bootEpoch, requestID: requestID, share: share.encoded))
        } catch {
            return .failed(ErrorResponse(.internal, "\(error)"))
        }
    }

    /// RFC 9591's signer checks, in the order that names the most specific fault, then the
    /// share. Every path drops `nonces` (already out of the pool).
    static func computeShare(
        _ request: SignRequest, nonces: SigningNonces<Ed25519Suite>, keys: NodeKeys
    ) -> Result<SignatureShare<Ed25519Suite>, SigningRefusal> {
        let key = keys.signing
        let own = key.identifier
        guard let ownCommitment = request.commitment(of: own.value) else {
            return .failure(
                SigningRefusal(
                    .missingOwnCommitment,
                    "the commitment list (identifiers \(request.commitments.map { String($0.identifier) }.joined(separator: ","))) "
                        + "lacks this node's own entry, identifier \(own)"))
        }
        guard ownCommitment == nonces.commitments.encoded else {
            return .failure(
                SigningRefusal(
                    .commitmentMismatch,
                    "the list carries another commitment for identifier \(own) than the one issued as nonce "
                        + "\(request.nonceID)"))
        }
        guard request.commitments.count >= key.minSigners else {
            return .failure(
                SigningRefusal(
                    .tooFewSigners,
                    "\(request.commitments.count) signers committed; the group's threshold is \(key.minSigners)"))
        }
        var commitments: [SigningCommitments<Ed25519Suite>] = []
        for entry in request.commitments {
            let identifier: Identifier
            do { identifier = try Identifier(entry.identifier) } catch {
                return .failure(SigningRefusal(.unknownSigner, "identifier 0 is not a participant"))
            }
            guard keys.signingGroup.verifyingShares[identifier] != nil else {
                return .failure(
                    SigningRefusal(
                        .unknownSigner,
                        "identifier \(identifier) is not a member of the signing group (members "
                            + "\(keys.signingGroup.identifiers.map(\.description).joined(separator: ",")))"))
            }
            // This node's own entry equals the commitment it issued (checked above): its points
            // were made here, so they need no second validation (a subgroup check costs ~40 µs).
            if identifier == own {
                commitments.append(nonces.commitments)
                continue
            }
            do {
                commitments.append(try SigningCommitments(identifier: identifier, encoded: entry.commitment))
            } catch {
                return .failure(SigningRefusal(.invalidCommitment, error.reason))
            }
        }
        let session: SigningSession<Ed25519Suite>
        do {
            let package = try SigningPackage(message: request.message, commitments: commitments)
            session = try SigningSession(package: package, verifyingKey: key.verifyingKey)
        } catch {
            switch error.code {
            case .unsortedCommitments, .duplicateIdentifier:
                return .failure(SigningRefusal(.unsortedCommitments, error.reason))
            default:
                return .failure(SigningRefusal(.invalidCommitment, error.reason))
            }
        }
        do throws(CryptoError) {
            return .success(try FROST<Ed25519Suite>.sign(session: session, nonces: nonces, key: key))
        } catch {
            switch error.code {
            case .missingOwnCommitment: return .failure(SigningRefusal(.missingOwnCommitment, error.reason))
            case .commitmentMismatch: return .failure(SigningRefusal(.commitmentMismatch, error.reason))
            case .tooFewParticipants: return .failure(SigningRefusal(.tooFewSigners, error.reason))
            case .nonceAlreadyUsed: return .failure(SigningRefusal(.nonceAlreadyUsed, error.reason))
            default: return .failure(SigningRefusal(.invalidCommitment, error.reason))
            }
        }
    }

    // MARK: - Decisions in flight

    /// Marks `requestID` as being signed for `digest`; returns the digest in flight instead when
    /// another request is signing a different message for it right now.
    private func reserve(_ requestID: String, _ digest: [UInt8]) -> [UInt8]? {
        state.withLockedValue { state in
            if let pending = state.pending[requestID] {
                guard pending.digest == digest else { return pending.digest }
                state.pending[requestID]!.count += 1
            } else {
                state.pending[requestID] = Pending(digest: digest, count: 1)
            }
            return nil
        }
    }

    private func release(_ requestID: String) {
        state.withLockedValue { state in
            guard var pending = state.pending[requestID] else { return }
            pending.count -= 1
            state.pending[requestID] = pending.count > 0 ? pending : nil
        }
    }

    private static func conflictRefusal(_ requestID: String, _ signed: [UInt8], _ requested: [UInt8]) -> SigningRefusal
    {
        SigningRefusal(
            .conflictingDecision,
            "request \(requestID) was already signed for a decision with digest \(Hex.encode(signed)); "
                + "this one has digest \(Hex.encode(requested)); a node signs one decision per request id")
    }

    static let noKeyDetail =
        "no group key yet: this node signs nothing until a key ceremony (or a dealer import) has completed"

    // MARK: - Evidence, refusals, pruning

    private func keepEvidence(
        kind: String, request: SignRequest, peer: PeerIdentity, signedDigest: [UInt8]?, requestedDigest: [UInt8]
    ) async {
        let admitted = state.withLockedValue { state in
            guard state.evidenceCount < configuration.maximumEvidenceRecords else { return false }
            state.evidenceCount += 1
            return true
        }
        guard admitted else {
            logger.error(
                "evidence store full; refusal not kept",
                metadata: ["request_id": "\(request.requestID)", "kind": "\(kind)"])
            return
        }
        let evidence = DecisionLedger.Evidence(
            kind: kind, requestID: request.requestID, peer: "\(peer)", at: now(), bootEpoch: bootEpoch,
            nonceID: request.nonceID, signedDigest: signedDigest, requestedDigest: requestedDigest)
        let ledger = ledger
        do {
            try await threadPool.runIfActive { try ledger.keep(evidence) }
        } catch {
            logger.error("cannot keep evidence", metadata: ["request_id": "\(request.requestID)", "error": "\(error)"])
        }
    }

    private func refuse(
        _ frame: Frame, _ peer: PeerIdentity, requestID: String?, _ refusal: SigningRefusal
    ) throws(FrameError) -> Frame {
        var metadata: Logger.Metadata = ["peer": "\(peer)", "reason": "\(refusal.reason.rawValue)"]
        if let requestID { metadata["request_id"] = "\(requestID)" }
        let level: Logger.Level =
            switch refusal.reason {
            case .conflictingDecision, .nonceAlreadyUsed, .commitmentMismatch: .warning
            case .noGroupKey, .staleEpoch, .unknownNonce: .info
            default: .notice
            }
        logger.log(level: level, "signing refused: \(refusal.detail)", metadata: metadata)
        return try Frame.errorResponse(refusal.errorResponse, to: frame)
    }

    /// Starts a prune of decisions past the retention window on the thread pool when one is due;
    /// never waits for it.
    private func pruneIfDue() {
        let at = now()
        let interval = Self.milliseconds(configuration.pruneInterval)
        let due = state.withLockedValue { state in
            guard !state.pruning, at >= state.nextPruneAt else { return false }
            state.pruning = true
            state.nextPruneAt = at + interval
            return true
        }
        guard due else { return }
        let cutoff = at - Self.milliseconds(configuration.retention)
        let ledger = ledger
        let state = state
        let logger = logger
        threadPool.submit { work in
            defer { state.withLockedValue { $0.pruning = false } }
            guard case .active = work else { return }
            do {
                let pruned = try ledger.prune(signedBefore: cutoff)
                if pruned > 0 {
                    logger.debug("pruned decisions past the retention window", metadata: ["count": "\(pruned)"])
                }
            } catch {
                logger.error("cannot prune decisions", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Prunes decisions past the retention window now, waiting for it; returns how many went.
    @discardableResult
    public func pruneNow() async throws -> Int {
        let cutoff = now() - Self.milliseconds(configuration.retention)
        let ledger = ledger
        return try await threadPool.runIfActive { try ledger.prune(signedBefore: cutoff) }
    }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
