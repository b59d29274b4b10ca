/// The policy messages (types 64–67): an operator pushes a signed policy bundle to every node
/// (``PolicyPushRequest``), and a proxy fetches the bundle a node holds to build its routing view
/// (``PolicyFetchRequest``). See `docs/protocol.md`, "Policy messages".
///
/// The bundle travels as the signed envelope `quorumctl policy sign` writes, byte for byte; the
/// node checks the operator's signature and the version before it installs anything, and a proxy
/// checks the same signature itself, so neither trusts the channel for the bundle's content.
public enum PolicyLimits {
    /// The largest signed bundle a message carries, in bytes.
    public static let maximumBundleLength = 2 * 1024 * 1024

    static func bundleProblem(_ bundle: [UInt8], allowEmpty: Bool) -> String? {
        if bundle.isEmpty && !allowEmpty { return "an empty bundle; push the signed bundle file" }
        if bundle.count > maximumBundleLength {
            return "a bundle of \(bundle.count) bytes; at most \(maximumBundleLength)"
        }
        return nil
    }
}

/// Installs a signed policy bundle on a node. Only operators may send it.
///
/// ```
/// signedBundle  bytes  1…2 MiB: the envelope `quorumctl policy sign` wrote
/// ```
///
/// The node installs it only if its signer is one of the node's `policy.operator_keys` and its
/// version is newer than the installed one; the same bundle again is accepted and changes nothing.
public struct PolicyPushRequest: WireMessage {
    /// Message type 64.
    public static let type: UInt16 = 64

    /// The signed envelope.
    public let signedBundle: [UInt8]

    /// A push of `signedBundle`.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` for an empty or oversized bundle.
    public init(signedBundle: [UInt8]) throws(WireError) {
        try NodeFacts.check(PolicyLimits.bundleProblem(signedBundle, allowEmpty: false), Self.name, "signedBundle")
        self.signedBundle = signedBundle
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) { writer.write(bytes: signedBundle) }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        signedBundle = try reader.readBytes("signedBundle", maximumLength: PolicyLimits.maximumBundleLength)
        if let problem = PolicyLimits.bundleProblem(signedBundle, allowEmpty: false) {
            throw reader.invalidValue("signedBundle", at: start, problem)
        }
    }
}

/// A node's answer to ``PolicyPushRequest``: what it runs now.
///
/// ```
/// nodeID     u16     1…
/// version    u64     the installed bundle's version
/// digest     string  the installed bundle's digest (`sha256:` and 64 hex digits)
/// installed  bool    true if this push replaced the bundle, false if it was already installed
/// ```
public struct PolicyPushResponse: WireMessage {
    /// Message type 65.
    public static let type: UInt16 = 65

    /// The answering node.
    public let nodeID: UInt16
    /// The version now installed.
    public let version: UInt64
    /// The digest now installed.
    public let digest: String
    /// Whether this push changed what the node runs.
    public let installed: Bool

    /// A push response.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` for node id 0 or a malformed digest.
    public init(nodeID: UInt16, version: UInt64, digest: String, installed: Bool) throws(WireError) {
        try NodeFacts.check(NodeFacts.nodeIDProblem(nodeID), Self.name, "nodeID")
        try NodeFacts.check(NodeFacts.bundleDigestProblem(digest), Self.name, "digest")
        self.nodeID = nodeID
        self.version = version
        self.digest = digest
        self.installed = installed
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(nodeID)
        writer.write(version)
        writer.write(string: digest)
        writer.write(installed)
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let nodeStart = reader.offset
        nodeID = try reader.readUInt16("nodeID")
        if let problem = NodeFacts.nodeIDProblem(nodeID) { throw reader.invalidValue("nodeID", at: nodeStart, problem) }
        version = try reader.readUInt64("version")
        let digestStart = reader.offset
        digest = try reader.readString("digest", maximumLength: 128)
        if let problem = NodeFacts.bundleDigestProblem(digest) {
            throw reader.invalidValue("digest", at: digestStart, problem)
        }
        installed = try reader.readBool("installed")
    }
}

/// Asks a node for the signed bundle it runs. Proxies and operators may ask.
///
/// No fields.
public struct PolicyFetchRequest: WireMessage {
    /// Message type 66.
    public static let type: UInt16 = 66

    /// A fetch request.
    public init() {}

    /// Writes nothing.
    public func encode(into writer: inout WireWriter) {}

    /// Reads nothing.
    public init(from reader: inout WireReader) throws(WireError) {}
}

/// A node's answer to ``PolicyFetchRequest``.
///
/// ```
/// nodeID        u16    1…
/// signedBundle  bytes  0…2 MiB: the envelope it runs; empty when no bundle is installed
/// ```
public struct PolicyFetchResponse: WireMessage {
    /// Message type 67.
    public static let type: UInt16 = 67

    /// The answering node.
    public let nodeID: UInt16
    /// The signed envelope, or empty.
    public let signedBundle: [UInt8]

    /// A fetch response.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` for node id 0 or an oversized bundle.
    public init(nodeID: UInt16, signedBundle: [UInt8]) throws(WireError) {
        try NodeFacts.check(NodeFacts.nodeIDProblem(nodeID), Self.name, "nodeID")
        try NodeFacts.check(PolicyLimits.bundleProblem(signedBundle, allowEmpty: true), Self.name, "signedBundle")
        self.nodeID = nodeID
        self.signedBundle = signedBundle
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(nodeID)
        writer.write(bytes: signedBundle)
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let nodeStart = reader.offset
        nodeID = try reader.readUInt16("nodeID")
        if let problem = NodeFacts.nodeIDProblem(nodeID) { throw reader.invalidValue("nodeID", at: nodeStart, problem) }
        let start = reader.offset
        signedBundle = try reader.readBytes("signedBundle", maximumLength: PolicyLimits.maximumBundleLength)
        if let problem = PolicyLimits.bundleProblem(signedBundle, allowEmpty: true) {
            throw reader.invalidValue("signedBundle", at: start, problem)
        }
    }
}
