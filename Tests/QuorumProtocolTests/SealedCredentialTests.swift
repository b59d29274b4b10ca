import QuorumCrypto
import QuorumProtocol
import QuorumTestKit
import Testing

/// The sealed-credential record: it opens with k real decryption shares to the sealed value, and
/// only under its own name and group; its file form is stable and read strictly.
@Suite("Sealed credentials")
struct SealedCredentialTests {
    static let created: Int64 = 1_764_000_000  // 2025-11-24T16:00:00Z

    static func shares<C: Ciphersuite>(
        _ record: SealedCredential, _ keys: [KeyPackage<C>]
    ) throws -> [DecryptionShare<C>] {
        try keys.map { try ThresholdSealing<C>.decryptionShare(for: record.box, key: $0) }
    }

    @Test("a sealed credential opens with 3 of 4 decryption shares to the original value")
    func opens() throws {
        let (keys, group) = try SigningHelpers.dealer(Ed25519Suite.self, k: 3, n: 4, purpose: .sealing)
        let value = SecretBytes(Array("sk-live-0123456789".utf8))
        let record = try SealedCredential.seal(value, name: "openai", to: group, created: Self.created)
        #expect(record.sealingGroupKey == (try group.verifyingKey.serialized()))
        for subset in [[0, 1, 2], [1, 2, 3], [0, 1, 2, 3]] {
            let opened = try record.open(shares: try Self.shares(record, subset.map { keys[$0] }), group: group)
            #expect(opened.constantTimeEquals(value))
        }
        #expect(throws: CryptoError.self) {
            try record.open(shares: try Self.shares(record, [keys[0], keys[1]]), group: group)
        }
    }

    @Test("a box moved to another name or group does not open")
    func boundToNameAndGroup() throws {
        let (keys, group) = try SigningHelpers.dealer(Ed25519Suite.self, k: 3, n: 4, purpose: .sealing)
        let (otherKeys, otherGroup) = try SigningHelpers.dealer(Ed25519Suite.self, k: 3, n: 4, purpose: .sealing)
        let record = try SealedCredential.seal(
            SecretBytes(Array("value".utf8)), name: "openai", to: group, created: Self.created)
        let shares = try Self.shares(record, Array(keys.prefix(3)))

        let renamed = SealedCredential(
            name: "github", sealingGroupKey: record.sealingGroupKey, box: record.box, created: record.created)
        do {
            _ = try renamed.open(shares: shares, group: group)
            Issue.record("a renamed credential opened")
        } catch { #expect(error.code == .decryptionFailed, "\(error)") }

        let otherShares = try Self.shares(record, Array(otherKeys.prefix(3)))
        do {
            _ = try record.open(shares: otherShares, group: otherGroup)
            Issue.record("a credential opened with another group")
        } catch { #expect(error.code == .groupKeyMismatch, "\(error)") }

        // Relabelled as the other group's, it still does not open: the key is bound as well.
        let moved = SealedCredential(
            name: "openai", sealingGroupKey: try otherGroup.verifyingKey.serialized(), box: record.box,
            created: record.created)
        #expect(throws: CryptoError.self) {
            try moved.open(shares: try Self.shares(moved, Array(otherKeys.prefix(3))), group: otherGroup)
        }
        // A signing group is not a sealing group.
        let (_, signingGroup) = try SigningHelpers.dealer(Ed25519Suite.self, k: 3, n: 4)
        #expect(throws: CryptoError.self) {
            try SealedCredential.seal(SecretBytes([1]), name: "x", to: signingGroup, created: Self.created)
        }
    }

    @Test("the associated data is the documented byte string")
    func associatedData() {
        let key: [UInt8] = Array(repeating: 0xAB, count: 32)
        let expected =
            Array("quorum-latch sealed credential v1".utf8) + [0x00, 0x00, 0x06] + Array("openai".utf8) + [0x00, 0x20]
            + key
        #expect(SealedCredential.associatedData(name: "openai", sealingGroupKey: key) == expected)
    }

    @Test("the file form is one line of canonical JSON and reads back to the same record")
    func fileForm() throws {
        let record = SealedCredential(
            name: "openai", sealingGroupKey: Array(repeating: 0x11, count: 32),
            box: SealedBox(bytes: [1, 1] + Array(repeating: 0x22, count: 32 + 24 + 16 + 3)), created: Self.created)
        let text = String(decoding: record.encoded(), as: UTF8.self)
        #expect(
            text
                == "{\"created\":\"2025-11-24T16:00:00Z\",\"format\":\"quorum-latch/sealed-credential/v1\","
                + "\"name\":\"openai\",\"sealed_box\":\"0101\(String(repeating: "22", count: 75))\","
                + "\"sealing_group_key\":\"\(String(repeating: "11", count: 32))\"}\n")
        #expect(try SealedCredential(decoding: record.encoded(), file: "openai.json") == record)
    }

    @Test(
        "RFC 3339 times round-trip",
        arguments: [
            (Int64(0), "1970-01-01T00:00:00Z"), (951_782_400, "2000-02-29T00:00:00Z"),
            (1_709_251_199, "2024-02-29T23:59:59Z"), (253_402_300_799, "9999-12-31T23:59:59Z"),
            (-1, "1969-12-31T23:59:59Z"),
        ])
    func times(_ seconds: Int64, _ text: String) throws {
        let record = SealedCredential(
            name: "n", sealingGroupKey: Array(repeating: 1, count: 32),
            box: SealedBox(bytes: [1, 1] + Array(repeating: 0, count: 72)), created: seconds)
        #expect(record.createdText == text)
        #expect(try SealedCredential(decoding: record.encoded(), file: "n.json").created == seconds)
    }

    /// A valid record's JSON with one edit, and the field its refusal must name.
    static let malformed: [(String, String?, String)] = [
        ("not JSON", nil, "{"),
        ("an array", nil, "[]"),
        ("a duplicate key", nil, #"{"name":"a","name":"a"}"#),
        ("an unknown field", "value", #"{"value":"x"}"#),
        ("a missing field", "created", "-created"),
        ("another format", "format", #"{"format":"quorum-latch/other/v1"}"#),
        ("an empty name", "name", #"{"name":""}"#),
        ("a name that is not a string", "name", #"{"name":7}"#),
        ("a key that is not hex", "sealing_group_key", #"{"sealing_group_key":"zz"}"#),
        ("a key of 31 bytes", "sealing_group_key", "{\"sealing_group_key\":\"\(String(repeating: "11", count: 31))\"}"),
        ("a box in upper-case hex", "sealed_box", "{\"sealed_box\":\"0101\(String(repeating: "AA", count: 80))\"}"),
        ("a box too short", "sealed_box", #"{"sealed_box":"0101aa"}"#),
        ("a box of another version", "sealed_box", "{\"sealed_box\":\"0201\(String(repeating: "aa", count: 80))\"}"),
        ("created with an offset", "created", #"{"created":"2025-11-24T16:00:00+01:00"}"#),
        ("created on 2023-02-29", "created", #"{"created":"2023-02-29T00:00:00Z"}"#),
        ("created at 24:00", "created", #"{"created":"2025-11-24T24:00:00Z"}"#),
        ("created with a fraction", "created", #"{"created":"2025-11-24T16:00:00.5Z"}"#),
    ]

    @Test("malformed records are refused naming the file and the field", arguments: 0..<17)
    func malformedRecord(_ index: Int) throws {
        let (name, field, edit) = Self.malformed[index]
        let base: [String: String] = [
            "created": "2025-11-24T16:00:00Z", "format": "quorum-latch/sealed-credential/v1", "name": "openai",
            "sealed_box": "0101" + String(repeating: "aa", count: 80),
            "sealing_group_key": String(repeating: "11", count: 32),
        ]
        let text: String
        if edit.hasPrefix("{\"") && !edit.contains(#""name":"a","name""#) {
            // Merge the edit's one field into the valid record.
            let key = String(edit.dropFirst(2).prefix { $0 != "\"" })
            var fields = base.filter { $0.key != key }.map { "\"\($0.key)\":\"\($0.value)\"" }
            fields.append(String(edit.dropFirst().dropLast()))
            text = "{" + fields.joined(separator: ",") + "}"
        } else if edit.hasPrefix("-") {
            text =
                "{"
                + base.filter { $0.key != edit.dropFirst() }.map { "\"\($0.key)\":\"\($0.value)\"" }
                .joined(separator: ",") + "}"
        } else {
            text = edit
        }
        do {
            let record = try SealedCredential(decoding: Array(text.utf8), file: "credentials/openai.json")
            Issue.record("\(name): accepted \(record.name)")
        } catch {
            #expect(error.file == "credentials/openai.json", "\(name)")
            #expect(error.field == field, "\(name): \(error)")
            #expect(error.description.hasPrefix("credentials/openai.json: "), "\(name)")
        }
    }
}
