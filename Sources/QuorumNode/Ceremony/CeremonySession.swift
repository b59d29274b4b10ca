import QuorumCrypto
import QuorumProtocol

/// Why a node refuses a ceremony step: the phase, the participant at fault when one can be
/// named, and a one-line reason that never contains a secret.
public struct CeremonyRefusalReason: Error, Sendable, CustomStringConvertible {
    /// The step refused.
    public let phase: CeremonyPhase
    /// The participant whose message or behaviour is at fault.
    public let culprit: UInt16?
    /// Why.
    public let reason: String

    init(_ phase: CeremonyPhase, culprit: UInt16? = nil, _ reason: String) {
        self.phase = phase
        self.culprit = culprit
        self.reason = reason
    }

    /// `round 3: participant 2 …`.
    public var description: String { "\(phase): \(reason)" }
}

/// One node's side of one ceremony, without I/O or clocks (DESIGN.md §8, the `SWIM.Instance`
/// split): ``begin(_:nodeID:identity:peerIdentityKeys:current:)`` checks the participant list and
/// makes the round-1 message, ``round2(_:identity:)`` checks every signed round-1 message and
/// seals this node's shares, ``round3(_:identity:)`` checks the echoes, opens the shares and
/// derives the keys and the transcript digest. The shell (``CeremonyService``) stages what round
/// three returns and installs it only on a valid success certificate.
///
/// The DKG secrets (`Round1Secret`, `Round2Secret`) live only in this value, in memory; they are
/// dropped (and their scalars zeroed) when a round moves past them or the session is discarded.
public struct CeremonySession: Sendable, CustomStringConvertible {
    /// The ceremony's id.
    public let ceremonyID: [UInt8]
    /// DKG or refresh.
    public let kind: CeremonyKind
    /// This node.
    public let nodeID: UInt16
    /// k.
    public let threshold: Int
    /// Every participant with its identity key, ascending.
    public let participants: [CeremonyParticipant]

    enum State: Sendable {
        case round1(signing: NodeDKG.Round1Secret, sealing: NodeDKG.Round1Secret, sent: CeremonyRound1)
        case round2(signing: NodeDKG.Round2Secret, sealing: NodeDKG.Round2Secret, round1: [CeremonyRound1])
        case finished
    }

    private var state: State

    /// What round three produces: the keys to stage, the record to keep, the answer to send.
    public struct Staged: Sendable, CustomStringConvertible {
        /// The new keys; not to be used before a valid success certificate.
        public let keys: NodeKeys
        /// The transcript digest every participant must sign.
        public let transcriptDigest: [UInt8]
        /// The answer to the operator.
        public let response: CeremonyRound3

        /// The transcript digest; the keys print as `<redacted>`.
        public var description: String { "Staged(transcript: \(Hex.encode(transcriptDigest)), keys: <redacted>)" }
    }

    /// The ceremony and this node, never the secrets it holds.
    public var description: String {
        "CeremonySession(\(Hex.encode(ceremonyID)), \(kind), node \(nodeID), \(threshold)-of-\(participants.count), <redacted>)"
    }

    private var identityKeys: [UInt16: [UInt8]] {
        Dictionary(uniqueKeysWithValues: participants.map { ($0.nodeID, $0.identityKey) })
    }

    // MARK: Begin

    /// Checks `message` and makes this node's round-1 message.
    ///
    /// - Parameters:
    ///   - peerIdentityKeys: every configured peer, with the identity key its heartbeats carried
    ///     (nil if none has arrived yet).
    ///   - current: the keys the node holds.
    /// - Throws: ``CeremonyRefusalReason`` naming the participant whose identity key does not
    ///   match, or saying which parameter is wrong.
    public static func begin(
        _ message: CeremonyBegin, nodeID: UInt16, identity: Ed25519KeyPair, peerIdentityKeys: [UInt16: [UInt8]?],
        current: NodeKeys?
    ) throws(CeremonyRefusalReason) -> (CeremonySession, CeremonyRound1) {
        let ids = message.participants.map(\.nodeID)
        guard ids.contains(nodeID) else {
            throw CeremonyRefusalReason(.begin, "node \(nodeID) is not among the participants \(list(ids))")
        }
        for participant in message.participants {
            let id = participant.nodeID
            if id == nodeID {
                guard participant.identityKey == identity.publicKey else {
                    throw CeremonyRefusalReason(
                        .begin, culprit: id,
                        "the identity key listed for node \(id) (this node) is \(CeremonyTranscript.short(participant.identityKey)), "
                            + "not this node's \(CeremonyTranscript.short(identity.publicKey))")
                }
                continue
            }
            guard let heard = peerIdentityKeys[id] else {
                throw CeremonyRefusalReason(
                    .begin, culprit: id, "node \(id) is not a configured peer of node \(nodeID)")
            }
            guard let heard else {
                throw CeremonyRefusalReason(
                    .begin, culprit: id,
                    "node \(nodeID) has not yet heard node \(id)'s identity key in a heartbeat; wait until it is up")
            }
            guard heard == participant.identityKey else {
                throw CeremonyRefusalReason(
                    .begin, culprit: id,
                    "the identity key listed for node \(id) (\(CeremonyTranscript.short(participant.identityKey))) is not "
                        + "the one node \(id) sends in heartbeats (\(CeremonyTranscript.short(heard)))")
            }
        }
        let identifier: Identifier
        do { identifier = try Identifier(nodeID) } catch {
            throw CeremonyRefusalReason(.begin, "node id \(nodeID): \(error.reason)")
        }
        let n = ids.count
        let threshold: Int
        switch message.kind {
        case .dkg:
            threshold = Int(message.threshold)
            let parameters: ThresholdParameters
            do { parameters = try ThresholdParameters(threshold: threshold, participants: n) } catch {
                throw CeremonyRefusalReason(.begin, "\(threshold)-of-\(n): \(error.reason)")
            }
            if (parameters.toleratedFaults ?? 0) < 1, !message.allowUnsafe {
                throw CeremonyRefusalReason(
                    .begin,
                    "\(parameters) tolerates no faulty node (DESIGN.md §4) and the operator did not allow unsafe parameters"
                )
            }
            if let current, !message.replaceExisting {
                throw CeremonyRefusalReason(
                    .begin,
                    "node \(nodeID) already holds keys for group \(Hex.encode(current.groupKeyBytes)) and the operator "
                        + "did not ask to replace them")
            }
        case .refresh:
            guard let current else { throw CeremonyRefusalReason(.begin, "node \(nodeID) holds no keys to refresh") }
            threshold = current.signing.minSigners
            for group in [current.signingGroup, current.sealingGroup] {
                let members = group.identifiers.map(\.value)
                guard members == ids else {
                    throw CeremonyRefusalReason(
                        .begin,
                        "the \(group.purpose.rawValue) group's members are \(list(members)), the participants "
                            + "\(list(ids)); a refresh runs over exactly the group's members")
                }
            }
        }
        let signingRound1: (NodeDKG.Round1Secret, NodeDKG.Round1Package)
        let sealingRound1: (NodeDKG.Round1Secret, NodeDKG.Round1Package)
        do {
            if message.kind == .refresh, let current {
                signingRound1 = try NodeDKG.refreshPart1(
                    key: current.signing, group: current.signingGroup, participants: n)
                sealingRound1 = try NodeDKG.refreshPart1(
                    key: current.sealing, group: current.sealingGroup, participants: n)
            } else {
                signingRound1 = try NodeDKG.part1(
                    identifier: identifier, maxSigners: n, minSigners: threshold, purpose: .signing)
                sealingRound1 = try NodeDKG.part1(
                    identifier: identifier, maxSigners: n, minSigners: threshold, purpose: .sealing)
            }
        } catch {
            throw CeremonyRefusalReason(.begin, "cannot make the round-1 packages: \(error.reason)")
        }
        let made = (signing: signingRound1, sealing: sealingRound1)
        let sent: CeremonyRound1
        do {
            sent = try CeremonyRound1(
                ceremonyID: message.ceremonyID, nodeID: nodeID, threshold: UInt16(threshold),
                signingPackage: try made.signing.1.encoded(), sealingPackage: try made.sealing.1.encoded(),
                signedBy: identity)
        } catch {
            throw CeremonyRefusalReason(.begin, "cannot encode the round-1 message: \(error)")
        }
        let session = CeremonySession(
            ceremonyID: message.ceremonyID, kind: message.kind, nodeID: nodeID, threshold: threshold,
            participants: message.participants,
            state: .round1(signing: made.signing.0, sealing: made.sealing.0, sent: sent))
        return (session, sent)
    }

    /// Whether round two may come next.
    public var awaitsRound2: Bool { if case .round1 = state { true } else { false } }
    /// Whether round three may come next.
    public var awaitsRound3: Bool { if case .round2 = state { true } else { false } }

    // MARK: Round two

    /// Checks every participant's signed round-1 message (signature under its listed identity
    /// key, threshold, proofs of knowledge) and answers with the echo and the sealed shares.
    public mutating func round2(
        _ message: CeremonyRound2Request, identity: Ed25519KeyPair
    ) throws(CeremonyRefusalReason) -> CeremonyRound2 {
        guard case .round1(let signingSecret, let sealingSecret, let sent) = state else {
            throw CeremonyRefusalReason(.round2, "round 2 is not expected now")
        }
        state = .finished
        let keys = identityKeys
        let ids = participants.map(\.nodeID)
        guard message.round1.map(\.nodeID) == ids else {
            throw CeremonyRefusalReason(
                .round2,
                "round-1 messages from \(list(message.round1.map(\.nodeID))); expected one from each of \(list(ids))")
        }
        var signing: [Identifier: NodeDKG.Round1Package] = [:]
        var sealing: [Identifier: NodeDKG.Round1Package] = [:]
        for received in message.round1 {
            let id = received.nodeID
            guard received.ceremonyID == ceremonyID else {
                throw CeremonyRefusalReason(
                    .round2, culprit: id, "node \(id)'s round-1 message is for another ceremony")
            }
            guard received.isSigned(by: keys[id]!) else {
                throw CeremonyRefusalReason(
                    .round2, culprit: id, "node \(id)'s round-1 message is not signed by its identity key")
            }
            if id == nodeID {
                guard received == sent else {
                    throw CeremonyRefusalReason(
                        .round2, culprit: id, "the round-1 message under this node's id is not the one it sent")
                }
                continue
            }
            guard Int(received.threshold) == threshold else {
                throw CeremonyRefusalReason(
                    .round2, culprit: id,
                    "node \(id) made packages for threshold \(received.threshold), not \(threshold)")
            }
            do {
                let identifier = try Identifier(id)
                signing[identifier] = try NodeDKG.Round1Package(encoded: received.signingPackage, from: identifier)
                sealing[identifier] = try NodeDKG.Round1Package(encoded: received.sealingPackage, from: identifier)
            } catch {
                throw CeremonyRefusalReason(.round2, culprit: id, "node \(id)'s round-1 package: \(error.reason)")
            }
        }
        let signingRound: (NodeDKG.Round2Secret, [Identifier: NodeDKG.Round2Package])
        let sealingRound: (NodeDKG.Round2Secret, [Identifier: NodeDKG.Round2Package])
        do {
            signingRound = try NodeDKG.part2(secret: signingSecret, round1Packages: signing)
            sealingRound = try NodeDKG.part2(secret: sealingSecret, round1Packages: sealing)
        } catch {
            throw CeremonyRefusalReason(.round2, culprit: error.culprits.first.map(\.value), error.reason)
        }
        var shares: [SealedShare] = []
        do {
            for recipient in ids where recipient != nodeID {
                let identifier = try Identifier(recipient)
                for (purpose, outgoing) in [
                    (CeremonyKeyPurpose.signing, signingRound.1), (CeremonyKeyPurpose.sealing, sealingRound.1),
                ] {
                    let box = try IdentityBox.seal(
                        outgoing[identifier]!.signingShare.serialized(),
                        context: SealedShare.context(
                            ceremonyID: ceremonyID, purpose: purpose, sender: nodeID, recipient: recipient),
                        from: identity, to: keys[recipient]!)
                    shares.append(try SealedShare(sender: nodeID, recipient: recipient, purpose: purpose, box: box))
                }
            }
        } catch {
            throw CeremonyRefusalReason(.round2, "cannot seal the round-2 shares: \(error)")
        }
        let answer: CeremonyRound2
        do {
            let echo = try CeremonyEcho(
                ceremonyID: ceremonyID, nodeID: nodeID, digests: message.round1.map(\.digest), signedBy: identity)
            answer = try CeremonyRound2(ceremonyID: ceremonyID, echo: echo, shares: shares)
        } catch {
            throw CeremonyRefusalReason(.round2, "cannot encode the round-2 answer: \(error)")
        }
        state = .round2(signing: signingRound.0, sealing: sealingRound.0, round1: message.round1)
        return answer
    }

    // MARK: Round three

    /// Checks that every participant echoed the same round-1 messages (naming a participant whose
    /// messages differ between nodes), opens this node's shares, finishes both DKG runs and
    /// computes the transcript digest, signed.
    public mutating func round3(
        _ message: CeremonyRound3Request, identity: Ed25519KeyPair
    ) throws(CeremonyRefusalReason) -> Staged {
        guard case .round2(let signingSecret, let sealingSecret, let round1) = state else {
            throw CeremonyRefusalReason(.round3, "round 3 is not expected now")
        }
        state = .finished
        let keys = identityKeys
        let ids = participants.map(\.nodeID)
        guard message.echoes.map(\.nodeID) == ids else {
            throw CeremonyRefusalReason(
                .round3, "echoes from \(list(message.echoes.map(\.nodeID))); expected one from each of \(list(ids))")
        }
        for echo in message.echoes {
            guard echo.isSigned(by: keys[echo.nodeID]!, ceremonyID: ceremonyID) else {
                throw CeremonyRefusalReason(
                    .round3, culprit: echo.nodeID, "node \(echo.nodeID)'s echo is not signed by its identity key")
            }
            guard echo.digests.count == ids.count else {
                throw CeremonyRefusalReason(
                    .round3, culprit: echo.nodeID,
                    "node \(echo.nodeID) echoed \(echo.digests.count) digests for \(ids.count) participants")
            }
        }
        if let (culprit, reason) = Self.equivocation(ids: ids, echoes: message.echoes) {
            throw CeremonyRefusalReason(.round3, culprit: culprit, reason)
        }
        let own = round1.map(\.digest)
        guard let mine = message.echoes.first(where: { $0.nodeID == nodeID }), mine.digests == own else {
            throw CeremonyRefusalReason(
                .round3, culprit: nodeID, "the echo under this node's id is not the one it sent")
        }

        var received: [CeremonyKeyPurpose: [Identifier: NodeDKG.Round2Package]] = [.signing: [:], .sealing: [:]]
        for share in message.shares {
            guard share.recipient == nodeID else {
                throw CeremonyRefusalReason(
                    .round3, "a share for node \(share.recipient) was sent to node \(nodeID)")
            }
            guard let senderKey = keys[share.sender], share.sender != nodeID else {
                throw CeremonyRefusalReason(.round3, "a share from node \(share.sender), who is not a participant")
            }
            guard let sender = try? Identifier(share.sender), received[share.purpose]![sender] == nil else {
                throw CeremonyRefusalReason(
                    .round3, culprit: share.sender, "two \(share.purpose) shares from node \(share.sender)")
            }
            let opened: SecretBytes
            do {
                opened = try IdentityBox.open(
                    share.box, context: share.context(ceremonyID: ceremonyID), from: senderKey, to: identity)
            } catch {
                throw CeremonyRefusalReason(
                    .round3, culprit: share.sender, "node \(share.sender)'s \(share.purpose) share: \(error.reason)")
            }
            guard let scalar = Self.scalar(opened) else {
                throw CeremonyRefusalReason(
                    .round3, culprit: share.sender, "node \(share.sender)'s \(share.purpose) share is not a scalar")
            }
            received[share.purpose]![sender] = NodeDKG.Round2Package(signingShare: scalar)
        }
        for purpose in CeremonyKeyPurpose.allCases {
            for id in ids where id != nodeID {
                guard (try? Identifier(id)).flatMap({ received[purpose]![$0] }) != nil else {
                    throw CeremonyRefusalReason(.round3, culprit: id, "no \(purpose) share from node \(id)")
                }
            }
        }
        let signing: NodeDKG.Result
        let sealing: NodeDKG.Result
        do {
            signing = try NodeDKG.part3(secret: signingSecret, round2Packages: received[.signing]!)
            sealing = try NodeDKG.part3(secret: sealingSecret, round2Packages: received[.sealing]!)
        } catch {
            throw CeremonyRefusalReason(.round3, culprit: error.culprits.first.map(\.value), error.reason)
        }
        let newKeys: NodeKeys
        do {
            newKeys = try NodeKeys(
                signing: signing.keyPackage, sealing: sealing.keyPackage, signingGroup: signing.publicKeyPackage,
                sealingGroup: sealing.publicKeyPackage)
        } catch {
            throw CeremonyRefusalReason(.round3, "the new keys do not belong together: \(error)")
        }
        do {
            let digest = try CeremonyTranscript.digest(
                ceremonyID: ceremonyID, kind: kind, threshold: threshold, participants: participants, round1: round1,
                signingGroup: signing.publicKeyPackage, sealingGroup: sealing.publicKeyPackage)
            let signature = identity.sign(
                CeremonyTranscriptSignature.signedBytes(ceremonyID: ceremonyID, transcriptDigest: digest))
            let response = try CeremonyRound3(
                ceremonyID: ceremonyID, nodeID: nodeID, transcriptDigest: digest,
                signingGroup: try KeyFiles.encodeGroup(signing.publicKeyPackage),
                sealingGroup: try KeyFiles.encodeGroup(sealing.publicKeyPackage), signature: signature)
            return Staged(keys: newKeys, transcriptDigest: digest, response: response)
        } catch {
            throw CeremonyRefusalReason(.round3, "cannot encode the transcript: \(error)")
        }
    }

    /// The first participant whose round-1 digest is not the same in every echo, with a reason
    /// saying which nodes received which; nil when all agree.
    static func equivocation(ids: [UInt16], echoes: [CeremonyEcho]) -> (UInt16, String)? {
        for (index, participant) in ids.enumerated() {
            var seen: [[UInt8]: [UInt16]] = [:]
            for echo in echoes { seen[echo.digests[index], default: []].append(echo.nodeID) }
            guard seen.count > 1 else { continue }
            let views = seen.sorted { $0.value.count > $1.value.count }.map { digest, nodes in
                "\(nodes.count == 1 ? "node" : "nodes") \(list(nodes)) received \(CeremonyTranscript.short(digest))"
            }
            return (
                participant,
                "participant \(participant) sent different round-1 packages to different nodes (equivocation): "
                    + views.joined(separator: "; ")
            )
        }
        return nil
    }

    private static func scalar(_ secret: SecretBytes) -> SecretScalar<Ed25519Suite>? {
        var bytes = secret.copyBytes()
        defer { for index in bytes.indices { bytes[index] = 0 } }
        return SecretScalar<Ed25519Suite>.deserialize(bytes)
    }
}

/// `1, 2, 4`.
func list(_ ids: [UInt16]) -> String { ids.map(String.init).joined(separator: ", ") }
