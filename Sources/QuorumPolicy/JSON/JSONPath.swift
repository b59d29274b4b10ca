/// A small, fully specified JSON path, as payload rules name fields.
///
/// Grammar (no filters, no recursion, no slices — each path selects a fixed shape):
///
/// ```
/// path     = "$" *segment
/// segment  = "." name            ; member: $.model, $.a.b
///          / "." "*"             ; every member value of an object / element of an array
///          / "[" index "]"       ; array element: $.messages[0]
///          / "[" "*" "]"         ; wildcard, as ".*"
///          / "[" string "]"      ; member by quoted name: $["key with.dot"]
/// name     = 1*( ALPHA / DIGIT / "_" / "-" )
/// index    = "0" / ( %x31-39 *DIGIT )      ; no leading zeros, at most 9 digits
/// string   = JSON string in double quotes (same escapes as JSON)
/// ```
///
/// Evaluation returns every value the path selects, in document order; a member or index that is
/// absent, or a segment applied to the wrong type, selects nothing (no error). Member names match
/// scalar by scalar, as upstream JSON parsers compare them: Swift `String` equality would let
/// `"top\u212A"` (a Kelvin sign) or a decomposed `"cafe\u0301"` stand in for `topK` or `café`,
/// so a rule would check a member the upstream does not see. ``JSONParser`` refuses canonically
/// equivalent keys in one object as duplicates, so the stricter match never has two candidates.
public struct JSONPath: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// One step of a path.
    public enum Segment: Sendable, Equatable, Hashable {
        /// An object member by name.
        case member(String)
        /// An array element by zero-based index.
        case index(Int)
        /// Every member value of an object, or every element of an array.
        case wildcard
    }

    /// The steps after `$`.
    public let segments: [Segment]

    /// Creates a path from segments.
    public init(segments: [Segment]) {
        self.segments = segments
    }

    /// Parses path text; throws ``JSONPathError`` naming the offending character offset.
    public init(_ text: String) throws(JSONPathError) {
        self.segments = try JSONPath.parse(Array(text.unicodeScalars))
    }

    /// True if any segment is a wildcard, so the path can select several values.
    public var hasWildcard: Bool { segments.contains(.wildcard) }

    /// The canonical text of the path (`$.a["b.c"][0][*]`).
    public var description: String {
        var out = "$"
        for segment in segments {
            switch segment {
            case .member(let name):
                if !name.isEmpty && name.unicodeScalars.allSatisfy(JSONPath.isNameScalar) {
                    out += "." + name
                } else {
                    out += "["
                    JSONValue.writeString(name, to: &out)
                    out += "]"
                }
            case .index(let i): out += "[\(i)]"
            case .wildcard: out += "[*]"
            }
        }
        return out
    }

    /// Every value this path selects in `document`, in document order; empty when nothing matches.
    public func evaluate(_ document: JSONValue) -> [JSONValue] {
        var current = [document]
        for segment in segments {
            var next: [JSONValue] = []
            for value in current {
                switch (segment, value) {
                case (.member(let name), .object(let members)):
                    if let member = members.first(where: { $0.key.unicodeScalars.elementsEqual(name.unicodeScalars) }) {
                        next.append(member.value)
                    }
                case (.index(let i), .array(let items)):
                    if i < items.count { next.append(items[i]) }
                case (.wildcard, .array(let items)):
                    next.append(contentsOf: items)
                case (.wildcard, .object(let members)):
                    next.append(contentsOf: members.map(\.value))
                default:
                    break
                }
            }
            current = next
            if current.isEmpty { break }
        }
        return current
    }

    static func isNameScalar(_ s: Unicode.Scalar) -> Bool {
        switch s {
        case "a"..."z", "A"..."Z", "0"..."9", "_", "-": true
        default: false
        }
    }

    private static func parse(_ s: [Unicode.Scalar]) throws(JSONPathError) -> [Segment] {
        guard s.first == "$" else { throw JSONPathError(offset: 0, reason: "a path starts with '$'") }
        var i = 1
        var segments: [Segment] = []
        while i < s.count {
            switch s[i] {
            case ".":
                i += 1
                if i < s.count, s[i] == "*" {
                    segments.append(.wildcard)
                    i += 1
                    continue
                }
                let start = i
                while i < s.count, isNameScalar(s[i]) { i += 1 }
                if i == start {
                    throw JSONPathError(
                        offset: start, reason: "expected a member name (letters, digits, '_', '-') or '*' after '.'")
                }
                segments.append(.member(String(String.UnicodeScalarView(s[start..<i]))))
            case "[":
                i += 1
                guard i < s.count else { throw JSONPathError(offset: i, reason: "unterminated '['") }
                if s[i] == "*" {
                    segments.append(.wildcard)
                    i += 1
                } else if s[i] == "\"" {
                    segments.append(.member(try parseQuoted(s, &i)))
                } else if s[i] >= "0" && s[i] <= "9" {
                    let start = i
                    while i < s.count, s[i] >= "0" && s[i] <= "9" { i += 1 }
                    if s[start] == "0" && i - start > 1 {
                        throw JSONPathError(offset: start, reason: "an index may not have leading zeros")
                    }
                    if i - start > 9 { throw JSONPathError(offset: start, reason: "an index has at most 9 digits") }
                    var value = 0
                    for d in s[start..<i] { value = value * 10 + Int(d.value - 48) }
                    segments.append(.index(value))
                } else {
                    throw JSONPathError(
                        offset: i, reason: "expected '*', a non-negative index or a quoted name after '['")
                }
                guard i < s.count, s[i] == "]" else { throw JSONPathError(offset: i, reason: "expected ']'") }
                i += 1
            default:
                throw JSONPathError(offset: i, reason: "expected '.' or '[' to start a segment")
            }
        }
        return segments
    }

    private static func parseQuoted(_ s: [Unicode.Scalar], _ i: inout Int) throws(JSONPathError) -> String {
        let start = i
        i += 1
        var text = "\""
        while i < s.count, s[i] != "\"" {
            text.unicodeScalars.append(s[i])
            if s[i] == "\\", i + 1 < s.count {
                i += 1
                text.unicodeScalars.append(s[i])
            }
            i += 1
        }
        guard i < s.count else { throw JSONPathError(offset: start, reason: "unterminated quoted name") }
        text += "\""
        i += 1
        let parsed: JSONValue
        do {
            parsed = try JSONParser().parse(text)
        } catch {
            throw JSONPathError(offset: start + error.offset, reason: "invalid quoted name: \(error.reason)")
        }
        guard case .string(let name) = parsed else {
            throw JSONPathError(offset: start, reason: "invalid quoted name")
        }
        return name
    }
}

/// A path that could not be parsed.
public struct JSONPathError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Zero-based offset (in Unicode scalars) of the offending character.
    public let offset: Int
    /// What was wrong and what would have been valid.
    public let reason: String

    /// `offset N: reason`.
    public var description: String { "offset \(offset): \(reason)" }
}
