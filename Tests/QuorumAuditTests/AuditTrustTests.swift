import Foundation
import QuorumAudit
import QuorumCrypto
import QuorumLog
import QuorumTestKit
import Testing

/// What an auditor accepts from a checkpoint, given the group key and the node keys.
@Suite("auditor's checks", .serialized)
struct AuditTrustTests {
    static func withLog(_ body: (AuditedLog) throws -> Void) throws {
        let directory = try TestKit.temporaryDirectory("audit-trust")
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = try AuditedLog(directory: directory.path)
        try log.log.append([Array("a".utf8), Array("b".utf8), Array("c".utf8)])
        try body(log)
    }

    @Test("a checkpoint signed by the group and cosigned by nodes names the nodes whose cosignature verified")
    func cosigners() throws {
        try Self.withLog { log in
            let note = try log.signCheckpoint(cosigners: [1, 3], timestamp: 1_764_000_123)
            let keys = log.nodeKeys.mapValues(\.publicKey)
            let verified = try AuditTrust(groupKey: log.groupKey, nodeKeys: keys, origin: log.origin).verifyCheckpoint(
                note)
            #expect(verified.cosigners.map(\.nodeID) == [1, 3])
            #expect(verified.cosigners.allSatisfy { $0.timestamp == 1_764_000_123 })
            #expect(verified.groupKeyName == log.origin)
            #expect(verified.unknownSigners.isEmpty)
            // Without node keys the cosignatures are listed as unknown, never counted.
            let bare = try AuditTrust(groupKey: log.groupKey).verifyCheckpoint(note)
            #expect(bare.cosigners.isEmpty && bare.unknownSigners.count == 2)
        }
    }

    @Test("a tampered group signature, a tampered cosignature, no group line or another origin are refused")
    func refusals() throws {
        try Self.withLog { log in
            let note = try log.signCheckpoint()
            let keys = log.nodeKeys.mapValues(\.publicKey)
            let trust = AuditTrust(groupKey: log.groupKey, nodeKeys: keys)
            func flipped(_ line: Int) throws -> SignedNote {
                var signatures = note.signatures
                var bytes = signatures[line].signature
                bytes[bytes.count - 1] ^= 1
                signatures[line] = try NoteSignature(
                    name: signatures[line].name, keyID: signatures[line].keyID, signature: bytes)
                return try SignedNote(text: note.text, signatures: signatures)
            }
            #expect(
                throws: AuditFailure(
                    .invalidSignature,
                    "the signature by \(log.origin)+\(NoteKey.hex(note.signatures[0].keyID)) does not verify")
            ) {
                try trust.verifyCheckpoint(try flipped(0))
            }
            #expect { try trust.verifyCheckpoint(try flipped(2)) } throws: {
                ($0 as? AuditFailure)?.code == .invalidSignature
            }
            let cosignedOnly = try SignedNote(text: note.text, signatures: Array(note.signatures.dropFirst()))
            #expect { try trust.verifyCheckpoint(cosignedOnly) } throws: {
                ($0 as? AuditFailure)?.code == .noGroupSignature
            }
            let pinned = AuditTrust(groupKey: log.groupKey, origin: "other.example/log")
            #expect { try pinned.verifyCheckpoint(note) } throws: {
                ($0 as? AuditFailure)?.code == .malformedCheckpoint
            }
            // Another group's key: its line is not the group's.
            let (_, otherGroup) = try SigningHelpers.dealer(Ed25519Suite.self, k: 2, n: 3)
            let stranger = AuditTrust(groupKey: try otherGroup.verifyingKey.serialized())
            #expect { try stranger.verifyCheckpoint(note) } throws: { ($0 as? AuditFailure)?.code == .noGroupSignature }
        }
    }

    @Test("two signed checkpoints of one size with different roots are inconsistent")
    func sameSizeFork() throws {
        try Self.withLog { log in
            let trust = AuditTrust(groupKey: log.groupKey)
            let real = try trust.verifyCheckpoint(try log.signCheckpoint())
            let fork = try trust.verifyCheckpoint(try log.checkpointNote(size: 3, root: Array(repeating: 1, count: 32)))
            #expect { try trust.verifyConsistency(from: real, to: fork, proof: []) } throws: {
                ($0 as? AuditFailure)?.code == .consistency
            }
            try trust.verifyConsistency(from: real, to: real, proof: [])
        }
    }
}
