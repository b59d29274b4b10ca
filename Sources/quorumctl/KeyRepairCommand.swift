import ArgumentParser
import Foundation
import QuorumCrypto
import QuorumNode
import QuorumProtocol

/// `quorumctl keygen repair --node R`: rebuilds a node's lost shares from the threshold of helpers,
/// over the network, without any party (the operator included) learning them.
struct KeygenRepair: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repair",
        abstract: "Rebuild a node's lost key shares with the help of the threshold of other nodes.",
        discussion: """
            For a node that lost its data directory's keys/ (its identity key may be new). Reads the public \
            DIR/group.json and DIR/sealing-group.json, asks every node of --cluster for its status, picks \
            helpers (--helpers, or the first threshold of nodes holding that group key), and relays the three \
            steps of the repair: each helper splits its part into deltas for the other helpers, each helper sums \
            what it received into a sigma for the lost node, and the lost node sums the sigmas into its shares, \
            checks them against the groups and installs them. Every delta and sigma travels sealed to the one \
            node that may open it. Exit status: 0 repaired, 1 a node refused or is unreachable (the line names \
            it and the step), 2 bad input.
            """
    )

    @OptionGroup var options: OperatorOptions

    @Option(help: "The node whose shares are rebuilt.")
    var node: UInt16

    @Option(help: ArgumentHelp("Where group.json and sealing-group.json are (default: .).", valueName: "dir"))
    var groupDir: String = "."

    @Option(
        parsing: .upToNextOption,
        help: ArgumentHelp(
            "The helpers' node ids (default: the first threshold of nodes with the group key).", valueName: "id"))
    var helpers: [UInt16] = []

    func run() throws {
        let cluster = try options.clusterFile()
        let client = try options.client(for: "keygen repair")
        func file(_ name: String) -> String { (groupDir as NSString).appendingPathComponent(name) }
        let signingGroupBytes: [UInt8]
        let sealingGroupBytes: [UInt8]
        let group: PublicKeyPackage<Ed25519Suite>
        do {
            signingGroupBytes = try KeyFiles.readFile(file("group.json"))
            sealingGroupBytes = try KeyFiles.readFile(file("sealing-group.json"))
            group = try KeyFiles.decodeGroup(signingGroupBytes, as: Ed25519Suite.self, file: file("group.json"))
            _ = try KeyFiles.decodeGroup(sealingGroupBytes, as: Ed25519Suite.self, file: file("sealing-group.json"))
        } catch {
            throw CLIError("\(error)")
        }
        guard let lostNode = cluster.nodes.first(where: { $0.id == node }) else {
            throw CLIError("--node \(node): not in \(options.cluster)")
        }
        guard group.identifiers.contains(where: { $0.value == node }) else {
            throw CLIError("--node \(node): not a participant of the group in \(file("group.json"))")
        }
        let groupKey = group.verifyingKey.encodedHex
        let threshold = group.minSigners
        if !helpers.isEmpty {
            guard Set(helpers).count == helpers.count, !helpers.contains(node) else {
                throw CLIError("--helpers \(helpers): list each helper once, and not the node being repaired")
            }
            guard helpers.count >= threshold else {
                throw CLIError("--helpers: \(helpers.count) helpers; the group's threshold is \(threshold)")
            }
            for id in helpers where !cluster.nodes.contains(where: { $0.id == id }) {
                throw CLIError("--helpers: node \(id) is not in \(options.cluster)")
            }
        }
        let chosen = helpers
        let limit = options.limit
        let outcome = Blocking.wait { () -> Result<KeyImportResponse, CLIError> in
            let statuses = await ClusterStatus.query(cluster, client: client, timeout: limit)
            var participants: [UInt16: CeremonyParticipant] = [:]
            var holders: [UInt16] = []
            for entry in statuses {
                guard case .success(let status) = entry.result, let key = status.identityKey,
                    let participant = try? CeremonyParticipant(nodeID: status.nodeID, identityKey: key)
                else { continue }
                participants[status.nodeID] = participant
                if status.groupKeyHex == groupKey, status.nodeID != lostNode.id { holders.append(status.nodeID) }
            }
            guard let lost = participants[lostNode.id] else {
                return .failure(CLIError("node \(lostNode.id) at \(lostNode.address) is unreachable; start it first"))
            }
            let helperIDs = chosen.isEmpty ? Array(holders.sorted().prefix(threshold)) : chosen.sorted()
            guard helperIDs.count >= threshold else {
                return .failure(
                    CLIError(
                        "only nodes \(holders.sorted()) answer with group key \(groupKey); repairing needs \(threshold)"
                    ))
            }
            var helperParticipants: [CeremonyParticipant] = []
            for id in helperIDs {
                guard let participant = participants[id] else {
                    return .failure(CLIError("helper node \(id) is unreachable"))
                }
                helperParticipants.append(participant)
            }
            let plan: RepairPlan
            do {
                plan = try RepairPlan(
                    repairID: Array(SecretBytes.random(count: 16).copyBytes()), lost: lost, helpers: helperParticipants)
            } catch {
                return .failure(CLIError("\(error)"))
            }
            return await Self.relay(
                plan, cluster: cluster, groups: (signingGroupBytes, sealingGroupBytes), client: client, limit: limit)
        }
        switch outcome {
        case .success(let answer) where answer.groupKeyHex == groupKey:
            Output.line("node \(node): repaired; group key \(answer.groupKeyHex)")
        case .success(let answer):
            Output.error("node \(node): reports group key \(answer.groupKeyHex), not \(groupKey)")
            throw ExitCode(1)
        case .failure(let error):
            Output.error("quorumctl: error: \(error.message)")
            throw ExitCode(1)
        }
    }

    /// Runs the three steps: deltas from every helper, sigmas from every helper, install on the
    /// lost node; the first refusal ends it, named.
    private static func relay(
        _ plan: RepairPlan, cluster: ClusterFile, groups: ([UInt8], [UInt8]), client: NodeClient, limit: Duration
    ) async -> Result<KeyImportResponse, CLIError> {
        let nodes = Dictionary(uniqueKeysWithValues: cluster.nodes.map { ($0.id, $0) })
        func each<M: WireMessage>(
            _ step: String, _ request: @escaping @Sendable (UInt16) -> M
        ) async -> Result<[SealedShare], CLIError> {
            await withTaskGroup(of: Result<RepairShares, CLIError>.self) { group in
                for helper in plan.helpers {
                    let node = nodes[helper.nodeID]!
                    group.addTask {
                        await client.answer(node, request(helper.nodeID), expecting: RepairShares.self, deadline: limit)
                            .mapError { CLIError("\(step), node \(node.id) at \(node.address): \($0.reason)") }
                    }
                }
                var shares: [SealedShare] = []
                for await result in group {
                    switch result {
                    case .success(let answer): shares += answer.shares
                    case .failure(let error): return .failure(error)
                    }
                }
                return .success(shares)
            }
        }
        let deltas: [SealedShare]
        switch await each("step 1 (deltas)", { _ in RepairDeltasRequest(plan: plan) }) {
        case .success(let shares): deltas = shares
        case .failure(let error): return .failure(error)
        }
        let sigmas: [SealedShare]
        switch await each(
            "step 2 (sigmas)", { id in RepairSigmaRequest(plan: plan, shares: deltas.filter { $0.recipient == id }) })
        {
        case .success(let shares): sigmas = shares
        case .failure(let error): return .failure(error)
        }
        let lost = nodes[plan.lost.nodeID]!
        do throws(TransportError) {
            return .success(
                try await client.ask(
                    lost,
                    RepairInstallRequest(plan: plan, shares: sigmas, signingGroup: groups.0, sealingGroup: groups.1),
                    expecting: KeyImportResponse.self, deadline: limit))
        } catch {
            return .failure(CLIError("step 3 (install), node \(lost.id) at \(lost.address): \(error.reason)"))
        }
    }
}
