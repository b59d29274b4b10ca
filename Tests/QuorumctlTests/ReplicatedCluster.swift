import Foundation
import QuorumCrypto
import QuorumLog
import QuorumNode
import QuorumProtocol
import QuorumTestKit
import Testing

/// A ``DecidingCluster`` seen as a replicated log: receipt entries signed with the dealer's shares
/// (as the quorum would sign them), submitted to nodes with the proxy certificate, and each node's
/// log state and entries read back over node RPC (`LogStatusRequest`, `LogFetchRequest`) or from
/// its data directory, read-only.
struct ReplicatedCluster {
    let deciding: DecidingCluster
    let groupKey: [UInt8]
    let origin: String
    private let signers: [KeyPackage<Ed25519Suite>]
    private let group: PublicKeyPackage<Ed25519Suite>

    var cluster: TestCluster { deciding.cluster }

    /// Runs `body` with a deciding cluster of four nodes whose log settings are `log` (a TOML
    /// `[replication]` body appended to every node's configuration).
    static func with(
        log: String = "batch_interval_ms = 50\nfailover_ms = 3000\n", _ body: (ReplicatedCluster) async throws -> Void
    ) async throws {
        try await DecidingCluster.with(beforeStart: { cluster in
            for id in 1...cluster.size {
                let file = "node-\(id).toml"
                let config = String(decoding: try cluster.workspace.read(file), as: UTF8.self)
                try cluster.workspace.write(file, config + "\n[replication]\n" + log)
            }
        }) { deciding in
            let group = try deciding.group
            var signers: [KeyPackage<Ed25519Suite>] = []
            for id in 1...3 {
                let path = deciding.cluster.workspace.path("dealer/node-\(id)/signing-share.json")
                signers.append(
                    try KeyFiles.decodeShare(try KeyFiles.readSecretFile(path), as: Ed25519Suite.self, file: path))
            }
            let groupKey = try group.verifyingKey.serialized()
            try await body(
                ReplicatedCluster(
                    deciding: deciding, groupKey: groupKey, origin: CheckpointNames.origin(groupPublicKey: groupKey),
                    signers: signers, group: group))
        }
    }

    /// A receipt entry for a fresh allowed call `requestID`, its receipt signed by three dealer
    /// shares: a plain Ed25519 signature under the group key, as the quorum makes it.
    func receiptEntry(_ requestID: String) throws -> [UInt8] {
        let request = try DecidingCluster.request(requestID)
        let claims = deciding.allowClaims(request, signers: [1, 2, 3])
        let input = try Receipt.signingInput(claims: claims, groupKey: groupKey)
        let signature = try SigningHelpers.sign(input, keys: signers, group: group)
        let receipt = try Receipt(claims: claims, groupKey: groupKey, signature: signature.bytes).compact
        return LogEntry.receipt(ReceiptEntry(receipt: receipt, request: LoggedRequest(request), verdicts: []))
            .encoded()
    }

    /// `count` fresh receipt entries named `prefix-<i>`.
    func receiptEntries(_ prefix: String, count: Int) throws -> [[UInt8]] {
        try (0..<count).map { try receiptEntry("\(prefix)-\($0)") }
    }

    /// Submits `entries` to node `id` as a proxy does; the outcome of each.
    @discardableResult
    func submit(_ entries: [[UInt8]], to id: UInt16) async throws -> [LogSubmitOutcome] {
        let response = try await deciding.proxy.ask(
            deciding.node(id), try LogSubmit(entries: entries), expecting: LogSubmitResponse.self,
            deadline: .seconds(30))
        return response.outcomes
    }

    /// Node `id`'s log state.
    func status(_ id: UInt16) async throws -> LogStatusResponse {
        try await deciding.proxy.ask(
            deciding.node(id), LogStatusRequest(), expecting: LogStatusResponse.self, deadline: .seconds(30))
    }

    /// Node `id`'s log state, or nil when it does not answer.
    func statusIfUp(_ id: UInt16) async -> LogStatusResponse? { try? await status(id) }

    /// Every entry of node `id`'s log, fetched over node RPC.
    func entries(_ id: UInt16) async throws -> [[UInt8]] {
        var entries: [[UInt8]] = []
        while true {
            let response = try await deciding.proxy.ask(
                deciding.node(id), try LogFetchRequest(from: UInt64(entries.count), count: 4096),
                expecting: LogFetchResponse.self, deadline: .seconds(30))
            guard !response.entries.isEmpty else { return entries }
            entries += response.entries
        }
    }

    /// Waits (at most `limit`) until every node of `ids` holds every entry of `wanted` in its log;
    /// true when they do.
    func waitUntilLogged(_ wanted: [[UInt8]], on ids: [UInt16], within limit: Duration) async throws -> Bool {
        let leaves = Set(wanted.map(RFC9162.leafHash))
        return try await eventually(within: limit) {
            for id in ids {
                guard let status = await statusIfUp(id), status.logSize >= UInt64(wanted.count) else { return false }
                let logged = Set(try await entries(id).map(RFC9162.leafHash))
                guard leaves.isSubset(of: logged) else { return false }
            }
            return true
        }
    }

    /// Node `id`'s identity key, as it reports it.
    func identityKey(_ id: UInt16) async throws -> [UInt8] {
        let status = try await deciding.proxy.ask(
            deciding.node(id), StatusRequest(), expecting: StatusResponse.self, deadline: .seconds(30))
        return try #require(status.identityKey)
    }

    /// Checks `note` the way an outsider would: the first line is the group's, a plain Ed25519
    /// signature over the note text under the group key; every other line is a cosignature by a
    /// node's identity key that verifies. Returns the checkpoint and the cosigning node ids.
    func verify(_ serialized: String) async throws -> (Checkpoint, [UInt16]) {
        let note = try SignedNote.parse(serialized)
        let checkpoint = try Checkpoint.parse(note.text)
        #expect(checkpoint.origin == origin)
        let first = try #require(note.signatures.first)
        #expect(first.name == origin)
        #expect(
            Ed25519KeyPair.verify(signature: first.signature, message: Array(note.text.utf8), publicKey: groupKey),
            "the group line is not a plain Ed25519 signature under the group key")
        var cosigners: [UInt16] = []
        for line in note.signatures.dropFirst() {
            let id = try #require(UInt16(line.name.split(separator: "-").last ?? ""), "line \(line.name)")
            let verifier = try CheckpointNames.nodeVerifier(
                origin: origin, nodeID: id, identityKey: try await identityKey(id))
            _ = try SignedNote(text: note.text, signatures: [line]).verifiedSignatures(with: [verifier])
            cosigners.append(id)
        }
        return (checkpoint, cosigners)
    }

    /// Node `id`'s log, opened read-only from its data directory (works while the node runs).
    func storedLog(_ id: UInt16) throws -> ReplicatedLog {
        try ReplicatedLog(dataDirectory: cluster.workspace.path("data-\(id)"), readOnly: true)
    }
}
