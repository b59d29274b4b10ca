import Foundation
import Logging
import MetricsTestKit
import NIOConcurrencyHelpers
import QuorumCrypto
import QuorumLog
import QuorumProtocol
import QuorumTestKit
import Testing

@testable import QuorumNode

/// ``UnloggedWatch`` over a real state store and a real replicated log on disk, with the clock in
/// the test's hand: which decisions it records as unlogged, that it judges each once (also across
/// a restart), and that a node catching up judges nothing.
@Suite("Unlogged decisions")
struct UnloggedWatchTests {
    static let start: Int64 = 1_800_000_000_000

    /// The decision record and verdict claims a node writes when it decides `requestID` at `at`.
    static func decide(_ store: NodeStore, _ requestID: String, at: Int64, allow: Bool, secret: String?) throws {
        var claims: [String: Any] = [
            "requestID": requestID, "issuedAt": at / 1000, "latch": "assistant", "mount": "/openai",
            "method": "POST", "path": "/openai/v1/chat/completions", "bodySHA256": String(repeating: "0", count: 64),
            "allow": allow, "bundle": String(repeating: "1", count: 64), "reasons": allow ? [] : ["method: denied"],
        ]
        if let secret { claims["secret"] = secret }
        let json = try JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys])
        try store.write(
            DecisionLedger.changes(recording: [(requestID, [UInt8](repeating: 7, count: 32), at)])
                + [.put(.policy, PolicyStore.key(PolicyStore.claimsPrefix, requestID), Array(json))])
    }

    /// A receipt entry for `requestID`, as a proxy submits it.
    static func receiptEntry(_ requestID: String) throws -> [UInt8] {
        let request = try DecideRequest(
            requestID: requestID, time: start, method: "POST", target: "/openai/v1/chat/completions", headers: [],
            body: [], bodyLength: 0, clientAddress: "10.0.0.1", token: "lat_test", signers: [])
        return LogEntry.receipt(ReceiptEntry(receipt: "e30.e30.sig", request: LoggedRequest(request), verdicts: []))
            .encoded()
    }

    final class Node {
        let directory: String
        let clock = NIOLockedValueBox<Int64>(UnloggedWatchTests.start)
        let metrics = TestMetrics()
        var store: NodeStore
        var replicated: ReplicatedLog
        var watch: UnloggedWatch

        init(_ directory: String) throws {
            self.directory = directory
            store = try NodeStore(dataDirectory: directory)
            replicated = try ReplicatedLog(dataDirectory: directory)
            watch = Self.watch(store, replicated, clock, metrics)
        }

        static func watch(
            _ store: NodeStore, _ replicated: ReplicatedLog, _ clock: NIOLockedValueBox<Int64>, _ metrics: TestMetrics
        ) -> UnloggedWatch {
            var logger = Logger(label: "unlogged-test")
            logger.logLevel = .critical
            return UnloggedWatch(
                store: store, replicated: replicated, after: .seconds(1), metrics: LogMetrics(factory: metrics),
                logger: logger, now: { clock.withLockedValue { $0 } })
        }

        /// Closes and opens the stores again, with a new watch: a restart.
        func reopen() throws {
            store.close()
            replicated.log.close()
            store = try NodeStore(dataDirectory: directory)
            replicated = try ReplicatedLog(dataDirectory: directory)
            watch = Self.watch(store, replicated, clock, metrics)
        }

        func advance(to at: Int64) { clock.withLockedValue { $0 = at } }
    }

    static func withNode(_ body: (Node) throws -> Void) throws {
        let directory = try TestKit.temporaryDirectory("unlogged")
        defer { try? FileManager.default.removeItem(at: directory) }
        let node = try Node(directory.path)
        defer {
            node.store.close()
            node.replicated.log.close()
        }
        try body(node)
    }

    @Test(
        "decisions neither logged nor pending are recorded once, with decision and decryption share; not before they are due; not again after a restart"
    )
    func recordsOnce() throws {
        try Self.withNode { node in
            let t = Self.start
            try Self.decide(node.store, "withheld-allow", at: t - 5000, allow: true, secret: "openai")
            try Self.decide(node.store, "withheld-deny", at: t - 4000, allow: false, secret: nil)
            try Self.decide(node.store, "pending", at: t - 3000, allow: true, secret: "openai")
            try Self.decide(node.store, "logged", at: t - 2000, allow: true, secret: "openai")
            try Self.decide(node.store, "recent", at: t - 500, allow: true, secret: nil)
            // A ledger record without this node's verdict (a sign request alone) is not judged.
            try node.store.write(
                DecisionLedger.changes(recording: [("no-verdict", [UInt8](repeating: 1, count: 32), t - 4500)]))
            try node.replicated.log.writeCompanion(
                ReplicatedLog.pend(
                    [(RFC9162.leafHash(try Self.receiptEntry("pending")), try Self.receiptEntry("pending"))], from: 1))
            var logged = WriteBatch()
            logged.put(ReplicatedLog.receiptsFamily, Array("logged".utf8), UInt64(0).bigEndianBytes)
            try node.replicated.log.writeCompanion(logged)

            let first = try node.watch.pass()
            #expect(
                first == [
                    UnloggedDecision(
                        requestID: "withheld-allow", decidedAt: t - 5000, allow: true, decryptionShare: true),
                    UnloggedDecision(
                        requestID: "withheld-deny", decidedAt: t - 4000, allow: false, decryptionShare: false),
                ])
            #expect(try node.replicated.unlogged() == first)
            #expect(
                try node.metrics.expectCounter(LogMetrics.Names.unloggedDecisions, [("decision", "allow")]).totalValue
                    == 1)
            #expect(
                try node.metrics.expectCounter(LogMetrics.Names.unloggedDecisions, [("decision", "deny")]).totalValue
                    == 1)
            #expect(try node.watch.pass().isEmpty, "a decision is judged once")

            node.advance(to: t + 1000)
            let second = try node.watch.pass()
            #expect(
                second == [
                    UnloggedDecision(requestID: "recent", decidedAt: t - 500, allow: true, decryptionShare: false)
                ])

            try node.reopen()
            node.advance(to: t + 60_000)
            #expect(try node.watch.pass().isEmpty, "a restart carries on where the last pass stopped")
            #expect(try node.replicated.unlogged().map(\.requestID) == ["withheld-allow", "withheld-deny", "recent"])
        }
    }

    @Test("a node whose log trails the newest quorum checkpoint it knows judges nothing until it has caught up")
    func catchingUp() throws {
        try Self.withNode { node in
            try Self.decide(node.store, "maybe-logged", at: Self.start - 5000, allow: true, secret: nil)
            let ahead = try SignedNote(
                text: try Checkpoint(origin: "quorum-latch/test", size: 7, rootHash: [UInt8](repeating: 3, count: 32))
                    .text,
                signers: [try Ed25519NoteSigner(name: "quorum-latch/test", keyPair: Ed25519KeyPair())])
            var known = WriteBatch()
            ReplicatedLog.know(ahead, at: Self.start, into: &known)
            try node.replicated.log.writeCompanion(known)
            #expect(try node.watch.pass().isEmpty)
            #expect(try node.replicated.unloggedThrough() == nil, "nothing was judged, so nothing is skipped later")
        }
    }
}
