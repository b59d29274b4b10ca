import Foundation
import QuorumPolicy
import QuorumTestKit
import Testing

/// The issue's seed scenario, played against the example bundle shipped in
/// `cluster/policies/assistant.yaml`, so the documented example is also the tested one.
@Suite("Seed scenario: the assistant latch")
struct SeedScenarioTests {
    static let bundleURL = TestKit.packageRoot.appendingPathComponent("cluster/policies/assistant.yaml")
    static let assistant = LatchToken(latchID: "assistant", randomBytes: [UInt8](repeating: 7, count: 32))
    static let ci = LatchToken(latchID: "assistant-ci", randomBytes: [UInt8](repeating: 8, count: 32))
    /// Tuesday 2026-11-24 10:00 in Berlin (09:00 UTC).
    static let businessHours = Date(timeIntervalSince1970: 1_795_510_800)

    static func engine() throws -> PolicyEngine {
        let bytes = Array(try Data(contentsOf: bundleURL))
        return PolicyEngine(bundle: try BundleDocument.decode(bytes, fileName: "assistant.yaml"))
    }

    static func chat(
        maxTokens: Int, model: String = "gpt-4o", token: LatchToken = assistant, id: String = "r"
    )
        -> DecisionRequest
    {
        let body = #"{"model":"\#(model)","max_tokens":\#(maxTokens),"messages":[{"role":"user","content":"Hi"}]}"#
        return DecisionRequest(
            requestID: id, method: "POST", target: "/openai/v1/chat/completions",
            headers: [HeaderField(name: "Content-Type", value: "application/json")], body: Array(body.utf8),
            clientAddress: "10.0.0.5", token: token.text)
    }

    @Test("a 16,000-token call is denied naming the cap; a 1,000-token call is allowed")
    func tokenCap() throws {
        let engine = try Self.engine()
        let denied = engine.evaluate(Self.chat(maxTokens: 16_000), state: PolicyState(), at: Self.businessHours)
        #expect(denied.decision == .deny)
        #expect(denied.reason == "token-cap: $.max_tokens le 4096: value 16000 does not satisfy it")
        let allowed = engine.evaluate(Self.chat(maxTokens: 1000), state: PolicyState(), at: Self.businessHours)
        #expect(allowed.decision == .allow, "\(allowed.reason ?? "")")
        #expect(allowed.obligations.trim.map(\.description) == ["$.system_fingerprint"])
        #expect(allowed.reservation?.entries.count == 1)
        #expect(allowed.bundleDigest.hasPrefix("sha256:"))
    }

    @Test("only POST /v1/chat/completions")
    func methodAndEndpoint() throws {
        let engine = try Self.engine()
        var get = Self.chat(maxTokens: 10)
        get.method = "GET"
        #expect(
            engine.evaluate(get, state: PolicyState(), at: Self.businessHours).reason?.hasPrefix("method#1") == true)
        var embeddings = Self.chat(maxTokens: 10)
        embeddings.target = "/openai/v1/embeddings"
        #expect(
            engine.evaluate(embeddings, state: PolicyState(), at: Self.businessHours).reason?.hasPrefix("endpoint#2")
                == true)
    }

    @Test("60 requests a minute, sliding")
    func rateLimit() throws {
        let engine = try Self.engine()
        var state = PolicyState()
        for index in 0..<60 {
            let verdict = engine.evaluate(
                Self.chat(maxTokens: 100, id: "r\(index)"), state: state,
                at: Self.businessHours.addingTimeInterval(Double(index) * 0.5))
            #expect(verdict.decision == .allow)
            state.apply(verdict.stateChanges)
        }
        let sixtyFirst = engine.evaluate(
            Self.chat(maxTokens: 100, id: "r60"), state: state, at: Self.businessHours.addingTimeInterval(45))
        #expect(sixtyFirst.reason?.hasPrefix("per-minute: 60 requests per 1m reached") == true)
    }

    @Test("business hours in Berlin")
    func hours() throws {
        let engine = try Self.engine()
        let evening = Self.businessHours.addingTimeInterval(10 * 3600)
        let verdict = engine.evaluate(Self.chat(maxTokens: 1000), state: PolicyState(), at: evening)
        #expect(
            verdict.reason?.hasPrefix("business-hours: outside mon,tue,wed,thu,fri 08:00-19:00 Europe/Berlin") == true)
    }

    @Test("the derived CI latch runs the assistant's pipeline, then its own narrower rules")
    func derivedLatch() throws {
        let engine = try Self.engine()
        let parentCap = engine.evaluate(
            Self.chat(maxTokens: 16_000, token: Self.ci), state: PolicyState(), at: Self.businessHours)
        #expect(parentCap.reason?.hasPrefix("token-cap:") == true)
        let ownCap = engine.evaluate(
            Self.chat(maxTokens: 1000, token: Self.ci), state: PolicyState(), at: Self.businessHours)
        #expect(ownCap.reason?.hasPrefix("ci-cap:") == true)
        let allowed = engine.evaluate(
            Self.chat(maxTokens: 500, model: "gpt-4o-mini", token: Self.ci), state: PolicyState(),
            at: Self.businessHours)
        #expect(allowed.decision == .allow, "\(allowed.reason ?? "")")
        // The child's reservation is in the assistant's budget.
        #expect(allowed.reservation?.entries.map(\.key) == ["assistant//openai/daily-budget"])
    }

    @Test("the example renders to YAML and canonical JSON that read back to the same digest")
    func roundTrip() throws {
        let bundle = try Self.engine().bundle
        let yaml = BundleDocument.render(bundle, as: .yaml)
        let json = BundleDocument.render(bundle, as: .json)
        let canonical = BundleDocument.canonicalBytes(of: bundle)
        for (name, bytes) in [("yaml", Array(yaml.utf8)), ("json", Array(json.utf8)), ("canonical", canonical)] {
            let again = try BundleDocument.decode(bytes, fileName: name)
            #expect(again.digest == bundle.digest, "\(name)")
        }
    }
}
