import ArgumentParser
import Foundation
import QuorumCrypto
import QuorumNode
import QuorumProtocol

/// `quorumctl keygen import`: installs keys made offline by `keygen --dealer` on the running
/// nodes, each node's share files sealed to that node's identity key.
struct KeygenImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Install keys made offline by `keygen --dealer` on every node of a running cluster.",
        discussion: """
            Reads DIR/group.json, DIR/sealing-group.json and DIR/node-<i>/{signing,sealing}-share.json (the layout \
            `keygen --dealer --out DIR` writes), checks that the group's participants are exactly the cluster's \
            nodes, and sends each node its two share files sealed to the node's identity key (learned from the node \
            over mutual TLS), so nothing on the wire reveals a share. Each node checks the shares are its own and \
            match the groups before installing them. A node that already holds keys refuses unless --replace. \
            Exit status: 0 when every node installed the keys, 1 when any did not (the reasons follow on stderr), \
            2 bad input.
            """
    )

    @OptionGroup var options: OperatorOptions

    @Option(help: ArgumentHelp("The dealer's output directory (`keygen --dealer --out DIR`).", valueName: "dir"))
    var from: String

    @Flag(help: "Replace keys a node already holds (every share of the old group stops working there).")
    var replace = false

    func run() throws {
        let cluster = try options.clusterFile()
        let client = try options.client(for: "keygen import")
        func file(_ relative: String) -> String { (from as NSString).appendingPathComponent(relative) }
        let signingGroupBytes = try read(file("group.json"))
        let sealingGroupBytes = try read(file("sealing-group.json"))
        let signingGroup: PublicKeyPackage<Ed25519Suite>
        do {
            let suite = try KeyFiles.ciphersuite(of: signingGroupBytes, file: file("group.json"))
            guard suite == .ed25519 else {
                throw CLIError("\(file("group.json")): ciphersuite \(suite.rawValue); nodes run Ed25519 groups only")
            }
            signingGroup = try KeyFiles.decodeGroup(signingGroupBytes, as: Ed25519Suite.self, file: file("group.json"))
            _ = try KeyFiles.decodeGroup(sealingGroupBytes, as: Ed25519Suite.self, file: file("sealing-group.json"))
        } catch let error as KeyFileError {
            throw CLIError(error.description)
        }
        let participants = Set(signingGroup.identifiers.map(\.value))
        let nodes = Set(cluster.nodes.map(\.id))
        guard participants == nodes else {
            throw CLIError(
                "\(file("group.json")): the group's participants are nodes \(participants.sorted()) but "
                    + "\(options.cluster) lists nodes \(nodes.sorted()); import into the cluster the keys were made for"
            )
        }
        var requests: [(ClusterFile.Node, signing: SecretBytes, sealing: SecretBytes)] = []
        for node in cluster.nodes {
            do {
                requests.append(
                    (
                        node, try KeyFiles.readSecretFile(file("node-\(node.id)/signing-share.json")),
                        try KeyFiles.readSecretFile(file("node-\(node.id)/sealing-share.json"))
                    ))
            } catch {
                throw CLIError(error.description)
            }
        }
        let sends = requests
        let limit = options.limit
        let replace = replace
        let results = Blocking.wait {
            var results: [(ClusterFile.Node, Result<KeyImportResponse, TransportError>)] = []
            for (node, signing, sealing) in sends {
                results.append(
                    (
                        node,
                        await Self.send(
                            node, signing: signing, sealing: sealing, groups: (signingGroupBytes, sealingGroupBytes),
                            replace: replace, client: client, limit: limit)
                    ))
            }
            return results
        }
        let expectedKey = signingGroup.verifyingKey.encodedHex
        var failures = 0
        for (node, result) in results {
            switch result {
            case .success(let answer) where answer.groupKeyHex == expectedKey:
                Output.line("node \(node.id): imported; group key \(answer.groupKeyHex)")
            case .success(let answer):
                failures += 1
                Output.error(
                    "node \(node.id) at \(node.address): reports group key \(answer.groupKeyHex), not \(expectedKey)")
            case .failure(let error):
                failures += 1
                Output.error("node \(node.id) at \(node.address): \(error.code.rawValue): \(error.reason)")
            }
        }
        if failures > 0 { throw ExitCode(1) }
        Output.line("group key: \(expectedKey)")
    }

    private func read(_ path: String) throws -> [UInt8] {
        do { return try KeyFiles.readFile(path) } catch { throw CLIError(error.description) }
    }

    /// Learns `node`'s identity key from its status, seals its shares to it from a one-time key,
    /// and sends the import.
    private static func send(
        _ node: ClusterFile.Node, signing: SecretBytes, sealing: SecretBytes, groups: ([UInt8], [UInt8]),
        replace: Bool, client: NodeClient, limit: Duration
    ) async -> Result<KeyImportResponse, TransportError> {
        let target = "node \(node.id) at \(node.address)"
        do throws(TransportError) {
            let status = try await client.ask(node, StatusRequest(), expecting: StatusResponse.self, deadline: limit)
            guard let identityKey = status.identityKey else {
                throw TransportError(.refusedByPeer, peer: target, "reports no identity key; upgrade the node")
            }
            let sender = Ed25519KeyPair()
            let request: KeyImportRequest
            do {
                request = try KeyImportRequest(
                    senderKey: sender.publicKey,
                    signingShare: try IdentityBox.seal(
                        signing, context: KeyImportRequest.boxContext(nodeID: node.id, purpose: "signing"),
                        from: sender, to: identityKey),
                    sealingShare: try IdentityBox.seal(
                        sealing, context: KeyImportRequest.boxContext(nodeID: node.id, purpose: "sealing"),
                        from: sender, to: identityKey),
                    signingGroup: groups.0, sealingGroup: groups.1, replace: replace)
            } catch {
                throw TransportError(.configuration, peer: target, "cannot build the import: \(error)")
            }
            let answer = try await client.ask(node, request, expecting: KeyImportResponse.self, deadline: limit)
            guard answer.nodeID == node.id else {
                throw TransportError(.identityMismatch, peer: target, "answered as node \(answer.nodeID)")
            }
            return .success(answer)
        } catch {
            return .failure(error)
        }
    }
}

extension GroupElement {
    /// The element's encoding in lowercase hex, or `?` for one that has none (the identity).
    var encodedHex: String { (try? serialized()).map(Hex.encode) ?? "?" }
}
