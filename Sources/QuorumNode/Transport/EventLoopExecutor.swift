import NIOCore
import NIOPosix

/// Where a process's Swift concurrency jobs run.
public enum ConcurrencyExecutor {
    /// Makes NIO's singleton event loops the global executor for Swift concurrency, so a request
    /// read on an event loop and answered by async code does not hop to the cooperative pool and
    /// back: on two cores every hop is a thread wake-up that a busy machine can delay by
    /// milliseconds. Call it first thing in `main`, before any task starts; returns whether it
    /// took over (false where the runtime does not offer the hook).
    @discardableResult
    public static func runOnEventLoops() -> Bool {
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }
}
