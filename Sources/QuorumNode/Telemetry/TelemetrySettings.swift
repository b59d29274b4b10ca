import TOMLKit

/// How a process writes its log lines.
public enum LogFormat: String, Sendable, Hashable, CaseIterable {
    /// swift-log's one-line text, for a terminal or `journalctl`.
    case text
    /// One JSON object per line (`ts`, `level`, `label`, `message`, `source`, then the metadata),
    /// for a log shipper that should not have to parse free text.
    case json
}

/// The `[metrics]` and `[log]` tables, which `quorumd` and `quorum-proxy` read alike
/// (docs/operations.md, "Metrics" and "Logs").
///
/// ```toml
/// [metrics]
/// listen = "127.0.0.1:9101"   # GET /metrics, Prometheus text format; no [metrics]: no listener
///
/// [log]
/// format = "json"             # or "text" (the default); --log-format overrides it
/// ```
///
/// Metrics get a listener of their own, apart from node RPC, the proxy's agent listeners and the
/// audit API, so an operator can firewall them separately; it speaks plain HTTP and is meant for
/// loopback or a monitoring network.
public struct TelemetrySettings: Sendable, Hashable {
    /// Where the Prometheus listener binds; `nil` (no `[metrics]` table): no listener, and no
    /// metrics backend, so recording costs nothing.
    public var metricsListen: NodeAddress?
    /// The log format the file asks for, if it names one.
    public var logFormat: LogFormat?

    /// Settings; by default no metrics listener and no log format named.
    public init(metricsListen: NodeAddress? = nil, logFormat: LogFormat? = nil) {
        self.metricsListen = metricsListen
        self.logFormat = logFormat
    }

    /// The top-level keys these settings take.
    package static let tables = ["metrics", "log"]
    static let metricsKeys = ["listen"]
    static let logKeys = ["format"]
}

extension TOMLFieldReader {
    /// The `[metrics]` and `[log]` tables of `table`. `listeners` are the process's other
    /// listeners (their key and address): the metrics listener may not share a port with one.
    package func telemetry(
        _ table: TOMLTable, listeners: [(key: String, address: NodeAddress)]
    ) throws(NodeConfigurationError) -> TelemetrySettings {
        var settings = TelemetrySettings()
        if let metricsValue = table["metrics"] {
            guard let metrics = metricsValue.table else {
                throw error("metrics", "is a \(metricsValue.type); it must be a table ([metrics]) with listen")
            }
            try refuseUnknown(metrics, allowed: TelemetrySettings.metricsKeys, prefix: "metrics.")
            guard metrics["listen"] != nil else {
                throw error(
                    "metrics.listen",
                    "missing; give the Prometheus listener's \"host:port\", as \"127.0.0.1:9101\" (or drop [metrics])")
            }
            let listen = try address(metrics["listen"], key: "metrics.listen", ports: 1...65535)
            for other in listeners where other.address.port == listen.port && other.address.port != 0 {
                throw error(
                    "metrics.listen",
                    "port \(listen.port) is also \(other.key) (\(other.address)); the metrics listener needs a port of its own"
                )
            }
            settings.metricsListen = listen
        }
        if let logValue = table["log"] {
            guard let log = logValue.table else {
                throw error("log", "is a \(logValue.type); it must be a table ([log]) with format")
            }
            try refuseUnknown(log, allowed: TelemetrySettings.logKeys, prefix: "log.")
            if let formatValue = log["format"] {
                let names = LogFormat.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: " or ")
                guard let text = formatValue.string else {
                    throw error("log.format", "is a \(formatValue.type); expected \(names)")
                }
                guard let format = LogFormat(rawValue: text) else {
                    throw error("log.format", "'\(text)' is not a log format; expected \(names)")
                }
                settings.logFormat = format
            }
        }
        return settings
    }
}
