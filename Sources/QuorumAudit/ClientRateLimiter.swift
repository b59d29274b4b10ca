import Synchronization

/// A token bucket per client address: each client may make `burst` requests at once, then
/// `refillPerSecond` a second. Public read-only APIs get scraped; this keeps one client from
/// starving the node's RocksDB reads for everyone else.
///
/// Memory is bounded: at most `maximumClients` buckets are kept. A bucket that has refilled
/// completely holds nothing worth remembering and is dropped first; past the bound, the buckets
/// idle longest go. A client that rotates through many addresses can earn fresh buckets that way,
/// so IPv6 clients are keyed by their /64 (``key(forAddress:)``).
public final class ClientRateLimiter: Sendable {
    /// How many requests a client may make at once, and how fast its allowance comes back.
    public struct Limits: Sendable, Hashable {
        /// Requests a client may make at once.
        public var burst: Int
        /// Requests a second a client may make once its burst is spent.
        public var refillPerSecond: Double
        /// Buckets kept at most.
        public var maximumClients: Int

        /// Limits; by default a burst of 120 and 20 a second, for 10,000 clients.
        public init(burst: Int = 120, refillPerSecond: Double = 20, maximumClients: Int = 10_000) {
            self.burst = burst
            self.refillPerSecond = refillPerSecond
            self.maximumClients = maximumClients
        }
    }

    private struct Bucket {
        var tokens: Double
        var updated: Double
    }

    private let limits: Limits
    private let now: @Sendable () -> Double
    private let buckets = Mutex<[String: Bucket]>([:])

    /// A limiter; `now` reads seconds from a monotonic clock (a test may pass its own).
    public init(limits: Limits, now: @escaping @Sendable () -> Double = ClientRateLimiter.monotonicSeconds) {
        precondition(limits.burst >= 1 && limits.refillPerSecond > 0 && limits.maximumClients >= 1)
        self.limits = limits
        self.now = now
    }

    /// Takes one request from `client`'s bucket: `nil` if admitted, else the whole seconds to wait
    /// until the next request will be (for `Retry-After`, at least 1).
    public func admit(_ client: String) -> Int? {
        let time = now()
        return buckets.withLock { buckets in
            var bucket = buckets[client] ?? Bucket(tokens: Double(limits.burst), updated: time)
            bucket.tokens = min(
                Double(limits.burst), bucket.tokens + max(0, time - bucket.updated) * limits.refillPerSecond)
            bucket.updated = time
            defer {
                buckets[client] = bucket
                if buckets.count > limits.maximumClients { prune(&buckets, at: time) }
            }
            guard bucket.tokens >= 1 else {
                return max(1, Int(((1 - bucket.tokens) / limits.refillPerSecond).rounded(.up)))
            }
            bucket.tokens -= 1
            return nil
        }
    }

    /// Drops full buckets, then, if still over the bound, the quarter idle longest.
    private func prune(_ buckets: inout [String: Bucket], at time: Double) {
        let full = Double(limits.burst)
        buckets = buckets.filter { $0.value.tokens + (time - $0.value.updated) * limits.refillPerSecond < full }
        guard buckets.count > limits.maximumClients else { return }
        let idle = buckets.sorted { $0.value.updated < $1.value.updated }.prefix(max(1, buckets.count / 4))
        for (client, _) in idle { buckets[client] = nil }
    }

    /// The bucket key of an IP address: an IPv4 address as it is, an IPv6 one by its /64 (one host
    /// can hold a whole /64). Anything else (no address) is one shared bucket.
    public static func key(forAddress address: String?) -> String {
        guard let address, !address.isEmpty else { return "unknown" }
        guard address.contains(":") else { return address }
        // An IPv4 client on a dual-stack listener arrives as ::ffff:a.b.c.d: key it by a.b.c.d.
        if let last = address.split(separator: ":").last, last.contains(".") { return String(last) }
        // Expand `::` so the first four groups are the /64.
        let halves = address.split(separator: "::", maxSplits: 1, omittingEmptySubsequences: false)
        let head = halves[0].split(separator: ":", omittingEmptySubsequences: true)
        let tail = halves.count > 1 ? halves[1].split(separator: ":", omittingEmptySubsequences: true) : []
        let zeros = Array(repeating: Substring("0"), count: max(0, 8 - head.count - tail.count))
        let groups = head + (halves.count > 1 ? zeros : []) + tail
        return groups.prefix(4).map { String(UInt16($0, radix: 16) ?? 0, radix: 16) }.joined(separator: ":") + "::/64"
    }

    /// Seconds on the system's monotonic clock.
    @Sendable public static func monotonicSeconds() -> Double {
        let elapsed = ContinuousClock.now - Self.origin
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    private static let origin = ContinuousClock.now
}
