import QuorumCrypto

/// What the audit API and the auditor's tools read from a node's replicated log, without knowing
/// how the node replicates it: the Merkle log itself (entries, tiles, proofs), the newest
/// checkpoint the quorum signed, where a receipt landed, and the equivocation evidence the node
/// has caught.
///
/// It lives here, in `QuorumLog`, so that the node (which implements it) and the audit API (which
/// serves it) both depend on it and neither on the other (DESIGN.md §3: arrows point down).
public protocol AuditLogSource: Sendable {
    /// The node's Merkle log: entries, hash tiles, entry bundles, inclusion and consistency proofs.
    /// It only ever holds entries a quorum checkpoint covers (or will, once the node has stored
    /// the checkpoint that covers them).
    var log: MerkleLog { get }

    /// The newest checkpoint the quorum signed that this node has stored and whose tree it holds:
    /// the group's signature line first, then one cosignature line per node that took part.
    /// `nil` before the first checkpoint.
    func latestCheckpoint() throws -> SignedNote?

    /// The leaf index of the receipt entry for `requestID` in ``log``, or `nil` if the node's log
    /// holds no receipt for it (yet).
    func receiptIndex(requestID: String) throws -> UInt64?

    /// Every pair of valid cosignatures by one node key over different roots of one tree size that
    /// this node has seen, oldest first: proof that the key's holder signed a fork.
    func evidence() throws -> [EquivocationEvidence]

    /// Decisions this node reached whose receipts never reached its log (nor its pool of entries
    /// waiting for one) within the node's `replication.unlogged_after_ms`, oldest first: what a
    /// proxy that keeps receipts out of the log leaves behind on every node that decided.
    func unlogged() throws -> [UnloggedDecision]
}

/// A decision a node reached, in its own verdict, whose receipt did not reach the log in time.
/// One node's record proves nothing by itself (a round that failed with fewer than k answers
/// leaves one too); the same request id on k or more nodes that allowed means the proxy held a
/// quorum's verdicts, and with a secret their decryption shares, and logged nothing.
public struct UnloggedDecision: Sendable, Hashable {
    /// The request id the decision is for.
    public let requestID: String
    /// When the node decided, in milliseconds since the Unix epoch.
    public let decidedAt: Int64
    /// Whether the node's verdict was an allow.
    public let allow: Bool
    /// Whether the node gave its decryption share of the route's sealed credential with the
    /// verdict (an allow of a route that names a secret).
    public let decryptionShare: Bool

    /// A record of `requestID`.
    public init(requestID: String, decidedAt: Int64, allow: Bool, decryptionShare: Bool) {
        self.requestID = requestID
        self.decidedAt = decidedAt
        self.allow = allow
        self.decryptionShare = decryptionShare
    }
}

/// Two checkpoint notes of the same size with different roots, each carrying a valid cosignature
/// by the same node key: what a node keeps when it catches a peer (or a stolen key) signing two
/// histories. Anyone can check it with the node's verifier key alone.
public struct EquivocationEvidence: Sendable, Hashable {
    /// The key name of the cosignature lines, e.g. `quorum-latch/5f2c…/node-3`.
    public let keyName: String
    /// The tree size both notes claim.
    public let size: UInt64
    /// The first note seen, serialized as received (text, blank line, signature lines).
    public let noteA: String
    /// The second note, with another root for the same size.
    public let noteB: String

    /// Evidence against `keyName` at `size`.
    public init(keyName: String, size: UInt64, noteA: String, noteB: String) {
        self.keyName = keyName
        self.size = size
        self.noteA = noteA
        self.noteB = noteB
    }
}

/// The names a quorum's checkpoints are written under, derived from the group key alone so that an
/// auditor holding `group.json` (and each node's identity key, for cosignatures) can build every
/// verifier without asking the cluster.
///
/// - Origin and the group's key name: `quorum-latch/<first 8 bytes of the group key, hex>`.
/// - A node's cosignature key name: `<origin>/node-<id>`.
public enum CheckpointNames {
    /// The log's origin line, which is also the key name of the quorum's signature line.
    public static func origin(groupPublicKey: [UInt8]) -> String {
        "quorum-latch/" + Hex.encode(Array(groupPublicKey.prefix(8)))
    }

    /// The key name node `nodeID` cosigns checkpoints of `origin` under.
    public static func nodeKeyName(origin: String, nodeID: UInt16) -> String {
        "\(origin)/node-\(nodeID)"
    }

    /// The verifier of the quorum's signature line (an ordinary Ed25519 note key).
    public static func groupVerifier(groupPublicKey: [UInt8]) throws(NoteError) -> NoteVerifier {
        try NoteVerifier(name: origin(groupPublicKey: groupPublicKey), type: .ed25519, publicKey: groupPublicKey)
    }

    /// The verifier of node `nodeID`'s cosignature lines (c2sp.org/tlog-cosignature).
    public static func nodeVerifier(
        origin: String, nodeID: UInt16, identityKey: [UInt8]
    ) throws(NoteError) -> NoteVerifier {
        try NoteVerifier(
            name: nodeKeyName(origin: origin, nodeID: nodeID), type: .cosignatureV1, publicKey: identityKey)
    }
}
