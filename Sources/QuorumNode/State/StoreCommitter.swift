import NIOCore
import NIOPosix

/// Group commit for ``NodeStore`` writes that must land in the order they were made: callers
/// enqueue their changes (under whatever lock orders them) and wait for the returned future; one
/// writer at a time, on the thread pool, takes everything queued, writes it as one synced batch in
/// queue order (a later put of a key wins, as it would have in separate writes) and completes
/// every future. Under load many calls share one `fdatasync` instead of paying one each.
public final class StoreCommitter: Sendable {
    private typealias Item = (changes: [NodeStore.Change], promise: EventLoopPromise<Void>)

    private let eventLoop: any EventLoop
    private let writer: BatchWriter<Item>

    /// A committer for `store`, writing on `threadPool` and completing futures on `eventLoop`.
    public init(
        store: NodeStore, threadPool: NIOThreadPool = .singleton,
        eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.any()
    ) {
        self.eventLoop = eventLoop
        writer = BatchWriter(threadPool: threadPool) { batch, active in
            guard active else {
                for item in batch { item.promise.fail(CancellationError()) }
                return
            }
            do {
                try store.write(batch.flatMap(\.changes))
                for item in batch { item.promise.succeed() }
            } catch {
                for item in batch { item.promise.fail(error) }
            }
        }
    }

    /// Queues `changes` after everything queued before; the future succeeds once they are on disk
    /// and fails with the store's error if their batch could not be written (nothing of it is).
    public func enqueue(_ changes: [NodeStore.Change]) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        writer.enqueue((changes, promise))
        return promise.futureResult
    }
}
