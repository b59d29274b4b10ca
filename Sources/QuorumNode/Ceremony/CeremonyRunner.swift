import QuorumCrypto
import QuorumIdentity
import QuorumProtocol

/// How the operator's messages reach the nodes. ``ClusterRelay`` is the real one (mutual TLS with
/// the operator certificate); anything else stands in for a relay that misbehaves.
public protocol CeremonyRelay: Sendable {
    /// Sends `message` to `node` as a request and returns the answer frame, within `deadline`.
    func request(_ message: any WireMessage, to node: UInt16, deadline: Duration) async throws(TransportError) -> Frame
    /// Where `node` is, for messages (`node 3 at 127.0.0.1:7103`).
    func describe(_ node: UInt16) -> String
}

/// A ``CeremonyRelay`` over one mutual-TLS connection per node, opened on first use and reopened
/// if it drops; ``close()`` when done.
public actor ClusterRelay: CeremonyRelay {
    private let cluster: ClusterFile
    private let client: NodeClient
    private var connections: [UInt16: NodeConnection] = [:]

    /// A relay to the nodes of `cluster` through `client` (which carries the operator certificate).
    public init(cluster: ClusterFile, client: NodeClient) {
        self.cluster = cluster
        self.client = client
    }

    /// See ``CeremonyRelay/request(_:to:deadline:)``.
    public func request(
        _ message: any WireMessage, to node: UInt16, deadline: Duration
    ) async throws(TransportError) -> Frame {
        guard let entry = cluster.nodes.first(where: { $0.id == node }) else {
            throw TransportError(.configuration, peer: "node \(node)", "not in the cluster file")
        }
        let connection: NodeConnection
        if let open = connections[node], open.isActive {
            connection = open
        } else {
            let expected: PeerIdentity
            do { expected = try PeerIdentity.node(Int(node)) } catch {
                throw TransportError(.configuration, peer: describe(node), error.reason)
            }
            connection = try await client.connect(
                host: entry.address.host, port: entry.address.port, expecting: expected)
            connections[node] = connection
        }
        return try await connection.request(message, deadline: deadline)
    }

    /// See ``CeremonyRelay/describe(_:)``.
    public nonisolated func describe(_ node: UInt16) -> String {
        cluster.nodes.first(where: { $0.id == node }).map { "node \(node) at \($0.address)" } ?? "node \(node)"
    }

    /// Closes every connection.
    public func close() async {
        for connection in connections.values { await connection.close() }
        connections = [:]
    }
}

/// Runs a ceremony through a ``CeremonyRelay``: each phase goes to every node at once, each wait
/// bounded by `timeout`; the first phase in which any node fails, refuses or answers wrongly ends
/// the ceremony, and every node is then sent ``CeremonyAbort`` so that none keeps anything.
public struct CeremonyRunner: Sendable {
    private let relay: any CeremonyRelay
    private let timeout: Duration
    private let progress: @Sendable (CeremonyPhase, Duration) async -> Void

    /// A runner over `relay`; `progress` hears each phase that every node completed, and how long
    /// it took.
    public init(
        relay: any CeremonyRelay, timeout: Duration,
        progress: @escaping @Sendable (CeremonyPhase, Duration) async -> Void = { _, _ in }
    ) {
        self.relay = relay
        self.timeout = timeout
        self.progress = progress
    }

    /// Runs `plan` to a committed ceremony, or aborts it everywhere and throws why.
    public func run(_ plan: CeremonyPlan) async throws(CeremonyFailure) -> CeremonyOutcome {
        do {
            return try await phases(plan)
        } catch {
            var failure = error
            if failure.committed.isEmpty {
                failure.aftermath = await abort(plan, reason: error.description)
            } else {
                // Some nodes installed the keys: the certificate exists, so the ceremony stands and
                // must not be aborted; the others keep their staged keys until the commit reaches them.
                let missing = plan.nodeIDs.filter { !failure.committed.contains($0) }
                failure.aftermath =
                    "the keys are installed on nodes \(list(failure.committed)); nodes \(list(missing)) keep them "
                    + "staged and install them when the commit reaches them (`quorumctl keygen commit`)"
            }
            throw failure
        }
    }

    private func phases(_ plan: CeremonyPlan) async throws(CeremonyFailure) -> CeremonyOutcome {
        var coordinator = CeremonyCoordinator(plan: plan)
        let ids = plan.nodeIDs
        let begin: CeremonyBegin
        do { begin = try plan.begin() } catch { throw CeremonyFailure(.begin, node: nil, "\(error)") }

        var clock = ContinuousClock.now
        let round1 = try await exchange(
            .begin, Dictionary(uniqueKeysWithValues: ids.map { ($0, begin) }), CeremonyRound1.self)
        try collect(.begin, round1) { id, message throws(CeremonyFailure) in try coordinator.accept(message, from: id) }
        await progress(.begin, ContinuousClock.now - clock)

        clock = .now
        let round2Request = try coordinator.round2Request()
        let round2 = try await exchange(
            .round2, Dictionary(uniqueKeysWithValues: ids.map { ($0, round2Request) }), CeremonyRound2.self)
        try collect(.round2, round2) { id, message throws(CeremonyFailure) in try coordinator.accept(message, from: id)
        }
        try coordinator.checkEchoes()
        await progress(.round2, ContinuousClock.now - clock)

        clock = .now
        var round3Requests: [UInt16: any WireMessage] = [:]
        for id in ids { round3Requests[id] = try coordinator.round3Request(for: id) }
        let round3 = try await exchange(.round3, round3Requests, CeremonyRound3.self)
        try collect(.round3, round3) { id, message throws(CeremonyFailure) in try coordinator.accept(message, from: id)
        }
        await progress(.round3, ContinuousClock.now - clock)

        clock = .now
        let commit = try coordinator.commit()
        let outcome = try coordinator.outcome()
        var (committed, problems) = await sendCommit(commit, to: ids)
        // Once one node has installed the keys the ceremony stands: retry the others a little,
        // never abort.
        var attempt = 0
        while !problems.isEmpty, !committed.isEmpty, attempt < 2 {
            attempt += 1
            try? await Task.sleep(for: .milliseconds(300))
            let retry = await sendCommit(commit, to: problems.compactMap(\.node))
            committed = (committed + retry.committed).sorted()
            problems = retry.problems
        }
        if !problems.isEmpty {
            var failure = CeremonyFailure(.commit, problems: problems)
            failure.committed = committed
            if !committed.isEmpty {
                failure.outcome = outcome
                failure.commit = commit
            }
            throw failure
        }
        await progress(.commit, ContinuousClock.now - clock)
        return outcome
    }

    /// Sends `commit` to `nodes`; which acknowledged it, and every other node's problem.
    public func sendCommit(
        _ commit: CeremonyCommit, to nodes: [UInt16]
    ) async -> (committed: [UInt16], problems: [CeremonyFailure.NodeProblem]) {
        let (acks, problems) = await gather(
            Dictionary(uniqueKeysWithValues: nodes.map { ($0, commit) }), CeremonyAck.self)
        var committed: [UInt16] = []
        var all = problems
        for (id, ack) in acks.sorted(by: { $0.key < $1.key }) {
            if ack.outcome == .committed, ack.nodeID == id, ack.ceremonyID == commit.ceremonyID {
                committed.append(id)
            } else {
                all.append(.init(node: id, culprit: nil, reason: "did not acknowledge the commit"))
            }
        }
        return (committed, all.sorted { ($0.node ?? 0) < ($1.node ?? 0) })
    }

    /// Feeds every answer to `accept`, collecting every node's problem before failing.
    private func collect<Answer>(
        _ phase: CeremonyPhase, _ answers: [UInt16: Answer],
        _ accept: (UInt16, Answer) throws(CeremonyFailure) -> Void
    ) throws(CeremonyFailure) {
        var problems: [CeremonyFailure.NodeProblem] = []
        for (id, answer) in answers.sorted(by: { $0.key < $1.key }) {
            do { try accept(id, answer) } catch { problems += error.problems }
        }
        if !problems.isEmpty { throw CeremonyFailure(phase, problems: problems) }
    }

    /// Sends each node its request at once and waits for every answer (each within `timeout`);
    /// fails with every node's problem if any failed, refused or answered with something else.
    private func exchange<Answer: WireMessage>(
        _ phase: CeremonyPhase, _ requests: [UInt16: any WireMessage], _: Answer.Type
    ) async throws(CeremonyFailure) -> [UInt16: Answer] {
        let (answers, problems) = await gather(requests, Answer.self)
        if !problems.isEmpty { throw CeremonyFailure(phase, problems: problems) }
        return answers
    }

    /// Sends each node its request at once; every answer, and every node's problem.
    private func gather<Answer: WireMessage>(
        _ requests: [UInt16: any WireMessage], _: Answer.Type
    ) async -> ([UInt16: Answer], [CeremonyFailure.NodeProblem]) {
        let relay = relay
        let timeout = timeout
        let results = await withTaskGroup(of: (UInt16, Result<Answer, CeremonyFailure.NodeProblem>).self) { group in
            for (id, message) in requests {
                group.addTask {
                    (id, await Self.ask(relay, id, message, Answer.self, timeout: timeout))
                }
            }
            var results: [UInt16: Result<Answer, CeremonyFailure.NodeProblem>] = [:]
            for await (id, result) in group { results[id] = result }
            return results
        }
        var answers: [UInt16: Answer] = [:]
        var problems: [CeremonyFailure.NodeProblem] = []
        for (id, result) in results.sorted(by: { $0.key < $1.key }) {
            switch result {
            case .success(let answer): answers[id] = answer
            case .failure(let problem): problems.append(problem)
            }
        }
        return (answers, problems)
    }

    private static func ask<Answer: WireMessage>(
        _ relay: any CeremonyRelay, _ id: UInt16, _ message: any WireMessage, _: Answer.Type, timeout: Duration
    ) async -> Result<Answer, CeremonyFailure.NodeProblem> {
        let frame: Frame
        do {
            frame = try await relay.request(message, to: id, deadline: timeout)
        } catch {
            let reason: String
            switch error.code {
            case .refusedByPeer:
                reason = "refused: \(error.response.map { "\($0)" } ?? error.reason)"
            case .deadlineExceeded:
                reason = "no answer within \(timeout) (\(relay.describe(id)))"
            default:
                reason = "unreachable (\(relay.describe(id))): \(error.code.rawValue): \(error.reason)"
            }
            return .failure(.init(node: id, culprit: nil, reason: reason))
        }
        if frame.messageType == CeremonyRefusal.type, let refusal = try? frame.decode(CeremonyRefusal.self) {
            let reason = "refused: " + refusal.reason
            return .failure(.init(node: id, culprit: refusal.culprit, reason: reason))
        }
        do {
            return .success(try frame.decode(Answer.self))
        } catch {
            return .failure(.init(node: id, culprit: nil, reason: "answered with something else: \(error)"))
        }
    }

    /// Sends ``CeremonyAbort`` to every node and says which confirmed and which could not be
    /// reached (those discard the ceremony when the next begin arrives, or never commit it).
    private func abort(_ plan: CeremonyPlan, reason: String) async -> String {
        let message: CeremonyAbort
        do { message = try CeremonyAbort(ceremonyID: plan.ceremonyID, reason: reason) } catch {
            return "not aborted: \(error)"
        }
        let relay = relay
        let timeout = timeout
        let confirmed = await withTaskGroup(of: (UInt16, Bool).self) { group in
            for id in plan.nodeIDs {
                group.addTask {
                    let result = await Self.ask(relay, id, message, CeremonyAck.self, timeout: timeout)
                    if case .success(let ack) = result { return (id, ack.outcome == .aborted) }
                    return (id, false)
                }
            }
            var confirmed: [UInt16: Bool] = [:]
            for await (id, ok) in group { confirmed[id] = ok }
            return confirmed
        }
        let done = plan.nodeIDs.filter { confirmed[$0] == true }
        let missed = plan.nodeIDs.filter { confirmed[$0] != true }
        var text = "aborted on " + (done.isEmpty ? "no node" : "nodes \(list(done))")
        if !missed.isEmpty { text += " (not reached: nodes \(list(missed)); they never use the staged keys)" }
        return text
    }
}
