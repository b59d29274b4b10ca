import Benchmark
import Foundation
import QuorumLog
import Synchronization

// The audit log's figures from issue 3: append throughput and latency, proof generation and
// opening at one million entries, and resident memory while appending them. Every log is real
// RocksDB on disk under the system temporary directory.

/// A 300-byte entry, unique for `index` (dedup would otherwise collapse repeats).
func entry(_ index: UInt64, salt: UInt64) -> [UInt8] {
    var bytes = [UInt8](repeating: 0x61, count: 300)
    for i in 0..<8 {
        bytes[i] = UInt8(truncatingIfNeeded: index >> (8 * UInt64(i)))
        bytes[8 + i] = UInt8(truncatingIfNeeded: salt >> (8 * UInt64(i)))
    }
    return bytes
}

func freshDirectory(_ name: String) -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent(
        "quorum-bench-\(name)-\(UUID().uuidString)"
    ).path
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Appends `count` 300-byte entries in batches of 256.
func fill(_ log: MerkleLog, count: UInt64, salt: UInt64) throws {
    var next = log.size
    let end = next + count
    while next < end {
        let batchEnd = min(next + 256, end)
        _ = try log.append((next..<batchEnd).map { entry($0, salt: salt) })
        next = batchEnd
    }
}

/// A one-million-entry log shared by the proof benchmarks, built once per machine and kept under
/// the temporary directory (rebuilding it costs about 8 s).
let millionPath = FileManager.default.temporaryDirectory.appendingPathComponent("quorum-bench-log-1M").path
let million: UInt64 = 1_000_000

/// The open benchmark's own million-entry log: RocksDB locks a directory per open handle, and the
/// proof benchmarks keep `millionPath` open.
let openPath = FileManager.default.temporaryDirectory.appendingPathComponent("quorum-bench-log-1M-open").path

func openMillion(at path: String = millionPath) throws -> MerkleLog {
    let log = try MerkleLog(directory: path)
    if log.size < million { try fill(log, count: million - log.size, salt: 1) }
    return log
}

// ordo-one/benchmark calls each closure once per sample, so every log is opened once per process
// here (lazily initialised globals) and the samples measure a warm, open database, as a node has.
let millionLog: MerkleLog = try! openMillion()
let batchLog: MerkleLog = try! MerkleLog(directory: freshDirectory("batch"))
let singleLog: MerkleLog = try! MerkleLog(directory: freshDirectory("single"))
let nextEntry = Atomic<UInt64>(0)

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock], timeUnits: .microseconds, warmupIterations: 5, maxDuration: .seconds(3),
        maxIterations: 2_000)

    Benchmark("log append: batch of 256 × 300 B, synced") { benchmark in
        for _ in benchmark.scaledIterations {
            let first = nextEntry.add(256, ordering: .relaxed).oldValue
            let batch = (first..<(first + 256)).map { entry($0, salt: 2) }
            benchmark.startMeasurement()
            blackHole(try batchLog.append(batch))
            benchmark.stopMeasurement()
        }
    }

    Benchmark("log append: single entry, synced") { benchmark in
        for _ in benchmark.scaledIterations {
            let one = [entry(nextEntry.add(1, ordering: .relaxed).oldValue, salt: 3)]
            benchmark.startMeasurement()
            blackHole(try singleLog.append(one))
            benchmark.stopMeasurement()
        }
    }

    Benchmark(
        "log append: 1,000,000 entries (peak resident memory)",
        configuration: .init(
            metrics: [.wallClock, .peakMemoryResident], timeUnits: .milliseconds, warmupIterations: 0,
            maxIterations: 1)
    ) { _ in
        let log = try MerkleLog(directory: freshDirectory("million-rss"))
        try fill(log, count: million, salt: 4)
    }

    Benchmark("log inclusion proof at size 1,000,000") { benchmark in
        let index = UInt64.random(in: 0..<million)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try millionLog.inclusionProof(index: index, size: million)) }
    }

    Benchmark("log consistency proof to size 1,000,000") { benchmark in
        let from = UInt64.random(in: 1..<million)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try millionLog.consistencyProof(from: from, to: million)) }
    }

    Benchmark(
        "log open at size 1,000,000",
        configuration: .init(metrics: [.wallClock], timeUnits: .milliseconds, warmupIterations: 1, maxIterations: 10)
    ) { benchmark in
        _ = try openMillion(at: openPath)  // built once; this handle is closed before measuring
        benchmark.startMeasurement()
        blackHole(try MerkleLog(directory: openPath).size)
    }
}
