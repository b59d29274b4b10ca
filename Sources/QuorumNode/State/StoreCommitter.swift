import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Group commit for ``NodeStore`` writes that must land in the order they were made: callers
/// enqueue their changes (under whatever lock orders them) and wait for the returned future; one
/// writer at a time, on the thread pool, takes everything queued, writes it as one synced batch in
/// queue order (a later put of a key wins, as it would have in separate writes) and completes
/// every future. Under load many calls share one `fdatasync` instead of paying one each.
public final class StoreCommitter: Sendable {
    private struct Queue {
        var items: [(changes: [NodeStore.Change], promise: EventLoopPromise<Void>)] = []
        var writing = false
    }

    private let store: NodeStore
    private let threadPool: NIOThreadPool
    private let eventLoop: any EventLoop
    private let queue = NIOLockedValueBox(Queue())

    /// A committer for `store`, writing on `threadPool` and completing futures on `eventLoop`.
    public init(
        store: NodeStore, threadPool: NIOThreadPool = .singleton,
        eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.any()
    ) {
        self.store = store
        self.threadPool = threadPool
        self.eventLoop = eventLoop
    }

    /// Queues `changes` after everything queued before; the future succeeds once they are on disk
    /// and fails with the store's error if their batch could not be written (nothing of it is).
    public func enqueue(_ changes: [NodeStore.Change]) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        let startWriter = queue.withLockedValue { queue in
            queue.items.append((changes, promise))
            guard !queue.writing else { return false }
            queue.writing = true
            return true
        }
        if startWriter { threadPool.submit { state in self.drain(active: state == .active) } }
        return promise.futureResult
    }

    private func drain(active: Bool) {
        while true {
            let batch = queue.withLockedValue { queue in
                defer { queue.items = [] }
                if queue.items.isEmpty { queue.writing = false }
                return queue.items
            }
            guard !batch.isEmpty else { return }
            guard active else {
                for item in batch { item.promise.fail(CancellationError()) }
                continue
            }
            do {
                try store.write(batch.flatMap(\.changes))
                for item in batch { item.promise.succeed() }
            } catch {
                for item in batch { item.promise.fail(error) }
            }
        }
    }
}
