import Foundation
import QuorumCrypto
import QuorumLog
import QuorumTestKit
import Testing

/// C2SP signed notes: the published examples byte for byte, the quorum's FROST group as a note
/// key, cosignatures, many signers, and every way a note is refused.
@Suite("Signed notes")
struct SignedNoteTests {
    // golang.org/x/mod/sumdb/note package documentation (the reference implementation).
    static let peterSignerKey = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    static let peterVerifierKey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    static let peterText =
        "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
    static let peterNote =
        peterText
        + "\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"

    // c2sp.org/signed-note, "Verifier keys" example.
    static let specVerifierKey = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
    static let specNote =
        "This is an example message.\n\n"
        + "\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"

    @Test("The Go reference example: key ID, verifier key and signature byte for byte")
    func goReferenceExample() throws {
        let encoded = try #require(Data(base64Encoded: Self.peterSignerKey).map { [UInt8]($0) })
        #expect(encoded.first == 0x01)
        let signer = try Ed25519NoteSigner(
            name: "PeterNeumann", keyPair: try Ed25519KeyPair(seed: Array(encoded.dropFirst())))
        #expect(signer.keyID == 0xc74f_20a3)
        #expect(signer.verifier.verifierKey == Self.peterVerifierKey)

        let note = try SignedNote(text: Self.peterText, signers: [signer])
        #expect(note.serialized == Self.peterNote)

        let parsed = try SignedNote.parse(Self.peterNote)
        #expect(parsed.text == Self.peterText)
        #expect(parsed.serialized == Self.peterNote)
        #expect(try parsed.verify(with: [try NoteVerifier(verifierKey: Self.peterVerifierKey)]) == ["PeterNeumann"])
    }

    @Test("The C2SP signed-note example verifies under its verifier key")
    func specExample() throws {
        let verifier = try NoteVerifier(verifierKey: Self.specVerifierKey)
        #expect(verifier.name == "example.com/foo")
        #expect(verifier.type == .ed25519)
        #expect(verifier.keyID == 0x530d_903a)
        #expect(verifier.verifierKey == Self.specVerifierKey)
        let note = try SignedNote.parse(Self.specNote)
        #expect(note.text == "This is an example message.\n")
        #expect(try note.verify(with: [verifier]) == ["example.com/foo"])
        #expect(note.serialized == Self.specNote)
    }

    @Test(
        "Published verifier keys parse and write back byte for byte",
        arguments: [
            ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", NoteSignatureType.ed25519),
            ("EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop", .ed25519),
            ("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6", .ed25519),
            ("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2", .cosignatureV1),
        ])
    func publishedVerifierKeys(key: String, type: NoteSignatureType) throws {
        let verifier = try NoteVerifier(verifierKey: key)
        #expect(verifier.type == type)
        #expect(verifier.verifierKey == key)
    }

    struct RefusedKey: Sendable, CustomTestStringConvertible {
        let testDescription: String
        let key: String
    }

    static let refusedKeys: [RefusedKey] = [
        .init(testDescription: "no plus", key: "example.com/foo"),
        .init(testDescription: "no key after the key ID", key: "example.com/foo+530d903a"),
        .init(testDescription: "empty name", key: "+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"),
        .init(testDescription: "name with a space", key: "a b+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"),
        .init(
            testDescription: "key ID of 7 digits",
            key: "example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"),
        .init(
            testDescription: "upper-case key ID",
            key: "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"),
        .init(
            testDescription: "non-hex key ID",
            key: "example.com/foo+530d903g+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"),
        .init(
            testDescription: "key ID that is not the key's",
            key: "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"),
        .init(
            testDescription: "base64 that is not base64",
            key: "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k!"),
        .init(testDescription: "unsupported signature type 0x02", key: "a+00000000+AgEC"),
        .init(testDescription: "no bytes after the key ID", key: "a+00000000+"),
        .init(testDescription: "Ed25519 key of 31 bytes", key: "a+00000000+AQ" + String(repeating: "A", count: 42)),
    ]

    @Test("Malformed verifier keys are refused with a reason", arguments: refusedKeys)
    func refusedVerifierKey(_ refused: RefusedKey) {
        let error = #expect(throws: NoteError.self) { _ = try NoteVerifier(verifierKey: refused.key) }
        #expect(error?.code == .malformedVerifierKey)
        #expect(error?.reason.isEmpty == false)
    }

    @Test("A note signed by a 3-of-4 FROST Ed25519 group verifies under the group's note key")
    func frostGroupNote() throws {
        let (keys, group) = try SigningHelpers.dealer(Ed25519Suite.self, k: 3, n: 4)
        let signer = try FROSTGroupNoteSigner(name: "quorum.example/group", group: group) { message in
            try SigningHelpers.sign(message, keys: Array(keys.prefix(3)), group: group).bytes
        }
        let groupKey = try group.verifyingKey.serialized()
        #expect(signer.keyID == NoteKey.keyID(name: "quorum.example/group", type: .ed25519, publicKey: groupKey))

        let note = try SignedNote(text: "audit log checkpoint\n", signers: [signer])
        // Any Ed25519 library holding the group key accepts the line: it is RFC 8032.
        #expect(
            Ed25519KeyPair.verify(
                signature: note.signatures[0].signature, message: Array(note.text.utf8), publicKey: groupKey))

        // A verifier that only knows the published verifier key string accepts it too.
        let published = signer.verifier.verifierKey
        let verifier = try NoteVerifier(verifierKey: published)
        let parsed = try SignedNote.parse(note.serialized)
        #expect(try parsed.verify(with: [verifier]) == ["quorum.example/group"])

        // Any other three participants make a signature that verifies the same way.
        let other = try FROSTGroupNoteSigner(name: "quorum.example/group", group: group) { message in
            try SigningHelpers.sign(message, keys: Array(keys.suffix(3)), group: group).bytes
        }
        #expect(try SignedNote(text: "second\n", signers: [other]).verify(with: [verifier]) == ["quorum.example/group"])
    }

    @Test("A ceremony that returns a bad signature produces no line")
    func frostBadCeremony() throws {
        let (_, group) = try SigningHelpers.dealer(Ed25519Suite.self, k: 3, n: 4)
        let signer = try FROSTGroupNoteSigner(name: "quorum.example/group", group: group) { _ in
            [UInt8](repeating: 1, count: 64)
        }
        let error = #expect(throws: NoteError.self) { _ = try SignedNote(text: "x\n", signers: [signer]) }
        #expect(error?.code == .signingFailed)
    }

    @Test("Twenty signature lines from mixed signers, some unknown, verify")
    func manySigners() throws {
        let (keys, group) = try SigningHelpers.dealer(Ed25519Suite.self, k: 3, n: 4)
        let groupSigner = try FROSTGroupNoteSigner(name: "quorum.example/group", group: group) { message in
            try SigningHelpers.sign(message, keys: Array(keys.prefix(3)), group: group).bytes
        }
        let cosigners = try (1...4).map { index in
            try CosignatureNoteSigner(
                name: "node\(index).quorum.example", keyPair: Ed25519KeyPair(), timestamp: 1_700_000_000 + UInt64(index)
            )
        }
        let plain = try (1...3).map { try Ed25519NoteSigner(name: "plain\($0).example", keyPair: Ed25519KeyPair()) }
        let strangers: [any NoteSigner] = try (1...12).map { index -> any NoteSigner in
            if index % 2 == 0 {
                return try Ed25519NoteSigner(name: "stranger\(index).example", keyPair: Ed25519KeyPair())
            }
            return try CosignatureNoteSigner(name: "witness\(index).example", keyPair: Ed25519KeyPair(), timestamp: 1)
        }
        let checkpoint = try Checkpoint(
            origin: "quorum.example/log", size: 42, rootHash: [UInt8](repeating: 9, count: 32))
        var note = checkpoint.note()
        try note.sign(with: [groupSigner] + cosigners + plain + strangers)
        #expect(note.signatures.count == 20)

        let parsed = try SignedNote.parse(note.serialized)
        #expect(parsed == note)
        let verifiers = [groupSigner.verifier] + cosigners.map(\.verifier) + plain.map(\.verifier)
        let names = try parsed.verify(with: verifiers)
        #expect(names == verifiers.map(\.name))

        let details = try parsed.verifiedSignatures(with: verifiers)
        #expect(details[0].type == .ed25519 && details[0].timestamp == nil)
        #expect(details[1...4].map(\.timestamp) == (1...4).map { 1_700_000_000 + UInt64($0) })
        #expect(try parsed.verifiedCheckpoint(with: [cosigners[2].verifier]) == checkpoint)

        // Only one of the keys is needed; the others are unknown and ignored.
        #expect(try parsed.verify(with: [plain[1].verifier]) == ["plain2.example"])
    }

    @Test("One hundred signature lines are accepted, a hundred and one refused")
    func signatureLimit() throws {
        let signer = try Ed25519NoteSigner(name: "known.example", keyPair: Ed25519KeyPair())
        let text = "limit\n"
        let known = try signer.signature(for: Array(text.utf8))
        let filler = try NoteSignature(name: "unknown.example", keyID: 1, signature: [UInt8](repeating: 7, count: 64))
        let hundred = text + "\n" + known.line + String(repeating: filler.line, count: 99)
        #expect(try SignedNote.parse(hundred).verify(with: [signer.verifier]) == ["known.example"])

        let error = #expect(throws: NoteError.self) { _ = try SignedNote.parse(hundred + filler.line) }
        #expect(error?.code == .tooManySignatures)
    }

    @Test("A note with no signature by a known key is refused")
    func onlyUnknownKeys() throws {
        let signer = try Ed25519NoteSigner(name: "a.example", keyPair: Ed25519KeyPair())
        let stranger = try Ed25519NoteSigner(name: "b.example", keyPair: Ed25519KeyPair())
        let note = try SignedNote.parse(try SignedNote(text: "hello\n", signers: [stranger]).serialized)
        let error = #expect(throws: NoteError.self) { try note.verify(with: [signer.verifier]) }
        #expect(error?.code == .noVerifiedSignature)
        let none = #expect(throws: NoteError.self) { try note.verify(with: []) }
        #expect(none?.code == .noVerifiedSignature)
    }

    @Test("Tampered text is refused even beside a valid unknown signature")
    func tamperedText() throws {
        let signer = try Ed25519NoteSigner(name: "a.example", keyPair: Ed25519KeyPair())
        let serialized = try SignedNote(text: "size 10\n", signers: [signer]).serialized
        let tampered = serialized.replacingOccurrences(of: "size 10", with: "size 11")
        let error = #expect(throws: NoteError.self) { try SignedNote.parse(tampered).verify(with: [signer.verifier]) }
        #expect(error?.code == .invalidSignature)
    }

    @Test("A tampered signature by a known key refuses the whole note, even beside a valid one")
    func tamperedSignature() throws {
        let good = try Ed25519NoteSigner(name: "good.example", keyPair: Ed25519KeyPair())
        let bad = try Ed25519NoteSigner(name: "bad.example", keyPair: Ed25519KeyPair())
        let note = try SignedNote(text: "hello\n", signers: [good, bad])
        var flipped = note.signatures[1].signature
        flipped[5] ^= 0x40
        let forged = try SignedNote(
            text: note.text,
            signatures: [
                note.signatures[0], try NoteSignature(name: "bad.example", keyID: bad.keyID, signature: flipped),
            ])
        let parsed = try SignedNote.parse(forged.serialized)
        #expect(try parsed.verify(with: [good.verifier]) == ["good.example"])
        let error = #expect(throws: NoteError.self) { try parsed.verify(with: [good.verifier, bad.verifier]) }
        #expect(error?.code == .invalidSignature)
        #expect(error?.reason.contains("bad.example") == true)
    }

    @Test("A signature under a known name with the wrong key ID is treated as unknown")
    func wrongKeyID() throws {
        let signer = try Ed25519NoteSigner(name: "a.example", keyPair: Ed25519KeyPair())
        let line = try signer.signature(for: Array("hello\n".utf8))
        let moved = try NoteSignature(name: line.name, keyID: line.keyID ^ 1, signature: line.signature)
        let alone = try SignedNote.parse(try SignedNote(text: "hello\n", signatures: [moved]).serialized)
        let error = #expect(throws: NoteError.self) { try alone.verify(with: [signer.verifier]) }
        #expect(error?.code == .noVerifiedSignature)
        let beside = try SignedNote.parse(try SignedNote(text: "hello\n", signatures: [moved, line]).serialized)
        #expect(try beside.verify(with: [signer.verifier]) == ["a.example"])
    }

    @Test("Key names match byte for byte, not by Unicode equivalence")
    func namesMatchByBytes() throws {
        let signer = try Ed25519NoteSigner(name: "caf\u{E9}.example", keyPair: Ed25519KeyPair())
        let line = try signer.signature(for: Array("hello\n".utf8))
        let decomposed = try NoteSignature(name: "cafe\u{301}.example", keyID: line.keyID, signature: line.signature)
        let note = try SignedNote.parse(try SignedNote(text: "hello\n", signatures: [decomposed]).serialized)
        let error = #expect(throws: NoteError.self) { try note.verify(with: [signer.verifier]) }
        #expect(error?.code == .noVerifiedSignature)
    }

    @Test("Configuring the same verifier twice is harmless")
    func duplicateVerifiers() throws {
        let signer = try Ed25519NoteSigner(name: "a.example", keyPair: Ed25519KeyPair())
        let note = try SignedNote(text: "hello\n", signers: [signer])
        #expect(try note.verify(with: [signer.verifier, signer.verifier]) == ["a.example"])
    }

    @Test("Cosignatures sign cosignature/v1, the time and the checkpoint, and carry the timestamp")
    func cosignatureLayout() throws {
        let pair = Ed25519KeyPair()
        let cosigner = try CosignatureNoteSigner(name: "node1.example", keyPair: pair, timestamp: 1_679_315_147)
        let checkpoint = try Checkpoint(origin: "example.com/log", size: 7, rootHash: [UInt8](repeating: 3, count: 32))
        let line = try cosigner.signature(for: Array(checkpoint.text.utf8))
        #expect(line.keyID == NoteKey.keyID(name: "node1.example", type: .cosignatureV1, publicKey: pair.publicKey))
        #expect(line.signature.count == 72)
        #expect(line.signature.prefix(8) == [0, 0, 0, 0, 0x64, 0x18, 0x50, 0xcb])
        let message = Array("cosignature/v1\ntime 1679315147\n\(checkpoint.text)".utf8)
        #expect(
            Ed25519KeyPair.verify(
                signature: Array(line.signature.dropFirst(8)), message: message, publicKey: pair.publicKey))

        // The same key as a plain Ed25519 note key has another key ID: the line is not its.
        let note = try SignedNote(text: checkpoint.text, signatures: [line])
        let plain = try NoteVerifier(name: "node1.example", type: .ed25519, publicKey: pair.publicKey)
        #expect(throws: NoteError.self) { try note.verify(with: [plain]) }
        #expect(try note.verify(with: [cosigner.verifier]) == ["node1.example"])
    }

    @Test("The tlog-cosignature example line decodes to its key ID and timestamp")
    func cosignatureSpecExample() throws {
        let note = try SignedNote.parse(
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
                + "\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
                + "\u{2014} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
        )
        #expect(note.signatures.count == 2)
        let cosignature = note.signatures[1]
        #expect(cosignature.name == "witness.example.com/w1")
        #expect(cosignature.keyID == 0x8d66_cf3f)
        #expect(cosignature.signature.count == 72)
        #expect(cosignature.signature.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) } == 1_679_315_147)
    }

    @Test("A cosigner refuses text that is not a checkpoint")
    func cosignerNeedsCheckpoint() throws {
        let cosigner = try CosignatureNoteSigner(name: "node1.example", keyPair: Ed25519KeyPair(), timestamp: 1)
        #expect(throws: NoteError.self) { _ = try SignedNote(text: "not a checkpoint\n", signers: [cosigner]) }
        #expect(throws: NoteError.self) {
            _ = try CosignatureNoteSigner(name: "n", keyPair: Ed25519KeyPair(), timestamp: UInt64(Int64.max) + 1)
        }
    }

    @Test("Signing again with the same key replaces the earlier line")
    func resign() throws {
        let signer = try Ed25519NoteSigner(name: "a.example", keyPair: Ed25519KeyPair())
        var note = try SignedNote(text: "hello\n", signers: [signer])
        try note.sign(with: [signer])
        #expect(note.signatures.count == 1)
    }

    @Test("Invalid key names are refused", arguments: ["", "a b", "a+b", "tab\there", "nbsp\u{00A0}x"])
    func invalidNames(name: String) {
        #expect(!NoteKey.isValidName(name))
        let error = #expect(throws: NoteError.self) { _ = try Ed25519NoteSigner(name: name, keyPair: Ed25519KeyPair()) }
        #expect(error?.code == .invalidKeyName)
    }

    struct MalformedNote: Sendable, CustomTestStringConvertible {
        let testDescription: String
        let bytes: [UInt8]
        init(_ description: String, _ text: String) {
            testDescription = description
            bytes = Array(text.utf8)
        }
        init(_ description: String, bytes: [UInt8]) {
            testDescription = description
            self.bytes = bytes
        }
    }

    static let line =
        "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
    static let malformedNotes: [MalformedNote] = [
        .init("missing blank line", peterText + line + "\n"),
        .init("no signature lines", peterText + "\n"),
        .init("last signature line without newline", peterText + "\n" + line),
        .init("hyphen instead of em dash", peterText + "\n" + "-" + line.dropFirst() + "\n"),
        .init(
            "no space after the em dash",
            peterText + "\n" + line.replacingOccurrences(of: "\u{2014} ", with: "\u{2014}") + "\n"),
        .init(
            "empty key name",
            peterText
                + "\n\u{2014}  x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
        ),
        .init(
            "key name with a plus",
            peterText + "\n" + line.replacingOccurrences(of: "PeterNeumann", with: "Peter+Neumann") + "\n"),
        .init("no signature after the name", peterText + "\n\u{2014} PeterNeumann\n"),
        .init("signature that is not base64", peterText + "\n\u{2014} PeterNeumann x08go!ZJ\n"),
        .init("signature without padding", peterText + "\n" + line.dropLast() + "\n"),
        .init("signature of four bytes", peterText + "\n\u{2014} PeterNeumann AAAAAA==\n"),
        .init("text line after the signatures", peterText + "\n" + line + "\nmore text\n"),
        .init("tab in the text", "a\tb\n\n" + line + "\n"),
        .init("carriage return", peterText + "\n" + line + "\r\n"),
        .init("empty note", ""),
        .init("invalid UTF-8", bytes: Array("caf".utf8) + [0xe9] + Array("\n\n\(line)\n".utf8)),
    ]

    @Test("Malformed notes are refused with a reason", arguments: malformedNotes)
    func malformed(_ note: MalformedNote) {
        let error = #expect(throws: NoteError.self) { _ = try SignedNote.parse(note.bytes) }
        #expect(error?.code == .malformedNote)
        #expect(error?.reason.isEmpty == false)
    }

    @Test("Note text must end in a newline and hold no control characters", arguments: ["", "no newline", "a\u{7}\n"])
    func invalidText(text: String) {
        let error = #expect(throws: NoteError.self) { _ = try SignedNote(text: text) }
        #expect(error?.code == .malformedNote)
    }
}
