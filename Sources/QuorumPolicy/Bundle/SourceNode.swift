import Yams

/// A one-based line and column in a bundle file. Columns count Unicode scalars, as libyaml does.
struct SourceMark: Sendable, Equatable, Comparable {
    var line: Int
    var column: Int

    static let unknown = SourceMark(line: 0, column: 0)

    static func < (lhs: SourceMark, rhs: SourceMark) -> Bool {
        (lhs.line, lhs.column) < (rhs.line, rhs.column)
    }
}

/// A bundle document as read, before our schema gives it types: mappings with ordered keys,
/// sequences, scalars that remember whether they were quoted, and null. YAML and JSON both become
/// this tree, so one decoder (and one set of typing rules) serves both.
struct SourceNode: Sendable {
    // Not `indirect`: the recursion goes through arrays, which are already references, so no
    // node needs a box of its own (one allocation fewer per node of a 10,000-latch bundle).
    enum Content: Sendable {
        case mapping([SourceEntry])
        case sequence([SourceNode])
        /// A scalar's text; `quoted` for YAML quoted, literal and folded scalars and JSON strings.
        case scalar(String, quoted: Bool)
        /// YAML `null`, `~` or an empty plain scalar; JSON `null`.
        case null
    }

    var mark: SourceMark
    var content: Content

    /// What a problem calls this node's type: "a mapping", "a list", "the string 'x'", …
    var kindDescription: String {
        switch content {
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .null: "null"
        case .scalar(let text, let quoted):
            quoted ? "the string \(BundleText.quote(text))" : BundleText.quote(text)
        }
    }

    /// The node at `path` (segments of a field path), or the deepest existing ancestor's.
    func nearest(_ segments: ArraySlice<FieldPathSegment>) -> SourceMark {
        guard let first = segments.first else { return mark }
        switch (first, content) {
        case (.key(let key), .mapping(let entries)):
            guard let entry = entries.first(where: { $0.key == key }) else { return mark }
            return entry.value.nearest(segments.dropFirst())
        case (.index(let index), .sequence(let items)):
            guard items.indices.contains(index) else { return mark }
            return items[index].nearest(segments.dropFirst())
        default:
            return mark
        }
    }
}

/// One member of a source mapping.
struct SourceEntry: Sendable {
    var key: String
    var keyMark: SourceMark
    var value: SourceNode
}

/// One step of a field path such as `latches[3].mounts[0].upstream`.
enum FieldPathSegment: Equatable {
    case key(String)
    case index(Int)

    /// Splits a field path into keys and indices; keys never contain `.` or `[` in our schema
    /// except map keys (model names, label names), which are matched as far as they parse.
    static func parse(_ path: String) -> [FieldPathSegment] {
        var segments: [FieldPathSegment] = []
        var current = ""
        var chars = path.makeIterator()
        while let char = chars.next() {
            switch char {
            case ".":
                if !current.isEmpty { segments.append(.key(current)) }
                current = ""
            case "[":
                if !current.isEmpty { segments.append(.key(current)) }
                current = ""
                var digits = ""
                while let digit = chars.next(), digit != "]" { digits.append(digit) }
                if let index = Int(digits) { segments.append(.index(index)) }
            default:
                current.append(char)
            }
        }
        if !current.isEmpty { segments.append(.key(current)) }
        return segments
    }
}

/// A problem found while reading the syntax, before any schema applies.
struct SyntaxProblem {
    var mark: SourceMark
    var message: String
}

/// Every syntax problem found (usually one: a parser cannot read past a syntax error).
struct SyntaxProblems: Error {
    var problems: [SyntaxProblem]

    init(_ problems: [SyntaxProblem]) { self.problems = problems }
}

// MARK: - YAML

/// Reads YAML through libyaml (Yams' composer) into a ``SourceNode`` tree.
///
/// Yams runs with the basic resolver: scalars are never typed by YAML 1.1 rules (`on`, `yes`,
/// `0x1F`, dates), our schema types them instead. Anchors, aliases and explicit tags are refused:
/// an alias can silently copy a parent's filters into a place the reader did not expect, and a tag
/// would ask for a type the schema does not have. Yams refuses duplicate keys itself.
enum YAMLSourceReader {
    static let maxDepth = 64

    static func read(_ text: String) -> Result<SourceNode, SyntaxProblems> {
        // The parser holds the anchors strongly and nodes only weakly, so it stays alive until
        // the tree is converted; otherwise an anchored node would no longer show its anchor.
        if let problem = nestingProblem(text) { return .failure(SyntaxProblems([problem])) }
        let parser: Parser
        let root: Node?
        do {
            parser = try Parser(yaml: text, resolver: .basic)
            root = try parser.singleRoot()
        } catch let error as YamlError {
            return .failure(SyntaxProblems([problem(from: error)]))
        } catch {
            return .failure(SyntaxProblems([SyntaxProblem(mark: .unknown, message: "not valid YAML: \(error)")]))
        }
        guard let root else {
            return .failure(
                SyntaxProblems([SyntaxProblem(mark: SourceMark(line: 1, column: 1), message: "the document is empty")]))
        }
        var problems: [SyntaxProblem] = []
        let node = withExtendedLifetime(parser) { convert(root, depth: 0, problems: &problems) }
        return problems.isEmpty ? .success(node) : .failure(SyntaxProblems(problems))
    }

    /// Refuses a document nested deeper than ``maxDepth`` before Yams sees it: Yams composes the
    /// tree recursively, so `[[[[…` a million levels deep would overflow the stack rather than fail.
    ///
    /// The scan over-estimates depth cheaply, in one pass: open flow brackets, plus the indentation
    /// levels open above the line, plus compact `- ` and `? ` indicators on it. Quoted scalars,
    /// comments and block scalar (`|`, `>`) lines are skipped. A block level can hold at most two
    /// nodes (a mapping and a sequence at the same indentation), so whatever passes is at most about
    /// twice ``maxDepth`` deep for Yams, and ``convert(_:depth:problems:)`` then refuses it exactly.
    static func nestingProblem(_ text: String) -> SyntaxProblem? {
        let bytes = Array(text.utf8)
        var indents: [Int] = []
        var flowDepth = 0
        var quote: UInt8? = nil
        var blockScalarIndent: Int? = nil
        var line = 1
        var index = 0
        while index < bytes.count {
            let lineStart = index
            var lineEnd = index
            while lineEnd < bytes.count && bytes[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
            defer {
                index = lineEnd + 1
                line += 1
            }
            var column = lineStart
            while column < lineEnd && bytes[column] == UInt8(ascii: " ") { column += 1 }
            let indent = column - lineStart
            let blank = column == lineEnd || bytes[column] == UInt8(ascii: "#") || bytes[column] == UInt8(ascii: "\r")
            if let scalarIndent = blockScalarIndent {
                if blank || indent > scalarIndent { continue }
                blockScalarIndent = nil
            }
            if quote == nil && flowDepth == 0 && !blank {
                while let last = indents.last, last >= indent { indents.removeLast() }
                indents.append(indent)
            }
            var depth = indents.count + flowDepth
            var atNodeStart = quote == nil
            while column < lineEnd {
                let byte = bytes[column]
                column += 1
                if let open = quote {
                    if byte == UInt8(ascii: "\\") && open == UInt8(ascii: "\"") {
                        column += 1
                    } else if byte == open {
                        if open == UInt8(ascii: "'") && column < lineEnd && bytes[column] == open {
                            column += 1
                        } else {
                            quote = nil
                        }
                    }
                    continue
                }
                let space = UInt8(ascii: " ")
                let followedBySpace = column == lineEnd || bytes[column] == space
                if byte == space || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") { continue }
                if byte == UInt8(ascii: "#") && (column == lineStart + 1 || bytes[column - 2] == space) {
                    column = lineEnd
                    continue
                }
                if (byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'")) && atNodeStart {
                    quote = byte
                } else if (byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{")) && (atNodeStart || flowDepth > 0) {
                    flowDepth += 1
                    depth += 1
                    atNodeStart = true
                    continue
                } else if (byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}")) && flowDepth > 0 {
                    flowDepth -= 1
                } else if (byte == UInt8(ascii: ",") || byte == UInt8(ascii: ":")) && flowDepth > 0 {
                    atNodeStart = true
                    continue
                } else if (byte == UInt8(ascii: "-") || byte == UInt8(ascii: "?")) && followedBySpace && atNodeStart {
                    depth += 1
                    continue
                } else if byte == UInt8(ascii: ":") && followedBySpace {
                    atNodeStart = true
                    continue
                } else if (byte == UInt8(ascii: "|") || byte == UInt8(ascii: ">")) && atNodeStart && flowDepth == 0 {
                    blockScalarIndent = indent
                    column = lineEnd
                    continue
                }
                atNodeStart = false
            }
            if depth > maxDepth {
                return SyntaxProblem(
                    mark: SourceMark(line: line, column: 1), message: "nested deeper than \(maxDepth) levels")
            }
        }
        return nil
    }

    private static func mark(_ mark: Mark?) -> SourceMark {
        guard let mark else { return .unknown }
        return SourceMark(line: mark.line, column: mark.column)
    }

    private static func convert(_ node: Node, depth: Int, problems: inout [SyntaxProblem]) -> SourceNode {
        let at = mark(node.mark)
        if depth > maxDepth {
            problems.append(SyntaxProblem(mark: at, message: "nested deeper than \(maxDepth) levels"))
            return SourceNode(mark: at, content: .null)
        }
        if let anchor = node.anchor {
            problems.append(
                SyntaxProblem(
                    mark: at,
                    message:
                        "anchor '&\(anchor.rawValue)' (or an alias '*\(anchor.rawValue)' to it): anchors and aliases are not allowed in a bundle; write the value out"
                ))
        }
        switch node {
        case .scalar(let scalar):
            // Yams gives every quoted scalar the `str` tag, written or not; it changes nothing.
            let quoted = scalar.style != .plain && scalar.style != .any
            checkTag(scalar.tag, at: at, allowingString: quoted, problems: &problems)
            switch scalar.style {
            case .plain, .any:
                if scalar.string.isEmpty || scalar.string == "~" || scalar.string == "null" {
                    return SourceNode(mark: at, content: .null)
                }
                return SourceNode(mark: at, content: .scalar(scalar.string, quoted: false))
            case .singleQuoted, .doubleQuoted, .literal, .folded:
                return SourceNode(mark: at, content: .scalar(scalar.string, quoted: true))
            }
        case .sequence(let sequence):
            checkTag(sequence.tag, at: at, problems: &problems)
            var items: [SourceNode] = []
            items.reserveCapacity(sequence.count)
            for item in sequence { items.append(convert(item, depth: depth + 1, problems: &problems)) }
            return SourceNode(mark: at, content: .sequence(items))
        case .mapping(let mapping):
            checkTag(mapping.tag, at: at, problems: &problems)
            var entries: [SourceEntry] = []
            entries.reserveCapacity(mapping.count)
            for (key, value) in mapping {
                let keyMark = self.mark(key.mark)
                guard case .scalar(let scalar) = key else {
                    problems.append(
                        SyntaxProblem(mark: keyMark, message: "a mapping key must be a plain word or string"))
                    continue
                }
                if let anchor = key.anchor {
                    problems.append(
                        SyntaxProblem(
                            mark: keyMark, message: "anchor '&\(anchor.rawValue)': anchors are not allowed in a bundle")
                    )
                }
                // Yams resolves key tags in place while checking for duplicates, so a key's tag may
                // read `str` without being written; only another tag is known to be explicit.
                checkTag(scalar.tag, at: keyMark, allowingString: true, problems: &problems)
                entries.append(
                    SourceEntry(
                        key: scalar.string, keyMark: keyMark,
                        value: convert(value, depth: depth + 1, problems: &problems)))
            }
            return SourceNode(mark: at, content: .mapping(entries))
        case .alias(let alias):
            problems.append(
                SyntaxProblem(
                    mark: at,
                    message: "alias '*\(alias.anchor.rawValue)': anchors and aliases are not allowed in a bundle"))
            return SourceNode(mark: at, content: .null)
        }
    }

    private static func checkTag(
        _ tag: Tag, at: SourceMark, allowingString: Bool = false, problems: inout [SyntaxProblem]
    ) {
        // An unresolved tag has an empty name; anything else was written in the document.
        if !tag.rawValue.isEmpty && !(allowingString && tag.rawValue == Tag.Name.str.rawValue) {
            problems.append(
                SyntaxProblem(
                    mark: at,
                    message:
                        "tag '\(tag.rawValue)': YAML tags are not allowed in a bundle; the schema gives every field its type"
                ))
        }
    }

    private static func problem(from error: YamlError) -> SyntaxProblem {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
            .composer(_, let problem, let mark, _):
            return SyntaxProblem(mark: self.mark(mark), message: "not valid YAML: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let names = duplicates.map { BundleText.quote($0) }.joined(separator: ", ")
            return SyntaxProblem(
                mark: self.mark(context.mark),
                message: "duplicate key \(names) in one mapping (first written here); each key may appear once")
        case .reader(let problem, _, _, _):
            return SyntaxProblem(mark: .unknown, message: "not readable as YAML: \(problem)")
        default:
            return SyntaxProblem(mark: .unknown, message: "not valid YAML: \(error)")
        }
    }
}

// MARK: - JSON

/// Reads JSON: the strict ``JSONParser`` first (so duplicate keys, bad escapes and the like are
/// refused exactly as for request bodies), then one pass over the now known-good bytes to attach
/// a position to every value and key.
enum JSONSourceReader {
    /// Bundles are larger than request bodies; the depth stays small because bundles are shallow.
    static let configuration = JSONParserConfiguration(maxDepth: 64, maxBytes: 1 << 28)

    static func read(_ bytes: [UInt8]) -> Result<(SourceNode, JSONValue), SyntaxProblems> {
        let value: JSONValue
        do {
            value = try JSONParser(configuration: configuration).parse(bytes)
        } catch {
            let mark = Scanner.mark(ofOffset: error.offset, in: bytes)
            return .failure(
                SyntaxProblems([
                    SyntaxProblem(mark: mark, message: "not valid JSON: \(error.reason) [\(error.code.rawValue)]")
                ]))
        }
        var scanner = Scanner(bytes: bytes)
        return .success((scanner.node(for: value), value))
    }

    /// Walks bytes that ``JSONParser`` accepted, in step with the parsed value.
    private struct Scanner {
        let bytes: [UInt8]
        var index = 0
        var line = 1
        var column = 1

        init(bytes: [UInt8]) { self.bytes = bytes }

        static func mark(ofOffset offset: Int, in bytes: [UInt8]) -> SourceMark {
            var line = 1
            var column = 1
            for byte in bytes[0..<min(offset, bytes.count)] {
                if byte == UInt8(ascii: "\n") {
                    line += 1
                    column = 1
                } else if byte & 0xC0 != 0x80 {
                    column += 1
                }
            }
            return SourceMark(line: line, column: column)
        }

        var mark: SourceMark { SourceMark(line: line, column: column) }

        mutating func advance() {
            let byte = bytes[index]
            index += 1
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: advance()
                default: return
                }
            }
        }

        mutating func skipString() {
            advance()  // opening quote
            while bytes[index] != UInt8(ascii: "\"") {
                if bytes[index] == UInt8(ascii: "\\") { advance() }
                advance()
            }
            advance()
        }

        mutating func skipToken() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D, UInt8(ascii: ","), UInt8(ascii: "]"), UInt8(ascii: "}"): return
                default: advance()
                }
            }
        }

        mutating func node(for value: JSONValue) -> SourceNode {
            skipWhitespace()
            let at = mark
            switch value {
            case .object(let members):
                advance()
                var entries: [SourceEntry] = []
                entries.reserveCapacity(members.count)
                for member in members {
                    skipWhitespace()
                    let keyMark = mark
                    skipString()
                    skipWhitespace()
                    advance()  // ':'
                    let child = node(for: member.value)
                    entries.append(SourceEntry(key: member.key, keyMark: keyMark, value: child))
                    skipWhitespace()
                    if bytes[index] == UInt8(ascii: ",") { advance() }
                }
                skipWhitespace()
                advance()
                return SourceNode(mark: at, content: .mapping(entries))
            case .array(let items):
                advance()
                var nodes: [SourceNode] = []
                nodes.reserveCapacity(items.count)
                for item in items {
                    nodes.append(node(for: item))
                    skipWhitespace()
                    if bytes[index] == UInt8(ascii: ",") { advance() }
                }
                skipWhitespace()
                advance()
                return SourceNode(mark: at, content: .sequence(nodes))
            case .string(let text):
                skipString()
                return SourceNode(mark: at, content: .scalar(text, quoted: true))
            case .number(let number):
                skipToken()
                return SourceNode(mark: at, content: .scalar(number.text, quoted: false))
            case .bool(let flag):
                skipToken()
                return SourceNode(mark: at, content: .scalar(flag ? "true" : "false", quoted: false))
            case .null:
                skipToken()
                return SourceNode(mark: at, content: .null)
            }
        }
    }
}

/// Small text helpers shared by the reader, decoder and writer.
enum BundleText {
    /// `'text'`, cut to 60 characters, so a problem quotes what it refused without flooding.
    static func quote(_ text: String) -> String {
        let limit = 60
        if text.unicodeScalars.count <= limit { return "'\(text)'" }
        return "'\(String(String.UnicodeScalarView(text.unicodeScalars.prefix(limit))))…'"
    }

    /// `a, b, c`, or `none`.
    static func list(_ names: some Sequence<String>) -> String {
        let joined = names.joined(separator: ", ")
        return joined.isEmpty ? "none" : joined
    }
}
