/// The signing service's messages (types 32–47): a proxy collects nonce commitments from nodes
/// ahead of time (``CommitmentsRequest``), then asks each chosen signer for its FROST signature
/// share over one decision (``SignRequest``). See `docs/protocol.md`, "Signing messages".
///
/// The rules every field must keep live here, in one place, so that what a proxy can build a node
/// decodes, and what a node decodes a proxy could have built.
public enum SigningLimits {
    /// The most commitments one ``CommitmentsRequest`` may ask for.
    public static let maximumCommitmentsPerRequest = 256
    /// The most signers one ``SignRequest`` may list (more than any cluster this design runs).
    public static let maximumSigners = 1024
    /// The longest decision a node signs, in bytes.
    public static let maximumMessageLength = 65536
    /// The longest request id, in bytes.
    public static let maximumRequestIDLength = 128
    /// Commitment lengths: hiding and binding elements of 32 bytes (Ed25519) or 33 (secp256k1).
    public static let commitmentLengths: Set<Int> = [64, 66]
    /// Signature share lengths: one scalar of 32 bytes (both ciphersuites).
    public static let shareLength = 32

    /// Why `requestID` is not allowed, or nil. Request ids are 1…128 bytes of printable ASCII
    /// without spaces (`!`…`~`), so they print in logs and evidence as they are and can never be
    /// two spellings of one id.
    public static func requestIDProblem(_ requestID: String) -> String? {
        let bytes = requestID.utf8
        if bytes.isEmpty { return "an empty request id; it names the decision being signed" }
        if bytes.count > maximumRequestIDLength {
            return "a request id of \(bytes.count) bytes; at most \(maximumRequestIDLength)"
        }
        if let bad = bytes.first(where: { !(0x21...0x7E).contains($0) }) {
            return "a request id byte 0x\(String(bad, radix: 16)); only printable ASCII without spaces (! to ~)"
        }
        return nil
    }

    static func messageProblem(_ message: [UInt8]) -> String? {
        if message.isEmpty { return "an empty message; the node signs a decision, never nothing" }
        if message.count > maximumMessageLength {
            return "a message of \(message.count) bytes; at most \(maximumMessageLength)"
        }
        return nil
    }

    static func commitmentProblem(_ commitment: [UInt8]) -> String? {
        commitmentLengths.contains(commitment.count)
            ? nil
            : "a commitment of \(commitment.count) bytes; it is hiding || binding, 64 (Ed25519) or 66 (secp256k1)"
    }

    static func shareProblem(_ share: [UInt8]) -> String? {
        share.count == shareLength ? nil : "a signature share of \(share.count) bytes; it is \(shareLength)"
    }

    static func countProblem(_ count: Int, _ what: String) -> String? {
        if count == 0 { return "no \(what); at least 1" }
        if count > maximumCommitmentsPerRequest {
            return "\(count) \(what); at most \(maximumCommitmentsPerRequest)"
        }
        return nil
    }

    /// Nonce ids are listed once each, ascending, so a batch has one encoding.
    static func nonceIDsProblem(_ ids: [UInt64]) -> String? {
        for (a, b) in zip(ids, ids.dropFirst()) where b <= a {
            return "nonce id \(b) after \(a); nonce ids are listed once each, ascending"
        }
        return nil
    }

    /// RFC 9591 requires the commitment list sorted by identifier, each signer once; identifier 0
    /// is never a participant.
    static func signersProblem(_ identifiers: [UInt16]) -> String? {
        if identifiers.isEmpty { return "no commitments; the list names every signer" }
        if identifiers.count > maximumSigners { return "\(identifiers.count) signers; at most \(maximumSigners)" }
        var previous: UInt16 = 0
        for identifier in identifiers {
            if identifier == 0 { return "identifier 0; participant identifiers start at 1" }
            if identifier == previous { return "identifier \(identifier) twice; each signer is listed once" }
            if identifier < previous {
                return "identifier \(identifier) after \(previous); the list is sorted by identifier (RFC 9591)"
            }
            previous = identifier
        }
        return nil
    }

    static func readRequestID(_ reader: inout WireReader) throws(WireError) -> String {
        let start = reader.offset
        let requestID = try reader.readString("requestID", maximumLength: maximumRequestIDLength)
        if let problem = requestIDProblem(requestID) { throw reader.invalidValue("requestID", at: start, problem) }
        return requestID
    }

    static func check(_ problem: String?, _ message: String, _ field: String) throws(WireError) {
        if let problem { throw WireError(.invalidValue, field: "\(message).\(field)", offset: 0, problem) }
    }
}

/// Asks a node for `count` fresh nonce commitments (RFC 9591 round one) of its current boot
/// epoch. Only proxies may ask.
///
/// ```
/// count  u16  1…256
/// ```
public struct CommitmentsRequest: WireMessage {
    /// Message type 32.
    public static let type: UInt16 = 32

    /// How many commitments the proxy wants.
    public let count: UInt16

    /// A request for `count` commitments.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` for 0 or more than 256.
    public init(count: Int) throws(WireError) {
        try SigningLimits.check(SigningLimits.countProblem(count, "commitments"), Self.name, "count")
        self.count = UInt16(count)
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(count)
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        count = try reader.readUInt16("count")
        if let problem = SigningLimits.countProblem(Int(count), "commitments") {
            throw reader.invalidValue("count", at: start, problem)
        }
    }
}

/// One nonce commitment a node published: the id the node keeps its secret nonces under, and the
/// public commitment `hiding || binding` (RFC 9591 `SerializeElement` of each).
///
/// ```
/// nonceID     u64    the node's id for the nonce, unique within its boot epoch
/// commitment  bytes  64 (Ed25519) or 66 (secp256k1)
/// ```
public struct NonceCommitment: WireCodable, Hashable {
    /// The node's id for the nonce.
    public let nonceID: UInt64
    /// `hiding || binding`.
    public let commitment: [UInt8]

    /// A commitment entry.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` for a commitment of another length.
    public init(nonceID: UInt64, commitment: [UInt8]) throws(WireError) {
        try SigningLimits.check(SigningLimits.commitmentProblem(commitment), "NonceCommitment", "commitment")
        self.nonceID = nonceID
        self.commitment = commitment
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(nonceID)
        writer.write(bytes: commitment)
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        nonceID = try reader.readUInt64("nonceID")
        let start = reader.offset
        commitment = try reader.readBytes("commitment", maximumLength: 66)
        if let problem = SigningLimits.commitmentProblem(commitment) {
            throw reader.invalidValue("commitment", at: start, problem)
        }
    }

    /// The smallest encoding: id, length, 64 bytes.
    static let minimumLength = 8 + 4 + 64
}

/// A node's answer to ``CommitmentsRequest``: fresh commitments of its current boot epoch. A
/// proxy drops every commitment it holds from a node when that node's epoch changes (the node
/// restarted, so the nonces behind them are gone).
///
/// ```
/// nodeID       u16                      1…
/// bootEpoch    u64                      the node's epoch; the commitments are valid only in it
/// commitments  array of NonceCommitment 1…256, ascending by nonceID, distinct
/// ```
public struct CommitmentsResponse: WireMessage {
    /// Message type 33.
    public static let type: UInt16 = 33

    /// The answering node's id (its FROST identifier).
    public let nodeID: UInt16
    /// The answering node's boot epoch.
    public let bootEpoch: UInt64
    /// The commitments, ascending by nonce id.
    public let commitments: [NonceCommitment]

    /// A response with these commitments.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` for node id 0, an empty or oversized batch, or
    ///   nonce ids out of order.
    public init(nodeID: UInt16, bootEpoch: UInt64, commitments: [NonceCommitment]) throws(WireError) {
        try NodeFacts.check(NodeFacts.nodeIDProblem(nodeID), Self.name, "nodeID")
        try SigningLimits.check(SigningLimits.countProblem(commitments.count, "commitments"), Self.name, "commitments")
        try SigningLimits.check(SigningLimits.nonceIDsProblem(commitments.map(\.nonceID)), Self.name, "commitments")
        self.nodeID = nodeID
        self.bootEpoch = bootEpoch
        self.commitments = commitments
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(nodeID)
        writer.write(bootEpoch)
        writer.write(array: commitments) { $0.write($1) }
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let nodeStart = reader.offset
        nodeID = try reader.readUInt16("nodeID")
        if let problem = NodeFacts.nodeIDProblem(nodeID) { throw reader.invalidValue("nodeID", at: nodeStart, problem) }
        bootEpoch = try reader.readUInt64("bootEpoch")
        let listStart = reader.offset
        commitments = try reader.readArray(
            "commitments", minimumElementLength: NonceCommitment.minimumLength,
            maximumCount: SigningLimits.maximumCommitmentsPerRequest
        ) { reader throws(WireError) in try reader.read(NonceCommitment.self, "") }
        if let problem = SigningLimits.countProblem(commitments.count, "commitments")
            ?? SigningLimits.nonceIDsProblem(commitments.map(\.nonceID))
        {
            throw reader.invalidValue("commitments", at: listStart, problem)
        }
    }
}

/// One signer's entry in a ``SignRequest``'s commitment list.
///
/// ```
/// identifier  u16    the signer's FROST identifier (its node id), 1…
/// commitment  bytes  64 (Ed25519) or 66 (secp256k1): hiding || binding
/// ```
public struct SignerCommitment: WireCodable, Hashable {
    /// The signer's identifier.
    public let identifier: UInt16
    /// `hiding || binding`.
    public let commitment: [UInt8]

    /// An entry of the commitment list.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` for identifier 0 or a commitment of another
    ///   length.
    public init(identifier: UInt16, commitment: [UInt8]) throws(WireError) {
        try SigningLimits.check(
            identifier == 0 ? "identifier 0; participant identifiers start at 1" : nil, "SignerCommitment",
            "identifier")
        try SigningLimits.check(SigningLimits.commitmentProblem(commitment), "SignerCommitment", "commitment")
        self.identifier = identifier
        self.commitment = commitment
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(identifier)
        writer.write(bytes: commitment)
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let idStart = reader.offset
        identifier = try reader.readUInt16("identifier")
        if identifier == 0 {
            throw reader.invalidValue("identifier", at: idStart, "identifier 0; participant identifiers start at 1")
        }
        let start = reader.offset
        commitment = try reader.readBytes("commitment", maximumLength: 66)
        if let problem = SigningLimits.commitmentProblem(commitment) {
            throw reader.invalidValue("commitment", at: start, problem)
        }
    }

    /// The smallest encoding: identifier, length, 64 bytes.
    static let minimumLength = 2 + 4 + 64
}

/// Asks one signer for its signature share over `message` (RFC 9591 round two). Only proxies may
/// ask.
///
/// ```
/// bootEpoch    u64                       the epoch of the signer's commitment
/// nonceID      u64                       which of the signer's nonces the commitment is
/// requestID    string                    1…128 bytes, printable ASCII without spaces
/// message      bytes                     1…65536: the decision being signed
/// commitments  array of SignerCommitment 1…1024, sorted by identifier, distinct
/// ```
///
/// The node signs at most one message per request id (DESIGN.md §7): the same message again is
/// signed with a fresh nonce; a different one is refused and kept as evidence.
public struct SignRequest: WireMessage {
    /// Message type 34.
    public static let type: UInt16 = 34

    /// The signer's boot epoch its commitment came from.
    public let bootEpoch: UInt64
    /// The signer's id for the nonce behind its commitment.
    public let nonceID: UInt64
    /// The decision's request id.
    public let requestID: String
    /// The bytes to sign.
    public let message: [UInt8]
    /// Every signer's commitment, sorted by identifier.
    public let commitments: [SignerCommitment]

    /// A sign request.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` for a request id, message or commitment list that
    ///   breaks the rules in the table above.
    public init(
        bootEpoch: UInt64, nonceID: UInt64, requestID: String, message: [UInt8], commitments: [SignerCommitment]
    ) throws(WireError) {
        try SigningLimits.check(SigningLimits.requestIDProblem(requestID), Self.name, "requestID")
        try SigningLimits.check(SigningLimits.messageProblem(message), Self.name, "message")
        try SigningLimits.check(SigningLimits.signersProblem(commitments.map(\.identifier)), Self.name, "commitments")
        self.bootEpoch = bootEpoch
        self.nonceID = nonceID
        self.requestID = requestID
        self.message = message
        self.commitments = commitments
    }

    /// The commitment the list carries for `identifier`, if any.
    public func commitment(of identifier: UInt16) -> [UInt8]? {
        commitments.first { $0.identifier == identifier }?.commitment
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(bootEpoch)
        writer.write(nonceID)
        writer.write(string: requestID)
        writer.write(bytes: message)
        writer.write(array: commitments) { $0.write($1) }
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        bootEpoch = try reader.readUInt64("bootEpoch")
        nonceID = try reader.readUInt64("nonceID")
        requestID = try SigningLimits.readRequestID(&reader)
        let messageStart = reader.offset
        message = try reader.readBytes("message", maximumLength: SigningLimits.maximumMessageLength)
        if let problem = SigningLimits.messageProblem(message) {
            throw reader.invalidValue("message", at: messageStart, problem)
        }
        let listStart = reader.offset
        commitments = try reader.readArray(
            "commitments", minimumElementLength: SignerCommitment.minimumLength,
            maximumCount: SigningLimits.maximumSigners
        ) { reader throws(WireError) in try reader.read(SignerCommitment.self, "") }
        if let problem = SigningLimits.signersProblem(commitments.map(\.identifier)) {
            throw reader.invalidValue("commitments", at: listStart, problem)
        }
    }
}

/// A signer's answer to ``SignRequest``: its share, which the proxy checks against the signer's
/// verifying share before aggregating.
///
/// ```
/// nodeID     u16     1…: the signer (its FROST identifier)
/// bootEpoch  u64     the signer's epoch
/// requestID  string  the request's, echoed
/// share      bytes   32: the signature share zᵢ
/// ```
public struct SignResponse: WireMessage {
    /// Message type 35.
    public static let type: UInt16 = 35

    /// The signer's node id.
    public let nodeID: UInt16
    /// The signer's boot epoch.
    public let bootEpoch: UInt64
    /// The request id the share was made for.
    public let requestID: String
    /// The signature share, a serialized scalar.
    public let share: [UInt8]

    /// A sign response.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` for node id 0, a bad request id or a share of the
    ///   wrong length.
    public init(nodeID: UInt16, bootEpoch: UInt64, requestID: String, share: [UInt8]) throws(WireError) {
        try NodeFacts.check(NodeFacts.nodeIDProblem(nodeID), Self.name, "nodeID")
        try SigningLimits.check(SigningLimits.requestIDProblem(requestID), Self.name, "requestID")
        try SigningLimits.check(SigningLimits.shareProblem(share), Self.name, "share")
        self.nodeID = nodeID
        self.bootEpoch = bootEpoch
        self.requestID = requestID
        self.share = share
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(nodeID)
        writer.write(bootEpoch)
        writer.write(string: requestID)
        writer.write(bytes: share)
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let nodeStart = reader.offset
        nodeID = try reader.readUInt16("nodeID")
        if let problem = NodeFacts.nodeIDProblem(nodeID) { throw reader.invalidValue("nodeID", at: nodeStart, problem) }
        bootEpoch = try reader.readUInt64("bootEpoch")
        requestID = try SigningLimits.readRequestID(&reader)
        let shareStart = reader.offset
        share = try reader.readBytes("share", maximumLength: SigningLimits.shareLength)
        if let problem = SigningLimits.shareProblem(share) {
            throw reader.invalidValue("share", at: shareStart, problem)
        }
    }
}

/// Why a node refused a ``CommitmentsRequest`` or ``SignRequest``: the error response's message
/// starts with the reason's name and a colon (`stale-epoch: commitments of an earlier boot …`), so
/// a proxy can act on it (fetch fresh commitments, try another signer, keep evidence) without
/// parsing prose. The error response's code is ``ErrorResponse/Code/unavailable`` for
/// ``Reason/noGroupKey`` and ``ErrorResponse/Code/refused`` for every other reason.
public struct SigningRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    /// The reasons, by the name they carry on the wire.
    public enum Reason: String, Sendable, Hashable, CaseIterable {
        /// No ceremony has completed on the node: it has no share to sign with.
        case noGroupKey = "no-group-key"
        /// The request names another boot epoch than the node's: commitments of an earlier boot
        /// (the node restarted and its nonces are gone). Fetch fresh commitments.
        case staleEpoch = "stale-epoch"
        /// The nonce was already used for a signature: nonce reuse, refused and kept as evidence.
        case nonceAlreadyUsed = "nonce-already-used"
        /// The node does not hold that nonce: never issued in this epoch, or discarded from a
        /// full pool. Fetch fresh commitments.
        case unknownNonce = "unknown-nonce"
        /// The commitment list lacks the node's own entry.
        case missingOwnCommitment = "missing-own-commitment"
        /// The list carries another commitment for the node than the one it issued under that id.
        case commitmentMismatch = "commitment-mismatch"
        /// The list is not sorted by identifier or names a signer twice.
        case unsortedCommitments = "unsorted-commitments"
        /// Fewer signers than the group's threshold.
        case tooFewSigners = "too-few-signers"
        /// A signer that is not a member of the group.
        case unknownSigner = "unknown-signer"
        /// A commitment that does not decode to two valid, non-identity group elements, or a list
        /// whose group commitment is the identity.
        case invalidCommitment = "invalid-commitment"
        /// The node already signed a different message for this request id: double signing,
        /// refused and kept as evidence.
        case conflictingDecision = "conflicting-decision"
        /// The message is not the receipt of a decision this node reached for the request id (it
        /// decided nothing for it, decided otherwise, or the receipt names other signers than the
        /// request): a node never signs what it did not itself decide.
        case noDecision = "no-decision"
    }

    /// The reason.
    public let reason: Reason
    /// The rest of the message: what exactly was wrong.
    public let detail: String

    /// A refusal for `reason`.
    public init(_ reason: Reason, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }

    /// The refusal an error response carries, or nil when its message names no signing reason.
    public init?(_ response: ErrorResponse) {
        guard let colon = response.message.firstIndex(of: ":"),
            let reason = Reason(rawValue: String(response.message[..<colon]))
        else { return nil }
        var detail = response.message[response.message.index(after: colon)...]
        if detail.first == " " { detail = detail.dropFirst() }
        self.reason = reason
        self.detail = String(detail)
    }

    /// The error response that carries the refusal.
    public var errorResponse: ErrorResponse {
        ErrorResponse(reason == .noGroupKey ? .unavailable : .refused, description)
    }

    /// `reason: detail`.
    public var description: String { "\(reason.rawValue): \(detail)" }
}
