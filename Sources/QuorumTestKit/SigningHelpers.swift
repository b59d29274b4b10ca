import QuorumCrypto

/// FROST in one process, for tests that need keys and signatures: a verified dealer group and a
/// whole two-round signing run.
public enum SigningHelpers {
    /// A dealer group of `n` participants with threshold `k`; every share checked against the
    /// dealer's commitment.
    public static func dealer<C: Ciphersuite>(
        _: C.Type, k: Int, n: Int, purpose: KeyPurpose = .signing
    ) throws -> ([KeyPackage<C>], PublicKeyPackage<C>) {
        let (shares, group) = try TrustedDealer<C>.generate(minSigners: k, maxSigners: n, purpose: purpose)
        return (try shares.map { try $0.verify() }, group)
    }

    /// Both rounds with `keys` as the signers, aggregated and verified.
    public static func sign<C: Ciphersuite>(
        _ message: [UInt8], keys: [KeyPackage<C>], group: PublicKeyPackage<C>
    ) throws -> Signature {
        let nonces = keys.map { FROST<C>.commit($0) }
        let package = try SigningPackage<C>(
            message: message, commitments: nonces.map(\.commitments).sorted { $0.identifier < $1.identifier })
        let session = try SigningSession(package: package, verifyingKey: group.verifyingKey)
        let shares = try zip(keys, nonces).map { try FROST<C>.sign(session: session, nonces: $1, key: $0) }
        return try FROST<C>.aggregate(session: session, shares: shares, group: group)
    }
}
