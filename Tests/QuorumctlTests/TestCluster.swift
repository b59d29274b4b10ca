import Foundation
import QuorumTestKit
import Synchronization
import Testing

/// A running quorumd and everything it printed so far.
final class Daemon: Sendable {
    static let executable = TestKit.executable("quorumd")

    let id: Int
    let port: Int
    let child: TestKit.LaunchedProcess
    private let log = Mutex(Data())

    /// Starts `executable` (quorumd unless another binary, as quorum-proxy, is given).
    init(id: Int, port: Int, arguments: [String], executable: URL = Daemon.executable) throws {
        try #require(
            FileManager.default.isExecutableFile(atPath: executable.path), "no executable at \(executable.path)")
        self.id = id
        self.port = port
        child = try TestKit.launch(executable, arguments)
        try? child.input.fileHandleForWriting.close()
        let errors = child.errors.fileHandleForReading
        let output = child.output.fileHandleForReading
        // Drain both pipes so a chatty node never blocks on a full one.
        DispatchQueue.global().async { [self] in
            while true {
                let chunk = errors.availableData
                if chunk.isEmpty { return }
                self.log.withLock { $0.append(chunk) }
            }
        }
        DispatchQueue.global().async { _ = try? output.readToEnd() }
    }

    var stderr: String { log.withLock { String(decoding: $0, as: UTF8.self) } }
    var isRunning: Bool { child.process.isRunning }

    /// Sends SIGTERM and waits at most `limit` for the exit; the status, or nil on a timeout
    /// (the process is then killed).
    func terminate(within limit: Duration) async -> Int32? {
        child.process.terminate()
        if await waitExit(limit) { return child.process.terminationStatus }
        kill(child.process.processIdentifier, SIGKILL)
        _ = await waitExit(.seconds(5))
        return nil
    }

    /// Kills the process with SIGKILL (a crash: nothing runs on the way out) and waits for it.
    func crash() async {
        kill(child.process.processIdentifier, SIGKILL)
        _ = await waitExit(.seconds(10))
    }

    private func waitExit(_ limit: Duration) async -> Bool {
        let exited = child.exited
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                let ms = Int(limit.components.seconds * 1000)
                continuation.resume(returning: exited.wait(timeout: .now() + .milliseconds(ms)) == .success)
            }
        }
    }
}

/// n real quorumd processes on loopback in a workspace: certificates from `quorumctl certs init`
/// (`certs/`), one TOML per node (`node-<i>.toml`, data in `data-<i>/`), and `cluster.toml` for
/// the operator's commands. Optionally each node starts with dealer keys installed
/// (`keygen --dealer` into `dealer/`, copied to `data-<i>/keys/`).
final class TestCluster {
    let workspace: Workspace
    let size: Int
    let ports: [Int]
    private(set) var daemons: [Int: Daemon] = [:]

    /// The operator's arguments that reach every node: `--cluster … --certs-dir …`.
    var operatorArguments: [String] {
        ["--cluster", workspace.path("cluster.toml"), "--certs-dir", workspace.path("certs")]
    }

    /// Writes certificates and configuration for `size` nodes; with `dealerThreshold`, installs
    /// dealer keys in every data directory. Nothing is started.
    init(
        _ workspace: Workspace, nodes size: Int, dealerThreshold: Int? = nil, heartbeatMilliseconds: Int = 200,
        operatorKeys: [String] = []
    )
        async throws
    {
        self.workspace = workspace
        self.size = size
        let made = try await workspace.quorumctl(
            "certs", "init", "--nodes", "\(size)", "--out", workspace.path("certs"))
        try #require(made.status == 0, "\(made)")
        ports = try Self.freePorts(size)
        var cluster = ""
        for id in 1...size {
            cluster += "[[nodes]]\nid = \(id)\naddress = \"127.0.0.1:\(ports[id - 1])\"\n\n"
            var config = """
                node_id = \(id)
                listen = "127.0.0.1:\(ports[id - 1])"
                data_dir = "\(workspace.path("data-\(id)"))"

                [tls]
                certificate = "certs/node-\(id).pem"
                private_key = "certs/node-\(id).key"
                cluster_ca = "certs/ca.pem"

                [membership]
                heartbeat_interval_ms = \(heartbeatMilliseconds)
                peer_timeout_ms = \(max(1500, heartbeatMilliseconds * 6))

                """
            if !operatorKeys.isEmpty {
                config += "[policy]\noperator_keys = [\(operatorKeys.map { "\"\($0)\"" }.joined(separator: ", "))]\n"
            }
            for peer in 1...size where peer != id {
                config += "\n[[peers]]\nid = \(peer)\naddress = \"127.0.0.1:\(ports[peer - 1])\"\n"
            }
            try workspace.write("node-\(id).toml", config)
        }
        try workspace.write("cluster.toml", cluster)
        if let threshold = dealerThreshold {
            let keygen = try await workspace.quorumctl(
                "keygen", "--dealer", "--threshold", "\(threshold)", "--nodes", "\(size)", "--out",
                workspace.path("dealer"), "--allow-unsafe")
            try #require(keygen.status == 0, "\(keygen)")
            for id in 1...size { try installDealerKeys(node: id) }
        }
    }

    /// Copies the dealer's files for node `id` into its data directory's `keys/` (0700).
    func installDealerKeys(node id: Int) throws {
        let keys = workspace.path("data-\(id)/keys")
        try FileManager.default.createDirectory(
            atPath: keys, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let files = [
            ("dealer/node-\(id)/signing-share.json", "signing-share.json"),
            ("dealer/node-\(id)/sealing-share.json", "sealing-share.json"),
            ("dealer/group.json", "group.json"), ("dealer/sealing-group.json", "sealing-group.json"),
        ]
        for (source, name) in files {
            let target = (keys as NSString).appendingPathComponent(name)
            try? FileManager.default.removeItem(atPath: target)
            try FileManager.default.copyItem(atPath: workspace.path(source), toPath: target)
        }
    }

    /// Starts node `id` and waits (at most `limit`) until it listens.
    @discardableResult
    func start(_ id: Int, within limit: Duration = .seconds(30)) async throws -> Daemon {
        let ready = workspace.path("ready-\(id)")
        try? FileManager.default.removeItem(atPath: ready)
        let daemon = try Daemon(
            id: id, port: ports[id - 1],
            arguments: ["--config", workspace.path("node-\(id).toml"), "--ready-file", ready])
        daemons[id] = daemon
        let up = await eventually(within: limit) {
            FileManager.default.fileExists(atPath: ready) || !daemon.isRunning
        }
        try #require(up && daemon.isRunning, "node \(id) did not start:\n\(daemon.stderr)")
        return daemon
    }

    /// Starts every node, then waits (at most `limit`) until `quorumctl status` exits 0 with every
    /// node seeing every other.
    func startAll(within limit: Duration = .seconds(60)) async throws {
        for id in 1...size { try await start(id) }
        try await waitUntilConverged(within: limit)
    }

    /// Waits until every node is reachable and sees all its peers up.
    func waitUntilConverged(within limit: Duration = .seconds(60)) async throws {
        var last: TestKit.ProcessOutput?
        let converged = try await eventually(within: limit) {
            let result = try await workspace.quorumctl(["status"] + operatorArguments)
            last = result
            return result.status == 0 && !result.stdout.contains("down:")
                && result.stdoutLines.dropFirst().count == size
        }
        try #require(converged, "the cluster never converged:\n\(String(describing: last))\n\(logs)")
    }

    /// SIGTERMs every running node, expecting exit 0, and that no log line shows key material.
    func stopAll() async {
        for (id, daemon) in daemons.sorted(by: { $0.key < $1.key }) where daemon.isRunning {
            let exit = await daemon.terminate(within: .seconds(10))
            #expect(exit == 0, "node \(id) exit \(String(describing: exit)):\n\(daemon.stderr)")
        }
        for secret in workspace.shareSecrets() {
            for (id, daemon) in daemons where daemon.stderr.lowercased().contains(secret.lowercased()) {
                Issue.record("node \(id)'s log contains a share's secret")
            }
        }
    }

    /// Every node's log, for failure messages.
    var logs: String {
        daemons.sorted { $0.key < $1.key }.map { "--- node \($0.key)\n\($0.value.stderr)" }.joined(separator: "\n")
    }

    /// Runs `body` with a cluster of `nodes` in a fresh workspace and always kills what is left.
    static func with(
        nodes: Int, dealerThreshold: Int? = nil, operatorKeys: [String] = [],
        _ body: (TestCluster) async throws -> Void
    ) async throws {
        try await Workspace.with { workspace in
            let cluster = try await TestCluster(
                workspace, nodes: nodes, dealerThreshold: dealerThreshold, operatorKeys: operatorKeys)
            defer {
                for daemon in cluster.daemons.values where daemon.isRunning {
                    kill(daemon.child.process.processIdentifier, SIGKILL)
                }
            }
            try await body(cluster)
        }
    }

    /// Free loopback ports: bound to port 0, read back, released. Another process could take one
    /// in between; the test then fails at start-up with quorumd's "cannot listen" line.
    static func freePorts(_ count: Int) throws -> [Int] {
        var sockets: [Int32] = []
        defer { for socket in sockets { close(socket) } }
        var ports: [Int] = []
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            try #require(fd >= 0)
            sockets.append(fd)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
            }
            try #require(bound == 0)
            let named = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            try #require(named == 0)
            ports.append(Int(UInt16(bigEndian: address.sin_port)))
        }
        return ports
    }
}

/// Polls `condition` every 200 ms for at most `limit`.
func eventually(within limit: Duration, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(200))
    }
    return false
}
