import Foundation
import Logging
import QuorumCrypto
import QuorumIdentity
import QuorumNode
import QuorumProtocol
import QuorumTestKit
import Synchronization
import Testing

/// n nodes' ceremony services in one process, each with its own data directory (state store, key
/// store, staged keys), reached through a relay that hands frames straight to them: the whole
/// ceremony (coordinator, runner, sessions, staging, commit) without sockets. A `tamper` hook
/// lets a test play the malicious operator.
final class InProcessCeremony: CeremonyRelay, @unchecked Sendable {
    // @unchecked Sendable: `down` and `tamper` are guarded by the Mutex; everything else is let.
    let size: Int
    let root: URL
    let identities: [UInt16: Ed25519KeyPair]
    let keyStores: [UInt16: NodeKeyStore]
    /// The state stores; the services hold them weakly, as in a node, where the runtime owns them.
    let stores: [UInt16: NodeStore]
    let services: [UInt16: CeremonyService]
    private let state = Mutex<(down: Set<UInt16>, tamper: (@Sendable (any WireMessage, UInt16) -> any WireMessage)?)>(
        ([], nil))

    init(nodes size: Int, expiry: Duration = .seconds(120)) throws {
        self.size = size
        root = try TestKit.temporaryDirectory("ceremony")
        var identities: [UInt16: Ed25519KeyPair] = [:]
        var keyStores: [UInt16: NodeKeyStore] = [:]
        var stores: [UInt16: NodeStore] = [:]
        var services: [UInt16: CeremonyService] = [:]
        for id in (1...size).map(UInt16.init) { identities[id] = Ed25519KeyPair() }
        let known = identities
        var logger = Logger(label: "ceremony-test")
        logger.logLevel = .critical
        for id in (1...size).map(UInt16.init) {
            let data = root.appendingPathComponent("data-\(id)").path
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            let store = try NodeStore(dataDirectory: data)
            stores[id] = store
            let keys = try NodeKeyStore(dataDirectory: data)
            keyStores[id] = keys
            var peers: [UInt16: [UInt8]?] = [:]
            for (peer, key) in known where peer != id { peers[peer] = key.publicKey }
            let heard = peers
            services[id] = CeremonyService(
                nodeID: id, identity: identities[id]!, keys: keys, store: store, dataDirectory: data,
                peerIdentityKeys: { heard }, expiry: expiry, logger: logger)
        }
        self.identities = identities
        self.keyStores = keyStores
        self.stores = stores
        self.services = services
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    var participants: [CeremonyParticipant] {
        (1...size).map { try! CeremonyParticipant(nodeID: UInt16($0), identityKey: identities[UInt16($0)]!.publicKey) }
    }

    func plan(
        _ kind: CeremonyKind = .dkg, threshold: Int? = 3, replace: Bool = false, allowUnsafe: Bool = false
    )
        -> CeremonyPlan
    {
        CeremonyPlan(
            kind: kind, threshold: kind == .dkg ? threshold : nil, participants: participants,
            replaceExisting: replace, allowUnsafe: allowUnsafe)
    }

    func run(_ plan: CeremonyPlan) async throws(CeremonyFailure) -> CeremonyOutcome {
        try await CeremonyRunner(relay: self, timeout: .seconds(10)).run(plan)
    }

    func setDown(_ node: UInt16) { state.withLock { _ = $0.down.insert(node) } }
    func setUp(_ node: UInt16) { state.withLock { _ = $0.down.remove(node) } }
    func setTamper(_ tamper: (@Sendable (any WireMessage, UInt16) -> any WireMessage)?) {
        state.withLock { $0.tamper = tamper }
    }

    func request(_ message: any WireMessage, to node: UInt16, deadline: Duration) async throws(TransportError) -> Frame
    {
        let tamper = state.withLock { $0.tamper }
        let sent = tamper?(message, node) ?? message
        guard !state.withLock({ $0.down.contains(node) }) else {
            throw TransportError(.connectFailed, peer: describe(node), "connection refused")
        }
        func frame(_ message: some WireMessage) throws -> Frame { try Frame.request(message, correlationID: 1) }
        do {
            let answer = try await services[node]!.handle(try PeerIdentity.operatorNamed("test"), try frame(sent))!
            if answer.kind == .errorResponse {
                throw TransportError(
                    .refusedByPeer, peer: describe(node), "refused", response: try answer.errorResponse())
            }
            return answer
        } catch let error as TransportError {
            throw error
        } catch {
            throw TransportError(.protocolViolation, peer: describe(node), "\(error)")
        }
    }

    func describe(_ node: UInt16) -> String { "node \(node) (in process)" }

    /// Staged key directories left in any data directory.
    var stagedDirectories: [String] {
        (1...size).flatMap { id in
            ((try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("data-\(id)").path))
                ?? []).filter { $0.hasPrefix("keys.pending-") }
        }
    }
}

extension ClosedRange where Bound == Int {
    func asyncMap<T>(_ body: (Int) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for value in self { results.append(try await body(value)) }
        return results
    }
}

@Suite("The key ceremony, in process", .serialized, .timeLimit(.minutes(2)))
struct CeremonyTests {
    @Test("4 nodes agree on one signing and one sealing group; 3 shares sign (plain Ed25519) and open a sealed box")
    func fourNodes() async throws {
        let cluster = try InProcessCeremony(nodes: 4)
        let outcome = try await cluster.run(cluster.plan())
        let installed = try (1...4).map { try #require(cluster.keyStores[UInt16($0)]!.current) }
        for keys in installed {
            #expect(keys.groupKeyBytes == outcome.signingGroupKey)
            #expect(keys.signingGroup == installed[0].signingGroup)
            #expect(keys.sealingGroup == installed[0].sealingGroup)
        }
        #expect(outcome.signingGroupKey != outcome.sealingGroupKey)
        #expect(outcome.certificate.count == 4)
        #expect(cluster.stagedDirectories.isEmpty)

        let message = Array("allow request 42".utf8)
        let signature = try SigningHelpers.sign(
            message, keys: [installed[0].signing, installed[2].signing, installed[3].signing],
            group: installed[0].signingGroup)
        #expect(Ed25519KeyPair.verify(signature: signature.bytes, message: message, publicKey: outcome.signingGroupKey))

        let box = try ThresholdSealing<Ed25519Suite>.seal(
            SecretBytes(Array("sk-live".utf8)), to: installed[1].sealingGroup)
        let shares = try [1, 2, 3].map {
            try ThresholdSealing<Ed25519Suite>.decryptionShare(for: box, key: installed[$0].sealing)
        }
        let opened = try ThresholdSealing<Ed25519Suite>.open(box, shares: shares, group: installed[1].sealingGroup)
        #expect(opened.copyBytes() == Array("sk-live".utf8))
    }

    @Test("refresh keeps both group keys and changes every share; old and new shares no longer combine")
    func refresh() async throws {
        let cluster = try InProcessCeremony(nodes: 4)
        _ = try await cluster.run(cluster.plan())
        let before = try (1...4).map { try #require(cluster.keyStores[UInt16($0)]!.current) }
        let outcome = try await cluster.run(cluster.plan(.refresh))
        let after = try (1...4).map { try #require(cluster.keyStores[UInt16($0)]!.current) }
        for (old, new) in zip(before, after) {
            #expect(new.groupKeyBytes == old.groupKeyBytes)
            #expect(new.sealingGroup.verifyingKey == old.sealingGroup.verifyingKey)
            #expect(new.signing.verifyingShare != old.signing.verifyingShare)
        }
        #expect(outcome.signingGroupKey == before[0].groupKeyBytes)
        let message = Array("after refresh".utf8)
        let signature = try SigningHelpers.sign(
            message, keys: [after[0].signing, after[1].signing, after[3].signing], group: after[0].signingGroup)
        #expect(Ed25519KeyPair.verify(signature: signature.bytes, message: message, publicKey: outcome.signingGroupKey))
    }

    @Test("a participant sending different round-1 packages to different nodes is named; no node keeps anything")
    func equivocation() async throws {
        let cluster = try InProcessCeremony(nodes: 4)
        let second = Mutex<CeremonyRound1?>(nil)
        let node2 = cluster.identities[2]!
        cluster.setTamper { message, node in
            guard let request = message as? CeremonyRound2Request, node == 1 else { return message }
            // A second, validly signed round-1 message from node 2, shown to node 1 only.
            let other = second.withLock { cached in
                if let cached { return cached }
                let signing = try! DKG<Ed25519Suite>.part1(
                    identifier: try! Identifier(2), maxSigners: 4, minSigners: 3, purpose: .signing)
                let sealing = try! DKG<Ed25519Suite>.part1(
                    identifier: try! Identifier(2), maxSigners: 4, minSigners: 3, purpose: .sealing)
                let made = try! CeremonyRound1(
                    ceremonyID: request.ceremonyID, nodeID: 2, threshold: 3, signingPackage: try! signing.1.encoded(),
                    sealingPackage: try! sealing.1.encoded(), signedBy: node2)
                cached = made
                return made
            }
            return try! CeremonyRound2Request(
                ceremonyID: request.ceremonyID, round1: request.round1.map { $0.nodeID == 2 ? other : $0 })
        }
        await #expect {
            _ = try await cluster.run(cluster.plan())
        } throws: { error in
            let failure = try #require(error as? CeremonyFailure)
            #expect(failure.phase == .round2)
            #expect(failure.culprits == [2])
            #expect(failure.description.contains("participant 2 sent different round-1 packages"), "\(failure)")
            return true
        }
        for id in 1...4 { #expect(cluster.keyStores[UInt16(id)]!.current?.groupKeyBytes == nil) }
        #expect(cluster.stagedDirectories.isEmpty)
    }

    @Test("a node checks the echoes itself: given disagreeing echoes it refuses round 3 naming the participant")
    func nodesCheckEchoes() throws {
        let keys = (1...4).map { _ in Ed25519KeyPair() }
        let participants = try (1...4).map {
            try CeremonyParticipant(nodeID: UInt16($0), identityKey: keys[$0 - 1].publicKey)
        }
        let begin = try CeremonyBegin(
            ceremonyID: [UInt8](repeating: 5, count: 16), kind: .dkg, threshold: 3, participants: participants)
        var sessions: [CeremonySession] = []
        var round1: [CeremonyRound1] = []
        for id in 1...4 {
            var heard: [UInt16: [UInt8]?] = [:]
            for peer in 1...4 where peer != id { heard[UInt16(peer)] = keys[peer - 1].publicKey }
            let (session, message) = try CeremonySession.begin(
                begin, nodeID: UInt16(id), identity: keys[id - 1], peerIdentityKeys: heard, current: nil)
            sessions.append(session)
            round1.append(message)
        }
        let (_, alternative) = try CeremonySession.begin(
            begin, nodeID: 2, identity: keys[1],
            peerIdentityKeys: [1: keys[0].publicKey, 3: keys[2].publicKey, 4: keys[3].publicKey], current: nil)
        var answers: [CeremonyRound2] = []
        for index in 0..<4 {
            let view = index == 0 ? round1.map { $0.nodeID == 2 ? alternative : $0 } : round1
            answers.append(
                try sessions[index].round2(
                    try CeremonyRound2Request(ceremonyID: begin.ceremonyID, round1: view), identity: keys[index]))
        }
        let request = try CeremonyRound3Request(
            ceremonyID: begin.ceremonyID, echoes: answers.map(\.echo),
            shares: answers.flatMap(\.shares).filter { $0.recipient == 3 })
        #expect {
            _ = try sessions[2].round3(request, identity: keys[2])
        } throws: { error in
            let refusal = try #require(error as? CeremonyRefusalReason)
            #expect(refusal.culprit == 2)
            #expect(refusal.reason.contains("node 1 received"), "\(refusal)")
            return true
        }
    }

    @Test("a wrong identity key in begin is refused by every node, naming the node it was listed for")
    func wrongIdentityKey() async throws {
        let cluster = try InProcessCeremony(nodes: 4)
        var participants = cluster.participants
        participants[2] = try CeremonyParticipant(nodeID: 3, identityKey: Ed25519KeyPair().publicKey)
        let plan = CeremonyPlan(kind: .dkg, threshold: 3, participants: participants)
        await #expect {
            _ = try await cluster.run(plan)
        } throws: { error in
            let failure = try #require(error as? CeremonyFailure)
            #expect(failure.phase == .begin)
            #expect(failure.nodes == [1, 2, 3, 4])
            #expect(failure.culprits == [3])
            #expect(failure.description.contains("identity key listed for node 3"), "\(failure)")
            return true
        }
        for id in 1...4 { #expect(cluster.keyStores[UInt16(id)]!.current?.groupKeyBytes == nil) }
    }

    @Test("nodes refuse unsafe parameters unless the operator allows them, and existing keys unless told to replace")
    func parameterChecks() async throws {
        let cluster = try InProcessCeremony(nodes: 4)
        await #expect(throws: CeremonyFailure.self) { _ = try await cluster.run(cluster.plan(threshold: 2)) }
        _ = try await cluster.run(cluster.plan(threshold: 2, allowUnsafe: true))
        let first = cluster.keyStores[1]!.current?.groupKeyBytes
        await #expect {
            _ = try await cluster.run(cluster.plan())
        } throws: { error in
            (error as? CeremonyFailure)?.description.contains("already holds keys") == true
        }
        #expect(cluster.keyStores[1]!.current?.groupKeyBytes == first)
        _ = try await cluster.run(cluster.plan(replace: true))
        #expect(cluster.keyStores[1]!.current?.groupKeyBytes != first)
    }

    @Test("a node lost after round 1 fails the ceremony naming it; the others keep nothing; a re-run works")
    func lostNode() async throws {
        let cluster = try InProcessCeremony(nodes: 4)
        cluster.setTamper { message, _ in
            if message is CeremonyRound2Request { cluster.setDown(3) }
            return message
        }
        await #expect {
            _ = try await cluster.run(cluster.plan())
        } throws: { error in
            let failure = try #require(error as? CeremonyFailure)
            #expect(failure.phase == .round2)
            #expect(failure.nodes == [3])
            #expect(failure.description.contains("aborted on nodes 1, 2, 4"), "\(failure)")
            return true
        }
        for id in 1...4 { #expect(cluster.keyStores[UInt16(id)]!.current?.groupKeyBytes == nil) }
        #expect(cluster.stagedDirectories.isEmpty)
        cluster.setTamper(nil)
        cluster.setUp(3)
        let outcome = try await cluster.run(cluster.plan())
        for id in 1...4 { #expect(cluster.keyStores[UInt16(id)]!.current?.groupKeyBytes == outcome.signingGroupKey) }
        #expect(cluster.stagedDirectories.isEmpty)
    }

    @Test("a node lost at the commit: the others install and are not aborted; the commit sent again installs it")
    func lostAtCommit() async throws {
        let cluster = try InProcessCeremony(nodes: 4)
        cluster.setTamper { message, _ in
            if message is CeremonyCommit { cluster.setDown(3) }
            return message
        }
        var commit: CeremonyCommit?
        do {
            _ = try await cluster.run(cluster.plan())
            Issue.record("the ceremony should report node 3's missing acknowledgement")
        } catch {
            #expect(error.phase == .commit)
            #expect(error.committed == [1, 2, 4])
            #expect(error.nodes == [3])
            #expect(error.description.contains("keep them staged"), "\(error)")
            commit = error.commit
        }
        let group = cluster.keyStores[1]!.current?.groupKeyBytes
        #expect(group != nil)
        #expect(cluster.keyStores[3]!.current?.groupKeyBytes == nil)
        #expect(cluster.stagedDirectories.count == 1)
        cluster.setTamper(nil)
        cluster.setUp(3)
        let resent = await CeremonyRunner(relay: cluster, timeout: .seconds(5)).sendCommit(
            try #require(commit), to: [1, 2, 3, 4])
        #expect(resent.committed == [1, 2, 3, 4])
        #expect(resent.problems.isEmpty)
        #expect(cluster.keyStores[3]!.current?.groupKeyBytes == group)
        #expect(cluster.stagedDirectories.isEmpty)
    }

    @Test("a new begin replaces a ceremony in progress; an idle one expires")
    func replacementAndExpiry() async throws {
        let cluster = try InProcessCeremony(nodes: 4, expiry: .milliseconds(200))
        let first = cluster.plan()
        let second = cluster.plan()
        let operatorPeer = try PeerIdentity.operatorNamed("test")
        func refusal(_ message: some WireMessage, to node: UInt16) async throws -> CeremonyRefusal? {
            let answer = try await cluster.services[node]!.handle(
                operatorPeer, try Frame.request(message, correlationID: 1))
            return try? answer?.decode(CeremonyRefusal.self)
        }
        let round1 = try await (1...4).asyncMap { id in
            try await cluster.services[UInt16(id)]!.handle(
                operatorPeer, try Frame.request(try first.begin(), correlationID: 1))!
                .decode(CeremonyRound1.self)
        }
        let round2 = try CeremonyRound2Request(ceremonyID: first.ceremonyID, round1: round1)
        // Node 1 is sent another ceremony's begin: the first one is gone there.
        _ = try await cluster.services[1]!.handle(operatorPeer, try Frame.request(try second.begin(), correlationID: 1))
        let replaced = try #require(try await refusal(round2, to: 1))
        #expect(replaced.phase == .round2)
        #expect(replaced.reason.contains("not in progress"), "\(replaced)")
        // Node 2 still has the first, until it has been idle longer than the expiry.
        try await Task.sleep(for: .milliseconds(300))
        let expired = try #require(try await refusal(round2, to: 2))
        #expect(expired.reason.contains("expired"), "\(expired)")
    }

    @Test("a commit whose certificate lacks a signature, or carries a forged one, installs nothing anywhere")
    func badCertificates() async throws {
        for forge in [false, true] {
            let cluster = try InProcessCeremony(nodes: 4)
            cluster.setTamper { message, _ in
                guard let commit = message as? CeremonyCommit else { return message }
                var certificate = commit.certificate
                if forge {
                    certificate[3] = try! CeremonySignature(
                        nodeID: 4, signature: Ed25519KeyPair().sign(commit.transcriptDigest))
                } else {
                    certificate.removeLast()
                }
                return try! CeremonyCommit(
                    ceremonyID: commit.ceremonyID, transcriptDigest: commit.transcriptDigest, certificate: certificate)
            }
            await #expect {
                _ = try await cluster.run(cluster.plan())
            } throws: { error in
                let failure = try #require(error as? CeremonyFailure)
                #expect(failure.phase == .commit)
                #expect(failure.nodes == [1, 2, 3, 4])
                return true
            }
            for id in 1...4 { #expect(cluster.keyStores[UInt16(id)]!.current?.groupKeyBytes == nil) }
            #expect(cluster.stagedDirectories.isEmpty)
        }
    }
}
