import CRocksDB
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A RocksDB database opened with a fixed set of column families, through the C API.
///
/// This is the only type that sees RocksDB's pointers; callers use byte arrays and column family
/// names. Writes go through ``WriteBatch`` and are applied atomically with `sync`, so a batch is on
/// disk before ``write(_:)`` returns and a crash shows either all of it or none of it.
///
/// `@unchecked Sendable`: RocksDB documents `rocksdb_t` (DB) as safe for concurrent use by many
/// threads without external locking, for reads and writes alike. Every pointer held here is set in
/// `init`, never reassigned, and released once: by ``close()`` after every operation under way has
/// left (operations count themselves in and out under a lock, and none starts once closed), or in
/// `deinit`, when no other reference can exist; the read and write option objects are never
/// mutated after `init`, and RocksDB only reads them.
public final class RocksDB: @unchecked Sendable {
    /// The database directory.
    public let path: String
    private let db: OpaquePointer
    private let options: OpaquePointer
    private let readOptions: OpaquePointer
    /// Read options for iterators: total order, so that a family with a prefix extractor
    /// (``FamilyOptions/hashedKeyLength``) is still scanned whole and in key order.
    private let scanOptions: OpaquePointer
    private let syncWrite: OpaquePointer
    private let families: [String: OpaquePointer]
    private let familyHandles: [OpaquePointer]
    /// Operations under way, and whether the database was closed (and its handles released).
    private let lifecycle = Mutex(Lifecycle())

    private struct Lifecycle {
        var users = 0
        var closed = false
        var released = false
    }

    /// How one column family is tuned for what is stored in it. Only performance depends on it.
    public struct FamilyOptions: Sendable {
        /// Every key is this long and is looked up whole (the dedup family's leaf hashes, random
        /// and never scanned on the hot path). The memtable is then a hash table over whole keys:
        /// inserting or finding a key costs a bucket, not a skip-list search through random
        /// positions. Scans still see every key in order (RocksDB sorts the memtable for them).
        public var hashedKeyLength: Int?
        /// The values compress (entries may); hashes do not, and trying costs every flush and
        /// compaction time for nothing.
        public var compressible = true

        public init(hashedKeyLength: Int? = nil, compressible: Bool = true) {
            self.hashedKeyLength = hashedKeyLength
            self.compressible = compressible
        }
    }

    /// Opens (creating if needed) the database at `path` with `columnFamilies`, creating any that
    /// are missing. The `default` family is always opened as well, as RocksDB requires.
    /// With `readOnly`, nothing in the directory is changed (no write-ahead-log replay to disk, no
    /// new files), the database must exist with every family, and a process that holds it open
    /// for writing does not prevent the open; writes then fail.
    public init(
        path: String, columnFamilies: [String], familyOptions: [String: FamilyOptions] = [:], readOnly: Bool = false
    ) throws {
        self.path = path
        let options = rocksdb_options_create()!
        rocksdb_options_set_create_if_missing(options, readOnly ? 0 : 1)
        rocksdb_options_set_create_missing_column_families(options, readOnly ? 0 : 1)
        // A torn record at the end of the write-ahead log is what a crash mid-write leaves, and it
        // is dropped (that batch never returned). Damage before the tail fails the open instead of
        // silently cutting the log short, as the default point-in-time recovery would.
        rocksdb_options_set_wal_recovery_mode(options, Int32(rocksdb_tolerate_corrupted_tail_records_recovery))
        // Five column families at RocksDB's default 64 MB memtable each would hold hundreds of MB
        // while appending; one 64 MB budget shared by all keeps resident memory bounded.
        rocksdb_options_set_write_buffer_size(options, 16 << 20)
        rocksdb_options_set_db_write_buffer_size(options, 64 << 20)
        // While one family's memtable is flushed, another family's flush must not stop appends:
        // up to four memtables per family (the shared budget above still triggers the flushes,
        // bounding memory) and two flush threads beside the compactions.
        rocksdb_options_set_max_write_buffer_number(options, 4)
        rocksdb_options_set_max_background_jobs(options, 4)
        rocksdb_options_set_max_background_flushes(options, 2)
        // RocksDB's own info log (`LOG`) is rotated at every open; without a limit the old ones
        // (`LOG.old.*`) pile up in the data directory.
        rocksdb_options_set_keep_log_file_num(options, 2)
        // Hash-table memtables (``FamilyOptions/hashedKeyLength``) do not take concurrent inserts;
        // appends are serialized anyway, so nothing is lost.
        rocksdb_options_set_allow_concurrent_memtable_write(options, 0)
        // Bloom filters (10 bits per key, ~1% false positives) let a lookup of an absent key, such
        // as every dedup check of a new entry, skip the disk. Filter and index blocks stay in the
        // table readers (RocksDB's default), so a lookup never waits for them. Data blocks go to
        // one 64 MB cache shared by every family: the hash tiles a proof reads come from there.
        // The table factory copies the table options and takes shared ownership of the filter
        // policy and the cache, so the option and cache handles can go.
        let tableOptions = rocksdb_block_based_options_create()!
        rocksdb_block_based_options_set_filter_policy(tableOptions, rocksdb_filterpolicy_create_bloom_full(10))
        let cache = rocksdb_cache_create_lru(64 << 20)!
        rocksdb_block_based_options_set_block_cache(tableOptions, cache)
        rocksdb_options_set_block_based_table_factory(options, tableOptions)
        rocksdb_cache_destroy(cache)
        rocksdb_block_based_options_destroy(tableOptions)
        var names = ["default"]
        for name in columnFamilies where !names.contains(name) { names.append(name) }
        // Per-family options start as copies of the database options (one shared table factory,
        // hence one block cache); RocksDB copies them at open, so they are released right after.
        let tuned: [OpaquePointer] = names.compactMap { name in
            guard let tuning = familyOptions[name] else { return nil }
            let copy = rocksdb_options_create_copy(options)!
            if let length = tuning.hashedKeyLength {
                // The options take ownership of the prefix extractor.
                rocksdb_options_set_prefix_extractor(copy, rocksdb_slicetransform_create_fixed_prefix(length))
                rocksdb_options_set_hash_link_list_rep(copy, 1 << 18)
            }
            if !tuning.compressible { rocksdb_options_set_compression(copy, Int32(rocksdb_no_compression)) }
            return copy
        }
        defer { tuned.forEach { rocksdb_options_destroy($0) } }
        var nextTuned = tuned.makeIterator()
        let familyOptionsList: [OpaquePointer?] = names.map { familyOptions[$0] == nil ? options : nextTuned.next()! }
        var handles = [OpaquePointer?](repeating: nil, count: names.count)
        var error: UnsafeMutablePointer<CChar>?
        let cNames = names.map { strdup($0) }
        defer { cNames.forEach { free($0) } }
        let db = cNames.withUnsafeBufferPointer { namesBuffer in
            namesBuffer.withMemoryRebound(to: UnsafePointer<CChar>?.self) { constNames in
                readOnly
                    ? rocksdb_open_for_read_only_column_families(
                        options, path, Int32(names.count), constNames.baseAddress, familyOptionsList, &handles, 0,
                        &error)
                    : rocksdb_open_column_families(
                        options, path, Int32(names.count), constNames.baseAddress, familyOptionsList, &handles, &error)
            }
        }
        if let message = Self.take(error) {
            rocksdb_options_destroy(options)
            throw StorageError(operation: "open", path: path, message: message)
        }
        guard let db else {
            rocksdb_options_destroy(options)
            throw StorageError(operation: "open", path: path, message: "no database handle returned")
        }
        self.db = db
        self.options = options
        self.readOptions = rocksdb_readoptions_create()!
        self.scanOptions = rocksdb_readoptions_create()!
        rocksdb_readoptions_set_total_order_seek(scanOptions, 1)
        self.syncWrite = rocksdb_writeoptions_create()!
        rocksdb_writeoptions_set_sync(syncWrite, 1)
        self.familyHandles = handles.map { $0! }
        self.families = Dictionary(uniqueKeysWithValues: zip(names, familyHandles))
    }

    /// The names of the column families of the database at `path`, read from its manifest without
    /// opening it (no lock taken, nothing written, so a process holding it open does not matter),
    /// or nil when RocksDB cannot list them: in particular when there is no database there yet.
    /// An open then reports why, or creates the database. A caller checks the families first
    /// because a read-write open creates the missing ones, and a read-only open fails with only
    /// RocksDB's "Column family not found".
    public static func columnFamilies(at path: String) -> [String]? {
        let options = rocksdb_options_create()!
        defer { rocksdb_options_destroy(options) }
        var count = 0
        var error: UnsafeMutablePointer<CChar>?
        let list = rocksdb_list_column_families(options, path, &count, &error)
        guard Self.take(error) == nil, let list else { return nil }
        defer { rocksdb_list_column_families_destroy(list, count) }
        return (0..<count).compactMap { list[$0].map { String(cString: $0) } }
    }

    deinit {
        if !lifecycle.withLock({ $0.released }) { release() }
    }

    /// Closes the database: no operation starts any more (each throws a ``StorageError`` naming
    /// the path), the ones under way finish, then RocksDB stops its background work and releases
    /// the directory. A process closes its databases before it exits, so that no RocksDB thread is
    /// still running into the C++ static destructors. Closing twice does nothing more.
    public func close() {
        lifecycle.withLock { $0.closed = true }
        while lifecycle.withLock({ $0.users }) > 0 { usleep(1000) }
        let first = lifecycle.withLock { state -> Bool in
            defer { state.released = true }
            return !state.released
        }
        if first { release() }
    }

    private func release() {
        for handle in familyHandles { rocksdb_column_family_handle_destroy(handle) }
        rocksdb_close(db)
        rocksdb_readoptions_destroy(readOptions)
        rocksdb_readoptions_destroy(scanOptions)
        rocksdb_writeoptions_destroy(syncWrite)
        rocksdb_options_destroy(options)
    }

    /// Counts an operation in, refusing it once the database is closed.
    private func enter(_ operation: String) throws {
        try lifecycle.withLock { state throws(StorageError) in
            guard !state.closed else {
                throw StorageError(operation: operation, path: path, message: "the database is closed")
            }
            state.users += 1
        }
    }

    private func leave() { lifecycle.withLock { $0.users -= 1 } }

    /// The value stored under `key` in `family`, or nil when there is none.
    public func get(_ family: String, _ key: [UInt8]) throws -> [UInt8]? {
        try enter("get")
        defer { leave() }
        let handle = try self.handle(family)
        var error: UnsafeMutablePointer<CChar>?
        // Pinned: the value is copied once, out of the block cache or memtable, not twice.
        let pinned = key.withUnsafeBufferPointer { k in
            k.withMemoryRebound(to: CChar.self) { k in
                rocksdb_get_pinned_cf(db, readOptions, handle, k.baseAddress, k.count, &error)
            }
        }
        if let message = Self.take(error) { throw StorageError(operation: "get", path: path, message: message) }
        guard let pinned else { return nil }
        defer { rocksdb_pinnableslice_destroy(pinned) }
        var length = 0
        let value = rocksdb_pinnableslice_value(pinned, &length)
        return [UInt8](UnsafeRawBufferPointer(start: value, count: length))
    }

    /// The values stored under `keys` in `family` (nil where there is none), looked up together.
    /// `keys` must be in ascending byte order: RocksDB then batches the lookups in each memtable
    /// and table file instead of searching once per key.
    public func multiGet(_ family: String, sortedKeys keys: [[UInt8]]) throws -> [[UInt8]?] {
        try enter("multi-get")
        defer { leave() }
        guard !keys.isEmpty else { return [] }
        let handle = try self.handle(family)
        var values = [OpaquePointer?](repeating: nil, count: keys.count)
        var errors = [UnsafeMutablePointer<CChar>?](repeating: nil, count: keys.count)
        let sizes = keys.map(\.count)
        // One contiguous copy of the keys, so every key pointer stays valid for the whole call.
        let total = sizes.reduce(0, +)
        var flat: [UInt8] = []
        flat.reserveCapacity(total + 1)
        var offsets: [Int] = []
        offsets.reserveCapacity(keys.count)
        for key in keys {
            offsets.append(flat.count)
            flat.append(contentsOf: key)
        }
        flat.append(0)  // never empty, so its buffer has an address even when every key is empty
        flat.withUnsafeBytes { flatBuffer in
            let base = flatBuffer.baseAddress!.assumingMemoryBound(to: CChar.self)
            let pointers: [UnsafePointer<CChar>?] = offsets.map { base + $0 }
            values.withUnsafeMutableBufferPointer { valuesBuffer in
                rocksdb_batched_multi_get_cf(
                    db, readOptions, handle, keys.count, pointers, sizes, valuesBuffer.baseAddress, &errors, true)
            }
        }
        var results: [[UInt8]?] = []
        results.reserveCapacity(keys.count)
        var failure: String?
        for (value, error) in zip(values, errors) {
            if let message = Self.take(error), failure == nil { failure = message }
            guard let value else {
                results.append(nil)
                continue
            }
            var length = 0
            let bytes = rocksdb_pinnableslice_value(value, &length)
            results.append([UInt8](UnsafeRawBufferPointer(start: bytes, count: length)))
            rocksdb_pinnableslice_destroy(value)
        }
        if let failure { throw StorageError(operation: "multi-get", path: path, message: failure) }
        return results
    }

    /// Applies every operation of `batch` atomically and durably (`sync`): all or nothing, on disk
    /// on return. Operations reach each family's memtable in the order they were added: keys of one
    /// family added in ascending order insert next to each other, the cheapest case for its skip list.
    public func write(_ batch: WriteBatch) throws {
        try enter("write")
        defer { leave() }
        let raw = rocksdb_writebatch_create()!
        defer { rocksdb_writebatch_destroy(raw) }
        var lastFamily = ""
        var lastHandle: OpaquePointer?
        for operation in batch.operations {
            if operation.family != lastFamily || lastHandle == nil {
                lastHandle = try self.handle(operation.family)
                lastFamily = operation.family
            }
            let handle = lastHandle
            operation.key.withUnsafeBufferPointer { k in
                k.withMemoryRebound(to: CChar.self) { k in
                    guard let value = operation.value else {
                        rocksdb_writebatch_delete_cf(raw, handle, k.baseAddress, k.count)
                        return
                    }
                    value.withUnsafeBufferPointer { v in
                        v.withMemoryRebound(to: CChar.self) { v in
                            rocksdb_writebatch_put_cf(raw, handle, k.baseAddress, k.count, v.baseAddress, v.count)
                        }
                    }
                }
            }
        }
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_write(db, syncWrite, raw, &error)
        if let message = Self.take(error) { throw StorageError(operation: "write", path: path, message: message) }
    }

    /// Calls `body` with each key and value of `family` in key order, from the first key ≥ `from`
    /// up to (excluding) `until` when given; `body` returns false to stop early.
    public func scan(
        _ family: String, from: [UInt8] = [], until: [UInt8]? = nil,
        _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Bool
    ) throws {
        try enter("iterate")
        defer { leave() }
        let handle = try self.handle(family)
        let iterator = rocksdb_create_iterator_cf(db, scanOptions, handle)!
        defer { rocksdb_iter_destroy(iterator) }
        from.withUnsafeBufferPointer { k in
            k.withMemoryRebound(to: CChar.self) { rocksdb_iter_seek(iterator, $0.baseAddress, $0.count) }
        }
        while rocksdb_iter_valid(iterator) != 0 {
            var keyLength = 0
            var valueLength = 0
            let key = [UInt8](UnsafeRawBufferPointer(start: rocksdb_iter_key(iterator, &keyLength), count: keyLength))
            if let until, !key.lexicographicallyPrecedes(until) { break }
            let value = [UInt8](
                UnsafeRawBufferPointer(start: rocksdb_iter_value(iterator, &valueLength), count: valueLength))
            guard try body(key, value) else { return }
            rocksdb_iter_next(iterator)
        }
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_iter_get_error(iterator, &error)
        if let message = Self.take(error) { throw StorageError(operation: "iterate", path: path, message: message) }
    }

    /// The last key of `family` in key order and its value, or nil when the family is empty: one
    /// seek, where a scan would read every record before it.
    public func last(_ family: String) throws -> (key: [UInt8], value: [UInt8])? {
        try enter("iterate")
        defer { leave() }
        let handle = try self.handle(family)
        let iterator = rocksdb_create_iterator_cf(db, scanOptions, handle)!
        defer { rocksdb_iter_destroy(iterator) }
        rocksdb_iter_seek_to_last(iterator)
        var found: (key: [UInt8], value: [UInt8])?
        if rocksdb_iter_valid(iterator) != 0 {
            var keyLength = 0
            var valueLength = 0
            let key = [UInt8](UnsafeRawBufferPointer(start: rocksdb_iter_key(iterator, &keyLength), count: keyLength))
            let value = [UInt8](
                UnsafeRawBufferPointer(start: rocksdb_iter_value(iterator, &valueLength), count: valueLength))
            found = (key, value)
        }
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_iter_get_error(iterator, &error)
        if let message = Self.take(error) { throw StorageError(operation: "iterate", path: path, message: message) }
        return found
    }

    /// Calls `body` with each key and value of `family` whose key starts with `prefix`.
    public func scan(
        _ family: String, prefix: [UInt8], _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Bool
    ) throws {
        try scan(family, from: prefix) { key, value in
            guard key.starts(with: prefix) else { return false }
            return try body(key, value)
        }
    }

    private func handle(_ family: String) throws -> OpaquePointer {
        guard let handle = families[family] else {
            throw StorageError(operation: "lookup", path: path, message: "column family \"\(family)\" was not opened")
        }
        return handle
    }

    /// Turns a RocksDB error string into a Swift string and frees it.
    private static func take(_ error: UnsafeMutablePointer<CChar>?) -> String? {
        guard let error else { return nil }
        defer { rocksdb_free(error) }
        return String(cString: error)
    }
}

/// Puts and deletes to apply together: ``RocksDB/write(_:)`` applies all of them atomically or none.
public struct WriteBatch: Sendable {
    public struct Operation: Sendable {
        public let family: String
        public let key: [UInt8]
        /// The value to put; nil deletes the key.
        public let value: [UInt8]?
    }

    public private(set) var operations: [Operation] = []

    public init() {}

    /// Adds a put of `value` under `key` in column family `family`; a later put of the same key wins.
    public mutating func put(_ family: String, _ key: [UInt8], _ value: [UInt8]) {
        operations.append(Operation(family: family, key: key, value: value))
    }

    /// Adds a delete of `key` in column family `family`.
    public mutating func delete(_ family: String, _ key: [UInt8]) {
        operations.append(Operation(family: family, key: key, value: nil))
    }

    /// Reserves room for `count` more operations.
    public mutating func reserve(_ count: Int) { operations.reserveCapacity(operations.count + count) }

    /// Number of operations collected.
    public var count: Int { operations.count }
}
