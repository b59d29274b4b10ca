/// A participant identifier: a non-zero integer, used as the x coordinate of its share.
///
/// Identifiers are small integers (node ids 1…65535), so they are the same value in every
/// ciphersuite; `scalar(in:)` gives the field element RFC 9591 serializes.
public struct Identifier: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public let value: UInt16

    /// Fails for zero, which would make the share equal to the secret itself.
    public init(_ value: UInt16) throws(CryptoError) {
        guard value != 0 else { throw CryptoError(.invalidIdentifier, "identifier 0 is not allowed") }
        self.value = value
    }

    /// Parses an identifier from untrusted input (a file, a flag).
    public init(parsing value: Int) throws(CryptoError) {
        guard value > 0, value <= Int(UInt16.max) else {
            throw CryptoError(.invalidIdentifier, "identifier \(value) is outside 1…\(UInt16.max)")
        }
        self.value = UInt16(value)
    }

    public func scalar<C: Ciphersuite>(in _: C.Type) -> C.Scalar { C.Scalar(UInt64(value)) }

    public static func < (a: Identifier, b: Identifier) -> Bool { a.value < b.value }
    public var description: String { String(value) }

    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(Int.self)
        self = try Identifier(parsing: raw)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Int(value))
    }
}

/// Checks a list of identifiers: all distinct (`what` names the list in the error).
func requireDistinct(_ ids: [Identifier], _ what: String) throws(CryptoError) {
    var seen = Set<Identifier>()
    var duplicates = Set<Identifier>()
    for id in ids where !seen.insert(id).inserted { duplicates.insert(id) }
    if !duplicates.isEmpty {
        throw CryptoError(
            .duplicateIdentifier, "\(what) names a participant more than once", culprits: Array(duplicates))
    }
}
