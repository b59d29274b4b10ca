import Logging
import NIOConcurrencyHelpers
import QuorumNode
import QuorumProtocol
import Testing

/// The proxy's log submitter: submit never waits, every queued entry reaches every node, and what
/// queued up meanwhile goes in as few submissions as the limits allow.
@Suite("Log submitter")
struct LogSubmitterTests {
    @Test("Entries queued while a submission is out go together; each node gets every entry once")
    func batches() async throws {
        let received = NIOLockedValueBox<[UInt16: [[UInt8]]]>([:])
        let calls = NIOLockedValueBox(0)
        let submitter = LogSubmitter(
            nodes: [1, 2, 3],
            ask: { node, message in
                calls.withLockedValue { $0 += 1 }
                try? await Task.sleep(for: .milliseconds(20))
                received.withLockedValue { $0[node, default: []] += message.entries }
                return .success(
                    try! LogSubmitResponse(
                        nodeID: node, outcomes: message.entries.map { _ in LogSubmitOutcome(.accepted) })
                )
            }, logger: Logger(label: "test"))
        let entries = (0..<500).map { [UInt8(1), UInt8(1)] + Array("entry \($0)".utf8) }
        for entry in entries { submitter.submit(entry) }
        #expect(await submitter.flush(within: .seconds(30)))
        let all = received.withLockedValue { $0 }
        for node: UInt16 in [1, 2, 3] { #expect(all[node] == entries, "node \(node)") }
        #expect(calls.withLockedValue { $0 } <= 3 * 2, "\(calls.withLockedValue { $0 }) submissions for 500 entries")
    }

    @Test("A submission stays within 2 MiB of entries")
    func byteLimit() async throws {
        let largest = NIOLockedValueBox(0)
        let submitter = LogSubmitter(
            nodes: [1],
            ask: { node, message in
                largest.withLockedValue { $0 = max($0, message.entries.reduce(0) { $0 + $1.count }) }
                return .success(try! LogSubmitResponse(nodeID: node, outcomes: []))
            }, logger: Logger(label: "test"))
        for index in 0..<100 { submitter.submit([UInt8](repeating: UInt8(index), count: 60_000)) }
        #expect(await submitter.flush(within: .seconds(30)))
        #expect(largest.withLockedValue { $0 } <= LogLimits.maximumBatchBytes)
        #expect(largest.withLockedValue { $0 } > 0)
    }

    struct Unreachable: Error {}

    /// A node that takes everything while `reachable` holds, and records what it got.
    static func node(
        _ received: NIOLockedValueBox<[UInt16: [[UInt8]]]>, reachable: NIOLockedValueBox<Bool>
    ) -> @Sendable (UInt16, LogSubmit) async -> Result<LogSubmitResponse, any Error> {
        { node, message in
            guard reachable.withLockedValue({ $0 }) else { return .failure(Unreachable()) }
            received.withLockedValue { $0[node, default: []] += message.entries }
            return .success(
                try! LogSubmitResponse(nodeID: node, outcomes: message.entries.map { _ in LogSubmitOutcome(.accepted) })
            )
        }
    }

    @Test("While no node can be reached, entries wait and are sent again; once one answers, each arrives once")
    func retriesUntilANodeAnswers() async throws {
        let received = NIOLockedValueBox<[UInt16: [[UInt8]]]>([:])
        let reachable = NIOLockedValueBox(false)
        let submitter = LogSubmitter(
            nodes: [1, 2], ask: Self.node(received, reachable: reachable), logger: Logger(label: "test"))
        let entries = (0..<50).map { Array("receipt \($0)".utf8) }
        for entry in entries { submitter.submit(entry) }
        #expect(await !submitter.flush(within: .milliseconds(700)), "nothing can be delivered, so nothing is done")
        #expect(received.withLockedValue { $0 }.isEmpty)
        reachable.withLockedValue { $0 = true }
        #expect(await submitter.flush(within: .seconds(30)))
        for node: UInt16 in [1, 2] { #expect(received.withLockedValue { $0[node] } == entries, "node \(node)") }
    }

    @Test("Past the retry window with still no node, entries are dropped; later entries go once a node answers")
    func givesUp() async throws {
        let received = NIOLockedValueBox<[UInt16: [[UInt8]]]>([:])
        let reachable = NIOLockedValueBox(false)
        let submitter = LogSubmitter(
            nodes: [1], ask: Self.node(received, reachable: reachable), retryFor: .milliseconds(300),
            logger: Logger(label: "test"))
        submitter.submit(Array("lost".utf8))
        #expect(await submitter.flush(within: .seconds(30)), "dropped after the window, so the queue empties")
        reachable.withLockedValue { $0 = true }
        submitter.submit(Array("kept".utf8))
        #expect(await submitter.flush(within: .seconds(30)))
        #expect(received.withLockedValue { $0[1] } == [Array("kept".utf8)])
    }
}
