import QuorumTestKit
import Testing

@testable import QuorumCrypto

/// Every kind of bad input the issue names, fed to the code that must refuse it.
@Suite("Input validation")
struct ValidationTests {
    // MARK: Elements

    struct BadElement: CustomTestStringConvertible, Sendable {
        let name: String
        let hex: String
        let code: CryptoError.Code
        var testDescription: String { name }
    }

    static let badEd25519: [BadElement] = [
        .init(name: "identity", hex: "01" + String(repeating: "00", count: 31), code: .identityElement),
        .init(
            name: "identity, non-canonical (y = p + 1)", hex: "ee" + String(repeating: "ff", count: 30) + "7f",
            code: .invalidElement),
        .init(
            name: "y = p, non-canonical", hex: "ed" + String(repeating: "ff", count: 30) + "7f", code: .invalidElement),
        .init(
            name: "x = 0 with the sign bit set", hex: "01" + String(repeating: "00", count: 30) + "80",
            code: .invalidElement),
        .init(name: "order 2 (y = −1)", hex: "ec" + String(repeating: "ff", count: 30) + "7f", code: .invalidElement),
        .init(name: "order 4 (y = 0)", hex: String(repeating: "00", count: 32), code: .invalidElement),
        .init(
            name: "order 8", hex: "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
            code: .invalidElement),
        .init(name: "too short", hex: String(repeating: "11", count: 31), code: .invalidElement),
    ]

    static let badSecp256k1: [BadElement] = [
        .init(name: "identity (all zero)", hex: String(repeating: "00", count: 33), code: .identityElement),
        .init(name: "uncompressed prefix 04", hex: "04" + String(repeating: "11", count: 32), code: .invalidElement),
        .init(name: "x not below p", hex: "02" + String(repeating: "ff", count: 32), code: .invalidElement),
        .init(name: "x not on the curve", hex: "02" + String(repeating: "00", count: 31) + "05", code: .invalidElement),
        .init(name: "too long", hex: "02" + String(repeating: "11", count: 33), code: .invalidElement),
    ]

    @Test("Ed25519 rejects", arguments: badEd25519)
    func ed25519Rejects(bad: BadElement) {
        let error = #expect(throws: CryptoError.self) { _ = try Ed25519Element(validating: Hex.decode(bad.hex)!) }
        #expect(error?.code == bad.code)
    }

    @Test("secp256k1 rejects", arguments: badSecp256k1)
    func secp256k1Rejects(bad: BadElement) {
        let error = #expect(throws: CryptoError.self) { _ = try Secp256k1Element(validating: Hex.decode(bad.hex)!) }
        #expect(error?.code == bad.code)
    }

    @Test("The published invalid elements are rejected (outside the prime-order subgroup or off the curve)")
    func publishedInvalidElements() throws {
        let ed = try TestKit.vector("frost-ed25519/elements.json")["elements"]["invalid_element"].bytes
        #expect(ed.count == 32)
        #expect(throws: CryptoError.self) { _ = try Ed25519Element(validating: ed) }
        let k1 = try TestKit.vector("frost-secp256k1/elements.json")["elements"]["invalid_element"].bytes
        #expect(throws: CryptoError.self) { _ = try Secp256k1Element(validating: k1) }
        // And as a nonce commitment inside a signing flow.
        let error = #expect(throws: CryptoError.self) {
            _ = try SigningCommitments<Ed25519Suite>(identifier: Identifier(4), encoded: ed + ed)
        }
        #expect(error?.culprits == [try Identifier(4)])
    }

    // MARK: Scalars

    @Test("Scalars not below the group order are refused")
    func scalarsBelowOrder() throws {
        for hex in [
            "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010",  // L
            "eed3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010",  // L + 1
            String(repeating: "ff", count: 32),
        ] {
            #expect(Ed25519Scalar(canonical: Hex.decode(hex)!) == nil)
            #expect(throws: CryptoError.self) {
                _ = try SignatureShare<Ed25519Suite>(identifier: Identifier(1), encoded: Hex.decode(hex)!)
            }
        }
        // L − 1 is fine.
        #expect(
            Ed25519Scalar(canonical: Hex.decode("ecd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")!)
                != nil)
        for hex in [
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",  // n
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364142",  // n + 1
            String(repeating: "ff", count: 32),
        ] {
            #expect(Secp256k1Scalar(canonical: Hex.decode(hex)!) == nil)
            #expect(throws: CryptoError.self) {
                _ = try SignatureShare<Secp256k1Suite>(identifier: Identifier(1), encoded: Hex.decode(hex)!)
            }
        }
        #expect(
            Secp256k1Scalar(canonical: Hex.decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140")!)
                != nil)
        #expect(Ed25519Scalar(canonical: [1, 2, 3]) == nil)
    }

    // MARK: Identifiers and commitment lists

    @Test("Zero identifiers are refused")
    func zeroIdentifier() {
        #expect(throws: CryptoError.self) { _ = try Identifier(0) }
        #expect(throws: CryptoError.self) { _ = try Identifier(parsing: 0) }
        #expect(throws: CryptoError.self) { _ = try Identifier(parsing: -3) }
        #expect(throws: CryptoError.self) { _ = try Identifier(parsing: 70000) }
    }

    /// A 3-of-4 dealer group with fresh commitments from every participant.
    func setup() throws -> ([KeyPackage<Ed25519Suite>], PublicKeyPackage<Ed25519Suite>, [SigningNonces<Ed25519Suite>]) {
        let (keys, group) = try SigningHelpers.dealer(Ed25519Suite.self, k: 3, n: 4)
        return (keys, group, keys.map { FROST<Ed25519Suite>.commit($0) })
    }

    @Test("Duplicate and unsorted commitment lists are refused")
    func commitmentListOrder() throws {
        let (_, _, nonces) = try setup()
        let c = nonces.map(\.commitments)
        let duplicate = #expect(throws: CryptoError.self) {
            _ = try SigningPackage(message: [1], commitments: [c[0], c[1], c[1]])
        }
        #expect(duplicate?.code == .duplicateIdentifier)
        #expect(duplicate?.culprits == [c[1].identifier])
        let unsorted = #expect(throws: CryptoError.self) {
            _ = try SigningPackage(message: [1], commitments: [c[0], c[2], c[1]])
        }
        #expect(unsorted?.code == .unsortedCommitments)
        #expect(throws: CryptoError.self) { _ = try SigningPackage<Ed25519Suite>(message: [1], commitments: []) }
    }

    @Test("A signer refuses a list without its own entry")
    func missingOwnEntry() throws {
        let (keys, _, nonces) = try setup()
        let package = try SigningPackage(
            message: [1], commitments: [nonces[1], nonces[2], nonces[3]].map(\.commitments))
        let error = #expect(throws: CryptoError.self) {
            _ = try FROST.sign(package: package, nonces: nonces[0], key: keys[0])
        }
        #expect(error?.code == .missingOwnCommitment)
        // The refused attempt still consumed the nonces.
        #expect(!nonces[0].isUsable)
    }

    @Test("A signer refuses a list that carries a different commitment for it")
    func differentOwnCommitment() throws {
        let (keys, _, nonces) = try setup()
        let other = FROST<Ed25519Suite>.commit(keys[0])
        let package = try SigningPackage(message: [1], commitments: [other, nonces[1], nonces[2]].map(\.commitments))
        let error = #expect(throws: CryptoError.self) {
            _ = try FROST.sign(package: package, nonces: nonces[0], key: keys[0])
        }
        #expect(error?.code == .commitmentMismatch)
    }

    @Test("Fewer commitments than the threshold are refused by signer and aggregator")
    func belowThreshold() throws {
        let (keys, group, nonces) = try setup()
        let package = try SigningPackage(message: [1], commitments: [nonces[0], nonces[1]].map(\.commitments))
        let error = #expect(throws: CryptoError.self) {
            _ = try FROST.sign(package: package, nonces: nonces[0], key: keys[0])
        }
        #expect(error?.code == .tooFewParticipants)
        let session = try SigningSession(package: package, verifyingKey: group.verifyingKey)
        let aggregateError = #expect(throws: CryptoError.self) {
            _ = try FROST.aggregate(session: session, shares: [], group: group)
        }
        #expect(aggregateError?.code == .tooFewParticipants)
    }

    @Test("A signer refuses a session for another group key")
    func mismatchedGroupKey() throws {
        let (keys, _, nonces) = try setup()
        let (_, otherGroup) = try SigningHelpers.dealer(Ed25519Suite.self, k: 3, n: 4)
        let package = try SigningPackage(
            message: [1], commitments: [nonces[0], nonces[1], nonces[2]].map(\.commitments))
        let session = try SigningSession(package: package, verifyingKey: otherGroup.verifyingKey)
        let error = #expect(throws: CryptoError.self) {
            _ = try FROST.sign(session: session, nonces: nonces[0], key: keys[0])
        }
        #expect(error?.code == .groupKeyMismatch)
        #expect(throws: CryptoError.self) { try keys[0].check(against: otherGroup) }
    }

    @Test("Nonces sign once: a second use is refused")
    func nonceReuse() throws {
        let (keys, _, nonces) = try setup()
        let package = try SigningPackage(
            message: [1], commitments: [nonces[0], nonces[1], nonces[2]].map(\.commitments))
        _ = try FROST.sign(package: package, nonces: nonces[0], key: keys[0])
        let error = #expect(throws: CryptoError.self) {
            _ = try FROST.sign(package: package, nonces: nonces[0], key: keys[0])
        }
        #expect(error?.code == .nonceAlreadyUsed)
    }

    // MARK: Aggregation names cheaters

    @Test("Aggregation names exactly the participants whose shares are bad", arguments: [[2], [1, 4]])
    func cheatersNamed(cheaters: [Int]) throws {
        let (keys, group) = try SigningHelpers.dealer(Secp256k1Suite.self, k: 3, n: 4)
        let signers = [keys[0], keys[1], keys[3]]
        let nonces = signers.map { FROST<Secp256k1Suite>.commit($0) }
        let package = try SigningPackage(message: Array("pay".utf8), commitments: nonces.map(\.commitments))
        let session = try SigningSession(package: package, verifyingKey: group.verifyingKey)
        var shares = try zip(signers, nonces).map { try FROST.sign(session: session, nonces: $1, key: $0) }
        shares = shares.map { share in
            cheaters.contains(Int(share.identifier.value))
                ? SignatureShare(identifier: share.identifier, share: share.share + .one) : share
        }
        let error = #expect(throws: CryptoError.self) {
            _ = try FROST.aggregate(session: session, shares: shares, group: group)
        }
        #expect(error?.code == .invalidSignatureShare)
        #expect(error?.culprits.map { Int($0.value) } == cheaters)
    }

    @Test("Aggregation refuses missing, extra and duplicate shares")
    func shareSetMismatch() throws {
        let (keys, group) = try SigningHelpers.dealer(Ed25519Suite.self, k: 2, n: 3)
        let nonces = keys.prefix(2).map { FROST<Ed25519Suite>.commit($0) }
        let package = try SigningPackage(message: [9], commitments: nonces.map(\.commitments))
        let session = try SigningSession(package: package, verifyingKey: group.verifyingKey)
        let shares = try zip(keys, nonces).map { try FROST.sign(session: session, nonces: $1, key: $0) }
        #expect(throws: CryptoError.self) {
            _ = try FROST.aggregate(session: session, shares: [shares[0]], group: group)
        }
        #expect(throws: CryptoError.self) {
            _ = try FROST.aggregate(session: session, shares: shares + [shares[0]], group: group)
        }
        let stranger = SignatureShare<Ed25519Suite>(identifier: try Identifier(3), share: .one)
        let extra = #expect(throws: CryptoError.self) {
            _ = try FROST.aggregate(session: session, shares: shares + [stranger], group: group)
        }
        #expect(extra?.culprits == [try Identifier(3)])
        #expect(try FROST.aggregate(session: session, shares: shares, group: group).bytes.count == 64)
    }

    @Test("A sealing key neither signs nor aggregates")
    func purposeEnforced() throws {
        let (keys, group) = try SigningHelpers.dealer(Ed25519Suite.self, k: 2, n: 3, purpose: .sealing)
        let nonces = keys.prefix(2).map { FROST<Ed25519Suite>.commit($0) }
        let package = try SigningPackage(message: [9], commitments: nonces.map(\.commitments))
        let error = #expect(throws: CryptoError.self) {
            _ = try FROST.sign(package: package, nonces: nonces[0], key: keys[0])
        }
        #expect(error?.code == .wrongKeyPurpose)
        let session = try SigningSession(package: package, verifyingKey: group.verifyingKey)
        #expect(throws: CryptoError.self) { _ = try FROST.aggregate(session: session, shares: [], group: group) }
    }

    @Test("Dealer parameters and share verification")
    func dealerChecks() throws {
        #expect(throws: CryptoError.self) {
            _ = try TrustedDealer<Ed25519Suite>.generate(minSigners: 1, maxSigners: 3, purpose: .signing)
        }
        #expect(throws: CryptoError.self) {
            _ = try TrustedDealer<Ed25519Suite>.generate(minSigners: 4, maxSigners: 3, purpose: .signing)
        }
        let (shares, group) = try TrustedDealer<Secp256k1Suite>.generate(
            minSigners: 3, maxSigners: 5, purpose: .signing)
        #expect(group.verifyingShares.count == 5)
        let tampered = SecretShare<Secp256k1Suite>(
            identifier: shares[1].identifier, signingShare: SecretScalar(shares[1].signingShare.value + .one),
            commitment: shares[1].commitment, purpose: .signing)
        let error = #expect(throws: CryptoError.self) { _ = try tampered.verify() }
        #expect(error?.culprits == [shares[1].identifier])
        // A public key package whose verifying share disagrees with its commitment is refused.
        var forged = group.verifyingShares
        forged[shares[0].identifier] = group.verifyingShares[shares[1].identifier]
        #expect(throws: CryptoError.self) {
            _ = try PublicKeyPackage<Secp256k1Suite>(
                purpose: .signing, verifyingKey: group.verifyingKey, verifyingShares: forged,
                commitment: group.commitment,
                minSigners: 3)
        }
    }
}
