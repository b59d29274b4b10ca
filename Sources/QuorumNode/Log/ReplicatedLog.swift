import Foundation
import QuorumCrypto
import QuorumLog
import QuorumProtocol

/// A node's replicated audit log on disk (`<data_dir>/log`): the ``MerkleLog`` holding only what
/// quorum checkpoints cover, and beside it, in companion column families of the same RocksDB,
/// everything replication must not lose (docs/audit-log.md, "Replication"):
///
/// | family | key | value |
/// | --- | --- | --- |
/// | `pending` | leaf hash | arrival number (u64) ‖ entry: accepted, not yet in the log |
/// | `replica` | `term` | the highest term seen (u64) |
/// | `replica` | `staged` | the ``StagedBatch`` stored and signed, not yet seen published |
/// | `replica` | `checkpoint` | the newest quorum checkpoint known (ms stored at, i64 ‖ note), which may be beyond the log while the node catches up |
/// | `signed` | size (u64) | the root this node signed for that size (32) ‖ term (u64): it never signs another |
/// | `receipts` | request id | the receipt entry's leaf index (u64) |
/// | `cosigned` | key name ‖ 0x00 ‖ size (u64) | the root a node key was seen cosigning for that size (32) ‖ the note |
/// | `evidence` | number (u64) | an ``EquivocationEvidence`` record |
/// | `unlogged` | decided at (ms, u64) ‖ request id | an ``UnloggedDecision``'s flags (1 byte: 1 allow, 2 decryption share) |
/// | `replica` | `unlogged-through` | decisions made before this time (ms, i64) have been looked for in the log (``UnloggedWatch``) |
///
/// A batch appended on a published checkpoint goes in one synced write with the checkpoint note,
/// its receipt index records, the removal of its entries from `pending` and of the staged batch.
/// Every call blocks on RocksDB: callers run it on a `NIOThreadPool`.
public final class ReplicatedLog: AuditLogSource, Sendable {
    static let pendingFamily = "pending"
    static let replicaFamily = "replica"
    static let signedFamily = "signed"
    static let receiptsFamily = "receipts"
    static let cosignedFamily = "cosigned"
    static let evidenceFamily = "evidence"
    static let unloggedFamily = "unlogged"
    static let families = [
        pendingFamily, replicaFamily, signedFamily, receiptsFamily, cosignedFamily, evidenceFamily, unloggedFamily,
    ]
    /// The most ``UnloggedDecision`` records kept; beyond it the oldest go.
    static let maximumUnlogged = 10_000

    static let termKey = Array("term".utf8)
    static let stagedKey = Array("staged".utf8)
    static let checkpointKey = Array("checkpoint".utf8)
    static let unloggedThroughKey = Array("unlogged-through".utf8)

    /// The Merkle log: entries covered by quorum checkpoints, tiles, proofs, stored checkpoints.
    public let log: MerkleLog

    /// Opens (creating on first use) the log in `<dataDirectory>/log`. With `readOnly` the log
    /// must exist and nothing in it changes: an auditor's or a test's view, which also works while
    /// the node holds it open.
    public init(dataDirectory: String, readOnly: Bool = false) throws {
        let path = (dataDirectory as NSString).appendingPathComponent("log")
        log = try MerkleLog(directory: path, readOnly: readOnly, companionFamilies: Self.families)
    }

    /// The log's directory.
    public var path: String { log.directory }

    // MARK: - AuditLogSource

    /// The newest quorum checkpoint stored with the tree it covers.
    public func latestCheckpoint() throws -> SignedNote? { try log.latestCheckpoint() }

    /// The leaf index of `requestID`'s receipt.
    public func receiptIndex(requestID: String) throws -> UInt64? {
        guard let value = try log.companionValue(Self.receiptsFamily, Array(requestID.utf8)), value.count == 8
        else { return nil }
        return UInt64(bigEndianBytes: value)
    }

    /// Every equivocation caught, oldest first.
    public func evidence() throws -> [EquivocationEvidence] {
        var found: [EquivocationEvidence] = []
        try log.scanCompanion(Self.evidenceFamily) { _, value in
            if let record = try? Self.decodeEvidence(value) { found.append(record) }
            return true
        }
        return found
    }

    /// Every decision recorded as unlogged, oldest first.
    public func unlogged() throws -> [UnloggedDecision] {
        var found: [UnloggedDecision] = []
        try log.scanCompanion(Self.unloggedFamily) { key, value in
            guard key.count > 8, value.count == 1 else { return true }
            found.append(
                UnloggedDecision(
                    requestID: String(decoding: key.dropFirst(8), as: UTF8.self),
                    decidedAt: Int64(bitPattern: UInt64(bigEndianBytes: key.prefix(8))), allow: value[0] & 1 != 0,
                    decryptionShare: value[0] & 2 != 0))
            return true
        }
        return found
    }

    // MARK: - Replica records

    /// Decisions made before this time (ms) have been looked for in the log; nil before the first look.
    func unloggedThrough() throws -> Int64? {
        try log.companionValue(Self.replicaFamily, Self.unloggedThroughKey).map {
            Int64(bitPattern: UInt64(bigEndianBytes: $0))
        }
    }

    /// The highest term seen.
    func highestTerm() throws -> UInt64 {
        try log.companionValue(Self.replicaFamily, Self.termKey).map { UInt64(bigEndianBytes: $0) } ?? 0
    }

    /// The staged batch, if any.
    func staged() throws -> StagedBatch? {
        guard let bytes = try log.companionValue(Self.replicaFamily, Self.stagedKey) else { return nil }
        return try StagedBatch.decode(payload: bytes)
    }

    /// The newest quorum checkpoint known and when it was stored.
    func knownCheckpoint() throws -> (note: SignedNote, at: Int64)? {
        guard let bytes = try log.companionValue(Self.replicaFamily, Self.checkpointKey), bytes.count > 8 else {
            return nil
        }
        let at = Int64(bitPattern: UInt64(bigEndianBytes: bytes.prefix(8)))
        return (try SignedNote.parse(Array(bytes.dropFirst(8))), at)
    }

    /// The root this node signed for checkpoint size `size`, if it signed one.
    func signedRoot(size: UInt64) throws -> [UInt8]? {
        try log.companionValue(Self.signedFamily, size.bigEndianBytes).map { Array($0.prefix(32)) }
    }

    /// The root key `keyName` was seen cosigning for `size`, and that note.
    func cosigned(keyName: String, size: UInt64) throws -> (root: [UInt8], note: String)? {
        guard let value = try log.companionValue(Self.cosignedFamily, Self.cosignedKey(keyName, size)),
            value.count >= 32
        else { return nil }
        return (Array(value.prefix(32)), String(decoding: value.dropFirst(32), as: UTF8.self))
    }

    /// Every pending entry, oldest first.
    func pendingEntries() throws -> [(sequence: UInt64, entry: [UInt8])] {
        var found: [(UInt64, [UInt8])] = []
        try log.scanCompanion(Self.pendingFamily) { _, value in
            guard value.count > 8 else { return true }
            found.append((UInt64(bigEndianBytes: value.prefix(8)), Array(value.dropFirst(8))))
            return true
        }
        return found.sorted { $0.0 < $1.0 }
    }

    /// The number of evidence records kept.
    func evidenceCount() throws -> UInt64 {
        var count: UInt64 = 0
        try log.scanCompanion(Self.evidenceFamily) { _, _ in
            count += 1
            return true
        }
        return count
    }

    // MARK: - Writes (each one synced batch)

    /// The operations that keep `entries` pending, numbered from `sequence`.
    static func pend(_ entries: [(leaf: [UInt8], entry: [UInt8])], from sequence: UInt64) -> WriteBatch {
        var batch = WriteBatch()
        for (offset, item) in entries.enumerated() {
            batch.put(pendingFamily, item.leaf, (sequence + UInt64(offset)).bigEndianBytes + item.entry)
        }
        return batch
    }

    /// The operation recording the highest term.
    static func raise(term: UInt64, into batch: inout WriteBatch) {
        batch.put(replicaFamily, termKey, term.bigEndianBytes)
    }

    /// The operations that stage `staged` under its term and record the root signed for its size.
    static func stage(_ staged: StagedBatch, highestTerm: UInt64) -> WriteBatch {
        var batch = WriteBatch()
        raise(term: highestTerm, into: &batch)
        batch.put(replicaFamily, stagedKey, staged.encodedPayload())
        batch.put(signedFamily, staged.size.bigEndianBytes, staged.root + staged.term.bigEndianBytes)
        return batch
    }

    /// The operation remembering `note` as the newest quorum checkpoint known.
    static func know(_ note: SignedNote, at: Int64, into batch: inout WriteBatch) {
        batch.put(replicaFamily, checkpointKey, UInt64(bitPattern: at).bigEndianBytes + Array(note.serialized.utf8))
    }

    /// The operations that go with appending `entries` (decoded as `decoded`) from index `start`:
    /// the receipt index, the entries leaving `pending`, the staged batch cleared.
    static func appended(
        _ entries: [[UInt8]], decoded: [LogEntry?], start: UInt64, clearStaged: Bool
    ) -> WriteBatch {
        var batch = WriteBatch()
        for (offset, entry) in entries.enumerated() {
            batch.delete(pendingFamily, RFC9162.leafHash(entry))
            if case .receipt(let receipt)? = decoded[offset] {
                batch.put(receiptsFamily, Array(receipt.requestID.utf8), (start + UInt64(offset)).bigEndianBytes)
            }
        }
        if clearStaged { batch.delete(replicaFamily, stagedKey) }
        return batch
    }

    /// The operations recording `found` as unlogged and every decision before `through` (ms) as
    /// looked for, dropping the oldest records beyond ``maximumUnlogged`` (`kept` is how many there are).
    func noteUnlogged(_ found: [UnloggedDecision], through: Int64, kept: Int) throws -> WriteBatch {
        var batch = WriteBatch()
        for decision in found {
            let flags: UInt8 = (decision.allow ? 1 : 0) | (decision.decryptionShare ? 2 : 0)
            batch.put(
                Self.unloggedFamily,
                UInt64(clamping: max(0, decision.decidedAt)).bigEndianBytes + Array(decision.requestID.utf8), [flags])
        }
        var excess = kept + found.count - Self.maximumUnlogged
        if excess > 0 {
            try log.scanCompanion(Self.unloggedFamily) { key, _ in
                batch.delete(Self.unloggedFamily, key)
                excess -= 1
                return excess > 0
            }
        }
        batch.put(Self.replicaFamily, Self.unloggedThroughKey, UInt64(bitPattern: through).bigEndianBytes)
        return batch
    }

    /// The operation recording that `keyName` cosigned `root` at `size` in `note`.
    static func cosign(keyName: String, size: UInt64, root: [UInt8], note: String, into batch: inout WriteBatch) {
        batch.put(cosignedFamily, cosignedKey(keyName, size), root + Array(note.utf8))
    }

    /// The operation keeping `evidence` as record number `number`.
    static func keep(_ evidence: EquivocationEvidence, number: UInt64, into batch: inout WriteBatch) {
        var writer = WireWriter()
        writer.write(string: evidence.keyName)
        writer.write(evidence.size)
        writer.write(string: evidence.noteA)
        writer.write(string: evidence.noteB)
        batch.put(evidenceFamily, number.bigEndianBytes, writer.bytes)
    }

    static func decodeEvidence(_ bytes: [UInt8]) throws(WireError) -> EquivocationEvidence {
        var reader = WireReader(bytes)
        let name = try reader.readString("keyName")
        let size = try reader.readUInt64("size")
        let noteA = try reader.readString("noteA")
        let noteB = try reader.readString("noteB")
        try reader.finish()
        return EquivocationEvidence(keyName: name, size: size, noteA: noteA, noteB: noteB)
    }

    static func cosignedKey(_ keyName: String, _ size: UInt64) -> [UInt8] {
        Array(keyName.utf8) + [0] + size.bigEndianBytes
    }
}
