/// Writes a payload in the message codec of `docs/protocol.md`: big-endian fixed-width integers,
/// booleans as one byte 0 or 1, byte strings and UTF-8 strings after a 4-byte length, arrays after
/// a 4-byte count, optionals after a presence byte. No varints and no choices, so every value has
/// exactly one encoding, and ``WireReader`` refuses every other.
public struct WireWriter: Sendable {
    /// What has been written so far.
    public private(set) var bytes: [UInt8] = []

    /// An empty writer.
    public init() {}

    /// Writes one byte.
    public mutating func write(_ value: UInt8) { bytes.append(value) }
    /// Writes 2 bytes, big-endian.
    public mutating func write(_ value: UInt16) { bytes.appendBigEndian(value) }
    /// Writes 4 bytes, big-endian.
    public mutating func write(_ value: UInt32) { bytes.appendBigEndian(value) }
    /// Writes 8 bytes, big-endian.
    public mutating func write(_ value: UInt64) { bytes.appendBigEndian(value) }
    /// Writes 8 bytes, two's complement, big-endian.
    public mutating func write(_ value: Int64) { bytes.appendBigEndian(value) }
    /// Writes one byte, 1 for true and 0 for false.
    public mutating func write(_ value: Bool) { bytes.append(value ? 1 : 0) }

    /// Writes a 4-byte length and the bytes.
    public mutating func write(bytes value: some Collection<UInt8>) {
        writeLength(value.count)
        bytes.append(contentsOf: value)
    }

    /// Writes a 4-byte length and the string's UTF-8 bytes.
    public mutating func write(string value: String) {
        write(bytes: value.utf8)
    }

    /// Writes a 4-byte count and each element with `element`.
    public mutating func write<Element>(
        array value: some Collection<Element>, _ element: (inout WireWriter, Element) -> Void
    ) {
        writeLength(value.count)
        for item in value { element(&self, item) }
    }

    /// Writes presence byte 0 for nil, or 1 and the value with `wrapped`.
    public mutating func write<Wrapped>(optional value: Wrapped?, _ wrapped: (inout WireWriter, Wrapped) -> Void) {
        if let value {
            write(true)
            wrapped(&self, value)
        } else {
            write(false)
        }
    }

    /// Writes a nested value with its own encoding.
    public mutating func write(_ value: some WireCodable) {
        value.encode(into: &self)
    }

    private mutating func writeLength(_ count: Int) {
        // A frame cannot exceed 4 GiB, so no payload holds a longer field; reaching this is a bug
        // in the caller, not bad input.
        precondition(count <= Int(UInt32.max), "a field of \(count) bytes or elements cannot be encoded")
        write(UInt32(count))
    }
}
