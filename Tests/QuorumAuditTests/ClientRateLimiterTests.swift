import Synchronization
import Testing

@testable import QuorumAudit

/// The per-client token bucket, on a clock the test moves.
@Suite("per-client rate limiter")
struct ClientRateLimiterTests {
    final class Clock: Sendable {
        private let value = Mutex(0.0)
        var now: Double { value.withLock { $0 } }
        func advance(_ seconds: Double) { value.withLock { $0 += seconds } }
    }

    @Test("a burst, then one request per refill interval; Retry-After rounds up to whole seconds")
    func bucket() {
        let clock = Clock()
        let limiter = ClientRateLimiter(limits: .init(burst: 3, refillPerSecond: 0.5)) { clock.now }
        #expect((0..<3).map { _ in limiter.admit("a") } == [nil, nil, nil])
        #expect(limiter.admit("a") == 2)
        #expect(limiter.admit("b") == nil, "another client has its own bucket")
        clock.advance(1)
        #expect(limiter.admit("a") == 1)
        clock.advance(1)
        #expect(limiter.admit("a") == nil)
        #expect(limiter.admit("a") == 2)
    }

    @Test("memory is bounded: past the limit, full buckets and then the longest idle are forgotten")
    func bounded() {
        let clock = Clock()
        let limiter = ClientRateLimiter(limits: .init(burst: 1, refillPerSecond: 1, maximumClients: 4)) { clock.now }
        for client in 0..<100 {
            _ = limiter.admit("client-\(client)")
            clock.advance(0.01)
        }
        // The most recent client is still limited: its bucket was kept.
        #expect(limiter.admit("client-99") != nil)
    }

    @Test(
        "clients are keyed by IPv4 address, IPv6 /64, and IPv4-mapped IPv6 as IPv4",
        arguments: [
            ("10.1.2.3", "10.1.2.3"), ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
            ("2001:db8:1:2::9", "2001:db8:1:2::/64"),
            ("::1", "0:0:0:0::/64"), ("::ffff:192.0.2.7", "192.0.2.7"), ("", "unknown"),
        ])
    func keys(address: String, key: String) {
        #expect(ClientRateLimiter.key(forAddress: address) == key)
    }
}
