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
///
/// At most ``TransportConfiguration/maximumConnections`` connections are open at once (one more
/// is closed at accept), each runs at most ``TransportConfiguration/maximumInFlightRequests``
/// frames at once (then its socket is not read), and one idle for
/// ``TransportConfiguration/idleTimeout`` is closed. The server can also start frames itself:
/// ``send(oneWay:to:)`` and ``request(_:to:deadline:)``.
public final class NodeServer: Sendable {
    private let configuration: TransportConfiguration
    private let policy: AuthorizationPolicy
    private let group: any EventLoopGroup
    private let logger: Logger
    private let handler: NodeRequestHandler
    private let sslContext: NIOSSLContext
    private let state = NIOLockedValueBox(State())

    /// One accepted connection: its channel, its handler (to push frames) and, once its
    /// certificate has been checked, who it is.
    private struct Tracked {
        let channel: any Channel
        let handler: NIOLoopBound<ServerConnectionHandler>
        var peer: PeerIdentity?
        /// When it was authenticated, in order: pushes prefer the newest connection of a peer.
        var authenticatedOrder = 0
    }

    private struct State {
        var listener: (any Channel)?
        var connections: [ObjectIdentifier: Tracked] = [:]
        var authentications = 0
        var stopped = false
    }

    /// Why a connection was closed as soon as it was accepted.
    private struct Refused: Error, CustomStringConvertible {
        let description: String
    }

    /// A server for `configuration`, enforcing `policy`, answering with `handler`.
    ///
    /// - Throws: ``TransportError/Code/configuration`` when the TLS context cannot be made (a key
    ///   that does not belong to the certificate) or a limit is out of range.
    public init(
        configuration: TransportConfiguration, policy: AuthorizationPolicy,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "quorum.transport.server"), handler: @escaping NodeRequestHandler
    ) throws(TransportError) {
        try configuration.checkLimits()
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

    /// The peers whose connections are open and authenticated, one entry per connection.
    public var connectedPeers: [PeerIdentity] {
        state.withLockedValue { state in
            state.connections.values.filter { $0.peer != nil }.sorted { $0.authenticatedOrder < $1.authenticatedOrder }
                .compactMap(\.peer)
        }
    }

    /// Open connections, authenticated or still in their handshake.
    public var connectionCount: Int { state.withLockedValue { $0.connections.count } }

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
                    guard let self else { throw Refused(description: "the server is gone") }
                    let remote = SecurePipeline.describe(channel.remoteAddress)
                    var connectionLogger = logger
                    connectionLogger[metadataKey: "peer"] = "\(remote)"
                    let verdict = PeerVerdict(nil)
                    let id = ObjectIdentifier(channel)
                    let connection = ServerConnectionHandler(
                        configuration: configuration, policy: policy, verdict: verdict, logger: connectionLogger,
                        handler: handler, eventLoop: channel.eventLoop,
                        authenticated: { [weak self] identity in self?.authenticated(id, as: identity) })
                    // Admission first: a refused connection costs no TLS state. Failing the
                    // initializer makes NIO close the accepted socket at once.
                    if let refusal = self.admit(
                        channel, handler: NIOLoopBound(connection, eventLoop: channel.eventLoop))
                    {
                        connectionLogger.warning("refusing connection: \(refusal)")
                        throw Refused(description: refusal)
                    }
                    let tls = try SecurePipeline.tlsHandler(
                        context: sslContext, isServer: true, serverHostname: nil, authenticator: authenticator,
                        verdict: verdict, remote: remote, logger: connectionLogger)
                    try SecurePipeline.configure(
                        channel, tls: tls, limits: configuration.frameLimits, logger: connectionLogger,
                        handler: connection)
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
            let taken = (state.listener, state.connections.values.map(\.channel))
            state.connections = [:]
            return taken
        }
        for connection in connections { connection.close(promise: nil) }
        try? await listener?.close()
    }

    // MARK: frames the server starts

    /// Sends `message` as a one-way frame on every open, authenticated connection from `peer`
    /// (a proxy holding a connection open to hear a node's news), and returns how many
    /// connections it was written to; 0 when the peer has none.
    public func send(oneWay message: some WireMessage, to peer: PeerIdentity) async -> Int {
        let frame = Frame.oneWay(message)
        guard frame.length <= configuration.frameLimits.maximumFrameLength else {
            logger.error(
                "not sending an oversized one-way frame",
                metadata: ["to": "\(peer)", "length": "\(frame.length)", "type": "\(frame.messageType)"])
            return 0
        }
        var written = 0
        for tracked in connections(of: peer) {
            let handler = tracked.handler
            let sent = tracked.channel.eventLoop.flatSubmit { handler.value.push(frame) }
            if (try? await sent.get()) != nil { written += 1 }
        }
        return written
    }

    /// Sends a request to `peer` on its newest open connection and waits for the answer, at most
    /// `deadline` (the configured default when nil). The peer's ``NodeConnection`` answers it with
    /// the `requestHandler` of its ``ServerFrames``, or `unknown-message-type` if it has none.
    ///
    /// - Throws: ``TransportError`` with ``TransportError/Code/connectionClosed`` when `peer` has
    ///   no open connection or it closes first, ``TransportError/Code/deadlineExceeded``,
    ///   ``TransportError/Code/refusedByPeer``, ``TransportError/Code/overloaded`` (the in-flight
    ///   limit of server requests is reached) or ``TransportError/Code/frameTooLarge``.
    public func request(
        messageType: UInt16, payload: [UInt8], to peer: PeerIdentity, deadline: Duration? = nil
    ) async throws(TransportError) -> Frame {
        let length = Frame.headerLength + payload.count
        guard length <= configuration.frameLimits.maximumFrameLength else {
            throw TransportError(
                .frameTooLarge, peer: "\(peer)",
                "a request of type \(messageType) would be \(length) bytes; the frame limit is \(configuration.frameLimits.maximumFrameLength)"
            )
        }
        guard let tracked = connections(of: peer).last else {
            throw TransportError(.connectionClosed, peer: "\(peer)", "has no open connection to this listener")
        }
        let deadline = deadline ?? configuration.defaultRequestDeadline
        let handler = tracked.handler
        let future = tracked.channel.eventLoop.flatSubmit {
            handler.value.request(messageType: messageType, payload: payload, deadline: deadline)
        }
        do {
            return try await future.get()
        } catch let error as TransportError {
            throw error
        } catch {
            throw TransportError(.connectionClosed, peer: "\(peer)", "\(error)")
        }
    }

    /// Sends `message` as a request to `peer`; see ``request(messageType:payload:to:deadline:)``.
    public func request(
        _ message: some WireMessage, to peer: PeerIdentity, deadline: Duration? = nil
    ) async throws(TransportError) -> Frame {
        try await request(
            messageType: type(of: message).type, payload: message.encodedPayload(), to: peer, deadline: deadline)
    }

    /// `peer`'s authenticated connections, oldest first.
    private func connections(of peer: PeerIdentity) -> [Tracked] {
        state.withLockedValue { state in
            state.connections.values.filter { $0.peer == peer }.sorted { $0.authenticatedOrder < $1.authenticatedOrder }
        }
    }

    // MARK: bookkeeping

    /// Records an accepted connection, or says why it may not stay open (the server stopped, or
    /// ``TransportConfiguration/maximumConnections`` are open already).
    private func admit(_ channel: any Channel, handler: NIOLoopBound<ServerConnectionHandler>) -> String? {
        let id = ObjectIdentifier(channel)
        let limit = configuration.maximumConnections
        let refusal: String? = state.withLockedValue { state in
            if state.stopped { return "the server is stopping" }
            guard state.connections.count < limit else {
                return "\(state.connections.count) connections are open; the limit is \(limit) (maximumConnections)"
            }
            state.connections[id] = Tracked(channel: channel, handler: handler)
            return nil
        }
        guard refusal == nil else { return refusal }
        channel.closeFuture.whenComplete { [weak self] _ in
            _ = self?.state.withLockedValue { $0.connections.removeValue(forKey: id) }
        }
        return nil
    }

    private func authenticated(_ id: ObjectIdentifier, as identity: PeerIdentity) {
        state.withLockedValue { state in
            guard state.connections[id] != nil else { return }
            state.authentications += 1
            state.connections[id]?.peer = identity
            state.connections[id]?.authenticatedOrder = state.authentications
        }
    }
}

/// One server connection on its event loop: waits for the handshake's verdict, checks each
/// frame's authorization, runs requests concurrently up to the in-flight limit (frames beyond it
/// wait, and the socket is not read again until they have started), enforces deadlines, closes
/// the connection when it has been idle too long, and carries the requests and one-way frames
/// the server starts itself.
final class ServerConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = Frame
    typealias OutboundIn = Frame
    typealias OutboundOut = Frame

    private struct Running {
        let task: Task<Void, Never>
        let timeout: Scheduled<Void>?
    }

    /// A request this server sent to the peer, until answered or expired.
    private struct Outgoing {
        let promise: EventLoopPromise<Frame>
        let timeout: Scheduled<Void>
        let messageType: UInt16
    }

    private let configuration: TransportConfiguration
    private let policy: AuthorizationPolicy
    private let verdict: PeerVerdict
    private var logger: Logger
    private let handler: NodeRequestHandler
    private let authenticated: (PeerIdentity) -> Void
    private let eventLoop: any EventLoop

    private var context: ChannelHandlerContext?
    private var peer: PeerIdentity?
    private var handshakeTimeout: Scheduled<Void>?
    /// Requests by correlation id, until answered or expired.
    private var requests: [UInt64: Running] = [:]
    /// One-way frames being handled (they count against the in-flight limit too).
    private var oneWays = 0
    /// Frames read while the in-flight limit was reached, with when they were read. The socket is
    /// not read again until this is empty, so it holds at most one read's worth of frames.
    private var waiting = CircularBuffer<(frame: Frame, readAt: NIODeadline)>()
    private var readPending = false
    private var closing = false

    /// Requests the server sent, by correlation id; `nextOutgoingID` is the next id to use, so a
    /// response with a smaller id answers one that has expired.
    private var outgoing: [UInt64: Outgoing] = [:]
    private var nextOutgoingID: UInt64 = 1

    /// When a frame last went either way; the idle timer closes the connection after
    /// ``TransportConfiguration/idleTimeout`` without one.
    private var lastActivity = NIODeadline.now()
    private var idleCheck: Scheduled<Void>?

    init(
        configuration: TransportConfiguration, policy: AuthorizationPolicy, verdict: PeerVerdict, logger: Logger,
        handler: @escaping NodeRequestHandler, eventLoop: any EventLoop,
        authenticated: @escaping (PeerIdentity) -> Void = { _ in }
    ) {
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.policy = policy
        self.verdict = verdict
        self.logger = logger
        self.handler = handler
        self.authenticated = authenticated
    }

    private var inFlight: Int { requests.count + oneWays }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

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
        lastActivity = .now()
        scheduleIdleCheck(context, at: lastActivity)
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
            authenticated(identity)
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
        let now = NIODeadline.now()
        lastActivity = now
        guard let peer else {
            logger.warning("closing connection: frame before the peer was authenticated")
            close(context)
            return
        }
        switch frame.kind {
        case .response, .errorResponse:
            answered(frame, context: context)
        case .request, .oneWay:
            if inFlight >= configuration.maximumInFlightRequests || !waiting.isEmpty {
                waiting.append((frame, now))
            } else {
                admit(frame, from: peer, readAt: now, context: context)
            }
        }
    }

    /// Checks `frame`'s authorization and starts it, or answers why not.
    private func admit(_ frame: Frame, from peer: PeerIdentity, readAt: NIODeadline, context: ChannelHandlerContext) {
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
        var remaining: TimeAmount?
        if let deadline = frame.deadline {
            // Counted from when the frame was read, not from when a slot freed up for it.
            remaining = readAt + TimeAmount(deadline) - .now()
            if let left = remaining, left <= .zero {
                expired(frame, context: context)
                return
            }
        }
        start(frame, from: peer, timeout: remaining, context: context)
    }

    private func start(
        _ frame: Frame, from peer: PeerIdentity, timeout remaining: TimeAmount?, context: ChannelHandlerContext
    ) {
        let handler = handler
        let logger = logger
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let task = Task {
            let reply = await RequestAnswer.run(handler, peer: peer, frame: frame, logger: logger)
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
        if let remaining {
            timeout = eventLoop.scheduleTask(in: remaining) {
                let (connection, context) = bound.value
                connection.expire(frame, context: context)
            }
        }
        requests[frame.correlationID] = Running(task: task, timeout: timeout)
    }

    private func finish(_ request: Frame, answer: Frame?, context: ChannelHandlerContext) {
        guard request.kind == .request else {
            oneWays -= 1
            slotFreed(context)
            return
        }
        guard let running = requests.removeValue(forKey: request.correlationID) else {
            // Expired (already answered with deadline-exceeded) or the connection closed.
            return
        }
        running.timeout?.cancel()
        reply(context, RequestAnswer.checked(answer, for: request, limits: configuration.frameLimits, logger: logger))
        slotFreed(context)
    }

    private func expire(_ request: Frame, context: ChannelHandlerContext) {
        guard let running = requests.removeValue(forKey: request.correlationID) else { return }
        running.task.cancel()
        expired(request, context: context)
        slotFreed(context)
    }

    private func expired(_ request: Frame, context: ChannelHandlerContext) {
        let reason = "no answer within the request's deadline of \(request.deadlineMilliseconds) ms"
        logger.notice("request expired", metadata: ["type": "\(request.messageType)", "reason": "\(reason)"])
        reply(context, try? Frame.errorResponse(ErrorResponse(.deadlineExceeded, reason), to: request))
    }

    private func reply(_ context: ChannelHandlerContext, _ frame: Frame?) {
        guard let frame, !closing else { return }
        lastActivity = .now()
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }

    // MARK: backpressure

    func read(context: ChannelHandlerContext) {
        if inFlight >= configuration.maximumInFlightRequests || !waiting.isEmpty || !context.channel.isWritable {
            readPending = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        resumeReadingIfPossible(context)
        context.fireChannelWritabilityChanged()
    }

    /// Starts waiting frames while there is room, then reads again once none wait.
    private func slotFreed(_ context: ChannelHandlerContext) {
        while !closing, inFlight < configuration.maximumInFlightRequests, let peer, let next = waiting.popFirst() {
            admit(next.frame, from: peer, readAt: next.readAt, context: context)
        }
        resumeReadingIfPossible(context)
    }

    private func resumeReadingIfPossible(_ context: ChannelHandlerContext) {
        guard readPending, waiting.isEmpty, inFlight < configuration.maximumInFlightRequests,
            context.channel.isWritable
        else {
            return
        }
        readPending = false
        context.read()
    }

    // MARK: idle connections

    private func scheduleIdleCheck(_ context: ChannelHandlerContext, at from: NIODeadline) {
        guard let idle = configuration.idleTimeout else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleCheck = context.eventLoop.scheduleTask(deadline: from + TimeAmount(idle)) {
            let (connection, context) = bound.value
            connection.checkIdle(context)
        }
    }

    /// Closes the connection if no frame has gone either way for the idle timeout and nothing is
    /// running on it (a request whose handler takes longer is not idleness); otherwise looks again
    /// when the timeout would next run out.
    private func checkIdle(_ context: ChannelHandlerContext) {
        guard !closing, let idle = configuration.idleTimeout else { return }
        let now = NIODeadline.now()
        if inFlight > 0 || !outgoing.isEmpty || !waiting.isEmpty {
            lastActivity = now
        }
        guard now - lastActivity >= TimeAmount(idle) else {
            scheduleIdleCheck(context, at: lastActivity)
            return
        }
        logger.notice(
            "closing connection: idle",
            metadata: ["reason": "no frame either way for \(idle) (idleTimeout)"])
        close(context)
    }

    // MARK: frames the server starts

    /// Writes a one-way frame to the peer, once it is authenticated.
    func push(_ frame: Frame) -> EventLoopFuture<Void> {
        guard let context, !closing, peer != nil else {
            return closedFuture(TransportError(.connectionClosed, peer: describePeer, "the connection is not open"))
        }
        lastActivity = .now()
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(frame), promise: promise)
        return promise.futureResult
    }

    /// Sends a request to the peer and returns its answer, failing at `deadline`.
    func request(messageType: UInt16, payload: [UInt8], deadline: Duration) -> EventLoopFuture<Frame> {
        guard let context, !closing, peer != nil else {
            return closedFuture(TransportError(.connectionClosed, peer: describePeer, "the connection is not open"))
        }
        guard outgoing.count < configuration.maximumInFlightRequests else {
            return closedFuture(
                TransportError(
                    .overloaded, peer: describePeer,
                    "\(outgoing.count) server requests are in flight on this connection; the limit is \(configuration.maximumInFlightRequests)"
                ))
        }
        let id = nextOutgoingID
        nextOutgoingID += 1
        let frame: Frame
        do {
            frame = try Frame(
                kind: .request, messageType: messageType, correlationID: id,
                deadlineMilliseconds: RequestAnswer.milliseconds(deadline), payload: payload)
        } catch {
            return closedFuture(TransportError(.frameTooLarge, peer: describePeer, "\(error)"))
        }
        let promise = context.eventLoop.makePromise(of: Frame.self)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let peerName = describePeer
        let timeout = context.eventLoop.scheduleTask(in: TimeAmount(deadline)) {
            guard let entry = bound.value.outgoing.removeValue(forKey: id) else { return }
            entry.promise.fail(
                TransportError(
                    .deadlineExceeded, peer: peerName,
                    "server request \(id) (message type \(messageType)) had no answer within \(deadline)"))
        }
        outgoing[id] = Outgoing(promise: promise, timeout: timeout, messageType: messageType)
        lastActivity = .now()
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        return promise.futureResult
    }

    /// A response or error response from the peer: the answer to one of the server's requests,
    /// a late one (dropped), or a protocol violation (the connection is closed).
    private func answered(_ frame: Frame, context: ChannelHandlerContext) {
        guard let entry = outgoing.removeValue(forKey: frame.correlationID) else {
            if frame.correlationID < nextOutgoingID {
                logger.debug(
                    "dropping a late answer to a server request",
                    metadata: ["correlation": "\(frame.correlationID)", "type": "\(frame.messageType)"])
                return
            }
            logger.warning(
                "closing connection: unsolicited \(frame.kind) (correlation id \(frame.correlationID)); no server request has that id"
            )
            close(context)
            return
        }
        entry.timeout.cancel()
        entry.promise.completeWith(RequestAnswer.result(of: frame, peer: describePeer))
    }

    private var describePeer: String { peer.map { "\($0)" } ?? "an unauthenticated peer" }

    private func closedFuture<T>(_ error: TransportError) -> EventLoopFuture<T> {
        eventLoop.makeFailedFuture(error)
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
        idleCheck?.cancel()
        for running in requests.values {
            running.timeout?.cancel()
            running.task.cancel()
        }
        requests = [:]
        waiting.removeAll()
        let pending = outgoing
        outgoing = [:]
        for (id, entry) in pending {
            entry.timeout.cancel()
            entry.promise.fail(
                TransportError(
                    .connectionClosed, peer: describePeer,
                    "server request \(id) (message type \(entry.messageType)) unanswered: the connection closed"))
        }
        context.fireChannelInactive()
    }

    private func close(_ context: ChannelHandlerContext) {
        guard !closing else { return }
        closing = true
        context.close(promise: nil)
    }
}

/// Running a request handler and turning its outcome into an answer, the same on both ends of a
/// connection (a node answering a peer, a client answering its server).
enum RequestAnswer {
    /// The handler's answer to `frame`: a thrown ``WireError`` becomes `malformed-request` (or
    /// `unknown-message-type`), any other error `internal` with the details logged here.
    static func run(
        _ handler: NodeRequestHandler, peer: PeerIdentity, frame: Frame, logger: Logger
    ) async -> Frame? {
        do {
            return try await handler(peer, frame)
        } catch let error as WireError {
            return try? Frame.errorResponse(ErrorResponse(refusing: error), to: frame)
        } catch {
            if !(error is CancellationError) {
                logger.error(
                    "request handler failed",
                    metadata: ["type": "\(frame.messageType)", "error": "\(String(reflecting: error))"])
            }
            return try? Frame.errorResponse(
                ErrorResponse(.internal, "could not answer message type \(frame.messageType)"), to: frame)
        }
    }

    /// The handler's answer if it is one for `request` and fits the frame limit; otherwise an
    /// `internal` error response, with the fault logged here rather than sent to the peer.
    static func checked(_ reply: Frame?, for request: Frame, limits: FrameLimits, logger: Logger) -> Frame? {
        let fault: String
        if let reply {
            let answers =
                (reply.kind == .response || reply.kind == .errorResponse)
                && reply.correlationID == request.correlationID
            if answers && reply.length <= limits.maximumFrameLength { return reply }
            fault =
                answers
                ? "a \(reply.length)-byte answer exceeds the frame limit of \(limits.maximumFrameLength)"
                : "the handler answered with a \(reply.kind) for correlation id \(reply.correlationID)"
        } else {
            fault = "the handler gave no answer to a request"
        }
        logger.error("request handler fault: \(fault)", metadata: ["type": "\(request.messageType)"])
        return try? Frame.errorResponse(
            ErrorResponse(.internal, "could not answer message type \(request.messageType)"), to: request)
    }

    /// `duration` in whole milliseconds for a frame's deadline field: at least 1 (0 means none),
    /// at most `UInt32.max`.
    static func milliseconds(_ duration: Duration) -> UInt32 {
        let (seconds, attoseconds) = duration.components
        let milliseconds = seconds.multipliedReportingOverflow(by: 1000)
        guard !milliseconds.overflow else { return .max }
        return UInt32(clamping: max(1, milliseconds.partialValue + attoseconds / 1_000_000_000_000_000))
    }

    /// A response frame as the requester's result: the frame, or a ``TransportError`` carrying the
    /// peer's ``ErrorResponse`` (`deadline-exceeded` from the peer is the requester's own
    /// ``TransportError/Code/deadlineExceeded``).
    static func result(of frame: Frame, peer: String) -> Result<Frame, any Error> {
        if frame.kind == .response { return .success(frame) }
        let response = try? frame.errorResponse()
        let code: TransportError.Code = response?.code == .deadlineExceeded ? .deadlineExceeded : .refusedByPeer
        return .failure(
            TransportError(
                code, peer: peer, response.map { "\($0)" } ?? "an error response that does not decode",
                response: response))
    }
}
