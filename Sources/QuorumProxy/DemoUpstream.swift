import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import QuorumCrypto
import QuorumPolicy
import ServiceLifecycle

/// A small OpenAI-compatible server for the testnet and the tests: it stands where a real API
/// would, and proves that the proxy injected the credential, because it answers 401 to anything
/// without `Authorization: Bearer <its key>`.
///
/// - `GET /v1/models`: one model, `demo-small`.
/// - `POST /v1/chat/completions`: the reply is `Echo: ` and the last message's text, so the
///   content is a function of the request; `usage` counts words (prompt: every message's,
///   completion: the reply's). With `"stream": true` it answers server-sent events, one chunk per
///   word, a final usage chunk when `stream_options.include_usage` is true, then `data: [DONE]`.
///   Test controls, as request headers: `X-Demo-Chunk-Delay-Ms` waits between chunks;
///   `X-Demo-Cut-After: N` drops the connection after N content chunks.
/// - `GET|POST|… /echo/…` (no key needed): the method, path, query and headers it received, as
///   JSON, with its own key replaced by `<api-key>` wherever it appears (a `Basic` authorization is
///   decoded first), so a test sees what reached the upstream without the key being sent back.
public struct DemoUpstream: HTTPResponder {
    /// The context of the demo's listener.
    public typealias Context = ProxyRequestContext

    /// The API key callers must present.
    let apiKey: String

    /// A demo upstream that accepts `apiKey`.
    public init(apiKey: String) {
        self.apiKey = apiKey
    }

    /// Reads the key from `path` (surrounding whitespace trimmed); refuses an empty file.
    public static func apiKey(fromFile path: String) throws -> String {
        let text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else {
            throw DemoUpstreamError(reason: "\(path): the API key file is empty; put the key on its first line")
        }
        guard text.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw DemoUpstreamError(reason: "\(path): the API key must be printable ASCII without spaces")
        }
        return text
    }

    /// Answers one request.
    public func respond(to request: Request, context: ProxyRequestContext) async throws -> Response {
        let path = request.uri.path
        if path == "/echo" || path.hasPrefix("/echo/") {
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            return echo(request, bodyLength: body.readableBytes)
        }
        let presented = request.headers[.authorization]
        guard presented == "Bearer " + apiKey else {
            return Self.json(
                .unauthorized,
                .object([
                    JSONMember(
                        key: "error",
                        value: .object([
                            JSONMember(
                                key: "message",
                                value: .string(
                                    presented == nil ? "no API key: send Authorization: Bearer <key>" : "wrong API key")
                            ),
                            JSONMember(key: "type", value: .string("invalid_request_error")),
                            JSONMember(key: "code", value: .string("invalid_api_key")),
                        ]))
                ]))
        }
        switch (request.method, path) {
        case (.get, "/v1/models"):
            return Self.json(
                .ok,
                .object([
                    JSONMember(key: "object", value: .string("list")),
                    JSONMember(
                        key: "data",
                        value: .array([
                            .object([
                                JSONMember(key: "id", value: .string("demo-small")),
                                JSONMember(key: "object", value: .string("model")),
                                JSONMember(key: "created", value: .number(JSONNumber(0))),
                                JSONMember(key: "owned_by", value: .string("quorum-latch")),
                            ])
                        ])),
                ]))
        case (.post, "/v1/chat/completions"):
            var request = request
            let body = try await request.collectBody(upTo: 8 << 20)
            return chatCompletion(request, body: Array(body.readableBytesView))
        default:
            return Self.json(
                .notFound,
                .object([
                    JSONMember(
                        key: "error",
                        value: .object([
                            JSONMember(key: "message", value: .string("no route \(request.method.rawValue) \(path)")),
                            JSONMember(key: "type", value: .string("invalid_request_error")),
                        ]))
                ]))
        }
    }

    private func chatCompletion(_ request: Request, body: [UInt8]) -> Response {
        guard
            let document = try? JSONParser(configuration: JSONParserConfiguration(maxDepth: 64, maxBytes: 8 << 20))
                .parse(body),
            case .array(let messages)? = document["messages"], !messages.isEmpty
        else {
            return Self.json(
                .badRequest,
                .object([
                    JSONMember(
                        key: "error",
                        value: .object([
                            JSONMember(
                                key: "message", value: .string("expected a JSON body with a non-empty messages array")),
                            JSONMember(key: "type", value: .string("invalid_request_error")),
                        ]))
                ]))
        }
        let model: String
        if case .string(let name)? = document["model"] { model = name } else { model = "demo-small" }
        let texts = messages.map { message -> String in
            if case .string(let text)? = message["content"] { return text }
            return ""
        }
        let reply = "Echo: " + (texts.last ?? "")
        let promptTokens = Int64(texts.reduce(0) { $0 + Self.words($1).count })
        let replyWords = Self.words(reply)
        let completionTokens = Int64(replyWords.count)
        let id = "chatcmpl-demo-" + Hex.encode(sha256Digest(body).prefix(8))
        let usage = JSONValue.object([
            JSONMember(key: "prompt_tokens", value: .number(JSONNumber(promptTokens))),
            JSONMember(key: "completion_tokens", value: .number(JSONNumber(completionTokens))),
            JSONMember(key: "total_tokens", value: .number(JSONNumber(promptTokens + completionTokens))),
        ])
        guard case .bool(true)? = document["stream"] else {
            return Self.json(
                .ok,
                .object([
                    JSONMember(key: "id", value: .string(id)),
                    JSONMember(key: "object", value: .string("chat.completion")),
                    JSONMember(key: "created", value: .number(JSONNumber(0))),
                    JSONMember(key: "model", value: .string(model)),
                    JSONMember(
                        key: "choices",
                        value: .array([
                            .object([
                                JSONMember(key: "index", value: .number(JSONNumber(0))),
                                JSONMember(
                                    key: "message",
                                    value: .object([
                                        JSONMember(key: "role", value: .string("assistant")),
                                        JSONMember(key: "content", value: .string(reply)),
                                    ])),
                                JSONMember(key: "finish_reason", value: .string("stop")),
                            ])
                        ])),
                    JSONMember(key: "usage", value: usage),
                ]))
        }
        let includeUsage: Bool
        if case .bool(true)? = document["stream_options"]?["include_usage"] {
            includeUsage = true
        } else {
            includeUsage = false
        }
        let delay = request.headers[HTTPField.Name("X-Demo-Chunk-Delay-Ms")!].flatMap { Int($0) } ?? 0
        let cutAfter = request.headers[HTTPField.Name("X-Demo-Cut-After")!].flatMap { Int($0) }

        func chunk(
            _ delta: [JSONMember], finish: String?, usage chunkUsage: JSONValue? = nil, empty: Bool = false
        )
            -> ByteBuffer
        {
            var members = [
                JSONMember(key: "id", value: .string(id)),
                JSONMember(key: "object", value: .string("chat.completion.chunk")),
                JSONMember(key: "created", value: .number(JSONNumber(0))),
                JSONMember(key: "model", value: .string(model)),
            ]
            let choice = JSONValue.object([
                JSONMember(key: "index", value: .number(JSONNumber(0))),
                JSONMember(key: "delta", value: .object(delta)),
                JSONMember(key: "finish_reason", value: finish.map { .string($0) } ?? .null),
            ])
            members.append(JSONMember(key: "choices", value: .array(empty ? [] : [choice])))
            if includeUsage { members.append(JSONMember(key: "usage", value: chunkUsage ?? .null)) }
            return ByteBuffer(string: "data: " + JSONValue.object(members).jsonText + "\n\n")
        }

        var events = [
            chunk(
                [JSONMember(key: "role", value: .string("assistant")), JSONMember(key: "content", value: .string(""))],
                finish: nil)
        ]
        for (index, word) in replyWords.enumerated() {
            events.append(
                chunk([JSONMember(key: "content", value: .string(index == 0 ? word : " " + word))], finish: nil))
        }
        events.append(chunk([], finish: "stop"))
        if includeUsage { events.append(chunk([], finish: nil, usage: usage, empty: true)) }
        events.append(ByteBuffer(string: "data: [DONE]\n\n"))
        let toSend = events
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                for (index, event) in toSend.enumerated() {
                    if index > 0, delay > 0 { try await Task.sleep(for: .milliseconds(delay)) }
                    if let cutAfter, index > cutAfter {
                        throw DemoUpstreamError(reason: "cut after \(cutAfter) chunks, as X-Demo-Cut-After asked")
                    }
                    try await writer.write(event)
                }
                try await writer.finish(nil)
            })
    }

    private func echo(_ request: Request, bodyLength: Int) -> Response {
        // Host arrives as the request's authority rather than a field.
        let host = request.head.authority.map { [JSONValue.array([.string("Host"), .string($0)])] } ?? []
        let headers = JSONValue.array(
            host
                + request.headers.map { field in
                    .array([
                        .string(field.name.rawName), .string(redact(field.value, header: field.name.canonicalName)),
                    ])
                })
        let query = request.uri.query.map { JSONValue.string(redact($0, header: "")) } ?? .null
        return Self.json(
            .ok,
            .object([
                JSONMember(key: "method", value: .string(request.method.rawValue)),
                JSONMember(key: "path", value: .string(request.uri.path)),
                JSONMember(key: "query", value: query),
                JSONMember(key: "headers", value: headers),
                JSONMember(key: "body_length", value: .number(JSONNumber(Int64(bodyLength)))),
            ]))
    }

    /// The value with this server's key replaced by `<api-key>`; a Basic credential is decoded
    /// first (`Basic user:<api-key>`).
    private func redact(_ value: String, header: String) -> String {
        if header == "authorization", value.lowercased().hasPrefix("basic "),
            let decoded = Data(base64Encoded: String(value.dropFirst(6))).map({ String(decoding: $0, as: UTF8.self) })
        {
            return "Basic " + decoded.replacingOccurrences(of: apiKey, with: "<api-key>")
        }
        let encodedKey = CredentialInjection.percentEncode(Array(apiKey.utf8))
        return value.replacingOccurrences(of: apiKey, with: "<api-key>").replacingOccurrences(
            of: encodedKey, with: "<api-key>")
    }

    private static func words(_ text: String) -> [String] {
        text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init)
    }

    private static func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(
            status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: value.jsonText)))
    }

    /// The demo upstream as a Hummingbird application listening on `host:port`.
    public static func application(
        apiKey: String, host: String, port: Int, logger: Logger,
        onListening: @escaping @Sendable (Int) async throws -> Void = { _ in }
    ) -> some Service {
        Application(
            responder: DemoUpstream(apiKey: apiKey),
            configuration: ApplicationConfiguration(
                address: .hostname(host, port: port), serverName: "quorum-demo-upstream"),
            onServerRunning: { channel in
                do { try await onListening(channel.localAddress?.port ?? 0) } catch {
                    logger.error("cannot report the listening port", metadata: ["reason": "\(error)"])
                }
            },
            logger: logger)
    }
}

/// A demo upstream failure (a bad key file, a deliberately cut stream).
public struct DemoUpstreamError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public let reason: String
    /// `reason`.
    public var description: String { reason }
}
