import NIOConcurrencyHelpers
import NIOPosix

/// The loop behind a group commit: items are queued from any thread; one writer at a time, on
/// the thread pool, takes everything queued so far and hands it to `write` as one batch, again and
/// again until the queue is empty. Both ``StoreCommitter`` and the signing ledger's
/// `DecisionCommitter` are this loop with their own batch step.
final class BatchWriter<Item: Sendable>: Sendable {
    private struct Queue {
        var items: [Item] = []
        var writing = false
    }

    private let threadPool: NIOThreadPool
    private let queue = NIOLockedValueBox(Queue())
    /// Handles one batch, in queue order; `active` is false when the thread pool is shutting down
    /// (the batch must then be failed, not written).
    private let write: @Sendable (_ batch: [Item], _ active: Bool) -> Void

    init(threadPool: NIOThreadPool, write: @escaping @Sendable (_ batch: [Item], _ active: Bool) -> Void) {
        self.threadPool = threadPool
        self.write = write
    }

    /// Queues `item` after everything queued before it, starting a writer if none is running.
    func enqueue(_ item: Item) {
        let startWriter = queue.withLockedValue { queue in
            queue.items.append(item)
            guard !queue.writing else { return false }
            queue.writing = true
            return true
        }
        if startWriter { threadPool.submit { state in self.drain(active: state == .active) } }
    }

    private func drain(active: Bool) {
        while true {
            let batch = queue.withLockedValue { queue in
                defer { queue.items = [] }
                if queue.items.isEmpty { queue.writing = false }
                return queue.items
            }
            guard !batch.isEmpty else { return }
            write(batch, active)
        }
    }
}
