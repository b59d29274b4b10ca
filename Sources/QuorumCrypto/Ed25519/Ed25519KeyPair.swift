import CSodium

/// A plain RFC 8032 Ed25519 key pair: a node's identity key, a cosigner key, or any single-holder
/// signing key that is not split across a quorum.
///
/// A FROST(Ed25519, SHA-512) group produces signatures of the same form, so `verify` checks both.
/// The secret key lives in zeroizing storage and the pair prints as `<redacted>`.
public final class Ed25519KeyPair: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// Length of a public key, a seed, and half a signature.
    public static let publicKeyLength = 32
    /// Length of the seed from which RFC 8032 derives the key pair.
    public static let seedLength = 32
    /// Length of a detached signature (R ‖ S).
    public static let signatureLength = 64

    /// The 32-byte RFC 8032 public key.
    public let publicKey: [UInt8]
    /// libsodium's 64-byte secret key (seed ‖ public key).
    private let secretKey: SecretBytes

    /// A fresh key pair from the system's secure random source.
    public init() {
        _ = Sodium.ready
        var pk = [UInt8](repeating: 0, count: Self.publicKeyLength)
        var sk = [UInt8](repeating: 0, count: Int(crypto_sign_secretkeybytes()))
        guard crypto_sign_keypair(&pk, &sk) == 0 else { fatalError("crypto_sign_keypair failed") }
        publicKey = pk
        secretKey = SecretBytes(consuming: &sk)
    }

    /// The key pair RFC 8032 derives from a 32-byte seed (the "private key" of RFC 8032 §5.1.5).
    public convenience init(seed: [UInt8]) throws(CryptoError) {
        try self.init(seed: SecretBytes(seed))
    }

    /// The key pair RFC 8032 derives from a 32-byte seed held in zeroizing storage.
    public init(seed: SecretBytes) throws(CryptoError) {
        _ = Sodium.ready
        guard seed.count == Self.seedLength else {
            throw CryptoError(.malformed, "an Ed25519 seed is \(Self.seedLength) bytes, got \(seed.count)")
        }
        var pk = [UInt8](repeating: 0, count: Self.publicKeyLength)
        var sk = [UInt8](repeating: 0, count: Int(crypto_sign_secretkeybytes()))
        let status = seed.withUnsafeBytes { seedBytes in
            crypto_sign_seed_keypair(&pk, &sk, seedBytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        guard status == 0 else { fatalError("crypto_sign_seed_keypair failed") }
        publicKey = pk
        secretKey = SecretBytes(consuming: &sk)
    }

    /// The 32-byte seed, for writing a key file. The caller owns the returned storage.
    public var seed: SecretBytes {
        secretKey.withUnsafeBytes { SecretBytes($0.prefix(Self.seedLength)) }
    }

    /// A detached RFC 8032 signature of `message` (deterministic: same key and message, same bytes).
    public func sign(_ message: [UInt8]) -> [UInt8] {
        _ = Sodium.ready
        var signature = [UInt8](repeating: 0, count: Self.signatureLength)
        let status = secretKey.withUnsafeBytes { sk in
            crypto_sign_detached(
                &signature, nil, message, UInt64(message.count), sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        guard status == 0 else { fatalError("crypto_sign_detached failed") }
        return signature
    }

    /// Whether `signature` is a valid RFC 8032 signature of `message` under `publicKey`.
    ///
    /// Wrong lengths, non-canonical encodings and small-order keys are rejected (libsodium's
    /// `crypto_sign_verify_detached`), never trapped on.
    public static func verify(signature: [UInt8], message: [UInt8], publicKey: [UInt8]) -> Bool {
        _ = Sodium.ready
        guard signature.count == signatureLength, publicKey.count == publicKeyLength else { return false }
        return crypto_sign_verify_detached(signature, message, UInt64(message.count), publicKey) == 0
    }

    /// Calls `body` with libsodium's 64-byte secret key.
    func withSecretKey<R>(_ body: (UnsafePointer<UInt8>) -> R) -> R {
        secretKey.withUnsafeBytes { body($0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
    }

    /// Always `<redacted>`: the pair holds a secret.
    public var description: String { "<redacted>" }
    /// Always `<redacted>`: the pair holds a secret.
    public var debugDescription: String { "<redacted>" }
}
