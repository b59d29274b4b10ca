import Foundation
import Logging
import NIOConcurrencyHelpers
import QuorumCrypto
import QuorumIdentity
import QuorumProtocol

/// Rebuilds a node's lost shares over the network (`quorumctl keygen repair`); operators only.
///
/// A helper answers step 1 with its deltas for the other helpers (keeping its own in memory, for
/// at most ``pendingLifetime``) and step 2 with its sigmas for the lost node, each in a box only
/// the recipient can open. The lost node answers step 3: it opens the sigmas, rebuilds its signing
/// and sealing shares, checks each against its group's verifying share, checks that every helper
/// reports that group key in its heartbeats, and installs them.
///
/// Every node checks the identity keys of the plan against what each peer sent it over mutual
/// TLS, so an operator cannot slip in a key of its own and read a box.
public final class RepairService: NodeFrameHandler, Sendable {
    /// How long a helper keeps its deltas between step 1 and step 2.
    public static let pendingLifetime: Duration = .seconds(120)

    private struct Pending {
        let plan: RepairPlan
        let deltas: [CeremonyKeyPurpose: SecretScalar<Ed25519Suite>]
        let expires: ContinuousClock.Instant
    }

    private let nodeID: UInt16
    private let identity: Ed25519KeyPair
    private let keys: NodeKeyStore
    private let membership: MembershipService
    private let logger: Logger
    private let pending = NIOLockedValueBox<[[UInt8]: Pending]>([:])

    /// A service for node `nodeID`.
    public init(
        nodeID: UInt16, identity: Ed25519KeyPair, keys: NodeKeyStore, membership: MembershipService, logger: Logger
    ) {
        self.nodeID = nodeID
        self.identity = identity
        self.keys = keys
        self.membership = membership
        self.logger = logger
    }

    /// Every repair step comes from an operator.
    public var requestRoles: [UInt16: Set<ClusterRole>] {
        [
            RepairDeltasRequest.type: [.operator], RepairSigmaRequest.type: [.operator],
            RepairInstallRequest.type: [.operator],
        ]
    }

    /// Answers a repair step, or refuses it naming the check that failed.
    public func handle(_ peer: PeerIdentity, _ frame: Frame) async throws -> Frame? {
        guard frame.kind == .request else { return nil }
        // A payload that does not decode throws WireError: the server answers malformed-request.
        let outcome: Result<any WireMessage, RepairRefusal>
        switch frame.messageType {
        case RepairDeltasRequest.type:
            let plan = try frame.decode(RepairDeltasRequest.self).plan
            outcome = Result { () throws(RepairRefusal) in try deltas(plan) }
        case RepairSigmaRequest.type:
            let request = try frame.decode(RepairSigmaRequest.self)
            outcome = Result { () throws(RepairRefusal) in try sigmas(request) }
        default:
            let request = try frame.decode(RepairInstallRequest.self)
            outcome = Result { () throws(RepairRefusal) in try install(request) }
        }
        let answer: any WireMessage
        switch outcome {
        case .success(let message): answer = message
        case .failure(let refusal):
            logger.warning("refused a repair step", metadata: ["operator": "\(peer)", "reason": "\(refusal.reason)"])
            return try Frame.errorResponse(ErrorResponse(.refused, refusal.reason), to: frame)
        }
        return try Frame.response(answer, to: frame)
    }

    // MARK: Steps

    private func deltas(_ plan: RepairPlan) throws(RepairRefusal) -> RepairShares {
        let current = try heldKeys()
        try checkIdentities(plan)
        guard plan.helpers.contains(where: { $0.nodeID == nodeID }) else {
            throw RepairRefusal("node \(nodeID) is not one of the helpers \(plan.helpers.map(\.nodeID))")
        }
        let helpers = try identifiers(plan.helpers.map(\.nodeID))
        let lost = try identifiers([plan.lost.nodeID])[0]
        var own: [CeremonyKeyPurpose: SecretScalar<Ed25519Suite>] = [:]
        var boxes: [SealedShare] = []
        for purpose in CeremonyKeyPurpose.allCases {
            let key = purpose == .signing ? current.signing : current.sealing
            let deltas: [Identifier: SecretScalar<Ed25519Suite>]
            do { deltas = try Repair<Ed25519Suite>.step1(helpers: helpers, key: key, lostParticipant: lost) } catch {
                throw RepairRefusal("step 1 (\(purpose)): \(error)")
            }
            for helper in plan.helpers {
                let delta = deltas[try identifiers([helper.nodeID])[0]]!
                if helper.nodeID == nodeID {
                    own[purpose] = delta
                    continue
                }
                boxes.append(try seal(delta.serialized(), purpose, to: helper, plan: plan, step: "delta"))
            }
        }
        let expires = ContinuousClock.now + Self.pendingLifetime
        pending.withLockedValue { table in
            table = table.filter { $0.value.expires > ContinuousClock.now }
            table[plan.repairID] = Pending(plan: plan, deltas: own, expires: expires)
        }
        logger.notice("repair step 1: deltas made", metadata: ["lost": "node \(plan.lost.nodeID)"])
        return try build { () throws(WireError) in try RepairShares(nodeID: nodeID, shares: boxes) }
    }

    private func sigmas(_ request: RepairSigmaRequest) throws(RepairRefusal) -> RepairShares {
        let plan = request.plan
        let entry = pending.withLockedValue { table -> Pending? in
            defer { table[plan.repairID] = nil }
            return table[plan.repairID]
        }
        guard let entry, entry.expires > ContinuousClock.now else {
            throw RepairRefusal("no step 1 of this repair is pending here (never made, already used, or expired)")
        }
        guard entry.plan == plan else { throw RepairRefusal("the plan differs from the one of step 1") }
        var boxes: [SealedShare] = []
        for purpose in CeremonyKeyPurpose.allCases {
            var deltas = [entry.deltas[purpose]!]
            for helper in plan.helpers where helper.nodeID != nodeID {
                deltas.append(try open(request.shares, purpose, from: helper, plan: plan, step: "delta"))
            }
            let sigma = Repair<Ed25519Suite>.step2(deltas: deltas)
            boxes.append(try seal(sigma.serialized(), purpose, to: plan.lost, plan: plan, step: "sigma"))
        }
        logger.notice("repair step 2: sigmas sealed", metadata: ["lost": "node \(plan.lost.nodeID)"])
        return try build { () throws(WireError) in try RepairShares(nodeID: nodeID, shares: boxes) }
    }

    private func install(_ request: RepairInstallRequest) throws(RepairRefusal) -> KeyImportResponse {
        let plan = request.plan
        guard plan.lost.nodeID == nodeID else {
            throw RepairRefusal("the plan repairs node \(plan.lost.nodeID); this is node \(nodeID)")
        }
        if let current = keys.current {
            throw RepairRefusal(
                "node \(nodeID) holds keys for group \(Hex.encode(current.groupKeyBytes)); repair only a node that "
                    + "has lost them")
        }
        try checkIdentities(plan)
        let signingGroup: PublicKeyPackage<Ed25519Suite>
        let sealingGroup: PublicKeyPackage<Ed25519Suite>
        do {
            signingGroup = try KeyFiles.decodeGroup(request.signingGroup, as: Ed25519Suite.self, file: "group.json")
            sealingGroup = try KeyFiles.decodeGroup(
                request.sealingGroup, as: Ed25519Suite.self, file: "sealing-group.json")
        } catch {
            throw RepairRefusal("\(error)")
        }
        let groupKey = (try? signingGroup.verifyingKey.serialized()) ?? []
        let view = membership.membership
        for helper in plan.helpers where view.peers[helper.nodeID]?.groupKey != groupKey {
            throw RepairRefusal(
                "helper node \(helper.nodeID) does not report group key \(Hex.encode(groupKey)) in its heartbeats; "
                    + "the group files do not match the cluster's")
        }
        let me = try identifiers([nodeID])[0]
        var rebuilt: [CeremonyKeyPurpose: KeyPackage<Ed25519Suite>] = [:]
        for purpose in CeremonyKeyPurpose.allCases {
            var sigmas: [SecretScalar<Ed25519Suite>] = []
            for helper in plan.helpers {
                sigmas.append(try open(request.shares, purpose, from: helper, plan: plan, step: "sigma"))
            }
            do {
                rebuilt[purpose] = try Repair<Ed25519Suite>.step3(
                    sigmas: sigmas, identifier: me, group: purpose == .signing ? signingGroup : sealingGroup)
            } catch {
                throw RepairRefusal("the rebuilt \(purpose) share: \(error)")
            }
        }
        let repaired: NodeKeys
        do {
            repaired = try NodeKeys(
                signing: rebuilt[.signing]!, sealing: rebuilt[.sealing]!, signingGroup: signingGroup,
                sealingGroup: sealingGroup)
            try keys.install(repaired)
        } catch {
            throw RepairRefusal("\(error)")
        }
        logger.notice(
            "repaired key shares installed",
            metadata: ["group_key": "\(Hex.encode(groupKey))", "helpers": "\(plan.helpers.map(\.nodeID))"])
        return try build { () throws(WireError) in try KeyImportResponse(nodeID: nodeID, groupKey: groupKey) }
    }

    // MARK: Checks and boxes

    private func heldKeys() throws(RepairRefusal) -> NodeKeys {
        guard let current = keys.current else {
            throw RepairRefusal("node \(nodeID) holds no keys and cannot help; pick helpers that do")
        }
        return current
    }

    /// Every identity key in the plan must be the one its node sent this node over mutual TLS.
    private func checkIdentities(_ plan: RepairPlan) throws(RepairRefusal) {
        let view = membership.membership
        for participant in plan.helpers + [plan.lost] {
            let known = participant.nodeID == nodeID ? identity.publicKey : view.peers[participant.nodeID]?.identityKey
            guard let known else {
                throw RepairRefusal("node \(nodeID) has not heard node \(participant.nodeID)'s identity key; is it up?")
            }
            guard known == participant.identityKey else {
                throw RepairRefusal(
                    "the identity key given for node \(participant.nodeID) is not the one it sent node \(nodeID)")
            }
        }
    }

    private func identifiers(_ ids: [UInt16]) throws(RepairRefusal) -> [Identifier] {
        var out: [Identifier] = []
        for id in ids {
            do { out.append(try Identifier(id)) } catch { throw RepairRefusal("\(error)") }
        }
        return out
    }

    private func seal(
        _ secret: SecretBytes, _ purpose: CeremonyKeyPurpose, to recipient: CeremonyParticipant, plan: RepairPlan,
        step: String
    ) throws(RepairRefusal) -> SealedShare {
        let context = plan.context(purpose: purpose, sender: nodeID, recipient: recipient.nodeID, step: step)
        do {
            let box = try IdentityBox.seal(secret, context: context, from: identity, to: recipient.identityKey)
            return try SealedShare(sender: nodeID, recipient: recipient.nodeID, purpose: purpose, box: box)
        } catch {
            throw RepairRefusal("cannot seal the \(purpose) \(step) for node \(recipient.nodeID): \(error)")
        }
    }

    /// Opens the one box of `shares` from `sender` to this node for `purpose`.
    private func open(
        _ shares: [SealedShare], _ purpose: CeremonyKeyPurpose, from sender: CeremonyParticipant, plan: RepairPlan,
        step: String
    ) throws(RepairRefusal) -> SecretScalar<Ed25519Suite> {
        let matching = shares.filter { $0.sender == sender.nodeID && $0.recipient == nodeID && $0.purpose == purpose }
        guard matching.count == 1 else {
            throw RepairRefusal(
                "expected one \(purpose) \(step) box from node \(sender.nodeID), got \(matching.count)")
        }
        let secret: SecretBytes
        do {
            secret = try IdentityBox.open(
                matching[0].box, context: plan.context(matching[0], step: step), from: sender.identityKey, to: identity)
        } catch {
            throw RepairRefusal("the \(purpose) \(step) box from node \(sender.nodeID): \(error)")
        }
        guard let scalar = SecretScalar<Ed25519Suite>.deserialize(secret.copyBytes()) else {
            throw RepairRefusal("the \(purpose) \(step) from node \(sender.nodeID) is not a scalar")
        }
        return scalar
    }

    private func build<T>(_ body: () throws(WireError) -> T) throws(RepairRefusal) -> T {
        do { return try body() } catch { throw RepairRefusal("cannot encode the answer: \(error)") }
    }
}

/// Why a node refused a repair step.
struct RepairRefusal: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}
