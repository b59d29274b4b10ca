/// The owner's column families beside the log (``MerkleLog/companionFamilies``), lookups of
/// leaf hashes, and the right edge as a value: what a replicating node needs to decide whether a
/// batch extends its log before it writes anything.
extension MerkleLog {
    /// The database directory.
    public var directory: String { store.path }

    /// Closes the database (``RocksDB/close()``): every later read or append throws. A process
    /// closes its log before it exits.
    public func close() { store.close() }

    /// Applies `batch` (puts and deletes in ``companionFamilies`` only) atomically and durably.
    public func writeCompanion(_ batch: WriteBatch) throws {
        try checkCompanion(batch)
        guard batch.count > 0 else { return }
        try store.write(batch)
    }

    /// The value under `key` in companion family `family`, or nil.
    public func companionValue(_ family: String, _ key: [UInt8]) throws -> [UInt8]? {
        try checkCompanion(family)
        return try store.get(family, key)
    }

    /// Calls `body` with each key and value of companion family `family` whose key starts with
    /// `prefix`, in key order, until it returns false.
    public func scanCompanion(
        _ family: String, prefix: [UInt8] = [], _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Bool
    ) throws {
        try checkCompanion(family)
        try store.scan(family, prefix: prefix, body)
    }

    /// Throws unless every operation of `batch` is in a companion family.
    func checkCompanion(_ batch: WriteBatch) throws {
        for family in Set(batch.operations.map(\.family)) { try checkCompanion(family) }
    }

    private func checkCompanion(_ family: String) throws {
        guard companionFamilies.contains(family) else {
            throw MerkleError(
                .invalidArgument,
                "\"\(family)\" is not a companion column family of this log (\(companionFamilies.joined(separator: ", ")))"
            )
        }
    }

    /// The index of the entry whose leaf hash is `leafHash`, or nil when no entry has it.
    public func index(ofLeafHash leafHash: [UInt8]) throws -> UInt64? {
        try indices(ofLeafHashes: [leafHash])[0]
    }

    /// For each of `leafHashes`, the index of the entry with that leaf hash, or nil: one batched
    /// lookup of the dedup records.
    public func indices(ofLeafHashes leafHashes: [[UInt8]]) throws -> [UInt64?] {
        guard !leafHashes.isEmpty else { return [] }
        if let bad = leafHashes.first(where: { $0.count != RFC9162.hashLength }) {
            throw MerkleError(.invalidArgument, "a leaf hash is \(RFC9162.hashLength) bytes, not \(bad.count)")
        }
        let distinct = Array(Set(leafHashes.map(LeafKey.init))).sorted()
        let keys = distinct.map { key in leafHashes.first { LeafKey($0) == key }! }
        let found = try store.multiGet(Self.dedupFamily, sortedKeys: keys)
        var table: [LeafKey: UInt64] = [:]
        for (key, value) in zip(distinct, found) {
            guard let value else { continue }
            guard let index = UInt64(bigEndianBytes: value) else {
                throw MerkleError(.corruptStore, "\(store.path): dedup value is \(value.count) bytes, not 8")
            }
            table[key] = index
        }
        return leafHashes.map { table[LeafKey($0)] }
    }

    /// The right edge of the tree as it is now: extend it with leaf hashes to learn the root a batch
    /// would make, without writing anything.
    public var frontier: MerkleFrontier {
        let edge = state.withLock { $0.edge }
        return MerkleFrontier(size: edge.size, hashes: edge.frontier)
    }
}

/// The right edge of an RFC 9162 tree: the hashes of the complete subtrees along it, one per set
/// bit of the size, largest first. Enough to append leaves and compute the root, with no store:
/// what a node uses to check that entries fetched from peers make the root a quorum signed before
/// it writes them.
public struct MerkleFrontier: Sendable, Hashable {
    /// The number of leaves.
    public private(set) var size: UInt64
    /// The complete subtrees' hashes, largest first.
    public private(set) var hashes: [[UInt8]]

    /// The edge of the empty tree.
    public init() {
        size = 0
        hashes = []
    }

    init(size: UInt64, hashes: [[UInt8]]) {
        self.size = size
        self.hashes = hashes
    }

    /// Appends the entry `entry` (hashed as a leaf).
    public mutating func append(entry: [UInt8]) {
        append(leafHash: RFC9162.leafHash(entry))
    }

    /// Appends a leaf by its hash.
    public mutating func append(leafHash: [UInt8]) {
        MerkleLog.pushLeaf(leafHash, at: size, onto: &hashes) { _, _, _ in }
        size += 1
    }

    /// The root of the tree (`MTH({})` for the empty tree).
    public var root: [UInt8] {
        guard var hash = hashes.last else { return RFC9162.emptyRoot }
        for left in hashes.dropLast().reversed() { hash = RFC9162.nodeHash(left, hash) }
        return hash
    }
}
