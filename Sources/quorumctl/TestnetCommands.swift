import ArgumentParser
import Foundation
import QuorumCrypto
import QuorumIdentity
import QuorumNode
import QuorumPolicy
import QuorumProtocol
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `quorumctl testnet …`: a whole cluster on one machine, for trying Quorum Latch out.
struct Testnet: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start and stop a local testnet: quorumd nodes, a proxy and a demo upstream on loopback.",
        subcommands: [TestnetUp.self, TestnetDown.self]
    )
}

/// `quorumctl testnet up [--nodes 4] [--threshold 3] [--dir DIR]`.
struct TestnetUp: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start a local testnet and print how to call it.",
        discussion: """
            Does what an operator does, with the same code as the commands that do each step: certs init, an \
            operator key (policy keygen), one TOML per node with that key trusted, cluster.toml; starts the demo \
            upstream and the nodes and waits until they all see each other (status); runs the DKG ceremony \
            (keygen --cluster); writes a demo bundle, adds the latch 'demo' (latch create), signs it and pushes it \
            (policy sign, policy push); seals the demo upstream's API key as secret 'openai' and gives every node \
            its sealed record (secrets set, secrets push); then writes proxy.toml and starts the proxy. Every \
            process runs in the background with its log in DIR \
            (node-<i>.log, upstream.log, proxy.log) and its pid in DIR/run. Prints the proxy URL, the latch's \
            token (also in DIR/token, 0600), the group key and two calls to paste: one allowed, one the token cap \
            denies. Refuses a DIR where a testnet runs or that holds files; a failure stops what was started. \
            Stop it with `quorumctl testnet down`.

            The network-namespace testnet (testnets/netns/up.sh) uses two more options: --node-host gives each \
            node its own address (node i listens there, its certificate names it, peers and the proxy dial it), \
            and --node-launcher starts each node through a program (run as LAUNCHER ID QUORUMD ARGS..., it must \
            exec the command so the pid stays the node's), e.g. one that enters the node's namespace.
            """
    )

    @Option(help: "Number of quorumd nodes.")
    var nodes: Int = 4

    @Option(help: "Signing threshold k: an allow needs k of the n nodes.")
    var threshold: Int = 3

    @Option(help: ArgumentHelp("The testnet's directory (created; must be empty or missing).", valueName: "dir"))
    var dir: String = "testnet"

    @Option(
        name: .customLong("node-host"),
        help: ArgumentHelp(
            "The IP address node i listens on, once per node in id order (default: 127.0.0.1 for all); "
                + "each node's certificate names its address.", valueName: "address"))
    var nodeHosts: [String] = []

    @Option(
        help: ArgumentHelp(
            "A program that starts each node: run as LAUNCHER ID QUORUMD ARGS...; it must exec the command "
                + "(default: quorumd is started directly).", valueName: "path"))
    var nodeLauncher: String?

    func run() throws {
        let parameters: ThresholdParameters
        do { parameters = try ThresholdParameters(threshold: threshold, participants: nodes) } catch {
            throw CLIError("--threshold \(threshold) --nodes \(nodes): \(error.reason)")
        }
        try KeygenGenerate.checkFaultTolerance(parameters, allowUnsafe: false)
        let plan = try TestnetNodePlan(nodes: nodes, hosts: nodeHosts, launcher: nodeLauncher)
        let binaries = try TestnetBinaries.locate()
        let layout = TestnetLayout(dir)
        try layout.prepare()
        let bringUp = TestnetBringUp(layout: layout, binaries: binaries, plan: plan, threshold: threshold)
        let interruptions = Self.stopOnInterrupt(layout)
        defer { for source in interruptions { source.cancel() } }
        let summary: String
        do {
            summary = try bringUp.run()
        } catch {
            // An interrupt stops everything and exits itself; a step failing because of it waits.
            while Self.interrupted.load(ordering: .acquiring) { pause() }
            if !bringUp.started.isEmpty {
                Output.error("testnet up failed; stopping what it started")
                let outcomes = TestnetProcesses.stop(bringUp.started.reversed(), layout: layout)
                for (entry, outcome) in outcomes { Output.error("  " + TestnetDown.describe(entry, outcome)) }
            }
            Output.error("the logs are in \(layout.root) (*.log); remove the directory before trying again")
            throw error
        }
        Output.line(summary)
    }

    /// Set once an interrupt has begun stopping the testnet.
    private static let interrupted = Atomic<Bool>(false)

    /// Ctrl-C (SIGINT) or SIGTERM while `up` runs stops what it started, as a failure does, and
    /// exits 130. The handler reads the pid files rather than `up`'s own list, so it shares no
    /// memory with the steps it interrupts.
    private static func stopOnInterrupt(_ layout: TestnetLayout) -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                guard !interrupted.exchange(true, ordering: .acquiringAndReleasing) else { return }
                Output.error("\ninterrupted; stopping what testnet up started")
                let recorded = TestnetProcesses.recorded(layout.recordedServices(), layout: layout)
                for (entry, outcome) in TestnetProcesses.stop(recorded, layout: layout) {
                    Output.error("  " + TestnetDown.describe(entry, outcome))
                }
                Output.error("the logs are in \(layout.root) (*.log); remove the directory before trying again")
                Foundation.exit(130)
            }
            source.resume()
            return source
        }
    }
}

/// `quorumctl testnet down [--dir DIR]`.
struct TestnetDown: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down",
        abstract: "Stop a local testnet and keep its data.",
        discussion: """
            SIGTERMs every process whose pid is in DIR/run (proxy, demo upstream, nodes), waits up to 15 s, then \
            SIGKILLs any left and says so. Prints each one's exit status. DIR is kept for inspection. Running it \
            again, or on a DIR without a testnet, changes nothing. Exit status: 0 when everything stopped cleanly \
            (or nothing was running), 1 when a process had to be killed or exited with a status other than 0.
            """
    )

    @Option(help: ArgumentHelp("The testnet's directory.", valueName: "dir"))
    var dir: String = "testnet"

    func run() throws {
        let layout = TestnetLayout(dir)
        let recorded = TestnetProcesses.recorded(layout.recordedServices(), layout: layout)
        guard !recorded.isEmpty else {
            Output.line(
                "no testnet is running in \(layout.root) (no pid files in \(layout.path("run"))); nothing to stop")
            return
        }
        var unclean = false
        for (entry, outcome) in TestnetProcesses.stop(recorded, layout: layout) {
            switch outcome {
            case .stopped(exit: 0), .notRunning(exit: 0), .notRunning(exit: nil): break
            default: unclean = true
            }
            Output.line(Self.describe(entry, outcome))
        }
        Output.line(
            "stopped; the data is kept in \(layout.root) for inspection (logs: *.log); "
                + "remove it with rm -rf \(layout.root)")
        if unclean { throw ExitCode(1) }
    }

    /// One line about how `entry` stopped.
    static func describe(_ entry: TestnetProcesses.Running, _ outcome: TestnetProcesses.StopOutcome) -> String {
        let name = "\(entry.service.label) (pid \(entry.pid))"
        switch outcome {
        case .stopped(exit: let exit?): return "\(name): stopped, exit status \(exit)"
        case .stopped(exit: nil): return "\(name): stopped (its exit status was not recorded)"
        case .notRunning(exit: let exit?): return "\(name): was not running (it had exited with status \(exit))"
        case .notRunning(exit: nil): return "\(name): was not running"
        case .killed: return "\(name): did not stop within 15 s of SIGTERM; killed with SIGKILL"
        }
    }
}

/// The paths of a testnet, all under one absolute directory, so that `down` (and the process
/// check) find the same files whatever the working directory.
struct TestnetLayout: Sendable {
    /// The directory, absolute, without a trailing `/`.
    let root: String

    init(_ directory: String) {
        let absolute =
            directory.hasPrefix("/")
            ? directory : FileManager.default.currentDirectoryPath + "/" + directory
        var standardized = (absolute as NSString).standardizingPath
        while standardized.count > 1, standardized.hasSuffix("/") { standardized.removeLast() }
        root = standardized
    }

    func path(_ relative: String) -> String { root + "/" + relative }
    func run(_ name: String) -> String { path("run/" + name) }
    func log(_ service: TestnetProcesses.Service) -> String { path(service.name + ".log") }

    var certs: String { path("certs") }
    var clusterFile: String { path("cluster.toml") }
    var operatorKey: String { path("operator.key") }
    var bundle: String { path("bundle.yaml") }
    var signedBundle: String { path("bundle.signed.json") }
    var token: String { path("token") }
    var apiKey: String { path("upstream-api-key") }
    var proxyConfiguration: String { path("proxy.toml") }
    var proxyData: String { path("proxy-data") }
    var group: String { path("group.json") }
    var sealingGroup: String { path("sealing-group.json") }
    func nodeConfiguration(_ id: Int) -> String { path("node-\(id).toml") }

    static let proxy = TestnetProcesses.Service(name: "proxy", label: "proxy")
    static let upstream = TestnetProcesses.Service(name: "upstream", label: "demo upstream")
    static func node(_ id: Int) -> TestnetProcesses.Service {
        TestnetProcesses.Service(name: "node-\(id)", label: "node \(id)")
    }

    /// The services with a pid file in `run/`, in stopping order: the proxy first (no call is
    /// decided half-way), then the upstream, then the nodes by id.
    func recordedServices() -> [TestnetProcesses.Service] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: run(""))) ?? []
        let stems = Set(names.filter { $0.hasSuffix(".pid") }.map { String($0.dropLast(4)) })
        var services: [TestnetProcesses.Service] = []
        if stems.contains(Self.proxy.name) { services.append(Self.proxy) }
        if stems.contains(Self.upstream.name) { services.append(Self.upstream) }
        let ids = stems.compactMap { $0.hasPrefix("node-") ? Int($0.dropFirst(5)) : nil }.sorted()
        return services + ids.map(Self.node)
    }

    /// Creates the directory (0700: it holds keys) and `run/`; refuses one where a testnet runs,
    /// or that holds anything, so that `up` never mixes two testnets' keys and data.
    func prepare() throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw CLIError("--dir \(root): exists and is not a directory") }
            let running = TestnetProcesses.recorded(recordedServices(), layout: self).filter {
                TestnetProcesses.isRunning($0.pid, layout: self)
            }
            if !running.isEmpty {
                let list = running.map { "\($0.service.label) pid \($0.pid)" }.joined(separator: ", ")
                throw CLIError(
                    "a testnet is running in \(root) (\(list)); stop it first with quorumctl testnet down --dir \(root)"
                )
            }
            let contents = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
            if !contents.isEmpty {
                throw CLIError(
                    "\(root): is not empty (testnet down keeps a stopped testnet's data there); remove it "
                        + "(rm -rf \(root)) or pass another --dir")
            }
        }
        do {
            try FileManager.default.createDirectory(
                atPath: run(""), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: root)
        } catch {
            throw CLIError("\(root): cannot create the testnet directory: \(error.localizedDescription)")
        }
    }
}

/// Where a testnet's nodes listen and how each is started: by default every node on 127.0.0.1,
/// started directly; the network-namespace testnet gives each node its own address and a
/// launcher that enters the node's namespace, without `testnet up` knowing about namespaces.
struct TestnetNodePlan: Sendable {
    /// The number of nodes.
    let nodes: Int
    /// Node i's address at index i - 1, as given, or `nil` for loopback.
    let hosts: [String]?
    /// The launcher's absolute path, or `nil` to start quorumd directly.
    let launcher: String?

    /// A plan for `nodes` nodes; `hosts` empty means loopback. Refuses a host count other than
    /// `nodes`, a host that is not an IP address, the same address twice, and a launcher that is
    /// not an executable file.
    init(nodes: Int, hosts: [String], launcher: String?) throws {
        self.nodes = nodes
        if hosts.isEmpty {
            self.hosts = nil
        } else {
            guard hosts.count == nodes else {
                throw CLIError("--node-host: given \(hosts.count) times for \(nodes) nodes; give it once per node")
            }
            for host in hosts {
                let parsed = try CertFlags.check("--node-host", "'\(host)'") { () throws(IdentityError) in
                    try HostName.parse(host)
                }
                guard case .ip = parsed else {
                    throw CLIError("--node-host '\(host)': expected an IP address, as 10.77.0.1, which the node binds")
                }
            }
            if let twice = Dictionary(grouping: hosts, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
                throw CLIError("--node-host '\(twice)': given for two nodes; every node needs its own address")
            }
            self.hosts = hosts
        }
        if let launcher {
            let absolute =
                launcher.hasPrefix("/") ? launcher : FileManager.default.currentDirectoryPath + "/" + launcher
            guard FileManager.default.isExecutableFile(atPath: absolute) else {
                throw CLIError("--node-launcher \(launcher): not an executable file")
            }
            self.launcher = absolute
        } else {
            self.launcher = nil
        }
    }

    /// Each node's listen address: its host (or 127.0.0.1) and its port.
    func addresses(ports: [Int]) -> [NodeAddress] {
        (0..<nodes).map { NodeAddress(host: hosts?[$0] ?? "127.0.0.1", port: ports[$0]) }
    }
}

/// The quorumd and quorum-proxy binaries beside the running quorumctl: a testnet runs the
/// binaries of the same build.
struct TestnetBinaries: Sendable {
    let quorumd: String
    let proxy: String

    static func locate() throws -> TestnetBinaries {
        guard let own = Bundle.main.executablePath else {
            throw CLIError("cannot tell where quorumctl is, to find quorumd and quorum-proxy beside it")
        }
        let directory = URL(fileURLWithPath: own).resolvingSymlinksInPath().deletingLastPathComponent().path
        func find(_ name: String) throws -> String {
            let path = directory + "/" + name
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw CLIError(
                    "no \(name) beside quorumctl in \(directory); build it too (swift build --product \(name))")
            }
            return path
        }
        return TestnetBinaries(quorumd: try find("quorumd"), proxy: try find("quorum-proxy"))
    }
}

/// The steps of `testnet up`, in order; `started` lists what is running, for the clean-up after
/// a failure.
final class TestnetBringUp {
    let layout: TestnetLayout
    let binaries: TestnetBinaries
    let plan: TestnetNodePlan
    let threshold: Int
    private(set) var started: [TestnetProcesses.Running] = []

    var nodes: Int { plan.nodes }

    /// How long each process may take to start, and the nodes to see each other: generous, for
    /// debug builds on a busy 2-core machine.
    static let startLimit: Duration = .seconds(60)

    init(layout: TestnetLayout, binaries: TestnetBinaries, plan: TestnetNodePlan, threshold: Int) {
        self.layout = layout
        self.binaries = binaries
        self.plan = plan
        self.threshold = threshold
    }

    private func step(_ text: String) { Output.line("\n==> \(text)") }

    /// Runs every step; returns what `up` prints at the end.
    func run() throws -> String {
        step("certificates, an operator key and configuration in \(layout.root)")
        let certs = try CertsInit.parse(["--nodes", "\(nodes)", "--out", layout.certs])
        try certs.run()
        try issueNodeCertificatesForHosts()
        let operatorKey = Hex.encode(try PolicyKeygen.generate(to: layout.operatorKey))
        Output.line("operator key: \(layout.operatorKey) (0600), public key \(operatorKey)")
        let ports = try FreePorts.take(nodes + 2)
        let nodePorts = Array(ports[0..<nodes])
        let upstreamPort = ports[nodes]
        let proxyPort = ports[nodes + 1]
        let nodeAddresses = plan.addresses(ports: nodePorts)
        try writeNodeConfigurations(addresses: nodeAddresses, operatorKey: operatorKey)
        Output.line(
            "wrote node-1..\(nodes).toml (nodes on \(nodeAddresses.map(\.description).joined(separator: ","))), cluster.toml"
        )

        step("the demo upstream on 127.0.0.1:\(upstreamPort)")
        var apiKey = Array("sk-demo-\(Hex.encode(SecretBytes.random(count: 16).copyBytes()))".utf8)
        try KeyFiles.writeSecretFile(SecretBytes(consuming: &apiKey), to: layout.apiKey, replaceExisting: false)
        try launch(
            TestnetLayout.upstream, binaries.proxy,
            [
                "demo-upstream", "--listen", "127.0.0.1:\(upstreamPort)", "--api-key-file", layout.apiKey,
                "--ready-file", layout.run("upstream.ready"),
            ])
        Output.line("demo upstream running, log \(layout.log(TestnetLayout.upstream))")

        step("\(nodes) quorumd nodes")
        for id in 1...nodes {
            let arguments = ["--config", layout.nodeConfiguration(id), "--ready-file", layout.run("node-\(id).ready")]
            if let launcher = plan.launcher {
                try launch(TestnetLayout.node(id), launcher, ["\(id)", binaries.quorumd] + arguments, wait: false)
            } else {
                try launch(TestnetLayout.node(id), binaries.quorumd, arguments, wait: false)
            }
        }
        for id in 1...nodes { try waitUntilReady(TestnetLayout.node(id)) }
        try waitUntilConverged()

        step("the DKG key ceremony across the nodes")
        let operatorOptions = try OperatorOptions.parse([
            "--cluster", layout.clusterFile, "--certs-dir", layout.certs, "--timeout", "30",
        ])
        try CeremonyCommand(operator: operatorOptions, out: layout.root, allowUnsafe: false, replace: false)
            .run(kind: .dkg, threshold: threshold)

        step("the demo policy bundle and latch")
        try KeyFiles.writePublicFile(
            Array(DemoBundle.text(upstream: "http://127.0.0.1:\(upstreamPort)", withLatch: false).utf8),
            to: layout.bundle)
        let template = try DemoBundle.latchTemplate(upstream: "http://127.0.0.1:\(upstreamPort)")
        let latchOptions = try LatchOptions.parse(["--bundle", layout.bundle, "--id", DemoBundle.latchID])
        let token = try latchOptions.issue { _, digest, expiry, labels in
            Latch(
                id: DemoBundle.latchID, tokenDigest: digest, labels: template.labels.merging(labels) { $1 },
                expires: expiry, filters: template.filters, mounts: template.mounts)
        }
        var tokenBytes = Array((token.text + "\n").utf8)
        try KeyFiles.writeSecretFile(SecretBytes(consuming: &tokenBytes), to: layout.token, replaceExisting: false)
        Output.line("token of latch '\(DemoBundle.latchID)': \(layout.token) (0600)")
        let sign = try PolicySign.parse([layout.bundle, "--key", layout.operatorKey, "--out", layout.signedBundle])
        try sign.run()
        let push = try PolicyPush.parse([
            "--cluster", layout.clusterFile, "--certs-dir", layout.certs, "--timeout", "30", layout.signedBundle,
        ])
        try push.run()

        step("the demo upstream's API key, sealed to the quorum as secret '\(DemoBundle.secret)'")
        try sealCredential()

        step("the proxy on 127.0.0.1:\(proxyPort)")
        try KeyFiles.writePublicFile(
            Array(ProxyFile.text(port: proxyPort, operatorKey: operatorKey).utf8), to: layout.proxyConfiguration)
        try launch(
            TestnetLayout.proxy, binaries.proxy,
            ["run", "--config", layout.proxyConfiguration, "--ready-file", layout.run("proxy.ready")])
        try waitUntilAnswers(port: proxyPort)
        Output.line("proxy running, log \(layout.log(TestnetLayout.proxy))")

        return summary(
            proxyPort: proxyPort, upstreamPort: upstreamPort, nodeAddresses: nodeAddresses, token: token.text)
    }

    /// Seals the demo upstream's key as the secret the bundle names, into the proxy's data
    /// directory (`secrets set`), and gives every node the sealed record (`secrets push`): a node
    /// makes decryption shares only of a box it holds.
    private func sealCredential() throws {
        let set = try SecretsSet.parse([
            DemoBundle.secret, "--value-file", layout.apiKey, "--sealing-group", layout.sealingGroup, "--proxy-dir",
            layout.proxyData,
        ])
        try set.run()
        let push = try SecretsPush.parse([
            DemoBundle.secret, "--proxy-dir", layout.proxyData, "--cluster", layout.clusterFile, "--certs-dir",
            layout.certs, "--timeout", "30",
        ])
        try push.run()
    }

    /// Re-issues each node's certificate for its own address when the plan gives nodes their
    /// own hosts (`certs issue --force`, from the CA `certs init` just made), so a node's
    /// certificate names the address it is reached at rather than loopback.
    private func issueNodeCertificatesForHosts() throws {
        guard let hosts = plan.hosts else { return }
        for (index, host) in hosts.enumerated() {
            let issue = try CertsIssue.parse([
                "--ca-dir", layout.certs, "--role", "node", "--id", "\(index + 1)", "--host", host, "--force",
            ])
            try issue.run()
        }
    }

    private func writeNodeConfigurations(addresses: [NodeAddress], operatorKey: String) throws {
        var cluster = ""
        for id in 1...nodes {
            cluster += "[[nodes]]\nid = \(id)\naddress = \"\(addresses[id - 1])\"\n\n"
            var text = """
                # quorumd configuration of node \(id) of the local testnet (quorumctl testnet up).
                node_id = \(id)
                listen = "\(addresses[id - 1])"
                data_dir = "data-\(id)"

                [tls]
                certificate = "certs/node-\(id).pem"
                private_key = "certs/node-\(id).key"
                cluster_ca = "certs/ca.pem"

                [membership]
                heartbeat_interval_ms = 250
                peer_timeout_ms = 2000

                [policy]
                operator_keys = ["\(operatorKey)"]

                """
            for peer in 1...nodes where peer != id {
                text += "\n[[peers]]\nid = \(peer)\naddress = \"\(addresses[peer - 1])\"\n"
            }
            try KeyFiles.writePublicFile(Array(text.utf8), to: layout.nodeConfiguration(id))
        }
        try KeyFiles.writePublicFile(Array(cluster.utf8), to: layout.clusterFile)
    }

    /// Starts `service` detached and, unless `wait` is false, waits until it has written its
    /// ready file.
    private func launch(
        _ service: TestnetProcesses.Service, _ executable: String, _ arguments: [String], wait: Bool = true
    ) throws {
        let pid = try TestnetProcesses.start(service, executable: executable, arguments: arguments, layout: layout)
        started.append(TestnetProcesses.Running(service: service, pid: pid))
        if wait { try waitUntilReady(service) }
    }

    /// Waits for `service`'s ready file (it listens), failing early, with the end of its log, if
    /// it exits first.
    private func waitUntilReady(_ service: TestnetProcesses.Service) throws {
        let deadline = ContinuousClock.now + Self.startLimit
        let ready = layout.run("\(service.name).ready")
        while ContinuousClock.now < deadline {
            if TestnetProcesses.readInteger(ready) != nil { return }
            if let exit = TestnetProcesses.readInteger(layout.run("\(service.name).exit")) {
                showLogTail(service)
                throw CLIError(
                    "\(service.label) exited with status \(exit) before it was ready; its log: \(layout.log(service))")
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        showLogTail(service)
        throw CLIError("\(service.label) was not ready within \(Self.startLimit); its log: \(layout.log(service))")
    }

    private func showLogTail(_ service: TestnetProcesses.Service) {
        guard let text = try? String(contentsOfFile: layout.log(service), encoding: .utf8) else { return }
        let lines = text.split(separator: "\n").suffix(15)
        Output.error("--- the end of \(layout.log(service))\n" + lines.joined(separator: "\n"))
    }

    /// Waits until every node answers `status` and hears from all its peers (what `quorumctl
    /// status` shows), so the ceremony finds every node up.
    private func waitUntilConverged() throws {
        let options = try OperatorOptions.parse([
            "--cluster", layout.clusterFile, "--certs-dir", layout.certs, "--timeout", "5",
        ])
        let cluster = try options.clusterFile()
        let client = try options.client(for: "testnet up")
        let limit = options.limit
        let expectedPeers = nodes - 1
        let deadline = ContinuousClock.now + Self.startLimit
        var last: [ClusterStatus.Entry] = []
        while ContinuousClock.now < deadline {
            last = Blocking.wait { await ClusterStatus.query(cluster, client: client, timeout: limit) }
            let converged = last.allSatisfy { entry in
                guard case .success(let status) = entry.result else { return false }
                return status.peers.count == expectedPeers && status.peers.allSatisfy(\.isUp)
            }
            if converged {
                Output.line(StatusTable.render(last))
                return
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        Output.error(StatusTable.render(last))
        throw CLIError(
            "the nodes did not all come up and see each other within \(Self.startLimit); "
                + "their logs: \(layout.root)/node-<i>.log")
    }

    /// Waits until the proxy answers an HTTP request (any status: it serves).
    private func waitUntilAnswers(port: Int) throws {
        let deadline = ContinuousClock.now + Self.startLimit
        while ContinuousClock.now < deadline {
            if let status = HTTPProbe.status(port: port, path: "/") {
                Output.line("the proxy answers (GET / without a token: HTTP \(status))")
                return
            }
            if let exit = TestnetProcesses.readInteger(layout.run("proxy.exit")) {
                showLogTail(TestnetLayout.proxy)
                throw CLIError("the proxy exited with status \(exit); its log: \(layout.log(TestnetLayout.proxy))")
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw CLIError(
            "the proxy did not answer HTTP within \(Self.startLimit); its log: \(layout.log(TestnetLayout.proxy))")
    }

    private func summary(proxyPort: Int, upstreamPort: Int, nodeAddresses: [NodeAddress], token: String) -> String {
        let url = "http://127.0.0.1:\(proxyPort)"
        let groupKey = Self.groupKey(layout.group) ?? "(see \(layout.group))"
        let quorumctl = CommandLine.arguments.first ?? "quorumctl"
        func call(_ maxTokens: Int) -> String {
            let body =
                #"{"model":"\#(DemoBundle.model)","max_tokens":\#(maxTokens),"#
                + #""messages":[{"role":"user","content":"Hello from the testnet"}]}"#
            return "curl -sS -i \(url)/openai/v1/chat/completions -H 'Authorization: Bearer \(token)' "
                + "-H 'Content-Type: application/json' -d '\(body)'"
        }
        return """

            ==> the testnet is up
            proxy:      \(url)   (mount /openai, log \(layout.log(TestnetLayout.proxy)))
            token:      \(token)   (\(layout.token), 0600)
            group key:  \(groupKey)   (\(layout.group))
            nodes:      \(threshold)-of-\(nodes) on \(nodeAddresses.map(\.description).joined(separator: ",")) (logs \(layout.root)/node-<i>.log)
            upstream:   http://127.0.0.1:\(upstreamPort), the demo upstream; its key is sealed to the quorum as secret '\(DemoBundle.secret)'

            An allowed call (max_tokens 50): 200 from the demo upstream, the quorum's receipt in Latch-Receipt
              \(call(50))

            A call the token cap denies (max_tokens 4000 > \(DemoBundle.tokenCap)): 403 with each node's reason
              \(call(4000))

            Check a receipt:  \(quorumctl) receipt verify RECEIPT --group \(layout.group)
            Node status:      \(quorumctl) status --cluster \(layout.clusterFile) --certs-dir \(layout.certs)
            Stop it:          \(quorumctl) testnet down --dir \(layout.root)   (keeps \(layout.root) for inspection)
            """
    }

    /// The `group_public_key` of a group file, or nil.
    static func groupKey(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return object["group_public_key"] as? String
    }
}

/// The testnet's demo policy: one latch, `demo`, with one mount `/openai` on the demo upstream,
/// the secret `openai` injected as a bearer token, and filters that make the demo's second call
/// fail: a token cap, a rate limit and a small daily budget.
enum DemoBundle {
    static let latchID = "demo"
    static let secret = "openai"
    static let model = "demo-small"
    static let tokenCap = 256

    /// The bundle, version 1; without the latch it is what `up` writes before `latch create`
    /// adds the latch with a fresh token.
    static func text(upstream: String, withLatch: Bool) -> String {
        var text = """
            # The local testnet's demo bundle (quorumctl testnet up). The latch 'demo' reaches the demo
            # upstream through the mount /openai; the proxy injects the sealed secret 'openai' as a bearer
            # token after a quorum allow.
            format: quorum-latch/bundle/v1
            version: 1

            secrets:
              - name: \(secret)
                inject: bearer

            fields:
              token_cap: [$.max_tokens, $.max_completion_tokens, $.max_output_tokens]

            prices:
              \(model): {input: 1.00, output: 2.00}

            """
        guard withLatch else { return text + "latches: []\n" }
        text += """
            latches:
              - id: \(latchID)
                token_sha256: \(String(repeating: "0", count: 64))
                labels: {purpose: testnet}
                mounts:
                  - path: /openai
                    upstream: \(upstream)
                    secret: \(secret)
                    filters:
                      - method: [POST]
                      - endpoint:
                          allow: [/v1/chat/completions]
                      - id: token-cap
                        payload:
                          - {field: token_cap, op: le, value: \(tokenCap), required: true}
                      - id: per-minute
                        rate_limit: {requests: 60, window: 1m, key: latch}
                      - id: daily-budget
                        budget:
                          day: 0.50
                          cost: {llm: {model: $.model, token_field: token_cap}}

            """
        return text
    }

    /// The demo latch's labels, filters and mounts, decoded and checked like any bundle (its
    /// token digest is a placeholder the new token replaces).
    static func latchTemplate(upstream: String) throws -> Latch {
        let name = "the testnet's demo latch"
        let bundle: PolicyBundle
        do {
            bundle = try BundleDocument.decode(Array(text(upstream: upstream, withLatch: true).utf8), fileName: name)
        } catch {
            throw CLIError("\(name): \(error.problems.map(\.description).joined(separator: "; "))")
        }
        guard let latch = bundle.latches.first(where: { $0.id == latchID }) else {
            throw CLIError("\(name): has no latch '\(latchID)'")
        }
        return latch
    }
}

/// The proxy's configuration file (docs/operations.md, "The proxy"), paths relative to it.
enum ProxyFile {
    static func text(port: Int, operatorKey: String) -> String {
        """
        # quorum-proxy configuration of the local testnet (quorumctl testnet up).
        listen = "127.0.0.1:\(port)"
        data_dir = "proxy-data"

        [cluster]
        nodes = "cluster.toml"
        certificate = "certs/proxy.pem"
        private_key = "certs/proxy.key"
        cluster_ca = "certs/ca.pem"
        group = "group.json"
        sealing_group = "sealing-group.json"
        decision_timeout_ms = 2000

        [bundle]
        trusted_signers = ["\(operatorKey)"]

        """
    }
}

/// Free loopback TCP ports: each bound to port 0 at the same time (so they differ), read back
/// and released. Another process could take one before the testnet binds it; the process that
/// cannot listen then fails `up` with its log.
enum FreePorts {
    static func take(_ count: Int) throws -> [Int] {
        var sockets: [Int32] = []
        defer { for fd in sockets { close(fd) } }
        var ports: [Int] = []
        for _ in 0..<count {
            #if canImport(Glibc)
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            #else
                let fd = socket(AF_INET, SOCK_STREAM, 0)
            #endif
            guard fd >= 0 else {
                throw CLIError("cannot open a socket to find a free port: \(String(cString: strerror(errno)))")
            }
            sockets.append(fd)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
            }
            let named = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            guard bound == 0, named == 0 else {
                throw CLIError("cannot find a free loopback port: \(String(cString: strerror(errno)))")
            }
            ports.append(Int(UInt16(bigEndian: address.sin_port)))
        }
        return ports
    }
}

/// Whether a loopback HTTP server answers: one request, and the status code of the answer's
/// status line. Only for the readiness check; calls go through curl or a real client.
enum HTTPProbe {
    static func status(port: Int, path: String) -> Int? {
        #if canImport(Glibc)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { return nil }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else { return nil }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 512)
        while received.count < 512, !received.contains(0x0A) {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            received += buffer[0..<n]
        }
        // "HTTP/1.1 200 OK": the three digits after the first space.
        let line = String(decoding: received.prefix { $0 != 0x0D && $0 != 0x0A }, as: UTF8.self)
        let parts = line.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let code = Int(parts[1]), (100...599).contains(code) else {
            return nil
        }
        return code
    }
}
