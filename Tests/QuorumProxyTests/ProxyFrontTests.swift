import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import QuorumCrypto
import QuorumIdentity
import QuorumNode
import QuorumPolicy
import QuorumTestKit
import Testing

@testable import QuorumProxy

/// The proxy's HTTP side against a real demo upstream on loopback, with a fixed-decision
/// authorizer standing in for the quorum.
@Suite("Proxy front and forwarding", .serialized, .timeLimit(.minutes(2)))
struct ProxyFrontTests {
    @Test("An allow forwards with the credential injected, and Latch-Receipt and Latch-Request-Id reach the agent")
    func allowForwards() async throws {
        try await ProxyHarness.with(decide: { call, context in
            allow(call, upstream: context.upstream, recorder: context.recorder, receipt: "hdr.claims.sig")
        }) { proxy in
            let answer = try await proxy.send(.GET, "/openai/v1/models")
            #expect(answer.status == 200)
            let models = try json(answer.body)
            #expect(models["data"] != nil)
            #expect(answer.headers.first(name: "Latch-Receipt") == "hdr.claims.sig")
            let requestID = try #require(answer.headers.first(name: "Latch-Request-Id"))
            #expect(requestID.hasPrefix("req_") && requestID.count == 36)

            let call = try #require(proxy.recorder.calls.first)
            #expect(call.mountPath == "/openai")
            #expect(call.decisionRequest.requestID == requestID)
            #expect(call.decisionRequest.method == "GET")
            #expect(call.decisionRequest.target == "/openai/v1/models")
            #expect(call.decisionRequest.token == TestLatch.token.text)
            #expect(call.decisionRequest.clientAddress == "127.0.0.1")
            #expect(call.decisionRequest.headerValues("authorization").isEmpty)
            #expect(try await proxy.recorder.waitForSettlements(1).count == 1)
        }
    }

    @Test("Without the credential the demo upstream refuses: the proxy forwards exactly what the allow says")
    func noCredentialIsRefusedUpstream() async throws {
        try await ProxyHarness.with(decide: { call, context in
            allow(call, upstream: context.upstream, credential: nil, recorder: context.recorder)
        }) { proxy in
            let answer = try await proxy.send(.GET, "/openai/v1/models")
            #expect(answer.status == 401)
            #expect(answer.body.contains("invalid_api_key"))
        }
    }

    static let injections: [(SecretSpec.Injection, String)] = [
        (.bearer, "bearer"), (.header(name: "x-api-key"), "header"), (.query(parameter: "key"), "query"),
        (.basic(username: "svc"), "basic"),
    ]

    @Test("The credential is injected as its secret says, replacing what the agent sent", arguments: injections)
    func injection(_ injection: SecretSpec.Injection, _ name: String) async throws {
        try await ProxyHarness.with(decide: { call, context in
            allow(call, upstream: context.upstream + "/echo", injection: injection, recorder: context.recorder)
        }) { proxy in
            let answer = try await proxy.send(
                .GET, "/probe/check?key=agent&ke%79=sneaky&other=1", headers: [("x-api-key", "agent-value")])
            #expect(answer.status == 200)
            let echo = try json(answer.body)
            #expect(echo["path"]?.stringValue == "/echo/check")
            let headers = echoedHeaders(echo)
            let values = { (wanted: String) in headers.filter { $0.name.lowercased() == wanted }.map(\.value) }
            switch injection {
            case .bearer:
                #expect(values("authorization") == ["Bearer <api-key>"])
                #expect(values("x-api-key") == ["agent-value"])
            case .header:
                #expect(values("x-api-key") == ["<api-key>"])
                #expect(values("authorization").isEmpty)
            case .query:
                #expect(echo["query"]?.stringValue == "other=1&key=<api-key>")
                #expect(values("authorization").isEmpty)
            case .basic:
                #expect(values("authorization") == ["Basic svc:<api-key>"])
            }
            #expect(!answer.body.contains(demoKey))
        }
    }

    @Test("The agent's token and hop-by-hop headers never reach the upstream; forwarding headers are set")
    func headersUpstream() async throws {
        try await ProxyHarness.with(decide: { call, context in
            allow(
                call, upstream: context.upstream + "/echo", credential: nil, recorder: context.recorder,
                receipt: "r.e.c")
        }) { proxy in
            let answer = try await proxy.send(
                .POST, "/probe/headers", token: nil,
                headers: [
                    ("x-latch-token", TestLatch.token.text), ("Keep-Alive", "timeout=5"),
                    ("Proxy-Authorization", "Basic cHJveHk6cGFzcw=="), ("TE", "trailers"), ("X-Hop", "1"),
                    ("Connection", "X-Hop"), ("X-Forwarded-For", "10.9.8.7"), ("X-Kept", "yes"),
                    ("Cookie", "session=abc"), ("Latch-Receipt", "forged"),
                ],
                body: "{\"a\":1}")
            #expect(answer.status == 200)
            let echo = try json(answer.body)
            let headers = echoedHeaders(echo)
            let names = Set(headers.map { $0.name.lowercased() })
            for forbidden in ["x-latch-token", "authorization", "keep-alive", "proxy-authorization", "te", "x-hop"] {
                #expect(!names.contains(forbidden), "\(forbidden) reached the upstream")
            }
            #expect(!answer.body.contains(TestLatch.token.text))
            let value = { (wanted: String) in headers.filter { $0.name.lowercased() == wanted }.map(\.value) }
            #expect(value("host") == ["127.0.0.1:\(proxy.upstreamPort)"])
            #expect(value("x-forwarded-for") == ["10.9.8.7, 127.0.0.1"])
            #expect(value("x-forwarded-proto") == ["http"])
            #expect(value("x-forwarded-host") == ["127.0.0.1:\(proxy.proxyPort)"])
            #expect(value("latch-receipt") == ["r.e.c"])
            #expect(value("x-kept") == ["yes"])
            #expect(value("cookie") == ["session=abc"])
            #expect(value("accept-encoding") == ["identity"])
            #expect(echo["body_length"] == .number(JSONNumber(7)))

            let call = try #require(proxy.recorder.calls.first)
            let decisionNames = Set(call.decisionRequest.headers.map { $0.name.lowercased() })
            for hidden in ["x-latch-token", "cookie", "x-hop", "keep-alive", "te", "proxy-authorization"] {
                #expect(!decisionNames.contains(hidden), "\(hidden) was sent to the nodes")
            }
            #expect(decisionNames.contains("x-kept"))
            #expect(call.decisionRequest.body == Array("{\"a\":1}".utf8))
            #expect(call.decisionRequest.hasCompleteBody)
        }
    }

    /// An HTTPS client trusting `harness`'s CA, presenting `<stem>.pem` when a stem is given.
    static func tlsClient(_ harness: ProxyHarness, presenting stem: String?) throws -> HTTPClient {
        let directory = try #require(harness.certificates)
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(directory + "/ca.pem"))
        if let stem {
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(directory + "/\(stem).pem").map {
                .certificate($0)
            }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: directory + "/\(stem).key", format: .pem))
        }
        return HTTPClient(
            eventLoopGroup: HTTPClient.defaultEventLoopGroup,
            configuration: HTTPClient.Configuration(tlsConfiguration: tls))
    }

    @Test(
        "The HTTPS listener passes the SHA-256 of the presented client certificate to the decision, none without one, and forwards with X-Forwarded-Proto: https"
    )
    func tlsListener() async throws {
        try await ProxyHarness.with(tls: true) { call, context in
            allow(call, upstream: context.upstream + "/echo", credential: nil, recorder: context.recorder)
        } _: { proxy in
            let presenting = try Self.tlsClient(proxy, presenting: "node-1")
            let other = try Self.tlsClient(proxy, presenting: "operator")
            let anonymous = try Self.tlsClient(proxy, presenting: nil)
            do { try await Self.checkTLS(proxy, presenting, other, anonymous) } catch {
                for client in [presenting, other, anonymous] { try? await client.shutdown() }
                throw error
            }
            for client in [presenting, other, anonymous] { try await client.shutdown() }
        }
    }

    static func checkTLS(
        _ proxy: ProxyHarness, _ presenting: HTTPClient, _ other: HTTPClient, _ anonymous: HTTPClient
    ) async throws {
        let directory = try #require(proxy.certificates)
        let expected = sha256Digest(try NIOSSLCertificate.fromPEMFile(directory + "/node-1.pem")[0].toDERBytes())
        let otherExpected = sha256Digest(
            try NIOSSLCertificate.fromPEMFile(directory + "/operator.pem")[0].toDERBytes())

        let answer = try await proxy.send(.GET, "/probe/tls", client: presenting, base: proxy.tlsURL)
        #expect(answer.status == 200, "\(answer.body)")
        let forwarded = echoedHeaders(try json(answer.body)).filter { $0.name.lowercased() == "x-forwarded-proto" }
        #expect(forwarded.map(\.value) == ["https"])
        #expect(proxy.recorder.calls.last?.decisionRequest.clientCertificateSHA256 == expected)

        _ = try await proxy.send(.GET, "/probe/tls", client: other, base: proxy.tlsURL)
        #expect(proxy.recorder.calls.last?.decisionRequest.clientCertificateSHA256 == otherExpected)

        let withoutCertificate = try await proxy.send(.GET, "/probe/tls", client: anonymous, base: proxy.tlsURL)
        #expect(withoutCertificate.status == 200)
        #expect(proxy.recorder.calls.count == 3)
        #expect(proxy.recorder.calls.last?.decisionRequest.clientCertificateSHA256 == nil)

        let plain = try await proxy.send(.GET, "/probe/tls")
        #expect(plain.status == 200)
        #expect(proxy.recorder.calls.last?.decisionRequest.clientCertificateSHA256 == nil)
        let plainProto = echoedHeaders(try json(plain.body)).filter { $0.name.lowercased() == "x-forwarded-proto" }
        #expect(plainProto.map(\.value) == ["http"])
    }

    @Test("A [tls] key that does not belong to its certificate is refused when the listeners are built, naming it")
    func tlsKeyMismatch() async throws {
        let directory = try TestKit.temporaryDirectory("proxy-tls-mismatch").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try CertificateFiles.initialize(
            CertificateDirectory(directory), plan: ClusterCertificatesPlan(nodes: 1), force: true)
        var configuration = ProxyConfiguration(
            file: "proxy.toml", listen: NodeAddress(host: "127.0.0.1", port: 0), bundlePath: "", trustedSigners: [])
        configuration.tls = AgentTLSSettings(
            listen: NodeAddress(host: "127.0.0.1", port: 0), certificate: directory + "/proxy.pem",
            privateKey: directory + "/node-1.key")
        let runtime = ProxyRuntime(
            configuration: configuration, routing: RoutingTable(.empty), authorizer: UnavailableAuthorizer(),
            logger: Logger(label: "test"))
        let error = #expect(throws: ProxyConfigurationError.self) { _ = try runtime.services() }
        #expect(error?.key == "tls.private_key")
        #expect(error?.description.contains("node-1.key") == true, "\(String(describing: error))")
        configuration.tls?.privateKey = directory + "/missing.key"
        let second = ProxyRuntime(
            configuration: configuration, routing: RoutingTable(.empty), authorizer: UnavailableAuthorizer(),
            logger: Logger(label: "test"))
        let missing = #expect(throws: ProxyConfigurationError.self) { _ = try second.services() }
        #expect(missing?.description.contains("missing.key") == true, "\(String(describing: missing))")
        try await runtime.client.shutdown()
        try await second.client.shutdown()
    }

    @Test(
        "Server-Timing on every answer after asking: verdict, signing, upstream and total on a forwarded call; no upstream on a deny; none on a 404"
    )
    func serverTiming() async throws {
        try await ProxyHarness.with(decide: { call, context in
            if call.decisionRequest.target.hasSuffix("/denied") {
                return .deny(
                    DeniedCall(receipt: nil, reasons: [NodeReason(node: 1, decision: "deny", reason: "x: no")]))
            }
            return allow(call, upstream: context.upstream, recorder: context.recorder)
        }) { proxy in
            func metrics(_ headers: HTTPHeaders) -> [String] {
                (headers.first(name: "Server-Timing") ?? "").split(separator: ",").map {
                    String($0.split(separator: ";")[0]).trimmingCharacters(in: .whitespaces)
                }
            }
            let allowed = try await proxy.send(.GET, "/openai/v1/models")
            #expect(allowed.status == 200)
            #expect(metrics(allowed.headers) == ["verdict", "signing", "upstream", "total"])
            let denied = try await proxy.send(.GET, "/openai/denied")
            #expect(denied.status == 403)
            #expect(metrics(denied.headers) == ["verdict", "signing", "total"])
            let noMount = try await proxy.send(.GET, "/elsewhere")
            #expect(noMount.status == 404)
            #expect(noMount.headers.first(name: "Server-Timing") == nil, "nothing was asked")
        }
    }

    @Test("A deny is 403 with each node's reason and the deny receipt; nothing is forwarded")
    func deny() async throws {
        try await ProxyHarness.with(decide: { _, _ in
            .deny(
                DeniedCall(
                    receipt: "deny.receipt.sig",
                    reasons: [
                        NodeReason(node: 1, decision: "deny", reason: "method: POST is not allowed"),
                        NodeReason(node: 2, decision: "deny", reason: "method: POST is not allowed"),
                        NodeReason(node: 3, decision: "allow", reason: ""),
                    ]))
        }) { proxy in
            let answer = try await proxy.send(.POST, "/probe/x", body: "{}")
            #expect(answer.status == 403)
            #expect(answer.headers.first(name: "content-type") == "application/json")
            #expect(answer.headers.first(name: "Latch-Receipt") == "deny.receipt.sig")
            let body = try json(answer.body)
            #expect(body["error"]?.stringValue == "denied")
            #expect(body["request_id"]?.stringValue == answer.headers.first(name: "Latch-Request-Id"))
            #expect(body["receipt"]?.stringValue == "deny.receipt.sig")
            guard case .array(let reasons)? = body["reasons"] else {
                Issue.record("no reasons array")
                return
            }
            #expect(reasons.count == 3)
            #expect(reasons.first?["reason"]?.stringValue == "method: POST is not allowed")
            #expect(reasons.first?["node"] == .number(JSONNumber(1)))
            #expect(reasons.last?["decision"]?.stringValue == "allow")
        }
    }

    @Test("A token every node refuses is 401 with the deny receipt")
    func authenticationDeny() async throws {
        try await ProxyHarness.with(decide: { _, _ in
            .deny(
                DeniedCall(
                    receipt: "deny.r.s",
                    reasons: (1...3).map {
                        NodeReason(node: $0, decision: "deny", reason: "authentication: malformed latch token")
                    }))
        }) { proxy in
            let answer = try await proxy.send(.GET, "/openai/v1/models", token: "lat_garbled")
            #expect(answer.status == 401)
            #expect(try json(answer.body)["error"]?.stringValue == "denied")
            #expect(proxy.recorder.calls.first?.decisionRequest.token == "lat_garbled")
        }
    }

    @Test("Fewer than k answers is 503 with the reason")
    func unavailable() async throws {
        try await ProxyHarness.with(decide: { _, _ in .unavailable(reason: "2 of 4 nodes answered; 3 needed") }) {
            proxy in
            let answer = try await proxy.send(.GET, "/openai/v1/models")
            #expect(answer.status == 503)
            let body = try json(answer.body)
            #expect(body["error"]?.stringValue == "unavailable")
            #expect(body["reason"]?.stringValue == "2 of 4 nodes answered; 3 needed")
        }
    }

    @Test("No mount is 404 and no token is 401, without asking the quorum; a garbled path is asked about")
    func refusedLocally() async throws {
        try await ProxyHarness.with(decide: { _, _ in .unavailable(reason: "asked") }) { proxy in
            let unknown = try await proxy.send(.GET, "/nowhere/v1")
            #expect(unknown.status == 404)
            #expect(try json(unknown.body)["error"]?.stringValue == "no_mount")
            let missing = try await proxy.send(.GET, "/openai/v1/models", token: nil)
            #expect(missing.status == 401)
            #expect(missing.headers.first(name: "www-authenticate") == "Bearer")
            #expect(proxy.recorder.calls.isEmpty)
            let ambiguous = try await proxy.send(.GET, "/openai/%2e%2e/admin")
            #expect(ambiguous.status == 503)
            #expect(proxy.recorder.calls.count == 1)
            #expect(proxy.recorder.calls.first?.mountPath == nil)
        }
    }

    @Test("Usage in a JSON answer is passed to settle")
    func usageFromJSON() async throws {
        try await ProxyHarness.with(decide: { call, context in
            allow(call, upstream: context.upstream, recorder: context.recorder)
        }) { proxy in
            let answer = try await proxy.send(
                .POST, "/openai/v1/chat/completions", headers: [("Content-Type", "application/json")],
                body: #"{"model":"demo-small","messages":[{"role":"user","content":"one two three"}]}"#)
            #expect(answer.status == 200)
            #expect(try json(answer.body)["choices"]?.kind == .array)
            let settled = try await proxy.recorder.waitForSettlements(1)
            #expect(settled == [SpendUsage(inputTokens: 3, outputTokens: 4)])
        }
    }

    @Test("Server-sent events stream through chunk by chunk, and the final usage chunk settles")
    func streaming() async throws {
        try await ProxyHarness.with(decide: { call, context in
            allow(call, upstream: context.upstream, recorder: context.recorder)
        }) { proxy in
            var request = HTTPClientRequest(url: proxy.proxyURL + "/openai/v1/chat/completions")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer " + TestLatch.token.text)
            request.headers.add(name: "X-Demo-Chunk-Delay-Ms", value: "200")
            request.body = .bytes(
                ByteBuffer(
                    string:
                        #"{"model":"demo-small","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"a b c d"}]}"#
                ))
            let start = Date()
            let response = try await proxy.client.execute(request, timeout: .seconds(30))
            #expect(response.status == .ok)
            #expect(response.headers.first(name: "content-type") == "text/event-stream")
            #expect(response.headers.first(name: "Latch-Receipt") != nil)
            var firstEventAt: Date?
            var text = ""
            for try await chunk in response.body {
                let piece = String(buffer: chunk)
                if firstEventAt == nil, piece.contains("data: ") { firstEventAt = Date() }
                text += piece
            }
            let end = Date()
            // 9 events 200 ms apart: the first must arrive long before the upstream sent the last.
            let first = try #require(firstEventAt)
            #expect(end.timeIntervalSince(first) > 1.0, "the first event arrived only at the end: buffered")
            #expect(first.timeIntervalSince(start) < 1.0)
            #expect(text.hasSuffix("data: [DONE]\n\n"))
            #expect(text.contains(#""content":" d""#))
            let settled = try await proxy.recorder.waitForSettlements(1)
            #expect(settled == [SpendUsage(inputTokens: 4, outputTokens: 5)])
        }
    }

    @Test("A stream the upstream cuts midway settles with nil")
    func streamCut() async throws {
        try await ProxyHarness.with(decide: { call, context in
            allow(call, upstream: context.upstream, recorder: context.recorder)
        }) { proxy in
            var request = HTTPClientRequest(url: proxy.proxyURL + "/openai/v1/chat/completions")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer " + TestLatch.token.text)
            request.headers.add(name: "X-Demo-Cut-After", value: "2")
            request.body = .bytes(
                ByteBuffer(
                    string:
                        #"{"model":"demo-small","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"a b c d"}]}"#
                ))
            let response = try await proxy.client.execute(request, timeout: .seconds(30))
            var text = ""
            do {
                for try await chunk in response.body { text += String(buffer: chunk) }
            } catch {
                // The proxy ends the agent's response abruptly too: expected.
            }
            #expect(!text.contains("[DONE]"))
            let settled = try await proxy.recorder.waitForSettlements(1)
            #expect(settled.count == 1)
            #expect(settled.first == .some(nil))
        }
    }

    @Test("Response obligations: a JSON answer is redacted, and usage still comes from the original")
    func redaction() async throws {
        let obligations = ResponseObligations(
            redact: [try JSONPath("$.choices[*].message.content")], trim: [try JSONPath("$.id")], blockIf: [],
            maxBytes: nil)
        try await ProxyHarness.with(decide: { call, context in
            allow(call, upstream: context.upstream, obligations: obligations, recorder: context.recorder)
        }) { proxy in
            let answer = try await proxy.send(
                .POST, "/openai/v1/chat/completions",
                body: #"{"model":"demo-small","messages":[{"role":"user","content":"my secret plan"}]}"#)
            #expect(answer.status == 200)
            let body = try json(answer.body)
            guard case .array(let choices)? = body["choices"] else {
                Issue.record("no choices")
                return
            }
            #expect(choices.first?["message"]?["content"]?.stringValue == "[REDACTED]")
            #expect(body["id"] == nil)
            #expect(!answer.body.contains("secret plan"))
            #expect(try await proxy.recorder.waitForSettlements(1) == [SpendUsage(inputTokens: 3, outputTokens: 4)])
        }
    }

    @Test("A block rule cuts an event stream with the final error event and settles with nil")
    func streamBlocked() async throws {
        let rule = try PayloadRule(
            "$.choices[*].delta.content", op: .contains, operand: .string("secret"), quantifier: .any)
        let obligations = ResponseObligations(redact: [], trim: [], blockIf: [rule], maxBytes: nil)
        try await ProxyHarness.with(decide: { call, context in
            allow(call, upstream: context.upstream, obligations: obligations, recorder: context.recorder)
        }) { proxy in
            let answer = try await proxy.send(
                .POST, "/openai/v1/chat/completions",
                body: #"{"model":"demo-small","stream":true,"messages":[{"role":"user","content":"the secret word"}]}"#)
            #expect(answer.status == 200)
            #expect(answer.body.contains(#""content":" the""#))
            #expect(!answer.body.contains(#""content":" secret""#))
            #expect(answer.body.hasSuffix("\n\n"))
            #expect(answer.body.contains("event: error\ndata: {\"error\":{\"type\":\"quorum_latch_response_blocked\""))
            #expect(!answer.body.contains("[DONE]"))
            #expect(try await proxy.recorder.waitForSettlements(1) == [nil])
        }
    }

    @Test("A blocked JSON answer is 502 with the block reason; the upstream's body is not sent")
    func bodyBlocked() async throws {
        let rule = try PayloadRule(
            "$.choices[*].message.content", op: .contains, operand: .string("secret"), quantifier: .any)
        let obligations = ResponseObligations(redact: [], trim: [], blockIf: [rule], maxBytes: nil)
        try await ProxyHarness.with(decide: { call, context in
            allow(call, upstream: context.upstream, obligations: obligations, recorder: context.recorder)
        }) { proxy in
            let answer = try await proxy.send(
                .POST, "/openai/v1/chat/completions",
                body: #"{"model":"demo-small","messages":[{"role":"user","content":"the secret word"}]}"#)
            #expect(answer.status == 502)
            let error = try json(answer.body)["error"]
            #expect(error?["type"]?.stringValue == "quorum_latch_response_blocked")
            #expect(error?["code"]?.stringValue == "block_rule")
            #expect(!answer.body.contains("the secret word"))
        }
    }

    @Test("An unreachable upstream is 502 naming no secret; the credential never reaches the proxy's logs")
    func upstreamDownAndLogs() async throws {
        let closedPort = try await ProxyFrontTests.closedPort()
        var upstream = UpstreamConfiguration()
        upstream.connectTimeout = .milliseconds(500)
        try await ProxyHarness.with(
            upstream: upstream,
            decide: { call, context in
                if call.decisionRequest.target.hasPrefix("/probe") {
                    return allow(
                        call, upstream: "http://127.0.0.1:\(closedPort)", injection: .query(parameter: "key"),
                        recorder: context.recorder)
                }
                return allow(call, upstream: context.upstream, recorder: context.recorder)
            }
        ) { proxy in
            let down = try await proxy.send(.GET, "/probe/x?y=1")
            #expect(down.status == 502)
            let body = try json(down.body)
            #expect(body["error"]?.stringValue == "upstream_unavailable")
            #expect(!down.body.contains(demoKey))
            let up = try await proxy.send(.GET, "/openai/v1/models")
            #expect(up.status == 200)
            let streamed = try await proxy.send(
                .POST, "/openai/v1/chat/completions",
                body: #"{"model":"demo-small","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
            #expect(streamed.status == 200)
            _ = try await proxy.recorder.waitForSettlements(3)
            let logs = proxy.logs.text
            #expect(logs.contains("allowed"), "the capture saw the proxy's log lines")
            #expect(!logs.contains(demoKey))
            #expect(!logs.contains(CredentialInjection.percentEncode(Array(demoKey.utf8))))
            #expect(!logs.contains(TestLatch.token.text))
        }
    }

    @Test("A body longer than the decision limit is described by its prefix and full length, and forwarded whole")
    func largeBody() async throws {
        var limits = RequestLimits()
        limits.decisionBodyBytes = 16
        try await ProxyHarness.with(
            limits: limits,
            decide: { call, context in
                allow(call, upstream: context.upstream + "/echo", credential: nil, recorder: context.recorder)
            }
        ) { proxy in
            let payload = String(repeating: "x", count: 100_000)
            let answer = try await proxy.send(.POST, "/probe/upload", body: payload)
            #expect(answer.status == 200)
            #expect(try json(answer.body)["body_length"] == .number(JSONNumber(100_000)))
            let request = try #require(proxy.recorder.calls.first).decisionRequest
            #expect(request.body.count == 16)
            #expect(request.bodyLength == 100_000)
            #expect(!request.hasCompleteBody)
        }
    }

    /// A loopback port nothing listens on.
    static func closedPort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(channel.localAddress?.port)
        try await channel.close()
        return port
    }
}
