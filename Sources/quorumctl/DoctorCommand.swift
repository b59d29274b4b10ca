import ArgumentParser
import Foundation
import QuorumCrypto
import QuorumDoctor
import QuorumNode

/// `quorumctl doctor`: checks one host's node or proxy (`--config`) or a running cluster
/// (`--cluster`), one line per check with the fix for every problem.
struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a node's or proxy's host (--config) or a running cluster (--cluster), with a fix per problem.",
        discussion: """
            Local mode, on a node's or the proxy's host: --config FILE (a quorumd or quorum-proxy configuration) \
            checks that the configuration parses; that the certificate, key and CA files exist and are readable, \
            key files 0600 and owned by the user; that the certificate chains to the CA, has the role and node id \
            the configuration expects and is not expired (a warning within 30 days); that the data directory is \
            writable; that the RocksDB store opens read-only and reads cleanly (skipped with a warning while the \
            node holds its lock); that the key share is present and, with --group, matches group.json; and that \
            the listen address is free when the node is not running. Nothing is changed.

            Cluster mode, from an operator's machine: --cluster FILE with the operator certificate \
            (--certs-dir or --cert/--key/--ca) asks every node over mutual TLS, timing each, and checks the \
            certificate each presents, its clock against this host's, its group key against --group, its \
            signed bundle (against --signer keys when given) and that every node runs the same version, its \
            nonce commitments and its peers, and that a threshold of nodes can sign.

            Each line is ok, warn or FAIL, what was checked, and for a problem the fix. --json prints the same \
            as JSON. Exit status: 0 when nothing failed (warnings allowed), 1 when a check failed, 2 bad input.
            """
    )

    @Option(help: ArgumentHelp("Local mode: a quorumd or quorum-proxy configuration file.", valueName: "file"))
    var config: String?

    @Option(
        help: ArgumentHelp(
            "Cluster mode: the cluster file ([[nodes]] id = N, address = \"host:port\").", valueName: "file"))
    var cluster: String?

    @OptionGroup var credentials: OperatorCredentials

    @Option(help: ArgumentHelp("The cluster's published group.json, to compare key shares with.", valueName: "file"))
    var group: String?

    @Option(
        help: ArgumentHelp(
            "Cluster mode: an operator public key (hex) the nodes' bundles must be signed by; repeatable.",
            valueName: "hex"))
    var signer: [String] = []

    @Flag(help: "Print the findings as JSON.")
    var json = false

    func run() throws {
        let report: DoctorReport
        switch (config, cluster) {
        case (let config?, nil):
            guard !credentials.isGiven, signer.isEmpty else {
                throw CLIError(
                    "--certs-dir, --cert, --key, --ca and --signer are for the cluster mode (--cluster); "
                        + "--config checks the local files only")
            }
            var options = LocalDoctor.Options(configPath: config, groupPath: group)
            options.now = Date()
            let doctor = LocalDoctor(options)
            report = Blocking.wait { await doctor.run() }
        case (nil, let clusterPath?):
            report = try runCluster(clusterPath)
        case (nil, nil):
            throw CLIError("give --config FILE (this host's node or proxy) or --cluster FILE (every node)")
        case (.some, .some):
            throw CLIError("--config and --cluster are two modes; give one")
        }
        Output.line(json ? report.json() : report.text)
        if !report.passed { throw ExitCode(1) }
    }

    private func runCluster(_ clusterPath: String) throws -> DoctorReport {
        let clusterFile = try OperatorCredentials.clusterFile(clusterPath)
        let client = try credentials.client(for: "doctor")
        var arguments = "--cluster \(clusterPath)"
        if let dir = credentials.certsDir { arguments += " --certs-dir \(dir)" }
        for (flag, value) in [("--cert", credentials.cert), ("--key", credentials.key), ("--ca", credentials.ca)] {
            if let value { arguments += " \(flag) \(value)" }
        }
        var options = ClusterDoctor.Options(
            clusterPath: clusterPath, cluster: clusterFile, operatorArguments: arguments)
        options.timeout = credentials.limit
        if let group {
            let (suite, bytes) = try Inputs.groupSuite(group)
            guard suite == .ed25519 else {
                throw CLIError("\(group): a \(suite.rawValue) group; a cluster's nodes hold ed25519 keys")
            }
            options.group = try Inputs.group(
                bytes, as: Ed25519Suite.self, file: group, purpose: .signing, command: "doctor")
            options.groupPath = group
        }
        for key in signer {
            guard let bytes = Hex.decode(key), bytes.count == 32 else {
                throw CLIError("--signer '\(key)': expected an operator public key as 64 hex digits")
            }
            options.trustedSigners.append(bytes)
        }
        let doctor = ClusterDoctor(options, client: client)
        return Blocking.wait { await doctor.run() }
    }
}
