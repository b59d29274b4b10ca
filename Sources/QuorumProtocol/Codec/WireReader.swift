/// Reads a payload written by ``WireWriter``, strictly: every read is bounds-checked, a declared
/// length or count is refused before anything is allocated for it unless the payload still holds
/// that many bytes, booleans and presence bytes must be 0 or 1, strings must be valid UTF-8, and
/// ``finish()`` refuses bytes left after the last field. Together these make decoding the inverse
/// of encoding: a payload that decodes re-encodes to the same bytes.
///
/// Every read names its field, so a refusal says which field was wrong and where
/// (`invalid-utf8: Heartbeat.bundleDigest at byte 27: …`).
public struct WireReader: Sendable {
    private let bytes: [UInt8]
    /// The offset of the next byte to read.
    public private(set) var offset: Int = 0

    /// A reader at the start of `payload`.
    public init(_ payload: [UInt8]) {
        self.bytes = payload
    }

    /// Bytes not yet read.
    public var remaining: Int { bytes.count - offset }

    /// Reads one byte.
    public mutating func readUInt8(_ field: String) throws(WireError) -> UInt8 {
        try readInteger(UInt8.self, field)
    }

    /// Reads 2 bytes, big-endian.
    public mutating func readUInt16(_ field: String) throws(WireError) -> UInt16 {
        try readInteger(UInt16.self, field)
    }

    /// Reads 4 bytes, big-endian.
    public mutating func readUInt32(_ field: String) throws(WireError) -> UInt32 {
        try readInteger(UInt32.self, field)
    }

    /// Reads 8 bytes, big-endian.
    public mutating func readUInt64(_ field: String) throws(WireError) -> UInt64 {
        try readInteger(UInt64.self, field)
    }

    /// Reads 8 bytes, two's complement, big-endian.
    public mutating func readInt64(_ field: String) throws(WireError) -> Int64 {
        try readInteger(Int64.self, field)
    }

    /// Reads one byte that must be 0 (false) or 1 (true).
    ///
    /// - Throws: ``WireError/Code/invalidBool`` for any other byte.
    public mutating func readBool(_ field: String) throws(WireError) -> Bool {
        let start = offset
        switch try readUInt8(field) {
        case 0: return false
        case 1: return true
        case let other: throw WireError(.invalidBool, field: field, offset: start, "boolean byte \(other); only 0 or 1")
        }
    }

    /// Reads a 4-byte length and that many bytes.
    ///
    /// - Throws: ``WireError/Code/lengthExceedsRemaining`` when the length exceeds the bytes left,
    ///   ``WireError/Code/invalidValue`` when it exceeds `maximumLength`.
    public mutating func readBytes(_ field: String, maximumLength: Int = .max) throws(WireError) -> [UInt8] {
        let start = offset
        let length = try readLength(field, elementLength: 1)
        guard length <= maximumLength else {
            offset = start
            throw WireError(
                .invalidValue, field: field, offset: start, "\(length) bytes; at most \(maximumLength) are allowed")
        }
        defer { offset += length }
        return Array(bytes[offset..<(offset + length)])
    }

    /// Reads a 4-byte length and that many bytes of UTF-8.
    ///
    /// - Throws: ``WireError/Code/invalidUTF8`` when the bytes are not valid UTF-8, and the errors
    ///   of ``readBytes(_:maximumLength:)``.
    public mutating func readString(_ field: String, maximumLength: Int = .max) throws(WireError) -> String {
        let start = offset
        let utf8 = try readBytes(field, maximumLength: maximumLength)
        guard let string = String(validating: utf8, as: UTF8.self) else {
            throw WireError(.invalidUTF8, field: field, offset: start, "\(utf8.count) bytes that are not valid UTF-8")
        }
        return string
    }

    /// Reads a 4-byte count and that many elements with `element`.
    ///
    /// `minimumElementLength` is the fewest bytes one element can take (at least 1); a count that
    /// the remaining bytes cannot hold is refused before anything is allocated for it. An error in
    /// an element names it: `field[index].inner`.
    public mutating func readArray<Element>(
        _ field: String, minimumElementLength: Int = 1, maximumCount: Int = .max,
        _ element: (inout WireReader) throws(WireError) -> Element
    ) throws(WireError) -> [Element] {
        precondition(minimumElementLength >= 1, "every encoded element takes at least one byte")
        let start = offset
        let count = try readLength(field, elementLength: minimumElementLength)
        guard count <= maximumCount else {
            offset = start
            throw WireError(
                .invalidValue, field: field, offset: start, "\(count) elements; at most \(maximumCount) are allowed")
        }
        var elements: [Element] = []
        elements.reserveCapacity(count)
        for index in 0..<count {
            do throws(WireError) {
                elements.append(try element(&self))
            } catch {
                throw error.nested(under: "\(field)[\(index)]")
            }
        }
        return elements
    }

    /// Reads a presence byte, then the value with `wrapped` when it is 1.
    ///
    /// - Throws: ``WireError/Code/invalidOptionalTag`` for a presence byte other than 0 or 1.
    public mutating func readOptional<Wrapped>(
        _ field: String, _ wrapped: (inout WireReader) throws(WireError) -> Wrapped
    ) throws(WireError) -> Wrapped? {
        let start = offset
        switch try readUInt8(field) {
        case 0:
            return nil
        case 1:
            do throws(WireError) {
                return try wrapped(&self)
            } catch {
                throw error.nested(under: field)
            }
        case let other:
            throw WireError(
                .invalidOptionalTag, field: field, offset: start, "presence byte \(other); only 0 (absent) or 1")
        }
    }

    /// Reads a nested value with its own decoding; its errors are named under `field`.
    public mutating func read<Value: WireCodable>(_: Value.Type, _ field: String) throws(WireError) -> Value {
        do throws(WireError) {
            return try Value(from: &self)
        } catch {
            throw error.nested(under: field)
        }
    }

    /// Refuses bytes left after the last field.
    ///
    /// - Throws: ``WireError/Code/trailingBytes`` when any byte is unread.
    public func finish() throws(WireError) {
        guard remaining == 0 else {
            throw WireError(
                .trailingBytes, field: "", offset: offset,
                "\(remaining) bytes after the last field of a \(bytes.count)-byte payload")
        }
    }

    /// An ``WireError/Code/invalidValue`` refusal of `field`, which started at `offset`, for a
    /// message's own rules (a node id of 0, an unsorted list).
    public func invalidValue(_ field: String, at offset: Int, _ reason: String) -> WireError {
        WireError(.invalidValue, field: field, offset: offset, reason)
    }

    private mutating func readInteger<T: FixedWidthInteger>(_: T.Type, _ field: String) throws(WireError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else {
            throw WireError(
                .truncated, field: field, offset: offset, "needs \(size) bytes, \(remaining) left in the payload")
        }
        defer { offset += size }
        return bytes.bigEndianInteger(T.self, at: offset)
    }

    /// Reads a 4-byte length or count and checks that the rest of the payload can hold it.
    private mutating func readLength(_ field: String, elementLength: Int) throws(WireError) -> Int {
        let start = offset
        let length = Int(try readUInt32(field))
        guard length * elementLength <= remaining else {
            let left = remaining
            offset = start
            let unit = elementLength == 1 ? "bytes" : "elements of at least \(elementLength) bytes"
            throw WireError(
                .lengthExceedsRemaining, field: field, offset: start,
                "declares \(length) \(unit), but \(left) bytes are left")
        }
        return length
    }
}

extension WireError {
    /// The same error with its field named under `prefix` (`peers[2]` + `nodeID`).
    func nested(under prefix: String) -> WireError {
        let qualified: String
        if prefix.isEmpty {
            qualified = field
        } else if field.isEmpty || field == prefix {
            qualified = prefix
        } else if field.hasPrefix("[") {
            qualified = prefix + field
        } else {
            qualified = "\(prefix).\(field)"
        }
        return WireError(code, field: qualified, offset: offset, reason)
    }
}
