/// Which nodes the proxy names as optimistic signers first, from how fast each has been
/// answering decide requests: a plain value (STYLE.md 2) that ``QuorumAuthorizer`` feeds with
/// every answer's round-trip time and asks for an order.
///
/// A call's allow needs the shares of all k optimistic signers, so the call is as slow as the
/// slowest of them. Every decide request goes to all n nodes, so the proxy sees every node's
/// latency on every call, including the nodes it did not pick; it keeps a smoothed value per node
/// (an exponentially weighted moving average) and passes over a node that is clearly slower than
/// the k fastest: one whose smoothed latency is above ``slowFactor`` times the k-th smallest plus
/// ``slowMargin``. A node that failed counts as having taken the whole decision timeout. A slow
/// node still decides every call and is picked again as soon as its answers are fast again; only
/// when fewer than k nodes are fast are slow ones named, fastest first.
public struct SignerPreference: Sendable {
    /// The weight of a new sample in the moving average.
    public static let smoothing = 0.3
    /// How many times slower than the k-th fastest node a node must be to be passed over.
    public static let slowFactor = 2.0
    /// An absolute margin on top of the factor, so that loopback jitter of a few milliseconds
    /// does not reorder the signers.
    public static let slowMargin: Duration = .milliseconds(25)

    /// Smoothed latency per node, in milliseconds; nodes not heard from yet are absent.
    private var smoothed: [UInt16: Double] = [:]

    /// A preference that knows no latency yet: every node counts as fast.
    public init() {}

    /// Node `node` answered a decide request after `latency` (or failed, with the time the
    /// caller charges for a failure).
    public mutating func observe(_ node: UInt16, latency: Duration) {
        let sample = Self.milliseconds(latency)
        if let previous = smoothed[node] {
            smoothed[node] = previous + Self.smoothing * (sample - previous)
        } else {
            smoothed[node] = sample
        }
    }

    /// Node `node`'s smoothed latency, or `nil` before its first answer.
    public func latency(of node: UInt16) -> Duration? {
        smoothed[node].map { .microseconds(Int64(($0 * 1000).rounded())) }
    }

    /// The nodes among `nodes` that are passed over while k faster ones exist.
    public func slowNodes(among nodes: [UInt16], threshold: Int) -> Set<UInt16> {
        guard threshold >= 1, nodes.count > threshold else { return [] }
        let latencies = nodes.map { smoothed[$0] ?? 0 }.sorted()
        let limit = latencies[threshold - 1] * Self.slowFactor + Self.milliseconds(Self.slowMargin)
        return Set(nodes.filter { (smoothed[$0] ?? 0) > limit })
    }

    /// `nodes` in the order to try them as optimistic signers: nodes neither down nor slow by
    /// id (the lowest ids first, as before latencies were known), then slow nodes fastest first,
    /// then nodes that are `down`.
    public func ordered(_ nodes: [UInt16], threshold: Int, down: Set<UInt16>) -> [UInt16] {
        let up = nodes.filter { !down.contains($0) }.sorted()
        let slow = slowNodes(among: up, threshold: threshold)
        let fast = up.filter { !slow.contains($0) }
        let slowest = up.filter { slow.contains($0) }.sorted { (smoothed[$0] ?? 0, $0) < (smoothed[$1] ?? 0, $1) }
        return fast + slowest + nodes.filter { down.contains($0) }.sorted()
    }

    private static func milliseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}
