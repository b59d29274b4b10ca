import QuorumCrypto

/// What the replicated audit log holds, one ``LogEntry`` per Merkle leaf: decisions (receipts,
/// allow and deny), policy bundle changes, key ceremonies and membership changes.
///
/// The leaf is ``encoded()``: a version byte, a kind byte and the kind's fields in the codec of
/// `docs/protocol.md`. Every node that builds the same entry builds the same bytes, so a receipt
/// submitted to several nodes, or a bundle installed on all of them, is one leaf after dedup.
///
/// ```
/// version  u8   1
/// kind     u8   1 receipt, 2 bundle, 3 ceremony, 4 membership
/// fields        the kind's record, to the end of the leaf
/// ```
///
/// Nothing secret is in an entry: the latch token is only its SHA-256, the request body only its
/// length and SHA-256, and verdicts carry no secret by construction (QuorumPolicy).
public enum LogEntry: Sendable, Hashable {
    /// A decision certified by the quorum (or a deny that k nodes agreed on).
    case receipt(ReceiptEntry)
    /// A policy bundle a node installed.
    case bundle(BundleEntry)
    /// A completed key ceremony.
    case ceremony(CeremonyEntry)
    /// A change of the cluster's members.
    case membership(MembershipEntry)

    /// The entry format's version.
    public static let version: UInt8 = 1
    /// The longest leaf: C2SP entry bundles length-prefix entries with a `u16`.
    public static let maximumLength = 65_535

    enum Kind: UInt8 {
        case receipt = 1
        case bundle = 2
        case ceremony = 3
        case membership = 4
    }

    /// The leaf bytes.
    public func encoded() -> [UInt8] {
        var writer = WireWriter()
        writer.write(Self.version)
        switch self {
        case .receipt(let entry):
            writer.write(Kind.receipt.rawValue)
            entry.encode(into: &writer)
        case .bundle(let entry):
            writer.write(Kind.bundle.rawValue)
            entry.encode(into: &writer)
        case .ceremony(let entry):
            writer.write(Kind.ceremony.rawValue)
            entry.encode(into: &writer)
        case .membership(let entry):
            writer.write(Kind.membership.rawValue)
            entry.encode(into: &writer)
        }
        return writer.bytes
    }

    /// Parses a leaf strictly: a known version and kind, every field within its rules, nothing
    /// left over.
    ///
    /// - Throws: ``WireError`` naming the field (`LogEntry.kind`, `ReceiptEntry.receipt`, …).
    public init(decoding leaf: [UInt8]) throws(WireError) {
        if leaf.count > Self.maximumLength {
            throw WireError(
                .invalidValue, field: "LogEntry", offset: 0,
                "a leaf of \(leaf.count) bytes; at most \(Self.maximumLength)")
        }
        var reader = WireReader(leaf)
        let version = try reader.readUInt8("LogEntry.version")
        guard version == Self.version else {
            throw reader.invalidValue("LogEntry.version", at: 0, "version \(version); this build reads \(Self.version)")
        }
        let kindByte = try reader.readUInt8("LogEntry.kind")
        switch Kind(rawValue: kindByte) {
        case .receipt: self = .receipt(try ReceiptEntry(from: &reader))
        case .bundle: self = .bundle(try BundleEntry(from: &reader))
        case .ceremony: self = .ceremony(try CeremonyEntry(from: &reader))
        case .membership: self = .membership(try MembershipEntry(from: &reader))
        case nil:
            throw reader.invalidValue(
                "LogEntry.kind", at: 1, "kind \(kindByte); known: 1 receipt, 2 bundle, 3 ceremony, 4 membership")
        }
        try reader.finish()
    }

    /// A short name of the kind, for messages and the audit API.
    public var kindName: String {
        switch self {
        case .receipt: "receipt"
        case .bundle: "bundle"
        case .ceremony: "ceremony"
        case .membership: "membership"
        }
    }
}

/// The decision request as the nodes evaluated it, without what must not be logged: the token is
/// its SHA-256, the body is its length and SHA-256, and the signer slots are gone.
///
/// ```
/// requestID                string  as in DecideRequest
/// time                     i64     ms since 1970, the time the nodes evaluated at
/// method                   string
/// target                   string  path and query as the agent sent them
/// headers                  array of DecisionHeader
/// bodyLength               u64
/// bodySHA256               bytes   32
/// clientAddress            string
/// tokenSHA256              bytes   32
/// clientCertificateSHA256  bytes   0 or 32
/// ```
public struct LoggedRequest: WireCodable, Hashable {
    public let requestID: String
    public let time: Int64
    public let method: String
    public let target: String
    public let headers: [DecisionHeader]
    public let bodyLength: UInt64
    public let bodySHA256: [UInt8]
    public let clientAddress: String
    public let tokenSHA256: [UInt8]
    public let clientCertificateSHA256: [UInt8]

    /// The logged form of `request`.
    public init(_ request: DecideRequest) {
        requestID = request.requestID
        time = request.time
        method = request.method
        target = request.target
        headers = request.headers
        bodyLength = request.bodyLength
        bodySHA256 = request.bodySHA256
        clientAddress = request.clientAddress
        tokenSHA256 = sha256Digest(Array(request.token.utf8))
        clientCertificateSHA256 = request.clientCertificateSHA256
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(string: requestID)
        writer.write(time)
        writer.write(string: method)
        writer.write(string: target)
        writer.write(array: headers) { $0.write($1) }
        writer.write(bodyLength)
        writer.write(bytes: bodySHA256)
        writer.write(string: clientAddress)
        writer.write(bytes: tokenSHA256)
        writer.write(bytes: clientCertificateSHA256)
    }

    /// Reads the fields in the order of the table above and applies DecideRequest's rules to them.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        requestID = try SigningLimits.readRequestID(&reader)
        time = try reader.readInt64("LoggedRequest.time")
        method = try reader.readString("LoggedRequest.method", maximumLength: DecisionLimits.maximumMethodLength)
        target = try reader.readString("LoggedRequest.target", maximumLength: DecisionLimits.maximumTargetLength)
        headers = try reader.readArray(
            "LoggedRequest.headers", minimumElementLength: 8, maximumCount: DecisionLimits.maximumHeaders
        ) { reader throws(WireError) in try reader.read(DecisionHeader.self, "") }
        bodyLength = try reader.readUInt64("LoggedRequest.bodyLength")
        bodySHA256 = try reader.readBytes("LoggedRequest.bodySHA256", maximumLength: 32)
        clientAddress = try reader.readString(
            "LoggedRequest.clientAddress", maximumLength: DecisionLimits.maximumClientAddressLength)
        tokenSHA256 = try reader.readBytes("LoggedRequest.tokenSHA256", maximumLength: 32)
        clientCertificateSHA256 = try reader.readBytes("LoggedRequest.clientCertificateSHA256", maximumLength: 32)
        if method.isEmpty { throw reader.invalidValue("LoggedRequest.method", at: start, "an empty method") }
        if target.isEmpty { throw reader.invalidValue("LoggedRequest.target", at: start, "an empty target") }
        if bodySHA256.count != 32 {
            throw reader.invalidValue("LoggedRequest.bodySHA256", at: start, "\(bodySHA256.count) bytes; it is 32")
        }
        if tokenSHA256.count != 32 {
            throw reader.invalidValue("LoggedRequest.tokenSHA256", at: start, "\(tokenSHA256.count) bytes; it is 32")
        }
        if !clientCertificateSHA256.isEmpty && clientCertificateSHA256.count != 32 {
            throw reader.invalidValue(
                "LoggedRequest.clientCertificateSHA256", at: start,
                "\(clientCertificateSHA256.count) bytes; it is 32 or absent")
        }
    }
}

/// One node's verdict as it signed it in its ``DecideResponse``: the canonical verdict encoding
/// (QuorumPolicy, with the trace) and the node identity key's signature over
/// ``DecideResponse/signedBytes(nodeID:requestID:verdict:)``.
///
/// ```
/// nodeID     u16    1…
/// verdict    bytes  1…65535
/// signature  bytes  64
/// ```
public struct SignedVerdict: WireCodable, Hashable {
    public let nodeID: UInt16
    public let verdict: [UInt8]
    public let signature: [UInt8]

    /// A node's signed verdict.
    public init(nodeID: UInt16, verdict: [UInt8], signature: [UInt8]) {
        self.nodeID = nodeID
        self.verdict = verdict
        self.signature = signature
    }

    /// The signed verdict of `response`.
    public init(_ response: DecideResponse) {
        self.init(nodeID: response.nodeID, verdict: response.verdict, signature: response.signature)
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(nodeID)
        writer.write(bytes: verdict)
        writer.write(bytes: signature)
    }

    /// Reads the fields in the order of the table above.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        nodeID = try reader.readUInt16("SignedVerdict.nodeID")
        verdict = try reader.readBytes("SignedVerdict.verdict", maximumLength: LogEntry.maximumLength)
        signature = try reader.readBytes("SignedVerdict.signature", maximumLength: 64)
        if let problem = NodeFacts.nodeIDProblem(nodeID) {
            throw reader.invalidValue("SignedVerdict.nodeID", at: start, problem)
        }
        if verdict.isEmpty { throw reader.invalidValue("SignedVerdict.verdict", at: start, "an empty verdict") }
        if signature.count != 64 {
            throw reader.invalidValue("SignedVerdict.signature", at: start, "\(signature.count) bytes; it is 64")
        }
    }
}

/// A decision: its receipt, the request it decided, and the signed verdicts that made it, so an
/// auditor can check the receipt under the group key and replay the decision.
///
/// ```
/// receipt   string  the compact JWS (Receipt.compact)
/// request   LoggedRequest
/// verdicts  array of SignedVerdict  0…, ascending node id: the verdicts the decision rests on
/// ```
public struct ReceiptEntry: WireCodable, Hashable {
    public let receipt: String
    public let request: LoggedRequest
    public let verdicts: [SignedVerdict]

    /// A receipt entry. Verdicts are kept in ascending node id so every builder writes the same
    /// bytes.
    public init(receipt: String, request: LoggedRequest, verdicts: [SignedVerdict]) {
        self.receipt = receipt
        self.request = request
        self.verdicts = verdicts.sorted { $0.nodeID < $1.nodeID }
    }

    /// The request id the entry records.
    public var requestID: String { request.requestID }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(string: receipt)
        request.encode(into: &writer)
        writer.write(array: verdicts) { $0.write($1) }
    }

    /// Reads the fields in the order of the table above.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        receipt = try reader.readString("ReceiptEntry.receipt", maximumLength: Receipt.maximumLength)
        request = try LoggedRequest(from: &reader)
        verdicts = try reader.readArray(
            "ReceiptEntry.verdicts", minimumElementLength: 2 + 4 + 4 + 64, maximumCount: 1024
        ) { reader throws(WireError) in try reader.read(SignedVerdict.self, "") }
        if receipt.isEmpty { throw reader.invalidValue("ReceiptEntry.receipt", at: start, "an empty receipt") }
        if verdicts.map(\.nodeID) != verdicts.map(\.nodeID).sorted()
            || Set(verdicts.map(\.nodeID)).count != verdicts.count
        {
            throw reader.invalidValue(
                "ReceiptEntry.verdicts", at: start, "verdicts not in strictly ascending node id order")
        }
    }
}

/// A policy bundle a node installed: its version and digest, the operator key that signed it, and
/// the signed envelope itself when it fits in a leaf (a larger bundle is bound by its digest; the
/// auditor brings the file).
///
/// ```
/// version       u64
/// digest        string  `sha256:<hex>` as the bundle names itself
/// operatorKey   bytes   32: the Ed25519 key that signed it
/// signedBundle  bytes   0…: the envelope as pushed, or empty when too long for a leaf
/// ```
public struct BundleEntry: WireCodable, Hashable {
    public let version: UInt64
    public let digest: String
    public let operatorKey: [UInt8]
    public let signedBundle: [UInt8]

    /// The envelope is kept only if the whole leaf stays within ``LogEntry/maximumLength``.
    public init(version: UInt64, digest: String, operatorKey: [UInt8], signedBundle: [UInt8]) {
        self.version = version
        self.digest = digest
        self.operatorKey = operatorKey
        let overhead = 2 + 8 + 4 + digest.utf8.count + 4 + operatorKey.count + 4
        self.signedBundle = overhead + signedBundle.count <= LogEntry.maximumLength ? signedBundle : []
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(version)
        writer.write(string: digest)
        writer.write(bytes: operatorKey)
        writer.write(bytes: signedBundle)
    }

    /// Reads the fields in the order of the table above.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        version = try reader.readUInt64("BundleEntry.version")
        digest = try reader.readString("BundleEntry.digest", maximumLength: 128)
        operatorKey = try reader.readBytes("BundleEntry.operatorKey", maximumLength: 32)
        signedBundle = try reader.readBytes("BundleEntry.signedBundle", maximumLength: LogEntry.maximumLength)
        if digest.isEmpty { throw reader.invalidValue("BundleEntry.digest", at: start, "an empty digest") }
        if operatorKey.count != 32 {
            throw reader.invalidValue("BundleEntry.operatorKey", at: start, "\(operatorKey.count) bytes; it is 32")
        }
    }
}

/// A completed key ceremony: its id, kind, threshold, the transcript digest every participant
/// signed, and the group public keys that came out.
///
/// ```
/// ceremonyID         bytes   1…64
/// kind               string  the ceremony kind
/// threshold          u16
/// participants       array of u16  node ids, ascending
/// transcriptDigest   bytes   32
/// signingGroupKey    bytes   the signing group's public key
/// sealingGroupKey    bytes   the sealing group's public key
/// ```
public struct CeremonyEntry: WireCodable, Hashable {
    public let ceremonyID: [UInt8]
    public let kind: String
    public let threshold: UInt16
    public let participants: [UInt16]
    public let transcriptDigest: [UInt8]
    public let signingGroupKey: [UInt8]
    public let sealingGroupKey: [UInt8]

    /// A ceremony record; participants are kept ascending.
    public init(
        ceremonyID: [UInt8], kind: String, threshold: UInt16, participants: [UInt16], transcriptDigest: [UInt8],
        signingGroupKey: [UInt8], sealingGroupKey: [UInt8]
    ) {
        self.ceremonyID = ceremonyID
        self.kind = kind
        self.threshold = threshold
        self.participants = participants.sorted()
        self.transcriptDigest = transcriptDigest
        self.signingGroupKey = signingGroupKey
        self.sealingGroupKey = sealingGroupKey
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(bytes: ceremonyID)
        writer.write(string: kind)
        writer.write(threshold)
        writer.write(array: participants) { $0.write($1) }
        writer.write(bytes: transcriptDigest)
        writer.write(bytes: signingGroupKey)
        writer.write(bytes: sealingGroupKey)
    }

    /// Reads the fields in the order of the table above.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        ceremonyID = try reader.readBytes("CeremonyEntry.ceremonyID", maximumLength: 64)
        kind = try reader.readString("CeremonyEntry.kind", maximumLength: 64)
        threshold = try reader.readUInt16("CeremonyEntry.threshold")
        participants = try reader.readArray(
            "CeremonyEntry.participants", minimumElementLength: 2, maximumCount: 1024
        ) { reader throws(WireError) in try reader.readUInt16("") }
        transcriptDigest = try reader.readBytes("CeremonyEntry.transcriptDigest", maximumLength: 32)
        signingGroupKey = try reader.readBytes("CeremonyEntry.signingGroupKey", maximumLength: 65)
        sealingGroupKey = try reader.readBytes("CeremonyEntry.sealingGroupKey", maximumLength: 65)
        if ceremonyID.isEmpty { throw reader.invalidValue("CeremonyEntry.ceremonyID", at: start, "an empty id") }
        if transcriptDigest.count != 32 {
            throw reader.invalidValue(
                "CeremonyEntry.transcriptDigest", at: start, "\(transcriptDigest.count) bytes; it is 32")
        }
        if threshold == 0 || Int(threshold) > participants.count {
            throw reader.invalidValue(
                "CeremonyEntry.threshold", at: start,
                "threshold \(threshold) with \(participants.count) participants; it is 1…participants")
        }
        if participants != participants.sorted() || Set(participants).count != participants.count {
            throw reader.invalidValue("CeremonyEntry.participants", at: start, "not strictly ascending")
        }
    }
}

/// A change of the cluster's members, as an operator made it: which node joined or left, and
/// the identity key it holds.
///
/// ```
/// change       u8      1 joined, 2 left
/// nodeID       u16     1…
/// identityKey  bytes   32: the node's Ed25519 identity key
/// time         i64     ms since 1970
/// ```
public struct MembershipEntry: WireCodable, Hashable {
    /// What happened to the member.
    public enum Change: UInt8, Sendable {
        case joined = 1
        case left = 2
    }

    public let change: Change
    public let nodeID: UInt16
    public let identityKey: [UInt8]
    public let time: Int64

    /// A membership record.
    public init(change: Change, nodeID: UInt16, identityKey: [UInt8], time: Int64) {
        self.change = change
        self.nodeID = nodeID
        self.identityKey = identityKey
        self.time = time
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(change.rawValue)
        writer.write(nodeID)
        writer.write(bytes: identityKey)
        writer.write(time)
    }

    /// Reads the fields in the order of the table above.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        let changeByte = try reader.readUInt8("MembershipEntry.change")
        guard let change = Change(rawValue: changeByte) else {
            throw reader.invalidValue("MembershipEntry.change", at: start, "change \(changeByte); 1 joined, 2 left")
        }
        self.change = change
        nodeID = try reader.readUInt16("MembershipEntry.nodeID")
        identityKey = try reader.readBytes("MembershipEntry.identityKey", maximumLength: 32)
        time = try reader.readInt64("MembershipEntry.time")
        if let problem = NodeFacts.nodeIDProblem(nodeID) {
            throw reader.invalidValue("MembershipEntry.nodeID", at: start, problem)
        }
        if identityKey.count != 32 {
            throw reader.invalidValue("MembershipEntry.identityKey", at: start, "\(identityKey.count) bytes; it is 32")
        }
    }
}
