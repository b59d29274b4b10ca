import Logging
import NIOConcurrencyHelpers
import QuorumProtocol

/// Sends log entries (a proxy's receipts) to every node, off the caller's path: ``submit(_:)``
/// only queues; one sender at a time takes everything queued (up to ``LogLimits/maximumSubmitted``
/// entries and ``LogLimits/maximumBatchBytes``) and sends it as one ``LogSubmit`` to all nodes at
/// once, so under load many receipts share a round trip. Every node keeps what it accepts and
/// gossips it on, so an entry one node missed still reaches the others; a node that refuses or
/// cannot be reached is logged.
public final class LogSubmitter: Sendable {
    private struct Queue {
        var entries: [[UInt8]] = []
        var sending = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let nodes: [UInt16]
    private let ask: @Sendable (UInt16, LogSubmit) async -> Result<LogSubmitResponse, any Error>
    private let maximumQueued: Int
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
            maximumQueued: maximumQueued, logger: logger)
    }

    /// A submitter that sends each ``LogSubmit`` with `ask`.
    public init(
        nodes: [UInt16], ask: @escaping @Sendable (UInt16, LogSubmit) async -> Result<LogSubmitResponse, any Error>,
        maximumQueued: Int = 100_000, logger: Logger
    ) {
        self.nodes = nodes
        self.ask = ask
        self.maximumQueued = maximumQueued
        self.logger = logger
    }

    /// Queues `entry` (a ``LogEntry`` leaf) for every node and returns at once. Beyond
    /// `maximumQueued` waiting entries the entry is dropped and logged: the agent's call never
    /// waits on the log.
    public func submit(_ entry: [UInt8]) {
        let start = queue.withLockedValue { queue -> Bool in
            guard queue.entries.count < maximumQueued else { return false }
            queue.entries.append(entry)
            guard !queue.sending else { return false }
            queue.sending = true
            return true
        }
        if start { Task { await drain() } }
    }

    /// Waits until everything queued so far has been sent (or failed).
    public func flush() async {
        await withCheckedContinuation { continuation in
            let done = queue.withLockedValue { queue -> Bool in
                guard queue.sending || !queue.entries.isEmpty else { return true }
                queue.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    private func drain() async {
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
                let waiters = queue.withLockedValue { queue -> [CheckedContinuation<Void, Never>] in
                    guard queue.entries.isEmpty else { return [] }
                    queue.sending = false
                    defer { queue.waiters = [] }
                    return queue.waiters
                }
                if queue.withLockedValue({ $0.sending }) { continue }
                for waiter in waiters { waiter.resume() }
                return
            }
            await send(batch)
        }
    }

    private func send(_ entries: [[UInt8]]) async {
        let message: LogSubmit
        do { message = try LogSubmit(entries: entries) } catch {
            logger.error("cannot build a log submission", metadata: ["error": "\(error)"])
            return
        }
        let ask = ask
        let logger = logger
        await withTaskGroup(of: Void.self) { group in
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
                    case .failure(let error):
                        logger.info(
                            "log entries not delivered; the other nodes gossip them",
                            metadata: ["node": "\(node)", "count": "\(entries.count)", "error": "\(error)"])
                    }
                }
            }
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
