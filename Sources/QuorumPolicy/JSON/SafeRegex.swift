/// A regular expression matcher that runs in time linear in the input, whatever the pattern.
///
/// Supported: literal characters, `.` (any scalar), classes `[a-z_]` and `[^…]`, escapes
/// (`\d`, `\w`, `\s`, `\D`, `\W`, `\S`, and `\` before any punctuation), `*`, `+`, `?`,
/// counted repetition `{n}`, `{n,}` and `{n,m}` (n, m ≤ ``maxRepetition``), alternation `|`,
/// groups `( … )`, and the anchors `^` (start of text) and `$` (end of text). Not supported, by
/// design: backreferences and lookaround, which need backtracking. Matching is a search: the
/// pattern may match anywhere unless anchored. Text is matched by Unicode scalars.
///
/// Counted repetition is expanded into copies of its atom (`a{2,4}` is `aaa?a?`), so the program
/// can grow; it is capped at ``maxProgramSize`` instructions, which keeps the work per input
/// scalar bounded.
///
/// Why it cannot backtrack catastrophically: the pattern compiles to a Thompson NFA (one
/// instruction per pattern element, so at most ~3 per pattern scalar), and matching is a Pike-VM
/// simulation that advances the set of all live NFA states one input scalar at a time. A state is
/// added at most once per input position (a generation mark deduplicates it, which also breaks
/// empty loops such as `(a*)*`), so the work is at most O(input length × program size), and there
/// is no stack of choices to revisit. `(a+)+$` over thirty `a`s and a `b` is ~32 steps, not 2³⁰.
public struct SafeRegex: Sendable, Equatable, CustomStringConvertible {
    /// The longest pattern accepted, in Unicode scalars; keeps the program (and the work per input
    /// scalar) bounded.
    public static let maxPatternLength = 512
    /// Deepest allowed group nesting.
    public static let maxGroupDepth = 32
    /// Largest count in `{n,m}`.
    public static let maxRepetition = 100
    /// Largest compiled program, in NFA instructions.
    public static let maxProgramSize = 4096

    /// The pattern as written.
    public let pattern: String
    private let program: [Instruction]

    /// Compiles `pattern`; throws ``SafeRegexError`` naming the offending position.
    public init(_ pattern: String) throws(SafeRegexError) {
        let scalars = Array(pattern.unicodeScalars)
        guard scalars.count <= SafeRegex.maxPatternLength else {
            throw SafeRegexError(
                offset: SafeRegex.maxPatternLength,
                reason: "pattern longer than \(SafeRegex.maxPatternLength) characters")
        }
        var parser = Parser(scalars: scalars)
        let node = try parser.parseAlternation(depth: 0)
        if parser.index < scalars.count {
            throw SafeRegexError(offset: parser.index, reason: "unbalanced ')'")
        }
        var program: [Instruction] = []
        SafeRegex.compile(node, into: &program)
        program.append(.match)
        guard program.count <= SafeRegex.maxProgramSize else {
            throw SafeRegexError(
                offset: 0,
                reason:
                    "pattern expands to \(program.count) instructions (limit \(SafeRegex.maxProgramSize)); use smaller counts"
            )
        }
        self.pattern = pattern
        self.program = program
    }

    /// The pattern.
    public var description: String { pattern }

    /// True if the pattern matches somewhere in `text`.
    public func matches(_ text: String) -> Bool {
        let input = Array(text.unicodeScalars)
        var marks = [Int](repeating: -1, count: program.count)
        var current: [Int] = []
        var next: [Int] = []
        var stack: [Int] = []
        var generation = 0
        for position in 0...input.count {
            // Unanchored search: a fresh thread may start at every position.
            if add(
                0, at: position, count: input.count, generation: generation, marks: &marks, list: &current,
                stack: &stack)
            {
                return true
            }
            if position == input.count { break }
            let scalar = input[position]
            generation += 1
            next.removeAll(keepingCapacity: true)
            for pc in current {
                let advances: Bool
                switch program[pc] {
                case .scalar(let s): advances = s == scalar
                case .any: advances = true
                case .set(let set): advances = set.contains(scalar)
                default: advances = false
                }
                if advances,
                    add(
                        pc + 1, at: position + 1, count: input.count, generation: generation, marks: &marks,
                        list: &next, stack: &stack)
                {
                    return true
                }
            }
            swap(&current, &next)
        }
        return false
    }

    /// Follows the ε-closure of `start`, appending consuming states to `list`; true on reaching `match`.
    private func add(
        _ start: Int, at position: Int, count: Int, generation: Int, marks: inout [Int], list: inout [Int],
        stack: inout [Int]
    ) -> Bool {
        stack.append(start)
        while let pc = stack.popLast() {
            if marks[pc] == generation { continue }
            marks[pc] = generation
            switch program[pc] {
            case .match:
                stack.removeAll()
                return true
            case .jump(let target): stack.append(target)
            case .split(let a, let b):
                stack.append(b)
                stack.append(a)
            case .textStart: if position == 0 { stack.append(pc + 1) }
            case .textEnd: if position == count { stack.append(pc + 1) }
            case .scalar, .any, .set: list.append(pc)
            }
        }
        return false
    }

    private enum Instruction: Sendable, Equatable {
        case scalar(Unicode.Scalar)
        case any
        case set(ScalarSet)
        case split(Int, Int)
        case jump(Int)
        case textStart
        case textEnd
        case match
    }

    struct ScalarSet: Sendable, Equatable {
        var ranges: [ClosedRange<UInt32>]
        var negated: Bool

        func contains(_ s: Unicode.Scalar) -> Bool {
            ranges.contains { $0.contains(s.value) } != negated
        }
    }

    private indirect enum Node {
        case empty
        case scalar(Unicode.Scalar)
        case any
        case set(ScalarSet)
        case textStart
        case textEnd
        case concat([Node])
        case alternation(Node, Node)
        case star(Node)
        case plus(Node)
        case optional(Node)
        case repetition(Node, min: Int, max: Int?)
    }

    private static func compile(_ node: Node, into p: inout [Instruction]) {
        switch node {
        case .empty: break
        case .scalar(let s): p.append(.scalar(s))
        case .any: p.append(.any)
        case .set(let set): p.append(.set(set))
        case .textStart: p.append(.textStart)
        case .textEnd: p.append(.textEnd)
        case .concat(let nodes): for n in nodes { compile(n, into: &p) }
        case .alternation(let a, let b):
            let split = p.count
            p.append(.split(0, 0))
            compile(a, into: &p)
            let jump = p.count
            p.append(.jump(0))
            p[split] = .split(split + 1, p.count)
            compile(b, into: &p)
            p[jump] = .jump(p.count)
        case .star(let inner):
            let split = p.count
            p.append(.split(0, 0))
            compile(inner, into: &p)
            p.append(.jump(split))
            p[split] = .split(split + 1, p.count)
        case .plus(let inner):
            let start = p.count
            compile(inner, into: &p)
            p.append(.split(start, p.count + 1))
        case .optional(let inner):
            let split = p.count
            p.append(.split(0, 0))
            compile(inner, into: &p)
            p[split] = .split(split + 1, p.count)
        case .repetition(let inner, let min, let max):
            for _ in 0..<min {
                compile(inner, into: &p)
                if p.count > maxProgramSize { return }
            }
            guard let max else {
                compile(.star(inner), into: &p)
                return
            }
            for _ in min..<max {
                compile(.optional(inner), into: &p)
                if p.count > maxProgramSize { return }
            }
        }
    }

    private struct Parser {
        let scalars: [Unicode.Scalar]
        var index = 0

        mutating func parseAlternation(depth: Int) throws(SafeRegexError) -> Node {
            var node = try parseConcatenation(depth: depth)
            while index < scalars.count, scalars[index] == "|" {
                index += 1
                node = .alternation(node, try parseConcatenation(depth: depth))
            }
            return node
        }

        mutating func parseConcatenation(depth: Int) throws(SafeRegexError) -> Node {
            var nodes: [Node] = []
            while index < scalars.count, scalars[index] != "|", scalars[index] != ")" {
                let atom = try parseAtom(depth: depth)
                if index < scalars.count, scalars[index] == "{" {
                    nodes.append(try parseCount(of: atom))
                    continue
                }
                guard index < scalars.count, "*+?".unicodeScalars.contains(scalars[index]) else {
                    nodes.append(atom)
                    continue
                }
                let quantifier = scalars[index]
                index += 1
                if index < scalars.count, "*+?{".unicodeScalars.contains(scalars[index]) {
                    throw SafeRegexError(
                        offset: index, reason: "stacked quantifiers and lazy/possessive forms are not supported")
                }
                switch quantifier {
                case "*": nodes.append(.star(atom))
                case "+": nodes.append(.plus(atom))
                default: nodes.append(.optional(atom))
                }
            }
            return nodes.isEmpty ? .empty : .concat(nodes)
        }

        /// `{n}`, `{n,}` or `{n,m}` after an atom.
        mutating func parseCount(of atom: Node) throws(SafeRegexError) -> Node {
            let open = index
            index += 1
            func number() -> Int? {
                var value: Int?
                while index < scalars.count, ("0"..."9").contains(scalars[index]),
                    (value ?? 0) <= SafeRegex.maxRepetition
                {
                    value = (value ?? 0) * 10 + Int(scalars[index].value - 48)
                    index += 1
                }
                return value
            }
            let usage = "expected {n}, {n,} or {n,m} with n ≤ m ≤ \(SafeRegex.maxRepetition)"
            guard let low = number() else { throw SafeRegexError(offset: open, reason: usage) }
            var high: Int? = low
            if index < scalars.count, scalars[index] == "," {
                index += 1
                high = number()
            }
            guard index < scalars.count, scalars[index] == "}", low <= SafeRegex.maxRepetition,
                high.map({ $0 >= low && $0 <= SafeRegex.maxRepetition }) ?? true
            else { throw SafeRegexError(offset: open, reason: usage) }
            index += 1
            if index < scalars.count, "*+?{".unicodeScalars.contains(scalars[index]) {
                throw SafeRegexError(
                    offset: index, reason: "stacked quantifiers and lazy/possessive forms are not supported")
            }
            return .repetition(atom, min: low, max: high)
        }

        mutating func parseAtom(depth: Int) throws(SafeRegexError) -> Node {
            let c = scalars[index]
            switch c {
            case "(":
                guard depth < SafeRegex.maxGroupDepth else {
                    throw SafeRegexError(offset: index, reason: "groups nested deeper than \(SafeRegex.maxGroupDepth)")
                }
                let open = index
                index += 1
                if index < scalars.count, scalars[index] == "?" {
                    throw SafeRegexError(offset: index, reason: "group modifiers and lookaround are not supported")
                }
                let inner = try parseAlternation(depth: depth + 1)
                guard index < scalars.count, scalars[index] == ")" else {
                    throw SafeRegexError(offset: open, reason: "unclosed '('")
                }
                index += 1
                return inner
            case "*", "+", "?":
                throw SafeRegexError(offset: index, reason: "quantifier '\(c)' has nothing to repeat")
            case "{", "}":
                throw SafeRegexError(offset: index, reason: "'\(c)' with nothing to repeat; escape it as \\\(c)")
            case "[":
                return .set(try parseClass())
            case ".":
                index += 1
                return .any
            case "^":
                index += 1
                return .textStart
            case "$":
                index += 1
                return .textEnd
            case "\\":
                let (node, _) = try parseEscape()
                return node
            default:
                index += 1
                return .scalar(c)
            }
        }

        /// Parses `\x` at `index`; returns the node and, for a single scalar, that scalar.
        mutating func parseEscape() throws(SafeRegexError) -> (Node, Unicode.Scalar?) {
            let start = index
            index += 1
            guard index < scalars.count else { throw SafeRegexError(offset: start, reason: "trailing '\\'") }
            let c = scalars[index]
            index += 1
            let digit: [ClosedRange<UInt32>] = [48...57]
            let word: [ClosedRange<UInt32>] = [48...57, 65...90, 95...95, 97...122]
            let space: [ClosedRange<UInt32>] = [9...13, 32...32]
            switch c {
            case "d": return (.set(ScalarSet(ranges: digit, negated: false)), nil)
            case "D": return (.set(ScalarSet(ranges: digit, negated: true)), nil)
            case "w": return (.set(ScalarSet(ranges: word, negated: false)), nil)
            case "W": return (.set(ScalarSet(ranges: word, negated: true)), nil)
            case "s": return (.set(ScalarSet(ranges: space, negated: false)), nil)
            case "S": return (.set(ScalarSet(ranges: space, negated: true)), nil)
            case "n": return (.scalar("\n"), "\n")
            case "t": return (.scalar("\t"), "\t")
            case "r": return (.scalar("\r"), "\r")
            default:
                guard c.value < 0x80, !c.properties.isAlphabetic, !(c >= "0" && c <= "9") else {
                    throw SafeRegexError(
                        offset: start, reason: "unsupported escape '\\\(c)' (backreferences are not supported)")
                }
                return (.scalar(c), c)
            }
        }

        mutating func parseClass() throws(SafeRegexError) -> ScalarSet {
            let open = index
            index += 1
            var set = ScalarSet(ranges: [], negated: false)
            if index < scalars.count, scalars[index] == "^" {
                set.negated = true
                index += 1
            }
            var first = true
            while true {
                guard index < scalars.count else { throw SafeRegexError(offset: open, reason: "unclosed '['") }
                if scalars[index] == "]" && !first { break }
                first = false
                let lower: Unicode.Scalar
                if scalars[index] == "\\" {
                    let (node, scalar) = try parseEscape()
                    guard let scalar else {
                        if case .set(let inner) = node, !inner.negated { set.ranges += inner.ranges; continue }
                        throw SafeRegexError(offset: index - 2, reason: "negated escapes are not allowed in a class")
                    }
                    lower = scalar
                } else {
                    lower = scalars[index]
                    index += 1
                }
                if index + 1 < scalars.count, scalars[index] == "-", scalars[index + 1] != "]" {
                    index += 1
                    let upper: Unicode.Scalar
                    if scalars[index] == "\\" {
                        let (_, scalar) = try parseEscape()
                        guard let scalar else {
                            throw SafeRegexError(offset: index - 2, reason: "a class escape cannot end a range")
                        }
                        upper = scalar
                    } else {
                        upper = scalars[index]
                        index += 1
                    }
                    guard lower.value <= upper.value else {
                        throw SafeRegexError(offset: index - 1, reason: "range out of order")
                    }
                    set.ranges.append(lower.value...upper.value)
                } else {
                    set.ranges.append(lower.value...lower.value)
                }
            }
            index += 1
            return set
        }
    }
}

/// A pattern that could not be compiled.
public struct SafeRegexError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Zero-based offset (in Unicode scalars) of the offending character.
    public let offset: Int
    /// What was wrong.
    public let reason: String

    /// `offset N: reason`.
    public var description: String { "offset \(offset): \(reason)" }
}
