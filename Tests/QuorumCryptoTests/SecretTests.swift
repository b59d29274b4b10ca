import Foundation
import QuorumTestKit
import Testing

@testable import QuorumCrypto

/// Secrets print as `<redacted>`, key files are 0600, and malformed key files are refused with
/// the file and field named.
@Suite("Secret material and key files")
struct SecretTests {
    @Test("Secret types never print their value")
    func redacted() throws {
        let (keys, _) = try SigningHelpers.dealer(Ed25519Suite.self, k: 2, n: 3)
        let secretHex = Hex.encode(keys[0].signingShare.serialized().copyBytes())
        let nonces = FROST<Ed25519Suite>.commit(keys[0])
        let texts = [
            "\(keys[0])", "\(keys[0].signingShare)", String(reflecting: keys[0].signingShare), "\(nonces)",
            "\(SecretBytes([1, 2, 3]))", String(describing: keys[0]),
        ]
        for text in texts {
            #expect(!text.contains(secretHex))
            #expect(text.contains("<redacted>"))
        }
    }

    @Test("Share files are written 0600, round-trip, and name the file and field when malformed")
    func shareFiles() throws {
        let dir = try TestKit.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (keys, group) = try SigningHelpers.dealer(Secp256k1Suite.self, k: 2, n: 3)
        let path = dir.appendingPathComponent("share.json").path
        try KeyFiles.writeSecretFile(try KeyFiles.encodeShare(keys[1]), to: path)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let loaded = try KeyFiles.decodeShare(KeyFiles.readSecretFile(path), as: Secp256k1Suite.self, file: path)
        #expect(loaded.signingShare.value == keys[1].signingShare.value)
        try loaded.check(against: group)

        let groupPath = dir.appendingPathComponent("group.json").path
        try KeyFiles.writePublicFile(try KeyFiles.encodeGroup(group), to: groupPath)
        let bytes = try KeyFiles.readFile(groupPath)
        #expect(try KeyFiles.ciphersuite(of: bytes, file: groupPath) == .secp256k1)
        #expect(try KeyFiles.decodeGroup(bytes, as: Secp256k1Suite.self, file: groupPath) == group)
        #expect(throws: KeyFileError.self) {
            _ = try KeyFiles.decodeGroup(bytes, as: Ed25519Suite.self, file: groupPath)
        }

        let original = String(decoding: try KeyFiles.encodeShare(keys[1]).copyBytes(), as: UTF8.self)
        let cases: [(String, String)] = [
            (original.replacingOccurrences(of: "\"identifier\": 2", with: "\"identifier\": 0"), "identifier"),
            (original.replacingOccurrences(of: "\"threshold\": 2", with: "\"threshold\": \"two\""), "threshold"),
            (original.replacingOccurrences(of: "\"purpose\": \"signing\"", with: "\"purpose\": \"other\""), "purpose"),
            (original.replacingOccurrences(of: "key-share/v1", with: "key-share/v9"), "format"),
            (
                original.replacingOccurrences(of: "\"signing_share\": \"", with: "\"signing_share\": \"ff"),
                "signing_share"
            ),
            (
                original.replacingOccurrences(of: "\"verifying_share\": \"0", with: "\"verifying_share\": \"1"),
                "verifying_share"
            ),
            (String(original.dropLast(4)), ""),
        ]
        for (text, field) in cases {
            var contents = Array(text.utf8)
            let error = #expect(throws: KeyFileError.self) {
                _ = try KeyFiles.decodeShare(
                    SecretBytes(consuming: &contents), as: Secp256k1Suite.self, file: "node-2/share.json")
            }
            #expect(error?.file == "node-2/share.json")
            if !field.isEmpty { #expect(error?.field == field, "\(error?.description ?? "")") }
            // The secret never appears in the error.
            let message = error?.description ?? ""
            let secretHex = Hex.encode(keys[1].signingShare.serialized().copyBytes())
            #expect(!message.contains(secretHex))
        }
        #expect(throws: KeyFileError.self) { _ = try KeyFiles.readFile(dir.appendingPathComponent("missing").path) }
    }

    @Test("The secret field is found without a JSON parser")
    func locateSecret() {
        let text = Array(#"{"a": "x", "signing_share" :  "abcd", "b": 1}"#.utf8)
        let range = KeyFiles.locateStringValue(of: "signing_share", in: text)
        #expect(range.map { String(decoding: text[$0], as: UTF8.self) } == "abcd")
        #expect(KeyFiles.locateStringValue(of: "signing_share", in: Array(#"{"a": 1}"#.utf8)) == nil)
    }
}
