import ArgumentParser
import Foundation
import Logging
import QuorumNode
import QuorumTelemetry
import ServiceLifecycle

/// The policy node daemon (DESIGN.md §2). Argument parsing and wiring only: the configuration,
/// membership and transport are QuorumNode's.
@main
struct Quorumd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quorumd",
        abstract: "Run a Quorum Latch policy node.",
        subcommands: [RunNode.self, NodeHealthCommand.self],
        defaultSubcommand: RunNode.self
    )

    /// Exits 2 with one line on stderr.
    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
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
            FileHandle.standardError.write(Data("quorumd: error: \(failure.description)\n".utf8))
            Foundation.exit(2)
        } catch let exit as ExitCode {
            Foundation.exit(exit.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                FileHandle.standardOutput.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data("quorumd: error: \(fullMessage(for: error))\n".utf8))
            Foundation.exit(2)
        }
    }
}

/// `quorumd [run] --config FILE`: the node itself (`run` is the default, so `quorumd --config
/// FILE` keeps working).
struct RunNode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the node (the default subcommand).",
        discussion: """
            Reads a TOML configuration (docs/operations.md, "Running a node"), listens for node RPC over mutual \
            TLS, sends heartbeats to its peers and answers `quorumctl status`. With a [metrics] table it serves Prometheus metrics at GET /metrics on a \
            listener of its own (docs/operations.md, "Metrics"). Stops cleanly on SIGTERM or SIGINT. \
            Exit status: 0 after a clean shutdown, 2 for a bad configuration or a listener that cannot start.
            """
    )

    @Option(help: ArgumentHelp("The node's configuration file (TOML).", valueName: "file"))
    var config: String

    @Option(help: ArgumentHelp("Write the bound port to this file once listening.", valueName: "file"))
    var readyFile: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(help: "Log format: text, or json (one object per line); overrides [log] format.")
    var logFormat: String?

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw Quorumd.Failure(
                "--log-level \(logLevel): not a level; use trace, debug, info, notice, warning, error or critical")
        }
        let flagFormat = try logFormat.map { name throws(Quorumd.Failure) in
            guard let format = LogFormat(rawValue: name) else {
                throw Quorumd.Failure("--log-format \(name): not a log format; use text or json")
            }
            return format
        }
        let node: NodeConfiguration
        do { node = try NodeConfiguration.load(path: config) } catch { throw Quorumd.Failure(error.description) }
        // One bootstrap each, here and nowhere else: the library code only records and logs.
        Telemetry.bootstrapLogging(json: (flagFormat ?? node.telemetry.logFormat) == .json, level: level)
        let registry = node.telemetry.metricsListen.map { _ in
            Telemetry.bootstrapMetrics(histogramBuckets: NodeMetrics.histogramBuckets)
        }
        var logger = Logger(label: "quorumd")
        logger[metadataKey: "node"] = "\(node.nodeID)"
        let runtime: NodeRuntime
        do { runtime = try NodeRuntime(configuration: node, metrics: NodeMetrics(), logger: logger) } catch {
            throw Quorumd.Failure(error.description)
        }
        let readyFile = readyFile
        var services = runtime.services { port in
            if let readyFile {
                try Data("\(port)\n".utf8).write(to: URL(fileURLWithPath: readyFile), options: .atomic)
            }
        }
        if let registry, let address = node.telemetry.metricsListen {
            services.append(
                .init(
                    service: MetricsEndpoint.service(
                        registry: registry, host: address.host, port: address.port, logger: logger,
                        beforeScrape: { runtime.sampleGauges() }),
                    successTerminationBehavior: .gracefullyShutdownGroup))
        }
        if let audit = runtime.auditService(source: runtime.auditLog) { services.append(audit) }
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        logger.info(
            "starting",
            metadata: [
                "listen": "\(node.listen)", "peers": "\(node.peers.map(\.id))", "data_dir": "\(node.dataDirectory)",
                "metrics": "\(node.telemetry.metricsListen.map { "\($0)" } ?? "off")",
            ])
        do {
            try await group.run()
        } catch {
            runtime.close()
            throw Quorumd.Failure("stopped: \(error)")
        }
        // Close RocksDB before the process exits: a database still open at exit can leave its
        // background threads running into the C++ static destructors (an abort).
        runtime.close()
        logger.info("stopped")
    }
}

/// `quorumd health --config FILE`: whether the node that configuration describes is up and
/// answers as itself, for a container's HEALTHCHECK or a supervisor.
struct NodeHealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Check that the running node answers over its own listener.",
        discussion: """
            Reads the node's configuration and connects to its listen address (a wildcard address on loopback) \
            with the node's own certificate over mutual TLS, then asks for its status: the listener, the TLS \
            handshake (so an expired certificate or a foreign CA fails), and the request path must all work, and \
            the answer must come from this node id. Does not open the data directory. Prints one line. Exit \
            status: 0 healthy, 1 not answering, 2 a configuration or certificate file that cannot be used.
            """
    )

    @Option(help: ArgumentHelp("The node's configuration file (TOML).", valueName: "file"))
    var config: String

    @Option(help: "Seconds to wait for the connection, the handshake and the answer.")
    var timeout: Int = 5

    func run() async throws {
        guard (1...300).contains(timeout) else { throw Quorumd.Failure("--timeout \(timeout): must be 1-300 seconds") }
        let node: NodeConfiguration
        do { node = try NodeConfiguration.load(path: config) } catch { throw Quorumd.Failure(error.description) }
        // The transport logs refusals itself; the one line below says what failed.
        var logger = Logger(label: "quorumd.health")
        logger.logLevel = .critical
        do {
            let status = try await NodeHealth.check(node, timeout: .seconds(timeout), logger: logger)
            let peersUp = status.peers.filter(\.isUp).count
            print(
                "node \(status.nodeID): healthy; keys \(status.hasKey ? "installed" : "not yet installed"), "
                    + "\(peersUp) of \(status.peers.count) peers up")
        } catch {
            guard error.kind == .node else { throw Quorumd.Failure(error.description) }
            FileHandle.standardError.write(Data("quorumd: unhealthy: \(error.description)\n".utf8))
            throw ExitCode(1)
        }
    }
}
