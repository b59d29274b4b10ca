import ArgumentParser
import Foundation
import QuorumCrypto
import QuorumNode
import QuorumPolicy
import QuorumProtocol

/// `quorumctl secrets …`: the credentials the proxy injects, sealed to the quorum.
struct Secrets: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Seal credentials for the proxy, give the nodes their records, and list them (never their values).",
        discussion: """
            A credential is sealed to the sealing group and stored in the proxy's directory as \
            credentials/NAME.json (`set`); every node gets the same sealed record (`push`), so that it \
            releases its decryption share of that box only; only k nodes together can open it, for one \
            allowed call at a time.
            """,
        subcommands: [SecretsSet.self, SecretsPush.self, SecretsList.self]
    )
}

/// `quorumctl secrets set NAME --value-file F --sealing-group FILE --proxy-dir DIR [--replace]`.
struct SecretsSet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Seal a credential value to the sealing group and store it with the proxy.",
        discussion: """
            The value is read from a file or stdin (one trailing newline is dropped), sealed, and \
            never printed; the plaintext is wiped from memory. The record is written 0600, atomically.
            """
    )

    @Argument(help: ArgumentHelp("The secret's name, as the bundle's mounts name it.", valueName: "name"))
    var name: String

    @Option(help: ArgumentHelp("The file holding the value, or - for stdin.", valueName: "file"))
    var valueFile: String

    @Option(help: ArgumentHelp("The sealing group file (sealing-group.json).", valueName: "file"))
    var sealingGroup: String

    @Option(help: ArgumentHelp("The proxy's data directory.", valueName: "dir"))
    var proxyDir: String

    @Flag(help: "Replace an existing secret of this name.")
    var replace = false

    func run() throws {
        let store = SealedCredentialDirectory(proxyDirectory: proxyDir)
        let file = try store.file(for: name)
        if !replace, try store.contains(name) {
            throw CLIError("\(file): secret '\(name)' already exists; pass --replace to replace it")
        }
        let (suite, bytes) = try Inputs.groupSuite(sealingGroup)
        try seal(suite.type, groupBytes: bytes, store: store, file: file)
    }

    private func seal<C: Ciphersuite>(
        _: C.Type, groupBytes: [UInt8], store: SealedCredentialDirectory, file: String
    ) throws {
        let group = try Inputs.group(
            groupBytes, as: C.self, file: sealingGroup, purpose: .sealing, command: "secrets set")
        let value = Self.trimmingOneNewline(try Inputs.secret(valueFile))
        let source = valueFile == "-" ? "stdin" : valueFile
        guard value.count > 0 else {
            throw CLIError("\(source): the value is empty; a credential needs at least one byte")
        }
        let record = try SealedCredential.seal(
            value, name: name, to: group, created: Int64(Date().timeIntervalSince1970))
        try store.store(record, replace: replace)
        Output.line(
            "sealed secret '\(name)' to the \(group.minSigners)-of-\(group.maxSigners) sealing group "
                + "\(Self.fingerprint(record.sealingGroupKey)): \(file) (0600)")
        Output.line("give the nodes its record: quorumctl secrets push \(name) --proxy-dir \(proxyDir) --cluster ...")
    }

    /// The value without one trailing `\n` (or `\r\n`), copied between zeroizing buffers.
    static func trimmingOneNewline(_ value: SecretBytes) -> SecretBytes {
        let drop = value.withUnsafeBytes { bytes -> Int in
            guard bytes.last == 0x0A else { return 0 }
            return bytes.count >= 2 && bytes[bytes.count - 2] == 0x0D ? 2 : 1
        }
        guard drop > 0 else { return value }
        return value.withUnsafeBytes { SecretBytes($0.prefix($0.count - drop)) }
    }

    /// The first 16 hex digits of a group key: enough to tell keys apart in a listing.
    static func fingerprint(_ key: [UInt8]) -> String { String(Hex.encode(key).prefix(16)) }
}

/// `quorumctl secrets list --proxy-dir DIR [--bundle FILE]`.
struct SecretsList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the proxy's sealed credentials: name, sealing key, created, and the mounts using each.",
        discussion: """
            With --bundle, each secret's users are listed as latch:mount (inherited mounts \
            included), and secrets the bundle names but the proxy lacks are reported. Values are \
            never shown: the proxy holds only sealed boxes.
            """
    )

    @Option(help: ArgumentHelp("The proxy's data directory.", valueName: "dir"))
    var proxyDir: String

    @Option(
        help: ArgumentHelp(
            "A policy bundle (signed, YAML or JSON) to show which mounts use each secret.", valueName: "file"))
    var bundle: String?

    @Option(
        help: ArgumentHelp("For a signed bundle: a trusted operator public key (hex); repeatable.", valueName: "hex"))
    var signer: [String] = []

    func run() throws {
        let store = SealedCredentialDirectory(proxyDirectory: proxyDir)
        let records: [SealedCredential]
        do { records = try store.loadAll() } catch { throw CLIError(error.description) }
        let policy = try bundle.map { try Bundles.load($0, signers: signer) }
        var users: [String: [String]] = [:]
        if let policy {
            for latch in policy.latches {
                guard let resolved = policy.resolvedLatch(latch.id) else { continue }
                for mount in resolved.mounts {
                    if let secret = mount.secret { users[secret, default: []].append("\(latch.id):\(mount.path)") }
                }
            }
        }
        if records.isEmpty {
            Output.line("no sealed credentials in \(store.path)")
        } else {
            var rows = [["NAME", "SEALING KEY", "CREATED", "USED BY"]]
            for record in records {
                let usedBy: String
                if policy == nil {
                    usedBy = "-"
                } else if let list = users[record.name] {
                    usedBy = list.joined(separator: ", ")
                } else {
                    usedBy = policy!.secrets[record.name] == nil ? "(not in the bundle)" : "(no mount)"
                }
                rows.append([record.name, SecretsSet.fingerprint(record.sealingGroupKey), record.createdText, usedBy])
            }
            let widths = (0..<3).map { column in rows.map { $0[column].count }.max()! }
            for row in rows {
                let padded = (0..<3).map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                Output.line((padded + [row[3]]).joined(separator: "  "))
            }
        }
        if let policy {
            let stored = Set(records.map(\.name))
            for name in policy.secrets.keys.sorted() where !stored.contains(name) {
                let list = users[name].map { " (used by \($0.joined(separator: ", ")))" } ?? ""
                Output.line("missing: secret '\(name)' is in the bundle but not sealed in \(store.path)\(list)")
            }
        }
    }
}

/// `quorumctl secrets push NAME --proxy-dir DIR --cluster FILE --certs-dir DIR`.
struct SecretsPush: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Give every node the sealed record of a secret, so it can release its decryption share.",
        discussion: """
            Reads the record `secrets set` wrote in the proxy's data directory and sends it to each node over \
            mutual TLS with the operator certificate. A node keeps the record under its name if it is sealed to the \
            node's own sealing key, and on an allow makes its decryption share of that record's box, never of a box \
            a proxy presents. The record holds no plaintext. Exit status: 0 when every node stored it, 1 when any \
            refused or could not be reached, 2 bad input.
            """
    )

    @OptionGroup var options: OperatorOptions

    @Argument(help: ArgumentHelp("The secret's name.", valueName: "name"))
    var name: String

    @Option(help: ArgumentHelp("The proxy's data directory holding the sealed record.", valueName: "dir"))
    var proxyDir: String

    func run() throws {
        let record = try SealedCredentialDirectory(proxyDirectory: proxyDir).load(name)
        let failures = try Self.push(
            record, cluster: try options.clusterFile(), client: try options.client(for: "secrets push"),
            limit: options.limit)
        if failures > 0 { throw ExitCode(1) }
    }

    /// Sends `record` to every node of `cluster`; prints one line per node and returns how many
    /// did not store it.
    static func push(
        _ record: SealedCredential, cluster: ClusterFile, client: NodeClient, limit: Duration
    ) throws -> Int {
        let request: CredentialPutRequest
        do { request = try CredentialPutRequest(record: record.encoded()) } catch { throw CLIError("\(error)") }
        let results = Blocking.wait {
            await client.askEach(cluster.nodes, request, expecting: CredentialPutResponse.self, deadline: limit)
        }
        var failures = 0
        for (node, result) in results {
            switch result {
            case .success(let answer):
                Output.line("node \(node.id): holds secret '\(answer.name)'\(answer.replaced ? " (replaced)" : "")")
            case .failure(let error):
                failures += 1
                Output.error("node \(node.id) at \(node.address): \(error.code.rawValue): \(error.reason)")
            }
        }
        return failures
    }
}
