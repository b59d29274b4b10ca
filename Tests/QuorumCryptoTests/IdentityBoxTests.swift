import QuorumCrypto
import Testing

@Suite("IdentityBox: encryption between node identity keys")
struct IdentityBoxTests {
    let alice = Ed25519KeyPair()
    let bob = Ed25519KeyPair()
    let mallory = Ed25519KeyPair()
    let secret = SecretBytes(Array("a round-2 share".utf8))
    let context = Array("ceremony 1 / signing / to 2".utf8)

    @Test("the recipient opens what the sender sealed, and the box does not contain the secret")
    func roundTrip() throws {
        let box = try IdentityBox.seal(secret, context: context, from: alice, to: bob.publicKey)
        #expect(box.count == secret.count + IdentityBox.overhead)
        #expect(!box.containsSubsequence(secret.copyBytes()))
        let opened = try IdentityBox.open(box, context: context, from: alice.publicKey, to: bob)
        #expect(opened.copyBytes() == secret.copyBytes())
        let again = try IdentityBox.seal(secret, context: context, from: alice, to: bob.publicKey)
        #expect(again != box, "each box has a fresh random nonce")
    }

    @Test("a box does not open for another recipient, another claimed sender, another context, or altered")
    func refusals() throws {
        let box = try IdentityBox.seal(secret, context: context, from: alice, to: bob.publicKey)
        #expect(throws: CryptoError.self) {
            try IdentityBox.open(box, context: context, from: alice.publicKey, to: mallory)
        }
        #expect(throws: CryptoError.self) {
            try IdentityBox.open(box, context: context, from: mallory.publicKey, to: bob)
        }
        #expect(throws: CryptoError.self) {
            try IdentityBox.open(
                box, context: Array("ceremony 2 / signing / to 2".utf8), from: alice.publicKey, to: bob)
        }
        for index in [0, 30, box.count - 1] {
            var altered = box
            altered[index] ^= 1
            #expect(throws: CryptoError.self) {
                try IdentityBox.open(altered, context: context, from: alice.publicKey, to: bob)
            }
        }
        #expect(throws: CryptoError.self) {
            try IdentityBox.open(
                Array(box.prefix(IdentityBox.overhead - 1)), context: context, from: alice.publicKey, to: bob)
        }
        #expect(throws: CryptoError.self) {
            try IdentityBox.seal(secret, context: context, from: alice, to: [UInt8](repeating: 7, count: 31))
        }
    }
}

extension Array where Element == UInt8 {
    fileprivate func containsSubsequence(_ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, needle.count <= count else { return false }
        return (0...(count - needle.count)).contains { Array(self[$0..<($0 + needle.count)]) == needle }
    }
}
