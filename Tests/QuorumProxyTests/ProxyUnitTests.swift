import Foundation
import QuorumCrypto
import QuorumNode
import QuorumPolicy
import Testing

@testable import QuorumProxy

@Suite("Proxy building blocks")
struct ProxyUnitTests {
    static let openAIStream = """
        data: {"choices":[{"delta":{"content":"Hi"}}],"usage":null}

        data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46}}

        data: [DONE]


        """

    @Test("Usage in the final SSE chunk is found however the stream is split", arguments: [1, 2, 7, 64, 10_000])
    func sseUsage(_ chunkSize: Int) {
        var scanner = SSEUsageScanner()
        let bytes = Array(Self.openAIStream.utf8)
        var index = 0
        while index < bytes.count {
            scanner.feed(bytes[index..<min(index + chunkSize, bytes.count)])
            index += chunkSize
        }
        scanner.finish()
        #expect(scanner.usage == SpendUsage(inputTokens: 12, outputTokens: 34))
    }

    @Test("Anthropic's split usage (message_start, then message_delta) merges; CRLF lines are read")
    func anthropicUsage() {
        var scanner = SSEUsageScanner()
        scanner.feed(
            Array(
                "event: message_start\r\ndata: {\"message\":{\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\r\n\r\n"
                    .utf8))
        scanner.feed(Array("event: message_delta\r\ndata: {\"usage\":{\"output_tokens\":15}}\r\n\r\n".utf8))
        scanner.finish()
        #expect(scanner.usage == SpendUsage(inputTokens: 9, outputTokens: 15))
    }

    @Test("A stream or body without usage reports none")
    func noUsage() {
        var scanner = SSEUsageScanner()
        scanner.feed(Array("data: {\"choices\":[]}\n\ndata: [DONE]\n\n".utf8))
        scanner.finish()
        #expect(scanner.usage == nil)
        #expect(
            UsageExtraction.usage(inBody: Array("{\"usage\":{\"prompt_tokens\":-1}}".utf8), limits: .default) == nil)
        #expect(UsageExtraction.usage(inBody: Array("not json \"usage\"".utf8), limits: .default) == nil)
    }

    @Test("The agent's token comes from x-latch-token or Authorization: Bearer; two different tokens are refused")
    func agentToken() {
        #expect(HeaderRules.agentToken([("Authorization", "Bearer lat_a_b")]) == "lat_a_b")
        #expect(HeaderRules.agentToken([("authorization", "bearer  lat_a_b ")]) == "lat_a_b")
        #expect(HeaderRules.agentToken([("X-Latch-Token", "lat_a_b")]) == "lat_a_b")
        #expect(HeaderRules.agentToken([("x-latch-token", "lat_a_b"), ("Authorization", "Basic dTpw")]) == "lat_a_b")
        #expect(HeaderRules.agentToken([("x-latch-token", "lat_a_b"), ("Authorization", "Bearer lat_c_d")]) == nil)
        #expect(HeaderRules.agentToken([("x-latch-token", "lat_a_b"), ("x-latch-token", "lat_a_b")]) == nil)
        #expect(HeaderRules.agentToken([("Accept", "*/*")]) == "")
    }

    @Test("A query credential replaces the agent's parameter, even percent-encoded, and is percent-encoded itself")
    func queryInjection() throws {
        var headers: HeaderList = []
        var query: String? = "key=mine&ke%79=smuggled&k%65y=again&a=1"
        try CredentialInjection.inject(
            SecretBytes(Array("s3cr&t=/".utf8)), as: .query(parameter: "key"), headers: &headers, query: &query)
        #expect(query == "a=1&key=s3cr%26t%3D%2F")
        #expect(headers.isEmpty)
    }

    @Test("A credential with a line break cannot be put in a header, and the error does not quote it")
    func headerInjectionRefusesControlBytes() {
        var headers: HeaderList = []
        var query: String?
        #expect(throws: InjectionError.self) {
            try CredentialInjection.inject(
                SecretBytes(Array("abc\r\nX-Evil: 1".utf8)), as: .header(name: "x-api-key"), headers: &headers,
                query: &query)
        }
        do {
            try CredentialInjection.inject(
                SecretBytes(Array("abc\r\nX-Evil: 1".utf8)), as: .bearer, headers: &headers, query: &query)
        } catch {
            #expect(!error.description.contains("X-Evil"))
        }
    }

    @Test("Response headers lose hop-by-hop fields, what Connection names, Content-Length and the upstream's Latch-*")
    func responseHeaders() {
        let kept = HeaderRules.responseHeaders([
            ("Content-Type", "application/json"), ("Connection", "close, X-Private"), ("X-Private", "1"),
            ("Transfer-Encoding", "chunked"), ("Content-Length", "12"), ("Latch-Receipt", "forged"),
            ("Set-Cookie", "a=b"),
        ])
        #expect(kept.map(\.name) == ["Content-Type", "Set-Cookie"])
    }

    @Test("The routing view: a covered path names its mount, an uncovered one is refused, a garbled one is asked")
    func routing() throws {
        let view = RoutingView(bundle: try TestLatch.bundle(upstreamPort: 1))
        let token = TestLatch.token.text
        #expect(view.route(target: "/openai/v1/models", token: token) == .ask(mountPath: "/openai"))
        #expect(view.route(target: "/openai", token: "") == .ask(mountPath: "/openai"))
        #expect(view.route(target: "/openaix/v1", token: token) == .noMount(path: "/openaix/v1"))
        #expect(view.route(target: "/self", token: token) == .ask(mountPath: "/self"))
        #expect(view.route(target: "/openai/%2e%2e/x", token: token) == .ask(mountPath: nil))
        #expect(view.route(target: "/probe/a?b=c", token: "lat_unknown_x") == .ask(mountPath: "/probe"))
    }

    @Test("The response processor picks its mode from the obligations, content type and encoding")
    func processorModes() throws {
        let redact = ResponseObligations(redact: [try JSONPath("$.a")], trim: [], blockIf: [], maxBytes: nil)
        let cap = ResponseObligations(redact: [], trim: [], blockIf: [], maxBytes: 4)
        func mode(
            _ obligations: ResponseObligations, _ type: String?, _ encoding: String? = nil
        )
            -> ResponseProcessor.Mode
        {
            ResponseProcessor(obligations: obligations, limits: .default, contentType: type, contentEncoding: encoding)
                .mode
        }
        #expect(mode(.none, "application/json") == .passThrough)
        #expect(mode(redact, "application/json") == .buffered)
        #expect(mode(redact, "text/event-stream") == .eventStream)
        #expect(mode(cap, "application/octet-stream") == .buffered)
        guard case .blocked(let reason) = mode(redact, "application/json", "gzip") else {
            Issue.record("a gzip body under a redaction was not blocked")
            return
        }
        #expect(reason.code == .unsupportedContentType)

        var capped = ResponseProcessor(
            obligations: cap, limits: .default, contentType: "text/plain", contentEncoding: nil)
        _ = capped.feed(Array("hello".utf8))
        #expect(capped.collectedEnough)
        guard case .block(let tooLarge) = capped.finishBuffered() else {
            Issue.record("a body over max_bytes passed")
            return
        }
        #expect(tooLarge.code == .tooLarge)
    }

    @Test("Configuration: a complete file parses; unknown keys and bad signers are named")
    func configuration() throws {
        let signer = String(repeating: "ab", count: 32)
        let parsed = try ProxyConfiguration.parse(
            """
            listen = "127.0.0.1:8080"
            [bundle]
            file = "b.json"
            trusted_signers = ["\(signer)"]
            [upstream]
            read_timeout_ms = 1500
            [limits]
            decision_body_bytes = 2048
            """, file: "proxy.toml", baseDirectory: "/etc/quorum")
        #expect(parsed.bundlePath == "/etc/quorum/b.json")
        #expect(parsed.listen.port == 8080)
        #expect(parsed.upstream.readTimeout == .milliseconds(1500))
        #expect(parsed.limits.decisionBodyBytes == 2048)
        #expect(parsed.trustedSigners == [Array(repeating: 0xAB, count: 32)])

        let unknown = #expect(throws: ProxyConfigurationError.self) {
            try ProxyConfiguration.parse(
                "listen = \"127.0.0.1:1\"\nlisten_tls = 1\n", file: "p.toml", baseDirectory: "/")
        }
        #expect(unknown?.key == "listen_tls")
        let badSigner = #expect(throws: ProxyConfigurationError.self) {
            try ProxyConfiguration.parse(
                "listen = \"127.0.0.1:1\"\n[bundle]\nfile = \"b\"\ntrusted_signers = [\"zz\"]\n", file: "p.toml",
                baseDirectory: "/")
        }
        #expect(badSigner?.key == "bundle.trusted_signers[1]")
    }

    @Test("Configuration: [metrics] and [log] as quorumd reads them; the metrics port is not an agent listener's")
    func telemetryConfiguration() throws {
        let signer = String(repeating: "ab", count: 32)
        let base = """
            listen = "127.0.0.1:8080"
            [bundle]
            file = "b.json"
            trusted_signers = ["\(signer)"]
            [tls]
            listen = "0.0.0.0:8443"
            certificate = "tls.pem"
            private_key = "tls.key"

            """
        let parsed = try ProxyConfiguration.parse(
            base + "[metrics]\nlisten = \"127.0.0.1:9100\"\n[log]\nformat = \"text\"\n", file: "proxy.toml",
            baseDirectory: "/etc/quorum")
        #expect(parsed.telemetry.metricsListen == NodeAddress(host: "127.0.0.1", port: 9100))
        #expect(parsed.telemetry.logFormat == .text)
        #expect(try ProxyConfiguration.parse(base, file: "p.toml", baseDirectory: "/").telemetry == TelemetrySettings())

        for (table, key, hint) in [
            ("[metrics]\nlisten = \"127.0.0.1:8443\"\n", "metrics.listen", "is also tls.listen (0.0.0.0:8443)"),
            ("[metrics]\nlisten = \"127.0.0.1:8080\"\n", "metrics.listen", "is also listen (127.0.0.1:8080)"),
            ("[log]\nformat = \"JSON\"\n", "log.format", "'JSON' is not a log format"),
        ] {
            let refused = #expect(throws: ProxyConfigurationError.self) {
                try ProxyConfiguration.parse(base + table, file: "p.toml", baseDirectory: "/")
            }
            #expect(refused?.key == key, "\(String(describing: refused))")
            #expect(refused?.description.contains(hint) == true, "\(String(describing: refused))")
        }
    }

    @Test("Configuration: [cluster] names the quorum; the bundle file becomes optional and data_dir required")
    func clusterConfiguration() throws {
        let signer = String(repeating: "ab", count: 32)
        let cluster = """
            [cluster]
            nodes = "cluster.toml"
            certificate = "certs/proxy.pem"
            private_key = "certs/proxy.key"
            cluster_ca = "certs/ca.pem"
            group = "group.json"
            sealing_group = "sealing-group.json"
            decision_timeout_ms = 1500
            [bundle]
            trusted_signers = ["\(signer)"]
            refresh_ms = 250
            """
        let parsed = try ProxyConfiguration.parse(
            "listen = \"127.0.0.1:8080\"\ndata_dir = \"proxy-data\"\n" + cluster, file: "proxy.toml",
            baseDirectory: "/etc/quorum")
        #expect(parsed.bundlePath == nil)
        #expect(parsed.dataDirectory == "/etc/quorum/proxy-data")
        #expect(parsed.cluster?.nodesFile == "/etc/quorum/cluster.toml")
        #expect(parsed.cluster?.sealingGroup == "/etc/quorum/sealing-group.json")
        #expect(parsed.cluster?.decisionTimeout == .milliseconds(1500))
        #expect(parsed.bundleRefresh == .milliseconds(250))

        let noDataDirectory = #expect(throws: ProxyConfigurationError.self) {
            try ProxyConfiguration.parse("listen = \"127.0.0.1:1\"\n" + cluster, file: "p.toml", baseDirectory: "/")
        }
        #expect(noDataDirectory?.key == "data_dir")
        let missingGroup = #expect(throws: ProxyConfigurationError.self) {
            try ProxyConfiguration.parse(
                "listen = \"127.0.0.1:1\"\ndata_dir = \"d\"\n"
                    + cluster.replacingOccurrences(of: "group = \"group.json\"\n", with: ""),
                file: "p.toml", baseDirectory: "/")
        }
        #expect(missingGroup?.key == "cluster.group")
        let noBundle = #expect(throws: ProxyConfigurationError.self) {
            try ProxyConfiguration.parse(
                "listen = \"127.0.0.1:1\"\n[bundle]\ntrusted_signers = [\"\(signer)\"]\n", file: "p.toml",
                baseDirectory: "/")
        }
        #expect(noBundle?.key == "bundle.file", "without [cluster] the bundle file is required")

        #expect(parsed.cluster?.signerBudget == nil)
        #expect(parsed.cluster?.effectiveSignerBudget == .milliseconds(500), "a third of the decision timeout")
        let budgeted = try ProxyConfiguration.parse(
            "listen = \"127.0.0.1:8080\"\ndata_dir = \"d\"\n"
                + cluster.replacingOccurrences(
                    of: "decision_timeout_ms = 1500", with: "decision_timeout_ms = 1500\nsigner_budget_ms = 300"),
            file: "p.toml", baseDirectory: "/")
        #expect(budgeted.cluster?.effectiveSignerBudget == .milliseconds(300))
        let tooLong = #expect(throws: ProxyConfigurationError.self) {
            try ProxyConfiguration.parse(
                "listen = \"127.0.0.1:1\"\ndata_dir = \"d\"\n"
                    + cluster.replacingOccurrences(
                        of: "decision_timeout_ms = 1500", with: "decision_timeout_ms = 1500\nsigner_budget_ms = 1500"),
                file: "p.toml", baseDirectory: "/")
        }
        #expect(tooLong?.key == "cluster.signer_budget_ms")
        #expect(tooLong?.reason.contains("not below decision_timeout_ms") == true, "\(String(describing: tooLong))")
    }

    @Test("Configuration: [tls] adds the HTTPS listener; its keys are required and unknown ones named")
    func tlsConfiguration() throws {
        let base = """
            listen = "127.0.0.1:8080"
            [bundle]
            file = "b.json"
            trusted_signers = ["\(String(repeating: "ab", count: 32))"]

            """
        let plain = try ProxyConfiguration.parse(base, file: "p.toml", baseDirectory: "/etc/quorum")
        #expect(plain.tls == nil)
        let parsed = try ProxyConfiguration.parse(
            base
                + "[tls]\nlisten = \"0.0.0.0:8443\"\ncertificate = \"tls/proxy.pem\"\nprivate_key = \"tls/proxy.key\"\n",
            file: "p.toml", baseDirectory: "/etc/quorum")
        #expect(parsed.tls?.listen == NodeAddress(host: "0.0.0.0", port: 8443))
        #expect(parsed.tls?.certificate == "/etc/quorum/tls/proxy.pem")
        #expect(parsed.tls?.privateKey == "/etc/quorum/tls/proxy.key")
        let missingKey = #expect(throws: ProxyConfigurationError.self) {
            try ProxyConfiguration.parse(
                base + "[tls]\nlisten = \"0.0.0.0:8443\"\ncertificate = \"c.pem\"\n", file: "p.toml", baseDirectory: "/"
            )
        }
        #expect(missingKey?.key == "tls.private_key")
        let unknown = #expect(throws: ProxyConfigurationError.self) {
            try ProxyConfiguration.parse(
                base
                    + "[tls]\nlisten = \"0.0.0.0:8443\"\ncertificate = \"c\"\nprivate_key = \"k\"\nclient_ca = \"x\"\n",
                file: "p.toml", baseDirectory: "/")
        }
        #expect(unknown?.key == "tls.client_ca")
    }

    @Test("Server-Timing durations are milliseconds with three decimals, never negative")
    func serverTimingFormat() {
        #expect(ServerTiming.milliseconds(.microseconds(1234)) == "1.234")
        #expect(ServerTiming.milliseconds(.zero) == "0.000")
        #expect(ServerTiming.milliseconds(.seconds(2) + .microseconds(5)) == "2000.005")
        #expect(ServerTiming.milliseconds(.nanoseconds(999)) == "0.000")
        #expect(ServerTiming.milliseconds(.milliseconds(-3)) == "0.000")
        var timing = ServerTiming(
            decision: DecisionTimings(verdict: .microseconds(1500), signing: .zero, credential: .microseconds(20)))
        timing.add("upstream", .milliseconds(3))
        #expect(
            timing.headerValue == "verdict;dur=1.500, signing;dur=0.000, credential;dur=0.020, upstream;dur=3.000")
        #expect(
            ServerTiming(decision: DecisionTimings(verdict: .zero)).headerValue
                == "verdict;dur=0.000, signing;dur=0.000")
    }
}
