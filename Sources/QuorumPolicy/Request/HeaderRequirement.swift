/// A glob over a header value: `*` (any run of characters, including none), `?` (exactly one
/// character), `[...]` (one character from a set, such as `[a-z0-9_]`; `[!...]` negates), `\`
/// (the next character is literal) and literal characters. Matching is anchored at both ends and
/// case-sensitive, over Unicode scalars.
///
/// Matching cannot be driven into catastrophic backtracking because it never backtracks: the
/// pattern is a small NFA whose states are the positions between its tokens, and the matcher keeps
/// the set of live states as one flag per position while it reads the value once, left to right.
/// Each character costs at most one visit per token, so a match is O(value length × pattern tokens)
/// in time and O(pattern tokens) in space, whatever the pattern; `*a*a*a*a*a*b` against 10,000 `a`s
/// takes 120,000 steps, where a backtracking matcher takes about 10,000⁵.
public struct GlobPattern: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// One token of a pattern.
    public enum Token: Sendable, Equatable, Hashable {
        /// This exact character.
        case literal(Unicode.Scalar)
        /// `?`: any one character.
        case anyCharacter
        /// `*`: any run of characters.
        case anyRun
        /// `[...]`: one character in (or, when `negated`, not in) any of the ranges.
        case set([ClosedRange<Unicode.Scalar>], negated: Bool)
    }

    /// The tokens, with runs of `*` collapsed to one.
    public let tokens: [Token]
    /// The pattern as written.
    public let description: String

    /// Parses a pattern, refusing an unterminated or empty `[...]`, a reversed range (`[z-a]`) and a
    /// trailing `\`.
    public init(_ text: String) throws(RequestPrimitiveError) {
        let scalars = Array(text.unicodeScalars)
        var tokens: [Token] = []
        var index = 0
        func fail(_ why: String) -> RequestPrimitiveError {
            RequestPrimitiveError(
                .invalidGlob, "pattern '\(text)': \(why); expected literals, '*', '?', '[a-z]', '[!x]' or '\\x'")
        }
        while index < scalars.count {
            let scalar = scalars[index]
            index += 1
            switch scalar {
            case "*":
                if tokens.last != .anyRun { tokens.append(.anyRun) }
            case "?":
                tokens.append(.anyCharacter)
            case "\\":
                guard index < scalars.count else { throw fail("trailing '\\'") }
                tokens.append(.literal(scalars[index]))
                index += 1
            case "[":
                var negated = false
                if index < scalars.count && scalars[index] == "!" {
                    negated = true
                    index += 1
                }
                var ranges: [ClosedRange<Unicode.Scalar>] = []
                var closed = false
                while index < scalars.count {
                    var low = scalars[index]
                    index += 1
                    if low == "]" {
                        closed = true
                        break
                    }
                    if low == "\\" {
                        guard index < scalars.count else { throw fail("trailing '\\'") }
                        low = scalars[index]
                        index += 1
                    }
                    var high = low
                    if index + 1 < scalars.count && scalars[index] == "-" && scalars[index + 1] != "]" {
                        high = scalars[index + 1]
                        index += 2
                        if high == "\\" {
                            guard index < scalars.count else { throw fail("trailing '\\'") }
                            high = scalars[index]
                            index += 1
                        }
                    }
                    guard low <= high else { throw fail("range '\(low)-\(high)' is reversed") }
                    ranges.append(low...high)
                }
                guard closed else { throw fail("'[' is not closed") }
                guard !ranges.isEmpty else { throw fail("'[]' is empty") }
                tokens.append(.set(ranges, negated: negated))
            default:
                tokens.append(.literal(scalar))
            }
        }
        self.tokens = tokens
        self.description = text
    }

    /// Whether the whole of `value` matches (linear time, see `linearGlobMatches`).
    public func matches(_ value: String) -> Bool {
        let steps: [GlobStep<Unicode.Scalar>] = tokens.map { token in
            switch token {
            case .anyRun: .anyRun
            case .anyCharacter: .one { _ in true }
            case .literal(let expected): .one { $0 == expected }
            case .set(let ranges, let negated): .one { scalar in ranges.contains { $0.contains(scalar) } != negated }
            }
        }
        return linearGlobMatches(steps, value.unicodeScalars)
    }
}

/// A header the request must carry, optionally with a value matching a ``GlobPattern``.
///
/// Names compare case-insensitively (ASCII). When the header appears more than once, every
/// occurrence must match: gateways and upstreams disagree about whether the first, the last or a
/// comma-joined value counts, so an extra field must not be a way to satisfy the check.
public struct HeaderRequirement: Sendable, Equatable, Hashable {
    /// Why a requirement was or was not met, for the trace.
    public enum Outcome: Sendable, Equatable {
        /// Present, and every occurrence matches.
        case satisfied
        /// No field with this name.
        case missing
        /// The (zero-based) occurrence of the header whose value does not match.
        case mismatched(occurrence: Int)
    }

    /// The header name, lower-cased.
    public let name: String
    /// The pattern every value must match, or `nil` when presence is enough.
    public let pattern: GlobPattern?

    /// A requirement for header `name` (an RFC 9110 token), with an optional value pattern.
    public init(name: String, pattern: String? = nil) throws(RequestPrimitiveError) {
        guard !name.isEmpty, name.utf8.allSatisfy(HeaderRequirement.isTokenByte) else {
            throw RequestPrimitiveError(
                .invalidHeaderName, "'\(name)' is not a header name; expected a token such as X-Team-Id")
        }
        self.name = HeaderRequirement.lowercased(name)
        self.pattern = try pattern.map { (text: String) throws(RequestPrimitiveError) in try GlobPattern(text) }
    }

    /// Checks the request's header fields, in the order received.
    public func check(_ fields: [(name: String, value: String)]) -> Outcome {
        var occurrence = 0
        for field in fields where field.name.equalsIgnoringASCIICase(name) {
            if let pattern, !pattern.matches(field.value) { return .mismatched(occurrence: occurrence) }
            occurrence += 1
        }
        return occurrence == 0 ? .missing : .satisfied
    }

    /// Whether ``check(_:)`` is ``Outcome/satisfied``.
    public func isSatisfied(by fields: [(name: String, value: String)]) -> Bool {
        check(fields) == .satisfied
    }

    private static func lowercased(_ text: String) -> String {
        String(
            decoding: text.utf8.map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 + 32 : $0 },
            as: UTF8.self)
    }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}
