import Benchmark
import Foundation
import QuorumPolicy

// The policy engine's figures from issue 4: one evaluation of a six-filter pipeline over a 2 KB
// JSON body, as a node runs it for every call.

/// A chat-completions body of about 2 KB: a few messages, a model, a token cap.
let chatBody: [UInt8] = {
    let sentence = "Summarise the attached incident report for the on-call engineer, in plain words. "
    let messages = (0..<6).map { index in
        #"{"role":"\#(index % 2 == 0 ? "user" : "assistant")","content":"\#(String(repeating: sentence, count: 4))"}"#
    }
    let text =
        #"{"model":"gpt-4o","max_tokens":1000,"temperature":0.2,"messages":["# + messages.joined(separator: ",")
        + "]}"
    return Array(text.utf8)
}()

let assistantToken = LatchToken(latchID: "assistant", randomBytes: [UInt8](repeating: 7, count: 32))

/// The seed scenario's pipeline: method, endpoint, payload (token cap over three aliases, model
/// set, message roles), rate limit on requests and tokens, body size, business hours.
let engine: PolicyEngine = {
    let tokenCap = ["$.max_tokens", "$.max_completion_tokens", "$.max_output_tokens"].map { try! JSONPath($0) }
    let filters: [FilterKind] = [
        .method(try! MethodSet(["POST"])),
        .endpoint(EndpointFilter(allow: [try! EndpointPattern("/v1/chat/completions")], block: [])),
        .payload([
            try! PayloadRule(paths: tokenCap, op: .le, operand: .number(JSONNumber(4096)), required: true),
            try! PayloadRule("$.model", op: .in, operand: .array([.string("gpt-4o"), .string("gpt-4o-mini")])),
            try! PayloadRule(
                "$.messages[*].role", op: .in,
                operand: .array([.string("system"), .string("user"), .string("assistant")])),
        ]),
        .rateLimit(
            RateLimitFilter(
                requests: 60, tokens: 200_000, windowMilliseconds: 60_000, key: .latch, tokenField: "token_cap")),
        .bodySize(maxBytes: 65_536),
        .timeWindow([try! TimeWindow(days: "mon-fri", hours: "08:00-20:00", timeZone: "Europe/Berlin")]),
    ]
    let latch = Latch(
        id: "assistant", tokenDigest: assistantToken.secretDigest,
        mounts: [
            Mount(
                path: "/openai", upstream: "https://api.openai.com", secret: "openai",
                filters: filters.enumerated().map {
                    Filter(id: "\($0.element.name)#\($0.offset + 1)", kind: $0.element)
                })
        ])
    let bundle = try! PolicyBundle(
        version: 1, secrets: [SecretSpec(name: "openai", injection: .bearer)], fieldAliases: ["token_cap": tokenCap],
        prices: [:], latches: [latch], digest: "sha256:bench")
    return PolicyEngine(bundle: bundle)
}()

let chatRequest = DecisionRequest(
    requestID: "bench", method: "POST", target: "/openai/v1/chat/completions",
    headers: [HeaderField(name: "Content-Type", value: "application/json")], body: chatBody, clientAddress: "10.0.0.5",
    token: assistantToken.text)

/// Friday 2026-11-27 12:00 UTC: inside the window.
let benchInstant = Date(timeIntervalSince1970: 1_795_780_800)

/// A window with 30 earlier hits, as a busy latch has.
let busyState: PolicyState = {
    var state = PolicyState()
    for second in 0..<30 {
        let verdict = engine.evaluate(
            chatRequest, state: state, at: benchInstant.addingTimeInterval(Double(second - 40)))
        state.apply(verdict.stateChanges)
    }
    return state
}()

/// A bundle of 10,000 latches in YAML: 1,000 root latches with six filters each (two on the latch,
/// four on the mount) and 9,000 latches derived from them with two filters each.
let tenThousandLatches: [UInt8] = {
    var text = """
        format: quorum-latch/bundle/v1
        version: 1
        secrets:
          - {name: openai, inject: bearer}
        fields:
          token_cap: [$.max_tokens, $.max_completion_tokens, $.max_output_tokens]
        prices:
          gpt-4o: {input: 2.50, output: 10.00}
        latches:

        """
    let digest = String(repeating: "ab", count: 32)
    for root in 0..<1000 {
        text += """
              - id: team-\(root)
                token_sha256: \(digest)
                labels: {team: t\(root)}
                expires: 2027-06-30T00:00:00Z
                filters:
                  - ip_allowlist: [10.0.0.0/8, "2001:db8::/32"]
                  - rate_limit: {requests: 600, window: 1m, key: latch}
                mounts:
                  - path: /openai
                    upstream: https://api.openai.com
                    secret: openai
                    filters:
                      - method: [POST]
                      - endpoint: {allow: [/v1/chat/completions, /v1/embeddings]}
                      - payload: [{field: token_cap, op: le, value: 4096, required: true}]
                      - budget: {day: 20, cost: {llm: {model: $.model, token_field: token_cap}}}

            """
        for child in 0..<9 {
            text += """
                  - id: team-\(root)-agent-\(child)
                    parent: team-\(root)
                    token_sha256: \(digest)
                    expires: 2027-03-31T00:00:00Z
                    filters:
                      - body_size: 64KiB
                      - time_window: {days: mon-fri, hours: "08:00-19:00", time_zone: Europe/Berlin}

                """
        }
    }
    return Array(text.utf8)
}()

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal], timeUnits: .microseconds, warmupIterations: 50,
        maxDuration: .seconds(2), maxIterations: 20_000)

    Benchmark("Pipeline: 6 filters over a 2 KB JSON body") { benchmark in
        precondition(chatBody.count > 1900 && chatBody.count < 2300, "body is \(chatBody.count) bytes")
        let verdict = engine.evaluate(chatRequest, state: busyState, at: benchInstant)
        precondition(verdict.decision == .allow, verdict.reason ?? "")
        blackHole(verdict)
    }

    Benchmark(
        "Bundle: load and validate 10,000 latches (YAML)",
        configuration: .init(metrics: [.wallClock, .peakMemoryResident], timeUnits: .milliseconds, maxIterations: 10)
    ) { benchmark in
        let bundle = try BundleDocument.decode(tenThousandLatches, fileName: "bench.yaml")
        precondition(bundle.latches.count == 10_000)
        blackHole(bundle)
    }
}
