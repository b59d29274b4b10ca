/// Pedersen distributed key generation with proofs of knowledge, as a pure state machine: each
/// part takes what was received and returns what to keep and what to send. No I/O; the network
/// ceremony wraps it. Compatible with the ZF FROST DKG (and its published vectors).
///
/// The same machine runs proactive refresh: a refresh polynomial has a zero constant term, so the
/// group key stays, while every share changes.
public enum DKG<C: Ciphersuite> {
    /// What a participant broadcasts in round one.
    public struct Round1Package: Sendable, Equatable {
        /// Coefficient commitments, constant term first. For a refresh the constant term is
        /// omitted (it is the identity), so a refresh package has `threshold − 1` entries.
        public let commitment: [C.Element]
        /// Schnorr proof of knowledge of the constant term, `R || μ`; empty for a refresh.
        public let proofOfKnowledge: [UInt8]

        public init(commitment: [C.Element], proofOfKnowledge: [UInt8]) {
            self.commitment = commitment
            self.proofOfKnowledge = proofOfKnowledge
        }

        /// `count(u16) || commitments || proof`.
        public func encoded() throws(CryptoError) -> [UInt8] {
            let count = UInt16(commitment.count)
            var out = [UInt8(count >> 8), UInt8(count & 0xff)]
            for element in commitment { out += try element.serialized() }
            return out + proofOfKnowledge
        }

        /// Parses a package received from `sender`, validating every element.
        public init(encoded bytes: [UInt8], from sender: Identifier) throws(CryptoError) {
            func fail(_ why: String) -> CryptoError {
                CryptoError(.malformed, "round-1 package from participant \(sender): \(why)", culprits: [sender])
            }
            guard bytes.count >= 2 else { throw fail("too short") }
            let count = Int(bytes[0]) << 8 | Int(bytes[1])
            let n = C.elementLength
            let rest = bytes.count - 2 - count * n
            guard rest == 0 || rest == n + C.scalarLength else { throw fail("wrong length for \(count) commitments") }
            var elements: [C.Element] = []
            for i in 0..<count {
                do {
                    elements.append(try C.Element(validating: Array(bytes[(2 + i * n)..<(2 + (i + 1) * n)])))
                } catch {
                    throw CryptoError(
                        error.code, "round-1 package from participant \(sender): commitment \(i): \(error.reason)",
                        culprits: [sender])
                }
            }
            self.init(commitment: elements, proofOfKnowledge: Array(bytes[(2 + count * n)...]))
        }
    }

    /// A participant's secret state after round one. Discard after round two.
    public struct Round1Secret: Sendable, CustomStringConvertible {
        public let identifier: Identifier
        let coefficients: [SecretScalar<C>]
        public let package: Round1Package
        public let minSigners: Int
        public let maxSigners: Int
        public let purpose: KeyPurpose
        /// For a refresh: the key being refreshed and its group's commitment.
        let refreshing: KeyPackage<C>?
        let refreshingGroup: PublicKeyPackage<C>?
        var refreshingCommitment: [C.Element]? { refreshingGroup?.commitment }
        public var description: String { "DKG.Round1Secret(identifier: \(identifier), <redacted>)" }
    }

    /// The share a participant sends privately to one other participant in round two.
    public struct Round2Package: Sendable, CustomStringConvertible {
        public let signingShare: SecretScalar<C>
        public init(signingShare: SecretScalar<C>) { self.signingShare = signingShare }
        public var description: String { "DKG.Round2Package(<redacted>)" }
    }

    /// A participant's secret state after round two.
    public struct Round2Secret: Sendable, CustomStringConvertible {
        let round1: Round1Secret
        let ownShare: SecretScalar<C>
        let received: [Identifier: Round1Package]
        public var identifier: Identifier { round1.identifier }
        public var description: String { "DKG.Round2Secret(identifier: \(identifier), <redacted>)" }
    }

    /// The outcome for one participant. The key must not be used until every participant has
    /// confirmed the same `transcriptDigest` (see `confirmTranscript`).
    public struct Result: Sendable {
        public let keyPackage: KeyPackage<C>
        public let publicKeyPackage: PublicKeyPackage<C>
        public let transcriptDigest: [UInt8]
    }

    // MARK: Round one

    /// Round one of a fresh key generation: a random polynomial of degree `minSigners − 1`, its
    /// commitment, and a proof of knowledge of its constant term.
    public static func part1(
        identifier: Identifier, maxSigners: Int, minSigners: Int, purpose: KeyPurpose
    ) throws(CryptoError) -> (Round1Secret, Round1Package) {
        try part1(
            identifier: identifier, maxSigners: maxSigners, minSigners: minSigners, purpose: purpose,
            coefficients: (0..<minSigners).map { _ in SecretScalar<C>.random() }, proofNonce: SecretScalar<C>.random())
    }

    /// Round one with given coefficients and proof nonce; only for reproducing vectors.
    static func part1(
        identifier: Identifier, maxSigners: Int, minSigners: Int, purpose: KeyPurpose,
        coefficients: [SecretScalar<C>], proofNonce: SecretScalar<C>
    ) throws(CryptoError) -> (Round1Secret, Round1Package) {
        try checkThreshold(minSigners: minSigners, maxSigners: maxSigners)
        precondition(coefficients.count == minSigners)
        let commitment = coefficients.map { C.Element.baseMultiply($0.value) }
        let r = C.Element.baseMultiply(proofNonce.value)
        let c = try challenge(identifier, commitment[0], r)
        let mu = proofNonce.value + coefficients[0].value * c
        let package = Round1Package(commitment: commitment, proofOfKnowledge: try r.serialized() + mu.serialized())
        let secret = Round1Secret(
            identifier: identifier, coefficients: coefficients, package: package, minSigners: minSigners,
            maxSigners: maxSigners, purpose: purpose, refreshing: nil, refreshingGroup: nil)
        return (secret, package)
    }

    /// Round one of a proactive refresh of `key`: a random polynomial with zero constant term and
    /// the same degree, so the group key and the threshold cannot change. `participants` is how
    /// many members of `group` take part; those who do not are dropped from the refreshed group.
    public static func refreshPart1(
        key: KeyPackage<C>, group: PublicKeyPackage<C>, participants: Int
    ) throws(CryptoError) -> (Round1Secret, Round1Package) {
        try key.check(against: group)
        try checkThreshold(minSigners: key.minSigners, maxSigners: participants)
        guard participants <= group.maxSigners else {
            throw CryptoError(
                .invalidParameters, "\(participants) participants, the group has only \(group.maxSigners)")
        }
        let coefficients = [SecretScalar<C>(.zero)] + (1..<key.minSigners).map { _ in SecretScalar<C>.random() }
        let commitment = coefficients.dropFirst().map { C.Element.baseMultiply($0.value) }
        let package = Round1Package(commitment: commitment, proofOfKnowledge: [])
        let secret = Round1Secret(
            identifier: key.identifier, coefficients: coefficients, package: package, minSigners: key.minSigners,
            maxSigners: participants, purpose: key.purpose, refreshing: key, refreshingGroup: group)
        return (secret, package)
    }

    /// The proof-of-knowledge challenge HDKG(identifier || φ₀ || R), as in ZF FROST.
    static func challenge(_ id: Identifier, _ phi0: C.Element, _ r: C.Element) throws(CryptoError) -> C.Scalar {
        C.HDKG(id.scalar(in: C.self).serialized() + (try phi0.serialized()) + (try r.serialized()))
    }

    // MARK: Round two

    /// Checks every other participant's round-one package (count, degree, proof of knowledge) and
    /// computes the private share for each. A bad package names its sender.
    public static func part2(
        secret: Round1Secret, round1Packages: [Identifier: Round1Package]
    ) throws(CryptoError) -> (Round2Secret, [Identifier: Round2Package]) {
        try checkPackages(secret: secret, round1Packages)
        let values = secret.coefficients.map(\.value)
        var outgoing: [Identifier: Round2Package] = [:]
        for id in round1Packages.keys {
            outgoing[id] = Round2Package(
                signingShare: SecretScalar(Polynomial<C>.evaluate(values, at: id.scalar(in: C.self))))
        }
        let own = SecretScalar<C>(Polynomial<C>.evaluate(values, at: secret.identifier.scalar(in: C.self)))
        return (Round2Secret(round1: secret, ownShare: own, received: round1Packages), outgoing)
    }

    static func checkPackages(secret: Round1Secret, _ packages: [Identifier: Round1Package]) throws(CryptoError) {
        let refresh = secret.refreshing != nil
        guard packages[secret.identifier] == nil else {
            throw CryptoError(
                .duplicateIdentifier, "received a round-1 package under our own identifier \(secret.identifier)",
                culprits: [secret.identifier])
        }
        let expectedCount = secret.maxSigners - 1
        guard packages.count == expectedCount else {
            throw CryptoError(
                .tooFewParticipants,
                "expected round-1 packages from \(expectedCount) participants, got \(packages.count)")
        }
        let degree = refresh ? secret.minSigners - 1 : secret.minSigners
        for (id, package) in packages.sorted(by: { $0.key < $1.key }) {
            guard package.commitment.count == degree else {
                throw CryptoError(
                    .invalidParameters,
                    "participant \(id) committed to \(package.commitment.count) coefficients, the threshold \(secret.minSigners) needs \(degree)"
                        + (refresh ? " (a refresh cannot change the threshold)" : ""),
                    culprits: [id])
            }
            if let group = secret.refreshingGroup {
                guard group.verifyingShares[id] != nil else {
                    throw CryptoError(
                        .unknownParticipant, "participant \(id) is not a member of the group being refreshed",
                        culprits: [id])
                }
                guard package.proofOfKnowledge.isEmpty else {
                    throw CryptoError(
                        .malformed, "refresh package from participant \(id) carries a proof", culprits: [id])
                }
            } else {
                try verifyProofOfKnowledge(package, from: id)
            }
        }
    }

    static func verifyProofOfKnowledge(_ package: Round1Package, from id: Identifier) throws(CryptoError) {
        let n = C.elementLength
        let proof = package.proofOfKnowledge
        guard proof.count == n + C.scalarLength,
            let r = try? C.Element(validating: Array(proof[0..<n])),
            let mu = C.Scalar(canonical: Array(proof[n...])),
            let phi0 = package.commitment.first, !phi0.isIdentity
        else {
            throw CryptoError(
                .invalidProofOfKnowledge, "malformed proof of knowledge from participant \(id)", culprits: [id])
        }
        let c = try challenge(id, phi0, r)
        guard C.Element.baseMultiply(mu) == r + C.Element.publicMultiScalarMultiply([c], [phi0]) else {
            throw CryptoError(
                .invalidProofOfKnowledge, "invalid proof of knowledge from participant \(id)", culprits: [id])
        }
    }

    // MARK: Finish

    /// Verifies every received share against its sender's commitment, sums them into this
    /// participant's signing share, and derives the group's public key package and the transcript
    /// digest. A share that fails its check names the sender.
    public static func part3(
        secret: Round2Secret, round2Packages: [Identifier: Round2Package]
    ) throws(CryptoError) -> Result {
        let me = secret.identifier
        let senders = Set(secret.received.keys)
        let missing = senders.subtracting(round2Packages.keys)
        guard missing.isEmpty else {
            throw CryptoError(.tooFewParticipants, "no round-2 share from some participants", culprits: Array(missing))
        }
        let unexpected = Set(round2Packages.keys).subtracting(senders)
        guard unexpected.isEmpty else {
            throw CryptoError(
                .unknownParticipant, "round-2 share from a participant without a round-1 package",
                culprits: Array(unexpected))
        }
        let refresh = secret.round1.refreshing
        var all = secret.received
        all[me] = secret.round1.package
        // Full commitments (refresh: identity constant term restored).
        let full = all.mapValues { refresh == nil ? $0.commitment : [C.Element.identity] + $0.commitment }
        var total = secret.ownShare.value
        var bad: [Identifier] = []
        for (id, package) in round2Packages.sorted(by: { $0.key < $1.key }) {
            let share = package.signingShare.value
            if C.Element.baseMultiply(share) != Polynomial<C>.evaluateCommitment(full[id]!, at: me.scalar(in: C.self)) {
                bad.append(id)
            }
            total = total + share
        }
        guard bad.isEmpty else {
            throw CryptoError(
                .invalidSecretShare, "round-2 share does not match the sender's commitment", culprits: bad)
        }
        let participants = all.keys.sorted()
        var groupCommitment = (0..<secret.round1.minSigners).map { j in C.Element.sum(participants.map { full[$0]![j] })
        }
        var verifyingKey = groupCommitment[0]
        if let old = refresh {
            total = total + old.signingShare.value
            guard groupCommitment[0].isIdentity else {
                throw CryptoError(.invalidParameters, "refresh commitments do not have a zero constant term")
            }
            // The old group's commitment is what the refresh adds to; its constant term is the key.
            guard let oldCommitment = secret.round1.refreshingCommitment else {
                throw CryptoError(.invalidParameters, "refresh needs the group's public key package")
            }
            groupCommitment = zip(groupCommitment, oldCommitment).map { $0 + $1 }
            verifyingKey = old.verifyingKey
            guard groupCommitment[0] == verifyingKey else {
                throw CryptoError(.groupKeyMismatch, "the refreshed commitment changes the group key")
            }
        }
        guard !verifyingKey.isIdentity else {
            throw CryptoError(.identityElement, "the group public key is the identity")
        }
        let group = PublicKeyPackage<C>(
            purpose: secret.round1.purpose, commitment: groupCommitment, identifiers: participants)
        let key = try KeyPackage<C>(
            identifier: me, signingShare: SecretScalar(total), verifyingKey: verifyingKey,
            minSigners: secret.round1.minSigners, purpose: secret.round1.purpose)
        guard group.verifyingShares[me] == key.verifyingShare else {
            throw CryptoError(.invalidSecretShare, "our summed share does not match the group commitment")
        }
        let digest = try transcriptDigest(
            packages: all, minSigners: secret.round1.minSigners, purpose: secret.round1.purpose,
            refresh: refresh != nil, groupKey: verifyingKey)
        return Result(keyPackage: key, publicKeyPackage: group, transcriptDigest: digest)
    }

    /// SHA-256 over the parameters and every participant's round-one package in identifier
    /// order. Equal digests mean every participant saw the same broadcast.
    static func transcriptDigest(
        packages: [Identifier: Round1Package], minSigners: Int, purpose: KeyPurpose, refresh: Bool, groupKey: C.Element
    ) throws(CryptoError) -> [UInt8] {
        var transcript = Array("quorum-latch/dkg-transcript/v1".utf8)
        transcript += [C.id.tag, refresh ? 1 : 0] + Array(purpose.rawValue.utf8) + [0]
        transcript += [UInt8(minSigners >> 8), UInt8(minSigners & 0xff)]
        transcript += [UInt8(packages.count >> 8), UInt8(packages.count & 0xff)]
        transcript += try groupKey.serialized()
        for (id, package) in packages.sorted(by: { $0.key < $1.key }) {
            transcript += [UInt8(id.value >> 8), UInt8(id.value & 0xff)] + (try package.encoded())
        }
        return Sodium.sha256(transcript)
    }

    /// Checks that every participant reported our transcript digest; names those who did not.
    public static func confirmTranscript(_ ours: [UInt8], reported: [Identifier: [UInt8]]) throws(CryptoError) {
        let disagreeing = reported.filter { $0.value != ours }.map(\.key)
        guard disagreeing.isEmpty else {
            throw CryptoError(
                .transcriptMismatch, "the DKG transcript digests differ; the key must not be used",
                culprits: disagreeing)
        }
    }
}
