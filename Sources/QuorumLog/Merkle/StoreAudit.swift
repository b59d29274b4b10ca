import QuorumCrypto

/// One thing wrong in a log's store, found by ``MerkleLog/auditStore()``.
public struct StoreProblem: Sendable, Equatable, CustomStringConvertible {
    /// Where: the column family and the record, e.g. `hashes level 2 index 5` or `entries index 17`.
    public let location: String
    /// What is wrong there.
    public let reason: String

    public var description: String { "\(location): \(reason)" }
}

extension MerkleLog {
    /// Recomputes the whole tree from the stored entries and compares every stored record with it:
    /// each leaf and interior hash (in complete tiles and per node), each dedup record, the meta
    /// records, and that nothing else is stored.
    ///
    /// Reads the entries in one pass and keeps only the right edge and one tile per tile level in
    /// memory. A flipped byte in a stored hash is reported at that hash; one in an entry shows as
    /// its leaf hash (and the hashes above it) no longer matching. RocksDB's own block checksums
    /// catch damage to its files, which is thrown as a ``StorageError``.
    ///
    /// Every stored checkpoint is checked too: its size and root must match the tree, and with
    /// `verifiers` its signatures must verify.
    public func auditStore(verifiers: [NoteVerifier] = []) throws -> [StoreProblem] {
        let size = self.size
        var problems: [StoreProblem] = []
        func report(_ location: String, _ reason: String) {
            problems.append(StoreProblem(location: location, reason: reason))
        }
        try auditMeta(size: size, report)

        /// The complete tiles at each tile level: those below the partial tile at `size`.
        func completeTiles(_ tileLevel: Int) -> UInt64 {
            size >> UInt64(tileLevel * Self.tileHeight + Self.tileHeight)
        }
        // The complete tile being compared at each tile level (tiles complete left to right).
        var current: [(index: UInt64, record: [UInt8]?)?] = Array(repeating: nil, count: Self.tileHeight)
        func compare(level: Int, index: UInt64, computed: [UInt8]) throws {
            let tileLevel = level / Self.tileHeight
            let row = level % Self.tileHeight
            let tileIndex = index >> UInt64(Self.tileHeight - row)
            guard tileIndex < completeTiles(tileLevel) else {
                let stored = try store.get(Self.hashesFamily, Self.nodeKey(level: level, index: index))
                if stored == nil {
                    report("hashes level \(level) index \(index)", "missing")
                } else if stored != computed {
                    report(
                        "hashes level \(level) index \(index)", "does not match the hash recomputed from the entries")
                }
                return
            }
            if current[tileLevel]?.index != tileIndex {
                let record = try store.get(Self.tilesFamily, Self.tileKey(level: tileLevel, index: tileIndex))
                let location = "tiles level \(tileLevel) index \(tileIndex)"
                if record == nil {
                    report(location, "missing")
                } else if record?.count != Self.tileHashes * RFC9162.hashLength {
                    report(location, "\(record!.count) bytes, not \(Self.tileHashes * RFC9162.hashLength)")
                }
                let valid = record?.count == Self.tileHashes * RFC9162.hashLength ? record : nil
                current[tileLevel] = (tileIndex, valid)
            }
            guard let record = current[tileLevel]?.record else { return }
            let position = Self.rowOffset(row) + Int(index - (tileIndex << UInt64(Self.tileHeight - row)))
            let offset = position * RFC9162.hashLength
            if !record[offset..<(offset + RFC9162.hashLength)].elementsEqual(computed) {
                report(
                    "tiles level \(tileLevel) index \(tileIndex)",
                    "hash \(position) (level \(level) index \(index)) does not match the hash recomputed from the entries"
                )
            }
        }

        var frontier: [[UInt8]] = []
        var next: UInt64 = 0
        try store.scan(Self.entriesFamily) { key, entry in
            guard key == Self.entryKey(next) else {
                report(
                    "entries index \(next)",
                    next < size
                        ? "missing (next key is \(Hex.encode(key)))"
                        : "unexpected key \(Hex.encode(key)) beyond size \(size)")
                return false
            }
            guard next < size else {
                report("entries index \(next)", "present beyond the log's size \(size)")
                return false
            }
            if entry.count > Self.maximumEntryLength {
                report("entries index \(next)", "\(entry.count) bytes, over the \(Self.maximumEntryLength)-byte limit")
            }
            let leaf = RFC9162.leafHash(entry)
            try compare(level: 0, index: next, computed: leaf)
            if try store.get(Self.dedupFamily, leaf) != Self.entryKey(next) {
                report("dedup \(Hex.encode(leaf))", "does not map the leaf hash of entry \(next) to \(next)")
            }
            try Self.pushLeaf(leaf, at: next, onto: &frontier) { level, index, hash in
                try compare(level: level, index: index, computed: hash)
            }
            next += 1
            return true
        }
        if next < size { report("meta size", "says \(size) entries but entries stop at \(next)") }

        // Nothing stored beyond what the tree has: per-node hashes only for the nodes of tiles not
        // complete yet, tile records only for complete tiles.
        var storedHashes: UInt64 = 0
        try store.scan(Self.hashesFamily) { key, value in
            storedHashes += 1
            guard key.count == 9, key[0] < 64, let index = UInt64(bigEndianBytes: Array(key[1...])) else {
                report("hashes key \(Hex.encode(key))", "not a level and an index")
                return true
            }
            let level = Int(key[0])
            let tileLevel = level / Self.tileHeight
            let row = level % Self.tileHeight
            if index >= size >> UInt64(level) {
                report("hashes level \(level) index \(index)", "beyond the tree of size \(size)")
            } else if index >> UInt64(Self.tileHeight - row) < completeTiles(tileLevel) {
                report(
                    "hashes level \(level) index \(index)",
                    "left behind in tile \(tileLevel)/\(index >> UInt64(8 - row)), which is complete")
            } else if value.count != RFC9162.hashLength {
                report("hashes level \(level) index \(index)", "\(value.count) bytes, not 32")
            }
            return true
        }
        var expectedHashes: UInt64 = 0
        var expectedTiles: UInt64 = 0
        for level in 0..<64 {
            let tileLevel = level / Self.tileHeight
            let row = level % Self.tileHeight
            expectedHashes += (size >> UInt64(level)) - (completeTiles(tileLevel) << UInt64(Self.tileHeight - row))
        }
        for tileLevel in 0..<Self.tileHeight { expectedTiles += completeTiles(tileLevel) }
        if storedHashes != expectedHashes {
            report("hashes", "\(storedHashes) records where a log of size \(size) has \(expectedHashes)")
        }
        var storedTiles: UInt64 = 0
        try store.scan(Self.tilesFamily) { key, _ in
            storedTiles += 1
            guard key.count == 9, key[0] < Self.tileHeight, let index = UInt64(bigEndianBytes: Array(key[1...])) else {
                report("tiles key \(Hex.encode(key))", "not a tile level and an index")
                return true
            }
            if index >= completeTiles(Int(key[0])) {
                report("tiles level \(key[0]) index \(index)", "not complete in a tree of size \(size)")
            }
            return true
        }
        if storedTiles != expectedTiles {
            report("tiles", "\(storedTiles) records where a log of size \(size) has \(expectedTiles)")
        }
        var storedDedup: UInt64 = 0
        try store.scan(Self.dedupFamily) { _, _ in
            storedDedup += 1
            return true
        }
        if storedDedup != size { report("dedup", "\(storedDedup) records where a log of size \(size) has \(size)") }
        return problems + (try auditCheckpoints(verifiers: verifiers))
    }

    /// Checks the `meta` family: the size record (8 bytes, the size this log opened with), the
    /// storage format record (present once anything was appended), and nothing else; and that
    /// RocksDB's `default` family, which the log never writes, is empty.
    private func auditMeta(size: UInt64, _ report: (String, String) -> Void) throws {
        var sawSize = false
        var sawFormat = false
        try store.scan(Self.metaFamily) { key, value in
            if key == Self.sizeKey {
                sawSize = true
                if let stored = UInt64(bigEndianBytes: value) {
                    if stored != size { report("meta size", "says \(stored) entries, the open log has \(size)") }
                } else {
                    report("meta size", "\(value.count) bytes, not 8")
                }
            } else if key == Self.formatKey {
                sawFormat = true
                if value != Self.storageFormat {
                    report(
                        "meta format",
                        "\"\(String(decoding: value, as: UTF8.self))\", not \"\(String(decoding: Self.storageFormat, as: UTF8.self))\""
                    )
                }
            } else {
                report("meta key \(Hex.encode(key))", "unexpected record")
            }
            return true
        }
        if size > 0 && !sawSize { report("meta size", "missing in a log of \(size) entries") }
        if size > 0 && !sawFormat { report("meta format", "missing in a log of \(size) entries") }
        try store.scan("default") { key, _ in
            report("default key \(Hex.encode(key))", "unexpected record (the log never writes this family)")
            return true
        }
    }
}
