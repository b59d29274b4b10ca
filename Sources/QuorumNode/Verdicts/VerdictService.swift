import Foundation
import Logging
import NIOConcurrencyHelpers
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
    }

    private let nodeID: UInt16
    private let identity: Ed25519KeyPair
    private let store: NodeStore
    private let operatorKeys: [[UInt8]]
    private let maximumSkewMilliseconds: Int64
    private let threadPool: NIOThreadPool
    private let logger: Logger
    private let state: NIOLockedValueBox<State>
    /// Serialises evaluation and the state change it makes; held across the synced write, so the
    /// next evaluation sees this one's effect exactly as the store will after a crash.
    private let evaluation = NIOLock()

    /// A service over `store`, loading the installed bundle and policy state.
    ///
    /// - Throws: ``NodeRuntimeError`` when the stored bundle or state cannot be read: the node
    ///   refuses to start rather than decide against state it cannot see.
    public init(
        configuration: NodeConfiguration, identity: Ed25519KeyPair, store: NodeStore,
        threadPool: NIOThreadPool = .singleton, logger: Logger
    ) throws(NodeRuntimeError) {
        nodeID = configuration.nodeID
        self.identity = identity
        self.store = store
        operatorKeys = configuration.operatorKeys
        maximumSkewMilliseconds =
            Int64(configuration.maximumClockSkew.components.seconds) * 1000
            + configuration.maximumClockSkew.components.attoseconds / 1_000_000_000_000_000
        self.threadPool = threadPool
        self.logger = logger
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
            return try await answer(frame) { () throws(Refusal) in try self.decide(request) }
        case SettleRequest.type:
            let request = try frame.decode(SettleRequest.self)
            return try await answer(frame) { () throws(Refusal) in try self.settle(request) }
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

    /// The verdict of this node on `request`, reached now or recorded earlier for its request id.
    private func decide(_ request: DecideRequest) throws(Refusal) -> DecideResponse {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        guard abs(now - request.time) <= maximumSkewMilliseconds else {
            throw Refusal(
                .refused,
                "request \(request.requestID) is stamped \(request.time) ms; node \(nodeID)'s clock reads \(now) ms, "
                    + "more than policy.max_clock_skew_ms (\(maximumSkewMilliseconds)) apart")
        }
        let verdict = try serialised { () throws(Refusal) -> [UInt8] in
            let verdictKey = PolicyStore.key(PolicyStore.verdictPrefix, request.requestID)
            do {
                if let recorded = try store.get(.policy, verdictKey) { return recorded }
            } catch {
                throw Refusal(.internal, "cannot read the verdict record: \(error)")
            }
            let (bundle, policyState) = state.withLockedValue { ($0.bundle, $0.policyState) }
            guard let bundle else {
                throw Refusal(
                    .unavailable, "node \(nodeID) has no policy bundle installed; push one with quorumctl policy push")
            }
            let decision = PolicyEngine(bundle: bundle).evaluate(
                Self.decisionRequest(request), state: policyState,
                at: Date(timeIntervalSince1970: Double(request.time) / 1000))
            var updated = policyState
            updated.apply(decision.stateChanges)
            let encoded = decision.encoded()
            var writes: [NodeStore.Change] = [.put(.policy, verdictKey, encoded)]
            do {
                writes += try PolicyStore.persist(decision.stateChanges, of: updated)
                if let reservation = decision.reservation {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = .sortedKeys
                    writes.append(
                        .put(
                            .policy, PolicyStore.key(PolicyStore.reservationPrefix, request.requestID),
                            Array(try encoder.encode(reservation))))
                }
                try store.write(writes)
            } catch {
                throw Refusal(.internal, "cannot record the verdict: \(error)")
            }
            state.withLockedValue { $0.policyState = updated }
            return encoded
        }
        do {
            return try DecideResponse(
                nodeID: nodeID, bootEpoch: 0, requestID: request.requestID, verdict: verdict,
                signature: identity.sign(
                    DecideResponse.signedBytes(nodeID: nodeID, requestID: request.requestID, verdict: verdict)))
        } catch {
            throw Refusal(.internal, "\(error)")
        }
    }

    /// QuorumPolicy's canonical request for the wire message.
    static func decisionRequest(_ request: DecideRequest) -> DecisionRequest {
        DecisionRequest(
            requestID: request.requestID, method: request.method, target: request.target,
            headers: request.headers.map { HeaderField(name: $0.name, value: $0.value) }, body: request.body,
            bodyLength: Int(clamping: request.bodyLength), clientAddress: request.clientAddress, token: request.token)
    }

    // MARK: - Settlement

    private func settle(_ request: SettleRequest) throws(Refusal) -> SettleResponse {
        let settled = try serialised { () throws(Refusal) -> Bool in
            let key = PolicyStore.key(PolicyStore.reservationPrefix, request.requestID)
            let stored: [UInt8]?
            do { stored = try store.get(.policy, key) } catch {
                throw Refusal(.internal, "cannot read the reservation: \(error)")
            }
            guard let stored else { return false }
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
            do {
                try store.write(try PolicyStore.persist(changes, of: updated) + [.delete(.policy, key)])
            } catch {
                throw Refusal(.internal, "cannot record the settlement: \(error)")
            }
            state.withLockedValue { $0.policyState = updated }
            return true
        }
        do {
            return try SettleResponse(nodeID: nodeID, requestID: request.requestID, settled: settled)
        } catch {
            throw Refusal(.internal, "\(error)")
        }
    }
}
