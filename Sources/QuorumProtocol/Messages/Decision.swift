import QuorumCrypto

/// The decision messages (types 68–71): a proxy asks every node for its verdict on one agent call
/// (``DecideRequest``), each node answers with its verdict signed by its node key and, when it is
/// in the proxy's signer set, its FROST share over the call's receipt (``DecideResponse``); after
/// the upstream answered, the proxy reports the actual spend (``SettleRequest``). See
/// `docs/protocol.md`, "Decision messages".
public enum DecisionLimits {
    /// The most body bytes a decision request carries; a longer body is described by its length.
    public static let maximumBodyLength = 1024 * 1024
    /// The most header fields a decision request carries.
    public static let maximumHeaders = 256
    /// The longest method, target, header name, header value, client address and token, in bytes.
    public static let maximumMethodLength = 32
    public static let maximumTargetLength = 16384
    public static let maximumHeaderNameLength = 256
    public static let maximumHeaderValueLength = 16384
    public static let maximumClientAddressLength = 64
    public static let maximumTokenLength = 512
    /// The longest verdict encoding a node returns.
    public static let maximumVerdictLength = 256 * 1024
    /// The longest decryption share: an element and two scalars (secp256k1: 33 + 32 + 32).
    public static let maximumDecryptionShareLength = 97

    static func lengthProblem(_ value: String, _ what: String, _ maximum: Int) -> String? {
        value.utf8.count > maximum ? "\(what) of \(value.utf8.count) bytes; at most \(maximum)" : nil
    }
}

/// A header field of a ``DecideRequest``, as the agent sent it.
///
/// ```
/// name   string  1…256 bytes
/// value  string  0…16384 bytes
/// ```
public struct DecisionHeader: WireCodable, Hashable {
    /// The field name as received.
    public let name: String
    /// The field value as received.
    public let value: String

    /// A header field.
    public init(name: String, value: String) throws(WireError) {
        try NodeFacts.check(Self.problem(name: name, value: value), "DecisionHeader", "name")
        self.name = name
        self.value = value
    }

    static func problem(name: String, value: String) -> String? {
        if name.isEmpty { return "an empty header name" }
        return DecisionLimits.lengthProblem(name, "a header name", DecisionLimits.maximumHeaderNameLength)
            ?? DecisionLimits.lengthProblem(value, "a header value", DecisionLimits.maximumHeaderValueLength)
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(string: name)
        writer.write(string: value)
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        name = try reader.readString("name", maximumLength: DecisionLimits.maximumHeaderNameLength)
        value = try reader.readString("value", maximumLength: DecisionLimits.maximumHeaderValueLength)
        if let problem = Self.problem(name: name, value: value) {
            throw reader.invalidValue("name", at: start, problem)
        }
    }
}

/// One member of a ``DecideRequest``'s optimistic signer set: the signer, and the nonce
/// commitment of its that the proxy picked from what the signer published.
///
/// ```
/// identifier  u16    the signer's FROST identifier (its node id), 1…
/// bootEpoch   u64    the signer's boot epoch the commitment belongs to
/// nonceID     u64    the signer's id for the nonce
/// commitment  bytes  64 (Ed25519) or 66 (secp256k1): hiding || binding
/// ```
public struct SignerSlot: WireCodable, Hashable {
    /// The signer's identifier.
    public let identifier: UInt16
    /// The epoch of its commitment.
    public let bootEpoch: UInt64
    /// The nonce behind its commitment.
    public let nonceID: UInt64
    /// `hiding || binding`.
    public let commitment: [UInt8]

    /// A slot.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` for identifier 0 or a commitment of another length.
    public init(identifier: UInt16, bootEpoch: UInt64, nonceID: UInt64, commitment: [UInt8]) throws(WireError) {
        _ = try SignerCommitment(identifier: identifier, commitment: commitment)
        self.identifier = identifier
        self.bootEpoch = bootEpoch
        self.nonceID = nonceID
        self.commitment = commitment
    }

    /// The entry of the RFC 9591 commitment list this slot stands for.
    public var signerCommitment: SignerCommitment {
        // Checked by the initializers: identifier and commitment are valid.
        try! SignerCommitment(identifier: identifier, commitment: commitment)
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(identifier)
        writer.write(bootEpoch)
        writer.write(nonceID)
        writer.write(bytes: commitment)
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let idStart = reader.offset
        identifier = try reader.readUInt16("identifier")
        if identifier == 0 {
            throw reader.invalidValue("identifier", at: idStart, "identifier 0; participant identifiers start at 1")
        }
        bootEpoch = try reader.readUInt64("bootEpoch")
        nonceID = try reader.readUInt64("nonceID")
        let start = reader.offset
        commitment = try reader.readBytes("commitment", maximumLength: 66)
        if let problem = SigningLimits.commitmentProblem(commitment) {
            throw reader.invalidValue("commitment", at: start, problem)
        }
    }

    static let minimumLength = 2 + 8 + 8 + 4 + 64
}

/// One agent call, for every node's verdict. Only proxies may send it.
///
/// ```
/// requestID      string                  1…128 bytes, printable ASCII without spaces
/// time           i64                     the proxy's clock, milliseconds since 1970
/// method         string                  1…32 bytes
/// target         string                  1…16384 bytes: path and optional ?query, as received
/// headers        array of DecisionHeader 0…256, in the order received
/// body           bytes                   0…1 MiB: the body, or its first bytes
/// bodyLength     u64                     the body's full length, at least the bytes carried
/// bodySHA256     bytes                   32: SHA-256 of the whole body (equal to the digest of
///                                        `body` when the body is carried whole)
/// clientAddress  string                  0…64 bytes
/// token          string                  0…512 bytes: the lat_ token the agent presented
/// clientCertificateSHA256  bytes         0 or 32: SHA-256 of the DER client certificate the agent
///                                        presented to the proxy's TLS listener (RFC 8705)
/// signers        array of SignerSlot     0…1024, sorted by identifier, distinct
/// ```
///
/// The same payload goes to every node. Each evaluates it against its own bundle and state, and a
/// node named in `signers` that reaches a decision signs that decision's receipt with the nonce its
/// slot names. An empty signer set asks for verdicts only.
public struct DecideRequest: WireMessage {
    /// Message type 68.
    public static let type: UInt16 = 68

    public let requestID: String
    public let time: Int64
    public let method: String
    public let target: String
    public let headers: [DecisionHeader]
    public let body: [UInt8]
    public let bodyLength: UInt64
    /// SHA-256 of the whole body, which the receipt binds. When the body is carried whole the node
    /// checks it; a longer body's digest is the proxy's statement (it holds the body in flight).
    public let bodySHA256: [UInt8]
    public let clientAddress: String
    public let token: String
    /// SHA-256 of the DER client certificate the agent presented (RFC 8705 `x5t#S256`), or empty.
    public let clientCertificateSHA256: [UInt8]
    public let signers: [SignerSlot]

    /// A decision request.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` naming the first field that breaks the table's rules.
    public init(
        requestID: String, time: Int64, method: String, target: String, headers: [DecisionHeader], body: [UInt8],
        bodyLength: UInt64, bodySHA256: [UInt8]? = nil, clientAddress: String, token: String,
        clientCertificateSHA256: [UInt8] = [], signers: [SignerSlot]
    ) throws(WireError) {
        self.clientCertificateSHA256 = clientCertificateSHA256
        self.requestID = requestID
        self.time = time
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.bodyLength = bodyLength
        self.bodySHA256 = bodySHA256 ?? sha256Digest(body)
        self.clientAddress = clientAddress
        self.token = token
        self.signers = signers
        if let (field, problem) = problem() {
            throw WireError(.invalidValue, field: "\(Self.name).\(field)", offset: 0, problem)
        }
    }

    /// The slot of signer `identifier`, if it is in the set.
    public func slot(of identifier: UInt16) -> SignerSlot? { signers.first { $0.identifier == identifier } }

    private func problem() -> (String, String)? {
        if let problem = SigningLimits.requestIDProblem(requestID) { return ("requestID", problem) }
        if method.isEmpty { return ("method", "an empty method") }
        if let problem = DecisionLimits.lengthProblem(method, "a method", DecisionLimits.maximumMethodLength) {
            return ("method", problem)
        }
        if target.isEmpty { return ("target", "an empty target; it is the path and query the agent asked for") }
        if let problem = DecisionLimits.lengthProblem(target, "a target", DecisionLimits.maximumTargetLength) {
            return ("target", problem)
        }
        if headers.count > DecisionLimits.maximumHeaders {
            return ("headers", "\(headers.count) header fields; at most \(DecisionLimits.maximumHeaders)")
        }
        if body.count > DecisionLimits.maximumBodyLength {
            return ("body", "\(body.count) body bytes; at most \(DecisionLimits.maximumBodyLength)")
        }
        if bodyLength < UInt64(body.count) {
            return ("bodyLength", "a body length of \(bodyLength) below the \(body.count) bytes carried")
        }
        if bodySHA256.count != 32 { return ("bodySHA256", "a body digest of \(bodySHA256.count) bytes; it is 32") }
        if bodyLength == UInt64(body.count), bodySHA256 != sha256Digest(body) {
            return ("bodySHA256", "the body is carried whole but its SHA-256 is not the stated digest")
        }
        if let problem = DecisionLimits.lengthProblem(
            clientAddress, "a client address", DecisionLimits.maximumClientAddressLength)
        {
            return ("clientAddress", problem)
        }
        if let problem = DecisionLimits.lengthProblem(token, "a token", DecisionLimits.maximumTokenLength) {
            return ("token", problem)
        }
        if !clientCertificateSHA256.isEmpty && clientCertificateSHA256.count != 32 {
            return (
                "clientCertificateSHA256",
                "a certificate thumbprint of \(clientCertificateSHA256.count) bytes; it is 32 (SHA-256) or absent"
            )
        }
        if !signers.isEmpty, let problem = SigningLimits.signersProblem(signers.map(\.identifier)) {
            return ("signers", problem)
        }
        return nil
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(string: requestID)
        writer.write(time)
        writer.write(string: method)
        writer.write(string: target)
        writer.write(array: headers) { $0.write($1) }
        writer.write(bytes: body)
        writer.write(bodyLength)
        writer.write(bytes: bodySHA256)
        writer.write(string: clientAddress)
        writer.write(string: token)
        writer.write(bytes: clientCertificateSHA256)
        writer.write(array: signers) { $0.write($1) }
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        requestID = try SigningLimits.readRequestID(&reader)
        time = try reader.readInt64("time")
        method = try reader.readString("method", maximumLength: DecisionLimits.maximumMethodLength)
        target = try reader.readString("target", maximumLength: DecisionLimits.maximumTargetLength)
        headers = try reader.readArray(
            "headers", minimumElementLength: 8, maximumCount: DecisionLimits.maximumHeaders
        ) { reader throws(WireError) in try reader.read(DecisionHeader.self, "") }
        body = try reader.readBytes("body", maximumLength: DecisionLimits.maximumBodyLength)
        bodyLength = try reader.readUInt64("bodyLength")
        bodySHA256 = try reader.readBytes("bodySHA256", maximumLength: 32)
        clientAddress = try reader.readString(
            "clientAddress", maximumLength: DecisionLimits.maximumClientAddressLength)
        token = try reader.readString("token", maximumLength: DecisionLimits.maximumTokenLength)
        clientCertificateSHA256 = try reader.readBytes("clientCertificateSHA256", maximumLength: 32)
        signers = try reader.readArray(
            "signers", minimumElementLength: SignerSlot.minimumLength, maximumCount: SigningLimits.maximumSigners
        ) { reader throws(WireError) in try reader.read(SignerSlot.self, "") }
        if let (field, problem) = problem() { throw reader.invalidValue(field, at: start, problem) }
    }
}

/// A node's answer to ``DecideRequest``.
///
/// ```
/// nodeID           u16     1…
/// bootEpoch        u64     the node's epoch
/// requestID        string  the request's, echoed
/// verdict          bytes   1…256 KiB: the node's verdict, its canonical encoding (QuorumPolicy)
/// signature        bytes   64: Ed25519 by the node's identity key over ``signedBytes``
/// share            bytes   0 or 32: the FROST share over the receipt, when the node is a signer
/// decryptionShare  bytes   0…97: the decryption share of the mount's sealed credential, on an allow
/// ```
public struct DecideResponse: WireMessage {
    /// Message type 69.
    public static let type: UInt16 = 69

    /// The domain string that starts the bytes a node signs, so a verdict signature can never be
    /// taken for a signature over anything else the identity key signs.
    public static let signatureContext = Array("quorum-latch verdict v1\n".utf8)

    public let nodeID: UInt16
    public let bootEpoch: UInt64
    public let requestID: String
    public let verdict: [UInt8]
    public let signature: [UInt8]
    public let share: [UInt8]
    public let decryptionShare: [UInt8]

    /// A decide response.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` naming the first field that breaks the table's rules.
    public init(
        nodeID: UInt16, bootEpoch: UInt64, requestID: String, verdict: [UInt8], signature: [UInt8],
        share: [UInt8] = [], decryptionShare: [UInt8] = []
    ) throws(WireError) {
        self.nodeID = nodeID
        self.bootEpoch = bootEpoch
        self.requestID = requestID
        self.verdict = verdict
        self.signature = signature
        self.share = share
        self.decryptionShare = decryptionShare
        if let (field, problem) = problem() {
            throw WireError(.invalidValue, field: "\(Self.name).\(field)", offset: 0, problem)
        }
    }

    /// What the node's identity key signs: the context, the node id, the request id and the verdict.
    public static func signedBytes(nodeID: UInt16, requestID: String, verdict: [UInt8]) -> [UInt8] {
        var writer = WireWriter()
        writer.write(nodeID)
        writer.write(string: requestID)
        writer.write(bytes: verdict)
        return signatureContext + writer.bytes
    }

    /// ``signedBytes(nodeID:requestID:verdict:)`` of this response.
    public var signedBytes: [UInt8] { Self.signedBytes(nodeID: nodeID, requestID: requestID, verdict: verdict) }

    private func problem() -> (String, String)? {
        if let problem = NodeFacts.nodeIDProblem(nodeID) { return ("nodeID", problem) }
        if let problem = SigningLimits.requestIDProblem(requestID) { return ("requestID", problem) }
        if verdict.isEmpty { return ("verdict", "an empty verdict") }
        if verdict.count > DecisionLimits.maximumVerdictLength {
            return ("verdict", "a verdict of \(verdict.count) bytes; at most \(DecisionLimits.maximumVerdictLength)")
        }
        if signature.count != 64 { return ("signature", "a signature of \(signature.count) bytes; it is 64") }
        if !share.isEmpty, let problem = SigningLimits.shareProblem(share) { return ("share", problem) }
        if decryptionShare.count > DecisionLimits.maximumDecryptionShareLength {
            return ("decryptionShare", "a decryption share of \(decryptionShare.count) bytes; at most 97")
        }
        return nil
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(nodeID)
        writer.write(bootEpoch)
        writer.write(string: requestID)
        writer.write(bytes: verdict)
        writer.write(bytes: signature)
        writer.write(bytes: share)
        writer.write(bytes: decryptionShare)
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        nodeID = try reader.readUInt16("nodeID")
        bootEpoch = try reader.readUInt64("bootEpoch")
        requestID = try SigningLimits.readRequestID(&reader)
        verdict = try reader.readBytes("verdict", maximumLength: DecisionLimits.maximumVerdictLength)
        signature = try reader.readBytes("signature", maximumLength: 64)
        share = try reader.readBytes("share", maximumLength: SigningLimits.shareLength)
        decryptionShare = try reader.readBytes(
            "decryptionShare", maximumLength: DecisionLimits.maximumDecryptionShareLength)
        if let (field, problem) = problem() { throw reader.invalidValue(field, at: start, problem) }
    }
}

/// After the upstream answered: the call's actual spend, so the node settles the reservation it
/// made. Only proxies may send it. Without usage (a stream cut off, an upstream error) the node
/// settles from the reservation itself.
///
/// ```
/// requestID     string  the call's request id
/// hasUsage      bool
/// inputTokens   i64     0… (present when hasUsage)
/// outputTokens  i64     0… (present when hasUsage)
/// ```
public struct SettleRequest: WireMessage {
    /// Message type 70.
    public static let type: UInt16 = 70

    public let requestID: String
    /// Input and output tokens, when the upstream reported them.
    public let usage: (inputTokens: Int64, outputTokens: Int64)?

    /// A settle request.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` for a bad request id or negative token counts.
    public init(requestID: String, usage: (inputTokens: Int64, outputTokens: Int64)?) throws(WireError) {
        try SigningLimits.check(SigningLimits.requestIDProblem(requestID), Self.name, "requestID")
        if let usage, usage.inputTokens < 0 || usage.outputTokens < 0 {
            throw WireError(.invalidValue, field: "\(Self.name).usage", offset: 0, "negative token counts")
        }
        self.requestID = requestID
        self.usage = usage
    }

    public static func == (a: SettleRequest, b: SettleRequest) -> Bool {
        a.requestID == b.requestID && a.usage?.inputTokens == b.usage?.inputTokens
            && a.usage?.outputTokens == b.usage?.outputTokens && (a.usage == nil) == (b.usage == nil)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(requestID)
        hasher.combine(usage?.inputTokens)
        hasher.combine(usage?.outputTokens)
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(string: requestID)
        writer.write(usage != nil)
        if let usage {
            writer.write(usage.inputTokens)
            writer.write(usage.outputTokens)
        }
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        requestID = try SigningLimits.readRequestID(&reader)
        if try reader.readBool("hasUsage") {
            let start = reader.offset
            let input = try reader.readInt64("inputTokens")
            let output = try reader.readInt64("outputTokens")
            if input < 0 || output < 0 { throw reader.invalidValue("inputTokens", at: start, "negative token counts") }
            usage = (input, output)
        } else {
            usage = nil
        }
    }
}

/// A node's answer to ``SettleRequest``.
///
/// ```
/// nodeID     u16     1…
/// requestID  string  echoed
/// settled    bool    true if a reservation was settled now; false if there was none to settle
///                    (the call was denied here, or it was settled already)
/// ```
public struct SettleResponse: WireMessage {
    /// Message type 71.
    public static let type: UInt16 = 71

    public let nodeID: UInt16
    public let requestID: String
    public let settled: Bool

    /// A settle response.
    public init(nodeID: UInt16, requestID: String, settled: Bool) throws(WireError) {
        try NodeFacts.check(NodeFacts.nodeIDProblem(nodeID), Self.name, "nodeID")
        try SigningLimits.check(SigningLimits.requestIDProblem(requestID), Self.name, "requestID")
        self.nodeID = nodeID
        self.requestID = requestID
        self.settled = settled
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(nodeID)
        writer.write(string: requestID)
        writer.write(settled)
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        nodeID = try reader.readUInt16("nodeID")
        if let problem = NodeFacts.nodeIDProblem(nodeID) { throw reader.invalidValue("nodeID", at: start, problem) }
        requestID = try SigningLimits.readRequestID(&reader)
        settled = try reader.readBool("settled")
    }
}
