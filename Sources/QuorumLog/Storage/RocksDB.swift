import CRocksDB

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
/// `init`, never reassigned, and released only in `deinit`, when no other reference can exist; the
/// read and write option objects are never mutated after `init`, and RocksDB only reads them.
final class RocksDB: @unchecked Sendable {
    /// The database directory.
    let path: String
    private let db: OpaquePointer
    private let options: OpaquePointer
    private let readOptions: OpaquePointer
    private let syncWrite: OpaquePointer
    private let families: [String: OpaquePointer]
    private let familyHandles: [OpaquePointer]

    /// Opens (creating if needed) the database at `path` with `columnFamilies`, creating any that
    /// are missing. The `default` family is always opened as well, as RocksDB requires.
    /// With `readOnly`, nothing in the directory is changed (no write-ahead-log replay to disk, no
    /// new files), the database must exist with every family, and a process that holds it open
    /// for writing does not prevent the open; writes then fail.
    init(path: String, columnFamilies: [String], readOnly: Bool = false) throws {
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
        // Bloom filters (10 bits per key, ~1% false positives) let a lookup of an absent key, such
        // as every dedup check of a new entry, skip the disk. The table factory copies the table
        // options and takes shared ownership of the filter policy, so the options object can go.
        let tableOptions = rocksdb_block_based_options_create()!
        rocksdb_block_based_options_set_filter_policy(tableOptions, rocksdb_filterpolicy_create_bloom_full(10))
        rocksdb_options_set_block_based_table_factory(options, tableOptions)
        rocksdb_block_based_options_destroy(tableOptions)
        var names = ["default"]
        for name in columnFamilies where !names.contains(name) { names.append(name) }
        var handles = [OpaquePointer?](repeating: nil, count: names.count)
        let familyOptions = [OpaquePointer?](repeating: options, count: names.count)
        var error: UnsafeMutablePointer<CChar>?
        let cNames = names.map { strdup($0) }
        defer { cNames.forEach { free($0) } }
        let db = cNames.withUnsafeBufferPointer { namesBuffer in
            namesBuffer.withMemoryRebound(to: UnsafePointer<CChar>?.self) { constNames in
                readOnly
                    ? rocksdb_open_for_read_only_column_families(
                        options, path, Int32(names.count), constNames.baseAddress, familyOptions, &handles, 0, &error)
                    : rocksdb_open_column_families(
                        options, path, Int32(names.count), constNames.baseAddress, familyOptions, &handles, &error)
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
        self.syncWrite = rocksdb_writeoptions_create()!
        rocksdb_writeoptions_set_sync(syncWrite, 1)
        self.familyHandles = handles.map { $0! }
        self.families = Dictionary(uniqueKeysWithValues: zip(names, familyHandles))
    }

    deinit {
        for handle in familyHandles { rocksdb_column_family_handle_destroy(handle) }
        rocksdb_close(db)
        rocksdb_readoptions_destroy(readOptions)
        rocksdb_writeoptions_destroy(syncWrite)
        rocksdb_options_destroy(options)
    }

    /// The value stored under `key` in `family`, or nil when there is none.
    func get(_ family: String, _ key: [UInt8]) throws -> [UInt8]? {
        let handle = try self.handle(family)
        var length = 0
        var error: UnsafeMutablePointer<CChar>?
        let value = key.withUnsafeBufferPointer { k in
            k.withMemoryRebound(to: CChar.self) { k in
                rocksdb_get_cf(db, readOptions, handle, k.baseAddress, k.count, &length, &error)
            }
        }
        if let message = Self.take(error) { throw StorageError(operation: "get", path: path, message: message) }
        guard let value else { return nil }
        defer { rocksdb_free(value) }
        return [UInt8](UnsafeRawBufferPointer(start: value, count: length))
    }

    /// Applies every put of `batch` atomically and durably (`sync`): all or nothing, on disk on return.
    func write(_ batch: WriteBatch) throws {
        let raw = rocksdb_writebatch_create()!
        defer { rocksdb_writebatch_destroy(raw) }
        for put in batch.puts {
            let handle = try self.handle(put.family)
            put.key.withUnsafeBufferPointer { k in
                put.value.withUnsafeBufferPointer { v in
                    k.withMemoryRebound(to: CChar.self) { k in
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
    func scan(
        _ family: String, from: [UInt8] = [], until: [UInt8]? = nil,
        _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Bool
    ) throws {
        let handle = try self.handle(family)
        let iterator = rocksdb_create_iterator_cf(db, readOptions, handle)!
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

    /// Calls `body` with each key and value of `family` whose key starts with `prefix`.
    func scan(
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

/// Puts to apply together: ``RocksDB/write(_:)`` applies all of them atomically or none.
struct WriteBatch: Sendable {
    struct Put: Sendable {
        let family: String
        let key: [UInt8]
        let value: [UInt8]
    }

    private(set) var puts: [Put] = []

    init() {}

    /// Adds a put of `value` under `key` in column family `family`; a later put of the same key wins.
    mutating func put(_ family: String, _ key: [UInt8], _ value: [UInt8]) {
        puts.append(Put(family: family, key: key, value: value))
    }

    /// Number of puts collected.
    var count: Int { puts.count }
}
