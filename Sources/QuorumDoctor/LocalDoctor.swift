import Foundation
import QuorumCrypto
import QuorumIdentity
import QuorumLog
import QuorumNode
import QuorumPolicy
import QuorumProxy
import TOMLKit

/// `quorumctl doctor --config FILE`, run on a node's (or the proxy's) host: everything that can be
/// checked there without the network, in the order a start-up would trip over it. Reads only:
/// the store and the log are opened read-only, nothing is created, moved or chmod-ed; every fix
/// is left to the operator.
public struct LocalDoctor: Sendable {
    /// A run's inputs.
    public struct Options: Sendable {
        /// The `quorumd` or `quorum-proxy` configuration file.
        public var configPath: String
        /// The cluster's published `group.json`, to compare the node's share (or the proxy's
        /// group) with.
        public var groupPath: String?
        /// When the checks run (certificate validity).
        public var now: Date = Date()
        /// How soon a certificate's expiry is warned about.
        public var expiryWarning: TimeInterval = 30 * 86400
        /// Logs up to this many entries get the full store audit; larger ones a warn that names the
        /// command to run it.
        public var logAuditLimit: UInt64 = 100_000

        /// Options for `configPath`.
        public init(configPath: String, groupPath: String? = nil) {
            self.configPath = configPath
            self.groupPath = groupPath
        }
    }

    let options: Options

    /// A doctor for `options`.
    public init(_ options: Options) { self.options = options }

    /// Runs every check and returns the findings.
    public func run() async -> DoctorReport {
        var report = DoctorReport(mode: "local", subject: options.configPath)
        let path = options.configPath
        let read = await BlockingIO.run { () -> Result<TOMLFile, NodeConfigurationError> in
            do throws(NodeConfigurationError) {
                let (text, base) = try TOMLFieldReader.contents(of: path)
                return .success(TOMLFile(text: text, base: base))
            } catch {
                return .failure(error)
            }
        }
        let contents: TOMLFile
        let table: TOMLTable
        do {
            contents = try read.get()
            table = try TOMLFieldReader.table(contents.text, file: path)
        } catch {
            report.add(configFailure(error.description, key: error.key, file: path))
            return report
        }
        // A node's configuration names its node_id; a proxy's has [bundle] (and usually [cluster]).
        if table["node_id"] == nil, table["bundle"] != nil || table["cluster"] != nil {
            await ProxyChecks(options: options, text: contents.text, base: contents.base).run(into: &report)
        } else {
            await NodeChecks(options: options, text: contents.text, base: contents.base).run(into: &report)
        }
        return report
    }

    /// A configuration file's text and the directory its relative paths start from.
    struct TOMLFile: Sendable {
        let text: String
        let base: String
    }

    /// A configuration refusal as a finding; `text` (the file's contents) lets it name the line of
    /// the key at fault, which the configuration readers (TOMLKit gives no positions for values)
    /// only name by key.
    func configFailure(_ description: String, key: String, file: String, text: String? = nil) -> DoctorFinding {
        let line = text.flatMap { ConfigLines.line(of: key, in: $0) }
        let located = line.map { "\(description) (\(file) line \($0))" } ?? description
        return .fail(
            "config", located,
            fix: key.isEmpty
                ? "correct \(file) where the message points (docs/operations.md shows a complete file)"
                : "set \(key) in \(file)\(line.map { " (line \($0))" } ?? "") as the message says "
                    + "(docs/operations.md shows a complete file)")
    }
}

/// Where a configuration key is written: the line of `tls.certificate` or `peers[2].address` in
/// a TOML file, found by following `[table]` and `[[array]]` headers. Best effort, for messages
/// only: dotted keys and inline tables are not followed, and then no line is named.
enum ConfigLines {
    /// The 1-based line of `key`, or of its table's header when the key itself is missing.
    static func line(of key: String, in text: String) -> Int? {
        guard !key.isEmpty else { return nil }
        // "peers[2].address" → table "peers", element 2, leaf "address"; "node_id" → leaf only.
        var parts = key.split(separator: ".").map(String.init)
        let leaf = parts.removeLast()
        var table = parts.joined(separator: ".")
        var element = 1
        if let open = table.firstIndex(of: "["), table.hasSuffix("]"),
            let index = Int(table[table.index(after: open)..<table.index(before: table.endIndex)])
        {
            element = index
            table = String(table[..<open])
        }
        var leafName = leaf
        if let open = leaf.firstIndex(of: "[") { leafName = String(leaf[..<open]) }
        var current = ""
        var seen: [String: Int] = [:]
        var header: Int?
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[") {
                let name =
                    line.trimmingCharacters(in: CharacterSet(charactersIn: "[] \t"))
                    .split(separator: "#").first.map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "] \t")) }
                    ?? ""
                current = name
                seen[name, default: 0] += 1
                if name == table, seen[name] == element { header = number + 1 }
                continue
            }
            guard current == table, table.isEmpty || seen[table] == element else { continue }
            let name = line.split(separator: "=", maxSplits: 1).first?.trimmingCharacters(in: .whitespaces)
            if name == leafName || name == "\"\(leafName)\"" { return number + 1 }
        }
        return header
    }
}

/// The local checks of a `quorumd` configuration.
struct NodeChecks {
    let options: LocalDoctor.Options
    let text: String
    let base: String

    func run(into report: inout DoctorReport) async {
        let file = options.configPath
        let configuration: NodeConfiguration
        do { configuration = try NodeConfiguration.parse(text, file: file, baseDirectory: base) } catch {
            report.add(LocalDoctor(options).configFailure(error.description, key: error.key, file: file, text: text))
            return
        }
        let peers = configuration.peers.map { "\($0.id) at \($0.address)" }.joined(separator: ", ")
        report.add(
            .ok(
                "config",
                "\(file): node \(configuration.nodeID), listen \(configuration.listen), data_dir "
                    + "\(configuration.dataDirectory), \(Doctor.count(configuration.peers.count, "peer"))"
                    + (peers.isEmpty ? "" : " (\(peers))")))

        // Whether the node runs here decides what may be opened and probed: RocksDB holds a POSIX
        // lock on state/LOCK for as long as the node has the store open.
        let lockPath = (configuration.dataDirectory as NSString).appendingPathComponent("state/LOCK")
        let (running, owner) = await BlockingIO.run { () -> (pid_t?, uid_t) in
            var running: pid_t?
            if case .success(let holder?) = HostFacts.lockHolder(lockPath) { running = holder }
            return (running, running.flatMap(HostFacts.user(ofProcess:)) ?? HostFacts.effectiveUser)
        }
        let ownerDescription =
            running == nil
            ? "\(HostFacts.describe(user: owner)), who runs doctor"
            : "the node's user \(HostFacts.describe(user: owner))"
        if let running {
            report.add(.ok("process", "quorumd runs here as pid \(running), \(HostFacts.describe(user: owner))"))
        } else {
            report.add(.ok("process", "quorumd is not running on this data_dir (state/LOCK is not held)"))
        }

        let certificates = CertificateChecks(
            configFile: file, table: "tls", expected: .node(id: configuration.nodeID), usages: [.server, .client],
            now: options.now, expiryWarning: options.expiryWarning, owner: owner, ownerDescription: ownerDescription)
        let (caFinding, ca) = await BlockingIO.run { certificates.checkCA(configuration.clusterCAPath) }
        report.add(caFinding)
        let (certificateFinding, certificate) = await certificates.checkCertificate(
            configuration.certificatePath, keyPath: configuration.privateKeyPath, ca: ca)
        report.add(certificateFinding)
        report.add(
            await BlockingIO.run {
                certificates.checkPrivateKey(
                    configuration.privateKeyPath, certificatePath: configuration.certificatePath,
                    certificate: certificate)
            })
        report.add(
            contentsOf: await BlockingIO.run {
                checkFiles(configuration, running: running, owner: owner, ownerDescription: ownerDescription)
            })
    }

    /// The checks under `data_dir`, the listen address and the operator keys: file, lock and
    /// RocksDB reads, run on the thread pool.
    private func checkFiles(
        _ configuration: NodeConfiguration, running: pid_t?, owner: uid_t, ownerDescription: String
    ) -> [DoctorFinding] {
        let file = configuration.file
        var report = DoctorReport(mode: "local", subject: file)
        let dataExists = checkDataDirectory(configuration, owner: owner, ownerDescription: ownerDescription, &report)
        if dataExists {
            checkIdentityKey(configuration, owner: owner, ownerDescription: ownerDescription, &report)
        }
        checkKeys(configuration, exists: dataExists, owner: owner, ownerDescription: ownerDescription, &report)
        if dataExists {
            checkStore(configuration, running: running, &report)
        }
        checkListen(configuration, running: running, &report)
        if configuration.operatorKeys.isEmpty {
            report.add(
                .warn(
                    "policy.operator_keys",
                    "the node trusts no operator key, so it accepts no bundle and decides nothing",
                    fix:
                        "add the operators' public keys (quorumctl policy keygen prints one) to [policy] operator_keys in \(file)"
                ))
        } else {
            report.add(
                .ok("policy.operator_keys", Doctor.count(configuration.operatorKeys.count, "operator key") + " trusted")
            )
        }
        return report.findings
    }

    /// `data_dir`: a directory this user can write, 0700. Returns whether it exists.
    private func checkDataDirectory(
        _ configuration: NodeConfiguration, owner: uid_t, ownerDescription: String, _ report: inout DoctorReport
    ) -> Bool {
        let path = configuration.dataDirectory
        let file = configuration.file
        switch HostFacts.status(path) {
        case .failure(let problem) where problem.isMissing:
            report.add(
                .warn(
                    "data_dir", "\(path) does not exist: a node that never started, or data_dir names the wrong place",
                    fix:
                        "for a new node nothing (quorumd creates it, 0700, at start); otherwise set data_dir in \(file) to the node's data directory"
                ))
            return false
        case .failure(let problem):
            report.add(
                .fail(
                    "data_dir", "\(path): \(problem.reason)",
                    fix: "run doctor as \(ownerDescription), or fix the permissions of its parent directories"))
            return false
        case .success(let status):
            guard status.isDirectory else {
                report.add(
                    .fail(
                        "data_dir", "\(path) exists and is not a directory",
                        fix: "move it aside, or set data_dir in \(file) to a directory"))
                return false
            }
            var problems: [String] = []
            var fixes: [String] = []
            if !HostFacts.canAccess(path, write: true) {
                problems.append("not writable by uid \(HostFacts.effectiveUser)")
                fixes.append("chown -R \(HostFacts.userName(owner) ?? String(owner)) \(path)")
            }
            if status.owner != owner {
                problems.append("owned by \(HostFacts.describe(user: status.owner)), not \(ownerDescription)")
                if fixes.isEmpty { fixes.append("chown -R \(HostFacts.userName(owner) ?? String(owner)) \(path)") }
            }
            if !problems.isEmpty {
                report.add(
                    .fail(
                        "data_dir", "\(path): \(problems.joined(separator: "; "))", fix: fixes.joined(separator: "; ")))
            } else if status.isWiderThanOwner {
                report.add(
                    .warn(
                        "data_dir", "\(path): mode \(status.octalMode) lets group or others look inside",
                        fix: "chmod 700 \(path)"))
            } else {
                report.add(.ok("data_dir", "\(path): a directory, writable, mode \(status.octalMode)"))
            }
            return true
        }
    }

    private func checkIdentityKey(
        _ configuration: NodeConfiguration, owner: uid_t, ownerDescription: String, _ report: inout DoctorReport
    ) {
        let path = (configuration.dataDirectory as NSString).appendingPathComponent("identity.key")
        switch SecretFileCheck.inspect(path, owner: owner, ownerDescription: ownerDescription) {
        case .missing(let reason):
            report.add(
                .warn(
                    "identity_key", "\(path) \(reason): the node makes a new identity key at its next start",
                    fix:
                        "nothing for a new node; otherwise restore it from backup, or let the node make one (peers learn it from heartbeats)"
                ))
        case .problems(let problems, let fixes) where !problems.isEmpty:
            report.add(.fail("identity_key", problems.joined(separator: "; "), fix: fixes.joined(separator: "; ")))
        case .problems:
            guard HostFacts.canAccess(path) else {
                report.add(
                    .fail(
                        "identity_key", "\(path): not readable by uid \(HostFacts.effectiveUser)",
                        fix: "run doctor as \(ownerDescription)"))
                return
            }
            do {
                let key = try KeyFiles.decodeEd25519Key(
                    try KeyFiles.readSecretFile(path), role: NodeIdentityKey.role, file: path)
                report.add(.ok("identity_key", "\(path): Ed25519 public key \(Hex.encode(key.publicKey))"))
            } catch {
                report.add(
                    .fail(
                        "identity_key", "\(error)",
                        fix:
                            "stop the node, move \(path) aside and start it: it makes a new identity key and peers learn it from heartbeats"
                    ))
            }
        }
    }

    /// The group keys in `data_dir/keys`: complete, shares 0600 and this node's, and (with
    /// `--group`) of the published group.
    private func checkKeys(
        _ configuration: NodeConfiguration, exists: Bool, owner: uid_t, ownerDescription: String,
        _ report: inout DoctorReport
    ) {
        let id = configuration.nodeID
        let directory = (configuration.dataDirectory as NSString).appendingPathComponent("keys")
        let ceremony =
            "run the key ceremony once every node is up (quorumctl keygen --cluster cluster.toml --certs-dir certs "
            + "--threshold K), or, if only this node lost them, quorumctl keygen repair --node \(id) --group-dir DIR "
            + "--cluster cluster.toml --certs-dir certs"
        var problems: [String] = []
        var fixes: [String] = []
        for name in ["signing-share.json", "sealing-share.json"] {
            let share = (directory as NSString).appendingPathComponent(name)
            guard HostFacts.status(share).isSuccess else { continue }
            if case .problems(let found, let fixing) = SecretFileCheck.inspect(
                share, owner: owner, ownerDescription: ownerDescription)
            {
                problems += found
                fixes += fixing
            }
        }
        guard problems.isEmpty else {
            report.add(.fail("keys", problems.joined(separator: "; "), fix: fixes.joined(separator: "; ")))
            return
        }
        let keys: NodeKeys
        do {
            guard exists, let found = try NodeKeyStore.read(dataDirectory: configuration.dataDirectory) else {
                report.add(
                    .warn(
                        "keys", "\(directory): no group keys installed: the node cannot sign or open credentials",
                        fix: ceremony))
                return
            }
            keys = found
        } catch {
            report.add(
                .fail(
                    "keys", error.description,
                    fix: "restore \(directory) from backup, or move it aside and rebuild: \(ceremony)"))
            return
        }
        let groupKey = keys.groupKeyBytes
        guard keys.identifier.value == id else {
            report.add(
                .fail(
                    "keys",
                    "\(directory) holds participant \(keys.identifier)'s shares, but node_id is \(id): another node's keys",
                    fix: "put node \(id)'s own keys/ back (from backup), or move these aside and \(ceremony)"))
            return
        }
        let threshold = "\(keys.signingGroup.minSigners)-of-\(keys.signingGroup.maxSigners)"
        guard let groupPath = options.groupPath else {
            report.add(
                .ok(
                    "keys",
                    "\(directory): participant \(id)'s signing and sealing shares, group key \(Hex.encode(groupKey)), "
                        + "\(threshold); pass --group group.json to compare with the published group"))
            return
        }
        let published: PublicKeyPackage<Ed25519Suite>
        do { published = try GroupFiles.signingGroup(groupPath) } catch {
            report.add(
                .fail(
                    "group", error.description,
                    fix: "pass the cluster's group.json (the keygen --out directory) with --group"))
            return
        }
        report.add(
            .ok(
                "keys",
                "\(directory): participant \(id)'s signing and sealing shares, group key "
                    + "\(Hex.encode(groupKey)), \(threshold)"))
        do {
            try keys.signing.check(against: published)
            report.add(
                .ok(
                    "group",
                    "node \(id)'s public share matches \(groupPath) (group key \(GroupFiles.keyHex(published)))"))
        } catch {
            report.add(
                .fail(
                    "group",
                    "node \(id)'s signing share does not belong to \(groupPath) (its group key is \(Hex.encode(groupKey)), "
                        + "\(groupPath)'s is \(GroupFiles.keyHex(published))): \(error.description)",
                    fix:
                        "if \(groupPath) is this cluster's, the node holds other keys: move \(directory) aside and "
                        + "quorumctl keygen repair --node \(id) --group-dir \((groupPath as NSString).deletingLastPathComponent) "
                        + "--cluster cluster.toml --certs-dir certs; otherwise pass the cluster's group.json"))
        }
    }

    /// The state store (read-only, with every record read) and, once the node keeps one, the
    /// replicated log's store audit. Skipped with a warn while the node holds the store.
    private func checkStore(_ configuration: NodeConfiguration, running: pid_t?, _ report: inout DoctorReport) {
        let state = (configuration.dataDirectory as NSString).appendingPathComponent("state")
        if let running {
            report.add(
                .warn(
                    "store",
                    "\(state) not opened: the node is running (pid \(running) holds its lock), and doctor does not "
                        + "read a store under a running node",
                    fix:
                        "stop the node (systemctl stop quorumd@…) and run doctor again to check the store, or check the "
                        + "running cluster with quorumctl doctor --cluster cluster.toml --certs-dir certs"))
            return
        }
        let restore =
            "stop the node and restore \(state) from a backup of the stopped node (docs/operations.md, The data "
            + "directory); a node given an empty state/ forgets its signed decisions and policy state"
        do {
            guard let inspection = try NodeStore.inspect(dataDirectory: configuration.dataDirectory) else {
                report.add(.ok("store", "\(state): no store yet; quorumd creates it at first start"))
                return
            }
            let total = inspection.records.values.reduce(0, +)
            let families = inspection.records.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
            guard inspection.format == nil || inspection.format == NodeStore.format else {
                report.add(
                    .fail(
                        "store",
                        "\(state) holds format \"\(inspection.format!)\"; this quorumd reads \"\(NodeStore.format)\"",
                        fix: "run the quorumd version that wrote it, or \(restore)"))
                return
            }
            report.add(
                .ok(
                    "store",
                    "\(state): opens read-only, format \(inspection.format ?? "(not yet written)"), \(total) records "
                        + "read\(inspection.complete ? "" : " (the first of each family)") without error (\(families.joined(separator: ", ")))"
                ))
        } catch {
            report.add(.fail("store", error.description, fix: restore))
            return
        }
        checkLog(configuration, &report)
    }

    /// The node's replicated log in `<data_dir>/log`: when it is there, its RocksDB store is
    /// audited read-only (every stored hash recomputed from the entries) up to
    /// ``LocalDoctor/Options/logAuditLimit`` entries. A node that never started has no such
    /// directory, and nothing is reported.
    private func checkLog(_ configuration: NodeConfiguration, _ report: inout DoctorReport) {
        let path = (configuration.dataDirectory as NSString).appendingPathComponent("log")
        guard HostFacts.status(path).isSuccess else { return }
        let verify = "quorumctl log verify --db \(path)"
        let rebuild =
            "\(verify) lists every problem; stop the node, move \(path) aside and let it catch up from its peers"
        do {
            let log = try MerkleLog(directory: path, readOnly: true)
            let size = log.size
            guard size <= options.logAuditLimit else {
                report.add(
                    .warn(
                        "log", "\(path): \(size) entries, more than doctor audits (\(options.logAuditLimit))",
                        fix: "run \(verify) (it reads every entry)"))
                return
            }
            let problems = try log.auditStore()
            guard problems.isEmpty else {
                let shown = problems.prefix(3).map(\.description).joined(separator: "; ")
                report.add(
                    .fail(
                        "log", "\(path): \(problems.count) problems in the store: \(shown)",
                        fix: rebuild))
                return
            }
            report.add(.ok("log", "\(path): \(size) entries, store audit clean"))
        } catch {
            report.add(.fail("log", "\(path): \(error)", fix: rebuild))
        }
    }

    private func checkListen(_ configuration: NodeConfiguration, running: pid_t?, _ report: inout DoctorReport) {
        let listen = configuration.listen
        if running != nil {
            report.add(.ok("listen", "\(listen) (not probed: the node is running and listens there)"))
            return
        }
        if listen.port == 0 {
            report.add(.ok("listen", "\(listen): port 0, any free port at start"))
            return
        }
        report.add(ListenProbe.finding("listen", listen, file: configuration.file, what: "the node"))
    }
}

/// Whether a listen address is free, as a finding.
enum ListenProbe {
    static func finding(_ key: String, _ address: NodeAddress, file: String, what: String) -> DoctorFinding {
        switch HostFacts.probeListen(host: address.host, port: address.port) {
        case .success:
            return .ok(key, "\(address): free to listen on")
        case .failure(.inUse):
            return .fail(
                key, "\(address) is in use by another process, so \(what) cannot listen there",
                fix:
                    "find it with ss -ltnp 'sport = :\(address.port)' and stop it, or set \(key) in \(file) to a free port"
            )
        case .failure(.notLocal(let reason)):
            return .fail(
                key, "\(address): \(address.host) is not an address of this host (\(reason))",
                fix: "set \(key) in \(file) to one of this host's addresses (or 0.0.0.0)")
        case .failure(.unresolved(let reason)):
            return .fail(
                key, "\(address): \(address.host) does not resolve (\(reason))",
                fix: "set \(key) in \(file) to an address, or fix name resolution for \(address.host)")
        case .failure(.other(let reason)):
            return .fail(
                key, "\(address): cannot listen (\(reason))",
                fix: "ports below 1024 need privileges: choose a higher port in \(key) of \(file)")
        }
    }
}

/// Reading group files for the checks.
enum GroupFiles {
    /// The Ed25519 signing group of `path`, refusing a sealing group or another ciphersuite.
    static func signingGroup(_ path: String) throws(KeyFileError) -> PublicKeyPackage<Ed25519Suite> {
        try group(path, purpose: .signing)
    }

    /// The Ed25519 group of `purpose` at `path`.
    static func group(_ path: String, purpose: KeyPurpose) throws(KeyFileError) -> PublicKeyPackage<Ed25519Suite> {
        let bytes = try KeyFiles.readFile(path)
        let suite = try KeyFiles.ciphersuite(of: bytes, file: path)
        guard suite == .ed25519 else {
            throw KeyFileError(file: path, field: "ciphersuite", "is \(suite.rawValue); a cluster's nodes use ed25519")
        }
        let group = try KeyFiles.decodeGroup(bytes, as: Ed25519Suite.self, file: path)
        guard group.purpose == purpose else {
            throw KeyFileError(
                file: path, field: "purpose",
                "is the \(group.purpose.rawValue) group; expected the \(purpose.rawValue) group "
                    + "(\(purpose == .signing ? "group.json" : "sealing-group.json"))")
        }
        return group
    }

    /// The group key in hex.
    static func keyHex(_ group: PublicKeyPackage<Ed25519Suite>) -> String {
        Hex.encode((try? group.verifyingKey.serialized()) ?? [])
    }
}

extension Result {
    var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }
}
