import NIOPosix

/// Where peer certificates are verified: a `TaskExecutor` on a small `NIOThreadPool` of its own,
/// so a TLS handshake never waits for a thread of Swift's shared cooperative pool.
///
/// `ClusterIdentity.verify` is async (swift-certificates' `Verifier`), and the TLS callback used to
/// run it in a plain `Task`. On two cores the cooperative pool has two threads; CPU-bound work
/// elsewhere in the process (signing, a busy test suite) can hold both for seconds, and every
/// handshake then waits that long for a 50 ms check. Tasks started with
/// `Task(executorPreference: VerificationExecutor.shared)` run their synchronous stretches here
/// instead; the verifier does not hop to any actor, so nothing of it lands on the shared pool.
final class VerificationExecutor: TaskExecutor {
    /// The process's verification executor: two threads, started on first use and never stopped
    /// (like `NIOThreadPool.singleton`). Two keep one slow chain from holding up every handshake
    /// without adding more runnable threads than a small machine has cores.
    static let shared = VerificationExecutor(numberOfThreads: 2)

    private let pool: NIOThreadPool

    /// An executor on `numberOfThreads` threads of its own.
    init(numberOfThreads: Int) {
        pool = NIOThreadPool(numberOfThreads: numberOfThreads)
        pool.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        // The pool is never shut down, so the work item always runs (state `.active`).
        pool.submit { _ in job.runSynchronously(on: executor) }
    }

    /// Stops the threads once the jobs already queued have run. For executors made for a while
    /// (tests); never call it on ``shared``, and never from a task running on this executor.
    func shutdown() async {
        try? await pool.shutdownGracefully()
    }
}
