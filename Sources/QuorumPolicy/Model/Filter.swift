import Foundation

/// One filter of a pipeline: what it checks, when it applies, and a stable name for its state.
///
/// Filters run in order and the first deny wins. A filter with a ``condition`` that the request
/// does not meet is skipped (a `skip` entry in the trace), never treated as passed or denied.
public struct Filter: Sendable, Equatable {
    /// The name the trace, deny reasons and state keys use: the `id` written in the bundle, or the
    /// filter's kind followed by its position (`rate_limit#2`).
    public let id: String
    /// When the filter applies; `nil` means always.
    public let condition: FilterCondition?
    /// What the filter checks.
    public let kind: FilterKind

    /// A filter.
    public init(id: String, condition: FilterCondition? = nil, kind: FilterKind) {
        self.id = id
        self.condition = condition
        self.kind = kind
    }

    /// Whether the bundle named the filter. Unnamed filters get `<kind>#<position>` ids, and `#`
    /// is not allowed in a written id, so the two never collide.
    public var isNamed: Bool { !id.utf8.contains(UInt8(ascii: "#")) }
}

/// Restricts a filter to some requests. Every given part must match for the filter to apply.
public struct FilterCondition: Sendable, Equatable {
    /// The methods the filter applies to, or `nil` for every method.
    public let methods: MethodSet?
    /// The endpoints (mount-relative) the filter applies to, or `nil` for every endpoint.
    public let endpoints: [EndpointPattern]?

    /// A condition.
    public init(methods: MethodSet?, endpoints: [EndpointPattern]?) {
        self.methods = methods
        self.endpoints = endpoints
    }
}

/// The filters a pipeline can hold. ``FilterKind/name`` is the word the bundle uses.
public enum FilterKind: Sendable, Equatable {
    /// `method`: the request method must be in the set.
    case method(MethodSet)
    /// `endpoint`: the mount-relative path must match an allow pattern (when any are given) and no
    /// block pattern.
    case endpoint(EndpointFilter)
    /// `rate_limit`: requests and tokens per sliding window.
    case rateLimit(RateLimitFilter)
    /// `payload`: rules over the JSON body.
    case payload([PayloadRule])
    /// `body_size`: the body's length in bytes must not exceed the bound.
    case bodySize(maxBytes: Int)
    /// `time_window`: the request time must fall in one of the windows.
    case timeWindow([TimeWindow])
    /// `ip_allowlist`: the client address must be in the list.
    case ipAllowlist(IPAllowlist)
    /// `header_req`: required headers, each with an optional value pattern.
    case headers([HeaderRequirement])
    /// `response`: obligations the proxy applies to the upstream's answer.
    case response(ResponseObligations)
    /// `budget`: spend caps per day, month and in total.
    case budget(BudgetFilter)

    /// The bundle's word for this kind.
    public var name: String {
        switch self {
        case .method: "method"
        case .endpoint: "endpoint"
        case .rateLimit: "rate_limit"
        case .payload: "payload"
        case .bodySize: "body_size"
        case .timeWindow: "time_window"
        case .ipAllowlist: "ip_allowlist"
        case .headers: "header_req"
        case .response: "response"
        case .budget: "budget"
        }
    }

    /// Every kind's bundle word, in the order the documentation lists them.
    public static let names = [
        "method", "endpoint", "rate_limit", "payload", "body_size", "time_window", "ip_allowlist", "header_req",
        "response", "budget",
    ]
}

/// Allowed and blocked endpoint globs, over the path after the mount prefix.
public struct EndpointFilter: Sendable, Equatable {
    /// If not empty, the path must match one of these.
    public let allow: [EndpointPattern]
    /// The path must match none of these; checked before `allow`.
    public let block: [EndpointPattern]

    /// An endpoint filter. At least one list must be non-empty.
    public init(allow: [EndpointPattern], block: [EndpointPattern]) {
        self.allow = allow
        self.block = block
    }
}

/// What a rate limit counts requests under.
public enum RateLimitKey: String, Sendable, Equatable, CaseIterable {
    /// One window for the latch that declared the filter, shared by all its descendants.
    case latch
    /// One window per mount of the declaring latch.
    case mount
    /// One window per client address.
    case client
}

/// A sliding-window limit on requests and tokens.
///
/// The window slides: at any instant, the allowed requests of the last `window` are counted, not
/// those since the top of the minute, so a burst at a window boundary cannot double the rate.
public struct RateLimitFilter: Sendable, Equatable {
    /// Most requests in any window, or `nil`.
    public let requests: Int64?
    /// Most tokens in any window, or `nil`. A request counts the token cap it declares (the field
    /// alias `tokenField`); a request declaring none is denied when a token limit applies.
    public let tokens: Int64?
    /// The window length in milliseconds.
    public let windowMilliseconds: Int64
    /// What the window is kept per.
    public let key: RateLimitKey
    /// The field alias whose value counts as the request's tokens (default `token_cap`).
    public let tokenField: String

    /// A rate limit. At least one of `requests` and `tokens` must be given.
    public init(requests: Int64?, tokens: Int64?, windowMilliseconds: Int64, key: RateLimitKey, tokenField: String) {
        self.requests = requests
        self.tokens = tokens
        self.windowMilliseconds = windowMilliseconds
        self.key = key
        self.tokenField = tokenField
    }
}

/// What the proxy must do with the upstream's answer. Applied to a JSON response body, and to each
/// JSON `data:` payload of a server-sent event stream.
public struct ResponseObligations: Sendable, Equatable {
    /// Values replaced by the string `"[REDACTED]"`.
    public var redact: [JSONPath]
    /// Members removed.
    public var trim: [JSONPath]
    /// Rules over the response: a response (or event) that satisfies one is blocked (a leaked key
    /// pattern, say). With the default `when_missing: deny`, a rule whose paths select nothing is
    /// not satisfied and so does not block; `not_exists` and `when_missing: satisfy` rules do.
    public var blockIf: [PayloadRule]
    /// Largest response body in bytes, or `nil`.
    public var maxBytes: Int?

    /// No obligations.
    public static let none = ResponseObligations(redact: [], trim: [], blockIf: [], maxBytes: nil)

    /// Obligations.
    public init(redact: [JSONPath], trim: [JSONPath], blockIf: [PayloadRule], maxBytes: Int?) {
        self.redact = redact
        self.trim = trim
        self.blockIf = blockIf
        self.maxBytes = maxBytes
    }

    /// Whether there is nothing to apply.
    public var isEmpty: Bool { redact.isEmpty && trim.isEmpty && blockIf.isEmpty && maxBytes == nil }

    /// Both sets of obligations: every path, every rule, and the smaller size cap.
    public func merged(with other: ResponseObligations) -> ResponseObligations {
        let cap: Int? =
            switch (maxBytes, other.maxBytes) {
            case (nil, nil): nil
            case (let a?, nil): a
            case (nil, let b?): b
            case (let a?, let b?): min(a, b)
            }
        return ResponseObligations(
            redact: redact + other.redact, trim: trim + other.trim, blockIf: blockIf + other.blockIf,
            maxBytes: cap)
    }
}

/// An amount of money in millionths of the bundle's currency unit (micro-units), so spend adds up
/// exactly on every node.
public typealias MicroUnits = Int64

/// Spend caps, a reservation rule, and the calendar the day and month windows follow.
public struct BudgetFilter: Sendable, Equatable {
    /// Cap per calendar day, or `nil`.
    public let perDay: MicroUnits?
    /// Cap per calendar month, or `nil`.
    public let perMonth: MicroUnits?
    /// Cap over the latch's whole life, or `nil`.
    public let total: MicroUnits?
    /// The zone whose calendar days and months the windows follow (UTC unless given).
    public let timeZone: TimeZone
    /// How much a request reserves before it is forwarded.
    public let cost: CostModel

    /// A budget. At least one cap must be given.
    public init(perDay: MicroUnits?, perMonth: MicroUnits?, total: MicroUnits?, timeZone: TimeZone, cost: CostModel) {
        self.perDay = perDay
        self.perMonth = perMonth
        self.total = total
        self.timeZone = timeZone
        self.cost = cost
    }
}

/// How a request's spend is reserved up front and settled afterwards.
public enum CostModel: Sendable, Equatable {
    /// Every request costs this much.
    case perRequest(MicroUnits)
    /// An LLM call: the model is read at `modelPath` and priced from the bundle's price table; the
    /// reservation is the token cap (field alias `tokenField`) times the output price plus the body's
    /// length in bytes times the input price (a token is at least one byte, so this bounds the
    /// prompt). An unknown model, or a missing cap, is a deny.
    case llm(modelPath: JSONPath, tokenField: String)
}

/// A model's price in micro-units per million tokens.
public struct ModelPrice: Sendable, Equatable {
    /// Price of a million prompt tokens.
    public let inputPerMillion: MicroUnits
    /// Price of a million completion tokens.
    public let outputPerMillion: MicroUnits

    /// A price.
    public init(inputPerMillion: MicroUnits, outputPerMillion: MicroUnits) {
        self.inputPerMillion = inputPerMillion
        self.outputPerMillion = outputPerMillion
    }
}
