/// An IPv4 or IPv6 address in canonical form.
///
/// Parsing is strict so that every node, and every upstream, reads the same address: IPv4 is
/// exactly four dotted decimal octets with no leading zeros (`010.0.0.1` reads as octal to some
/// parsers and decimal to others, so it is refused, as are `127.1` and `0x7f.0.0.1`); IPv6 is the
/// RFC 4291 text form without a zone id (`fe80::1%eth0` names an interface, not an address) or
/// brackets. An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) is canonicalised to the IPv4 address,
/// so it meets IPv4 rules and cannot slip past them.
public enum IPAddress: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// An IPv4 address, most significant octet first.
    case v4(UInt32)
    /// An IPv6 address as two 64-bit halves, most significant first.
    case v6(high: UInt64, low: UInt64)

    /// Parses an address, refusing anything ambiguous.
    public init(_ text: String) throws(RequestPrimitiveError) {
        if text.contains(".") && !text.contains(":") {
            guard let value = IPAddress.parseIPv4(Substring(text)) else {
                throw RequestPrimitiveError(
                    .invalidAddress,
                    "'\(text)' is not an IPv4 address; expected four decimal octets 0-255 without leading zeros")
            }
            self = .v4(value)
            return
        }
        if text.contains("%") {
            throw RequestPrimitiveError(.invalidAddress, "'\(text)' has a zone id; zone ids are not allowed")
        }
        guard let (high, low) = IPAddress.parseIPv6(text) else {
            throw RequestPrimitiveError(
                .invalidAddress, "'\(text)' is not an IPv4 or IPv6 address; expected e.g. 192.0.2.1 or 2001:db8::1")
        }
        if high == 0 && low >> 32 == 0xFFFF {
            self = .v4(UInt32(truncatingIfNeeded: low))
        } else {
            self = .v6(high: high, low: low)
        }
    }

    /// The IPv4 form of this address, or `nil` for IPv6.
    public var ipv4: UInt32? {
        if case .v4(let value) = self { return value }
        return nil
    }

    /// The 128-bit IPv6 form; an IPv4 address is given as its IPv4-mapped form `::ffff:a.b.c.d`.
    public var ipv6: (high: UInt64, low: UInt64) {
        switch self {
        case .v4(let value): return (0, 0xFFFF_0000_0000 | UInt64(value))
        case .v6(let high, let low): return (high, low)
        }
    }

    /// RFC 5952 text for IPv6 (lower-case, longest run of two or more zero groups shortened to
    /// `::`, the first on a tie), dotted decimal for IPv4.
    public var description: String {
        switch self {
        case .v4(let value):
            return (0..<4).map { String((value >> (24 - 8 * UInt32($0))) & 0xFF) }.joined(separator: ".")
        case .v6(let high, let low):
            let groups = (0..<8).map { index -> UInt16 in
                let half = index < 4 ? high : low
                return UInt16(truncatingIfNeeded: half >> (48 - 16 * UInt64(index % 4)))
            }
            var bestStart = -1
            var bestLength = 1
            var index = 0
            while index < 8 {
                if groups[index] == 0 {
                    var end = index
                    while end < 8 && groups[end] == 0 { end += 1 }
                    if end - index > bestLength {
                        bestStart = index
                        bestLength = end - index
                    }
                    index = end
                } else {
                    index += 1
                }
            }
            let hex = groups.map { String($0, radix: 16) }
            if bestStart < 0 { return hex.joined(separator: ":") }
            let head = hex[..<bestStart].joined(separator: ":")
            let tail = hex[(bestStart + bestLength)...].joined(separator: ":")
            return head + "::" + tail
        }
    }

    static func parseIPv4(_ text: Substring) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard (1...3).contains(part.utf8.count),
                part.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                part.utf8.count == 1 || part.utf8.first != UInt8(ascii: "0"),
                let octet = UInt32(part), octet <= 255
            else { return nil }
            value = value << 8 | octet
        }
        return value
    }

    static func parseIPv6(_ text: String) -> (UInt64, UInt64)? {
        guard !text.isEmpty else { return nil }
        let bytes = Array(text.utf8)
        var doubleColon: Int? = nil
        for index in 0..<(bytes.count - 1)
        where bytes[index] == UInt8(ascii: ":") && bytes[index + 1] == UInt8(ascii: ":") {
            if doubleColon != nil { return nil }
            doubleColon = index
        }
        let head: [UInt16]
        let tail: [UInt16]
        if let split = doubleColon {
            // `:::` would leave an empty group next to the `::`; parseGroups refuses it.
            guard
                let parsedHead = parseGroups(
                    Substring(text.utf8[..<text.utf8.index(text.utf8.startIndex, offsetBy: split)]),
                    allowIPv4Tail: false),
                let parsedTail = parseGroups(
                    Substring(text.utf8[text.utf8.index(text.utf8.startIndex, offsetBy: split + 2)...]),
                    allowIPv4Tail: true)
            else { return nil }
            head = parsedHead
            tail = parsedTail
        } else {
            guard let groups = parseGroups(Substring(text), allowIPv4Tail: true) else { return nil }
            head = groups
            tail = []
        }
        let sawDoubleColon = doubleColon != nil
        let total = head.count + tail.count
        if sawDoubleColon {
            guard total <= 7 else { return nil }
        } else {
            guard total == 8 else { return nil }
        }
        let groups = head + [UInt16](repeating: 0, count: 8 - total) + tail
        var high: UInt64 = 0
        var low: UInt64 = 0
        for index in 0..<4 { high = high << 16 | UInt64(groups[index]) }
        for index in 4..<8 { low = low << 16 | UInt64(groups[index]) }
        return (high, low)
    }

    /// Colon-separated groups of one to four hex digits; the last may be a dotted IPv4 address
    /// (two groups) when `allowIPv4Tail`. An empty text is zero groups.
    private static func parseGroups(_ text: Substring, allowIPv4Tail: Bool) -> [UInt16]? {
        if text.isEmpty { return [] }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        var groups: [UInt16] = []
        for (index, part) in parts.enumerated() {
            if index == parts.count - 1 && allowIPv4Tail && part.contains(".") {
                guard let value = parseIPv4(part) else { return nil }
                groups.append(UInt16(value >> 16))
                groups.append(UInt16(value & 0xFFFF))
                continue
            }
            guard (1...4).contains(part.utf8.count), part.utf8.allSatisfy({ isHexDigit($0) }),
                let group = UInt16(part, radix: 16)
            else { return nil }
            groups.append(group)
        }
        return groups
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
            UInt8(ascii: "A")...UInt8(ascii: "F"):
            return true
        default:
            return false
        }
    }
}

/// An address range: an address and a prefix length, or one exact address.
///
/// `10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7` (same as `/32`), `::1` (same as `/128`). A prefix
/// length must be decimal without leading zeros and within 0–32 for IPv4 or 0–128 for IPv6. Host bits
/// set beyond the prefix (`10.0.0.1/8`) are refused rather than silently masked: the operator meant
/// either the host or the network, and the policy should not guess which. An IPv6 range inside the
/// IPv4-mapped space (`::ffff:10.0.0.0/104`) is canonicalised to the IPv4 range (`10.0.0.0/8`).
public struct CIDR: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The network address (host bits zero).
    public let network: IPAddress
    /// The prefix length: 0–32 for IPv4, 0–128 for IPv6.
    public let prefixLength: Int

    /// Parses a range or an exact address.
    public init(_ text: String) throws(RequestPrimitiveError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else {
            throw RequestPrimitiveError(.invalidPrefix, "'\(text)' has more than one '/'; expected ADDRESS/LENGTH")
        }
        let address = try IPAddress(String(parts[0]))
        let writtenAsIPv6 = parts[0].contains(":")
        var length: Int
        if parts.count == 2 {
            let digits = parts[1]
            guard (1...3).contains(digits.utf8.count),
                digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                digits.utf8.count == 1 || digits.utf8.first != UInt8(ascii: "0"),
                let parsed = Int(digits)
            else {
                throw RequestPrimitiveError(
                    .invalidPrefix, "'\(text)': prefix length '\(digits)' is not a decimal number without leading zeros"
                )
            }
            length = parsed
        } else {
            length = address.ipv4 != nil && !writtenAsIPv6 ? 32 : 128
        }

        switch address {
        case .v4:
            // Written as IPv4, or as IPv4-mapped IPv6 (whose prefix counts the 96 mapping bits).
            if writtenAsIPv6 {
                guard (96...128).contains(length) else {
                    throw RequestPrimitiveError(
                        .invalidPrefix, "'\(text)': an IPv4-mapped range needs a prefix length of 96-128")
                }
                length -= 96
            } else if length > 32 {
                throw RequestPrimitiveError(.invalidPrefix, "'\(text)': IPv4 prefix length must be 0-32")
            }
        case .v6:
            guard length <= 128 else {
                throw RequestPrimitiveError(.invalidPrefix, "'\(text)': IPv6 prefix length must be 0-128")
            }
        }
        let masked = CIDR.mask(address, length)
        guard masked == address else {
            throw RequestPrimitiveError(
                .invalidPrefix, "'\(text)' has host bits set; did you mean \(masked)/\(length) or the single address?")
        }
        self.network = address
        self.prefixLength = length
    }

    /// Whether `address` is in this range. An IPv4 address (including one that arrived as
    /// IPv4-mapped IPv6) is in an IPv4 range by its 32 bits, and in an IPv6 range by its mapped
    /// form, so `::/0` contains every address. An IPv6 address is never in an IPv4 range.
    public func contains(_ address: IPAddress) -> Bool {
        switch (network, address) {
        case (.v4, .v4):
            return CIDR.mask(address, prefixLength) == network
        case (.v4, .v6):
            return false
        case (.v6, _):
            let (high, low) = address.ipv6
            return CIDR.mask(.v6(high: high, low: low), prefixLength) == network
        }
    }

    /// `network/length` in canonical form.
    public var description: String { "\(network)/\(prefixLength)" }

    private static func mask(_ address: IPAddress, _ length: Int) -> IPAddress {
        switch address {
        case .v4(let value):
            let mask: UInt32 = length == 0 ? 0 : ~0 << UInt32(32 - length)
            return .v4(value & mask)
        case .v6(let high, let low):
            let highMask: UInt64 = length >= 64 ? ~0 : (length == 0 ? 0 : ~0 << UInt64(64 - length))
            let lowMask: UInt64 = length <= 64 ? 0 : (length == 128 ? ~0 : ~0 << UInt64(128 - length))
            return .v6(high: high & highMask, low: low & lowMask)
        }
    }
}

/// The client addresses a latch accepts: any of a list of ranges. An empty list admits nobody.
public struct IPAllowlist: Sendable, Equatable, Hashable {
    /// The ranges, in the order written.
    public let ranges: [CIDR]

    /// Parses each entry with ``CIDR/init(_:)``.
    public init(_ entries: [String]) throws(RequestPrimitiveError) {
        var ranges: [CIDR] = []
        for entry in entries { ranges.append(try CIDR(entry)) }
        self.ranges = ranges
    }

    /// Whether `address` is in any range.
    public func contains(_ address: IPAddress) -> Bool {
        ranges.contains { $0.contains(address) }
    }

    /// Parses `address` and checks it; an unparsable client address is never contained.
    public func contains(_ address: String) -> Bool {
        guard let parsed = try? IPAddress(address) else { return false }
        return contains(parsed)
    }
}
