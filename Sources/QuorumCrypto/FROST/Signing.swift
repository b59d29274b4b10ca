import Synchronization

/// A participant's published nonce commitments for one signing operation (RFC 9591 §5.1).
/// Elements are validated on construction and their encodings kept, so a commitment received once
/// is never decoded or checked again.
public struct SigningCommitments<C: Ciphersuite>: Sendable, Equatable {
    public let identifier: Identifier
    public let hiding: C.Element
    public let binding: C.Element
    let hidingEncoding: [UInt8]
    let bindingEncoding: [UInt8]

    public init(identifier: Identifier, hiding: C.Element, binding: C.Element) throws(CryptoError) {
        guard !hiding.isIdentity, !binding.isIdentity else {
            throw CryptoError(
                .identityElement, "a nonce commitment of participant \(identifier) is the identity",
                culprits: [identifier])
        }
        self.identifier = identifier
        self.hiding = hiding
        self.binding = binding
        self.hidingEncoding = try hiding.serialized()
        self.bindingEncoding = try binding.serialized()
    }

    /// Parses `hiding || binding` as received from `identifier`, validating both elements.
    public init(identifier: Identifier, encoded bytes: [UInt8]) throws(CryptoError) {
        let n = C.elementLength
        guard bytes.count == 2 * n else {
            throw CryptoError(
                .malformed, "nonce commitments of participant \(identifier) must be \(2 * n) bytes",
                culprits: [identifier])
        }
        do {
            let hiding = try C.Element(validating: Array(bytes[0..<n]))
            let binding = try C.Element(validating: Array(bytes[n...]))
            try self.init(identifier: identifier, hiding: hiding, binding: binding)
        } catch {
            throw CryptoError(
                error.code, "nonce commitment of participant \(identifier): \(error.reason)", culprits: [identifier])
        }
    }

    /// `hiding || binding`.
    public var encoded: [UInt8] { hidingEncoding + bindingEncoding }

    public static func == (a: Self, b: Self) -> Bool {
        a.identifier == b.identifier && a.hidingEncoding == b.hidingEncoding && a.bindingEncoding == b.bindingEncoding
    }
}

/// A signer's secret nonces for exactly one signature (RFC 9591 §5.1).
///
/// They live only in memory, are zeroed when dropped, and are taken out before the share is
/// computed: a second attempt to sign with the same nonces fails with `nonce-already-used`.
public final class SigningNonces<C: Ciphersuite>: Sendable, CustomStringConvertible {
    private let secrets: Mutex<(hiding: SecretScalar<C>, binding: SecretScalar<C>)?>
    public let commitments: SigningCommitments<C>

    init(hiding: SecretScalar<C>, binding: SecretScalar<C>, commitments: SigningCommitments<C>) {
        self.secrets = Mutex((hiding, binding))
        self.commitments = commitments
    }

    /// Removes the nonces; only the first call gets them.
    func take() throws(CryptoError) -> (hiding: SecretScalar<C>, binding: SecretScalar<C>) {
        guard
            let taken = secrets.withLock({ value in
                defer { value = nil }; return value
            })
        else {
            throw CryptoError(.nonceAlreadyUsed, "these signing nonces were already used or discarded")
        }
        return taken
    }

    /// Whether the nonces are still unused.
    public var isUsable: Bool { secrets.withLock { $0 != nil } }

    public var description: String { "SigningNonces(identifier: \(commitments.identifier), <redacted>)" }
}

/// The message and the sorted commitment list of one signing operation (RFC 9591 §5.2).
public struct SigningPackage<C: Ciphersuite>: Sendable {
    public let message: [UInt8]
    public let commitments: [SigningCommitments<C>]

    /// Rejects an empty, unsorted or duplicated commitment list: RFC 9591 requires the list to be
    /// sorted by identifier, and every participant must derive the same encoding from it.
    public init(message: [UInt8], commitments: [SigningCommitments<C>]) throws(CryptoError) {
        guard !commitments.isEmpty else { throw CryptoError(.tooFewParticipants, "the commitment list is empty") }
        for (a, b) in zip(commitments, commitments.dropFirst()) {
            if a.identifier == b.identifier {
                throw CryptoError(
                    .duplicateIdentifier, "the commitment list names participant \(a.identifier) twice",
                    culprits: [a.identifier])
            }
            if a.identifier > b.identifier {
                throw CryptoError(
                    .unsortedCommitments,
                    "the commitment list is not sorted by identifier (\(a.identifier) before \(b.identifier))")
            }
        }
        self.message = message
        self.commitments = commitments
    }

    public var signers: [Identifier] { commitments.map(\.identifier) }

    /// RFC 9591 `encode_group_commitment_list`.
    var encodedCommitmentList: [UInt8] {
        var out: [UInt8] = []
        for c in commitments {
            out += c.identifier.scalar(in: C.self).serialized() + c.hidingEncoding + c.bindingEncoding
        }
        return out
    }
}

/// Everything derived once per message and commitment list: binding factors, the group
/// commitment and the challenge. Signers and the aggregator each build one and reuse it.
public struct SigningSession<C: Ciphersuite>: Sendable {
    public let package: SigningPackage<C>
    public let verifyingKey: C.Element
    /// ρᵢ in commitment-list order.
    public let bindingFactors: [C.Scalar]
    /// The inputs to H1 (for test-vector checks), in commitment-list order.
    let bindingFactorInputs: [[UInt8]]
    public let groupCommitment: C.Element
    public let challenge: C.Scalar

    public init(package: SigningPackage<C>, verifyingKey: C.Element) throws(CryptoError) {
        let pk = try verifyingKey.serialized()
        let prefix = pk + C.H4(package.message) + C.H5(package.encodedCommitmentList)
        let inputs = package.commitments.map { prefix + $0.identifier.scalar(in: C.self).serialized() }
        let factors = inputs.map(C.H1)
        let r =
            C.Element.sum(package.commitments.map(\.hiding))
            + C.Element.publicMultiScalarMultiply(factors, package.commitments.map(\.binding))
        guard !r.isIdentity else {
            throw CryptoError(
                .identityElement, "the group commitment is the identity; the commitment list is malicious")
        }
        let rEncoded = try r.serialized()
        self.package = package
        self.verifyingKey = verifyingKey
        self.bindingFactors = factors
        self.bindingFactorInputs = inputs
        self.groupCommitment = r
        self.challenge = C.H2(rEncoded + pk + package.message)
    }

    func index(of id: Identifier) -> Int? { package.commitments.firstIndex { $0.identifier == id } }

    /// Checks the session can be used with a key of `purpose` for `verifyingKey` and threshold
    /// `minSigners`: signing purpose, same group key, and at least the threshold of signers.
    func requireUsable(purpose: KeyPurpose, verifyingKey: C.Element, minSigners: Int) throws(CryptoError) {
        guard purpose == .signing else {
            throw CryptoError(.wrongKeyPurpose, "a sealing key cannot sign or aggregate signatures")
        }
        guard self.verifyingKey == verifyingKey else {
            throw CryptoError(.groupKeyMismatch, "the signing session is for a different group public key")
        }
        guard package.commitments.count >= minSigners else {
            throw CryptoError(
                .tooFewParticipants, "\(package.commitments.count) signers committed, the threshold is \(minSigners)")
        }
    }
}

/// A signer's response zᵢ (RFC 9591 §5.2).
public struct SignatureShare<C: Ciphersuite>: Sendable, Equatable {
    public let identifier: Identifier
    public let share: C.Scalar

    public init(identifier: Identifier, share: C.Scalar) {
        self.identifier = identifier
        self.share = share
    }

    public init(identifier: Identifier, encoded: [UInt8]) throws(CryptoError) {
        do {
            self.init(identifier: identifier, share: try C.scalar(encoded, "the signature share"))
        } catch {
            throw CryptoError(error.code, "participant \(identifier): \(error.reason)", culprits: [identifier])
        }
    }

    public var encoded: [UInt8] { share.serialized() }
}

/// A Schnorr signature `R || z`; for Ed25519 an RFC 8032 signature.
public struct Signature: Sendable, Equatable {
    public let bytes: [UInt8]
    public init(bytes: [UInt8]) { self.bytes = bytes }
    public var hex: String { Hex.encode(bytes) }
}

/// FROST two-round threshold signing (RFC 9591 §5), generic over the ciphersuite.
public enum FROST<C: Ciphersuite> {
    /// RFC 9591 `nonce_generate`: H3(random_bytes(32) || SerializeScalar(secret)).
    static func generateNonce(secret: C.Scalar, randomness: [UInt8]) -> C.Scalar {
        C.H3(randomness + secret.serialized())
    }

    /// Round one (`commit`): fresh nonces from the system's random source.
    public static func commit(_ key: KeyPackage<C>) -> SigningNonces<C> {
        commit(
            identifier: key.identifier, signingShare: key.signingShare,
            hidingRandomness: Sodium.randomBytes(32), bindingRandomness: Sodium.randomBytes(32))
    }

    /// Round one with caller-supplied randomness; only for reproducing published vectors.
    static func commit(
        identifier: Identifier, signingShare: SecretScalar<C>, hidingRandomness: [UInt8], bindingRandomness: [UInt8]
    ) -> SigningNonces<C> {
        let secret = signingShare.value
        let hiding = generateNonce(secret: secret, randomness: hidingRandomness)
        let binding = generateNonce(secret: secret, randomness: bindingRandomness)
        // A zero nonce has probability ~2^-252; treat it as the failure it would be.
        let commitments = try! SigningCommitments<C>(
            identifier: identifier, hiding: C.Element.baseMultiply(hiding), binding: C.Element.baseMultiply(binding))
        return SigningNonces(hiding: SecretScalar(hiding), binding: SecretScalar(binding), commitments: commitments)
    }

    /// Round two (`sign`): the signer's share over the session's message.
    ///
    /// Refuses a session for another group, fewer commitments than the threshold, a list without
    /// this signer or with a different commitment for it. The nonces are consumed even when
    /// signing is refused.
    public static func sign(
        session: SigningSession<C>, nonces: SigningNonces<C>, key: KeyPackage<C>
    ) throws(CryptoError) -> SignatureShare<C> {
        let secrets = try nonces.take()
        try session.requireUsable(purpose: key.purpose, verifyingKey: key.verifyingKey, minSigners: key.minSigners)
        let signers = session.package.signers
        guard let index = session.index(of: key.identifier) else {
            throw CryptoError(
                .missingOwnCommitment, "the commitment list lacks participant \(key.identifier)'s own entry")
        }
        guard session.package.commitments[index] == nonces.commitments else {
            throw CryptoError(
                .commitmentMismatch,
                "the commitment list carries a different commitment for participant \(key.identifier)")
        }
        let lambda = try Polynomial<C>.lagrangeCoefficient(for: key.identifier, in: signers)
        let z =
            secrets.hiding.value + secrets.binding.value * session.bindingFactors[index]
            + lambda * key.signingShare.value * session.challenge
        return SignatureShare(identifier: key.identifier, share: z)
    }

    /// Convenience for a single call: builds the session and signs.
    public static func sign(
        package: SigningPackage<C>, nonces: SigningNonces<C>, key: KeyPackage<C>
    ) throws(CryptoError) -> SignatureShare<C> {
        let session: SigningSession<C>
        do {
            session = try SigningSession(package: package, verifyingKey: key.verifyingKey)
        } catch {
            _ = try? nonces.take()
            throw error
        }
        return try sign(session: session, nonces: nonces, key: key)
    }

    /// Checks one share: zᵢ·G == Dᵢ + ρᵢ·Eᵢ + (c·λᵢ)·PKᵢ (RFC 9591 §5.4).
    public static func verifyShare(
        _ share: SignatureShare<C>, session: SigningSession<C>, group: PublicKeyPackage<C>
    ) throws(CryptoError) -> Bool {
        guard let index = session.index(of: share.identifier) else {
            throw CryptoError(
                .unknownParticipant, "participant \(share.identifier) is not a signer of this session",
                culprits: [share.identifier])
        }
        let publicShare = try group.verifyingShare(of: share.identifier)
        let lambda = try Polynomial<C>.lagrangeCoefficient(for: share.identifier, in: session.package.signers)
        let commitment = session.package.commitments[index]
        let expected =
            commitment.hiding
            + C.Element.publicMultiScalarMultiply(
                [session.bindingFactors[index], session.challenge * lambda], [commitment.binding, publicShare])
        return C.Element.baseMultiply(share.share) == expected
    }

    /// Aggregation (RFC 9591 §5.3) with its final verification. Only when the signature fails are
    /// the shares checked one by one, and the error names every participant whose share is bad.
    public static func aggregate(
        session: SigningSession<C>, shares: [SignatureShare<C>], group: PublicKeyPackage<C>
    ) throws(CryptoError) -> Signature {
        try session.requireUsable(
            purpose: group.purpose, verifyingKey: group.verifyingKey, minSigners: group.minSigners)
        let signers = session.package.signers
        try requireDistinct(shares.map(\.identifier), "the signature shares")
        let byId = Dictionary(uniqueKeysWithValues: shares.map { ($0.identifier, $0) })
        let missing = signers.filter { byId[$0] == nil }
        guard missing.isEmpty else {
            throw CryptoError(.tooFewParticipants, "no signature share from a committed signer", culprits: missing)
        }
        let extra = byId.keys.filter { !signers.contains($0) }
        guard extra.isEmpty else {
            throw CryptoError(
                .unknownParticipant, "a signature share from a participant that did not commit", culprits: extra)
        }
        for id in signers where group.verifyingShares[id] == nil {
            throw CryptoError(.unknownParticipant, "signer \(id) is not part of this group", culprits: [id])
        }
        let z = signers.reduce(C.Scalar.zero) { $0 + byId[$1]!.share }
        let signature = Signature(bytes: try session.groupCommitment.serialized() + z.serialized())
        if C.verifySignature(signature.bytes, message: session.package.message, publicKey: group.verifyingKey) {
            return signature
        }
        var cheaters: [Identifier] = []
        for id in signers where try !verifyShare(byId[id]!, session: session, group: group) { cheaters.append(id) }
        throw CryptoError(
            .invalidSignatureShare,
            cheaters.isEmpty ? "the aggregate signature does not verify" : "invalid signature shares",
            culprits: cheaters)
    }
}
