import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import QuorumCrypto
import QuorumProtocol
import QuorumTestKit
import Testing

/// Four real quorumd with dealer keys (k = 3) trusting an operator key, the demo upstream that
/// answers 401 without its key, and the quorum-proxy binary deciding with them on a plain HTTP
/// listener and an HTTPS one (`[tls]`, the proxy certificate of `certs init`). Node 4 also trusts
/// a second operator key (`rogue-key.json`), so a test can give that one node a bundle of its own.
///
/// The credential is sealed (`secrets set`) and pushed (`secrets push`); the bundle is signed
/// and pushed from `bundle.yaml`, which tests may edit with `quorumctl latch …` and publish again
/// (``publish()``). With `telemetry`, every node and the proxy serve `/metrics` (a `[metrics]`
/// table) and log JSON lines (the nodes by `[log] format`, the proxy by `--log-format json`). When
/// `with` ends it checks that neither the proxy's data directory nor its log ever held the
/// credential or the token.
final class ProxyQuorum: @unchecked Sendable {
    // @unchecked Sendable: every stored property is set once in `with` before any test sees the
    // value; the suites using it are serialized, so the workspace and cluster are never used by
    // two tests at once.
    static let proxyBinary = TestKit.executable("quorum-proxy")
    static let apiKey = "sk-demo-7c1f0b6e9d2a4c58b3e1"
    static let token = VerdictClusterTests.token

    /// The running quorum of the suite whose scope started one (``Shared``).
    @TaskLocal static var shared: ProxyQuorum?

    let workspace: Workspace
    let cluster: TestCluster
    let proxy: Daemon
    let upstream: Daemon
    let upstreamPort: Int
    /// `http://127.0.0.1:<port>` of the plain listener.
    let url: String
    /// `https://127.0.0.1:<port>` of the TLS listener.
    let tlsURL: String
    let groupKey: [UInt8]
    /// A plain HTTP client (no TLS configuration).
    let client: HTTPClient
    /// With telemetry: each node's `/metrics` URL, by node id.
    let nodeMetricsURLs: [Int: String]
    /// With telemetry: the proxy's `/metrics` URL.
    let proxyMetricsURL: String?
    /// With audit: each node's audit API base URL, by node id (the proxy forwards to them in order).
    var nodeAuditURLs: [Int: String] = [:]

    private init(
        workspace: Workspace, cluster: TestCluster, proxy: Daemon, upstream: Daemon, upstreamPort: Int, url: String,
        tlsURL: String, groupKey: [UInt8], client: HTTPClient, nodeMetricsURLs: [Int: String],
        proxyMetricsURL: String?
    ) {
        self.workspace = workspace
        self.cluster = cluster
        self.proxy = proxy
        self.upstream = upstream
        self.upstreamPort = upstreamPort
        self.url = url
        self.tlsURL = tlsURL
        self.groupKey = groupKey
        self.client = client
        self.nodeMetricsURLs = nodeMetricsURLs
        self.proxyMetricsURL = proxyMetricsURL
    }

    static func readPort(_ path: String, _ process: Daemon) async throws -> Int {
        var port: Int?
        let up = await eventually(within: .seconds(60)) {
            port = (try? String(contentsOfFile: path, encoding: .utf8)).flatMap {
                Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            return port != nil || !process.isRunning
        }
        try #require(up && process.isRunning, "not listening:\n\(process.stderr)")
        return try #require(port)
    }

    /// Starts everything with the bundle `bundle(upstreamPort)` (version 1) and runs `body`;
    /// kills what is left afterwards.
    static func with(
        bundle: (Int) -> String, decisionTimeoutMilliseconds: Int = 3000, telemetry: Bool = false,
        audit: Bool = false, unloggedAfterMilliseconds: Int? = nil, _ body: (ProxyQuorum) async throws -> Void
    ) async throws {
        try await Workspace.with { workspace in
            let trusted = try VerdictClusterTests.operatorKey(workspace, "operator-key.json")
            let rogue = try VerdictClusterTests.operatorKey(workspace, "rogue-key.json")
            let cluster = try await TestCluster(workspace, nodes: 4, dealerThreshold: 3, operatorKeys: [trusted])
            var children: [Daemon] = []
            defer {
                for daemon in cluster.daemons.values where daemon.isRunning {
                    kill(daemon.child.process.processIdentifier, SIGCONT)
                    kill(daemon.child.process.processIdentifier, SIGKILL)
                }
                for child in children where child.isRunning { kill(child.child.process.processIdentifier, SIGKILL) }
            }
            // Node 4 alone also trusts the rogue key.
            let nodeFour = String(decoding: try workspace.read("node-4.toml"), as: UTF8.self)
            try #require(nodeFour.contains("operator_keys = [\"\(trusted)\"]"))
            try workspace.write(
                "node-4.toml",
                nodeFour.replacingOccurrences(
                    of: "operator_keys = [\"\(trusted)\"]", with: "operator_keys = [\"\(trusted)\", \"\(rogue)\"]"))
            var metricsPorts: [Int] = []
            if telemetry {
                metricsPorts = try TestCluster.freePorts(cluster.size + 1)
                for id in 1...cluster.size {
                    let config = String(decoding: try workspace.read("node-\(id).toml"), as: UTF8.self)
                    let metrics = "[metrics]\nlisten = \"127.0.0.1:\(metricsPorts[id - 1])\"\n"
                    try workspace.write("node-\(id).toml", config + "\n" + metrics + "\n[log]\nformat = \"json\"\n")
                }
            }
            var auditPorts: [Int] = []
            if audit {
                auditPorts = try TestCluster.freePorts(cluster.size)
                for id in 1...cluster.size {
                    let config = String(decoding: try workspace.read("node-\(id).toml"), as: UTF8.self)
                    try workspace.write(
                        "node-\(id).toml", config + "\n[audit]\nlisten = \"127.0.0.1:\(auditPorts[id - 1])\"\n")
                }
            }
            if let unloggedAfterMilliseconds {
                for id in 1...cluster.size {
                    let config = String(decoding: try workspace.read("node-\(id).toml"), as: UTF8.self)
                    try workspace.write(
                        "node-\(id).toml",
                        config + "\n[replication]\nunlogged_after_ms = \(unloggedAfterMilliseconds)\n")
                }
            }
            try await cluster.startAll()

            try workspace.write("api-key", apiKey + "\n")
            let upstream = try Daemon(
                id: 100, port: 0,
                arguments: [
                    "demo-upstream", "--listen", "127.0.0.1:0", "--api-key-file", workspace.path("api-key"),
                    "--ready-file", workspace.path("upstream-port"),
                ],
                executable: proxyBinary)
            children.append(upstream)
            let upstreamPort = try await readPort(workspace.path("upstream-port"), upstream)

            try workspace.write("bundle.yaml", bundle(upstreamPort))
            try await publish(workspace)
            let sealed = try await workspace.quorumctl(
                [
                    "secrets", "set", "openai", "--value-file", "-", "--sealing-group",
                    workspace.path("dealer/sealing-group.json"), "--proxy-dir", workspace.path("proxy-data"),
                ], stdin: Array((apiKey + "\n").utf8))
            try #require(sealed.status == 0, "\(sealed)")
            let pushed = try await workspace.quorumctl(
                ["secrets", "push", "openai", "--proxy-dir", workspace.path("proxy-data")] + cluster.operatorArguments)
            try #require(pushed.status == 0, "\(pushed)")

            // No bundle file: the proxy fetches the bundle from the nodes and checks its signature.
            try workspace.write(
                "proxy.toml",
                """
                listen = "127.0.0.1:0"
                data_dir = "proxy-data"

                [cluster]
                nodes = "cluster.toml"
                certificate = "certs/proxy.pem"
                private_key = "certs/proxy.key"
                cluster_ca = "certs/ca.pem"
                group = "dealer/group.json"
                sealing_group = "dealer/sealing-group.json"
                decision_timeout_ms = \(decisionTimeoutMilliseconds)

                [tls]
                listen = "127.0.0.1:0"
                certificate = "certs/proxy.pem"
                private_key = "certs/proxy.key"

                [bundle]
                trusted_signers = ["\(trusted)"]
                refresh_ms = 300

                """ + (telemetry ? "[metrics]\nlisten = \"127.0.0.1:\(metricsPorts[cluster.size])\"\n" : "")
                    + (audit
                        ? "[audit]\nnodes = [" + auditPorts.map { "\"http://127.0.0.1:\($0)\"" }.joined(separator: ", ")
                            + "]\n" : ""))
            let proxy = try Daemon(
                id: 101, port: 0,
                arguments: [
                    "run", "--config", workspace.path("proxy.toml"), "--ready-file", workspace.path("proxy-port"),
                    "--tls-ready-file", workspace.path("proxy-tls-port"),
                ] + (telemetry ? ["--log-format", "json"] : []),
                executable: proxyBinary)
            children.append(proxy)
            let group = try KeyFiles.decodeGroup(
                try KeyFiles.readFile(workspace.path("dealer/group.json")), as: Ed25519Suite.self, file: "group.json")
            let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
            let quorum = ProxyQuorum(
                workspace: workspace, cluster: cluster, proxy: proxy, upstream: upstream, upstreamPort: upstreamPort,
                url: "http://127.0.0.1:\(try await readPort(workspace.path("proxy-port"), proxy))",
                tlsURL: "https://127.0.0.1:\(try await readPort(workspace.path("proxy-tls-port"), proxy))",
                groupKey: try group.verifyingKey.serialized(), client: client,
                nodeMetricsURLs: telemetry
                    ? Dictionary(
                        uniqueKeysWithValues: (1...cluster.size).map {
                            ($0, "http://127.0.0.1:\(metricsPorts[$0 - 1])/metrics")
                        }) : [:],
                proxyMetricsURL: telemetry ? "http://127.0.0.1:\(metricsPorts[cluster.size])/metrics" : nil)
            for (index, port) in auditPorts.enumerated() {
                quorum.nodeAuditURLs[index + 1] = "http://127.0.0.1:\(port)"
            }
            do {
                try await body(quorum)
            } catch {
                try? await client.shutdown()
                Issue.record("proxy log:\n\(proxy.stderr)\n\(cluster.logs)")
                throw error
            }
            try await client.shutdown()

            // The credential never reaches the proxy's disk or its log; nor does the token.
            let files = FileManager.default.enumerator(atPath: workspace.path("proxy-data"))?.allObjects ?? []
            for case let file as String in files {
                let bytes =
                    (try? Data(contentsOf: URL(fileURLWithPath: workspace.path("proxy-data/" + file)))) ?? Data()
                #expect(!String(decoding: bytes, as: UTF8.self).contains(apiKey), "\(file) holds the credential")
            }
            #expect(!proxy.stderr.contains(apiKey), "the proxy's log holds the credential")
            #expect(!proxy.stderr.contains(token), "the proxy's log holds the agent's token")
            #expect(await proxy.terminate(within: .seconds(10)) == 0, "\(proxy.stderr)")
        }
    }

    // MARK: - Bundles

    /// Signs `bundle.yaml` with `key` and pushes it to the nodes of `clusterFile` (every node by
    /// default); both must succeed.
    func publish(
        _ file: String = "bundle.yaml", key: String = "operator-key.json", clusterFile: String = "cluster.toml"
    ) async throws {
        try await Self.publish(workspace, file, key: key, clusterFile: clusterFile)
    }

    static func publish(
        _ workspace: Workspace, _ file: String = "bundle.yaml", key: String = "operator-key.json",
        clusterFile: String = "cluster.toml"
    ) async throws {
        let signed = workspace.path(file + ".signed.json")
        let sign = try await workspace.quorumctl(
            "policy", "sign", workspace.path(file), "--key", workspace.path(key), "--out", signed)
        try #require(sign.status == 0, "\(sign)")
        let push = try await workspace.quorumctl(
            "policy", "push", signed, "--cluster", workspace.path(clusterFile), "--certs-dir", workspace.path("certs"))
        try #require(push.status == 0, "\(push)")
    }

    /// The version `bundle.yaml` has now.
    func bundleVersion(_ file: String = "bundle.yaml") throws -> Int {
        let text = String(decoding: try workspace.read(file), as: UTF8.self)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("version:") })
        return try #require(Int(line.dropFirst("version:".count).trimmingCharacters(in: .whitespaces)))
    }

    /// Runs `quorumctl latch …` on `bundle.yaml`; its stdout (the token, for create and derive).
    func latch(_ arguments: String...) async throws -> String {
        let result = try await workspace.quorumctl(
            ["latch"] + arguments + ["--bundle", workspace.path("bundle.yaml")])
        try #require(result.status == 0, "\(result)")
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: - Calls

    struct Answer {
        let status: Int
        /// `Latch-Request-Id`.
        let requestID: String?
        let body: String
        let receipt: String?
        let serverTiming: String?
        let elapsed: Duration

        /// The `reasons` array of a deny, as `node: decision reason` strings.
        var reasons: [String] {
            let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
            return (object?["reasons"] as? [[String: Any]] ?? []).map {
                "\($0["node"] ?? "?"): \($0["decision"] ?? "?") \($0["reason"] ?? "")"
            }
        }

        /// The `Server-Timing` metrics by name, in milliseconds.
        var timings: [String: Double] {
            var metrics: [String: Double] = [:]
            for entry in (serverTiming ?? "").split(separator: ",") {
                let parts = entry.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
                if let name = parts.first, let duration = parts.dropFirst().first(where: { $0.hasPrefix("dur=") }) {
                    metrics[name] = Double(duration.dropFirst(4))
                }
            }
            return metrics
        }
    }

    /// Sends one call through `client` (the plain one by default) to `base` (the plain URL by
    /// default) with `token`.
    func call(
        _ method: HTTPMethod, _ path: String, body: String? = nil, token: String = ProxyQuorum.token,
        client: HTTPClient? = nil, base: String? = nil
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: (base ?? url) + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer " + token)
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let started = ContinuousClock.now
        let response = try await (client ?? self.client).execute(request, timeout: .seconds(30))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        return Answer(
            status: Int(response.status.code), requestID: response.headers.first(name: "Latch-Request-Id"), body: text,
            receipt: response.headers.first(name: "Latch-Receipt"),
            serverTiming: response.headers.first(name: "Server-Timing"), elapsed: ContinuousClock.now - started)
    }

    /// Calls until `done` holds for the answer (at most `limit`); the last answer.
    func callUntil(
        within limit: Duration = .seconds(20), _ method: HTTPMethod, _ path: String, body: String? = nil,
        token: String = ProxyQuorum.token, client: HTTPClient? = nil, base: String? = nil,
        _ done: (Answer) -> Bool
    ) async throws -> Answer {
        var last = try await call(method, path, body: body, token: token, client: client, base: base)
        let deadline = ContinuousClock.now + limit
        while !done(last), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
            last = try await call(method, path, body: body, token: token, client: client, base: base)
        }
        return last
    }

    /// An HTTPS client trusting the cluster CA (which issued the proxy's certificate) and
    /// presenting the certificate at `prefix`.pem with its key, or none when `prefix` is `nil`.
    func tlsClient(presenting prefix: String?) throws -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(workspace.path("certs/ca.pem")))
        if let prefix {
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(workspace.path(prefix + ".pem")).map {
                .certificate($0)
            }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: workspace.path(prefix + ".key"), format: .pem))
        }
        return HTTPClient(
            eventLoopGroup: HTTPClient.defaultEventLoopGroup,
            configuration: HTTPClient.Configuration(tlsConfiguration: tls))
    }

    // MARK: - Metrics

    /// `GET url` over real HTTP: the Prometheus text, parsed.
    func scrape(_ url: String) async throws -> PrometheusSamples {
        let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
        try #require(response.status == .ok, "GET \(url): \(response.status)")
        #expect(response.headers.first(name: "content-type")?.hasPrefix("text/plain; version=0.0.4") == true)
        return PrometheusSamples(String(buffer: try await response.body.collect(upTo: 4 << 20)))
    }

    /// A suite trait that starts one ``ProxyQuorum`` for the whole suite and hands it to every
    /// test as ``ProxyQuorum/shared``, so the suite pays for one cluster start.
    struct Shared: SuiteTrait, TestScoping {
        let bundle: @Sendable (Int) -> String
        var telemetry = false

        func provideScope(
            for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
        ) async throws {
            try await ProxyQuorum.with(bundle: bundle, telemetry: telemetry) { quorum in
                try await ProxyQuorum.$shared.withValue(quorum) { try await function() }
            }
        }
    }
}

/// A Prometheus text exposition, parsed into samples: what a scrape over real HTTP returned.
struct PrometheusSamples {
    /// One sample: the metric name (with `_bucket`, `_count`, `_sum` suffixes as written), its
    /// labels and value.
    struct Sample {
        let name: String
        let labels: [String: String]
        let value: Double
    }

    /// The text as received.
    let text: String
    let samples: [Sample]

    init(_ text: String) {
        self.text = text
        var samples: [Sample] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.isEmpty {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                continue
            }
            let series = line[..<space]
            guard let brace = series.firstIndex(of: "{") else {
                samples.append(Sample(name: String(series), labels: [:], value: value))
                continue
            }
            var labels: [String: String] = [:]
            // Labels as the registry writes them: name="value", comma-separated; our values hold no
            // quotes or commas.
            let inside = series[series.index(after: brace)..<series.index(before: series.endIndex)]
            for pair in inside.split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { continue }
                labels[String(parts[0])] = String(parts[1].dropFirst().dropLast())
            }
            samples.append(Sample(name: String(series[..<brace]), labels: labels, value: value))
        }
        self.samples = samples
    }

    /// The value of the one sample named `name` whose labels include `labels`; nil when none is.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        let matching = samples.filter { sample in
            sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value }
        }
        return matching.count == 1 ? matching[0].value : nil
    }

    /// ``value(_:_:)``, 0 when no such sample was written yet (a counter not yet incremented).
    func count(_ name: String, _ labels: [String: String] = [:]) -> Double { value(name, labels) ?? 0 }
}
