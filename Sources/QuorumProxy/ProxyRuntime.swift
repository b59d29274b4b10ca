import AsyncHTTPClient
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import QuorumNode
import QuorumPolicy
import ServiceLifecycle

/// A running proxy's parts: the routing table, the upstream client and the HTTP front, as
/// services for one `ServiceGroup` (the executable's) or a test's.
public final class ProxyRuntime: Sendable {
    /// The configuration it was made from.
    public let configuration: ProxyConfiguration
    /// The routing view in force; replace it to route by a newer bundle.
    public let routing: RoutingTable
    /// The upstream client, shut down by the services after the listener stopped.
    public let client: HTTPClient
    /// The front's metrics.
    public let metrics: ProxyMetrics
    private let authorizer: any CallAuthorizer
    private let logger: Logger

    /// A runtime routing by `routing` and deciding with `authorizer`.
    public init(
        configuration: ProxyConfiguration, routing: RoutingTable, authorizer: any CallAuthorizer,
        metrics: ProxyMetrics = ProxyMetrics(), logger: Logger
    ) {
        self.configuration = configuration
        self.routing = routing
        self.authorizer = authorizer
        self.metrics = metrics
        self.logger = logger
        var clientConfiguration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(
                connect: TimeAmount(configuration.upstream.connectTimeout),
                read: TimeAmount(configuration.upstream.readTimeout)),
            decompression: .disabled)
        clientConfiguration.httpVersion = .automatic
        client = HTTPClient(
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: clientConfiguration,
            backgroundActivityLogger: logger)
    }

    /// A runtime for `configuration`, routing by the signed bundle it names.
    public convenience init(
        configuration: ProxyConfiguration, authorizer: any CallAuthorizer, logger: Logger
    ) throws {
        guard let path = configuration.bundlePath else {
            throw ProxyConfigurationError(
                file: configuration.file, key: "bundle.file", "missing; this runtime routes by a bundle file")
        }
        let view = try RoutingView.load(signedBundleAt: path, trustedSigners: configuration.trustedSigners)
        self.init(configuration: configuration, routing: RoutingTable(view), authorizer: authorizer, logger: logger)
    }

    /// The plain HTTP front as a Hummingbird responder.
    public var front: ProxyFront { front(tls: false) }

    /// The front of the plain HTTP listener, or of the HTTPS one (`tls`), which reads the
    /// agent's client certificate and tells the upstream `X-Forwarded-Proto: https`.
    func front(tls: Bool) -> ProxyFront {
        ProxyFront(
            routing: routing, authorizer: authorizer, limits: configuration.limits,
            forwarder: UpstreamForwarder(
                client: client, configuration: configuration.upstream, responseLimits: configuration.responseLimits,
                scheme: tls ? "https" : "http", logger: logger),
            readsClientCertificates: tls, metrics: metrics,
            audit: configuration.audit.map { AuditForwarder(forwarding: $0, client: client, logger: logger) },
            logger: logger)
    }

    /// The HTTPS listener's certificate (`agent-tls`), for the expiry gauge; empty without `[tls]`
    /// or when its leaf cannot be read (``services(onListening:onTLSListening:)`` then refuses to start).
    public var monitoredCertificates: [MonitoredCertificate] {
        guard let tls = configuration.tls, let leaf = try? NIOSSLCertificate.fromPEMFile(tls.certificate).first,
            let der = try? leaf.toDERBytes(), let entry = MonitoredCertificate.parsing(der: der, role: "agent-tls")
        else { return [] }
        return [entry]
    }

    /// The services to run, in start order: the upstream client's keeper, then the listeners
    /// (stopped first on shutdown, so the client outlives every forwarded call): plain HTTP on
    /// `listen`, and HTTPS on `[tls] listen` when configured. `onListening` gets the plain
    /// listener's bound port, `onTLSListening` the HTTPS one's.
    ///
    /// - Throws: ``ProxyConfigurationError`` when the `[tls]` certificate or key cannot be loaded,
    ///   or do not belong together.
    public func services(
        onListening: @escaping @Sendable (Int) async throws -> Void = { _ in },
        onTLSListening: @escaping @Sendable (Int) async throws -> Void = { _ in }
    ) throws(ProxyConfigurationError) -> [any Service] {
        var services: [any Service] = [
            HTTPClientService(client: client),
            Application(
                responder: front(tls: false),
                configuration: ApplicationConfiguration(
                    address: .hostname(configuration.listen.host, port: configuration.listen.port)),
                onServerRunning: Self.reporter("http", onListening, logger: logger), logger: logger),
        ]
        if let tls = configuration.tls {
            let channelConfiguration = try AgentTLS.channelConfiguration(tls, file: configuration.file)
            let application: Application<ProxyFront>
            do {
                application = Application(
                    responder: front(tls: true), server: try .tls(.http1(), configuration: channelConfiguration),
                    configuration: ApplicationConfiguration(address: .hostname(tls.listen.host, port: tls.listen.port)),
                    onServerRunning: Self.reporter("https", onTLSListening, logger: logger), logger: logger)
            } catch {
                throw ProxyConfigurationError(file: configuration.file, key: "tls", "cannot set up TLS (\(error))")
            }
            services.append(application)
        }
        return services
    }

    private static func reporter(
        _ scheme: String, _ report: @escaping @Sendable (Int) async throws -> Void, logger: Logger
    ) -> @Sendable (any Channel) async -> Void {
        { channel in
            let port = channel.localAddress?.port ?? 0
            logger.info("listening", metadata: ["scheme": "\(scheme)", "port": "\(port)"])
            do { try await report(port) } catch {
                logger.error("cannot report the listening port", metadata: ["reason": "\(error)"])
            }
        }
    }
}

/// Keeps an `HTTPClient` until graceful shutdown, then shuts it down.
struct HTTPClientService: Service {
    let client: HTTPClient

    func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}
