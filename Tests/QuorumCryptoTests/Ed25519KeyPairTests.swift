import QuorumCrypto
import Testing

/// The plain RFC 8032 identity key: the published vector, round trips, refusals and redaction.
@Suite("Ed25519 key pair")
struct Ed25519KeyPairTests {
    /// RFC 8032 §7.1, TEST 1 (empty message).
    static let seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
    static let publicKey = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    static let signature =
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"

    @Test("RFC 8032 TEST 1: seed gives the public key and the empty message's signature")
    func rfc8032Test1() throws {
        let pair = try Ed25519KeyPair(seed: try #require(Hex.decode(Self.seed)))
        #expect(Hex.encode(pair.publicKey) == Self.publicKey)
        let signature = pair.sign([])
        #expect(Hex.encode(signature) == Self.signature)
        #expect(Ed25519KeyPair.verify(signature: signature, message: [], publicKey: pair.publicKey))
        #expect(Hex.encode(pair.seed.copyBytes()) == Self.seed)
    }

    @Test("A generated key signs and verifies; a changed message, signature or key does not")
    func generatedRoundTrip() {
        let pair = Ed25519KeyPair()
        let other = Ed25519KeyPair()
        let message = Array("checkpoint\n".utf8)
        let signature = pair.sign(message)
        #expect(pair.publicKey.count == 32)
        #expect(pair.publicKey != other.publicKey)
        #expect(Ed25519KeyPair.verify(signature: signature, message: message, publicKey: pair.publicKey))
        #expect(!Ed25519KeyPair.verify(signature: signature, message: message + [0], publicKey: pair.publicKey))
        var flipped = signature
        flipped[10] ^= 1
        #expect(!Ed25519KeyPair.verify(signature: flipped, message: message, publicKey: pair.publicKey))
        #expect(!Ed25519KeyPair.verify(signature: signature, message: message, publicKey: other.publicKey))
        #expect(
            !Ed25519KeyPair.verify(signature: Array(signature.prefix(63)), message: message, publicKey: pair.publicKey))
        #expect(
            !Ed25519KeyPair.verify(signature: signature, message: message, publicKey: Array(pair.publicKey.prefix(31))))
    }

    @Test("The same seed gives the same key and the same signatures")
    func deterministic() throws {
        let seed = SecretBytes.random(count: 32).copyBytes()
        let a = try Ed25519KeyPair(seed: seed)
        let b = try Ed25519KeyPair(seed: SecretBytes(seed))
        #expect(a.publicKey == b.publicKey)
        #expect(a.sign([1, 2, 3]) == b.sign([1, 2, 3]))
    }

    @Test("A seed of the wrong length is refused", arguments: [0, 31, 33, 64])
    func wrongSeedLength(length: Int) {
        let error = #expect(throws: CryptoError.self) {
            _ = try Ed25519KeyPair(seed: [UInt8](repeating: 7, count: length))
        }
        #expect(error?.code == .malformed)
    }

    @Test("The key pair prints as <redacted>")
    func redacted() throws {
        let pair = try Ed25519KeyPair(seed: try #require(Hex.decode(Self.seed)))
        for text in ["\(pair)", String(reflecting: pair), "\(pair.seed)"] {
            #expect(text == "<redacted>")
            #expect(!text.contains(Self.seed))
        }
    }
}
