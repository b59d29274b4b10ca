import CSodium
import QuorumTestKit
import Testing

@testable import QuorumCrypto

/// Pedersen DKG: the published vectors, culprit naming, transcript agreement, and a full run
/// whose key signs.
@Suite("DKG")
struct DKGTests {
    @Test("Ed25519 DKG vectors") func ed25519Vectors() throws { try checkVectors(Ed25519Suite.self, "frost-ed25519") }
    @Test("secp256k1 DKG vectors") func secp256k1Vectors() throws {
        try checkVectors(Secp256k1Suite.self, "frost-secp256k1")
    }

    func checkVectors<C: Ciphersuite>(_: C.Type, _ dir: String) throws {
        let v = try TestKit.vector(dir + "/vectors_dkg.json")
        let inputs = v["inputs"]
        let maxSigners = try #require(v["config"]["MAX_PARTICIPANTS"].int)
        let minSigners = try #require(v["config"]["MIN_PARTICIPANTS"].int)
        let groupKey = try C.Element(validating: inputs["verifying_key"].bytes)
        let ids = try (1...maxSigners).map { try Identifier(parsing: $0) }

        // Every participant's round-one package as published (commitments and proof).
        var published: [Identifier: DKG<C>.Round1Package] = [:]
        for id in ids {
            let p = inputs[String(id.value)]
            published[id] = DKG<C>.Round1Package(
                commitment: try p["vss_commitments"].array.map { try C.Element(validating: $0.bytes) },
                proofOfKnowledge: p["proof_of_knowledge"].bytes)
        }

        for id in ids {
            let p = inputs[String(id.value)]
            let secretKey = try #require(SecretScalar<C>.deserialize(p["signing_key"].bytes))
            let coefficient = try #require(SecretScalar<C>.deserialize(p["coefficient"].bytes))
            // The polynomial reproduces the published commitment.
            #expect(
                try [secretKey, coefficient].map { try C.Element.baseMultiply($0.value).serialized() }
                    == p["vss_commitments"].array.map(\.bytes))
            // The vectors do not publish the proof nonce k, but a Schnorr proof (R, μ) fixes it:
            // k = μ − a₀·c. Proving again with that k must give the published proof byte for byte
            // (which also checks R = k·G and our challenge construction).
            let proof = p["proof_of_knowledge"].bytes
            let r = try C.Element(validating: Array(proof[0..<C.elementLength]))
            let mu = try #require(C.Scalar(canonical: Array(proof[C.elementLength...])))
            let c = try DKG<C>.challenge(id, published[id]!.commitment[0], r)
            let k = SecretScalar<C>(mu - secretKey.value * c)
            let (secret, package) = try DKG<C>.part1(
                identifier: id, maxSigners: maxSigners, minSigners: minSigners, purpose: .signing,
                coefficients: [secretKey, coefficient], proofNonce: k)
            #expect(package.proofOfKnowledge == proof)
            #expect(package.commitment == published[id]!.commitment)

            // Round two verifies every other proof and reproduces the published shares.
            let others = published.filter { $0.key != id }
            let (round2, outgoing) = try DKG<C>.part2(secret: secret, round1Packages: others)
            for (to, share) in outgoing {
                let expected = inputs[String(to.value)]["signing_shares"][String(id.value)].bytes
                #expect(share.signingShare.serialized().copyBytes() == expected)
            }

            // Finish with the shares the others published for us.
            var incoming: [Identifier: DKG<C>.Round2Package] = [:]
            for other in others.keys {
                let bytes = p["signing_shares"][String(other.value)].bytes
                incoming[other] = .init(signingShare: try #require(SecretScalar<C>.deserialize(bytes)))
            }
            let result = try DKG<C>.part3(secret: round2, round2Packages: incoming)
            #expect(result.keyPackage.signingShare.serialized().copyBytes() == p["signing_share"].bytes)
            #expect(try result.keyPackage.verifyingShare.serialized() == p["verifying_share"].bytes)
            #expect(result.publicKeyPackage.verifyingKey == groupKey)
            for other in ids {
                #expect(
                    try result.publicKeyPackage.verifyingShares[other]!.serialized()
                        == inputs[String(other.value)]["verifying_share"].bytes)
            }
        }
    }

    /// Runs a whole DKG in memory; `tamper` may alter packages in flight.
    static func runDKG<C: Ciphersuite>(
        _: C.Type, n: Int, k: Int, purpose: KeyPurpose = .signing,
        tamperRound1: (Identifier, Identifier, DKG<C>.Round1Package) -> DKG<C>.Round1Package = { $2 },
        tamperRound2: (Identifier, Identifier, DKG<C>.Round2Package) -> DKG<C>.Round2Package = { $2 }
    ) throws -> [Identifier: DKG<C>.Result] {
        let ids = try (1...n).map { try Identifier(parsing: $0) }
        var r1: [Identifier: (DKG<C>.Round1Secret, DKG<C>.Round1Package)] = [:]
        for id in ids { r1[id] = try DKG<C>.part1(identifier: id, maxSigners: n, minSigners: k, purpose: purpose) }
        var r2: [Identifier: DKG<C>.Round2Secret] = [:]
        var mail: [Identifier: [Identifier: DKG<C>.Round2Package]] = [:]
        for id in ids {
            var received: [Identifier: DKG<C>.Round1Package] = [:]
            for from in ids where from != id { received[from] = tamperRound1(from, id, r1[from]!.1) }
            let (secret, outgoing) = try DKG<C>.part2(secret: r1[id]!.0, round1Packages: received)
            r2[id] = secret
            for (to, package) in outgoing { mail[to, default: [:]][id] = tamperRound2(id, to, package) }
        }
        var results: [Identifier: DKG<C>.Result] = [:]
        for id in ids { results[id] = try DKG<C>.part3(secret: r2[id]!, round2Packages: mail[id]!) }
        return results
    }

    @Test("A DKG key signs, and the signature passes libsodium's Ed25519 verification")
    func dkgKeySigns() throws {
        let results = try Self.runDKG(Ed25519Suite.self, n: 5, k: 3)
        let digests = Set(results.values.map(\.transcriptDigest))
        #expect(digests.count == 1)
        let group = results.values.first!.publicKeyPackage
        #expect(results.values.allSatisfy { $0.publicKeyPackage == group })
        let signers = [1, 3, 5].map { results[try! Identifier(UInt16($0))]!.keyPackage }
        let message = Array("quorum".utf8)
        let signature = try SigningHelpers.sign(message, keys: signers, group: group)
        let pk = try group.verifyingKey.serialized()
        #expect(crypto_sign_verify_detached(signature.bytes, message, UInt64(message.count), pk) == 0)
    }

    @Test("A bad proof of knowledge names its sender", arguments: [CiphersuiteID.ed25519, .secp256k1])
    func badProof(suite: CiphersuiteID) throws {
        func run<C: Ciphersuite>(_: C.Type) throws {
            let error = #expect(throws: CryptoError.self) {
                _ = try Self.runDKG(
                    C.self, n: 4, k: 3,
                    tamperRound1: { from, _, package in
                        guard from.value == 2 else { return package }
                        // Keep R, add one to the response: well-formed, but the proof no longer holds.
                        let z = C.Scalar(canonical: Array(package.proofOfKnowledge[C.elementLength...]))!
                        let fixed = Array(package.proofOfKnowledge[0..<C.elementLength]) + (z + .one).serialized()
                        return DKG<C>.Round1Package(commitment: package.commitment, proofOfKnowledge: fixed)
                    })
            }
            #expect(error?.code == .invalidProofOfKnowledge)
            #expect(error?.culprits == [try Identifier(2)])
        }
        switch suite {
        case .ed25519: try run(Ed25519Suite.self)
        case .secp256k1: try run(Secp256k1Suite.self)
        }
    }

    @Test("A bad round-two share names its sender")
    func badShare() throws {
        let error = #expect(throws: CryptoError.self) {
            _ = try Self.runDKG(
                Ed25519Suite.self, n: 4, k: 3,
                tamperRound2: { from, to, package in
                    guard from.value == 3, to.value == 1 else { return package }
                    return .init(signingShare: SecretScalar(package.signingShare.value + .one))
                })
        }
        #expect(error?.code == .invalidSecretShare)
        #expect(error?.culprits == [try Identifier(3)])
    }

    @Test("A participant that broadcasts different commitments splits the transcript digest")
    func equivocationChangesDigest() throws {
        // Participant 4 sends participant 1 a different (but self-consistent) package than everyone else.
        let ids = try (1...4).map { try Identifier(parsing: $0) }
        let alternative = try DKG<Ed25519Suite>.part1(
            identifier: ids[3], maxSigners: 4, minSigners: 3, purpose: .signing)
        var results: [Identifier: DKG<Ed25519Suite>.Result] = [:]
        do {
            results = try Self.runDKG(
                Ed25519Suite.self, n: 4, k: 3,
                tamperRound1: { from, to, package in
                    from == ids[3] && to == ids[0] ? alternative.1 : package
                })
        } catch let error as CryptoError {
            // Participant 1 may instead catch the mismatch as a bad share from 4: also a named culprit.
            #expect(error.culprits == [ids[3]])
            return
        }
        let reported = results.mapValues(\.transcriptDigest)
        let error = #expect(throws: CryptoError.self) {
            try DKG<Ed25519Suite>.confirmTranscript(reported[ids[1]]!, reported: reported)
        }
        #expect(error?.code == .transcriptMismatch)
    }

    @Test("Wrong package counts and degrees are refused with the participant named")
    func wrongDegree() throws {
        let error = #expect(throws: CryptoError.self) {
            _ = try Self.runDKG(
                Ed25519Suite.self, n: 4, k: 3,
                tamperRound1: { from, _, package in
                    from.value == 2
                        ? .init(
                            commitment: Array(package.commitment.prefix(2)), proofOfKnowledge: package.proofOfKnowledge)
                        : package
                })
        }
        #expect(error?.code == .invalidParameters)
        #expect(error?.culprits == [try Identifier(2)])
        let (secret, _) = try DKG<Ed25519Suite>.part1(
            identifier: Identifier(1), maxSigners: 4, minSigners: 3, purpose: .signing)
        #expect(throws: CryptoError.self) { _ = try DKG<Ed25519Suite>.part2(secret: secret, round1Packages: [:]) }
        #expect(throws: CryptoError.self) {
            _ = try DKG<Ed25519Suite>.part1(identifier: Identifier(1), maxSigners: 2, minSigners: 3, purpose: .signing)
        }
    }

    @Test("Round-one packages round-trip their encoding and reject malformed bytes")
    func packageEncoding() throws {
        let (_, package) = try DKG<Secp256k1Suite>.part1(
            identifier: Identifier(1), maxSigners: 3, minSigners: 2, purpose: .signing)
        #expect(try DKG<Secp256k1Suite>.Round1Package(encoded: try package.encoded(), from: Identifier(1)) == package)
        var broken = try package.encoded()
        broken[2] = 0x05  // the first commitment's SEC1 prefix: never a valid point
        let error = #expect(throws: CryptoError.self) {
            _ = try DKG<Secp256k1Suite>.Round1Package(encoded: broken, from: Identifier(7))
        }
        #expect(error?.culprits == [try Identifier(7)])
        #expect(throws: CryptoError.self) {
            _ = try DKG<Secp256k1Suite>.Round1Package(encoded: [0, 5, 1], from: Identifier(7))
        }
    }
}
