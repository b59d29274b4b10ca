// Share repair (`quorumctl keygen repair --node R`, docs/protocol.md "Repair messages"): at least
// the threshold of helpers rebuild node R's lost shares (signing and sealing) without any of them
// learning them (QuorumCrypto `Repair`). The operator relays; every secret value travels in a
// ``SealedShare`` box to the one node that may open it, under a repair-specific context.

/// The fields every repair request repeats: which repair, whose shares, and who helps.
///
/// ```
/// repairID  bytes                         16 random bytes
/// lost      CeremonyParticipant           the node whose shares are rebuilt
/// helpers   array of CeremonyParticipant  ascending by nodeID, distinct, not the lost node
/// ```
public struct RepairPlan: WireCodable, Hashable {
    /// The repair's random id.
    public let repairID: [UInt8]
    /// The node whose shares are rebuilt, with its identity key.
    public let lost: CeremonyParticipant
    /// The helpers, ascending.
    public let helpers: [CeremonyParticipant]

    /// A plan.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` for an id that is not 16 bytes, helpers out of
    ///   order or repeated, or the lost node among the helpers.
    public init(repairID: [UInt8], lost: CeremonyParticipant, helpers: [CeremonyParticipant]) throws(WireError) {
        try CeremonyFields.check(Self.problem(repairID, lost, helpers), "RepairPlan", "helpers")
        self.repairID = repairID
        self.lost = lost
        self.helpers = helpers
    }

    static func problem(_ id: [UInt8], _ lost: CeremonyParticipant, _ helpers: [CeremonyParticipant]) -> String? {
        if let problem = CeremonyFields.exactLength(id, CeremonyFields.ceremonyIDLength, "a repair id") {
            return problem
        }
        if helpers.isEmpty { return "no helpers" }
        if let problem = CeremonyFields.ascendingProblem(helpers.map(\.nodeID), what: "helpers") { return problem }
        if helpers.contains(where: { $0.nodeID == lost.nodeID }) {
            return "node \(lost.nodeID) cannot help repair its own shares"
        }
        return nil
    }

    /// The context a repair box is sealed under: this repair, this key, this sender and
    /// recipient, and which step (deltas between helpers, or sigmas to the lost node).
    public func context(_ share: SealedShare, step: String) -> [UInt8] {
        context(purpose: share.purpose, sender: share.sender, recipient: share.recipient, step: step)
    }

    /// See ``context(_:step:)``; for a box not built yet.
    public func context(purpose: CeremonyKeyPurpose, sender: UInt16, recipient: UInt16, step: String) -> [UInt8] {
        CeremonyFields.signedBytes("quorum-latch/repair/\(step)/v1") { writer in
            writer.write(bytes: repairID)
            writer.write(purpose.rawValue)
            writer.write(sender)
            writer.write(recipient)
        }
    }

    /// Writes the fields in order.
    public func encode(into writer: inout WireWriter) {
        writer.write(bytes: repairID)
        writer.write(lost)
        writer.write(array: helpers) { $0.write($1) }
    }

    /// Reads the fields in order.
    public init(from reader: inout WireReader) throws(WireError) {
        repairID = try CeremonyFields.readFixed(&reader, "repairID", CeremonyFields.ceremonyIDLength)
        lost = try reader.read(CeremonyParticipant.self, "lost")
        let start = reader.offset
        helpers = try reader.readArray(
            "helpers", minimumElementLength: CeremonyParticipant.minimumLength,
            maximumCount: CeremonyFields.maximumParticipants
        ) { reader throws(WireError) in try reader.read(CeremonyParticipant.self, "") }
        if let problem = Self.problem(repairID, lost, helpers) {
            throw reader.invalidValue("helpers", at: start, problem)
        }
    }
}

/// Step 1, to each helper (type 50; operator only): split your share's part of the lost share into
/// one delta per helper. The answer is a ``RepairShares`` with a box for every other helper and
/// key; the helper keeps its own deltas in memory for step 2.
///
/// ```
/// plan  RepairPlan
/// ```
public struct RepairDeltasRequest: WireMessage {
    /// Message type 50.
    public static let type: UInt16 = 50
    /// The repair.
    public let plan: RepairPlan

    /// A request for `plan`.
    public init(plan: RepairPlan) { self.plan = plan }
    /// Writes the plan.
    public func encode(into writer: inout WireWriter) { writer.write(plan) }
    /// Reads the plan.
    public init(from reader: inout WireReader) throws(WireError) { plan = try reader.read(RepairPlan.self, "plan") }
}

/// A helper's boxes (type 51): its deltas for the other helpers after step 1, or its sigmas for the
/// lost node after step 2.
///
/// ```
/// nodeID  u16                   the helper
/// shares  array of SealedShare  sender = nodeID
/// ```
public struct RepairShares: WireMessage {
    /// Message type 51.
    public static let type: UInt16 = 51
    /// The helper.
    public let nodeID: UInt16
    /// Its boxes.
    public let shares: [SealedShare]

    /// Boxes from `nodeID`.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` when a box is not from `nodeID`.
    public init(nodeID: UInt16, shares: [SealedShare]) throws(WireError) {
        try CeremonyFields.check(Self.problem(nodeID, shares), Self.name, "shares")
        self.nodeID = nodeID
        self.shares = shares
    }

    static func problem(_ nodeID: UInt16, _ shares: [SealedShare]) -> String? {
        CeremonyFields.nodeIDProblem(nodeID)
            ?? shares.first { $0.sender != nodeID }.map { "a box from node \($0.sender) in node \(nodeID)'s answer" }
    }

    /// Writes the fields in order.
    public func encode(into writer: inout WireWriter) {
        writer.write(nodeID)
        writer.write(array: shares) { $0.write($1) }
    }

    /// Reads the fields in order.
    public init(from reader: inout WireReader) throws(WireError) {
        nodeID = try CeremonyFields.readNodeID(&reader, "nodeID")
        let start = reader.offset
        shares = try RepairShares.readShares(&reader)
        if let problem = Self.problem(nodeID, shares) { throw reader.invalidValue("shares", at: start, problem) }
    }

    static func readShares(_ reader: inout WireReader) throws(WireError) -> [SealedShare] {
        try reader.readArray(
            "shares", minimumElementLength: SealedShare.minimumLength,
            maximumCount: 2 * CeremonyFields.maximumParticipants
        ) { reader throws(WireError) in try reader.read(SealedShare.self, "") }
    }
}

/// Step 2, to each helper (type 52; operator only): the deltas the other helpers made for it. The
/// helper adds them to its own into a sigma per key and answers with a ``RepairShares`` of two
/// boxes for the lost node.
///
/// ```
/// plan    RepairPlan            the same plan as step 1
/// shares  array of SealedShare  recipient = the helper
/// ```
public struct RepairSigmaRequest: WireMessage {
    /// Message type 52.
    public static let type: UInt16 = 52
    /// The repair.
    public let plan: RepairPlan
    /// The deltas addressed to the helper.
    public let shares: [SealedShare]

    /// A request.
    public init(plan: RepairPlan, shares: [SealedShare]) {
        self.plan = plan
        self.shares = shares
    }

    /// Writes the fields in order.
    public func encode(into writer: inout WireWriter) {
        writer.write(plan)
        writer.write(array: shares) { $0.write($1) }
    }

    /// Reads the fields in order.
    public init(from reader: inout WireReader) throws(WireError) {
        plan = try reader.read(RepairPlan.self, "plan")
        shares = try RepairShares.readShares(&reader)
    }
}

/// Step 3, to the lost node (type 53; operator only): the helpers' sigmas and the public group
/// files. The node rebuilds both shares, checks them against the groups (and the groups against
/// what its helpers report in heartbeats), installs them, and answers with a
/// ``KeyImportResponse``.
///
/// ```
/// plan          RepairPlan
/// shares        array of SealedShare  recipient = the lost node
/// signingGroup  bytes                 group.json, at most 1 MiB
/// sealingGroup  bytes                 sealing-group.json, at most 1 MiB
/// ```
public struct RepairInstallRequest: WireMessage {
    /// Message type 53.
    public static let type: UInt16 = 53
    /// The repair.
    public let plan: RepairPlan
    /// The sigmas addressed to the lost node.
    public let shares: [SealedShare]
    /// `group.json`.
    public let signingGroup: [UInt8]
    /// `sealing-group.json`.
    public let sealingGroup: [UInt8]

    /// A request.
    public init(plan: RepairPlan, shares: [SealedShare], signingGroup: [UInt8], sealingGroup: [UInt8]) {
        self.plan = plan
        self.shares = shares
        self.signingGroup = signingGroup
        self.sealingGroup = sealingGroup
    }

    /// Writes the fields in order.
    public func encode(into writer: inout WireWriter) {
        writer.write(plan)
        writer.write(array: shares) { $0.write($1) }
        writer.write(bytes: signingGroup)
        writer.write(bytes: sealingGroup)
    }

    /// Reads the fields in order.
    public init(from reader: inout WireReader) throws(WireError) {
        plan = try reader.read(RepairPlan.self, "plan")
        shares = try RepairShares.readShares(&reader)
        signingGroup = try reader.readBytes("signingGroup", maximumLength: CeremonyFields.maximumGroupFileLength)
        sealingGroup = try reader.readBytes("sealingGroup", maximumLength: CeremonyFields.maximumGroupFileLength)
    }
}
