import QuorumProtocol
import Testing

@Suite struct Codec {
    @Test func primitivesAreBigEndianAndFixedWidth() throws {
        var writer = WireWriter()
        writer.write(UInt8(0xAB))
        writer.write(UInt16(0x0102))
        writer.write(UInt32(0x0304_0506))
        writer.write(UInt64(0x0708_090A_0B0C_0D0E))
        writer.write(Int64(-2))
        writer.write(true)
        writer.write(false)
        writer.write(bytes: [9, 8])
        writer.write(string: "é")
        writer.write(array: [UInt16(5), 6]) { $0.write($1) }
        writer.write(optional: UInt16?.none) { $0.write($1) }
        writer.write(optional: UInt16(7)) { $0.write($1) }
        #expect(
            writer.bytes
                == hexBytes(
                    """
                    ab 0102 03040506 0708090a0b0c0d0e fffffffffffffffe 01 00
                    00000002 0908 00000002 c3a9 00000002 0005 0006 00 01 0007
                    """))

        var reader = WireReader(writer.bytes)
        #expect(try reader.readUInt8("a") == 0xAB)
        #expect(try reader.readUInt16("b") == 0x0102)
        #expect(try reader.readUInt32("c") == 0x0304_0506)
        #expect(try reader.readUInt64("d") == 0x0708_090A_0B0C_0D0E)
        #expect(try reader.readInt64("e") == -2)
        #expect(try reader.readBool("f") == true)
        #expect(try reader.readBool("g") == false)
        #expect(try reader.readBytes("h") == [9, 8])
        #expect(try reader.readString("i") == "é")
        #expect(
            try reader.readArray("j", minimumElementLength: 2) { r throws(WireError) in try r.readUInt16("") } == [
                5, 6,
            ])
        #expect(try reader.readOptional("k") { r throws(WireError) in try r.readUInt16("") } == nil)
        #expect(try reader.readOptional("l") { r throws(WireError) in try r.readUInt16("") } == 7)
        #expect(reader.remaining == 0)
        try reader.finish()
    }

    @Test func aFieldPastTheEndIsTruncated() {
        var reader = WireReader([1, 2, 3])
        let error = #expect(throws: WireError.self) { try reader.readUInt32("count") }
        #expect(error == WireError(.truncated, field: "count", offset: 0, "needs 4 bytes, 3 left in the payload"))
        #expect(reader.offset == 0)
    }

    @Test func aLengthBeyondThePayloadIsRefusedBeforeReading() {
        var reader = WireReader([0xFF, 0xFF, 0xFF, 0xFF, 1, 2])
        let error = #expect(throws: WireError.self) { try reader.readBytes("blob") }
        #expect(error?.code == .lengthExceedsRemaining)
        #expect(error?.reason == "declares 4294967295 bytes, but 2 bytes are left")
        #expect(reader.offset == 0)
    }

    @Test func aCountBeyondThePayloadIsRefusedBeforeAllocating() {
        // 3 elements of at least 2 bytes cannot fit in 5 bytes.
        var reader = WireReader([0, 0, 0, 3, 0, 1, 0, 2, 0])
        let error = #expect(throws: WireError.self) {
            try reader.readArray("peers", minimumElementLength: 2) { r throws(WireError) in try r.readUInt16("") }
        }
        #expect(error?.code == .lengthExceedsRemaining)
        #expect(error?.reason == "declares 3 elements of at least 2 bytes, but 5 bytes are left")
    }

    @Test func limitsOnLengthAndCountAreValueErrors() {
        var reader = WireReader([0, 0, 0, 3, 1, 2, 3])
        #expect(throws: WireError(.invalidValue, field: "key", offset: 0, "3 bytes; at most 2 are allowed")) {
            try reader.readBytes("key", maximumLength: 2)
        }
        var counted = WireReader([0, 0, 0, 3, 1, 2, 3])
        let error = #expect(throws: WireError.self) {
            try counted.readArray("ids", maximumCount: 2) { r throws(WireError) in try r.readUInt8("") }
        }
        #expect(error?.code == .invalidValue)
    }

    @Test func trailingBytesAreRefused() throws {
        var reader = WireReader([0, 1, 2])
        _ = try reader.readUInt16("x")
        #expect(
            throws: WireError(.trailingBytes, field: "", offset: 2, "1 bytes after the last field of a 3-byte payload")
        ) {
            try reader.finish()
        }
    }

    @Test(
        arguments: [
            [0xC3, 0x28],  // a lead byte without its continuation
            [0xC0, 0x80],  // overlong NUL
            [0xED, 0xA0, 0x80],  // UTF-16 surrogate
            [0xF4, 0x90, 0x80, 0x80],  // beyond U+10FFFF
            [0xFF],
            [0x61, 0xE2, 0x82],  // cut mid-character
        ] as [[UInt8]])
    func invalidUTF8IsRefused(_ utf8: [UInt8]) {
        var writer = WireWriter()
        writer.write(bytes: utf8)
        var reader = WireReader(writer.bytes)
        let error = #expect(throws: WireError.self) { try reader.readString("name") }
        #expect(error?.code == .invalidUTF8)
        #expect(error?.field == "name")
    }

    @Test(arguments: [2, 0x80, 0xFF] as [UInt8])
    func aBooleanIsZeroOrOne(_ byte: UInt8) {
        var reader = WireReader([byte])
        let error = #expect(throws: WireError.self) { try reader.readBool("isUp") }
        #expect(error?.code == .invalidBool)
    }

    @Test(arguments: [2, 0xFF] as [UInt8])
    func aPresenceByteIsZeroOrOne(_ byte: UInt8) {
        var reader = WireReader([byte, 0, 0])
        let error = #expect(throws: WireError.self) {
            try reader.readOptional("groupKey") { r throws(WireError) in try r.readUInt16("") }
        }
        #expect(error?.code == .invalidOptionalTag)
    }

    @Test func errorsNameTheElementAndField() {
        // A StatusResponse whose second peer has isUp = 7.
        var writer = WireWriter()
        writer.write(UInt16(1))
        writer.write(UInt64(1))
        writer.write(Int64(1))
        writer.write(false)
        writer.write(optional: [UInt8]?.none) { $0.write(bytes: $1) }
        writer.write(optional: String?.none) { $0.write(string: $1) }
        writer.write(UInt32(2))
        writer.write(UInt16(2))
        writer.write(true)
        writer.write(false)
        writer.write(UInt16(3))
        writer.write(UInt8(7))
        writer.write(false)
        let error = #expect(throws: WireError.self) { try StatusResponse.decode(payload: writer.bytes) }
        #expect(error?.code == .invalidBool)
        #expect(error?.field == "StatusResponse.peers[1].isUp")
        #expect(error?.offset == 31)
        #expect(
            error?.description == "invalid-bool: StatusResponse.peers[1].isUp at byte 31: boolean byte 7; only 0 or 1")
    }
}
