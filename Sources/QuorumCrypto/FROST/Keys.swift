/// What a key is for. Signing and sealing keys come from separate ceremonies and are never
/// interchangeable: the purpose is bound into every key file and checked before use.
public enum KeyPurpose: String, Sendable, Codable {
    case signing
    case sealing
}

/// The public outcome of a key generation (RFC 9591 `PK` plus each participant's verifying share
/// and the combined VSS commitment from which every verifying share can be recomputed).
public struct PublicKeyPackage<C: Ciphersuite>: Sendable, Equatable {
    public let purpose: KeyPurpose
    /// The group public key.
    public let verifyingKey: C.Element
    /// Each participant's public share `PKᵢ = skᵢ·G`.
    public let verifyingShares: [Identifier: C.Element]
    /// Coefficient commitments of the (joint) sharing polynomial, constant term first.
    public let commitment: [C.Element]
    public let minSigners: Int

    public var maxSigners: Int { verifyingShares.count }
    public var identifiers: [Identifier] { verifyingShares.keys.sorted() }

    /// Builds and checks the package: the verifying key and every verifying share must equal what
    /// the commitment gives, and the threshold must fit the participants.
    public init(
        purpose: KeyPurpose, verifyingKey: C.Element, verifyingShares: [Identifier: C.Element],
        commitment: [C.Element], minSigners: Int
    ) throws(CryptoError) {
        try checkThreshold(minSigners: minSigners, maxSigners: verifyingShares.count)
        guard commitment.count == minSigners else {
            throw CryptoError(
                .invalidParameters,
                "the commitment has \(commitment.count) coefficients, a threshold of \(minSigners) needs \(minSigners)")
        }
        guard !verifyingKey.isIdentity, commitment.first == verifyingKey else {
            throw CryptoError(.groupKeyMismatch, "the group public key does not match the commitment's constant term")
        }
        for (id, share) in verifyingShares
        where Polynomial<C>.evaluateCommitment(commitment, at: id.scalar(in: C.self)) != share {
            throw CryptoError(
                .groupKeyMismatch, "verifying share of participant \(id) does not match the commitment", culprits: [id])
        }
        self.purpose = purpose
        self.verifyingKey = verifyingKey
        self.verifyingShares = verifyingShares
        self.commitment = commitment
        self.minSigners = minSigners
    }

    /// The public package implied by a commitment for the given participants.
    init(purpose: KeyPurpose, commitment: [C.Element], identifiers: [Identifier]) {
        self.purpose = purpose
        self.verifyingKey = commitment[0]
        self.commitment = commitment
        self.minSigners = commitment.count
        var shares: [Identifier: C.Element] = [:]
        for id in identifiers {
            shares[id] = Polynomial<C>.evaluateCommitment(commitment, at: id.scalar(in: C.self))
        }
        self.verifyingShares = shares
    }

    /// The verifying share of `id`, or an error naming it.
    func verifyingShare(of id: Identifier) throws(CryptoError) -> C.Element {
        guard let share = verifyingShares[id] else {
            throw CryptoError(.unknownParticipant, "participant \(id) is not part of this group", culprits: [id])
        }
        return share
    }
}

/// One participant's secret key material (RFC 9591 `sk_i` with its public context).
public struct KeyPackage<C: Ciphersuite>: Sendable, CustomStringConvertible {
    public let identifier: Identifier
    public let signingShare: SecretScalar<C>
    public let verifyingShare: C.Element
    public let verifyingKey: C.Element
    public let minSigners: Int
    public let purpose: KeyPurpose

    /// Builds a key package, checking that the share matches the verifying share it claims.
    public init(
        identifier: Identifier, signingShare: SecretScalar<C>, verifyingKey: C.Element, minSigners: Int,
        purpose: KeyPurpose
    ) throws(CryptoError) {
        guard minSigners >= 2 else {
            throw CryptoError(.invalidParameters, "threshold \(minSigners) is below the minimum of 2")
        }
        let share = signingShare.value
        guard !share.isZero else { throw CryptoError(.invalidSecretShare, "the signing share is zero") }
        self.identifier = identifier
        self.signingShare = signingShare
        self.verifyingShare = C.Element.baseMultiply(share)
        self.verifyingKey = verifyingKey
        self.minSigners = minSigners
        self.purpose = purpose
    }

    /// Checks this key package belongs to `group`: same purpose, same group key, and a share
    /// whose public image is the group's verifying share for this identifier.
    public func check(against group: PublicKeyPackage<C>) throws(CryptoError) {
        guard purpose == group.purpose else {
            throw CryptoError(
                .wrongKeyPurpose, "a \(purpose.rawValue) share cannot be used with a \(group.purpose.rawValue) group")
        }
        guard verifyingKey == group.verifyingKey else {
            throw CryptoError(
                .groupKeyMismatch, "share of participant \(identifier) belongs to another group", culprits: [identifier]
            )
        }
        guard minSigners == group.minSigners else {
            throw CryptoError(
                .invalidParameters,
                "share of participant \(identifier) has threshold \(minSigners), the group has \(group.minSigners)")
        }
        guard try group.verifyingShare(of: identifier) == verifyingShare else {
            throw CryptoError(
                .invalidSecretShare, "share of participant \(identifier) does not match its verifying share",
                culprits: [identifier])
        }
    }

    public var description: String {
        "KeyPackage(identifier: \(identifier), purpose: \(purpose.rawValue), signingShare: <redacted>)"
    }
}

func checkThreshold(minSigners: Int, maxSigners: Int) throws(CryptoError) {
    guard minSigners >= 2 else {
        throw CryptoError(.invalidParameters, "threshold \(minSigners) is below the minimum of 2")
    }
    guard maxSigners >= minSigners else {
        throw CryptoError(.invalidParameters, "threshold \(minSigners) is larger than the \(maxSigners) participants")
    }
    guard maxSigners <= Int(UInt16.max) else {
        throw CryptoError(.invalidParameters, "at most \(UInt16.max) participants are supported")
    }
}
