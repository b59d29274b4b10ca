import CSodium

/// Bytes sealed to a group public key: only `threshold` holders of the group's sealing shares,
/// together, can open them.
///
/// Layout: `version(1) || suite(1) || U || nonce(24) || XChaCha20-Poly1305 ciphertext`, where
/// U = r·G for an ephemeral scalar r, and the AEAD key is H(U, r·Y, Y) for the group key Y.
public struct SealedBox: Sendable, Equatable {
    public static let version: UInt8 = 1
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }
    public var hex: String { Hex.encode(bytes) }
}

/// A holder's decryption share Dᵢ = skᵢ·U with a Chaum–Pedersen proof that log_G(PKᵢ) = log_U(Dᵢ),
/// i.e. that it used its real share.
public struct DecryptionShare<C: Ciphersuite>: Sendable, Equatable {
    public let identifier: Identifier
    public let share: C.Element
    /// (c, z) of the DLEQ proof.
    public let challenge: C.Scalar
    public let response: C.Scalar

    /// `Dᵢ || c || z`.
    public func encoded() throws(CryptoError) -> [UInt8] {
        try share.serialized() + challenge.serialized() + response.serialized()
    }

    public init(identifier: Identifier, share: C.Element, challenge: C.Scalar, response: C.Scalar) {
        self.identifier = identifier
        self.share = share
        self.challenge = challenge
        self.response = response
    }

    public init(identifier: Identifier, encoded bytes: [UInt8]) throws(CryptoError) {
        let n = C.elementLength, s = C.scalarLength
        guard bytes.count == n + 2 * s else {
            throw CryptoError(
                .malformed, "decryption share from participant \(identifier) must be \(n + 2 * s) bytes",
                culprits: [identifier])
        }
        do {
            self.init(
                identifier: identifier, share: try C.Element(validating: Array(bytes[0..<n])),
                challenge: try C.scalar(Array(bytes[n..<(n + s)]), "the proof challenge"),
                response: try C.scalar(Array(bytes[(n + s)...]), "the proof response"))
        } catch {
            throw CryptoError(
                error.code, "decryption share from participant \(identifier): \(error.reason)", culprits: [identifier])
        }
    }
}

/// Threshold ElGamal-style sealing of credentials to a FROST sealing group.
public enum ThresholdSealing<C: Ciphersuite> {
    static var nonceLength: Int { Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES) }
    static var tagLength: Int { Int(crypto_aead_xchacha20poly1305_ietf_ABYTES) }

    /// Encrypts `plaintext` so that `group.minSigners` holders are needed to open it.
    /// `associatedData` (e.g. the credential's name) is authenticated and must be given again to open.
    public static func seal(
        _ plaintext: SecretBytes, to group: PublicKeyPackage<C>, associatedData: [UInt8] = []
    ) throws(CryptoError) -> SealedBox {
        guard group.purpose == .sealing else {
            throw CryptoError(
                .wrongKeyPurpose, "credentials are sealed to a sealing key, not a \(group.purpose.rawValue) key")
        }
        let r = SecretScalar<C>.random()
        let u = C.Element.baseMultiply(r.value)
        let shared = r.value * group.verifyingKey
        let header = [SealedBox.version, C.id.tag] + (try u.serialized())
        let key = try deriveKey(u: u, shared: shared, groupKey: group.verifyingKey)
        let nonce = Sodium.randomBytes(nonceLength)
        let ad = header + associatedData
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count + tagLength)
        var written: UInt64 = 0
        key.withUnsafeBytes { k in
            plaintext.withUnsafeBytes { m in
                _ = crypto_aead_xchacha20poly1305_ietf_encrypt(
                    &ciphertext, &written, m.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(m.count),
                    ad, UInt64(ad.count), nil, nonce, k.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        return SealedBox(bytes: header + nonce + ciphertext)
    }

    /// A holder's decryption share for `box`, with its proof.
    public static func decryptionShare(for box: SealedBox, key: KeyPackage<C>) throws(CryptoError) -> DecryptionShare<C>
    {
        guard key.purpose == .sealing else {
            throw CryptoError(.wrongKeyPurpose, "a signing share cannot produce decryption shares")
        }
        let (u, _, _) = try parse(box)
        let secret = key.signingShare.value
        let d = secret * u
        let k = SecretScalar<C>.random()
        let a1 = C.Element.baseMultiply(k.value)
        let a2 = k.value * u
        let c = try proofChallenge(key.identifier, key.verifyingShare, u, d, a1, a2)
        return DecryptionShare(identifier: key.identifier, share: d, challenge: c, response: k.value + c * secret)
    }

    /// Checks a decryption share's proof against the holder's verifying share.
    public static func verify(
        _ share: DecryptionShare<C>, for box: SealedBox, group: PublicKeyPackage<C>
    ) throws(CryptoError) -> Bool {
        let (u, _, _) = try parse(box)
        guard let publicShare = group.verifyingShares[share.identifier] else { return false }
        // A₁ = z·G − c·PKᵢ, A₂ = z·U − c·Dᵢ; the proof holds if c = H(…, A₁, A₂).
        let a1 =
            C.Element.baseMultiply(share.response)
            - C.Element.publicMultiScalarMultiply([share.challenge], [publicShare])
        let a2 = C.Element.publicMultiScalarMultiply([share.response, -share.challenge], [u, share.share])
        guard let c = try? proofChallenge(share.identifier, publicShare, u, share.share, a1, a2) else { return false }
        return c == share.challenge
    }

    /// Opens `box` from decryption shares of distinct holders; every share's proof is checked and
    /// an invalid one is refused naming its holder. The plaintext is returned in zeroizing memory.
    ///
    /// With `checkingProofs: false` the shares' proofs are not checked first: a wrong share then
    /// yields a wrong key, which the AEAD tag refuses (`decryptionFailed`), so nothing wrong is
    /// ever returned; a caller that wants the culprit checks the proofs after such a failure. It
    /// saves one proof check (three scalar multiplications) per share on the common path.
    public static func open(
        _ box: SealedBox, shares: [DecryptionShare<C>], group: PublicKeyPackage<C>, associatedData: [UInt8] = [],
        checkingProofs: Bool = true
    ) throws(CryptoError) -> SecretBytes {
        guard group.purpose == .sealing else {
            throw CryptoError(
                .wrongKeyPurpose, "a sealed box is opened with a sealing group, not a \(group.purpose.rawValue) group")
        }
        let (u, nonce, ciphertext) = try parse(box)
        try requireDistinct(shares.map(\.identifier), "the decryption shares")
        let unknown = shares.map(\.identifier).filter { group.verifyingShares[$0] == nil }
        guard unknown.isEmpty else {
            throw CryptoError(
                .unknownParticipant, "decryption shares from participants outside the group", culprits: unknown)
        }
        var invalid: [Identifier] = []
        for share in shares where checkingProofs {
            if try !verify(share, for: box, group: group) { invalid.append(share.identifier) }
        }
        guard invalid.isEmpty else {
            throw CryptoError(.invalidDecryptionShare, "decryption share proof does not verify", culprits: invalid)
        }
        guard shares.count >= group.minSigners else {
            throw CryptoError(
                .tooFewParticipants, "\(shares.count) valid decryption shares, opening needs \(group.minSigners)")
        }
        let ids = shares.map(\.identifier)
        var lambdas: [C.Scalar] = []
        for id in ids { lambdas.append(try Polynomial<C>.lagrangeCoefficient(for: id, in: ids)) }
        let shared = C.Element.publicMultiScalarMultiply(lambdas, shares.map(\.share))
        let key = try deriveKey(u: u, shared: shared, groupKey: group.verifyingKey)
        let header = Array(box.bytes.prefix(2 + C.elementLength))
        let ad = header + associatedData
        var plaintext = [UInt8](repeating: 0, count: max(ciphertext.count - tagLength, 0))
        var written: UInt64 = 0
        let rc = key.withUnsafeBytes { k in
            crypto_aead_xchacha20poly1305_ietf_decrypt(
                &plaintext, &written, nil, ciphertext, UInt64(ciphertext.count), ad, UInt64(ad.count), nonce,
                k.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        guard rc == 0 else {
            plaintext.withUnsafeMutableBytes { Sodium.zero($0) }
            throw CryptoError(
                .decryptionFailed,
                "the sealed box does not open: wrong group, wrong associated data, or tampered ciphertext")
        }
        return SecretBytes(consuming: &plaintext)
    }

    static func parse(_ box: SealedBox) throws(CryptoError) -> (C.Element, [UInt8], [UInt8]) {
        let n = C.elementLength
        let bytes = box.bytes
        guard bytes.count >= 2 + n + nonceLength + tagLength else {
            throw CryptoError(.malformed, "the sealed box is too short (\(bytes.count) bytes)")
        }
        guard bytes[0] == SealedBox.version else {
            throw CryptoError(.malformed, "unknown sealed box version \(bytes[0])")
        }
        guard bytes[1] == C.id.tag else {
            throw CryptoError(.ciphersuiteMismatch, "the sealed box was made for another ciphersuite")
        }
        let u: C.Element
        do { u = try C.Element(validating: Array(bytes[2..<(2 + n)])) } catch {
            throw CryptoError(error.code, "the sealed box's ephemeral key: \(error.reason)")
        }
        let nonce = Array(bytes[(2 + n)..<(2 + n + nonceLength)])
        return (u, nonce, Array(bytes[(2 + n + nonceLength)...]))
    }

    static func deriveKey(u: C.Element, shared: C.Element, groupKey: C.Element) throws(CryptoError) -> SecretBytes {
        var material = try u.serialized() + shared.serialized() + groupKey.serialized()
        var digest = Array(C.hashToBytes(tag: "seal-key", material).prefix(32))
        material.withUnsafeMutableBytes { Sodium.zero($0) }
        return SecretBytes(consuming: &digest)
    }

    static func proofChallenge(
        _ id: Identifier, _ publicShare: C.Element, _ u: C.Element, _ d: C.Element, _ a1: C.Element, _ a2: C.Element
    ) throws(CryptoError) -> C.Scalar {
        var input = id.scalar(in: C.self).serialized()
        for element in [publicShare, u, d, a1, a2] { input += try element.serialized() }
        return C.hashToScalar(tag: "dleq", input)
    }
}
