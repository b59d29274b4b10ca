import Synchronization

/// An append-only RFC 9162 Merkle log of byte-string entries, stored in RocksDB.
///
/// Column families:
/// - `entries`: index (u64 big-endian) → entry bytes.
/// - `hashes`: level (u8) || index (u64 big-endian) → the 32-byte hash of every complete subtree,
///   level 0 being the leaf hashes. A complete subtree never changes once its last leaf exists, so
///   the root at any historical size and every proof are computed from O(log n) of these.
/// - `checkpoints`: size (u64 big-endian) → signed checkpoint note (see `storeCheckpoint`).
/// - `dedup`: leaf hash → index (u64 big-endian), so an entry already present keeps its index.
/// - `meta`: `size` → the number of entries (u64 big-endian).
///
/// Only the right edge of the tree (one hash per set bit of the size) is held in memory. Each
/// ``append(_:)`` is one RocksDB write batch with `sync`: after a crash the log has the size of the
/// last completed batch, with every hash of it.
///
/// Appends are serialized by a lock held across the write; readers take a snapshot of the size and
/// then read only immutable complete-subtree hashes, so they never block on an append.
public final class MerkleLog: Sendable {
    /// The largest entry accepted, in bytes: C2SP tlog-tiles entry bundles prefix each entry with
    /// a uint16 length.
    public static let maximumEntryLength = 65_535

    /// Column family names, as stored on disk.
    static let entriesFamily = "entries"
    static let hashesFamily = "hashes"
    static let checkpointsFamily = "checkpoints"
    static let dedupFamily = "dedup"
    static let metaFamily = "meta"
    static let sizeKey = Array("size".utf8)

    /// The underlying store; the checkpoint code keeps its records in `checkpoints`.
    let store: RocksDB
    private let state: Mutex<State>

    /// The mutable part: how many leaves there are and the hashes of the complete subtrees along
    /// the right edge, largest first (one per set bit of `size`).
    private struct State {
        var size: UInt64
        var frontier: [[UInt8]]
        /// Every complete-subtree hash at levels ≥ ``cachedLevels``, by level then index. They never
        /// change once written, and there are only size / 2¹⁰ of them (32 MB per billion entries),
        /// so proofs read at most the 10 lower levels from RocksDB.
        var upper: [[[UInt8]]]
    }

    /// The lowest level whose complete-subtree hashes are kept in memory.
    static let cachedLevels = 10

    /// Opens (creating if needed, unless `readOnly`) the log in `directory`.
    ///
    /// With `readOnly` the directory must already hold a log and is not changed in any way (an
    /// auditor's view, which also works while a node holds the log open); appends then fail.
    public init(directory: String, readOnly: Bool = false) throws {
        store = try RocksDB(
            path: directory,
            columnFamilies: [
                Self.entriesFamily, Self.hashesFamily, Self.checkpointsFamily, Self.dedupFamily, Self.metaFamily,
            ],
            readOnly: readOnly)
        var size: UInt64 = 0
        if let stored = try store.get(Self.metaFamily, Self.sizeKey) {
            guard let decoded = UInt64(bigEndianBytes: stored) else {
                throw MerkleError(.corruptStore, "\(directory): meta size is \(stored.count) bytes, not 8")
            }
            size = decoded
        }
        var frontier: [[UInt8]] = []
        var start: UInt64 = 0
        for level in stride(from: 63, through: 0, by: -1) where size & (1 << UInt64(level)) != 0 {
            frontier.append(try Self.node(store, level: level, index: start >> UInt64(level)))
            start += 1 << UInt64(level)
        }
        var upper: [[[UInt8]]] = []
        for level in Self.cachedLevels..<64 where size >> UInt64(level) > 0 {
            let count = size >> UInt64(level)
            var hashes: [[UInt8]] = []
            hashes.reserveCapacity(Int(count))
            try store.scan(Self.hashesFamily, prefix: [UInt8(level)]) { key, value in
                guard UInt64(hashes.count) < count else { return false }
                guard key == Self.nodeKey(level: level, index: UInt64(hashes.count)), value.count == RFC9162.hashLength
                else {
                    throw MerkleError(
                        .corruptStore,
                        "\(directory): hash at level \(level) index \(hashes.count) is missing or malformed")
                }
                hashes.append(value)
                return true
            }
            guard UInt64(hashes.count) == count else {
                throw MerkleError(
                    .corruptStore,
                    "\(directory): level \(level) has \(hashes.count) hashes, a log of size \(size) has \(count)")
            }
            upper.append(hashes)
        }
        state = Mutex(State(size: size, frontier: frontier, upper: upper))
    }

    /// The number of entries.
    public var size: UInt64 { state.withLock { $0.size } }

    /// The current root, from the in-memory right edge (no reads).
    public var root: [UInt8] {
        state.withLock { Self.fold($0.frontier) }
    }

    /// Appends `entries` as one atomic, synced batch and returns the index of each, in order.
    ///
    /// An entry already in the log (same leaf hash), or earlier in the same batch, is not added
    /// again: its existing index is returned. If any entry is longer than
    /// ``maximumEntryLength``, nothing is written.
    @discardableResult
    public func append(_ entries: [[UInt8]]) throws -> [UInt64] {
        if let position = entries.firstIndex(where: { $0.count > Self.maximumEntryLength }) {
            throw MerkleError(
                .entryTooLarge,
                "entry \(position) of the batch is \(entries[position].count) bytes; "
                    + "at most \(Self.maximumEntryLength) are allowed, nothing was written")
        }
        return try state.withLock { state in
            // Size and frontier as locals, so the cached upper levels are never copied.
            var nextSize = state.size
            var nextFrontier = state.frontier
            var newUpper: [(level: Int, hash: [UInt8])] = []
            var batch = WriteBatch()
            var added: [[UInt8]: UInt64] = [:]
            var indices: [UInt64] = []
            indices.reserveCapacity(entries.count)
            for entry in entries {
                let leaf = RFC9162.leafHash(entry)
                if let index = added[leaf] {
                    indices.append(index)
                    continue
                }
                if let stored = try store.get(Self.dedupFamily, leaf) {
                    guard let index = UInt64(bigEndianBytes: stored) else {
                        throw MerkleError(.corruptStore, "\(store.path): dedup value is \(stored.count) bytes, not 8")
                    }
                    indices.append(index)
                    continue
                }
                let index = nextSize
                batch.put(Self.entriesFamily, Self.entryKey(index), entry)
                batch.put(Self.dedupFamily, leaf, index.bigEndianBytes)
                batch.put(Self.hashesFamily, Self.nodeKey(level: 0, index: index), leaf)
                Self.pushLeaf(leaf, at: index, onto: &nextFrontier) { level, nodeIndex, hash in
                    batch.put(Self.hashesFamily, Self.nodeKey(level: level, index: nodeIndex), hash)
                    if level >= Self.cachedLevels { newUpper.append((level, hash)) }
                }
                nextSize += 1
                added[leaf] = index
                indices.append(index)
            }
            guard nextSize != state.size else { return indices }
            batch.put(Self.metaFamily, Self.sizeKey, nextSize.bigEndianBytes)
            try store.write(batch)
            state.size = nextSize
            state.frontier = nextFrontier
            // Nodes close bottom-up and left to right, so each lands at the end of its level.
            for (level, hash) in newUpper {
                if state.upper.count <= level - Self.cachedLevels { state.upper.append([]) }
                state.upper[level - Self.cachedLevels].append(hash)
            }
            return indices
        }
    }

    /// The root of the tree made of the first `size` entries (`MTH({})` for 0).
    public func root(at size: UInt64) throws -> [UInt8] {
        try checkSize(size)
        return size == 0 ? RFC9162.emptyRoot : try rangeHash(0, size)
    }

    /// The entry at `index`.
    public func entry(at index: UInt64) throws -> [UInt8] {
        try checkIndex(index, size: self.size)
        guard let entry = try store.get(Self.entriesFamily, Self.entryKey(index)) else {
            throw MerkleError(.corruptStore, "\(store.path): entry \(index) is missing")
        }
        return entry
    }

    /// The leaf hash of the entry at `index`.
    public func leafHash(at index: UInt64) throws -> [UInt8] {
        try checkIndex(index, size: self.size)
        return try Self.node(store, level: 0, index: index)
    }

    /// The RFC 9162 §2.1.3.1 inclusion proof of the entry at `index` in the tree of `size` entries.
    public func inclusionProof(index: UInt64, size: UInt64) throws -> [[UInt8]] {
        try checkSize(size)
        try checkIndex(index, size: size)
        var proof: [[UInt8]] = []
        try path(index, 0, size, into: &proof)
        return proof
    }

    /// The RFC 9162 §2.1.4.1 consistency proof from the tree of `from` entries to that of `to`.
    ///
    /// Empty when `from` is 0 or equal to `to` (see ``RFC9162/verifyConsistency(size1:size2:proof:root1:root2:)``).
    public func consistencyProof(from: UInt64, to: UInt64) throws -> [[UInt8]] {
        try checkSize(to)
        guard from <= to else { throw MerkleError(.invalidArgument, "from \(from) is greater than to \(to)") }
        guard from > 0 && from < to else { return [] }
        var proof: [[UInt8]] = []
        try subproof(from, 0, to, complete: true, into: &proof)
        return proof
    }

    // MARK: Proof construction over stored complete subtrees

    /// PATH(m, D[start:end]) of RFC 9162, deepest hash first.
    private func path(_ m: UInt64, _ start: UInt64, _ end: UInt64, into proof: inout [[UInt8]]) throws {
        let n = end - start
        guard n > 1 else { return }
        let k = Self.split(n)
        if m < start + k {
            try path(m, start, start + k, into: &proof)
            proof.append(try rangeHash(start + k, end))
        } else {
            try path(m, start + k, end, into: &proof)
            proof.append(try rangeHash(start, start + k))
        }
    }

    /// SUBPROOF(m, D[start:end], b) of RFC 9162, with `m` counted from `start`.
    private func subproof(
        _ m: UInt64, _ start: UInt64, _ end: UInt64, complete: Bool, into proof: inout [[UInt8]]
    ) throws {
        let n = end - start
        if m == n {
            if !complete { proof.append(try rangeHash(start, end)) }
            return
        }
        let k = Self.split(n)
        if m <= k {
            try subproof(m, start, start + k, complete: complete, into: &proof)
            proof.append(try rangeHash(start + k, end))
        } else {
            try subproof(m - k, start + k, end, complete: false, into: &proof)
            proof.append(try rangeHash(start, start + k))
        }
    }

    /// MTH(D[start:end]) for a range that RFC 9162's recursion produces (`start` is a multiple of
    /// the largest power of two below the range's length), from its complete subtrees.
    private func rangeHash(_ start: UInt64, _ end: UInt64) throws -> [UInt8] {
        let n = end - start
        if n & (n - 1) == 0 {
            let level = n.trailingZeroBitCount
            return try node(level: level, index: start >> UInt64(level))
        }
        let k = Self.split(n)
        return RFC9162.nodeHash(try rangeHash(start, start + k), try rangeHash(start + k, end))
    }

    /// The largest power of two strictly below `n` (n ≥ 2): where RFC 9162 splits a tree of n leaves.
    private static func split(_ n: UInt64) -> UInt64 {
        1 << UInt64(63 - (n - 1).leadingZeroBitCount)
    }

    /// Adds the leaf hash of entry `index` (the next one) to the right edge `frontier`, closing
    /// one complete subtree per trailing 1 bit of the index; `closed` gets each new node above
    /// the leaf as (level, index, hash), bottom-up.
    static func pushLeaf(
        _ leaf: [UInt8], at index: UInt64, onto frontier: inout [[UInt8]],
        closed: (_ level: Int, _ index: UInt64, _ hash: [UInt8]) throws -> Void
    ) rethrows {
        var hash = leaf
        var level = 0
        var closing = index
        while closing & 1 == 1 {
            hash = RFC9162.nodeHash(frontier.removeLast(), hash)
            level += 1
            closing >>= 1
            try closed(level, index >> UInt64(level), hash)
        }
        frontier.append(hash)
    }

    /// The root from the right-edge hashes, largest subtree first.
    private static func fold(_ frontier: [[UInt8]]) -> [UInt8] {
        guard var hash = frontier.last else { return RFC9162.emptyRoot }
        for left in frontier.dropLast().reversed() { hash = RFC9162.nodeHash(left, hash) }
        return hash
    }

    /// Key of a complete subtree's hash in `hashes`: level, then index big-endian, so a level's
    /// hashes sort by index.
    static func nodeKey(level: Int, index: UInt64) -> [UInt8] { [UInt8(level)] + index.bigEndianBytes }

    /// Key of an entry in `entries`: the index big-endian, so entries sort by index.
    static func entryKey(_ index: UInt64) -> [UInt8] { index.bigEndianBytes }

    /// The hash of the complete subtree at `level` and `index`: from memory for the cached upper
    /// levels, otherwise from the store.
    private func node(level: Int, index: UInt64) throws -> [UInt8] {
        if level >= Self.cachedLevels {
            let cached = state.withLock { state -> [UInt8]? in
                let row = level - Self.cachedLevels
                guard row < state.upper.count, index < UInt64(state.upper[row].count) else { return nil }
                return state.upper[row][Int(index)]
            }
            if let cached { return cached }
        }
        return try Self.node(store, level: level, index: index)
    }

    /// The stored hash of the complete subtree at `level` and `index`.
    static func node(_ store: RocksDB, level: Int, index: UInt64) throws -> [UInt8] {
        guard let hash = try store.get(hashesFamily, nodeKey(level: level, index: index)) else {
            throw MerkleError(.corruptStore, "\(store.path): hash at level \(level) index \(index) is missing")
        }
        guard hash.count == RFC9162.hashLength else {
            throw MerkleError(
                .corruptStore, "\(store.path): hash at level \(level) index \(index) is \(hash.count) bytes, not 32")
        }
        return hash
    }

    private func checkSize(_ size: UInt64) throws {
        let current = self.size
        guard size <= current else {
            throw MerkleError(.invalidArgument, "size \(size) is beyond the log's size \(current)")
        }
    }

    private func checkIndex(_ index: UInt64, size: UInt64) throws {
        guard index < size else { throw MerkleError(.invalidArgument, "index \(index) is not below size \(size)") }
    }
}

extension UInt64 {
    /// The 8 big-endian bytes: keys sort in index order.
    var bigEndianBytes: [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: self >> UInt64(56 - 8 * $0)) } }

    /// Decodes exactly 8 big-endian bytes.
    init?(bigEndianBytes bytes: [UInt8]) {
        guard bytes.count == 8 else { return nil }
        self = bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }
}
