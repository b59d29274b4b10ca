import ArgumentParser
import Foundation
import Logging
import QuorumIdentity
import QuorumLog
import QuorumNode
import QuorumProtocol

/// `quorumctl status`: asks every node of the cluster for its public facts.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask every node for its status and print a table.",
        discussion: """
            Connects to each node of --cluster (a TOML file of [[nodes]] with id and address) over mutual TLS \
            with an operator certificate, sends a StatusRequest and a LogStatusRequest and prints one row per \
            node: up or unreachable, boot epoch, whether a key ceremony has completed, the group key, the policy \
            bundle digest, the replicated log (its size, the newest quorum checkpoint's size and age, the highest \
            term as round@node, the sequencer the node expects) and the peers the node hears from. A node that \
            stopped signing checkpoints gets a "node N: stopped signing: <why>" line on stderr. Exit status: 0 \
            when every node answered, 1 when any is unreachable or refused (the reasons follow the table on \
            stderr), 2 bad input.
            """
    )

    @OptionGroup var options: OperatorOptions

    func run() throws {
        let clusterFile = try options.clusterFile()
        let client = try options.client(for: "status")
        let limit = options.limit
        let entries = Blocking.wait { await ClusterStatus.query(clusterFile, client: client, timeout: limit) }
        let logs = Blocking.wait {
            await client.askEach(
                clusterFile.nodes, LogStatusRequest(), expecting: LogStatusResponse.self, deadline: limit)
        }
        var logStatus: [UInt16: LogStatusResponse] = [:]
        for answer in logs { if case .success(let status) = answer.result { logStatus[answer.node.id] = status } }
        Output.line(StatusTable.render(entries, logs: logStatus, now: Int64(Date().timeIntervalSince1970 * 1000)))
        for id in logStatus.keys.sorted() {
            if let why = logStatus[id]?.stopped { Output.error("node \(id): stopped signing: \(why)") }
        }
        var unreachable = 0
        for entry in entries {
            if case .failure(let error) = entry.result {
                unreachable += 1
                Output.error("node \(entry.node.id) at \(entry.node.address): \(error.code.rawValue): \(error.reason)")
            }
        }
        if unreachable > 0 { throw ExitCode(1) }
    }
}

/// The status table: one row per node.
enum StatusTable {
    static let header = [
        "NODE", "ADDRESS", "STATE", "BOOT EPOCH", "KEY", "GROUP KEY", "BUNDLE", "LOG", "CHECKPOINT", "AGE", "TERM",
        "SEQUENCER", "PEERS UP",
    ]

    /// The log columns of a node's row: log size, checkpoint size, its age, the term, the sequencer.
    static func logCells(_ status: LogStatusResponse?, now: Int64) -> [String] {
        guard let status else { return ["-", "-", "-", "-", "-"] }
        let checkpoint = status.checkpoint.flatMap { try? SignedNote.parse($0) }.flatMap {
            try? Checkpoint.parse($0.text)
        }
        let age = status.checkpointAt > 0 ? "\(max(0, now - status.checkpointAt) / 1000)s" : "-"
        let term = status.highestTerm == 0 ? "-" : "\(status.highestTerm >> 16)@\(status.highestTerm & 0xffff)"
        return [
            "\(status.logSize)", checkpoint.map { "\($0.size)" } ?? "-", age, term,
            status.sequencer == 0 ? "-" : "\(status.sequencer)",
        ]
    }

    static func render(
        _ entries: [ClusterStatus.Entry], logs: [UInt16: LogStatusResponse] = [:], now: Int64 = 0
    )
        -> String
    {
        var rows = [header]
        for entry in entries {
            switch entry.result {
            case .success(let status):
                let up = status.peers.filter(\.isUp).map { String($0.nodeID) }
                let down = status.peers.filter { !$0.isUp }.map { String($0.nodeID) }
                var peers = up.isEmpty ? "none" : up.joined(separator: ",")
                if !down.isEmpty { peers += " (down: \(down.joined(separator: ",")))" }
                rows.append(
                    [
                        "\(status.nodeID)", "\(entry.node.address)", "up", hex(status.bootEpoch),
                        status.hasKey ? "yes" : "no", status.groupKeyHex ?? "-", status.bundleDigest ?? "-",
                    ] + logCells(logs[entry.node.id], now: now) + [peers])
            case .failure:
                rows.append(
                    ["\(entry.node.id)", "\(entry.node.address)", "unreachable", "-", "-", "-", "-"]
                        + logCells(nil, now: now) + ["-"])
            }
        }
        var widths = [Int](repeating: 0, count: header.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        return rows.map { row in
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

/// Runs async work from a synchronous command and waits for it: the main thread blocks on a
/// semaphore, never a thread of the cooperative pool.
enum Blocking {
    private final class Box<T>: @unchecked Sendable {
        // @unchecked Sendable: written once by the task before the semaphore is signalled, read
        // after the wait.
        var value: T?
    }

    static func wait<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
        let box = Box<T>()
        let done = DispatchSemaphore(value: 0)
        Task {
            box.value = await body()
            done.signal()
        }
        done.wait()
        return box.value!
    }
}
