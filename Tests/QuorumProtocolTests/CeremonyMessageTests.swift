import QuorumCrypto
import QuorumProtocol
import QuorumTestKit
import Testing

/// The ceremony messages of docs/protocol.md ("Ceremony messages"): each round-trips through a
/// frame and the registry, and each of its rules refuses a payload that breaks it, naming the field.
@Suite struct CeremonyMessages {
    static let id = (0..<16).map { UInt8($0) }
    static let keys = (1...4).map { _ in Ed25519KeyPair() }
    static var participants: [CeremonyParticipant] {
        (1...4).map { try! CeremonyParticipant(nodeID: UInt16($0), identityKey: keys[$0 - 1].publicKey) }
    }

    static func round1(_ node: UInt16) throws -> CeremonyRound1 {
        try CeremonyRound1(
            ceremonyID: id, nodeID: node, threshold: 3,
            signingPackage: [0, 3] + [UInt8](repeating: UInt8(node), count: 96),
            sealingPackage: [0, 3] + [UInt8](repeating: 0xee, count: 96), signedBy: keys[Int(node) - 1])
    }

    static func roundTrip<M: WireMessage>(_ message: M) throws {
        let frame = try Frame.request(message, correlationID: 9)
        var decoder = FrameDecoder()
        let decoded = try #require(try decoder.feed(frame.encoded()).first)
        #expect(try decoded.decode(M.self) == message)
        #expect(try MessageRegistry.all.decode(decoded) as? M == message)
        #expect(try M.decode(payload: message.encodedPayload()).encodedPayload() == message.encodedPayload())
    }

    /// Decodes `payload` as `M` and expects a refusal of `code` naming `field`.
    static func refuses<M: WireMessage>(
        _: M.Type, _ payload: [UInt8], _ code: WireError.Code, field: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(sourceLocation: sourceLocation) {
            _ = try M.decode(payload: payload)
        } throws: { error in
            guard let error = error as? WireError else { return false }
            return error.code == code && error.field.contains(field)
        }
    }

    @Test func typeNumbersAreTheDocumentedOnes() {
        let types: [any WireMessage.Type] = MessageRegistry.ceremonyMessages
        #expect(types.map { $0.type } == Array(16...25))
        for type in 16...25 { #expect(MessageRegistry.all.contains(UInt16(type))) }
    }

    @Test func everyMessageRoundTrips() throws {
        let begin = try CeremonyBegin(
            ceremonyID: Self.id, kind: .dkg, threshold: 3, participants: Self.participants, replaceExisting: true)
        try Self.roundTrip(begin)
        try Self.roundTrip(
            try CeremonyBegin(ceremonyID: Self.id, kind: .refresh, threshold: 0, participants: Self.participants))
        let round1 = try (1...4).map { try Self.round1(UInt16($0)) }
        try Self.roundTrip(round1[0])
        #expect(round1[0].isSigned(by: Self.keys[0].publicKey))
        #expect(!round1[0].isSigned(by: Self.keys[1].publicKey))
        try Self.roundTrip(try CeremonyRound2Request(ceremonyID: Self.id, round1: round1))
        let echo = try CeremonyEcho(
            ceremonyID: Self.id, nodeID: 2, digests: round1.map(\.digest), signedBy: Self.keys[1])
        #expect(echo.isSigned(by: Self.keys[1].publicKey, ceremonyID: Self.id))
        #expect(!echo.isSigned(by: Self.keys[1].publicKey, ceremonyID: [UInt8](repeating: 9, count: 16)))
        let shares = try [1, 3, 4].flatMap { recipient in
            try CeremonyKeyPurpose.allCases.map { purpose in
                try SealedShare(
                    sender: 2, recipient: UInt16(recipient), purpose: purpose, box: [UInt8](repeating: 7, count: 104))
            }
        }
        try Self.roundTrip(try CeremonyRound2(ceremonyID: Self.id, echo: echo, shares: shares))
        try Self.roundTrip(
            try CeremonyRound3Request(
                ceremonyID: Self.id, echoes: [echo], shares: shares.filter { $0.recipient == 1 }))
        let digest = [UInt8](repeating: 0xd1, count: 32)
        let signature = Self.keys[2].sign(
            CeremonyTranscriptSignature.signedBytes(ceremonyID: Self.id, transcriptDigest: digest))
        #expect(
            CeremonyTranscriptSignature.verify(
                signature, ceremonyID: Self.id, transcriptDigest: digest, identityKey: Self.keys[2].publicKey))
        try Self.roundTrip(
            try CeremonyRound3(
                ceremonyID: Self.id, nodeID: 3, transcriptDigest: digest, signingGroup: Array("{}".utf8),
                sealingGroup: Array("{ }".utf8), signature: signature))
        try Self.roundTrip(
            try CeremonyCommit(
                ceremonyID: Self.id, transcriptDigest: digest,
                certificate: [
                    try CeremonySignature(nodeID: 1, signature: signature),
                    try CeremonySignature(nodeID: 3, signature: signature),
                ]))
        try Self.roundTrip(try CeremonyAbort(ceremonyID: Self.id, reason: "node 3 refused round 2: …"))
        try Self.roundTrip(try CeremonyAck(ceremonyID: Self.id, nodeID: 4, outcome: .committed))
        try Self.roundTrip(
            try CeremonyRefusal(ceremonyID: Self.id, nodeID: 1, phase: .round3, culprit: 2, reason: "equivocation"))
        try Self.roundTrip(
            try CeremonyRefusal(ceremonyID: Self.id, nodeID: 1, phase: .begin, culprit: nil, reason: ""))
    }

    @Test func theSignatureCoversEveryField() throws {
        let original = try Self.round1(1)
        let changed = try CeremonyRound1(
            ceremonyID: Self.id, nodeID: 1, threshold: 2, signingPackage: original.signingPackage,
            sealingPackage: original.sealingPackage, signature: original.signature)
        #expect(!changed.isSigned(by: Self.keys[0].publicKey))
        #expect(changed.digest != original.digest)
    }

    @Test func initializersRefuseWhatDecodersRefuse() {
        #expect(throws: WireError.self) {
            try CeremonyBegin(ceremonyID: [1, 2, 3], kind: .dkg, threshold: 3, participants: Self.participants)
        }
        #expect(throws: WireError.self) {
            try CeremonyBegin(ceremonyID: Self.id, kind: .dkg, threshold: 1, participants: Self.participants)
        }
        #expect(throws: WireError.self) {
            try CeremonyBegin(ceremonyID: Self.id, kind: .refresh, threshold: 3, participants: Self.participants)
        }
        #expect(throws: WireError.self) {
            try CeremonyBegin(
                ceremonyID: Self.id, kind: .dkg, threshold: 2, participants: Self.participants.reversed())
        }
        #expect(throws: WireError.self) {
            try CeremonyBegin(ceremonyID: Self.id, kind: .dkg, threshold: 2, participants: [Self.participants[0]])
        }
        #expect(throws: WireError.self) { try CeremonyParticipant(nodeID: 0, identityKey: Self.keys[0].publicKey) }
        #expect(throws: WireError.self) { try CeremonyParticipant(nodeID: 1, identityKey: [1, 2]) }
        #expect(throws: WireError.self) { try SealedShare(sender: 2, recipient: 2, purpose: .signing, box: [1]) }
        #expect(throws: WireError.self) { try SealedShare(sender: 2, recipient: 1, purpose: .signing, box: []) }
        #expect(throws: WireError.self) {
            try SealedShare(sender: 2, recipient: 1, purpose: .signing, box: [UInt8](repeating: 0, count: 257))
        }
    }

    @Test func malformedFieldsAreRefusedByName() throws {
        let begin = try CeremonyBegin(ceremonyID: Self.id, kind: .dkg, threshold: 3, participants: Self.participants)
        var payload = begin.encodedPayload()
        // ceremonyID: u32 length 16 then the id; a length of 15 is refused.
        var short = payload
        short[3] = 15
        short.remove(at: 4)
        Self.refuses(CeremonyBegin.self, short, .invalidValue, field: "ceremonyID")
        // kind: the byte after the id.
        var kind = payload
        kind[20] = 9
        Self.refuses(CeremonyBegin.self, kind, .invalidValue, field: "kind")
        // threshold 1.
        var threshold = payload
        threshold[22] = 1
        Self.refuses(CeremonyBegin.self, threshold, .invalidValue, field: "threshold")
        // Participants out of order: swap the first two node ids.
        var order = payload
        let first = 27
        let stride = 2 + 4 + 32
        order[first + 1] = 2
        order[first + stride + 1] = 1
        Self.refuses(CeremonyBegin.self, order, .invalidValue, field: "participants")
        // A boolean that is neither 0 nor 1.
        payload[payload.count - 1] = 2
        Self.refuses(CeremonyBegin.self, payload, .invalidBool, field: "allowUnsafe")
        // Trailing bytes.
        Self.refuses(CeremonyBegin.self, begin.encodedPayload() + [0], .trailingBytes, field: "CeremonyBegin")

        let round1 = try Self.round1(1)
        var signature = round1.encodedPayload()
        signature.removeLast()
        Self.refuses(CeremonyRound1.self, signature, .lengthExceedsRemaining, field: "signature")
        var emptyPackage = WireWriter()
        emptyPackage.write(bytes: Self.id)
        emptyPackage.write(UInt16(1))
        emptyPackage.write(UInt16(3))
        emptyPackage.write(bytes: [UInt8]())
        Self.refuses(CeremonyRound1.self, emptyPackage.bytes, .invalidValue, field: "signingPackage")

        var share = WireWriter()
        share.write(bytes: Self.id)
        share.write(UInt16(2))
        share.write(array: [[UInt8](repeating: 0, count: 32)]) { $0.write(bytes: $1) }
        share.write(bytes: [UInt8](repeating: 0, count: 64))
        share.write(UInt32(1))
        share.write(UInt16(3))  // sender 3 in node 2's answer
        share.write(UInt16(1))
        share.write(UInt8(1))
        share.write(bytes: [UInt8](repeating: 1, count: 10))
        Self.refuses(CeremonyRound2.self, share.bytes, .invalidValue, field: "shares")

        var refusal = WireWriter()
        refusal.write(bytes: Self.id)
        refusal.write(UInt16(1))
        refusal.write(UInt8(7))
        Self.refuses(CeremonyRefusal.self, refusal.bytes, .invalidValue, field: "phase")

        var ack = WireWriter()
        ack.write(bytes: Self.id)
        ack.write(UInt16(0))
        ack.write(UInt8(1))
        Self.refuses(CeremonyAck.self, ack.bytes, .invalidValue, field: "nodeID")

        var commit = WireWriter()
        commit.write(bytes: Self.id)
        commit.write(bytes: [UInt8](repeating: 0, count: 31))
        Self.refuses(CeremonyCommit.self, commit.bytes, .invalidValue, field: "transcriptDigest")
    }

    @Test func shareContextsDifferByEverySlot() {
        let base = SealedShare.context(ceremonyID: Self.id, purpose: .signing, sender: 1, recipient: 2)
        #expect(base != SealedShare.context(ceremonyID: Self.id, purpose: .sealing, sender: 1, recipient: 2))
        #expect(base != SealedShare.context(ceremonyID: Self.id, purpose: .signing, sender: 2, recipient: 1))
        #expect(
            base
                != SealedShare.context(
                    ceremonyID: [UInt8](repeating: 0, count: 16), purpose: .signing, sender: 1, recipient: 2))
    }

    @Test func randomMutationsNeverTrapAndReencodeWhenAccepted() throws {
        var random = SeededGenerator(seed: 16)
        let round1 = try (1...4).map { try Self.round1(UInt16($0)) }
        let payloads: [(any WireMessage.Type, [UInt8])] = [
            (
                CeremonyBegin.self,
                try CeremonyBegin(ceremonyID: Self.id, kind: .dkg, threshold: 3, participants: Self.participants)
                    .encodedPayload()
            ),
            (
                CeremonyRound2Request.self,
                try CeremonyRound2Request(ceremonyID: Self.id, round1: round1).encodedPayload()
            ),
            (
                CeremonyRefusal.self,
                try CeremonyRefusal(ceremonyID: Self.id, nodeID: 1, phase: .round2, culprit: 3, reason: "x")
                    .encodedPayload()
            ),
        ]
        for (type, payload) in payloads {
            for _ in 0..<2000 {
                var mutated = payload
                let index = Int.random(in: 0..<mutated.count, using: &random)
                mutated[index] = UInt8.random(in: 0...255, using: &random)
                if Bool.random(using: &random) { mutated.removeLast(Int.random(in: 0...3, using: &random)) }
                if let message = try? type.decode(payload: mutated) {
                    #expect(message.encodedPayload() == mutated)
                }
            }
        }
    }
}
