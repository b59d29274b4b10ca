import ArgumentParser
import Foundation
import QuorumCrypto
import QuorumNode
import QuorumProtocol

/// The options of `keygen` without `--dealer`: how to reach the cluster as its operator. All
/// optional at parse time, so that `keygen --dealer` needs none of them.
struct CeremonyOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The cluster file: [[nodes]] id = N, address = \"host:port\".", valueName: "file"))
    var cluster: String?

    @Option(
        help: ArgumentHelp("A `certs init` directory: uses operator.pem, operator.key and ca.pem.", valueName: "dir"))
    var certsDir: String?

    @Option(help: ArgumentHelp("The operator certificate (overrides --certs-dir).", valueName: "file"))
    var cert: String?

    @Option(help: ArgumentHelp("The operator certificate's private key (overrides --certs-dir).", valueName: "file"))
    var key: String?

    @Option(help: ArgumentHelp("The cluster CA certificate (overrides --certs-dir).", valueName: "file"))
    var ca: String?

    @Option(help: "Seconds to wait for each node in each phase of the ceremony.")
    var timeout: Int = 10

    @Flag(help: "Run the ceremony even though nodes hold keys; they replace them (every old share stops working).")
    var replace = false

    /// The same settings as ``OperatorOptions``, which makes the client.
    func operatorOptions() throws -> OperatorOptions {
        guard let cluster else { throw CLIError("--cluster FILE is required") }
        var arguments = ["--cluster", cluster, "--timeout", "\(timeout)"]
        for (flag, value) in [("--certs-dir", certsDir), ("--cert", cert), ("--key", key), ("--ca", ca)] {
            if let value { arguments += [flag, value] }
        }
        do { return try OperatorOptions.parse(arguments) } catch { throw CLIError("\(error)") }
    }
}

/// `quorumctl keygen refresh`: new shares of the same group keys, over the network.
struct KeygenRefresh: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "refresh",
        abstract: "Give every node new shares of the same signing and sealing keys (proactive refresh).",
        discussion: """
            Runs the ceremony in refresh mode across every node of --cluster: each node adds a random sharing of \
            zero to its shares, so every share changes while both group keys and the threshold stay (checked by \
            every node and by quorumctl). Old shares stop combining with new ones. Every node must hold keys of \
            the same group, and the group's members must be exactly the cluster's nodes. Writes DIR/group.json, \
            DIR/sealing-group.json (new verifying shares) and DIR/ceremony.json. Exit status as for keygen.
            """
    )

    @OptionGroup var options: OperatorOptions

    @Option(help: ArgumentHelp("Directory to write the public files into.", valueName: "dir"))
    var out: String = "."

    func run() throws {
        try CeremonyCommand(operator: options, out: out, allowUnsafe: false, replace: false).run(
            kind: .refresh, threshold: nil)
    }
}

/// `quorumctl keygen commit`: sends a ceremony's success certificate (from `ceremony.json`) again,
/// to nodes that missed it; they install the keys they staged for it.
struct KeygenCommit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "commit",
        abstract: "Send a ceremony's success certificate again, to nodes that did not confirm the commit.",
        discussion: """
            Reads DIR/ceremony.json (written by `keygen --cluster` or `keygen refresh` even when some node did not \
            confirm the commit) and sends its certificate to every node of --cluster. A node that staged keys for \
            that ceremony checks every signature and installs them; a node that already did answers committed \
            again. Exit status: 0 when every node confirmed, 1 when any did not, 2 bad input.
            """
    )

    @OptionGroup var options: OperatorOptions

    @Option(help: ArgumentHelp("The ceremony.json the ceremony wrote.", valueName: "file"))
    var ceremony: String

    func run() throws {
        let cluster = try options.clusterFile()
        let commit = try Self.read(ceremony)
        let client = try options.client(for: "keygen commit")
        let relay = ClusterRelay(cluster: cluster, client: client)
        let runner = CeremonyRunner(relay: relay, timeout: options.limit)
        let ids = cluster.nodes.map(\.id)
        let (committed, problems) = Blocking.wait {
            let result = await runner.sendCommit(commit, to: ids)
            await relay.close()
            return result
        }
        for id in committed { Output.line("node \(id): committed") }
        for problem in problems {
            Output.error("quorumctl: error: node \(problem.node.map(String.init) ?? "?"): \(problem.reason)")
        }
        if !problems.isEmpty { throw ExitCode(1) }
    }

    static func read(_ path: String) throws -> CeremonyCommit {
        let record: [String: Any]
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw CLIError("\(path): not a JSON object")
            }
            record = object
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError("\(path): cannot read: \(error.localizedDescription)")
        }
        guard record["format"] as? String == "quorum-latch/ceremony/v1",
            let id = (record["ceremony_id"] as? String).flatMap(Hex.decode),
            let digest = (record["transcript_digest"] as? String).flatMap(Hex.decode),
            let entries = record["certificate"] as? [[String: Any]]
        else {
            throw CLIError(
                "\(path): not a ceremony.json (format quorum-latch/ceremony/v1 with ceremony_id, transcript_digest, certificate)"
            )
        }
        do {
            let certificate = try entries.map { entry throws in
                guard let node = entry["node_id"] as? Int,
                    let signature = (entry["signature"] as? String).flatMap(Hex.decode),
                    let id = UInt16(exactly: node)
                else { throw CLIError("\(path): field 'certificate': each entry needs node_id and signature") }
                return try CeremonySignature(nodeID: id, signature: signature)
            }
            return try CeremonyCommit(ceremonyID: id, transcriptDigest: digest, certificate: certificate)
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError("\(path): \(error)")
        }
    }
}

/// One ceremony run from the command line: checks the cluster (every node up, its identity key,
/// who holds which keys), runs it with ``CeremonyRunner`` and writes the public files.
struct CeremonyCommand {
    let operatorOptions: OperatorOptions
    let out: String
    let allowUnsafe: Bool
    let replace: Bool

    init(options: CeremonyOptions, out: String, allowUnsafe: Bool) throws {
        self.operatorOptions = try options.operatorOptions()
        self.out = out
        self.allowUnsafe = allowUnsafe
        self.replace = options.replace
    }

    init(operator options: OperatorOptions, out: String, allowUnsafe: Bool, replace: Bool) {
        self.operatorOptions = options
        self.out = out
        self.allowUnsafe = allowUnsafe
        self.replace = replace
    }

    private func path(_ name: String) -> String { (out as NSString).appendingPathComponent(name) }

    func run(kind: CeremonyKind, threshold: Int?) throws {
        let cluster = try operatorOptions.clusterFile()
        let command = kind == .dkg ? "keygen" : "keygen refresh"
        let client = try operatorOptions.client(for: command)
        let limit = operatorOptions.limit
        let n = cluster.nodes.count
        if let threshold {
            let parameters: ThresholdParameters
            do { parameters = try ThresholdParameters(threshold: threshold, participants: n) } catch {
                throw CLIError(
                    "--threshold \(threshold) with the \(n) nodes of \(operatorOptions.cluster): \(error.reason)")
            }
            try KeygenGenerate.checkFaultTolerance(parameters, allowUnsafe: allowUnsafe)
        }
        try prepareOutputDirectory(kind)

        // Every node takes part and must answer: its identity key comes from its own answer over
        // mutual TLS, and each node checks it again against its peers' heartbeats.
        let entries = Blocking.wait { await ClusterStatus.query(cluster, client: client, timeout: limit) }
        var participants: [CeremonyParticipant] = []
        var problems: [String] = []
        for entry in entries {
            switch entry.result {
            case .failure(let error):
                problems.append(
                    "node \(entry.node.id) at \(entry.node.address): \(error.code.rawValue): \(error.reason)")
            case .success(let status):
                guard let key = status.identityKey,
                    let participant = try? CeremonyParticipant(nodeID: entry.node.id, identityKey: key)
                else {
                    problems.append("node \(entry.node.id) at \(entry.node.address): reports no identity key")
                    continue
                }
                participants.append(participant)
            }
        }
        if !problems.isEmpty {
            Output.error(
                "quorumctl: error: cannot begin the ceremony: every node of \(operatorOptions.cluster) takes part "
                    + "and must be up: " + problems.joined(separator: "; "))
            throw ExitCode(1)
        }
        let statuses = entries.compactMap { try? $0.result.get() }
        let holding = statuses.filter(\.hasKey)
        var previousGroupKey: String?
        switch kind {
        case .dkg:
            if !holding.isEmpty, !replace {
                throw CLIError(
                    "nodes \(holding.map { String($0.nodeID) }.joined(separator: ", ")) already hold keys (group key "
                        + "\(holding[0].groupKeyHex ?? "?")); pass --replace to make new keys (every old share and "
                        + "sealed credential stops working), or run `keygen refresh` to keep the group key")
            }
        case .refresh:
            let without = statuses.filter { !$0.hasKey }.map { String($0.nodeID) }
            guard without.isEmpty else {
                throw CLIError(
                    "nodes \(without.joined(separator: ", ")) hold no keys; refresh needs every node to hold keys of "
                        + "one group (run `keygen --cluster` first)")
            }
            let keys = Set(statuses.compactMap(\.groupKeyHex))
            guard keys.count == 1 else {
                let detail = statuses.map { "node \($0.nodeID): \($0.groupKeyHex ?? "-")" }.joined(separator: ", ")
                throw CLIError("the nodes hold keys of different groups (\(detail)); refresh needs one group")
            }
            previousGroupKey = keys.first
        }

        let plan = CeremonyPlan(
            kind: kind, threshold: threshold, participants: participants, replaceExisting: replace,
            allowUnsafe: allowUnsafe)
        let parameters = threshold.map { "\($0)-of-\(n)" } ?? "the group's threshold, \(n) nodes"
        Output.line(
            "key ceremony \(plan.idHex): \(kind), \(parameters), nodes \(plan.nodeIDs.map(String.init).joined(separator: ", "))"
        )
        let relay = ClusterRelay(cluster: cluster, client: client)
        let runner = CeremonyRunner(relay: relay, timeout: limit) { phase, took in
            Output.line("  \(phase): every node answered (\(Self.milliseconds(took)) ms)")
        }
        let started = ContinuousClock.now
        let result = Blocking.wait { () async -> Result<CeremonyOutcome, CeremonyFailure> in
            let result: Result<CeremonyOutcome, CeremonyFailure>
            do throws(CeremonyFailure) {
                result = .success(try await runner.run(plan))
            } catch {
                result = .failure(error)
            }
            await relay.close()
            return result
        }
        let outcome: CeremonyOutcome
        switch result {
        case .failure(let failure):
            if let partial = failure.outcome {
                // The certificate exists and some nodes installed the keys: keep the public files
                // and the certificate so that `keygen commit` can finish the rest.
                try writeFiles(partial)
                Output.line("wrote \(path("group.json")), \(path("sealing-group.json")), \(path("ceremony.json"))")
            }
            Output.error("quorumctl: error: key ceremony \(plan.idHex) \(failure.description)")
            throw ExitCode(1)
        case .success(let value):
            outcome = value
        }
        let took = ContinuousClock.now - started
        let signingKey = Hex.encode(outcome.signingGroupKey)
        if let previousGroupKey, previousGroupKey != signingKey {
            Output.error(
                "quorumctl: error: the refresh changed the group key from \(previousGroupKey) to \(signingKey); "
                    + "the nodes are misbehaving")
            throw ExitCode(1)
        }
        try writeFiles(outcome)

        let faults =
            (try? ThresholdParameters(threshold: outcome.threshold, participants: n))?.toleratedFaults.map(String.init)
            ?? "none"
        Output.line(
            [
                "committed on every node in \(Self.milliseconds(took)) ms: \(outcome.threshold)-of-\(n), tolerates f = \(faults)",
                "transcript digest: \(Hex.encode(outcome.transcriptDigest))",
                "signing group key: \(signingKey)" + (kind == .refresh ? " (unchanged)" : ""),
                "sealing group key: \(Hex.encode(outcome.sealingGroupKey))" + (kind == .refresh ? " (unchanged)" : ""),
                "wrote:",
                "  \(path("group.json")) (0644)",
                "  \(path("sealing-group.json")) (0644)",
                "  \(path("ceremony.json")) (0644)",
            ].joined(separator: "\n"))
    }

    private func writeFiles(_ outcome: CeremonyOutcome) throws {
        try KeyFiles.writePublicFile(outcome.sealingGroupFile, to: path("sealing-group.json"))
        try KeyFiles.writePublicFile(outcome.signingGroupFile, to: path("group.json"))
        try KeyFiles.writePublicFile(try ceremonyRecord(outcome), to: path("ceremony.json"))
    }

    /// Creates the output directory; refuses to overwrite a group file of a DKG unless --replace.
    private func prepareOutputDirectory(_ kind: CeremonyKind) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: out, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw CLIError("\(out): exists and is not a directory") }
        } else {
            do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
                throw CLIError("\(out): cannot create the directory: \(error.localizedDescription)")
            }
        }
        if kind == .dkg, !replace, FileManager.default.fileExists(atPath: path("group.json")) {
            throw CLIError(
                "\(path("group.json")): already exists; pass --replace to make new keys, or choose another --out")
        }
    }

    /// `ceremony.json`: what anyone needs to check the ceremony's success certificate.
    private func ceremonyRecord(_ outcome: CeremonyOutcome) throws -> [UInt8] {
        let record: [String: Any] = [
            "format": "quorum-latch/ceremony/v1",
            "ceremony_id": outcome.plan.idHex,
            "kind": "\(outcome.plan.kind)",
            "ciphersuite": "FROST-ED25519-SHA512-v1",
            "threshold": outcome.threshold,
            "participants": outcome.plan.participants.map {
                ["node_id": Int($0.nodeID), "identity_key": Hex.encode($0.identityKey)] as [String: Any]
            },
            "transcript_digest": Hex.encode(outcome.transcriptDigest),
            "signing_group_key": Hex.encode(outcome.signingGroupKey),
            "sealing_group_key": Hex.encode(outcome.sealingGroupKey),
            "certificate": outcome.certificate.map {
                ["node_id": Int($0.nodeID), "signature": Hex.encode($0.signature)] as [String: Any]
            },
            "completed_at": ISO8601DateFormatter().string(from: Date()),
        ]
        let data = try JSONSerialization.data(withJSONObject: record, options: [.prettyPrinted, .sortedKeys])
        return Array(data) + [0x0a]
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }
}
