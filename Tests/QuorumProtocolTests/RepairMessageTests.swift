import QuorumProtocol
import Testing

@Suite("repair messages")
struct RepairMessageTests {
    static func participant(_ id: UInt16) throws -> CeremonyParticipant {
        try CeremonyParticipant(nodeID: id, identityKey: [UInt8](repeating: UInt8(id), count: 32))
    }

    static func plan() throws -> RepairPlan {
        try RepairPlan(
            repairID: [UInt8](repeating: 7, count: 16), lost: participant(2),
            helpers: [participant(1), participant(3), participant(4)])
    }

    @Test("every repair message survives encoding and decoding unchanged")
    func roundTrip() throws {
        let plan = try Self.plan()
        let box = try SealedShare(sender: 1, recipient: 3, purpose: .sealing, box: [UInt8](repeating: 1, count: 80))
        let deltas = RepairDeltasRequest(plan: plan)
        #expect(try RepairDeltasRequest.decode(payload: deltas.encodedPayload()) == deltas)
        let shares = try RepairShares(nodeID: 1, shares: [box])
        #expect(try RepairShares.decode(payload: shares.encodedPayload()) == shares)
        let sigma = RepairSigmaRequest(plan: plan, shares: [box])
        #expect(try RepairSigmaRequest.decode(payload: sigma.encodedPayload()) == sigma)
        let install = RepairInstallRequest(plan: plan, shares: [box], signingGroup: [1, 2], sealingGroup: [3])
        #expect(try RepairInstallRequest.decode(payload: install.encodedPayload()) == install)
        #expect(MessageRegistry.all.contains(RepairInstallRequest.type))
    }

    @Test("a plan with the lost node among the helpers, unsorted helpers, a short id, or a foreign box is refused")
    func refusals() throws {
        #expect(throws: WireError.self) {
            try RepairPlan(
                repairID: [UInt8](repeating: 7, count: 16), lost: Self.participant(2), helpers: [Self.participant(2)])
        }
        #expect(throws: WireError.self) {
            try RepairPlan(
                repairID: [UInt8](repeating: 7, count: 16), lost: Self.participant(2),
                helpers: [Self.participant(3), Self.participant(1)])
        }
        #expect(throws: WireError.self) {
            try RepairPlan(repairID: [1, 2], lost: Self.participant(2), helpers: [Self.participant(1)])
        }
        let foreign = try SealedShare(sender: 3, recipient: 2, purpose: .signing, box: [9])
        #expect(throws: WireError.self) { try RepairShares(nodeID: 1, shares: [foreign]) }

        // The decoder applies the same rules: the lost node listed as a helper on the wire.
        var bytes = try Self.plan().encodedPayload()
        let helperStart = 16 + 4 + 2 + 4 + 32 + 4
        bytes[helperStart] = 0
        bytes[helperStart + 1] = 2
        bytes.replaceSubrange(
            (helperStart + 2 + 4)..<(helperStart + 2 + 4 + 32), with: [UInt8](repeating: 2, count: 32))
        #expect(throws: WireError.self) { try RepairDeltasRequest.decode(payload: bytes) }
    }
}
