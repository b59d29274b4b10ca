import Foundation

/// The bundle's scalar notations that are not JSON's own: money, durations, sizes, instants and
/// canonical numbers. Parsing and printing live together so the printed form always parses back to
/// the same value.
enum BundleValues {
    // MARK: Money

    /// Micro-units per currency unit.
    static let microPerUnit: Int64 = 1_000_000

    /// Exact micro-units for a decimal amount, or why not. Amounts are non-negative with at most
    /// six decimal places (after trailing zeros are dropped), so `2.50` is 2,500,000.
    /// Unpadded base64url (RFC 4648 §5), as tokens and RFC 8705 thumbprints are written.
    static func base64URLEncode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// The bytes of unpadded base64url text; nil for padding, other characters or non-zero
    /// trailing bits (so each value has one spelling).
    static func base64URLDecode(_ text: String) -> [UInt8]? {
        guard text.utf8.count % 4 != 1,
            text.utf8.allSatisfy({ byte in
                switch byte {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
                    return true
                default: return false
                }
            })
        else { return nil }
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        standard += String(repeating: "=", count: (4 - standard.utf8.count % 4) % 4)
        guard let data = Data(base64Encoded: standard) else { return nil }
        let bytes = Array(data)
        return base64URLEncode(bytes) == text ? bytes : nil
    }

    static func microUnits(_ number: JSONNumber) -> Result<MicroUnits, MoneyRefusal> {
        if number.isZero { return .success(0) }
        if number.isNegative { return .failure(.negative) }
        let fractionDigits = number.digits.count - number.exponent
        if fractionDigits > 6 { return .failure(.tooPrecise) }
        let scale = number.exponent + 6  // digits before the micro-unit point
        guard scale <= 19 else { return .failure(.tooLarge) }
        var value: Int64 = 0
        for position in 0..<scale {
            let digit = Int64(position < number.digits.count ? number.digits[position] : 0)
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = shifted.addingReportingOverflow(digit)
            if overflow1 || overflow2 { return .failure(.tooLarge) }
            value = sum
        }
        return .success(value)
    }

    enum MoneyRefusal: Error {
        case negative, tooPrecise, tooLarge
    }

    /// The shortest decimal text for micro-units: `2.5`, `10`, `0.000001`.
    static func moneyText(_ micro: MicroUnits) -> String {
        let whole = micro / microPerUnit
        var fraction = micro % microPerUnit
        if fraction == 0 { return String(whole) }
        var width = 6
        while fraction % 10 == 0 {
            fraction /= 10
            width -= 1
        }
        let digits = String(fraction)
        return "\(whole)." + String(repeating: "0", count: width - digits.count) + digits
    }

    // MARK: Durations

    /// Shortest and longest rate-limit window.
    static let windowRange: ClosedRange<Int64> = 1_000...(31 * 86_400_000)

    private static let durationUnits: [(suffix: String, milliseconds: Int64)] = [
        ("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000),
    ]

    // Longest suffix first, so `ms` is not read as `m` after a digit `s`.
    private static let durationUnitsLongestFirst = durationUnits.sorted { $0.suffix.count > $1.suffix.count }

    /// Milliseconds for `<digits><unit>` with unit `ms`, `s`, `m`, `h` or `d`; `nil` otherwise.
    static func milliseconds(_ text: String) -> Int64? {
        for (suffix, factor) in durationUnitsLongestFirst where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            guard let count = decimal(number) else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: factor)
            return overflow ? nil : product
        }
        return nil
    }

    /// The duration in its largest exact unit: 60,000 ms is `1m`, 90,000 ms is `90s`.
    static func durationText(_ milliseconds: Int64) -> String {
        for (suffix, factor) in durationUnits.reversed() where milliseconds % factor == 0 {
            return "\(milliseconds / factor)\(suffix)"
        }
        return "\(milliseconds)ms"
    }

    // MARK: Sizes

    private static let sizeUnits: [(suffix: String, bytes: Int64)] = [
        ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1),
    ]

    /// Bytes for `<digits><unit>` with unit `B`, `KiB`, `MiB` or `GiB`; `nil` otherwise.
    static func bytes(_ text: String) -> Int64? {
        for (suffix, factor) in sizeUnits where text.hasSuffix(suffix) {
            guard let count = decimal(text.dropLast(suffix.count)) else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: factor)
            return overflow ? nil : product
        }
        return nil
    }

    /// A non-negative decimal integer without sign or leading zeros.
    static func decimal(_ text: Substring) -> Int64? {
        let utf8 = text.utf8
        guard !utf8.isEmpty, utf8.count <= 19, utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
            utf8.count == 1 || utf8.first != UInt8(ascii: "0")
        else { return nil }
        return Int64(text)
    }

    // MARK: Instants

    /// Seconds since 1970 for RFC 3339 `YYYY-MM-DDTHH:MM:SS[.fff]` followed by `Z` or `±HH:MM`.
    /// At most three fraction digits (milliseconds); leap second 60 is refused.
    static func instant(_ text: String) -> Date? {
        let b = Array(text.utf8)
        func number(_ start: Int, _ count: Int) -> Int? {
            guard start + count <= b.count else { return nil }
            var value = 0
            for byte in b[start..<start + count] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard b.count >= 20, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"), b[10] == UInt8(ascii: "T"),
            b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"),
            let year = number(0, 4), let month = number(5, 2), let day = number(8, 2), let hour = number(11, 2),
            let minute = number(14, 2), let second = number(17, 2)
        else { return nil }
        guard (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day), hour < 24, minute < 60,
            second < 60
        else { return nil }
        var index = 19
        var millis = 0
        if b[index] == UInt8(ascii: ".") {
            var digits = 0
            index += 1
            while index < b.count, b[index] >= 48, b[index] <= 57 {
                guard digits < 3 else { return nil }
                millis = millis * 10 + Int(b[index] - 48)
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<3 { millis *= 10 }
        }
        var offsetSeconds = 0
        guard index < b.count else { return nil }
        if b[index] == UInt8(ascii: "Z") {
            index += 1
        } else if b[index] == UInt8(ascii: "+") || b[index] == UInt8(ascii: "-") {
            guard index + 6 == b.count, b[index + 3] == UInt8(ascii: ":"), let offsetHour = number(index + 1, 2),
                let offsetMinute = number(index + 4, 2), offsetHour < 24, offsetMinute < 60
            else { return nil }
            offsetSeconds = (offsetHour * 3600 + offsetMinute * 60) * (b[index] == UInt8(ascii: "+") ? 1 : -1)
            index += 6
        } else {
            return nil
        }
        guard index == b.count else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second - offsetSeconds)
        return Date(timeIntervalSince1970: Double(seconds) + Double(millis) / 1000)
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` in UTC, with `.fff` only when the instant has milliseconds.
    static func instantText(_ date: Date) -> String {
        let totalMillis = Int64((date.timeIntervalSince1970 * 1000).rounded())
        let millis = Int((totalMillis % 1000 + 1000) % 1000)
        let seconds = (totalMillis - Int64(millis)) / 1000
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        let (year, month, day) = civilFromDays(Int(days))
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        var text = String(repeating: "0", count: max(0, 4 - String(year).count)) + String(year)
        text += "-\(two(month))-\(two(day))T\(two(Int(secondOfDay / 3600))):\(two(Int(secondOfDay / 60 % 60)))"
        text += ":\(two(Int(secondOfDay % 60)))"
        if millis != 0 {
            let digits = String(millis)
            text += "." + String(repeating: "0", count: 3 - digits.count) + digits
        }
        return text + "Z"
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // Howard Hinnant's civil calendar algorithms (proleptic Gregorian).
    private static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func civilFromDays(_ days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    // MARK: Numbers

    /// One spelling per value, so equal operands hash equally: integers in plain digits (up to 21
    /// digits), other values as plain decimals when the exponent is small, else `d.ddde±N`.
    static func canonical(_ number: JSONNumber) -> JSONNumber {
        if number.isZero { return JSONNumber(0) }
        let digits = number.digits.map { String($0) }.joined()
        let n = number.digits.count
        let e = number.exponent
        var text: String
        if e >= n && e <= 21 {
            text = digits + String(repeating: "0", count: e - n)
        } else if e > 0 && e < n {
            text = String(digits.prefix(e)) + "." + String(digits.dropFirst(e))
        } else if e <= 0 && e > -6 {
            text = "0." + String(repeating: "0", count: -e) + digits
        } else {
            text = String(digits.prefix(1)) + (n > 1 ? "." + String(digits.dropFirst()) : "") + "e\(e - 1)"
        }
        if number.isNegative { text = "-" + text }
        return JSONNumber(text)!
    }

    // MARK: Names

    /// Filter ids, field alias names and secret names: 1–64 of letters, digits, `-`, `_`, `.`.
    static func isName(_ text: String) -> Bool {
        let utf8 = text.utf8
        return (1...64).contains(utf8.count)
            && utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
                    true
                default: false
                }
            }
    }

    /// What a name may hold, for messages.
    static let nameRule = "1-64 of letters, digits, '-', '_' and '.'"

    /// An upstream base URL: `http` or `https`, a host (name, IPv4, or bracketed IPv6), an optional
    /// port and path; no user info, query, fragment, whitespace or trailing `/` (the proxy appends
    /// the request path, which starts with `/`). `nil` when valid, else why not.
    static func upstreamProblem(_ text: String) -> String? {
        let rest: Substring
        if text.hasPrefix("https://") {
            rest = text.dropFirst(8)
        } else if text.hasPrefix("http://") {
            rest = text.dropFirst(7)
        } else {
            return "must start with https:// or http://"
        }
        if text.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F || $0 >= 0x80 }) {
            return "must not contain spaces, control or non-ASCII characters (use punycode)"
        }
        if rest.utf8.contains(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) {
            return "must not have a query or fragment"
        }
        if rest.utf8.contains(UInt8(ascii: "@")) { return "must not carry user info (credentials belong in secrets)" }
        if text.hasSuffix("/") { return "must not end with '/'; the request path is appended to it" }
        let authority = rest.prefix { $0 != "/" }
        var host = Substring(authority)
        var port: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return "has an unterminated IPv6 literal" }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return "has text after the IPv6 literal" }
                port = after.dropFirst()
            }
            guard (try? IPAddress(String(host))) != nil else { return "has an invalid IPv6 literal" }
        } else {
            if let colon = authority.firstIndex(of: ":") {
                host = authority[..<colon]
                port = authority[authority.index(after: colon)...]
            }
            let validHost =
                !host.isEmpty
                && host.utf8.allSatisfy { byte in
                    switch byte {
                    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."):
                        true
                    default: false
                    }
                }
            if !validHost { return "has no valid host name" }
        }
        if let port {
            guard let value = decimal(port), (1...65_535).contains(value) else { return "has an invalid port" }
        }
        let path = rest.dropFirst(authority.count)
        let segments = path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst()
        if segments.contains(where: { $0.isEmpty || $0.elementsEqual(".".utf8) || $0.elementsEqual("..".utf8) }) {
            return "has an ambiguous path ('//', '.' or '..')"
        }
        return nil
    }
}
