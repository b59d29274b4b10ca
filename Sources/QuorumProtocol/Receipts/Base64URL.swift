/// base64url without padding (RFC 4648 §5, as RFC 7515 §2 uses it), read strictly.
///
/// Strict so that one JWS segment has one spelling: padding, characters outside the alphabet, a
/// length of 1 mod 4 and non-zero unused trailing bits are refused, since each would let two
/// different strings decode to the same bytes.
enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// The encoding of `bytes`, unpadded.
    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index + 3 <= bytes.count {
            let n = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            out += [18, 12, 6, 0].map { alphabet[Int((n >> $0) & 63)] }
            index += 3
        }
        switch bytes.count - index {
        case 1:
            let n = UInt32(bytes[index]) << 16
            out += [18, 12].map { alphabet[Int((n >> $0) & 63)] }
        case 2:
            let n = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8
            out += [18, 12, 6].map { alphabet[Int((n >> $0) & 63)] }
        default: break
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Why `text` is not canonical unpadded base64url.
    enum Problem: Error, Equatable {
        /// A `=`, at `offset`.
        case padding(offset: Int)
        /// A byte outside the base64url alphabet, at `offset`.
        case character(UInt8, offset: Int)
        /// A length of 1 mod 4, which no byte string encodes to.
        case length(Int)
        /// The last character carries bits that no encoder would set.
        case trailingBits

        var reason: String {
            switch self {
            case .padding(let offset):
                "padding '=' at character \(offset); base64url in a JWS is unpadded (RFC 7515 §2)"
            case .character(let byte, let offset):
                "the byte 0x\(String(byte, radix: 16)) at character \(offset) is not base64url (A-Z a-z 0-9 - _)"
            case .length(let count):
                "\(count) characters cannot be base64url (a length of 1 mod 4 encodes nothing)"
            case .trailingBits:
                "the last character has non-zero unused bits; not the canonical base64url of any bytes"
            }
        }
    }

    /// The bytes `text` encodes, or why it is not canonical unpadded base64url.
    static func decode(_ text: Substring) -> Result<[UInt8], Problem> {
        let chars = Array(text.utf8)
        var values: [UInt8] = []
        values.reserveCapacity(chars.count)
        for (offset, char) in chars.enumerated() {
            switch char {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): values.append(char - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): values.append(char - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): values.append(char - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "-"): values.append(62)
            case UInt8(ascii: "_"): values.append(63)
            case UInt8(ascii: "="): return .failure(.padding(offset: offset))
            default: return .failure(.character(char, offset: offset))
            }
        }
        guard values.count % 4 != 1 else { return .failure(.length(values.count)) }
        var out: [UInt8] = []
        out.reserveCapacity(values.count * 3 / 4)
        var index = 0
        while index + 4 <= values.count {
            let n =
                UInt32(values[index]) << 18 | UInt32(values[index + 1]) << 12 | UInt32(values[index + 2]) << 6
                | UInt32(values[index + 3])
            out += [UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)]
            index += 4
        }
        switch values.count - index {
        case 2:
            guard values[index + 1] & 0x0F == 0 else { return .failure(.trailingBits) }
            out.append(values[index] << 2 | values[index + 1] >> 4)
        case 3:
            guard values[index + 2] & 0x03 == 0 else { return .failure(.trailingBits) }
            let n = UInt32(values[index]) << 12 | UInt32(values[index + 1]) << 6 | UInt32(values[index + 2])
            out += [UInt8(n >> 10 & 0xFF), UInt8(n >> 2 & 0xFF)]
        default: break
        }
        return .success(out)
    }
}
