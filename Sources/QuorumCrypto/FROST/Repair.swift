/// Repairable threshold scheme (as in ZF FROST): at least `threshold` helpers rebuild a lost
/// share for participant r without any of them learning it or revealing their own.
///
/// 1. Each helper i splits λᵢ(r)·skᵢ into one random delta per helper (`step1`) and sends each
///    delta privately to its helper.
/// 2. Each helper sums the deltas it received into a sigma (`step2`) and sends it to r.
/// 3. r sums the sigmas into its share and checks it against the group (`step3`).
public enum Repair<C: Ciphersuite> {
    /// Helper i's deltas, one per helper (including itself), summing to λᵢ(r)·skᵢ.
    public static func step1(
        helpers: [Identifier], key: KeyPackage<C>, lostParticipant: Identifier
    ) throws(CryptoError) -> [Identifier: SecretScalar<C>] {
        try requireDistinct(helpers, "the helper list")
        guard helpers.count >= key.minSigners else {
            throw CryptoError(
                .tooFewParticipants,
                "\(helpers.count) helpers, repairing a share needs the threshold of \(key.minSigners)")
        }
        guard helpers.contains(key.identifier) else {
            throw CryptoError(
                .unknownParticipant, "participant \(key.identifier) is not in the helper list",
                culprits: [key.identifier])
        }
        guard !helpers.contains(lostParticipant) else {
            throw CryptoError(
                .invalidParameters, "participant \(lostParticipant) cannot help repair its own share",
                culprits: [lostParticipant])
        }
        let lambda = try Polynomial<C>.lagrangeCoefficient(
            for: key.identifier, in: helpers, at: lostParticipant.scalar(in: C.self))
        let target = lambda * key.signingShare.value
        let sorted = helpers.sorted()
        var deltas: [Identifier: SecretScalar<C>] = [:]
        var sum = C.Scalar.zero
        for id in sorted.dropLast() {
            let delta = C.Scalar.random()
            deltas[id] = SecretScalar(delta)
            sum = sum + delta
        }
        deltas[sorted.last!] = SecretScalar(target - sum)
        return deltas
    }

    /// Helper j's sigma: the sum of the deltas it received.
    public static func step2(deltas: [SecretScalar<C>]) -> SecretScalar<C> {
        SecretScalar(deltas.reduce(C.Scalar.zero) { $0 + $1.value })
    }

    /// The repaired participant's share, checked against its verifying share in `group`.
    public static func step3(
        sigmas: [SecretScalar<C>], identifier: Identifier, group: PublicKeyPackage<C>
    ) throws(CryptoError) -> KeyPackage<C> {
        let share = SecretScalar<C>(sigmas.reduce(C.Scalar.zero) { $0 + $1.value })
        guard sigmas.count >= group.minSigners else {
            throw CryptoError(.tooFewParticipants, "\(sigmas.count) sigmas, the threshold is \(group.minSigners)")
        }
        let key = try KeyPackage(
            identifier: identifier, signingShare: share, verifyingKey: group.verifyingKey,
            minSigners: group.minSigners, purpose: group.purpose)
        guard key.verifyingShare == (try group.verifyingShare(of: identifier)) else {
            throw CryptoError(
                .invalidSecretShare,
                "the repaired share of participant \(identifier) does not match its verifying share; a helper sent a wrong value"
            )
        }
        return key
    }
}
