import CSodium

/// End-to-end encryption between node identity keys (libsodium `crypto_box`: X25519,
/// XSalsa20-Poly1305), for ceremony shares that an operator's machine relays but must not read.
///
/// Both ends hold Ed25519 identity keys; each is converted to its X25519 form
/// (`crypto_sign_ed25519_*_to_curve25519`). A box is authenticated: only the recipient can open
/// it, and opening it proves it was made by the holder of the sender's key. The `context` (a
/// ceremony id, say, and what the box carries) is bound into the nonce derivation's input and
/// checked on opening, so a box cannot be replayed into another ceremony or another slot.
///
/// Layout: 24-byte random nonce ‖ ciphertext with its 16-byte tag. The plaintext is
/// `SHA-256(context)` ‖ the secret.
public enum IdentityBox {
    /// Bytes a box adds to its secret: nonce, tag and the context digest.
    public static let overhead = 24 + 16 + 32

    /// Encrypts `secret` from `sender` to the holder of `recipientKey` (an Ed25519 public key).
    ///
    /// - Throws: ``CryptoError`` when `recipientKey` is not a valid Ed25519 public key.
    public static func seal(
        _ secret: SecretBytes, context: [UInt8], from sender: Ed25519KeyPair, to recipientKey: [UInt8]
    ) throws(CryptoError) -> [UInt8] {
        _ = Sodium.ready
        let recipient = try curvePublicKey(recipientKey)
        var plaintext = Sodium.sha256([context]) + secret.copyBytes()
        defer { plaintext.withUnsafeMutableBytes { Sodium.zero($0) } }
        let nonce = Sodium.randomBytes(24)
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count + 16)
        let status = sender.withCurveSecretKey { secretKey in
            crypto_box_easy(&ciphertext, plaintext, UInt64(plaintext.count), nonce, recipient, secretKey)
        }
        guard status == 0 else { throw CryptoError(.malformed, "crypto_box_easy refused the keys") }
        return nonce + ciphertext
    }

    /// Opens a box made by the holder of `senderKey` for `recipient`, under `context`.
    ///
    /// - Throws: ``CryptoError`` when the box is too short, was not made by that sender for this
    ///   recipient, was altered, or was made for another context.
    public static func open(
        _ box: [UInt8], context: [UInt8], from senderKey: [UInt8], to recipient: Ed25519KeyPair
    ) throws(CryptoError) -> SecretBytes {
        _ = Sodium.ready
        guard box.count >= overhead else {
            throw CryptoError(.malformed, "a box of \(box.count) bytes is shorter than its \(overhead)-byte overhead")
        }
        let sender = try curvePublicKey(senderKey)
        let nonce = Array(box[0..<24])
        let ciphertext = Array(box[24...])
        var plaintext = [UInt8](repeating: 0, count: ciphertext.count - 16)
        defer { plaintext.withUnsafeMutableBytes { Sodium.zero($0) } }
        let status = recipient.withCurveSecretKey { secretKey in
            crypto_box_open_easy(&plaintext, ciphertext, UInt64(ciphertext.count), nonce, sender, secretKey)
        }
        guard status == 0 else {
            throw CryptoError(
                .decryptionFailed, "the box does not open: not from this sender, not for this node, or altered")
        }
        let expected = Sodium.sha256([context])
        let matches = plaintext.prefix(32).withUnsafeBytes { a in
            expected.withUnsafeBytes { b in Sodium.constantTimeEqual(a, b) }
        }
        guard matches else { throw CryptoError(.decryptionFailed, "the box was made for another context") }
        return SecretBytes(plaintext[32...])
    }

    private static func curvePublicKey(_ ed25519: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard ed25519.count == 32 else {
            throw CryptoError(.malformed, "an Ed25519 public key is 32 bytes, got \(ed25519.count)")
        }
        var curve = [UInt8](repeating: 0, count: 32)
        guard crypto_sign_ed25519_pk_to_curve25519(&curve, ed25519) == 0 else {
            throw CryptoError(.malformed, "not a valid Ed25519 public key (cannot convert it to X25519)")
        }
        return curve
    }
}

extension Ed25519KeyPair {
    /// Calls `body` with the X25519 form of the secret key, zeroed afterwards.
    func withCurveSecretKey<R>(_ body: (UnsafePointer<UInt8>) -> R) -> R {
        var curve = [UInt8](repeating: 0, count: 32)
        defer { curve.withUnsafeMutableBytes { Sodium.zero($0) } }
        withSecretKey { secretKey in _ = crypto_sign_ed25519_sk_to_curve25519(&curve, secretKey) }
        return curve.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
