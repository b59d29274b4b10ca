/// What the proxy does with an upstream response body after applying the obligations.
public enum ResponseResult: Sendable, Equatable {
    /// Send these bytes. They are the upstream's bytes, unchanged, unless a redaction or a trim
    /// changed the document, in which case they are its compact re-encoding.
    case pass([UInt8])
    /// Do not send the body; answer with the reason instead (``ResponseBlockReason/errorJSON``).
    case block(ResponseBlockReason)
}

/// Why a response body was blocked or a stream cut.
///
/// The message names the obligation (a block rule by its ``PayloadRule/summary``, a cap by its
/// size) and never quotes the response: a body that leaked a secret must not leak it again
/// through the error that stopped it.
public struct ResponseBlockReason: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable code for each class of refusal.
    public enum Code: String, Sendable, Equatable, CaseIterable {
        /// The body, or the bytes of a stream so far, exceed the obligation's `maxBytes`.
        case tooLarge = "too_large"
        /// The body or one pending stream event is larger than the proxy inspects
        /// (``ResponseLimits``).
        case tooLargeToInspect = "too_large_to_inspect"
        /// A `blockIf` rule is satisfied by the response.
        case blockRule = "block_rule"
        /// Content obligations apply, but the body or an event's data is not valid JSON.
        case notJSON = "not_json"
        /// Content obligations apply, but the content type is not JSON in UTF-8.
        case unsupportedContentType = "unsupported_content_type"
        /// A trim path selects the whole document (`$`), which leaves nothing to send.
        case trimsWholeResponse = "trims_whole_response"
        /// A stream spread the fields a block rule reads over more locations than are tracked
        /// (``ResponseLimits/maxStreamLocations``).
        case tooManyStreamLocations = "too_many_stream_locations"
    }

    /// What class of refusal this is.
    public let code: Code
    /// A human explanation naming the obligation; never a quote of the response.
    public let message: String

    /// A reason.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// `message [code]`.
    public var description: String { "\(message) [\(code.rawValue)]" }

    /// The `type` of the error object sent in place of a blocked response.
    public static let errorType = "quorum_latch_response_blocked"

    /// The JSON error object sent in place of a blocked body or as the data of the final stream
    /// event: `{"error":{"type":"quorum_latch_response_blocked","code":…,"message":…}}`.
    public var errorJSON: [UInt8] {
        let error = JSONValue.object([
            JSONMember(key: "type", value: .string(ResponseBlockReason.errorType)),
            JSONMember(key: "code", value: .string(code.rawValue)),
            JSONMember(key: "message", value: .string(message)),
        ])
        return Array(JSONValue.object([JSONMember(key: "error", value: error)]).jsonText.utf8)
    }

    /// The last event of a cut stream: `event: error`, one `data:` line holding ``errorJSON``, and
    /// the blank line that dispatches it.
    public var finalEvent: [UInt8] {
        Array("event: error\ndata: ".utf8) + errorJSON + Array("\n\n".utf8)
    }
}

/// How far the proxy goes to inspect a response: bounds on memory and work that hold whatever
/// the upstream sends. These are the proxy's operating limits, not policy; the policy's own cap is
/// ``ResponseObligations/maxBytes``.
public struct ResponseLimits: Sendable, Equatable {
    /// Largest body parsed to apply content obligations; a larger one is blocked.
    public var maxJSONBodyBytes: Int
    /// Largest stream event (all its lines, pending until its blank line) held; a larger one cuts
    /// the stream, whether or not content obligations apply.
    public var maxEventBytes: Int
    /// Deepest nesting accepted in a body or event, as ``JSONParserConfiguration/maxDepth``.
    public var maxDepth: Int
    /// How many Unicode scalars of earlier events' text at one location a stream's `regex` and
    /// `contains` block rules see together with the newest piece (see ``SSEObligationFilter``).
    public var streamMatchLookback: Int
    /// Most distinct locations whose text a stream tracks for those rules; more cuts the stream.
    public var maxStreamLocations: Int

    /// Limits; the defaults suit LLM APIs.
    public init(
        maxJSONBodyBytes: Int = 8 << 20, maxEventBytes: Int = 1 << 20, maxDepth: Int = 64,
        streamMatchLookback: Int = 256, maxStreamLocations: Int = 1024
    ) {
        self.maxJSONBodyBytes = max(maxJSONBodyBytes, 0)
        self.maxEventBytes = max(maxEventBytes, 0)
        self.maxDepth = maxDepth
        self.streamMatchLookback = max(streamMatchLookback, 0)
        self.maxStreamLocations = max(maxStreamLocations, 0)
    }

    /// 8 MiB bodies, 1 MiB events, depth 64, 256-scalar lookback, 1024 stream locations.
    public static let `default` = ResponseLimits()
}

/// What a `Content-Type` header says about how the response is filtered.
public enum ResponseMediaKind: Sendable, Equatable {
    /// `application/json` or any `type/subtype+json`, with no `charset` or `charset=utf-8`.
    case json
    /// `text/event-stream`: filter with ``SSEObligationFilter``.
    case eventStream
    /// Anything else, including a missing header and JSON declared in another charset.
    case other

    /// Classifies a `Content-Type` value. Type, subtype and parameter names are compared
    /// case-insensitively; parameters other than `charset` are ignored.
    public init(contentType: String?) {
        guard let contentType else {
            self = .other
            return
        }
        let parts = contentType.split(separator: ";", omittingEmptySubsequences: false).map {
            $0.trimmingSpaces().lowercased()
        }
        let essence = parts[0]
        let halves = essence.split(separator: "/", omittingEmptySubsequences: false)
        guard halves.count == 2, !halves[0].isEmpty, !halves[1].isEmpty else {
            self = .other
            return
        }
        if essence == "text/event-stream" {
            self = .eventStream
            return
        }
        guard essence == "application/json" || (halves[1].hasSuffix("+json") && halves[1].count > 5) else {
            self = .other
            return
        }
        for parameter in parts.dropFirst() {
            guard let equals = parameter.firstIndex(of: "=") else { continue }
            let name = parameter[..<equals].trimmingSpaces()
            guard name == "charset" else { continue }
            var value = parameter[parameter.index(after: equals)...].trimmingSpaces()
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                value = String(value.dropFirst().dropLast())
            }
            guard value == "utf-8" || value == "utf8" else {
                self = .other
                return
            }
        }
        self = .json
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (HTTP optional whitespace).
    fileprivate func trimmingSpaces() -> String {
        let scalars = Array(unicodeScalars)
        guard let first = scalars.firstIndex(where: { $0 != " " && $0 != "\t" }),
            let last = scalars.lastIndex(where: { $0 != " " && $0 != "\t" })
        else { return "" }
        return String(String.UnicodeScalarView(scalars[first...last]))
    }
}
