import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import QuorumIdentity
import QuorumProtocol
import X509

/// Dials peers over mutual TLS 1.3: presents this process's certificate, and accepts the peer
/// only if its certificate passes ``ClusterIdentity`` as a server and names exactly the identity
/// dialled (dialling node 3 and reaching a certificate for node 2 is refused in the handshake).
public struct NodeClient: Sendable {
    private let configuration: TransportConfiguration
    private let group: any EventLoopGroup
    private let logger: Logger
    private let sslContext: NIOSSLContext

    /// A client for `configuration`.
    ///
    /// - Throws: ``TransportError/Code/configuration`` when the TLS context cannot be made.
    public init(
        configuration: TransportConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "quorum.transport.client")
    ) throws(TransportError) {
        try configuration.checkLimits()
        self.configuration = configuration
        self.group = eventLoopGroup
        var logger = logger
        logger[metadataKey: "self"] = "\(configuration.identity)"
        self.logger = logger
        do {
            sslContext = try NIOSSLContext(configuration: configuration.tlsConfiguration(server: false))
        } catch {
            throw TransportError(
                .configuration, peer: "\(configuration.identity)", "cannot make the TLS client context (\(error))")
        }
    }

    /// Connects to `expected` at `host`:`port` and completes the handshake, certificate checks
    /// included, within the configured connect and handshake timeouts.
    ///
    /// - Throws: ``TransportError`` with ``TransportError/Code/identityMismatch`` when the peer is
    ///   someone else, ``TransportError/Code/untrustedPeer`` when its certificate is refused, or
    ///   ``TransportError/Code/connectFailed``. A server refusing *our* certificate shows up in
    ///   TLS 1.3 only after the handshake, as the first request failing with
    ///   ``TransportError/Code/connectionClosed``.
    ///
    /// `serverFrames` says what the connection does with frames the server starts: the default
    /// ignores one-way frames and answers requests `unknown-message-type`.
    public func connect(
        host: String, port: Int, expecting expected: PeerIdentity, serverFrames: ServerFrames = .ignored
    ) async throws(TransportError)
        -> NodeConnection
    {
        let target = "\(expected) at \(host):\(port)"
        var logger = logger
        logger[metadataKey: "peer"] = "\(target)"
        let authenticator = PeerAuthenticator(
            clusterCA: configuration.clusterCA, expectation: .exactly(expected), peerUsage: .server,
            now: configuration.now)
        let configuration = configuration
        let sslContext = sslContext
        let connectionLogger = logger
        // SNI only carries names, never addresses.
        let hostname = host.contains(where: { $0 == ":" }) || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(TimeAmount(configuration.connectTimeout))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
        let (oneWayFrames, oneWayContinuation) = AsyncStream.makeStream(
            of: Frame.self, bufferingPolicy: .bufferingOldest(max(1, serverFrames.bufferedOneWayFrames)))
        if serverFrames.bufferedOneWayFrames == 0 { oneWayContinuation.finish() }
        let dropped = NIOLockedValueBox(0)
        let channel: any Channel
        let handler: NIOLoopBound<ClientConnectionHandler>
        let handshake: EventLoopFuture<PeerIdentity>
        do {
            (channel, handler, handshake) = try await bootstrap.connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let verdict = PeerVerdict(nil)
                    let tls = try SecurePipeline.tlsHandler(
                        context: sslContext, isServer: false, serverHostname: hostname,
                        authenticator: authenticator, verdict: verdict, remote: target, logger: connectionLogger)
                    let promise = channel.eventLoop.makePromise(of: PeerIdentity.self)
                    let connection = ClientConnectionHandler(
                        configuration: configuration, verdict: verdict, handshake: promise, target: target,
                        logger: connectionLogger, serverFrames: serverFrames, oneWayFrames: oneWayContinuation,
                        dropped: dropped)
                    try SecurePipeline.configure(
                        channel, tls: tls, limits: configuration.frameLimits, logger: connectionLogger,
                        handler: connection)
                    return (channel, NIOLoopBound(connection, eventLoop: channel.eventLoop), promise.futureResult)
                }
            }
        } catch {
            oneWayContinuation.finish()
            throw TransportError(.connectFailed, peer: target, "cannot connect (\(error))")
        }
        let identity: PeerIdentity
        do {
            identity = try await handshake.get()
        } catch let error as TransportError {
            channel.close(promise: nil)
            throw error
        } catch {
            channel.close(promise: nil)
            throw TransportError(.connectFailed, peer: target, "TLS handshake failed (\(error))")
        }
        return NodeConnection(
            peer: identity, target: target, channel: channel, handler: handler,
            defaultDeadline: configuration.defaultRequestDeadline, limits: configuration.frameLimits,
            oneWayFrames: oneWayFrames, dropped: dropped)
    }

    /// Connects like ``connect(host:port:expecting:)``, retrying failed attempts after the delays
    /// `backoff` gives until it gives up.
    ///
    /// A peer that turns out to be someone else, or whose certificate is refused, is not retried:
    /// waiting does not change a certificate. `sleep` is `Task.sleep` unless a test passes a fake.
    public func connect(
        host: String, port: Int, expecting expected: PeerIdentity, backoff: ReconnectBackoff,
        serverFrames: ServerFrames = .ignored,
        sleep: @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }
    ) async throws(TransportError) -> NodeConnection {
        var backoff = backoff
        while true {
            do {
                return try await connect(host: host, port: port, expecting: expected, serverFrames: serverFrames)
            } catch {
                guard error.code == .connectFailed, let delay = backoff.nextDelay() else { throw error }
                logger.info(
                    "connect failed; retrying",
                    metadata: ["peer": "\(expected) at \(host):\(port)", "delay": "\(delay)", "error": "\(error)"])
                do { try await sleep(delay) } catch {
                    throw TransportError(.connectFailed, peer: "\(expected) at \(host):\(port)", "retry cancelled")
                }
            }
        }
    }
}

/// An authenticated connection to one peer: requests with correlation ids and deadlines, and
/// whatever the peer starts itself (``ServerFrames``).
///
/// Safe to use from many tasks at once; every request is answered by its own response however
/// the peer orders them.
public final class NodeConnection: Sendable {
    /// The identity the peer's certificate proved.
    public let peer: PeerIdentity
    /// `node 3 at 127.0.0.1:7100`, for logs and errors.
    public let target: String
    let channel: any Channel
    private let handler: NIOLoopBound<ClientConnectionHandler>
    private let defaultDeadline: Duration
    private let limits: FrameLimits
    private let dropped: NIOLockedValueBox<Int>

    /// The one-way frames the peer sends, in order, buffered as the connection's ``ServerFrames``
    /// say (nothing, and finished at once, by default). The stream finishes when the connection
    /// closes; iterate it from one task.
    public let oneWayFrames: AsyncStream<Frame>

    /// One-way frames dropped because ``oneWayFrames`` was full (``ServerFrames/Overflow/dropNewest``).
    public var droppedOneWayFrames: Int { dropped.withLockedValue { $0 } }

    init(
        peer: PeerIdentity, target: String, channel: any Channel, handler: NIOLoopBound<ClientConnectionHandler>,
        defaultDeadline: Duration, limits: FrameLimits, oneWayFrames: AsyncStream<Frame>,
        dropped: NIOLockedValueBox<Int>
    ) {
        self.oneWayFrames = oneWayFrames
        self.dropped = dropped
        self.peer = peer
        self.target = target
        self.channel = channel
        self.handler = handler
        self.defaultDeadline = defaultDeadline
        self.limits = limits
    }

    /// Whether the connection is still open.
    public var isActive: Bool { channel.isActive }

    /// The leaf certificate the peer presented, already verified in the handshake (it proved
    /// ``peer``), or nil once the connection is gone: for tools that report what a peer presents,
    /// such as its expiry in `quorumctl doctor`.
    public func peerCertificate() async -> Certificate? {
        guard let presented = try? await channel.nioSSL_peerCertificate().get(),
            let der = try? presented.toDERBytes()
        else { return nil }
        return try? Certificate(derEncoded: der)
    }

    /// Sends a request and waits for its response, at most `deadline` (the configured default
    /// when nil). The deadline travels in the frame so the peer can give up too.
    ///
    /// - Throws: ``TransportError`` with ``TransportError/Code/deadlineExceeded`` (a response
    ///   arriving later is dropped), ``TransportError/Code/refusedByPeer`` carrying the peer's
    ///   ``ErrorResponse``, ``TransportError/Code/connectionClosed``,
    ///   ``TransportError/Code/overloaded`` or ``TransportError/Code/frameTooLarge``.
    public func request(
        messageType: UInt16, payload: [UInt8], deadline: Duration? = nil
    ) async throws(TransportError)
        -> Frame
    {
        let length = Frame.headerLength + payload.count
        guard length <= limits.maximumFrameLength else {
            throw TransportError(
                .frameTooLarge, peer: target,
                "a request of type \(messageType) would be \(length) bytes; the frame limit is \(limits.maximumFrameLength)"
            )
        }
        let deadline = deadline ?? defaultDeadline
        let handler = handler
        let future = channel.eventLoop.flatSubmit {
            handler.value.enqueue(messageType: messageType, payload: payload, deadline: deadline)
        }
        do {
            return try await future.get()
        } catch let error as TransportError {
            throw error
        } catch {
            throw TransportError(.connectionClosed, peer: target, "\(error)")
        }
    }

    /// Sends `message` as a request; see ``request(messageType:payload:deadline:)``.
    public func request(_ message: some WireMessage, deadline: Duration? = nil) async throws(TransportError) -> Frame {
        try await request(messageType: type(of: message).type, payload: message.encodedPayload(), deadline: deadline)
    }

    /// Sends `message` as a one-way frame, returning once it is written.
    public func send(oneWay message: some WireMessage) async throws(TransportError) {
        let frame = Frame.oneWay(message)
        guard frame.length <= limits.maximumFrameLength else {
            throw TransportError(
                .frameTooLarge, peer: target,
                "a one-way frame of \(frame.length) bytes exceeds the frame limit of \(limits.maximumFrameLength)")
        }
        do { try await channel.writeAndFlush(frame) } catch {
            throw TransportError(.connectionClosed, peer: target, "\(error)")
        }
    }

    /// Closes the connection; requests still waiting fail with ``TransportError/Code/connectionClosed``.
    public func close() async {
        try? await channel.close()
    }

    /// Writes `bytes` below the frame encoder, as they are: tests use it to send frames the
    /// encoder would never produce.
    func writeRaw(_ bytes: [UInt8]) async throws {
        let channel = channel
        try await channel.eventLoop.flatSubmit {
            do {
                let context = try channel.pipeline.syncOperations.context(handlerType: FrameOutboundEncoder.self)
                var buffer = channel.allocator.buffer(capacity: bytes.count)
                buffer.writeBytes(bytes)
                return context.writeAndFlush(NIOAny(buffer))
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
        }.get()
    }
}

/// One client connection on its event loop: finishes the handshake, then assigns correlation ids,
/// keeps at most the configured number of requests in flight (queueing the rest, and holding the
/// queue while the socket is not writable), and matches responses to requests. Frames the server
/// starts go where the connection's ``ServerFrames`` say.
final class ClientConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = Frame
    typealias OutboundIn = Frame
    typealias OutboundOut = Frame

    private struct Entry {
        let promise: EventLoopPromise<Frame>
        let timeout: Scheduled<Void>
        let messageType: UInt16
        let payload: [UInt8]
        let expiresAt: NIODeadline
        var sent: Bool
    }

    private let configuration: TransportConfiguration
    private let verdict: PeerVerdict
    private var handshake: EventLoopPromise<PeerIdentity>?
    private let target: String
    private let logger: Logger
    private let eventLoop: any EventLoop
    private var context: ChannelHandlerContext?
    private var handshakeTimeout: Scheduled<Void>?

    private var entries: [UInt64: Entry] = [:]
    private var queue = CircularBuffer<UInt64>()
    private var inFlight = 0
    private var nextCorrelationID: UInt64 = 1
    /// Why the connection ended, once it has: the first error seen, or the peer closing it.
    private var closedReason: String?

    private let serverFrames: ServerFrames
    private let oneWayFrames: AsyncStream<Frame>.Continuation
    private let dropped: NIOLockedValueBox<Int>
    /// The identity the server's certificate proved, once the handshake has completed.
    private var peer: PeerIdentity?
    /// The server's requests being answered, by its correlation ids.
    private var serverRequests: [UInt64: (task: Task<Void, Never>, timeout: Scheduled<Void>?)] = [:]

    init(
        configuration: TransportConfiguration, verdict: PeerVerdict, handshake: EventLoopPromise<PeerIdentity>,
        target: String, logger: Logger, serverFrames: ServerFrames = .ignored,
        oneWayFrames: AsyncStream<Frame>.Continuation, dropped: NIOLockedValueBox<Int>
    ) {
        self.serverFrames = serverFrames
        self.oneWayFrames = oneWayFrames
        self.dropped = dropped
        self.configuration = configuration
        self.verdict = verdict
        self.handshake = handshake
        self.eventLoop = handshake.futureResult.eventLoop
        self.target = target
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let timeout = configuration.handshakeTimeout
        handshakeTimeout = context.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            bound.value.failHandshake(
                TransportError(
                    .connectFailed, peer: bound.value.target, "TLS handshake not completed within \(timeout)"))
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
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
            handshake?.succeed(identity)
            handshake = nil
        case .failure(let error)?:
            failHandshake(error)
        case nil:
            failHandshake(
                TransportError(.untrustedPeer, peer: target, "handshake completed without a certificate check"))
        }
    }

    private func failHandshake(_ error: TransportError) {
        guard let promise = handshake else { return }
        handshake = nil
        promise.fail(error)
        context?.close(promise: nil)
    }

    // MARK: requests

    func enqueue(messageType: UInt16, payload: [UInt8], deadline: Duration) -> EventLoopFuture<Frame> {
        guard let context else {
            return failed(TransportError(.connectionClosed, peer: target, closedReason ?? "the connection is closed"))
        }
        if let closedReason {
            return failed(TransportError(.connectionClosed, peer: target, closedReason))
        }
        guard queue.count < configuration.maximumQueuedRequests else {
            return failed(
                TransportError(
                    .overloaded, peer: target,
                    "\(inFlight) requests in flight and \(queue.count) queued on this connection; the queue limit is \(configuration.maximumQueuedRequests)"
                ))
        }
        let id = nextCorrelationID
        nextCorrelationID &+= 1
        if nextCorrelationID == 0 { nextCorrelationID = 1 }
        let promise = context.eventLoop.makePromise(of: Frame.self)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let timeout = context.eventLoop.scheduleTask(in: TimeAmount(deadline)) {
            bound.value.expire(id, after: deadline)
        }
        entries[id] = Entry(
            promise: promise, timeout: timeout, messageType: messageType, payload: payload,
            expiresAt: .now() + TimeAmount(deadline), sent: false)
        queue.append(id)
        pump()
        return promise.futureResult
    }

    private func failed(_ error: TransportError) -> EventLoopFuture<Frame> {
        eventLoop.makeFailedFuture(error)
    }

    /// Sends queued requests while the in-flight limit and the socket's writability allow.
    private func pump() {
        guard let context else { return }
        var wrote = false
        while inFlight < configuration.maximumInFlightRequests, context.channel.isWritable,
            let id = queue.popFirst()
        {
            guard var entry = entries[id] else { continue }  // expired while queued
            let remaining = (entry.expiresAt - .now()).nanoseconds / 1_000_000
            let milliseconds = UInt32(clamping: max(1, remaining))
            let frame: Frame
            do {
                frame = try Frame(
                    kind: .request, messageType: entry.messageType, correlationID: id,
                    deadlineMilliseconds: milliseconds, payload: entry.payload)
            } catch {
                entries[id] = nil
                entry.timeout.cancel()
                entry.promise.fail(TransportError(.frameTooLarge, peer: target, "\(error)"))
                continue
            }
            entry.sent = true
            entries[id] = Entry(
                promise: entry.promise, timeout: entry.timeout, messageType: entry.messageType, payload: [],
                expiresAt: entry.expiresAt, sent: true)
            inFlight += 1
            context.write(wrapOutboundOut(frame), promise: nil)
            wrote = true
        }
        if wrote { context.flush() }
    }

    private func expire(_ id: UInt64, after deadline: Duration) {
        guard let entry = entries.removeValue(forKey: id) else { return }
        if entry.sent { inFlight -= 1 }
        entry.promise.fail(
            TransportError(
                .deadlineExceeded, peer: target,
                "request \(id) (message type \(entry.messageType)) had no answer within \(deadline)"))
        pump()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.kind {
        case .response, .errorResponse:
            guard let entry = entries[frame.correlationID], entry.sent else {
                logger.debug(
                    "dropping a response no request is waiting for (late or unknown)",
                    metadata: ["correlation": "\(frame.correlationID)", "type": "\(frame.messageType)"])
                return
            }
            entries[frame.correlationID] = nil
            inFlight -= 1
            entry.timeout.cancel()
            // An error response of deadline-exceeded is the same failure as our own timer.
            entry.promise.completeWith(RequestAnswer.result(of: frame, peer: target))
            pump()
        case .oneWay:
            received(oneWay: frame, context: context)
        case .request:
            serverRequest(frame, context: context)
        }
    }

    // MARK: frames the server starts

    private func received(oneWay frame: Frame, context: ChannelHandlerContext) {
        guard serverFrames.bufferedOneWayFrames > 0 else {
            logger.debug("ignoring a one-way frame", metadata: ["type": "\(frame.messageType)"])
            return
        }
        // Enqueued, or terminated (the connection is closing, or the consumer stopped listening).
        guard case .dropped = oneWayFrames.yield(frame) else { return }
        let buffered = serverFrames.bufferedOneWayFrames
        switch serverFrames.overflow {
        case .dropNewest:
            let total = dropped.withLockedValue { count in
                count += 1
                return count
            }
            logger.warning(
                "dropping a one-way frame: the buffer of \(buffered) frames is full",
                metadata: ["type": "\(frame.messageType)", "dropped": "\(total)"])
        case .closeConnection:
            let reason = "the buffer of \(buffered) one-way frames is full; the consumer is not keeping up"
            logger.warning("closing connection: \(reason)", metadata: ["type": "\(frame.messageType)"])
            closedReason = closedReason ?? reason
            context.close(promise: nil)
        }
    }

    /// Answers a request the server sent, with the ``ServerFrames/requestHandler`` or, without one,
    /// `unknown-message-type`.
    private func serverRequest(_ frame: Frame, context: ChannelHandlerContext) {
        guard let handler = serverFrames.requestHandler, let peer else {
            answer(
                context,
                try? Frame.errorResponse(
                    ErrorResponse(
                        .unknownMessageType, "this client answers no requests (message type \(frame.messageType))"),
                    to: frame))
            return
        }
        guard serverRequests[frame.correlationID] == nil else {
            let reason = "correlation id \(frame.correlationID) is already in flight on this connection"
            logger.notice("refused server request: \(reason)")
            answer(context, try? Frame.errorResponse(ErrorResponse(.malformedRequest, reason), to: frame))
            return
        }
        guard serverRequests.count < configuration.maximumInFlightRequests else {
            let reason =
                "\(serverRequests.count) server requests are running on this client; the limit is \(configuration.maximumInFlightRequests)"
            logger.notice("refused server request: \(reason)")
            answer(context, try? Frame.errorResponse(ErrorResponse(.unavailable, reason), to: frame))
            return
        }
        let logger = logger
        let limits = configuration.frameLimits
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let task = Task {
            let reply = await RequestAnswer.run(handler, peer: peer, frame: frame, logger: logger)
            eventLoop.execute {
                let (connection, context) = bound.value
                guard let running = connection.serverRequests.removeValue(forKey: frame.correlationID) else {
                    return  // expired, or the connection closed
                }
                running.timeout?.cancel()
                connection.answer(context, RequestAnswer.checked(reply, for: frame, limits: limits, logger: logger))
            }
        }
        var timeout: Scheduled<Void>?
        if let deadline = frame.deadline {
            timeout = eventLoop.scheduleTask(in: TimeAmount(deadline)) {
                let (connection, context) = bound.value
                guard let running = connection.serverRequests.removeValue(forKey: frame.correlationID) else { return }
                running.task.cancel()
                let reason = "no answer within the request's deadline of \(frame.deadlineMilliseconds) ms"
                logger.notice("server request expired", metadata: ["type": "\(frame.messageType)"])
                connection.answer(
                    context, try? Frame.errorResponse(ErrorResponse(.deadlineExceeded, reason), to: frame))
            }
        }
        serverRequests[frame.correlationID] = (task, timeout)
    }

    private func answer(_ context: ChannelHandlerContext, _ frame: Frame?) {
        guard let frame, closedReason == nil else { return }
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        pump()
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let reason = "\(error)"
        closedReason = closedReason ?? reason
        if handshake != nil {
            if case .failure(let refusal)? = verdict.withLockedValue({ $0 }) {
                failHandshake(refusal)
            } else {
                failHandshake(TransportError(.connectFailed, peer: target, "TLS handshake failed (\(reason))"))
            }
        } else {
            logger.warning("closing connection", metadata: ["error": "\(reason)"])
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let reason = closedReason ?? "closed by the peer"
        closedReason = reason
        handshakeTimeout?.cancel()
        if handshake != nil {
            failHandshake(
                TransportError(.connectFailed, peer: target, "connection closed during the handshake (\(reason))"))
        }
        oneWayFrames.finish()
        for running in serverRequests.values {
            running.timeout?.cancel()
            running.task.cancel()
        }
        serverRequests = [:]
        let pending = entries
        entries = [:]
        queue.removeAll()
        inFlight = 0
        for (id, entry) in pending {
            entry.timeout.cancel()
            entry.promise.fail(
                TransportError(
                    .connectionClosed, peer: target,
                    "request \(id) (message type \(entry.messageType)) unanswered: \(reason)"))
        }
        context.fireChannelInactive()
    }
}
