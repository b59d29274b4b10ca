import Foundation
import QuorumCrypto
import Testing

@testable import QuorumPolicy

@Suite("Signed bundles")
struct BundleSignedTests {
    private let operatorKey = try! Ed25519KeyPair(seed: [UInt8](repeating: 7, count: 32))
    private let otherKey = try! Ed25519KeyPair(seed: [UInt8](repeating: 9, count: 32))

    private func bundle() throws -> PolicyBundle { try BundleFixtures.decode(BundleFixtures.fullYAML) }

    private func open(
        _ bytes: [UInt8], trusted: [[UInt8]]? = nil, newerThan: UInt64? = 6
    ) throws(SignedBundleError) -> PolicyBundle {
        try SignedBundle.open(
            bytes, fileName: "signed.json", trustedSigners: trusted ?? [operatorKey.publicKey], newerThan: newerThan)
    }

    private func refusal(_ bytes: [UInt8], trusted: [[UInt8]]? = nil, newerThan: UInt64? = 6) -> SignedBundleError? {
        do {
            _ = try open(bytes, trusted: trusted, newerThan: newerThan)
            return nil
        } catch {
            return error
        }
    }

    /// The envelope with `find` replaced by `replacement` in its text.
    private func tampered(_ bytes: [UInt8], _ find: String, _ replacement: String) -> [UInt8] {
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains(find))
        return Array(text.replacingOccurrences(of: find, with: replacement).utf8)
    }

    @Test("A validly signed, newer bundle opens to the same bundle")
    func validOpens() throws {
        let original = try bundle()
        let envelope = SignedBundle.sign(original, with: operatorKey)
        let text = String(decoding: envelope, as: UTF8.self)
        #expect(text.hasPrefix(#"{"bundle":{"fields":"#))
        #expect(text.contains(#""format":"quorum-latch/signed-bundle/v1","signature":""#))
        let opened = try open(envelope)
        #expect(opened.digest == original.digest)
        #expect(opened.latches == original.latches)
        #expect(try open(envelope, trusted: [otherKey.publicKey, operatorKey.publicKey], newerThan: nil).version == 7)
    }

    @Test("A changed bundle no longer matches the signed digest")
    func tamperedBundle() throws {
        let envelope = SignedBundle.sign(try bundle(), with: operatorKey)
        let error = refusal(tampered(envelope, #""requests":60"#, #""requests":6000"#))
        #expect(error?.code == .digestMismatch)
        #expect(error?.description.contains("signed.json: the bundle's digest is sha256:") == true)
    }

    @Test("A changed digest no longer matches the signature")
    func tamperedDigest() throws {
        let original = try bundle()
        let envelope = SignedBundle.sign(original, with: operatorKey)
        let forged = "sha256:" + String(repeating: "0", count: 64)
        #expect(refusal(tampered(envelope, original.digest, forged))?.code == .badSignature)
    }

    @Test("A changed signature is refused")
    func tamperedSignature() throws {
        let envelope = SignedBundle.sign(try bundle(), with: operatorKey)
        let text = String(decoding: envelope, as: UTF8.self)
        let range = try #require(text.range(of: #""signature":""#))
        let first = text[range.upperBound]
        let flipped = tampered(envelope, #""signature":"\#(first)"#, #""signature":"\#(first == "0" ? "1" : "0")"#)
        #expect(refusal(flipped)?.code == .badSignature)
    }

    @Test("A signature by a key that is not trusted is refused, even if valid")
    func untrustedSigner() throws {
        let envelope = SignedBundle.sign(try bundle(), with: otherKey)
        let error = refusal(envelope)
        #expect(error?.code == .untrustedSigner)
        #expect(error?.reason.contains(Hex.encode(otherKey.publicKey)) == true)
    }

    @Test("A bundle whose version is not above the one in force is refused", arguments: [UInt64(7), 8, 1000])
    func oldVersion(current: UInt64) throws {
        let envelope = SignedBundle.sign(try bundle(), with: operatorKey)
        let error = refusal(envelope, newerThan: current)
        #expect(error?.code == .notNewer)
        #expect(error?.reason == "bundle version 7 is not above the version in force, \(current)")
    }

    @Test(
        "Things that are not envelopes are refused as such",
        arguments: [
            "not json", "[]", #"{"format":"quorum-latch/signed-bundle/v1"}"#,
            #"{"bundle":{},"digest":"x","format":"quorum-latch/signed-bundle/v1","signature":"00","signer":"00","extra":1}"#,
            "format: quorum-latch/bundle/v1\nversion: 1\nlatches: []\n",
            #"{"format":"quorum-latch/bundle/v1","version":1,"latches":[]}"#,
        ])
    func notAnEnvelope(text: String) {
        #expect(refusal(Array(text.utf8))?.code == .notAnEnvelope)
    }

    @Test("An unsigned bundle given to open says to sign it")
    func unsignedToOpen() {
        let error = refusal(Array(#"{"format":"quorum-latch/bundle/v1","version":1,"latches":[]}"#.utf8))
        #expect(error?.reason.contains("unsigned bundle") == true)
    }

    @Test("A signed bundle that does not validate lists its problems")
    func invalidSignedBundle() throws {
        // Sign the digest of an invalid bundle's bytes directly: a careless operator tool could.
        let bytes = Array(#"{"format":"quorum-latch/bundle/v1","version":9,"latches":[{"id":"Bad"}]}"#.utf8)
        let digest = BundleDocument.digest(ofCanonical: bytes)
        let signature = operatorKey.sign(SignedBundle.signedMessage(digest: digest))
        let envelope =
            #"{"bundle":"# + String(decoding: bytes, as: UTF8.self) + #","digest":"\#(digest)","#
            + #""format":"quorum-latch/signed-bundle/v1","signature":"\#(Hex.encode(signature))","#
            + #""signer":"\#(Hex.encode(operatorKey.publicKey))"}"#
        let error = refusal(Array(envelope.utf8))
        #expect(error?.code == .invalidBundle)
        #expect(error?.problems.contains { $0.path == "latches[0].token_sha256" && $0.line == 1 } == true)
    }
}
