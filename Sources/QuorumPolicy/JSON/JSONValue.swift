/// A JSON document as the policy engine sees it: object members keep their order, numbers keep
/// their exact decimal text, and nothing has been rounded through `Double`.
///
/// Values come from ``JSONParser``, which refuses anything ambiguous (duplicate keys, lone
/// surrogates, trailing data), so two nodes that parse the same bytes hold equal values.
public enum JSONValue: Sendable, Equatable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number, exact as written.
    case number(JSONNumber)
    /// A string, unescaped.
    case string(String)
    /// Elements in document order.
    case array([JSONValue])
    /// Members in document order. Keys are unique (the parser refuses duplicates).
    case object([JSONMember])

    /// The name of this value's JSON type, as used by the `type` payload operator.
    public var kind: JSONKind {
        switch self {
        case .null: .null
        case .bool: .bool
        case .number: .number
        case .string: .string
        case .array: .array
        case .object: .object
        }
    }

    /// The value of the member named `key` (compared scalar by scalar, as ``JSONPath`` does), if this
    /// is an object that has one.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key.unicodeScalars.elementsEqual(key.unicodeScalars) }?.value
    }

    /// Compact JSON text for this value (no insignificant whitespace, numbers as written).
    public var jsonText: String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n.text
        case .string(let s): JSONValue.writeString(s, to: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(to: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, member) in members.enumerated() {
                if i > 0 { out += "," }
                JSONValue.writeString(member.key, to: &out)
                out += ":"
                member.value.write(to: &out)
            }
            out += "}"
        }
    }

    static func writeString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}

/// One member of a JSON object.
public struct JSONMember: Sendable, Equatable {
    /// The member name, unescaped.
    public var key: String
    /// The member value.
    public var value: JSONValue

    /// Creates a member.
    public init(key: String, value: JSONValue) {
        self.key = key
        self.value = value
    }
}

/// The six JSON types.
public enum JSONKind: String, Sendable, Equatable, CaseIterable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool
    /// Any number.
    case number
    /// A string.
    case string
    /// An array.
    case array
    /// An object.
    case object
}

/// A JSON number held exactly as written, compared by its exact decimal value.
///
/// `1`, `1.0`, `10e-1` and `0.1E1` are equal; `-0` equals `0`. Comparison never goes through
/// `Double`, so `9007199254740993` and `9007199254740992` stay different and
/// `1e400` is larger than `1e399` instead of both being infinity.
///
/// The value is kept normalised as `±0.d₁d₂…dₙ × 10^exponent` with `d₁ ≠ 0` and `dₙ ≠ 0`
/// (or zero). The parser refuses exponents written with more than 15 digits, so `exponent` always
/// fits in `Int` whatever the input; anything within that range compares exactly.
public struct JSONNumber: Sendable, Comparable, CustomStringConvertible {
    /// The number's text exactly as it appeared in the document.
    public let text: String
    /// True for a negative non-zero value.
    public let isNegative: Bool
    /// Significant decimal digits (0–9), no leading or trailing zeros; empty for zero.
    public let digits: [UInt8]
    /// Decimal exponent of the normalised form `0.digits × 10^exponent`; 0 for zero.
    public let exponent: Int

    /// Parses RFC 8259 number text; `nil` if `text` is not exactly one valid JSON number.
    public init?(_ text: String) {
        let bytes = Array(text.utf8)
        var index = 0
        guard case .success(let n) = JSONNumber.scan(bytes, at: &index), index == bytes.count else {
            return nil
        }
        self = n
    }

    /// Creates the number for an integer.
    public init(_ value: Int64) {
        self.init(String(value))!
    }

    init(
        text: String, isNegative: Bool, integerDigits: ArraySlice<UInt8>, fractionDigits: ArraySlice<UInt8>,
        exponent writtenExponent: Int
    ) {
        self.text = text
        var all = Array(integerDigits) + Array(fractionDigits)
        // Position of the decimal point within `all`, before normalisation.
        var pointExponent = integerDigits.count + writtenExponent
        var lead = 0
        while lead < all.count, all[lead] == 0 { lead += 1 }
        if lead == all.count {
            self.isNegative = false
            self.digits = []
            self.exponent = 0
            return
        }
        pointExponent -= lead
        all.removeFirst(lead)
        while let last = all.last, last == 0 { all.removeLast() }
        self.isNegative = isNegative
        self.digits = all
        self.exponent = pointExponent
    }

    /// True if the value is zero (however written).
    public var isZero: Bool { digits.isEmpty }

    /// The value as `Int64` when it is an integer that fits, whatever its spelling (`1e3` → 1000).
    public var int64Value: Int64? {
        if isZero { return 0 }
        guard exponent >= digits.count, exponent <= 19 else { return nil }
        var magnitude: UInt64 = 0
        for i in 0..<exponent {
            let d = UInt64(i < digits.count ? digits[i] : 0)
            let (m1, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (m2, o2) = m1.addingReportingOverflow(d)
            if o1 || o2 { return nil }
            magnitude = m2
        }
        if isNegative {
            if magnitude == UInt64(Int64.max) + 1 { return Int64.min }
            return magnitude <= UInt64(Int64.max) ? -Int64(magnitude) : nil
        }
        return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
    }

    /// The nearest `Double` (±infinity or ±0 when out of range). For display and arithmetic only;
    /// policy comparisons use the exact value.
    public var doubleValue: Double {
        Double(text) ?? (isNegative ? -Double.infinity : Double.infinity)
    }

    /// The original text.
    public var description: String { text }

    /// Equal decimal values, however written (`1.0 == 1e0`, `-0 == 0`).
    public static func == (lhs: JSONNumber, rhs: JSONNumber) -> Bool {
        lhs.isNegative == rhs.isNegative && lhs.exponent == rhs.exponent && lhs.digits == rhs.digits
    }

    /// Exact decimal order.
    public static func < (lhs: JSONNumber, rhs: JSONNumber) -> Bool {
        if lhs.isNegative != rhs.isNegative { return lhs.isNegative }
        let magnitudeLess = compareMagnitude(lhs, rhs)
        if lhs.isNegative {
            return magnitudeLess == .greater
        }
        return magnitudeLess == .less
    }

    private enum Order { case less, equal, greater }

    private static func compareMagnitude(_ a: JSONNumber, _ b: JSONNumber) -> Order {
        if a.isZero || b.isZero {
            if a.isZero && b.isZero { return .equal }
            return a.isZero ? .less : .greater
        }
        if a.exponent != b.exponent { return a.exponent < b.exponent ? .less : .greater }
        for (x, y) in zip(a.digits, b.digits) where x != y {
            return x < y ? .less : .greater
        }
        if a.digits.count == b.digits.count { return .equal }
        return a.digits.count < b.digits.count ? .less : .greater
    }

    /// Why number text was refused, with the offset of the offending byte.
    enum ScanFailure: Error {
        case leadingZero(Int)
        case invalid(Int, String)
        case exponentTooLarge(Int)
    }

    /// Scans one number starting at `index`, leaving `index` after it.
    static func scan(_ bytes: [UInt8], at index: inout Int) -> Result<JSONNumber, ScanFailure> {
        let start = index
        var negative = false
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        let intStart = index
        while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        if index == intStart { return .failure(.invalid(index, "expected a digit")) }
        if index - intStart > 1, bytes[intStart] == UInt8(ascii: "0") { return .failure(.leadingZero(intStart)) }
        let integer = bytes[intStart..<index].map { $0 - UInt8(ascii: "0") }
        var fraction: [UInt8] = []
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            let fracStart = index
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            if index == fracStart { return .failure(.invalid(index, "expected a digit after '.'")) }
            fraction = bytes[fracStart..<index].map { $0 - UInt8(ascii: "0") }
        }
        var exponent = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            var expNegative = false
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                expNegative = bytes[index] == UInt8(ascii: "-")
                index += 1
            }
            let expStart = index
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            if index == expStart { return .failure(.invalid(index, "expected a digit in the exponent")) }
            var significant = expStart
            while significant < index - 1, bytes[significant] == UInt8(ascii: "0") { significant += 1 }
            if index - significant > 15 { return .failure(.exponentTooLarge(expStart)) }
            for b in bytes[significant..<index] { exponent = exponent * 10 + Int(b - UInt8(ascii: "0")) }
            if expNegative { exponent = -exponent }
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        return .success(
            JSONNumber(
                text: text, isNegative: negative, integerDigits: integer[...], fractionDigits: fraction[...],
                exponent: exponent))
    }

    static func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
}
