import Foundation
import QuorumTestKit
import Testing

@testable import QuorumLog

/// Logs large enough that proofs use the in-memory upper levels (≥ 2¹⁰ leaves), checked against a
/// tree computed straight from RFC 9162's definition, before and after reopening.
@Suite("Upper-level hash cache", .serialized)
struct UpperLevelCacheTests {
    /// MTH(D[start:end]) by the RFC's recursion over the leaf hashes.
    func reference(_ leaves: ArraySlice<[UInt8]>) -> [UInt8] {
        if leaves.isEmpty { return RFC9162.emptyRoot }
        if leaves.count == 1 { return leaves.first! }
        var k = 1
        while k * 2 < leaves.count { k *= 2 }
        let start = leaves.startIndex
        return RFC9162.nodeHash(reference(leaves[start..<(start + k)]), reference(leaves[(start + k)...]))
    }

    @Test("Roots and proofs across cached levels match the reference tree, also after reopening")
    func cachedLevelsAgree() throws {
        let dir = try TestKit.temporaryDirectory("upper-cache")
        defer { try? FileManager.default.removeItem(at: dir) }
        let total = 5_000
        let entries = (0..<total).map { Array("cache entry \($0)".utf8) }
        let leaves = entries.map(RFC9162.leafHash)
        do {
            let log = try MerkleLog(directory: dir.path)
            var offset = 0
            for batch in [1, 1023, 1, 999, 2000, 976] {  // crosses 1024, 2048 and 4096 mid-batch
                try log.append(Array(entries[offset..<(offset + batch)]))
                offset += batch
            }
            try check(log, leaves)
        }
        let reopened = try MerkleLog(directory: dir.path)
        #expect(reopened.size == UInt64(total))
        try check(reopened, leaves)
        #expect(try reopened.auditStore().isEmpty)
    }

    func check(_ log: MerkleLog, _ leaves: [[UInt8]]) throws {
        let size = UInt64(leaves.count)
        #expect(log.root == reference(leaves[...]))
        for historical: UInt64 in [1023, 1024, 1025, 2048, 3333, 4096, size] {
            let root = reference(leaves[0..<Int(historical)])
            #expect(try log.root(at: historical) == root)
            for index: UInt64 in [0, 511, 1023, 1024, historical - 1] where index < historical {
                let proof = try log.inclusionProof(index: index, size: historical)
                try RFC9162.verifyInclusion(
                    leafHash: leaves[Int(index)], index: index, size: historical, proof: proof, root: root)
            }
            for from: UInt64 in [1, 1024, 1500, historical] where from <= historical {
                let proof = try log.consistencyProof(from: from, to: historical)
                try RFC9162.verifyConsistency(
                    size1: from, size2: historical, proof: proof, root1: reference(leaves[0..<Int(from)]), root2: root)
            }
        }
    }
}
