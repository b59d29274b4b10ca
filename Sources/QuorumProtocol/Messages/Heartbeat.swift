/// A node's periodic one-way announcement to its peers: that it is up, since which boot, and the
/// public facts membership and `quorumctl status` show.
///
/// ```
/// nodeID        u16             1...
/// bootEpoch     u64             random per process start
/// sentAt        i64             milliseconds since the Unix epoch, sender's clock
/// hasKey        bool            whether a ceremony has completed on the sender
/// groupKey      optional bytes  32 or 33 bytes; present exactly when hasKey
/// bundleDigest  optional string "sha256:…", 1...128 bytes
/// peersSeen     array of u16    ascending, distinct, not 0, not the sender
/// identityKey   optional bytes  32 bytes: the sender's Ed25519 node identity key
/// ```
public struct Heartbeat: WireMessage, CustomStringConvertible {
    /// Message type 1.
    public static let type: UInt16 = 1

    /// The sender's node id.
    public let nodeID: UInt16
    /// Random per process start: a new epoch tells peers (and proxies) that the node restarted and
    /// that its nonce commitments of the old epoch are gone.
    public let bootEpoch: UInt64
    /// When the sender sent it, in milliseconds since the Unix epoch by its own clock.
    public let sentAt: Int64
    /// The group public key, once a ceremony has completed on the sender.
    public let groupKey: [UInt8]?
    /// The digest of the policy bundle the sender runs, if it has one.
    public let bundleDigest: String?
    /// The peers the sender currently hears from, ascending.
    public let peersSeen: [UInt16]
    /// The sender's Ed25519 node identity public key. Peers learn it here, over mutual TLS from
    /// the node its certificate names, and check what an operator relays in a ceremony against it.
    public let identityKey: [UInt8]?

    /// Whether a ceremony has completed on the sender; carried on the wire and always equal to
    /// `groupKey != nil`.
    public var hasKey: Bool { groupKey != nil }

    /// A heartbeat with these facts.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` for a node id of 0, a group key that is not 32 or
    ///   33 bytes, an empty or over-long bundle digest, or a peer list that is not ascending and
    ///   distinct or names node 0 or the sender: the same rules a receiver applies.
    public init(
        nodeID: UInt16, bootEpoch: UInt64, sentAt: Int64, groupKey: [UInt8]?, bundleDigest: String?,
        peersSeen: [UInt16], identityKey: [UInt8]? = nil
    ) throws(WireError) {
        try NodeFacts.check(NodeFacts.nodeIDProblem(nodeID), Self.name, "nodeID")
        try NodeFacts.check(groupKey.flatMap(NodeFacts.groupKeyProblem), Self.name, "groupKey")
        try NodeFacts.check(bundleDigest.flatMap(NodeFacts.bundleDigestProblem), Self.name, "bundleDigest")
        try NodeFacts.check(NodeFacts.peerListProblem(peersSeen, sender: nodeID), Self.name, "peersSeen")
        try NodeFacts.check(identityKey.flatMap(NodeFacts.identityKeyProblem), Self.name, "identityKey")
        self.nodeID = nodeID
        self.bootEpoch = bootEpoch
        self.sentAt = sentAt
        self.groupKey = groupKey
        self.bundleDigest = bundleDigest
        self.peersSeen = peersSeen
        self.identityKey = identityKey
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(nodeID)
        writer.write(bootEpoch)
        writer.write(sentAt)
        NodeFacts.writeGroupKey(&writer, groupKey)
        NodeFacts.writeBundleDigest(&writer, bundleDigest)
        writer.write(array: peersSeen) { $0.write($1) }
        NodeFacts.writeIdentityKey(&writer, identityKey)
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let nodeStart = reader.offset
        nodeID = try reader.readUInt16("nodeID")
        if let problem = NodeFacts.nodeIDProblem(nodeID) { throw reader.invalidValue("nodeID", at: nodeStart, problem) }
        bootEpoch = try reader.readUInt64("bootEpoch")
        sentAt = try reader.readInt64("sentAt")
        let hasKey = try reader.readBool("hasKey")
        groupKey = try NodeFacts.readGroupKey(&reader, hasKey: hasKey)
        bundleDigest = try NodeFacts.readBundleDigest(&reader)
        let peersStart = reader.offset
        peersSeen = try reader.readArray("peersSeen", minimumElementLength: 2, maximumCount: NodeFacts.maximumPeers) {
            reader throws(WireError) in try reader.readUInt16("")
        }
        if let problem = NodeFacts.peerListProblem(peersSeen, sender: nodeID) {
            throw reader.invalidValue("peersSeen", at: peersStart, problem)
        }
        identityKey = try NodeFacts.readIdentityKey(&reader)
    }

    /// One line for logs: node, epoch, key, bundle and peers; only public facts.
    public var description: String {
        "heartbeat node \(nodeID) epoch \(bootEpoch) at \(sentAt) key \(groupKey.map(NodeFacts.hex) ?? "none") "
            + "bundle \(bundleDigest ?? "none") peers \(peersSeen)"
    }
}
