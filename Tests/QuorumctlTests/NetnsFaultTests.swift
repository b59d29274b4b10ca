import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import QuorumCrypto
import QuorumNode
import QuorumPolicy
import QuorumProtocol
import QuorumTestKit
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The fault testnet (testnets/netns) under faults, as an evaluator breaks it on purpose: four
/// quorumd nodes, each in its own network namespace, the proxy and the demo upstream in the root
/// namespace, real mutual TLS and real HTTP; `fault.sh` cuts, delays and heals one node's links
/// while agents keep calling.
///
/// The testnet is brought up once for the suite (``FaultTestnetScope``) and taken down after it.
/// Where namespaces cannot be made (not root, no `ip`, no CAP_NET_ADMIN) `up.sh` exits 77 and
/// every test is cancelled with its reason, which the test report shows as a skip.
@Suite("fault testnet (network namespaces)", .serialized, .timeLimit(.minutes(5)), FaultTestnetScope())
struct NetnsFaultTests {
    @Test("a node cut off during load: calls keep being allowed by the other three; after healing it signs again")
    func partitionDuringLoad() async throws {
        let net = try await FaultTestnet.ready()
        try await net.expectSigners(excluding: nil)
        let load = LoadRun(net: net, workers: 2)
        let running = Task { await load.run(limit: .seconds(60)) }
        try await Task.sleep(for: .seconds(2))
        let cut = ContinuousClock.now
        try await net.fault("cut", "1")
        try await Task.sleep(for: .seconds(8))
        let healed = ContinuousClock.now
        try await net.fault("heal", "1")
        let rejoined = await load.wait(within: .seconds(40)) { $0.at > healed && $0.signers.contains(1) }
        load.stop()
        let calls = await running.value

        #expect(calls.count >= 20, "too little load to show anything: \(calls.count) calls")
        let refused = calls.filter { $0.status != 200 }
        #expect(refused.isEmpty, "calls not allowed while one node was cut: \(refused.prefix(5))")
        // Once the proxy has seen node 1 fail (a decision timeout), it names the other three.
        let settled = calls.filter { $0.at > cut + .seconds(3) && $0.at < healed }
        #expect(settled.count >= 5, "too few calls while node 1 was cut: \(settled.count)")
        #expect(
            settled.allSatisfy { $0.signers == [2, 3, 4] },
            "signer sets while node 1 was cut: \(Set(settled.map(\.signers)))")
        #expect(rejoined, "node 1 did not sign again within 40 s of healing")
        try await net.expectConverged()
    }

    @Test("300 ms of latency on one signer: calls stay allowed and as fast as without; the proxy signs with the others")
    func slowSigner() async throws {
        let net = try await FaultTestnet.ready()
        try await net.expectSigners(excluding: nil)
        // The same load without the fault first: on a busy machine a verdict takes a few hundred
        // milliseconds anyway, and "fast" means no slower than that.
        let baseline = await LoadRun(net: net, workers: 2).run(limit: .seconds(4))
        let baselineMedian = Call.median(baseline.compactMap(\.verdictMilliseconds))
        try await net.fault("delay", "300", "1")
        // The delay is in force: a status round with node 1 (a TLS handshake, then one request)
        // takes several of its 600 ms round trips.
        let started = ContinuousClock.now
        _ = try await net.quorumctl(["status", "--cluster", net.path("cluster.toml"), "--certs-dir", net.path("certs")])
        #expect(ContinuousClock.now - started > .milliseconds(600), "status was fast: the delay is not in force")

        let load = LoadRun(net: net, workers: 2)
        let running = Task { await load.run(limit: .seconds(30)) }
        try await Task.sleep(for: .seconds(8))
        let healed = ContinuousClock.now
        try await net.fault("heal", "1")
        let rejoined = await load.wait(within: .seconds(30)) { $0.at > healed && $0.signers.contains(1) }
        load.stop()
        let calls = await running.value

        // A loaded machine can push a few calls past the deadline (503, never an allow); most stay allowed.
        #expect(
            calls.filter { $0.status != 200 }.count * 20 <= calls.count,
            "\(calls.filter { $0.status != 200 }.prefix(5))")
        // After the first calls have shown node 1 slow, it is not named, and calls do not wait for it.
        let delayed = calls.filter { $0.at > started + .seconds(3) && $0.at < healed }
        #expect(delayed.count >= 10, "too few calls while node 1 was slow: \(delayed.count)")
        // Node 1 is named only when a fast node has no nonce commitment cached for the proxy at that
        // moment (the sequencer draws from the same pools for checkpoints); never for most calls.
        let slowSigned = delayed.filter { $0.signers.contains(1) }
        #expect(
            slowSigned.count * 10 <= delayed.count,
            "node 1 signed \(slowSigned.count) of \(delayed.count) calls while slow: \(Set(delayed.map(\.signers)))")
        let verdicts = delayed.compactMap(\.verdictMilliseconds)
        #expect(verdicts.count == delayed.count, "answers without a Server-Timing verdict")
        // A call that waited for node 1 would take its 600 ms round trip on top of the others'.
        let median = Call.median(verdicts)
        #expect(
            median < baselineMedian + 300,
            "median verdict \(median) ms with node 1 slow against \(baselineMedian) ms without: it waits for node 1")
        #expect(rejoined, "node 1 did not sign again within 30 s of healing")
    }

    // The replicated log under faults: the sequencer is the lowest live node id, and `quorumctl
    // status` shows each node's log size and the sequencer it expects.

    @Test("a node cut off during load: calls keep being logged; the node catches up after healing")
    func loggedThroughPartition() async throws {
        let net = try await FaultTestnet.ready()
        var status = try await net.logStatus()
        let before = try #require(status.logSize(of: 1))
        try await net.fault("cut", "2")
        let load = LoadRun(net: net, workers: 2)
        let calls = await load.run(limit: .seconds(6))
        #expect(calls.count >= 10 && calls.allSatisfy { $0.status == 200 }, "\(calls.count) calls")
        status = try await net.logStatus(waitingUntil: { ($0.logSize(of: 1) ?? 0) >= before + UInt64(calls.count) })
        #expect(
            (status.logSize(of: 1) ?? 0) >= before + UInt64(calls.count), "the others did not log the calls: \(status)")
        try await net.fault("heal", "2")
        status = try await net.logStatus(waitingUntil: { $0.logSize(of: 2) == $0.logSize(of: 1) }, within: .seconds(30))
        #expect(status.logSize(of: 2) == status.logSize(of: 1), "node 2 did not catch up: \(status)")
        try net.expectSameRoot(2, 1, size: try #require(status.logSize(of: 1)))
    }

    @Test("the sequencer cut off during load: another takes over, calls keep being logged, it catches up")
    func sequencerPartition() async throws {
        let net = try await FaultTestnet.ready()
        var status = try await net.logStatus()
        let sequencer = try #require(status.sequencer(seenBy: 2), "no sequencer in \(status)")
        let witness = sequencer == 1 ? 2 : 1
        let before = try #require(status.logSize(of: witness))
        try await net.fault("cut", "\(sequencer)")
        let load = LoadRun(net: net, workers: 2)
        let calls = await load.run(limit: .seconds(8))
        #expect(calls.count >= 10 && calls.allSatisfy { $0.status == 200 }, "\(calls.count) calls")
        status = try await net.logStatus(waitingUntil: {
            ($0.logSize(of: witness) ?? 0) >= before + UInt64(calls.count)
        })
        #expect((status.logSize(of: witness) ?? 0) >= before + UInt64(calls.count), "not logged: \(status)")
        let successor = status.sequencer(seenBy: witness)
        #expect(successor != nil && successor != sequencer, "the sequencer did not change: \(status)")
        try await net.fault("heal", "\(sequencer)")
        status = try await net.logStatus(
            waitingUntil: { $0.logSize(of: sequencer) == $0.logSize(of: witness) }, within: .seconds(30))
        #expect(status.logSize(of: sequencer) == status.logSize(of: witness), "it did not catch up: \(status)")
        try net.expectSameRoot(sequencer, witness, size: try #require(status.logSize(of: witness)))
    }
}

// MARK: - The testnet

/// Brings the fault testnet up around the whole suite and down after it, and hands it to the
/// tests through a task-local value.
struct FaultTestnetScope: SuiteTrait, TestScoping {
    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        let net: FaultTestnet.Availability
        do {
            net = try await FaultTestnet.up()
        } catch {
            // Cancelled tests would hide why; each test reports this instead.
            net = .failed("\(error)")
        }
        do {
            try await FaultTestnet.$shared.withValue(net) { try await function() }
        } catch {
            if case .up(let testnet) = net { await testnet.down() }
            throw error
        }
        if case .up(let testnet) = net { await testnet.down() }
    }
}

/// A running fault testnet: its directory, the proxy, the group key and an agent's token for a
/// latch without rate limits, so load is never denied by policy.
final class FaultTestnet: Sendable {
    enum Availability: Sendable {
        case up(FaultTestnet)
        case skipped(String)
        case failed(String)
    }

    @TaskLocal static var shared: Availability = .failed("the suite's FaultTestnetScope did not run")

    /// Why the fault testnet could not be used.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The testnet of the running suite with no fault in force (an earlier test that failed
    /// half-way may have left one); cancels the test (a skip, with the reason) where namespaces
    /// cannot be made, and fails it where bring-up failed.
    static func ready() async throws -> FaultTestnet {
        switch shared {
        case .up(let net):
            try await net.fault("heal", "all")
            return net
        case .skipped(let reason): try Test.cancel(Comment(rawValue: reason))
        case .failed(let reason): throw Failure(description: "the fault testnet did not come up: \(reason)")
        }
    }

    static let scripts = TestKit.packageRoot.appendingPathComponent("testnets/netns")
    static let latchID = "fault"

    let workspace: URL
    let dir: String
    let proxyURL: String
    let groupKey: [UInt8]
    let token: String
    let client: HTTPClient

    private init(workspace: URL, dir: String, proxyURL: String, groupKey: [UInt8], token: String) {
        self.workspace = workspace
        self.dir = dir
        self.proxyURL = proxyURL
        self.groupKey = groupKey
        self.token = token
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
    }

    func path(_ relative: String) -> String { dir + "/" + relative }

    /// up.sh with the binaries of this build, then a bundle with the latch `fault` pushed to the
    /// nodes and seen by the proxy.
    static func up() async throws -> Availability {
        let workspace = try TestKit.temporaryDirectory("netns-fault")
        let dir = workspace.appendingPathComponent("net").path
        let up = try await TestKit.run(
            scripts.appendingPathComponent("up.sh"),
            ["--nodes", "4", "--threshold", "3", "--dir", dir, "--bin", TestKit.productsDirectory.path],
            timeout: .seconds(200))
        if up.status == 77 {
            try? FileManager.default.removeItem(at: workspace)
            let reason = up.stdoutLines.first { $0.contains("SKIP:") } ?? up.stdout
            return .skipped("the fault testnet cannot run here: \(reason)")
        }
        guard up.status == 0 else {
            _ = try? await TestKit.run(
                scripts.appendingPathComponent("down.sh"), ["--dir", dir], timeout: .seconds(60))
            try? FileManager.default.removeItem(at: workspace)
            return .failed("up.sh: \(up)")
        }
        let port = try String(contentsOfFile: dir + "/run/proxy.ready", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let group = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/group.json")))
        let groupKey = Hex.decode(((group as? [String: Any])?["group_public_key"] as? String) ?? "") ?? []
        let token = LatchToken(latchID: latchID, randomBytes: SecretBytes.random(count: 32).copyBytes())
        let net = FaultTestnet(
            workspace: workspace, dir: dir, proxyURL: "http://127.0.0.1:\(port)", groupKey: groupKey, token: token.text)
        do {
            try await net.pushLoadLatch(digest: Hex.encode(token.secretDigest))
        } catch {
            await net.down()
            throw error
        }
        return .up(net)
    }

    /// down.sh, and the workspace removed.
    func down() async {
        try? await client.shutdown()
        let result = try? await TestKit.run(
            Self.scripts.appendingPathComponent("down.sh"), ["--dir", dir], timeout: .seconds(90))
        if result?.status != 0 {
            Issue.record(
                "down.sh did not take the fault testnet down: \(result.map(\.description) ?? "it did not run")")
        }
        try? FileManager.default.removeItem(at: workspace)
    }

    /// The demo bundle plus the latch `fault` (POST chat completions through the same mount and
    /// sealed secret, no rate limit, no budget), version 100, signed with the testnet's operator
    /// key and pushed; then waits until the proxy routes it (it refreshes from the nodes).
    private func pushLoadLatch(digest: String) async throws {
        let demo = try String(contentsOfFile: path("bundle.yaml"), encoding: .utf8)
        let upstream = try #require(
            demo.split(separator: "\n").first { $0.contains("upstream: http") }.map {
                $0.split(separator: " ").last.map(String.init) ?? ""
            }, "no upstream in \(path("bundle.yaml"))")
        let bundle = """
            format: quorum-latch/bundle/v1
            version: 100
            secrets:
              - name: openai
                inject: bearer
            latches:
              - id: \(Self.latchID)
                token_sha256: \(digest)
                mounts:
                  - path: /openai
                    upstream: \(upstream)
                    secret: openai
                    filters:
                      - method: [POST]
                      - endpoint:
                          allow: [/v1/chat/completions]

            """
        try Data(bundle.utf8).write(to: URL(fileURLWithPath: path("fault-bundle.yaml")))
        let sign = try await quorumctl([
            "policy", "sign", path("fault-bundle.yaml"), "--key", path("operator.key"), "--out",
            path("fault-bundle.signed.json"),
        ])
        try #require(sign.status == 0, "policy sign: \(sign)")
        let push = try await quorumctl([
            "policy", "push", path("fault-bundle.signed.json"), "--cluster", path("cluster.toml"), "--certs-dir",
            path("certs"),
        ])
        try #require(push.status == 0, "policy push: \(push)")
        let deadline = ContinuousClock.now + .seconds(30)
        var last: Call?
        while ContinuousClock.now < deadline {
            last = try? await call()
            if last?.status == 200 { return }
            try await Task.sleep(for: .milliseconds(300))
        }
        throw Failure(description: "the proxy did not allow the latch 'fault' within 30 s: \(String(describing: last))")
    }

    func quorumctl(_ arguments: [String]) async throws -> TestKit.ProcessOutput {
        try await TestKit.run(TestKit.executable("quorumctl"), arguments, timeout: .seconds(60))
    }

    /// fault.sh with `arguments`, which must succeed.
    func fault(_ arguments: String...) async throws {
        let result = try await TestKit.run(
            Self.scripts.appendingPathComponent("fault.sh"), arguments, timeout: .seconds(30))
        try #require(result.status == 0, "fault.sh \(arguments.joined(separator: " ")): \(result)")
    }

    /// One agent call: a small chat completion with the `fault` latch's token.
    func call() async throws -> Call {
        var request = HTTPClientRequest(url: proxyURL + "/openai/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer " + token)
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(
            ByteBuffer(string: #"{"model":"demo-small","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}"#))
        let started = ContinuousClock.now
        let response = try await client.execute(request, timeout: .seconds(15))
        let body = try await response.body.collect(upTo: 1 << 20)
        var signers: [Int] = []
        if let compact = response.headers.first(name: "Latch-Receipt"),
            let receipt = try? Receipt.verified(compact, groupKey: groupKey)
        {
            signers = receipt.claims.signers
        }
        var answer = Call(
            at: started, status: Int(response.status.code), signers: signers,
            verdictMilliseconds: Call.metric("verdict", in: response.headers.first(name: "Server-Timing")))
        if answer.status != 200 { answer.problem = String(String(buffer: body).prefix(300)) }
        return answer
    }

    /// A few calls, allowed with a receipt that verifies; signed without `node` if given.
    func expectSigners(excluding node: Int?) async throws {
        for _ in 0..<3 {
            let answer = try await call()
            #expect(answer.status == 200 && answer.signers.count == 3, "\(answer)")
            if let node { #expect(!answer.signers.contains(node), "\(answer)") }
        }
    }

    /// Waits (at most 30 s) until `quorumctl status` sees every node up, hearing from all its peers.
    func expectConverged() async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        var last: TestKit.ProcessOutput?
        while ContinuousClock.now < deadline {
            let status = try await quorumctl([
                "status", "--cluster", path("cluster.toml"), "--certs-dir", path("certs"),
            ])
            if status.status == 0, !status.stdout.contains("down:") { return }
            last = status
            try await Task.sleep(for: .milliseconds(500))
        }
        Issue.record("the nodes did not all see each other again within 30 s: \(String(describing: last))")
    }

    /// The same entries, not just as many: both nodes' stores have one root at `size` (opened
    /// read-only, beside the running nodes).
    func expectSameRoot(_ node: Int, _ other: Int, size: UInt64) throws {
        let roots = try [node, other].map { id in
            try ReplicatedLog(dataDirectory: path("data-\(id)"), readOnly: true).log.root(at: size)
        }
        #expect(roots[0] == roots[1], "node \(node)'s root at size \(size) differs from node \(other)'s")
    }

    /// `quorumctl status` as a table, which must show each node's log; with `waitingUntil`, asked
    /// again until it holds or `within`.
    func logStatus(
        waitingUntil done: (StatusTable) -> Bool = { _ in true }, within limit: Duration = .seconds(20)
    ) async throws -> StatusTable {
        let deadline = ContinuousClock.now + limit
        while true {
            let output = try await quorumctl([
                "status", "--cluster", path("cluster.toml"), "--certs-dir", path("certs"),
            ])
            let table = StatusTable(output.stdout)
            try #require(
                table.columns.contains(where: { $0.hasPrefix("LOG") })
                    && table.columns.contains(where: { $0.hasPrefix("SEQUENCER") }),
                "quorumctl status has no LOG and SEQUENCER columns: \(table.columns.joined(separator: ", "))")
            if done(table) || ContinuousClock.now >= deadline { return table }
            try await Task.sleep(for: .milliseconds(500))
        }
    }
}

/// One call's outcome, as the load saw it.
struct Call: Sendable, CustomStringConvertible {
    let at: ContinuousClock.Instant
    let status: Int
    /// The receipt's signer set; empty without a receipt that verifies.
    let signers: [Int]
    /// Server-Timing's `verdict`: from the fan-out to the decision, in milliseconds.
    let verdictMilliseconds: Double?
    /// The start of the answer's body when it is not a 200: the proxy's reason.
    var problem = ""

    var description: String {
        "HTTP \(status), signers \(signers), verdict \(verdictMilliseconds ?? -1) ms"
            + (problem.isEmpty ? "" : ": \(problem)")
    }

    /// The duration of metric `name` in a Server-Timing header (`name;dur=12.345, …`).
    static func metric(_ name: String, in header: String?) -> Double? {
        guard let header else { return nil }
        for metric in header.split(separator: ",") {
            let parts = metric.trimmingCharacters(in: .whitespaces).split(separator: ";")
            if parts.first.map(String.init) == name,
                let duration = parts.dropFirst().first(where: { $0.hasPrefix("dur=") })
            {
                return Double(duration.dropFirst(4))
            }
        }
        return nil
    }

    /// The median of `values`, or infinity for none.
    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? .infinity : sorted[sorted.count / 2]
    }
}

/// A few agents calling the proxy back to back, bounded in time and in count, recording every
/// call; `wait` watches the calls as they come.
final class LoadRun: Sendable {
    let net: FaultTestnet
    let workers: Int
    private let calls = Mutex<[Call]>([])
    private let stopped = Atomic<Bool>(false)

    /// The most calls one run makes, whatever its time limit.
    static let maximumCalls = 3000

    init(net: FaultTestnet, workers: Int) {
        self.net = net
        self.workers = workers
    }

    func stop() { stopped.store(true, ordering: .releasing) }

    /// Calls until stopped, `limit` passed or ``maximumCalls`` made; every call, in start order.
    /// A call that fails outright (no HTTP answer) is recorded as status 0.
    func run(limit: Duration) async -> [Call] {
        let deadline = ContinuousClock.now + limit
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<workers {
                group.addTask {
                    while !self.stopped.load(ordering: .acquiring), ContinuousClock.now < deadline,
                        self.calls.withLock({ $0.count }) < Self.maximumCalls
                    {
                        let started = ContinuousClock.now
                        let call =
                            (try? await self.net.call())
                            ?? Call(at: started, status: 0, signers: [], verdictMilliseconds: nil)
                        self.calls.withLock { $0.append(call) }
                    }
                }
            }
        }
        return calls.withLock { $0 }.sorted { $0.at < $1.at }
    }

    /// Waits (at most `limit`) until a call satisfying `condition` has been recorded.
    func wait(within limit: Duration, until condition: (Call) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if calls.withLock({ $0.contains(where: condition) }) { return true }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return false
    }
}

/// `quorumctl status`'s table, read by its header: each column starts where its name starts.
struct StatusTable: Sendable, CustomStringConvertible {
    let columns: [String]
    private let rows: [[String: String]]
    let text: String

    init(_ text: String) {
        self.text = text
        let lines = text.split(separator: "\n").map(String.init)
        guard let header = lines.first else {
            columns = []
            rows = []
            return
        }
        // Names are separated by two or more spaces; a name may hold one ("BOOT EPOCH").
        var starts: [(String, Int)] = []
        var index = header.startIndex
        while index < header.endIndex {
            while index < header.endIndex, header[index] == " " { index = header.index(after: index) }
            guard index < header.endIndex else { break }
            let start = index
            while index < header.endIndex,
                !(header[index] == " " && header.index(after: index) < header.endIndex
                    && header[header.index(after: index)] == " ")
            {
                index = header.index(after: index)
            }
            starts.append(
                (
                    String(header[start..<index]).trimmingCharacters(in: .whitespaces),
                    header.distance(
                        from: header.startIndex, to: start)
                ))
        }
        columns = starts.map(\.0)
        rows = lines.dropFirst().map { line in
            var row: [String: String] = [:]
            let characters = Array(line)
            for (position, (name, start)) in starts.enumerated() {
                let end = position + 1 < starts.count ? starts[position + 1].1 : characters.count
                guard start < characters.count else { continue }
                row[name] = String(characters[start..<min(end, characters.count)]).trimmingCharacters(in: .whitespaces)
            }
            return row
        }
    }

    /// The cell of `node`'s row in the first column whose name starts with `column`.
    func cell(node: Int, column: String) -> String? {
        guard let name = columns.first(where: { $0.hasPrefix(column) }) else { return nil }
        return rows.first { $0["NODE"] == "\(node)" }?[name]
    }

    /// The log size node `node` reports (the first number in its LOG cell).
    func logSize(of node: Int) -> UInt64? {
        cell(node: node, column: "LOG").flatMap { UInt64($0.prefix { $0.isNumber }) }
    }

    /// The sequencer node `node` names.
    func sequencer(seenBy node: Int) -> Int? {
        cell(node: node, column: "SEQUENCER").flatMap { Int($0.prefix { $0.isNumber }) }
    }

    var description: String { text }
}
