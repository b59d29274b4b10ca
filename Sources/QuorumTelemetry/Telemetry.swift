import Logging
import Metrics
import Prometheus

/// The process-wide backends, chosen once by an executable's `main` (never by library code, and
/// never twice: swift-log and swift-metrics allow one bootstrap per process).
public enum Telemetry {
    /// Bootstraps swift-log: JSON lines (``JSONLogHandler``) or swift-log's text lines, on
    /// standard error, at `level`.
    public static func bootstrapLogging(json: Bool, level: Logger.Level) {
        if json {
            let sink = JSONLogSink.standardError
            LoggingSystem.bootstrap { label in
                var handler = JSONLogHandler(label: label, sink: sink)
                handler.logLevel = level
                return handler
            }
        } else {
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }

    /// Bootstraps swift-metrics with a Prometheus registry and returns it for the `/metrics`
    /// listener. `histogramBuckets` are the buckets per timer label (``NodeMetrics`` and
    /// ``ProxyMetrics`` publish theirs); other timers get the library's defaults.
    public static func bootstrapMetrics(histogramBuckets: [String: [Duration]]) -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = histogramBuckets
        MetricsSystem.bootstrap(factory)
        return registry
    }
}
