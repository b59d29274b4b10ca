/// Asks a node for its ``StatusResponse``; `quorumctl status` sends one to every node. No fields.
public struct StatusRequest: WireMessage {
    /// Message type 2.
    public static let type: UInt16 = 2

    /// The request (it has no fields).
    public init() {}

    /// Writes nothing.
    public func encode(into writer: inout WireWriter) {}

    /// Reads nothing; any byte in the payload is refused as trailing.
    public init(from reader: inout WireReader) throws(WireError) {}
}

/// One peer as the answering node sees it.
///
/// ```
/// nodeID       u16           1...
/// isUp         bool          heard from within the membership timeout
/// lastHeardAt  optional i64  milliseconds since the Unix epoch, answering node's clock
/// ```
public struct PeerStatus: WireCodable, Hashable {
    /// The peer's node id.
    public let nodeID: UInt16
    /// Whether the answering node counts the peer as up.
    public let isUp: Bool
    /// When the answering node last heard from the peer, or nil if it never has.
    public let lastHeardAt: Int64?

    /// A peer entry.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` for node id 0.
    public init(nodeID: UInt16, isUp: Bool, lastHeardAt: Int64?) throws(WireError) {
        try NodeFacts.check(NodeFacts.nodeIDProblem(nodeID), "PeerStatus", "nodeID")
        self.nodeID = nodeID
        self.isUp = isUp
        self.lastHeardAt = lastHeardAt
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(nodeID)
        writer.write(isUp)
        writer.write(optional: lastHeardAt) { $0.write($1) }
    }

    /// Reads the fields in the order of the table above.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        nodeID = try reader.readUInt16("nodeID")
        if let problem = NodeFacts.nodeIDProblem(nodeID) { throw reader.invalidValue("nodeID", at: start, problem) }
        isUp = try reader.readBool("isUp")
        lastHeardAt = try reader.readOptional("lastHeardAt") { reader throws(WireError) in
            try reader.readInt64("lastHeardAt")
        }
    }

    /// The smallest encoding: id, flag, absent time.
    static let minimumLength = 4
}

/// A node's answer to ``StatusRequest``: the public facts `quorumctl status` prints.
///
/// ```
/// nodeID        u16                 1...
/// bootEpoch     u64                 random per process start
/// reportedAt    i64                 milliseconds since the Unix epoch, answering node's clock
/// hasKey        bool                whether a ceremony has completed
/// groupKey      optional bytes      32 or 33 bytes; present exactly when hasKey
/// bundleDigest  optional string     "sha256:…", 1...128 bytes
/// peers         array of PeerStatus ascending by nodeID, distinct, not the answering node
/// identityKey   optional bytes      32 bytes: the node's Ed25519 identity key
/// outstandingNonces trailing u32    nonce commitments handed out and not yet used; present when
///                                   the payload goes on after identityKey (nodes built before the
///                                   field end it there)
/// ```
///
/// Key shares and anything else secret are not part of it: status is readable by operators and
/// shows only what the group key and the bundle already make public. The outstanding-nonce count
/// is a number, never a commitment: `quorumctl doctor` warns when a node with keys has none,
/// because then no proxy holds commitments of its boot epoch and it signs no optimistic round.
public struct StatusResponse: WireMessage {
    /// Message type 3.
    public static let type: UInt16 = 3

    /// The answering node's id.
    public let nodeID: UInt16
    /// The answering node's boot epoch.
    public let bootEpoch: UInt64
    /// When the answer was made, in milliseconds since the Unix epoch by the node's clock (lets
    /// the operator see clock skew).
    public let reportedAt: Int64
    /// The group public key, once a ceremony has completed.
    public let groupKey: [UInt8]?
    /// The digest of the policy bundle the node runs, if it has one.
    public let bundleDigest: String?
    /// Every configured peer and whether the node hears from it, ascending by node id.
    public let peers: [PeerStatus]
    /// The node's Ed25519 identity public key.
    public let identityKey: [UInt8]?
    /// How many nonce commitments the node has handed out (to proxies) that are not yet used, or
    /// nil from a node that does not report it.
    public let outstandingNonces: UInt32?

    /// Whether a ceremony has completed; carried on the wire and always equal to
    /// `groupKey != nil`.
    public var hasKey: Bool { groupKey != nil }

    /// The group key in lowercase hex, as `quorumctl status` prints it.
    public var groupKeyHex: String? { groupKey.map(NodeFacts.hex) }

    /// A status answer with these facts.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` under the same rules as ``Heartbeat``, the peers
    ///   ordered by node id.
    public init(
        nodeID: UInt16, bootEpoch: UInt64, reportedAt: Int64, groupKey: [UInt8]?, bundleDigest: String?,
        peers: [PeerStatus], identityKey: [UInt8]? = nil, outstandingNonces: UInt32? = nil
    ) throws(WireError) {
        try NodeFacts.check(NodeFacts.nodeIDProblem(nodeID), Self.name, "nodeID")
        try NodeFacts.check(groupKey.flatMap(NodeFacts.groupKeyProblem), Self.name, "groupKey")
        try NodeFacts.check(bundleDigest.flatMap(NodeFacts.bundleDigestProblem), Self.name, "bundleDigest")
        try NodeFacts.check(NodeFacts.peerListProblem(peers.map(\.nodeID), sender: nodeID), Self.name, "peers")
        try NodeFacts.check(identityKey.flatMap(NodeFacts.identityKeyProblem), Self.name, "identityKey")
        self.nodeID = nodeID
        self.bootEpoch = bootEpoch
        self.reportedAt = reportedAt
        self.groupKey = groupKey
        self.bundleDigest = bundleDigest
        self.peers = peers
        self.identityKey = identityKey
        self.outstandingNonces = outstandingNonces
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(nodeID)
        writer.write(bootEpoch)
        writer.write(reportedAt)
        NodeFacts.writeGroupKey(&writer, groupKey)
        NodeFacts.writeBundleDigest(&writer, bundleDigest)
        writer.write(array: peers) { $0.write($1) }
        NodeFacts.writeIdentityKey(&writer, identityKey)
        // A trailing field without a presence byte: absent is the payload ending, so that every
        // value has exactly one encoding and an older node's payload is this field absent.
        if let outstandingNonces { writer.write(outstandingNonces) }
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules. A
    /// payload that ends after `identityKey` is a node built before `outstandingNonces`: the count
    /// is then absent, so a newer `quorumctl` still reads an older node's status.
    public init(from reader: inout WireReader) throws(WireError) {
        let nodeStart = reader.offset
        nodeID = try reader.readUInt16("nodeID")
        if let problem = NodeFacts.nodeIDProblem(nodeID) { throw reader.invalidValue("nodeID", at: nodeStart, problem) }
        bootEpoch = try reader.readUInt64("bootEpoch")
        reportedAt = try reader.readInt64("reportedAt")
        let hasKey = try reader.readBool("hasKey")
        groupKey = try NodeFacts.readGroupKey(&reader, hasKey: hasKey)
        bundleDigest = try NodeFacts.readBundleDigest(&reader)
        let peersStart = reader.offset
        peers = try reader.readArray(
            "peers", minimumElementLength: PeerStatus.minimumLength, maximumCount: NodeFacts.maximumPeers
        ) { reader throws(WireError) in try reader.read(PeerStatus.self, "") }
        if let problem = NodeFacts.peerListProblem(peers.map(\.nodeID), sender: nodeID) {
            throw reader.invalidValue("peers", at: peersStart, problem)
        }
        identityKey = try NodeFacts.readIdentityKey(&reader)
        outstandingNonces = try reader.remaining == 0 ? nil : reader.readUInt32("outstandingNonces")
    }
}
