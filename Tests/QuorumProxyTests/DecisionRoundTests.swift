import QuorumCrypto
import QuorumPolicy
import QuorumProtocol
import QuorumProxy
import Testing

/// The proxy's decision rules as a plain value, without sockets or clocks: when k identical allows
/// are signed, when a chosen signer's failure leads to a sign request round with other allowing
/// nodes, when the call is denied (with or without a deny receipt) and when it is unavailable.
@Suite("Decision round")
struct DecisionRoundTests {
    static let nodes: [UInt16] = [1, 2, 3, 4]

    static func verdict(
        _ decision: Verdict.Decision, reason: String? = nil,
        bundle: String = "sha256:" + String(repeating: "ab", count: 32)
    ) -> Verdict {
        Verdict(
            requestID: "req-1", decision: decision,
            reason: decision == .deny ? (reason ?? "method#1: GET is not allowed") : nil,
            latchID: "assistant",
            route: decision == .allow
                ? .upstream(
                    mount: "/openai", url: "https://api.openai.com", secret: "openai", path: "/v1/chat/completions")
                : nil,
            trace: [], obligations: .none, reservation: nil, stateChanges: [], selfDescription: nil,
            bundleDigest: bundle, evaluatedAt: 1_795_510_800_000)
    }

    static func claims(_ verdict: Verdict, signers: [UInt16] = [1, 2, 3]) -> ReceiptClaims {
        ReceiptClaims(
            requestID: verdict.requestID, issuedAt: 1_795_510_800, latch: verdict.latchID ?? "", mount: "/openai",
            method: "POST", path: "/openai/v1/chat/completions", bodySHA256: String(repeating: "0", count: 64),
            decision: verdict.decision == .allow ? .allow : .deny,
            bundle: String(verdict.bundleDigest.dropFirst("sha256:".count)), signers: signers.map(Int.init),
            reasons: verdict.reason.map { [$0] } ?? [])
    }

    static func share(_ node: UInt16) -> SignatureShare<Ed25519Suite> {
        try! SignatureShare(
            identifier: try! Identifier(node), encoded: [UInt8(node)] + [UInt8](repeating: 0, count: 31))
    }

    static func answer(
        _ node: UInt16, _ decision: Verdict.Decision, share: Bool = true, reason: String? = nil,
        bundle: String = "sha256:" + String(repeating: "ab", count: 32)
    ) -> DecisionRound.Answer {
        let verdict = verdict(decision, reason: reason, bundle: bundle)
        return DecisionRound.Answer(
            node: node, verdict: verdict, claims: claims(verdict), share: share ? Self.share(node) : nil,
            decryptionShare: nil)
    }

    static func round(signers: [UInt16] = [1, 2, 3]) -> DecisionRound {
        DecisionRound(threshold: 3, nodes: nodes, optimisticSigners: signers)
    }

    @Test("k optimistic signers that allow identically are aggregated at once; the signature finishes an allow")
    func optimisticAllow() {
        var round = Self.round()
        #expect(isWait(round.received(Self.answer(1, .allow))))
        #expect(isWait(round.received(Self.answer(2, .allow))))
        guard case .aggregate(let claims, let shares) = round.received(Self.answer(3, .allow)) else {
            Issue.record("three identical allows by the optimistic signers were not aggregated")
            return
        }
        #expect(claims.signers == [1, 2, 3])
        #expect(shares.count == 3)
        guard case .finish(.allow(let signed, let signature, let verdicts, _)) = round.signed([9]) else {
            Issue.record("a verified signature did not finish the allow")
            return
        }
        #expect(signed.signers == [1, 2, 3] && signature == [9] && verdicts.count == 3)
        #expect(isWait(round.received(Self.answer(4, .allow))), "nothing changes after the decision")
    }

    @Test("a chosen signer that is down leads to one sign request round with the k nodes that allowed")
    func signerDown() {
        var round = Self.round()
        _ = round.received(Self.answer(1, .allow))
        _ = round.failed(2, reason: "connection refused")
        #expect(isWait(round.received(Self.answer(3, .allow))))
        guard case .sign(let claims, let signers) = round.received(Self.answer(4, .allow, share: false)) else {
            Issue.record("no sign request round after a chosen signer failed")
            return
        }
        #expect(signers == [1, 3, 4])
        #expect(claims.signers == [1, 3, 4])
        guard case .finish(.allow(let signed, _, _, _)) = round.signed([7]) else {
            Issue.record("the sign request round's signature did not finish the allow")
            return
        }
        #expect(signed.signers == [1, 3, 4])
        #expect(round.missedSigners == [2], "the chosen signer that failed was missed")
    }

    @Test("a chosen signer that disagrees is replaced; the round waits while a chosen signer may still answer")
    func signerDisagrees() {
        var round = Self.round()
        _ = round.received(Self.answer(1, .allow))
        _ = round.received(Self.answer(2, .allow))
        #expect(isWait(round.received(Self.answer(4, .allow, share: false))), "signer 3 has not answered yet")
        guard case .sign(_, let signers) = round.received(Self.answer(3, .deny)) else {
            Issue.record("no sign request round after a chosen signer denied")
            return
        }
        #expect(signers == [1, 2, 4])
        _ = round.signed([5])
        #expect(round.missedSigners.isEmpty, "a signer that disagreed did not miss")
    }

    @Test("a share that did not verify counts as no share: the round signs again rather than aggregate")
    func missingShare() {
        var round = Self.round()
        _ = round.received(Self.answer(1, .allow))
        _ = round.received(Self.answer(2, .allow, share: false))
        guard case .sign(_, let signers) = round.received(Self.answer(3, .allow)) else {
            Issue.record("aggregated without every chosen signer's verified share")
            return
        }
        #expect(signers == [1, 2, 3])
        #expect(round.missedSigners == [2], "no share: missed, so far")
        _ = round.signed([6])
        #expect(round.missedSigners.isEmpty, "node 2 signed in the sign request round after all")
    }

    @Test("signing that keeps failing ends unavailable, never allow")
    func signingFails() {
        var round = Self.round()
        _ = round.received(Self.answer(1, .allow))
        _ = round.received(Self.answer(2, .allow))
        guard case .aggregate = round.received(Self.answer(3, .allow)) else {
            Issue.record("expected the optimistic aggregation")
            return
        }
        #expect(isWait(round.signingFailed(nodes: [2])), "two signers left; node 4 may still allow")
        guard case .sign(_, let first) = round.received(Self.answer(4, .allow)) else {
            Issue.record("expected a sign request round without node 2")
            return
        }
        #expect(first == [1, 3, 4])
        let next = round.signingFailed(nodes: [3])
        guard case .finish(.unavailable(let reason)) = next else {
            Issue.record("expected unavailable after two signers failed, got \(next)")
            return
        }
        #expect(reason.contains("failed to sign"))
        #expect(round.missedSigners == [2, 3])
    }

    @Test("allows whose claims differ (another bundle) do not add up to k: the call is denied when all answered")
    func splitAllows() {
        var round = Self.round()
        _ = round.received(Self.answer(1, .allow))
        _ = round.received(Self.answer(2, .allow))
        _ = round.received(Self.answer(3, .allow, bundle: "sha256:" + String(repeating: "cd", count: 32)))
        guard case .finish(.deny(let reasons, let receipt)) = round.received(Self.answer(4, .deny)) else {
            Issue.record("two plus one plus a deny were not a deny")
            return
        }
        #expect(receipt == nil)
        #expect(reasons.map(\.node) == [1, 2, 3, 4])
    }

    @Test("k identical denies by the chosen signers are aggregated into a deny receipt with every node's reason")
    func denyWithReceipt() {
        var round = Self.round()
        _ = round.received(Self.answer(1, .deny))
        // Two denies of four make three allows impossible, but fewer than k have answered.
        #expect(isWait(round.received(Self.answer(2, .deny))))
        guard case .aggregate(let claims, _) = round.received(Self.answer(3, .deny)) else {
            Issue.record("three identical denies by the chosen signers were not aggregated")
            return
        }
        #expect(claims.decision == .deny)
        guard case .finish(.deny(let reasons, let receipt)) = round.signed([5]) else {
            Issue.record("the deny signature did not finish a deny")
            return
        }
        #expect(receipt?.claims.signers == [1, 2, 3])
        #expect(reasons.count == 3 && reasons.allSatisfy { $0.decision == "deny" })
    }

    @Test("denies for different reasons get no receipt")
    func denyWithoutReceipt() {
        var round = Self.round()
        _ = round.received(Self.answer(1, .deny, reason: "method#1: no"))
        _ = round.received(Self.answer(2, .deny, reason: "rate_limit#3: too many"))
        // Three answers: no three allows and no three identical denies can come any more.
        guard case .finish(.deny(let reasons, let receipt)) = round.received(Self.answer(3, .allow)) else {
            Issue.record("expected a deny")
            return
        }
        #expect(receipt == nil)
        #expect(reasons.first { $0.node == 2 }?.reason == "rate_limit#3: too many")
    }

    @Test("two of four nodes down is unavailable as soon as k answers cannot come")
    func twoDown() {
        var round = Self.round()
        _ = round.received(Self.answer(1, .allow))
        #expect(isWait(round.failed(2, reason: "down")))
        guard case .finish(.unavailable(let reason)) = round.failed(3, reason: "down") else {
            Issue.record("expected unavailable with two nodes down")
            return
        }
        #expect(reason.contains("the threshold is 3") && reason.contains("node 2: down"))
    }

    @Test("the deadline with fewer than k answers is unavailable; with a deny decided but unsigned, a deny")
    func deadline() {
        var few = Self.round()
        _ = few.received(Self.answer(1, .allow))
        _ = few.received(Self.answer(2, .allow))
        guard case .finish(.unavailable) = few.deadlinePassed() else {
            Issue.record("two answers at the deadline were not unavailable")
            return
        }
        var denied = Self.round(signers: [2, 3, 4])
        _ = denied.received(Self.answer(1, .deny))
        _ = denied.received(Self.answer(2, .deny))
        #expect(isWait(denied.received(Self.answer(3, .deny))), "chosen signer 4 may still complete the receipt")
        guard case .finish(.deny(_, let receipt)) = denied.deadlinePassed() else {
            Issue.record("three denies at the deadline were not a deny")
            return
        }
        #expect(receipt == nil)
    }

    @Test("without an optimistic signer set (no commitments), k identical allows are signed in a sign request round")
    func noOptimisticSigners() {
        var round = Self.round(signers: [])
        _ = round.received(Self.answer(2, .allow, share: false))
        _ = round.received(Self.answer(3, .allow, share: false))
        guard case .sign(_, let signers) = round.received(Self.answer(4, .allow, share: false)) else {
            Issue.record("expected a sign request round")
            return
        }
        #expect(signers == [2, 3, 4])
    }

    @Test(
        "a chosen signer that hangs is given up when the per-signer budget passes: the k nodes that allowed sign at once"
    )
    func hungSigner() {
        var round = Self.round()
        _ = round.received(Self.answer(1, .allow))
        _ = round.received(Self.answer(3, .allow))
        #expect(isWait(round.received(Self.answer(4, .allow, share: false))), "before the budget, signer 2 is awaited")
        guard case .sign(let claims, let signers) = round.signerBudgetPassed() else {
            Issue.record("the budget passed, three nodes allowed, and no sign request round followed")
            return
        }
        #expect(round.overdueSigners == [2])
        #expect(signers == [1, 3, 4] && claims.signers == [1, 3, 4])
        #expect(isWait(round.received(Self.answer(2, .allow))), "a late answer does not start another signing")
        guard case .finish(.allow(let signed, _, let verdicts, _)) = round.signed([8]) else {
            Issue.record("the sign request round's signature did not finish the allow")
            return
        }
        #expect(signed.signers == [1, 3, 4] && verdicts.count == 3)
        #expect(round.missedSigners == [2], "the hung signer was missed though it answered late")
    }

    @Test("signers that answer after the budget passed still count: their optimistic shares are aggregated")
    func slowSignersStillCount() {
        var round = Self.round()
        _ = round.failed(4, reason: "connection refused")
        _ = round.received(Self.answer(1, .allow))
        #expect(isWait(round.signerBudgetPassed()), "one allow and two nodes still to answer: nothing to sign yet")
        #expect(round.overdueSigners == [2, 3])
        #expect(isWait(round.received(Self.answer(2, .allow))))
        guard case .aggregate(let claims, let shares) = round.received(Self.answer(3, .allow)) else {
            Issue.record("the optimistic signers all answered with shares and were not aggregated")
            return
        }
        #expect(claims.signers == [1, 2, 3] && shares.count == 3)
        _ = round.signed([4])
        #expect(round.missedSigners.isEmpty, "late, but they signed: nobody was missed")
    }

    @Test("the budget also ends the wait for a chosen signer of a deny receipt")
    func hungSignerOfDeny() {
        var round = Self.round(signers: [2, 3, 4])
        _ = round.received(Self.answer(1, .deny))
        _ = round.received(Self.answer(2, .deny))
        #expect(isWait(round.received(Self.answer(3, .deny))))
        guard case .sign(let claims, let signers) = round.signerBudgetPassed() else {
            Issue.record("three identical denies were not signed once the budget passed")
            return
        }
        #expect(claims.decision == .deny && signers == [1, 2, 3])
    }

    @Test("the budget passing after the decision changes nothing")
    func budgetAfterDecision() {
        var round = Self.round()
        _ = round.received(Self.answer(1, .allow))
        _ = round.received(Self.answer(2, .allow))
        _ = round.received(Self.answer(3, .allow))
        _ = round.signed([1])
        #expect(isWait(round.signerBudgetPassed()))
        #expect(round.overdueSigners.isEmpty)
    }

    func isWait(_ next: DecisionRound.Next) -> Bool {
        if case .wait = next { return true }
        return false
    }
}
