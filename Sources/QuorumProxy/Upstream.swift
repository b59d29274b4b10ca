import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import QuorumCrypto
import QuorumPolicy

/// The agent's request as the front read it, ready to forward once allowed.
struct InboundCall: Sendable {
    var requestID: String
    var method: String
    var headers: HeaderList
    /// The raw query (after `?`), or `nil`.
    var query: String?
    var clientAddress: String
    var body: ForwardBody
}

/// The agent's body: the bytes already read for the decision, then whatever is left on the
/// connection, read only while the upstream request is sent.
struct ForwardBody: AsyncSequence, @unchecked Sendable {
    // @unchecked Sendable: the front reads the request body with this iterator until it asks the
    // quorum, then hands it here and never touches it again; AsyncHTTPClient iterates the sequence
    // once, from one task. The iterator is never used by two tasks at once.
    typealias Element = ByteBuffer

    let buffered: [ByteBuffer]
    let rest: RequestBody.AsyncIterator?
    /// The total length when known (declared by the agent, or everything was read).
    let length: Int?

    struct AsyncIterator: AsyncIteratorProtocol {
        var buffered: IndexingIterator<[ByteBuffer]>
        var rest: RequestBody.AsyncIterator?

        mutating func next() async throws -> ByteBuffer? {
            if let next = buffered.next() { return next }
            guard var iterator = rest else { return nil }
            let next = try await iterator.next()
            rest = next == nil ? nil : iterator
            return next
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(buffered: buffered.makeIterator(), rest: rest)
    }

    var isEmpty: Bool { rest == nil && buffered.allSatisfy { $0.readableBytes == 0 } }
}

/// Calls `settle` exactly once, whichever path ends the call first.
final class SettleOnce: Sendable {
    private let settle: @Sendable (SpendUsage?) async -> Void
    private let done = NIOLockedValueBox(false)

    init(_ settle: @escaping @Sendable (SpendUsage?) async -> Void) { self.settle = settle }

    func callAsFunction(_ usage: SpendUsage?) async {
        let first = done.withLockedValue { done in
            defer { done = true }
            return !done
        }
        if first { await settle(usage) }
    }
}

/// Forwards allowed calls upstream with AsyncHTTPClient: bodies stream both ways, the credential
/// goes in as its secret says, the response obligations and the usage tap apply on the way back.
struct UpstreamForwarder: Sendable {
    let client: HTTPClient
    let configuration: UpstreamConfiguration
    let responseLimits: ResponseLimits
    let scheme: String
    let logger: Logger

    /// What ``forward(_:allowed:)`` answers: the agent's response, and the time from sending the
    /// upstream request to its response head (or its failure); `nil` when nothing was sent.
    struct Forwarded {
        var response: Response
        var upstream: Duration?
    }

    /// The agent's answer for an allowed call. Never throws: every failure is a JSON error answer
    /// (502, 504) that names no secret, and `settle` is called exactly once on every path.
    func forward(_ call: InboundCall, allowed: AllowedCall) async -> Forwarded {
        let settle = SettleOnce(allowed.settle)
        let receipt = allowed.receipt
        let request: HTTPClientRequest
        do {
            request = try buildRequest(call, allowed: allowed)
        } catch {
            await settle(nil)
            logger.error(
                "cannot build the upstream request",
                metadata: ["request_id": "\(call.requestID)", "reason": "\(error)"])
            return Forwarded(
                response: ProxyError.response(
                    .badGateway, code: "upstream_request_invalid", requestID: call.requestID, receipt: receipt,
                    reason: "\(error)"))
        }
        let sent = ContinuousClock.now
        let response: HTTPClientResponse
        // AsyncHTTPClient's own lines about this request (debug and trace) carry its id too.
        var requestLogger = logger
        requestLogger[metadataKey: "request_id"] = "\(call.requestID)"
        do {
            response = try await client.execute(
                request, deadline: .now() + TimeAmount(configuration.responseTimeout), logger: requestLogger)
        } catch {
            let upstream = ContinuousClock.now - sent
            await settle(nil)
            let (status, reason) = Self.describe(error, timeout: configuration.responseTimeout)
            logger.warning(
                "upstream failed", metadata: ["request_id": "\(call.requestID)", "reason": "\(reason)"])
            return Forwarded(
                response: ProxyError.response(
                    status, code: status == .gatewayTimeout ? "upstream_timeout" : "upstream_unavailable",
                    requestID: call.requestID, receipt: receipt, reason: reason),
                upstream: upstream)
        }
        let upstream = ContinuousClock.now - sent
        let upstreamHeaders: HeaderList = response.headers.map { ($0.name, $0.value) }
        var processor = ResponseProcessor(
            obligations: allowed.obligations, limits: responseLimits,
            contentType: response.headers.first(name: "content-type"),
            contentEncoding: response.headers.first(name: "content-encoding"))
        var headers = HTTPFields()
        for field in HeaderRules.responseHeaders(upstreamHeaders) {
            guard let name = HTTPField.Name(field.name) else { continue }
            headers.append(HTTPField(name: name, value: field.value))
        }
        headers.append(HTTPField(name: HTTPField.Name(HeaderRules.requestID)!, value: call.requestID))
        headers.append(HTTPField(name: HTTPField.Name(HeaderRules.receipt)!, value: receipt))
        let status = HTTPResponse.Status(code: Int(response.status.code))

        if case .blocked(let reason) = processor.mode {
            await settle(nil)
            return Forwarded(response: blocked(reason, call: call, receipt: receipt), upstream: upstream)
        }
        if processor.needsWholeBody {
            var ended = false
            do {
                for try await chunk in response.body {
                    _ = processor.feed(Array(chunk.readableBytesView))
                    if processor.collectedEnough { break }
                }
                ended = true
            } catch {
                let (_, reason) = Self.describe(error, timeout: configuration.readTimeout)
                logger.warning(
                    "upstream body failed", metadata: ["request_id": "\(call.requestID)", "reason": "\(reason)"])
            }
            guard ended else {
                await settle(nil)
                return Forwarded(
                    response: ProxyError.response(
                        .badGateway, code: "upstream_body_failed", requestID: call.requestID, receipt: receipt,
                        reason: "the upstream's body failed before it ended"),
                    upstream: upstream)
            }
            switch processor.finishBuffered() {
            case .block(let reason):
                await settle(processor.usage)
                return Forwarded(response: blocked(reason, call: call, receipt: receipt), upstream: upstream)
            case .pass(let bytes):
                await settle(processor.usage)
                return Forwarded(
                    response: Response(
                        status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes))),
                    upstream: upstream)
            }
        }

        let logger = self.logger
        let requestID = call.requestID
        let readTimeout = configuration.readTimeout
        let processorBox = processor
        let body = ResponseBody { writer in
            var processor = processorBox
            var usage: SpendUsage?
            do {
                var cut = false
                for try await chunk in response.body {
                    let out = processor.feed(Array(chunk.readableBytesView))
                    if !out.bytes.isEmpty { try await writer.write(ByteBuffer(bytes: out.bytes)) }
                    if let termination = out.termination {
                        if !out.finalBytes.isEmpty { try await writer.write(ByteBuffer(bytes: out.finalBytes)) }
                        logger.notice(
                            "response stream cut", metadata: ["request_id": "\(requestID)", "reason": "\(termination)"])
                        cut = true
                        break
                    }
                }
                if !cut {
                    let out = processor.finish()
                    if !out.bytes.isEmpty { try await writer.write(ByteBuffer(bytes: out.bytes)) }
                    if !out.finalBytes.isEmpty { try await writer.write(ByteBuffer(bytes: out.finalBytes)) }
                    if out.termination == nil { usage = processor.usage }
                }
                try await writer.finish(nil)
            } catch {
                let (_, reason) = UpstreamForwarder.describe(error, timeout: readTimeout)
                logger.warning(
                    "response stream ended early", metadata: ["request_id": "\(requestID)", "reason": "\(reason)"])
                await settle(nil)
                throw error
            }
            await settle(usage)
        }
        return Forwarded(response: Response(status: status, headers: headers, body: body), upstream: upstream)
    }

    private func blocked(_ reason: ResponseBlockReason, call: InboundCall, receipt: String) -> Response {
        logger.notice("response blocked", metadata: ["request_id": "\(call.requestID)", "reason": "\(reason)"])
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers.append(HTTPField(name: HTTPField.Name(HeaderRules.requestID)!, value: call.requestID))
        headers.append(HTTPField(name: HTTPField.Name(HeaderRules.receipt)!, value: receipt))
        return Response(
            status: .badGateway, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: reason.errorJSON)))
    }

    /// The upstream request: URL from the approved path, headers per ``HeaderRules``, the
    /// credential injected, the agent's body streamed.
    func buildRequest(_ call: InboundCall, allowed: AllowedCall) throws(InjectionError) -> HTTPClientRequest {
        var base = allowed.upstream.absoluteString
        guard let scheme = allowed.upstream.scheme?.lowercased(), scheme == "http" || scheme == "https",
            allowed.upstream.host != nil, allowed.upstream.query == nil, allowed.upstream.fragment == nil
        else {
            throw InjectionError(reason: "the mount's upstream is not an http(s) URL without query: \(base)")
        }
        while base.hasSuffix("/") { base.removeLast() }
        guard allowed.path.hasPrefix("/") else {
            throw InjectionError(reason: "the approved path does not start with '/'")
        }
        var headers = HeaderRules.upstreamHeaders(
            agent: call.headers, clientAddress: call.clientAddress, scheme: self.scheme, requestID: call.requestID,
            receipt: allowed.receipt)
        var query = call.query
        if let credential = allowed.credential {
            guard let injection = allowed.injection else {
                throw InjectionError(reason: "a credential was released without saying how to inject it")
            }
            try CredentialInjection.inject(credential, as: injection, headers: &headers, query: &query)
        }
        var request = HTTPClientRequest(url: base + allowed.path + (query.map { "?" + $0 } ?? ""))
        request.method = HTTPMethod(rawValue: call.method)
        for field in headers { request.headers.add(name: field.name, value: field.value) }
        if !call.body.isEmpty || call.body.length.map({ $0 > 0 }) == true {
            request.body = .stream(call.body, length: call.body.length.map { .known(Int64($0)) } ?? .unknown)
        }
        return request
    }

    /// The agent's status and a reason for an upstream failure: names the failure, never the URL
    /// (its query may hold an injected credential).
    static func describe(_ error: any Error, timeout: Duration) -> (HTTPResponse.Status, String) {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout:
                return (
                    .gatewayTimeout, "the upstream did not answer in time (\(error.shortDescription)); limit \(timeout)"
                )
            case .remoteConnectionClosed:
                return (.badGateway, "the upstream closed the connection")
            default:
                return (.badGateway, "the upstream request failed (\(error.shortDescription))")
            }
        }
        if error is NIOConnectionError || error is ChannelError || error is IOError {
            return (.badGateway, "the upstream could not be reached (\(type(of: error)))")
        }
        return (.badGateway, "the upstream request failed (\(type(of: error)))")
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
