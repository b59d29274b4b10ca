import ArgumentParser
import Foundation
import Logging
import QuorumNode
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
            TLS, sends heartbeats to its peers and answers `quorumctl status`. Stops cleanly on SIGTERM or SIGINT. \
            Exit status: 0 after a clean shutdown, 2 for a bad configuration or a listener that cannot start.
            """
    )

    @Option(help: ArgumentHelp("The node's configuration file (TOML).", valueName: "file"))
    var config: String

    @Option(help: ArgumentHelp("Write the bound port to this file once listening.", valueName: "file"))
    var readyFile: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw Failure(
                "--log-level \(logLevel): not a level; use trace, debug, info, notice, warning, error or critical")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let node: NodeConfiguration
        do { node = try NodeConfiguration.load(path: config) } catch { throw Failure(error.description) }
        var logger = Logger(label: "quorumd")
        logger[metadataKey: "node"] = "\(node.nodeID)"
        let runtime: NodeRuntime
        do { runtime = try NodeRuntime(configuration: node, logger: logger) } catch {
            throw Failure(error.description)
        }
        let readyFile = readyFile
        let group = ServiceGroup(
            configuration: .init(
                services: runtime.services { port in
                    if let readyFile {
                        try Data("\(port)\n".utf8).write(to: URL(fileURLWithPath: readyFile), options: .atomic)
                    }
                },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        logger.info(
            "starting",
            metadata: [
                "listen": "\(node.listen)", "peers": "\(node.peers.map(\.id))", "data_dir": "\(node.dataDirectory)",
            ])
        do {
            try await group.run()
        } catch {
            runtime.close()
            throw Failure("stopped: \(error)")
        }
        // Close RocksDB before the process exits: a database still open at exit can leave its
        // background threads running into the C++ static destructors (an abort).
        runtime.close()
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
