import QuorumCrypto
import Synchronization

/// An append-only RFC 9162 Merkle log of byte-string entries, stored in RocksDB.
///
/// Column families:
/// - `entries`: index (u64 big-endian) → entry bytes.
/// - `tiles`: tile level (u8) || tile index (u64 big-endian) → the 510 hashes of a complete
///   8-level tile (C2SP tlog-tiles geometry): tile level `L`, index `N` holds the complete
///   subtrees at tree levels `8L` … `8L + 7` under the node at level `8L + 8`, index `N`; row `r`
///   (256 >> r hashes) after rows 0 … r − 1. Written once, in the batch that completes the tile.
/// - `hashes`: level (u8) || index (u64 big-endian) → the 32-byte hash of a complete subtree whose
///   tile is not complete yet (at most one tile per tile level, the right edge). The batch that
///   completes a tile writes its record and deletes these.
/// - `checkpoints`: size (u64 big-endian) → signed checkpoint note (see `storeCheckpoint`).
/// - `dedup`: leaf hash → index (u64 big-endian), so an entry already present keeps its index.
/// - `meta`: `size` → the number of entries (u64 big-endian); `format` → ``storageFormat``.
///
/// A complete subtree never changes once its last leaf exists, so the root at any historical size
/// and every proof are computed from O(log n) stored hashes, at most one tile read per 8 levels.
/// Each ``append(_:)`` is one RocksDB write batch with `sync`: after a crash the log has the size
/// of the last completed batch, with every hash of it.
///
/// Appends are serialized by their own lock, held across the write. Readers never wait for a
/// write: they read the published right edge under a lock held only to copy a hash, and complete
/// tiles, which never change, from RocksDB.
public final class MerkleLog: Sendable {
    /// The largest entry accepted, in bytes: C2SP tlog-tiles entry bundles prefix each entry with
    /// a uint16 length.
    public static let maximumEntryLength = 65_535

    /// Column family names, as stored on disk.
    static let entriesFamily = "entries"
    static let hashesFamily = "hashes"
    static let tilesFamily = "tiles"
    static let checkpointsFamily = "checkpoints"
    static let dedupFamily = "dedup"
    static let metaFamily = "meta"
    /// Every family of the layout, in the order a new store creates them (RocksDB creates missing
    /// families one at a time, in the order given): `meta` last, so that a store with `meta` got
    /// every family of the layout that created it, and an open interrupted before `meta` existed
    /// leaves a store the next open completes.
    static let families = [entriesFamily, hashesFamily, tilesFamily, checkpointsFamily, dedupFamily, metaFamily]
    static let sizeKey = Array("size".utf8)
    static let formatKey = Array("format".utf8)
    /// The layout described above, recorded in `meta` by the first append, so that a store written
    /// in another layout is refused instead of misread.
    static let storageFormat = Array("quorum-log tiles 1".utf8)

    /// Tree levels per tile and hashes per tile row 0, as in C2SP tlog-tiles.
    static let tileHeight = 8
    /// Hashes in a complete tile record: 256 + 128 + … + 2.
    static let tileHashes = 510
    /// The lowest level whose complete-subtree hashes are all kept in memory.
    static let cachedLevels = 8

    /// The underlying store; the checkpoint code keeps its records in `checkpoints`.
    let store: RocksDB
    /// Column families the owner of the log keeps beside it in the same database (see
    /// ``init(directory:readOnly:companionFamilies:)``); never any of ``families``.
    public let companionFamilies: [String]
    /// Held by an append from before its dedup lookups until its batch is written and published.
    private let appending = Mutex(())
    let state: Mutex<State>

    /// The nodes of one tile that is not complete yet: row `r` holds the hashes at tree level
    /// `8·level + r` from the tile's first node at that level, concatenated.
    struct PartialTile: Sendable {
        var index: UInt64
        var rows: [[UInt8]]

        init(index: UInt64) {
            self.index = index
            rows = Array(repeating: [], count: MerkleLog.tileHeight)
        }

        /// Number of hashes in row `row`.
        func count(_ row: Int) -> Int { rows[row].count / RFC9162.hashLength }

        /// Index, at the row's tree level, of the row's first node.
        func first(_ row: Int) -> UInt64 { index << UInt64(MerkleLog.tileHeight - row) }
    }

    /// The right edge of the tree: what an append needs and changes.
    struct Edge: Sendable {
        var size: UInt64
        /// Hashes of the complete subtrees along the right edge, largest first (one per set bit of `size`).
        var frontier: [[UInt8]]
        /// The tile not complete yet at each tile level 0 … 7 (the one the next node there goes into).
        var partial: [PartialTile]
    }

    /// What readers see: the edge of the last completed append and the upper levels.
    struct State {
        var edge: Edge
        /// Every complete-subtree hash at levels ≥ ``cachedLevels``, one flat array per level. They
        /// never change once written, and there are only size / 2⁸ of them (128 MB per billion
        /// entries), so an inclusion proof reads at most one tile from RocksDB.
        var upper: [[UInt8]]

        /// The hash at `level` and `index` if it is held in memory.
        func cached(level: Int, index: UInt64) -> [UInt8]? {
            let length = RFC9162.hashLength
            if level >= MerkleLog.cachedLevels {
                let row = level - MerkleLog.cachedLevels
                if row < upper.count, index < UInt64(upper[row].count / length) {
                    let offset = Int(index) * length
                    return Array(upper[row][offset..<(offset + length)])
                }
            }
            let tile = edge.partial[level / MerkleLog.tileHeight]
            let row = level % MerkleLog.tileHeight
            guard index >= tile.first(row), index - tile.first(row) < UInt64(tile.count(row)) else { return nil }
            let offset = Int(index - tile.first(row)) * length
            return Array(tile.rows[row][offset..<(offset + length)])
        }
    }

    /// Opens (creating if needed, unless `readOnly`) the log in `directory`.
    ///
    /// With `readOnly` the directory must already hold a log and is not changed in any way (an
    /// auditor's view, which also works while a node holds the log open); appends then fail.
    ///
    /// `companionFamilies` are column families of the owner's own in the same database, written in
    /// the same synced batch as an append (``append(_:certifiedBy:origin:verifiers:alongside:)``)
    /// or on their own (``writeCompanion(_:)``): a replicating node keeps its pending entries,
    /// receipt index and signing records there, so that a batch and what it changes about them
    /// land together or not at all. The log's own records never go there, and the store audit
    /// ignores them. A read-only open may leave them out (RocksDB opens a subset of families
    /// read-only); a read-write open must name every family the database has.
    public init(directory: String, readOnly: Bool = false, companionFamilies: [String] = []) throws {
        if let clash = companionFamilies.first(where: { Self.families.contains($0) || $0 == "default" }) {
            throw MerkleError(.invalidArgument, "\"\(clash)\" is a column family of the log itself, not a companion")
        }
        try Self.refuseIncompleteStore(directory)
        self.companionFamilies = companionFamilies
        let store = try RocksDB(
            path: directory,
            columnFamilies: Self.families + companionFamilies,
            familyOptions: [
                Self.dedupFamily: .init(hashedKeyLength: RFC9162.hashLength, compressible: false),
                Self.hashesFamily: .init(compressible: false),
                Self.tilesFamily: .init(compressible: false),
            ],
            readOnly: readOnly)
        self.store = store
        let size = try Self.checkedMeta(store).size
        let partial = try (0..<Self.tileHeight).map { try Self.loadPartialTile(store, tileLevel: $0, size: size) }
        var frontier: [[UInt8]] = []
        var start: UInt64 = 0
        for level in stride(from: 63, through: 0, by: -1) where size & (1 << UInt64(level)) != 0 {
            let tile = partial[level / Self.tileHeight]
            let row = level % Self.tileHeight
            let position = Int((start >> UInt64(level)) - tile.first(row)) * RFC9162.hashLength
            frontier.append(Array(tile.rows[row][position..<(position + RFC9162.hashLength)]))
            start += 1 << UInt64(level)
        }
        var upper: [[UInt8]] = []
        for level in Self.cachedLevels..<64 where size >> UInt64(level) > 0 { upper.append([]) }
        for tileLevel in Self.cachedLevels / Self.tileHeight..<Self.tileHeight where !upper.isEmpty {
            let complete = partial[tileLevel].index
            var next: UInt64 = 0
            try store.scan(Self.tilesFamily, prefix: [UInt8(tileLevel)]) { key, value in
                guard next < complete else { return false }
                let tile = try Self.checkedTile(key: key, value: value, level: tileLevel, index: next, path: directory)
                for row in 0..<Self.tileHeight {
                    let level = tileLevel * Self.tileHeight + row
                    guard level >= Self.cachedLevels, level - Self.cachedLevels < upper.count else { continue }
                    let offset = Self.rowOffset(row) * RFC9162.hashLength
                    upper[level - Self.cachedLevels] += tile[offset..<(offset + (256 >> row) * RFC9162.hashLength)]
                }
                next += 1
                return true
            }
            guard next == complete else {
                throw MerkleError(
                    .corruptStore,
                    "\(directory): tile level \(tileLevel) has \(next) tiles, a log of size \(size) has \(complete)")
            }
            for row in 0..<Self.tileHeight {
                let level = tileLevel * Self.tileHeight + row
                guard level >= Self.cachedLevels, level - Self.cachedLevels < upper.count else { continue }
                upper[level - Self.cachedLevels] += partial[tileLevel].rows[row]
            }
        }
        state = Mutex(State(edge: Edge(size: size, frontier: frontier, partial: partial), upper: upper))
    }

    /// The size and format records of `store`, refused unless this layout wrote them: a size that
    /// is not 8 bytes, another format, or entries without a format (the layout before tiles).
    private static func checkedMeta(_ store: RocksDB) throws -> (size: UInt64, format: [UInt8]?) {
        var size: UInt64 = 0
        if let stored = try store.get(metaFamily, sizeKey) {
            guard let decoded = UInt64(bigEndianBytes: stored) else {
                throw MerkleError(.corruptStore, "\(store.path): meta size is \(stored.count) bytes, not 8")
            }
            size = decoded
        }
        let format = try store.get(metaFamily, formatKey)
        if let format, format != storageFormat {
            throw MerkleError(
                .corruptStore,
                "\(store.path): storage format \"\(String(decoding: format, as: UTF8.self))\" is not "
                    + "\"\(String(decoding: storageFormat, as: UTF8.self))\"")
        }
        if size > 0 && format == nil {
            throw MerkleError(
                .corruptStore,
                "\(store.path): a log of \(size) entries without a storage format record (an older layout)")
        }
        return (size, format)
    }

    /// Refuses a store in `directory` that has `meta`, so was created as a log (see ``families``),
    /// but lacks a family of this layout, before the log's open: a read-write open would create the
    /// missing family, after which the version that wrote the store no longer opens it, and a
    /// read-only open would fail with RocksDB's "Column family not found", which does not say why.
    /// Only `meta` is read, read-only, to say why. A directory without a database, or without
    /// `meta`, is left to the open (which creates a new log there, unless `readOnly`).
    private static func refuseIncompleteStore(_ directory: String) throws {
        guard let existing = RocksDB.columnFamilies(at: directory), existing.contains(metaFamily) else { return }
        let missing = families.filter { !existing.contains($0) }
        guard !missing.isEmpty else { return }
        let noFamilies =
            (missing.count == 1 ? "no column family " : "no column families ")
            + missing.map { "\"\($0)\"" }.joined(separator: ", ")
        let meta = try RocksDB(path: directory, columnFamilies: [metaFamily], readOnly: true)
        // Entries without a format record, or another format, are refused here as in any open.
        let (size, format) = try checkedMeta(meta)
        guard format != nil else {
            throw MerkleError(.corruptStore, "\(directory): an empty log with \(noFamilies) (an older layout)")
        }
        throw MerkleError(
            .corruptStore,
            "\(directory): a log of \(size) entries in storage format "
                + "\"\(String(decoding: storageFormat, as: UTF8.self))\" with \(noFamilies)")
    }

    /// Reads the stored hashes of the tile at `tileLevel` that is not complete at `size`.
    private static func loadPartialTile(_ store: RocksDB, tileLevel: Int, size: UInt64) throws -> PartialTile {
        var tile = PartialTile(index: size >> UInt64(tileLevel * tileHeight + tileHeight))
        for row in 0..<tileHeight {
            let level = tileLevel * tileHeight + row
            let first = tile.first(row)
            let end = size >> UInt64(level)
            guard end > first else { continue }
            var next = first
            var hashes: [UInt8] = []
            hashes.reserveCapacity(Int(end - first) * RFC9162.hashLength)
            try store.scan(
                hashesFamily, from: nodeKey(level: level, index: first), until: nodeKey(level: level, index: end)
            ) { key, value in
                guard key == nodeKey(level: level, index: next), value.count == RFC9162.hashLength else {
                    throw MerkleError(
                        .corruptStore, "\(store.path): hash at level \(level) index \(next) is missing or malformed")
                }
                hashes += value
                next += 1
                return true
            }
            guard next == end else {
                throw MerkleError(.corruptStore, "\(store.path): hash at level \(level) index \(next) is missing")
            }
            tile.rows[row] = hashes
        }
        return tile
    }

    /// The number of entries.
    public var size: UInt64 { state.withLock { $0.edge.size } }

    /// The current root, from the in-memory right edge (no reads).
    public var root: [UInt8] {
        state.withLock { Self.fold($0.edge.frontier) }
    }

    /// Appends `entries` as one atomic, synced batch and returns the index of each, in order.
    ///
    /// An entry already in the log (same leaf hash), or earlier in the same batch, is not added
    /// again: its existing index is returned. If any entry is longer than
    /// ``maximumEntryLength``, nothing is written.
    @discardableResult
    public func append(_ entries: [[UInt8]]) throws -> [UInt64] {
        try checkLengths(entries)
        // Hashing needs no lock.
        let leaves = entries.map(RFC9162.leafHash)
        return try appending.withLock { _ in try append(entries, leaves: leaves, finish: { _ in WriteBatch() }) }
    }

    /// Appends `entries` together with the signed checkpoint `note` that covers exactly the log
    /// they make, and `extra` (puts and deletes in ``companionFamilies``), as one atomic, synced
    /// write: after a crash either all of it is on disk or none.
    ///
    /// Refused with nothing written unless the note verifies under `verifiers` (at least one known
    /// signature, none failing), its origin is `origin`, and its size and root are those of the log
    /// with `entries` appended (an entry already in the log is not added again, so it shows as a
    /// size that falls short). `entries` may be empty: the note then covers the log as it is. The
    /// note replaces any stored for its size, as ``storeCheckpoint(_:origin:verifiers:)`` does.
    @discardableResult
    public func append(
        _ entries: [[UInt8]], certifiedBy note: SignedNote, origin: String, verifiers: [NoteVerifier],
        alongside extra: WriteBatch = WriteBatch()
    ) throws -> [UInt64] {
        try checkLengths(entries)
        try checkCompanion(extra)
        let checkpoint = try note.verifiedCheckpoint(with: verifiers)
        guard checkpoint.origin == origin else {
            throw MerkleError(
                .invalidArgument, "the checkpoint is for origin \"\(checkpoint.origin)\", not \"\(origin)\"")
        }
        let leaves = entries.map(RFC9162.leafHash)
        return try appending.withLock { _ in
            try append(entries, leaves: leaves) { edge in
                let root = Self.fold(edge.frontier)
                guard edge.size == checkpoint.size, root == checkpoint.rootHash else {
                    throw MerkleError(
                        .invalidArgument,
                        "the checkpoint is for size \(checkpoint.size) and root \(Hex.encode(checkpoint.rootHash)); "
                            + "the log with these \(entries.count) entries has size \(edge.size) and root "
                            + "\(Hex.encode(root)); nothing was written")
                }
                var batch = extra
                batch.put(Self.checkpointsFamily, Self.entryKey(checkpoint.size), Array(note.serialized.utf8))
                return batch
            }
        }
    }

    private func checkLengths(_ entries: [[UInt8]]) throws {
        if let position = entries.firstIndex(where: { $0.count > Self.maximumEntryLength }) {
            throw MerkleError(
                .entryTooLarge,
                "entry \(position) of the batch is \(entries[position].count) bytes; "
                    + "at most \(Self.maximumEntryLength) are allowed, nothing was written")
        }
    }

    /// The body of the appends, with the append lock held. `finish` sees the edge the batch makes
    /// before anything is written, and returns further operations for the same write (or throws,
    /// and nothing is written).
    private func append(
        _ entries: [[UInt8]], leaves: [[UInt8]], finish: (Edge) throws -> WriteBatch
    ) throws -> [UInt64] {
        var edge = state.withLock { $0.edge }
        let startSize = edge.size
        let startTiles = edge.partial

        // Dedup: the distinct leaf hashes of the batch in byte order, looked up together.
        let keys = leaves.map(LeafKey.init)
        let order = keys.indices.sorted { keys[$0] < keys[$1] }
        var group = [Int](repeating: 0, count: entries.count)
        var distinct: [[UInt8]] = []
        for (position, entry) in order.enumerated() {
            if position == 0 || keys[order[position - 1]] != keys[entry] { distinct.append(leaves[entry]) }
            group[entry] = distinct.count - 1
        }
        var assigned: [UInt64?] = try store.multiGet(Self.dedupFamily, sortedKeys: distinct).map { stored in
            guard let stored else { return nil }
            guard let index = UInt64(bigEndianBytes: stored) else {
                throw MerkleError(.corruptStore, "\(store.path): dedup value is \(stored.count) bytes, not 8")
            }
            return index
        }
        let present = assigned.map { $0 != nil }
        var indices: [UInt64] = []
        indices.reserveCapacity(entries.count)
        var added: [Int] = []  // positions in the batch of the entries that get a new index
        for position in entries.indices {
            if let index = assigned[group[position]] {
                indices.append(index)
                continue
            }
            assigned[group[position]] = startSize + UInt64(added.count)
            indices.append(startSize + UInt64(added.count))
            added.append(position)
        }
        guard !added.isEmpty else {
            let extra = try finish(edge)
            if extra.count > 0 { try store.write(extra) }
            return indices
        }

        // The tree: each new node goes into the partial tile of its tile level; a node at a
        // multiple of 8 levels (above the leaves) closes the tile below it.
        var completed: [(level: Int, index: UInt64, record: [UInt8])] = []
        var newUpper: [(level: Int, hash: [UInt8])] = []
        func place(_ level: Int, _ index: UInt64, _ hash: [UInt8]) {
            let tileLevel = level / Self.tileHeight
            let row = level % Self.tileHeight
            edge.partial[tileLevel].rows[row] += hash
            if level >= Self.cachedLevels { newUpper.append((level, hash)) }
            if row == 0 && tileLevel > 0 {
                let done = edge.partial[tileLevel - 1]
                completed.append((tileLevel - 1, done.index, Array(done.rows.joined())))
                edge.partial[tileLevel - 1] = PartialTile(index: done.index + 1)
            }
        }
        var frontier = edge.frontier  // apart from `edge`, which `place` changes meanwhile
        for (offset, position) in added.enumerated() {
            let index = startSize + UInt64(offset)
            place(0, index, leaves[position])
            Self.pushLeaf(leaves[position], at: index, onto: &frontier) { level, nodeIndex, hash in
                place(level, nodeIndex, hash)
            }
        }
        edge.frontier = frontier
        edge.size = startSize + UInt64(added.count)

        // One batch, each family's keys in ascending order (cheap memtable inserts).
        var batch = WriteBatch()
        batch.reserve(2 * added.count + 16)
        for (offset, position) in added.enumerated() {
            batch.put(Self.entriesFamily, Self.entryKey(startSize + UInt64(offset)), entries[position])
        }
        for (index, leaf) in distinct.enumerated() where !present[index] {
            batch.put(Self.dedupFamily, leaf, assigned[index]!.bigEndianBytes)
        }
        for tile in completed.sorted(by: { ($0.level, $0.index) < ($1.level, $1.index) }) {
            batch.put(Self.tilesFamily, Self.tileKey(level: tile.level, index: tile.index), tile.record)
        }
        // Per-node records: those of tiles completed now go, the partial tiles' new nodes come.
        for tileLevel in 0..<Self.tileHeight {
            let before = startTiles[tileLevel]
            let after = edge.partial[tileLevel]
            for row in 0..<Self.tileHeight {
                let level = tileLevel * Self.tileHeight + row
                let kept = before.index == after.index ? before.count(row) : 0
                if before.index != after.index {
                    for offset in 0..<before.count(row) {
                        batch.delete(
                            Self.hashesFamily, Self.nodeKey(level: level, index: before.first(row) + UInt64(offset)))
                    }
                }
                for offset in kept..<after.count(row) {
                    let start = offset * RFC9162.hashLength
                    batch.put(
                        Self.hashesFamily, Self.nodeKey(level: level, index: after.first(row) + UInt64(offset)),
                        Array(after.rows[row][start..<(start + RFC9162.hashLength)]))
                }
            }
        }
        if startSize == 0 { batch.put(Self.metaFamily, Self.formatKey, Self.storageFormat) }
        batch.put(Self.metaFamily, Self.sizeKey, edge.size.bigEndianBytes)
        for operation in try finish(edge).operations {
            if let value = operation.value {
                batch.put(operation.family, operation.key, value)
            } else {
                batch.delete(operation.family, operation.key)
            }
        }
        try store.write(batch)

        state.withLock { state in
            state.edge = edge
            // Nodes close bottom-up and left to right, so each lands at the end of its level.
            for (level, hash) in newUpper {
                while state.upper.count <= level - Self.cachedLevels { state.upper.append([]) }
                state.upper[level - Self.cachedLevels] += hash
            }
        }
        return indices
    }

    /// The root of the tree made of the first `size` entries (`MTH({})` for 0).
    public func root(at size: UInt64) throws -> [UInt8] {
        try checkSize(size)
        var reads = TileReads()
        return size == 0 ? RFC9162.emptyRoot : try rangeHash(0, size, &reads)
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
        var reads = TileReads()
        return try node(level: 0, index: index, &reads)
    }

    /// The RFC 9162 §2.1.3.1 inclusion proof of the entry at `index` in the tree of `size` entries.
    public func inclusionProof(index: UInt64, size: UInt64) throws -> [[UInt8]] {
        try checkSize(size)
        try checkIndex(index, size: size)
        var proof: [[UInt8]] = []
        var reads = TileReads()
        try path(index, 0, size, into: &proof, &reads)
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
        var reads = TileReads()
        try subproof(from, 0, to, complete: true, into: &proof, &reads)
        return proof
    }

    // MARK: Proof construction over stored complete subtrees

    /// PATH(m, D[start:end]) of RFC 9162, deepest hash first.
    private func path(
        _ m: UInt64, _ start: UInt64, _ end: UInt64, into proof: inout [[UInt8]], _ reads: inout TileReads
    ) throws {
        let n = end - start
        guard n > 1 else { return }
        let k = Self.split(n)
        if m < start + k {
            try path(m, start, start + k, into: &proof, &reads)
            proof.append(try rangeHash(start + k, end, &reads))
        } else {
            try path(m, start + k, end, into: &proof, &reads)
            proof.append(try rangeHash(start, start + k, &reads))
        }
    }

    /// SUBPROOF(m, D[start:end], b) of RFC 9162, with `m` counted from `start`.
    private func subproof(
        _ m: UInt64, _ start: UInt64, _ end: UInt64, complete: Bool, into proof: inout [[UInt8]],
        _ reads: inout TileReads
    ) throws {
        let n = end - start
        if m == n {
            if !complete { proof.append(try rangeHash(start, end, &reads)) }
            return
        }
        let k = Self.split(n)
        if m <= k {
            try subproof(m, start, start + k, complete: complete, into: &proof, &reads)
            proof.append(try rangeHash(start + k, end, &reads))
        } else {
            try subproof(m - k, start + k, end, complete: false, into: &proof, &reads)
            proof.append(try rangeHash(start, start + k, &reads))
        }
    }

    /// MTH(D[start:end]) for a range that RFC 9162's recursion produces (`start` is a multiple of
    /// the largest power of two below the range's length), from its complete subtrees.
    private func rangeHash(_ start: UInt64, _ end: UInt64, _ reads: inout TileReads) throws -> [UInt8] {
        let n = end - start
        if n & (n - 1) == 0 {
            let level = n.trailingZeroBitCount
            return try node(level: level, index: start >> UInt64(level), &reads)
        }
        let k = Self.split(n)
        return RFC9162.nodeHash(try rangeHash(start, start + k, &reads), try rangeHash(start + k, end, &reads))
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

    /// Key of a complete subtree's hash in `hashes` (for a node whose tile is not complete):
    /// level, then index big-endian, so a level's hashes sort by index.
    static func nodeKey(level: Int, index: UInt64) -> [UInt8] {
        var key = [UInt8](repeating: UInt8(level), count: 9)
        index.storeBigEndian(into: &key, at: 1)
        return key
    }

    /// Key of a complete tile in `tiles`: tile level, then tile index big-endian.
    static func tileKey(level: Int, index: UInt64) -> [UInt8] { nodeKey(level: level, index: index) }

    /// Key of an entry in `entries`: the index big-endian, so entries sort by index.
    static func entryKey(_ index: UInt64) -> [UInt8] { index.bigEndianBytes }

    /// Where row `row` starts in a tile record, counted in hashes: after 256 + 128 + … hashes.
    static func rowOffset(_ row: Int) -> Int { 512 - (512 >> row) }

    /// The complete tiles one proof has read, so that it reads each at most once.
    struct TileReads {
        private var tiles: [(level: Int, index: UInt64, bytes: [UInt8])] = []

        mutating func tile(level: Int, index: UInt64, read: () throws -> [UInt8]) rethrows -> [UInt8] {
            if let known = tiles.first(where: { $0.level == level && $0.index == index }) { return known.bytes }
            let bytes = try read()
            tiles.append((level, index, bytes))
            return bytes
        }
    }

    /// The hash of the complete subtree at `level` and `index`: from memory for the right edge and
    /// the cached upper levels, otherwise from the complete tile that holds it.
    private func node(level: Int, index: UInt64, _ reads: inout TileReads) throws -> [UInt8] {
        // A node not in the published right edge lies in a tile completed by an append that has
        // returned, whose record is therefore on disk.
        if let cached = state.withLock({ $0.cached(level: level, index: index) }) { return cached }
        let tileLevel = level / Self.tileHeight
        let row = level % Self.tileHeight
        let tileIndex = index >> UInt64(Self.tileHeight - row)
        let tile = try reads.tile(level: tileLevel, index: tileIndex) {
            try readTile(level: tileLevel, index: tileIndex)
        }
        let offset =
            (Self.rowOffset(row) + Int(index - (tileIndex << UInt64(Self.tileHeight - row)))) * RFC9162.hashLength
        return Array(tile[offset..<(offset + RFC9162.hashLength)])
    }

    /// The record of the complete tile at tile level `level` and `index`.
    func readTile(level: Int, index: UInt64) throws -> [UInt8] {
        guard let value = try store.get(Self.tilesFamily, Self.tileKey(level: level, index: index)) else {
            throw MerkleError(.corruptStore, "\(store.path): tile level \(level) index \(index) is missing")
        }
        return try Self.checkedTile(
            key: Self.tileKey(level: level, index: index), value: value, level: level, index: index, path: store.path)
    }

    /// `value` if `key` is that of the tile at `level` and `index` and `value` has a tile's length.
    static func checkedTile(key: [UInt8], value: [UInt8], level: Int, index: UInt64, path: String) throws -> [UInt8] {
        guard key == tileKey(level: level, index: index) else {
            throw MerkleError(.corruptStore, "\(path): tile level \(level) index \(index) is missing")
        }
        guard value.count == tileHashes * RFC9162.hashLength else {
            throw MerkleError(
                .corruptStore,
                "\(path): tile level \(level) index \(index) is \(value.count) bytes, not \(tileHashes * RFC9162.hashLength)"
            )
        }
        return value
    }

    /// The hashes of row 0 of the tile at tile level `level` and `index`, if that is the partial
    /// tile of the published right edge; nil when the tile is complete.
    func partialTileRow(level: Int, index: UInt64) -> [UInt8]? {
        state.withLock { state in
            let tile = state.edge.partial[level]
            return tile.index == index ? tile.rows[0] : nil
        }
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

/// A leaf hash as four big-endian words: compares and hashes like its bytes, without walking them.
struct LeafKey: Hashable, Comparable {
    let words: (UInt64, UInt64, UInt64, UInt64)

    init(_ hash: [UInt8]) {
        precondition(hash.count == RFC9162.hashLength, "a leaf hash is 32 bytes")
        words = hash.withUnsafeBytes { bytes in
            (
                UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
                UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
                UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
            )
        }
    }

    static func == (a: LeafKey, b: LeafKey) -> Bool { a.words == b.words }
    static func < (a: LeafKey, b: LeafKey) -> Bool { a.words < b.words }

    func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }
}

extension UInt64 {
    /// The 8 big-endian bytes: keys sort in index order.
    var bigEndianBytes: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 8)
        storeBigEndian(into: &bytes, at: 0)
        return bytes
    }

    /// Writes the 8 big-endian bytes into `bytes` from `offset`.
    func storeBigEndian(into bytes: inout [UInt8], at offset: Int) {
        for i in 0..<8 { bytes[offset + i] = UInt8(truncatingIfNeeded: self >> UInt64(56 - 8 * i)) }
    }

    /// Decodes exactly 8 big-endian bytes.
    init?(bigEndianBytes bytes: [UInt8]) {
        guard bytes.count == 8 else { return nil }
        self = bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }
}
