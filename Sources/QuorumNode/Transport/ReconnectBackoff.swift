/// Delays between reconnect attempts: exponential from ``initial`` by ``multiplier``, capped at
/// ``maximum``, for at most ``maximumAttempts`` retries.
///
/// A plain value with no clock, so it is tested without sleeping; ``NodeClient`` does the
/// sleeping. Optional jitter spreads the retries of many clients that lost the same peer at
/// once; it takes a random fraction from the generator it is given, so tests can fix it.
public struct ReconnectBackoff: Sendable, Hashable {
    /// The first delay.
    public var initial: Duration
    /// The longest delay.
    public var maximum: Duration
    /// How much each delay grows over the previous one.
    public var multiplier: Double
    /// Retries before giving up; nil retries forever.
    public var maximumAttempts: Int?
    /// The fraction (0…1) of each delay that is randomised: 0.2 gives a delay between 80% and
    /// 100% of the exponential one.
    public var jitter: Double

    /// Retries made so far.
    public private(set) var attempts = 0

    /// A backoff from `initial` growing by `multiplier` up to `maximum`.
    public init(
        initial: Duration = .milliseconds(100), maximum: Duration = .seconds(10), multiplier: Double = 2,
        maximumAttempts: Int? = 8, jitter: Double = 0
    ) {
        precondition(initial > .zero && maximum >= initial, "backoff needs 0 < initial <= maximum")
        precondition(multiplier >= 1, "backoff multiplier must be at least 1")
        precondition((0...1).contains(jitter), "backoff jitter is a fraction 0...1")
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.maximumAttempts = maximumAttempts
        self.jitter = jitter
    }

    /// The delay before the next retry, or nil once the attempts are used up.
    public mutating func nextDelay() -> Duration? {
        var generator = SystemRandomNumberGenerator()
        return nextDelay(using: &generator)
    }

    /// The delay before the next retry, jittered with `generator`, or nil once the attempts are
    /// used up.
    public mutating func nextDelay(using generator: inout some RandomNumberGenerator) -> Duration? {
        if let maximumAttempts, attempts >= maximumAttempts { return nil }
        let exponent = Double(attempts)
        attempts += 1
        let initialSeconds = Self.seconds(initial)
        let maximumSeconds = Self.seconds(maximum)
        var seconds = min(maximumSeconds, initialSeconds * power(multiplier, exponent))
        if jitter > 0 {
            seconds *= 1 - jitter * Double.random(in: 0..<1, using: &generator)
        }
        return .nanoseconds(Int64(seconds * 1e9))
    }

    /// Starts over, after a connection that worked.
    public mutating func reset() { attempts = 0 }

    private static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// `base` to the power `exponent` (a whole number here), stopping once far past any cap.
    private func power(_ base: Double, _ exponent: Double) -> Double {
        var result = 1.0
        var remaining = Int(exponent)
        while remaining > 0 && result < 1e12 {
            result *= base
            remaining -= 1
        }
        return result
    }
}
