import Foundation
import Logging
import NIOPosix
import QuorumLog
import QuorumProtocol
import ServiceLifecycle

/// Looks for the receipt of every decision this node reached, and records the ones that never
/// reached the log: what a proxy that keeps receipts out of the log (docs/threat-model.md,
/// "Withheld receipts") leaves behind on every node that decided.
///
/// A decision is judged once it is `after` old (`replication.unlogged_after_ms`): its request id
/// is looked up in the log's receipt index, then among the entries waiting for a checkpoint (an
/// entry the proxy did submit is the log's delay, not the proxy's). While the node's log trails
/// the newest quorum checkpoint it knows (catching up), nothing is judged: a receipt may be in
/// the part it has yet to fetch. Each decision is judged once; the time up to which decisions
/// were judged is kept with the log (`replica/unlogged-through`), so a restart neither judges
/// twice nor skips any still in the decision ledger.
///
/// What it finds goes in the log's `unlogged` family (served at the audit API's `unlogged`, and
/// cross-checked between nodes by `quorumctl audit unlogged`), in a warning naming the request
/// id, and in the counter `quorum_node_unlogged_decisions_total{decision}`.
public final class UnloggedWatch: Service, Sendable {
    /// The most decisions judged in one pass; the rest wait for the next.
    static let passLimit = 10_000

    private let store: NodeStore
    private let replicated: ReplicatedLog
    private let after: Duration
    private let metrics: LogMetrics
    private let threadPool: NIOThreadPool
    private let logger: Logger
    private let now: @Sendable () -> Int64

    /// A watch over the decisions in `store` and the receipts in `replicated`, judging each
    /// decision `after` it was made.
    public init(
        store: NodeStore, replicated: ReplicatedLog, after: Duration, metrics: LogMetrics,
        threadPool: NIOThreadPool = .singleton, logger: Logger,
        now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
    ) {
        self.store = store
        self.replicated = replicated
        self.after = after
        self.metrics = metrics
        self.threadPool = threadPool
        self.logger = logger
        self.now = now
    }

    /// How often a pass runs: a quarter of `after`, between 250 ms and 15 s.
    var interval: Duration { min(max(after / 4, .milliseconds(250)), .seconds(15)) }

    /// Runs a pass every ``interval`` until graceful shutdown.
    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: self.interval)
                do {
                    _ = try await self.threadPool.runIfActive { try self.pass() }
                } catch {
                    self.logger.error("cannot look for the receipts of this node's decisions: \(error)")
                }
            }
        }
    }

    /// One pass, blocking (call it on a thread pool): judges the decisions made since the last
    /// pass and at least `after` ago, records, logs and counts those without a receipt, and
    /// returns them.
    @discardableResult
    public func pass() throws -> [UnloggedDecision] {
        let horizon = now() - Self.milliseconds(after)
        // A node catching up may not hold a receipt the quorum has logged: judge nothing yet.
        if let known = try replicated.knownCheckpoint(),
            try Checkpoint.parse(known.note.text).size > replicated.log.size
        {
            return []
        }
        let ledger = DecisionLedger(store: store)
        let start = try replicated.unloggedThrough() ?? 0
        let decided = try ledger.decisions(from: start, until: horizon, limit: Self.passLimit)
        // A full pass judges up to (excluding) the millisecond it stopped in; the next starts there.
        let through = decided.count == Self.passLimit ? max(decided[decided.count - 1].at, start + 1) : horizon
        guard through > start else { return [] }
        var missing: [(requestID: String, at: Int64)] = []
        var seen = Set<String>()
        for (requestID, at) in decided where at < through && seen.insert(requestID).inserted {
            if try replicated.receiptIndex(requestID: requestID) == nil { missing.append((requestID, at)) }
        }
        var found: [UnloggedDecision] = []
        if !missing.isEmpty {
            let waiting = try waitingRequestIDs()
            for (requestID, at) in missing where !waiting.contains(requestID) {
                // Appended between the first look and the pending snapshot (an append moves an
                // entry from pending to the log in one write): in the log now.
                if try replicated.receiptIndex(requestID: requestID) != nil { continue }
                // A decision recorded by a sign request alone (no verdict of this node) is not one to judge.
                guard let decision = try VerdictService.decided(requestID, in: store) else { continue }
                found.append(
                    UnloggedDecision(
                        requestID: requestID, decidedAt: at, allow: decision.allow,
                        decryptionShare: decision.allow && decision.secret != nil))
            }
        }
        let kept = found.isEmpty ? 0 : try replicated.unlogged().count
        try replicated.log.writeCompanion(try replicated.noteUnlogged(found, through: through, kept: kept))
        report(found)
        return found
    }

    /// The request ids of the receipts waiting for a checkpoint.
    private func waitingRequestIDs() throws -> Set<String> {
        var ids = Set<String>()
        for (_, entry) in try replicated.pendingEntries() {
            if case .receipt(let receipt) = try? LogEntry(decoding: entry) { ids.insert(receipt.requestID) }
        }
        return ids
    }

    private func report(_ found: [UnloggedDecision]) {
        guard !found.isEmpty else { return }
        for decision in found {
            logger.warning(
                "a decision of this node has no receipt in the log; if k nodes report it, the proxy withheld it",
                metadata: [
                    "request_id": "\(decision.requestID)", "decision": "\(decision.allow ? "allow" : "deny")",
                    "decryption_share": "\(decision.decryptionShare ? "given" : "none")",
                    "decided_at_ms": "\(decision.decidedAt)",
                ])
        }
        let allows = found.filter(\.allow).count
        metrics.unlogged(decision: "allow", count: allows)
        metrics.unlogged(decision: "deny", count: found.count - allows)
    }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}
