import Foundation
import Testing

@testable import QuorumPolicy

/// Every class of problem names the file, line, column and field path, and says what is valid.
@Suite("Bundle problems are placed and explained")
struct BundleErrorTests {
    private static let a = BundleFixtures.digestA
    private static let b = BundleFixtures.digestB

    /// The one problem at `path`, checked for position and message fragments.
    private func expectProblem(
        _ problems: [LocatedProblem], file: String = "bundle.yaml", line: Int, column: Int, path: String,
        _ fragments: String..., sourceLocation: SourceLocation = #_sourceLocation
    ) {
        guard let problem = problems.first(where: { $0.path == path }) else {
            Issue.record(
                "no problem at \(path); got:\n\(problems.map(\.description).joined(separator: "\n"))",
                sourceLocation: sourceLocation)
            return
        }
        #expect(problem.file == file, sourceLocation: sourceLocation)
        #expect(
            (problem.line, problem.column) == (line, column), "\(problem.description)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(problem.message.contains(fragment), "\(problem.description)", sourceLocation: sourceLocation)
        }
        #expect(
            problem.description.hasPrefix("\(file):\(line):\(column): \(path): "), sourceLocation: sourceLocation)
    }

    @Test("A quoted number where an integer is expected is a wrong type")
    func wrongType() {
        let problems = BundleFixtures.problems(
            """
            format: quorum-latch/bundle/v1
            version: "7"
            latches: {}
            """)
        expectProblem(problems, line: 2, column: 10, path: "version", "expected an integer version", "the string '7'")
        expectProblem(problems, line: 3, column: 10, path: "latches", "expected a list of latches, found a mapping")
    }

    @Test("A boolean field takes only true or false, not YAML 1.1's yes")
    func notABoolean() {
        let problems = BundleFixtures.problems(
            BundleFixtures.withMountFilters("          - body_size: 10").replacingOccurrences(
                of: "  - id: a\n", with: "  - id: a\n    revoked: yes\n"))
        expectProblem(problems, line: 6, column: 14, path: "latches[0].revoked", "expected true or false", "'yes'")
    }

    @Test("An unknown key lists the valid keys (a derived latch cannot 'inherit' its way out)")
    func unknownKey() {
        let problems = BundleFixtures.problems(
            BundleFixtures.withMountFilters("          - body_size: 10").replacingOccurrences(
                of: "  - id: a\n", with: "  - id: a\n    inherit: false\n"))
        expectProblem(
            problems, line: 6, column: 5, path: "latches[0].inherit", "unknown key 'inherit'",
            "valid keys here: id, token_sha256, labels, expires, parent, revoked, filters, mounts")
    }

    @Test("A missing required field is placed at the mapping that lacks it")
    func missingRequired() {
        let problems = BundleFixtures.problems(
            """
            format: quorum-latch/bundle/v1
            version: 1
            latches:
              - id: a
                mounts: [{path: /x, upstream: "https://x.example"}]
            """)
        expectProblem(problems, line: 4, column: 5, path: "latches[0].token_sha256", "missing", "SHA-256")
    }

    @Test("A bad duration names the accepted units")
    func badDuration() {
        let problems = BundleFixtures.problems(
            BundleFixtures.withMountFilters(
                """
                          - rate_limit: {requests: 60, window: 1 minute}
                          - rate_limit: {requests: 60, window: 45d}
                """))
        expectProblem(
            problems, line: 11, column: 48, path: "latches[0].mounts[0].filters[0].rate_limit.window",
            "'1 minute' is not a duration; expected e.g. 30s, 1m, 1h")
        expectProblem(
            problems, line: 12, column: 48, path: "latches[0].mounts[0].filters[1].rate_limit.window",
            "out of range", "from 1s to 31d")
        #expect(
            problems[0].description
                == "bundle.yaml:11:48: latches[0].mounts[0].filters[0].rate_limit.window: '1 minute' is not a duration; expected e.g. 30s, 1m, 1h (a whole number of ms, s, m, h or d, from 1s to 31d)"
        )
    }

    @Test("Money refuses more than six decimal places, negatives, overflow and quoted text")
    func badMoney() {
        let problems = BundleFixtures.problems(
            BundleFixtures.withMountFilters(
                """
                          - budget: {day: 0.0000001, month: -5, total: 10000000000000, cost: {per_request: "0.01"}}
                """))
        let at = "latches[0].mounts[0].filters[0].budget"
        expectProblem(problems, line: 11, column: 27, path: "\(at).day", "more than 6 decimal places")
        expectProblem(problems, line: 11, column: 45, path: "\(at).month", "negative")
        expectProblem(problems, line: 11, column: 56, path: "\(at).total", "too large")
        expectProblem(
            problems, line: 11, column: 92, path: "\(at).cost.per_request", "expected an amount such as 0 or 2.50",
            "the string '0.01'")
    }

    @Test("A regex that SafeRegex refuses is placed at its rule")
    func badRegex() {
        let problems = BundleFixtures.problems(
            BundleFixtures.withMountFilters(
                """
                          - payload:
                              - {path: $.user, op: regex, value: "(a"}
                """))
        expectProblem(
            problems, line: 12, column: 17, path: "latches[0].mounts[0].filters[0].payload[0]", "invalid regex")
    }

    @Test("An unknown operator lists every operator")
    func unknownOperator() {
        let problems = BundleFixtures.problems(
            BundleFixtures.withMountFilters(
                """
                          - payload:
                              - {path: $.n, op: lte, value: 3}
                """))
        expectProblem(
            problems, line: 12, column: 33, path: "latches[0].mounts[0].filters[0].payload[0].op",
            "'lte' is not an operator", "eq, ne, lt, le, gt, ge, in, not_in", "len_le, len_ge")
    }

    @Test("A duplicate key in YAML is refused with its line")
    func duplicateKeyYAML() {
        let problems = BundleFixtures.problems(
            """
            format: quorum-latch/bundle/v1
            version: 1
            latches: []
            version: 2
            """)
        #expect(problems.count == 1)
        #expect(problems.first?.line == 2 && problems.first?.column == 1)
        #expect(problems.first?.message.contains("duplicate key 'version'") == true)
    }

    @Test("A duplicate key in JSON is refused by the strict parser with its line and column")
    func duplicateKeyJSON() {
        let problems = BundleFixtures.problems(
            """
            {"format": "quorum-latch/bundle/v1",
             "version": 1,
             "latches": [], "version": 2}
            """, file: "bundle.json")
        #expect(problems.count == 1)
        let problem = problems.first
        #expect(problem?.file == "bundle.json" && problem?.line == 3 && problem?.column == 17)
        #expect(problem?.message.contains("duplicate_key") == true)
    }

    @Test("Invalid JSON is placed where the parser stopped")
    func invalidJSON() {
        let problems = BundleFixtures.problems(
            "{\"format\": \"quorum-latch/bundle/v1\",\n \"version\": 01}", file: "b.json")
        #expect(problems.first?.description.hasPrefix("b.json:2:13: not valid JSON") == true)
    }

    @Test("Anchors, aliases and tags are refused")
    func anchorsAndTags() {
        let problems = BundleFixtures.problems(
            """
            format: quorum-latch/bundle/v1
            version: !!int 1
            fields:
              cap: &caps [$.max_tokens]
              other: *caps
            latches: []
            """)
        #expect(problems.contains { $0.line == 2 && $0.column == 10 && $0.message.contains("tags are not allowed") })
        #expect(problems.contains { $0.line == 4 && $0.message.contains("anchors and aliases are not allowed") })
    }

    @Test("An alias to an undefined anchor is a syntax problem")
    func undefinedAlias() {
        let problems = BundleFixtures.problems("format: *nope\n")
        #expect(problems.first?.message.contains("undefined alias") == true)
        #expect(problems.first?.line == 1)
    }

    @Test("An unknown field alias lists the declared ones")
    func unknownAlias() {
        let problems = BundleFixtures.problems(
            BundleFixtures.withMountFilters(
                """
                          - payload: [{field: tokens, op: le, value: 10}]
                """, extraTop: "fields: {token_cap: [$.max_tokens], model: $.model}"))
        expectProblem(
            problems, line: 11, column: 31, path: "latches[0].mounts[0].filters[0].payload[0].field",
            "no field alias 'tokens'", "declared: model, token_cap")
    }

    @Test("An unknown secret (found by validation) is mapped back to its line")
    func unknownSecret() {
        let problems = BundleFixtures.problems(
            """
            format: quorum-latch/bundle/v1
            version: 1
            secrets: [{name: openai, inject: bearer}]
            latches:
              - id: a
                token_sha256: \(Self.a)
                mounts:
                  - path: /api
                    upstream: https://api.example.com
                    secret: open-ai
            """)
        expectProblem(
            problems, line: 10, column: 17, path: "latches[0].mounts[0].secret", "no secret 'open-ai'",
            "declared: openai")
    }

    @Test("A rate limit's token alias that is not declared is placed at the rate limit when defaulted")
    func defaultedTokenFieldMapsToAncestor() {
        let problems = BundleFixtures.problems(
            BundleFixtures.withMountFilters("          - rate_limit: {tokens: 100, window: 1m}"))
        expectProblem(
            problems, line: 11, column: 25, path: "latches[0].mounts[0].filters[0].rate_limit.token_field",
            "no field alias 'token_cap'")
    }

    @Test("Each derivation rule's problem is mapped to the offending line")
    func derivationProblems() {
        let problems = BundleFixtures.problems(
            """
            format: quorum-latch/bundle/v1
            version: 1
            latches:
              - id: root
                token_sha256: \(Self.a)
                expires: 2027-01-01T00:00:00Z
                filters: [{id: cap, body_size: 1000}]
                mounts:
                  - {path: /openai, upstream: "https://api.openai.com"}
              - id: child
                token_sha256: \(Self.b)
                parent: root
                expires: 2028-01-01T00:00:00Z
                filters: [{id: cap, body_size: 1000000}]
                mounts:
                  - path: /github
                  - path: /openai
                    upstream: https://evil.example.com
              - id: loop-a
                token_sha256: \(Self.a)
                parent: loop-b
              - id: loop-b
                token_sha256: \(Self.b)
                parent: loop-a
            """)
        expectProblem(problems, line: 13, column: 14, path: "latches[1].expires", "after its parent 'root'")
        expectProblem(
            problems, line: 14, column: 20, path: "latches[1].filters[0].id", "filter 'cap' is the parent's")
        expectProblem(
            problems, line: 16, column: 15, path: "latches[1].mounts[0].path", "'/github' is not a mount of the parent",
            "/openai")
        expectProblem(
            problems, line: 18, column: 19, path: "latches[1].mounts[1].upstream", "differs from the parent's")
        #expect(
            problems.contains { $0.path.hasSuffix(".parent") && $0.message.contains("parent cycle") && $0.line >= 20 })
    }

    @Test("Many problems are listed at once, in document order")
    func manyProblems() {
        let problems = BundleFixtures.problems(
            """
            format: quorum-latch/bundle/v2
            version: 0
            secrets: [{name: "bad name", inject: cookie}]
            latches:
              - id: a
                token_sha256: nothex
                mounts:
                  - path: /api
                    upstream: ftp://x.example
                    filters:
                      - {method: [get], body_size: 10}
                      - {}
                      - ip_allowlist: [10.0.0.1/8]
                      - time_window: {days: mon-fri, hours: "9-5", time_zone: EST}
            """)
        let paths = problems.map(\.path)
        #expect(
            paths == [
                "format", "version", "secrets[0].name", "latches[0].token_sha256", "latches[0].mounts[0].upstream",
                "latches[0].mounts[0].filters[0].body_size", "latches[0].mounts[0].filters[1]",
                "latches[0].mounts[0].filters[2].ip_allowlist[0]", "latches[0].mounts[0].filters[3].time_window.hours",
            ], "\(problems.map(\.description).joined(separator: "\n"))")
        #expect(problems.allSatisfy { $0.line > 0 && $0.column > 0 })
    }

    @Test("Secret values are never echoed: a bad token digest is not quoted back")
    func tokenDigestNotEchoed() {
        let problems = BundleFixtures.problems(
            BundleFixtures.withMountFilters("          - body_size: 10").replacingOccurrences(
                of: Self.a, with: "lat_a_SECRETSECRETSECRET"))
        #expect(problems.count == 1)
        #expect(!problems[0].description.contains("SECRET"))
    }

    @Test("A signed envelope given to decode says to open it as one")
    func signedEnvelopeToDecode() {
        let problems = BundleFixtures.problems(
            #"{"bundle": {}, "digest": "sha256:00", "format": "quorum-latch/signed-bundle/v1", "signature": "", "signer": ""}"#,
            file: "signed.json")
        #expect(problems.count == 1)
        #expect(problems.first?.message.contains("this is a signed bundle; use SignedBundle.open") == true)
    }

    @Test("A filter needs exactly one kind")
    func filterKinds() {
        let problems = BundleFixtures.problems(
            BundleFixtures.withMountFilters(
                """
                          - {id: x}
                          - {method: GET, body_size: 10}
                """))
        expectProblem(
            problems, line: 11, column: 13, path: "latches[0].mounts[0].filters[0]", "no filter kind",
            "method, endpoint, rate_limit, payload, body_size, time_window, ip_allowlist, header_req, response, budget")
        expectProblem(
            problems, line: 12, column: 27, path: "latches[0].mounts[0].filters[1].body_size",
            "method and body_size in one filter")
    }
}
