import ArgumentParser
import Foundation
import QuorumCrypto

/// `--ciphersuite`: the short names of `CiphersuiteID`.
enum SuiteOption: String, ExpressibleByArgument, CaseIterable {
    case ed25519
    case secp256k1

    var id: CiphersuiteID { CiphersuiteID(shortName: rawValue)! }
}

/// `quorumctl keygen`: the key commands. Without a subcommand name it runs ``KeygenGenerate``
/// (`keygen --cluster …` or `keygen --dealer …`); the subcommands have options of their own, which
/// is why the parent declares none.
struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate, refresh, repair or import the group's signing and sealing keys.",
        subcommands: [
            KeygenGenerate.self, KeygenImport.self, KeygenRefresh.self, KeygenRepair.self, KeygenCommit.self,
        ],
        defaultSubcommand: KeygenGenerate.self
    )
}

/// `quorumctl keygen [generate]`: makes the cluster's signing key and its separate sealing key,
/// either by the DKG ceremony across the running nodes (`--cluster`) or offline by a dealer
/// (`--dealer`).
struct KeygenGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate the group's signing and sealing keys (the default keygen subcommand).",
        discussion: """
            With --cluster FILE: runs the distributed key generation ceremony across every node of the cluster \
            (mutual TLS, operator certificate). No party ever holds a group secret; round-2 shares travel sealed \
            to their recipient's identity key; every node must sign the same transcript before any installs its \
            keys. Writes DIR/group.json, DIR/sealing-group.json and DIR/ceremony.json (the transcript digest and \
            the success certificate) and prints both group keys. Exit status: 0 done, 1 the ceremony failed (the \
            line names the node, the phase and why), 2 bad input.

            With --dealer: writes DIR/group.json (signing group, public), DIR/sealing-group.json (sealing group, \
            public) and, for each node i, DIR/node-<i>/signing-share.json and \
            DIR/node-<i>/sealing-share.json (secret, 0600, in a 0700 directory). The signing and \
            sealing keys come from two independent runs. Give node-<i>/ to node i and to nobody else.
            """
    )

    @Flag(help: "Act as a trusted dealer, offline (tests and air-gapped setups); the dealer sees the group secrets.")
    var dealer = false

    @Option(help: "Signature shares needed for a group signature (k).")
    var threshold: Int?

    @Option(help: "Number of nodes holding a share (n); --dealer only (the ceremony uses every node of --cluster).")
    var nodes: Int?

    @Option(help: "The FROST ciphersuite; --dealer only (nodes run Ed25519).")
    var ciphersuite: SuiteOption = .ed25519

    @Option(help: ArgumentHelp("Directory to write the key files into (the ceremony: default .).", valueName: "dir"))
    var out: String?

    @Flag(help: "Replace existing key files in the output directory (--dealer).")
    var force = false

    @Flag(help: "Accept parameters that break the fault model of DESIGN.md §4 (test clusters only).")
    var allowUnsafe = false

    @OptionGroup(title: "Ceremony options (without --dealer)")
    var ceremony: CeremonyOptions

    func run() throws {
        guard dealer else {
            guard ceremony.cluster != nil else {
                throw CLIError(
                    "keygen runs the DKG ceremony across a running cluster of quorumd nodes: pass --cluster FILE "
                        + "(with --certs-dir); or use --dealer for an offline trusted-dealer keygen")
            }
            guard nodes == nil else {
                throw CLIError("--nodes is for --dealer; the ceremony runs over every node of --cluster")
            }
            guard let threshold else { throw CLIError("--threshold K is required") }
            try CeremonyCommand(options: ceremony, out: out ?? ".", allowUnsafe: allowUnsafe)
                .run(kind: .dkg, threshold: threshold)
            return
        }
        guard let threshold, let nodes, let out else {
            throw CLIError("keygen --dealer needs --threshold, --nodes and --out")
        }
        let parameters: ThresholdParameters
        do {
            parameters = try ThresholdParameters(threshold: threshold, participants: nodes)
        } catch {
            throw CLIError("--threshold \(threshold) --nodes \(nodes): \(error.reason)")
        }
        try Self.checkFaultTolerance(parameters, allowUnsafe: allowUnsafe)
        try prepareOutputDirectory(out)
        try generate(ciphersuite.id.type, parameters, out: out)
    }

    /// DESIGN.md §4: refuse parameters that tolerate no faulty node, unless told otherwise.
    static func checkFaultTolerance(_ parameters: ThresholdParameters, allowUnsafe: Bool) throws {
        if let faults = parameters.toleratedFaults, faults >= 1 { return }
        let broken = parameters.limitingProperties.map { property in
            "\(property.rawValue) (\(property.condition)) fails at f = \(max(parameters.faultBound(for: property) + 1, 0))"
        }
        let suggestion =
            ThresholdParameters.recommended(participants: parameters.participants).map {
                "with \($0.participants) nodes use --threshold \($0.threshold) (tolerates f = \($0.toleratedFaults!))"
            } ?? "tolerating one faulty node needs at least 4 nodes (3-of-4)"
        let summary =
            parameters.toleratedFaults == nil
            ? "\(parameters) is unsafe even with no faulty node"
            : "\(parameters) tolerates no faulty node"
        let explanation = "\(summary): \(broken.joined(separator: "; "))"
        if allowUnsafe {
            Output.error("quorumctl: warning: \(explanation); continuing because of --allow-unsafe")
            return
        }
        throw CLIError("\(explanation); \(suggestion), or pass --allow-unsafe for a test cluster")
    }

    private func prepareOutputDirectory(_ out: String) throws {
        let groupPath = (out as NSString).appendingPathComponent("group.json")
        let sealingGroupPath = (out as NSString).appendingPathComponent("sealing-group.json")
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: out, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw CLIError("\(out): exists and is not a directory") }
        } else {
            do {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            } catch {
                throw CLIError("\(out): cannot create the directory: \(Self.reason(error))")
            }
        }
        for path in [groupPath, sealingGroupPath] where !force && FileManager.default.fileExists(atPath: path) {
            throw CLIError("\(path): already exists; pass --force to replace the keys (every old share stops working)")
        }
    }

    /// Creates (or tightens) a node's directory to 0700: it holds that node's secrets only.
    private func makePrivateDirectory(_ path: String) throws {
        if mkdir(path, 0o700) != 0, errno != EEXIST {
            throw CLIError("\(path): cannot create the directory: \(String(cString: strerror(errno)))")
        }
        var status = stat()
        guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
            throw CLIError("\(path): exists and is not a directory")
        }
        guard chmod(path, 0o700) == 0 else {
            throw CLIError("\(path): cannot set mode 0700: \(String(cString: strerror(errno)))")
        }
    }

    private func generate<C: Ciphersuite>(_: C.Type, _ parameters: ThresholdParameters, out: String) throws {
        let groupPath = (out as NSString).appendingPathComponent("group.json")
        let sealingGroupPath = (out as NSString).appendingPathComponent("sealing-group.json")
        func nodeDirectory(_ id: Identifier) -> String { (out as NSString).appendingPathComponent("node-\(id)") }
        // Two independent dealer runs: the signing and sealing keys share nothing.
        let signing = try dealShares(C.self, parameters, purpose: .signing)
        let sealing = try dealShares(C.self, parameters, purpose: .sealing)

        var written: [String] = []
        for (signingKey, sealingKey) in zip(signing.keys, sealing.keys) {
            let directory = nodeDirectory(signingKey.identifier)
            try makePrivateDirectory(directory)
            for (key, name) in [(signingKey, "signing-share.json"), (sealingKey, "sealing-share.json")] {
                let path = (directory as NSString).appendingPathComponent(name)
                try KeyFiles.writeSecretFile(try KeyFiles.encodeShare(key), to: path)
                written.append("\(path) (0600)")
            }
        }
        // The group files last: their presence means the whole set was written.
        try KeyFiles.writePublicFile(try KeyFiles.encodeGroup(sealing.group), to: sealingGroupPath)
        try KeyFiles.writePublicFile(try KeyFiles.encodeGroup(signing.group), to: groupPath)
        written = ["\(groupPath) (0644)", "\(sealingGroupPath) (0644)"] + written

        let faults = parameters.toleratedFaults.map(String.init) ?? "none"
        let bounds = ThresholdParameters.Property.allCases.map {
            "\($0.rawValue) \($0.condition) up to f = \(parameters.faultBound(for: $0))"
        }
        var lines = [
            "dealer keygen: \(parameters), \(C.id.rawValue)",
            "tolerates f = \(faults) faulty node(s) (\(bounds.joined(separator: "; ")))",
            "signing group key: \(Self.hex(signing.group.verifyingKey))",
            "sealing group key: \(Self.hex(sealing.group.verifyingKey))",
            "wrote:",
        ]
        lines += written.map { "  " + $0 }
        lines.append("the dealer saw both group secrets; give each node-<i>/ directory to node i only")
        Output.line(lines.joined(separator: "\n"))
        warnAboutLeftoverNodes(beyond: parameters.participants, out: out)
    }

    /// One dealer run; every share is checked against the dealer's VSS commitment, as its node
    /// would, before anything is written.
    private func dealShares<C: Ciphersuite>(
        _: C.Type, _ parameters: ThresholdParameters, purpose: KeyPurpose
    ) throws -> (keys: [KeyPackage<C>], group: PublicKeyPackage<C>) {
        let (shares, group) = try TrustedDealer<C>.generate(
            minSigners: parameters.threshold, maxSigners: parameters.participants, purpose: purpose)
        var keys: [KeyPackage<C>] = []
        for share in shares {
            do {
                let key = try share.verify()
                try key.check(against: group)
                keys.append(key)
            } catch {
                throw CLIError(
                    "the dealer's \(purpose.rawValue) share for node \(share.identifier) fails VSS verification: \(error)"
                )
            }
        }
        return (keys.sorted { $0.identifier < $1.identifier }, group)
    }

    /// With --force over a larger old cluster, old node directories stay behind; say so.
    private func warnAboutLeftoverNodes(beyond participants: Int, out: String) {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []
        for entry in entries.sorted() where entry.hasPrefix("node-") {
            if let id = Int(entry.dropFirst(5)), id > participants {
                Output.error(
                    "quorumctl: warning: \((out as NSString).appendingPathComponent(entry)) is left from an earlier "
                        + "keygen and is not part of this group")
            }
        }
    }

    private static func hex<E: GroupElement>(_ element: E) -> String {
        (try? element.serialized()).map(Hex.encode) ?? "?"
    }

    private static func reason(_ error: any Error) -> String {
        (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
    }
}
