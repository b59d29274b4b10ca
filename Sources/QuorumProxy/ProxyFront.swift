import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import QuorumCrypto
import QuorumPolicy

/// The request context of the proxy's listeners: Hummingbird's core storage, the client's
/// address, which the decision request carries and `X-Forwarded-For` names, and the connection,
/// whose TLS handshake (on the HTTPS listener) holds the agent's client certificate.
public struct ProxyRequestContext: RequestContext {
    /// Hummingbird's per-request storage.
    public var coreContext: CoreRequestContextStorage
    /// The connection's remote address.
    public let remoteAddress: SocketAddress?
    /// The connection the request arrived on.
    public let channel: any Channel

    /// A context for a request on `source.channel`.
    public init(source: ApplicationRequestContextSource) {
        coreContext = CoreRequestContextStorage(source: source)
        remoteAddress = source.channel.remoteAddress
        channel = source.channel
    }
}

/// The JSON error answers the proxy itself gives: `{"error":code,"request_id":…,"reason":…}`.
enum ProxyError {
    static func response(
        _ status: HTTPResponse.Status, code: String, requestID: String, receipt: String? = nil, reason: String,
        extra: [JSONMember] = [], headers extraHeaders: [(HTTPField.Name, String)] = []
    ) -> Response {
        var members = [
            JSONMember(key: "error", value: .string(code)),
            JSONMember(key: "request_id", value: .string(requestID)),
            JSONMember(key: "reason", value: .string(reason)),
        ]
        members += extra
        if let receipt { members.append(JSONMember(key: "receipt", value: .string(receipt))) }
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers.append(HTTPField(name: HTTPField.Name(HeaderRules.requestID)!, value: requestID))
        if let receipt { headers.append(HTTPField(name: HTTPField.Name(HeaderRules.receipt)!, value: receipt)) }
        for (name, value) in extraHeaders { headers.append(HTTPField(name: name, value: value)) }
        let body = Array(JSONValue.object(members).jsonText.utf8)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// The agent-facing HTTP front: reads each call, builds its ``DecisionRequest``, asks the
/// ``CallAuthorizer``, and forwards only an allow.
///
/// Answers of its own (JSON, each with `Latch-Request-Id`):
/// - 404 `no_mount`: no mount of any latch covers the path (nothing asked);
/// - 401 `missing_token`: no `Authorization: Bearer` or `x-latch-token` (nothing asked);
/// - 400 `ambiguous_token`: two token fields, or two different tokens (nothing asked);
/// - 413 `body_too_large`: a body past ``RequestLimits/maxBufferedBodyBytes`` (the whole body is held and
///   hashed before the quorum is asked, since the receipt binds its digest);
/// - 403 `denied` (401 when every node refused the token): the nodes' reasons and deny receipt;
/// - 503 `unavailable`: fewer than k answers;
/// - 502/504 from the forwarder when the upstream fails.
///
/// Every answer given after asking the quorum carries `Server-Timing` (``ServerTiming``). On the
/// HTTPS listener (`[tls]`), the SHA-256 of the client certificate the agent presented, if any,
/// goes to the nodes with the call, for sender-constrained latches (RFC 8705).
public struct ProxyFront: HTTPResponder {
    /// The context type the listener creates.
    public typealias Context = ProxyRequestContext

    let routing: RoutingTable
    let authorizer: any CallAuthorizer
    let limits: RequestLimits
    let forwarder: UpstreamForwarder
    /// Whether this front serves the HTTPS listener, whose connections may carry a client
    /// certificate.
    let readsClientCertificates: Bool
    let metrics: ProxyMetrics
    /// Forwards the audit API (``AuditHTTP/proxyPrefix``) to the nodes; `nil` without `[audit]`.
    let audit: AuditForwarder?
    let logger: Logger

    init(
        routing: RoutingTable, authorizer: any CallAuthorizer, limits: RequestLimits, forwarder: UpstreamForwarder,
        readsClientCertificates: Bool = false, metrics: ProxyMetrics = ProxyMetrics(), audit: AuditForwarder? = nil,
        logger: Logger
    ) {
        self.audit = audit
        self.routing = routing
        self.authorizer = authorizer
        self.limits = limits
        self.forwarder = forwarder
        self.readsClientCertificates = readsClientCertificates
        self.metrics = metrics
        self.logger = logger
    }

    /// Handles one agent call.
    public func respond(to request: Request, context: ProxyRequestContext) async throws -> Response {
        let arrived = ContinuousClock.now
        let target = request.head.path ?? ""
        // The audit API's prefix is never an agent call: no token, no quorum, no upstream.
        if AuditForwarder.handles(target) {
            guard let audit else { return AuditForwarder.notConfigured(head: request.method == .head) }
            return await audit.respond(to: request, clientAddress: context.remoteAddress?.ipAddress)
        }
        let requestID = Self.newRequestID()
        // HTTP/1.1's Host arrives as the request's authority, not among its fields: put it back
        // first, where an HTTP/1.1 client sends it, so filters and X-Forwarded-Host see it.
        let host: HeaderList = request.head.authority.map { [("Host", $0)] } ?? []
        let headers: HeaderList = host + request.headers.map { ($0.name.rawName, $0.value) }
        let method = request.method.rawValue

        guard let token = HeaderRules.agentToken(headers) else {
            metrics.rejected("ambiguous_token")
            logger.info("ambiguous token", metadata: ["request_id": "\(requestID)"])
            return ProxyError.response(
                .badRequest, code: "ambiguous_token", requestID: requestID,
                reason: "send one latch token, in Authorization: Bearer or in x-latch-token, not two")
        }
        let mountPath: String?
        switch routing.current.route(target: target, token: token) {
        case .noMount(let path):
            metrics.rejected("no_mount")
            logger.info("no mount", metadata: ["request_id": "\(requestID)", "path": "\(path)"])
            return ProxyError.response(
                .notFound, code: "no_mount", requestID: requestID,
                reason: "no mount covers \(path); a call goes to a mount's path prefix, as /openai/v1/…")
        case .ask(let mount):
            mountPath = mount
        }
        guard !token.isEmpty else {
            metrics.rejected("missing_token")
            logger.info("missing token", metadata: ["request_id": "\(requestID)"])
            return ProxyError.response(
                .unauthorized, code: "missing_token", requestID: requestID,
                reason: "no latch token; send Authorization: Bearer lat_<id>_<secret> or x-latch-token",
                headers: [(.wwwAuthenticate, "Bearer")])
        }

        // The receipt binds the SHA-256 of the whole body, so the whole body is read and hashed
        // before the quorum is asked; the nodes get at most its first decision_body_bytes.
        let declaredLength = request.headers[.contentLength].flatMap { Int($0) }
        if let declaredLength, declaredLength > limits.maxBufferedBodyBytes {
            return tooLarge(requestID: requestID)
        }
        var iterator = request.body.makeAsyncIterator()
        var buffered: [ByteBuffer] = []
        var count = 0
        var ended = false
        while count <= limits.maxBufferedBodyBytes {
            guard let chunk = try await iterator.next() else {
                ended = true
                break
            }
            count += chunk.readableBytes
            buffered.append(chunk)
        }
        if !ended {
            return tooLarge(requestID: requestID)
        }
        var decisionBody: [UInt8] = []
        decisionBody.reserveCapacity(min(count, limits.decisionBodyBytes))
        for chunk in buffered where decisionBody.count < limits.decisionBodyBytes {
            decisionBody += chunk.readableBytesView.prefix(limits.decisionBodyBytes - decisionBody.count)
        }
        let bodyLength = count
        let clientAddress = context.remoteAddress?.ipAddress ?? ""
        var certificateSHA256: [UInt8]?
        if readsClientCertificates {
            do { certificateSHA256 = try await AgentTLS.clientCertificateSHA256(on: context.channel) } catch {
                // Fail closed: an unreadable certificate is no certificate, so a bound latch denies.
                logger.warning(
                    "cannot read the client certificate",
                    metadata: ["request_id": "\(requestID)", "reason": "\(error)"])
            }
        }
        let decisionRequest = DecisionRequest(
            requestID: requestID, method: method, target: target, headers: HeaderRules.decisionHeaders(headers),
            body: decisionBody, bodyLength: bodyLength, clientAddress: clientAddress, token: token,
            clientCertificateSHA256: certificateSHA256)
        let call = AgentCall(
            decisionRequest: decisionRequest, mountPath: mountPath, receivedAt: Date(),
            bodySHA256: sha256Digest(concatenating: buffered.map { Array($0.readableBytesView) }))

        let timed = await authorizer.authorizeTimed(call)
        var timing = ServerTiming(decision: timed.timings)
        recordPhases(timed.timings)
        let outcome: String
        switch timed.authorization {
        case .allow, .answer: outcome = "allow"
        case .deny: outcome = "deny"
        case .unavailable: outcome = "unavailable"
        }
        func timingHeader() -> [(HTTPField.Name, String)] {
            var final = timing
            let total = ContinuousClock.now - arrived
            final.add("total", total)
            metrics.request(outcome, total)
            return [(ServerTiming.name, final.headerValue)]
        }
        switch timed.authorization {
        case .unavailable(let reason):
            metrics.decision("unavailable")
            logger.warning("decision unavailable", metadata: ["request_id": "\(requestID)", "reason": "\(reason)"])
            return ProxyError.response(
                .serviceUnavailable, code: "unavailable", requestID: requestID, reason: reason,
                headers: timingHeader())
        case .deny(let denied):
            metrics.decision("deny", reason: denied.step ?? "unsigned")
            let authentication = !denied.reasons.isEmpty && denied.reasons.allSatisfy(\.isAuthenticationFailure)
            logger.info(
                "denied",
                metadata: [
                    "request_id": "\(requestID)", "mount": "\(mountPath ?? "-")",
                    "reasons": "\(denied.reasons.map { "\($0.node): \($0.reason)" })",
                ])
            let reasons = JSONValue.array(
                denied.reasons.map { reason in
                    .object([
                        JSONMember(key: "node", value: .number(JSONNumber(Int64(reason.node)))),
                        JSONMember(key: "decision", value: .string(reason.decision)),
                        JSONMember(key: "reason", value: .string(reason.reason)),
                    ])
                })
            return ProxyError.response(
                authentication ? .unauthorized : .forbidden, code: "denied", requestID: requestID,
                receipt: denied.receipt,
                reason: authentication ? "the quorum did not accept the latch token" : "the quorum denied the call",
                extra: [JSONMember(key: "reasons", value: reasons)],
                headers: (authentication ? [(.wwwAuthenticate, "Bearer")] : []) + timingHeader())
        case .answer(let answered):
            metrics.decision("allow")
            logger.info("answered", metadata: ["request_id": "\(requestID)", "mount": "\(mountPath ?? "-")"])
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            headers.append(HTTPField(name: HTTPField.Name(HeaderRules.requestID)!, value: requestID))
            headers.append(HTTPField(name: HTTPField.Name(HeaderRules.receipt)!, value: answered.receipt))
            for (name, value) in timingHeader() { headers.append(HTTPField(name: name, value: value)) }
            return Response(
                status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: answered.body)))
        case .allow(let allowed):
            metrics.decision("allow")
            logger.info(
                "allowed",
                metadata: ["request_id": "\(requestID)", "mount": "\(mountPath ?? "-")", "path": "\(allowed.path)"])
            let query = target.firstIndex(of: "?").map { String(target[target.index(after: $0)...]) }
            let inbound = InboundCall(
                requestID: requestID, method: method, headers: headers, query: query, clientAddress: clientAddress,
                body: ForwardBody(buffered: buffered, rest: nil, length: count))
            let forwarded = await forwarder.forward(inbound, allowed: allowed)
            var response = forwarded.response
            if let upstream = forwarded.upstream {
                timing.add("upstream", upstream)
                metrics.phase("upstream", upstream)
            }
            for (name, value) in timingHeader() { response.headers.append(HTTPField(name: name, value: value)) }
            return response
        }
    }

    /// The decision's phases as ``ServerTiming`` names them; `signing` only when a sign request
    /// round ran, so its count is the number of calls that needed one.
    private func recordPhases(_ timings: DecisionTimings) {
        metrics.phase("verdict", timings.verdict)
        if timings.signing > .zero { metrics.phase("signing", timings.signing) }
        if let credential = timings.credential { metrics.phase("credential", credential) }
    }

    func tooLarge(requestID: String) -> Response {
        metrics.rejected("body_too_large")
        logger.info("body too large", metadata: ["request_id": "\(requestID)"])
        return Self.tooLarge(requestID: requestID, limits: limits)
    }

    static func tooLarge(requestID: String, limits: RequestLimits) -> Response {
        ProxyError.response(
            .contentTooLarge, code: "body_too_large", requestID: requestID,
            reason:
                "the body is longer than \(limits.maxBufferedBodyBytes) bytes, the most the proxy holds while the quorum decides (limits.max_buffered_body_bytes)"
        )
    }

    /// `req_` and 32 hex digits from the system's random source: unique per call, unguessable.
    static func newRequestID() -> String {
        var generator = SystemRandomNumberGenerator()
        let words = [generator.next(), generator.next()] as [UInt64]
        return "req_"
            + words.map { word in
                let hex = String(word, radix: 16)
                return String(repeating: "0", count: 16 - hex.count) + hex
            }.joined()
    }
}
