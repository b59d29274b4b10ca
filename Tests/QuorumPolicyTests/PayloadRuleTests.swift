import QuorumPolicy
import Testing

private func body(_ text: String) -> JSONValue {
    try! JSONParser().parse(text)
}

private func json(_ text: String) -> JSONValue {
    body(text)
}

private func isViolated(_ outcome: PayloadRuleOutcome) -> Bool {
    if case .violated = outcome { return true }
    return false
}

private func reason(_ outcome: PayloadRuleOutcome) -> String {
    if case .violated(let reason) = outcome { return reason }
    return ""
}

/// One row per operator: a value that satisfies it, one that does not, and one of the wrong type.
/// The field is always `$.f`; a missing field is checked separately for every operator.
struct OperatorCase: Sendable, CustomTestStringConvertible {
    let op: PayloadOperator
    let operand: String?
    let match: String
    let nonMatch: String
    let wrongType: String?

    var testDescription: String { op.rawValue }
}

private let operatorCases: [OperatorCase] = [
    OperatorCase(op: .eq, operand: #""gpt-4o""#, match: #""gpt-4o""#, nonMatch: #""gpt-4""#, wrongType: "4"),
    OperatorCase(op: .ne, operand: #""gpt-4""#, match: #""gpt-4o""#, nonMatch: #""gpt-4""#, wrongType: "4"),
    OperatorCase(op: .lt, operand: "4096", match: "4095.999", nonMatch: "4096", wrongType: #""1""#),
    OperatorCase(op: .le, operand: "4096", match: "4096.0", nonMatch: "4096.0001", wrongType: #""1""#),
    OperatorCase(op: .gt, operand: #""m""#, match: #""n""#, nonMatch: #""M""#, wrongType: "5"),
    OperatorCase(op: .ge, operand: "0.5", match: "5e-1", nonMatch: "0.4999", wrongType: "true"),
    OperatorCase(op: .in, operand: #"["a","b"]"#, match: #""b""#, nonMatch: #""c""#, wrongType: "1"),
    OperatorCase(op: .notIn, operand: #"["a","b"]"#, match: #""c""#, nonMatch: #""a""#, wrongType: "1"),
    OperatorCase(
        op: .contains, operand: #""secret""#, match: #""a secret here""#, nonMatch: #""none""#, wrongType: "7"),
    OperatorCase(op: .prefix, operand: #""gpt-""#, match: #""gpt-4o""#, nonMatch: #""o1-gpt-""#, wrongType: "[]"),
    OperatorCase(op: .suffix, operand: #""-mini""#, match: #""gpt-4o-mini""#, nonMatch: #""mini""#, wrongType: "{}"),
    OperatorCase(
        op: .regex, operand: #""^gpt-4o(-mini)?$""#, match: #""gpt-4o-mini""#, nonMatch: #""gpt-4""#, wrongType: "4"),
    OperatorCase(op: .exists, operand: nil, match: "null", nonMatch: "", wrongType: nil),
    OperatorCase(op: .type, operand: #""number""#, match: "1e3", nonMatch: #""1e3""#, wrongType: nil),
    OperatorCase(op: .lenLe, operand: "3", match: #"[1,2,3]"#, nonMatch: #""abcd""#, wrongType: "123"),
    OperatorCase(op: .lenGe, operand: "2", match: #""ab""#, nonMatch: "[1]", wrongType: "{}"),
]

private func rule(_ c: OperatorCase, whenMissing: PayloadMissingBehaviour = .deny) throws -> PayloadRule {
    try PayloadRule("$.f", op: c.op, operand: c.operand.map(json), whenMissing: whenMissing)
}

private func document(_ value: String) -> JSONValue {
    value.isEmpty ? body(#"{"other":1}"#) : body(#"{"f":"# + value + "}")
}

/// The test identifier contains `PayloadRuleTests` so the focused filter selects every suite here.
@Suite enum PayloadRuleTests {}

extension PayloadRuleTests {
    @Suite("Payload operators")
    struct Operators {
        @Test func everyOperatorIsCovered() {
            let covered = Set(operatorCases.map(\.op)).union([.notExists])
            #expect(covered == Set(PayloadOperator.allCases))
            #expect(PayloadOperator.allCases.count >= 14)
        }

        @Test(arguments: operatorCases)
        func matchingValueSatisfies(c: OperatorCase) throws {
            #expect(try rule(c).evaluate(document(c.match)) == .satisfied)
        }

        @Test(arguments: operatorCases)
        func nonMatchingValueViolates(c: OperatorCase) throws {
            let outcome = try rule(c).evaluate(document(c.nonMatch))
            #expect(isViolated(outcome))
            #expect(reason(outcome).contains(c.op.rawValue))
        }

        @Test(arguments: operatorCases.filter { $0.wrongType != nil })
        func wrongTypeNeverMatches(c: OperatorCase) throws {
            #expect(isViolated(try rule(c).evaluate(document(c.wrongType!))))
        }

        /// Every operator but `exists`/`not_exists` follows `whenMissing`, which defaults to deny.
        @Test(arguments: operatorCases.filter { $0.op != .exists })
        func missingFieldFollowsWhenMissing(c: OperatorCase) throws {
            let missing = document("")
            let outcome = try rule(c).evaluate(missing)
            #expect(isViolated(outcome))
            #expect(reason(outcome).contains("missing"))
            #expect(try rule(c, whenMissing: .satisfy).evaluate(missing) == .satisfied)
        }

        @Test func existsIgnoresWhenMissing() throws {
            let exists = try PayloadRule("$.f", op: .exists, whenMissing: .satisfy)
            #expect(isViolated(exists.evaluate(document(""))))
            #expect(exists.evaluate(document("false")) == .satisfied)
        }

        @Test func notExists() throws {
            let notExists = try PayloadRule("$.f", op: .notExists)
            #expect(notExists.evaluate(document("")) == .satisfied)
            #expect(isViolated(notExists.evaluate(document("null"))))
            #expect(reason(notExists.evaluate(document("1"))) == "$.f not_exists: the field is present")
        }

        @Test func numbersCompareExactlyNotThroughDouble() throws {
            let cap = try PayloadRule("$.f", op: .le, operand: json("9007199254740992"))
            #expect(isViolated(cap.evaluate(document("9007199254740993"))))
            #expect(cap.evaluate(document("9007199254740992.0")) == .satisfied)
            #expect(isViolated(cap.evaluate(document("1e400"))))
        }

        @Test func stringsOrderByUnicodeScalars() throws {
            // U+00E9 (precomposed) sorts after "f"; "e" + U+0301 sorts before it.
            let rule = try PayloadRule("$.f", op: .gt, operand: .string("f"))
            #expect(rule.evaluate(document(#""\u00e9""#)) == .satisfied)
            #expect(isViolated(rule.evaluate(document(#""e\u0301""#))))
            let eq = try PayloadRule("$.f", op: .eq, operand: .string("\u{E9}"))
            #expect(isViolated(eq.evaluate(document(#""e\u0301""#))))
        }

        @Test func eqComparesObjectsIgnoringMemberOrder() throws {
            let rule = try PayloadRule("$.f", op: .eq, operand: json(#"{"a":1,"b":[true,null]}"#))
            #expect(rule.evaluate(document(#"{"b":[true,null],"a":1.0}"#)) == .satisfied)
            #expect(isViolated(rule.evaluate(document(#"{"b":[null,true],"a":1}"#))))
        }

        @Test func containsFindsArrayElements() throws {
            let rule = try PayloadRule("$.f", op: .contains, operand: json(#""web_search""#))
            #expect(rule.evaluate(document(#"["code","web_search"]"#)) == .satisfied)
            #expect(isViolated(rule.evaluate(document(#"["code"]"#))))
        }

        @Test func lengthCountsScalars() throws {
            let rule = try PayloadRule("$.f", op: .lenLe, operand: json("2"))
            #expect(rule.evaluate(document(#""😀é""#)) == .satisfied)
            #expect(isViolated(rule.evaluate(document(#"{"a":1}"#))))
        }

        @Test(arguments: [
            (PayloadOperator.lt, nil as String?), (.lt, "[1]"), (.in, "[]"), (.in, "1"), (.prefix, "1"),
            (.regex, #""(a""#), (.regex, #""a{2""#), (.type, #""integer""#), (.lenLe, "-1"), (.lenGe, "1.5"),
            (.exists, "1"), (.eq, nil),
        ])
        func unsuitableOperandsAreRefused(op: PayloadOperator, operand: String?) {
            #expect(throws: PayloadRuleError.self) { try PayloadRule("$.f", op: op, operand: operand.map(json)) }
        }

        @Test func invalidPathsAndContradictionsAreRefused() {
            #expect(throws: PayloadRuleError.self) { try PayloadRule("f", op: .exists) }
            #expect(throws: PayloadRuleError.self) { try PayloadRule(op: .exists) }
            #expect(throws: PayloadRuleError.self) { try PayloadRule("$.f", op: .notExists, required: true) }
        }
    }
}

extension PayloadRuleTests {
    /// An LLM token cap declared once over every field name that means "maximum output tokens".
    @Suite("Payload field aliases")
    struct Aliases {
        let cap = try! PayloadRule(
            "$.max_tokens", "$.max_completion_tokens", "$.max_output_tokens", op: .le, operand: json("4096"),
            required: true)

        @Test(arguments: ["max_tokens", "max_completion_tokens", "max_output_tokens"])
        func eachAliasOverTheCapIsDenied(field: String) {
            let outcome = cap.evaluate(body(#"{"model":"gpt-4o","\#(field)":16000}"#))
            #expect(isViolated(outcome))
            #expect(reason(outcome).hasPrefix("$.\(field) le 4096"))
            #expect(reason(outcome).contains("16000"))
        }

        @Test(arguments: ["max_tokens", "max_completion_tokens", "max_output_tokens"])
        func eachAliasUnderTheCapIsSatisfied(field: String) {
            #expect(cap.evaluate(body(#"{"\#(field)":1000}"#)) == .satisfied)
        }

        @Test func everyPresentAliasMustSatisfy() {
            #expect(isViolated(cap.evaluate(body(#"{"max_tokens":1000,"max_output_tokens":16000}"#))))
            #expect(cap.evaluate(body(#"{"max_tokens":1000,"max_completion_tokens":4096}"#)) == .satisfied)
        }

        @Test func allAbsentWithRequiredIsDenied() throws {
            let outcome = cap.evaluate(body(#"{"model":"gpt-4o"}"#))
            #expect(isViolated(outcome))
            #expect(reason(outcome).contains("required field is missing"))
            let lenient = try PayloadRule(
                "$.max_tokens", "$.max_output_tokens", op: .le, operand: json("4096"), required: true,
                whenMissing: .satisfy)
            #expect(isViolated(lenient.evaluate(body("{}"))))
        }

        @Test func capCannotBeDodgedWithAString() {
            #expect(isViolated(cap.evaluate(body(#"{"max_tokens":"16000"}"#))))
        }
    }
}

extension PayloadRuleTests {
    @Suite("Payload wildcards and quantifiers")
    struct Wildcards {
        let request = body(
            #"{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello"}],"tools":[]}"#)

        @Test func allRequiresEveryElement() throws {
            let rule = try PayloadRule(
                "$.messages[*].role", op: .in, operand: json(#"["system","user"]"#), quantifier: .all)
            #expect(rule.evaluate(request) == .satisfied)
            let strict = try PayloadRule("$.messages[*].role", op: .eq, operand: .string("user"), quantifier: .all)
            let outcome = strict.evaluate(request)
            #expect(isViolated(outcome))
            #expect(reason(outcome) == #"$.messages[*].role eq "user": value "system" does not satisfy it"#)
        }

        @Test func anyRequiresOneElement() throws {
            let rule = try PayloadRule("$.messages[*].role", op: .eq, operand: .string("system"), quantifier: .any)
            #expect(rule.evaluate(request) == .satisfied)
            let none = try PayloadRule("$.messages[*].role", op: .eq, operand: .string("tool"), quantifier: .any)
            #expect(reason(none.evaluate(request)) == #"$.messages[*].role eq "tool": none of 2 values satisfies it"#)
        }

        /// Zero matches is a missing field, never vacuous truth: `all` over an empty array is denied by default.
        @Test func allOverZeroMatchesFollowsWhenMissing() throws {
            let denyByDefault = try PayloadRule("$.tools[*].type", op: .eq, operand: .string("function"))
            #expect(isViolated(denyByDefault.evaluate(request)))
            let optional = try PayloadRule(
                "$.tools[*].type", op: .eq, operand: .string("function"), whenMissing: .satisfy)
            #expect(optional.evaluate(request) == .satisfied)
        }

        @Test func notExistsOverAWildcard() throws {
            let rule = try PayloadRule("$.messages[*].tool_calls", op: .notExists)
            #expect(rule.evaluate(request) == .satisfied)
            #expect(isViolated(rule.evaluate(body(#"{"messages":[{"role":"user"},{"tool_calls":[]}]}"#))))
        }
    }
}

extension PayloadRuleTests {
    @Suite("Payload violation reasons")
    struct Reasons {
        @Test func longRequestValuesAreExcerpted() throws {
            let secret = String(repeating: "x", count: 40) + "TAIL"
            let rule = try PayloadRule("$.prompt", op: .lenLe, operand: json("10"))
            let text = reason(rule.evaluate(body(#"{"prompt":"\#(secret)"}"#)))
            #expect(text.hasPrefix("$.prompt len_le 10: value \""))
            #expect(text.contains("…"))
            #expect(!text.contains("TAIL"))
            #expect(PayloadRule.excerptLength == 24)
        }

        @Test func summaryNamesEveryAlias() throws {
            let rule = try PayloadRule("$.a", "$.b", op: .ge, operand: json("1"))
            #expect(rule.summary == "$.a|$.b ge 1")
            #expect(reason(rule.evaluate(body("{}"))) == "$.a|$.b ge 1: field is missing")
        }
    }
}
