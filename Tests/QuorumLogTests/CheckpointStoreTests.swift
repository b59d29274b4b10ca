import Foundation
import QuorumCrypto
import QuorumTestKit
import Testing

@testable import QuorumLog

/// Signed checkpoints stored beside the tree: only verified, matching checkpoints are kept, and
/// the store audit checks every one.
@Suite("Checkpoint store")
struct CheckpointStoreTests {
    let origin = "quorum.test/log"

    /// A log with `count` entries in a fresh directory, and its FROST group and node signers.
    func fixture(count: Int) throws -> (MerkleLog, FROSTGroupNoteSigner, CosignatureNoteSigner, URL) {
        let dir = try TestKit.temporaryDirectory("checkpoint-store")
        let log = try MerkleLog(directory: dir.path)
        try log.append((0..<count).map { Array("entry \($0)".utf8) })
        let (keys, group) = try SigningHelpers.dealer(Ed25519Suite.self, k: 3, n: 4)
        let signers = Array(keys.prefix(3))
        let quorum = try FROSTGroupNoteSigner(name: origin, group: group) { message in
            try SigningHelpers.sign(message, keys: signers, group: group).bytes
        }
        let node = try CosignatureNoteSigner(
            name: "node-1.quorum.test", keyPair: Ed25519KeyPair(), timestamp: 1_700_000_000)
        return (log, quorum, node, dir)
    }

    func note(_ log: MerkleLog, size: UInt64, root: [UInt8]? = nil, signers: [any NoteSigner]) throws -> SignedNote {
        let checkpoint = try Checkpoint(origin: origin, size: size, rootHash: root ?? (try log.root(at: size)))
        return try SignedNote(text: checkpoint.text, signers: signers)
    }

    @Test("A quorum-signed, node-cosigned checkpoint is stored, read back, and audited clean")
    func storesVerified() throws {
        let (log, quorum, node, dir) = try fixture(count: 40)
        defer { try? FileManager.default.removeItem(at: dir) }
        for size: UInt64 in [10, 40] {
            let stored = try log.storeCheckpoint(
                try note(log, size: size, signers: [quorum, node]), origin: origin,
                verifiers: [quorum.verifier, node.verifier])
            #expect(stored.size == size)
        }
        let latest = try #require(try log.latestCheckpoint())
        #expect(try latest.verifiedCheckpoint(with: [quorum.verifier]).size == 40)
        #expect(try log.checkpoint(at: 10) != nil)
        #expect(try log.checkpoint(at: 11) == nil)
        #expect(try log.auditStore(verifiers: [quorum.verifier, node.verifier]).isEmpty)
    }

    @Test("Wrong root, size beyond the log, wrong origin, or no verifying signature: refused, nothing written")
    func refuses() throws {
        let (log, quorum, node, dir) = try fixture(count: 20)
        defer { try? FileManager.default.removeItem(at: dir) }
        let verifiers = [quorum.verifier]
        #expect(throws: MerkleError.self) {
            try log.storeCheckpoint(
                try note(log, size: 20, root: try log.root(at: 19), signers: [quorum]), origin: origin,
                verifiers: verifiers)
        }
        let beyond = try SignedNote(
            text: try Checkpoint(origin: origin, size: 21, rootHash: log.root).text, signers: [quorum])
        #expect(throws: MerkleError.self) { try log.storeCheckpoint(beyond, origin: origin, verifiers: verifiers) }
        #expect(throws: MerkleError.self) {
            try log.storeCheckpoint(
                try note(log, size: 20, signers: [quorum]), origin: "other.origin", verifiers: verifiers)
        }
        // Only a signature by a key the log does not know: no verified signature.
        #expect(throws: NoteError.self) {
            try log.storeCheckpoint(try note(log, size: 20, signers: [node]), origin: origin, verifiers: verifiers)
        }
        #expect(try log.latestCheckpoint() == nil)
    }

    @Test("The store audit names a stored checkpoint that no longer matches the tree")
    func auditFindsMismatch() throws {
        let (log, quorum, _, dir) = try fixture(count: 16)
        defer { try? FileManager.default.removeItem(at: dir) }
        try log.storeCheckpoint(try note(log, size: 8, signers: [quorum]), origin: origin, verifiers: [quorum.verifier])
        // Overwrite the stored note with one claiming another root (as a corrupted store would).
        let forged = try note(log, size: 8, root: try log.root(at: 7), signers: [quorum])
        var batch = WriteBatch()
        batch.put(MerkleLog.checkpointsFamily, MerkleLog.entryKey(8), Array(forged.serialized.utf8))
        try log.store.write(batch)
        let problems = try log.auditStore()
        #expect(problems.map(\.location) == ["checkpoints size 8"])
        // The forged note carries a valid quorum signature: with verifiers the root mismatch is
        // still the one problem reported.
        let signed = try log.auditStore(verifiers: [quorum.verifier])
        #expect(signed.count == 1)
    }
}
