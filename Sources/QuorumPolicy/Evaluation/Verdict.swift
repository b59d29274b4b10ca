/// What one node concluded about one request, with everything needed to act on it, replay it and
/// audit it.
///
/// The same request, state and time give an equal verdict and byte-identical ``encoded()`` on
/// every node. Nothing secret is in it: the token is not, and a request value is quoted only as a
/// short excerpt in a payload deny reason.
public struct Verdict: Sendable, Equatable {
    /// Allow or deny.
    public enum Decision: String, Sendable, Equatable {
        /// Every filter passed or was skipped.
        case allow
        /// A filter denied, or the request could not be evaluated.
        case deny
    }

    /// Where an allowed call goes.
    public enum Route: Sendable, Equatable {
        /// Forward to the mount's upstream with its secret.
        case upstream(mount: String, url: String, secret: String?, path: String)
        /// Answer the agent with ``Verdict/selfDescription``; nothing is forwarded.
        case selfDescription
    }

    /// The request this verdict is about.
    public let requestID: String
    /// The decision.
    public let decision: Decision
    /// For a deny: `<filter>: <why>`.
    public let reason: String?
    /// The latch the token named, if it named one.
    public let latchID: String?
    /// For an allow: where the call goes.
    public let route: Route?
    /// One entry per filter run, in order, up to and including the one that denied.
    public let trace: [TraceEntry]
    /// What the proxy must do with the response.
    public let obligations: ResponseObligations
    /// The spend reserved for the call, to be settled with its actual usage.
    public let reservation: SpendReservation?
    /// The state changes to apply when this verdict stands (only for an allow).
    public let stateChanges: [StateChange]
    /// For `/self`: the answer to the agent.
    public let selfDescription: JSONValue?
    /// The digest of the bundle the verdict was reached under.
    public let bundleDigest: String
    /// The evaluation time, in milliseconds since 1970.
    public let evaluatedAt: Int64
    /// What the rate limits and budgets read from state, in the order they ran, so that a replay
    /// can evaluate against the same readings (``RecordedState``).
    public let stateReads: [StateRead]

    /// A verdict.
    public init(
        requestID: String, decision: Decision, reason: String?, latchID: String?, route: Route?, trace: [TraceEntry],
        obligations: ResponseObligations, reservation: SpendReservation?, stateChanges: [StateChange],
        selfDescription: JSONValue?, bundleDigest: String, evaluatedAt: Int64, stateReads: [StateRead] = []
    ) {
        self.requestID = requestID
        self.decision = decision
        self.reason = reason
        self.latchID = latchID
        self.route = route
        self.trace = trace
        self.obligations = obligations
        self.reservation = reservation
        self.stateChanges = stateChanges
        self.selfDescription = selfDescription
        self.bundleDigest = bundleDigest
        self.evaluatedAt = evaluatedAt
        self.stateReads = stateReads
    }
}

/// What one filter did.
public struct TraceEntry: Sendable, Equatable {
    /// A filter's result.
    public enum Outcome: String, Sendable, Equatable {
        /// It allowed the request to go on.
        case pass
        /// Its condition did not match, so it did not apply.
        case skip
        /// It denied the request.
        case deny
    }

    /// The filter's id (`rate_limit#2`), or a built-in step: `authentication`, `revoked`, `expiry`,
    /// `path`, `mount`.
    public let filter: String
    /// The filter kind, or the built-in step's name.
    public let kind: String
    /// The latch that declared the filter (built-in steps: the requesting latch, if known).
    public let latch: String?
    /// The mount the filter was declared on, if it was declared on one.
    public let mount: String?
    /// The outcome.
    public let outcome: Outcome
    /// Why, in words.
    public let detail: String

    /// An entry.
    public init(filter: String, kind: String, latch: String?, mount: String?, outcome: Outcome, detail: String) {
        self.filter = filter
        self.kind = kind
        self.latch = latch
        self.mount = mount
        self.outcome = outcome
        self.detail = detail
    }
}

/// The spend a call reserved in each budget that applies, and the prices to settle it with.
public struct SpendReservation: Sendable, Equatable, Codable {
    /// One budget's part.
    public struct Entry: Sendable, Equatable, Codable {
        /// The budget's state key.
        public let key: String
        /// The amount reserved.
        public let amount: MicroUnits
        /// How the actual cost is worked out.
        public let pricing: Pricing
    }

    /// How a settled call is priced.
    public enum Pricing: Sendable, Equatable, Codable {
        /// A fixed cost: the reservation is the cost.
        case fixed
        /// Tokens times a model's prices.
        case tokens(model: String, inputPerMillion: MicroUnits, outputPerMillion: MicroUnits)
    }

    /// The call.
    public let requestID: String
    /// One entry per budget filter in the pipeline.
    public let entries: [Entry]
}

/// What a call actually used, as the upstream reported it.
public struct SpendUsage: Sendable, Equatable, Codable {
    /// Prompt tokens.
    public var inputTokens: Int64
    /// Completion tokens.
    public var outputTokens: Int64

    /// Usage.
    public init(inputTokens: Int64, outputTokens: Int64) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
    }
}
