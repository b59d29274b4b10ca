import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import QuorumLog
import ServiceLifecycle

/// Where a node's audit API listens and how it limits clients: the `[audit]` table of the node's
/// configuration (docs/operations.md). Absent, the node serves no audit API.
public struct AuditServerConfiguration: Sendable, Hashable {
    /// The host to bind (`127.0.0.1` keeps it local; put a proxy or `0.0.0.0` in front to publish).
    public var host: String
    /// The port; 0 asks for any free port.
    public var port: Int
    /// Per-client token bucket.
    public var limits = ClientRateLimiter.Limits()
    /// `max-age` of `/checkpoint`, in seconds.
    public var checkpointMaxAge = 5

    /// Listening on `host:port`, with the default limits.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

/// The request context of the audit listener: Hummingbird's storage and the client's address,
/// which the rate limiter keys on.
public struct AuditRequestContext: RequestContext {
    /// Hummingbird's per-request storage.
    public var coreContext: CoreRequestContextStorage
    /// The connection's remote address.
    public let remoteAddress: SocketAddress?

    /// A context for a request on `source.channel`.
    public init(source: ApplicationRequestContextSource) {
        coreContext = CoreRequestContextStorage(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// The audit API over HTTP: GET and HEAD only, a token bucket per client, the log read on a
/// thread pool, every refusal a JSON body naming what was wrong.
///
/// Routes sit at the root (`/checkpoint`, `/tile/…`); the proxy forwards
/// `/.well-known/quorum/audit/<route>` here (``AuditHTTP/proxyPrefix``).
public struct AuditResponder<Context: RequestContext>: HTTPResponder {
    let api: AuditAPI
    let limiter: ClientRateLimiter
    let threadPool: NIOThreadPool
    let clientAddress: @Sendable (Context) -> String?
    let logger: Logger

    /// A responder answering from `api`, limiting each client (by `clientAddress`) with `limiter`.
    public init(
        api: AuditAPI, limiter: ClientRateLimiter, threadPool: NIOThreadPool = .singleton,
        clientAddress: @escaping @Sendable (Context) -> String?, logger: Logger
    ) {
        self.api = api
        self.limiter = limiter
        self.threadPool = threadPool
        self.clientAddress = clientAddress
        self.logger = logger
    }

    /// Answers one request.
    public func respond(to request: Request, context: Context) async throws -> Response {
        let head = request.method == .head
        if let refusal = AuditHTTP.refuseMethod(request.method) { return AuditHTTP.response(refusal, head: head) }
        if let wait = limiter.admit(ClientRateLimiter.key(forAddress: clientAddress(context))) {
            return AuditHTTP.response(AuditHTTP.rateLimited(wait), head: head)
        }
        // The raw target, not the decoded path: a request id is percent-decoded once, by the route.
        let (path, query) = AuditHTTP.split(request.head.path ?? "")
        guard path.hasPrefix("/") else {
            return AuditHTTP.response(.notFound("no audit resource at \(path)"), head: head)
        }
        let route: AuditRoute
        do { route = try AuditRoute.parse(String(path.dropFirst())) } catch {
            return AuditHTTP.response(error, head: head)
        }
        let api = api
        let outcome: Result<AuditAnswer, any Error> = try await threadPool.runIfActive {
            Result { try api.answer(route, query: query) }
        }
        switch outcome {
        case .success(let answer):
            return AuditHTTP.response(answer, head: head)
        case .failure(let refusal as AuditRequestError):
            return AuditHTTP.response(refusal, head: head)
        case .failure(let error):
            logger.error("audit API cannot read the log", metadata: ["path": "\(path)", "reason": "\(error)"])
            return AuditHTTP.response(
                AuditRequestError(
                    status: 500, code: "log_unavailable", "the log could not be read; see the node's log"),
                head: head)
        }
    }
}

/// HTTP framing shared by the node's audit listener and the proxy's forwarder.
public enum AuditHTTP {
    /// Where the proxy serves the audit API: `GET /.well-known/quorum/audit/checkpoint` is a
    /// node's `GET /checkpoint`.
    public static let proxyPrefix = "/.well-known/quorum/audit"

    /// A raw request target split into its path and its query (without the `?`), if any.
    public static func split(_ target: String) -> (path: String, query: String?) {
        guard let mark = target.firstIndex(of: "?") else { return (target, nil) }
        return (String(target[..<mark]), String(target[target.index(after: mark)...]))
    }

    /// A 405 for anything but GET and HEAD: the API changes nothing.
    public static func refuseMethod(_ method: HTTPRequest.Method) -> AuditRequestError? {
        guard method != .get, method != .head else { return nil }
        return AuditRequestError(
            status: 405, code: "method_not_allowed",
            "\(method.rawValue) is not served; the audit API is read-only (GET, HEAD)")
    }

    /// A 429 with the seconds to wait.
    public static func rateLimited(_ seconds: Int) -> AuditRequestError {
        AuditRequestError(
            status: 429, code: "rate_limited", "too many requests from this address; retry in \(seconds) s",
            retryAfter: seconds)
    }

    /// `answer` as a response; for HEAD, the same headers and no body.
    public static func response(_ answer: AuditAnswer, head: Bool) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = answer.contentType
        headers[.cacheControl] = answer.cacheControl
        headers[.contentLength] = String(answer.body.count)
        headers[.xContentTypeOptions] = "nosniff"
        return Response(
            status: .init(code: answer.status), headers: headers,
            body: head ? ResponseBody() : ResponseBody(byteBuffer: ByteBuffer(bytes: answer.body)))
    }

    /// A refusal as a JSON response (with `Allow` on a 405 and `Retry-After` on a 429).
    public static func response(_ error: AuditRequestError, head: Bool) -> Response {
        var response = response(
            AuditAnswer(
                status: error.status, contentType: AuditAnswer.json, cacheControl: "no-store", body: error.jsonBody),
            head: head)
        if error.status == 405 { response.headers[.allow] = "GET, HEAD" }
        if let seconds = error.retryAfter { response.headers[.retryAfter] = String(seconds) }
        return response
    }
}

/// The node's audit listener as a `Service`: one Hummingbird application serving ``AuditAPI`` over
/// `source`, stopped with the node's `ServiceGroup`.
public struct NodeAuditServer: Service {
    let configuration: AuditServerConfiguration
    let application: Application<AuditResponder<AuditRequestContext>>

    /// A server for `source`; `onListening` gets the bound port once it listens.
    public init(
        configuration: AuditServerConfiguration, source: any AuditLogSource, logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) {
        self.configuration = configuration
        let responder = AuditResponder<AuditRequestContext>(
            api: AuditAPI(source: source, checkpointMaxAge: configuration.checkpointMaxAge),
            limiter: ClientRateLimiter(limits: configuration.limits),
            clientAddress: { $0.remoteAddress?.ipAddress }, logger: logger)
        application = Application(
            responder: responder,
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.info("audit API listening", metadata: ["port": "\(port)"])
                await onListening(port)
            }, logger: logger)
    }

    /// Serves until graceful shutdown or cancellation.
    public func run() async throws {
        try await application.run()
    }
}
