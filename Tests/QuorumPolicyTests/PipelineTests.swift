import Foundation
import QuorumPolicy
import Testing

// MARK: - Fixtures built in code (the bundle file format has its own tests)

/// Tokens with fixed secrets, so each test knows the token of each latch.
private func token(_ id: String, _ fill: UInt8 = 7) -> LatchToken {
    LatchToken(latchID: id, randomBytes: [UInt8](repeating: fill, count: 32))
}

private func filter(_ kind: FilterKind, id: String? = nil, when: FilterCondition? = nil, at index: Int = 1) -> Filter {
    Filter(id: id ?? "\(kind.name)#\(index)", condition: when, kind: kind)
}

private let tokenCap = [
    try! JSONPath("$.max_tokens"), try! JSONPath("$.max_completion_tokens"), try! JSONPath("$.max_output_tokens"),
]

private func bundle(_ latches: [Latch], prices: [String: ModelPrice] = [:]) throws -> PolicyBundle {
    try PolicyBundle(
        version: 1, secrets: [SecretSpec(name: "openai", injection: .bearer)], fieldAliases: ["token_cap": tokenCap],
        prices: prices, latches: latches, digest: "sha256:test")
}

private func rootLatch(
    _ id: String = "assistant", filters: [Filter] = [], mountFilters: [Filter] = [], expires: Date? = nil,
    revoked: Bool = false
) -> Latch {
    Latch(
        id: id, tokenDigest: token(id).secretDigest, expires: expires, revoked: revoked, filters: filters,
        mounts: [Mount(path: "/openai", upstream: "https://api.openai.com", secret: "openai", filters: mountFilters)])
}

private func request(
    _ method: String = "POST", target: String = "/openai/v1/chat/completions", body: String? = nil,
    contentType: String? = "application/json", headers: [HeaderField] = [], client: String = "10.0.0.5",
    token: String = token("assistant").text, id: String = "req-1"
) -> DecisionRequest {
    var fields = headers
    if let contentType { fields.append(HeaderField(name: "Content-Type", value: contentType)) }
    return DecisionRequest(
        requestID: id, method: method, target: target, headers: fields, body: Array((body ?? "").utf8),
        clientAddress: client, token: token)
}

private let noon = Date(timeIntervalSince1970: 1_795_780_800)  // 2026-11-27 12:00:00 UTC, a Friday

private func evaluate(
    _ bundle: PolicyBundle, _ request: DecisionRequest, state: PolicyState = PolicyState(), at: Date = noon
) -> Verdict {
    PolicyEngine(bundle: bundle).evaluate(request, state: state, at: at)
}

/// The step that decided a deny.
private func denier(_ verdict: Verdict) -> String? {
    verdict.trace.last { $0.outcome == .deny }?.filter
}

// MARK: - Built-in steps

@Suite("Authentication, revocation, expiry, path and mount")
struct BuiltInStepTests {
    @Test("a missing, malformed, unknown or wrong token is denied at authentication")
    func authentication() throws {
        let policy = try bundle([rootLatch()])
        for bad in ["", "Bearer x", "lat_assistant_short", token("nobody").text, token("assistant", 9).text] {
            let verdict = evaluate(policy, request(token: bad))
            #expect(verdict.decision == .deny)
            #expect(denier(verdict) == "authentication", "\(bad)")
        }
        #expect(evaluate(policy, request()).decision == .allow)
    }

    @Test("a sender-constrained latch (RFC 8705) needs its client certificate, and so do its children")
    func senderConstraint() throws {
        let bound = Array(repeating: UInt8(0xAB), count: 32)
        let other = Array(repeating: UInt8(0xCD), count: 32)
        let root = rootLatch()
        let constrained = Latch(
            id: root.id, tokenDigest: root.tokenDigest, filters: root.filters, mounts: root.mounts,
            certificateThumbprint: bound)
        let child = Latch(id: "child", tokenDigest: token("child").secretDigest, parent: "assistant", mounts: nil)
        let policy = try bundle([constrained, child])
        func attempt(_ latch: String, _ certificate: [UInt8]?) -> Verdict {
            var call = request(token: token(latch).text)
            call.clientCertificateSHA256 = certificate
            return evaluate(policy, call)
        }
        for latch in ["assistant", "child"] {
            let missing = attempt(latch, nil)
            #expect(missing.decision == .deny)
            #expect(denier(missing) == "sender-constraint")
            #expect(missing.reason?.contains("present it to the proxy's TLS listener") == true, "\(missing)")
            let wrong = attempt(latch, other)
            #expect(wrong.decision == .deny)
            #expect(wrong.reason?.contains("is not the one") == true)
            #expect(attempt(latch, bound).decision == .allow, "\(latch)")
        }
        // An unconstrained latch ignores a certificate it was not bound to.
        let free = try bundle([rootLatch()])
        var call = request()
        call.clientCertificateSHA256 = other
        #expect(evaluate(free, call).decision == .allow)
    }

    @Test("the token's secret never appears in a verdict")
    func noSecretInVerdict() throws {
        let policy = try bundle([rootLatch(mountFilters: [filter(.bodySize(maxBytes: 1))])])
        for verdict in [evaluate(policy, request()), evaluate(policy, request(body: "{}"))] {
            let text = String(decoding: verdict.encoded(), as: UTF8.self)
            let secret = String(token("assistant").text.split(separator: "_").last!)
            #expect(!text.contains(secret))
        }
        #expect(!"\(request())".contains(String(token("assistant").text.suffix(20))))
    }

    @Test("revoking a latch revokes its descendants")
    func revocation() throws {
        let child = Latch(id: "child", tokenDigest: token("child").secretDigest, parent: "assistant", mounts: nil)
        let policy = try bundle([rootLatch(revoked: true), child])
        let own = evaluate(policy, request())
        #expect(denier(own) == "revoked")
        let inherited = evaluate(policy, request(token: token("child").text))
        #expect(denier(inherited) == "revoked")
        #expect(inherited.reason?.contains("ancestor 'assistant'") == true)
    }

    @Test("an expired latch is denied, and a child expires with its parent")
    func expiry() throws {
        let parentExpiry = noon.addingTimeInterval(-1)
        let child = Latch(
            id: "child", tokenDigest: token("child").secretDigest, expires: parentExpiry, parent: "assistant",
            mounts: nil)
        let policy = try bundle([rootLatch(expires: parentExpiry), child])
        #expect(denier(evaluate(policy, request())) == "expiry")
        #expect(denier(evaluate(policy, request(token: token("child").text))) == "expiry")
        #expect(evaluate(policy, request(), at: noon.addingTimeInterval(-2)).decision == .allow)
    }

    @Test(
        "ambiguous paths are denied, not guessed at",
        arguments: [
            "/openai//v1/chat/completions", "/openai/./v1/chat/completions", "/openai/v1/../v1/chat/completions",
            "/openai/v1%2Fchat/completions", "/openai/%2e%2e/admin", "/openai/v1/chat/completions;x=1",
            "/openai\\v1", "openai/v1",
        ])
    func ambiguousPaths(target: String) throws {
        let verdict = evaluate(try bundle([rootLatch()]), request(target: target))
        #expect(verdict.decision == .deny)
        #expect(denier(verdict) == "path")
    }

    @Test("a path under no mount is denied; a prefix that is not a whole segment is not a mount")
    func mountSelection() throws {
        let policy = try bundle([rootLatch()])
        #expect(denier(evaluate(policy, request(target: "/github/repos"))) == "mount")
        #expect(denier(evaluate(policy, request(target: "/openaix/v1"))) == "mount")
        let verdict = evaluate(policy, request(target: "/openai/v1/models?limit=2"))
        guard case .upstream(let mount, let url, let secret, let path)? = verdict.route else {
            Issue.record("expected an upstream route")
            return
        }
        #expect(mount == "/openai" && url == "https://api.openai.com" && secret == "openai" && path == "/v1/models")
    }

    @Test("/self is answered by the nodes with limits and remaining budget, and never routed upstream")
    func selfMount() throws {
        let limit = RateLimitFilter(
            requests: 5, tokens: nil, windowMilliseconds: 60_000, key: .latch, tokenField: "token_cap")
        let budget = BudgetFilter(
            perDay: 1_000_000, perMonth: nil, total: nil, timeZone: .gmt, cost: .perRequest(250_000))
        let policy = try bundle([rootLatch(mountFilters: [filter(.rateLimit(limit)), filter(.budget(budget), at: 2)])])
        var state = PolicyState()
        state.apply(evaluate(policy, request(body: "{}")).stateChanges)
        let verdict = evaluate(policy, request("GET", target: "/self"), state: state)
        #expect(verdict.decision == .allow)
        #expect(verdict.route == .selfDescription)
        #expect(verdict.stateChanges.isEmpty)
        let text = verdict.selfDescription?.jsonText ?? ""
        #expect(text.contains("\"requests_remaining\":4"))
        #expect(text.contains("\"remaining\":\"0.75\""))
        #expect(!text.contains("api.openai.com"))
    }
}

// MARK: - Request filters

@Suite("Request filters")
struct RequestFilterTests {
    @Test("method: only listed methods, case-sensitive")
    func method() throws {
        let policy = try bundle([rootLatch(mountFilters: [filter(.method(try MethodSet(["POST"])))])])
        #expect(evaluate(policy, request("POST")).decision == .allow)
        for method in ["GET", "post", "DELETE"] {
            let verdict = evaluate(policy, request(method))
            #expect(denier(verdict) == "method#1")
            #expect(verdict.reason?.contains("allowed: POST") == true)
        }
    }

    @Test("endpoint: block wins over allow; paths are relative to the mount")
    func endpoint() throws {
        let rule = EndpointFilter(
            allow: [try EndpointPattern("/v1/**")], block: [try EndpointPattern("/v1/admin/**")])
        let policy = try bundle([rootLatch(mountFilters: [filter(.endpoint(rule))])])
        #expect(evaluate(policy, request(target: "/openai/v1/chat/completions")).decision == .allow)
        #expect(evaluate(policy, request(target: "/openai/v1/admin/keys")).reason?.contains("blocked") == true)
        #expect(evaluate(policy, request(target: "/openai/v1/admin/")).decision == .deny)
        #expect(evaluate(policy, request(target: "/openai/v2/chat")).reason?.contains("not an allowed") == true)
        // An encoded unreserved character is decoded before matching: no dodge around the block.
        #expect(evaluate(policy, request(target: "/openai/v1/%61dmin/keys")).decision == .deny)
    }

    @Test("a conditional filter skips cleanly when its condition does not match")
    func conditional() throws {
        let condition = FilterCondition(
            methods: try MethodSet(["POST"]), endpoints: [try EndpointPattern("/v1/chat/*")])
        let policy = try bundle([rootLatch(mountFilters: [filter(.bodySize(maxBytes: 2), when: condition)])])
        let skipped = evaluate(policy, request("GET", target: "/openai/v1/models", body: "{\"a\":1}"))
        #expect(skipped.decision == .allow)
        #expect(skipped.trace.last?.outcome == .skip)
        let applied = evaluate(policy, request(body: "{\"a\":1}"))
        #expect(denier(applied) == "body_size#1")
    }

    @Test("payload: a token cap covers every alias, and an absent cap is denied")
    func payloadAliases() throws {
        let cap = try PayloadRule(paths: tokenCap, op: .le, operand: .number(JSONNumber(4096)), required: true)
        let policy = try bundle([rootLatch(mountFilters: [filter(.payload([cap]))])])
        #expect(evaluate(policy, request(body: #"{"max_tokens":1000}"#)).decision == .allow)
        for body in [
            #"{"max_tokens":16000}"#, #"{"max_completion_tokens":16000}"#, #"{"max_output_tokens":16000}"#,
            #"{"max_tokens":10,"max_completion_tokens":16000}"#, #"{"max_tokens":"100"}"#, #"{"model":"gpt-4o"}"#,
        ] {
            let verdict = evaluate(policy, request(body: body))
            #expect(denier(verdict) == "payload#1", "\(body)")
        }
    }

    @Test("payload: bodies that are not plain JSON are denied while a payload rule applies")
    func payloadBodies() throws {
        let rule = try PayloadRule("$.model", op: .eq, operand: .string("gpt-4o"))
        let policy = try bundle([rootLatch(mountFilters: [filter(.payload([rule]))])])
        let good = #"{"model":"gpt-4o"}"#
        #expect(evaluate(policy, request(body: good)).decision == .allow)
        #expect(
            evaluate(policy, request(body: good, contentType: "application/json; charset=utf-8")).decision == .allow)
        let cases: [(DecisionRequest, String)] = [
            (request(body: #"{"model":"gpt-4o","model":"evil"}"#), "duplicate"),
            (request(body: String(repeating: "[", count: 100) + String(repeating: "]", count: 100)), "nesting deeper"),
            (request(body: good, contentType: "text/plain"), "content type"),
            (request(body: good, contentType: nil), "no content type"),
            (
                request(body: good, headers: [HeaderField(name: "content-type", value: "application/json")]),
                "content type"
            ),
            (request(body: "{\"model\":"), "JSON"),
            (
                DecisionRequest(
                    requestID: "r", method: "POST", target: "/openai/v1/chat/completions",
                    headers: [HeaderField(name: "Content-Type", value: "application/json")], body: Array(good.utf8),
                    bodyLength: 10_000, clientAddress: "10.0.0.5", token: token("assistant").text),
                "not forwarded whole"
            ),
        ]
        for (request, expected) in cases {
            let verdict = evaluate(policy, request)
            #expect(denier(verdict) == "payload#1")
            #expect(verdict.reason?.contains(expected) == true, "\(verdict.reason ?? "")")
        }
    }

    @Test("body_size counts the declared length, not just the forwarded prefix")
    func bodySize() throws {
        let policy = try bundle([rootLatch(mountFilters: [filter(.bodySize(maxBytes: 10))])])
        #expect(evaluate(policy, request(body: "0123456789")).decision == .allow)
        #expect(evaluate(policy, request(body: "01234567890")).decision == .deny)
        let truncated = DecisionRequest(
            requestID: "r", method: "POST", target: "/openai/v1", body: Array("0123".utf8), bodyLength: 1 << 20,
            clientAddress: "10.0.0.5", token: token("assistant").text)
        #expect(evaluate(policy, truncated).reason?.contains("1048576 bytes") == true)
    }

    @Test("time_window: business hours in Berlin, across the DST change")
    func timeWindow() throws {
        let hours = try TimeWindow(days: "mon-fri", hours: "09:00-17:00", timeZone: "Europe/Berlin")
        let policy = try bundle([rootLatch(mountFilters: [filter(.timeWindow([hours]))])])
        // Friday 2026-11-27 12:00 UTC is 13:00 in Berlin (CET, UTC+1).
        #expect(evaluate(policy, request(), at: noon).decision == .allow)
        // 16:30 UTC is 17:30 in Berlin: closed.
        #expect(evaluate(policy, request(), at: noon.addingTimeInterval(4.5 * 3600)).decision == .deny)
        // Saturday noon: closed, and the reason says the local time.
        let saturday = evaluate(policy, request(), at: noon.addingTimeInterval(86_400))
        #expect(saturday.reason?.contains("sat 13:00 Europe/Berlin") == true)
        // Monday 2026-03-30 07:30 UTC is 09:30 CEST (UTC+2): open; a fixed UTC+1 would say 08:30.
        #expect(evaluate(policy, request(), at: Date(timeIntervalSince1970: 1_774_855_800)).decision == .allow)
    }

    @Test("ip_allowlist: IPv4 and IPv6 ranges and exact addresses; garbage is denied")
    func ipAllowlist() throws {
        let list = try IPAllowlist(["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"])
        let policy = try bundle([rootLatch(mountFilters: [filter(.ipAllowlist(list))])])
        for allowed in ["10.1.2.3", "2001:db8::1", "192.0.2.7"] {
            #expect(evaluate(policy, request(client: allowed)).decision == .allow, "\(allowed)")
        }
        for denied in ["11.0.0.1", "2001:db9::1", "192.0.2.8", "::ffff:10.0.0.1x", "", "localhost"] {
            #expect(denier(evaluate(policy, request(client: denied))) == "ip_allowlist#1", "\(denied)")
        }
    }

    @Test("header_req: present, and every occurrence matching the pattern")
    func headers() throws {
        let requirements = [try HeaderRequirement(name: "X-Team", pattern: "support-*")]
        let policy = try bundle([rootLatch(mountFilters: [filter(.headers(requirements))])])
        let ok = HeaderField(name: "x-team", value: "support-eu")
        #expect(evaluate(policy, request(headers: [ok])).decision == .allow)
        #expect(evaluate(policy, request()).reason?.contains("missing") == true)
        let smuggled = [ok, HeaderField(name: "X-Team", value: "admin")]
        #expect(evaluate(policy, request(headers: smuggled)).reason?.contains("occurrence 2") == true)
    }

    @Test("response filters pass and hand their obligations to the verdict")
    func responseObligations() throws {
        let first = ResponseObligations(redact: [try JSONPath("$.id")], trim: [], blockIf: [], maxBytes: 1000)
        let second = ResponseObligations(redact: [], trim: [try JSONPath("$.usage")], blockIf: [], maxBytes: 500)
        let policy = try bundle([
            rootLatch(filters: [filter(.response(first))], mountFilters: [filter(.response(second))])
        ])
        let verdict = evaluate(policy, request())
        #expect(verdict.decision == .allow)
        #expect(verdict.obligations.redact.map(\.description) == ["$.id"])
        #expect(verdict.obligations.trim.map(\.description) == ["$.usage"])
        #expect(verdict.obligations.maxBytes == 500)
    }
}

// MARK: - Rate limits

@Suite("Sliding-window rate limits")
struct RateLimitTests {
    private func limited(
        requests: Int64? = 3, tokens: Int64? = nil, key: RateLimitKey = .latch
    ) throws -> PolicyBundle {
        let limit = RateLimitFilter(
            requests: requests, tokens: tokens, windowMilliseconds: 60_000, key: key, tokenField: "token_cap")
        return try bundle([rootLatch(mountFilters: [filter(.rateLimit(limit))])])
    }

    /// Plays requests at the given second offsets from noon, applying each allow's changes.
    private func play(
        _ policy: PolicyBundle, _ seconds: [Double], body: String = "{}", client: String = "10.0.0.5"
    )
        -> [Verdict.Decision]
    {
        var state = PolicyState()
        return seconds.map { second in
            let verdict = evaluate(
                policy, request(body: body, client: client), state: state, at: noon.addingTimeInterval(second))
            state.apply(verdict.stateChanges)
            return verdict.decision
        }
    }

    @Test("the window slides: a burst straddling a minute boundary cannot double the rate")
    func sliding() throws {
        let policy = try limited()
        // Three at 0:59 of one minute, then one at 1:01: a fixed window would allow the fourth.
        #expect(play(policy, [59, 59.5, 59.9, 61]) == [.allow, .allow, .allow, .deny])
        // Once the oldest hit is a window old, one more is allowed.
        #expect(play(policy, [0, 1, 2, 59.9, 60.5]) == [.allow, .allow, .allow, .deny, .allow])
    }

    @Test("a denied request does not consume the window, and the reason says when to retry")
    func denyConsumesNothing() throws {
        let policy = try limited(requests: 1)
        var state = PolicyState()
        state.apply(evaluate(policy, request(body: "{}"), state: state).stateChanges)
        let denied = evaluate(policy, request(body: "{}"), state: state, at: noon.addingTimeInterval(30))
        #expect(denied.decision == .deny && denied.stateChanges.isEmpty)
        #expect(denied.reason?.contains("1 requests per 1m reached; retry in 30s") == true)
    }

    @Test("tokens per window count the declared cap; a request without one is denied")
    func tokens() throws {
        let policy = try limited(requests: nil, tokens: 5000)
        #expect(play(policy, [0, 1, 2], body: #"{"max_tokens":2000}"#) == [.allow, .allow, .deny])
        #expect(play(policy, [0], body: #"{"messages":[]}"#) == [.deny])
    }

    @Test("per-client windows are separate; per-latch windows are shared")
    func keys() throws {
        let perClient = try limited(requests: 1, key: .client)
        var state = PolicyState()
        for client in ["10.0.0.1", "10.0.0.2"] {
            let verdict = evaluate(perClient, request(body: "{}", client: client), state: state)
            #expect(verdict.decision == .allow)
            state.apply(verdict.stateChanges)
        }
        #expect(evaluate(perClient, request(body: "{}", client: "10.0.0.1"), state: state).decision == .deny)
        let perLatch = try limited(requests: 1, key: .latch)
        #expect(play(perLatch, [0, 1]) == [.allow, .deny])
    }

    @Test("memory per window stays bounded whatever the request rate")
    func bounded() {
        var window = RateWindow()
        for millisecond in stride(from: Int64(0), to: 600_000, by: 7) {
            window.record(at: millisecond, window: 60_000, requests: 1, tokens: 0)
        }
        #expect(window.slots.count <= Int(RateWindow.slotsPerWindow) + 1)
        #expect(window.usage(at: 600_000, window: 60_000).requests >= 60_000 / 7)
    }
}

// MARK: - Budgets

@Suite("Budgets: reservations, settlement, shared up the tree")
struct BudgetTests {
    private let prices = ["gpt-4o": ModelPrice(inputPerMillion: 2_500_000, outputPerMillion: 10_000_000)]

    private func llmBudget(day: MicroUnits) throws -> Filter {
        filter(
            .budget(
                BudgetFilter(
                    perDay: day, perMonth: nil, total: nil, timeZone: .gmt,
                    cost: .llm(modelPath: try JSONPath("$.model"), tokenField: "token_cap"))))
    }

    @Test("an LLM call reserves cap × output price + body bytes × input price, and is denied up front past the budget")
    func reservation() throws {
        // 1000 tokens × $10/M = $0.01; 42 bytes × $2.5/M = $0.000105.
        let policy = try bundle([rootLatch(mountFilters: [try llmBudget(day: 25_000)])], prices: prices)
        let body = #"{"model":"gpt-4o","max_tokens":1000,"x":1}"#
        #expect(body.utf8.count == 42)
        var state = PolicyState()
        let first = evaluate(policy, request(body: body), state: state)
        #expect(first.decision == .allow)
        #expect(first.reservation?.entries.first?.amount == 10_105)
        state.apply(first.stateChanges)
        state.apply(evaluate(policy, request(body: body, id: "req-2"), state: state).stateChanges)
        let third = evaluate(policy, request(body: body, id: "req-3"), state: state)
        #expect(third.decision == .deny)
        #expect(third.reason?.contains("day budget: this call reserves 0.010105, 0.00479 of 0.025 remains") == true)
    }

    @Test("settling replaces the reservation by the actual usage")
    func settlement() throws {
        let policy = try bundle([rootLatch(mountFilters: [try llmBudget(day: 25_000)])], prices: prices)
        let engine = PolicyEngine(bundle: policy)
        let body = #"{"model":"gpt-4o","max_tokens":1000,"x":1}"#
        var state = PolicyState()
        for index in 0..<5 {
            let verdict = engine.evaluate(request(body: body, id: "req-\(index)"), state: state, at: noon)
            #expect(verdict.decision == .allow, "call \(index)")
            state.apply(verdict.stateChanges)
            // 100 prompt tokens and 200 completion tokens: $0.00025 + $0.002.
            state.apply(
                engine.settle(
                    verdict.reservation!, usage: SpendUsage(inputTokens: 100, outputTokens: 200), at: noon))
        }
        let key = "assistant//openai/budget#1"
        let spent: MicroUnits? = state.budgets[key]?.spent["day:2026-11-27"]
        #expect(spent == 11_250)
        #expect(state.budgets[key]?.reservations.isEmpty == true)
    }

    @Test("an unsettled reservation counts as spent after the timeout; a new day starts afresh")
    func timeoutAndRollover() throws {
        let policy = try bundle([rootLatch(mountFilters: [try llmBudget(day: 15_000)])], prices: prices)
        let body = #"{"model":"gpt-4o","max_tokens":1000,"x":1}"#
        var state = PolicyState()
        state.apply(evaluate(policy, request(body: body), state: state).stateChanges)
        let later = noon.addingTimeInterval(3600)
        #expect(evaluate(policy, request(body: body, id: "b"), state: state, at: later).decision == .deny)
        let tomorrow = noon.addingTimeInterval(86_400)
        let next = evaluate(policy, request(body: body, id: "c"), state: state, at: tomorrow)
        #expect(next.decision == .allow)
        state.apply(next.stateChanges)
        let ledger = state.budgets["assistant//openai/budget#1"]!
        #expect(ledger.spent["day:2026-11-27"] == nil)
        #expect(ledger.reservations.count == 1)
    }

    @Test("unknown models and missing caps are denied, naming the budget filter")
    func failClosed() throws {
        let policy = try bundle([rootLatch(mountFilters: [try llmBudget(day: 1_000_000)])], prices: prices)
        let unknown = evaluate(policy, request(body: #"{"model":"gpt-9","max_tokens":10}"#))
        #expect(unknown.reason?.hasPrefix("budget#1: no price for model 'gpt-9'") == true)
        let uncapped = evaluate(policy, request(body: #"{"model":"gpt-4o"}"#))
        #expect(uncapped.reason?.contains("absent cap is not unlimited") == true)
    }

    @Test("a child's spend counts against its parent's budget")
    func sharedWithAncestors() throws {
        let parentBudget = filter(
            .budget(BudgetFilter(perDay: nil, perMonth: nil, total: 300, timeZone: .gmt, cost: .perRequest(100))),
            id: "team-budget")
        let parent = rootLatch(filters: [parentBudget])
        let children = ["a", "b"].map {
            Latch(id: $0, tokenDigest: token($0).secretDigest, parent: "assistant", mounts: nil)
        }
        let policy = try bundle([parent] + children)
        var state = PolicyState()
        var decisions: [Verdict.Decision] = []
        for (index, id) in ["a", "b", "assistant", "a"].enumerated() {
            let verdict = evaluate(policy, request(body: "{}", token: token(id).text, id: "r\(index)"), state: state)
            decisions.append(verdict.decision)
            state.apply(verdict.stateChanges)
        }
        #expect(decisions == [.allow, .allow, .allow, .deny])
    }
}

// MARK: - Derivation and determinism

@Suite("Derivation at evaluation, determinism")
struct DerivationEvaluationTests {
    @Test("a child runs its parent's filters first, then its own")
    func inheritedPipeline() throws {
        let parent = rootLatch(mountFilters: [filter(.method(try MethodSet(["POST", "GET"])))])
        let child = Latch(
            id: "child", tokenDigest: token("child").secretDigest, parent: "assistant",
            filters: [filter(.method(try MethodSet(["GET"])), id: "read-only")], mounts: nil)
        let policy = try bundle([parent, child])
        let childToken = token("child").text
        #expect(denier(evaluate(policy, request("DELETE", token: childToken))) == "method#1")
        #expect(denier(evaluate(policy, request("POST", token: childToken))) == "read-only")
        let allowed = evaluate(policy, request("GET", token: childToken))
        #expect(allowed.trace.map(\.filter).suffix(2) == ["method#1", "read-only"])
    }

    @Test("a parent's rate limit is shared by its children")
    func sharedRateLimit() throws {
        let limit = RateLimitFilter(
            requests: 2, tokens: nil, windowMilliseconds: 60_000, key: .latch, tokenField: "token_cap")
        let parent = rootLatch(filters: [filter(.rateLimit(limit))])
        let children = ["a", "b", "c"].map {
            Latch(id: $0, tokenDigest: token($0).secretDigest, parent: "assistant", mounts: nil)
        }
        let policy = try bundle([parent] + children)
        var state = PolicyState()
        var decisions: [Verdict.Decision] = []
        for id in ["a", "b", "c"] {
            let verdict = evaluate(policy, request(token: token(id).text), state: state)
            decisions.append(verdict.decision)
            state.apply(verdict.stateChanges)
        }
        #expect(decisions == [.allow, .allow, .deny])
    }

    @Test("the same request, state and time give byte-identical verdicts")
    func determinism() throws {
        let limit = RateLimitFilter(
            requests: 10, tokens: 10_000, windowMilliseconds: 60_000, key: .client, tokenField: "token_cap")
        let cap = try PayloadRule(paths: tokenCap, op: .le, operand: .number(JSONNumber(4096)), required: true)
        let policy = try bundle([rootLatch(mountFilters: [filter(.rateLimit(limit)), filter(.payload([cap]), at: 2)])])
        var state = PolicyState()
        state.apply(evaluate(policy, request(body: #"{"max_tokens":100}"#)).stateChanges)
        for body in [#"{"max_tokens":100}"#, #"{"max_tokens":99999}"#] {
            let first = evaluate(policy, request(body: body), state: state).encoded()
            let second = PolicyEngine(bundle: try bundle(policy.latches)).evaluate(
                request(body: body), state: state, at: noon
            ).encoded()
            #expect(first == second)
        }
    }
}
