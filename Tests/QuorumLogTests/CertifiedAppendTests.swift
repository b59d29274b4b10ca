import Foundation
import QuorumCrypto
import QuorumTestKit
import Testing

@testable import QuorumLog

/// What a replicating node needs of the log: a batch appended together with the quorum
/// checkpoint that covers it and the node's own records, in one write or not at all; leaf-hash
/// lookups; the right edge as a value that predicts the root a batch makes.
@Suite("Certified appends and companion families")
struct CertifiedAppendTests {
    let origin = "quorum.test/log"

    struct Fixture {
        let log: MerkleLog
        let directory: URL
        let quorum: FROSTGroupNoteSigner
    }

    func fixture(companions: [String] = ["pending", "receipts"]) throws -> Fixture {
        let directory = try TestKit.temporaryDirectory("certified-append")
        let log = try MerkleLog(directory: directory.path, companionFamilies: companions)
        let (keys, group) = try SigningHelpers.dealer(Ed25519Suite.self, k: 2, n: 3)
        let signers = Array(keys.prefix(2))
        let quorum = try FROSTGroupNoteSigner(name: origin, group: group) { message in
            try SigningHelpers.sign(message, keys: signers, group: group).bytes
        }
        return Fixture(log: log, directory: directory, quorum: quorum)
    }

    func entries(_ range: Range<Int>) -> [[UInt8]] { range.map { Array("entry \($0)".utf8) } }

    /// The checkpoint the log would have with `entries` appended, signed by the quorum.
    func note(_ fixture: Fixture, appending entries: [[UInt8]], root: [UInt8]? = nil) throws -> SignedNote {
        var frontier = fixture.log.frontier
        for entry in entries { frontier.append(entry: entry) }
        let checkpoint = try Checkpoint(origin: origin, size: frontier.size, rootHash: root ?? frontier.root)
        return try SignedNote(text: checkpoint.text, signers: [fixture.quorum])
    }

    @Test("The frontier predicts the root a batch makes, and an empty frontier is the empty tree")
    func frontierPredicts() throws {
        let fixture = try fixture()
        defer { try? FileManager.default.removeItem(at: fixture.directory) }
        #expect(MerkleFrontier().root == RFC9162.emptyRoot)
        for (start, end) in [(0, 1), (1, 7), (7, 256), (256, 300)] {
            var frontier = fixture.log.frontier
            for entry in entries(start..<end) { frontier.append(entry: entry) }
            try fixture.log.append(entries(start..<end))
            #expect(frontier.size == fixture.log.size)
            #expect(frontier.root == fixture.log.root)
            #expect(frontier.root == (try fixture.log.root(at: UInt64(end))))
        }
    }

    @Test("A certified append writes entries, checkpoint and companion records together")
    func certifiedAppend() throws {
        let fixture = try fixture()
        defer { try? FileManager.default.removeItem(at: fixture.directory) }
        try fixture.log.writeCompanion(
            {
                var batch = WriteBatch()
                batch.put("pending", Array("a".utf8), Array("entry 0".utf8))
                return batch
            }())
        let batch = entries(0..<10)
        var extra = WriteBatch()
        extra.delete("pending", Array("a".utf8))
        extra.put("receipts", Array("req_1".utf8), UInt64(3).bigEndianBytes)
        let note = try note(fixture, appending: batch)
        let indices = try fixture.log.append(
            batch, certifiedBy: note, origin: origin, verifiers: [fixture.quorum.verifier], alongside: extra)
        #expect(indices == Array(0..<10))
        #expect(try fixture.log.latestCheckpoint() == note)
        #expect(try fixture.log.companionValue("pending", Array("a".utf8)) == nil)
        #expect(try fixture.log.companionValue("receipts", Array("req_1".utf8)) == UInt64(3).bigEndianBytes)
        #expect(try fixture.log.auditStore(verifiers: [fixture.quorum.verifier]).isEmpty)
        // Closed and reopened, everything is there; the closed handle refuses further work.
        fixture.log.close()
        #expect(throws: StorageError.self) { try fixture.log.companionValue("pending", Array("a".utf8)) }
        let reopened = try MerkleLog(directory: fixture.directory.path, companionFamilies: ["pending", "receipts"])
        #expect(reopened.size == 10)
        #expect(try reopened.latestCheckpoint() == note)
        // Read-only, the companion families may be left out.
        let auditor = try MerkleLog(directory: fixture.directory.path, readOnly: true)
        #expect(try auditor.auditStore(verifiers: [fixture.quorum.verifier]).isEmpty)
    }

    @Test(
        "A checkpoint that does not cover exactly the appended log refuses the whole write",
        arguments: ["wrong root", "short size", "duplicate entry", "wrong origin", "unsigned"])
    func refusesMismatch(_ case: String) throws {
        let fixture = try fixture()
        defer { try? FileManager.default.removeItem(at: fixture.directory) }
        try fixture.log.append(entries(0..<5))
        var batch = entries(5..<9)
        var note = try note(fixture, appending: batch)
        var origin = self.origin
        switch `case` {
        case "wrong root": note = try self.note(fixture, appending: batch, root: try fixture.log.root(at: 5))
        case "short size": batch = Array(batch.dropLast())
        case "duplicate entry": batch[3] = entries(0..<1)[0]
        case "wrong origin": origin = "other.test/log"
        default:
            note = try SignedNote(text: try Checkpoint.parse(note.text).text, signers: [])
            note = try SignedNote(
                text: note.text,
                signers: [try Ed25519NoteSigner(name: self.origin, keyPair: Ed25519KeyPair())])
        }
        var extra = WriteBatch()
        extra.put("receipts", Array("req".utf8), [1])
        #expect(throws: (any Error).self) {
            try fixture.log.append(
                batch, certifiedBy: note, origin: origin, verifiers: [fixture.quorum.verifier], alongside: extra)
        }
        #expect(fixture.log.size == 5)
        #expect(try fixture.log.latestCheckpoint() == nil)
        #expect(try fixture.log.companionValue("receipts", Array("req".utf8)) == nil)
        #expect(try fixture.log.auditStore().isEmpty)
    }

    @Test("Leaf hashes are found by their index; others are not")
    func lookups() throws {
        let fixture = try fixture()
        defer { try? FileManager.default.removeItem(at: fixture.directory) }
        try fixture.log.append(entries(0..<20))
        let asked = [entries(7..<8)[0], Array("absent".utf8), entries(0..<1)[0], entries(7..<8)[0]]
        #expect(try fixture.log.indices(ofLeafHashes: asked.map(RFC9162.leafHash)) == [7, nil, 0, 7])
        #expect(try fixture.log.index(ofLeafHash: RFC9162.leafHash(entries(19..<20)[0])) == 19)
    }

    @Test("Companion families refuse the log's own families, and writes outside them")
    func companionBoundaries() throws {
        let directory = try TestKit.temporaryDirectory("certified-append")
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(throws: MerkleError.self) { try MerkleLog(directory: directory.path, companionFamilies: ["entries"]) }
        let log = try MerkleLog(directory: directory.path, companionFamilies: ["pending"])
        var batch = WriteBatch()
        batch.put("dedup", [UInt8](repeating: 0, count: 32), UInt64(0).bigEndianBytes)
        #expect(throws: MerkleError.self) { try log.writeCompanion(batch) }
        #expect(throws: MerkleError.self) { try log.companionValue("meta", Array("size".utf8)) }
    }
}
