import QuorumPolicy
import Testing

private func parse(_ text: String, _ configuration: JSONParserConfiguration = .default) throws -> JSONValue {
    try JSONParser(configuration: configuration).parse(text)
}

private func refusal(_ bytes: [UInt8], _ configuration: JSONParserConfiguration = .default) -> JSONParseError? {
    do {
        _ = try JSONParser(configuration: configuration).parse(bytes)
        return nil
    } catch {
        return error
    }
}

private func refusal(_ text: String, _ configuration: JSONParserConfiguration = .default) -> JSONParseError? {
    refusal(Array(text.utf8), configuration)
}

private func number(_ text: String) -> JSONNumber {
    JSONNumber(text)!
}

/// The JSON layer of the payload filter: parser, numbers, paths and the safe regex.
@Suite enum JSONTests {}

extension JSONTests {
    @Suite("JSON parser: accepted documents")
    struct Acceptance {
        /// RFC 8259 §13, first example.
        @Test func rfc8259ImageObject() throws {
            let text = """
                {
                  "Image": {
                      "Width":  800,
                      "Height": 600,
                      "Title":  "View from 15th Floor",
                      "Thumbnail": {
                          "Url":    "http://www.example.com/image/481989943",
                          "Height": 125,
                          "Width":  100
                      },
                      "Animated" : false,
                      "IDs": [116, 943, 234, 38793]
                    }
                }
                """
            let value = try parse(text)
            let image = try #require(value["Image"])
            #expect(image["Width"] == .number(number("800")))
            #expect(image["Title"] == .string("View from 15th Floor"))
            #expect(image["Animated"] == .bool(false))
            #expect(image["Thumbnail"]?["Url"] == .string("http://www.example.com/image/481989943"))
            guard case .object(let members) = image else { Issue.record("not an object"); return }
            #expect(members.map(\.key) == ["Width", "Height", "Title", "Thumbnail", "Animated", "IDs"])
        }

        /// RFC 8259 §13, second example.
        @Test func rfc8259ArrayOfObjects() throws {
            let text = """
                [
                  {
                     "precision": "zip",
                     "Latitude":  37.7668,
                     "Longitude": -122.3959,
                     "Address":   "",
                     "City":      "SAN FRANCISCO",
                     "State":     "CA",
                     "Zip":       "94107",
                     "Country":   "US"
                  },
                  {
                     "precision": "zip",
                     "Latitude":  37.371991,
                     "Longitude": -122.026020,
                     "Address":   "",
                     "City":      "SUNNYVALE",
                     "State":     "CA",
                     "Zip":       "94085",
                     "Country":   "US"
                  }
                ]
                """
            guard case .array(let items) = try parse(text) else { Issue.record("not an array"); return }
            #expect(items.count == 2)
            #expect(items[1]["Longitude"] == .number(number("-122.02602")))
        }

        /// RFC 8259 §13: scalar texts are JSON texts too.
        @Test(arguments: [
            ("\"Hello world!\"", JSONValue.string("Hello world!")),
            ("42", .number(JSONNumber(42))),
            ("true", .bool(true)),
            ("null", .null),
            (" \t\r\n[ ] ", .array([])),
            ("{}", .object([])),
        ])
        func rfc8259ScalarTexts(text: String, expected: JSONValue) throws {
            #expect(try parse(text) == expected)
        }

        @Test func escapesAndSurrogatePairsDecode() throws {
            let value = try parse(#""\"\\\/\b\f\n\r\t\u0041\u00e9\ud83d\ude00""#)
            #expect(value == .string("\"\\/\u{08}\u{0C}\n\r\tAé😀"))
        }

        @Test func rawUTF8IsAccepted() throws {
            #expect(try parse("\"héllo 😀 中文\"") == .string("héllo 😀 中文"))
        }

        @Test func nestingUpToTheLimitIsAccepted() throws {
            let text = String(repeating: "[", count: 32) + String(repeating: "]", count: 32)
            #expect(throws: Never.self) { try parse(text) }
        }

        @Test func jsonTextRoundTripsCompactly() throws {
            let text = #"{"a":[1,2.50,-3e2],"b":{"c":null,"d":true},"e":"x\"y\n"}"#
            #expect(try parse(text).jsonText == text)
        }
    }
}

extension JSONTests {
    @Suite("JSON parser: refusals")
    struct Refusals {
        @Test(arguments: [
            (#"{"a":1,"a":2}"#, JSONParseError.Code.duplicateKey, 7),
            (#"{"a":1,"\u0061":2}"#, .duplicateKey, 7),
            (#"{"x":{"k":1,"k":1}}"#, .duplicateKey, 12),
            (#"[1,2] x"#, .trailingData, 6),
            (#"{} {}"#, .trailingData, 3),
            ("01", .leadingZero, 0),
            ("-012", .leadingZero, 1),
            ("NaN", .invalidLiteral, 0),
            ("Infinity", .invalidLiteral, 0),
            ("-Infinity", .invalidLiteral, 0),
            ("[1.]", .invalidNumber, 3),
            ("[.5]", .unexpectedByte, 1),
            ("1e", .invalidNumber, 2),
            ("+1", .unexpectedByte, 0),
            ("\"a\u{01}b\"", .controlCharacter, 2),
            ("\"tab\there\"", .controlCharacter, 4),
            (#""\ud800""#, .loneSurrogate, 1),
            (#""\udc00""#, .loneSurrogate, 1),
            (#""\ud800\u0041""#, .loneSurrogate, 1),
            (#""\x41""#, .invalidEscape, 1),
            (#""\u12G4""#, .invalidEscape, 5),
            ("tru", .invalidLiteral, 0),
            ("[1,]", .unexpectedByte, 3),
            (#"{"a" 1}"#, .unexpectedByte, 5),
            (#"{'a':1}"#, .unexpectedByte, 1),
            (#"{"a":1"#, .unexpectedEnd, 6),
            ("", .unexpectedEnd, 0),
            ("\"abc", .unexpectedEnd, 4),
            ("1e1234567890123456", .exponentTooLarge, 2),
        ])
        func refused(text: String, code: JSONParseError.Code, offset: Int) throws {
            let error = try #require(refusal(text))
            #expect(error.code == code, "\(error)")
            #expect(error.offset == offset, "\(error)")
        }

        @Test(
            arguments: [
                ([0x22, 0xFF, 0x22], 1),  // never valid
                ([0x22, 0xC0, 0xAF, 0x22], 1),  // overlong '/'
                ([0x22, 0xE0, 0x80, 0xAF, 0x22], 2),  // overlong three-byte form
                ([0x22, 0xED, 0xA0, 0x80, 0x22], 2),  // UTF-8-encoded surrogate
                ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], 2),  // above U+10FFFF
                ([0x22, 0xC3, 0x22], 2),  // truncated sequence
                ([0x22, 0xE2, 0x82], 1),  // truncated at end of input
            ] as [([UInt8], Int)])
        func invalidUTF8IsRefused(bytes: [UInt8], offset: Int) throws {
            let error = try #require(refusal(bytes))
            #expect(error.code == .invalidUTF8)
            #expect(error.offset == offset)
        }

        /// RFC 8259 §8.1: a byte order mark is not JSON text; refusing it keeps every reader in agreement.
        @Test func byteOrderMarkIsRefused() {
            #expect(refusal([0xEF, 0xBB, 0xBF, 0x7B, 0x7D])?.code == .unexpectedByte)
        }

        @Test func escapedControlCharactersAreAccepted() throws {
            #expect(try parse(#""a\u0000b\u001f""#) == .string("a\u{0}b\u{1F}"))
        }

        @Test func hugeExponentsParseWithoutBlowingUp() throws {
            let value = try parse("[1e999999999999999, 1e-999999999999999, 1e00000000000000000001]")
            guard case .array(let items) = value, case .number(let big) = items[0], case .number(let tiny) = items[1],
                case .number(let ten) = items[2]
            else {
                Issue.record("unexpected shape")
                return
            }
            #expect(tiny < big)
            #expect(ten == JSONNumber(10))
        }

        @Test func nestingBeyondTheLimitIsRefused() throws {
            let text = String(repeating: "[", count: 33) + String(repeating: "]", count: 33)
            let error = try #require(refusal(text))
            #expect(error.code == .tooDeep)
            #expect(error.offset == 32)
            let objects = String(repeating: #"{"a":"#, count: 5) + "1" + String(repeating: "}", count: 5)
            #expect(refusal(objects, JSONParserConfiguration(maxDepth: 4))?.code == .tooDeep)
            #expect(refusal(objects, JSONParserConfiguration(maxDepth: 5)) == nil)
        }

        @Test func depthLimitIsClampedSoTheStackIsSafe() {
            #expect(JSONParserConfiguration(maxDepth: 1_000_000).maxDepth == JSONParserConfiguration.depthCeiling)
            let text = String(repeating: "[", count: 100_000)
            #expect(refusal(text, JSONParserConfiguration(maxDepth: 1_000_000))?.code == .tooDeep)
        }

        @Test func oversizedInputIsRefused() throws {
            let error = try #require(refusal("[1, 2, 3]", JSONParserConfiguration(maxBytes: 8)))
            #expect(error.code == .tooLarge)
            #expect(refusal("[1,2,3]", JSONParserConfiguration(maxBytes: 8)) == nil)
        }

        @Test func errorsGiveLineAndColumn() throws {
            let error = try #require(refusal("{\n  \"a\": 1,\n  \"a\": 2\n}"))
            #expect(error.code == .duplicateKey)
            #expect(error.line == 3)
            #expect(error.column == 3)
            #expect(error.description.hasPrefix("3:3 (byte 14): duplicate member name \"a\""))
        }
    }
}

extension JSONTests {
    @Suite("JSON numbers: exact decimal comparison")
    struct Numbers {
        @Test(arguments: [
            ("1", "1.0"), ("1", "10e-1"), ("1", "0.1E1"), ("0", "-0"), ("0", "0e999"), ("-0.0", "0"),
            ("123.4500", "1.2345e2"), ("100", "1E+2"), ("1e400", "10e399"),
        ])
        func equalValues(a: String, b: String) {
            #expect(number(a) == number(b))
            #expect(!(number(a) < number(b)) && !(number(b) < number(a)))
        }

        @Test(arguments: [
            ("9007199254740992", "9007199254740993"),  // equal as Double
            ("0.1", "0.10000000000000001"),  // equal as Double
            ("-2", "-1"), ("-1", "0"), ("0", "1e-400"), ("1e399", "1e400"), ("-1e400", "-1e399"),
            ("4096", "16000"), ("1e-999999999999999", "1"), ("1", "1e999999999999999"),
            ("0.99", "1"), ("12", "12.000001"),
        ])
        func orderedValues(smaller: String, larger: String) {
            #expect(number(smaller) < number(larger))
            #expect(!(number(larger) < number(smaller)))
            #expect(number(smaller) != number(larger))
        }

        @Test(
            arguments: [
                ("0", Int64(0)), ("-0", 0), ("4096", 4096), ("1e3", 1000), ("12.50e1", 125),
                ("-9223372036854775808", .min),
                ("9223372036854775807", .max),
            ] as [(String, Int64)])
        func int64View(text: String, expected: Int64) {
            #expect(number(text).int64Value == expected)
        }

        @Test(arguments: ["1.5", "9223372036854775808", "-9223372036854775809", "1e20", "1e-3"])
        func int64ViewIsNilWhenNotAnExactInt64(text: String) {
            #expect(number(text).int64Value == nil)
        }

        @Test func doubleViewAndText() {
            #expect(number("2.5e-1").doubleValue == 0.25)
            #expect(number("1e400").doubleValue == .infinity)
            #expect(number("12.50").text == "12.50")
            #expect(JSONNumber("01") == nil)
            #expect(JSONNumber("1 ") == nil)
        }
    }
}

extension JSONTests {
    @Suite("JSON paths")
    struct Paths {
        private let document: JSONValue = try! JSONParser().parse(
            #"""
            {"model":"gpt-4o","a":{"b":7},"messages":[{"role":"system","content":"x"},{"role":"user","content":"y"}],
             "key with.dot":1,"empty":[]}
            """#)

        @Test(arguments: [
            ("$", "$"), ("$.a.b", "$.a.b"), ("$.a[0]", "$.a[0]"), ("$.a[*].b", "$.a[*].b"), ("$.a.*", "$.a[*]"),
            (#"$["key with.dot"]"#, #"$["key with.dot"]"#), (#"$["plain"]"#, "$.plain"),
            (#"$["q\"uote"]"#, #"$["q\"uote"]"#),
        ])
        func parsesAndPrintsCanonically(text: String, canonical: String) throws {
            #expect(try JSONPath(text).description == canonical)
        }

        @Test(arguments: [
            ("a.b", 0), ("$.", 2), ("$a", 1), ("$.a[", 4), ("$.a[01]", 4), ("$.a[-1]", 4), ("$.a[1", 5),
            (#"$["abc]"#, 2), ("$.a b", 3), ("$..a", 2), ("$.a[1234567890]", 4),
        ])
        func refusesWithPosition(text: String, offset: Int) {
            #expect(throws: JSONPathError.self) { try JSONPath(text) }
            do {
                _ = try JSONPath(text)
            } catch {
                #expect(error.offset == offset, "\(error)")
            }
        }

        @Test func selectsMembersAndIndexes() throws {
            #expect(try JSONPath("$.model").evaluate(document) == [.string("gpt-4o")])
            #expect(try JSONPath("$.a.b").evaluate(document) == [.number(JSONNumber(7))])
            #expect(try JSONPath("$.messages[1].role").evaluate(document) == [.string("user")])
            #expect(try JSONPath(#"$["key with.dot"]"#).evaluate(document) == [.number(JSONNumber(1))])
            #expect(try JSONPath("$").evaluate(document) == [document])
        }

        @Test func wildcardsSelectEveryElementInOrder() throws {
            #expect(try JSONPath("$.messages[*].role").evaluate(document) == [.string("system"), .string("user")])
            #expect(try JSONPath("$.a.*").evaluate(document) == [.number(JSONNumber(7))])
            #expect(try JSONPath("$.empty[*]").evaluate(document) == [])
        }

        @Test(arguments: [
            "$.missing", "$.a.missing", "$.messages[5]", "$.model[0]", "$.model.x", "$.a[*].b[*]", "$.a[0]",
        ])
        func missingOrMistypedSelectsNothing(text: String) throws {
            #expect(try JSONPath(text).evaluate(document) == [])
        }
    }
}

extension JSONTests {
    @Suite("Safe regex")
    struct Regex {
        @Test(arguments: [
            ("abc", "xxabcxx", true), ("^abc$", "abc", true), ("^abc$", "abcd", false), ("a.c", "abc", true),
            ("a.c", "ac", false), ("^[a-z]+$", "hello", true), ("^[a-z]+$", "Hello", false), ("[^0-9]", "123", false),
            ("colou?r", "color", true), ("colou?r", "colour", true), ("^(cat|dog)s?$", "dogs", true),
            ("^(cat|dog)s?$", "cow", false), ("^a*$", "", true), ("^a+$", "", false), (#"^\d+\.\d+$"#, "12.5", true),
            (#"^\w+$"#, "ab_9", true), (#"\s"#, "nospace", false), ("^gpt-4(o|-turbo)?$", "gpt-4o", true),
            ("^gpt-4(o|-turbo)?$", "gpt-4o-mini", false), ("^[-a]$", "-", true), ("^[]a]$", "]", true),
            ("^(a*)*$", "aaaa", true), ("^é+$", "éé", true), ("", "anything", true),
            ("^a{3}$", "aaa", true), ("^a{3}$", "aa", false), ("^a{3}$", "aaaa", false), ("^a{2,}$", "aaaaa", true),
            ("^a{2,}$", "a", false), ("^(ab){1,2}$", "abab", true), ("^(ab){1,2}$", "ababab", false),
            ("sk-[A-Za-z0-9]{20,}", "key sk-abcdefghij0123456789 leaked", true),
            ("sk-[A-Za-z0-9]{20,}", "sk-short", false),
        ])
        func matches(pattern: String, text: String, expected: Bool) throws {
            #expect(try SafeRegex(pattern).matches(text) == expected)
        }

        @Test(arguments: [
            ("(a", 0), ("a)", 1), ("*a", 0), ("a**", 2), ("{2}", 0), ("a{}", 1), ("a{x}", 1), ("a{3,2}", 1),
            ("a{101}", 1), ("a{2}?", 4), (#"(a)\1"#, 3), ("(?=a)", 1), ("[a", 0), ("[z-a]", 3), (#"a\"#, 1),
            ("a+?", 2),
        ])
        func refusesUnsupportedSyntax(pattern: String, offset: Int) {
            do {
                _ = try SafeRegex(pattern)
                Issue.record("accepted \(pattern)")
            } catch {
                #expect(error.offset == offset, "\(error)")
            }
        }

        @Test func refusesOverlongPatterns() {
            #expect(throws: SafeRegexError.self) { try SafeRegex(String(repeating: "a", count: 513)) }
            #expect(throws: SafeRegexError.self) {
                try SafeRegex(String(repeating: "(", count: 40) + "a" + String(repeating: ")", count: 40))
            }
            // Nested counts multiply: 100 × 100 copies would be a huge program, so it is refused.
            #expect(throws: SafeRegexError.self) { try SafeRegex("((a{100}){100})") }
        }

        /// The classic catastrophic-backtracking shape; a backtracking engine takes ~2³⁰ steps here.
        @Test(.timeLimit(.minutes(1))) func pathologicalPatternsRunInLinearTime() throws {
            let nested = try SafeRegex("(a+)+$")
            let alternatives = try SafeRegex("^(a|a)*$")
            let emptyLoop = try SafeRegex("^(a*)*b$")
            let doubled = try SafeRegex("(x+x+)+y")
            let elapsed = ContinuousClock().measure {
                #expect(!nested.matches(String(repeating: "a", count: 30) + "b"))
                #expect(!alternatives.matches(String(repeating: "a", count: 30) + "b"))
                #expect(!emptyLoop.matches(String(repeating: "a", count: 10_000)))
                #expect(!doubled.matches(String(repeating: "x", count: 5_000)))
            }
            #expect(elapsed < .seconds(2))
        }
    }
}
