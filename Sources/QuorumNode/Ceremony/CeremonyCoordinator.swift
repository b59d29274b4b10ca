import QuorumCrypto
import QuorumProtocol

/// What the operator asks for: which nodes, which keys, which parameters.
public struct CeremonyPlan: Sendable {
    /// 16 random bytes.
    public let ceremonyID: [UInt8]
    /// DKG or refresh.
    public let kind: CeremonyKind
    /// k for a DKG; nil for a refresh (the group's stays).
    public let threshold: Int?
    /// Every node, with the identity key the operator read from it over mutual TLS.
    public let participants: [CeremonyParticipant]
    /// Nodes holding keys replace them (DKG).
    public let replaceExisting: Bool
    /// Parameters that break DESIGN.md §4 are accepted.
    public let allowUnsafe: Bool

    /// A plan with a fresh random id.
    public init(
        kind: CeremonyKind, threshold: Int?, participants: [CeremonyParticipant], replaceExisting: Bool = false,
        allowUnsafe: Bool = false, ceremonyID: [UInt8]? = nil
    ) {
        var generator = SystemRandomNumberGenerator()
        self.ceremonyID = ceremonyID ?? (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        self.kind = kind
        self.threshold = threshold
        self.participants = participants.sorted { $0.nodeID < $1.nodeID }
        self.replaceExisting = replaceExisting
        self.allowUnsafe = allowUnsafe
    }

    /// The node ids, ascending.
    public var nodeIDs: [UInt16] { participants.map(\.nodeID) }

    /// The ceremony id in hex.
    public var idHex: String { Hex.encode(ceremonyID) }

    /// The begin message for every node.
    public func begin() throws(WireError) -> CeremonyBegin {
        try CeremonyBegin(
            ceremonyID: ceremonyID, kind: kind, threshold: UInt16(clamping: threshold ?? 0),
            participants: participants, replaceExisting: replaceExisting, allowUnsafe: allowUnsafe)
    }
}

/// Why a ceremony failed: the phase, the node that failed or refused (when one did), the
/// participant at fault (when one can be named), and why. One line.
public struct CeremonyFailure: Error, Sendable, CustomStringConvertible {
    /// One node's failure in a phase.
    public struct NodeProblem: Error, Sendable {
        /// The node that failed, refused or answered wrongly; nil for a problem the operator
        /// found across nodes.
        public let node: UInt16?
        /// The participant at fault, when one is named.
        public let culprit: UInt16?
        /// Why.
        public let reason: String
    }

    /// The phase that failed.
    public let phase: CeremonyPhase
    /// Every problem found in it, by node.
    public let problems: [NodeProblem]
    /// What the abort reached, appended by the runner.
    public var aftermath: String?
    /// The nodes that installed the keys before the failure: a commit that only some confirmed.
    /// Empty for every failure before the commit, which leaves no node with keys.
    public var committed: [UInt16] = []
    /// What the ceremony produced, when every node signed the transcript (so the certificate
    /// exists) but not every node confirmed the commit: the rest can be sent it again.
    public var outcome: CeremonyOutcome?
    /// The success certificate, in that same case.
    public var commit: CeremonyCommit?

    init(_ phase: CeremonyPhase, node: UInt16?, culprit: UInt16? = nil, _ reason: String) {
        self.phase = phase
        self.problems = [NodeProblem(node: node, culprit: culprit, reason: reason)]
    }

    init(_ phase: CeremonyPhase, problems: [NodeProblem]) {
        self.phase = phase
        self.problems = problems
    }

    /// The nodes that failed or refused.
    public var nodes: [UInt16] { problems.compactMap(\.node) }
    /// The participants named as at fault.
    public var culprits: [UInt16] { Array(Set(problems.compactMap(\.culprit))).sorted() }

    /// `failed in round 2: node 3: …; node 4: …`.
    public var description: String {
        let parts = problems.map { problem in
            (problem.node.map { "node \($0): " } ?? "") + problem.reason
        }
        var text = "failed in \(phase): " + parts.joined(separator: "; ")
        if !culprits.isEmpty, problems.count > 1 {
            text += " (at fault: \(culprits.map { "node \($0)" }.joined(separator: ", ")))"
        }
        if let aftermath { text += "; \(aftermath)" }
        return text
    }
}

/// What a successful ceremony produced: public facts only.
public struct CeremonyOutcome: Sendable {
    /// The plan it ran.
    public let plan: CeremonyPlan
    /// k.
    public let threshold: Int
    /// The digest every participant signed.
    public let transcriptDigest: [UInt8]
    /// `group.json`, as every node derived it.
    public let signingGroupFile: [UInt8]
    /// `sealing-group.json`, likewise.
    public let sealingGroupFile: [UInt8]
    /// The signing group key.
    public let signingGroupKey: [UInt8]
    /// The sealing group key.
    public let sealingGroupKey: [UInt8]
    /// Every participant's signature over the transcript.
    public let certificate: [CeremonySignature]
}

/// The operator's side of a ceremony, without I/O: it checks each node's answers as they arrive
/// (signatures under the identity keys in the plan, echoes that agree, one transcript digest that
/// the operator recomputes itself) and makes the next messages. ``CeremonyRunner`` carries them.
public struct CeremonyCoordinator: Sendable {
    /// The plan.
    public let plan: CeremonyPlan
    private var round1: [UInt16: CeremonyRound1] = [:]
    private var round2: [UInt16: CeremonyRound2] = [:]
    private var round3: [UInt16: CeremonyRound3] = [:]
    private var threshold: Int?

    /// A coordinator for `plan`.
    public init(plan: CeremonyPlan) {
        self.plan = plan
        self.threshold = plan.threshold
    }

    private var identityKeys: [UInt16: [UInt8]] {
        Dictionary(uniqueKeysWithValues: plan.participants.map { ($0.nodeID, $0.identityKey) })
    }

    /// Checks node `node`'s round-1 message: its id, this ceremony, its signature, its threshold.
    public mutating func accept(_ message: CeremonyRound1, from node: UInt16) throws(CeremonyFailure) {
        guard message.nodeID == node, message.ceremonyID == plan.ceremonyID else {
            throw CeremonyFailure(.begin, node: node, "answered as node \(message.nodeID) or for another ceremony")
        }
        guard message.isSigned(by: identityKeys[node]!) else {
            throw CeremonyFailure(
                .begin, node: node, culprit: node, "its round-1 message is not signed by its identity key")
        }
        if let threshold, threshold != Int(message.threshold) {
            throw CeremonyFailure(
                .begin, node: node, culprit: node, "made packages for threshold \(message.threshold), not \(threshold)")
        }
        threshold = Int(message.threshold)
        round1[node] = message
    }

    /// Every round-1 message, for every node.
    public func round2Request() throws(CeremonyFailure) -> CeremonyRound2Request {
        do {
            return try CeremonyRound2Request(
                ceremonyID: plan.ceremonyID, round1: plan.nodeIDs.compactMap { round1[$0] })
        } catch {
            throw CeremonyFailure(.round2, node: nil, "cannot build the round-2 request: \(error)")
        }
    }

    /// Checks node `node`'s echo signature and that it sent one share of each key to every other
    /// participant.
    public mutating func accept(_ message: CeremonyRound2, from node: UInt16) throws(CeremonyFailure) {
        guard message.nodeID == node, message.ceremonyID == plan.ceremonyID else {
            throw CeremonyFailure(.round2, node: node, "answered as node \(message.nodeID) or for another ceremony")
        }
        guard message.echo.isSigned(by: identityKeys[node]!, ceremonyID: plan.ceremonyID),
            message.echo.digests.count == plan.participants.count
        else {
            throw CeremonyFailure(.round2, node: node, culprit: node, "its echo is not signed or not complete")
        }
        let slots = Set(message.shares.map { "\($0.recipient)/\($0.purpose.rawValue)" })
        let expected = Set(
            plan.nodeIDs.filter { $0 != node }.flatMap { id in
                CeremonyKeyPurpose.allCases.map { "\(id)/\($0.rawValue)" }
            })
        guard slots == expected, message.shares.count == expected.count else {
            throw CeremonyFailure(
                .round2, node: node, culprit: node, "it did not send exactly one share of each key to every other node")
        }
        round2[node] = message
    }

    /// Fails naming a participant whose round-1 message is not the same in every echo.
    public func checkEchoes() throws(CeremonyFailure) {
        let echoes = plan.nodeIDs.compactMap { round2[$0]?.echo }
        if let (culprit, reason) = CeremonySession.equivocation(ids: plan.nodeIDs, echoes: echoes) {
            throw CeremonyFailure(.round2, node: nil, culprit: culprit, reason)
        }
    }

    /// Every echo, and the shares addressed to `node`.
    public func round3Request(for node: UInt16) throws(CeremonyFailure) -> CeremonyRound3Request {
        do {
            return try CeremonyRound3Request(
                ceremonyID: plan.ceremonyID, echoes: plan.nodeIDs.compactMap { round2[$0]?.echo },
                shares: plan.nodeIDs.flatMap { round2[$0]?.shares ?? [] }.filter { $0.recipient == node })
        } catch {
            throw CeremonyFailure(.round3, node: node, "cannot build the round-3 request: \(error)")
        }
    }

    /// Checks node `node`'s transcript: the groups it derived decode, the digest is the one the
    /// operator computes from the same inputs, the signature is its identity key's, and it agrees
    /// with every node before it.
    public mutating func accept(_ message: CeremonyRound3, from node: UInt16) throws(CeremonyFailure) {
        guard message.nodeID == node, message.ceremonyID == plan.ceremonyID else {
            throw CeremonyFailure(.round3, node: node, "answered as node \(message.nodeID) or for another ceremony")
        }
        let signing: PublicKeyPackage<Ed25519Suite>
        let sealing: PublicKeyPackage<Ed25519Suite>
        do {
            signing = try KeyFiles.decodeGroup(message.signingGroup, as: Ed25519Suite.self, file: "group.json")
            sealing = try KeyFiles.decodeGroup(message.sealingGroup, as: Ed25519Suite.self, file: "sealing-group.json")
        } catch {
            throw CeremonyFailure(.round3, node: node, culprit: node, "its public key packages do not decode: \(error)")
        }
        guard signing.purpose == .signing, sealing.purpose == .sealing,
            signing.identifiers.map(\.value) == plan.nodeIDs, sealing.identifiers.map(\.value) == plan.nodeIDs
        else {
            throw CeremonyFailure(
                .round3, node: node, culprit: node,
                "its public key packages are not for these participants and purposes")
        }
        let digest: [UInt8]
        do {
            digest = try CeremonyTranscript.digest(
                ceremonyID: plan.ceremonyID, kind: plan.kind, threshold: threshold ?? 0,
                participants: plan.participants, round1: plan.nodeIDs.compactMap { round1[$0] },
                signingGroup: signing, sealingGroup: sealing)
        } catch {
            throw CeremonyFailure(.round3, node: node, "cannot compute the transcript digest: \(error)")
        }
        guard digest == message.transcriptDigest else {
            throw CeremonyFailure(
                .round3, node: node, culprit: node,
                "its transcript digest \(CeremonyTranscript.short(message.transcriptDigest)) is not the operator's "
                    + "\(CeremonyTranscript.short(digest)) for the same packages")
        }
        guard
            CeremonyTranscriptSignature.verify(
                message.signature, ceremonyID: plan.ceremonyID, transcriptDigest: digest,
                identityKey: identityKeys[node]!)
        else {
            throw CeremonyFailure(
                .round3, node: node, culprit: node, "its transcript signature does not verify under its identity key")
        }
        if let first = round3.values.first,
            first.transcriptDigest != message.transcriptDigest || first.signingGroup != message.signingGroup
                || first.sealingGroup != message.sealingGroup
        {
            throw CeremonyFailure(
                .round3, node: node,
                "its transcript \(CeremonyTranscript.short(message.transcriptDigest)) differs from node "
                    + "\(first.nodeID)'s \(CeremonyTranscript.short(first.transcriptDigest))")
        }
        round3[node] = message
    }

    /// The success certificate, once every node has answered round three with the same digest.
    public func commit() throws(CeremonyFailure) -> CeremonyCommit {
        let missing = plan.nodeIDs.filter { round3[$0] == nil }
        guard missing.isEmpty, let digest = round3.values.first?.transcriptDigest else {
            throw CeremonyFailure(.commit, node: nil, "no transcript from nodes \(list(missing))")
        }
        do {
            return try CeremonyCommit(
                ceremonyID: plan.ceremonyID, transcriptDigest: digest,
                certificate: try plan.nodeIDs.map { id throws(WireError) in
                    try CeremonySignature(nodeID: id, signature: round3[id]!.signature)
                })
        } catch {
            throw CeremonyFailure(.commit, node: nil, "cannot build the certificate: \(error)")
        }
    }

    /// The outcome, once ``commit()`` can be built.
    public func outcome() throws(CeremonyFailure) -> CeremonyOutcome {
        let commit = try commit()
        let answer = round3[plan.nodeIDs[0]]!
        do {
            let signing = try KeyFiles.decodeGroup(answer.signingGroup, as: Ed25519Suite.self, file: "group.json")
            let sealing = try KeyFiles.decodeGroup(
                answer.sealingGroup, as: Ed25519Suite.self, file: "sealing-group.json")
            return CeremonyOutcome(
                plan: plan, threshold: threshold ?? signing.minSigners, transcriptDigest: commit.transcriptDigest,
                signingGroupFile: answer.signingGroup, sealingGroupFile: answer.sealingGroup,
                signingGroupKey: try signing.verifyingKey.serialized(),
                sealingGroupKey: try sealing.verifyingKey.serialized(), certificate: commit.certificate)
        } catch {
            throw CeremonyFailure(.commit, node: nil, "\(error)")
        }
    }
}
