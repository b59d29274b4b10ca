import Logging
import QuorumCrypto
import QuorumIdentity
import QuorumProtocol

/// Installs keys made offline by a dealer (`quorumctl keygen import`): operators only. The share
/// files arrive sealed to this node's identity key; the node opens them, checks that the shares
/// are its own (participant = node id), match their groups and belong together, and installs
/// them with ``NodeKeyStore/install(_:)``. A node that already holds keys refuses unless the
/// request says `replace`.
public struct KeyImportService: NodeFrameHandler {
    private let nodeID: UInt16
    private let identity: Ed25519KeyPair
    private let keys: NodeKeyStore
    private let logger: Logger

    /// A service installing into `keys` for node `nodeID`, opening boxes with `identity`.
    public init(nodeID: UInt16, identity: Ed25519KeyPair, keys: NodeKeyStore, logger: Logger) {
        self.nodeID = nodeID
        self.identity = identity
        self.keys = keys
        self.logger = logger
    }

    /// Key imports come from operators.
    public var requestRoles: [UInt16: Set<ClusterRole>] { [KeyImportRequest.type: [.operator]] }

    /// Answers a ``KeyImportRequest`` with a ``KeyImportResponse`` or an error response naming
    /// what is wrong.
    public func handle(_ peer: PeerIdentity, _ frame: Frame) async throws -> Frame? {
        guard frame.kind == .request else { return nil }
        let request = try frame.decode(KeyImportRequest.self)
        let installed: NodeKeys
        do throws(NodeKeysError) { installed = try install(request) } catch {
            logger.warning("refused a key import", metadata: ["operator": "\(peer)", "reason": "\(error)"])
            return try Frame.errorResponse(ErrorResponse(.refused, error.description), to: frame)
        }
        logger.notice(
            "imported dealer keys",
            metadata: ["operator": "\(peer)", "group_key": "\(Hex.encode(installed.groupKeyBytes))"])
        return try Frame.response(KeyImportResponse(nodeID: nodeID, groupKey: installed.groupKeyBytes), to: frame)
    }

    private func install(_ request: KeyImportRequest) throws(NodeKeysError) -> NodeKeys {
        if let current = keys.current, !request.replace {
            throw NodeKeysError(
                "node \(nodeID) already holds keys for group \(Hex.encode(current.groupKeyBytes)); "
                    + "importing would replace them (pass --replace to mean it)")
        }
        func open(_ box: [UInt8], _ purpose: String) throws(NodeKeysError) -> SecretBytes {
            do {
                return try IdentityBox.open(
                    box, context: KeyImportRequest.boxContext(nodeID: nodeID, purpose: purpose),
                    from: request.senderKey, to: identity)
            } catch {
                throw NodeKeysError("the \(purpose) share does not open with node \(nodeID)'s identity key: \(error)")
            }
        }
        let imported: NodeKeys
        do {
            let signing = try KeyFiles.decodeShare(
                try open(request.signingShare, "signing"), as: Ed25519Suite.self, file: "signing-share.json")
            let sealing = try KeyFiles.decodeShare(
                try open(request.sealingShare, "sealing"), as: Ed25519Suite.self, file: "sealing-share.json")
            let signingGroup = try KeyFiles.decodeGroup(request.signingGroup, as: Ed25519Suite.self, file: "group.json")
            let sealingGroup = try KeyFiles.decodeGroup(
                request.sealingGroup, as: Ed25519Suite.self, file: "sealing-group.json")
            guard signing.identifier.value == nodeID else {
                throw NodeKeysError(
                    "the shares are participant \(signing.identifier)'s; this is node \(nodeID) (send node-\(nodeID)/)")
            }
            imported = try NodeKeys(
                signing: signing, sealing: sealing, signingGroup: signingGroup, sealingGroup: sealingGroup)
        } catch let error as NodeKeysError {
            throw error
        } catch {
            throw NodeKeysError("\(error)")
        }
        try keys.install(imported)
        return imported
    }
}
