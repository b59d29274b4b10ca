/// An endpoint glob over normalised paths, such as `/v1/*/completions` or `/v1/files/**`.
///
/// Each segment of the pattern is a literal, `*` (exactly one segment, never crossing a `/`), or
/// `**` (zero or more whole segments). A `*` inside a segment (`/v1/chat*`) is refused rather than
/// given a meaning. The match is anchored at both ends and ignores a trailing slash on either side,
/// like ``NormalisedPath/segments``.
///
/// Matching cannot blow up: it simulates the pattern as an NFA whose states are the positions
/// between pattern segments, carrying the set of live states across the path one segment at a time.
/// Each path segment costs O(pattern segments), so a match is O(path segments × pattern segments)
/// with no backtracking, whatever mix of `*` and `**` the pattern holds.
public struct EndpointPattern: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// One segment of a pattern.
    public enum Segment: Sendable, Equatable, Hashable {
        /// A segment that must equal this normalised text.
        case literal(String)
        /// `*`: any one segment.
        case anySegment
        /// `**`: zero or more whole segments.
        case anySegments
    }

    /// The segments, in order.
    public let segments: [Segment]
    /// The pattern as written after normalisation.
    public let description: String

    /// Parses a pattern. Literal segments go through the same normalisation as request paths, so
    /// `/v1/%7Euser` and `/v1/~user` are the same pattern, and a pattern that could never match a
    /// normalised path (`/a//b`, `/a/../b`, `%2F`) is refused.
    public init(_ text: String) throws(RequestPrimitiveError) {
        if text.contains("?") {
            throw RequestPrimitiveError(
                .invalidEndpointPattern, "'\(text)': a pattern is a path; it cannot contain '?'")
        }
        let path: NormalisedPath
        switch RequestTarget.parse(text) {
        case .success(let target): path = target.path
        case .failure(let refusal):
            throw RequestPrimitiveError(
                .invalidEndpointPattern,
                "'\(text)': \(refusal); expected '/' followed by segments that are literals, '*' or '**'")
        }
        var segments: [Segment] = []
        for segment in path.segments {
            switch segment {
            case "*": segments.append(.anySegment)
            case "**":
                // `**/**` means the same as `**`; collapsing keeps the NFA small.
                if segments.last != .anySegments { segments.append(.anySegments) }
            default:
                if segment.contains("*") {
                    throw RequestPrimitiveError(
                        .invalidEndpointPattern,
                        "'\(text)': segment '\(segment)' mixes '*' with text; use a whole '*' or '**' segment")
                }
                segments.append(.literal(segment))
            }
        }
        self.segments = segments
        self.description = path.value
    }

    /// Whether `path` matches the whole pattern (linear time, see `linearGlobMatches`).
    ///
    /// `ignoringASCIICase` is for matches that must err towards matching: a `block` pattern or a
    /// filter condition. Some upstreams (Express, ASP.NET Core) route paths case-insensitively, so
    /// `/V1/Admin` must not slip past a block on `/v1/admin/**`. `allow` patterns match exactly.
    public func matches(_ path: NormalisedPath, ignoringASCIICase: Bool = false) -> Bool {
        let steps: [GlobStep<String>] = segments.map { segment in
            switch segment {
            case .literal(let text):
                ignoringASCIICase ? .one { $0.equalsIgnoringASCIICase(text) } : .one { $0 == text }
            case .anySegment: .one { _ in true }
            case .anySegments: .anyRun
            }
        }
        return linearGlobMatches(steps, path.segments)
    }
}

/// The HTTP methods a rule applies to. Methods are case-sensitive tokens (RFC 9110 §9.1): `get`
/// is not `GET`, and a request with a lower-case method matches no rule written in upper case.
public struct MethodSet: Sendable, Equatable, Hashable {
    /// The allowed methods, or `nil` for any method.
    public let methods: Set<String>?

    /// Every method.
    public static let any = MethodSet(anyMethod: ())

    private init(anyMethod: Void) { methods = nil }

    /// A set of methods, each one or more upper-case letters (`GET`, `POST`, `PROPFIND`). An empty
    /// list is refused: a rule matching no method is a mistake, not a way to write "deny all".
    public init(_ methods: [String]) throws(RequestPrimitiveError) {
        if methods.isEmpty {
            throw RequestPrimitiveError(.invalidMethod, "empty method list; expected methods such as GET or POST")
        }
        for method in methods where !MethodSet.isUpperCaseToken(method) {
            throw RequestPrimitiveError(
                .invalidMethod, "'\(method)' is not an upper-case method token; expected e.g. GET, POST, DELETE")
        }
        self.methods = Set(methods)
    }

    /// Whether `method`, exactly as received, is in the set.
    public func contains(_ method: String) -> Bool {
        guard let methods else { return MethodSet.isToken(method) }
        return methods.contains(method)
    }

    /// Whether `text` is one or more upper-case ASCII letters: the form every listed method takes.
    static func isUpperCaseToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }
    }

    /// RFC 9110 `token`: what a well-formed method looks like even when any method is allowed.
    private static func isToken(_ text: String) -> Bool {
        !text.isEmpty
            && text.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"):
                    return true
                default:
                    return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
                }
            }
    }
}
