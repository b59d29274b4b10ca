import QuorumCrypto
import QuorumPolicy
import QuorumProtocol

/// The proxy's decision on one agent call, as a plain value (STYLE.md 2): it takes what the nodes
/// answered and says what to do next, and does no I/O, no crypto and reads no clock.
///
/// The shell (``QuorumAuthorizer``) sends the decide request to all n nodes, checks each answer's
/// verdict signature and FROST share, and feeds the results in; the round says: wait, aggregate
/// the optimistic signers' shares, sign again with other nodes that reached the same decision, or
/// finish (allow, deny, unavailable). The rules (docs/architecture.md, "A call"):
///
/// - **allow** needs k allows whose claims (apart from the signer set) are identical, and a group
///   signature over those claims by k of them: the optimistic signers' shares when all k of them
///   are among those nodes with a verified share, otherwise one sign request round (at most
///   ``maximumSignRounds``) with k nodes of that decision, never a node that failed one before;
/// - **deny** when no k identical allows can come any more and at least k nodes answered; the deny
///   receipt is signed the same way when k nodes denied with identical claims, and is absent
///   otherwise;
/// - **unavailable** when fewer than k answered (every node answered or failed, or the deadline
///   passed), or an allow could not be signed: nothing is ever allowed on less.
///
/// A chosen signer that hangs does not hold the call to its deadline: once the per-signer budget
/// passes (the shell says so with ``signerBudgetPassed()``), optimistic signers that have not
/// answered are no longer waited for, and k nodes that did reach the decision sign it in a sign
/// request round instead.
public struct DecisionRound: Sendable {
    /// One node's checked answer: its verdict (whose signature under the node's identity key the
    /// shell verified), the claims it stands for, and its shares, each already verified.
    public struct Answer: Sendable {
        /// The node.
        public let node: UInt16
        /// Its verdict.
        public let verdict: Verdict
        /// The claims its verdict stands for, with the optimistic signer set as `signers`.
        public let claims: ReceiptClaims
        /// Its FROST share over ``claims``' signing input, verified against its verifying share;
        /// `nil` when it is not an optimistic signer, sent none, or sent one that did not verify.
        public let share: SignatureShare<Ed25519Suite>?
        /// Its decryption share of the route's sealed credential, proof verified; `nil` without one.
        public let decryptionShare: DecryptionShare<Ed25519Suite>?

        /// An answer.
        public init(
            node: UInt16, verdict: Verdict, claims: ReceiptClaims, share: SignatureShare<Ed25519Suite>?,
            decryptionShare: DecryptionShare<Ed25519Suite>?
        ) {
            self.node = node
            self.verdict = verdict
            self.claims = claims
            self.share = share
            self.decryptionShare = decryptionShare
        }
    }

    /// What the shell does next.
    public enum Next: Sendable {
        /// Nothing yet: wait for more answers (or the deadline).
        case wait
        /// The optimistic signers all reached `claims` and sent verified shares: aggregate them,
        /// verify the group signature, then call ``DecisionRound/signed(_:)``.
        case aggregate(claims: ReceiptClaims, shares: [SignatureShare<Ed25519Suite>])
        /// Ask `signers` (each reached the decision `claims` stands for) to sign `claims` with
        /// `signers` as its signer set, then call ``DecisionRound/signed(_:)`` or
        /// ``DecisionRound/signingFailed(nodes:)``.
        case sign(claims: ReceiptClaims, signers: [UInt16])
        /// The decision is made.
        case finish(Outcome)
    }

    /// How the call ends.
    public enum Outcome: Sendable {
        /// k nodes allowed `claims` (the signers of `signature`); `verdicts` are theirs, and
        /// `decryptionShares` are every verified decryption share those nodes sent.
        case allow(
            claims: ReceiptClaims, signature: [UInt8], verdicts: [Verdict],
            decryptionShares: [DecryptionShare<Ed25519Suite>])
        /// Fewer than k allowed: each answering node's reason, and the signed deny claims when k
        /// nodes signed identical deny claims.
        case deny(reasons: [NodeReason], receipt: (claims: ReceiptClaims, signature: [UInt8])?)
        /// No decision: fewer than k answers, or an allow that could not be signed in time.
        case unavailable(reason: String)

        /// The claims of the receipt this outcome makes, if it makes one.
        public var receiptClaims: ReceiptClaims? {
            switch self {
            case .allow(let claims, _, _, _): claims
            case .deny(_, let receipt): receipt?.claims
            case .unavailable: nil
            }
        }
    }

    /// How many sign request rounds a decision may take after the optimistic one.
    public static let maximumSignRounds = 2

    /// The threshold k.
    public let threshold: Int
    /// Every node asked.
    public let nodes: [UInt16]
    /// The optimistic signer set named in the decide request, ascending.
    public let optimisticSigners: [UInt16]

    private var answers: [UInt16: Answer] = [:]
    private var failures: [UInt16: String] = [:]
    private var signingFailures: Set<UInt16> = []
    private var overdue: Set<UInt16> = []
    private var signRounds = 0
    private var pending: (decision: ReceiptClaims.Decision, claims: ReceiptClaims)?
    private var finished = false
    /// The signers of the signature that finished the round, if one did.
    private var finalSigners: Set<UInt16> = []

    /// A round for a decide request sent to `nodes` naming `optimisticSigners`.
    public init(threshold: Int, nodes: [UInt16], optimisticSigners: [UInt16]) {
        self.threshold = threshold
        self.nodes = nodes.sorted()
        self.optimisticSigners = optimisticSigners.sorted()
    }

    /// Node `answer.node` answered.
    public mutating func received(_ answer: Answer) -> Next {
        guard !finished, answers[answer.node] == nil, failures[answer.node] == nil else { return .wait }
        answers[answer.node] = answer
        return next()
    }

    /// Node `node` gave no usable answer (unreachable, refused, a verdict whose signature does
    /// not verify): it counts as not answering.
    public mutating func failed(_ node: UInt16, reason: String) -> Next {
        guard !finished, answers[node] == nil, failures[node] == nil else { return .wait }
        failures[node] = reason
        return next()
    }

    /// The signature the last ``Next/aggregate(claims:shares:)`` or ``Next/sign(claims:signers:)``
    /// asked for, verified by the shell under the group key.
    public mutating func signed(_ signature: [UInt8]) -> Next {
        guard !finished, let signing = pending else { return .wait }
        let (decision, claims) = (signing.decision, signing.claims)
        pending = nil
        finished = true
        finalSigners = Set(claims.signers.map { UInt16(clamping: $0) })
        switch decision {
        case .allow:
            let members = claims.signers.compactMap { answers[UInt16($0)] }
            let everyAllow = answers.values.filter {
                $0.verdict.decision == .allow && Self.sameDecision($0.claims, claims)
            }
            return .finish(
                .allow(
                    claims: claims, signature: signature, verdicts: members.map(\.verdict),
                    decryptionShares: everyAllow.sorted { $0.node < $1.node }.compactMap(\.decryptionShare)))
        case .deny:
            return .finish(.deny(reasons: reasons, receipt: (claims, signature)))
        }
    }

    /// The signing the last step asked for failed; `nodes` are the signers at fault, if known
    /// (they are not asked again for this call).
    public mutating func signingFailed(nodes: [UInt16]) -> Next {
        guard !finished, pending != nil else { return .wait }
        pending = nil
        signingFailures.formUnion(nodes)
        return next()
    }

    /// The per-signer budget passed: the optimistic signers that have neither answered nor failed
    /// yet are not waited for any more. They still count if they answer later (as any node that
    /// allowed, they may then sign in a sign request round), but k nodes that reached the same
    /// decision without them sign it now.
    public mutating func signerBudgetPassed() -> Next {
        guard !finished else { return .wait }
        overdue.formUnion(optimisticSigners.filter { answers[$0] == nil && failures[$0] == nil })
        return next()
    }

    /// The optimistic signers given up on when the per-signer budget passed, ascending.
    public var overdueSigners: [UInt16] { overdue.sorted() }

    /// The chosen signers the call went on without, ascending: optimistic signers that failed,
    /// were given up on when the per-signer budget passed, or answered without a share, and every
    /// signer named at fault by ``signingFailed(nodes:)``; less those that signed the decision
    /// after all. An optimistic signer that decided otherwise than the others is not among them:
    /// it disagreed, it did not miss.
    public var missedSigners: [UInt16] {
        var missed = overdue.union(signingFailures)
        for node in optimisticSigners {
            if failures[node] != nil || answers[node].map({ $0.share == nil }) == true { missed.insert(node) }
        }
        return missed.subtracting(finalSigners).sorted()
    }

    /// The call's deadline passed: decide with what there is.
    public mutating func deadlinePassed() -> Next {
        guard !finished else { return .wait }
        finished = true
        if answers.count >= threshold, largestClass(of: .allow).count < threshold || pending?.decision == .deny {
            return .finish(.deny(reasons: reasons, receipt: nil))
        }
        if answers.count < threshold {
            return .finish(.unavailable(reason: unavailableReason("by the deadline")))
        }
        return .finish(
            .unavailable(
                reason:
                    "\(largestClass(of: .allow).count) nodes allowed, but no threshold signature came by the deadline"))
    }

    /// Every answering node's decision and reason, by node id.
    public var reasons: [NodeReason] {
        answers.values.sorted { $0.node < $1.node }.map {
            NodeReason(node: Int($0.node), decision: $0.verdict.decision.rawValue, reason: $0.verdict.reason ?? "")
        }
    }

    /// The nodes whose verdict is an allow so far.
    public var allowingNodes: [UInt16] {
        answers.values.filter { $0.verdict.decision == .allow }.map(\.node).sorted()
    }

    /// The nodes that neither answered nor failed yet.
    public var unsettledNodes: [UInt16] {
        nodes.filter { answers[$0] == nil && failures[$0] == nil }
    }

    // MARK: - Rules

    /// Whether two claims stand for the same decision: equal in everything but the signer set.
    static func sameDecision(_ a: ReceiptClaims, _ b: ReceiptClaims) -> Bool {
        var a = a
        a.signers = b.signers
        return a == b
    }

    /// The largest set of answers with `decision` and identical claims, ascending by node.
    private func largestClass(of decision: Verdict.Decision) -> [Answer] {
        var classes: [[Answer]] = []
        for answer in answers.values.sorted(by: { $0.node < $1.node }) where answer.verdict.decision == decision {
            if let index = classes.firstIndex(where: { Self.sameDecision($0[0].claims, answer.claims) }) {
                classes[index].append(answer)
            } else {
                classes.append([answer])
            }
        }
        return classes.max { $0.count < $1.count } ?? []
    }

    private func unavailableReason(_ when: String) -> String {
        let failed = failures.sorted { $0.key < $1.key }.map { "node \($0.key): \($0.value)" }
        return "\(answers.count) of \(nodes.count) nodes answered \(when); the threshold is \(threshold)"
            + (failed.isEmpty ? "" : " (" + failed.joined(separator: "; ") + ")")
    }

    private mutating func next() -> Next {
        guard pending == nil else { return .wait }
        let unsettled = unsettledNodes.count
        let allows = largestClass(of: .allow)
        if allows.count >= threshold { return sign(allows, decision: .allow) }
        // Can k identical allows still come? Only if the largest class plus every unsettled node reach k.
        if allows.count + unsettled >= threshold { return .wait }
        guard answers.count >= threshold else {
            if answers.count + unsettled >= threshold { return .wait }
            finished = true
            return .finish(.unavailable(reason: unavailableReason("")))
        }
        let denies = largestClass(of: .deny)
        if denies.count >= threshold { return sign(denies, decision: .deny) }
        if denies.count + unsettled >= threshold { return .wait }
        finished = true
        return .finish(.deny(reasons: reasons, receipt: nil))
    }

    /// The signing step for a class of at least k answers with identical claims.
    private mutating func sign(_ members: [Answer], decision: ReceiptClaims.Decision) -> Next {
        let memberIDs = Set(members.map(\.node))
        let claims = members[0].claims
        let optimistic = optimisticSigners.compactMap { answers[$0] }
        if signRounds == 0, optimistic.count == optimisticSigners.count, optimisticSigners.count >= threshold,
            optimistic.allSatisfy({ memberIDs.contains($0.node) && $0.share != nil }),
            optimisticSigners.allSatisfy({ !signingFailures.contains($0) })
        {
            signRounds += 1
            pending = (decision, Self.withSigners(claims, optimisticSigners))
            return .aggregate(claims: Self.withSigners(claims, optimisticSigners), shares: optimistic.map { $0.share! })
        }
        // An optimistic signer that has not answered yet may still complete the optimistic set,
        // unless the per-signer budget passed without its answer.
        if signRounds == 0,
            optimisticSigners.contains(where: { answers[$0] == nil && failures[$0] == nil && !overdue.contains($0) })
        {
            return .wait
        }
        if signRounds == 0 { signRounds = 1 }
        let candidates = members.map(\.node).filter { !signingFailures.contains($0) }
        // Too few signers left among those that answered, but nodes yet to answer may join them.
        if candidates.count < threshold, candidates.count + unsettledNodes.count >= threshold,
            signRounds <= Self.maximumSignRounds
        {
            return .wait
        }
        guard candidates.count >= threshold, signRounds <= Self.maximumSignRounds else {
            finished = true
            if decision == .deny { return .finish(.deny(reasons: reasons, receipt: nil)) }
            return .finish(
                .unavailable(
                    reason:
                        "\(members.count) nodes allowed, but \(signingFailures.count) of them failed to sign; "
                        + "fewer than \(threshold) signers are left"))
        }
        signRounds += 1
        let signers = Array(candidates.prefix(threshold))
        let signed = Self.withSigners(claims, signers)
        pending = (decision, signed)
        return .sign(claims: signed, signers: signers)
    }

    static func withSigners(_ claims: ReceiptClaims, _ signers: [UInt16]) -> ReceiptClaims {
        var claims = claims
        claims.signers = signers.sorted().map(Int.init)
        return claims
    }
}
