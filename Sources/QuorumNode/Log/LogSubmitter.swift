import Logging
import NIOConcurrencyHelpers
import QuorumProtocol

/// Sends log entries (a proxy's receipts) to every node, off the caller's path: ``submit(_:)``
/// only queues; one sender at a time takes everything queued (up to ``LogLimits/maximumSubmitted``
/// entries and ``LogLimits/maximumBatchBytes``) and sends it as one ``LogSubmit`` to all nodes at
/// once, so under load many receipts share a round trip. Every node keeps what it accepts and
/// gossips it on, so an entry one node missed still reaches the others; a node that refuses or
/// cannot be reached is logged. A submission no node took (none could be reached) goes back to the
/// head of the queue and is sent again, backing off from 250 ms to 5 s, for up to `retryFor`;
/// past that, while still no node can be reached, entries are dropped and logged at error.
public final class LogSubmitter: Sendable {
    private struct Queue {
        var entries: [[UInt8]] = []
        var sending = false
        var dropped = 0
    }

    private let nodes: [UInt16]
    private let ask: @Sendable (UInt16, LogSubmit) async -> Result<LogSubmitResponse, any Error>
    private let maximumQueued: Int
    private let retryFor: Duration
    private let queue = NIOLockedValueBox(Queue())
    private let logger: Logger

    /// A submitter that sends to `nodes` over `coordinator`'s connections (the proxy's).
    public convenience init(
        coordinator: SigningCoordinator, deadline: Duration = .seconds(5), maximumQueued: Int = 100_000,
        logger: Logger
    ) {
        self.init(
            nodes: coordinator.nodes.keys.sorted(),
            ask: { node, message in await Self.answer(coordinator, node, message, deadline) },
            maximumQueued: maximumQueued, retryFor: .seconds(300), logger: logger)
    }

    /// A submitter that sends each ``LogSubmit`` with `ask`.
    public init(
        nodes: [UInt16], ask: @escaping @Sendable (UInt16, LogSubmit) async -> Result<LogSubmitResponse, any Error>,
        maximumQueued: Int = 100_000, retryFor: Duration = .seconds(300), logger: Logger
    ) {
        self.retryFor = retryFor
        self.nodes = nodes
        self.ask = ask
        self.maximumQueued = maximumQueued
        self.logger = logger
    }

    /// Queues `entry` (a ``LogEntry`` leaf) for every node and returns at once. Beyond
    /// `maximumQueued` waiting entries the entry is dropped and logged (the first, then every
    /// thousandth): the agent's call never waits on the log.
    public func submit(_ entry: [UInt8]) {
        let (start, dropped) = queue.withLockedValue { queue -> (Bool, Int) in
            guard queue.entries.count < maximumQueued else {
                queue.dropped += 1
                return (false, queue.dropped)
            }
            queue.entries.append(entry)
            guard !queue.sending else { return (false, 0) }
            queue.sending = true
            return (true, 0)
        }
        if dropped % 1000 == 1 {
            logger.error(
                "log entry dropped: \(maximumQueued) entries already wait for the nodes",
                metadata: ["dropped_so_far": "\(dropped)"])
        }
        if start { Task { await drain() } }
    }

    /// Waits until everything queued so far has been sent (or failed), at most `limit`; whether
    /// it was.
    public func flush(within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while queue.withLockedValue({ $0.sending || !$0.entries.isEmpty }) {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    private func drain() async {
        var failingSince: ContinuousClock.Instant?
        var backoff = Duration.milliseconds(250)
        while true {
            let batch = queue.withLockedValue { queue -> [[UInt8]] in
                // At most 1024 entries and 2 MiB of them, well within a frame.
                var taken = 0
                var bytes = 0
                for entry in queue.entries.prefix(LogLimits.maximumSubmitted) {
                    guard taken == 0 || bytes + entry.count <= LogLimits.maximumBatchBytes else { break }
                    taken += 1
                    bytes += entry.count + 4
                }
                defer { queue.entries.removeFirst(taken) }
                return Array(queue.entries.prefix(taken))
            }
            guard !batch.isEmpty else {
                let done = queue.withLockedValue { queue -> Bool in
                    guard queue.entries.isEmpty else { return false }
                    queue.sending = false
                    return true
                }
                if done { return }
                continue
            }
            if await send(batch) {
                failingSince = nil
                backoff = .milliseconds(250)
                continue
            }
            let since = failingSince ?? .now
            failingSince = since
            guard ContinuousClock.now - since < retryFor else {
                // Still no node, past the retry window: drop rather than hold receipts without bound.
                logger.error(
                    "log entries dropped: no node could be reached for \(retryFor)",
                    metadata: ["count": "\(batch.count)"])
                continue
            }
            queue.withLockedValue { $0.entries.insert(contentsOf: batch, at: 0) }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(5))
        }
    }

    /// Sends `entries` to every node at once; whether any node answered (took them, or refused
    /// some for good: either way they need not be sent again).
    private func send(_ entries: [[UInt8]]) async -> Bool {
        let message: LogSubmit
        do { message = try LogSubmit(entries: entries) } catch {
            logger.error("cannot build a log submission", metadata: ["error": "\(error)"])
            return true
        }
        let ask = ask
        let logger = logger
        return await withTaskGroup(of: Bool.self) { group in
            for node in nodes {
                group.addTask {
                    switch await ask(node, message) {
                    case .success(let response):
                        let refused = response.outcomes.filter { $0.status == .refused }
                        if let first = refused.first {
                            logger.warning(
                                "log entries refused",
                                metadata: ["node": "\(node)", "count": "\(refused.count)", "first": "\(first.reason)"])
                        }
                        return true
                    case .failure(let error):
                        logger.info(
                            "log entries not delivered; the other nodes gossip them",
                            metadata: ["node": "\(node)", "count": "\(entries.count)", "error": "\(error)"])
                        return false
                    }
                }
            }
            var answered = false
            for await reached in group where reached { answered = true }
            return answered
        }
    }

    /// One node's answer, its failure as a value (not a typed `do`/`catch` inline in the task-group
    /// child: that crashed release builds, see `NodeClient.answer`).
    private static func answer(
        _ coordinator: SigningCoordinator, _ node: UInt16, _ message: LogSubmit, _ deadline: Duration
    ) async -> Result<LogSubmitResponse, any Error> {
        do throws(SigningCoordinator.SigningError) {
            return .success(try await coordinator.ask(node, message, LogSubmitResponse.self, deadline: deadline))
        } catch {
            return .failure(error)
        }
    }
}
