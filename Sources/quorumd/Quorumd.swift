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
        discussion: """
            Reads a TOML configuration (docs/operations.md, "Running a node"), listens for node RPC over mutual \
            TLS, sends heartbeats to its peers and answers `quorumctl status`. With a [metrics] table it serves \
            Prometheus metrics at GET /metrics on a listener of its own (docs/operations.md, "Metrics"). Stops cleanly \
            on SIGTERM or SIGINT. Exit status: 0 after a clean shutdown, 2 for a bad configuration or a listener that \
            cannot start.
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
            throw Failure(
                "--log-level \(logLevel): not a level; use trace, debug, info, notice, warning, error or critical")
        }
        let flagFormat = try logFormat.map { name throws(Failure) in
            guard let format = LogFormat(rawValue: name) else {
                throw Failure("--log-format \(name): not a log format; use text or json")
            }
            return format
        }
        let node: NodeConfiguration
        do { node = try NodeConfiguration.load(path: config) } catch { throw Failure(error.description) }
        // One bootstrap each, here and nowhere else: the library code only records and logs.
        Telemetry.bootstrapLogging(json: (flagFormat ?? node.telemetry.logFormat) == .json, level: level)
        let registry = node.telemetry.metricsListen.map { _ in
            Telemetry.bootstrapMetrics(histogramBuckets: NodeMetrics.histogramBuckets)
        }
        var logger = Logger(label: "quorumd")
        logger[metadataKey: "node"] = "\(node.nodeID)"
        let runtime: NodeRuntime
        do { runtime = try NodeRuntime(configuration: node, metrics: NodeMetrics(), logger: logger) } catch {
            throw Failure(error.description)
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
            runtime.store.close()
            throw Failure("stopped: \(error)")
        }
        // Close RocksDB before the process exits: a database still open at exit can leave its
        // background threads running into the C++ static destructors (an abort).
        runtime.store.close()
        logger.info("stopped")
    }

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
