import CSodium
import QuorumTestKit
import Testing

@testable import QuorumCrypto

/// RFC 9591 signing vectors, reproduced value by value for each ciphersuite.
@Suite("FROST signing vectors")
struct SigningVectorTests {
    static let files = ["vectors.json", "vectors-big-identifier.json"]

    @Test("Ed25519 vectors", arguments: files)
    func ed25519(file: String) throws { try check(Ed25519Suite.self, "frost-ed25519/" + file) }

    @Test("secp256k1 vectors", arguments: files)
    func secp256k1(file: String) throws { try check(Secp256k1Suite.self, "frost-secp256k1/" + file) }

    func check<C: Ciphersuite>(_: C.Type, _ path: String) throws {
        let v = try TestKit.vector(path)
        let inputs = v["inputs"]
        let minSigners = try #require(v["config"]["MIN_PARTICIPANTS"].int)
        let groupKey = try C.Element(validating: inputs["verifying_key_key"].bytes)
        let message = inputs["message"].bytes

        // Dealer: the given secret and coefficients reproduce every participant's share.
        let secret = try #require(C.Scalar(canonical: inputs["group_secret_key"].bytes))
        let coefficients =
            [secret] + inputs["share_polynomial_coefficients"].array.map { C.Scalar(canonical: $0.bytes)! }
        #expect(coefficients.count == minSigners)
        #expect(C.Element.baseMultiply(secret) == groupKey)
        var keys: [Identifier: KeyPackage<C>] = [:]
        for share in inputs["participant_shares"].array {
            let id = try Identifier(parsing: try #require(share["identifier"].int))
            let expected = share["participant_share"].bytes
            #expect(Polynomial<C>.evaluate(coefficients, at: id.scalar(in: C.self)).serialized() == expected)
            keys[id] = try KeyPackage(
                identifier: id, signingShare: try #require(SecretScalar<C>.deserialize(expected)),
                verifyingKey: groupKey, minSigners: minSigners, purpose: .signing)
        }

        // Round one: nonces from the given randomness, and their commitments.
        var nonces: [Identifier: SigningNonces<C>] = [:]
        let outputs = v["round_one_outputs"]["outputs"].array
        for out in outputs {
            let id = try Identifier(parsing: try #require(out["identifier"].int))
            let key = try #require(keys[id])
            let hiding = FROST<C>.generateNonce(
                secret: key.signingShare.value, randomness: out["hiding_nonce_randomness"].bytes)
            let binding = FROST<C>.generateNonce(
                secret: key.signingShare.value, randomness: out["binding_nonce_randomness"].bytes)
            #expect(hiding.serialized() == out["hiding_nonce"].bytes)
            #expect(binding.serialized() == out["binding_nonce"].bytes)
            let n = FROST<C>.commit(
                identifier: id, signingShare: key.signingShare,
                hidingRandomness: out["hiding_nonce_randomness"].bytes,
                bindingRandomness: out["binding_nonce_randomness"].bytes)
            #expect(try n.commitments.hiding.serialized() == out["hiding_nonce_commitment"].bytes)
            #expect(try n.commitments.binding.serialized() == out["binding_nonce_commitment"].bytes)
            nonces[id] = n
        }

        // Binding factors, computed once for the session.
        let package = try SigningPackage<C>(
            message: message,
            commitments: outputs.map { nonces[try! Identifier(parsing: $0["identifier"].int!)]!.commitments })
        let session = try SigningSession(package: package, verifyingKey: groupKey)
        for (i, out) in outputs.enumerated() {
            #expect(session.bindingFactorInputs[i] == out["binding_factor_input"].bytes)
            #expect(session.bindingFactors[i].serialized() == out["binding_factor"].bytes)
        }

        // Round two: every signature share.
        var shares: [SignatureShare<C>] = []
        for out in v["round_two_outputs"]["outputs"].array {
            let id = try Identifier(parsing: try #require(out["identifier"].int))
            let share = try FROST<C>.sign(
                session: session, nonces: try #require(nonces[id]), key: try #require(keys[id]))
            #expect(share.encoded == out["sig_share"].bytes)
            shares.append(share)
        }

        // Aggregate, verified.
        let group = PublicKeyPackage<C>(
            purpose: .signing, commitment: coefficients.map(C.Element.baseMultiply), identifiers: Array(keys.keys))
        let signature = try FROST<C>.aggregate(session: session, shares: shares, group: group)
        #expect(signature.bytes == v["final_output"]["sig"].bytes)
        #expect(C.verifySignature(signature.bytes, message: message, publicKey: groupKey))
        if C.id == .ed25519 {
            // Independent check: the group signature is a plain RFC 8032 signature.
            let pk = try groupKey.serialized()
            #expect(crypto_sign_verify_detached(signature.bytes, message, UInt64(message.count), pk) == 0)
        }
    }
}
