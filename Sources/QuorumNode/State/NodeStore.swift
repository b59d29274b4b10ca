import Foundation
import NIOConcurrencyHelpers
import QuorumLog

/// A node's persistent state in RocksDB under `<data_dir>/state` (DESIGN.md §2): what must outlive
/// the process but is not a key share (those are files, see ``NodeKeyStore``) and not the audit
/// log. Built on QuorumLog's ``RocksDB`` wrapper, so there is one RocksDB binding in the project.
///
/// Every write is one atomic, synced batch: on disk before ``write(_:)`` returns, all or nothing
/// after a crash.
public final class NodeStore: Sendable {
    /// The column families and what each holds.
    public enum Family: String, Sendable, CaseIterable {
        /// The store's format record and small node facts.
        case meta
        /// Request id → the decision this node signed for it (the signing service's retention).
        case decisions
        /// Ceremony progress that must survive a restart (pending and completed ceremonies).
        case ceremony
        /// The installed policy bundle, policy state (rate windows, budget ledgers) and the
        /// verdicts this node reached, by request id. Created on open in a store made before it.
        case policy
    }

    /// One put or delete of a ``write(_:)``.
    public struct Change: Sendable {
        let family: Family
        let key: [UInt8]
        let value: [UInt8]?

        /// Stores `value` under `key` in `family`.
        public static func put(_ family: Family, _ key: [UInt8], _ value: [UInt8]) -> Change {
            Change(family: family, key: key, value: value)
        }

        /// Removes `key` from `family`.
        public static func delete(_ family: Family, _ key: [UInt8]) -> Change {
            Change(family: family, key: key, value: nil)
        }
    }

    /// The layout this build writes and reads, recorded under `meta/format`.
    public static let format = "quorum-node-state 1"
    static let formatKey = Array("format".utf8)

    /// The database directory.
    public let path: String
    /// The open database; nil once ``close()`` has run. An operation takes its own reference, so
    /// closing while one runs lets it finish and closes RocksDB after it.
    private let handle: NIOLockedValueBox<RocksDB?>

    /// Opens (creating on first use) the store in `<dataDirectory>/state`.
    ///
    /// - Throws: ``NodeStoreError`` naming the directory when RocksDB cannot open it, or when it
    ///   holds a store of another format (it is then left as it was).
    public init(dataDirectory: String) throws(NodeStoreError) {
        path = (dataDirectory as NSString).appendingPathComponent("state")
        let names = Family.allCases.map(\.rawValue)
        if let existing = RocksDB.columnFamilies(at: path) {
            // Families added in later builds are created on open; the first three are the format's.
            let missing = names.filter { !existing.contains($0) && $0 != Family.policy.rawValue }
            if !missing.isEmpty {
                throw NodeStoreError(
                    path: path,
                    "is not a node state store of this version (missing column families \(missing.joined(separator: ", "))); "
                        + "move it aside or point data_dir elsewhere")
            }
        }
        let database: RocksDB
        do { database = try RocksDB(path: path, columnFamilies: names) } catch {
            throw NodeStoreError(path: path, "cannot open: \(error)")
        }
        handle = NIOLockedValueBox(database)
        let recorded: [UInt8]?
        do { recorded = try database.get(Family.meta.rawValue, Self.formatKey) } catch {
            throw NodeStoreError(path: path, "cannot read the format record: \(error)")
        }
        switch recorded {
        case nil:
            try write([.put(.meta, Self.formatKey, Array(Self.format.utf8))])
        case let bytes? where bytes == Array(Self.format.utf8):
            break
        case let bytes?:
            throw NodeStoreError(
                path: path,
                "holds format \"\(String(decoding: bytes, as: UTF8.self))\"; this build reads \"\(Self.format)\"")
        }
    }

    /// Closes the database: RocksDB stops its background work and releases the directory once no
    /// operation is running. Every later operation throws. `quorumd` closes its store after its
    /// services have stopped and before the process exits, so that no RocksDB thread is still
    /// running while the process tears down.
    public func close() {
        handle.withLockedValue { $0 = nil }
    }

    private var database: RocksDB {
        get throws(NodeStoreError) {
            guard let database = handle.withLockedValue({ $0 }) else {
                throw NodeStoreError(path: path, "the store is closed")
            }
            return database
        }
    }

    /// The value under `key` in `family`, or nil.
    public func get(_ family: Family, _ key: [UInt8]) throws(NodeStoreError) -> [UInt8]? {
        let database = try database
        do { return try database.get(family.rawValue, key) } catch {
            throw NodeStoreError(path: path, "cannot read \(family.rawValue): \(error)")
        }
    }

    /// Applies `changes` atomically and durably.
    public func write(_ changes: [Change]) throws(NodeStoreError) {
        var batch = WriteBatch()
        for change in changes {
            if let value = change.value {
                batch.put(change.family.rawValue, change.key, value)
            } else {
                batch.delete(change.family.rawValue, change.key)
            }
        }
        let database = try database
        do { try database.write(batch) } catch {
            throw NodeStoreError(path: path, "cannot write: \(error)")
        }
    }

    /// Calls `body` with each key and value in `family` whose key starts with `prefix`, in key
    /// order, until it returns false.
    public func scan(
        _ family: Family, prefix: [UInt8] = [], _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Bool
    ) throws(NodeStoreError) {
        let database = try database
        do { try database.scan(family.rawValue, prefix: prefix, body) } catch let error as NodeStoreError {
            throw error
        } catch {
            throw NodeStoreError(path: path, "cannot scan \(family.rawValue): \(error)")
        }
    }

    /// Calls `body` with each key and value of `family` from the first key ≥ `from` up to
    /// (excluding) `until`, in key order, until it returns false.
    public func scan(
        _ family: Family, from: [UInt8], until: [UInt8], _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Bool
    ) throws(NodeStoreError) {
        let database = try database
        do { try database.scan(family.rawValue, from: from, until: until, body) } catch let error as NodeStoreError {
            throw error
        } catch {
            throw NodeStoreError(path: path, "cannot scan \(family.rawValue): \(error)")
        }
    }
}

/// What a read-only look at a node's state store found (``NodeStore/inspect(dataDirectory:recordLimit:)``).
public struct NodeStoreInspection: Sendable, Hashable {
    /// The store directory.
    public let path: String
    /// The format record, as recorded (this build reads ``NodeStore/format``); nil when the
    /// store has none yet.
    public let format: String?
    /// Records read per column family.
    public let records: [String: Int]
    /// False when a family held more than the record limit and was not read to its end.
    public let complete: Bool
}

extension NodeStore {
    /// Opens the store in `<dataDirectory>/state` read-only, checks its column families and format
    /// record, and reads every record of every family (up to `recordLimit` per family) so that
    /// RocksDB checks the blocks' checksums: the store health `quorumctl doctor` reports. Nothing
    /// on disk changes, and a node holding the store open does not prevent it (it sees the store
    /// as of the open). Nil when there is no store yet.
    ///
    /// - Throws: ``NodeStoreError`` naming the directory when RocksDB cannot open or read it, or
    ///   it lacks this version's column families.
    public static func inspect(
        dataDirectory: String, recordLimit: Int = 200_000
    ) throws(NodeStoreError) -> NodeStoreInspection? {
        let path = (dataDirectory as NSString).appendingPathComponent("state")
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let existing = RocksDB.columnFamilies(at: path) else {
            throw NodeStoreError(path: path, "RocksDB cannot list its column families: not a store, or damaged")
        }
        let required = Family.allCases.filter { $0 != .policy }.map(\.rawValue)
        let missing = required.filter { !existing.contains($0) }
        if !missing.isEmpty {
            throw NodeStoreError(
                path: path,
                "is not a node state store of this version (missing column families \(missing.joined(separator: ", ")))"
            )
        }
        let families = Family.allCases.map(\.rawValue).filter { existing.contains($0) }
        let database: RocksDB
        do { database = try RocksDB(path: path, columnFamilies: families, readOnly: true) } catch {
            throw NodeStoreError(path: path, "cannot open read-only: \(error)")
        }
        let format: [UInt8]?
        do { format = try database.get(Family.meta.rawValue, formatKey) } catch {
            throw NodeStoreError(path: path, "cannot read the format record: \(error)")
        }
        var records: [String: Int] = [:]
        var complete = true
        for family in families {
            var count = 0
            do {
                try database.scan(family) { _, _ in
                    count += 1
                    return count < recordLimit
                }
            } catch {
                throw NodeStoreError(path: path, "cannot read \(family) after \(count) records: \(error)")
            }
            if count >= recordLimit { complete = false }
            records[family] = count
        }
        return NodeStoreInspection(
            path: path, format: format.map { String(decoding: $0, as: UTF8.self) }, records: records,
            complete: complete)
    }
}

/// Why the node's state store refused an operation; names the store's directory.
public struct NodeStoreError: Error, Sendable, CustomStringConvertible {
    /// The store directory.
    public let path: String
    /// What went wrong.
    public let reason: String

    init(path: String, _ reason: String) {
        self.path = path
        self.reason = reason
    }

    /// `node state <path>: <reason>`.
    public var description: String { "node state \(path): \(reason)" }
}
