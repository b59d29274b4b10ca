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
    /// each leaf and interior hash, each dedup record, the number of stored hashes and the size.
    ///
    /// Reads the entries in one pass and keeps only the right edge in memory. A flipped byte in a
    /// stored hash is reported at that hash; one in an entry shows as its leaf hash (and the
    /// hashes above it) no longer matching. RocksDB's own block checksums catch damage to its
    /// files, which is thrown as a ``StorageError``.
    ///
    /// Every stored checkpoint is checked too: its size and root must match the tree, and with
    /// `verifiers` its signatures must verify.
    public func auditStore(verifiers: [NoteVerifier] = []) throws -> [StoreProblem] {
        let size = self.size
        var problems: [StoreProblem] = []
        func report(_ location: String, _ reason: String) {
            problems.append(StoreProblem(location: location, reason: reason))
        }
        func compare(level: Int, index: UInt64, computed: [UInt8]) throws {
            let stored = try store.get(Self.hashesFamily, Self.nodeKey(level: level, index: index))
            if stored == nil {
                report("hashes level \(level) index \(index)", "missing")
            } else if stored != computed {
                report("hashes level \(level) index \(index)", "does not match the hash recomputed from the entries")
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

        var expectedHashes: UInt64 = 0
        for level in 0..<64 { expectedHashes += size >> UInt64(level) }
        var storedHashes: UInt64 = 0
        try store.scan(Self.hashesFamily) { _, _ in
            storedHashes += 1
            return true
        }
        if storedHashes != expectedHashes {
            report("hashes", "\(storedHashes) records where a log of size \(size) has \(expectedHashes)")
        }
        var storedDedup: UInt64 = 0
        try store.scan(Self.dedupFamily) { _, _ in
            storedDedup += 1
            return true
        }
        if storedDedup != size { report("dedup", "\(storedDedup) records where a log of size \(size) has \(size)") }
        return problems + (try auditCheckpoints(verifiers: verifiers))
    }
}
