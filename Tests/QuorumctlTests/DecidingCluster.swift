import Foundation
import Logging
import QuorumCrypto
import QuorumIdentity
import QuorumNode
import QuorumProtocol
import QuorumTestKit
import Testing

/// A running cluster that decides: n real quorumd processes trusting a fresh operator key, with
/// ``VerdictClusterTests/bundle(version:requestsPerMinute:)`` pushed, so tests can record decisions
/// and ask for the receipts they stand for.
struct DecidingCluster {
    let cluster: TestCluster
    /// The pushed bundle's digest, hex without `sha256:` (the receipt's `bundle` claim).
    let bundleDigest: String
    /// A client holding the proxy certificate.
    let proxy: NodeClient
    let nodes: [ClusterFile.Node]

    /// Runs `body` with such a cluster of `size` nodes (dealer keys at `dealerThreshold`), every
    /// node started and the bundle pushed; kills what is left afterwards.
    static func with(
        nodes size: Int = 4, dealerThreshold: Int? = 3, requestsPerMinute: Int = 1000,
        beforeStart: (TestCluster) throws -> Void = { _ in }, _ body: (DecidingCluster) async throws -> Void
    ) async throws {
        try await Workspace.with { workspace in
            let key = try VerdictClusterTests.operatorKey(workspace, "operator-key.json")
            let cluster = try await TestCluster(
                workspace, nodes: size, dealerThreshold: dealerThreshold, operatorKeys: [key])
            defer {
                for daemon in cluster.daemons.values where daemon.isRunning {
                    kill(daemon.child.process.processIdentifier, SIGKILL)
                }
            }
            try beforeStart(cluster)
            try await cluster.startAll()
            let signed = try await VerdictClusterTests.signed(
                workspace, version: 1, key: "operator-key.json", requestsPerMinute: requestsPerMinute)
            let pushed = try await workspace.quorumctl(["policy", "push", signed] + cluster.operatorArguments)
            try #require(pushed.status == 0, "\(pushed)")
            let digest = try #require(
                pushed.stdoutLines.first?.components(separatedBy: "sha256:").last?.trimmingCharacters(in: .whitespaces))
            try await body(
                DecidingCluster(
                    cluster: cluster, bundleDigest: digest,
                    proxy: try SigningClusterTests.client(cluster, as: .proxy),
                    nodes: try ClusterFile.load(path: workspace.path("cluster.toml")).nodes))
        }
    }

    /// The body every test request carries.
    static let body = Array(#"{"model":"gpt-4o","messages":[]}"#.utf8)

    /// A call the bundle allows (POST to the chat endpoint with the demo token), or denies
    /// (`method: "GET"`), stamped now.
    static func request(
        _ requestID: String, method: String = "POST", signers: [SignerSlot] = []
    ) throws -> DecideRequest {
        try DecideRequest(
            requestID: requestID, time: Int64(Date().timeIntervalSince1970 * 1000), method: method,
            target: "/openai/v1/chat/completions",
            headers: [try DecisionHeader(name: "content-type", value: "application/json")], body: body,
            bodyLength: UInt64(body.count), clientAddress: "10.0.0.5", token: VerdictClusterTests.token,
            signers: signers)
    }

    /// The claims an allow of `request` stands for, written out from what the test knows (not
    /// from a node's verdict), so the nodes' own construction is checked against it.
    func allowClaims(_ request: DecideRequest, signers: [UInt16]) -> ReceiptClaims {
        ReceiptClaims(
            requestID: request.requestID, issuedAt: request.time / 1000, latch: "assistant", mount: "/openai",
            method: request.method, path: request.target, bodySHA256: Hex.encode(sha256Digest(Self.body)),
            decision: .allow, bundle: bundleDigest, signers: signers.map(Int.init), reasons: [])
    }

    /// Records an allow of a fresh request `requestID` on nodes `at` and returns the receipt
    /// signing input for `signers`: what a proxy's sign request may then ask them to sign.
    func decidedReceipt(
        _ requestID: String, at ids: [UInt16] = [1, 2, 3, 4], signers: [UInt16]
    ) async throws
        -> [UInt8]
    {
        let request = try Self.request(requestID)
        _ = try await decide(request, at: ids)
        return try Receipt.signingInput(
            claims: allowClaims(request, signers: signers), groupKey: try group.verifyingKey.serialized())
    }

    /// The node with id `id`.
    func node(_ id: UInt16) -> ClusterFile.Node { nodes.first { $0.id == id }! }

    /// `request` sent to each of `ids`; their answers by node id.
    func decide(_ request: DecideRequest, at ids: [UInt16]) async throws -> [UInt16: DecideResponse] {
        var answers: [UInt16: DecideResponse] = [:]
        for id in ids {
            answers[id] = try await proxy.ask(
                node(id), request, expecting: DecideResponse.self, deadline: .seconds(30))
        }
        return answers
    }

    /// The signing group of `dealer/group.json`.
    var group: PublicKeyPackage<Ed25519Suite> {
        get throws { try SigningClusterTests.group(cluster) }
    }
}
