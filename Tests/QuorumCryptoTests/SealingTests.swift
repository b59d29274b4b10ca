import QuorumTestKit
import Testing

@testable import QuorumCrypto

@Suite("Threshold sealing")
struct SealingTests {
    func sealed<C: Ciphersuite>(_: C.Type, k: Int, n: Int) throws -> ([KeyPackage<C>], PublicKeyPackage<C>, SealedBox) {
        let (keys, group) = try SigningHelpers.dealer(C.self, k: k, n: n, purpose: .sealing)
        let box = try ThresholdSealing<C>.seal(
            SecretBytes(Array("sk-live-credential".utf8)), to: group, associatedData: Array("openai".utf8))
        return (keys, group, box)
    }

    @Test("Any k valid decryption shares open the box", arguments: [CiphersuiteID.ed25519, .secp256k1])
    func anyKOpen(suite: CiphersuiteID) throws {
        func run<C: Ciphersuite>(_: C.Type) throws {
            let (keys, group, box) = try sealed(C.self, k: 3, n: 5)
            #expect(!Hex.encode(box.bytes).contains(Hex.encode(Array("sk-live-credential".utf8))))
            for subset in [[0, 1, 2], [1, 3, 4], [0, 2, 4], [0, 1, 2, 3, 4]] {
                let shares = try subset.map { try ThresholdSealing<C>.decryptionShare(for: box, key: keys[$0]) }
                let plain = try ThresholdSealing<C>.open(
                    box, shares: shares, group: group, associatedData: Array("openai".utf8))
                #expect(plain.copyBytes() == Array("sk-live-credential".utf8))
                #expect("\(plain)" == "<redacted>")
            }
        }
        if suite == .ed25519 { try run(Ed25519Suite.self) } else { try run(Secp256k1Suite.self) }
    }

    @Test("Fewer than k shares, or the wrong associated data, do not open")
    func refuses() throws {
        let (keys, group, box) = try sealed(Ed25519Suite.self, k: 3, n: 4)
        let shares = try keys.prefix(2).map { try ThresholdSealing<Ed25519Suite>.decryptionShare(for: box, key: $0) }
        let few = #expect(throws: CryptoError.self) {
            _ = try ThresholdSealing.open(box, shares: shares, group: group, associatedData: Array("openai".utf8))
        }
        #expect(few?.code == .tooFewParticipants)
        let all = try keys.prefix(3).map { try ThresholdSealing<Ed25519Suite>.decryptionShare(for: box, key: $0) }
        let wrongAD = #expect(throws: CryptoError.self) {
            _ = try ThresholdSealing.open(box, shares: all, group: group, associatedData: Array("anthropic".utf8))
        }
        #expect(wrongAD?.code == .decryptionFailed)
        var tampered = box.bytes
        tampered[tampered.count - 1] ^= 1
        #expect(throws: CryptoError.self) {
            _ = try ThresholdSealing.open(
                SealedBox(bytes: tampered), shares: all, group: group, associatedData: Array("openai".utf8))
        }
    }

    @Test("A decryption share not made with the holder's real share is rejected, naming the holder")
    func invalidShareNamed() throws {
        let (keys, group, box) = try sealed(Secp256k1Suite.self, k: 2, n: 3)
        var shares = try keys.map { try ThresholdSealing<Secp256k1Suite>.decryptionShare(for: box, key: $0) }
        // Holder 2 substitutes another point but keeps its proof.
        let s = shares[1]
        shares[1] = DecryptionShare(
            identifier: s.identifier, share: s.share + .generator, challenge: s.challenge, response: s.response)
        let error = #expect(throws: CryptoError.self) {
            _ = try ThresholdSealing.open(box, shares: shares, group: group, associatedData: Array("openai".utf8))
        }
        #expect(error?.code == .invalidDecryptionShare)
        #expect(error?.culprits == [try Identifier(2)])
        // Without the proof checks the wrong share makes a wrong key, which the AEAD refuses: a
        // wrong plaintext is never returned.
        let unchecked = #expect(throws: CryptoError.self) {
            _ = try ThresholdSealing.open(
                box, shares: Array(shares.prefix(2)), group: group, associatedData: Array("openai".utf8),
                checkingProofs: false)
        }
        #expect(unchecked?.code == .decryptionFailed)
        let honest = try keys.map { try ThresholdSealing<Secp256k1Suite>.decryptionShare(for: box, key: $0) }
        #expect(
            try ThresholdSealing.open(
                box, shares: Array(honest.prefix(2)), group: group, associatedData: Array("openai".utf8),
                checkingProofs: false
            ).copyBytes()
                == ThresholdSealing.open(
                    box, shares: Array(honest.prefix(2)), group: group, associatedData: Array("openai".utf8)
                ).copyBytes())
        #expect(try !ThresholdSealing.verify(shares[1], for: box, group: group))
        // A share made for another box is also rejected.
        let (_, _, otherBox) = try sealed(Secp256k1Suite.self, k: 2, n: 3)
        #expect(
            try !ThresholdSealing.verify(
                try ThresholdSealing.decryptionShare(for: otherBox, key: keys[0]), for: box, group: group))
    }

    @Test("Signing and sealing keys are not interchangeable")
    func separateKeys() throws {
        let (signingKeys, signingGroup) = try SigningHelpers.dealer(Ed25519Suite.self, k: 2, n: 3)
        let error = #expect(throws: CryptoError.self) {
            _ = try ThresholdSealing<Ed25519Suite>.seal(SecretBytes([1]), to: signingGroup)
        }
        #expect(error?.code == .wrongKeyPurpose)
        let (_, _, box) = try sealed(Ed25519Suite.self, k: 2, n: 3)
        #expect(throws: CryptoError.self) { _ = try ThresholdSealing.decryptionShare(for: box, key: signingKeys[0]) }
    }

    @Test("Decryption shares round-trip their encoding; malformed boxes are refused")
    func encodings() throws {
        let (keys, _, box) = try sealed(Ed25519Suite.self, k: 2, n: 3)
        let share = try ThresholdSealing<Ed25519Suite>.decryptionShare(for: box, key: keys[0])
        #expect(
            try DecryptionShare<Ed25519Suite>(identifier: keys[0].identifier, encoded: try share.encoded()) == share)
        #expect(throws: CryptoError.self) {
            _ = try DecryptionShare<Ed25519Suite>(identifier: keys[0].identifier, encoded: [1, 2])
        }
        #expect(throws: CryptoError.self) {
            _ = try ThresholdSealing.decryptionShare(for: SealedBox(bytes: [1, 1, 0]), key: keys[0])
        }
        var wrongSuite = box.bytes
        wrongSuite[1] = 2
        let error = #expect(throws: CryptoError.self) {
            _ = try ThresholdSealing.decryptionShare(for: SealedBox(bytes: wrongSuite), key: keys[0])
        }
        #expect(error?.code == .ciphersuiteMismatch)
    }
}
