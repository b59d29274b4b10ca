import Foundation
import QuorumCrypto
import Synchronization

/// Shared helpers for the test targets: where the published vectors live, JSON access, and the
/// paths of built executables.
public enum TestKit {
    /// The project root (the directory holding Package.swift).
    public static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        // Sources/QuorumTestKit/TestKit.swift → root
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()

    /// `../shared/vectors` beside the project root, or `QUORUM_VECTORS` when set.
    public static let vectorsDirectory: URL = {
        if let override = ProcessInfo.processInfo.environment["QUORUM_VECTORS"] {
            return URL(fileURLWithPath: override)
        }
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/vectors")
    }()

    /// Loads a JSON vector file relative to the vectors directory.
    public static func vector(_ relativePath: String) throws -> JSON {
        let data = try Data(contentsOf: vectorsDirectory.appendingPathComponent(relativePath))
        return JSON(try JSONSerialization.jsonObject(with: data))
    }

    /// Lists files under a vectors sub-directory, recursively, sorted.
    public static func vectorFiles(under relativePath: String) -> [String] {
        let base = vectorsDirectory.appendingPathComponent(relativePath)
        guard let walker = FileManager.default.enumerator(atPath: base.path) else { return [] }
        return walker.compactMap { $0 as? String }.filter { $0.hasSuffix(".json") }.sorted()
            .map { relativePath + "/" + $0 }
    }

    /// A built product in the same build directory as the running tests.
    public static func executable(_ name: String) -> URL {
        productsDirectory.appendingPathComponent(name)
    }

    /// The build products directory (`.build/debug`, or the one of `--scratch-path`), or
    /// `QUORUM_PRODUCTS` when set (e.g. to test a release build).
    ///
    /// On Linux the test runner is itself an executable, `<Package>PackageTests.xctest`, inside
    /// the products directory, and `Bundle.main.bundleURL` is that directory already (not a bundle
    /// to step out of). On macOS the runner is `xctest` or `swiftpm-testing-helper` from the
    /// toolchain, and the products directory is the one holding the loaded `.xctest` bundle.
    public static let productsDirectory: URL = {
        if let override = ProcessInfo.processInfo.environment["QUORUM_PRODUCTS"] {
            return URL(fileURLWithPath: override)
        }
        #if canImport(Darwin)
            if let bundle = Bundle.allBundles.first(where: { $0.bundlePath.hasSuffix(".xctest") }) {
                return bundle.bundleURL.deletingLastPathComponent()
            }
        #endif
        if let runner = Bundle.main.executableURL {
            return runner.resolvingSymlinksInPath().deletingLastPathComponent()
        }
        return Bundle.main.bundleURL
    }()

    /// What a finished subprocess printed and how it ended.
    public struct ProcessOutput: Sendable, CustomStringConvertible {
        public let status: Int32
        public let stdout: String
        public let stderr: String
        /// The process overran its time limit and was killed; `status` is then meaningless.
        public let timedOut: Bool

        public var stdoutLines: [String] { stdout.split(separator: "\n").map(String.init) }
        public var stderrLines: [String] { stderr.split(separator: "\n").map(String.init) }

        public var description: String {
            "exit \(status)\(timedOut ? " (timed out)" : "")\n--- stdout\n\(stdout)--- stderr\n\(stderr)"
        }
    }

    /// A started child process with its three pipes and a semaphore signalled when it exits.
    public struct LaunchedProcess: @unchecked Sendable {
        // @unchecked Sendable: Process, Pipe and DispatchSemaphore are thread-safe Foundation and
        // Dispatch objects; the struct only hands them out.
        public let process: Process
        public let input: Pipe
        public let output: Pipe
        public let errors: Pipe
        public let exited: DispatchSemaphore

    }

    /// Starts `executable` with piped standard input, output and error.
    public static func launch(_ executable: URL, _ arguments: [String]) throws -> LaunchedProcess {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let launched = LaunchedProcess(
            process: process, input: Pipe(), output: Pipe(), errors: Pipe(), exited: DispatchSemaphore(value: 0))
        process.standardInput = launched.input
        process.standardOutput = launched.output
        process.standardError = launched.errors
        process.terminationHandler = { _ in launched.exited.signal() }
        try process.run()
        return launched
    }

    /// Runs `executable` to completion, or kills it after `timeout` (SIGTERM, then SIGKILL).
    ///
    /// Blocking waits happen on Dispatch threads, never in the cooperative pool, and every wait is
    /// bounded, so a hung child fails its test instead of hanging the run.
    public static func run(
        _ executable: URL, _ arguments: [String], stdin: [UInt8] = [], timeout: Duration = .seconds(60)
    ) async throws -> ProcessOutput {
        let child = try launch(executable, arguments)
        let (process, exited) = (child.process, child.exited)
        let stdoutData = drain(child.output.fileHandleForReading)
        let stderrData = drain(child.errors.fileHandleForReading)
        let writer = child.input.fileHandleForWriting
        _ = ignoreBrokenPipes
        DispatchQueue.global().async {
            if !stdin.isEmpty { try? writer.write(contentsOf: stdin) }
            try? writer.close()
        }

        var timedOut = false
        if await !wait(exited, timeout) {
            timedOut = true
            process.terminate()
            if await !wait(exited, .seconds(5)) {
                kill(process.processIdentifier, SIGKILL)
                _ = await wait(exited, .seconds(5))
            }
        }
        let out = await stdoutData.value(within: .seconds(5))
        let err = await stderrData.value(within: .seconds(5))
        return ProcessOutput(
            status: timedOut ? -1 : process.terminationStatus,
            stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self),
            timedOut: timedOut)
    }

    /// A child may exit without reading its stdin; writing to that pipe must fail with EPIPE
    /// rather than kill the test runner with SIGPIPE.
    private static let ignoreBrokenPipes: Void = { signal(SIGPIPE, SIG_IGN) }()

    private static func wait(_ semaphore: DispatchSemaphore, _ timeout: Duration) async -> Bool {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                let (seconds, attoseconds) = timeout.components
                let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
                continuation.resume(returning: semaphore.wait(timeout: .now() + .nanoseconds(nanoseconds)) == .success)
            }
        }
    }

    /// Reads a pipe to its end on a Dispatch thread, so a chatty child never blocks on a full pipe.
    private static func drain(_ handle: FileHandle) -> PipeContents {
        let contents = PipeContents()
        DispatchQueue.global().async {
            contents.finish(with: (try? handle.readToEnd()) ?? Data())
        }
        return contents
    }

    /// The bytes read from one pipe, available once the writer closed it.
    private final class PipeContents: Sendable {
        private let data = Mutex<Data?>(nil)
        private let done = DispatchSemaphore(value: 0)

        func finish(with bytes: Data) {
            data.withLock { $0 = bytes }
            done.signal()
        }

        /// What was read; empty if the pipe is still open after `timeout` (a grandchild holds it).
        func value(within timeout: Duration) async -> Data {
            guard await TestKit.wait(done, timeout) else { return Data() }
            return data.withLock { $0 ?? Data() }
        }
    }

    /// A fresh temporary directory, removed by the caller.
    public static func temporaryDirectory(_ prefix: String = "quorum-test") throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Minimal read-only JSON navigation for test vectors.
public struct JSON: @unchecked Sendable {
    // @unchecked Sendable: wraps an immutable Foundation JSON tree that is never mutated.
    public let raw: Any
    public init(_ raw: Any) { self.raw = raw }

    public subscript(key: String) -> JSON { JSON((raw as? [String: Any])?[key] ?? NSNull()) }
    public subscript(index: Int) -> JSON { JSON((raw as? [Any])?[index] ?? NSNull()) }

    public var string: String? { raw as? String }
    public var int: Int? {
        if let i = raw as? Int { return i }
        if let s = raw as? String { return Int(s) }
        return nil
    }
    public var array: [JSON] { (raw as? [Any])?.map(JSON.init) ?? [] }
    public var object: [String: JSON] { ((raw as? [String: Any]) ?? [:]).mapValues(JSON.init) }
    public var bool: Bool? { raw as? Bool }
    /// Hex-decoded bytes of a string value.
    public var bytes: [UInt8] { string.flatMap(Hex.decode) ?? [] }
    public var isNull: Bool { raw is NSNull }
}
