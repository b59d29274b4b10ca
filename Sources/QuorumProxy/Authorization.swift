import Foundation
import QuorumCrypto
import QuorumPolicy

/// One agent call as the proxy front saw it, before any decision.
///
/// The seam between the HTTP front (this module's ``ProxyFront``) and the decision path (the
/// fan-out to the nodes, FROST aggregation and credential release): the front builds one of these
/// for every call it does not refuse on its own, and forwards nothing until a ``CallAuthorizer``
/// answers ``CallAuthorization/allow(_:)``.
public struct AgentCall: Sendable {
    /// QuorumPolicy's canonical request: what every node evaluates. Its token is the agent's; it
    /// prints as `<redacted>`.
    public var decisionRequest: DecisionRequest
    /// The mount the path prefix picked in the proxy's routing view, if any. Advisory: the nodes
    /// pick the mount again from the bundle they hold, and the allow names the path they approved.
    public var mountPath: String?
    /// When the front finished reading what it sends for the decision.
    public var receivedAt: Date
    /// SHA-256 of the whole body the front holds, which the receipt binds: the decision request
    /// may carry only a prefix, but the upstream gets every byte, so the digest covers them all.
    public var bodySHA256: [UInt8]

    /// A call; `bodySHA256` defaults to the digest of the decision request's body (right when it
    /// carries the whole body).
    public init(decisionRequest: DecisionRequest, mountPath: String?, receivedAt: Date, bodySHA256: [UInt8]? = nil) {
        self.decisionRequest = decisionRequest
        self.mountPath = mountPath
        self.receivedAt = receivedAt
        self.bodySHA256 = bodySHA256 ?? sha256Digest(decisionRequest.body)
    }
}

/// What the decision path answers for one ``AgentCall``.
public enum CallAuthorization: Sendable {
    /// k nodes allowed and the allow receipt carries a verified threshold signature: forward.
    case allow(AllowedCall)
    /// Fewer than k nodes allowed: 403 (401 when every node refused the token) with each node's
    /// reason and the deny receipt.
    case deny(DeniedCall)
    /// The quorum allowed a call that the nodes answer themselves (the reserved `/self` path):
    /// the body is sent to the agent as is, nothing is forwarded.
    case answer(AnsweredCall)
    /// Fewer than k answers in time (or the decision path is not available): 503.
    case unavailable(reason: String)
}

/// An allowed call: where it goes, the credential to inject, and what to do with the answer.
public struct AllowedCall: Sendable {
    /// The mount's upstream base URL (`https://api.openai.com`); a path in it is kept as a prefix.
    public var upstream: URL
    /// The mount-relative, normalised path the nodes approved (the verdict route's `path`, `/v1/models`):
    /// what is forwarded, appended to ``upstream``, with the agent's query.
    public var path: String
    /// The credential, opened for this call only; `nil` forwards without one. The front drops its
    /// reference once the upstream request is built, so the bytes are zeroed when the decision
    /// path drops its own.
    public var credential: SecretBytes?
    /// How the credential goes into the upstream request; required when ``credential`` is set.
    public var injection: SecretSpec.Injection?
    /// The allow receipt, a compact JWS: sent as `Latch-Receipt` to the agent and to the upstream.
    public var receipt: String
    /// What the proxy must do with the upstream's answer (the verdicts' merged obligations).
    public var obligations: ResponseObligations
    /// Reports the actual spend once the upstream answered: the usage it reported, or `nil` when
    /// it reported none, failed, or the stream was cut (the nodes then settle from the
    /// reservation). The front calls it exactly once per allowed call.
    public var settle: @Sendable (SpendUsage?) async -> Void

    /// An allowed call.
    public init(
        upstream: URL, path: String, credential: SecretBytes?, injection: SecretSpec.Injection?, receipt: String,
        obligations: ResponseObligations, settle: @escaping @Sendable (SpendUsage?) async -> Void
    ) {
        self.upstream = upstream
        self.path = path
        self.credential = credential
        self.injection = injection
        self.receipt = receipt
        self.obligations = obligations
        self.settle = settle
    }
}

/// A denied call: the deny receipt, if the quorum signed one, and why each node denied.
public struct DeniedCall: Sendable {
    /// The deny receipt (compact JWS), sent as `Latch-Receipt` and in the body.
    public var receipt: String?
    /// Each answering node's decision and reason.
    public var reasons: [NodeReason]
    /// The filter or built-in step that denied, as the signed deny's claims name it
    /// (``MetricLabels/step(ofReason:)``): the `reason` label of the decisions metric. `nil` when
    /// no k nodes signed one deny, so a faulty node's reason never becomes a label.
    public var step: String?

    /// A denied call.
    public init(receipt: String?, reasons: [NodeReason], step: String? = nil) {
        self.receipt = receipt
        self.reasons = reasons
        self.step = step
    }
}

/// A call the quorum answered itself (`/self`): a JSON body for the agent and the allow receipt.
public struct AnsweredCall: Sendable {
    /// The JSON body sent to the agent.
    public var body: [UInt8]
    /// The allow receipt (compact JWS).
    public var receipt: String

    /// An answered call.
    public init(body: [UInt8], receipt: String) {
        self.body = body
        self.receipt = receipt
    }
}

/// One node's part of a denied call, as the agent sees it in the 403 body.
public struct NodeReason: Sendable, Codable, Equatable {
    /// The node id.
    public var node: Int
    /// `allow` or `deny`.
    public var decision: String
    /// The verdict's reason (`<filter>: <why>`), empty for an allow.
    public var reason: String

    /// A node's reason.
    public init(node: Int, decision: String, reason: String) {
        self.node = node
        self.decision = decision
        self.reason = reason
    }

    /// Whether this node refused the token itself (QuorumPolicy's `authentication` step), which the
    /// front answers with 401 rather than 403 when every node says so.
    public var isAuthenticationFailure: Bool {
        decision == "deny" && reason.hasPrefix("authentication:")
    }
}

/// Where the decision of one call spent its time, for the proxy's `Server-Timing` header (and
/// `quorumctl bench proxy`, which averages it): the operator sees whether a slow call waited for
/// verdicts, for extra signing rounds, or for the credential.
public struct DecisionTimings: Sendable, Hashable {
    /// From sending the decide request to every node (optimistic signers picked) until the round
    /// decided, less ``signing``: the verdict round, the optimistic aggregation, and any wait for
    /// a chosen signer up to the per-signer budget.
    public var verdict: Duration
    /// Time in sign request rounds after the optimistic one; zero when none was needed.
    public var signing: Duration
    /// Building and verifying the allow receipt and opening the sealed credential from the
    /// decryption shares; `nil` when the call was not allowed.
    public var credential: Duration?

    /// Timings of a decision.
    public init(verdict: Duration, signing: Duration = .zero, credential: Duration? = nil) {
        self.verdict = verdict
        self.signing = signing
        self.credential = credential
    }
}

/// A decision and where its time went.
public struct TimedAuthorization: Sendable {
    /// The decision.
    public var authorization: CallAuthorization
    /// Its phases.
    public var timings: DecisionTimings

    /// A decision with its timings.
    public init(authorization: CallAuthorization, timings: DecisionTimings) {
        self.authorization = authorization
        self.timings = timings
    }
}

/// The decision path, as the front calls it: one answer per call, never an error (a failure to
/// decide is ``CallAuthorization/unavailable(reason:)``, so nothing fails open).
public protocol CallAuthorizer: Sendable {
    /// Decides `call`.
    func authorize(_ call: AgentCall) async -> CallAuthorization

    /// Decides `call` and says where the time went. The front calls this one; the default
    /// counts the whole of ``authorize(_:)`` as the verdict phase.
    func authorizeTimed(_ call: AgentCall) async -> TimedAuthorization
}

extension CallAuthorizer {
    /// ``authorize(_:)``, its whole duration counted as the verdict phase.
    public func authorizeTimed(_ call: AgentCall) async -> TimedAuthorization {
        let start = ContinuousClock.now
        let authorization = await authorize(call)
        return TimedAuthorization(
            authorization: authorization, timings: DecisionTimings(verdict: ContinuousClock.now - start))
    }
}

/// The authorizer of a proxy with no decision path wired in: every call is unavailable (503).
/// It keeps `quorum-proxy` fail-closed until the quorum client is configured.
public struct UnavailableAuthorizer: CallAuthorizer {
    /// Why, as the 503 says it.
    public let reason: String

    /// An authorizer that refuses with `reason`.
    public init(reason: String = "no decision path is configured; the proxy forwards nothing") {
        self.reason = reason
    }

    /// Always ``CallAuthorization/unavailable(reason:)``.
    public func authorize(_ call: AgentCall) async -> CallAuthorization { .unavailable(reason: reason) }
}
