import NIOConcurrencyHelpers
import NIOPosix

/// Group commit for the ``DecisionLedger``: sign requests that arrive while a synced write is in
/// progress are checked and written together in the next batch, so a slow `fsync` delays the
/// requests queued behind it by one more sync, not by one sync each.
///
/// Durability is unchanged: a request's continuation resumes only after the batch holding its
/// record is on disk, and the share is returned only after that. One writer runs at a time, on
/// the thread pool; it checks each queued request against the ledger (and against the requests
/// before it in the same batch), writes every new record in one synced RocksDB batch, then
/// answers them all.
final class DecisionCommitter: Sendable {
    /// What the ledger says about one decision.
    enum Outcome: Sendable {
        /// Recorded now, synced.
        case recorded
        /// The same message was already recorded for the request id.
        case alreadySigned
        /// Another message is recorded for the request id.
        case conflict(DecisionLedger.Record)
    }

    private struct Item {
        let requestID: String
        let digest: [UInt8]
        let at: Int64
        let continuation: CheckedContinuation<Outcome, any Error>
    }

    private let ledger: DecisionLedger
    private let writer: BatchWriter<Item>

    init(ledger: DecisionLedger, threadPool: NIOThreadPool) {
        self.ledger = ledger
        writer = BatchWriter(threadPool: threadPool) { batch, active in
            guard active else {
                for item in batch { item.continuation.resume(throwing: CancellationError()) }
                return
            }
            Self.write(batch, ledger: ledger)
        }
    }

    /// Checks `requestID` against the ledger and records `digest` for it unless a decision is
    /// already recorded; returns once the record is on disk.
    func commit(requestID: String, digest: [UInt8], at: Int64) async throws -> Outcome {
        try await withCheckedThrowingContinuation { continuation in
            writer.enqueue(Item(requestID: requestID, digest: digest, at: at, continuation: continuation))
        }
    }

    /// Checks and writes one batch; runs on a thread-pool thread.
    private static func write(_ batch: [Item], ledger: DecisionLedger) {
        var outcomes: [Result<Outcome, any Error>] = []
        var fresh: [(requestID: String, digest: [UInt8], at: Int64)] = []
        var inBatch: [String: [UInt8]] = [:]
        for item in batch {
            do {
                if let earlier = inBatch[item.requestID] {
                    outcomes.append(
                        .success(
                            earlier == item.digest
                                ? .alreadySigned
                                : .conflict(DecisionLedger.Record(digest: earlier, signedAt: item.at))))
                } else if let existing = try ledger.decision(for: item.requestID) {
                    outcomes.append(.success(existing.digest == item.digest ? .alreadySigned : .conflict(existing)))
                } else {
                    inBatch[item.requestID] = item.digest
                    fresh.append((item.requestID, item.digest, item.at))
                    outcomes.append(.success(.recorded))
                }
            } catch {
                outcomes.append(.failure(error))
            }
        }
        do {
            try ledger.record(fresh)
        } catch {
            // Nothing of this batch is on disk: every request that needed a record fails.
            outcomes = outcomes.map { outcome in
                if case .success(.recorded) = outcome { return .failure(error) }
                return outcome
            }
        }
        for (item, outcome) in zip(batch, outcomes) { item.continuation.resume(with: outcome) }
    }
}
