import QuorumCrypto

// The key ceremony (docs/protocol.md, "Ceremony messages"): the operator relays every message
// between the nodes over mutual TLS (a star), and only an operator certificate may send one. What
// a node vouches for it signs with its identity key; shares travel in ``IdentityBox``es, so the
// operator's machine carries them without being able to read them.

/// One participant of a ceremony: its node id and the identity key the operator read from it.
///
/// ```
/// nodeID       u16    1…
/// identityKey  bytes  32: the node's Ed25519 identity key
/// ```
public struct CeremonyParticipant: WireCodable, Hashable {
    /// The node id.
    public let nodeID: UInt16
    /// Its Ed25519 identity public key.
    public let identityKey: [UInt8]

    /// A participant.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` for node id 0 or a key that is not 32 bytes.
    public init(nodeID: UInt16, identityKey: [UInt8]) throws(WireError) {
        try CeremonyFields.check(CeremonyFields.nodeIDProblem(nodeID), "CeremonyParticipant", "nodeID")
        try CeremonyFields.check(
            CeremonyFields.exactLength(identityKey, 32, "an identity key"), "CeremonyParticipant", "identityKey")
        self.nodeID = nodeID
        self.identityKey = identityKey
    }

    /// Writes the fields in order.
    public func encode(into writer: inout WireWriter) {
        writer.write(nodeID)
        writer.write(bytes: identityKey)
    }

    /// Reads the fields in order.
    public init(from reader: inout WireReader) throws(WireError) {
        nodeID = try CeremonyFields.readNodeID(&reader, "nodeID")
        identityKey = try CeremonyFields.readFixed(&reader, "identityKey", CeremonyFields.identityKeyLength)
    }

    static let minimumLength = 2 + 4 + 32
}

/// Starts a ceremony on a node (type 16; operator only). The node checks every listed identity
/// key against what that peer sent it in heartbeats, and answers with its ``CeremonyRound1`` or a
/// ``CeremonyRefusal``. A node holds at most one ceremony in progress: a new begin replaces one
/// that has not been committed.
///
/// ```
/// ceremonyID       bytes   16 random bytes
/// kind             u8      1 dkg, 2 refresh
/// threshold        u16     dkg: 2…n; refresh: 0 (the group's threshold stays)
/// participants     array of CeremonyParticipant   2…255, ascending by nodeID, distinct
/// replaceExisting  bool    dkg only: a node holding keys replaces them (else it refuses)
/// allowUnsafe      bool    accept a threshold that breaks DESIGN.md §4
/// ```
public struct CeremonyBegin: WireMessage {
    /// Message type 16.
    public static let type: UInt16 = 16

    /// The ceremony's id.
    public let ceremonyID: [UInt8]
    /// DKG or refresh.
    public let kind: CeremonyKind
    /// k for a DKG; 0 for a refresh.
    public let threshold: UInt16
    /// Every participant with its identity key, ascending.
    public let participants: [CeremonyParticipant]
    /// Whether a node that holds keys may replace them (DKG).
    public let replaceExisting: Bool
    /// Whether parameters that break DESIGN.md §4 are accepted.
    public let allowUnsafe: Bool

    /// A begin message.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` for an id that is not 16 bytes, a threshold that
    ///   does not fit the kind, or a participant list that is not 2…255 ascending ids.
    public init(
        ceremonyID: [UInt8], kind: CeremonyKind, threshold: UInt16, participants: [CeremonyParticipant],
        replaceExisting: Bool = false, allowUnsafe: Bool = false
    ) throws(WireError) {
        self.ceremonyID = ceremonyID
        self.kind = kind
        self.threshold = threshold
        self.participants = participants
        self.replaceExisting = replaceExisting
        self.allowUnsafe = allowUnsafe
        if let (field, problem) = problem() {
            throw WireError(.invalidValue, field: "\(Self.name).\(field)", offset: 0, problem)
        }
    }

    private func problem() -> (String, String)? {
        if let p = CeremonyFields.exactLength(ceremonyID, 16, "a ceremony id") { return ("ceremonyID", p) }
        if let p = Self.thresholdProblem(kind, threshold) { return ("threshold", p) }
        if let p = Self.participantsProblem(participants.map(\.nodeID)) { return ("participants", p) }
        return nil
    }

    static func thresholdProblem(_ kind: CeremonyKind, _ threshold: UInt16) -> String? {
        switch kind {
        case .dkg: threshold >= 2 ? nil : "threshold \(threshold); a DKG needs at least 2"
        case .refresh: threshold == 0 ? nil : "threshold \(threshold); a refresh keeps the group's and sends 0"
        }
    }

    static func participantsProblem(_ ids: [UInt16]) -> String? {
        if ids.count < 2 || ids.count > CeremonyFields.maximumParticipants {
            return "\(ids.count) participants; a ceremony has 2…\(CeremonyFields.maximumParticipants)"
        }
        return CeremonyFields.ascendingProblem(ids, what: "participants")
    }

    /// Writes the fields in order.
    public func encode(into writer: inout WireWriter) {
        writer.write(bytes: ceremonyID)
        writer.write(kind.rawValue)
        writer.write(threshold)
        writer.write(array: participants) { $0.write($1) }
        writer.write(replaceExisting)
        writer.write(allowUnsafe)
    }

    /// Reads the fields in order and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        ceremonyID = try CeremonyFields.readFixed(&reader, "ceremonyID", CeremonyFields.ceremonyIDLength)
        kind = try CeremonyFields.readEnum(&reader, "kind", CeremonyKind.self)
        let thresholdStart = reader.offset
        threshold = try reader.readUInt16("threshold")
        if let problem = Self.thresholdProblem(kind, threshold) {
            throw reader.invalidValue("threshold", at: thresholdStart, problem)
        }
        let start = reader.offset
        participants = try reader.readArray(
            "participants", minimumElementLength: CeremonyParticipant.minimumLength,
            maximumCount: CeremonyFields.maximumParticipants
        ) { reader throws(WireError) in try reader.read(CeremonyParticipant.self, "") }
        if let problem = Self.participantsProblem(participants.map(\.nodeID)) {
            throw reader.invalidValue("participants", at: start, problem)
        }
        replaceExisting = try reader.readBool("replaceExisting")
        allowUnsafe = try reader.readBool("allowUnsafe")
    }
}

/// A node's round-one broadcast (type 17; the answer to ``CeremonyBegin``): its DKG round-1
/// packages for the signing and the sealing key (two independent runs), signed with its identity
/// key so that no one can put words in its mouth, and so that two different packages under one
/// signature are proof that it equivocated.
///
/// ```
/// ceremonyID      bytes  16
/// nodeID          u16    the sender
/// threshold       u16    k (for a refresh: the group's)
/// signingPackage  bytes  DKG.Round1Package.encoded(), 1…8482
/// sealingPackage  bytes  likewise
/// signature       bytes  64: Ed25519 over signedBytes
/// ```
///
/// `signedBytes` is the codec encoding of the string `quorum-latch/ceremony/round1/v1` and the
/// five fields before the signature.
public struct CeremonyRound1: WireMessage {
    /// Message type 17.
    public static let type: UInt16 = 17
    static let domain = "quorum-latch/ceremony/round1/v1"

    /// The ceremony's id.
    public let ceremonyID: [UInt8]
    /// The sender.
    public let nodeID: UInt16
    /// The threshold the sender's packages are for.
    public let threshold: UInt16
    /// The signing key's round-1 package.
    public let signingPackage: [UInt8]
    /// The sealing key's round-1 package.
    public let sealingPackage: [UInt8]
    /// The sender's identity-key signature over ``signedBytes``.
    public let signature: [UInt8]

    /// A round-1 message signed with `identity`.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` for an id or package of the wrong size.
    public init(
        ceremonyID: [UInt8], nodeID: UInt16, threshold: UInt16, signingPackage: [UInt8], sealingPackage: [UInt8],
        signedBy identity: Ed25519KeyPair
    ) throws(WireError) {
        let bytes = Self.signedBytes(ceremonyID, nodeID, threshold, signingPackage, sealingPackage)
        try self.init(
            ceremonyID: ceremonyID, nodeID: nodeID, threshold: threshold, signingPackage: signingPackage,
            sealingPackage: sealingPackage, signature: identity.sign(bytes))
    }

    /// A round-1 message with a signature made elsewhere.
    public init(
        ceremonyID: [UInt8], nodeID: UInt16, threshold: UInt16, signingPackage: [UInt8], sealingPackage: [UInt8],
        signature: [UInt8]
    ) throws(WireError) {
        let name = Self.name
        try CeremonyFields.check(CeremonyFields.exactLength(ceremonyID, 16, "a ceremony id"), name, "ceremonyID")
        try CeremonyFields.check(CeremonyFields.nodeIDProblem(nodeID), name, "nodeID")
        for (field, package) in [("signingPackage", signingPackage), ("sealingPackage", sealingPackage)] {
            try CeremonyFields.check(Self.packageProblem(package), name, field)
        }
        try CeremonyFields.check(CeremonyFields.exactLength(signature, 64, "a signature"), name, "signature")
        self.ceremonyID = ceremonyID
        self.nodeID = nodeID
        self.threshold = threshold
        self.signingPackage = signingPackage
        self.sealingPackage = sealingPackage
        self.signature = signature
    }

    static func packageProblem(_ package: [UInt8]) -> String? {
        if package.isEmpty { return "an empty package" }
        if package.count > CeremonyFields.maximumPackageLength {
            return "a package of \(package.count) bytes; at most \(CeremonyFields.maximumPackageLength)"
        }
        return nil
    }

    static func signedBytes(
        _ ceremonyID: [UInt8], _ nodeID: UInt16, _ threshold: UInt16, _ signing: [UInt8], _ sealing: [UInt8]
    ) -> [UInt8] {
        CeremonyFields.signedBytes(domain) { writer in
            writer.write(bytes: ceremonyID)
            writer.write(nodeID)
            writer.write(threshold)
            writer.write(bytes: signing)
            writer.write(bytes: sealing)
        }
    }

    /// What the signature covers.
    public var signedBytes: [UInt8] {
        Self.signedBytes(ceremonyID, nodeID, threshold, signingPackage, sealingPackage)
    }

    /// SHA-256 of ``signedBytes``: what a node echoes to say which packages it received from the
    /// sender.
    public var digest: [UInt8] { sha256Digest(signedBytes) }

    /// Whether the signature is the holder of `identityKey`'s.
    public func isSigned(by identityKey: [UInt8]) -> Bool {
        Ed25519KeyPair.verify(signature: signature, message: signedBytes, publicKey: identityKey)
    }

    /// Writes the fields in order.
    public func encode(into writer: inout WireWriter) {
        writer.write(bytes: ceremonyID)
        writer.write(nodeID)
        writer.write(threshold)
        writer.write(bytes: signingPackage)
        writer.write(bytes: sealingPackage)
        writer.write(bytes: signature)
    }

    /// Reads the fields in order.
    public init(from reader: inout WireReader) throws(WireError) {
        ceremonyID = try CeremonyFields.readFixed(&reader, "ceremonyID", CeremonyFields.ceremonyIDLength)
        nodeID = try CeremonyFields.readNodeID(&reader, "nodeID")
        threshold = try reader.readUInt16("threshold")
        signingPackage = try CeremonyFields.readNonEmpty(
            &reader, "signingPackage", maximum: CeremonyFields.maximumPackageLength)
        sealingPackage = try CeremonyFields.readNonEmpty(
            &reader, "sealingPackage", maximum: CeremonyFields.maximumPackageLength)
        signature = try CeremonyFields.readFixed(&reader, "signature", CeremonyFields.signatureLength)
    }

    static let minimumLength = 4 + 16 + 2 + 2 + 5 + 5 + 4 + 64
}

/// Round two's input (type 18; operator only): every participant's signed ``CeremonyRound1``, the
/// same list to every node.
///
/// ```
/// ceremonyID  bytes                   16
/// round1      array of CeremonyRound1 one per participant, ascending by nodeID
/// ```
public struct CeremonyRound2Request: WireMessage {
    /// Message type 18.
    public static let type: UInt16 = 18

    /// The ceremony's id.
    public let ceremonyID: [UInt8]
    /// Every participant's round-1 message.
    public let round1: [CeremonyRound1]

    /// The request.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` for a bad id or a list not ascending by sender.
    public init(ceremonyID: [UInt8], round1: [CeremonyRound1]) throws(WireError) {
        try CeremonyFields.check(
            CeremonyFields.exactLength(ceremonyID, 16, "a ceremony id"), Self.name, "ceremonyID")
        try CeremonyFields.check(Self.listProblem(round1.map(\.nodeID)), Self.name, "round1")
        self.ceremonyID = ceremonyID
        self.round1 = round1
    }

    static func listProblem(_ ids: [UInt16]) -> String? {
        if ids.count < 2 { return "\(ids.count) round-1 messages; a ceremony has at least 2 participants" }
        return CeremonyFields.ascendingProblem(ids, what: "senders")
    }

    /// Writes the fields in order.
    public func encode(into writer: inout WireWriter) {
        writer.write(bytes: ceremonyID)
        writer.write(array: round1) { $0.write($1) }
    }

    /// Reads the fields in order.
    public init(from reader: inout WireReader) throws(WireError) {
        ceremonyID = try CeremonyFields.readFixed(&reader, "ceremonyID", CeremonyFields.ceremonyIDLength)
        let start = reader.offset
        round1 = try reader.readArray(
            "round1", minimumElementLength: CeremonyRound1.minimumLength,
            maximumCount: CeremonyFields.maximumParticipants
        ) { reader throws(WireError) in try reader.read(CeremonyRound1.self, "") }
        if let problem = Self.listProblem(round1.map(\.nodeID)) {
            throw reader.invalidValue("round1", at: start, problem)
        }
    }
}

/// A round-2 share in an ``IdentityBox`` from `sender` to `recipient`; the box's context binds
/// the ceremony id, the purpose, the sender and the recipient (``context(ceremonyID:)``).
///
/// ```
/// sender     u16    1…
/// recipient  u16    1…, not the sender
/// purpose    u8     1 signing, 2 sealing
/// box        bytes  1…256
/// ```
public struct SealedShare: WireCodable, Hashable {
    /// Who made the share.
    public let sender: UInt16
    /// Who alone can open it.
    public let recipient: UInt16
    /// Which key it is a share of.
    public let purpose: CeremonyKeyPurpose
    /// The box.
    public let box: [UInt8]

    /// A sealed share.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` for node id 0, a share to oneself, or an empty or
    ///   oversized box.
    public init(sender: UInt16, recipient: UInt16, purpose: CeremonyKeyPurpose, box: [UInt8]) throws(WireError) {
        try CeremonyFields.check(Self.problem(sender, recipient, box), "SealedShare", "box")
        self.sender = sender
        self.recipient = recipient
        self.purpose = purpose
        self.box = box
    }

    static func problem(_ sender: UInt16, _ recipient: UInt16, _ box: [UInt8]) -> String? {
        if let problem = CeremonyFields.nodeIDProblem(sender) ?? CeremonyFields.nodeIDProblem(recipient) {
            return problem
        }
        if sender == recipient { return "node \(sender) sealed a share to itself" }
        if box.isEmpty || box.count > CeremonyFields.maximumBoxLength {
            return "a box of \(box.count) bytes; 1…\(CeremonyFields.maximumBoxLength)"
        }
        return nil
    }

    /// The context the box is sealed under: this ceremony, this key, this sender, this recipient,
    /// so a box cannot be moved to another ceremony, key or slot.
    public func context(ceremonyID: [UInt8]) -> [UInt8] {
        Self.context(ceremonyID: ceremonyID, purpose: purpose, sender: sender, recipient: recipient)
    }

    /// See ``context(ceremonyID:)``.
    public static func context(
        ceremonyID: [UInt8], purpose: CeremonyKeyPurpose, sender: UInt16, recipient: UInt16
    ) -> [UInt8] {
        CeremonyFields.signedBytes("quorum-latch/ceremony/share/v1") { writer in
            writer.write(bytes: ceremonyID)
            writer.write(purpose.rawValue)
            writer.write(sender)
            writer.write(recipient)
        }
    }

    /// Writes the fields in order.
    public func encode(into writer: inout WireWriter) {
        writer.write(sender)
        writer.write(recipient)
        writer.write(purpose.rawValue)
        writer.write(bytes: box)
    }

    /// Reads the fields in order.
    public init(from reader: inout WireReader) throws(WireError) {
        sender = try CeremonyFields.readNodeID(&reader, "sender")
        recipient = try CeremonyFields.readNodeID(&reader, "recipient")
        purpose = try CeremonyFields.readEnum(&reader, "purpose", CeremonyKeyPurpose.self)
        let start = reader.offset
        box = try reader.readBytes("box", maximumLength: CeremonyFields.maximumBoxLength)
        if let problem = Self.problem(sender, recipient, box) { throw reader.invalidValue("box", at: start, problem) }
    }

    static let minimumLength = 2 + 2 + 1 + 4 + 1
}

/// A node's echo: the digest (``CeremonyRound1/digest``) of every participant's round-1 message
/// as it received it, in participant order, signed. Nodes compare echoes in round three, so a
/// participant that sent different packages to different nodes is caught and named.
///
/// ```
/// nodeID     u16             the echoing node
/// digests    array of bytes  32 each, one per participant, ascending by participant
/// signature  bytes           64: Ed25519 over the domain `quorum-latch/ceremony/echo/v1`,
///                            the ceremony id, nodeID and digests
/// ```
public struct CeremonyEcho: WireCodable, Hashable {
    /// The echoing node.
    public let nodeID: UInt16
    /// One digest per participant, in participant order.
    public let digests: [[UInt8]]
    /// The echoing node's signature.
    public let signature: [UInt8]

    /// An echo signed with `identity`.
    public init(
        ceremonyID: [UInt8], nodeID: UInt16, digests: [[UInt8]], signedBy identity: Ed25519KeyPair
    )
        throws(WireError)
    {
        try self.init(
            nodeID: nodeID, digests: digests,
            signature: identity.sign(Self.signedBytes(ceremonyID, nodeID, digests)))
    }

    /// An echo with a signature made elsewhere.
    public init(nodeID: UInt16, digests: [[UInt8]], signature: [UInt8]) throws(WireError) {
        try CeremonyFields.check(CeremonyFields.nodeIDProblem(nodeID), "CeremonyEcho", "nodeID")
        for digest in digests {
            try CeremonyFields.check(CeremonyFields.exactLength(digest, 32, "a digest"), "CeremonyEcho", "digests")
        }
        try CeremonyFields.check(CeremonyFields.exactLength(signature, 64, "a signature"), "CeremonyEcho", "signature")
        self.nodeID = nodeID
        self.digests = digests
        self.signature = signature
    }

    static func signedBytes(_ ceremonyID: [UInt8], _ nodeID: UInt16, _ digests: [[UInt8]]) -> [UInt8] {
        CeremonyFields.signedBytes("quorum-latch/ceremony/echo/v1") { writer in
            writer.write(bytes: ceremonyID)
            writer.write(nodeID)
            writer.write(array: digests) { $0.write(bytes: $1) }
        }
    }

    /// Whether the signature is the holder of `identityKey`'s, for ceremony `ceremonyID`.
    public func isSigned(by identityKey: [UInt8], ceremonyID: [UInt8]) -> Bool {
        Ed25519KeyPair.verify(
            signature: signature, message: Self.signedBytes(ceremonyID, nodeID, digests), publicKey: identityKey)
    }

    /// Writes the fields in order.
    public func encode(into writer: inout WireWriter) {
        writer.write(nodeID)
        writer.write(array: digests) { $0.write(bytes: $1) }
        writer.write(bytes: signature)
    }

    /// Reads the fields in order.
    public init(from reader: inout WireReader) throws(WireError) {
        nodeID = try CeremonyFields.readNodeID(&reader, "nodeID")
        digests = try reader.readArray(
            "digests", minimumElementLength: 4 + 32, maximumCount: CeremonyFields.maximumParticipants
        ) { reader throws(WireError) in try CeremonyFields.readFixed(&reader, "", CeremonyFields.digestLength) }
        signature = try CeremonyFields.readFixed(&reader, "signature", CeremonyFields.signatureLength)
    }

    static let minimumLength = 2 + 4 + 4 + 64
}

/// A node's round-two answer (type 19): its echo, and its round-2 shares for every other
/// participant, both keys, each sealed to the recipient's identity key.
///
/// ```
/// ceremonyID  bytes                 16
/// echo        CeremonyEcho          nodeID is the sender
/// shares      array of SealedShare  sender = echo.nodeID
/// ```
public struct CeremonyRound2: WireMessage {
    /// Message type 19.
    public static let type: UInt16 = 19

    /// The ceremony's id.
    public let ceremonyID: [UInt8]
    /// The sender's echo.
    public let echo: CeremonyEcho
    /// The sender's shares for the others.
    public let shares: [SealedShare]

    /// The sender's id.
    public var nodeID: UInt16 { echo.nodeID }

    /// A round-2 answer.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` for a bad id or a share from someone else.
    public init(ceremonyID: [UInt8], echo: CeremonyEcho, shares: [SealedShare]) throws(WireError) {
        try CeremonyFields.check(
            CeremonyFields.exactLength(ceremonyID, 16, "a ceremony id"), Self.name, "ceremonyID")
        try CeremonyFields.check(Self.sharesProblem(shares, sender: echo.nodeID), Self.name, "shares")
        self.ceremonyID = ceremonyID
        self.echo = echo
        self.shares = shares
    }

    static func sharesProblem(_ shares: [SealedShare], sender: UInt16) -> String? {
        if shares.count > 2 * CeremonyFields.maximumParticipants { return "\(shares.count) shares; too many" }
        if let other = shares.first(where: { $0.sender != sender }) {
            return "a share from node \(other.sender) in node \(sender)'s answer"
        }
        return nil
    }

    /// Writes the fields in order.
    public func encode(into writer: inout WireWriter) {
        writer.write(bytes: ceremonyID)
        writer.write(echo)
        writer.write(array: shares) { $0.write($1) }
    }

    /// Reads the fields in order.
    public init(from reader: inout WireReader) throws(WireError) {
        ceremonyID = try CeremonyFields.readFixed(&reader, "ceremonyID", CeremonyFields.ceremonyIDLength)
        echo = try reader.read(CeremonyEcho.self, "echo")
        let start = reader.offset
        shares = try reader.readArray(
            "shares", minimumElementLength: SealedShare.minimumLength,
            maximumCount: 2 * CeremonyFields.maximumParticipants
        ) { reader throws(WireError) in try reader.read(SealedShare.self, "") }
        if let problem = Self.sharesProblem(shares, sender: echo.nodeID) {
            throw reader.invalidValue("shares", at: start, problem)
        }
    }
}

/// Round three's input (type 20; operator only): every participant's echo, and the shares
/// addressed to this node.
///
/// ```
/// ceremonyID  bytes                  16
/// echoes      array of CeremonyEcho  one per participant, ascending by nodeID
/// shares      array of SealedShare   the ones whose recipient is the receiving node
/// ```
public struct CeremonyRound3Request: WireMessage {
    /// Message type 20.
    public static let type: UInt16 = 20

    /// The ceremony's id.
    public let ceremonyID: [UInt8]
    /// Every participant's echo.
    public let echoes: [CeremonyEcho]
    /// The shares for the receiving node.
    public let shares: [SealedShare]

    /// The request.
    public init(ceremonyID: [UInt8], echoes: [CeremonyEcho], shares: [SealedShare]) throws(WireError) {
        try CeremonyFields.check(
            CeremonyFields.exactLength(ceremonyID, 16, "a ceremony id"), Self.name, "ceremonyID")
        try CeremonyFields.check(
            CeremonyFields.ascendingProblem(echoes.map(\.nodeID), what: "echoes"), Self.name, "echoes")
        self.ceremonyID = ceremonyID
        self.echoes = echoes
        self.shares = shares
    }

    /// Writes the fields in order.
    public func encode(into writer: inout WireWriter) {
        writer.write(bytes: ceremonyID)
        writer.write(array: echoes) { $0.write($1) }
        writer.write(array: shares) { $0.write($1) }
    }

    /// Reads the fields in order.
    public init(from reader: inout WireReader) throws(WireError) {
        ceremonyID = try CeremonyFields.readFixed(&reader, "ceremonyID", CeremonyFields.ceremonyIDLength)
        let start = reader.offset
        echoes = try reader.readArray(
            "echoes", minimumElementLength: CeremonyEcho.minimumLength,
            maximumCount: CeremonyFields.maximumParticipants
        ) { reader throws(WireError) in try reader.read(CeremonyEcho.self, "") }
        if let problem = CeremonyFields.ascendingProblem(echoes.map(\.nodeID), what: "echoes") {
            throw reader.invalidValue("echoes", at: start, problem)
        }
        shares = try reader.readArray(
            "shares", minimumElementLength: SealedShare.minimumLength,
            maximumCount: 2 * CeremonyFields.maximumParticipants
        ) { reader throws(WireError) in try reader.read(SealedShare.self, "") }
    }
}

/// A node's round-three answer (type 21): the transcript digest it computed, the two public key
/// packages it derived (as `group.json` and `sealing-group.json` bytes), and its identity-key
/// signature over the digest. The node has staged its new keys but uses none of them yet.
///
/// ```
/// ceremonyID        bytes  16
/// nodeID            u16    the sender
/// transcriptDigest  bytes  32
/// signingGroup      bytes  group.json, 1 byte … 1 MiB
/// sealingGroup      bytes  sealing-group.json, likewise
/// signature         bytes  64: Ed25519 over CeremonyTranscript signedBytes
/// ```
public struct CeremonyRound3: WireMessage {
    /// Message type 21.
    public static let type: UInt16 = 21

    /// The ceremony's id.
    public let ceremonyID: [UInt8]
    /// The sender.
    public let nodeID: UInt16
    /// The transcript digest the sender computed.
    public let transcriptDigest: [UInt8]
    /// The signing group's public file.
    public let signingGroup: [UInt8]
    /// The sealing group's public file.
    public let sealingGroup: [UInt8]
    /// The sender's signature over the transcript (``CeremonyTranscriptSignature``).
    public let signature: [UInt8]

    /// A round-3 answer.
    public init(
        ceremonyID: [UInt8], nodeID: UInt16, transcriptDigest: [UInt8], signingGroup: [UInt8],
        sealingGroup: [UInt8], signature: [UInt8]
    ) throws(WireError) {
        let name = Self.name
        try CeremonyFields.check(CeremonyFields.exactLength(ceremonyID, 16, "a ceremony id"), name, "ceremonyID")
        try CeremonyFields.check(CeremonyFields.nodeIDProblem(nodeID), name, "nodeID")
        try CeremonyFields.check(
            CeremonyFields.exactLength(transcriptDigest, 32, "a digest"), name, "transcriptDigest")
        for (field, file) in [("signingGroup", signingGroup), ("sealingGroup", sealingGroup)]
        where file.isEmpty || file.count > CeremonyFields.maximumGroupFileLength {
            try CeremonyFields.check("a group file of \(file.count) bytes", name, field)
        }
        try CeremonyFields.check(CeremonyFields.exactLength(signature, 64, "a signature"), name, "signature")
        self.ceremonyID = ceremonyID
        self.nodeID = nodeID
        self.transcriptDigest = transcriptDigest
        self.signingGroup = signingGroup
        self.sealingGroup = sealingGroup
        self.signature = signature
    }

    /// Writes the fields in order.
    public func encode(into writer: inout WireWriter) {
        writer.write(bytes: ceremonyID)
        writer.write(nodeID)
        writer.write(bytes: transcriptDigest)
        writer.write(bytes: signingGroup)
        writer.write(bytes: sealingGroup)
        writer.write(bytes: signature)
    }

    /// Reads the fields in order.
    public init(from reader: inout WireReader) throws(WireError) {
        ceremonyID = try CeremonyFields.readFixed(&reader, "ceremonyID", CeremonyFields.ceremonyIDLength)
        nodeID = try CeremonyFields.readNodeID(&reader, "nodeID")
        transcriptDigest = try CeremonyFields.readFixed(&reader, "transcriptDigest", CeremonyFields.digestLength)
        signingGroup = try CeremonyFields.readNonEmpty(
            &reader, "signingGroup", maximum: CeremonyFields.maximumGroupFileLength)
        sealingGroup = try CeremonyFields.readNonEmpty(
            &reader, "sealingGroup", maximum: CeremonyFields.maximumGroupFileLength)
        signature = try CeremonyFields.readFixed(&reader, "signature", CeremonyFields.signatureLength)
    }
}

/// What a node's transcript signature covers: the domain `quorum-latch/ceremony/transcript/v1`,
/// the ceremony id and the transcript digest, in the codec.
public enum CeremonyTranscriptSignature {
    /// The bytes a node signs to vouch for `transcriptDigest`.
    public static func signedBytes(ceremonyID: [UInt8], transcriptDigest: [UInt8]) -> [UInt8] {
        CeremonyFields.signedBytes("quorum-latch/ceremony/transcript/v1") { writer in
            writer.write(bytes: ceremonyID)
            writer.write(bytes: transcriptDigest)
        }
    }

    /// Whether `signature` is `identityKey`'s over the transcript.
    public static func verify(
        _ signature: [UInt8], ceremonyID: [UInt8], transcriptDigest: [UInt8], identityKey: [UInt8]
    ) -> Bool {
        Ed25519KeyPair.verify(
            signature: signature, message: signedBytes(ceremonyID: ceremonyID, transcriptDigest: transcriptDigest),
            publicKey: identityKey)
    }
}

/// One node's signature in a success certificate.
///
/// ```
/// nodeID     u16    1…
/// signature  bytes  64
/// ```
public struct CeremonySignature: WireCodable, Hashable {
    /// The signer.
    public let nodeID: UInt16
    /// Its transcript signature.
    public let signature: [UInt8]

    /// A certificate entry.
    public init(nodeID: UInt16, signature: [UInt8]) throws(WireError) {
        try CeremonyFields.check(CeremonyFields.nodeIDProblem(nodeID), "CeremonySignature", "nodeID")
        try CeremonyFields.check(
            CeremonyFields.exactLength(signature, 64, "a signature"), "CeremonySignature", "signature")
        self.nodeID = nodeID
        self.signature = signature
    }

    /// Writes the fields in order.
    public func encode(into writer: inout WireWriter) {
        writer.write(nodeID)
        writer.write(bytes: signature)
    }

    /// Reads the fields in order.
    public init(from reader: inout WireReader) throws(WireError) {
        nodeID = try CeremonyFields.readNodeID(&reader, "nodeID")
        signature = try CeremonyFields.readFixed(&reader, "signature", CeremonyFields.signatureLength)
    }
}

/// The success certificate (type 22; operator only): every participant's signature over one
/// transcript digest. A node installs its staged keys only after checking every signature.
///
/// ```
/// ceremonyID        bytes                        16
/// transcriptDigest  bytes                        32
/// certificate       array of CeremonySignature   one per participant, ascending by nodeID
/// ```
public struct CeremonyCommit: WireMessage {
    /// Message type 22.
    public static let type: UInt16 = 22

    /// The ceremony's id.
    public let ceremonyID: [UInt8]
    /// The digest every participant signed.
    public let transcriptDigest: [UInt8]
    /// Every participant's signature.
    public let certificate: [CeremonySignature]

    /// A commit.
    public init(ceremonyID: [UInt8], transcriptDigest: [UInt8], certificate: [CeremonySignature]) throws(WireError) {
        try CeremonyFields.check(
            CeremonyFields.exactLength(ceremonyID, 16, "a ceremony id"), Self.name, "ceremonyID")
        try CeremonyFields.check(
            CeremonyFields.exactLength(transcriptDigest, 32, "a digest"), Self.name, "transcriptDigest")
        try CeremonyFields.check(
            CeremonyFields.ascendingProblem(certificate.map(\.nodeID), what: "signers"), Self.name, "certificate")
        self.ceremonyID = ceremonyID
        self.transcriptDigest = transcriptDigest
        self.certificate = certificate
    }

    /// Writes the fields in order.
    public func encode(into writer: inout WireWriter) {
        writer.write(bytes: ceremonyID)
        writer.write(bytes: transcriptDigest)
        writer.write(array: certificate) { $0.write($1) }
    }

    /// Reads the fields in order.
    public init(from reader: inout WireReader) throws(WireError) {
        ceremonyID = try CeremonyFields.readFixed(&reader, "ceremonyID", CeremonyFields.ceremonyIDLength)
        transcriptDigest = try CeremonyFields.readFixed(&reader, "transcriptDigest", CeremonyFields.digestLength)
        let start = reader.offset
        certificate = try reader.readArray(
            "certificate", minimumElementLength: 2 + 4 + 64, maximumCount: CeremonyFields.maximumParticipants
        ) { reader throws(WireError) in try reader.read(CeremonySignature.self, "") }
        if let problem = CeremonyFields.ascendingProblem(certificate.map(\.nodeID), what: "signers") {
            throw reader.invalidValue("certificate", at: start, problem)
        }
    }
}

/// Ends a ceremony without keys (type 23; operator only): the node discards everything it
/// staged for it. Aborting a ceremony the node does not hold is answered as done.
///
/// ```
/// ceremonyID  bytes   16
/// reason      string  at most 2048 bytes, for the node's log
/// ```
public struct CeremonyAbort: WireMessage {
    /// Message type 23.
    public static let type: UInt16 = 23

    /// The ceremony's id.
    public let ceremonyID: [UInt8]
    /// Why the operator aborts.
    public let reason: String

    /// An abort.
    public init(ceremonyID: [UInt8], reason: String) throws(WireError) {
        try CeremonyFields.check(
            CeremonyFields.exactLength(ceremonyID, 16, "a ceremony id"), Self.name, "ceremonyID")
        self.ceremonyID = ceremonyID
        self.reason = CeremonyFields.cut(reason)
    }

    /// Writes the fields in order.
    public func encode(into writer: inout WireWriter) {
        writer.write(bytes: ceremonyID)
        writer.write(string: reason)
    }

    /// Reads the fields in order.
    public init(from reader: inout WireReader) throws(WireError) {
        ceremonyID = try CeremonyFields.readFixed(&reader, "ceremonyID", CeremonyFields.ceremonyIDLength)
        reason = try CeremonyFields.readReason(&reader, "reason")
    }
}

/// A node's answer to ``CeremonyCommit`` or ``CeremonyAbort`` (type 24).
///
/// ```
/// ceremonyID  bytes  16
/// nodeID      u16    the answering node
/// outcome     u8     1 committed (the keys are installed), 2 aborted (nothing kept)
/// ```
public struct CeremonyAck: WireMessage {
    /// Message type 24.
    public static let type: UInt16 = 24

    /// What the node did.
    public enum Outcome: UInt8, Sendable, Hashable {
        /// The ceremony's keys are installed.
        case committed = 1
        /// Nothing of the ceremony is kept.
        case aborted = 2
    }

    /// The ceremony's id.
    public let ceremonyID: [UInt8]
    /// The answering node.
    public let nodeID: UInt16
    /// What it did.
    public let outcome: Outcome

    /// An acknowledgement.
    public init(ceremonyID: [UInt8], nodeID: UInt16, outcome: Outcome) throws(WireError) {
        try CeremonyFields.check(
            CeremonyFields.exactLength(ceremonyID, 16, "a ceremony id"), Self.name, "ceremonyID")
        try CeremonyFields.check(CeremonyFields.nodeIDProblem(nodeID), Self.name, "nodeID")
        self.ceremonyID = ceremonyID
        self.nodeID = nodeID
        self.outcome = outcome
    }

    /// Writes the fields in order.
    public func encode(into writer: inout WireWriter) {
        writer.write(bytes: ceremonyID)
        writer.write(nodeID)
        writer.write(outcome.rawValue)
    }

    /// Reads the fields in order.
    public init(from reader: inout WireReader) throws(WireError) {
        ceremonyID = try CeremonyFields.readFixed(&reader, "ceremonyID", CeremonyFields.ceremonyIDLength)
        nodeID = try CeremonyFields.readNodeID(&reader, "nodeID")
        outcome = try CeremonyFields.readEnum(&reader, "outcome", Outcome.self)
    }
}

/// A node's refusal of a ceremony step (type 25; answers any ceremony request in place of the
/// expected response): the phase, the participant at fault when the node can name one, and why.
/// The node has discarded the ceremony.
///
/// ```
/// ceremonyID  bytes         16
/// nodeID      u16           the refusing node
/// phase       u8            1 begin, 2 round 2, 3 round 3, 4 commit, 5 abort
/// culprit     optional u16  the participant whose message or behaviour is at fault
/// reason      string        at most 2048 bytes; never a secret
/// ```
public struct CeremonyRefusal: WireMessage, CustomStringConvertible {
    /// Message type 25.
    public static let type: UInt16 = 25

    /// The ceremony's id.
    public let ceremonyID: [UInt8]
    /// The refusing node.
    public let nodeID: UInt16
    /// The step refused.
    public let phase: CeremonyPhase
    /// The participant at fault, when the node can name one.
    public let culprit: UInt16?
    /// Why.
    public let reason: String

    /// A refusal; a reason longer than 2048 bytes is cut.
    public init(
        ceremonyID: [UInt8], nodeID: UInt16, phase: CeremonyPhase, culprit: UInt16?, reason: String
    ) throws(WireError) {
        try CeremonyFields.check(
            CeremonyFields.exactLength(ceremonyID, 16, "a ceremony id"), Self.name, "ceremonyID")
        try CeremonyFields.check(CeremonyFields.nodeIDProblem(nodeID), Self.name, "nodeID")
        try CeremonyFields.check(culprit.flatMap(CeremonyFields.nodeIDProblem), Self.name, "culprit")
        self.ceremonyID = ceremonyID
        self.nodeID = nodeID
        self.phase = phase
        self.culprit = culprit
        self.reason = CeremonyFields.cut(reason)
    }

    /// `node 2 refused round 3: …`.
    public var description: String { "node \(nodeID) refused \(phase): \(reason)" }

    /// Writes the fields in order.
    public func encode(into writer: inout WireWriter) {
        writer.write(bytes: ceremonyID)
        writer.write(nodeID)
        writer.write(phase.rawValue)
        writer.write(optional: culprit) { $0.write($1) }
        writer.write(string: reason)
    }

    /// Reads the fields in order.
    public init(from reader: inout WireReader) throws(WireError) {
        ceremonyID = try CeremonyFields.readFixed(&reader, "ceremonyID", CeremonyFields.ceremonyIDLength)
        nodeID = try CeremonyFields.readNodeID(&reader, "nodeID")
        phase = try CeremonyFields.readEnum(&reader, "phase", CeremonyPhase.self)
        culprit = try reader.readOptional("culprit") { reader throws(WireError) in
            try CeremonyFields.readNodeID(&reader, "culprit")
        }
        reason = try CeremonyFields.readReason(&reader, "reason")
    }
}

extension MessageRegistry {
    /// The ceremony's messages, types 16–25.
    public static let ceremonyMessages: [any WireMessage.Type] = [
        CeremonyBegin.self, CeremonyRound1.self, CeremonyRound2Request.self, CeremonyRound2.self,
        CeremonyRound3Request.self, CeremonyRound3.self, CeremonyCommit.self, CeremonyAbort.self,
        CeremonyAck.self, CeremonyRefusal.self,
    ]
}
