/// An operator installs keys made offline by `quorumctl keygen --dealer` on one node
/// (`quorumctl keygen import`). The node's two share files travel sealed to the node's identity
/// key (an `IdentityBox` from a one-time sender key), so the operator's process only ever holds
/// what the dealer already had, and nothing on the wire or in a relay reveals a share.
///
/// ```
/// senderKey     bytes   32: the one-time Ed25519 key the boxes are sealed from
/// signingShare  bytes   box of the node's signing-share.json, at most 4096
/// sealingShare  bytes   box of the node's sealing-share.json, at most 4096
/// signingGroup  bytes   group.json, at most 65536
/// sealingGroup  bytes   sealing-group.json, at most 65536
/// replace       bool    replace keys the node already holds
/// ```
public struct KeyImportRequest: WireMessage {
    /// Message type 48.
    public static let type: UInt16 = 48
    /// The most bytes a sealed share file may take.
    public static let maximumBoxLength = 4096
    /// The most bytes a group file may take.
    public static let maximumGroupLength = 65536

    /// The one-time Ed25519 public key the boxes are sealed from.
    public let senderKey: [UInt8]
    /// The sealed signing share file.
    public let signingShare: [UInt8]
    /// The sealed sealing share file.
    public let sealingShare: [UInt8]
    /// The signing group file (`group.json`).
    public let signingGroup: [UInt8]
    /// The sealing group file (`sealing-group.json`).
    public let sealingGroup: [UInt8]
    /// Whether to replace keys the node already holds.
    public let replace: Bool

    /// A request with these fields.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` for a sender key that is not 32 bytes or a field
    ///   longer than its limit.
    public init(
        senderKey: [UInt8], signingShare: [UInt8], sealingShare: [UInt8], signingGroup: [UInt8],
        sealingGroup: [UInt8], replace: Bool
    ) throws(WireError) {
        try NodeFacts.check(NodeFacts.identityKeyProblem(senderKey), Self.name, "senderKey")
        for (field, value, limit) in [
            ("signingShare", signingShare, Self.maximumBoxLength),
            ("sealingShare", sealingShare, Self.maximumBoxLength),
            ("signingGroup", signingGroup, Self.maximumGroupLength),
            ("sealingGroup", sealingGroup, Self.maximumGroupLength),
        ] where value.count > limit {
            throw WireError(
                .invalidValue, field: "\(Self.name).\(field)", offset: 0, "\(value.count) bytes; at most \(limit)")
        }
        self.senderKey = senderKey
        self.signingShare = signingShare
        self.sealingShare = sealingShare
        self.signingGroup = signingGroup
        self.sealingGroup = sealingGroup
        self.replace = replace
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(bytes: senderKey)
        writer.write(bytes: signingShare)
        writer.write(bytes: sealingShare)
        writer.write(bytes: signingGroup)
        writer.write(bytes: sealingGroup)
        writer.write(replace)
    }

    /// Reads the fields in the order of the table above.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        senderKey = try reader.readBytes("senderKey", maximumLength: 32)
        if let problem = NodeFacts.identityKeyProblem(senderKey) {
            throw reader.invalidValue("senderKey", at: start, problem)
        }
        signingShare = try reader.readBytes("signingShare", maximumLength: Self.maximumBoxLength)
        sealingShare = try reader.readBytes("sealingShare", maximumLength: Self.maximumBoxLength)
        signingGroup = try reader.readBytes("signingGroup", maximumLength: Self.maximumGroupLength)
        sealingGroup = try reader.readBytes("sealingGroup", maximumLength: Self.maximumGroupLength)
        replace = try reader.readBool("replace")
    }

    /// The context a share box is sealed under: the message, the node it is for, and which share.
    public static func boxContext(nodeID: UInt16, purpose: String) -> [UInt8] {
        Array("quorum-latch key-import v1 node \(nodeID) \(purpose)".utf8)
    }
}

/// A node's answer once imported keys are installed: which node, and the group key it now holds.
///
/// ```
/// nodeID    u16    1...
/// groupKey  bytes  32 or 33
/// ```
public struct KeyImportResponse: WireMessage {
    /// Message type 49.
    public static let type: UInt16 = 49

    /// The node that installed the keys.
    public let nodeID: UInt16
    /// The signing group key it now holds.
    public let groupKey: [UInt8]

    /// An answer with these facts.
    public init(nodeID: UInt16, groupKey: [UInt8]) throws(WireError) {
        try NodeFacts.check(NodeFacts.nodeIDProblem(nodeID), Self.name, "nodeID")
        try NodeFacts.check(NodeFacts.groupKeyProblem(groupKey), Self.name, "groupKey")
        self.nodeID = nodeID
        self.groupKey = groupKey
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(nodeID)
        writer.write(bytes: groupKey)
    }

    /// Reads the fields in the order of the table above.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        nodeID = try reader.readUInt16("nodeID")
        if let problem = NodeFacts.nodeIDProblem(nodeID) { throw reader.invalidValue("nodeID", at: start, problem) }
        let keyStart = reader.offset
        groupKey = try reader.readBytes("groupKey", maximumLength: 33)
        if let problem = NodeFacts.groupKeyProblem(groupKey) {
            throw reader.invalidValue("groupKey", at: keyStart, problem)
        }
    }

    /// The group key in lowercase hex.
    public var groupKeyHex: String { NodeFacts.hex(groupKey) }
}
