import QuorumTestKit
import Testing

@testable import QuorumCrypto

@Suite("Share repair and proactive refresh")
struct RepairRefreshTests {
    @Test(
        "Repair vectors: deltas sum to a sigma, sigmas sum to the share",
        arguments: ["frost-ed25519", "frost-secp256k1"])
    func repairVectors(dir: String) throws {
        let v = try TestKit.vector(dir + "/repair-share.json")
        func check<C: Ciphersuite>(_: C.Type) throws {
            let g = v["scalar_generation"]
            let deltas = try [1, 2, 3].map { try #require(SecretScalar<C>.deserialize(g["random_scalar_\($0)"].bytes)) }
            #expect(Repair<C>.step2(deltas: deltas).serialized().copyBytes() == g["random_scalar_sum"].bytes)
            let s = v["sigma_generation"]
            let sigmas = try [1, 2, 3, 4].map { try #require(SecretScalar<C>.deserialize(s["sigma_\($0)"].bytes)) }
            #expect(Repair<C>.step2(deltas: sigmas).serialized().copyBytes() == s["sigma_sum"].bytes)
        }
        if dir.hasSuffix("ed25519") { try check(Ed25519Suite.self) } else { try check(Secp256k1Suite.self) }
    }

    /// Helpers rebuild participant `lost`'s share through the three steps.
    func repair<C: Ciphersuite>(
        _ keys: [KeyPackage<C>], _ group: PublicKeyPackage<C>, helpers: [Int], lost: Int,
        corrupt: Int? = nil
    ) throws -> KeyPackage<C> {
        let helperIds = try helpers.map { try Identifier(parsing: $0) }
        var received: [Identifier: [SecretScalar<C>]] = [:]
        for h in helperIds {
            let key = keys.first { $0.identifier == h }!
            let deltas = try Repair<C>.step1(helpers: helperIds, key: key, lostParticipant: Identifier(parsing: lost))
            #expect(deltas.count == helperIds.count)
            for (to, delta) in deltas { received[to, default: []].append(delta) }
        }
        var sigmas = helperIds.map { Repair<C>.step2(deltas: received[$0]!) }
        if let corrupt { sigmas[corrupt] = SecretScalar(sigmas[corrupt].value + .one) }
        return try Repair<C>.step3(sigmas: sigmas, identifier: Identifier(parsing: lost), group: group)
    }

    @Test("Three helpers rebuild a lost share exactly; it signs with the others")
    func repairRebuilds() throws {
        let (keys, group) = try SigningHelpers.dealer(Ed25519Suite.self, k: 3, n: 5)
        let rebuilt = try repair(keys, group, helpers: [1, 4, 5], lost: 2)
        #expect(rebuilt.signingShare.value == keys[1].signingShare.value)
        let signature = try SigningHelpers.sign([7], keys: [rebuilt, keys[2], keys[4]], group: group)
        #expect(Ed25519Suite.verifySignature(signature.bytes, message: [7], publicKey: group.verifyingKey))
    }

    @Test("Repair refuses too few helpers, a helper that is the lost participant, and a wrong sigma")
    func repairRefuses() throws {
        let (keys, group) = try SigningHelpers.dealer(Secp256k1Suite.self, k: 3, n: 5)
        let few = #expect(throws: CryptoError.self) { _ = try self.repair(keys, group, helpers: [1, 4], lost: 2) }
        #expect(few?.code == .tooFewParticipants)
        #expect(throws: CryptoError.self) { _ = try self.repair(keys, group, helpers: [1, 2, 4], lost: 2) }
        #expect(throws: CryptoError.self) {
            _ = try Repair<Secp256k1Suite>.step1(
                helpers: [Identifier(1), Identifier(1), Identifier(3)], key: keys[0], lostParticipant: Identifier(2))
        }
        let wrong = #expect(throws: CryptoError.self) {
            _ = try self.repair(keys, group, helpers: [1, 3, 4], lost: 2, corrupt: 1)
        }
        #expect(wrong?.code == .invalidSecretShare)
    }

    /// A whole refresh among `participants` of the group.
    func refresh<C: Ciphersuite>(
        _ keys: [KeyPackage<C>], _ group: PublicKeyPackage<C>, participants: [Int],
        tamper: (Identifier, DKG<C>.Round1Package) -> DKG<C>.Round1Package = { $1 }
    ) throws -> [Identifier: DKG<C>.Result] {
        let ids = try participants.map { try Identifier(parsing: $0) }
        var r1: [Identifier: (DKG<C>.Round1Secret, DKG<C>.Round1Package)] = [:]
        for id in ids {
            r1[id] = try DKG<C>.refreshPart1(
                key: keys.first { $0.identifier == id }!, group: group, participants: ids.count)
        }
        var r2: [Identifier: DKG<C>.Round2Secret] = [:]
        var mail: [Identifier: [Identifier: DKG<C>.Round2Package]] = [:]
        for id in ids {
            var received: [Identifier: DKG<C>.Round1Package] = [:]
            for from in ids where from != id { received[from] = tamper(from, r1[from]!.1) }
            let (secret, outgoing) = try DKG<C>.part2(secret: r1[id]!.0, round1Packages: received)
            r2[id] = secret
            for (to, p) in outgoing { mail[to, default: [:]][id] = p }
        }
        return try ids.reduce(into: [:]) { $0[$1] = try DKG<C>.part3(secret: r2[$1]!, round2Packages: mail[$1]!) }
    }

    @Test("Refresh gives new shares under the same group key; old and new shares do not mix")
    func refreshKeepsKey() throws {
        let (keys, group) = try SigningHelpers.dealer(Ed25519Suite.self, k: 3, n: 4)
        let results = try refresh(keys, group, participants: [1, 2, 3, 4])
        #expect(Set(results.values.map(\.transcriptDigest)).count == 1)
        let newGroup = results.values.first!.publicKeyPackage
        #expect(newGroup.verifyingKey == group.verifyingKey)
        #expect(newGroup.minSigners == 3)
        let newKeys = try (1...4).map { results[try Identifier(parsing: $0)]!.keyPackage }
        for (old, new) in zip(keys, newKeys) {
            #expect(old.signingShare.value != new.signingShare.value)
            try new.check(against: newGroup)
        }
        let signature = try SigningHelpers.sign([1], keys: [newKeys[0], newKeys[2], newKeys[3]], group: newGroup)
        #expect(Ed25519Suite.verifySignature(signature.bytes, message: [1], publicKey: group.verifyingKey))
        // Mixing a stale share with refreshed ones fails aggregation and names the stale signer.
        let error = #expect(throws: CryptoError.self) {
            _ = try SigningHelpers.sign([1], keys: [keys[0], newKeys[2], newKeys[3]], group: newGroup)
        }
        #expect(error?.code == .groupKeyMismatch || error?.culprits == [keys[0].identifier])
    }

    @Test("A refresh without a member drops it from the refreshed group")
    func refreshSubset() throws {
        let (keys, group) = try SigningHelpers.dealer(Secp256k1Suite.self, k: 3, n: 5)
        let results = try refresh(keys, group, participants: [1, 2, 4, 5])
        let newGroup = results.values.first!.publicKeyPackage
        #expect(newGroup.identifiers.map(\.value) == [1, 2, 4, 5])
        #expect(newGroup.verifyingKey == group.verifyingKey)
        let signers = try [2, 4, 5].map { results[try Identifier(parsing: $0)]!.keyPackage }
        let signature = try SigningHelpers.sign([2], keys: signers, group: newGroup)
        #expect(Secp256k1Suite.verifySignature(signature.bytes, message: [2], publicKey: group.verifyingKey))
    }

    @Test("A refresh package that would change the threshold is refused, naming its sender")
    func refreshThresholdEnforced() throws {
        let (keys, group) = try SigningHelpers.dealer(Ed25519Suite.self, k: 3, n: 4)
        let extra = Ed25519Element.baseMultiply(.random())
        let error = #expect(throws: CryptoError.self) {
            _ = try self.refresh(keys, group, participants: [1, 2, 3, 4]) { from, package in
                from.value == 3 ? .init(commitment: package.commitment + [extra], proofOfKnowledge: []) : package
            }
        }
        #expect(error?.code == .invalidParameters)
        #expect(error?.culprits == [try Identifier(3)])
        // Refreshing with fewer participants than the threshold is refused up front.
        #expect(throws: CryptoError.self) {
            _ = try DKG<Ed25519Suite>.refreshPart1(key: keys[0], group: group, participants: 2)
        }
    }
}
