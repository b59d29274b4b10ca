import ArgumentParser
import Foundation
import QuorumCrypto

/// `--ciphersuite`: the short names of `CiphersuiteID`.
enum SuiteOption: String, ExpressibleByArgument, CaseIterable {
    case ed25519
    case secp256k1

    var id: CiphersuiteID { CiphersuiteID(shortName: rawValue)! }
}

/// `quorumctl keygen`: makes the cluster's signing key and its separate sealing key.
struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate the group's signing and sealing keys.",
        discussion: """
            Writes DIR/group.json (signing group, public), DIR/sealing-group.json (sealing group, \
            public) and, for each node i, DIR/node-<i>/signing-share.json and \
            DIR/node-<i>/sealing-share.json (secret, 0600, in a 0700 directory). The signing and \
            sealing keys come from two independent runs. Give node-<i>/ to node i and to nobody else.
            """,
        subcommands: [KeygenImport.self]
    )

    @Flag(help: "Act as a trusted dealer, offline (tests and air-gapped setups); the dealer sees the group secrets.")
    var dealer = false

    @Option(help: "Signature shares needed for a group signature (k).")
    var threshold: Int

    @Option(help: "Number of nodes holding a share (n).")
    var nodes: Int

    @Option(help: "The FROST ciphersuite.")
    var ciphersuite: SuiteOption = .ed25519

    @Option(help: ArgumentHelp("Directory to write the key files into.", valueName: "dir"))
    var out: String

    @Flag(help: "Replace existing key files in the output directory.")
    var force = false

    @Flag(help: "Accept parameters that tolerate no faulty node (test clusters only).")
    var allowNoFaultTolerance = false

    func run() throws {
        guard dealer else {
            throw CLIError(
                "keygen without --dealer runs the networked DKG ceremony, which needs a running cluster of quorumd "
                    + "nodes and is not available yet; use --dealer for an offline trusted-dealer keygen")
        }
        let parameters: ThresholdParameters
        do {
            parameters = try ThresholdParameters(threshold: threshold, participants: nodes)
        } catch {
            throw CLIError("--threshold \(threshold) --nodes \(nodes): \(error.reason)")
        }
        try checkFaultTolerance(parameters)
        try prepareOutputDirectory()
        try generate(ciphersuite.id.type, parameters)
    }

    /// DESIGN.md §4: refuse parameters that tolerate no faulty node, unless told otherwise.
    private func checkFaultTolerance(_ parameters: ThresholdParameters) throws {
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
        if allowNoFaultTolerance {
            Output.error("quorumctl: warning: \(explanation); continuing because of --allow-no-fault-tolerance")
            return
        }
        throw CLIError("\(explanation); \(suggestion), or pass --allow-no-fault-tolerance for a test cluster")
    }

    private var groupPath: String { (out as NSString).appendingPathComponent("group.json") }
    private var sealingGroupPath: String { (out as NSString).appendingPathComponent("sealing-group.json") }
    private func nodeDirectory(_ id: Identifier) -> String { (out as NSString).appendingPathComponent("node-\(id)") }

    private func prepareOutputDirectory() throws {
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

    private func generate<C: Ciphersuite>(_: C.Type, _ parameters: ThresholdParameters) throws {
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
        warnAboutLeftoverNodes(beyond: parameters.participants)
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
    private func warnAboutLeftoverNodes(beyond participants: Int) {
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
