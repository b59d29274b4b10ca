import ArgumentParser
import Foundation
import Logging
import QuorumNode
import QuorumProxy
import QuorumTelemetry
import ServiceLifecycle

/// The front-end proxy (DESIGN.md §2). Argument parsing and wiring only: the front, forwarding
/// and the demo upstream are QuorumProxy's.
@main
struct QuorumProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quorum-proxy",
        abstract: "Run the Quorum Latch front-end proxy, or its demo upstream.",
        subcommands: [Run.self, DemoUpstreamCommand.self, ProxyHealthCommand.self],
        defaultSubcommand: Run.self
    )

    /// Exits 2 with one line on stderr.
    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static func logLevel(_ levelName: String) throws(Failure) -> Logger.Level {
        guard let level = Logger.Level(rawValue: levelName) else {
            throw Failure(
                "--log-level \(levelName): not a level; use trace, debug, info, notice, warning, error or critical")
        }
        return level
    }

    static func writeReadyFile(_ path: String?, port: Int) throws {
        guard let path else { return }
        try Data("\(port)\n".utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    static func main() async {
        ConcurrencyExecutor.runOnEventLoops()
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
            Foundation.exit(0)
        } catch let failure as Failure {
            FileHandle.standardError.write(Data("quorum-proxy: error: \(failure.description)\n".utf8))
            Foundation.exit(2)
        } catch let exit as ExitCode {
            Foundation.exit(exit.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                FileHandle.standardOutput.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data("quorum-proxy: error: \(fullMessage(for: error))\n".utf8))
            Foundation.exit(2)
        }
    }
}

/// `quorum-proxy run --config F`: the agent-facing proxy.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve agents: route by the signed bundle, ask the quorum, forward allowed calls.",
        discussion: """
            Reads a TOML configuration (docs/operations.md, "The proxy"). With a [cluster] table every call is \
            decided by the quorum (k of n nodes, a verified threshold signature, the credential opened from k \
            decryption shares); without one every call a mount covers is answered 503: the proxy never forwards \
            without a quorum's allow. With a [tls] table it also serves HTTPS, asking agents for a client \
            certificate (any, none required) whose SHA-256 sender-constrained latches are bound to (RFC 8705). \
            With a [metrics] table it serves Prometheus metrics at GET /metrics on a listener of its own \
            (docs/operations.md, "Metrics"). Stops cleanly on SIGTERM or SIGINT. Exit status: 0 after a clean \
            shutdown, 2 for a bad configuration or bundle, or a listener that cannot start.
            """
    )

    @Option(help: ArgumentHelp("The proxy's configuration file (TOML).", valueName: "file"))
    var config: String

    @Option(help: ArgumentHelp("Write the bound port to this file once listening.", valueName: "file"))
    var readyFile: String?

    @Option(
        help: ArgumentHelp(
            "Write the HTTPS listener's bound port ([tls] listen) to this file once it listens.", valueName: "file"))
    var tlsReadyFile: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(help: "Log format: text, or json (one object per line); overrides [log] format.")
    var logFormat: String?

    func run() async throws {
        let level = try QuorumProxyCommand.logLevel(logLevel)
        let flagFormat = try logFormat.map { name throws(QuorumProxyCommand.Failure) in
            guard let format = LogFormat(rawValue: name) else {
                throw QuorumProxyCommand.Failure("--log-format \(name): not a log format; use text or json")
            }
            return format
        }
        let configuration: ProxyConfiguration
        do { configuration = try ProxyConfiguration.load(path: config) } catch {
            throw QuorumProxyCommand.Failure(error.description)
        }
        // One bootstrap each, here and nowhere else: the library code only records and logs.
        Telemetry.bootstrapLogging(
            json: (flagFormat ?? configuration.telemetry.logFormat) == .json, level: level)
        let registry = configuration.telemetry.metricsListen.map { _ in
            Telemetry.bootstrapMetrics(histogramBuckets: ProxyMetrics.histogramBuckets)
        }
        let metrics = ProxyMetrics()
        let logger = Logger(label: "quorum-proxy")
        var certificates: [MonitoredCertificate] = []
        var authorizer: any CallAuthorizer = UnavailableAuthorizer()
        var quorum: QuorumAuthorizer?
        var extraServices: [any Service] = []
        let routing: RoutingTable
        do {
            if let cluster = configuration.cluster, let dataDirectory = configuration.dataDirectory {
                let link = try QuorumLink.open(cluster, dataDirectory: dataDirectory, logger: logger)
                certificates = link.certificates
                let view: RoutingView
                if let path = configuration.bundlePath {
                    view = try RoutingView.load(signedBundleAt: path, trustedSigners: configuration.trustedSigners)
                } else if let fetched = await link.newestBundle(
                    trustedSigners: configuration.trustedSigners, newerThan: nil, logger: logger)
                {
                    view = RoutingView(bundle: fetched)
                } else {
                    logger.warning(
                        "no node holds a bundle signed by a trusted operator yet; every path is 404 until one does")
                    view = .empty
                }
                routing = RoutingTable(view)
                let made = try link.authorizer(routing: routing, metrics: metrics, logger: logger)
                await made.warmUp()
                quorum = made
                authorizer = made
                extraServices.append(
                    BundleFollower(
                        link: link, routing: routing, trustedSigners: configuration.trustedSigners,
                        interval: configuration.bundleRefresh, logger: logger))
            } else if let path = configuration.bundlePath {
                routing = RoutingTable(
                    try RoutingView.load(signedBundleAt: path, trustedSigners: configuration.trustedSigners))
            } else {
                throw QuorumProxyCommand.Failure("\(configuration.file): bundle.file: missing")
            }
        } catch let failure as QuorumProxyCommand.Failure {
            throw failure
        } catch {
            throw QuorumProxyCommand.Failure("\(error)")
        }
        let runtime = ProxyRuntime(
            configuration: configuration, routing: routing, authorizer: authorizer, metrics: metrics, logger: logger)
        let readyFile = readyFile
        let tlsReadyFile = tlsReadyFile
        var listeners: [any Service]
        do {
            listeners = try runtime.services(
                onListening: { port in try QuorumProxyCommand.writeReadyFile(readyFile, port: port) },
                onTLSListening: { port in try QuorumProxyCommand.writeReadyFile(tlsReadyFile, port: port) })
        } catch {
            await quorum?.close()
            throw QuorumProxyCommand.Failure(error.description)
        }
        if let registry, let address = configuration.telemetry.metricsListen {
            let expiry = CertificateExpiryGauges(certificates + runtime.monitoredCertificates, factory: metrics.factory)
            let sampled = quorum
            listeners.append(
                MetricsEndpoint.service(
                    registry: registry, host: address.host, port: address.port, logger: logger,
                    beforeScrape: {
                        expiry.sample()
                        sampled?.sampleGauges()
                    }))
        }
        let group = ServiceGroup(
            configuration: .init(
                services: extraServices + listeners, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        let view = runtime.routing.current
        logger.info(
            "starting",
            metadata: [
                "listen": "\(configuration.listen)",
                "tls_listen": "\(configuration.tls.map { "\($0.listen)" } ?? "none")",
                "bundle": "\(configuration.bundlePath ?? "from the nodes")",
                "bundle_version": "\(view.bundle.version)", "bundle_digest": "\(view.bundle.digest)",
                "decision": "\(quorum == nil ? "none (503)" : "quorum, threshold \(quorum!.threshold)")",
                "metrics": "\(configuration.telemetry.metricsListen.map { "\($0)" } ?? "off")",
            ])
        do { try await group.run() } catch {
            await quorum?.close()
            throw QuorumProxyCommand.Failure("stopped: \(error)")
        }
        await quorum?.close()
        logger.info("stopped")
    }
}

/// `quorum-proxy demo-upstream --listen HOST:PORT --api-key-file F`.
struct DemoUpstreamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo-upstream",
        abstract: "Run a small OpenAI-compatible upstream that requires the key in --api-key-file.",
        discussion: """
            GET /v1/models, POST /v1/chat/completions (JSON or, with "stream": true, server-sent events) and \
            /echo/... (what reached it, its key masked). Answers 401 without Authorization: Bearer <key>. Stops \
            cleanly on SIGTERM or SIGINT.
            """
    )

    @Option(help: ArgumentHelp("Where to listen, as host:port (port 0: any free port).", valueName: "host:port"))
    var listen: String

    @Option(help: ArgumentHelp("A file holding the API key callers must present.", valueName: "file"))
    var apiKeyFile: String

    @Option(help: ArgumentHelp("Write the bound port to this file once listening.", valueName: "file"))
    var readyFile: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func run() async throws {
        Telemetry.bootstrapLogging(json: false, level: try QuorumProxyCommand.logLevel(logLevel))
        let address: NodeAddress
        do { address = try NodeAddress.parse(listen, ports: 0...65535) } catch {
            throw QuorumProxyCommand.Failure("--listen \(listen): \(error.reason)")
        }
        let apiKey: String
        do { apiKey = try DemoUpstream.apiKey(fromFile: apiKeyFile) } catch {
            throw QuorumProxyCommand.Failure("--api-key-file: \(error)")
        }
        let logger = Logger(label: "quorum-demo-upstream")
        let readyFile = readyFile
        let application = DemoUpstream.application(
            apiKey: apiKey, host: address.host, port: address.port, logger: logger
        ) { port in
            try QuorumProxyCommand.writeReadyFile(readyFile, port: port)
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [application], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        logger.info("starting", metadata: ["listen": "\(address)"])
        do { try await group.run() } catch { throw QuorumProxyCommand.Failure("stopped: \(error)") }
        logger.info("stopped")
    }
}

/// `quorum-proxy health (--config F | --url URL)`: whether the proxy (or the demo upstream) serves
/// HTTP, for a container's HEALTHCHECK or a supervisor.
struct ProxyHealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Check that a running proxy, or the demo upstream, answers HTTP.",
        discussion: """
            With --config, sends GET / to the proxy's plain listener (a wildcard address on loopback) and requires \
            an answer from the proxy's own front (it carries Latch-Request-Id; no mount covers /, so the front \
            answers 404 without asking the quorum). It says the front serves, not that the nodes are reachable. \
            With --url, any HTTP answer from that URL passes (for the demo upstream). Prints one line. Exit \
            status: 0 healthy, 1 no answer or not the proxy's, 2 a configuration that cannot be read.
            """
    )

    @Option(help: ArgumentHelp("The proxy's configuration file (TOML).", valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("Probe this URL instead, e.g. the demo upstream's.", valueName: "url"))
    var url: String?

    @Option(help: "Seconds to wait for the answer.")
    var timeout: Int = 5

    func run() async throws {
        guard (1...300).contains(timeout) else {
            throw QuorumProxyCommand.Failure("--timeout \(timeout): must be 1-300 seconds")
        }
        let target: String
        switch (config, url) {
        case (let config?, nil):
            let listen: NodeAddress
            do { listen = try ProxyConfiguration.load(path: config).listen } catch {
                throw QuorumProxyCommand.Failure(error.description)
            }
            guard listen.port != 0 else {
                throw QuorumProxyCommand.Failure(
                    "\(config): listen: port 0 lets the proxy pick a free port, which the health check cannot know; "
                        + "give a fixed port, or probe with --url")
            }
            target = ProxyHealth.probeURL(for: listen)
        case (nil, let url?):
            target = url
        default:
            throw QuorumProxyCommand.Failure("give exactly one of --config (a proxy) and --url (any HTTP server)")
        }
        do {
            let answer = try await ProxyHealth.probe(target, timeout: .seconds(timeout))
            if config != nil, !answer.fromProxyFront {
                FileHandle.standardError.write(
                    Data(
                        ("quorum-proxy: unhealthy: GET \(target) answered HTTP \(answer.status) without "
                            + "\(HeaderRules.requestID); something other than the proxy's front listens there\n").utf8))
                throw ExitCode(1)
            }
            print("GET \(target): HTTP \(answer.status); healthy")
        } catch let failure as ProxyHealth.Failure {
            FileHandle.standardError.write(Data("quorum-proxy: unhealthy: \(failure.description)\n".utf8))
            throw ExitCode(1)
        }
    }
}
