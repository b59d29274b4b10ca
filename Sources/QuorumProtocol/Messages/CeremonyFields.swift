import QuorumCrypto

/// What a ceremony makes: a new group (a DKG) or new shares of the group the nodes hold (a
/// proactive refresh). Later kinds (a share repair, a dealer import) get new numbers.
public enum CeremonyKind: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// A distributed key generation: new signing and sealing keys.
    case dkg = 1
    /// A proactive refresh: every share changes, both group keys and the threshold stay.
    case refresh = 2

    /// `dkg` or `refresh`, as the CLI and the logs say it.
    public var description: String {
        switch self {
        case .dkg: "dkg"
        case .refresh: "refresh"
        }
    }
}

/// The phase of a ceremony a message belongs to; a refusal names it.
public enum CeremonyPhase: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// ``CeremonyBegin`` → ``CeremonyRound1``.
    case begin = 1
    /// ``CeremonyRound2Request`` → ``CeremonyRound2``.
    case round2 = 2
    /// ``CeremonyRound3Request`` → ``CeremonyRound3``.
    case round3 = 3
    /// ``CeremonyCommit`` → ``CeremonyAck``.
    case commit = 4
    /// ``CeremonyAbort`` → ``CeremonyAck``.
    case abort = 5

    /// `begin`, `round 2`, …
    public var description: String {
        switch self {
        case .begin: "begin"
        case .round2: "round 2"
        case .round3: "round 3"
        case .commit: "commit"
        case .abort: "abort"
        }
    }
}

/// Which of the two keys a ceremony makes a sealed share belongs to.
public enum CeremonyKeyPurpose: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// The group signing key (`group.json`).
    case signing = 1
    /// The group sealing key (`sealing-group.json`).
    case sealing = 2

    /// The matching ``KeyPurpose``.
    public var keyPurpose: KeyPurpose {
        switch self {
        case .signing: .signing
        case .sealing: .sealing
        }
    }

    /// `signing` or `sealing`.
    public var description: String { keyPurpose.rawValue }
}

/// The field rules every ceremony message shares, in one place so initializers (what a node or
/// the operator builds) and decoders (what they accept) apply the same ones.
enum CeremonyFields {
    /// A ceremony id is 16 random bytes.
    static let ceremonyIDLength = 16
    /// SHA-256 digests (echoes, the transcript).
    static let digestLength = 32
    /// Ed25519 identity keys.
    static let identityKeyLength = 32
    /// Ed25519 signatures.
    static let signatureLength = 64
    /// The most participants a ceremony has (``ThresholdParameters/maximumParticipants``).
    static let maximumParticipants = ThresholdParameters.maximumParticipants
    /// A round-1 package: a 2-byte count, at most 255 commitments of 33 bytes, a proof of 33 + 32.
    static let maximumPackageLength = 2 + 255 * 33 + 65
    /// A sealed share: ``IdentityBox/overhead`` plus a scalar of 32 bytes, with room to spare.
    static let maximumBoxLength = 256
    /// A group file as `KeyFiles.encodeGroup` writes it for 255 participants fits easily.
    static let maximumGroupFileLength = 1 << 20
    /// A refusal or abort reason: one line for a log.
    static let maximumReasonLength = 2048

    static func exactLength(_ bytes: [UInt8], _ length: Int, _ what: String) -> String? {
        bytes.count == length ? nil : "\(what) of \(bytes.count) bytes; it is \(length)"
    }

    static func nodeIDProblem(_ id: UInt16) -> String? { id == 0 ? "node id 0; node ids start at 1" : nil }

    /// Node ids listed once each, ascending, none 0: one encoding per list.
    static func ascendingProblem(_ ids: [UInt16], what: String) -> String? {
        var previous: UInt16 = 0
        for id in ids {
            if id == 0 { return "node id 0 among the \(what); node ids start at 1" }
            if id <= previous { return "node \(id) after node \(previous); \(what) are listed once each, ascending" }
            previous = id
        }
        return nil
    }

    static func check(_ problem: String?, _ message: String, _ field: String) throws(WireError) {
        if let problem { throw WireError(.invalidValue, field: "\(message).\(field)", offset: 0, problem) }
    }

    static func readFixed(_ reader: inout WireReader, _ field: String, _ length: Int) throws(WireError) -> [UInt8] {
        let start = reader.offset
        let bytes = try reader.readBytes(field, maximumLength: length)
        guard bytes.count == length else {
            throw reader.invalidValue(field, at: start, "\(bytes.count) bytes; it is \(length)")
        }
        return bytes
    }

    static func readNonEmpty(_ reader: inout WireReader, _ field: String, maximum: Int) throws(WireError) -> [UInt8] {
        let start = reader.offset
        let bytes = try reader.readBytes(field, maximumLength: maximum)
        guard !bytes.isEmpty else { throw reader.invalidValue(field, at: start, "empty") }
        return bytes
    }

    static func readNodeID(_ reader: inout WireReader, _ field: String) throws(WireError) -> UInt16 {
        let start = reader.offset
        let id = try reader.readUInt16(field)
        if let problem = nodeIDProblem(id) { throw reader.invalidValue(field, at: start, problem) }
        return id
    }

    static func readEnum<E: RawRepresentable<UInt8>>(
        _ reader: inout WireReader, _ field: String, _: E.Type
    ) throws(WireError) -> E {
        let start = reader.offset
        let raw = try reader.readUInt8(field)
        guard let value = E(rawValue: raw) else { throw reader.invalidValue(field, at: start, "unknown value \(raw)") }
        return value
    }

    /// `reason`, cut at a character boundary to at most ``maximumReasonLength`` bytes.
    static func cut(_ reason: String) -> String {
        var bytes = Array(reason.utf8.prefix(maximumReasonLength))
        while String(validating: bytes, as: UTF8.self) == nil { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func readReason(_ reader: inout WireReader, _ field: String) throws(WireError) -> String {
        try reader.readString(field, maximumLength: maximumReasonLength)
    }

    /// Writes the fields a signature covers: a domain string naming what is signed, then the
    /// fields, in the codec (so every field is length-prefixed and nothing can slide between two).
    static func signedBytes(_ domain: String, _ body: (inout WireWriter) -> Void) -> [UInt8] {
        var writer = WireWriter()
        writer.write(string: domain)
        body(&writer)
        return writer.bytes
    }
}
