/// A comparison a payload rule applies to each selected value.
///
/// Comparisons are typed: numbers compare as exact decimals (``JSONNumber``), strings by Unicode
/// scalar sequence (no locale, no normalisation), and a value of a different type from the operand
/// never satisfies an operator — including `ne` and `not_in`, so a rule cannot be passed by sending
/// `"max_tokens": "99999"` as a string.
///
/// | operator | operand | satisfied when the value … |
/// |---|---|---|
/// | `eq` / `ne` | any JSON | has the operand's type and is equal / not equal (objects ignore member order) |
/// | `lt` `le` `gt` `ge` | number or string | has the operand's type and orders accordingly |
/// | `in` / `not_in` | array | equals an element / has the type of some element but equals none |
/// | `contains` | any JSON | is a string containing the (string) operand, or an array with an element equal to it |
/// | `prefix` / `suffix` | string | is a string starting / ending with the operand |
/// | `regex` | string pattern | is a string ``SafeRegex`` finds a match in |
/// | `exists` / `not_exists` | none | is selected by some alias / by no alias (see ``PayloadRule``) |
/// | `type` | `"null"`, `"bool"`, `"number"`, `"string"`, `"array"`, `"object"` | has that type |
/// | `len_le` / `len_ge` | non-negative integer | is an array (element count) or string (scalar count) within the bound |
public enum PayloadOperator: String, Sendable, Equatable, CaseIterable {
    /// Equal, typed.
    case eq
    /// Same type, not equal.
    case ne
    /// Less than (number or string).
    case lt
    /// Less than or equal.
    case le
    /// Greater than.
    case gt
    /// Greater than or equal.
    case ge
    /// Equal to an element of the operand array.
    case `in`
    /// Of an element's type but equal to none of the operand array.
    case notIn = "not_in"
    /// String containing the operand, or array with an element equal to it.
    case contains
    /// String starting with the operand.
    case prefix
    /// String ending with the operand.
    case suffix
    /// String in which the ``SafeRegex`` operand finds a match.
    case regex
    /// Some alias selects a value.
    case exists
    /// No alias selects a value.
    case notExists = "not_exists"
    /// Has the JSON type the operand names.
    case type
    /// Array element count or string scalar count at most the operand.
    case lenLe = "len_le"
    /// Array element count or string scalar count at least the operand.
    case lenGe = "len_ge"
}

/// How the values selected by a wildcard path combine.
public enum PayloadQuantifier: String, Sendable, Equatable {
    /// Every selected value must satisfy the operator.
    case all
    /// At least one selected value must satisfy the operator.
    case any
}

/// What a rule concludes when none of its paths selects anything.
public enum PayloadMissingBehaviour: String, Sendable, Equatable {
    /// Absence is a violation (the default: an absent cap must not mean "unlimited").
    case deny
    /// Absence satisfies the rule.
    case satisfy
}

/// The outcome of evaluating one rule against one body.
public enum PayloadRuleOutcome: Sendable, Equatable {
    /// The body satisfies the rule.
    case satisfied
    /// The body violates the rule; the reason names the path, operator and operand.
    case violated(String)
}

/// A rule over the fields of a JSON request body.
///
/// **Aliases.** A rule names one or more paths that mean the same thing to the upstream (an LLM
/// token cap: `$.max_tokens`, `$.max_completion_tokens`, `$.max_output_tokens`). They are checked
/// together: *every* alias that is present must satisfy the rule, so the cap cannot be dodged by
/// spelling the field differently.
///
/// **Missing fields.** A path is *present* when it selects at least one value; a wildcard path that
/// selects nothing (an empty array, say) counts as absent. When no alias is present:
/// - `exists` is violated and `not_exists` is satisfied, whatever the settings below;
/// - every other operator is violated if `required` is true, and otherwise follows
///   `whenMissing` (default ``PayloadMissingBehaviour/deny``).
///
/// So `all` over zero matches is *not* vacuously true: it is treated as a missing field and, by
/// default, denied. Choose `whenMissing: .satisfy` to make an optional field's rule apply only
/// when the field is sent.
///
/// **Quantifiers.** For an alias that selects several values (a wildcard path), `all` (the default)
/// requires every value to satisfy the operator, `any` at least one. `not_exists` is violated by
/// any present alias.
///
/// **Reasons.** A violation names the alias path, operator and operand; a request value is quoted
/// only as an excerpt of at most ``excerptLength`` scalars of its compact JSON text, followed by
/// `…` when cut, so a reason never carries a long prompt.
public struct PayloadRule: Sendable, Equatable {
    /// The paths checked together (at least one).
    public let paths: [JSONPath]
    /// The comparison.
    public let op: PayloadOperator
    /// The operand (`nil` for `exists` and `not_exists`).
    public let operand: JSONValue?
    /// How a wildcard path's values combine.
    public let quantifier: PayloadQuantifier
    /// True if at least one alias must be present, whatever `whenMissing` says.
    public let required: Bool
    /// What absence of every alias means for operators other than `exists`/`not_exists`.
    public let whenMissing: PayloadMissingBehaviour
    private let compiledRegex: SafeRegex?

    /// Longest excerpt of a request value quoted in a violation reason, in Unicode scalars.
    public static let excerptLength = 24

    /// Creates a rule, checking that the operand suits the operator.
    public init(
        paths: [JSONPath], op: PayloadOperator, operand: JSONValue? = nil, quantifier: PayloadQuantifier = .all,
        required: Bool = false, whenMissing: PayloadMissingBehaviour = .deny
    ) throws(PayloadRuleError) {
        guard !paths.isEmpty else { throw PayloadRuleError(reason: "a payload rule needs at least one path") }
        var regex: SafeRegex?
        switch op {
        case .exists, .notExists:
            guard operand == nil else { throw PayloadRuleError(reason: "'\(op.rawValue)' takes no operand") }
            if op == .notExists && required {
                throw PayloadRuleError(reason: "'not_exists' cannot be combined with 'required'")
            }
        case .eq, .ne, .contains:
            guard operand != nil else { throw PayloadRuleError(reason: "'\(op.rawValue)' needs an operand") }
        case .lt, .le, .gt, .ge:
            switch operand {
            case .number, .string: break
            default: throw PayloadRuleError(reason: "'\(op.rawValue)' needs a number or string operand")
            }
        case .in, .notIn:
            guard case .array(let items)? = operand, !items.isEmpty else {
                throw PayloadRuleError(reason: "'\(op.rawValue)' needs a non-empty array operand")
            }
        case .prefix, .suffix:
            guard case .string = operand else {
                throw PayloadRuleError(reason: "'\(op.rawValue)' needs a string operand")
            }
        case .regex:
            guard case .string(let pattern)? = operand else {
                throw PayloadRuleError(reason: "'regex' needs a string pattern")
            }
            do {
                regex = try SafeRegex(pattern)
            } catch {
                throw PayloadRuleError(reason: "invalid regex at \(error.description)")
            }
        case .type:
            guard case .string(let name)? = operand, JSONKind(rawValue: name) != nil else {
                throw PayloadRuleError(
                    reason:
                        "'type' needs one of \(JSONKind.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
            }
        case .lenLe, .lenGe:
            guard case .number(let n)? = operand, let bound = n.int64Value, bound >= 0 else {
                throw PayloadRuleError(reason: "'\(op.rawValue)' needs a non-negative integer operand")
            }
        }
        self.paths = paths
        self.op = op
        self.operand = operand
        self.quantifier = quantifier
        self.required = required
        self.whenMissing = whenMissing
        self.compiledRegex = regex
    }

    /// Creates a rule from path text.
    public init(
        _ paths: String..., op: PayloadOperator, operand: JSONValue? = nil, quantifier: PayloadQuantifier = .all,
        required: Bool = false, whenMissing: PayloadMissingBehaviour = .deny
    ) throws(PayloadRuleError) {
        var parsed: [JSONPath] = []
        for text in paths {
            do {
                parsed.append(try JSONPath(text))
            } catch {
                throw PayloadRuleError(reason: "invalid path \(text): \(error.description)")
            }
        }
        try self.init(
            paths: parsed, op: op, operand: operand, quantifier: quantifier, required: required,
            whenMissing: whenMissing)
    }

    /// `$.a|$.b op operand`, as violation reasons name the rule.
    public var summary: String {
        let names = paths.map(\.description).joined(separator: "|")
        guard let operand else { return "\(names) \(op.rawValue)" }
        return "\(names) \(op.rawValue) \(operand.jsonText)"
    }

    /// Evaluates the rule against a parsed body. Pure and deterministic.
    public func evaluate(_ body: JSONValue) -> PayloadRuleOutcome {
        let selections = paths.map { ($0, $0.evaluate(body)) }.filter { !$0.1.isEmpty }
        switch op {
        case .exists:
            return selections.isEmpty
                ? .violated("\(summary): no alias is present") : .satisfied
        case .notExists:
            if let (path, _) = selections.first {
                return .violated("\(path) \(op.rawValue): the field is present")
            }
            return .satisfied
        default:
            break
        }
        if selections.isEmpty {
            if required { return .violated("\(summary): required field is missing") }
            return whenMissing == .deny ? .violated("\(summary): field is missing") : .satisfied
        }
        for (path, values) in selections {
            switch quantifier {
            case .all:
                if let bad = values.first(where: { !test($0) }) {
                    return .violated(
                        "\(path) \(op.rawValue) \(operand?.jsonText ?? ""): value \(PayloadRule.excerpt(bad)) does not satisfy it"
                    )
                }
            case .any:
                if !values.contains(where: test) {
                    return .violated(
                        "\(path) \(op.rawValue) \(operand?.jsonText ?? ""): none of \(values.count) values satisfies it"
                    )
                }
            }
        }
        return .satisfied
    }

    /// The compact JSON text of `value`, cut to ``excerptLength`` scalars.
    static func excerpt(_ value: JSONValue) -> String {
        let text = value.jsonText
        let scalars = text.unicodeScalars
        guard scalars.count > excerptLength else { return text }
        return String(String.UnicodeScalarView(scalars.prefix(excerptLength))) + "…"
    }

    private func test(_ value: JSONValue) -> Bool {
        guard let operand else { return false }
        switch op {
        case .eq: return value.kind == operand.kind && PayloadRule.equal(value, operand)
        case .ne: return value.kind == operand.kind && !PayloadRule.equal(value, operand)
        case .lt, .le, .gt, .ge:
            guard let order = PayloadRule.order(value, operand) else { return false }
            switch op {
            case .lt: return order < 0
            case .le: return order <= 0
            case .gt: return order > 0
            default: return order >= 0
            }
        case .in, .notIn:
            guard case .array(let items) = operand else { return false }
            let found = items.contains { $0.kind == value.kind && PayloadRule.equal(value, $0) }
            if op == .in { return found }
            return !found && items.contains { $0.kind == value.kind }
        case .contains:
            switch (value, operand) {
            case (.string(let s), .string(let needle)): return PayloadRule.scalarsContain(s, needle)
            case (.array(let items), _):
                return items.contains { $0.kind == operand.kind && PayloadRule.equal($0, operand) }
            default: return false
            }
        case .prefix:
            guard case .string(let s) = value, case .string(let p) = operand else { return false }
            return s.unicodeScalars.starts(with: p.unicodeScalars)
        case .suffix:
            guard case .string(let s) = value, case .string(let p) = operand else { return false }
            return s.unicodeScalars.reversed().starts(with: p.unicodeScalars.reversed())
        case .regex:
            guard case .string(let s) = value, let compiledRegex else { return false }
            return compiledRegex.matches(s)
        case .type:
            guard case .string(let name) = operand else { return false }
            return value.kind.rawValue == name
        case .lenLe, .lenGe:
            guard case .number(let n) = operand, let bound = n.int64Value else { return false }
            let length: Int
            switch value {
            case .array(let items): length = items.count
            case .string(let s): length = s.unicodeScalars.count
            default: return false
            }
            return op == .lenLe ? Int64(length) <= bound : Int64(length) >= bound
        case .exists, .notExists:
            return false
        }
    }

    /// Typed structural equality: numbers by exact value, strings by scalars, objects ignoring
    /// member order.
    static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.string(let x), .string(let y)): return x.unicodeScalars.elementsEqual(y.unicodeScalars)
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { equal($0, $1) }
        case (.object(let x), .object(let y)):
            guard x.count == y.count else { return false }
            return x.allSatisfy { member in
                y.contains {
                    $0.key.unicodeScalars.elementsEqual(member.key.unicodeScalars) && equal($0.value, member.value)
                }
            }
        default: return false
        }
    }

    /// -1, 0 or 1 when both are numbers or both strings; `nil` otherwise.
    static func order(_ a: JSONValue, _ b: JSONValue) -> Int? {
        switch (a, b) {
        case (.number(let x), .number(let y)): return x < y ? -1 : (x == y ? 0 : 1)
        case (.string(let x), .string(let y)):
            var left = x.unicodeScalars.makeIterator()
            var right = y.unicodeScalars.makeIterator()
            while true {
                switch (left.next(), right.next()) {
                case (nil, nil): return 0
                case (nil, _): return -1
                case (_, nil): return 1
                case (let l?, let r?): if l != r { return l.value < r.value ? -1 : 1 }
                }
            }
        default: return nil
        }
    }

    static func scalarsContain(_ haystack: String, _ needle: String) -> Bool {
        let h = Array(haystack.unicodeScalars)
        let n = Array(needle.unicodeScalars)
        if n.isEmpty { return true }
        guard n.count <= h.count else { return false }
        for start in 0...(h.count - n.count) where h[start] == n[0] {
            if h[start..<(start + n.count)].elementsEqual(n) { return true }
        }
        return false
    }
}

/// A payload rule whose operand does not suit its operator, or whose path or pattern is invalid.
public struct PayloadRuleError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was wrong and what would have been valid.
    public let reason: String

    /// The reason.
    public var description: String { reason }
}
