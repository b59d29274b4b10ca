import Foundation
import QuorumCrypto
import QuorumTestKit
import Testing

@testable import QuorumLog

/// The log on a real RocksDB in a temporary directory: roots, proofs, durability of batches,
/// deduplication and the entry size limit.
@Suite("Merkle log")
struct MerkleLogTests {
    /// The leaves of the RFC 6962 reference tree.
    static let referenceLeaves: [[UInt8]] = [
        "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
    ].map { Hex.decode($0)! }

    /// Its roots at sizes 1…8 (hex); the one at 8 is base64 XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=.
    static let referenceRoots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ].map { Hex.decode($0)! }

    @Test("roots of the RFC 6962 reference tree at every size 1…8")
    func referenceRoots() throws {
        try withLog { log throws in
            #expect(log.root == RFC9162.emptyRoot)
            for (i, leaf) in Self.referenceLeaves.enumerated() {
                #expect(try log.append([leaf]) == [UInt64(i)])
                #expect(log.root == Self.referenceRoots[i], "size \(i + 1)")
            }
            #expect(log.root.base64 == "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=")
            for size in 1...8 {
                #expect(try log.root(at: UInt64(size)) == Self.referenceRoots[size - 1], "historical size \(size)")
            }
            #expect(try log.root(at: 0) == RFC9162.emptyRoot)
        }
    }

    @Test("every inclusion and consistency proof up to 70 entries verifies, and matches a tree built in memory")
    func proofsVerify() throws {
        let entries = (0..<70).map { Array("entry \($0)".utf8) }
        try withLog { log throws in
            // Uneven batches, so the right edge is carried across appends.
            var next = 0
            for width in [1, 2, 3, 5, 8, 13, 21, 17] {
                let indices = try log.append(Array(entries[next..<next + width]))
                #expect(indices == (next..<next + width).map(UInt64.init))
                next += width
            }
            #expect(log.size == 70)
            let leaves = entries.map(RFC9162.leafHash)
            var roots: [[UInt8]] = [RFC9162.emptyRoot]
            for size in 1...70 {
                let root = try log.root(at: UInt64(size))
                #expect(root == referenceHash(leaves[0..<size]), "root at \(size)")
                roots.append(root)
            }
            for size in 1...70 {
                for index in 0..<size {
                    let proof = try log.inclusionProof(index: UInt64(index), size: UInt64(size))
                    #expect(try log.leafHash(at: UInt64(index)) == leaves[index])
                    #expect(throws: Never.self, "inclusion \(index) in \(size)") {
                        try RFC9162.verifyInclusion(
                            leafHash: leaves[index], index: UInt64(index), size: UInt64(size), proof: proof,
                            root: roots[size])
                    }
                }
            }
            for n in 0...70 {
                for m in 0...n {
                    let proof = try log.consistencyProof(from: UInt64(m), to: UInt64(n))
                    #expect(throws: Never.self, "consistency \(m) → \(n)") {
                        try RFC9162.verifyConsistency(
                            size1: UInt64(m), size2: UInt64(n), proof: proof, root1: roots[m], root2: roots[n])
                    }
                }
            }
        }
    }

    @Test("reopening gives the same size, roots, entries and further appends")
    func reopen() throws {
        let directory = try TestKit.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let root: [UInt8]
        do {
            let log = try MerkleLog(directory: directory.path)
            try log.append(Array(Self.referenceLeaves[0..<5]))
            root = log.root
        }
        do {
            let log = try MerkleLog(directory: directory.path)
            #expect(log.size == 5)
            #expect(log.root == root)
            #expect(try log.entry(at: 3) == Self.referenceLeaves[3])
            try log.append(Array(Self.referenceLeaves[5...]))
            #expect(log.root == Self.referenceRoots[7])
        }
        let log = try MerkleLog(directory: directory.path)
        #expect(log.size == 8)
        #expect(log.root == Self.referenceRoots[7])
    }

    @Test("an entry already present keeps its index, also within one batch")
    func deduplication() throws {
        try withLog { log throws in
            let a = Array("a".utf8)
            let b = Array("b".utf8)
            #expect(try log.append([a, b, a]) == [0, 1, 0])
            #expect(try log.append([b, Array("c".utf8), a]) == [1, 2, 0])
            #expect(try log.append([b]) == [1])
            #expect(log.size == 3)
        }
    }

    @Test("an oversize entry is refused, naming its position, and nothing of the batch is written")
    func oversizeEntry() throws {
        let directory = try TestKit.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        do {
            let log = try MerkleLog(directory: directory.path)
            let big = [UInt8](repeating: 7, count: MerkleLog.maximumEntryLength + 1)
            let largest = [UInt8](repeating: 7, count: MerkleLog.maximumEntryLength)
            let error = #expect(throws: MerkleError.self) { try log.append([[1], largest, big]) }
            #expect(error?.code == .entryTooLarge)
            #expect(error?.reason.contains("entry 2") == true)
            #expect(log.size == 0)
            #expect(try log.append([largest]) == [0])
        }
        let log = try MerkleLog(directory: directory.path)
        #expect(log.size == 1)
        #expect(try log.entry(at: 0).count == MerkleLog.maximumEntryLength)
    }

    @Test("a batch is all in: reopening shows the size after the batch, with every entry")
    func batchIsAtomic() throws {
        let directory = try TestKit.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let entries = (0..<300).map { Array("batch entry \($0)".utf8) }
        do {
            let log = try MerkleLog(directory: directory.path)
            try log.append(entries)
        }
        let log = try MerkleLog(directory: directory.path)
        #expect(log.size == 300)
        #expect(try log.entry(at: 299) == entries[299])
        #expect(log.root == referenceHash(entries.map(RFC9162.leafHash)[...]))
    }

    @Test("bad arguments are refused with a reason")
    func badArguments() throws {
        try withLog { log throws in
            try log.append([[1], [2], [3]])
            for attempt in [
                { _ = try log.inclusionProof(index: 3, size: 3) },
                { _ = try log.inclusionProof(index: 0, size: 4) },
                { _ = try log.consistencyProof(from: 3, to: 2) },
                { _ = try log.consistencyProof(from: 1, to: 4) },
                { _ = try log.root(at: 4) },
                { _ = try log.entry(at: 3) },
                { _ = try log.leafHash(at: 3) },
            ] as [() throws -> Void] {
                let error = #expect(throws: MerkleError.self) { try attempt() }
                #expect(error?.code == .invalidArgument)
            }
        }
    }

    @Test("a directory that is not a database is refused with RocksDB's message and the path")
    func unopenable() throws {
        let directory = try TestKit.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("not-a-directory")
        try Data("x".utf8).write(to: file)
        let error = #expect(throws: StorageError.self) { _ = try MerkleLog(directory: file.path) }
        #expect(error?.path == file.path)
        #expect(error?.message.isEmpty == false)
    }

    @Test(
        "tlog-tiles paths: level, three-digit groups with x prefixes, .p/W for partial tiles",
        arguments: [
            (0, 0, 256, "tile/0/000"), (0, 1_234_067, 256, "tile/0/x001/x234/067"),
            (0, 1_234_067, 1, "tile/0/x001/x234/067.p/1"), (3, 5, 255, "tile/3/005.p/255"),
            (1, 999, 256, "tile/1/999"), (2, 1000, 256, "tile/2/x001/000"),
        ] as [(Int, UInt64, Int, String)])
    func tilePaths(level: Int, index: UInt64, width: Int, path: String) {
        #expect(TlogTiles.hashTilePath(level: level, index: index, width: width) == path)
        let entries = "tile/entries/" + path.split(separator: "/", maxSplits: 2)[2]
        #expect(TlogTiles.entryBundlePath(index: index, width: width) == entries)
    }

    @Test("hash tiles and entry bundles are cut from the stored tree, full and partial")
    func tiles() throws {
        let entries = (0..<600).map { [UInt8](repeating: UInt8($0 % 251), count: $0 % 7) + Array("\($0)".utf8) }
        let leaves = entries.map(RFC9162.leafHash)
        try withLog { log throws in
            try log.append(entries)
            #expect(try log.hashTile(level: 0, index: 0) == Array(leaves[0..<256].joined()))
            #expect(try log.hashTile(level: 0, index: 1, width: 3) == Array(leaves[256..<259].joined()))
            #expect(try log.hashTile(level: 0, index: 2, width: 88) == Array(leaves[512..<600].joined()))
            // Level 1 holds the roots of the full level-0 tiles: subtrees of 256 leaves.
            let level1 = referenceHash(leaves[0..<256]) + referenceHash(leaves[256..<512])
            #expect(try log.hashTile(level: 1, index: 0, width: 2) == level1)

            var bundle: [UInt8] = []
            for entry in entries[512..<600] { bundle += [UInt8(entry.count >> 8), UInt8(entry.count & 0xff)] + entry }
            #expect(try log.entryBundle(index: 2, width: 88) == bundle)
            #expect(try log.entryBundle(index: 0).count == entries[0..<256].reduce(0) { $0 + 2 + $1.count })

            for attempt in [
                { _ = try log.hashTile(level: 0, index: 2, width: 89) },
                { _ = try log.hashTile(level: 0, index: 2) },
                { _ = try log.hashTile(level: 1, index: 0, width: 3) },
                { _ = try log.hashTile(level: 0, index: 0, width: 0) },
                { _ = try log.entryBundle(index: 3, width: 1) },
                { _ = try log.entryBundle(index: 0, width: 257) },
            ] as [() throws -> Void] {
                let error = #expect(throws: MerkleError.self) { try attempt() }
                #expect(error?.code == .invalidArgument)
            }
        }
    }

    @Test("an entry bundle length-prefixes each entry with a big-endian uint16")
    func entryBundleEncoding() {
        let long = [UInt8](repeating: 0xab, count: 0x0102)
        #expect(TlogTiles.entryBundle([[], [7], long]) == [0, 0, 0, 1, 7, 0x01, 0x02] + long)
    }

    @Test("a stored hash of the wrong length is reported as corruption, with the path and the node")
    func corruptHash() throws {
        let directory = try TestKit.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        do {
            let log = try MerkleLog(directory: directory.path)
            try log.append([[1], [2], [3]])
            var batch = WriteBatch()
            batch.put(MerkleLog.hashesFamily, MerkleLog.nodeKey(level: 1, index: 0), [0xde, 0xad])
            try log.store.write(batch)
        }
        let error = #expect(throws: MerkleError.self) { _ = try MerkleLog(directory: directory.path) }
        #expect(error?.code == .corruptStore)
        #expect(error?.reason.contains(directory.path) == true)
        #expect(error?.reason.contains("level 1 index 0") == true)
    }

    @Test("concurrent appends and readers see a consistent log", .timeLimit(.minutes(1)))
    func concurrentAppends() async throws {
        let directory = try TestKit.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = try MerkleLog(directory: directory.path)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    for batch in 0..<10 {
                        try log.append((0..<5).map { Array("w\(writer) b\(batch) e\($0)".utf8) })
                    }
                }
            }
            group.addTask {
                for _ in 0..<50 {
                    let size = log.size
                    guard size > 0 else { continue }
                    let root = try log.root(at: size)
                    let proof = try log.inclusionProof(index: size - 1, size: size)
                    try RFC9162.verifyInclusion(
                        leafHash: try log.leafHash(at: size - 1), index: size - 1, size: size, proof: proof,
                        root: root)
                }
            }
            try await group.waitForAll()
        }
        #expect(log.size == 200)
        #expect(log.root == (try log.root(at: 200)))
    }

    @Test("the store audit finds nothing in a sound log and names the record of every flipped byte")
    func storeAudit() throws {
        try withLog { log throws in
            let entries = (0..<37).map { Array("audited \($0)".utf8) }
            try log.append(Array(entries[0..<20]))
            try log.append(Array(entries[20...]))
            #expect(try log.auditStore() == [])

            var hash = try #require(try log.store.get(MerkleLog.hashesFamily, MerkleLog.nodeKey(level: 2, index: 3)))
            hash[7] ^= 0x10
            var batch = WriteBatch()
            batch.put(MerkleLog.hashesFamily, MerkleLog.nodeKey(level: 2, index: 3), hash)
            try log.store.write(batch)
            #expect(try log.auditStore().map(\.location) == ["hashes level 2 index 3"])

            // Put the hash back, then flip a bit of an entry instead.
            hash[7] ^= 0x10
            batch = WriteBatch()
            batch.put(MerkleLog.hashesFamily, MerkleLog.nodeKey(level: 2, index: 3), hash)
            var entry = entries[33]
            entry[0] ^= 0x01
            batch.put(MerkleLog.entriesFamily, MerkleLog.entryKey(33), entry)
            try log.store.write(batch)
            let problems = try log.auditStore()
            // Entry 33 lies under the complete subtrees 32…33 and 32…35; 32…39 is not complete at size 37.
            #expect(problems.map(\.location).contains("hashes level 0 index 33"))
            #expect(problems.map(\.location).contains("hashes level 1 index 16"))
            #expect(problems.map(\.location).contains("hashes level 2 index 8"))
            #expect(problems.map(\.location).contains("hashes level 3 index 4") == false)
            #expect(problems.contains { $0.location.hasPrefix("dedup") && $0.reason.contains("entry 33") })
        }
    }

    private func withLog(_ body: (MerkleLog) throws -> Void) throws {
        let directory = try TestKit.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try body(try MerkleLog(directory: directory.path))
    }
}

/// MTH of RFC 9162 §2.1.1, straight from the definition, over leaf hashes.
private func referenceHash(_ leaves: ArraySlice<[UInt8]>) -> [UInt8] {
    switch leaves.count {
    case 0: return RFC9162.emptyRoot
    case 1: return leaves.first!
    default:
        var k = 1
        while k * 2 < leaves.count { k *= 2 }
        let middle = leaves.startIndex + k
        return RFC9162.nodeHash(referenceHash(leaves[..<middle]), referenceHash(leaves[middle...]))
    }
}

extension Array where Element == UInt8 {
    fileprivate var base64: String { Data(self).base64EncodedString() }
}

/// The RocksDB wrapper on its own: column families, atomic batches, scans.
extension MerkleLogTests {
    @Suite("RocksDB store")
    struct RocksDBStore {
        @Test("puts across column families land together; get, range and prefix scans read them in key order")
        func batchesAndScans() throws {
            let directory = try TestKit.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            do {
                let db = try RocksDB(path: directory.path, columnFamilies: ["a", "b"])
                var batch = WriteBatch()
                for key in [[2], [1, 5], [1, 0], [0]] as [[UInt8]] { batch.put("a", key, key + [9]) }
                batch.put("b", [1], [42])
                try db.write(batch)
                #expect(try db.get("a", [1, 5]) == [1, 5, 9])
                #expect(try db.get("a", [3]) == nil)
                #expect(try db.get("b", [1]) == [42])
                #expect(try db.get("b", [2]) == nil)
            }
            let db = try RocksDB(path: directory.path, columnFamilies: ["a", "b", "c"])
            var keys: [[UInt8]] = []
            try db.scan("a", from: [1], until: [2]) { key, _ in
                keys.append(key)
                return true
            }
            #expect(keys == [[1, 0], [1, 5]])
            keys = []
            try db.scan("a", prefix: [1]) { key, value in
                keys.append(key)
                #expect(value == key + [9])
                return false
            }
            #expect(keys == [[1, 0]])
            #expect(try db.get("b", [1]) == [42])
            let error = #expect(throws: StorageError.self) { _ = try db.get("unknown", [1]) }
            #expect(error?.message.contains("unknown") == true)
        }
    }
}
