import Foundation
import QuorumTestKit
import Testing

/// `quorumctl policy …` and `quorumctl latch …` run as real processes on the shipped example
/// bundle: validation with every problem listed, operator keys, signing, evaluation with state,
/// and the latch lifecycle from a printed token to its revocation.
@Suite("quorumctl policy and latch", .serialized, .timeLimit(.minutes(5)))
struct PolicyCommandTests {
    static let example = TestKit.packageRoot.appendingPathComponent("cluster/policies")
    /// Tuesday 2026-11-24 10:00 in Berlin.
    static let at = "2026-11-24T09:00:00Z"

    private func copyExample(_ ws: Workspace) throws {
        for file in ["assistant.yaml", "request-1000-tokens.json", "request-16000-tokens.json"] {
            try ws.write(
                file, String(decoding: try Data(contentsOf: Self.example.appendingPathComponent(file)), as: UTF8.self))
        }
    }

    private func object(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test("validate accepts the example and lists every problem of a broken bundle with file and line")
    func validate() async throws {
        try await Workspace.with { ws in
            try copyExample(ws)
            let ok = try await ws.quorumctl("policy", "validate", ws.path("assistant.yaml"))
            #expect(ok.status == 0, "\(ok)")
            #expect(ok.stdout.contains("valid: version 1, 2 latches, 1 secret, digest sha256:"))

            var broken = String(decoding: try ws.read("assistant.yaml"), as: UTF8.self)
            broken = broken.replacingOccurrences(of: "window: 1m", with: "window: one minute")
            broken = broken.replacingOccurrences(of: "op: le, value: 4096", with: "op: at_most, value: 4096")
            broken = broken.replacingOccurrences(
                of: "op: eq, value: gpt-4o-mini", with: "op: equals, value: gpt-4o-mini")
            try ws.write("broken.yaml", broken)
            let bad = try await ws.quorumctl("policy", "validate", ws.path("broken.yaml"))
            #expect(bad.status == 2)
            let lines = bad.stderr.split(separator: "\n").map(String.init)
            #expect(lines.contains { $0.contains("broken.yaml:") && $0.contains("rate_limit.window") })
            #expect(lines.contains { $0.contains("broken.yaml:") && $0.contains("payload[0].op") && $0.contains("le") })
            #expect(
                lines.contains {
                    $0.contains("broken.yaml:") && $0.contains("latches[1].mounts[0].filters[0].payload[1].op")
                })
            #expect(lines.last?.contains("3 problems") == true, "\(bad.stderr)")

            // A derivation problem is reported at the child's line.
            let outlives = String(decoding: try ws.read("assistant.yaml"), as: UTF8.self).replacingOccurrences(
                of: "expires: 2027-03-31T00:00:00Z", with: "expires: 2028-01-01T00:00:00Z")
            try ws.write("outlives.yaml", outlives)
            let late = try await ws.quorumctl("policy", "validate", ws.path("outlives.yaml"))
            #expect(late.status == 2)
            let line = outlives.split(separator: "\n", omittingEmptySubsequences: false)
                .firstIndex { $0.contains("2028-01-01") }.map { $0 + 1 }
            #expect(late.stderr.contains("outlives.yaml:\(line ?? 0):"), "\(late.stderr)")
            #expect(late.stderr.contains("latches[1].expires"))
        }
    }

    @Test("eval: the seed scenario's 16,000-token call is denied naming the cap, the 1,000-token call allowed")
    func evalSeed() async throws {
        try await Workspace.with { ws in
            try copyExample(ws)
            let denied = try await ws.quorumctl(
                "policy", "eval", "--bundle", ws.path("assistant.yaml"), "--request",
                ws.path("request-16000-tokens.json"),
                "--at", Self.at)
            #expect(denied.status == 1, "\(denied)")
            let deny = try object(denied.stdout)
            #expect(deny["decision"] as? String == "deny")
            #expect((deny["reason"] as? String)?.hasPrefix("token-cap: ") == true)
            #expect(denied.stdout.hasPrefix("{\n  \"decision\": \"deny\",\n  \"reason\""))

            let allowed = try await ws.quorumctl(
                "policy", "eval", "--bundle", ws.path("assistant.yaml"), "--request",
                ws.path("request-1000-tokens.json"),
                "--at", Self.at)
            #expect(allowed.status == 0, "\(allowed)")
            let allow = try object(allowed.stdout)
            #expect(allow["decision"] as? String == "allow")
            #expect((allow["trace"] as? [[String: Any]])?.count == 13)
            #expect(!allowed.stdout.contains("BwcHBwcH"), "the token's secret must not be printed")
        }
    }

    @Test("eval --state plays a sequence: the rate window fills and denies")
    func evalState() async throws {
        try await Workspace.with { ws in
            try copyExample(ws)
            var yaml = String(decoding: try ws.read("assistant.yaml"), as: UTF8.self)
            yaml = yaml.replacingOccurrences(of: "requests: 60,", with: "requests: 2,")
            try ws.write("assistant.yaml", yaml)
            var statuses: [Int32] = []
            for _ in 0..<3 {
                let run = try await ws.quorumctl(
                    "policy", "eval", "--bundle", ws.path("assistant.yaml"), "--request",
                    ws.path("request-1000-tokens.json"), "--at", Self.at, "--state", ws.path("state.json"))
                statuses.append(run.status)
                if run.status == 1 { #expect(run.stdout.contains("2 requests per 1m reached")) }
            }
            #expect(statuses == [0, 0, 1])
            let state = try object(String(decoding: try ws.read("state.json"), as: UTF8.self))
            #expect((state["rateWindows"] as? [String: Any])?.count == 1)
        }
    }

    @Test("keygen writes a 0600 operator key; sign and eval accept the signed bundle; tampering is refused")
    func signing() async throws {
        try await Workspace.with { ws in
            try copyExample(ws)
            let keygen = try await ws.quorumctl("policy", "keygen", "--out", ws.path("operator.key"))
            try #require(keygen.status == 0, "\(keygen)")
            let publicKey = keygen.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(publicKey.count == 64)
            let mode =
                try FileManager.default.attributesOfItem(atPath: ws.path("operator.key"))[.posixPermissions] as? Int
            #expect(mode == 0o600)

            let sign = try await ws.quorumctl(
                "policy", "sign", ws.path("assistant.yaml"), "--key", ws.path("operator.key"), "--out",
                ws.path("signed.json"))
            try #require(sign.status == 0, "\(sign)")
            let eval = try await ws.quorumctl(
                "policy", "eval", "--bundle", ws.path("signed.json"), "--signer", publicKey, "--request",
                ws.path("request-1000-tokens.json"), "--at", Self.at)
            #expect(eval.status == 0, "\(eval)")

            let other = try await ws.quorumctl("policy", "keygen", "--out", ws.path("other.key"))
            let untrusted = try await ws.quorumctl(
                "policy", "validate", ws.path("signed.json"), "--signer",
                other.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(untrusted.status == 2)

            let signed = String(decoding: try ws.read("signed.json"), as: UTF8.self)
            try ws.write("tampered.json", signed.replacingOccurrences(of: "4096", with: "40960"))
            let tampered = try await ws.quorumctl("policy", "validate", ws.path("tampered.json"), "--signer", publicKey)
            #expect(tampered.status == 2)
            #expect(tampered.stderr.contains("digest"), "\(tampered.stderr)")
        }
    }

    @Test("latch create prints a token once that then authenticates; derive narrows; revoke reaches descendants")
    func latchLifecycle() async throws {
        try await Workspace.with { ws in
            try copyExample(ws)
            let bundle = ws.path("assistant.yaml")
            let create = try await ws.quorumctl(
                "latch", "create", "--bundle", bundle, "--id", "helper", "--like", "assistant", "--expires",
                "2027-01-01T00:00:00Z")
            try #require(create.status == 0, "\(create)")
            let token = create.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(token.hasPrefix("lat_helper_") && token.count == "lat_helper_".count + 43)
            #expect(!String(decoding: try ws.read("assistant.yaml"), as: UTF8.self).contains(token))

            let derive = try await ws.quorumctl(
                "latch", "derive", "--bundle", bundle, "--parent", "helper", "--id", "helper-child", "--mount",
                "/openai")
            try #require(derive.status == 0, "\(derive)")
            let childToken = derive.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

            func evaluate(_ token: String) async throws -> TestKit.ProcessOutput {
                var request = String(decoding: try ws.read("request-1000-tokens.json"), as: UTF8.self)
                request = request.replacingOccurrences(
                    of: "lat_assistant_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc", with: token)
                try ws.write("request.json", request)
                return try await ws.quorumctl(
                    "policy", "eval", "--bundle", bundle, "--request", ws.path("request.json"), "--at", Self.at)
            }
            #expect(try await evaluate(token).status == 0)
            #expect(try await evaluate(childToken).status == 0)

            let widen = try await ws.quorumctl(
                "latch", "derive", "--bundle", bundle, "--parent", "helper", "--id", "wider", "--mount", "/github")
            #expect(widen.status == 2)
            #expect(widen.stderr.contains("not a mount of the parent"))

            let revoke = try await ws.quorumctl("latch", "revoke", "--bundle", bundle, "--id", "helper")
            try #require(revoke.status == 0, "\(revoke)")
            #expect(revoke.stdout.contains("helper, helper-child") || revoke.stdout.contains("helper-child, helper"))
            let afterChild = try await evaluate(childToken)
            #expect(afterChild.status == 1)
            #expect(afterChild.stdout.contains("revoked with its ancestor 'helper'"))
            let validate = try await ws.quorumctl("policy", "validate", bundle)
            #expect(validate.stdout.contains("version 4"))

            // A token bound to a client certificate (RFC 8705) works only with that certificate.
            let certs = try await ws.quorumctl("certs", "init", "--nodes", "1", "--out", ws.path("certs"))
            try #require(certs.status == 0, "\(certs)")
            let bound = try await ws.quorumctl(
                "latch", "create", "--bundle", bundle, "--id", "bound", "--like", "assistant", "--client-certificate",
                ws.path("certs/proxy.pem"))
            try #require(bound.status == 0, "\(bound)")
            #expect(String(decoding: try ws.read("assistant.yaml"), as: UTF8.self).contains("x5t#S256"))
            let show = try await ws.quorumctl("certs", "show", ws.path("certs/proxy.pem"))
            let fingerprint = try #require(
                show.stdoutLines.first { $0.hasPrefix("sha256:") }?.split(separator: " ")
                    .last.map(String.init))
            let boundToken = bound.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let without = try await evaluate(boundToken)
            #expect(without.status == 1)
            #expect(without.stdout.contains("sender-constraint"), "\(without)")
            var request = String(decoding: try ws.read("request.json"), as: UTF8.self)
            request = request.replacingOccurrences(
                of: "\"client_address\"", with: "\"client_certificate_sha256\": \"\(fingerprint)\", \"client_address\"")
            try ws.write("request-bound.json", request)
            let with = try await ws.quorumctl(
                "policy", "eval", "--bundle", bundle, "--request", ws.path("request-bound.json"), "--at", Self.at)
            #expect(with.status == 0, "\(with)")
        }
    }
}
