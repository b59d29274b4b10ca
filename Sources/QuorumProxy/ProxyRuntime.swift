import AsyncHTTPClient
import Hummingbird
import Logging
import NIOCore
import NIOPosix
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
    private let authorizer: any CallAuthorizer
    private let logger: Logger

    /// A runtime routing by `routing` and deciding with `authorizer`.
    public init(
        configuration: ProxyConfiguration, routing: RoutingTable, authorizer: any CallAuthorizer, logger: Logger
    ) {
        self.configuration = configuration
        self.routing = routing
        self.authorizer = authorizer
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

    /// The HTTP front as a Hummingbird responder.
    public var front: ProxyFront {
        ProxyFront(
            routing: routing, authorizer: authorizer, limits: configuration.limits,
            forwarder: UpstreamForwarder(
                client: client, configuration: configuration.upstream, responseLimits: configuration.responseLimits,
                scheme: "http", logger: logger),
            logger: logger)
    }

    /// The services to run, in start order: the upstream client's keeper, then the listener
    /// (stopped first on shutdown, so the client outlives every forwarded call).
    /// `onListening` gets the bound port.
    public func services(onListening: @escaping @Sendable (Int) async throws -> Void = { _ in }) -> [any Service] {
        let logger = self.logger
        let application = Application(
            responder: front,
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.listen.host, port: configuration.listen.port)),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.info("listening", metadata: ["port": "\(port)"])
                do { try await onListening(port) } catch {
                    logger.error("cannot report the listening port", metadata: ["reason": "\(error)"])
                }
            },
            logger: logger)
        return [HTTPClientService(client: client), application]
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
