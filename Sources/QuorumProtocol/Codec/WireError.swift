/// A payload the message codec refused: a stable code, the field at fault, its offset in the
/// payload, and a reason naming what would have been valid.
///
/// A `WireError` while handling a request becomes an ``ErrorResponse`` to that request; the
/// connection stays open (the frame itself was sound).
public struct WireError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of refusal this is; stable across releases.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// A fixed-width field runs past the end of the payload.
        case truncated = "truncated"
        /// A byte string, string or array declares more bytes or elements than the payload has
        /// left.
        case lengthExceedsRemaining = "length-exceeds-remaining"
        /// Bytes are left after the message's last field.
        case trailingBytes = "trailing-bytes"
        /// A string field is not valid UTF-8.
        case invalidUTF8 = "invalid-utf8"
        /// A boolean byte other than 0 or 1.
        case invalidBool = "invalid-bool"
        /// An optional's presence byte other than 0 or 1.
        case invalidOptionalTag = "invalid-optional-tag"
        /// Well-formed bytes whose value the message does not allow (a node id of 0, an unsorted
        /// list, a key of the wrong length).
        case invalidValue = "invalid-value"
        /// A frame whose message type no registered message has.
        case unknownMessageType = "unknown-message-type"
        /// A frame decoded as a message of another type than its header names.
        case wrongMessageType = "wrong-message-type"
    }

    /// What kind of refusal this is.
    public let code: Code
    /// The field at fault, as `Message.field[index].field`; the message alone when no field
    /// applies (trailing bytes), empty when the message type itself was refused.
    public let field: String
    /// The offset in the payload where the field at fault starts.
    public let offset: Int
    /// What was wrong and what would have been valid; never quotes secret bytes.
    public let reason: String

    /// A refusal of kind `code` of `field` at payload offset `offset`.
    public init(_ code: Code, field: String, offset: Int, _ reason: String) {
        self.code = code
        self.field = field
        self.offset = offset
        self.reason = reason
    }

    /// `code: field at byte N: reason`, on one line; `code: reason` for a refusal of the frame's
    /// message type rather than of a field.
    public var description: String {
        field.isEmpty ? "\(code.rawValue): \(reason)" : "\(code.rawValue): \(field) at byte \(offset): \(reason)"
    }
}
