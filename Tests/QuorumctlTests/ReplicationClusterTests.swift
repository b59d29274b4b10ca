import Foundation
import QuorumCrypto
import QuorumIdentity
import QuorumLog
import QuorumNode
import QuorumProtocol
import QuorumTestKit
import Testing

/// The replicated audit log across real quorumd processes (4 nodes, 3-of-4 dealer keys): entries
/// land in one order on every node under checkpoints the quorum signed; the sequencer dies and
/// another takes over without losing or duplicating anything; a node cut off catches up; a node
/// whose store was damaged stops signing while the rest carry on; a node key that signs two roots
/// for one size is caught.
@Suite("replicated audit log across quorumd processes", .serialized, .timeLimit(.minutes(10)))
struct ReplicationClusterTests {
    /// The leaf hashes of `entries`, in order.
    static func leaves(_ entries: [[UInt8]]) -> [[UInt8]] { entries.map(RFC9162.leafHash) }

    /// Checks that nodes `ids` hold the same log (same entries in the same order, same root), that
    /// every entry of `wanted` is in it exactly once, and that each node's newest checkpoint
    /// verifies under the group key with at least k cosignatures.
    static func expectConsistent(_ cluster: ReplicatedCluster, _ ids: [UInt16], holding wanted: [[UInt8]]) async throws
    {
        var logs: [UInt16: [[UInt8]]] = [:]
        for id in ids { logs[id] = try await cluster.entries(id) }
        let reference = try #require(logs[ids[0]])
        for id in ids.dropFirst() {
            let other = try #require(logs[id])
            let common = min(reference.count, other.count)
            #expect(Array(reference.prefix(common)) == Array(other.prefix(common)), "node \(id)'s order differs")
        }
        let counts = Dictionary(Self.leaves(reference).map { ($0, 1) }, uniquingKeysWith: +)
        for leaf in Self.leaves(wanted) {
            #expect(counts[leaf] == 1, "an entry is in the log \(counts[leaf] ?? 0) times")
        }
        var roots = Set<[UInt8]>()
        for id in ids {
            let status = try await cluster.status(id)
            let note = try #require(status.checkpoint, "node \(id) has no checkpoint")
            let (checkpoint, cosigners) = try await cluster.verify(note)
            #expect(cosigners.count >= 3, "checkpoint of node \(id) has cosigners \(cosigners)")
            #expect(checkpoint.size <= status.logSize)
            var frontier = MerkleFrontier()
            for entry in logs[id]!.prefix(Int(checkpoint.size)) { frontier.append(entry: entry) }
            #expect(frontier.root == checkpoint.rootHash, "node \(id)'s entries do not make its checkpoint's root")
            if status.logSize == UInt64(reference.count) { roots.insert(status.logRoot) }
        }
        #expect(roots.count <= 1, "nodes of one size have different roots")
    }

    @Test("Submitted receipts land in every node's log in one order under quorum-signed, cosigned checkpoints")
    func oneOrder() async throws {
        try await ReplicatedCluster.with { cluster in
            let entries = try cluster.receiptEntries("req_order", count: 60)
            // Each node gets a share of them; gossip brings every entry to every node.
            for (index, chunk) in stride(from: 0, to: 60, by: 15).enumerated() {
                let outcomes = try await cluster.submit(Array(entries[chunk..<(chunk + 15)]), to: UInt16(index + 1))
                #expect(outcomes.allSatisfy { $0.status == .accepted || $0.status == .known }, "\(outcomes)")
            }
            // Submitting one again is not a new entry.
            let again = try await cluster.submit([entries[0]], to: 4)
            #expect(again.first?.status == .known)
            let logged = try await cluster.waitUntilLogged(entries, on: [1, 2, 3, 4], within: .seconds(60))
            #expect(logged, "not every entry reached every node:\n\(cluster.cluster.logs)")
            try await Self.expectConsistent(cluster, [1, 2, 3, 4], holding: entries)
            // The receipt index names each receipt's leaf, the same on every node.
            let indices = try (1...4).map { id in
                try cluster.storedLog(UInt16(id)).receiptIndex(requestID: "req_order-7")
            }
            #expect(indices.allSatisfy { $0 != nil && $0 == indices[0] }, "\(indices)")
            let index = try #require(indices[0])
            #expect(try cluster.storedLog(1).log.entry(at: index) == entries[7])
            // A receipt that does not verify under the group key is refused, naming why.
            var forged = entries[1]
            forged[forged.count / 2] ^= 1
            let refused = try await cluster.submit([forged], to: 2)
            #expect(refused.first?.status == .refused, "\(refused)")
            await cluster.cluster.stopAll()
        }
    }

    @Test("SIGKILL of the sequencer mid-stream: another takes over with a higher term; nothing lost or duplicated")
    func sequencerFailover() async throws {
        try await ReplicatedCluster.with { cluster in
            let warmup = try cluster.receiptEntries("req_warm", count: 10)
            try await cluster.submit(warmup, to: 2)
            #expect(try await cluster.waitUntilLogged(warmup, on: [1, 2, 3, 4], within: .seconds(60)))
            let before = try await cluster.status(2)
            #expect(before.sequencer == 1, "node 1, the lowest id, sequences")
            let termBefore = before.highestTerm

            let stream = try cluster.receiptEntries("req_failover", count: 120)
            let sequencer = try #require(cluster.cluster.daemons[1])
            let killer = Task {
                try? await Task.sleep(for: .milliseconds(400))
                await sequencer.crash()
            }
            for chunk in stride(from: 0, to: stream.count, by: 8) {
                // Submitted to node 2 and 3, so nothing depends on the node that dies.
                _ = try? await cluster.submit(Array(stream[chunk..<(chunk + 8)]), to: chunk % 16 == 0 ? 2 : 3)
                try? await Task.sleep(for: .milliseconds(40))
            }
            await killer.value
            let survivors: [UInt16] = [2, 3, 4]
            let logged = try await cluster.waitUntilLogged(warmup + stream, on: survivors, within: .seconds(90))
            #expect(logged, "entries were lost after the sequencer died:\n\(cluster.cluster.logs)")
            try await Self.expectConsistent(cluster, survivors, holding: warmup + stream)
            let after = try await cluster.status(3)
            #expect(after.sequencer == 2, "node 2 took over")
            #expect(after.highestTerm > termBefore)
            #expect(ReplicaRules.proposer(of: after.highestTerm) == 2)

            // The old sequencer comes back: it catches up and agrees.
            try await cluster.cluster.start(1)
            let rejoined = try await cluster.waitUntilLogged(warmup + stream, on: [1], within: .seconds(90))
            #expect(rejoined, "node 1 did not catch up:\n\(cluster.cluster.logs)")
            try await Self.expectConsistent(cluster, [1, 2, 3, 4], holding: warmup + stream)
            await cluster.cluster.stopAll()
        }
    }

    @Test("A batch staged but never published (its sequencer died mid-batch) is proposed again, unchanged, by the next")
    func stagedBatchIsProposedAgain() async throws {
        try await ReplicatedCluster.with { cluster in
            // The pushed bundle's entry is logged first, then the sequencer (node 1) dies.
            #expect(try await eventually(within: .seconds(60)) { (try? await cluster.status(2))?.logSize ?? 0 >= 1 })
            await cluster.cluster.daemons[1]?.crash()
            #expect(try await eventually(within: .seconds(30)) { (try? await cluster.status(3))?.sequencer == 2 })

            // As node 1 (its certificate), stage a batch on nodes 2 and 3 only, under a term above
            // every term they saw, and never publish it: a sequencer that died mid-batch.
            let dead = try SigningClusterTests.client(cluster.cluster, as: .node(id: 1))
            let entries = try cluster.receiptEntries("req_orphan", count: 3)
            var staged: LogBatchResponse?
            for _ in 0..<5 where staged == nil {
                let two = try await cluster.status(2)
                let three = try await cluster.status(3)
                guard two.logSize == three.logSize, two.logRoot == three.logRoot else { continue }
                let term = ReplicaRules.term(after: max(two.highestTerm, three.highestTerm) + (8 << 16), for: 1)
                var slots: [SignerSlot] = []
                for id: UInt16 in [2, 3, 4] {
                    let answer = try await dead.ask(
                        cluster.deciding.node(id), try CommitmentsRequest(count: 1),
                        expecting: CommitmentsResponse.self, deadline: .seconds(30))
                    let commitment = try #require(answer.commitments.first)
                    slots.append(
                        try SignerSlot(
                            identifier: id, bootEpoch: answer.bootEpoch, nonceID: commitment.nonceID,
                            commitment: commitment.commitment))
                }
                let batch = try LogBatch(
                    term: term, proposer: 1, baseSize: two.logSize, baseRoot: two.logRoot, entries: entries,
                    signers: slots)
                let answers = try await [2, 3].asyncMap { id in
                    try? await dead.ask(
                        cluster.deciding.node(UInt16(id)), batch, expecting: LogBatchResponse.self,
                        deadline: .seconds(30))
                }
                if let first = answers[0], let second = answers[1], first.root == second.root {
                    #expect(!first.share.isEmpty && !second.share.isEmpty, "the signers gave their shares")
                    staged = first
                }
            }
            let orphan = try #require(staged, "nodes 2 and 3 did not stage the batch")

            // Node 2, the sequencer now, claims a higher term, finds the staged batch and proposes
            // it again: the checkpoint of that size has exactly the root nodes 2 and 3 signed.
            let logged = try await cluster.waitUntilLogged(entries, on: [2, 3, 4], within: .seconds(60))
            #expect(logged, "the staged batch was not proposed again:\n\(cluster.cluster.logs)")
            let note = try #require(try cluster.storedLog(4).log.checkpoint(at: orphan.size))
            #expect(try Checkpoint.parse(note.text).rootHash == orphan.root)
            #expect(cluster.cluster.daemons[2]!.stderr.contains("proposing a staged batch again"))
            try await Self.expectConsistent(cluster, [2, 3, 4], holding: entries)
            await cluster.cluster.stopAll()
        }
    }

    @Test("A node cut off (SIGSTOP) for many batches catches up when it resumes, and its root matches")
    func cutOffNodeCatchesUp() async throws {
        try await ReplicatedCluster.with { cluster in
            let first = try cluster.receiptEntries("req_before", count: 5)
            try await cluster.submit(first, to: 1)
            #expect(try await cluster.waitUntilLogged(first, on: [1, 2, 3, 4], within: .seconds(60)))
            let stopped = try #require(cluster.cluster.daemons[4])
            kill(stopped.child.process.processIdentifier, SIGSTOP)
            defer { kill(stopped.child.process.processIdentifier, SIGCONT) }
            var during: [[UInt8]] = []
            for round in 0..<12 {
                let batch = try cluster.receiptEntries("req_during-\(round)", count: 5)
                during += batch
                try await cluster.submit(batch, to: UInt16(round % 3 + 1))
                try await Task.sleep(for: .milliseconds(150))
            }
            #expect(try await cluster.waitUntilLogged(first + during, on: [1, 2, 3], within: .seconds(60)))
            let progressed = try await cluster.status(1)
            let checkpoint = try await cluster.verify(try #require(progressed.checkpoint)).0
            #expect(checkpoint.size >= UInt64(first.count + during.count))
            kill(stopped.child.process.processIdentifier, SIGCONT)
            let caughtUp = try await cluster.waitUntilLogged(first + during, on: [4], within: .seconds(60))
            #expect(caughtUp, "node 4 did not catch up:\n\(stopped.stderr)")
            let settled = try await eventually(within: .seconds(30)) {
                let roots = try await [1, 4].asyncMap { try await cluster.status(UInt16($0)) }
                return roots[0].logSize == roots[1].logSize && roots[0].logRoot == roots[1].logRoot
            }
            #expect(settled, "node 4's root does not match node 1's")
            try await Self.expectConsistent(cluster, [1, 2, 3, 4], holding: first + during)
            #expect(stopped.stderr.contains("caught up"), "\(stopped.stderr)")
            await cluster.cluster.stopAll()
        }
    }

    @Test("A flipped byte in one node's stored entry: detected at start, that node stops signing, the rest carry on")
    func corruptedStore() async throws {
        try await ReplicatedCluster.with { cluster in
            let first = try cluster.receiptEntries("req_sound", count: 8)
            try await cluster.submit(first, to: 1)
            #expect(try await cluster.waitUntilLogged(first, on: [1, 2, 3, 4], within: .seconds(60)))
            let victim = try #require(cluster.cluster.daemons[3])
            #expect(await victim.terminate(within: .seconds(20)) == 0, "\(victim.stderr)")
            // Flip one byte of stored entry 2, raw, in RocksDB (every family of the store opened).
            let path = cluster.cluster.workspace.path("data-3/log")
            let families = try #require(RocksDB.columnFamilies(at: path))
            do {
                let store = try RocksDB(path: path, columnFamilies: families)
                let key: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 2]  // entry index 2, big-endian
                var entry = try #require(try store.get("entries", key))
                entry[entry.count - 1] ^= 0x01
                var batch = WriteBatch()
                batch.put("entries", key, entry)
                try store.write(batch)
                store.close()
            }
            try await cluster.cluster.start(3)
            let stoppedSigning = try await eventually(within: .seconds(60)) {
                (try? await cluster.status(3))?.stopped != nil
            }
            #expect(stoppedSigning, "node 3 did not stop signing:\n\(cluster.cluster.daemons[3]!.stderr)")
            let status = try await cluster.status(3)
            #expect(
                status.stopped?.contains("entries index 2") == true || status.stopped?.contains("level 0") == true,
                "\(status.stopped ?? "")")
            #expect(cluster.cluster.daemons[3]!.stderr.contains("stopped signing"))
            let shown = try await cluster.cluster.workspace.quorumctl(["status"] + cluster.cluster.operatorArguments)
            #expect(shown.stderr.contains("node 3: stopped signing:"), "\(shown)")
            let doctor = try await cluster.cluster.workspace.quorumctl(["doctor"] + cluster.cluster.operatorArguments)
            #expect(doctor.status != 0, "\(doctor)")
            let failed = DoctorTests.line(doctor, "FAIL", "log node 3")
            #expect(failed?.contains("node 3 stopped signing checkpoints") == true, "\(doctor)")
            #expect(failed?.contains("move its log/ directory aside") == true, "\(doctor)")
            #expect(DoctorTests.line(doctor, "ok", "log node 1") != nil, "\(doctor)")

            // The others keep producing checkpoints without it.
            let later = try cluster.receiptEntries("req_after", count: 10)
            try await cluster.submit(later, to: 2)
            let carriedOn = try await cluster.waitUntilLogged(first + later, on: [1, 2, 4], within: .seconds(60))
            #expect(carriedOn, "the healthy nodes stopped producing checkpoints:\n\(cluster.cluster.logs)")
            try await Self.expectConsistent(cluster, [1, 2, 4], holding: first + later)
            let newest = try await cluster.verify(try #require(try await cluster.status(1).checkpoint))
            #expect(!newest.1.contains(3), "the stopped node cosigned")
            // It still follows the quorum's checkpoints (each append checked against one), and stays stopped.
            #expect(try await cluster.status(3).stopped != nil)
            await cluster.cluster.stopAll()
        }
    }

    @Test("A node key that cosigns two roots for one size is caught: both notes are kept and returned as evidence")
    func equivocation() async throws {
        try await ReplicatedCluster.with { cluster in
            let entries = try cluster.receiptEntries("req_fork", count: 6)
            try await cluster.submit(entries, to: 1)
            #expect(try await cluster.waitUntilLogged(entries, on: [1, 2, 3, 4], within: .seconds(60)))
            let published = try #require(try await cluster.status(1).checkpoint)
            let note = try SignedNote.parse(published)
            let checkpoint = try Checkpoint.parse(note.text)
            let keyName = CheckpointNames.nodeKeyName(origin: cluster.origin, nodeID: 2)
            #expect(note.signatures.contains { $0.name == keyName }, "node 2 cosigned the checkpoint")

            // Node 2's identity key (the test reads it from its data directory) cosigns another
            // root for the same size, and the note is gossiped to node 1 as a publication.
            let key = try NodeIdentityKey.loadOrCreate(dataDirectory: cluster.cluster.workspace.path("data-2"))
            let fork = try Checkpoint(
                origin: cluster.origin, size: checkpoint.size, rootHash: [UInt8](repeating: 0xAB, count: 32))
            let cosigner = try CosignatureNoteSigner(
                name: keyName, keyPair: key, timestamp: UInt64(Date().timeIntervalSince1970))
            let forged = try SignedNote(text: fork.text, signers: [cosigner])
            let gossip = try SigningClusterTests.client(cluster.cluster, as: .node(id: 4))
            try await gossip.ask(
                cluster.deciding.node(1), LogStatusRequest(), expecting: LogStatusResponse.self, deadline: .seconds(30))
            let connection = try await gossip.connect(
                host: "127.0.0.1", port: cluster.cluster.ports[0], expecting: .node(id: 1))
            // Sent twice: the same fork is one piece of evidence.
            try await connection.send(oneWay: try CheckpointPublish(term: 1, note: forged.serialized))
            try await connection.send(oneWay: try CheckpointPublish(term: 1, note: forged.serialized))
            await connection.close()

            let caught = try await eventually(within: .seconds(30)) {
                !((try? cluster.storedLog(1).evidence()) ?? []).isEmpty
            }
            #expect(caught, "no evidence kept:\n\(cluster.cluster.daemons[1]!.stderr)")
            try await Task.sleep(for: .seconds(1))
            let kept = try cluster.storedLog(1).evidence()
            #expect(kept.count == 1, "\(kept.count) evidence records for one fork")
            let evidence = try #require(kept.first)
            #expect(evidence.keyName == keyName)
            #expect(evidence.size == checkpoint.size)
            let roots = try [evidence.noteA, evidence.noteB].map {
                try Checkpoint.parse(try SignedNote.parse($0).text).rootHash
            }
            #expect(Set(roots) == [checkpoint.rootHash, fork.rootHash])
            #expect(cluster.cluster.daemons[1]!.stderr.contains("equivocation"))
            // The forged note is no checkpoint of the quorum: node 1's log is unchanged.
            #expect(try await cluster.status(1).logRoot == (try await cluster.status(2).logRoot))
            await cluster.cluster.stopAll()
        }
    }
}

/// The same log fed by the real proxy: every receipt it makes, allow and deny, reaches every
/// node's log, under the same leaf index everywhere.
@Suite("receipts from quorum-proxy in the replicated log", .serialized, .timeLimit(.minutes(6)))
struct ProxyReceiptLogTests {
    @Test("Calls through the proxy: allow and deny receipts land in every node's log, indexed by request id")
    func receiptsFromProxy() async throws {
        try await ProxyQuorum.with(bundle: { ProxyClusterTests.bundle(upstreamPort: $0) }) { setup in
            var requestIDs: [String] = []
            for index in 0..<4 {
                let allowed = try await setup.call(.POST, "/openai/v1/chat/completions", body: ProxyClusterTests.chat)
                #expect(allowed.status == 200, "\(allowed.body)")
                let receipt = try Receipt.verified(try #require(allowed.receipt), groupKey: setup.groupKey)
                requestIDs.append(receipt.claims.requestID)
                if index % 2 == 1 {
                    let denied = try await setup.call(.POST, "/openai/v1/embeddings", body: "{}")
                    #expect(denied.status == 403, "\(denied.body)")
                    let deny = try Receipt.verified(try #require(denied.receipt), groupKey: setup.groupKey)
                    #expect(deny.claims.decision == .deny)
                    requestIDs.append(deny.claims.requestID)
                }
            }
            var indices: [String: UInt64] = [:]
            let logged = try await eventually(within: .seconds(60)) {
                for node in 1...4 {
                    guard
                        let log = try? ReplicatedLog(
                            dataDirectory: setup.workspace.path("data-\(node)"), readOnly: true)
                    else { return false }
                    for requestID in requestIDs {
                        guard let index = try log.receiptIndex(requestID: requestID) else { return false }
                        if let known = indices[requestID], known != index { return false }
                        indices[requestID] = index
                        guard case .receipt(let entry) = try LogEntry(decoding: try log.log.entry(at: index)) else {
                            return false
                        }
                        #expect(entry.requestID == requestID)
                        #expect(!entry.verdicts.isEmpty, "the verdicts the decision rests on are logged")
                        #expect(entry.request.tokenSHA256 == sha256Digest(Array(ProxyQuorum.token.utf8)))
                    }
                    guard let checkpoint = try log.latestCheckpoint(),
                        try Checkpoint.parse(checkpoint.text).size > indices.values.max() ?? 0
                    else { return false }
                }
                return true
            }
            #expect(logged, "not every receipt reached every node's log:\n\(setup.cluster.logs)\n\(setup.proxy.stderr)")
        }
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var values: [T] = []
        for element in self { values.append(try await transform(element)) }
        return values
    }
}
