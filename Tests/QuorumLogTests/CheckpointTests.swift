import QuorumCrypto
import QuorumLog
import QuorumTestKit
import Testing

/// C2SP tlog-checkpoint bodies: the published example, round trips, every malformed body refused
/// with a reason, and a checkpoint signed by the quorum and cosigned by its nodes.
@Suite("Checkpoints")
struct CheckpointTests {
    // c2sp.org/tlog-checkpoint example.
    static let specBody = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    static let specRoot = "0ac5186a91863e8e1d90c808014aa89bf5da8e3ee1d9f07630f0378f68f1ab62"

    @Test("The C2SP tlog-checkpoint example parses and writes back byte for byte")
    func specExample() throws {
        let checkpoint = try Checkpoint.parse(Self.specBody)
        #expect(checkpoint.origin == "example.com/behind-the-sofa")
        #expect(checkpoint.size == 20_852_163)
        #expect(Hex.encode(checkpoint.rootHash) == Self.specRoot)
        #expect(checkpoint.extensionLines.isEmpty)
        #expect(checkpoint.text == Self.specBody)
    }

    @Test("Round trips: empty tree, largest size, extension lines")
    func roundTrips() throws {
        let root = (0..<32).map { UInt8($0 * 7 & 0xff) }
        for checkpoint in [
            try Checkpoint(origin: "quorum.example/log", size: 0, rootHash: root),
            try Checkpoint(origin: "quorum.example/log", size: .max, rootHash: root),
            try Checkpoint(origin: "log with spaces ok", size: 5, rootHash: root, extensionLines: ["ext one", "2"]),
        ] {
            #expect(try Checkpoint.parse(checkpoint.text) == checkpoint)
        }
        #expect(try Checkpoint(origin: "o", size: 0, rootHash: root).text.split(separator: "\n")[1] == "0")
    }

    struct MalformedBody: Sendable, CustomTestStringConvertible {
        let testDescription: String
        let text: String
        init(_ description: String, _ text: String) {
            testDescription = description
            self.text = text
        }
    }

    static let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    static let malformedBodies: [MalformedBody] = [
        .init("empty", ""),
        .init("missing final newline", "o\n1\n\(root)"),
        .init("only two lines", "o\n1\n"),
        .init("empty origin", "\n1\n\(root)\n"),
        .init("empty size", "o\n\n\(root)\n"),
        .init("leading zero", "o\n01\n\(root)\n"),
        .init("negative size", "o\n-1\n\(root)\n"),
        .init("plus sign", "o\n+1\n\(root)\n"),
        .init("space before the size", "o\n 1\n\(root)\n"),
        .init("hexadecimal size", "o\n0x10\n\(root)\n"),
        .init("size beyond 64 bits", "o\n18446744073709551616\n\(root)\n"),
        .init("root that is not base64", "o\n1\nnot base64!\n"),
        .init("root without padding", "o\n1\n\(root.dropLast())\n"),
        .init("root of 31 bytes", "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw==\n"),
        .init("root of 33 bytes", "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2IA\n"),
        .init("root with spare bits set", "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n"),
        .init("empty extension line", "o\n1\n\(root)\n\next\n"),
        .init("carriage return before a newline", "o\r\n1\n\(root)\n"),
        .init("tab in the origin", "o\tx\n1\n\(root)\n"),
        .init("trailing blank line", "o\n1\n\(root)\n\n"),
    ]

    @Test("Malformed checkpoint bodies are refused with a reason", arguments: malformedBodies)
    func malformed(_ body: MalformedBody) {
        let error = #expect(throws: NoteError.self) { _ = try Checkpoint.parse(body.text) }
        #expect(error?.code == .malformedCheckpoint)
        #expect(error?.reason.isEmpty == false)
    }

    @Test("A checkpoint that could not be written is not built")
    func refusedValues() {
        let root = [UInt8](repeating: 1, count: 32)
        #expect(throws: NoteError.self) { _ = try Checkpoint(origin: "", size: 1, rootHash: root) }
        #expect(throws: NoteError.self) { _ = try Checkpoint(origin: "a\nb", size: 1, rootHash: root) }
        #expect(throws: NoteError.self) { _ = try Checkpoint(origin: "o", size: 1, rootHash: Array(root.prefix(31))) }
        #expect(throws: NoteError.self) {
            _ = try Checkpoint(origin: "o", size: 1, rootHash: root, extensionLines: [""])
        }
        #expect(throws: NoteError.self) {
            _ = try Checkpoint(origin: "o", size: 1, rootHash: root, extensionLines: ["a\n"])
        }
    }

    @Test("Signed by the quorum's group key and cosigned by three nodes, the checkpoint verifies; altered, it does not")
    func quorumCheckpoint() throws {
        let (keys, group) = try SigningHelpers.dealer(Ed25519Suite.self, k: 3, n: 4)
        let groupSigner = try FROSTGroupNoteSigner(name: "quorum.example/log", group: group) { message in
            try SigningHelpers.sign(message, keys: Array(keys.prefix(3)), group: group).bytes
        }
        let nodes = try (1...3).map {
            try CosignatureNoteSigner(
                name: "node\($0).quorum.example", keyPair: Ed25519KeyPair(), timestamp: 1_763_900_000)
        }
        let checkpoint = try Checkpoint(
            origin: "quorum.example/log", size: 1_000_000, rootHash: sha256Digest(Array("root".utf8)))
        var note = checkpoint.note()
        try note.sign(with: [groupSigner] + nodes)
        let serialized = note.serialized
        #expect(serialized.hasPrefix(Self.bodyPrefix(checkpoint) + "\n\u{2014} quorum.example/log "))

        let verifiers = [groupSigner.verifier] + nodes.map(\.verifier)
        let parsed = try SignedNote.parse(serialized)
        #expect(try parsed.verifiedCheckpoint(with: verifiers) == checkpoint)
        // Standard tooling that knows only the log's key accepts it too.
        #expect(try parsed.verifiedCheckpoint(with: [groupSigner.verifier]) == checkpoint)

        let altered = serialized.replacingOccurrences(of: "\n1000000\n", with: "\n1000001\n")
        let error = #expect(throws: NoteError.self) {
            _ = try SignedNote.parse(altered).verifiedCheckpoint(with: verifiers)
        }
        #expect(error?.code == .invalidSignature)
    }

    @Test("A verified note whose text is not a checkpoint is refused as a checkpoint")
    func verifiedButNotCheckpoint() throws {
        let signer = try Ed25519NoteSigner(name: "a.example", keyPair: Ed25519KeyPair())
        let note = try SignedNote(text: "just text\n", signers: [signer])
        let error = #expect(throws: NoteError.self) { _ = try note.verifiedCheckpoint(with: [signer.verifier]) }
        #expect(error?.code == .malformedCheckpoint)
    }

    static func bodyPrefix(_ checkpoint: Checkpoint) -> String { checkpoint.text }
}
