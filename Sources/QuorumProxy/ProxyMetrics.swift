import Metrics
import QuorumNode

/// The proxy's metrics (docs/operations.md, "Metrics"), recorded through swift-metrics.
///
/// As with ``NodeMetrics``: `quorum-proxy` bootstraps the Prometheus backend once; tests pass a
/// factory of their own. Labels are an outcome, a filter or step name, a phase, a node id: never
/// a token, credential, request id, path or latch.
public struct ProxyMetrics: Sendable {
    /// The factory every metric is made with.
    public let factory: any MetricsFactory

    /// The metric names, as docs/operations.md lists them.
    public enum Names {
        /// Counter `{outcome, reason}`: calls the quorum decided (`allow`, `deny`, `unavailable`).
        public static let decisions = "quorum_proxy_decisions_total"
        /// Counter `{reason}`: calls the front refused before asking the quorum.
        public static let rejected = "quorum_proxy_rejected_total"
        /// Histogram `{phase}`: time in each phase of a decided call (`Server-Timing`'s phases).
        public static let phase = "quorum_proxy_phase_seconds"
        /// Histogram `{outcome}`: from a call's arrival to the proxy's response head.
        public static let request = "quorum_proxy_request_seconds"
        /// Counter `{node}`: chosen signers that failed or were too slow and were signed without.
        public static let signerMissed = "quorum_proxy_signer_missed_total"
        /// Gauge `{node}`: nonce commitments cached for a node, ready for optimistic signing.
        public static let commitments = "quorum_proxy_nonce_commitments_available"
    }

    /// Histogram buckets per timer label, for the backend's factory: phases span a loopback
    /// verdict (about a millisecond) to a slow upstream (a minute).
    public static let histogramBuckets: [String: [Duration]] = {
        let buckets: [Duration] = [
            .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
        ]
        return [Names.phase: buckets, Names.request: buckets]
    }()

    /// Metrics made with `factory` (the bootstrapped one by default).
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
    }

    /// A decided call: `outcome` is `allow`, `deny` or `unavailable`; `reason` the filter or step
    /// that denied, or `none`.
    func decision(_ outcome: String, reason: String = "none") {
        Counter(label: Names.decisions, dimensions: [("outcome", outcome), ("reason", reason)], factory: factory)
            .increment()
    }

    /// A call refused by the front itself (`no_mount`, `missing_token`, …).
    func rejected(_ reason: String) {
        Counter(label: Names.rejected, dimensions: [("reason", reason)], factory: factory).increment()
    }

    /// Time spent in `phase`.
    func phase(_ phase: String, _ duration: Duration) {
        CoreMetrics.Timer(label: Names.phase, dimensions: [("phase", phase)], factory: factory)
            .record(duration: duration)
    }

    /// A whole call, arrival to response head.
    func request(_ outcome: String, _ duration: Duration) {
        CoreMetrics.Timer(label: Names.request, dimensions: [("outcome", outcome)], factory: factory)
            .record(duration: duration)
    }

    /// Node `node` was a chosen signer and the call went on without it.
    func signerMissed(_ node: UInt16) {
        Counter(label: Names.signerMissed, dimensions: [("node", "\(node)")], factory: factory).increment()
    }

    /// Node `node` has `count` commitments cached.
    func commitments(_ node: UInt16, _ count: Int) {
        Gauge(label: Names.commitments, dimensions: [("node", "\(node)")], factory: factory).record(count)
    }
}
