import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import QuorumIdentity
import QuorumProtocol

/// Answers one request: the peer its certificate proved, and the request frame. Return the
/// response (``Frame/response(_:to:)`` or ``Frame/errorResponse(_:to:)``), or nil for one-way
/// frames. A thrown ``WireError`` is answered as a malformed request; any other error as
/// `internal`, with the details kept in this node's log.
public typealias NodeRequestHandler = @Sendable (PeerIdentity, Frame) async throws -> Frame?

/// The node RPC listener: mutual TLS 1.3 with the cluster CA as the only trust root, then
/// length-prefixed frames whose requests go to a ``NodeRequestHandler``.
///
/// A connection is admitted only when its certificate passes ``ClusterIdentity`` and its role is
/// one of the policy's ``AuthorizationPolicy/connectionRoles``; each request is then checked
/// against ``AuthorizationPolicy/requestRoles`` and, when it names a sending node, against the
/// certificate's node id. Each refusal is logged with its reason and affects only its connection.
public final class NodeServer: Sendable {
    private let configuration: TransportConfiguration
    private let policy: AuthorizationPolicy
    private let group: any EventLoopGroup
    private let logger: Logger
    private let handler: NodeRequestHandler
    private let sslContext: NIOSSLContext
    private let state = NIOLockedValueBox(State())

    private struct State {
        var listener: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
        var stopped = false
    }

    /// A server for `configuration`, enforcing `policy`, answering with `handler`.
    ///
    /// - Throws: ``TransportError/Code/configuration`` when the TLS context cannot be made (a key
    ///   that does not belong to the certificate).
    public init(
        configuration: TransportConfiguration, policy: AuthorizationPolicy,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "quorum.transport.server"), handler: @escaping NodeRequestHandler
    ) throws(TransportError) {
        self.configuration = configuration
        self.policy = policy
        self.group = eventLoopGroup
        var logger = logger
        logger[metadataKey: "listener"] = "\(configuration.identity)"
        self.logger = logger
        self.handler = handler
        do {
            sslContext = try NIOSSLContext(configuration: configuration.tlsConfiguration(server: true))
        } catch {
            throw TransportError(
                .configuration, peer: "\(configuration.identity)", "cannot make the TLS server context (\(error))")
        }
    }

    /// The port the server listens on, once started.
    public var port: Int? { state.withLockedValue { $0.listener?.localAddress?.port } }

    /// Binds the listen address and starts accepting; returns the bound port (useful with port 0).
    public func start() async throws(TransportError) -> Int {
        let configuration = configuration
        let authenticator = PeerAuthenticator(
            clusterCA: configuration.clusterCA, expectation: .roles(policy.connectionRoles), peerUsage: .client,
            now: configuration.now)
        let policy = policy
        let logger = logger
        let handler = handler
        let sslContext = sslContext
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [weak self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let remote = SecurePipeline.describe(channel.remoteAddress)
                    var connectionLogger = logger
                    connectionLogger[metadataKey: "peer"] = "\(remote)"
                    let verdict = PeerVerdict(nil)
                    let tls = try SecurePipeline.tlsHandler(
                        context: sslContext, isServer: true, serverHostname: nil, authenticator: authenticator,
                        verdict: verdict, remote: remote, logger: connectionLogger)
                    let connection = ServerConnectionHandler(
                        configuration: configuration, policy: policy, verdict: verdict, logger: connectionLogger,
                        handler: handler)
                    try SecurePipeline.configure(
                        channel, tls: tls, limits: configuration.frameLimits, logger: connectionLogger,
                        handler: connection)
                    self?.track(channel)
                }
            }
        let listener: any Channel
        do {
            listener = try await bootstrap.bind(host: configuration.listenHost, port: configuration.listenPort).get()
        } catch {
            throw TransportError(
                .configuration, peer: "\(configuration.listenHost):\(configuration.listenPort)",
                "cannot listen (\(error))")
        }
        state.withLockedValue { $0.listener = listener }
        let port = listener.localAddress?.port ?? configuration.listenPort
        logger.info("listening", metadata: ["address": "\(configuration.listenHost):\(port)"])
        return port
    }

    /// Stops accepting, closes every open connection (their in-flight requests are cancelled) and
    /// waits for the listener to close.
    public func stop() async {
        let (listener, connections) = state.withLockedValue { state in
            state.stopped = true
            let taken = (state.listener, Array(state.connections.values))
            state.connections = [:]
            return taken
        }
        for connection in connections { connection.close(promise: nil) }
        try? await listener?.close()
    }

    private func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let stopped = state.withLockedValue { state in
            if !state.stopped { state.connections[id] = channel }
            return state.stopped
        }
        if stopped {
            channel.close(promise: nil)
            return
        }
        channel.closeFuture.whenComplete { [weak self] _ in
            _ = self?.state.withLockedValue { $0.connections.removeValue(forKey: id) }
        }
    }
}

/// One server connection on its event loop: waits for the handshake's verdict, checks each
/// frame's authorization, runs requests concurrently up to the in-flight limit, enforces their
/// deadlines, and stops reading while the limit is reached or the socket is not writable.
final class ServerConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = Frame
    typealias OutboundIn = Frame
    typealias OutboundOut = Frame

    private struct Running {
        let task: Task<Void, Never>
        let timeout: Scheduled<Void>?
    }

    private let configuration: TransportConfiguration
    private let policy: AuthorizationPolicy
    private let verdict: PeerVerdict
    private var logger: Logger
    private let handler: NodeRequestHandler

    private var peer: PeerIdentity?
    private var handshakeTimeout: Scheduled<Void>?
    /// Requests by correlation id, until answered or expired.
    private var requests: [UInt64: Running] = [:]
    /// One-way frames being handled (they count against the in-flight limit too).
    private var oneWays = 0
    private var readPending = false
    private var closing = false

    init(
        configuration: TransportConfiguration, policy: AuthorizationPolicy, verdict: PeerVerdict, logger: Logger,
        handler: @escaping NodeRequestHandler
    ) {
        self.configuration = configuration
        self.policy = policy
        self.verdict = verdict
        self.logger = logger
        self.handler = handler
    }

    private var inFlight: Int { requests.count + oneWays }

    func channelActive(context: ChannelHandlerContext) {
        let timeout = configuration.handshakeTimeout
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        handshakeTimeout = context.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            let (handler, context) = bound.value
            guard handler.peer == nil else { return }
            handler.logger.warning(
                "closing connection: TLS handshake not completed", metadata: ["timeout": "\(timeout)"])
            handler.close(context)
        }
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        handshakeTimeout?.cancel()
        switch verdict.withLockedValue({ $0 }) {
        case .success(let identity)?:
            peer = identity
            logger[metadataKey: "identity"] = "\(identity)"
            logger.debug("connection authenticated")
        case .failure(let error)?:
            // The verification callback already logged the refusal; the handshake should not
            // have completed at all.
            logger.warning("closing connection: \(error)")
            close(context)
        case nil:
            logger.error("closing connection: handshake completed without a certificate check")
            close(context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        let frame = unwrapInboundIn(data)
        guard let peer else {
            logger.warning("closing connection: frame before the peer was authenticated")
            close(context)
            return
        }
        switch frame.kind {
        case .response, .errorResponse:
            logger.warning(
                "closing connection: unsolicited \(frame.kind) (correlation id \(frame.correlationID)); this listener sends no requests"
            )
            close(context)
            return
        case .request, .oneWay:
            break
        }
        if let impersonation = policy.impersonation(in: frame, from: peer) {
            logger.warning(
                "closing connection: \(impersonation.reason)", metadata: ["code": "\(impersonation.code.rawValue)"])
            if frame.kind == .request {
                reply(context, try? Frame.errorResponse(ErrorResponse(.unauthorized, impersonation.reason), to: frame))
            }
            close(context)
            return
        }
        if let refusal = policy.refusal(of: frame, from: peer) {
            logger.notice("refused \(frame.kind): \(refusal.reason)", metadata: ["code": "\(refusal.code.rawValue)"])
            if frame.kind == .request {
                reply(context, try? Frame.errorResponse(ErrorResponse(.unauthorized, refusal.reason), to: frame))
            }
            return
        }
        if frame.kind == .request, requests[frame.correlationID] != nil {
            let reason = "correlation id \(frame.correlationID) is already in flight on this connection"
            logger.notice("refused request: \(reason)")
            reply(context, try? Frame.errorResponse(ErrorResponse(.malformedRequest, reason), to: frame))
            return
        }
        start(frame, from: peer, context: context)
    }

    private func start(_ frame: Frame, from peer: PeerIdentity, context: ChannelHandlerContext) {
        let handler = handler
        let logger = logger
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let task = Task {
            let reply: Frame?
            do {
                reply = try await handler(peer, frame)
            } catch let error as WireError {
                reply = try? Frame.errorResponse(ErrorResponse(refusing: error), to: frame)
            } catch {
                if !(error is CancellationError) {
                    logger.error(
                        "request handler failed",
                        metadata: ["type": "\(frame.messageType)", "error": "\(String(reflecting: error))"])
                }
                reply = try? Frame.errorResponse(
                    ErrorResponse(.internal, "the node could not answer message type \(frame.messageType)"), to: frame)
            }
            eventLoop.execute {
                let (connection, context) = bound.value
                connection.finish(frame, answer: reply, context: context)
            }
        }
        guard frame.kind == .request else {
            oneWays += 1
            return
        }
        var timeout: Scheduled<Void>?
        if let deadline = frame.deadline {
            timeout = eventLoop.scheduleTask(in: TimeAmount(deadline)) {
                let (connection, context) = bound.value
                connection.expire(frame, context: context)
            }
        }
        requests[frame.correlationID] = Running(task: task, timeout: timeout)
    }

    private func finish(_ request: Frame, answer: Frame?, context: ChannelHandlerContext) {
        guard request.kind == .request else {
            oneWays -= 1
            resumeReadingIfPossible(context)
            return
        }
        guard let running = requests.removeValue(forKey: request.correlationID) else {
            // Expired (already answered with deadline-exceeded) or the connection closed.
            return
        }
        running.timeout?.cancel()
        reply(context, checked(answer, for: request))
        resumeReadingIfPossible(context)
    }

    private func expire(_ request: Frame, context: ChannelHandlerContext) {
        guard let running = requests.removeValue(forKey: request.correlationID) else { return }
        running.task.cancel()
        let reason = "no answer within the request's deadline of \(request.deadlineMilliseconds) ms"
        logger.notice("request expired", metadata: ["type": "\(request.messageType)", "reason": "\(reason)"])
        reply(context, try? Frame.errorResponse(ErrorResponse(.deadlineExceeded, reason), to: request))
        resumeReadingIfPossible(context)
    }

    /// The handler's answer if it is one for `request` and fits the frame limit; otherwise an
    /// `internal` error response, with the fault logged here rather than sent to the peer.
    private func checked(_ reply: Frame?, for request: Frame) -> Frame? {
        let fault: String
        if let reply {
            let answers =
                (reply.kind == .response || reply.kind == .errorResponse)
                && reply.correlationID == request.correlationID
            if answers && reply.length <= configuration.frameLimits.maximumFrameLength { return reply }
            fault =
                answers
                ? "a \(reply.length)-byte answer exceeds the frame limit of \(configuration.frameLimits.maximumFrameLength)"
                : "the handler answered with a \(reply.kind) for correlation id \(reply.correlationID)"
        } else {
            fault = "the handler gave no answer to a request"
        }
        logger.error("request handler fault: \(fault)", metadata: ["type": "\(request.messageType)"])
        return try? Frame.errorResponse(
            ErrorResponse(.internal, "the node could not answer message type \(request.messageType)"), to: request)
    }

    private func reply(_ context: ChannelHandlerContext, _ frame: Frame?) {
        guard let frame, !closing else { return }
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }

    // MARK: backpressure

    func read(context: ChannelHandlerContext) {
        if inFlight >= configuration.maximumInFlightRequests || !context.channel.isWritable {
            readPending = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        resumeReadingIfPossible(context)
        context.fireChannelWritabilityChanged()
    }

    private func resumeReadingIfPossible(_ context: ChannelHandlerContext) {
        guard readPending, inFlight < configuration.maximumInFlightRequests, context.channel.isWritable else {
            return
        }
        readPending = false
        context.read()
    }

    // MARK: teardown

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if peer == nil {
            logger.warning("closing connection: TLS handshake failed", metadata: ["error": "\(error)"])
        } else {
            logger.warning("closing connection", metadata: ["error": "\(error)"])
        }
        close(context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closing = true
        handshakeTimeout?.cancel()
        for running in requests.values {
            running.timeout?.cancel()
            running.task.cancel()
        }
        requests = [:]
        context.fireChannelInactive()
    }

    private func close(_ context: ChannelHandlerContext) {
        guard !closing else { return }
        closing = true
        context.close(promise: nil)
    }
}
