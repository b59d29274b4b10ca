import Foundation
import QuorumPolicy
import Testing

/// A proxy acts on the verdict bytes a node signed, so `Verdict(decoding:)` must read back exactly
/// what `Verdict.encoded()` wrote, for every filter kind, route, reservation and obligation, and
/// refuse anything else with the member at fault.
@Suite("Verdict decoding inverts the encoding")
struct VerdictDecodingTests {
    static let assistant = LatchToken(latchID: "assistant", randomBytes: [UInt8](repeating: 7, count: 32))
    /// Tuesday 2026-11-24 10:00 in Berlin (09:00 UTC).
    static let businessHours = Date(timeIntervalSince1970: 1_795_510_800)

    /// A bundle with a filter of every kind, every response obligation, and both budget costs.
    static let bundleText = """
        format: quorum-latch/bundle/v1
        version: 3
        secrets:
          - name: openai
            inject: bearer
        fields:
          token_cap: [$.max_tokens, $.max_completion_tokens]
        prices:
          gpt-4o: {input: 2.50, output: 10.00}
        latches:
          - id: assistant
            token_sha256: \(assistant.secretDigest.map { String(format: "%02x", $0) }.joined())
            mounts:
              - path: /openai
                upstream: https://api.openai.com
                secret: openai
                filters:
                  - method: [POST]
                  - endpoint: {allow: [/v1/chat/completions], block: [/v1/admin/**]}
                  - ip_allowlist: [10.0.0.0/8, "2001:db8::/32"]
                  - header_req: [{name: x-team, pattern: "support-*"}]
                  - id: token-cap
                    payload:
                      - {field: token_cap, op: le, value: 4096, required: true}
                      - {path: $.model, op: in, value: [gpt-4o]}
                  - id: per-minute
                    rate_limit: {requests: 3, tokens: 20000, window: 1m, key: client}
                  - body_size: 2KiB
                  - id: hours
                    time_window: {days: mon-fri, hours: "08:00-19:00", time_zone: Europe/Berlin}
                  - id: fixed
                    budget: {day: 0.05, cost: {per_request: 0.01}}
                  - id: llm
                    budget:
                      day: 1.5
                      cost: {llm: {model: $.model, token_field: token_cap}}
                  - response:
                      redact: [$.id, "$[\\"odd key\\"]"]
                      trim: [$.system_fingerprint, "$.choices[*].logprobs"]
                      max_bytes: 65536
                      block_if:
                        - {path: "$.choices[*].message.content", op: regex, value: "sk-[A-Za-z0-9]{20}", quantifier: any}
                        - {path: $.error, op: exists}
                        - {path: $.usage.total_tokens, op: gt, value: 15000, when_missing: satisfy}
                        - {path: $.object, op: not_in, value: [null, "x\\u0001y", {"a": [1, 2.50]}]}
        """

    static func engine() throws -> PolicyEngine {
        PolicyEngine(bundle: try BundleDocument.decode(Array(bundleText.utf8), fileName: "every-filter.yaml"))
    }

    static func call(
        _ id: String, method: String = "POST", target: String = "/openai/v1/chat/completions",
        body: String = #"{"model":"gpt-4o","max_tokens":100,"messages":[]}"#, team: String? = "support-eu",
        client: String = "10.1.2.3", token: String = assistant.text
    ) -> DecisionRequest {
        var headers = [HeaderField(name: "Content-Type", value: "application/json")]
        if let team { headers.append(HeaderField(name: "X-Team", value: team)) }
        return DecisionRequest(
            requestID: id, method: method, target: target, headers: headers, body: Array(body.utf8),
            clientAddress: client, token: token)
    }

    /// Verdicts of every shape the engine produces: an allow with rate hits and both reservation
    /// kinds, a deny at each filter and built-in step, and `/self`.
    static func verdicts() throws -> [(String, Verdict)] {
        let engine = try engine()
        var state = PolicyState()
        let allowed = engine.evaluate(call("allowed"), state: state, at: businessHours)
        #expect(allowed.decision == .allow, "\(allowed.reason ?? "")")
        state.apply(allowed.stateChanges)
        var cases: [(String, Verdict)] = [("allow", allowed)]
        let denials: [(String, DecisionRequest)] = [
            ("authentication", call("a", token: "lat_nobody_xyz")),
            ("method", call("m", method: "GET")),
            ("endpoint", call("e", target: "/openai/v1/admin/keys")),
            ("path", call("p", target: "/openai/v1/%2e%2e/admin")),
            ("mount", call("n", target: "/other")),
            ("ip_allowlist", call("i", client: "192.0.2.1")),
            ("header_req", call("h", team: "sales")),
            ("payload", call("c", body: #"{"model":"gpt-4o","max_tokens":99999}"#)),
            ("payload-body", call("b", body: "not json")),
            (
                "body_size",
                call(
                    "s",
                    body: #"{"model":"gpt-4o","max_tokens":1,"pad":""# + String(repeating: "x", count: 3000) + "\"}")
            ),
        ]
        for (name, request) in denials {
            let verdict = engine.evaluate(request, state: state, at: businessHours)
            #expect(verdict.decision == .deny, "\(name)")
            cases.append((name, verdict))
        }
        cases.append(("time_window", engine.evaluate(call("t"), state: state, at: businessHours + 12 * 3600)))
        var exhausted = state
        for index in 0..<5 {
            exhausted.apply(engine.evaluate(call("r\(index)"), state: exhausted, at: businessHours).stateChanges)
        }
        cases.append(("rate_limit", engine.evaluate(call("r9"), state: exhausted, at: businessHours)))
        cases.append(
            ("self", engine.evaluate(call("self", method: "GET", target: "/self"), state: state, at: businessHours)))
        if let reservation = allowed.reservation {
            let settled = engine.settle(
                reservation, usage: SpendUsage(inputTokens: 10, outputTokens: 20), at: businessHours)
            cases.append(
                (
                    "settle changes",
                    Verdict(
                        requestID: "settle", decision: .allow, reason: nil, latchID: "assistant", route: nil, trace: [],
                        obligations: .none, reservation: nil, stateChanges: settled, selfDescription: nil,
                        bundleDigest: allowed.bundleDigest, evaluatedAt: -5)
                ))
        }
        return cases
    }

    @Test("every verdict shape round-trips byte for byte and decodes to an equal verdict")
    func roundTrip() throws {
        let cases = try Self.verdicts()
        let kinds = Set(cases.flatMap { $0.1.trace.map(\.kind) })
        for kind in [
            "method", "endpoint", "ip_allowlist", "header_req", "payload", "rate_limit", "body_size",
            "time_window", "budget", "response", "authentication", "mount",
        ] {
            #expect(kinds.contains(kind), "no verdict exercises \(kind)")
        }
        let allow = try #require(cases.first { $0.0 == "allow" }?.1)
        #expect(allow.obligations.blockIf.count == 4)
        #expect(allow.obligations.redact.count == 2 && allow.obligations.maxBytes == 65536)
        #expect(allow.reservation?.entries.count == 2)
        #expect(allow.stateChanges.contains { if case .rateHit = $0 { true } else { false } })
        for (name, verdict) in cases {
            let bytes = verdict.encoded()
            let decoded = try Verdict(decoding: bytes)
            #expect(decoded == verdict, "\(name)")
            #expect(decoded.encoded() == bytes, "\(name)")
        }
    }

    @Test(
        "malformed verdicts are refused naming the member",
        arguments: [
            (#"{"decision":"maybe"}"#, "verdict.decision"),
            ("[]", "verdict: a JSON array"),
            ("{", "verdict: not JSON"),
            (#"{"decision":"allow","reason":null,"trace":[],"obligations":{}}"#, "verdict.obligations.redact: missing"),
        ])
    func malformed(text: String, expected: String) {
        let error = #expect(throws: VerdictDecodingError.self) { try Verdict(decoding: Array(text.utf8)) }
        #expect(error?.description.hasPrefix(expected) == true, "\(String(describing: error))")
    }

    @Test("a verdict with an extra member, a missing member, reordered members or other spacing is refused")
    func notCanonical() throws {
        let allow = try #require(try Self.verdicts().first { $0.0 == "allow" }?.1)
        let text = String(decoding: allow.encoded(), as: UTF8.self)
        let variants: [(String, String)] = [
            (
                text.replacingOccurrences(of: #","evaluated_at""#, with: #","extra":1,"evaluated_at""#),
                "verdict.evaluated_at"
            ),
            (text.replacingOccurrences(of: #""reason":null,"#, with: ""), "verdict.reason"),
            (
                text.replacingOccurrences(
                    of: #"{"decision":"allow","reason":null,"#, with: #"{"reason":null,"decision":"allow","#),
                "verdict.decision"
            ),
            (
                text.replacingOccurrences(of: #""decision":"allow""#, with: #""decision": "allow""#),
                "not the canonical encoding"
            ),
            (text.replacingOccurrences(of: #""kind":"upstream""#, with: #""kind":"elsewhere""#), "verdict.route.kind"),
            (text + " x", "verdict: not JSON"),
        ]
        for (variant, expected) in variants {
            #expect(variant != text, "the edit for \(expected) changed nothing")
            do {
                _ = try Verdict(decoding: Array(variant.utf8))
                Issue.record("accepted a variant that should fail with \(expected)")
            } catch {
                #expect(error.description.contains(expected), "\(error)")
            }
        }
    }
}
