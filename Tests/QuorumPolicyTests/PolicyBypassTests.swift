import Foundation
import QuorumPolicy
import Testing

// Attacks on the pipeline by an agent holding a valid latch token, and by a careless bundle: each
// test is one bypass class, named after the attack, and asserts the engine refuses it.

private func token(_ id: String = "assistant") -> LatchToken {
    LatchToken(latchID: id, randomBytes: [UInt8](repeating: 7, count: 32))
}

private func policy(_ filters: [Filter]) throws -> PolicyBundle {
    try PolicyBundle(
        version: 1, secrets: [SecretSpec(name: "openai", injection: .bearer)],
        fieldAliases: ["token_cap": [try JSONPath("$.max_tokens")]], prices: [:],
        latches: [
            Latch(
                id: "assistant", tokenDigest: token().secretDigest,
                mounts: [
                    Mount(path: "/openai", upstream: "https://api.openai.com", secret: "openai", filters: filters)
                ])
        ], digest: "sha256:test")
}

private func call(
    _ bundle: PolicyBundle, method: String = "POST", target: String = "/openai/v1/chat/completions",
    body: [UInt8], contentType: String = "application/json", state: PolicyState = PolicyState()
) -> Verdict {
    let request = DecisionRequest(
        requestID: "req-1", method: method, target: target,
        headers: [HeaderField(name: "Content-Type", value: contentType)], body: body, clientAddress: "10.0.0.5",
        token: token().text)
    return PolicyEngine(bundle: bundle).evaluate(request, state: state, at: Date(timeIntervalSince1970: 1_795_780_800))
}

private func call(
    _ bundle: PolicyBundle, method: String = "POST", target: String = "/openai/v1/chat/completions",
    body: String = "{}", contentType: String = "application/json", state: PolicyState = PolicyState()
) -> Verdict {
    call(bundle, method: method, target: target, body: Array(body.utf8), contentType: contentType, state: state)
}

private func capRule(_ path: String, _ cap: Int64 = 4096) throws -> Filter {
    Filter(
        id: "cap",
        kind: .payload([try PayloadRule(path, op: .le, operand: .number(JSONNumber(cap)), required: true)]))
}

@Suite("Policy bypass attempts")
struct PolicyBypassTests {
    @Test("A key canonically equivalent to a capped field (Kelvin sign for K) does not stand in for it")
    func canonicallyEquivalentKey() throws {
        // Upstream JSON parsers compare member names scalar by scalar: "top\u{212A}" is not "topK"
        // to them, so a rule that read it as topK would check a field the upstream never sees.
        let bundle = try policy([capRule("$.topK", 40)])
        #expect(call(bundle, body: #"{"topK": 40}"#).decision == .allow)
        let verdict = call(bundle, body: #"{"top\u212A": 40}"#)
        #expect(verdict.decision == .deny)
        #expect(verdict.reason?.contains("missing") == true)
        // Precomposed and decomposed spellings of a non-ASCII name are different names upstream.
        let accented = try policy([capRule(#"$["caf\u00e9"]"#, 1)])
        #expect(call(accented, body: #"{"caf\u00e9": 1}"#).decision == .allow)
        #expect(call(accented, body: #"{"cafe\u0301": 1}"#).decision == .deny)
    }

    @Test(
        "A method spelled in another case or with whitespace does not skip a conditional filter",
        arguments: ["post", "Post", "POST ", " POST", "POST\t"])
    func methodSpellingSkipsCondition(method: String) throws {
        let condition = FilterCondition(methods: try MethodSet(["POST"]), endpoints: nil)
        let rule = try PayloadRule("$.max_tokens", op: .le, operand: .number(JSONNumber(4096)), required: true)
        let bundle = try policy([Filter(id: "cap", condition: condition, kind: .payload([rule]))])
        #expect(call(bundle, body: #"{"max_tokens": 99999}"#).decision == .deny)
        let verdict = call(bundle, method: method, body: #"{"max_tokens": 99999}"#)
        #expect(verdict.decision == .deny, "\(method.debugDescription) skipped the cap")
        // A canonical method outside the condition still skips cleanly.
        #expect(call(bundle, method: "GET", body: #"{"max_tokens": 99999}"#).decision == .allow)
    }

    @Test(
        "A charset other than UTF-8 cannot make the upstream read different members",
        arguments: [
            "application/json; charset=gbk", "application/json;charset=Shift_JIS", "application/json; charset=utf-7",
            "application/json; charset=\"iso-8859-1\"", "application/json; charset=utf-16",
            "application/json; charset=", "application/json; charset=utf-8; charset=gbk",
        ])
    func foreignCharset(contentType: String) throws {
        // In GBK, the last byte of the UTF-8 for U+4E2D and the backslash after it are one
        // character, so the escaped quote ends the string and "max_tokens" becomes a member.
        let body = Array(#"{"max_tokens": 1, "note": "\#u{4E2D}\", \"max_tokens\": 99999, \"x\": \""}"#.utf8)
        let bundle = try policy([capRule("$.max_tokens")])
        #expect(call(bundle, body: body).decision == .allow)
        let verdict = call(bundle, body: body, contentType: contentType)
        #expect(verdict.decision == .deny, "\(contentType)")
    }

    @Test(
        "UTF-8 spellings of JSON media types stay accepted",
        arguments: [
            "application/json", "application/json; charset=utf-8", "application/json;charset=UTF-8",
            "application/json; charset=\"utf-8\"", "application/vnd.api+json; charset=utf-8",
            "Application/JSON ; Charset=UTF-8",
        ])
    func utf8Charset(contentType: String) throws {
        let bundle = try policy([capRule("$.max_tokens")])
        #expect(call(bundle, body: #"{"max_tokens": 1}"#, contentType: contentType).decision == .allow)
    }

    @Test(
        "Overlong and invalid UTF-8 in percent-encoding is refused, not forwarded for the upstream to decode",
        arguments: [
            "/openai/v1/%C0%AE%C0%AE/admin", "/openai/v1%C0%AFadmin", "/openai/v1/%E0%80%AE", "/openai/%ED%A0%80",
            "/openai/%FF", "/openai/%C3", "/openai/%A9",
        ])
    func overlongPercentEncoding(target: String) throws {
        let bundle = try policy([])
        let verdict = call(bundle, method: "GET", target: target)
        #expect(verdict.decision == .deny)
        #expect(verdict.trace.last?.filter == "path")
        #expect(call(bundle, method: "GET", target: "/openai/caf%C3%A9").decision == .allow)
    }

    @Test("Rate windows from an older bundle with huge counts do not trap on overflow")
    func rateWindowOverflow() throws {
        let limit = RateLimitFilter(
            requests: 10, tokens: nil, windowMilliseconds: 60_000, key: .latch, tokenField: "token_cap")
        let bundle = try policy([Filter(id: "rl", kind: .rateLimit(limit))])
        let now: Int64 = 1_795_780_800_000
        let max = Int64.max
        let slots = [(now - 2000, max), (now - 1000, max)].map { at, count in
            #"{"start":\#(at),"latest":\#(at),"requests":\#(count),"tokens":\#(count)}"#
        }
        let window = try JSONDecoder().decode(
            RateWindow.self, from: Data(#"{"slots":[\#(slots.joined(separator: ","))]}"#.utf8))
        var state = PolicyState()
        state.rateWindows["assistant//openai/rl"] = window
        let verdict = call(bundle, state: state)
        #expect(verdict.decision == .deny)
        #expect(window.usage(at: now, window: 60_000) == (.max, .max))
    }

    @Test("A YAML bundle nested a million levels deep is refused, not a stack overflow")
    func deepYAML() throws {
        for text in [
            "format: " + String(repeating: "[", count: 1_000_000),
            "format: " + String(repeating: "{a: ", count: 200_000),
            (0..<200).map { String(repeating: " ", count: $0) + "k\($0):" }.joined(separator: "\n"),
            (0..<200).map { String(repeating: " ", count: $0) + "-" }.joined(separator: "\n"),
            "x: " + String(repeating: "- ", count: 200) + "y",
        ] {
            do {
                _ = try BundleDocument.decode(Array(text.utf8), fileName: "deep.yaml")
                Issue.record("a deep bundle decoded")
            } catch {
                #expect(error.description.contains("deep.yaml:"), "\(error)")
                #expect(error.description.contains("nested deeper than 64"), "\(error)")
            }
        }
    }

    @Test("A path in another case does not slip past a block or skip a conditional filter")
    func pathCase() throws {
        let endpoint = EndpointFilter(
            allow: [try EndpointPattern("/v1/**")], block: [try EndpointPattern("/v1/admin/**")])
        let condition = FilterCondition(methods: nil, endpoints: [try EndpointPattern("/v1/chat/*")])
        let bundle = try policy([
            Filter(id: "endpoints", kind: .endpoint(endpoint)), try capRule("$.max_tokens"),
            Filter(id: "small", condition: condition, kind: .bodySize(maxBytes: 20)),
        ])
        #expect(call(bundle, target: "/openai/V1/Admin/keys").reason?.contains("blocked") == true)
        // An allow pattern stays exact: /V1/... is not an allowed endpoint.
        #expect(call(bundle, target: "/openai/V1/models", body: #"{"max_tokens":1}"#).decision == .deny)
        let big = #"{"max_tokens":1,"padding":"xxxxxxxxxxxxxxxx"}"#
        #expect(call(bundle, target: "/openai/v1/CHAT/completions", body: big).decision == .deny)
    }

    @Test(
        "A method-override header or _method parameter is refused",
        arguments: [
            ("X-HTTP-Method-Override", ""), ("x-http-method", ""), ("X-Method-Override", ""),
            ("", "_method=DELETE"), ("", "a=1&%5Fmethod=DELETE"), ("", "_METHOD=delete"),
        ])
    func methodOverride(header: String, query: String) throws {
        let bundle = try policy([Filter(id: "post-only", kind: .method(try MethodSet(["POST"])))])
        var headers = [HeaderField(name: "Content-Type", value: "application/json")]
        if !header.isEmpty { headers.append(HeaderField(name: header, value: "DELETE")) }
        let request = DecisionRequest(
            requestID: "r", method: "POST", target: "/openai/v1/files" + (query.isEmpty ? "" : "?" + query),
            headers: headers, body: Array("{}".utf8), clientAddress: "10.0.0.5", token: token().text)
        let verdict = PolicyEngine(bundle: bundle).evaluate(request, state: PolicyState(), at: Date())
        #expect(verdict.decision == .deny)
        #expect(verdict.reason?.hasPrefix("path: method-override") == true, "\(verdict.reason ?? "")")
    }

    @Test("Per-client rate windows key the parsed address, and IPv6 clients by their /64")
    func clientKeySpelling() throws {
        let limit = RateLimitFilter(
            requests: 1, tokens: nil, windowMilliseconds: 60_000, key: .client, tokenField: "token_cap")
        let bundle = try policy([Filter(id: "per-client", kind: .rateLimit(limit))])
        let engine = PolicyEngine(bundle: bundle)
        let at = Date(timeIntervalSince1970: 1_795_780_800)
        func evaluate(_ client: String, _ state: PolicyState) -> Verdict {
            engine.evaluate(
                DecisionRequest(
                    requestID: "r", method: "POST", target: "/openai/v1/x", clientAddress: client, token: token().text),
                state: state, at: at)
        }
        for (first, second) in [("::1", "0::1"), ("2001:db8::1", "2001:db8::ffff:1"), ("10.0.0.1", "10.0.0.1")] {
            var state = PolicyState()
            state.apply(evaluate(first, state).stateChanges)
            #expect(evaluate(second, state).decision == .deny, "\(first) then \(second)")
        }
        var state = PolicyState()
        state.apply(evaluate("2001:db8:0:1::1", state).stateChanges)
        #expect(evaluate("2001:db8:0:2::1", state).decision == .allow)
        #expect(evaluate("not-an-ip", PolicyState()).decision == .deny)
    }

    @Test("A node clock that went back a day cannot restart a daily budget from zero")
    func budgetClockBackwards() throws {
        let budget = BudgetFilter(perDay: 150, perMonth: nil, total: nil, timeZone: .gmt, cost: .perRequest(100))
        let bundle = try policy([Filter(id: "daily", kind: .budget(budget))])
        let engine = PolicyEngine(bundle: bundle)
        let today = Date(timeIntervalSince1970: 1_795_780_800)
        func evaluate(_ id: String, _ at: Date, _ state: PolicyState) -> Verdict {
            engine.evaluate(
                DecisionRequest(
                    requestID: id, method: "POST", target: "/openai/v1/x", clientAddress: "10.0.0.5",
                    token: token().text),
                state: state, at: at)
        }
        var state = PolicyState()
        state.apply(evaluate("a", today.addingTimeInterval(-86_400), state).stateChanges)
        state.apply(evaluate("b", today, state).stateChanges)
        let back = evaluate("c", today.addingTimeInterval(-86_400), state)
        #expect(back.decision == .deny)
        #expect(
            back.reason?.contains("the clock reads day:2026-11-26 but the ledger already has day:2026-11-27") == true)
    }
}
