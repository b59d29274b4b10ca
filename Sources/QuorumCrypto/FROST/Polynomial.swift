/// Shamir polynomial helpers (RFC 9591 §4.2 and appendix C).
enum Polynomial<C: Ciphersuite> {
    /// f(x) by Horner's rule, coefficients from the constant term up.
    static func evaluate(_ coefficients: [C.Scalar], at x: C.Scalar) -> C.Scalar {
        var value = C.Scalar.zero
        for coefficient in coefficients.reversed() { value = value * x + coefficient }
        return value
    }

    /// Σ Cⱼ·xʲ: the public image of f(x) from its coefficient commitments (`vss_verify`).
    static func evaluateCommitment(_ commitment: [C.Element], at x: C.Scalar) -> C.Element {
        var powers: [C.Scalar] = []
        var power = C.Scalar.one
        for _ in commitment {
            powers.append(power)
            power = power * x
        }
        return C.Element.publicMultiScalarMultiply(powers, commitment)
    }

    /// The Lagrange coefficient of `id` for interpolating at `x` over `set` (RFC 9591
    /// `derive_interpolating_value`, generalised from x = 0 for share repair).
    static func lagrangeCoefficient(
        for id: Identifier, in set: [Identifier], at x: C.Scalar = .zero
    ) throws(CryptoError) -> C.Scalar {
        guard set.contains(id) else {
            throw CryptoError(.unknownParticipant, "participant \(id) is not in the interpolation set", culprits: [id])
        }
        try requireDistinct(set, "the interpolation set")
        let xi = id.scalar(in: C.self)
        var numerator = C.Scalar.one
        var denominator = C.Scalar.one
        for other in set where other != id {
            let xj = other.scalar(in: C.self)
            numerator = numerator * (x - xj)
            denominator = denominator * (xi - xj)
        }
        // Distinct identifiers make the denominator non-zero.
        return numerator * denominator.inverse!
    }
}
