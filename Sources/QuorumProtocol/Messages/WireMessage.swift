/// A value with one encoding in the message codec: a whole message, or a part of one
/// (``PeerStatus``) that messages nest.
public protocol WireCodable: Sendable {
    /// Appends the value's fields to `writer`, in the order `init(from:)` reads them.
    func encode(into writer: inout WireWriter)
    /// Reads the value's fields from `reader` and checks the value's own rules.
    ///
    /// - Throws: ``WireError`` naming the first field that is malformed or not allowed.
    init(from reader: inout WireReader) throws(WireError)
}

/// A message that travels as the payload of a frame, identified by its ``type`` number.
///
/// Numbers are assigned in `docs/protocol.md` and never reused; 0 is never assigned. A message
/// type the receiver does not know is answered with an error response
/// (``ErrorResponse/Code/unknownMessageType``), never a crash or a closed connection.
public protocol WireMessage: WireCodable, Hashable {
    /// The message type number carried in the frame header.
    static var type: UInt16 { get }
}

extension WireCodable {
    /// The type's name, as errors and logs show it.
    public static var name: String { String(describing: Self.self) }

    /// The value as a frame payload.
    public func encodedPayload() -> [UInt8] {
        var writer = WireWriter()
        encode(into: &writer)
        return writer.bytes
    }

    /// Decodes a whole payload as this value, refusing bytes after its last field.
    ///
    /// - Throws: ``WireError`` with the field named as `Message.field`.
    public static func decode(payload: [UInt8]) throws(WireError) -> Self {
        var reader = WireReader(payload)
        do throws(WireError) {
            let message = try Self(from: &reader)
            try reader.finish()
            return message
        } catch {
            throw error.nested(under: name)
        }
    }
}

/// The messages one process understands, by type number: what turns a frame into a message.
public struct MessageRegistry: Sendable {
    private let types: [UInt16: any WireMessage.Type]

    /// A registry of `types`.
    ///
    /// - Precondition: no two types share a number, and none uses 0.
    public init(_ types: [any WireMessage.Type]) {
        var byNumber: [UInt16: any WireMessage.Type] = [:]
        for type in types {
            precondition(type.type != 0, "\(type) uses message type 0, which is never assigned")
            precondition(
                byNumber[type.type] == nil, "\(type) and \(byNumber[type.type]!) share message type \(type.type)")
            byNumber[type.type] = type
        }
        self.types = byNumber
    }

    /// Every message this build defines.
    public static let all = MessageRegistry(
        [
            Heartbeat.self, StatusRequest.self, StatusResponse.self,
            KeyImportRequest.self, KeyImportResponse.self,
            RepairDeltasRequest.self, RepairShares.self, RepairSigmaRequest.self, RepairInstallRequest.self,
            CommitmentsRequest.self, CommitmentsResponse.self, SignRequest.self, SignResponse.self,
            PolicyPushRequest.self, PolicyPushResponse.self, PolicyFetchRequest.self, PolicyFetchResponse.self,
            DecideRequest.self, DecideResponse.self, SettleRequest.self, SettleResponse.self,
            CredentialPutRequest.self, CredentialPutResponse.self,
        ] + ceremonyMessages + logMessages)

    /// The name of the message registered as `messageType`, or nil.
    public func name(of messageType: UInt16) -> String? { types[messageType]?.name }

    /// Whether `messageType` is registered.
    public func contains(_ messageType: UInt16) -> Bool { types[messageType] != nil }

    /// The registered message type numbers, ascending.
    public var messageTypes: [UInt16] { types.keys.sorted() }

    /// Decodes the payload of a request, response or one-way frame as the message its header
    /// names.
    ///
    /// - Throws: ``WireError/Code/unknownMessageType`` for a type not registered,
    ///   ``WireError/Code/wrongMessageType`` for an error-response frame (read those with
    ///   ``Frame/errorResponse()``), or the message's own ``WireError``.
    public func decode(_ frame: Frame) throws(WireError) -> any WireMessage {
        guard frame.kind != .errorResponse else {
            throw WireError(
                .wrongMessageType, field: "", offset: 0,
                "an error-response frame carries an ErrorResponse, not message type \(frame.messageType)")
        }
        guard let type = types[frame.messageType] else {
            throw WireError(
                .unknownMessageType, field: "", offset: 0,
                "message type \(frame.messageType) is not one this build knows (docs/protocol.md lists them)"
            )
        }
        return try type.decode(payload: frame.payload)
    }
}

extension Frame {
    /// A request carrying `message`.
    ///
    /// - Throws: ``FrameError/Code/missingCorrelationID`` for correlation id 0.
    public static func request(
        _ message: some WireMessage, correlationID: UInt64, deadlineMilliseconds: UInt32 = 0
    ) throws(FrameError) -> Frame {
        try Frame(
            kind: .request, messageType: type(of: message).type, correlationID: correlationID,
            deadlineMilliseconds: deadlineMilliseconds, payload: message.encodedPayload())
    }

    /// A one-way frame carrying `message`.
    public static func oneWay(_ message: some WireMessage) -> Frame {
        Frame(
            unchecked: .oneWay, messageType: type(of: message).type, correlationID: 0, deadlineMilliseconds: 0,
            payload: message.encodedPayload())
    }

    /// The response carrying `message` to `request`.
    ///
    /// - Throws: ``FrameError/Code/missingCorrelationID`` when `request` is a one-way frame (there
    ///   is nothing to answer).
    public static func response(_ message: some WireMessage, to request: Frame) throws(FrameError) -> Frame {
        try Frame(
            kind: .response, messageType: type(of: message).type, correlationID: request.correlationID,
            payload: message.encodedPayload())
    }

    /// The error response `error` to `request`, echoing its message type.
    ///
    /// - Throws: ``FrameError/Code/missingCorrelationID`` when `request` is a one-way frame.
    public static func errorResponse(_ error: ErrorResponse, to request: Frame) throws(FrameError) -> Frame {
        try Frame(
            kind: .errorResponse, messageType: request.messageType, correlationID: request.correlationID,
            payload: error.encodedPayload())
    }

    /// The payload as `Message`.
    ///
    /// - Throws: ``WireError/Code/wrongMessageType`` when the frame is an error response or names
    ///   another type, or the message's own ``WireError``.
    public func decode<Message: WireMessage>(_: Message.Type) throws(WireError) -> Message {
        guard kind != .errorResponse, messageType == Message.type else {
            throw WireError(
                .wrongMessageType, field: "", offset: 0,
                "expected \(Message.name) (type \(Message.type)), got a \(kind) of type \(messageType)")
        }
        return try Message.decode(payload: payload)
    }

    /// The ``ErrorResponse`` an error-response frame carries.
    ///
    /// - Throws: ``WireError/Code/wrongMessageType`` for any other kind of frame, or the
    ///   ``WireError`` of a malformed payload.
    public func errorResponse() throws(WireError) -> ErrorResponse {
        guard kind == .errorResponse else {
            throw WireError(.wrongMessageType, field: "", offset: 0, "expected an error response, got a \(kind)")
        }
        return try ErrorResponse.decode(payload: payload)
    }
}
