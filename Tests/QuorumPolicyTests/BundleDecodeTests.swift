import Foundation
import Testing

@testable import QuorumPolicy

/// Shared bundle texts and helpers for the Bundle*Tests suites.
enum BundleFixtures {
    static let digestA = String(repeating: "ab", count: 32)
    static let digestB = String(repeating: "cd", count: 32)

    /// Every filter kind, in YAML.
    static let fullYAML = """
        # A bundle that uses every filter kind.
        format: quorum-latch/bundle/v1
        version: 7
        secrets:
          - name: openai
            inject: bearer
          - name: anthropic
            inject: {header: x-api-key}
          - name: maps
            inject: {query: key}
          - name: legacy
            inject: {basic: svc}
        fields:
          token_cap: [$.max_tokens, $.max_completion_tokens, $.max_output_tokens]
          model: $.model
        prices:
          gpt-4o: {input: 2.50, output: 10.00}
        latches:
          - id: assistant
            token_sha256: \(digestA)
            labels: {team: support, tier: "1"}
            expires: 2027-01-01T00:00:00Z
            filters:
              - method: [POST, GET]
              - id: office-hours
                time_window: {days: mon-fri, hours: "09:00-18:00", time_zone: Europe/Berlin}
              - ip_allowlist: [10.0.0.0/8, "2001:db8::/32", 192.0.2.7]
            mounts:
              - path: /openai
                upstream: https://api.openai.com
                secret: openai
                filters:
                  - endpoint: {allow: [/v1/chat/completions], block: [/v1/admin/**]}
                  - id: cap
                    when: {methods: [POST], endpoints: [/v1/chat/*]}
                    payload:
                      - {field: token_cap, op: le, value: 4096}
                      - {path: $.model, op: in, value: [gpt-4o, gpt-4o-mini], quantifier: any, required: true}
                      - {paths: [$.user, $.metadata.user], op: regex, value: "^[a-z]+$", when_missing: satisfy}
                      - {path: $.n, op: eq, value: 1.0}
                  - rate_limit: {requests: 60, tokens: 200000, window: 1m, key: client}
                  - body_size: 64KiB
                  - header_req: [{name: x-team, pattern: "support-*"}, x-request-id]
                  - response: {redact: [$.id], trim: [$.system_fingerprint], block_if: [{path: "$.choices[*].message.content", op: regex, value: "sk-[A-Za-z0-9]+", quantifier: any, when_missing: satisfy}], max_bytes: 1048576}
                  - id: spend
                    budget: {day: 5.00, month: 100, total: 1000, time_zone: UTC, cost: {llm: {model: $.model, token_field: token_cap}}}
              - path: /maps
                upstream: https://maps.example.com:8443/api
                secret: maps
                filters:
                  - budget: {day: 1, cost: {per_request: 0.01}}
                  - time_window:
                      - {days: [sat, sun], hours: "10:00-12:00", time_zone: UTC}
                      - {days: "mon,wed", hours: "22:00-06:00", time_zone: America/New_York}
          - id: helper
            token_sha256: \(digestB)
            parent: assistant
            expires: 2026-06-01T12:00:00+02:00
            filters:
              - body_size: 4096
            mounts:
              - path: /openai
                filters:
                  - rate_limit: {requests: 10, window: 30s}
        """

    /// The same bundle in JSON, with keys in another order.
    static let fullJSON = """
        {
          "version": 7,
          "format": "quorum-latch/bundle/v1",
          "prices": {"gpt-4o": {"output": 10, "input": 2.5}},
          "fields": {"model": ["$.model"], "token_cap": ["$.max_tokens", "$.max_completion_tokens", "$.max_output_tokens"]},
          "secrets": [
            {"inject": {"basic": "svc"}, "name": "legacy"},
            {"name": "openai", "inject": "bearer"},
            {"name": "anthropic", "inject": {"header": "x-api-key"}},
            {"name": "maps", "inject": {"query": "key"}}
          ],
          "latches": [
            {
              "token_sha256": "\(digestA)",
              "id": "assistant",
              "labels": {"tier": "1", "team": "support"},
              "expires": "2027-01-01T01:00:00+01:00",
              "revoked": false,
              "filters": [
                {"method": ["GET", "POST"]},
                {"time_window": [{"hours": "09:00-18:00", "days": "mon,tue,wed,thu,fri", "time_zone": "Europe/Berlin"}], "id": "office-hours"},
                {"ip_allowlist": ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"]}
              ],
              "mounts": [
                {
                  "path": "/openai", "upstream": "https://api.openai.com", "secret": "openai",
                  "filters": [
                    {"endpoint": {"block": ["/v1/admin/**"], "allow": ["/v1/chat/completions"]}},
                    {"payload": [
                      {"paths": ["$.max_tokens", "$.max_completion_tokens", "$.max_output_tokens"], "op": "le", "value": 4096},
                      {"path": "$.model", "op": "in", "value": ["gpt-4o", "gpt-4o-mini"], "quantifier": "any", "required": true},
                      {"paths": ["$.user", "$.metadata.user"], "op": "regex", "value": "^[a-z]+$", "when_missing": "satisfy"},
                      {"path": "$.n", "op": "eq", "value": 1}
                    ], "id": "cap", "when": {"endpoints": ["/v1/chat/*"], "methods": "POST"}},
                    {"rate_limit": {"window": "60s", "requests": 60, "tokens": 200000, "key": "client", "token_field": "token_cap"}},
                    {"body_size": 65536},
                    {"header_req": [{"name": "X-Team", "pattern": "support-*"}, {"name": "x-request-id"}]},
                    {"response": {"max_bytes": "1MiB", "block_if": [{"path": "$.choices[*].message.content", "op": "regex", "value": "sk-[A-Za-z0-9]+", "quantifier": "any", "when_missing": "satisfy"}], "trim": ["$.system_fingerprint"], "redact": ["$.id"]}},
                    {"id": "spend", "budget": {"cost": {"llm": {}}, "total": 1000.000, "month": 100, "day": 5}}
                  ]
                },
                {
                  "path": "/maps", "upstream": "https://maps.example.com:8443/api", "secret": "maps",
                  "filters": [
                    {"budget": {"day": 1, "cost": {"per_request": 0.010}, "time_zone": "UTC"}},
                    {"time_window": [
                      {"days": "sat-sun", "hours": "10:00-12:00", "time_zone": "UTC"},
                      {"days": ["wed", "mon"], "hours": "22:00-06:00", "time_zone": "America/New_York"}
                    ]}
                  ]
                }
              ]
            },
            {
              "id": "helper", "token_sha256": "\(digestB)", "parent": "assistant",
              "expires": "2026-06-01T10:00:00Z",
              "filters": [{"body_size": "4KiB"}],
              "mounts": [{"path": "/openai", "filters": [{"rate_limit": {"requests": 10, "window": "30000ms"}}]}]
            }
          ]
        }
        """

    static func decode(_ text: String, file: String = "bundle.yaml") throws(BundleLoadError) -> PolicyBundle {
        try BundleDocument.decode(Array(text.utf8), fileName: file)
    }

    /// The problems decoding `text` reports; fails the test if it decodes.
    static func problems(
        _ text: String, file: String = "bundle.yaml", sourceLocation: SourceLocation = #_sourceLocation
    ) -> [LocatedProblem] {
        do {
            _ = try decode(text, file: file)
            Issue.record("expected the bundle to be refused", sourceLocation: sourceLocation)
            return []
        } catch {
            return error.problems
        }
    }

    /// A minimal valid YAML bundle whose single root latch has `filters` (already indented for the
    /// latch's filter list) on its one mount.
    static func withMountFilters(_ filters: String, extraTop: String = "") -> String {
        """
        format: quorum-latch/bundle/v1
        version: 1
        \(extraTop)
        latches:
          - id: a
            token_sha256: \(digestA)
            mounts:
              - path: /api
                upstream: https://api.example.com
                filters:
        \(filters)
        """
    }
}

@Suite("Bundle decoding")
struct BundleDecodeTests {
    @Test("A bundle with every filter kind decodes from YAML")
    func everyKindFromYAML() throws {
        let bundle = try BundleFixtures.decode(BundleFixtures.fullYAML)
        #expect(bundle.version == 7)
        #expect(bundle.secrets.count == 4)
        #expect(bundle.secrets["anthropic"]?.injection == .header(name: "x-api-key"))
        #expect(bundle.secrets["maps"]?.injection == .query(parameter: "key"))
        #expect(bundle.secrets["legacy"]?.injection == .basic(username: "svc"))
        #expect(bundle.fieldAliases["token_cap"]?.count == 3)
        #expect(bundle.prices["gpt-4o"] == ModelPrice(inputPerMillion: 2_500_000, outputPerMillion: 10_000_000))
        let assistant = try #require(bundle.latches.first)
        #expect(assistant.labels == ["team": "support", "tier": "1"])
        #expect(assistant.expires == Date(timeIntervalSince1970: 1_798_761_600))
        #expect(assistant.filters.map(\.id) == ["method#1", "office-hours", "ip_allowlist#3"])
        guard case .method(let methods) = assistant.filters[0].kind else {
            Issue.record("not a method filter")
            return
        }
        #expect(methods.methods == ["GET", "POST"])
        guard case .timeWindow(let windows) = assistant.filters[1].kind else {
            Issue.record("not a time window")
            return
        }
        #expect(windows.count == 1 && windows[0].days.count == 5 && windows[0].timeZone.identifier == "Europe/Berlin")
        let openai = try #require(assistant.mounts?.first)
        #expect(
            openai.filters.map(\.kind.name) == [
                "endpoint", "payload", "rate_limit", "body_size", "header_req", "response", "budget",
            ])
        #expect(openai.filters[1].condition?.methods?.methods == ["POST"])
        guard case .payload(let rules) = openai.filters[1].kind else {
            Issue.record("not a payload filter")
            return
        }
        #expect(
            rules[0].paths.map(\.description) == ["$.max_tokens", "$.max_completion_tokens", "$.max_output_tokens"])
        #expect(rules[0].operand == .number(JSONNumber(4096)))
        #expect(rules[1].quantifier == .any && rules[1].required)
        #expect(rules[2].whenMissing == .satisfy)
        guard case .rateLimit(let limit) = openai.filters[2].kind else {
            Issue.record("not a rate limit")
            return
        }
        #expect(
            limit
                == RateLimitFilter(
                    requests: 60, tokens: 200_000, windowMilliseconds: 60_000, key: .client, tokenField: "token_cap"))
        #expect(openai.filters[3].kind == .bodySize(maxBytes: 65_536))
        guard case .headers(let headers) = openai.filters[4].kind else {
            Issue.record("not a header filter")
            return
        }
        #expect(headers.map(\.name) == ["x-team", "x-request-id"])
        #expect(headers[0].pattern?.description == "support-*" && headers[1].pattern == nil)
        guard case .response(let response) = openai.filters[5].kind else {
            Issue.record("not a response filter")
            return
        }
        #expect(response.maxBytes == 1_048_576 && response.redact.count == 1 && response.blockIf.count == 1)
        guard case .budget(let budget) = openai.filters[6].kind else {
            Issue.record("not a budget")
            return
        }
        #expect(budget.perDay == 5_000_000 && budget.perMonth == 100_000_000 && budget.total == 1_000_000_000)
        #expect(budget.cost == .llm(modelPath: try JSONPath("$.model"), tokenField: "token_cap"))
        let maps = try #require(assistant.mounts?.last)
        guard case .budget(let perRequest) = maps.filters[0].kind else {
            Issue.record("not a budget")
            return
        }
        #expect(perRequest.cost == .perRequest(10_000))
        let helper = try #require(bundle.resolvedLatch("helper"))
        #expect(helper.chain == ["assistant", "helper"])
        #expect(helper.expires == Date(timeIntervalSince1970: 1_780_308_000))
        #expect(helper.mounts.map(\.path) == ["/openai"])
        #expect(helper.mounts[0].upstream == "https://api.openai.com")
        #expect(helper.mounts[0].pipeline.count == 3 + 7 + 1 + 1)
        #expect(bundle.digest.hasPrefix("sha256:") && bundle.digest.utf8.count == 71)
    }

    @Test("The same bundle in JSON, keys reordered and values respelled, decodes to the same digest")
    func jsonMatchesYAML() throws {
        let yaml = try BundleFixtures.decode(BundleFixtures.fullYAML)
        let json = try BundleFixtures.decode(BundleFixtures.fullJSON, file: "bundle.json")
        #expect(json.latches == yaml.latches)
        #expect(json.digest == yaml.digest)
    }

    @Test("YAML 1.1 words are not booleans: 'on' and 'yes' are text where text is expected")
    func yamlScalarsAreTypedBySchema() throws {
        let text = BundleFixtures.withMountFilters("          - body_size: 10").replacingOccurrences(
            of: "  - id: a\n", with: "  - id: a\n    labels: {on: yes, no: off, n: 012}\n")
        let bundle = try BundleFixtures.decode(text)
        #expect(bundle.latches[0].labels == ["on": "yes", "no": "off", "n": "012"])
    }

    @Test("A rule's value takes JSON types from plain scalars and text from quoted ones")
    func operandTyping() throws {
        let bundle = try BundleFixtures.decode(
            BundleFixtures.withMountFilters(
                """
                          - payload:
                              - {path: $.a, op: eq, value: true}
                              - {path: $.a, op: eq, value: "true"}
                              - {path: $.a, op: eq, value: 12.50}
                              - {path: $.a, op: eq, value: '12.50'}
                              - {path: $.a, op: eq, value: null}
                              - {path: $.a, op: eq, value: yes}
                              - {path: $.a, op: eq, value: {k: [1, x]}}
                """))
        guard case .payload(let rules) = bundle.latches[0].mounts?[0].filters[0].kind else {
            Issue.record("not a payload filter")
            return
        }
        #expect(
            rules.map(\.operand) == [
                .bool(true), .string("true"), .number(JSONNumber("12.5")!), .string("12.50"), .null, .string("yes"),
                .object([JSONMember(key: "k", value: .array([.number(JSONNumber(1)), .string("x")]))]),
            ])
    }

    @Test("A derived latch without mounts inherits every mount of its parent")
    func derivedInheritsMounts() throws {
        let text =
            BundleFixtures.withMountFilters("          - body_size: 10") + """

                  - id: b
                    token_sha256: \(BundleFixtures.digestB)
                    parent: a
                    revoked: true
                """
        let bundle = try BundleFixtures.decode(text)
        #expect(bundle.latches[1].mounts == nil)
        #expect(bundle.resolvedLatch("b")?.mounts.map(\.path) == ["/api"])
        #expect(bundle.resolvedLatch("b")?.revokedBy == "b")
    }

    @Test("cnf binds a latch to a client certificate thumbprint (RFC 8705); it round-trips and changes the digest")
    func certificateBinding() throws {
        let thumbprint = "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s"
        let plain = BundleFixtures.withMountFilters("          - body_size: 10")
        let bound = plain.replacingOccurrences(
            of: "token_sha256: \(BundleFixtures.digestA)\n",
            with: "token_sha256: \(BundleFixtures.digestA)\n    cnf: {x5t#S256: \(thumbprint)}\n")
        try #require(bound != plain)
        let bundle = try BundleFixtures.decode(bound)
        #expect(bundle.latches[0].certificateThumbprint == Array(repeating: 0xAB, count: 32))
        #expect(bundle.resolvedLatch("a")?.certificateThumbprints == [Array(repeating: 0xAB, count: 32)])
        #expect(bundle.digest != (try BundleFixtures.decode(plain)).digest)
        let reread = try BundleDocument.decode(BundleDocument.canonicalBytes(of: bundle), fileName: "re-encoded")
        #expect(reread.digest == bundle.digest)
        for bad in ["q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=", "q6ur", "not base64url!"] {
            let problems = BundleFixtures.problems(bound.replacingOccurrences(of: thumbprint, with: "\"\(bad)\""))
            #expect(problems.contains { $0.description.contains("x5t#S256") }, "\(bad): \(problems)")
        }
    }

    @Test("method: \"*\" means any well-formed method")
    func anyMethod() throws {
        let bundle = try BundleFixtures.decode(BundleFixtures.withMountFilters("          - method: \"*\""))
        #expect(bundle.latches[0].mounts?[0].filters[0].kind == .method(.any))
    }
}
