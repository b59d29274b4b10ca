import QuorumLog
import QuorumProtocol

/// A refusal of an audit API request: the HTTP status, a stable code, the parameter at fault (if
/// one is) and a reason a person can act on. Served as `{"error":…,"parameter":…,"reason":…}`.
public struct AuditRequestError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The HTTP status code: 400 bad parameter, 404 nothing there, 405 not GET or HEAD, 429
    /// rate-limited, 500 the log could not be read, 502 (proxy) no node answered.
    public let status: Int
    /// Stable machine-readable code (`bad_parameter`, `not_found`, `no_checkpoint`, …).
    public let code: String
    /// The query parameter or path part at fault, if any.
    public let parameter: String?
    /// What was wrong and what would be valid.
    public let reason: String
    /// Seconds before a retry can succeed (429 only).
    public let retryAfter: Int?

    /// A refusal.
    public init(status: Int, code: String, parameter: String? = nil, _ reason: String, retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.parameter = parameter
        self.reason = reason
        self.retryAfter = retryAfter
    }

    static func badParameter(_ parameter: String, _ reason: String) -> AuditRequestError {
        AuditRequestError(status: 400, code: "bad_parameter", parameter: parameter, reason)
    }

    static func notFound(_ reason: String) -> AuditRequestError {
        AuditRequestError(status: 404, code: "not_found", reason)
    }

    /// The JSON body: `error`, `reason`, and `parameter` when one is at fault.
    public var jsonBody: [UInt8] {
        var members: [String: CanonicalJSON.Value] = ["error": .string(code), "reason": .string(reason)]
        if let parameter { members["parameter"] = .string(parameter) }
        return CanonicalJSON.encode(.object(members)) + [0x0a]
    }

    public var description: String {
        "\(status) \(code)\(parameter.map { " (\($0))" } ?? ""): \(reason)"
    }
}

/// One resource of the audit API, parsed from the path below the API's root (`checkpoint`,
/// `tile/0/x001/234.p/7`, `proof/inclusion`, …). Parsing is strict, so that each resource has one
/// spelling: what a cache stores under one URL is never served under another, and the proxy can
/// tell exactly which paths it may forward.
public enum AuditRoute: Sendable, Equatable {
    /// `checkpoint`: the newest quorum-signed checkpoint (C2SP tlog-tiles).
    case checkpoint
    /// `tile/<L>/<N>[.p/<W>]`: a hash tile (C2SP tlog-tiles); `width` 256 is a full tile.
    case hashTile(level: Int, index: UInt64, width: Int)
    /// `tile/entries/<N>[.p/<W>]`: an entry bundle (C2SP tlog-tiles).
    case entryBundle(index: UInt64, width: Int)
    /// `proof/inclusion?index=I&size=S`.
    case inclusionProof
    /// `proof/consistency?from=A&to=B`.
    case consistencyProof
    /// `receipts/<request-id>`.
    case receipt(requestID: String)
    /// `evidence`: equivocation evidence the node holds.
    case evidence
    /// `unlogged`: the node's decisions whose receipts did not reach the log.
    case unlogged

    /// Whether the route reads a query string (the proofs); the others refuse one.
    public var takesQuery: Bool {
        switch self {
        case .inclusionProof, .consistencyProof: true
        default: false
        }
    }

    /// Refuses a query the route does not take, or one that does not parse (400 naming the
    /// parameter), without reading the log: what the proxy checks before it forwards.
    public func checkQuery(_ query: String?) throws(AuditRequestError) {
        switch self {
        case .inclusionProof: _ = try AuditQuery(query, allowed: ["index", "size"])
        case .consistencyProof: _ = try AuditQuery(query, allowed: ["from", "to"])
        default:
            if let query, !query.isEmpty {
                throw .badParameter("query", "/\(path) takes no query string, got \"?\(query)\"")
            }
        }
    }

    /// The path below the API root, as ``parse(_:)`` reads it back.
    public var path: String {
        switch self {
        case .checkpoint: "checkpoint"
        case .hashTile(let level, let index, let width):
            TlogTiles.hashTilePath(level: level, index: index, width: width)
        case .entryBundle(let index, let width): TlogTiles.entryBundlePath(index: index, width: width)
        case .inclusionProof: "proof/inclusion"
        case .consistencyProof: "proof/consistency"
        case .receipt(let requestID): "receipts/" + AuditRoute.percentEncode(requestID)
        case .evidence: "evidence"
        case .unlogged: "unlogged"
        }
    }

    /// Parses `path` (below the API root, without a leading `/`, without the query).
    ///
    /// Unknown paths are 404; a tile path that is not the canonical C2SP spelling (a level or
    /// width with a leading zero, an index group that is not three digits, `x000` leading groups,
    /// `.p/256`) is 400 naming the part at fault.
    public static func parse(_ path: String) throws(AuditRequestError) -> AuditRoute {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        switch segments.first {
        case "checkpoint" where segments.count == 1: return .checkpoint
        case "evidence" where segments.count == 1: return .evidence
        case "unlogged" where segments.count == 1: return .unlogged
        case "proof" where segments.count == 2 && segments[1] == "inclusion": return .inclusionProof
        case "proof" where segments.count == 2 && segments[1] == "consistency": return .consistencyProof
        case "receipts" where segments.count == 2:
            let requestID = try requestID(segments[1])
            return .receipt(requestID: requestID)
        case "tile" where segments.count >= 3:
            let (index, width) = try tileCoordinates(Array(segments.dropFirst(2)))
            if segments[1] == "entries" { return .entryBundle(index: index, width: width) }
            let level = try decimal(segments[1], parameter: "tile level", range: 0...63)
            return .hashTile(level: Int(level), index: index, width: width)
        default:
            throw .notFound(
                "no audit resource at /\(path); the API serves checkpoint, tile/<L>/<N>[.p/<W>], "
                    + "tile/entries/<N>[.p/<W>], proof/inclusion, proof/consistency, receipts/<request-id>, evidence "
                    + "and unlogged"
            )
        }
    }

    /// `<N>[.p/<W>]` as path segments: groups of three digits, all but the last prefixed by `x`,
    /// the last optionally followed by `.p` and a width segment.
    static func tileCoordinates(_ parts: [String]) throws(AuditRequestError) -> (UInt64, Int) {
        var groups = parts
        var width = TlogTiles.width
        if groups.count >= 2, groups[groups.count - 2].hasSuffix(".p") {
            let text = groups.removeLast()
            width = Int(try decimal(text, parameter: "tile width", range: 1...255))
            groups[groups.count - 1] = String(groups[groups.count - 1].dropLast(2))
        }
        // 2^64 has 20 decimal digits: seven groups at most.
        guard (1...7).contains(groups.count) else {
            throw .badParameter(
                "tile index", "\(groups.count) index groups; an index is one to seven groups of three digits")
        }
        var index: UInt64 = 0
        for (position, group) in groups.enumerated() {
            let isLast = position == groups.count - 1
            let digits = isLast ? Substring(group) : group.hasPrefix("x") ? group.dropFirst() : ""
            guard !digits.isEmpty, digits.utf8.count == 3, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else {
                let expected = isLast ? "three digits" : "x and three digits"
                throw .badParameter("tile index", "index group \"\(group)\" is not \(expected), as in x001/x234/067")
            }
            if position == 0, !isLast, digits == "000" {
                throw .badParameter(
                    "tile index", "leading index group x000; the index is written without leading zero groups")
            }
            let (scaled, overflow) = index.multipliedReportingOverflow(by: 1000)
            let (sum, carry) = scaled.addingReportingOverflow(UInt64(digits)!)
            guard !overflow, !carry else { throw .badParameter("tile index", "the tile index does not fit in 64 bits") }
            index = sum
        }
        return (index, width)
    }

    /// A canonical ASCII decimal (no sign, no leading zero) within `range`.
    static func decimal(
        _ text: String, parameter: String, range: ClosedRange<UInt64>
    ) throws(AuditRequestError) -> UInt64 {
        guard !text.isEmpty, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else {
            throw .badParameter(parameter, "\"\(text)\" is not a decimal number")
        }
        guard text == "0" || !text.hasPrefix("0") else {
            throw .badParameter(parameter, "\"\(text)\" has a leading zero")
        }
        guard let value = UInt64(text), range.contains(value) else {
            throw .badParameter(parameter, "\(text) is outside \(range.lowerBound)…\(range.upperBound)")
        }
        return value
    }

    /// A percent-decoded request id, checked as receipts check `jti`.
    static func requestID(_ segment: String) throws(AuditRequestError) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(segment.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                throw .badParameter("request id", "\"\(segment)\" has a % not followed by two hex digits")
            }
            bytes.append(high << 4 | low)
        }
        let text = String(decoding: bytes, as: UTF8.self)
        if let problem = SigningLimits.requestIDProblem(text) { throw .badParameter("request id", problem) }
        return text
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x41...0x46: byte - 0x41 + 10
        case 0x61...0x66: byte - 0x61 + 10
        default: nil
        }
    }

    /// Percent-encodes everything but RFC 3986 unreserved characters.
    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 15)]], as: UTF8.self)
            }
        }
        return out
    }
}

/// The query string of a proof request: `name=decimal` pairs, each name known and given once.
struct AuditQuery {
    private var values: [String: UInt64] = [:]

    /// Parses `query`, refusing unknown or repeated names and values that are not canonical
    /// decimals.
    init(_ query: String?, allowed: [String]) throws(AuditRequestError) {
        guard let query, !query.isEmpty else { return }
        for pair in query.split(separator: "&", omittingEmptySubsequences: false) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            guard allowed.contains(name) else {
                throw .badParameter(
                    name.isEmpty ? "query" : name,
                    "unknown parameter \"\(name)\"; this resource takes \(allowed.joined(separator: " and "))")
            }
            guard values[name] == nil else { throw .badParameter(name, "given twice; give it once") }
            guard parts.count == 2 else { throw .badParameter(name, "has no value; write \(name)=<number>") }
            values[name] = try AuditRoute.decimal(String(parts[1]), parameter: name, range: 0...UInt64.max)
        }
    }

    subscript(name: String) -> UInt64? { values[name] }

    /// The value of `name`, or a 400 naming it.
    func required(_ name: String) throws(AuditRequestError) -> UInt64 {
        guard let value = values[name] else { throw .badParameter(name, "missing; give \(name)=<number>") }
        return value
    }
}
