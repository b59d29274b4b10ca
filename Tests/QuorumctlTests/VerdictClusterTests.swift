import Foundation
import Logging
import QuorumCrypto
import QuorumIdentity
import QuorumNode
import QuorumProtocol
import QuorumTestKit
import Testing

/// The nodes' policy decision point in real quorumd processes: `quorumctl policy push` installs a
/// signed bundle only from a trusted operator and only forward, and each node answers a proxy's
/// decision request with its own verdict signed by its identity key, counting rate limits and
/// budgets in its RocksDB state across a restart, never twice for one request id.
@Suite("verdicts across quorumd processes", .serialized, .timeLimit(.minutes(4)))
struct VerdictClusterTests {
    /// The demo token of `cluster/policies/assistant.yaml` (docs/policy.md), whose digest the
    /// bundle below names.
    static let token = "lat_assistant_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc"

    /// A bundle without time-of-day rules, so the verdicts do not depend on when the test runs:
    /// POST to one endpoint, two requests a minute, 0.01 reserved per call against 0.05 a day.
    static func bundle(version: Int, requestsPerMinute: Int = 2) -> String {
        """
        format: quorum-latch/bundle/v1
        version: \(version)
        secrets:
          - name: openai
            inject: bearer
        latches:
          - id: assistant
            token_sha256: dc4bf80c77473d130fa0de86ba4018fe98bb214005e6a5891d12ba91446f9e81
            mounts:
              - path: /openai
                upstream: http://127.0.0.1:9
                secret: openai
                filters:
                  - method: [POST]
                  - endpoint:
                      allow: [/v1/chat/completions]
                  - id: per-minute
                    rate_limit: {requests: \(requestsPerMinute), window: 1m, key: latch}
                  - id: daily
                    budget: {day: 0.05, cost: {per_request: 0.01}}

        """
    }

    /// An operator key file in the workspace, and its public key in hex.
    static func operatorKey(_ workspace: Workspace, _ name: String) throws -> String {
        let key = Ed25519KeyPair()
        try KeyFiles.writeSecretFile(KeyFiles.encodeEd25519Key(key, role: "operator"), to: workspace.path(name))
        return Hex.encode(key.publicKey)
    }

    /// Writes bundle `version` and signs it with `key`; returns the signed file's path.
    static func signed(
        _ workspace: Workspace, version: Int, key: String, requestsPerMinute: Int = 2
    ) async throws
        -> String
    {
        try workspace.write("bundle-\(version).yaml", bundle(version: version, requestsPerMinute: requestsPerMinute))
        let out = workspace.path("bundle-\(version)-\(key).signed.json")
        let sign = try await workspace.quorumctl(
            "policy", "sign", workspace.path("bundle-\(version).yaml"), "--key", workspace.path(key), "--out", out)
        try #require(sign.status == 0, "\(sign)")
        return out
    }

    static func client(_ cluster: TestCluster, as identity: PeerIdentity) throws -> NodeClient {
        try SigningClusterTests.client(cluster, as: identity)
    }

    static func nodes(_ cluster: TestCluster) throws -> [ClusterFile.Node] {
        try ClusterFile.load(path: cluster.workspace.path("cluster.toml")).nodes
    }

    static func request(
        _ requestID: String, method: String = "POST", target: String = "/openai/v1/chat/completions",
        time: Int64? = nil
    ) throws -> DecideRequest {
        try DecideRequest(
            requestID: requestID, time: time ?? Int64(Date().timeIntervalSince1970 * 1000), method: method,
            target: target, headers: [try DecisionHeader(name: "content-type", value: "application/json")],
            body: Array(#"{"model":"gpt-4o","messages":[]}"#.utf8), bodyLength: 33, clientAddress: "10.0.0.5",
            token: token, signers: [])
    }

    /// Node `node`'s verdict on `request`, its signature checked under the identity key the node
    /// reports in its status; the verdict's JSON as a dictionary.
    static func decide(
        _ request: DecideRequest, at node: ClusterFile.Node, client: NodeClient
    ) async throws -> (json: [String: Any], bytes: [UInt8]) {
        let status = try await client.ask(node, StatusRequest(), expecting: StatusResponse.self, deadline: .seconds(30))
        let answer = try await client.ask(node, request, expecting: DecideResponse.self, deadline: .seconds(30))
        #expect(answer.nodeID == node.id)
        #expect(answer.requestID == request.requestID)
        #expect(answer.share.isEmpty, "no signer set was named, so no share")
        let identityKey = try #require(status.identityKey)
        #expect(
            Ed25519KeyPair.verify(signature: answer.signature, message: answer.signedBytes, publicKey: identityKey),
            "node \(node.id)'s verdict signature verifies under its identity key")
        let json = (try? JSONSerialization.jsonObject(with: Data(answer.verdict))) as? [String: Any] ?? [:]
        return (json, answer.verdict)
    }

    @Test(
        "push installs only trusted, newer bundles; every node decides with its own signed verdict, counts limits once per request id and keeps them across a restart"
    )
    func verdicts() async throws {
        try await Workspace.with { workspace in
            let trusted = try Self.operatorKey(workspace, "operator-key.json")
            _ = try Self.operatorKey(workspace, "stranger-key.json")
            let cluster = try await TestCluster(workspace, nodes: 4, operatorKeys: [trusted])
            defer {
                for daemon in cluster.daemons.values where daemon.isRunning {
                    kill(daemon.child.process.processIdentifier, SIGKILL)
                }
            }
            try await cluster.startAll()
            let nodes = try Self.nodes(cluster)
            let proxy = try Self.client(cluster, as: .proxy)

            // No bundle yet: a refusal, never an allow.
            do {
                _ = try await Self.decide(try Self.request("before-push"), at: nodes[0], client: proxy)
                Issue.record("a node without a bundle answered a decision")
            } catch {
                #expect("\(error)".contains("no policy bundle installed"), "\(error)")
            }

            // A bundle signed by a key the nodes do not trust is refused everywhere.
            let stranger = try await Self.signed(workspace, version: 1, key: "stranger-key.json")
            let refused = try await workspace.quorumctl(["policy", "push", stranger] + cluster.operatorArguments)
            #expect(refused.status == 1, "\(refused)")
            #expect(refused.stderr.components(separatedBy: "\n").filter { $0.contains("node ") }.count == 4)

            let v2 = try await Self.signed(workspace, version: 2, key: "operator-key.json")
            let pushed = try await workspace.quorumctl(["policy", "push", v2] + cluster.operatorArguments)
            #expect(pushed.status == 0, "\(pushed)")
            #expect(pushed.stdoutLines.filter { $0.contains("installed version 2 sha256:") }.count == 4, "\(pushed)")
            let again = try await workspace.quorumctl(["policy", "push", v2] + cluster.operatorArguments)
            #expect(again.stdoutLines.filter { $0.contains("already runs version 2") }.count == 4, "\(again)")
            let older = try await Self.signed(workspace, version: 1, key: "operator-key.json")
            let downgrade = try await workspace.quorumctl(["policy", "push", older] + cluster.operatorArguments)
            #expect(downgrade.status == 1)
            #expect(downgrade.stderr.contains("is not newer than the installed version 2"), "\(downgrade)")

            // Status now shows the bundle digest on every node.
            let status = try await workspace.quorumctl(["status"] + cluster.operatorArguments)
            #expect(status.stdoutLines.dropFirst().allSatisfy { $0.contains("sha256:") }, "\(status)")

            // Allow on every node, each verdict signed by that node.
            for node in nodes {
                let (verdict, _) = try await Self.decide(try Self.request("call-1"), at: node, client: proxy)
                #expect(verdict["decision"] as? String == "allow", "\(verdict)")
            }
            // A retry of the same request id is answered from the record, byte for byte, and is
            // not counted again: the limit of two still admits call-2.
            let first = try await Self.decide(try Self.request("call-1"), at: nodes[0], client: proxy)
            let replay = try await Self.decide(try Self.request("call-1"), at: nodes[0], client: proxy)
            #expect(first.bytes == replay.bytes)
            let second = try await Self.decide(try Self.request("call-2"), at: nodes[0], client: proxy)
            #expect(second.json["decision"] as? String == "allow", "\(second.json)")
            let third = try await Self.decide(try Self.request("call-3"), at: nodes[0], client: proxy)
            #expect(third.json["decision"] as? String == "deny")
            #expect((third.json["reason"] as? String)?.contains("per-minute") == true, "\(third.json)")

            // Deny with the filter named.
            let get = try await Self.decide(try Self.request("call-get", method: "GET"), at: nodes[1], client: proxy)
            #expect(get.json["decision"] as? String == "deny")
            #expect((get.json["reason"] as? String)?.contains("method") == true, "\(get.json)")

            // A request time far from the node's clock is refused, not decided.
            do {
                _ = try await Self.decide(
                    try Self.request("call-old", time: Int64(Date().timeIntervalSince1970 * 1000) - 60_000),
                    at: nodes[1], client: proxy)
                Issue.record("a request stamped a minute ago was decided")
            } catch {
                #expect("\(error)".contains("max_clock_skew_ms"), "\(error)")
            }

            // Settlement: call-1 reserved 0.01 on node 1; settling it once says so, twice does not.
            let settle = try SettleRequest(requestID: "call-1", usage: nil)
            let settled = try await proxy.ask(nodes[0], settle, expecting: SettleResponse.self, deadline: .seconds(30))
            #expect(settled.settled)
            let twice = try await proxy.ask(nodes[0], settle, expecting: SettleResponse.self, deadline: .seconds(30))
            #expect(!twice.settled)

            // Only proxies ask for decisions.
            let operatorClient = try Self.client(cluster, as: .operator(name: "operator"))
            do {
                _ = try await operatorClient.ask(
                    nodes[0], try Self.request("as-operator"), expecting: DecideResponse.self, deadline: .seconds(30))
                Issue.record("an operator certificate obtained a decision")
            } catch {
                #expect("\(error)".contains("unauthorized") || "\(error)".contains("may not"), "\(error)")
            }

            // Restart node 1: its rate window and its records survive.
            let exit = await cluster.daemons[1]!.terminate(within: .seconds(10))
            #expect(exit == 0)
            try await cluster.start(1)
            let afterRestart = try await Self.decide(try Self.request("call-4"), at: nodes[0], client: proxy)
            #expect(afterRestart.json["decision"] as? String == "deny", "the rate window survived the restart")
            let recorded = try await Self.decide(try Self.request("call-1"), at: nodes[0], client: proxy)
            #expect(recorded.bytes == first.bytes)
            await cluster.stopAll()
        }
    }

    /// k signer slots from fresh commitments of `ids`.
    static func slots(_ coordinator: SigningCoordinator, _ ids: [UInt16]) async throws -> [SignerSlot] {
        var slots: [SignerSlot] = []
        for id in ids {
            let commitment = try await coordinator.nextCommitment(from: id)
            slots.append(
                try SignerSlot(
                    identifier: id, bootEpoch: commitment.bootEpoch, nonceID: commitment.entry.nonceID,
                    commitment: commitment.entry.commitment))
        }
        return slots
    }

    /// The group signature of `shares` over `message` with the commitments of `slots`.
    static func aggregate(
        _ message: [UInt8], _ slots: [SignerSlot], _ shares: [UInt16: [UInt8]], _ group: PublicKeyPackage<Ed25519Suite>
    ) throws -> Signature {
        let commitments = try slots.map {
            try SigningCommitments<Ed25519Suite>(identifier: try Identifier($0.identifier), encoded: $0.commitment)
        }
        let session = try SigningSession(
            package: try SigningPackage(message: message, commitments: commitments), verifyingKey: group.verifyingKey)
        let parsed = try shares.sorted { $0.key < $1.key }.map {
            try SignatureShare<Ed25519Suite>(identifier: try Identifier($0.key), encoded: $0.value)
        }
        return try FROST.aggregate(session: session, shares: parsed, group: group)
    }

    @Test(
        "signers in the decision round return shares that aggregate to a receipt verifying as Ed25519; a retry signs the same decision for other signers; nothing undecided or decided otherwise is signed; decryption shares open only the pushed credential"
    )
    func receiptsAndCredentials() async throws {
        try await DecidingCluster.with { deciding in
            let cluster = deciding.cluster
            let coordinator = try SigningClusterTests.coordinator(cluster)
            defer { Task { await coordinator.close() } }
            let group = try deciding.group
            let groupKey = try group.verifyingKey.serialized()

            // 1. One round: every node decides, the three signers sign the allow receipt.
            let slots = try await Self.slots(coordinator, [1, 2, 3])
            let request = try DecidingCluster.request("rcpt-1", signers: slots)
            let answers = try await deciding.decide(request, at: [1, 2, 3, 4])
            #expect(answers[4]?.share.isEmpty == true, "node 4 was not asked to sign")
            let claims = deciding.allowClaims(request, signers: [1, 2, 3])
            let message = try Receipt.signingInput(claims: claims, groupKey: groupKey)
            let signature = try Self.aggregate(
                message, slots, [1: answers[1]!.share, 2: answers[2]!.share, 3: answers[3]!.share], group)
            let receipt = try Receipt(claims: claims, groupKey: groupKey, signature: signature.bytes)
            #expect(throws: Never.self) { try Receipt.verified(receipt.compact, groupKey: groupKey) }
            #expect(Ed25519KeyPair.verify(signature: signature.bytes, message: message, publicKey: groupKey))

            // 2. The same request again (a proxy retrying the round) is answered from the record
            // and signed again with the new nonces.
            let retrySlots = try await Self.slots(coordinator, [1, 2, 4])
            let retryMessage = try Receipt.signingInput(
                claims: deciding.allowClaims(request, signers: [1, 2, 4]), groupKey: groupKey)
            var shares: [UInt16: [UInt8]] = [:]
            for slot in retrySlots {
                let own = try #require(retrySlots.first { $0.identifier == slot.identifier })
                let sign = try SignRequest(
                    bootEpoch: own.bootEpoch, nonceID: own.nonceID, requestID: "rcpt-1", message: retryMessage,
                    commitments: retrySlots.map(\.signerCommitment))
                shares[slot.identifier] = try await coordinator.requestShare(sign, from: slot.identifier).share
            }
            let retried = try Self.aggregate(retryMessage, retrySlots, shares, group)
            #expect(Ed25519KeyPair.verify(signature: retried.bytes, message: retryMessage, publicKey: groupKey))

            // 3. Refused with no-decision: a request id nobody decided, a deny for an allowed
            // request, and a receipt naming other signers than the commitment list.
            func refusal(
                _ message: [UInt8], requestID: String, slots: [SignerSlot], at node: UInt16
            ) async throws
                -> SigningRefusal
            {
                let own = try #require(slots.first { $0.identifier == node })
                let sign = try SignRequest(
                    bootEpoch: own.bootEpoch, nonceID: own.nonceID, requestID: requestID, message: message,
                    commitments: slots.map(\.signerCommitment))
                return try await SigningClusterTests.refusal(coordinator, sign, from: node)
            }
            let undecided = try DecidingCluster.request("never-decided")
            let s1 = try await Self.slots(coordinator, [1, 2, 3])
            let r1 = try await refusal(
                try Receipt.signingInput(
                    claims: deciding.allowClaims(undecided, signers: [1, 2, 3]), groupKey: groupKey),
                requestID: "never-decided", slots: s1, at: 1)
            #expect(r1.reason == .noDecision)
            #expect(r1.detail.contains("reached no decision"), "\(r1)")
            var denied = deciding.allowClaims(request, signers: [1, 2, 3])
            denied.decision = .deny
            let s2 = try await Self.slots(coordinator, [1, 2, 3])
            let r2 = try await refusal(
                try Receipt.signingInput(claims: denied, groupKey: groupKey), requestID: "rcpt-1", slots: s2, at: 2)
            #expect(r2.reason == .noDecision)
            #expect(r2.detail.contains("decided otherwise"), "\(r2)")
            let s3 = try await Self.slots(coordinator, [1, 2, 3])
            let r3 = try await refusal(
                message, requestID: "rcpt-1",
                slots: s3.filter { $0.identifier != 3 } + [
                    try SignerSlot(identifier: 4, bootEpoch: 0, nonceID: 0, commitment: s3[2].commitment)
                ], at: 1)
            #expect(r3.reason == .noDecision)

            // 4. A sealed credential pushed to the nodes: every allowing node returns a decryption
            // share, and k of them open the record the proxy holds; a deny returns none.
            let sealingPath = cluster.workspace.path("dealer/sealing-group.json")
            let sealingGroup = try KeyFiles.decodeGroup(
                try KeyFiles.readFile(sealingPath), as: Ed25519Suite.self, file: sealingPath)
            let value = SecretBytes(Array("sk-demo-credential".utf8))
            try cluster.workspace.write("openai.key", "sk-demo-credential\n")
            let set = try await cluster.workspace.quorumctl(
                "secrets", "set", "openai", "--value-file", cluster.workspace.path("openai.key"), "--sealing-group",
                sealingPath, "--proxy-dir", cluster.workspace.path("proxy"))
            try #require(set.status == 0, "\(set)")
            let push = try await cluster.workspace.quorumctl(
                ["secrets", "push", "openai", "--proxy-dir", cluster.workspace.path("proxy")]
                    + cluster.operatorArguments)
            #expect(push.status == 0, "\(push)")
            #expect(push.stdoutLines.filter { $0.contains("holds secret 'openai'") }.count == 4, "\(push)")
            let record = try SealedCredentialDirectory(proxyDirectory: cluster.workspace.path("proxy")).load("openai")
            let operatorClient = try Self.client(cluster, as: .operator(name: "operator"))
            let withSecret = try await deciding.decide(try DecidingCluster.request("cred-1"), at: [1, 2, 3, 4])
            let decryption = try withSecret.sorted { $0.key < $1.key }.prefix(3).map {
                try DecryptionShare<Ed25519Suite>(identifier: try Identifier($0.key), encoded: $0.value.decryptionShare)
            }
            let opened = try record.open(shares: decryption, group: sealingGroup)
            #expect(opened.withUnsafeBytes { Array($0) } == Array("sk-demo-credential".utf8))
            let deny = try await deciding.decide(try DecidingCluster.request("cred-deny", method: "GET"), at: [1])
            #expect(deny[1]?.decryptionShare.isEmpty == true)
            // A record sealed to another group is refused.
            let stranger = try TrustedDealer<Ed25519Suite>.generate(minSigners: 2, maxSigners: 3, purpose: .sealing)
            let foreign = try SealedCredential.seal(value, name: "openai", to: stranger.group, created: 0)
            do {
                _ = try await operatorClient.ask(
                    deciding.node(1), try CredentialPutRequest(record: foreign.encoded()),
                    expecting: CredentialPutResponse.self, deadline: .seconds(30))
                Issue.record("a credential sealed to another group was stored")
            } catch {
                #expect("\(error)".contains("seal it to sealing-group.json"), "\(error)")
            }
            await cluster.stopAll()
        }
    }
}
