import Foundation
import QuorumCrypto

/// What a node has signed, by request id, in its ``NodeStore`` family `decisions`: the node's
/// memory of DESIGN.md §7's rule that it never signs two different decisions for one request id,
/// and the evidence it keeps when asked to.
///
/// Keys in `decisions`:
///
/// | key | value |
/// | --- | --- |
/// | `d/` request id | SHA-256 of the message signed (32 bytes), then when (i64 ms, big-endian) |
/// | `t/` signedAt (u64 big-endian) request id | empty: the time index pruning walks |
/// | `e/` at (u64 big-endian) kind request id | one ``Evidence`` record as JSON |
///
/// Every call is blocking RocksDB work: callers run it on a `NIOThreadPool`, never on an event
/// loop or the cooperative pool. Each write is one synced batch, so a record is on disk before the
/// share it covers leaves the node.
public struct DecisionLedger: Sendable {
    /// A decision the node signed.
    public struct Record: Sendable, Hashable {
        /// SHA-256 of the message.
        public let digest: [UInt8]
        /// When the node first signed it, in milliseconds since the Unix epoch.
        public let signedAt: Int64
    }

    /// A refused request that is evidence against its sender, or against a signer whose shares
    /// show up twice: kept until an operator clears it (not pruned).
    public struct Evidence: Sendable, Hashable, Codable {
        /// `conflicting-decision` or `nonce-already-used`.
        public let kind: String
        /// The request id the refused request named.
        public let requestID: String
        /// Who sent it (`proxy`).
        public let peer: String
        /// When it was refused, in milliseconds since the Unix epoch.
        public let at: Int64
        /// The node's boot epoch then.
        public let bootEpoch: UInt64
        /// The nonce id the request named.
        public let nonceID: UInt64
        /// Hex SHA-256 of the message the node had signed for the request id, if any.
        public let signedDigest: String?
        /// Hex SHA-256 of the message the refused request asked for.
        public let requestedDigest: String

        /// An evidence record.
        public init(
            kind: String, requestID: String, peer: String, at: Int64, bootEpoch: UInt64, nonceID: UInt64,
            signedDigest: [UInt8]?, requestedDigest: [UInt8]
        ) {
            self.kind = kind
            self.requestID = requestID
            self.peer = peer
            self.at = at
            self.bootEpoch = bootEpoch
            self.nonceID = nonceID
            self.signedDigest = signedDigest.map(Hex.encode)
            self.requestedDigest = Hex.encode(requestedDigest)
        }
    }

    static let decisionPrefix = Array("d/".utf8)
    static let timePrefix = Array("t/".utf8)
    static let evidencePrefix = Array("e/".utf8)

    /// The store. Its owner (the node runtime) closes it at shutdown; later calls then throw
    /// ``NodeStoreError`` naming it.
    public let store: NodeStore

    /// The store's directory.
    public var path: String { store.path }

    /// The ledger in `store`'s `decisions` family.
    public init(store: NodeStore) { self.store = store }

    /// The decision signed for `requestID`, if one is retained.
    public func decision(for requestID: String) throws(NodeStoreError) -> Record? {
        guard let value = try store.get(.decisions, Self.decisionPrefix + Array(requestID.utf8)) else { return nil }
        guard value.count == 40 else {
            throw NodeStoreError(
                path: path, "decision record for request \(requestID) is \(value.count) bytes, not 40")
        }
        return Record(digest: Array(value[0..<32]), signedAt: Int64(bitPattern: UInt64(bigEndianBytes: value[32...])))
    }

    /// The request ids decided from `from` up to (excluding) `until` (ms since the Unix epoch), in
    /// time order, with when: at most `limit` of them (a request id signed twice may appear twice).
    public func decisions(
        from: Int64, until: Int64, limit: Int
    ) throws(NodeStoreError) -> [(requestID: String, at: Int64)] {
        var found: [(requestID: String, at: Int64)] = []
        guard until > from else { return found }
        try store.scan(
            .decisions, from: Self.timePrefix + UInt64(clamping: max(0, from)).bigEndianBytes,
            until: Self.timePrefix + UInt64(clamping: max(0, until)).bigEndianBytes
        ) { key, _ in
            let stamp = key.dropFirst(Self.timePrefix.count)
            guard stamp.count > 8 else { return true }
            found.append(
                (String(decoding: stamp.dropFirst(8), as: UTF8.self), Int64(bitPattern: UInt64(bigEndianBytes: stamp))))
            return found.count < limit
        }
        return found
    }

    /// Records that the node signed the message with SHA-256 `digest` for `requestID` at `at`, in
    /// one synced batch with its time-index entry.
    public func record(requestID: String, digest: [UInt8], at: Int64) throws(NodeStoreError) {
        try record([(requestID, digest, at)])
    }

    /// Records several decisions in one synced batch (a group commit): all or none are on disk
    /// when it returns.
    public func record(_ decisions: [(requestID: String, digest: [UInt8], at: Int64)]) throws(NodeStoreError) {
        let changes = Self.changes(recording: decisions)
        guard !changes.isEmpty else { return }
        try store.write(changes)
    }

    /// The writes that record `decisions`, for a caller that makes them part of a larger batch
    /// (the verdict service records a decision in the same synced write as the verdict).
    public static func changes(
        recording decisions: [(requestID: String, digest: [UInt8], at: Int64)]
    ) -> [NodeStore.Change] {
        var changes: [NodeStore.Change] = []
        for (requestID, digest, at) in decisions {
            precondition(digest.count == 32, "a decision digest is SHA-256")
            let id = Array(requestID.utf8)
            changes.append(.put(.decisions, Self.decisionPrefix + id, digest + UInt64(bitPattern: at).bigEndianBytes))
            changes.append(.put(.decisions, Self.timePrefix + UInt64(clamping: max(0, at)).bigEndianBytes + id, []))
        }
        return changes
    }

    /// Keeps `evidence`, synced.
    public func keep(_ evidence: Evidence) throws(NodeStoreError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let value: Data
        do { value = try encoder.encode(evidence) } catch {
            throw NodeStoreError(path: path, "cannot encode evidence: \(error)")
        }
        let key =
            Self.evidencePrefix + UInt64(clamping: max(0, evidence.at)).bigEndianBytes + Array(evidence.kind.utf8)
            + [0x2F] + Array(evidence.requestID.utf8)
        try store.write([.put(.decisions, key, Array(value))])
    }

    /// Every evidence record, oldest first.
    public func evidence() throws(NodeStoreError) -> [Evidence] {
        var records: [Evidence] = []
        try store.scan(.decisions, prefix: Self.evidencePrefix) { _, value in
            records.append(try JSONDecoder().decode(Evidence.self, from: Data(value)))
            return true
        }
        return records
    }

    /// How many evidence records are kept.
    public func evidenceCount() throws(NodeStoreError) -> Int {
        var count = 0
        try store.scan(.decisions, prefix: Self.evidencePrefix) { _, _ in
            count += 1
            return true
        }
        return count
    }

    /// How many decisions are retained.
    public func decisionCount() throws(NodeStoreError) -> Int {
        var count = 0
        try store.scan(.decisions, prefix: Self.decisionPrefix) { _, _ in
            count += 1
            return true
        }
        return count
    }

    /// Forgets decisions signed before `cutoff` (milliseconds since the Unix epoch), at most
    /// `limit` of them in one synced batch; returns how many. After this a different message may
    /// be signed for those request ids, so the retention window must outlast every request id's
    /// use (docs/architecture.md, "Signing service").
    @discardableResult
    public func prune(signedBefore cutoff: Int64, limit: Int = 10_000) throws(NodeStoreError) -> Int {
        var changes: [NodeStore.Change] = []
        var pruned = 0
        try store.scan(.decisions, prefix: Self.timePrefix) { key, _ in
            let stamp = key.dropFirst(Self.timePrefix.count)
            guard stamp.count >= 8, changes.count < 2 * limit else { return false }
            let signedAt = Int64(bitPattern: UInt64(bigEndianBytes: stamp.prefix(8)))
            guard signedAt < cutoff else { return false }
            let requestID = Array(stamp.dropFirst(8))
            changes.append(.delete(.decisions, key))
            // Two signatures of one message can index one request id twice; the record goes only
            // when its own time is past the window.
            let record = try store.get(.decisions, Self.decisionPrefix + requestID)
            if let record, record.count == 40,
                Int64(bitPattern: UInt64(bigEndianBytes: record[32...])) < cutoff
            {
                changes.append(.delete(.decisions, Self.decisionPrefix + requestID))
                // The verdict behind the decision goes with it (its retention is the decision's).
                changes += PolicyStore.deletions(forRequest: requestID)
                pruned += 1
            }
            return true
        }
        guard !changes.isEmpty else { return 0 }
        try store.write(changes)
        return pruned
    }
}

extension UInt64 {
    var bigEndianBytes: [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: self >> (56 - 8 * $0)) } }

    init(bigEndianBytes bytes: some Collection<UInt8>) {
        self = bytes.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }
}
