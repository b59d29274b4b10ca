import HTTPTypes

/// The `Server-Timing` header (W3C Server Timing) the proxy puts on every answer it gives after
/// asking the quorum, so an agent, an operator's browser tools or `quorumctl bench proxy` see
/// where a call's time went without access to the proxy's logs.
///
/// Metrics, in milliseconds with microsecond precision, in this order:
/// - `verdict`: decide request fan-out to the decision (``DecisionTimings/verdict``);
/// - `signing`: extra sign request rounds, `0` when none (``DecisionTimings/signing``);
/// - `credential`: receipt verification and credential opening, on allowed calls only;
/// - `upstream`: sending to the upstream until its response head, on forwarded calls only;
/// - `total`: from the request's arrival until the proxy's response head (a streamed body
///   follows it and is not counted).
///
/// The header names phases and durations only: no request id, path, latch or secret.
struct ServerTiming: Sendable {
    /// The header's name.
    static let name = HTTPField.Name("Server-Timing")!

    /// The metrics, in header order.
    private(set) var metrics: [(name: String, duration: Duration)] = []

    /// The metrics of a decided call: verdict, signing, then credential if it ran.
    init(decision: DecisionTimings) {
        metrics.append(("verdict", decision.verdict))
        metrics.append(("signing", decision.signing))
        if let credential = decision.credential { metrics.append(("credential", credential)) }
    }

    /// Appends metric `name`.
    mutating func add(_ name: String, _ duration: Duration) { metrics.append((name, duration)) }

    /// `verdict;dur=1.234, signing;dur=0.000, …`.
    var headerValue: String {
        metrics.map { "\($0.name);dur=\(Self.milliseconds($0.duration))" }.joined(separator: ", ")
    }

    /// `duration` in milliseconds with three decimals, never negative.
    static func milliseconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let micros = max(0, seconds * 1_000_000 + attoseconds / 1_000_000_000_000)
        let fraction = String(micros % 1000)
        return "\(micros / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}
