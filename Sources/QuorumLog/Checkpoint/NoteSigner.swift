import QuorumCrypto

/// Something that can add a signature line to a note: a plain Ed25519 key, the quorum's FROST
/// group, or a node's cosigning identity key.
///
/// Signers compute; they never fetch time or talk to peers. A cosigner is handed its timestamp and
/// the FROST signer is handed a closure that runs the ceremony elsewhere.
public protocol NoteSigner: Sendable {
    /// The key name written in the signature line.
    var name: String { get }
    /// The key ID written before the signature.
    var keyID: UInt32 { get }
    /// The signature line for `text` (a note text, ending in a newline).
    func signature(for text: [UInt8]) throws -> NoteSignature
}

/// A single-holder Ed25519 key signing the note text (signature type 0x01).
public struct Ed25519NoteSigner: NoteSigner {
    /// The key name written in each signature line.
    public let name: String
    /// The key ID written before each signature.
    public let keyID: UInt32
    private let keyPair: Ed25519KeyPair

    /// Signs as `name` with `keyPair`; refuses an invalid key name.
    public init(name: String, keyPair: Ed25519KeyPair) throws(NoteError) {
        try NoteKey.checkName(name)
        self.name = name
        self.keyPair = keyPair
        self.keyID = NoteKey.keyID(name: name, type: .ed25519, publicKey: keyPair.publicKey)
    }

    /// The verifier that checks this signer's lines.
    public var verifier: NoteVerifier {
        // The name was checked and the key is 32 bytes, so this cannot fail.
        try! NoteVerifier(name: name, type: .ed25519, publicKey: keyPair.publicKey)
    }

    /// An Ed25519 signature of the note text.
    public func signature(for text: [UInt8]) throws -> NoteSignature {
        try NoteSignature(name: name, keyID: keyID, signature: keyPair.sign(text))
    }
}

/// The quorum's group key as an ordinary Ed25519 note key (type 0x01).
///
/// The signature comes from `sign`, supplied by the caller, which runs the FROST ceremony
/// elsewhere; this type only frames the result and checks it under the group key before it is
/// written, so a faulty ceremony cannot produce a line that verifiers would refuse.
public struct FROSTGroupNoteSigner: NoteSigner {
    /// The key name written in each signature line.
    public let name: String
    /// The key ID written before each signature.
    public let keyID: UInt32
    /// The group's 32-byte Ed25519 verifying key.
    public let groupPublicKey: [UInt8]
    private let sign: @Sendable ([UInt8]) throws -> [UInt8]

    /// - Parameters:
    ///   - groupPublicKey: the group verifying key, e.g. `try group.verifyingKey.serialized()`.
    ///   - sign: runs a FROST(Ed25519, SHA-512) signing ceremony over the message and returns the
    ///     aggregated 64-byte signature.
    public init(
        name: String, groupPublicKey: [UInt8], sign: @escaping @Sendable ([UInt8]) throws -> [UInt8]
    ) throws(NoteError) {
        try NoteKey.checkName(name)
        guard groupPublicKey.count == Ed25519KeyPair.publicKeyLength else {
            throw NoteError(
                .malformedVerifierKey, "a group Ed25519 key is 32 bytes, got \(groupPublicKey.count)")
        }
        self.name = name
        self.groupPublicKey = groupPublicKey
        self.sign = sign
        self.keyID = NoteKey.keyID(name: name, type: .ed25519, publicKey: groupPublicKey)
    }

    /// A signer for an Ed25519 FROST group's public key package.
    public init(
        name: String, group: PublicKeyPackage<Ed25519Suite>,
        sign: @escaping @Sendable ([UInt8]) throws -> [UInt8]
    ) throws {
        try self.init(name: name, groupPublicKey: try group.verifyingKey.serialized(), sign: sign)
    }

    /// The verifier that checks the group's lines.
    public var verifier: NoteVerifier {
        try! NoteVerifier(name: name, type: .ed25519, publicKey: groupPublicKey)
    }

    /// Runs the ceremony over the note text and checks its result under the group key.
    public func signature(for text: [UInt8]) throws -> NoteSignature {
        let signature = try sign(text)
        guard Ed25519KeyPair.verify(signature: signature, message: text, publicKey: groupPublicKey) else {
            throw NoteError(.signingFailed, "the group signature from the ceremony does not verify under \(name)")
        }
        return try NoteSignature(name: name, keyID: keyID, signature: signature)
    }
}

/// A node's identity key cosigning a checkpoint (c2sp.org/tlog-cosignature, type 0x04).
///
/// The line's signature is `timestamp (u64 big-endian) ‖ Ed25519(cosignature/v1 message)`.
public struct CosignatureNoteSigner: NoteSigner {
    /// The key name written in each signature line.
    public let name: String
    /// The key ID written before each signature.
    public let keyID: UInt32
    /// POSIX seconds written into the cosignature; supplied by the caller (no clocks in here).
    public let timestamp: UInt64
    private let keyPair: Ed25519KeyPair

    /// Cosigns as `name` with `keyPair` at `timestamp`; refuses an invalid name or a timestamp
    /// above 2^63 - 1.
    public init(name: String, keyPair: Ed25519KeyPair, timestamp: UInt64) throws(NoteError) {
        try NoteKey.checkName(name)
        guard timestamp <= UInt64(Int64.max) else {
            throw NoteError(.signingFailed, "a cosignature timestamp must not exceed 2^63 - 1")
        }
        self.name = name
        self.keyPair = keyPair
        self.timestamp = timestamp
        self.keyID = NoteKey.keyID(name: name, type: .cosignatureV1, publicKey: keyPair.publicKey)
    }

    /// The verifier that checks this cosigner's lines.
    public var verifier: NoteVerifier {
        try! NoteVerifier(name: name, type: .cosignatureV1, publicKey: keyPair.publicKey)
    }

    /// Cosigns `text`, which must be a checkpoint body.
    public func signature(for text: [UInt8]) throws -> NoteSignature {
        _ = try Checkpoint.parse(String(decoding: text, as: UTF8.self))
        var stamp = [UInt8](repeating: 0, count: 8)
        for index in 0..<8 { stamp[index] = UInt8(timestamp >> (56 - 8 * UInt64(index)) & 0xff) }
        let signature = keyPair.sign(Cosignature.message(timestamp: timestamp, text: text))
        return try NoteSignature(name: name, keyID: keyID, signature: stamp + signature)
    }
}
