import Foundation
import QuorumCrypto
import QuorumTestKit
import Testing

@testable import QuorumLog

/// The tiled storage layout (docs/audit-log.md, "Storage"): one `tiles` record per complete 8-level
/// tile, per-node `hashes` records only for the right edge, the `meta` size and format records, an
/// empty `default` family. Each damage case writes the bad record straight into RocksDB and expects
/// ``MerkleLog/auditStore(verifiers:)`` to name it; each refused store is refused when opened.
@Suite("Storage layout: tiles, right-edge hashes and meta records")
struct StoreLayoutTests {
    /// A log of `count` entries appended in odd batches (none aligned on a tile), in a temporary
    /// directory removed afterwards. `body` gets the open log, its entries and its directory.
    func withLog(
        count: Int, _ body: (_ log: MerkleLog, _ entries: [[UInt8]], _ directory: URL) throws -> Void
    ) throws {
        let directory = try TestKit.temporaryDirectory("store-layout")
        defer { try? FileManager.default.removeItem(at: directory) }
        let entries = (0..<count).map { Array("layout entry \($0)".utf8) }
        let log = try MerkleLog(directory: directory.path)
        var next = 0
        for width in [1, 3, 255, 41, 101, 99, 13] where next < count {
            let end = min(next + width, count)
            try log.append(Array(entries[next..<end]))
            next = end
        }
        if next < count { try log.append(Array(entries[next...])) }
        #expect(log.size == UInt64(count))
        #expect(try log.auditStore() == [], "the undamaged log")
        try body(log, entries, directory)
    }

    /// Writes `edit`'s records behind the log's back, as damage on disk would.
    func damage(_ log: MerkleLog, _ edit: (inout WriteBatch) throws -> Void) throws {
        var batch = WriteBatch()
        try edit(&batch)
        try log.store.write(batch)
    }

    // MARK: Tile records

    struct TileFlip: Sendable, CustomTestStringConvertible {
        let tile: UInt64
        /// Which of the tile's 510 hashes gets a flipped byte, and the node it is.
        let position: Int
        let level: Int
        let index: UInt64
        var testDescription: String { "tile 0/\(tile) hash \(position) (level \(level) index \(index))" }
    }

    @Test(
        "a flipped byte in a tile record is reported at that tile, with the hash and its node",
        arguments: [
            TileFlip(tile: 0, position: 0, level: 0, index: 0),
            TileFlip(tile: 1, position: 255, level: 0, index: 511),
            TileFlip(tile: 1, position: 300, level: 1, index: 172),  // the example in docs/audit-log.md
            TileFlip(tile: 0, position: 508, level: 7, index: 0),
            TileFlip(tile: 1, position: 509, level: 7, index: 3),
        ])
    func flippedTileByte(_ flip: TileFlip) throws {
        try withLog(count: 600) { log, _, _ in
            let key = MerkleLog.tileKey(level: 0, index: flip.tile)
            var record = try #require(try log.store.get(MerkleLog.tilesFamily, key))
            record[flip.position * RFC9162.hashLength + 17] ^= 0x04
            try damage(log) { $0.put(MerkleLog.tilesFamily, key, record) }
            #expect(
                try log.auditStore() == [
                    StoreProblem(
                        location: "tiles level 0 index \(flip.tile)",
                        reason: "hash \(flip.position) (level \(flip.level) index \(flip.index)) does not match "
                            + "the hash recomputed from the entries")
                ])
        }
    }

    @Test("a tile record of the wrong length is reported at that tile, with its length")
    func truncatedTile() throws {
        try withLog(count: 300) { log, _, _ in
            let key = MerkleLog.tileKey(level: 0, index: 0)
            let record = try #require(try log.store.get(MerkleLog.tilesFamily, key))
            #expect(record.count == 510 * 32)
            try damage(log) { $0.put(MerkleLog.tilesFamily, key, Array(record.dropLast())) }
            #expect(
                try log.auditStore() == [
                    StoreProblem(location: "tiles level 0 index 0", reason: "16319 bytes, not 16320")
                ]
            )
        }
    }

    // MARK: Records that must not be there

    struct StrayHash: Sendable, CustomTestStringConvertible {
        let level: Int
        let index: UInt64
        let reason: String
        var testDescription: String { "hashes level \(level) index \(index): \(reason)" }
    }

    @Test(
        "a per-node hash left behind inside a complete tile, or beyond the size, is reported (size 300)",
        arguments: [
            StrayHash(level: 0, index: 5, reason: "left behind in tile 0/0, which is complete"),
            StrayHash(level: 0, index: 255, reason: "left behind in tile 0/0, which is complete"),
            StrayHash(level: 3, index: 31, reason: "left behind in tile 0/0, which is complete"),
            StrayHash(level: 7, index: 0, reason: "left behind in tile 0/0, which is complete"),
            StrayHash(level: 0, index: 300, reason: "beyond the tree of size 300"),
            StrayHash(level: 2, index: 75, reason: "beyond the tree of size 300"),
            StrayHash(level: 9, index: 0, reason: "beyond the tree of size 300"),
        ])
    func strayHash(_ stray: StrayHash) throws {
        try withLog(count: 300) { log, entries, _ in
            // What a writer that forgot the delete, or ran ahead, would leave: for a node of the
            // tree, its true hash, so that only the record's presence is wrong.
            let first = Int(stray.index) << stray.level
            let value =
                first < entries.count
                ? UpperLevelCacheTests().reference(
                    entries[first..<min(first + 1 << stray.level, entries.count)].map(RFC9162.leafHash)[...])
                : RFC9162.leafHash(Array("not appended yet".utf8))
            try damage(log) {
                $0.put(MerkleLog.hashesFamily, MerkleLog.nodeKey(level: stray.level, index: stray.index), value)
            }
            // Size 300 keeps 44 + 22 + 11 + 5 + 2 + 1 per-node hashes at levels 0…5 and one at level 8.
            #expect(
                try log.auditStore() == [
                    StoreProblem(location: "hashes level \(stray.level) index \(stray.index)", reason: stray.reason),
                    StoreProblem(location: "hashes", reason: "87 records where a log of size 300 has 86"),
                ])
        }
    }

    @Test("a tile record for a tile that is not complete is reported, with the tile count")
    func incompleteTile() throws {
        try withLog(count: 300) { log, _, _ in
            let record = try #require(try log.store.get(MerkleLog.tilesFamily, MerkleLog.tileKey(level: 0, index: 0)))
            try damage(log) { $0.put(MerkleLog.tilesFamily, MerkleLog.tileKey(level: 0, index: 1), record) }
            #expect(
                try log.auditStore() == [
                    StoreProblem(location: "tiles level 0 index 1", reason: "not complete in a tree of size 300"),
                    StoreProblem(location: "tiles", reason: "2 records where a log of size 300 has 1"),
                ])
        }
    }

    // MARK: Metadata

    struct MetaDamage: Sendable, CustomTestStringConvertible {
        let desc: String
        let family: String
        let key: [UInt8]
        /// nil deletes the record.
        let value: [UInt8]?
        let location: String
        let reason: String
        var testDescription: String { desc }
    }

    @Test(
        "damaged metadata is reported: meta holds only size and format, and default stays empty",
        arguments: [
            MetaDamage(
                desc: "an extra meta key", family: "meta", key: Array("extra".utf8), value: [1],
                location: "meta key 6578747261", reason: "unexpected record"),
            MetaDamage(
                desc: "no format record", family: "meta", key: Array("format".utf8), value: nil,
                location: "meta format", reason: "missing in a log of 300 entries"),
            MetaDamage(
                desc: "another format record", family: "meta", key: Array("format".utf8),
                value: Array("quorum-log tiles 2".utf8),
                location: "meta format", reason: "\"quorum-log tiles 2\", not \"quorum-log tiles 1\""),
            MetaDamage(
                desc: "a size record that is not the open log's", family: "meta", key: Array("size".utf8),
                value: UInt64(299).bigEndianBytes,
                location: "meta size", reason: "says 299 entries, the open log has 300"),
            MetaDamage(
                desc: "a size record of 7 bytes", family: "meta", key: Array("size".utf8),
                value: [0, 0, 0, 0, 0, 1, 44],
                location: "meta size", reason: "7 bytes, not 8"),
            MetaDamage(
                desc: "no size record", family: "meta", key: Array("size".utf8), value: nil,
                location: "meta size", reason: "missing in a log of 300 entries"),
            MetaDamage(
                desc: "a record in the default family", family: "default", key: [0x78], value: [],
                location: "default key 78", reason: "unexpected record (the log never writes this family)"),
        ])
    func metadata(_ damaged: MetaDamage) throws {
        try withLog(count: 300) { log, _, _ in
            #expect(try log.store.get("meta", Array("format".utf8)) == Array("quorum-log tiles 1".utf8))
            try damage(log) { batch in
                if let value = damaged.value {
                    batch.put(damaged.family, damaged.key, value)
                } else {
                    batch.delete(damaged.family, damaged.key)
                }
            }
            #expect(try log.auditStore() == [StoreProblem(location: damaged.location, reason: damaged.reason)])
        }
    }

    // MARK: Refused stores

    /// The column families of the layout before tiles (commit 605f8a3^), which that version opens,
    /// all of them and no others.
    static let oldFamilies = ["entries", "hashes", "checkpoints", "dedup", "meta"]

    @Test("a store in the old layout (every node per record, no format record) is refused, naming the directory")
    func oldLayoutRefused() throws {
        let directory = try TestKit.temporaryDirectory("store-layout")
        defer { try? FileManager.default.removeItem(at: directory) }
        // The layout before tiles: no `tiles` family, a `hashes` record for every complete subtree,
        // and only the size in `meta`.
        let entries = (0..<3).map { Array("old \($0)".utf8) }
        let leaves = entries.map(RFC9162.leafHash)
        let pair = RFC9162.nodeHash(leaves[0], leaves[1])
        do {
            let old = try RocksDB(path: directory.path, columnFamilies: Self.oldFamilies)
            var batch = WriteBatch()
            for (index, entry) in entries.enumerated() {
                batch.put("entries", MerkleLog.entryKey(UInt64(index)), entry)
                batch.put("hashes", MerkleLog.nodeKey(level: 0, index: UInt64(index)), leaves[index])
                batch.put("dedup", leaves[index], UInt64(index).bigEndianBytes)
            }
            batch.put("hashes", MerkleLog.nodeKey(level: 1, index: 0), pair)
            batch.put("meta", Array("size".utf8), UInt64(3).bigEndianBytes)
            try old.write(batch)
        }
        let expected = "\(directory.path): a log of 3 entries without a storage format record (an older layout)"

        let files = try storeFiles(directory)
        // Read-only (`quorumctl log verify`, `info`, `prove` open so) and read-write, each twice:
        // the first refusal must leave the store as it was for the second.
        for readOnly in [true, false, true, false] {
            let error = #expect(throws: MerkleError.self, "readOnly: \(readOnly)") {
                _ = try MerkleLog(directory: directory.path, readOnly: readOnly)
            }
            #expect(error?.code == .corruptStore)
            #expect(error?.reason == expected)
        }
        #expect(RocksDB.columnFamilies(at: directory.path).map(Set.init) == Set(["default"] + Self.oldFamilies))
        #expect(try storeFiles(directory) == files, "no file of the store was added, removed or changed")

        // The refusal lost no data: every old record is still there, and no format record was added.
        do {
            let old = try RocksDB(path: directory.path, columnFamilies: Self.oldFamilies, readOnly: true)
            #expect(try old.get("meta", Array("size".utf8)) == UInt64(3).bigEndianBytes)
            #expect(try old.get("meta", Array("format".utf8)) == nil)
            #expect(try old.get("hashes", MerkleLog.nodeKey(level: 1, index: 0)) == pair)
        }
        // The version that wrote the store can still open it (rolling back after the refusal).
        _ = try RocksDB(path: directory.path, columnFamilies: Self.oldFamilies)
    }

    /// Each file in `directory` with its size and modification time.
    func storeFiles(_ directory: URL) throws -> [String: String] {
        var files: [String: String] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) {
            let file = directory.appendingPathComponent(name).path
            let attributes = try FileManager.default.attributesOfItem(atPath: file)
            files[name] = "\(attributes[.size] ?? "?") bytes, modified \(attributes[.modificationDate] ?? "?")"
        }
        return files
    }

    struct MissingFamilies: Sendable, CustomTestStringConvertible {
        let desc: String
        let families: [String]
        let meta: [(key: String, value: [UInt8])]
        /// The reason after "<directory>: ".
        let reason: String
        var testDescription: String { desc }
    }

    @Test(
        "a store with meta but without a family of the layout is refused unchanged, naming what is missing",
        arguments: [
            MissingFamilies(
                desc: "an empty log in the old layout", families: oldFamilies, meta: [],
                reason: "an empty log with no column family \"tiles\" (an older layout)"),
            MissingFamilies(
                desc: "a current format record without tiles and dedup",
                families: ["entries", "hashes", "checkpoints", "meta"],
                meta: [("size", UInt64(0).bigEndianBytes), ("format", Array("quorum-log tiles 1".utf8))],
                reason: "a log of 0 entries in storage format \"quorum-log tiles 1\" "
                    + "with no column families \"tiles\", \"dedup\""),
            MissingFamilies(
                desc: "another format record without tiles", families: oldFamilies,
                meta: [("format", Array("quorum-log tiles 2".utf8))],
                reason: "storage format \"quorum-log tiles 2\" is not \"quorum-log tiles 1\""),
        ])
    func missingFamiliesRefused(_ store: MissingFamilies) throws {
        let directory = try TestKit.temporaryDirectory("store-layout")
        defer { try? FileManager.default.removeItem(at: directory) }
        do {
            let old = try RocksDB(path: directory.path, columnFamilies: store.families)
            var batch = WriteBatch()
            for record in store.meta { batch.put("meta", Array(record.key.utf8), record.value) }
            try old.write(batch)
        }
        for readOnly in [true, false] {
            let error = #expect(throws: MerkleError.self, "readOnly: \(readOnly)") {
                _ = try MerkleLog(directory: directory.path, readOnly: readOnly)
            }
            #expect(error?.code == .corruptStore)
            #expect(error?.reason == "\(directory.path): \(store.reason)")
        }
        #expect(RocksDB.columnFamilies(at: directory.path).map(Set.init) == Set(["default"] + store.families))
    }

    @Test("a directory without a database gets a new log, and read-only is refused there without creating one")
    func newDirectory() throws {
        let directory = try TestKit.temporaryDirectory("store-layout")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("log").path
        #expect(RocksDB.columnFamilies(at: path) == nil)
        #expect(throws: StorageError.self) { _ = try MerkleLog(directory: path, readOnly: true) }
        #expect(RocksDB.columnFamilies(at: path) == nil)
        _ = try MerkleLog(directory: path)
        #expect(RocksDB.columnFamilies(at: path).map(Set.init) == Set(["default"] + MerkleLog.families))
        _ = try MerkleLog(directory: path, readOnly: true)
    }

    @Test("a store whose format record names another layout is refused, naming the directory and both formats")
    func wrongFormatRefused() throws {
        let directory = try TestKit.temporaryDirectory("store-layout")
        defer { try? FileManager.default.removeItem(at: directory) }
        do {
            let log = try MerkleLog(directory: directory.path)
            try log.append([[1], [2], [3]])
            try damage(log) { $0.put(MerkleLog.metaFamily, MerkleLog.formatKey, Array("quorum-log tiles 2".utf8)) }
        }
        for readOnly in [true, false] {
            let error = #expect(throws: MerkleError.self, "readOnly: \(readOnly)") {
                _ = try MerkleLog(directory: directory.path, readOnly: readOnly)
            }
            #expect(error?.code == .corruptStore)
            #expect(
                error?.reason
                    == "\(directory.path): storage format \"quorum-log tiles 2\" is not \"quorum-log tiles 1\"")
        }
    }

    // MARK: Batches not aligned on tiles

    @Test("odd batches to sizes 1, 300 and 513: the layout, every sampled proof and the audit, also after reopening")
    func unalignedBatches() throws {
        let directory = try TestKit.temporaryDirectory("store-layout")
        defer { try? FileManager.default.removeItem(at: directory) }
        let entries = (0..<513).map { Array("unaligned \($0)".utf8) }
        let leaves = entries.map(RFC9162.leafHash)
        /// Sizes around the tile boundaries (256, 512) and the batch boundaries.
        let sampledSizes: [UInt64] = [
            1, 2, 3, 4, 5, 255, 256, 257, 258, 259, 299, 300, 301, 400, 401, 500, 511, 512, 513,
        ]
        let roots = Dictionary(
            uniqueKeysWithValues: sampledSizes.map { ($0, UpperLevelCacheTests().reference(leaves[0..<Int($0)])) })
        func root(_ size: UInt64) -> [UInt8] { roots[size]! }

        func check(_ log: MerkleLog, _ what: String) throws {
            let size = log.size
            #expect(log.root == root(size), "\(what)")
            #expect(try log.auditStore() == [], "\(what)")
            try checkLayout(log, size: size, what)
            let sizes = sampledSizes.filter { $0 <= size }
            for n in sizes {
                #expect(try log.root(at: n) == root(n), "\(what)")
                for index: UInt64 in [0, 1, 2, 127, 128, 254, 255, 256, 257, 299, 300, 511, 512, n / 2, n - 1]
                where index < n {
                    let proof = try log.inclusionProof(index: index, size: n)
                    do {
                        try RFC9162.verifyInclusion(
                            leafHash: leaves[Int(index)], index: index, size: n, proof: proof, root: root(n))
                    } catch {
                        Issue.record(error, "\(what): inclusion of \(index) in \(n)")
                    }
                }
                for m in sizes where m <= n {
                    let proof = try log.consistencyProof(from: m, to: n)
                    do {
                        try RFC9162.verifyConsistency(size1: m, size2: n, proof: proof, root1: root(m), root2: root(n))
                    } catch {
                        Issue.record(error, "\(what): consistency from \(m) to \(n)")
                    }
                }
            }
        }

        // Odd batch widths, crossing 256 and 512 inside a batch; the 101 also carries two entries
        // already in the log, which take no new index.
        let stages: [(size: Int, batches: [Range<Int>])] = [
            (1, [0..<1]),
            (300, [1..<4, 4..<259, 259..<300]),
            (513, [300..<401, 401..<500, 500..<513]),
        ]
        for stage in stages {
            do {
                let log = try MerkleLog(directory: directory.path)
                for batch in stage.batches {
                    var appended = Array(entries[batch])
                    if batch.lowerBound == 300 { appended.insert(contentsOf: [entries[7], entries[299]], at: 50) }
                    var expected = batch.map(UInt64.init)
                    if batch.lowerBound == 300 { expected.insert(contentsOf: [7, 299], at: 50) }
                    #expect(try log.append(appended) == expected)
                    try check(log, "after appending \(batch)")
                }
                #expect(log.size == UInt64(stage.size))
            }
            let reopened = try MerkleLog(directory: directory.path)
            try check(reopened, "reopened at size \(stage.size)")
            let readOnly = try MerkleLog(directory: directory.path, readOnly: true)
            #expect(readOnly.root == root(UInt64(stage.size)))
        }
    }

    /// The stored keys are those the layout prescribes for `size`, independently of the audit:
    /// a `tiles` record for each complete tile, and a `hashes` record for each complete subtree
    /// whose tile is not complete (level `l` in tile level `l / 8`, row `l % 8`).
    func checkLayout(_ log: MerkleLog, size: UInt64, _ what: String) throws {
        var tiles: [[UInt8]] = []
        var hashes: [[UInt8]] = []
        for tileLevel in 0..<8 {
            for index in 0..<(size >> UInt64(8 * tileLevel + 8)) {
                tiles.append(MerkleLog.tileKey(level: tileLevel, index: index))
            }
        }
        for level in 0..<64 {
            let completeTiles = size >> UInt64(8 * (level / 8) + 8)
            let firstOutside = completeTiles << UInt64(8 - level % 8)
            for index in firstOutside..<max(firstOutside, size >> UInt64(level)) {
                hashes.append(MerkleLog.nodeKey(level: level, index: index))
            }
        }
        #expect(try keys(log, MerkleLog.tilesFamily) == tiles, "\(what)")
        #expect(try keys(log, MerkleLog.hashesFamily) == hashes, "\(what)")
        #expect(try keys(log, MerkleLog.metaFamily) == [Array("format".utf8), Array("size".utf8)], "\(what)")
        #expect(try keys(log, "default") == [], "\(what)")
    }

    func keys(_ log: MerkleLog, _ family: String) throws -> [[UInt8]] {
        var keys: [[UInt8]] = []
        try log.store.scan(family) { key, _ in
            keys.append(key)
            return true
        }
        return keys
    }
}
