/// Limits applied while parsing a request body.
///
/// The defaults suit LLM and API request bodies; a bundle may tighten them. `maxDepth` is capped at
/// ``depthCeiling`` because the parser recurses once per level.
public struct JSONParserConfiguration: Sendable, Equatable {
    /// Deepest allowed nesting of arrays and objects (the top-level container is depth 1).
    public var maxDepth: Int
    /// Largest accepted input, in bytes.
    public var maxBytes: Int

    /// Creates a configuration; `maxDepth` is clamped to `1...depthCeiling`.
    public init(maxDepth: Int = 32, maxBytes: Int = 1 << 20) {
        self.maxDepth = min(max(maxDepth, 1), JSONParserConfiguration.depthCeiling)
        self.maxBytes = max(maxBytes, 0)
    }

    /// The hard ceiling on `maxDepth`, so no configuration can exhaust the stack.
    public static let depthCeiling = 512

    /// 32 levels, 1 MiB.
    public static let `default` = JSONParserConfiguration()
}

/// Why a body was refused, and where.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable code for each class of refusal.
    public enum Code: String, Sendable, Equatable {
        /// The input is larger than `maxBytes`.
        case tooLarge = "too_large"
        /// Arrays and objects nest deeper than `maxDepth`.
        case tooDeep = "too_deep"
        /// An object names the same member twice (after unescaping).
        case duplicateKey = "duplicate_key"
        /// A byte sequence is not well-formed UTF-8 (RFC 3629).
        case invalidUTF8 = "invalid_utf8"
        /// A `\\u` escape encodes half of a surrogate pair.
        case loneSurrogate = "lone_surrogate"
        /// A backslash escape is not one RFC 8259 defines.
        case invalidEscape = "invalid_escape"
        /// A string holds a raw character below U+0020.
        case controlCharacter = "control_character"
        /// A number has a leading zero (`01`).
        case leadingZero = "leading_zero"
        /// A number is malformed (`1.`, `1e`).
        case invalidNumber = "invalid_number"
        /// A number's exponent has more than 15 significant digits.
        case exponentTooLarge = "exponent_too_large"
        /// A literal is misspelled, or is `NaN`/`Infinity`.
        case invalidLiteral = "invalid_literal"
        /// A byte cannot start or continue the expected token.
        case unexpectedByte = "unexpected_byte"
        /// The input ends inside a value.
        case unexpectedEnd = "unexpected_end"
        /// Something other than whitespace follows the value.
        case trailingData = "trailing_data"
    }

    /// What went wrong.
    public let code: Code
    /// Zero-based byte offset of the offending byte.
    public let offset: Int
    /// One-based line of `offset` (lines end at `\n`).
    public let line: Int
    /// One-based column of `offset`, counted in bytes.
    public let column: Int
    /// A human explanation, naming what would have been valid.
    public let reason: String

    /// `line:column (byte offset): reason [code]`.
    public var description: String {
        "\(line):\(column) (byte \(offset)): \(reason) [\(code.rawValue)]"
    }
}

/// A strict RFC 8259 parser.
///
/// Strict where lenient parsers disagree, because a policy that reads a body differently from the
/// upstream can be talked around: duplicate keys (compared after unescaping, with Swift `String`
/// equality, so canonically equivalent spellings also count as duplicates), invalid UTF-8, lone
/// surrogates, leading zeros, `NaN`/`Infinity`, raw control characters in strings, trailing data,
/// and over-deep or over-large input are all refused. Pure and deterministic: no Foundation, no I/O.
public struct JSONParser: Sendable {
    /// The limits this parser enforces.
    public let configuration: JSONParserConfiguration

    /// Creates a parser with the given limits.
    public init(configuration: JSONParserConfiguration = .default) {
        self.configuration = configuration
    }

    /// Parses exactly one JSON value (surrounded by optional whitespace).
    public func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        var state = State(bytes: bytes, maxDepth: configuration.maxDepth)
        guard bytes.count <= configuration.maxBytes else {
            throw state.error(
                .tooLarge, at: configuration.maxBytes,
                "input is \(bytes.count) bytes; at most \(configuration.maxBytes) are accepted")
        }
        state.skipWhitespace()
        let value = try state.parseValue(depth: 0)
        state.skipWhitespace()
        if state.index < bytes.count {
            throw state.error(.trailingData, at: state.index, "unexpected data after the JSON value")
        }
        return value
    }

    /// Parses UTF-8 text; convenient for tests and configuration.
    public func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8))
    }

    private struct State {
        let bytes: [UInt8]
        let maxDepth: Int
        var index = 0

        init(bytes: [UInt8], maxDepth: Int) {
            self.bytes = bytes
            self.maxDepth = maxDepth
        }

        func error(_ code: JSONParseError.Code, at offset: Int, _ reason: String) -> JSONParseError {
            var line = 1
            var column = 1
            for b in bytes[0..<min(offset, bytes.count)] {
                if b == UInt8(ascii: "\n") {
                    line += 1
                    column = 1
                } else {
                    column += 1
                }
            }
            return JSONParseError(code: code, offset: offset, line: line, column: column, reason: reason)
        }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
            guard index < bytes.count else {
                throw error(.unexpectedEnd, at: index, "expected a value, found the end of input")
            }
            switch bytes[index] {
            case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
            case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "t"): return try parseLiteral("true", .bool(true))
            case UInt8(ascii: "f"): return try parseLiteral("false", .bool(false))
            case UInt8(ascii: "n"): return try parseLiteral("null", .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                if bytes[index] == UInt8(ascii: "-"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "I") {
                    throw error(.invalidLiteral, at: index, "-Infinity is not JSON; numbers must be finite")
                }
                return .number(try parseNumber())
            case UInt8(ascii: "N"), UInt8(ascii: "I"):
                throw error(.invalidLiteral, at: index, "NaN and Infinity are not JSON; numbers must be finite")
            default:
                throw error(
                    .unexpectedByte, at: index,
                    "unexpected \(describe(bytes[index])); expected an object, array, string, number, "
                        + "true, false or null")
            }
        }

        func describe(_ b: UInt8) -> String {
            if b >= 0x21 && b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
            return "byte 0x\(String(b, radix: 16))"
        }

        mutating func parseLiteral(_ word: String, _ value: JSONValue) throws(JSONParseError) -> JSONValue {
            let start = index
            for expected in word.utf8 {
                guard index < bytes.count, bytes[index] == expected else {
                    throw error(.invalidLiteral, at: start, "expected '\(word)'")
                }
                index += 1
            }
            return value
        }

        mutating func parseNumber() throws(JSONParseError) -> JSONNumber {
            switch JSONNumber.scan(bytes, at: &index) {
            case .success(let n): return n
            case .failure(.leadingZero(let at)):
                throw error(.leadingZero, at: at, "numbers may not have leading zeros")
            case .failure(.invalid(let at, let why)):
                throw error(.invalidNumber, at: at, "invalid number: \(why)")
            case .failure(.exponentTooLarge(let at)):
                throw error(.exponentTooLarge, at: at, "exponent has more than 15 significant digits")
            }
        }

        mutating func enter(_ depth: Int) throws(JSONParseError) {
            if depth > maxDepth {
                throw error(.tooDeep, at: index, "nesting deeper than \(maxDepth) levels")
            }
        }

        mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
            try enter(depth)
            index += 1
            var items: [JSONValue] = []
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(items)
            }
            while true {
                skipWhitespace()
                items.append(try parseValue(depth: depth))
                skipWhitespace()
                guard index < bytes.count else {
                    throw error(.unexpectedEnd, at: index, "unterminated array; expected ',' or ']'")
                }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                } else if bytes[index] == UInt8(ascii: "]") {
                    index += 1
                    return .array(items)
                } else {
                    throw error(.unexpectedByte, at: index, "expected ',' or ']', found \(describe(bytes[index]))")
                }
            }
        }

        mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
            try enter(depth)
            index += 1
            var members: [JSONMember] = []
            var seen = Set<String>()
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(members)
            }
            while true {
                skipWhitespace()
                guard index < bytes.count else {
                    throw error(.unexpectedEnd, at: index, "unterminated object; expected a member name")
                }
                guard bytes[index] == UInt8(ascii: "\"") else {
                    throw error(
                        .unexpectedByte, at: index, "expected a member name in quotes, found \(describe(bytes[index]))")
                }
                let keyOffset = index
                let key = try parseString()
                guard seen.insert(key).inserted else {
                    throw error(.duplicateKey, at: keyOffset, "duplicate member name \(excerpt(key)) in one object")
                }
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                    throw error(
                        index < bytes.count ? .unexpectedByte : .unexpectedEnd, at: index,
                        "expected ':' after a member name")
                }
                index += 1
                skipWhitespace()
                let value = try parseValue(depth: depth)
                members.append(JSONMember(key: key, value: value))
                skipWhitespace()
                guard index < bytes.count else {
                    throw error(.unexpectedEnd, at: index, "unterminated object; expected ',' or '}'")
                }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                } else if bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    return .object(members)
                } else {
                    throw error(.unexpectedByte, at: index, "expected ',' or '}', found \(describe(bytes[index]))")
                }
            }
        }

        func excerpt(_ key: String) -> String {
            var out = ""
            JSONValue.writeString(String(key.unicodeScalars.prefix(32)), to: &out)
            return key.unicodeScalars.count > 32 ? out + "…" : out
        }

        mutating func parseString() throws(JSONParseError) -> String {
            index += 1
            // Runs of plain bytes are copied whole; only escapes are decoded one by one. Every
            // multi-byte sequence is validated by `decodeUTF8` before its bytes are copied, so the
            // buffer is always valid UTF-8.
            var utf8: [UInt8] = []
            var runStart = index
            while true {
                guard index < bytes.count else {
                    throw error(.unexpectedEnd, at: index, "unterminated string")
                }
                let b = bytes[index]
                switch b {
                case UInt8(ascii: "\""):
                    if utf8.isEmpty {
                        let text = String(decoding: bytes[runStart..<index], as: UTF8.self)
                        index += 1
                        return text
                    }
                    utf8.append(contentsOf: bytes[runStart..<index])
                    index += 1
                    return String(decoding: utf8, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    utf8.append(contentsOf: bytes[runStart..<index])
                    let scalar = try parseEscape()
                    utf8.append(contentsOf: UTF8.encode(scalar)!)
                    runStart = index
                case 0x00..<0x20:
                    throw error(
                        .controlCharacter, at: index,
                        "raw control character 0x\(String(b, radix: 16)) in a string; escape it as \\u00XX")
                case 0x20..<0x80:
                    index += 1
                default:
                    _ = try decodeUTF8()
                }
            }
        }

        mutating func parseEscape() throws(JSONParseError) -> Unicode.Scalar {
            let start = index
            index += 1
            guard index < bytes.count else { throw error(.unexpectedEnd, at: index, "unterminated escape") }
            let c = bytes[index]
            index += 1
            switch c {
            case UInt8(ascii: "\""): return "\""
            case UInt8(ascii: "\\"): return "\\"
            case UInt8(ascii: "/"): return "/"
            case UInt8(ascii: "b"): return "\u{08}"
            case UInt8(ascii: "f"): return "\u{0C}"
            case UInt8(ascii: "n"): return "\n"
            case UInt8(ascii: "r"): return "\r"
            case UInt8(ascii: "t"): return "\t"
            case UInt8(ascii: "u"):
                let unit = try hex4()
                if unit >= 0xD800 && unit < 0xDC00 {
                    guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                        bytes[index + 1] == UInt8(ascii: "u")
                    else {
                        throw error(.loneSurrogate, at: start, "high surrogate not followed by a low surrogate")
                    }
                    index += 2
                    let low = try hex4()
                    guard low >= 0xDC00 && low < 0xE000 else {
                        throw error(.loneSurrogate, at: start, "high surrogate not followed by a low surrogate")
                    }
                    let value = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    return Unicode.Scalar(value)!
                }
                if unit >= 0xDC00 && unit < 0xE000 {
                    throw error(.loneSurrogate, at: start, "low surrogate without a preceding high surrogate")
                }
                return Unicode.Scalar(unit)!
            default:
                throw error(
                    .invalidEscape, at: start, "invalid escape; valid are \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX")
            }
        }

        mutating func hex4() throws(JSONParseError) -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<4 {
                guard index < bytes.count else { throw error(.unexpectedEnd, at: index, "unterminated \\u escape") }
                let b = bytes[index]
                let digit: UInt32
                switch b {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(b - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(b - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(b - UInt8(ascii: "A") + 10)
                default: throw error(.invalidEscape, at: index, "\\u must be followed by four hex digits")
                }
                value = value << 4 | digit
                index += 1
            }
            return value
        }

        /// Decodes one multi-byte UTF-8 sequence, refusing overlong forms, surrogates and values
        /// above U+10FFFF (RFC 3629).
        mutating func decodeUTF8() throws(JSONParseError) -> Unicode.Scalar {
            let start = index
            let lead = bytes[index]
            let length: Int
            var value: UInt32
            var low: UInt8 = 0x80
            var high: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF:
                length = 2
                value = UInt32(lead & 0x1F)
            case 0xE0...0xEF:
                length = 3
                value = UInt32(lead & 0x0F)
                if lead == 0xE0 { low = 0xA0 }
                if lead == 0xED { high = 0x9F }
            case 0xF0...0xF4:
                length = 4
                value = UInt32(lead & 0x07)
                if lead == 0xF0 { low = 0x90 }
                if lead == 0xF4 { high = 0x8F }
            default:
                throw error(.invalidUTF8, at: start, "invalid UTF-8 lead byte 0x\(String(lead, radix: 16))")
            }
            for k in 1..<length {
                guard start + k < bytes.count else {
                    throw error(.invalidUTF8, at: start, "truncated UTF-8 sequence")
                }
                let b = bytes[start + k]
                let (lo, hi) = k == 1 ? (low, high) : (UInt8(0x80), UInt8(0xBF))
                guard b >= lo && b <= hi else {
                    throw error(
                        .invalidUTF8, at: start + k, "invalid UTF-8 continuation byte 0x\(String(b, radix: 16))")
                }
                value = value << 6 | UInt32(b & 0x3F)
            }
            index = start + length
            return Unicode.Scalar(value)!
        }
    }
}
