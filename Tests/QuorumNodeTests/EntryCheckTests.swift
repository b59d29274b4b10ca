import QuorumCrypto
import QuorumNode
import QuorumPolicy
import QuorumProtocol
import QuorumTestKit
import Testing

/// What a node checks of an entry before it keeps it: a receipt that verifies under the group key,
/// a logged request that matches its claims, verdicts signed by their nodes that reach the
/// receipt's decision; anything else well formed. Real FROST receipts, real Ed25519 verdicts.
@Suite("Log entry checks")
struct EntryCheckTests {
    struct Fixture {
        let groupKey: [UInt8]
        let request: DecideRequest
        let receipt: String
        let nodes: [UInt16: Ed25519KeyPair]

        var identityKeys: [UInt16: [UInt8]] { nodes.mapValues(\.publicKey) }
    }

    static func fixture(decision: ReceiptClaims.Decision = .allow) throws -> Fixture {
        let (keys, group) = try SigningHelpers.dealer(Ed25519Suite.self, k: 2, n: 3)
        let groupKey = try group.verifyingKey.serialized()
        let body = Array("{}".utf8)
        let request = try DecideRequest(
            requestID: "req_entry_check", time: 1_700_000_000_123, method: "POST", target: "/openai/v1/chat",
            headers: [], body: body, bodyLength: UInt64(body.count), clientAddress: "10.0.0.1", token: "lat_x",
            signers: [])
        let claims = ReceiptClaims(
            requestID: request.requestID, issuedAt: request.time / 1000, latch: "assistant", mount: "/openai",
            method: request.method, path: request.target, bodySHA256: Hex.encode(sha256Digest(body)),
            decision: decision, bundle: "", signers: [1, 2], reasons: [])
        let input = try Receipt.signingInput(claims: claims, groupKey: groupKey)
        let signature = try SigningHelpers.sign(input, keys: Array(keys.prefix(2)), group: group)
        let receipt = try Receipt(claims: claims, groupKey: groupKey, signature: signature.bytes).compact
        return Fixture(
            groupKey: groupKey, request: request, receipt: receipt, nodes: [1: Ed25519KeyPair(), 2: Ed25519KeyPair()])
    }

    /// Node `id`'s verdict on the fixture's request, signed by `signer` (its own key by default).
    static func verdict(
        _ fixture: Fixture, _ id: UInt16, decision: Verdict.Decision = .allow, requestID: String? = nil,
        signer: Ed25519KeyPair? = nil
    ) -> SignedVerdict {
        let verdict = Verdict(
            requestID: requestID ?? fixture.request.requestID, decision: decision, reason: nil, latchID: "assistant",
            route: nil, trace: [], obligations: .none, reservation: nil, stateChanges: [], selfDescription: nil,
            bundleDigest: "", evaluatedAt: fixture.request.time)
        let bytes = verdict.encoded()
        let key = signer ?? fixture.nodes[id]!
        return SignedVerdict(
            nodeID: id, verdict: bytes,
            signature: key.sign(
                DecideResponse.signedBytes(nodeID: id, requestID: fixture.request.requestID, verdict: bytes)))
    }

    static func leaf(
        _ fixture: Fixture, receipt: String? = nil, request: LoggedRequest? = nil, verdicts: [SignedVerdict]
    )
        -> [UInt8]
    {
        LogEntry.receipt(
            ReceiptEntry(
                receipt: receipt ?? fixture.receipt, request: request ?? LoggedRequest(fixture.request),
                verdicts: verdicts)
        ).encoded()
    }

    static func refusal(_ result: Result<LogEntry, LogRefusal>) -> LogRefusal? {
        if case .failure(let refusal) = result { return refusal }
        return nil
    }

    @Test("A receipt signed by the group with matching request and verdicts passes both checks")
    func valid() throws {
        let fixture = try Self.fixture()
        let leaf = Self.leaf(fixture, verdicts: [Self.verdict(fixture, 1), Self.verdict(fixture, 2)])
        #expect((try? EntryCheck.batch(leaf, groupKey: fixture.groupKey).get()) != nil)
        let entry = try EntryCheck.submitted(leaf, groupKey: fixture.groupKey, identityKeys: fixture.identityKeys).get()
        guard case .receipt(let receipt) = entry else {
            Issue.record("not a receipt entry")
            return
        }
        #expect(receipt.requestID == fixture.request.requestID)
    }

    @Test("A receipt whose signature does not verify under this group's key is refused: invalid-receipt")
    func badSignature() throws {
        let fixture = try Self.fixture()
        let other = try Self.fixture()
        var tampered = Array(fixture.receipt)
        let last = tampered.count - 2
        tampered[last] = tampered[last] == "A" ? "B" : "A"
        for receipt in [String(tampered), other.receipt] {
            let leaf = Self.leaf(fixture, receipt: receipt, verdicts: [])
            let refusal = try #require(Self.refusal(EntryCheck.batch(leaf, groupKey: fixture.groupKey)))
            #expect(refusal.reason == .invalidReceipt)
            #expect(refusal.detail.contains(fixture.request.requestID))
        }
    }

    @Test("A logged request that does not match the receipt's claims is refused, naming the claim")
    func requestMismatch() throws {
        let fixture = try Self.fixture()
        let other = try DecideRequest(
            requestID: fixture.request.requestID, time: fixture.request.time, method: "POST",
            target: "/openai/v1/other",
            headers: [], body: Array("{}".utf8), bodyLength: 2, clientAddress: "", token: "lat_x", signers: [])
        let leaf = Self.leaf(fixture, request: LoggedRequest(other), verdicts: [])
        // The group signature is fine, so the batch check passes; the submitted check does not.
        #expect((try? EntryCheck.batch(leaf, groupKey: fixture.groupKey).get()) != nil)
        let refusal = try #require(
            Self.refusal(EntryCheck.submitted(leaf, groupKey: fixture.groupKey, identityKeys: fixture.identityKeys)))
        #expect(refusal.reason == .invalidReceipt)
        #expect(refusal.detail.contains("path"))
    }

    @Test(
        "A verdict signed by another key, by a node not known, of another decision or request: refused",
        arguments: ["wrong key", "unknown node", "deny verdict", "other request"])
    func badVerdicts(_ case: String) throws {
        let fixture = try Self.fixture()
        let verdict: SignedVerdict
        switch `case` {
        case "wrong key": verdict = Self.verdict(fixture, 1, signer: Ed25519KeyPair())
        case "unknown node": verdict = Self.verdict(fixture, 3, signer: Ed25519KeyPair())
        case "deny verdict": verdict = Self.verdict(fixture, 2, decision: .deny)
        default: verdict = Self.verdict(fixture, 2, requestID: "req_other")
        }
        let leaf = Self.leaf(fixture, verdicts: [verdict])
        let refusal = try #require(
            Self.refusal(EntryCheck.submitted(leaf, groupKey: fixture.groupKey, identityKeys: fixture.identityKeys)))
        #expect(refusal.reason == .invalidReceipt)
        #expect(refusal.detail.contains("node \(verdict.nodeID)"))
    }

    @Test("Bytes that are no log entry are refused: malformed-entry")
    func malformed() throws {
        let fixture = try Self.fixture()
        for leaf in [[UInt8](), [9, 1], [1, 7, 0]] {
            let refusal = try #require(Self.refusal(EntryCheck.batch(leaf, groupKey: fixture.groupKey)))
            #expect(refusal.reason == .malformedEntry)
        }
    }

    @Test("Without a group key a receipt cannot be checked; a bundle entry needs none")
    func withoutKey() throws {
        let fixture = try Self.fixture()
        let receipt = Self.leaf(fixture, verdicts: [])
        #expect(Self.refusal(EntryCheck.batch(receipt, groupKey: nil))?.reason == .noGroupKey)
        let bundle = LogEntry.bundle(
            BundleEntry(
                version: 3, digest: "sha256:" + String(repeating: "a", count: 64),
                operatorKey: [UInt8](repeating: 1, count: 32), signedBundle: Array("{}".utf8))
        ).encoded()
        #expect((try? EntryCheck.submitted(bundle, groupKey: nil, identityKeys: [:]).get()) != nil)
    }
}
