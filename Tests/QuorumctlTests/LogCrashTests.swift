import Foundation
import QuorumLog
import QuorumTestKit
import Synchronization
import Testing

/// Durability: `quorumctl log append --lines`, fed continuously and killed with SIGKILL at random
/// moments, always leaves a log that reopens whole — the size of its last committed batch, every
/// entry present, every proof verifying, and consistent with what was there before.
@Suite("quorumctl log crash", .serialized, .timeLimit(.minutes(3)))
struct LogCrashTests {
    /// Lines per atomic batch in the child. Every line is distinct, so each batch adds exactly
    /// this many entries and a consistent log's size is a multiple of it.
    static let batchSize = 64
    static let kills = 24

    @Test("SIGKILL at random moments during append --lines never leaves a torn or lost batch")
    func killDuringAppend() async throws {
        // Writing to the pipe of a killed child must fail with EPIPE, not kill the test runner.
        signal(SIGPIPE, SIG_IGN)
        let directory = try TestKit.temporaryDirectory("quorumctl-crash")
        defer { try? FileManager.default.removeItem(at: directory) }
        let db = directory.appendingPathComponent("db").path

        var expected: [[UInt8]] = []  // entry i, as fed
        var nextLine = 0  // the first line number the next child is fed
        var previousRoot = RFC9162.emptyRoot
        var grewIn = 0
        for run in 0..<Self.kills {
            let delay = Int.random(in: 20...300)
            let outcome = try await runAndKill(db: db, firstLine: nextLine, after: .milliseconds(delay))
            let previousSize = UInt64(expected.count)
            let context = "run \(run) (killed after \(delay) ms, \(outcome.linesWritten) lines written)"
            #expect(outcome.killed, "\(context): the child ended on its own: \(outcome.stderr)")

            let log = try MerkleLog(directory: db)
            let size = log.size
            let root = log.root
            #expect(
                size >= outcome.lastReportedSize,
                "\(context): size \(size) below the reported \(outcome.lastReportedSize)")
            #expect(size >= previousSize, "\(context): the log shrank from \(previousSize) to \(size)")
            #expect(size % UInt64(Self.batchSize) == 0, "\(context): size \(size) is not a whole number of batches")
            let added = Int(size) - Int(previousSize)
            try #require(added >= 0 && added <= outcome.linesWritten, "\(context): \(added) entries added")
            expected += (nextLine..<nextLine + added).map(Self.line)
            nextLine += max(outcome.linesWritten, 1)
            if added > 0 { grewIn += 1 }

            // Every new entry is the line fed, in order; a sample of the older ones is unchanged.
            for index in Int(previousSize)..<Int(size) {
                #expect(try log.entry(at: UInt64(index)) == expected[index], "\(context): entry \(index)")
            }
            for _ in 0..<min(16, Int(previousSize)) {
                let index = Int.random(in: 0..<Int(previousSize))
                #expect(try log.entry(at: UInt64(index)) == expected[index], "\(context): old entry \(index)")
            }
            #expect(try log.root(at: size) == root)
            if size > 0 {
                for _ in 0..<4 {
                    let index = UInt64.random(in: 0..<size)
                    try RFC9162.verifyInclusion(
                        leafHash: RFC9162.leafHash(expected[Int(index)]), index: index, size: size,
                        proof: try log.inclusionProof(index: index, size: size), root: root)
                }
            }
            // The root remembered from the last reopen, not recomputed: history was not rewritten.
            try RFC9162.verifyConsistency(
                size1: previousSize, size2: size, proof: try log.consistencyProof(from: previousSize, to: size),
                root1: previousRoot, root2: root)
            previousRoot = root
        }

        let log = try MerkleLog(directory: db)
        #expect(log.size == UInt64(expected.count))
        for index in 0..<expected.count {
            #expect(try log.entry(at: UInt64(index)) == expected[index], "entry \(index)")
        }
        #expect(try log.auditStore() == [])
        // Typically all but one or two children commit batches before their kill; a handful means
        // the kills did not land while appending and the test proved little.
        #expect(grewIn >= Self.kills / 4, "only \(grewIn) of \(Self.kills) children committed a batch before the kill")
    }

    /// The text of line `number`: distinct for every number, so nothing is deduplicated.
    static func line(_ number: Int) -> [UInt8] {
        Array("crash-test line \(number) ".utf8) + [UInt8](repeating: UInt8(ascii: "a") + UInt8(number % 26), count: 80)
    }

    /// What one child did before it was killed.
    struct Outcome {
        /// The last `size N` it printed: durable before the kill.
        var lastReportedSize: UInt64
        /// Complete lines written to its stdin.
        var linesWritten: Int
        /// It died of SIGKILL (not on its own).
        var killed: Bool
        var stderr: String
    }

    /// Starts `quorumctl log append --lines`, feeds it lines from `firstLine` on, and SIGKILLs it
    /// after `delay`.
    private func runAndKill(db: String, firstLine: Int, after delay: Duration) async throws -> Outcome {
        let child = try TestKit.launch(
            Workspace.quorumctl, ["log", "append", "--db", db, "--lines", "--batch-size", "\(Self.batchSize)"])
        let process = child.process
        let feeder = Feeder(fd: child.input.fileHandleForWriting.fileDescriptor, firstLine: firstLine)
        let sizes = SizeReader(fd: child.output.fileHandleForReading.fileDescriptor)
        let stderr = SizeReader(fd: child.errors.fileHandleForReading.fileDescriptor)
        try await Task.sleep(for: delay)
        kill(process.processIdentifier, SIGKILL)
        let ended = await wait(child.exited, seconds: 10)
        feeder.stop()
        let fed = await wait(feeder.done, seconds: 10)
        let read = await wait(sizes.done, seconds: 10)
        _ = await wait(stderr.done, seconds: 5)
        #expect(ended && fed && read, "child exited: \(ended), feeder stopped: \(fed), stdout closed: \(read)")
        return Outcome(
            lastReportedSize: sizes.lastSize, linesWritten: feeder.linesWritten,
            killed: ended && process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL,
            stderr: stderr.text)
    }

    private func wait(_ semaphore: DispatchSemaphore, seconds: Double) async -> Bool {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                let ok = semaphore.wait(timeout: .now() + seconds) == .success
                if ok { semaphore.signal() }  // leave it signalled for later checks
                continuation.resume(returning: ok)
            }
        }
    }
}

/// Writes numbered lines to a child's stdin on its own thread until stopped or the pipe breaks,
/// counting the lines written completely.
///
/// Sendable: the descriptor is only used by the writer thread; shared state is atomic.
private final class Feeder: Sendable {
    let done = DispatchSemaphore(value: 0)
    private let stopped = Atomic<Bool>(false)
    private let written = Atomic<Int>(0)

    var linesWritten: Int { written.load(ordering: .acquiring) }

    init(fd: Int32, firstLine: Int) {
        // Non-blocking, so a full pipe never keeps the writer from seeing `stop`.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        DispatchQueue.global().async { [self] in
            var next = firstLine
            var chunk: [UInt8] = []
            var offset = 0
            while !stopped.load(ordering: .acquiring) {
                if offset == chunk.count {
                    chunk = (next..<next + 32).flatMap { LogCrashTests.line($0) + [0x0a] }
                    next += 32
                    offset = 0
                }
                let n = chunk[offset...].withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    let lines = chunk[offset..<offset + n].reduce(0) { $0 + ($1 == 0x0a ? 1 : 0) }
                    written.add(lines, ordering: .releasing)
                    offset += n
                } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                    usleep(500)
                } else {
                    break  // EPIPE: the child is gone
                }
            }
            done.signal()
        }
    }

    func stop() { stopped.store(true, ordering: .releasing) }
}

/// Reads a child's stdout to its end on its own thread, keeping the last `size N` line.
private final class SizeReader: Sendable {
    let done = DispatchSemaphore(value: 0)
    private let state = Mutex<(size: UInt64, text: [UInt8])>((0, []))

    var lastSize: UInt64 { state.withLock { $0.size } }
    var text: String { state.withLock { String(decoding: $0.text, as: UTF8.self) } }

    init(fd: Int32) {
        DispatchQueue.global().async { [self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            var pending: [UInt8] = []
            while true {
                let n = read(fd, &buffer, buffer.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                pending += buffer[0..<n]
                while let newline = pending.firstIndex(of: 0x0a) {
                    let line = String(decoding: pending[..<newline], as: UTF8.self)
                    pending.removeSubrange(...newline)
                    state.withLock { state in
                        state.text += Array(line.utf8) + [0x0a]
                        if line.hasPrefix("size "), let size = UInt64(line.dropFirst(5)) { state.size = size }
                    }
                }
            }
            done.signal()
        }
    }
}
