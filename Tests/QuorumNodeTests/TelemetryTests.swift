import Foundation
import Metrics
import MetricsTestKit
import Testing

@testable import QuorumNode

/// The node's metric helpers without a process: label values, the log gauges' hook and the
/// certificate expiry gauge, recorded into swift-metrics' test factory (no bootstrap).
@Suite("Node telemetry: labels, the log gauges, certificate expiry")
struct TelemetryTests {
    @Test(
        "a deny reason's label is its filter or step, never its free text",
        arguments: [
            ("endpoint#2: GET /v1/files is not in the allow list", "endpoint"),
            ("authentication: token secret does not match latch 'assistant'", "authentication"),
            ("daily: spent 0.05 of 0.05 today", "daily"),
            ("sender-constraint: no client certificate", "sender-constraint"),
            ("no colon at all", "other"),
            ("", "other"),
            ("a b: spaces are not a name", "other"),
            ("quote\"d: odd", "other"),
            (String(repeating: "x", count: 65) + ": too long", "other"),
        ])
    func stepLabel(reason: String, label: String) {
        #expect(MetricLabels.step(ofReason: reason) == label)
    }

    @Test("the log gauges appear only once reported; the checkpoint's age is computed when sampled")
    func logGauges() throws {
        let recorded = TestMetrics()
        let log = LogMetrics(factory: recorded)
        log.sample(now: Date())
        #expect(recorded.recorders.isEmpty, "no checkpoint reported, no age")
        let signed = Date(timeIntervalSince1970: 1_800_000_000)
        log.logSize(42)
        log.checkpoint(size: 40, signedAt: signed)
        log.gossipLag(2)
        log.sample(now: signed.addingTimeInterval(90))
        #expect(try recorded.expectGauge(LogMetrics.Names.logSize).lastValue == 42)
        #expect(try recorded.expectGauge(LogMetrics.Names.checkpointSize).lastValue == 40)
        #expect(try recorded.expectGauge(LogMetrics.Names.gossipLag).lastValue == 2)
        #expect(try recorded.expectGauge(LogMetrics.Names.checkpointAge).lastValue == 90)
    }

    @Test("certificate expiry is the time left until notAfter, per role and subject, negative once passed")
    func certificateExpiry() throws {
        let recorded = TestMetrics()
        let notAfter = Date(timeIntervalSince1970: 1_900_000_000)
        let gauges = CertificateExpiryGauges(
            [
                MonitoredCertificate(role: "node", subject: "node-1", notValidAfter: notAfter),
                MonitoredCertificate(role: "ca", subject: "Quorum Latch cluster CA 0a1b2c3d", notValidAfter: notAfter),
            ], factory: recorded)
        gauges.sample(now: notAfter.addingTimeInterval(-86_400))
        let node = try recorded.expectGauge(
            NodeMetrics.Names.certificateExpiry, [("role", "node"), ("subject", "node-1")])
        #expect(node.lastValue == 86_400)
        gauges.sample(now: notAfter.addingTimeInterval(60))
        #expect(node.lastValue == -60)
        let ca = try recorded.expectGauge(
            NodeMetrics.Names.certificateExpiry, [("role", "ca"), ("subject", "Quorum Latch cluster CA 0a1b2c3d")])
        #expect(ca.lastValue == -60)
    }
}
