/// Gives a node the sealed credential a mount's secret names (types 72–73), so that on an allow it
/// makes its decryption share of exactly that box. Only operators may send it
/// (`quorumctl secrets set --cluster`). The record is public: a box opens only with k nodes'
/// decryption shares.
///
/// ```
/// record  bytes  1…64 KiB: the sealed credential record (`SealedCredential.encoded()`)
/// ```
///
/// The node keeps the record under its name. A proxy could otherwise present any box under a
/// mount's secret and collect shares that open another credential; the node never takes the box
/// from the proxy.
public struct CredentialPutRequest: WireMessage {
    /// Message type 72.
    public static let type: UInt16 = 72
    /// The longest record accepted.
    public static let maximumRecordLength = 64 * 1024

    /// The record's file encoding.
    public let record: [UInt8]

    /// A put of `record`.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` for an empty or oversized record.
    public init(record: [UInt8]) throws(WireError) {
        try NodeFacts.check(Self.problem(record), Self.name, "record")
        self.record = record
    }

    static func problem(_ record: [UInt8]) -> String? {
        if record.isEmpty { return "an empty record" }
        if record.count > maximumRecordLength {
            return "a record of \(record.count) bytes; at most \(maximumRecordLength)"
        }
        return nil
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) { writer.write(bytes: record) }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        record = try reader.readBytes("record", maximumLength: Self.maximumRecordLength)
        if let problem = Self.problem(record) { throw reader.invalidValue("record", at: start, problem) }
    }
}

/// A node's answer to ``CredentialPutRequest``.
///
/// ```
/// nodeID    u16     1…
/// name      string  the credential's name
/// replaced  bool    true if the node held another record under that name
/// ```
public struct CredentialPutResponse: WireMessage {
    /// Message type 73.
    public static let type: UInt16 = 73

    /// The answering node.
    public let nodeID: UInt16
    /// The credential's name.
    public let name: String
    /// Whether another record was replaced.
    public let replaced: Bool

    /// A put response.
    public init(nodeID: UInt16, name: String, replaced: Bool) throws(WireError) {
        try NodeFacts.check(NodeFacts.nodeIDProblem(nodeID), Self.name, "nodeID")
        self.nodeID = nodeID
        self.name = name
        self.replaced = replaced
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(nodeID)
        writer.write(string: name)
        writer.write(replaced)
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        nodeID = try reader.readUInt16("nodeID")
        if let problem = NodeFacts.nodeIDProblem(nodeID) { throw reader.invalidValue("nodeID", at: start, problem) }
        name = try reader.readString("name", maximumLength: 256)
        replaced = try reader.readBool("replaced")
    }
}
