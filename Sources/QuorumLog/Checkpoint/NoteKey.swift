import QuorumCrypto

/// The C2SP signed-note signature type byte that, with the key name and public key, determines a
/// key ID. Only the two Ed25519 types this design uses are supported.
public enum NoteSignatureType: UInt8, Sendable, CaseIterable {
    /// Ed25519 over the note text (c2sp.org/signed-note). The quorum's group signature line uses
    /// it: a FROST(Ed25519, SHA-512) signature is an ordinary RFC 8032 signature.
    case ed25519 = 0x01
    /// Timestamped Ed25519 cosignature (c2sp.org/tlog-cosignature, `cosignature/v1`): each node
    /// that took part adds one with its identity key.
    case cosignatureV1 = 0x04
}

/// Key names and key IDs as C2SP signed-note defines them.
public enum NoteKey {
    /// `SHA-256(name ‖ 0x0A ‖ type ‖ publicKey)[:4]`, big-endian.
    public static func keyID(name: String, type: NoteSignatureType, publicKey: [UInt8]) -> UInt32 {
        let digest = sha256Digest(Array(name.utf8), [0x0a, type.rawValue], publicKey)
        return digest.prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Whether `name` may appear as a key name: non-empty, no Unicode space, no `+`.
    public static func isValidName(_ name: some StringProtocol) -> Bool {
        !name.isEmpty && !name.unicodeScalars.contains { $0.properties.isWhitespace || $0 == "+" }
    }

    /// Throws `invalidKeyName` unless `name` is a valid key name.
    static func checkName(_ name: String) throws(NoteError) {
        guard isValidName(name) else {
            throw NoteError(.invalidKeyName, "key name \"\(name)\" must be non-empty and contain no spaces or '+'")
        }
    }

    /// Eight lower-case hex digits, as in verifier keys.
    public static func hex(_ keyID: UInt32) -> String { Hex.encode(bigEndian(keyID)) }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }
}

/// One signature line of a signed note: `— <name> base64(keyID ‖ signature)`.
public struct NoteSignature: Sendable, Hashable {
    /// The signing key's name.
    public let name: String
    /// The signing key's ID (first four bytes of the decoded signature, big-endian).
    public let keyID: UInt32
    /// The signature proper, after the key ID. For a cosignature: timestamp ‖ Ed25519 signature.
    public let signature: [UInt8]

    /// Builds a line from its parts; refuses invalid names and empty signatures.
    public init(name: String, keyID: UInt32, signature: [UInt8]) throws(NoteError) {
        try NoteKey.checkName(name)
        guard !signature.isEmpty else { throw NoteError(.malformedNote, "signature by \(name) is empty") }
        self.name = name
        self.keyID = keyID
        self.signature = signature
    }

    /// The line as it appears in the note, with its final newline.
    public var line: String {
        "\u{2014} \(name) \(NoteBase64.encode(NoteKey.bigEndian(keyID) + signature))\n"
    }
}
