/// What one evaluation read from policy state, recorded in its verdict so that the decision can
/// be replayed later without the node's state.
///
/// Rate windows and budgets depend on every call before this one, which the replaying auditor
/// does not have as the node had it. So the verdict says what the filter read, the node signs it
/// with the rest, and a replay evaluates against exactly those readings (``RecordedState``): if
/// the replay reaches the same verdict, the decision follows from the policy given what the node
/// says it read. Whether the readings were true is a separate question, answered by comparing
/// the readings of the k nodes that signed (each reads its own state) and the decisions logged
/// before.
public enum StateRead: Sendable, Equatable {
    /// A rate limit read its window: requests and tokens counted in the `windowMilliseconds`
    /// ending at the evaluation, and when the oldest counted hit stops counting (`nil`: none counts).
    case rateWindow(key: String, windowMilliseconds: Int64, requests: Int64, tokens: Int64, nextExpiry: Int64?)
    /// A budget read its ledger: what is committed in each capped window, and the latest window of
    /// the same kind the ledger already held (a later one means the node's clock went back).
    case budget(key: String, windows: [BudgetWindowRead])

    /// The state key read.
    public var key: String {
        switch self {
        case .rateWindow(let key, _, _, _, _), .budget(let key, _): key
        }
    }
}

/// One capped window of a budget as an evaluation read it.
public struct BudgetWindowRead: Sendable, Equatable {
    /// The window's key: `day:2026-11-23`, `month:2026-11`, `total`.
    public let window: String
    /// Settled spend plus open reservations in it.
    public let committed: MicroUnits
    /// The latest window of the same kind in the ledger, if any.
    public let latest: String?

    /// A reading.
    public init(window: String, committed: MicroUnits, latest: String?) {
        self.window = window
        self.committed = committed
        self.latest = latest
    }
}

/// Policy state that answers exactly the readings a verdict recorded, and nothing else: the state a
/// replay evaluates against.
///
/// A rate window becomes one slot holding the counted requests and tokens, whose latest hit makes
/// it stop counting at the recorded expiry; a budget ledger holds each non-zero committed amount
/// as settled spend in its window, plus an empty entry for the recorded latest window of its kind.
/// Read with the same window length and at the same time, they give the recorded readings back.
public struct RecordedState: PolicyStateReading, Sendable {
    private var windows: [String: RateWindow] = [:]
    private var ledgers: [String: BudgetLedger] = [:]

    /// The state the readings describe.
    public init(_ reads: [StateRead]) {
        for read in reads {
            switch read {
            case .rateWindow(let key, let window, let requests, let tokens, let nextExpiry):
                var rate = RateWindow()
                if let nextExpiry {
                    let latest = nextExpiry.subtractingSaturating(window)
                    rate.slots = [.init(start: latest, latest: latest, requests: requests, tokens: tokens)]
                }
                windows[key] = rate
            case .budget(let key, let reads):
                var ledger = BudgetLedger()
                for read in reads {
                    // A window the ledger did not hold reads as 0 and is not "latest" of anything;
                    // one it held is at most the latest of its kind, which is recorded as such.
                    if read.committed != 0 { ledger.spent[read.window] = read.committed }
                    if let latest = read.latest, ledger.spent[latest] == nil { ledger.spent[latest] = 0 }
                }
                ledgers[key] = ledger
            }
        }
    }

    /// The recorded window under `key`, or an empty one.
    public func rateWindow(_ key: String) -> RateWindow { windows[key] ?? RateWindow() }

    /// The recorded ledger under `key`, or an empty one.
    public func budgetLedger(_ key: String) -> BudgetLedger { ledgers[key] ?? BudgetLedger() }
}

extension PipelineStep {
    /// Whether the filter reads the request body: a payload rule, a rate limit counting declared
    /// tokens, or a budget pricing an LLM call. The log keeps only the body's length and digest, so
    /// a replay without the body cannot re-run these.
    public var readsBody: Bool {
        switch filter.kind {
        case .payload: true
        case .rateLimit(let limit): limit.tokens != nil
        case .budget(let budget):
            if case .llm = budget.cost { true } else { false }
        default: false
        }
    }
}
