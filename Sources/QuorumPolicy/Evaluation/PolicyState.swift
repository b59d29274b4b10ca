/// Read access to the rate windows and budget ledgers a node keeps, so the pipeline can run over a
/// RocksDB-backed store as well as over the in-memory ``PolicyState``. A key that was never
/// written reads as empty.
public protocol PolicyStateReading {
    /// The window stored under `key`.
    func rateWindow(_ key: String) -> RateWindow
    /// The ledger stored under `key`.
    func budgetLedger(_ key: String) -> BudgetLedger
}

/// A sliding window of allowed requests, kept as at most ``slotsPerWindow`` + 1 slots.
///
/// Hits are grouped into slots of `window / 64`. A slot remembers its latest hit and counts until
/// `latest + window`, so grouping only ever makes the count larger than an exact log's: the limit
/// is never exceeded in any window, wherever it starts, and memory stays bounded whatever the rate.
public struct RateWindow: Sendable, Equatable, Codable {
    /// Slots per window length.
    public static let slotsPerWindow: Int64 = 64

    /// One group of hits.
    public struct Slot: Sendable, Equatable, Codable {
        /// Start of the slot, in milliseconds since 1970.
        public var start: Int64
        /// The latest hit in the slot.
        public var latest: Int64
        /// Requests counted.
        public var requests: Int64
        /// Tokens counted.
        public var tokens: Int64
    }

    /// Slots, oldest first.
    public var slots: [Slot] = []

    /// An empty window.
    public init() {}

    /// Requests and tokens counted in the window of length `window` ending at `now`.
    public func usage(at now: Int64, window: Int64) -> (requests: Int64, tokens: Int64) {
        var requests: Int64 = 0
        var tokens: Int64 = 0
        // Saturating: a window written under an older bundle's larger limits must not trap.
        for slot in slots where slot.latest > now.subtractingSaturating(window) {
            requests = requests.addingSaturating(slot.requests)
            tokens = tokens.addingSaturating(slot.tokens)
        }
        return (requests, tokens)
    }

    /// When the oldest counted slot stops counting, for "retry after".
    public func nextExpiry(at now: Int64, window: Int64) -> Int64? {
        slots.first { $0.latest > now.subtractingSaturating(window) }.map { $0.latest.addingSaturating(window) }
    }

    /// Records a hit and drops slots that no longer count.
    public mutating func record(at now: Int64, window: Int64, requests: Int64, tokens: Int64) {
        slots.removeAll { $0.latest <= now.subtractingSaturating(window) }
        let width = max(1, window / RateWindow.slotsPerWindow)
        let start = now - ((now % width) + width) % width
        if let last = slots.indices.last, slots[last].start == start {
            slots[last].latest = max(slots[last].latest, now)
            slots[last].requests = slots[last].requests.addingSaturating(requests)
            slots[last].tokens = slots[last].tokens.addingSaturating(tokens)
        } else {
            slots.append(Slot(start: start, latest: now, requests: requests, tokens: tokens))
        }
    }
}

/// Spend settled per window, and the reservations of calls still in flight.
public struct BudgetLedger: Sendable, Equatable, Codable {
    /// A reservation not settled within this many milliseconds counts as spent in full (the proxy
    /// or the stream died before reporting usage; the reservation is the most it could have cost).
    public static let reservationTimeout: Int64 = 15 * 60 * 1000

    /// A call's reservation.
    public struct Reservation: Sendable, Equatable, Codable {
        /// When it was made, in milliseconds since 1970.
        public var at: Int64
        /// The amount reserved.
        public var amount: MicroUnits
        /// The windows it counts in (`day:2026-11-23`, `month:2026-11`, `total`).
        public var windows: [String]
    }

    /// Settled spend by window key.
    public var spent: [String: MicroUnits] = [:]
    /// Open reservations by request id.
    public var reservations: [String: Reservation] = [:]

    /// An empty ledger.
    public init() {}

    /// Settled spend plus open reservations in `window`.
    public func committed(in window: String) -> MicroUnits {
        var total = spent[window] ?? 0
        for reservation in reservations.values where reservation.windows.contains(window) {
            total = total.addingSaturating(reservation.amount)
        }
        return total
    }

    /// The latest window of the same kind as `key` (`day:`, `month:`) the ledger holds, if any.
    func latestWindow(like key: String) -> String? {
        guard let colon = key.firstIndex(of: ":") else { return nil }
        let kind = key[...colon]
        let keys =
            spent.keys.filter { $0.hasPrefix(kind) }
            + reservations.values.flatMap(\.windows).filter { $0.hasPrefix(kind) }
        return keys.max()
    }

    /// Turns reservations older than ``reservationTimeout`` into spend.
    mutating func expireReservations(at now: Int64) {
        for (id, reservation) in reservations where reservation.at + BudgetLedger.reservationTimeout <= now {
            charge(reservation.amount, to: reservation.windows)
            reservations[id] = nil
        }
    }

    /// Forgets settled windows that are not `current` and that no open reservation names: days and
    /// months that are over.
    mutating func forgetPastWindows(keeping current: [String]) {
        let named = Set(reservations.values.flatMap(\.windows)).union(current)
        for key in spent.keys where !named.contains(key) { spent[key] = nil }
    }

    mutating func charge(_ amount: MicroUnits, to windows: [String]) {
        for window in windows { spent[window] = (spent[window] ?? 0).addingSaturating(amount) }
    }
}

/// A change to policy state that an evaluation asks the node to apply, as a value.
public enum StateChange: Sendable, Equatable, Codable {
    /// Count a request (and its tokens) in a rate window.
    case rateHit(key: String, at: Int64, windowMilliseconds: Int64, requests: Int64, tokens: Int64)
    /// Reserve spend in a budget for a call.
    case reserve(key: String, requestID: String, at: Int64, amount: MicroUnits, windows: [String])
    /// Replace a call's reservation by what it actually cost.
    case settle(key: String, requestID: String, at: Int64, actual: MicroUnits)

    /// The state key the change applies to.
    public var key: String {
        switch self {
        case .rateHit(let key, _, _, _, _), .reserve(let key, _, _, _, _), .settle(let key, _, _, _): key
        }
    }
}

/// Policy state held in memory: what `quorumctl policy eval --state` reads and writes, and what a
/// node's store mirrors.
public struct PolicyState: PolicyStateReading, Sendable, Equatable, Codable {
    /// Rate windows by state key.
    public var rateWindows: [String: RateWindow] = [:]
    /// Budget ledgers by state key.
    public var budgets: [String: BudgetLedger] = [:]

    /// Empty state.
    public init() {}

    /// The window under `key`, or an empty one.
    public func rateWindow(_ key: String) -> RateWindow { rateWindows[key] ?? RateWindow() }

    /// The ledger under `key`, or an empty one.
    public func budgetLedger(_ key: String) -> BudgetLedger { budgets[key] ?? BudgetLedger() }

    /// Applies changes in order. Applying the same verdict's changes on every node gives every node
    /// the same state.
    public mutating func apply(_ changes: [StateChange]) {
        for change in changes {
            switch change {
            case .rateHit(let key, let at, let window, let requests, let tokens):
                rateWindows[key, default: RateWindow()].record(
                    at: at, window: window, requests: requests, tokens: tokens)
            case .reserve(let key, let requestID, let at, let amount, let windows):
                var ledger = budgets[key] ?? BudgetLedger()
                ledger.expireReservations(at: at)
                ledger.forgetPastWindows(keeping: windows)
                ledger.reservations[requestID] = .init(at: at, amount: amount, windows: windows)
                budgets[key] = ledger
            case .settle(let key, let requestID, let at, let actual):
                var ledger = budgets[key] ?? BudgetLedger()
                if let reservation = ledger.reservations.removeValue(forKey: requestID) {
                    ledger.charge(actual, to: reservation.windows)
                }
                ledger.expireReservations(at: at)
                budgets[key] = ledger
            }
        }
    }
}

extension Int64 {
    /// Sum clamped at `Int64.max`: spend never wraps to a negative number.
    func addingSaturating(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }

    /// Difference clamped at `Int64.min`, for window starts near the far past.
    func subtractingSaturating(_ other: Int64) -> Int64 {
        let (difference, overflow) = subtractingReportingOverflow(other)
        return overflow ? .min : difference
    }
}
