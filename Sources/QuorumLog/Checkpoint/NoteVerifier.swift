import QuorumCrypto

/// A trusted public key that can check signature lines of a signed note.
///
/// Its verifier key string is the C2SP form `<name>+<hex key ID>+<base64(type ‖ public key)>`,
/// which standard transparency-log tooling reads too.
public struct NoteVerifier: Sendable, Hashable {
    /// The key name, as it appears in signature lines.
    public let name: String
    /// What kind of signature this key makes.
    public let type: NoteSignatureType
    /// The 32-byte Ed25519 public key.
    public let publicKey: [UInt8]
    /// `SHA-256(name ‖ 0x0A ‖ type ‖ publicKey)[:4]`.
    public let keyID: UInt32

    /// A verifier for `publicKey` under `name`.
    public init(name: String, type: NoteSignatureType, publicKey: [UInt8]) throws(NoteError) {
        try NoteKey.checkName(name)
        guard publicKey.count == Ed25519KeyPair.publicKeyLength else {
            throw NoteError(
                .malformedVerifierKey, "an Ed25519 public key is 32 bytes, got \(publicKey.count) for \(name)")
        }
        self.name = name
        self.type = type
        self.publicKey = publicKey
        self.keyID = NoteKey.keyID(name: name, type: type, publicKey: publicKey)
    }

    /// Parses a verifier key string, `<name>+<8 hex digits>+<base64(type ‖ public key)>`.
    public init(verifierKey: String) throws(NoteError) {
        let parts = verifierKey.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            throw NoteError(
                .malformedVerifierKey, "verifier key \"\(verifierKey)\" is not <name>+<key id>+<base64 key>")
        }
        let name = String(parts[0])
        guard NoteKey.isValidName(name) else {
            throw NoteError(.malformedVerifierKey, "verifier key name \"\(name)\" is empty or contains a space")
        }
        let idText = parts[1]
        guard idText.count == 8, let idBytes = Hex.decode(idText), idText == idText.lowercased() else {
            throw NoteError(.malformedVerifierKey, "key ID \"\(idText)\" is not eight lower-case hex digits")
        }
        guard let key = NoteBase64.decode(parts[2]), !key.isEmpty else {
            throw NoteError(.malformedVerifierKey, "key \"\(parts[2])\" is not canonical padded base64")
        }
        guard let type = NoteSignatureType(rawValue: key[0]) else {
            throw NoteError(
                .malformedVerifierKey,
                "signature type 0x\(Hex.encode([key[0]])) is not supported (0x01 Ed25519, 0x04 cosignature/v1)")
        }
        try self.init(name: name, type: type, publicKey: Array(key.dropFirst()))
        let claimed = idBytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard claimed == keyID else {
            throw NoteError(
                .malformedVerifierKey,
                "key ID \(idText) does not match the key; SHA-256(name, type, key) gives \(NoteKey.hex(keyID))")
        }
    }

    /// The C2SP verifier key string.
    public var verifierKey: String {
        "\(name)+\(NoteKey.hex(keyID))+\(NoteBase64.encode([type.rawValue] + publicKey))"
    }

    /// Checks one signature (the bytes after the key ID) over the note text.
    ///
    /// Returns the cosignature timestamp for `cosignatureV1`, `nil` for plain Ed25519, and throws
    /// `invalidSignature` when the signature does not verify.
    func check(text: [UInt8], signature: [UInt8]) throws(NoteError) -> UInt64? {
        switch type {
        case .ed25519:
            guard Ed25519KeyPair.verify(signature: signature, message: text, publicKey: publicKey) else {
                throw NoteError(.invalidSignature, "the signature by \(name)+\(NoteKey.hex(keyID)) does not verify")
            }
            return nil
        case .cosignatureV1:
            guard signature.count == 8 + Ed25519KeyPair.signatureLength else {
                throw NoteError(
                    .invalidSignature,
                    "the cosignature by \(name)+\(NoteKey.hex(keyID)) is \(signature.count) bytes; "
                        + "timestamp and Ed25519 signature make 72")
            }
            let timestamp = signature.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard timestamp <= UInt64(Int64.max) else {
                throw NoteError(.invalidSignature, "the cosignature by \(name) has a timestamp above 2^63 - 1")
            }
            let message = Cosignature.message(timestamp: timestamp, text: text)
            guard
                Ed25519KeyPair.verify(signature: Array(signature.dropFirst(8)), message: message, publicKey: publicKey)
            else {
                throw NoteError(
                    .invalidSignature, "the cosignature by \(name)+\(NoteKey.hex(keyID)) does not verify")
            }
            return timestamp
        }
    }
}

/// The `cosignature/v1` signed message of c2sp.org/tlog-cosignature.
enum Cosignature {
    /// `cosignature/v1\ntime <timestamp>\n` followed by the checkpoint text.
    static func message(timestamp: UInt64, text: [UInt8]) -> [UInt8] {
        Array("cosignature/v1\ntime \(timestamp)\n".utf8) + text
    }
}
