/// What a frame is for, which decides which header fields it may use.
public enum FrameKind: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Asks for one response or error response with the same correlation id, within its deadline.
    case request = 1
    /// Answers the request with the same correlation id; the payload is the response message.
    case response = 2
    /// Answers the request with the same correlation id with an ``ErrorResponse`` payload; the
    /// message type echoes the request's.
    case errorResponse = 3
    /// A message nothing answers (heartbeats, gossip); correlation id 0.
    case oneWay = 4

    /// The name used in docs and logs: `request`, `response`, `error-response`, `one-way`.
    public var description: String {
        switch self {
        case .request: "request"
        case .response: "response"
        case .errorResponse: "error-response"
        case .oneWay: "one-way"
        }
    }
}

/// One node RPC frame: a versioned header and an opaque payload (see `docs/protocol.md`).
///
/// ```
/// offset  size  field
///      0     4  length of everything after this field, big-endian (16 + payload length)
///      4     1  protocol version (1)
///      5     1  kind (FrameKind)
///      6     2  message type, big-endian
///      8     8  correlation id, big-endian
///     16     4  deadline in milliseconds after sending, big-endian; 0 = none; requests only
///     20     …  payload
/// ```
///
/// A `Frame` value always satisfies the header rules the decoder checks (the initializer enforces
/// them with the same code), so encoding cannot produce a frame a peer with the same
/// ``FrameLimits`` refuses.
public struct Frame: Sendable, Hashable {
    /// The protocol version this build speaks and writes.
    public static let protocolVersion: UInt8 = 1
    /// Bytes in the length prefix.
    public static let prefixLength = 4
    /// Bytes in the version 1 header after the prefix: version, kind, type, correlation id,
    /// deadline.
    public static let headerLength = 16

    /// What the frame is for.
    public let kind: FrameKind
    /// The payload's message type (``WireMessage/type``); for an error response, the type of the
    /// request it answers.
    public let messageType: UInt16
    /// Matches a response or error response to its request; 0 exactly for one-way frames.
    public let correlationID: UInt64
    /// How long after sending the requester stops waiting, in milliseconds; 0 = no deadline.
    /// Always 0 except on requests.
    public let deadlineMilliseconds: UInt32
    /// The encoded message, opaque at this layer.
    public let payload: [UInt8]

    /// A frame with these fields, checked against the rules the decoder applies.
    ///
    /// - Throws: ``FrameError`` with code ``FrameError/Code/unexpectedDeadline``,
    ///   ``FrameError/Code/missingCorrelationID`` or ``FrameError/Code/unexpectedCorrelationID``
    ///   when the fields do not suit `kind`, or ``FrameError/Code/oversized`` for a payload no
    ///   length prefix can describe. The configured cap is checked by ``encode(into:limits:)``.
    public init(
        kind: FrameKind, messageType: UInt16, correlationID: UInt64, deadlineMilliseconds: UInt32 = 0,
        payload: [UInt8]
    ) throws(FrameError) {
        try Frame.checkHeader(kind: kind, correlationID: correlationID, deadlineMilliseconds: deadlineMilliseconds)
        guard payload.count <= FrameLimits.largestMaximum - Frame.headerLength else {
            throw FrameError(.oversized, "a payload of \(payload.count) bytes cannot be framed")
        }
        self.init(
            unchecked: kind, messageType: messageType, correlationID: correlationID,
            deadlineMilliseconds: deadlineMilliseconds, payload: payload)
    }

    init(
        unchecked kind: FrameKind, messageType: UInt16, correlationID: UInt64, deadlineMilliseconds: UInt32,
        payload: [UInt8]
    ) {
        self.kind = kind
        self.messageType = messageType
        self.correlationID = correlationID
        self.deadlineMilliseconds = deadlineMilliseconds
        self.payload = payload
    }

    /// The deadline as a duration after sending, or nil for none.
    public var deadline: Duration? {
        deadlineMilliseconds == 0 ? nil : .milliseconds(Int64(deadlineMilliseconds))
    }

    /// The value of the length prefix for this frame.
    public var length: Int { Frame.headerLength + payload.count }

    /// Appends the frame, prefix included, to `buffer`.
    ///
    /// - Throws: ``FrameError/Code/oversized`` when the frame exceeds `limits`; `buffer` is then
    ///   unchanged.
    public func encode(into buffer: inout [UInt8], limits: FrameLimits = .default) throws(FrameError) {
        guard length <= limits.maximumFrameLength else {
            throw FrameError(
                .oversized,
                "a \(kind) of type \(messageType) would be \(length) bytes after its prefix; "
                    + "the limit is \(limits.maximumFrameLength)")
        }
        buffer.reserveCapacity(buffer.count + Frame.prefixLength + length)
        buffer.appendBigEndian(UInt32(length))
        buffer.append(Frame.protocolVersion)
        buffer.append(kind.rawValue)
        buffer.appendBigEndian(messageType)
        buffer.appendBigEndian(correlationID)
        buffer.appendBigEndian(deadlineMilliseconds)
        buffer.append(contentsOf: payload)
    }

    /// The frame, prefix included, as bytes.
    ///
    /// - Throws: ``FrameError/Code/oversized`` when the frame exceeds `limits`.
    public func encoded(limits: FrameLimits = .default) throws(FrameError) -> [UInt8] {
        var buffer: [UInt8] = []
        try encode(into: &buffer, limits: limits)
        return buffer
    }

    /// The header rules that depend on the kind; one function for the initializer and the decoder
    /// so the two cannot drift apart.
    static func checkHeader(kind: FrameKind, correlationID: UInt64, deadlineMilliseconds: UInt32) throws(FrameError) {
        if kind != .request && deadlineMilliseconds != 0 {
            throw FrameError(
                .unexpectedDeadline,
                "a \(kind) frame carries deadline \(deadlineMilliseconds) ms; only requests have one")
        }
        if kind == .oneWay {
            if correlationID != 0 {
                throw FrameError(
                    .unexpectedCorrelationID,
                    "a one-way frame carries correlation id \(correlationID); one-way frames use 0")
            }
        } else if correlationID == 0 {
            throw FrameError(
                .missingCorrelationID, "a \(kind) frame has correlation id 0, which is reserved for one-way frames")
        }
    }
}

extension Array where Element == UInt8 {
    @inline(__always)
    mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        var bigEndian = value.bigEndian
        Swift.withUnsafeBytes(of: &bigEndian) { append(contentsOf: $0) }
    }
}
