import ArgumentParser
import Foundation
import QuorumIdentity

/// `quorumctl certs …`: the cluster CA and the certificates it issues (DESIGN.md §5, setup).
struct Certs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make and inspect the cluster's certificates: a CA, then node, proxy and operator certificates.",
        subcommands: [CertsInit.self, CertsIssue.self, CertsShow.self]
    )
}

/// `--role`: the roles of `ClusterRole`.
enum RoleOption: String, ExpressibleByArgument, CaseIterable {
    case node
    case proxy
    case `operator`
}

/// Checks of flag values through the library's validators, so the error names the flag.
enum CertFlags {
    /// Runs `body`, turning an identity refusal into `flag value: reason`.
    static func check<T>(_ flag: String, _ value: String, _ body: () throws(IdentityError) -> T) throws -> T {
        do { return try body() } catch { throw CLIError("\(flag) \(value): \(error.reason)") }
    }

    /// `--host` values, or `nil` when none were given (the library's default then applies).
    static func hosts(_ values: [String]) throws -> [HostName]? {
        guard !values.isEmpty else { return nil }
        return try values.map { value in
            try check("--host", "'\(value)'") { () throws(IdentityError) in try HostName.parse(value) }
        }
    }

    static func days(_ flag: String, _ days: Int) throws {
        guard (1...ClusterCA.maximumValidityDays).contains(days) else {
            throw CLIError("\(flag) \(days): must be 1-\(ClusterCA.maximumValidityDays) days")
        }
    }

    static func date(_ date: Date) -> String { date.formatted(.iso8601) }
}

/// `quorumctl certs init`: a new cluster CA and a certificate for every node, the proxy and one
/// operator.
struct CertsInit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Make a cluster CA and certificates for nodes 1..N, the proxy and an operator.",
        discussion: """
            Writes DIR/ca.pem and DIR/ca.key, then DIR/node-<i>.pem and .key for i in 1..N, \
            DIR/proxy.pem and .key, and DIR/operator.pem and .key. Keys are PKCS#8 PEM (ECDSA P-256), \
            written 0600. The role and node id are in each certificate as a SAN URI \
            (quorum-latch://node/<i>, quorum-latch://proxy, quorum-latch://operator/<name>). Refuses to \
            overwrite any existing file unless --force. Keep ca.key offline: it is needed only to \
            issue certificates.
            """
    )

    @Option(help: "Number of node certificates (ids 1..N).")
    var nodes: Int

    @Option(help: ArgumentHelp("Directory to write into (created if missing).", valueName: "dir"))
    var out: String

    @Option(help: "Validity of the node, proxy and operator certificates, in days.")
    var days: Int = LeafRequest.defaultValidityDays

    @Option(help: "Validity of the CA certificate, in days.")
    var caDays: Int = ClusterCA.defaultValidityDays

    @Option(
        name: .customLong("host"),
        help: ArgumentHelp(
            "A DNS name or IP address the node and proxy certificates are valid for; repeat for more "
                + "(default: localhost, 127.0.0.1, ::1).", valueName: "host"))
    var hosts: [String] = []

    @Option(help: "The name in the operator certificate.")
    var operatorName: String = ClusterCertificatesPlan.defaultOperatorName

    @Flag(help: "Replace existing certificate and key files.")
    var force = false

    func run() throws {
        guard PeerIdentity.nodeIDs.contains(nodes) else {
            throw CLIError("--nodes \(nodes): a cluster has 1-65535 nodes (ids 1..N)")
        }
        try CertFlags.days("--days", days)
        try CertFlags.days("--ca-days", caDays)
        guard days <= caDays else {
            throw CLIError("--days \(days): certificates cannot outlive the CA (--ca-days \(caDays))")
        }
        _ = try CertFlags.check("--operator-name", "'\(operatorName)'") { () throws(IdentityError) in
            try PeerIdentity.operatorNamed(operatorName)
        }
        let plan = ClusterCertificatesPlan(
            nodes: nodes, hosts: try CertFlags.hosts(hosts) ?? HostName.loopback, leafValidityDays: days,
            caValidityDays: caDays, operatorName: operatorName)
        let written = try CertificateFiles.initialize(CertificateDirectory(out), plan: plan, force: force)
        for file in written {
            Output.line(
                "\(file.holder): \(file.certificatePath), key \(file.keyPath) (0600), expires \(CertFlags.date(file.notValidAfter))"
            )
        }
        Output.line("hosts: \(plan.hosts.map(\.description).joined(separator: ", ")) (node and proxy certificates)")
    }
}

/// `quorumctl certs issue`: one more certificate from an existing CA (a new node, a replacement,
/// another operator).
struct CertsIssue: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue",
        abstract: "Issue one node, proxy or operator certificate from the CA in a directory.",
        discussion: """
            Reads DIR/ca.pem and DIR/ca.key and writes PREFIX.pem and PREFIX.key (0600). PREFIX \
            defaults to DIR/node-<id>, DIR/proxy or DIR/operator. Refuses to overwrite unless --force, \
            which is how a node's certificate is rotated.
            """
    )

    @Option(help: ArgumentHelp("Directory holding ca.pem and ca.key.", valueName: "dir"))
    var caDir: String

    @Option(help: "The certificate's role.")
    var role: RoleOption

    @Option(help: "The node id, 1-65535 (--role node only).")
    var id: Int?

    @Option(help: "The operator's name (--role operator only).")
    var name: String?

    @Option(help: "Validity in days.")
    var days: Int = LeafRequest.defaultValidityDays

    @Option(
        name: .customLong("host"),
        help: ArgumentHelp(
            "A DNS name or IP address the certificate is valid for; repeat for more (nodes and proxies; "
                + "default: localhost, 127.0.0.1, ::1).", valueName: "host"))
    var hosts: [String] = []

    @Option(help: ArgumentHelp("Path prefix of the files to write (PREFIX.pem, PREFIX.key).", valueName: "prefix"))
    var outPrefix: String?

    @Flag(help: "Replace existing files at the prefix.")
    var force = false

    func run() throws {
        let identity = try identity()
        try CertFlags.days("--days", days)
        let hosts = try CertFlags.hosts(hosts)
        if role == .operator, let host = hosts?.first {
            throw CLIError("--host '\(host)': operator certificates are client-only and carry no host names")
        }
        let directory = CertificateDirectory(caDir)
        let ca = try CertificateFiles.readCA(in: directory)
        let issued: IssuedCertificate
        do {
            issued = try ca.issue(LeafRequest(identity: identity, hosts: hosts, validityDays: days))
        } catch {
            // A validity that outlives the CA is the --days flag's fault; anything else (an expired
            // CA) is reported as the library words it.
            guard error.code == .invalidValidity else { throw error }
            throw CLIError("--days \(days): \(error.reason)")
        }
        let file = try CertificateFiles.write(
            issued, prefix: outPrefix ?? directory.prefix(for: identity), force: force)
        Output.line(
            "\(file.holder): \(file.certificatePath), key \(file.keyPath) (0600), expires \(CertFlags.date(file.notValidAfter))"
        )
    }

    private func identity() throws -> PeerIdentity {
        switch role {
        case .node:
            guard let id else { throw CLIError("--role node needs --id: node ids are 1-65535") }
            guard name == nil else { throw CLIError("--name: only operator certificates carry a name") }
            return try CertFlags.check("--id", "\(id)") { () throws(IdentityError) in try PeerIdentity.node(id) }
        case .proxy:
            guard id == nil else { throw CLIError("--id: only node certificates carry an id") }
            guard name == nil else { throw CLIError("--name: only operator certificates carry a name") }
            return .proxy
        case .operator:
            guard id == nil else { throw CLIError("--id: only node certificates carry an id") }
            guard let name else { throw CLIError("--role operator needs --name (letters, digits, '.', '_', '-')") }
            return try CertFlags.check("--name", "'\(name)'") { () throws(IdentityError) in
                try PeerIdentity.operatorNamed(name)
            }
        }
    }
}

/// `quorumctl certs show`: what a certificate file says, in the cluster's terms.
struct CertsShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print a certificate's role, node id, subject, names, validity and fingerprints.",
        discussion: """
            Exits 2 when the file is not a certificate the cluster would accept as a CA or as a node, \
            proxy or operator certificate, after printing what it holds. Compare "issuer key id" with \
            the "key id" of ca.pem to see which CA issued a certificate.
            """
    )

    @Argument(help: ArgumentHelp("A PEM or DER certificate file.", valueName: "file"))
    var file: String

    func run() throws {
        let summary = CertificateSummary(try CertificateFiles.readCertificate(file), source: file)
        var lines: [(String, String)] = [("file", file), ("role", summary.role)]
        switch summary.kind {
        case .leaf(.node(let id)): lines.append(("node id", "\(id)"))
        case .leaf(.operator(let name)): lines.append(("operator", name))
        default: break
        }
        let now = Date()
        let days = Int(summary.notValidAfter.timeIntervalSince(now) / 86400)
        let status =
            now < summary.notValidBefore
            ? "not yet valid" : now > summary.notValidAfter ? "EXPIRED" : "valid, \(days) days left"
        lines += [
            ("subject", summary.subject),
            ("issuer", summary.issuer),
            ("serial", summary.serialNumber),
            ("not before", CertFlags.date(summary.notValidBefore)),
            ("not after", "\(CertFlags.date(summary.notValidAfter)) (\(status))"),
            ("names", summary.alternativeNames.isEmpty ? "none" : summary.alternativeNames.joined(separator: ", ")),
            ("key usage", summary.keyUsage.isEmpty ? "none" : summary.keyUsage.joined(separator: ", ")),
            (
                "ext key usage",
                summary.extendedKeyUsage.isEmpty ? "none" : summary.extendedKeyUsage.joined(separator: ", ")
            ),
            ("public key", summary.keyAlgorithm),
            ("key id", summary.keyID ?? "none"),
            ("issuer key id", summary.issuerKeyID ?? "none"),
            ("sha256", summary.fingerprint),
        ]
        let width = lines.map(\.0.count).max() ?? 0
        for (label, value) in lines {
            Output.line("\(label):" + String(repeating: " ", count: width - label.count + 1) + value)
        }
        if case .refused(let error) = summary.kind { throw error }
    }
}
