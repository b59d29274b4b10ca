/// Why a request target was refused. Ambiguous paths are denied, never guessed at: each of these
/// classes has been used to make a gateway and its upstream disagree about which resource a request
/// names.
public struct PathRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// The class of ambiguity. Raw values are stable and appear in deny reasons.
    public enum Reason: String, Sendable {
        /// The path is empty.
        case empty = "empty-path"
        /// The path does not start with `/` (including absolute-form and authority-form targets).
        case notAbsolute = "path-not-absolute"
        /// `//` somewhere in the path: an empty segment that upstreams collapse differently.
        case emptySegment = "empty-segment"
        /// A `.` or `..` segment, including a trailing `/.` or `/..`.
        case dotSegment = "dot-segment"
        /// A percent-encoded `/`, `\` or `.` (`%2F`, `%5C`, `%2E`, any case).
        case encodedSeparator = "encoded-separator"
        /// A percent-encoded `%` followed by two hex digits (`%252F`): double encoding.
        case doubleEncoding = "double-encoding"
        /// A `;` path parameter, raw or encoded (`%3B`).
        case pathParameter = "path-parameter"
        /// A raw backslash.
        case backslash = "backslash"
        /// NUL, another C0 control character or DEL, raw or percent-encoded.
        case controlCharacter = "control-character"
        /// A `%` not followed by two hex digits.
        case invalidPercentEncoding = "invalid-percent-encoding"
        /// Percent-encoded bytes of 0x80 and above that are not well-formed UTF-8: an overlong form
        /// (`%C0%AE` for `.`, `%C0%AF` for `/`), a surrogate, a stray or truncated sequence. Some
        /// servers decode overlong forms into the separators this check refuses.
        case invalidEncodedUTF8 = "invalid-encoded-utf8"
        /// A raw byte of 0x80 or above (non-ASCII must arrive percent-encoded).
        case nonASCII = "non-ascii"
        /// A raw ASCII character that RFC 3986 does not allow in a path (space, `"`, `<`, `>`,
        /// `` ` ``, `^`, `{`, `|`, `}`) or a `#` fragment.
        case disallowedCharacter = "disallowed-character"
    }

    /// The class of ambiguity.
    public let reason: Reason
    /// Byte offset in the raw target where the problem starts.
    public let offset: Int

    /// Creates a refusal of `reason` at byte `offset` of the raw target.
    public init(_ reason: Reason, at offset: Int) {
        self.reason = reason
        self.offset = offset
    }

    /// `reason at byte N`, safe to put in a deny reason: it never echoes the path.
    public var description: String { "\(reason.rawValue) at byte \(offset)" }
}

/// A request path in the one form every node compares against globs.
///
/// Produced only by ``RequestTarget/parse(_:)``, so it is never ambiguous: no empty, `.` or `..`
/// segments, no encoded separators, only ASCII, and every remaining percent-encoding is in
/// upper-case hex.
public struct NormalisedPath: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The normalised path, starting with `/`.
    public let value: String
    /// The segments between slashes, without the leading empty one and without a trailing empty
    /// one. `/` has no segments.
    public let segments: [String]
    /// Whether the path ends in `/` (and is not just `/`). Globs match `/a/` and `/a` alike, so an
    /// endpoint block on `/admin` also blocks `/admin/`.
    public let hasTrailingSlash: Bool

    /// The normalised path text.
    public var description: String { value }
}

/// An HTTP request target split into a normalised path and the raw query.
public struct RequestTarget: Sendable, Equatable {
    /// The normalised path.
    public let path: NormalisedPath
    /// Everything after the first `?`, undecoded, or `nil` when there was no `?`. The query is
    /// checked only for control characters, non-ASCII bytes and `#`; it is never decoded here.
    public let query: String?

    /// Normalises a raw request target (origin-form, as it arrived on the wire, before any
    /// decoding), or refuses it.
    ///
    /// What is decoded: a percent-encoding of an RFC 3986 unreserved character other than `.`
    /// (`A`–`Z`, `a`–`z`, `0`–`9`, `-`, `_`, `~`) becomes that character, because every server agrees
    /// those are equivalent. Every other accepted percent-encoding (a space, a reserved character
    /// other than `/` and `;`, a byte 0x80 or above) is kept encoded with its hex upper-cased, so
    /// `%c3%a9` becomes `%C3%A9`. Nothing is decoded twice.
    ///
    /// What is refused: see ``PathRefusal/Reason``. The checks run left to right, and the first
    /// problem found is reported.
    public static func parse(_ raw: String) -> Result<RequestTarget, PathRefusal> {
        let bytes = Array(raw.utf8)
        if bytes.isEmpty { return .failure(PathRefusal(.empty, at: 0)) }
        let queryStart = bytes.firstIndex(of: UInt8(ascii: "?"))
        let pathEnd = queryStart ?? bytes.count
        if pathEnd == 0 { return .failure(PathRefusal(.empty, at: 0)) }
        if bytes[0] != UInt8(ascii: "/") { return .failure(PathRefusal(.notAbsolute, at: 0)) }

        var out: [UInt8] = []
        out.reserveCapacity(pathEnd)
        // Consecutive percent-encoded bytes of 0x80 and above, checked as UTF-8 when the run ends.
        var encodedRun: [UInt8] = []
        var encodedRunStart = 0
        var index = 0
        while index <= pathEnd {
            let continuesRun =
                index + 2 < pathEnd && bytes[index] == UInt8(ascii: "%")
                && hexValue(bytes[index + 1]).map { $0 >= 8 } == true && hexValue(bytes[index + 2]) != nil
            if !continuesRun && !encodedRun.isEmpty {
                if String(validating: encodedRun, as: UTF8.self) == nil {
                    return .failure(PathRefusal(.invalidEncodedUTF8, at: encodedRunStart))
                }
                encodedRun.removeAll(keepingCapacity: true)
            }
            if index == pathEnd { break }
            let byte = bytes[index]
            if byte >= 0x80 { return .failure(PathRefusal(.nonASCII, at: index)) }
            if byte < 0x20 || byte == 0x7F { return .failure(PathRefusal(.controlCharacter, at: index)) }
            switch byte {
            case UInt8(ascii: "\\"):
                return .failure(PathRefusal(.backslash, at: index))
            case UInt8(ascii: ";"):
                return .failure(PathRefusal(.pathParameter, at: index))
            case UInt8(ascii: "%"):
                guard index + 2 < pathEnd, let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
                else { return .failure(PathRefusal(.invalidPercentEncoding, at: index)) }
                let decoded = high << 4 | low
                if let refusal = refusalForEncoded(decoded, bytes: bytes, after: index + 3, end: pathEnd) {
                    return .failure(PathRefusal(refusal, at: index))
                }
                if decoded >= 0x80 {
                    if encodedRun.isEmpty { encodedRunStart = index }
                    encodedRun.append(decoded)
                }
                if isUnreservedDecodable(decoded) {
                    out.append(decoded)
                } else {
                    out.append(UInt8(ascii: "%"))
                    out.append(upperHex[Int(high)])
                    out.append(upperHex[Int(low)])
                }
                index += 3
                continue
            default:
                guard isPathCharacter(byte) else { return .failure(PathRefusal(.disallowedCharacter, at: index)) }
                out.append(byte)
            }
            index += 1
        }

        if let refusal = checkSegments(raw: bytes, end: pathEnd) { return .failure(refusal) }

        var query: String? = nil
        if let queryStart {
            for offset in (queryStart + 1)..<bytes.count {
                let byte = bytes[offset]
                if byte >= 0x80 { return .failure(PathRefusal(.nonASCII, at: offset)) }
                if byte < 0x20 || byte == 0x7F { return .failure(PathRefusal(.controlCharacter, at: offset)) }
                if byte == UInt8(ascii: "#") { return .failure(PathRefusal(.disallowedCharacter, at: offset)) }
            }
            query = String(decoding: bytes[(queryStart + 1)...], as: UTF8.self)
        }

        let value = String(decoding: out, as: UTF8.self)
        var segments = value.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
            .dropFirst().map { String(decoding: $0, as: UTF8.self) }
        let trailing = segments.count > 1 && segments.last == ""
        if segments.last == "" { segments.removeLast() }
        return .success(
            RequestTarget(
                path: NormalisedPath(value: value, segments: segments, hasTrailingSlash: trailing), query: query))
    }

    /// Rejects empty and dot segments in the raw path. Encoded dots were already refused, so the
    /// raw bytes are the segments an upstream would see.
    private static func checkSegments(raw bytes: [UInt8], end: Int) -> PathRefusal? {
        var segmentStart = 1
        var index = 1
        while index <= end {
            if index == end || bytes[index] == UInt8(ascii: "/") {
                let length = index - segmentStart
                let isLast = index == end
                if length == 0 && !(isLast && segmentStart > 1) && !(isLast && end == 1) {
                    return PathRefusal(.emptySegment, at: segmentStart)
                }
                let dot = UInt8(ascii: ".")
                if (length == 1 && bytes[segmentStart] == dot)
                    || (length == 2 && bytes[segmentStart] == dot && bytes[segmentStart + 1] == dot)
                {
                    return PathRefusal(.dotSegment, at: segmentStart)
                }
                segmentStart = index + 1
            }
            index += 1
        }
        return nil
    }

    private static func refusalForEncoded(
        _ decoded: UInt8, bytes: [UInt8], after next: Int, end: Int
    )
        -> PathRefusal.Reason?
    {
        switch decoded {
        case UInt8(ascii: "/"), UInt8(ascii: "\\"), UInt8(ascii: "."):
            return .encodedSeparator
        case UInt8(ascii: ";"):
            return .pathParameter
        case UInt8(ascii: "%"):
            if next + 1 < end, hexValue(bytes[next]) != nil, hexValue(bytes[next + 1]) != nil {
                return .doubleEncoding
            }
            return nil
        case 0x00..<0x20, 0x7F:
            return .controlCharacter
        default:
            return nil
        }
    }

    private static func isUnreservedDecodable(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// RFC 3986 `pchar` minus `%` and `;` (handled by the caller), plus `/`.
    private static func isPathCharacter(_ byte: UInt8) -> Bool {
        if isUnreservedDecodable(byte) { return true }
        switch byte {
        case UInt8(ascii: "."), UInt8(ascii: "/"), UInt8(ascii: ":"), UInt8(ascii: "@"), UInt8(ascii: "!"),
            UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: "="):
            return true
        default:
            return false
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private static let upperHex: [UInt8] = Array("0123456789ABCDEF".utf8)
}
