import Foundation
import QuorumCrypto
import QuorumIdentity
import QuorumLog
import QuorumNode
import QuorumPolicy
import QuorumProtocol
import X509

/// `quorumctl doctor --cluster cluster.toml`, run from an operator's machine: asks every node over
/// mutual TLS (the operator certificate) for its status and its bundle, at once, and checks what
/// the cluster needs to decide and sign: every node reachable, its certificate, its clock, its
/// group key, its bundle, its nonce commitments, its peers and its replicated log; then that the
/// nodes agree (one group, one bundle, one log).
///
/// Read-only on the nodes: a status request, a policy fetch and a log status request, none of
/// which changes anything (no nonce is drawn: the outstanding count comes from status; the log
/// status request claims no term).
public struct ClusterDoctor: Sendable {
    /// A run's inputs.
    public struct Options: Sendable {
        /// The cluster file's path, for messages and fixes.
        public var clusterPath: String
        /// The nodes to ask.
        public var cluster: ClusterFile
        /// The published `group.json`'s path, when given.
        public var groupPath: String?
        /// The published signing group, when given: every node must hold its key.
        public var group: PublicKeyPackage<Ed25519Suite>?
        /// Operator keys a bundle must be signed by; empty checks each bundle under the key it
        /// names (integrity only), and says so.
        public var trustedSigners: [[UInt8]] = []
        /// The wait for each node (connect, handshake, each answer).
        public var timeout: Duration = .seconds(5)
        /// How soon a certificate's expiry is warned about.
        public var expiryWarning: TimeInterval = 30 * 86400
        /// Clock skew above this is warned about (the docs ask for NTP within a second).
        public var skewWarning: Int64 = 1000
        /// Clock skew above this fails: a node refuses a proxy's request time further off than
        /// its `policy.max_clock_skew_ms`, 5000 by default.
        public var skewFailure: Int64 = 5000
        /// The operator's arguments for fixes (`--cluster cluster.toml --certs-dir certs`).
        public var operatorArguments: String

        /// Options for `cluster`, read from `clusterPath`.
        public init(clusterPath: String, cluster: ClusterFile, operatorArguments: String) {
            self.clusterPath = clusterPath
            self.cluster = cluster
            self.operatorArguments = operatorArguments
        }
    }

    let options: Options
    let client: NodeClient

    /// A doctor asking with `client` (an operator certificate).
    public init(_ options: Options, client: NodeClient) {
        self.options = options
        self.client = client
    }

    /// What one node answered, or why it did not.
    struct Probe: Sendable {
        let node: ClusterFile.Node
        var failure: TransportError?
        /// Connect and TLS handshake, milliseconds.
        var handshakeMilliseconds: Double = 0
        /// The status request's round trip, milliseconds.
        var statusMilliseconds: Double = 0
        var certificate: Certificate?
        var status: StatusResponse?
        /// This host's clock at the status request's midpoint, ms since 1970.
        var midpoint: Int64 = 0
        var bundle: Result<[UInt8], TransportError>?
        var log: Result<LogStatusResponse, TransportError>?
    }

    /// Asks every node and returns the findings.
    public func run() async -> DoctorReport {
        var report = DoctorReport(mode: "cluster", subject: options.clusterPath)
        let probes = await withTaskGroup(of: (Int, Probe).self) { group in
            for (index, node) in options.cluster.nodes.enumerated() {
                group.addTask { (index, await self.probe(node)) }
            }
            var all: [(Int, Probe)] = []
            for await probe in group { all.append(probe) }
            return all.sorted { $0.0 < $1.0 }.map(\.1)
        }
        let reachable = Set(probes.filter { $0.status != nil }.map(\.node.id))
        var bundles: [UInt16: PolicyBundle] = [:]
        for probe in probes {
            guard let status = probe.status, probe.failure == nil else {
                report.add(unreachable(probe))
                continue
            }
            let id = probe.node.id
            report.add(
                .ok(
                    "reach", node: id,
                    "\(probe.node.address): mutual TLS in \(Self.milliseconds(probe.handshakeMilliseconds)) ms, "
                        + "status in \(Self.milliseconds(probe.statusMilliseconds)) ms, boot epoch "
                        + String(status.bootEpoch, radix: 16)))
            report.add(certificate(probe))
            report.add(clock(probe, status))
            report.add(groupKey(id, status))
            let (bundleFinding, bundle) = self.bundle(id, probe.bundle)
            report.add(bundleFinding)
            if let bundle { bundles[id] = bundle }
            report.add(nonces(id, status))
            report.add(peers(id, status, reachable: reachable))
            report.add(log(id, probe.log))
        }
        report.add(contentsOf: agreement(probes, bundles: bundles))
        let logs = probes.compactMap { probe -> (UInt16, LogStatusResponse)? in
            guard probe.status != nil, case .success(let log)? = probe.log else { return nil }
            return (probe.node.id, log)
        }
        if let finding = logAgreement(logs) { report.add(finding) }
        return report
    }

    /// Connects to `node`, times the handshake and a status request, and fetches its bundle on
    /// the same connection. Typed `do`/`catch` lives here, not in the task-group closure (a
    /// Swift 6.3 release-build crash, see `NodeClient.answer`).
    func probe(_ node: ClusterFile.Node) async -> Probe {
        var probe = Probe(node: node)
        let clock = ContinuousClock()
        do throws(TransportError) {
            let expected: PeerIdentity
            do { expected = try PeerIdentity.node(Int(node.id)) } catch {
                throw TransportError(.configuration, peer: "node \(node.id)", error.reason)
            }
            let started = clock.now
            let connection = try await client.connect(
                host: node.address.host, port: node.address.port, expecting: expected)
            probe.handshakeMilliseconds = Self.milliseconds(clock.now - started)
            probe.certificate = await connection.peerCertificate()
            do throws(TransportError) {
                let sent = Self.wallClock()
                let asked = clock.now
                let frame = try await connection.request(StatusRequest(), deadline: options.timeout)
                probe.statusMilliseconds = Self.milliseconds(clock.now - asked)
                let received = Self.wallClock()
                probe.midpoint = sent + (received - sent) / 2
                do { probe.status = try frame.decode(StatusResponse.self) } catch {
                    throw TransportError(
                        .protocolViolation, peer: connection.target, "a status answer that does not decode (\(error))")
                }
                probe.bundle = await fetchBundle(connection)
                probe.log = await fetchLog(connection)
            } catch {
                await connection.close()
                throw error
            }
            await connection.close()
            if let status = probe.status, status.nodeID != node.id {
                throw TransportError(
                    .identityMismatch, peer: "node \(node.id) at \(node.address)",
                    "answered as node \(status.nodeID)")
            }
        } catch {
            probe.failure = error
            probe.status = nil
        }
        return probe
    }

    /// The signed bundle a node runs (empty for none), asked on an open connection.
    private func fetchBundle(_ connection: NodeConnection) async -> Result<[UInt8], TransportError> {
        let answer: Frame
        do { answer = try await connection.request(PolicyFetchRequest(), deadline: options.timeout) } catch {
            return .failure(error)
        }
        do { return .success(try answer.decode(PolicyFetchResponse.self).signedBundle) } catch {
            return .failure(
                TransportError(
                    .protocolViolation, peer: connection.target, "a bundle answer that does not decode (\(error))"))
        }
    }

    /// The node's replicated log state, asked on an open connection.
    private func fetchLog(_ connection: NodeConnection) async -> Result<LogStatusResponse, TransportError> {
        let answer: Frame
        do { answer = try await connection.request(LogStatusRequest(), deadline: options.timeout) } catch {
            return .failure(error)
        }
        do { return .success(try answer.decode(LogStatusResponse.self)) } catch {
            return .failure(
                TransportError(
                    .protocolViolation, peer: connection.target, "a log status answer that does not decode (\(error))"))
        }
    }

    private func unreachable(_ probe: Probe) -> DoctorFinding {
        let node = probe.node
        let error = probe.failure ?? TransportError(.connectFailed, peer: "node \(node.id)", "no answer")
        let fix: String
        switch error.code {
        case .connectFailed where error.reason.contains("cannot connect"):
            fix =
                "start quorumd on node \(node.id)'s host (quorumd --config node-\(node.id).toml), and check that it "
                + "listens on \(node.address) as \(options.clusterPath) says and no firewall blocks the port"
        case .untrustedPeer where error.reason.contains("expired"):
            fix =
                "node \(node.id)'s certificate has expired: quorumctl certs issue --ca-dir <CA dir> --role node --id "
                + "\(node.id) --force, copy node-\(node.id).pem and .key to the node and restart it"
        case .untrustedPeer, .connectFailed:
            fix =
                "node \(node.id) presents a certificate this CA does not accept: run quorumctl doctor --config on its "
                + "host, and give it a certificate from this cluster's CA (quorumctl certs issue --role node --id "
                + "\(node.id))"
        case .identityMismatch:
            fix =
                "\(node.address) answers as another node: fix node \(node.id)'s address in \(options.clusterPath), or "
                + "give the process there node \(node.id)'s certificate"
        case .connectionClosed:
            fix =
                "node \(node.id) closed the connection after the handshake: it refuses this operator certificate "
                + "(another CA, or expired: quorumctl certs show on it), or it is shutting down"
        case .deadlineExceeded:
            fix =
                "node \(node.id) accepted the connection but did not answer in time: check its log and load, or "
                + "raise --timeout if it is only slow"
        case .refusedByPeer where error.response?.code == .unauthorized:
            fix = "use an operator certificate (--certs-dir with operator.pem, or --cert/--key)"
        default:
            fix = "check node \(node.id)'s log (it names the reason), then run quorumctl doctor --config on its host"
        }
        return .fail(
            "reach", node: node.id, "\(node.address): unreachable: \(error.code.rawValue): \(error.reason)", fix: fix)
    }

    private func certificate(_ probe: Probe) -> DoctorFinding {
        let id = probe.node.id
        guard let certificate = probe.certificate else {
            return .warn(
                "certificate", node: id,
                "node \(id) proved its identity in the handshake, but its certificate could "
                    + "not be read back for its expiry",
                fix: "run quorumctl doctor --config on node \(id)'s host to see its certificate")
        }
        let now = Date()
        let days = CertificateChecks.days(from: now, to: certificate.notValidAfter)
        let summary =
            "node \(id) (role node), expires \(CertificateChecks.day(certificate.notValidAfter)) (\(days) days)"
        if certificate.notValidAfter.timeIntervalSince(now) < options.expiryWarning {
            return .warn(
                "certificate", node: id, "\(summary): within \(Int(options.expiryWarning / 86400)) days",
                fix: "renew it: quorumctl certs issue --ca-dir <CA dir> --role node --id \(id) --force (with its "
                    + "--host names), copy node-\(id).pem and .key to the node and restart it")
        }
        return .ok("certificate", node: id, summary)
    }

    private func clock(_ probe: Probe, _ status: StatusResponse) -> DoctorFinding {
        let id = probe.node.id
        let skew = status.reportedAt - probe.midpoint
        let uncertainty = Int64((probe.statusMilliseconds / 2).rounded(.up))
        let text = "\(skew >= 0 ? "+" : "")\(skew) ms against this host (±\(uncertainty) ms)"
        let sure = abs(skew) - uncertainty
        let fix =
            "keep every node's clock (and the proxy's) within a second by NTP: timedatectl set-ntp true; check "
            + "with chronyc tracking"
        if sure > options.skewFailure {
            return .fail(
                "clock", node: id,
                "node \(id)'s clock is \(text): beyond \(options.skewFailure) ms it refuses the proxy's requests "
                    + "(policy.max_clock_skew_ms)", fix: fix)
        }
        if sure > options.skewWarning {
            return .warn("clock", node: id, "node \(id)'s clock is \(text)", fix: fix)
        }
        return .ok("clock", node: id, text)
    }

    private func groupKey(_ id: UInt16, _ status: StatusResponse) -> DoctorFinding {
        let ceremony =
            "run the key ceremony (quorumctl keygen --cluster \(options.operatorArguments) --threshold K), or "
            + "repair node \(id): quorumctl keygen repair --node \(id) --group-dir DIR \(options.operatorArguments)"
        guard let key = status.groupKeyHex else {
            return .fail("group_key", node: id, "node \(id) holds no group keys: it cannot sign", fix: ceremony)
        }
        guard let group = options.group, let path = options.groupPath else {
            return .ok("group_key", node: id, "\(key) (pass --group group.json to compare with the published group)")
        }
        let published = GroupFiles.keyHex(group)
        guard key == published else {
            return .fail(
                "group_key", node: id, "node \(id) holds group key \(key), but \(path) has \(published)",
                fix:
                    "if \(path) is this cluster's, node \(id) holds another group's keys: \(ceremony); otherwise pass "
                    + "the cluster's group.json")
        }
        return .ok("group_key", node: id, "\(key), as in \(path)")
    }

    /// Opens a node's signed bundle: under the trusted signers, or (none given) under the key it
    /// names, which proves it intact but not who signed it.
    private func bundle(_ id: UInt16, _ fetched: Result<[UInt8], TransportError>?) -> (DoctorFinding, PolicyBundle?) {
        let push = "quorumctl policy push SIGNED-BUNDLE \(options.operatorArguments)"
        switch fetched {
        case nil:
            return (.warn("bundle", node: id, "not asked", fix: "re-run doctor"), nil)
        case .failure(let error):
            return (
                .fail(
                    "bundle", node: id, "node \(id) did not give its bundle: \(error.code.rawValue): \(error.reason)",
                    fix: "check node \(id)'s log; the policy fetch needs an operator certificate"), nil
            )
        case .success(let bytes) where bytes.isEmpty:
            return (
                .warn(
                    "bundle", node: id, "node \(id) runs no policy bundle: it answers every decision unavailable",
                    fix: "sign a bundle (quorumctl policy sign) and push it: \(push)"), nil
            )
        case .success(let bytes):
            var trusted = options.trustedSigners
            let checkedAgainst: String
            if trusted.isEmpty {
                guard let stated = SignedBundle.statedSigner(bytes) else {
                    return (
                        .fail(
                            "bundle", node: id, "node \(id)'s bundle names no valid signer",
                            fix: "push a bundle signed with quorumctl policy sign: \(push)"), nil
                    )
                }
                trusted = [stated]
                checkedAgainst = "the key it names, \(Hex.encode(stated)) (pass --signer to require a trusted key)"
            } else {
                checkedAgainst = "a trusted operator key"
            }
            do {
                let bundle = try SignedBundle.open(
                    bytes, fileName: "node \(id)'s bundle", trustedSigners: trusted, newerThan: nil)
                return (
                    .ok(
                        "bundle", node: id,
                        "version \(bundle.version) \(bundle.digest), signature valid under \(checkedAgainst)"), bundle
                )
            } catch {
                return (
                    .fail(
                        "bundle", node: id, error.description,
                        fix: "push a bundle signed by a trusted operator key (quorumctl policy sign): \(push)"), nil
                )
            }
        }
    }

    private func nonces(_ id: UInt16, _ status: StatusResponse) -> DoctorFinding {
        guard let count = status.outstandingNonces else {
            return .warn(
                "nonces", node: id, "node \(id) does not report its nonce pool (a quorumd built before the field)",
                fix: "upgrade quorumd on node \(id)")
        }
        guard status.hasKey else {
            return .ok("nonces", node: id, "\(count) commitments outstanding (no keys yet, so nothing to sign)")
        }
        guard count > 0 else {
            return .warn(
                "nonces", node: id,
                "node \(id)'s nonce pool is empty: no proxy holds commitments of its boot epoch, so it signs in no "
                    + "optimistic round",
                fix: "start the proxy (it fetches commitments at start and after each use), or check that it reaches "
                    + "node \(id)")
        }
        return .ok("nonces", node: id, "\(count) nonce commitments outstanding")
    }

    private func peers(_ id: UInt16, _ status: StatusResponse, reachable: Set<UInt16>) -> DoctorFinding {
        let down = status.peers.filter { !$0.isUp }
        guard !down.isEmpty else {
            return .ok(
                "peers", node: id,
                "hears every peer (\(status.peers.map { String($0.nodeID) }.joined(separator: ", ")))"
            )
        }
        let now = Self.wallClock()
        let described = down.map { peer in
            "node \(peer.nodeID) ("
                + (peer.lastHeardAt.map { "last heard \(max(0, now - $0) / 1000) s ago" } ?? "never heard")
                + ")"
        }
        let answering = down.filter { reachable.contains($0.nodeID) }.map { String($0.nodeID) }
        let fix =
            answering.isEmpty
            ? "start \(Self.nodes(down.map(\.nodeID))) (see the reach lines)"
            : "nodes \(answering.joined(separator: ", ")) answer this host but not node \(id): check the network "
                + "between them (firewalls, and their addresses in node \(id)'s [[peers]])"
        return .warn("peers", node: id, "node \(id) does not hear \(described.joined(separator: ", "))", fix: fix)
    }

    /// Entries waiting this long with no new checkpoint make the log look stuck.
    static let stuckAfterMilliseconds: Int64 = 5 * 60 * 1000
    /// A log trailing the longest by more entries than one full batch is behind, not just a batch late.
    static let trailingEntries: UInt64 = 4096

    /// One node's log: stopped signing (FAIL), catching up, stuck, or fine.
    private func log(_ id: UInt16, _ fetched: Result<LogStatusResponse, TransportError>?) -> DoctorFinding {
        let status: LogStatusResponse
        switch fetched {
        case nil: return .warn("log", node: id, "node \(id) was not asked for its log", fix: "re-run quorumctl doctor")
        case .failure(let error):
            return .warn(
                "log", node: id, "node \(id) does not report its replicated log: \(error.reason)",
                fix: "upgrade quorumd on node \(id) (a build before the replicated log), or see its log for the reason")
        case .success(let found): status = found
        }
        if let stopped = status.stopped {
            return .fail(
                "log", node: id, "node \(id) stopped signing checkpoints: \(stopped)",
                fix: "quorumctl log verify --db DATA_DIR/log on node \(id) prints every problem; then stop node \(id), "
                    + "move its log/ directory aside and start it: it rebuilds the log from its peers "
                    + "(docs/operations.md, \"stopped signing\")")
        }
        let known = status.checkpoint.flatMap { try? SignedNote.parse($0) }.flatMap { try? Checkpoint.parse($0.text) }
        let now = Self.wallClock()
        let age = status.checkpointAt > 0 ? max(0, now - status.checkpointAt) / 1000 : nil
        var text =
            "\(status.logSize) entries"
            + (age.map { ", newest checkpoint stored \($0) s ago" } ?? ", no quorum checkpoint yet")
            + ", \(status.pending) pending, sequencer node \(status.sequencer)"
        if let known, known.size > status.logSize {
            text += "; catching up to the checkpoint of size \(known.size)"
        }
        if status.pending > 0, status.checkpointAt > 0, now - status.checkpointAt > Self.stuckAfterMilliseconds {
            return .warn(
                "log", node: id, text + ": entries wait and no checkpoint came for over 5 minutes",
                fix: "a checkpoint needs k nodes that hear each other: see the peers and quorum lines; the sequencer's "
                    + "own log (node \(status.sequencer)) says why a batch went unsigned")
        }
        return .ok("log", node: id, text)
    }

    /// Cluster-wide: every two nodes' logs of one size have one root (else a fork, FAIL), and no
    /// log trails the longest by more than a batch (warn). Nil when no node reported its log.
    private func logAgreement(_ logs: [(UInt16, LogStatusResponse)]) -> DoctorFinding? {
        guard let longest = logs.max(by: { $0.1.logSize < $1.1.logSize }) else { return nil }
        var bySize: [UInt64: [[UInt8]: [UInt16]]] = [:]
        for (id, log) in logs { bySize[log.logSize, default: [:]][log.logRoot, default: []].append(id) }
        if let (size, roots) = bySize.sorted(by: { $0.key < $1.key }).first(where: { $0.value.count > 1 }) {
            let described = roots.sorted { $0.value.min()! < $1.value.min()! }.map {
                "root \(Hex.encode(Array($0.key.prefix(8))))… on \(Self.nodes($0.value))"
            }
            return .fail(
                "log_agreement",
                "the nodes hold different logs of size \(size): \(described.joined(separator: "; ")): a fork",
                fix: "keep every node's data as it is; fetch the signed notes with quorumctl audit checkpoint --node "
                    + "(each node's audit URL) --group group.json, which prints both as evidence; a node whose log is "
                    + "not the quorum's stops signing by itself (docs/auditing.md)")
        }
        let trailing = logs.filter { longest.1.logSize - $0.1.logSize > Self.trailingEntries }
        if !trailing.isEmpty {
            let described = trailing.map { "node \($0.0) by \(longest.1.logSize - $0.1.logSize)" }
            return .warn(
                "log_agreement",
                "logs trail node \(longest.0)'s (\(longest.1.logSize) entries): \(described.joined(separator: ", "))",
                fix: "a node behind catches up from its peers by itself; if it does not move, see its peers line and "
                    + "its own log (catch-up)")
        }
        let sizes = logs.map { "\($0.1.logSize)" }.joined(separator: ", ")
        return .ok(
            "log_agreement",
            "the \(logs.count) answering nodes' logs (sizes \(sizes)): equal sizes have equal roots, none trails by "
                + "more than a batch")
    }

    /// Cluster-wide: the group key every node holds, the quorum that can sign, and the bundle
    /// every node runs (naming the odd ones out).
    private func agreement(_ probes: [Probe], bundles: [UInt16: PolicyBundle]) -> [DoctorFinding] {
        var findings: [DoctorFinding] = []
        let answered = probes.compactMap { probe in probe.status.map { (probe.node.id, $0) } }
        let total = options.cluster.nodes.count

        // The group every node holds, and whether a threshold of nodes can sign with it.
        var holders: [String: [UInt16]] = [:]
        for (id, status) in answered { if let key = status.groupKeyHex { holders[key, default: []].append(id) } }
        let expected = options.group.map(GroupFiles.keyHex) ?? holders.max { $0.value.count < $1.value.count }?.key
        if options.group == nil, holders.count > 1 {
            findings.append(
                .fail(
                    "group_key", "the nodes hold different group keys: " + Self.groups(holders),
                    fix:
                        "find the cluster's group.json and re-run with --group to see which nodes are wrong; then repair "
                        + "them (quorumctl keygen repair) or run a new ceremony"))
        }
        if let expected {
            let signers = holders[expected] ?? []
            let threshold = options.group?.minSigners
            let thresholdText = threshold.map { "threshold \($0)" } ?? "threshold unknown (pass --group)"
            let text =
                "\(signers.count) of \(total) nodes answer with group key \(expected.prefix(16))…, \(thresholdText)"
            if let threshold, signers.count < threshold {
                findings.append(
                    .fail(
                        "quorum", text + ": the cluster cannot sign",
                        fix: "bring up or repair nodes until \(threshold) answer (see the lines above)"))
            } else if let threshold, signers.count == threshold, total > threshold {
                findings.append(
                    .warn(
                        "quorum", text + ": one more failure stops signing",
                        fix: "bring the other nodes back (see the lines above)"))
            } else {
                findings.append(.ok("quorum", text))
            }
        }

        // The bundle: one version and digest everywhere.
        let running = answered.map(\.0)
        guard !bundles.isEmpty else {
            if !running.isEmpty {
                findings.append(
                    .warn(
                        "bundle", "no node runs a valid signed bundle: nothing is decided",
                        fix: "quorumctl policy push SIGNED-BUNDLE \(options.operatorArguments)"))
            }
            return findings
        }
        var byBundle: [String: (version: UInt64, nodes: [UInt16])] = [:]
        for (id, bundle) in bundles.sorted(by: { $0.key < $1.key }) {
            byBundle["\(bundle.version) \(bundle.digest)", default: (bundle.version, [])].nodes.append(id)
        }
        let without = running.filter { bundles[$0] == nil }
        if byBundle.count == 1, without.isEmpty, let only = byBundle.first {
            findings.append(
                .ok(
                    "bundle", "every answering node (\(only.value.nodes.count) of \(total)) runs version \(only.key)"))
            return findings
        }
        let newest = byBundle.max {
            ($0.value.version, $0.value.nodes.count) < ($1.value.version, $1.value.nodes.count)
        }!
        let majority = byBundle.max { $0.value.nodes.count < $1.value.nodes.count }!
        let odd =
            byBundle.filter { $0.key != majority.key }.flatMap(\.value.nodes).sorted()
            + without
        let groups = byBundle.sorted { $0.value.version < $1.value.version }.map {
            "version \($0.key) on \(Self.nodes($0.value.nodes))"
        }
        let missing = without.isEmpty ? "" : "; no valid bundle on \(Self.nodes(without))"
        findings.append(
            .fail(
                "bundle",
                "the nodes run different bundles: \(groups.joined(separator: "; "))\(missing); the odd one"
                    + (odd.count == 1 ? " out is node \(odd[0])" : "s out are \(Self.nodes(odd))"),
                fix:
                    "push the bundle every node should run, version \(newest.value.version) or newer (a node never goes "
                    + "back to an older version): quorumctl policy push SIGNED-BUNDLE \(options.operatorArguments)"))
        return findings
    }

    static func groups(_ holders: [String: [UInt16]]) -> String {
        holders.sorted { $0.key < $1.key }.map { "\($0.key.prefix(16))… on \(nodes($0.value))" }.joined(separator: "; ")
    }

    static func nodes(_ ids: [UInt16]) -> String {
        (ids.count == 1 ? "node " : "nodes ") + ids.sorted().map(String.init).joined(separator: ", ")
    }

    static func milliseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }

    static func milliseconds(_ value: Double) -> String {
        value < 10 ? String(format: "%.1f", value) : String(Int(value.rounded()))
    }

    static func wallClock() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
}
