/// The payload of an error-response frame: why a request was not answered.
///
/// ```
/// code     u16
/// message  string   (one line for the requester's log; never secrets)
/// ```
public struct ErrorResponse: WireCodable, Hashable, CustomStringConvertible {
    /// Why the request failed. A struct rather than an enum so that a code added by a newer peer
    /// decodes (and prints as its number) instead of being refused.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        /// The number on the wire.
        public let rawValue: UInt16

        /// The code with number `rawValue`, known to this build or not.
        public init(rawValue: UInt16) { self.rawValue = rawValue }

        /// The request's message type is not one this node understands.
        public static let unknownMessageType = Code(rawValue: 1)
        /// The request's payload did not decode as its message type.
        public static let malformedRequest = Code(rawValue: 2)
        /// The peer's certificate role may not make this request.
        public static let unauthorized = Code(rawValue: 3)
        /// The request's deadline passed before an answer was ready.
        public static let deadlineExceeded = Code(rawValue: 4)
        /// The node cannot serve the request now (starting, shutting down, no group key yet).
        public static let unavailable = Code(rawValue: 5)
        /// The node failed in a way that is not the requester's fault.
        public static let `internal` = Code(rawValue: 6)
        /// The request was understood and refused: one of the node's checks failed (the message
        /// says which). Sending it again unchanged gets the same answer.
        public static let refused = Code(rawValue: 7)

        /// The name in docs and logs, or `code-N` for a number this build does not know.
        public var description: String {
            switch self {
            case .unknownMessageType: "unknown-message-type"
            case .malformedRequest: "malformed-request"
            case .unauthorized: "unauthorized"
            case .deadlineExceeded: "deadline-exceeded"
            case .unavailable: "unavailable"
            case .internal: "internal"
            case .refused: "refused"
            default: "code-\(rawValue)"
            }
        }
    }

    /// Why the request failed.
    public let code: Code
    /// What was wrong, for the requester's log.
    public let message: String

    /// An error response with `code` and `message`.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The answer to a request whose payload the registry could not decode: unknown message type
    /// or malformed request, with the codec's explanation.
    public init(refusing error: WireError) {
        self.init(error.code == .unknownMessageType ? .unknownMessageType : .malformedRequest, error.description)
    }

    public func encode(into writer: inout WireWriter) {
        writer.write(code.rawValue)
        writer.write(string: message)
    }

    public init(from reader: inout WireReader) throws(WireError) {
        code = Code(rawValue: try reader.readUInt16("code"))
        message = try reader.readString("message")
    }

    /// `code: message`.
    public var description: String { "\(code): \(message)" }
}
