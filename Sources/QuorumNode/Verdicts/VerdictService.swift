import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QuorumCrypto
import QuorumIdentity
import QuorumPolicy
import QuorumProtocol

/// The node's policy decision point (DESIGN.md §5, "A call", step 3): installs the bundles
/// operators push, answers a proxy's ``DecideRequest`` with this node's own verdict signed by its
/// identity key, and settles spend reservations.
///
/// Evaluations run one at a time against the node's policy state, so two concurrent calls never
/// both spend the last of a budget; each verdict, the state it changed and its reservation are
/// written in one synced batch before the answer leaves, so a crash never forgets a decision that
/// was answered. A request id decided once is answered again with the recorded verdict, never
/// re-evaluated (a proxy's retry must not count twice against a rate limit).
///
/// Fail closed: no bundle installed, a store error or a request time too far from this node's
/// clock is a refusal with the reason, never an allow.
public final class VerdictService: NodeFrameHandler, Sendable {
    private struct State {
        var bundle: PolicyBundle?
        var signedBundle: [UInt8] = []
        var policyState = PolicyState()
        /// Verdicts reached and queued for the store but not yet on disk, by request id: a retry
        /// arriving meanwhile gets the same verdict (and waits for the same write), never a second
        /// evaluation.
        var inFlight: [String: (verdict: [UInt8], decided: Decided, written: EventLoopFuture<Void>)] = [:]
    }

    private let nodeID: UInt16
    private let identity: Ed25519KeyPair
    private let store: NodeStore
    private let keys: @Sendable () -> NodeKeys?
    private let signer: SigningService
    private let operatorKeys: [[UInt8]]
    private let maximumSkewMilliseconds: Int64
    private let threadPool: NIOThreadPool
    /// Verdict and settlement writes, group-committed in evaluation order.
    private let committer: StoreCommitter
    private let logger: Logger
    private let metrics: NodeMetrics
    private let state: NIOLockedValueBox<State>
    /// This node's decryption share of each credential record, by secret name: a share is a
    /// function of the record's box and the node's sealing share only (its proof is a proof of
    /// the same statement each time), so it is made once per record and key, not per call.
    private let decryptionShares = NIOLockedValueBox<[String: (record: [UInt8], key: [UInt8], share: [UInt8])]>([:])
    /// Serialises evaluation and the state change it makes; held across the synced write, so the
    /// next evaluation sees this one's effect exactly as the store will after a crash.
    private let evaluation = NIOLock()

    /// A service over `store`, loading the installed bundle and policy state.
    ///
    /// - Throws: ``NodeRuntimeError`` when the stored bundle or state cannot be read: the node
    ///   refuses to start rather than decide against state it cannot see.
    public init(
        configuration: NodeConfiguration, identity: Ed25519KeyPair, store: NodeStore,
        keys: @escaping @Sendable () -> NodeKeys?, signer: SigningService, threadPool: NIOThreadPool = .singleton,
        metrics: NodeMetrics = NodeMetrics(), logger: Logger
    ) throws(NodeRuntimeError) {
        nodeID = configuration.nodeID
        self.identity = identity
        self.store = store
        self.keys = keys
        self.signer = signer
        operatorKeys = configuration.operatorKeys
        maximumSkewMilliseconds =
            Int64(configuration.maximumClockSkew.components.seconds) * 1000
            + configuration.maximumClockSkew.components.attoseconds / 1_000_000_000_000_000
        self.threadPool = threadPool
        committer = StoreCommitter(
            store: store, threadPool: threadPool, eventLoop: MultiThreadedEventLoopGroup.singleton.any())
        self.logger = logger
        self.metrics = metrics
        var initial = State()
        do {
            if let signed = try store.get(.policy, PolicyStore.bundleKey) {
                initial.bundle = try SignedBundle.open(
                    signed, fileName: "\(store.path) (installed bundle)", trustedSigners: operatorKeys, newerThan: nil)
                initial.signedBundle = signed
            }
            initial.policyState = try PolicyStore.loadState(from: store)
        } catch {
            throw NodeRuntimeError("cannot load the installed policy: \(error)")
        }
        state = NIOLockedValueBox(initial)
        // A proxy's sign request (a retry with other signers) is signed only for a decision
        // this node reached; see ``check(_:)``.
        signer.checkDecisions { [store, keys, nodeID] request in
            await Self.check(request, store: store, keys: keys, nodeID: nodeID)
        }
    }

    private let installed = NIOLockedValueBox<(@Sendable (BundleEntry) -> Void)?>(nil)

    /// Calls `hook` with the log entry of every bundle installed from now on (the node's runtime
    /// submits it to the replicated log).
    public func onBundleInstalled(_ hook: @escaping @Sendable (BundleEntry) -> Void) {
        installed.withLockedValue { $0 = hook }
    }

    /// The digest of the installed bundle, for status and heartbeats.
    public var bundleDigest: String? { state.withLockedValue { $0.bundle?.digest } }

    /// Operators push bundles; proxies (and operators) fetch them; proxies ask for decisions.
    public var requestRoles: [UInt16: Set<ClusterRole>] {
        [
            PolicyPushRequest.type: [.operator],
            PolicyFetchRequest.type: [.proxy, .operator],
            DecideRequest.type: [.proxy],
            SettleRequest.type: [.proxy],
            CredentialPutRequest.type: [.operator],
        ]
    }

    /// Answers the policy and decision messages.
    public func handle(_ peer: PeerIdentity, _ frame: Frame) async throws -> Frame? {
        guard frame.kind == .request else { return nil }
        switch frame.messageType {
        case PolicyPushRequest.type:
            let request = try frame.decode(PolicyPushRequest.self)
            return try await answer(frame) { () throws(Refusal) in try self.install(request, from: peer) }
        case PolicyFetchRequest.type:
            _ = try frame.decode(PolicyFetchRequest.self)
            let signed = state.withLockedValue { $0.signedBundle }
            return try Frame.response(PolicyFetchResponse(nodeID: nodeID, signedBundle: signed), to: frame)
        case DecideRequest.type:
            let request = try frame.decode(DecideRequest.self)
            return try await decide(request, frame: frame, peer: peer)
        case CredentialPutRequest.type:
            let request = try frame.decode(CredentialPutRequest.self)
            return try await answer(frame) { () throws(Refusal) in try self.putCredential(request, from: peer) }
        case SettleRequest.type:
            let request = try frame.decode(SettleRequest.self)
            let settled: Result<EventLoopFuture<Void>?, Refusal> = try await threadPool.runIfActive {
                do throws(Refusal) { return .success(try self.settle(request)) } catch { return .failure(error) }
            }
            switch settled {
            case .failure(let refusal):
                return try Frame.errorResponse(ErrorResponse(refusal.code, refusal.reason), to: frame)
            case .success(let written):
                do { try await written?.get() } catch {
                    return try Frame.errorResponse(
                        ErrorResponse(.internal, "cannot record the settlement: \(error)"), to: frame)
                }
                return try Frame.response(
                    SettleResponse(nodeID: nodeID, requestID: request.requestID, settled: written != nil), to: frame)
            }
        default:
            return try Frame.errorResponse(
                ErrorResponse(.unknownMessageType, "message type \(frame.messageType) is not served here"), to: frame)
        }
    }

    /// Why a request was not answered: the error-response code and the reason.
    struct Refusal: Error {
        let code: ErrorResponse.Code
        let reason: String
        init(_ code: ErrorResponse.Code, _ reason: String) {
            self.code = code
            self.reason = reason
        }
    }

    /// Runs `body` holding the evaluation lock.
    private func serialised<T>(_ body: () throws(Refusal) -> T) throws(Refusal) -> T {
        evaluation.lock()
        defer { evaluation.unlock() }
        return try body()
    }

    /// Runs `work` (blocking: it reads and writes RocksDB) on the thread pool and frames its result.
    private func answer(
        _ frame: Frame, _ work: @escaping @Sendable () throws(Refusal) -> any WireMessage
    ) async throws -> Frame {
        let result: Result<any WireMessage, Refusal> = try await threadPool.runIfActive {
            do throws(Refusal) { return .success(try work()) } catch { return .failure(error) }
        }
        switch result {
        case .success(let message): return try Frame.response(message, to: frame)
        case .failure(let refusal):
            return try Frame.errorResponse(ErrorResponse(refusal.code, refusal.reason), to: frame)
        }
    }

    // MARK: - Bundles

    private func install(_ request: PolicyPushRequest, from peer: PeerIdentity) throws(Refusal) -> PolicyPushResponse {
        guard !operatorKeys.isEmpty else {
            throw Refusal(
                .refused,
                "node \(nodeID) trusts no operator key; add the operator's public key to policy.operator_keys in its configuration"
            )
        }
        return try serialised { () throws(Refusal) -> PolicyPushResponse in
            let current = state.withLockedValue { $0.bundle }
            let bundle: PolicyBundle
            do {
                bundle = try SignedBundle.open(
                    request.signedBundle, fileName: "pushed bundle", trustedSigners: operatorKeys, newerThan: nil)
            } catch {
                throw Refusal(.refused, "\(error)")
            }
            if let current {
                if current.digest == bundle.digest {
                    return try response(bundle, installed: false)
                }
                guard bundle.version > current.version else {
                    throw Refusal(
                        .refused,
                        "bundle version \(bundle.version) is not newer than the installed version \(current.version) "
                            + "(\(current.digest)); raise the version and sign again")
                }
            }
            do {
                try store.write([.put(.policy, PolicyStore.bundleKey, request.signedBundle)])
            } catch {
                throw Refusal(.internal, "cannot store the bundle: \(error)")
            }
            state.withLockedValue {
                $0.bundle = bundle
                $0.signedBundle = request.signedBundle
            }
            logger.notice(
                "installed policy bundle",
                metadata: ["operator": "\(peer)", "version": "\(bundle.version)", "digest": "\(bundle.digest)"])
            // The key that signed it: the one trusted key the envelope opens under.
            let signer = operatorKeys.first { key in
                (try? SignedBundle.open(request.signedBundle, fileName: "", trustedSigners: [key], newerThan: nil))
                    != nil
            }
            if let signer, let hook = installed.withLockedValue({ $0 }) {
                hook(
                    BundleEntry(
                        version: bundle.version, digest: bundle.digest, operatorKey: signer,
                        signedBundle: request.signedBundle))
            }
            return try response(bundle, installed: true)
        }
    }

    private func response(_ bundle: PolicyBundle, installed: Bool) throws(Refusal) -> PolicyPushResponse {
        do {
            return try PolicyPushResponse(
                nodeID: nodeID, version: bundle.version, digest: bundle.digest, installed: installed)
        } catch {
            throw Refusal(.internal, "\(error)")
        }
    }

    // MARK: - Decisions

    /// What this node decided for one request id, as recorded: the verdict's bytes, the receipt
    /// claims it stands for (without signers) and the secret its route names.
    struct Decided: Codable, Sendable {
        var requestID: String
        var issuedAt: Int64
        var latch: String
        var mount: String
        var method: String
        var path: String
        var bodySHA256: String
        var allow: Bool
        var bundle: String
        var reasons: [String]
        var secret: String?

        init(request: DecideRequest, verdict: Verdict) {
            let claims = ReceiptClaims(request: request, verdict: verdict, signers: [])
            requestID = claims.requestID
            issuedAt = claims.issuedAt
            latch = claims.latch
            mount = claims.mount
            method = claims.method
            path = claims.path
            bodySHA256 = claims.bodySHA256
            allow = claims.decision == .allow
            bundle = claims.bundle
            reasons = claims.reasons
            if case .upstream(_, _, let secret, _)? = verdict.route { self.secret = secret }
        }

        func claims(signers: [UInt16]) -> ReceiptClaims {
            ReceiptClaims(
                requestID: requestID, issuedAt: issuedAt, latch: latch, mount: mount, method: method, path: path,
                bodySHA256: bodySHA256, decision: allow ? .allow : .deny, bundle: bundle,
                signers: signers.sorted().map(Int.init), reasons: reasons)
        }
    }

    /// Answers a ``DecideRequest``: the verdict (reached now, or the one recorded for the request
    /// id), signed by this node; if this node is in the request's signer set, its FROST share over
    /// the receipt of that verdict; on an allow whose route names a secret, its decryption share.
    private func decide(_ request: DecideRequest, frame: Frame, peer: PeerIdentity) async throws -> Frame {
        let reached: Result<Reached, Refusal> = try await threadPool.runIfActive {
            do throws(Refusal) { return .success(try self.verdict(request)) } catch { return .failure(error) }
        }
        let verdict: [UInt8]
        let decided: Decided
        switch reached {
        case .success(let found):
            (verdict, decided) = (found.verdict, found.decided)
            // Nothing of a verdict leaves the node before it is on disk.
            if let written = found.written {
                do { try await written.get() } catch {
                    state.withLockedValue { _ = $0.inFlight.removeValue(forKey: request.requestID) }
                    metrics.decideRefused(code: ErrorResponse.Code.internal.description)
                    logger.error(
                        "cannot record the verdict",
                        metadata: ["request_id": "\(request.requestID)", "reason": "\(error)"])
                    return try Frame.errorResponse(
                        ErrorResponse(.internal, "cannot record the verdict for \(request.requestID): \(error)"),
                        to: frame)
                }
                if let queued = found.queuedAt { metrics.verdictWritten(in: .now - queued) }
                state.withLockedValue { _ = $0.inFlight.removeValue(forKey: request.requestID) }
            }
            logger.info(
                "verdict",
                metadata: [
                    "request_id": "\(request.requestID)", "decision": "\(decided.allow ? "allow" : "deny")",
                    "step": "\(decided.allow ? "none" : MetricLabels.step(ofReason: decided.reasons.first ?? ""))",
                    "latch": "\(decided.latch.isEmpty ? "-" : decided.latch)",
                ])
        case .failure(let refusal):
            metrics.decideRefused(code: refusal.code.description)
            logger.info(
                "decide refused",
                metadata: [
                    "request_id": "\(request.requestID)", "code": "\(refusal.code)", "reason": "\(refusal.reason)",
                ])
            return try Frame.errorResponse(ErrorResponse(refusal.code, refusal.reason), to: frame)
        }
        let keys = keys()
        var share: [UInt8] = []
        if let slot = request.slot(of: nodeID), let keys {
            share = await receiptShare(request, slot: slot, decided: decided, keys: keys, peer: peer)
        }
        var decryptionShare: [UInt8] = []
        if decided.allow, let secret = decided.secret, let keys {
            decryptionShare = credentialShare(secret, keys: keys, requestID: request.requestID)
        }
        let response = try DecideResponse(
            nodeID: nodeID, bootEpoch: signer.bootEpoch, requestID: request.requestID, verdict: verdict,
            signature: identity.sign(
                DecideResponse.signedBytes(nodeID: nodeID, requestID: request.requestID, verdict: verdict)),
            share: share, decryptionShare: decryptionShare)
        return try Frame.response(response, to: frame)
    }

    /// A verdict reached or found, and the write it still waits for (nil when it is on disk).
    struct Reached: Sendable {
        let verdict: [UInt8]
        let decided: Decided
        let written: EventLoopFuture<Void>?
        /// When this call queued the write, if it did (a retry waiting for the same write did not).
        var queuedAt: ContinuousClock.Instant? = nil
    }

    /// This node's verdict on `request`: the one in flight or recorded for its request id, or a new
    /// one, queued with its claims and state changes as one batch for the store (the caller waits
    /// for it before answering). Blocking: runs on the thread pool.
    private func verdict(_ request: DecideRequest) throws(Refusal) -> Reached {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        guard abs(now - request.time) <= maximumSkewMilliseconds else {
            throw Refusal(
                .refused,
                "request \(request.requestID) is stamped \(request.time) ms; node \(nodeID)'s clock reads \(now) ms, "
                    + "more than policy.max_clock_skew_ms (\(maximumSkewMilliseconds)) apart")
        }
        return try serialised { () throws(Refusal) -> Reached in
            if let pending = state.withLockedValue({ $0.inFlight[request.requestID] }) {
                return Reached(verdict: pending.verdict, decided: pending.decided, written: pending.written)
            }
            let verdictKey = PolicyStore.key(PolicyStore.verdictPrefix, request.requestID)
            do {
                if let recorded = try store.get(.policy, verdictKey),
                    let decided = try Self.decided(request.requestID, in: store)
                {
                    return Reached(verdict: recorded, decided: decided, written: nil)
                }
            } catch {
                throw Refusal(.internal, "cannot read the verdict record: \(error)")
            }
            let (bundle, policyState) = state.withLockedValue { ($0.bundle, $0.policyState) }
            guard let bundle else {
                throw Refusal(
                    .unavailable, "node \(nodeID) has no policy bundle installed; push one with quorumctl policy push")
            }
            let evaluationStart = ContinuousClock.now
            let decision = PolicyEngine(bundle: bundle).evaluate(
                Self.decisionRequest(request), state: policyState,
                at: Date(timeIntervalSince1970: Double(request.time) / 1000))
            metrics.verdict(decision, evaluatedIn: .now - evaluationStart)
            var updated = policyState
            updated.apply(decision.stateChanges)
            let encoded = decision.encoded()
            let decided = Decided(request: request, verdict: decision)
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            var writes: [NodeStore.Change]
            do {
                writes = [
                    .put(.policy, verdictKey, encoded),
                    .put(
                        .policy, PolicyStore.key(PolicyStore.claimsPrefix, request.requestID),
                        Array(try encoder.encode(decided))),
                ]
                // The decision is the ledger's too, in the same write: signing its receipt later
                // (in this round or a retry) then finds it recorded and writes nothing more.
                writes += DecisionLedger.changes(
                    recording: [(request.requestID, decided.claims(signers: []).decisionDigest, now)])
                writes += try PolicyStore.persist(decision.stateChanges, of: updated)
                if let reservation = decision.reservation {
                    writes.append(
                        .put(
                            .policy, PolicyStore.key(PolicyStore.reservationPrefix, request.requestID),
                            Array(try encoder.encode(reservation))))
                }
            } catch {
                throw Refusal(.internal, "cannot encode the verdict's records: \(error)")
            }
            // Queued in evaluation order and group-committed; the answer waits for it (decide).
            // The next evaluation already sees this one's state, as the store will once both are
            // written: a later synced write lands only after the earlier ones.
            let queuedAt = ContinuousClock.now
            let written = committer.enqueue(writes)
            state.withLockedValue {
                $0.policyState = updated
                $0.inFlight[request.requestID] = (encoded, decided, written)
            }
            return Reached(verdict: encoded, decided: decided, written: written, queuedAt: queuedAt)
        }
    }

    /// The decision recorded for `requestID`, if any.
    static func decided(_ requestID: String, in store: NodeStore) throws -> Decided? {
        guard let bytes = try store.get(.policy, PolicyStore.key(PolicyStore.claimsPrefix, requestID)) else {
            return nil
        }
        return try JSONDecoder().decode(Decided.self, from: Data(bytes))
    }

    /// This node's FROST share over the receipt of its decision, signed with the nonce its slot
    /// names; empty (logged) when the signer refuses, so the verdict still reaches the proxy, which
    /// can ask another node.
    private func receiptShare(
        _ request: DecideRequest, slot: SignerSlot, decided: Decided, keys: NodeKeys, peer: PeerIdentity
    ) async -> [UInt8] {
        let claims = decided.claims(signers: request.signers.map(\.identifier))
        let signRequest: SignRequest
        do {
            let message = try Receipt.signingInput(claims: claims, groupKey: keys.groupKeyBytes)
            signRequest = try SignRequest(
                bootEpoch: slot.bootEpoch, nonceID: slot.nonceID, requestID: request.requestID, message: message,
                commitments: request.signers.map(\.signerCommitment))
        } catch {
            logger.warning(
                "cannot build the receipt to sign",
                metadata: ["request_id": "\(request.requestID)", "error": "\(error)"])
            return []
        }
        switch await signer.sign(signRequest, decisionDigest: claims.decisionDigest, peer: peer) {
        case .signed(let response): return response.share
        case .refused(let refusal):
            logger.notice(
                "receipt not signed: \(refusal)", metadata: ["request_id": "\(request.requestID)", "peer": "\(peer)"])
            return []
        case .failed(let error):
            logger.error("receipt not signed: \(error)", metadata: ["request_id": "\(request.requestID)"])
            return []
        }
    }

    /// This node's decryption share of the sealed credential `secret` names, or empty (logged) when
    /// the node holds no record of it or the record is sealed to another group.
    private func credentialShare(_ secret: String, keys: NodeKeys, requestID: String) -> [UInt8] {
        do throws(any Error) {
            guard let bytes = try store.get(.policy, PolicyStore.key(PolicyStore.credentialPrefix, secret)) else {
                logger.warning(
                    "allowed, but no sealed credential is held for the secret; push it with quorumctl secrets set --cluster",
                    metadata: ["request_id": "\(requestID)", "secret": "\(secret)"])
                return []
            }
            let sealingKey = try keys.sealingGroup.verifyingKey.serialized()
            // The node's own verifying share changes with a refresh (same group key, new shares).
            let ownShare = try (keys.sealingGroup.verifyingShares[keys.sealing.identifier]?.serialized() ?? [])
            if let cached = decryptionShares.withLockedValue({ $0[secret] }), cached.record == bytes,
                cached.key == sealingKey + ownShare
            {
                return cached.share
            }
            let record = try SealedCredential(decoding: bytes, file: "credential \(secret)")
            guard record.sealingGroupKey == sealingKey else {
                logger.warning(
                    "the sealed credential '\(secret)' is sealed to another group; seal it again",
                    metadata: ["request_id": "\(requestID)"])
                return []
            }
            let share = try ThresholdSealing<Ed25519Suite>.decryptionShare(for: record.box, key: keys.sealing).encoded()
            decryptionShares.withLockedValue { $0[secret] = (bytes, sealingKey + ownShare, share) }
            return share
        } catch {
            logger.error("cannot make a decryption share: \(error)", metadata: ["request_id": "\(requestID)"])
            return []
        }
    }

    /// Whether a proxy's ``SignRequest`` stands for the decision this node recorded for its request
    /// id: its message must be the receipt signing input of exactly those claims, with the
    /// request's signers; the digest the ledger keeps is the decision's.
    static func check(
        _ request: SignRequest, store: NodeStore, keys: @Sendable () -> NodeKeys?, nodeID: UInt16
    ) async -> Result<[UInt8], SigningRefusal> {
        guard let keys = keys() else { return .failure(SigningRefusal(.noGroupKey, SigningService.noKeyDetail)) }
        let claims: ReceiptClaims
        do {
            claims = try Receipt.claims(inSigningInput: request.message, groupKey: keys.groupKeyBytes)
        } catch {
            return .failure(SigningRefusal(.noDecision, "the message is not a receipt of this group: \(error)"))
        }
        guard claims.requestID == request.requestID else {
            return .failure(
                SigningRefusal(
                    .noDecision, "the receipt is for request \(claims.requestID), the request for \(request.requestID)")
            )
        }
        guard claims.signers == request.commitments.map({ Int($0.identifier) }) else {
            return .failure(
                SigningRefusal(
                    .noDecision,
                    "the receipt names signers \(claims.signers), the commitment list "
                        + "\(request.commitments.map(\.identifier))"))
        }
        let decided: Decided?
        do { decided = try Self.decided(request.requestID, in: store) } catch {
            return .failure(SigningRefusal(.noDecision, "cannot read the decision record: \(error)"))
        }
        guard let decided else {
            return .failure(
                SigningRefusal(.noDecision, "node \(nodeID) reached no decision for request \(request.requestID)"))
        }
        let own = decided.claims(signers: request.commitments.map(\.identifier))
        guard own.decisionDigest == claims.decisionDigest else {
            return .failure(
                SigningRefusal(
                    .noDecision,
                    "node \(nodeID) decided otherwise for request \(request.requestID) (\(own.decision.rawValue))"))
        }
        return .success(claims.decisionDigest)
    }

    // MARK: - Sealed credentials

    private func putCredential(
        _ request: CredentialPutRequest, from peer: PeerIdentity
    ) throws(Refusal)
        -> CredentialPutResponse
    {
        let record: SealedCredential
        do { record = try SealedCredential(decoding: request.record, file: "pushed credential") } catch {
            throw Refusal(.refused, "\(error)")
        }
        guard let keys = keys() else {
            throw Refusal(.unavailable, "node \(nodeID) has no keys yet; run the key ceremony first")
        }
        let groupKey = (try? keys.sealingGroup.verifyingKey.serialized()) ?? []
        guard record.sealingGroupKey == groupKey else {
            throw Refusal(
                .refused,
                "credential '\(record.name)' is sealed to \(Hex.encode(record.sealingGroupKey)); this cluster's sealing "
                    + "key is \(Hex.encode(groupKey)); seal it to sealing-group.json")
        }
        let key = PolicyStore.key(PolicyStore.credentialPrefix, record.name)
        let replaced: Bool
        do {
            let existing = try store.get(.policy, key)
            replaced = existing != nil && existing != request.record
            try store.write([.put(.policy, key, request.record)])
        } catch {
            throw Refusal(.internal, "cannot store the credential record: \(error)")
        }
        logger.notice("stored sealed credential", metadata: ["name": "\(record.name)", "operator": "\(peer)"])
        do { return try CredentialPutResponse(nodeID: nodeID, name: record.name, replaced: replaced) } catch {
            throw Refusal(.internal, "\(error)")
        }
    }

    /// QuorumPolicy's canonical request for the wire message.
    static func decisionRequest(_ request: DecideRequest) -> DecisionRequest {
        DecisionRequest(
            requestID: request.requestID, method: request.method, target: request.target,
            headers: request.headers.map { HeaderField(name: $0.name, value: $0.value) }, body: request.body,
            bodyLength: Int(clamping: request.bodyLength), clientAddress: request.clientAddress, token: request.token,
            clientCertificateSHA256: request.clientCertificateSHA256.isEmpty ? nil : request.clientCertificateSHA256)
    }

    // MARK: - Settlement

    /// Settles the reservation of `request`'s call: the write that does it, queued behind every
    /// verdict before it, or nil when there was no reservation open.
    private func settle(_ request: SettleRequest) throws(Refusal) -> EventLoopFuture<Void>? {
        try serialised { () throws(Refusal) -> EventLoopFuture<Void>? in
            let key = PolicyStore.key(PolicyStore.reservationPrefix, request.requestID)
            let stored: [UInt8]?
            do { stored = try store.get(.policy, key) } catch {
                throw Refusal(.internal, "cannot read the reservation: \(error)")
            }
            guard let stored else { return nil }
            let (bundle, policyState) = state.withLockedValue { ($0.bundle, $0.policyState) }
            guard let bundle else {
                throw Refusal(.unavailable, "node \(nodeID) has no policy bundle installed")
            }
            let reservation: SpendReservation
            do { reservation = try JSONDecoder().decode(SpendReservation.self, from: Data(stored)) } catch {
                throw Refusal(.internal, "the stored reservation of \(request.requestID) does not decode: \(error)")
            }
            let usage = request.usage.map { SpendUsage(inputTokens: $0.inputTokens, outputTokens: $0.outputTokens) }
            let changes = PolicyEngine(bundle: bundle).settle(reservation, usage: usage, at: Date())
            var updated = policyState
            updated.apply(changes)
            let writes: [NodeStore.Change]
            do { writes = try PolicyStore.persist(changes, of: updated) + [.delete(.policy, key)] } catch {
                throw Refusal(.internal, "cannot encode the settlement: \(error)")
            }
            let written = committer.enqueue(writes)
            state.withLockedValue { $0.policyState = updated }
            return written
        }
    }
}
