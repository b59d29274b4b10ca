import AsyncHTTPClient
import Foundation
import NIOCore
import QuorumCrypto
import QuorumPolicy
import QuorumTestKit
import Testing

@testable import QuorumProxy

/// The `quorum-proxy` executable as a process, and the official OpenAI Python client against the
/// proxy.
@Suite("quorum-proxy processes and clients", .serialized, .timeLimit(.minutes(3)))
struct ProxyProcessTests {
    static let binary = TestKit.executable("quorum-proxy")

    /// Waits for a `--ready-file` to hold a port.
    static func readyPort(_ path: String, process: TestKit.LaunchedProcess) async throws -> Int {
        for _ in 0..<300 {
            if let text = try? String(contentsOfFile: path, encoding: .utf8),
                let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                return port
            }
            try #require(process.process.isRunning, "quorum-proxy exited before it listened")
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("no port in \(path) after 15 s")
        throw CancellationError()
    }

    /// SIGTERM, then the exit status (or nil after 10 s, when it is killed).
    static func stop(_ child: TestKit.LaunchedProcess) async -> Int32? {
        child.process.terminate()
        for _ in 0..<200 {
            if !child.process.isRunning { return child.process.terminationStatus }
            try? await Task.sleep(for: .milliseconds(50))
        }
        kill(child.process.processIdentifier, SIGKILL)
        return nil
    }

    static func get(_ client: HTTPClient, _ url: String, bearer: String? = nil) async throws -> (Int, String) {
        var request = HTTPClientRequest(url: url)
        if let bearer { request.headers.add(name: "Authorization", value: "Bearer " + bearer) }
        let response = try await client.execute(request, timeout: .seconds(10))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
    }

    @Test("demo-upstream serves the OpenAI-shaped API with its key, refuses without it, and stops on SIGTERM")
    func demoUpstreamProcess() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path), "no quorum-proxy built")
        let directory = try TestKit.temporaryDirectory("quorum-proxy-test")
        defer { try? FileManager.default.removeItem(at: directory) }
        let keyFile = directory.appendingPathComponent("key").path
        try Data("\(demoKey)\n".utf8).write(to: URL(fileURLWithPath: keyFile))
        let ready = directory.appendingPathComponent("port").path
        let child = try TestKit.launch(
            Self.binary, ["demo-upstream", "--listen", "127.0.0.1:0", "--api-key-file", keyFile, "--ready-file", ready])
        let port = try await Self.readyPort(ready, process: child)
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        do {
            let refused = try await Self.get(client, "http://127.0.0.1:\(port)/v1/models")
            #expect(refused.0 == 401)
            let wrong = try await Self.get(client, "http://127.0.0.1:\(port)/v1/models", bearer: "sk-wrong")
            #expect(wrong.0 == 401)
            let models = try await Self.get(client, "http://127.0.0.1:\(port)/v1/models", bearer: demoKey)
            #expect(models.0 == 200)
            #expect(models.1.contains("demo-small"))

            // Its health check (--url) takes any HTTP answer; as a proxy's (--config) it is not one.
            let healthy = try await TestKit.run(
                Self.binary, ["health", "--url", "http://127.0.0.1:\(port)/v1/models"], timeout: .seconds(30))
            #expect(healthy.status == 0, "\(healthy)")
            #expect(healthy.stdout == "GET http://127.0.0.1:\(port)/v1/models: HTTP 401; healthy\n", "\(healthy)")
            let notProxy = directory.appendingPathComponent("not-proxy.toml").path
            let signer = String(repeating: "ab", count: 32)
            try Data(
                """
                listen = "127.0.0.1:\(port)"
                [bundle]
                file = "b.json"
                trusted_signers = ["\(signer)"]
                """.utf8
            ).write(to: URL(fileURLWithPath: notProxy))
            let impostor = try await TestKit.run(Self.binary, ["health", "--config", notProxy], timeout: .seconds(30))
            #expect(impostor.status == 1, "\(impostor)")
            #expect(impostor.stderr.contains("without Latch-Request-Id"), "\(impostor)")
        } catch {
            try? await client.shutdown()
            _ = await Self.stop(child)
            throw error
        }
        try await client.shutdown()
        #expect(await Self.stop(child) == 0)
    }

    @Test("quorum-proxy run: routes by a signed bundle, answers 503 without a decision, is healthy, stops on SIGTERM")
    func proxyProcessFailsClosed() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path), "no quorum-proxy built")
        let directory = try TestKit.temporaryDirectory("quorum-proxy-test")
        defer { try? FileManager.default.removeItem(at: directory) }
        let operatorKey = Ed25519KeyPair()
        let signed = SignedBundle.sign(try TestLatch.bundle(upstreamPort: 9), with: operatorKey)
        try Data(signed).write(to: directory.appendingPathComponent("bundle.signed.json"))
        let config = directory.appendingPathComponent("proxy.toml").path
        try Data(
            """
            listen = "127.0.0.1:0"
            [bundle]
            file = "bundle.signed.json"
            trusted_signers = ["\(Hex.encode(operatorKey.publicKey))"]
            [upstream]
            response_timeout_ms = 5000
            """.utf8
        ).write(to: URL(fileURLWithPath: config))
        let ready = directory.appendingPathComponent("port").path
        let child = try TestKit.launch(Self.binary, ["run", "--config", config, "--ready-file", ready])
        let port = try await Self.readyPort(ready, process: child)
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        do {
            let covered = try await Self.get(
                client, "http://127.0.0.1:\(port)/openai/v1/models", bearer: TestLatch.token.text)
            #expect(covered.0 == 503)
            #expect(covered.1.contains("\"error\":\"unavailable\""))
            let unknown = try await Self.get(client, "http://127.0.0.1:\(port)/elsewhere", bearer: TestLatch.token.text)
            #expect(unknown.0 == 404)
        } catch {
            try? await client.shutdown()
            _ = await Self.stop(child)
            throw error
        }
        try await client.shutdown()

        // `quorum-proxy health`: a wildcard listen address is probed on loopback; the front's own
        // 404 for / (it carries Latch-Request-Id) is healthy; a stopped proxy is not; port 0 cannot
        // be probed.
        let probe = directory.appendingPathComponent("probe.toml").path
        let probeText = try String(contentsOfFile: config, encoding: .utf8)
            .replacing("listen = \"127.0.0.1:0\"", with: "listen = \"0.0.0.0:\(port)\"")
        try Data(probeText.utf8).write(to: URL(fileURLWithPath: probe))
        let healthy = try await TestKit.run(Self.binary, ["health", "--config", probe], timeout: .seconds(30))
        #expect(healthy.status == 0, "\(healthy)")
        #expect(healthy.stdout == "GET http://127.0.0.1:\(port)/: HTTP 404; healthy\n", "\(healthy)")
        let anyPort = try await TestKit.run(Self.binary, ["health", "--config", config], timeout: .seconds(30))
        #expect(anyPort.status == 2, "\(anyPort)")
        #expect(anyPort.stderr.contains("listen: port 0 lets the proxy pick a free port"), "\(anyPort)")

        #expect(await Self.stop(child) == 0)
        let stopped = try await TestKit.run(
            Self.binary, ["health", "--config", probe, "--timeout", "2"], timeout: .seconds(30))
        #expect(stopped.status == 1, "\(stopped)")
        #expect(stopped.stderr.hasPrefix("quorum-proxy: unhealthy: GET http://127.0.0.1:\(port)/: no HTTP answer"))
    }

    @Test("quorum-proxy run refuses a bundle from an untrusted signer, in one line, exit 2")
    func untrustedBundle() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path), "no quorum-proxy built")
        let directory = try TestKit.temporaryDirectory("quorum-proxy-test")
        defer { try? FileManager.default.removeItem(at: directory) }
        let signed = SignedBundle.sign(try TestLatch.bundle(upstreamPort: 9), with: Ed25519KeyPair())
        try Data(signed).write(to: directory.appendingPathComponent("bundle.signed.json"))
        let config = directory.appendingPathComponent("proxy.toml").path
        try Data(
            """
            listen = "127.0.0.1:0"
            [bundle]
            file = "bundle.signed.json"
            trusted_signers = ["\(Hex.encode(Ed25519KeyPair().publicKey))"]
            """.utf8
        ).write(to: URL(fileURLWithPath: config))
        let result = try await TestKit.run(Self.binary, ["run", "--config", config], timeout: .seconds(30))
        #expect(result.status == 2)
        #expect(result.stderr.contains("untrusted-signer"))
        #expect(result.stderr.contains("bundle.signed.json"))
    }

    static let openAIImportable: Bool = {
        guard let python = ProxyProcessTests.python else { return false }
        let process = Process()
        process.executableURL = python
        process.arguments = ["-c", "import openai"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()

    static let python: URL? = {
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent("python3")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }()

    static let openAIScript = """
        import sys, openai
        client = openai.OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0, timeout=20)
        models = client.models.list()
        assert [m.id for m in models.data] == ["demo-small"], models
        reply = client.chat.completions.create(
            model="demo-small", messages=[{"role": "user", "content": "hello there"}])
        assert reply.choices[0].message.content == "Echo: hello there", reply
        assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (2, 3), reply.usage
        stream = client.chat.completions.create(
            model="demo-small", messages=[{"role": "user", "content": "hello there"}], stream=True,
            stream_options={"include_usage": True})
        text, usage = "", None
        for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
            if chunk.usage:
                usage = chunk.usage
        assert text == "Echo: hello there", text
        assert (usage.prompt_tokens, usage.completion_tokens) == (2, 3), usage
        print("openai-ok")
        """

    @Test(
        "The official OpenAI Python client works through the proxy unchanged, streaming included",
        .enabled(if: openAIImportable, "python3 cannot import openai (scripts/install-deps.sh installs it)"))
    func openAIClient() async throws {
        let python = try #require(Self.python)
        try await ProxyHarness.with(decide: { call, context in
            allow(call, upstream: context.upstream, recorder: context.recorder)
        }) { proxy in
            let result = try await TestKit.run(
                python, ["-c", Self.openAIScript, proxy.proxyURL + "/openai/v1", TestLatch.token.text],
                timeout: .seconds(60))
            #expect(result.status == 0, "\(result)")
            #expect(result.stdout.contains("openai-ok"))
            let settled = try await proxy.recorder.waitForSettlements(3)
            #expect(settled.count == 3)
            #expect(settled.last == SpendUsage(inputTokens: 2, outputTokens: 3))
        }
    }
}
