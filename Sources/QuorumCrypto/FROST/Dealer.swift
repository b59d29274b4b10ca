/// One participant's share from a trusted dealer, with the dealer's VSS commitment so the
/// participant can check it (RFC 9591 appendix C).
public struct SecretShare<C: Ciphersuite>: Sendable {
    public let identifier: Identifier
    public let signingShare: SecretScalar<C>
    public let commitment: [C.Element]
    public let purpose: KeyPurpose

    /// `vss_verify`: the share's public image must equal the commitment evaluated at the
    /// identifier. Returns the participant's key package.
    public func verify() throws(CryptoError) -> KeyPackage<C> {
        guard let verifyingKey = commitment.first, !verifyingKey.isIdentity else {
            throw CryptoError(.invalidParameters, "the VSS commitment is empty or its constant term is the identity")
        }
        // The key package computes the share's public image once; compare that.
        let key = try KeyPackage(
            identifier: identifier, signingShare: signingShare, verifyingKey: verifyingKey,
            minSigners: commitment.count, purpose: purpose)
        let expected = Polynomial<C>.evaluateCommitment(commitment, at: identifier.scalar(in: C.self))
        guard key.verifyingShare == expected else {
            throw CryptoError(
                .invalidSecretShare, "the share of participant \(identifier) does not match the dealer's commitment",
                culprits: [identifier])
        }
        return key
    }
}

/// Trusted-dealer key generation (RFC 9591 appendix C), for tests and air-gapped setups. The
/// dealer sees the group secret; a production cluster uses `DKG` instead.
public enum TrustedDealer<C: Ciphersuite> {
    /// Shares a fresh random secret among participants 1…`maxSigners`.
    public static func generate(
        minSigners: Int, maxSigners: Int, purpose: KeyPurpose
    ) throws(CryptoError) -> (shares: [SecretShare<C>], group: PublicKeyPackage<C>) {
        try checkThreshold(minSigners: minSigners, maxSigners: maxSigners)
        let coefficients = (0..<minSigners).map { _ in SecretScalar<C>.random() }
        let identifiers = (1...maxSigners).map { try! Identifier(UInt16($0)) }
        return try split(coefficients: coefficients, identifiers: identifiers, purpose: purpose)
    }

    /// `secret_share_shard` + `vss_commit` + `derive_group_info` for given coefficients (constant
    /// term first); exposed internally so tests can reproduce the published shares.
    static func split(
        coefficients: [SecretScalar<C>], identifiers: [Identifier], purpose: KeyPurpose
    ) throws(CryptoError) -> (shares: [SecretShare<C>], group: PublicKeyPackage<C>) {
        try requireDistinct(identifiers, "the participant list")
        let values = coefficients.map(\.value)
        let commitment = values.map(C.Element.baseMultiply)
        let shares = identifiers.map { id in
            SecretShare<C>(
                identifier: id, signingShare: SecretScalar(Polynomial<C>.evaluate(values, at: id.scalar(in: C.self))),
                commitment: commitment, purpose: purpose)
        }
        return (shares, PublicKeyPackage(purpose: purpose, commitment: commitment, identifiers: identifiers))
    }
}
