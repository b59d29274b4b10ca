import Hummingbird
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle

/// `GET /metrics` in the Prometheus text exposition format, on a listener of its own.
///
/// Each scrape first runs `beforeScrape`, which brings the gauges that are read rather than pushed
/// (nonce pool depth, peer liveness, certificate expiry, commitments cached) up to date, then
/// renders the registry. Every other path is 404 and every other method 405: the listener serves
/// nothing but metrics, so it can be exposed to a monitoring network without exposing anything else.
public struct MetricsEndpoint: HTTPResponder {
    /// The request context: Hummingbird's basic one, nothing more is read.
    public typealias Context = BasicRequestContext

    /// The content type of the Prometheus text format, version 0.0.4.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    let registry: PrometheusCollectorRegistry
    let beforeScrape: @Sendable () -> Void

    /// An endpoint rendering `registry` after calling `beforeScrape`.
    public init(registry: PrometheusCollectorRegistry, beforeScrape: @escaping @Sendable () -> Void = {}) {
        self.registry = registry
        self.beforeScrape = beforeScrape
    }

    /// Answers one request.
    public func respond(to request: Request, context: BasicRequestContext) async throws -> Response {
        guard request.uri.path == "/metrics" else {
            return Self.text(.notFound, "not found; metrics are at GET /metrics\n")
        }
        guard request.method == .get || request.method == .head else {
            var response = Self.text(.methodNotAllowed, "use GET /metrics\n")
            response.headers[.allow] = "GET, HEAD"
            return response
        }
        beforeScrape()
        var headers = HTTPFields()
        headers[.contentType] = Self.contentType
        let body = request.method == .head ? [] : registry.emitToBuffer()
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    private static func text(_ status: HTTPResponse.Status, _ text: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// The endpoint as a Hummingbird application listening on `host:port`, for the process's
    /// `ServiceGroup`; `onListening` gets the bound port.
    public static func service(
        registry: PrometheusCollectorRegistry, host: String, port: Int, logger: Logger,
        beforeScrape: @escaping @Sendable () -> Void = {},
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some Service {
        Application(
            responder: MetricsEndpoint(registry: registry, beforeScrape: beforeScrape),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "quorum-metrics"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.info("metrics listening", metadata: ["port": "\(port)", "path": "/metrics"])
                await onListening(port)
            },
            logger: logger)
    }
}
