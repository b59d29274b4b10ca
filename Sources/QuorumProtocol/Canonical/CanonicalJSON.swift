/// The JSON subset that receipts and sealed-credential records use, written in RFC 8785 (JCS)
/// canonical form and read by a strict parser.
///
/// Why a reader of its own rather than QuorumPolicy's `JSONParser` or Foundation's
/// `JSONSerialization`: QuorumProtocol may import only QuorumCrypto (DESIGN.md §3), and
/// `JSONSerialization` keeps the last of two duplicate keys without saying so, which a verifier
/// must refuse (two readers could see different claims). The subset is small: objects, arrays,
/// strings and integers up to 2⁵³ − 1 in magnitude (the I-JSON range, where JCS writes an integer
/// as plain decimal). `true`, `false`, `null`, fractions and exponents are refused, since no field
/// of ours has them; refusing them keeps "one value, one byte string" easy to see.
///
/// Writing: keys sorted by their UTF-16 code units, no whitespace, strings escaped as JCS says
/// (only `"`, `\`, and characters below U+0020; `\b \f \n \r \t` short, the rest `\u00xx` in
/// lower-case hex), everything else as raw UTF-8.
public enum CanonicalJSON {
    /// A value of the subset.
    public indirect enum Value: Sendable, Equatable {
        case string(String)
        case integer(Int64)
        case array([Value])
        /// Members by key; the reader refuses duplicate keys, so a dictionary loses nothing.
        case object([String: Value])

        /// The member `key` of an object, or nil.
        public subscript(key: String) -> Value? {
            guard case .object(let members) = self else { return nil }
            return members[key]
        }

        /// What kind of value this is, for error messages ("a string", "an array").
        public var kind: String {
            switch self {
            case .string: "a string"
            case .integer: "an integer"
            case .array: "an array"
            case .object: "an object"
            }
        }
    }

    /// The largest magnitude an integer may have: 2⁵³ − 1, so every JSON reader (JavaScript's
    /// included) reads the same number and JCS writes it as plain decimal.
    public static let maximumInteger: Int64 = (1 << 53) - 1

    /// Why some bytes are not a value of the subset, and where.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        /// What kind of refusal this is; stable across releases.
        public enum Code: String, Sendable, Equatable {
            /// The bytes are not well-formed UTF-8.
            case invalidUTF8 = "invalid-utf8"
            /// An object names the same key twice (after unescaping).
            case duplicateKey = "duplicate-key"
            /// Not JSON, or JSON outside the subset (a literal, a fraction, an out-of-range
            /// integer, nesting too deep).
            case syntax = "syntax"
        }

        /// What kind of refusal this is.
        public let code: Code
        /// The byte offset where the problem starts.
        public let offset: Int
        /// What was wrong and what would have been valid.
        public let reason: String

        /// A refusal of kind `code` at `offset`.
        public init(_ code: Code, offset: Int, _ reason: String) {
            self.code = code
            self.offset = offset
            self.reason = reason
        }

        /// `reason at byte N`.
        public var description: String { "\(reason) at byte \(offset)" }
    }

    // MARK: Writing

    /// The canonical bytes of `value`.
    public static func encode(_ value: Value) -> [UInt8] {
        var out: [UInt8] = []
        write(value, into: &out)
        return out
    }

    private static func write(_ value: Value, into out: inout [UInt8]) {
        switch value {
        case .string(let text):
            writeString(text, into: &out)
        case .integer(let number):
            out += String(number).utf8
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                write(item, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (index, key) in members.keys.sorted(by: utf16Precedes).enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                write(members[key]!, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// `value` indented by two spaces, keys in canonical order, for people to read. Arrays of
    /// integers stay on one line; other arrays put one item on each. Not a signing format.
    public static func prettyEncode(_ value: Value) -> String {
        var out: [UInt8] = []
        writePretty(value, indent: 0, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static func writePretty(_ value: Value, indent: Int, into out: inout [UInt8]) {
        let inner = [UInt8](repeating: UInt8(ascii: " "), count: indent + 2)
        let outer = [UInt8](repeating: UInt8(ascii: " "), count: indent)
        switch value {
        case .string, .integer:
            write(value, into: &out)
        case .array(let items):
            if items.isEmpty {
                out += Array("[]".utf8)
            } else if items.allSatisfy({ if case .integer = $0 { true } else { false } }) {
                out += Array("[".utf8)
                for (index, item) in items.enumerated() {
                    if index > 0 { out += Array(", ".utf8) }
                    write(item, into: &out)
                }
                out += Array("]".utf8)
            } else {
                out += Array("[\n".utf8)
                for (index, item) in items.enumerated() {
                    out += inner
                    writePretty(item, indent: indent + 2, into: &out)
                    out += Array((index + 1 < items.count ? ",\n" : "\n").utf8)
                }
                out += outer + Array("]".utf8)
            }
        case .object(let members):
            if members.isEmpty {
                out += Array("{}".utf8)
                return
            }
            out += Array("{\n".utf8)
            let keys = members.keys.sorted(by: utf16Precedes)
            for (index, key) in keys.enumerated() {
                out += inner
                writeString(key, into: &out)
                out += Array(": ".utf8)
                writePretty(members[key]!, indent: indent + 2, into: &out)
                out += Array((index + 1 < keys.count ? ",\n" : "\n").utf8)
            }
            out += outer + Array("}".utf8)
        }
    }

    /// JCS key order (RFC 8785 §3.2.3): lexicographic over UTF-16 code units, not scalars or bytes.
    static func utf16Precedes(_ a: String, _ b: String) -> Bool {
        a.utf16.lexicographicallyPrecedes(b.utf16)
    }

    /// A string with JCS escaping (RFC 8785 §3.2.2.2, which is ECMAScript's `JSON.stringify`).
    public static func writeString(_ text: String, into out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x08: out += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
            case 0x0C: out += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
            case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0x00..<0x20:
                out += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    // MARK: Reading

    /// The deepest nesting accepted; our documents nest two levels.
    public static let maximumDepth = 8

    /// Parses `bytes` as one value of the subset, with optional whitespace around it.
    public static func parse(_ bytes: [UInt8]) throws(ParseError) -> Value {
        var reader = Reader(bytes: bytes)
        return try reader.document()
    }

    /// The offset of the first byte that does not begin or continue a well-formed UTF-8 sequence
    /// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), or nil.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var index = 0
        while index < bytes.count {
            let lead = bytes[index]
            let length: Int
            var low: UInt8 = 0x80
            var high: UInt8 = 0xBF
            switch lead {
            case 0x00...0x7F:
                index += 1
                continue
            case 0xC2...0xDF: length = 2
            case 0xE0: (length, low) = (3, 0xA0)
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: (length, high) = (3, 0x9F)
            case 0xF0: (length, low) = (4, 0x90)
            case 0xF1...0xF3: length = 4
            case 0xF4: (length, high) = (4, 0x8F)
            default: return index
            }
            guard index + length <= bytes.count, (low...high).contains(bytes[index + 1]) else { return index }
            for next in (index + 2)..<(index + length) where !(0x80...0xBF).contains(bytes[next]) { return index }
            index += length
        }
        return nil
    }

    private struct Reader {
        let bytes: [UInt8]
        var index = 0

        mutating func document() throws(ParseError) -> Value {
            if let bad = CanonicalJSON.firstInvalidUTF8(bytes) {
                throw ParseError(.invalidUTF8, offset: bad, "not well-formed UTF-8")
            }
            skipWhitespace()
            let value = try self.value(depth: 1)
            skipWhitespace()
            guard index == bytes.count else { throw syntax("unexpected data after the value") }
            return value
        }

        private func syntax(_ reason: String, at offset: Int? = nil) -> ParseError {
            ParseError(.syntax, offset: offset ?? index, reason)
        }

        private mutating func skipWhitespace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        private mutating func value(depth: Int) throws(ParseError) -> Value {
            guard depth <= CanonicalJSON.maximumDepth else {
                throw syntax("nesting deeper than \(CanonicalJSON.maximumDepth) levels")
            }
            guard index < bytes.count else { throw syntax("the input ends where a value was expected") }
            switch bytes[index] {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .integer(try integer())
            case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
                throw syntax("true, false and null are not used here; expected a string, integer, array or object")
            default:
                throw syntax("unexpected byte 0x\(String(bytes[index], radix: 16)); expected a value")
            }
        }

        private mutating func object(depth: Int) throws(ParseError) -> Value {
            index += 1
            var members: [String: Value] = [:]
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(members)
            }
            while true {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                    throw syntax("expected a quoted key")
                }
                let keyOffset = index
                let key = try string()
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                    throw syntax("expected ':' after the key \"\(key)\"")
                }
                index += 1
                skipWhitespace()
                let value = try self.value(depth: depth + 1)
                guard members.updateValue(value, forKey: key) == nil else {
                    throw ParseError(.duplicateKey, offset: keyOffset, "the key \"\(key)\" appears twice")
                }
                skipWhitespace()
                guard index < bytes.count else { throw syntax("the input ends inside an object") }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                guard bytes[index] == UInt8(ascii: "}") else { throw syntax("expected ',' or '}' in an object") }
                index += 1
                return .object(members)
            }
        }

        private mutating func array(depth: Int) throws(ParseError) -> Value {
            index += 1
            var items: [Value] = []
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(items)
            }
            while true {
                skipWhitespace()
                items.append(try value(depth: depth + 1))
                skipWhitespace()
                guard index < bytes.count else { throw syntax("the input ends inside an array") }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                guard bytes[index] == UInt8(ascii: "]") else { throw syntax("expected ',' or ']' in an array") }
                index += 1
                return .array(items)
            }
        }

        /// An integer: an optional `-`, then `0` or a digit string without a leading zero; no
        /// fraction, no exponent, magnitude at most 2⁵³ − 1, and not `-0` (which has no distinct
        /// canonical form).
        private mutating func integer() throws(ParseError) -> Int64 {
            let start = index
            let negative = bytes[index] == UInt8(ascii: "-")
            if negative { index += 1 }
            let digitsStart = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            let digits = bytes[digitsStart..<index]
            guard !digits.isEmpty else { throw syntax("a '-' without digits", at: start) }
            if index < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[index]) {
                throw syntax("a number with a fraction or exponent; only integers are used here", at: start)
            }
            guard digits.count == 1 || digits.first != UInt8(ascii: "0") else {
                throw syntax("an integer with a leading zero", at: start)
            }
            guard digits.count <= 16, let magnitude = Int64(String(decoding: digits, as: UTF8.self)),
                magnitude <= CanonicalJSON.maximumInteger
            else {
                throw syntax("an integer beyond ±\(CanonicalJSON.maximumInteger)", at: start)
            }
            guard !(negative && magnitude == 0) else { throw syntax("-0 is not an integer here", at: start) }
            return negative ? -magnitude : magnitude
        }

        /// A string with RFC 8259 escapes; a `\u` escape of half a surrogate pair is refused.
        private mutating func string() throws(ParseError) -> String {
            let start = index
            index += 1
            var scalars = String.UnicodeScalarView()
            var runStart = index
            func flush(_ end: Int) { scalars += String(decoding: bytes[runStart..<end], as: UTF8.self).unicodeScalars }
            while true {
                guard index < bytes.count else { throw syntax("the input ends inside a string", at: start) }
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    flush(index)
                    index += 1
                    return String(scalars)
                }
                if byte < 0x20 {
                    throw syntax("a raw control character 0x\(String(byte, radix: 16)) in a string; it must be escaped")
                }
                guard byte == UInt8(ascii: "\\") else {
                    index += 1
                    continue
                }
                flush(index)
                let escapeStart = index
                index += 1
                guard index < bytes.count else { throw syntax("the input ends inside an escape", at: escapeStart) }
                let kind = bytes[index]
                index += 1
                switch kind {
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "/"): scalars.append("/")
                case UInt8(ascii: "b"): scalars.append("\u{08}")
                case UInt8(ascii: "f"): scalars.append("\u{0C}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    let unit = try hex4(escapeStart)
                    if (0xD800..<0xDC00).contains(unit) {
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                            bytes[index + 1] == UInt8(ascii: "u")
                        else { throw syntax("a lone high surrogate escape", at: escapeStart) }
                        index += 2
                        let low = try hex4(escapeStart)
                        guard (0xDC00..<0xE000).contains(low) else {
                            throw syntax("a high surrogate escape not followed by a low one", at: escapeStart)
                        }
                        scalars.append(Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))!)
                    } else if (0xDC00..<0xE000).contains(unit) {
                        throw syntax("a lone low surrogate escape", at: escapeStart)
                    } else {
                        scalars.append(Unicode.Scalar(unit)!)
                    }
                default:
                    throw syntax("an escape '\\\(Unicode.Scalar(kind))' that JSON does not define", at: escapeStart)
                }
                runStart = index
            }
        }

        private mutating func hex4(_ escapeStart: Int) throws(ParseError) -> UInt32 {
            guard index + 4 <= bytes.count else { throw syntax("a \\u escape needs 4 hex digits", at: escapeStart) }
            var unit: UInt32 = 0
            for byte in bytes[index..<(index + 4)] {
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: throw syntax("a \\u escape needs 4 hex digits", at: escapeStart)
                }
                unit = unit << 4 | digit
            }
            index += 4
            return unit
        }
    }
}
