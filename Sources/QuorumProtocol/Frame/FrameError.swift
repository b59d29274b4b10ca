/// A frame the decoder or encoder refused: a stable code, a reason naming the offending values,
/// and where in the byte stream it was found.
///
/// A `FrameError` from ``FrameDecoder`` means the peer is not speaking this protocol (or not this
/// version of it): the connection is closed with `description` logged, and nothing else is
/// affected. Message-level problems (an unknown message type, a payload that does not decode) are
/// ``WireError``s instead, answered with an error response on a connection that stays open.
public struct FrameError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of refusal this is; stable across releases. The raw values appear in logs and
    /// metrics labels, so switch on the code, never on the reason.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// The length prefix is 0: every frame has at least a version byte.
        case zeroLength = "zero-length"
        /// The length prefix (or, when encoding, the frame) exceeds
        /// ``FrameLimits/maximumFrameLength``. Refused from the four prefix bytes alone, before any
        /// of the body is buffered.
        case oversized = "oversized"
        /// The version byte names a protocol version this build does not speak.
        case unsupportedVersion = "unsupported-version"
        /// The length prefix is too short to hold the fixed header of this version
        /// (``Frame/headerLength`` bytes).
        case headerTruncated = "header-truncated"
        /// The kind byte is not one of ``FrameKind``.
        case unknownKind = "unknown-kind"
        /// A frame other than a request carries a deadline; only requests have one.
        case unexpectedDeadline = "unexpected-deadline"
        /// A request, response or error response with correlation id 0, which is reserved for
        /// one-way frames.
        case missingCorrelationID = "missing-correlation-id"
        /// A one-way frame with a non-zero correlation id: nothing will answer it, so nothing may
        /// be waiting on the id.
        case unexpectedCorrelationID = "unexpected-correlation-id"
        /// The stream ended inside a frame (in its prefix, header or payload).
        case truncatedFrame = "truncated-frame"
    }

    /// What kind of refusal this is.
    public let code: Code
    /// What was wrong, naming the values involved and what would have been valid.
    public let reason: String
    /// The offset in the connection's byte stream of the first byte of the frame at fault
    /// (0 when encoding).
    public let streamOffset: UInt64

    /// A refusal of kind `code`, explained by `reason`, for the frame starting at `streamOffset`.
    public init(_ code: Code, _ reason: String, streamOffset: UInt64 = 0) {
        self.code = code
        self.reason = reason
        self.streamOffset = streamOffset
    }

    /// `code: reason (frame at stream byte N)`, on one line; safe to log (it never quotes payload
    /// bytes).
    public var description: String { "\(code.rawValue): \(reason) (frame at stream byte \(streamOffset))" }

    func at(streamOffset: UInt64) -> FrameError { FrameError(code, reason, streamOffset: streamOffset) }
}
