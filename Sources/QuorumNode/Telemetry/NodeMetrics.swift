import Foundation
import Metrics
import NIOConcurrencyHelpers
import QuorumPolicy

/// A policy node's metrics (docs/operations.md, "Metrics"), recorded through swift-metrics.
///
/// Library code only records: `quorumd` bootstraps the Prometheus backend once, before the
/// runtime is built, and tests pass a factory of their own (``init(factory:)``) instead of
/// bootstrapping a second time. Without a backend every recording is swift-metrics' no-op.
///
/// Labels are low-cardinality by construction: a decision, a filter or step name (never a reason's
/// free text), a refusal code, a peer's node id. No latch token, credential, key share, request id
/// or latch id is ever a label or a value.
public struct NodeMetrics: Sendable {
    /// The factory every metric is made with.
    public let factory: any MetricsFactory
    /// The replicated log's gauges, which the log code updates.
    public let log: LogMetrics
    private let evaluation: CoreMetrics.Timer
    private let verdictWrite: CoreMetrics.Timer
    private let noncePoolDepth: Gauge

    /// Histogram buckets per timer label, for the backend's factory: policy evaluation takes
    /// microseconds and a synced write milliseconds, so the library defaults (5 ms to 10 s) would
    /// put every sample in the first bucket.
    public static let histogramBuckets: [String: [Duration]] = [
        Names.verdictEvaluation: [
            .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
            .microseconds(2500), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100),
        ],
        Names.verdictWrite: [
            .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1),
        ],
    ]

    /// The metric names, as docs/operations.md lists them.
    public enum Names {
        /// Counter `{decision, reason}`: verdicts reached (a retried request id is not counted again).
        public static let verdicts = "quorum_node_verdicts_total"
        /// Counter `{code}`: decide requests answered with an error instead of a verdict.
        public static let decideRefusals = "quorum_node_decide_refusals_total"
        /// Histogram: time to evaluate the pipeline for one request.
        public static let verdictEvaluation = "quorum_node_verdict_evaluation_seconds"
        /// Histogram: from a verdict's queueing until its synced write is on disk.
        public static let verdictWrite = "quorum_node_verdict_write_seconds"
        /// Gauge: nonces handed out as commitments and not yet used.
        public static let noncePoolDepth = "quorum_node_nonce_pool_depth"
        /// Counter `{result, reason}`: signature shares given, refused or failed.
        public static let signingShares = "quorum_node_signing_shares_total"
        /// Gauge `{peer}`: 1 while the peer's heartbeats arrive, 0 once it counts as down.
        public static let peerUp = "quorum_node_peer_up"
        /// Gauge `{role, subject}`: seconds until a certificate's notAfter (negative once expired).
        public static let certificateExpiry = "quorum_certificate_expiry_seconds"
    }

    /// Metrics made with `factory` (the bootstrapped one by default).
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        log = LogMetrics(factory: factory)
        evaluation = CoreMetrics.Timer(label: Names.verdictEvaluation, factory: factory)
        verdictWrite = CoreMetrics.Timer(label: Names.verdictWrite, factory: factory)
        noncePoolDepth = Gauge(label: Names.noncePoolDepth, factory: factory)
    }

    /// A verdict reached now: counted by decision and by the filter or step that denied.
    func verdict(_ verdict: Verdict, evaluatedIn duration: Duration) {
        evaluation.record(duration: duration)
        let reason = verdict.decision == .deny ? MetricLabels.step(ofReason: verdict.reason ?? "") : "none"
        Counter(
            label: Names.verdicts, dimensions: [("decision", verdict.decision.rawValue), ("reason", reason)],
            factory: factory
        ).increment()
    }

    /// A decide request refused with `code` (the error response's code name).
    func decideRefused(code: String) {
        Counter(label: Names.decideRefusals, dimensions: [("code", code)], factory: factory).increment()
    }

    /// The time a verdict waited for its synced write.
    func verdictWritten(in duration: Duration) { verdictWrite.record(duration: duration) }

    /// A signature share given (`given`), refused by a signer rule (`refused`, with the refusal
    /// reason) or not made because the node failed (`failed`).
    func share(_ result: String, reason: String = "none") {
        Counter(
            label: Names.signingShares, dimensions: [("result", result), ("reason", reason)], factory: factory
        ).increment()
    }

    /// Samples the gauges whose value is read rather than pushed, just before a scrape.
    func sample(poolDepth: Int, peers: [Membership.Peer]) {
        noncePoolDepth.record(poolDepth)
        for peer in peers {
            Gauge(label: Names.peerUp, dimensions: [("peer", "\(peer.nodeID)")], factory: factory)
                .record(peer.isUp ? 1 : 0)
        }
    }
}

/// Label values shared by the node's and the proxy's metrics, so that both name a deny alike.
public enum MetricLabels {
    /// The filter or built-in step a deny reason names (`<filter>: <why>` → `<filter>`), without
    /// the position suffix of an unnamed filter (`rate_limit#2` → `rate_limit`), so the label
    /// never carries the reason's free text. Anything that is not a short identifier is `other`:
    /// a label must stay low-cardinality even when a faulty peer sends odd reasons.
    public static func step(ofReason reason: String) -> String {
        guard let colon = reason.firstIndex(of: ":") else { return "other" }
        var name = reason[..<colon]
        if let hash = name.firstIndex(of: "#") { name = name[..<hash] }
        guard !name.isEmpty, name.utf8.count <= 64,
            name.utf8.allSatisfy({ byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                    || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
            })
        else { return "other" }
        return String(name)
    }
}

/// The replicated log's health as gauges: the names are fixed here, and the log code (gossip,
/// sequencer, checkpoints) reports values through these methods as it learns them. A gauge appears
/// in `/metrics` only once it has been reported, so a node without replication shows no
/// misleading zeros.
public final class LogMetrics: Sendable {
    /// The metric names, as docs/operations.md lists them.
    public enum Names {
        /// Gauge: entries in this node's log.
        public static let logSize = "quorum_node_log_size_entries"
        /// Gauge: the size of the newest checkpoint the quorum signed that this node holds.
        public static let checkpointSize = "quorum_node_checkpoint_size_entries"
        /// Gauge: seconds since that checkpoint was signed, sampled at each scrape.
        public static let checkpointAge = "quorum_node_checkpoint_age_seconds"
        /// Gauge: entries the node knows exist (from peers' checkpoints or gossip) but does not hold.
        public static let gossipLag = "quorum_node_gossip_lag_entries"
        /// Counter `{decision}`: this node's decisions whose receipts did not reach the log in
        /// `replication.unlogged_after_ms` (``UnloggedWatch``).
        public static let unloggedDecisions = "quorum_node_unlogged_decisions_total"
    }

    private let factory: any MetricsFactory
    private let checkpointSignedAt = NIOLockedValueBox<Date?>(nil)

    /// Gauges made with `factory`.
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
    }

    /// The log now holds `entries` entries.
    public func logSize(_ entries: UInt64) {
        Gauge(label: Names.logSize, factory: factory).record(Int64(clamping: entries))
    }

    /// The newest quorum-signed checkpoint this node holds covers `size` entries and was signed at
    /// `signedAt`; its age is computed at each scrape.
    public func checkpoint(size: UInt64, signedAt: Date) {
        Gauge(label: Names.checkpointSize, factory: factory).record(Int64(clamping: size))
        checkpointSignedAt.withLockedValue { $0 = signedAt }
        sample(now: Date())
    }

    /// `entries` entries reached this node (by submission or gossip) that no quorum checkpoint
    /// covers yet: how far the log trails what the cluster has been told.
    public func gossipLag(_ entries: UInt64) {
        Gauge(label: Names.gossipLag, factory: factory).record(Int64(clamping: entries))
    }

    /// `count` more of this node's decisions (`allow` or `deny`) were found without a receipt in the log.
    public func unlogged(decision: String, count: Int) {
        guard count > 0 else { return }
        Counter(label: Names.unloggedDecisions, dimensions: [("decision", decision)], factory: factory)
            .increment(by: Int64(count))
    }

    /// Updates the checkpoint's age, if a checkpoint was reported.
    public func sample(now: Date) {
        guard let signedAt = checkpointSignedAt.withLockedValue({ $0 }) else { return }
        Gauge(label: Names.checkpointAge, factory: factory).record(now.timeIntervalSince(signedAt))
    }
}
