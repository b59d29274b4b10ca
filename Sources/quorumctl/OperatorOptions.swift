import ArgumentParser
import Logging
import QuorumIdentity
import QuorumNode
import QuorumProtocol

/// The options of every command that talks to the cluster's nodes as an operator: the cluster
/// file, the operator certificate, and a timeout.
struct OperatorOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The cluster file: [[nodes]] id = N, address = \"host:port\".", valueName: "file"))
    var cluster: String

    @OptionGroup var credentials: OperatorCredentials

    /// The cluster file, read.
    func clusterFile() throws -> ClusterFile { try OperatorCredentials.clusterFile(cluster) }

    /// A client with the operator certificate (``OperatorCredentials/client(for:)``).
    func client(for command: String) throws -> NodeClient { try credentials.client(for: command) }

    /// `--timeout` as a duration.
    var limit: Duration { credentials.limit }
}

/// The operator certificate and the wait for each node: what ``OperatorOptions`` adds to the
/// cluster file, and what `doctor`, whose cluster file is optional, takes on its own.
struct OperatorCredentials: ParsableArguments {
    @Option(
        help: ArgumentHelp("A `certs init` directory: uses operator.pem, operator.key and ca.pem.", valueName: "dir"))
    var certsDir: String?

    @Option(help: ArgumentHelp("The operator certificate (overrides --certs-dir).", valueName: "file"))
    var cert: String?

    @Option(help: ArgumentHelp("The operator certificate's private key (overrides --certs-dir).", valueName: "file"))
    var key: String?

    @Option(help: ArgumentHelp("The cluster CA certificate (overrides --certs-dir).", valueName: "file"))
    var ca: String?

    @Option(help: "Seconds to wait for each node (connect, handshake and answer).")
    var timeout: Int = 5

    /// Whether any certificate option was given (`doctor --config` refuses them).
    var isGiven: Bool { certsDir != nil || cert != nil || key != nil || ca != nil }

    /// The cluster file at `path`, read.
    static func clusterFile(_ path: String) throws -> ClusterFile {
        do { return try ClusterFile.load(path: path) } catch { throw CLIError(error.description) }
    }

    /// A client with the operator certificate, every wait bounded by `--timeout`; `command` names
    /// the command in the refusal of a certificate of another role.
    func client(for command: String) throws -> NodeClient {
        guard (1...300).contains(timeout) else { throw CLIError("--timeout \(timeout): must be 1-300 seconds") }
        let directory = certsDir.map(CertificateDirectory.init)
        func pick(_ flag: String, _ value: String?, _ fallback: String) throws -> String {
            if let value { return value }
            if let directory { return directory.path + "/" + fallback }
            throw CLIError("\(flag) is required unless --certs-dir names a directory holding \(fallback)")
        }
        let certPath = try pick("--cert", cert, "operator.pem")
        let keyPath = try pick("--key", key, "operator.key")
        let caPath = try pick("--ca", ca, "ca.pem")
        var transport: TransportConfiguration
        do {
            transport = try TransportConfiguration.make(
                certificatePath: certPath, privateKeyPath: keyPath, clusterCAPath: caPath)
        } catch {
            throw CLIError("\(error.peer): \(error.reason)")
        }
        guard transport.identity.role == .operator else {
            throw CLIError(
                "\(certPath): is the certificate of \(transport.identity); \(command) needs an operator certificate")
        }
        transport.connectTimeout = limit
        transport.handshakeTimeout = limit
        transport.defaultRequestDeadline = limit
        // The transport logs at warning and above; commands report failures themselves.
        var logger = Logger(label: "quorumctl")
        logger.logLevel = .critical
        do { return try NodeClient(configuration: transport, logger: logger) } catch {
            throw CLIError("\(error.peer): \(error.reason)")
        }
    }

    /// `--timeout` as a duration.
    var limit: Duration { .seconds(timeout) }
}
