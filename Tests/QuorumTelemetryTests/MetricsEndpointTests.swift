import AsyncHTTPClient
import Foundation
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import Prometheus
import ServiceLifecycle
import Synchronization
import Testing

@testable import QuorumTelemetry

@Suite("The /metrics listener over real HTTP", .serialized, .timeLimit(.minutes(2)))
struct MetricsEndpointTests {
    /// Runs a metrics listener for `registry` on a free loopback port and hands `body` its base
    /// URL; shuts it down afterwards.
    func withListener(
        _ registry: PrometheusCollectorRegistry, beforeScrape: @escaping @Sendable () -> Void = {},
        _ body: (String) async throws -> Void
    ) async throws {
        let port = Mutex<Int?>(nil)
        let logger = Logger(label: "metrics-test")
        let service = MetricsEndpoint.service(
            registry: registry, host: "127.0.0.1", port: 0, logger: logger, beforeScrape: beforeScrape,
            onListening: { bound in port.withLock { $0 = bound } })
        let group = ServiceGroup(services: [service], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let deadline = ContinuousClock.now + .seconds(30)
            while port.withLock({ $0 }) == nil, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            let bound = try #require(port.withLock { $0 }, "the listener never reported its port")
            do { try await body("http://127.0.0.1:\(bound)") } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    func get(_ url: String, method: HTTPMethod = .GET) async throws -> (Int, String, String?) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
        return (Int(response.status.code), body, response.headers.first(name: "content-type"))
    }

    @Test("GET /metrics renders what swift-metrics recorded through the factory, after the scrape hook ran")
    func scrape() async throws {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = ["quorum_test_seconds": [.milliseconds(1), .milliseconds(10)]]
        Counter(label: "quorum_test_total", dimensions: [("outcome", "allow")], factory: factory).increment(by: 2)
        CoreMetrics.Timer(label: "quorum_test_seconds", factory: factory).record(duration: .milliseconds(5))
        let gauge = Gauge(label: "quorum_test_sampled", factory: factory)
        let scrapes = Mutex(0)
        try await withListener(
            registry,
            beforeScrape: {
                let count = scrapes.withLock {
                    $0 += 1
                    return $0
                }
                gauge.record(count * 10)
            }
        ) { base in
            let (status, body, contentType) = try await get(base + "/metrics")
            #expect(status == 200)
            #expect(contentType == MetricsEndpoint.contentType)
            #expect(body.contains("# TYPE quorum_test_total counter"))
            #expect(body.contains(#"quorum_test_total{outcome="allow"} 2"#), "\(body)")
            #expect(body.contains(#"quorum_test_seconds_bucket{le="0.01"} 1"#), "\(body)")
            #expect(body.contains(#"quorum_test_seconds_bucket{le="0.001"} 0"#), "\(body)")
            #expect(body.contains("quorum_test_seconds_count 1"), "\(body)")
            #expect(body.contains("quorum_test_sampled 10"), "the hook ran before rendering:\n\(body)")
            let (_, again, _) = try await get(base + "/metrics")
            #expect(again.contains("quorum_test_sampled 20"), "the hook runs at every scrape:\n\(again)")
        }
    }

    @Test("every other path is 404 and every other method 405: the listener serves metrics only")
    func nothingElse() async throws {
        try await withListener(PrometheusCollectorRegistry()) { base in
            for path in ["/", "/metrics/extra", "/audit/checkpoint"] {
                let (status, _, _) = try await get(base + path)
                #expect(status == 404, "GET \(path)")
            }
            let (status, _, _) = try await get(base + "/metrics", method: .POST)
            #expect(status == 405)
        }
    }
}
