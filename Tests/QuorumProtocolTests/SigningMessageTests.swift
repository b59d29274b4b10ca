import QuorumProtocol
import QuorumTestKit
import Testing

@Suite struct SigningMessages {
    static let commitment = (0..<64).map { UInt8($0) }
    static let share = (0..<32).map { UInt8(0xA0 + $0 % 16) }

    static func signRequest(
        requestID: String = "req-1", message: [UInt8] = Array("allow".utf8), identifiers: [UInt16] = [1, 2, 3]
    ) throws -> SignRequest {
        try SignRequest(
            bootEpoch: 0xFEED, nonceID: 7, requestID: requestID, message: message,
            commitments: identifiers.map { try SignerCommitment(identifier: $0, commitment: commitment) })
    }

    @Test func typeNumbersAreTheDocumentedOnes() {
        #expect(CommitmentsRequest.type == 32)
        #expect(CommitmentsResponse.type == 33)
        #expect(SignRequest.type == 34)
        #expect(SignResponse.type == 35)
        for type in [32, 33, 34, 35] as [UInt16] { #expect(MessageRegistry.all.contains(type)) }
    }

    @Test func commitmentsRequestAndResponseRoundTrip() throws {
        let request = try CommitmentsRequest(count: 64)
        #expect(request.encodedPayload() == [0x00, 0x40])
        let frame = try Frame.request(request, correlationID: 9, deadlineMilliseconds: 500)
        #expect(try MessageRegistry.all.decode(frame) as? CommitmentsRequest == request)
        let response = try CommitmentsResponse(
            nodeID: 2, bootEpoch: 0x0102_0304_0506_0708,
            commitments: [
                NonceCommitment(nonceID: 1, commitment: Self.commitment),
                NonceCommitment(nonceID: 5, commitment: Array(repeating: 9, count: 66)),
            ])
        let answer = try Frame.response(response, to: frame)
        #expect(try answer.decode(CommitmentsResponse.self) == response)
        // nodeID, epoch, count, then id, length and bytes of each entry.
        #expect(Array(response.encodedPayload().prefix(14)) == [0, 2, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 2])
    }

    @Test func signRequestAndResponseRoundTrip() throws {
        let request = try Self.signRequest(requestID: "req_01HZX~!", message: Array(repeating: 0x5A, count: 65536))
        let frame = try Frame.request(request, correlationID: 3)
        let decoded = try #require(try MessageRegistry.all.decode(frame) as? SignRequest)
        #expect(decoded == request)
        #expect(decoded.commitment(of: 2) == Self.commitment)
        #expect(decoded.commitment(of: 4) == nil)
        let response = try SignResponse(nodeID: 3, bootEpoch: 0xFEED, requestID: "req_01HZX~!", share: Self.share)
        #expect(try SignResponse.decode(payload: response.encodedPayload()) == response)
    }

    @Test func randomSignRequestsRoundTrip() throws {
        var random = SeededGenerator(seed: 32)
        for _ in 0..<300 {
            let count = Int.random(in: 1...8, using: &random)
            var identifiers = Set<UInt16>()
            while identifiers.count < count { identifiers.insert(UInt16.random(in: 1...UInt16.max, using: &random)) }
            let request = try SignRequest(
                bootEpoch: UInt64.random(in: 0...UInt64.max, using: &random),
                nonceID: UInt64.random(in: 0...UInt64.max, using: &random),
                requestID: String(
                    (0..<Int.random(in: 1...128, using: &random)).map { _ in
                        Character(Unicode.Scalar(UInt8.random(in: 0x21...0x7E, using: &random)))
                    }),
                message: (0..<Int.random(in: 1...300, using: &random)).map { _ in
                    UInt8.random(in: 0...255, using: &random)
                },
                commitments: identifiers.sorted().map {
                    try SignerCommitment(identifier: $0, commitment: Array(repeating: UInt8($0 & 0xFF), count: 64))
                })
            #expect(try SignRequest.decode(payload: request.encodedPayload()) == request)
        }
    }

    struct Invalid: CustomTestStringConvertible, Sendable {
        let name: String
        let field: String
        let build: @Sendable () throws -> Void
        var testDescription: String { name }
    }

    static let invalid: [Invalid] = [
        .init(name: "no commitments asked", field: "CommitmentsRequest.count") { _ = try CommitmentsRequest(count: 0) },
        .init(name: "257 commitments asked", field: "CommitmentsRequest.count") {
            _ = try CommitmentsRequest(count: 257)
        },
        .init(name: "63-byte commitment", field: "NonceCommitment.commitment") {
            _ = try NonceCommitment(nonceID: 1, commitment: Array(repeating: 1, count: 63))
        },
        .init(name: "unsorted nonce ids", field: "CommitmentsResponse.commitments") {
            _ = try CommitmentsResponse(
                nodeID: 1, bootEpoch: 1,
                commitments: [
                    NonceCommitment(nonceID: 2, commitment: commitment),
                    NonceCommitment(nonceID: 1, commitment: commitment),
                ])
        },
        .init(name: "response from node 0", field: "CommitmentsResponse.nodeID") {
            _ = try CommitmentsResponse(
                nodeID: 0, bootEpoch: 1, commitments: [NonceCommitment(nonceID: 1, commitment: commitment)])
        },
        .init(name: "empty request id", field: "SignRequest.requestID") { _ = try signRequest(requestID: "") },
        .init(name: "request id with a space", field: "SignRequest.requestID") {
            _ = try signRequest(requestID: "a b")
        },
        .init(name: "request id with a newline", field: "SignRequest.requestID") {
            _ = try signRequest(requestID: "a\nb")
        },
        .init(name: "non-ASCII request id", field: "SignRequest.requestID") { _ = try signRequest(requestID: "é") },
        .init(name: "129-byte request id", field: "SignRequest.requestID") {
            _ = try signRequest(requestID: String(repeating: "r", count: 129))
        },
        .init(name: "empty message", field: "SignRequest.message") { _ = try signRequest(message: []) },
        .init(name: "65537-byte message", field: "SignRequest.message") {
            _ = try signRequest(message: Array(repeating: 0, count: 65537))
        },
        .init(name: "unsorted commitments", field: "SignRequest.commitments") {
            _ = try signRequest(identifiers: [2, 1, 3])
        },
        .init(name: "duplicate signer", field: "SignRequest.commitments") {
            _ = try signRequest(identifiers: [1, 2, 2])
        },
        .init(name: "no signers", field: "SignRequest.commitments") { _ = try signRequest(identifiers: []) },
        .init(name: "signer 0", field: "SignerCommitment.identifier") { _ = try signRequest(identifiers: [0, 1]) },
        .init(name: "31-byte share", field: "SignResponse.share") {
            _ = try SignResponse(nodeID: 1, bootEpoch: 1, requestID: "r", share: Array(repeating: 1, count: 31))
        },
    ]

    @Test(arguments: invalid)
    func whatCannotBeBuiltIsRefusedNamingTheField(_ invalid: Invalid) {
        let error = #expect(throws: WireError.self) { try invalid.build() }
        #expect(error?.code == .invalidValue)
        #expect(error?.field == invalid.field)
    }

    /// The same rules on the decoding side, from payloads written by hand.
    @Test func theDecoderAppliesTheSameRules() throws {
        func signPayload(requestID: String, message: [UInt8], identifiers: [UInt16]) -> [UInt8] {
            var writer = WireWriter()
            writer.write(UInt64(1))
            writer.write(UInt64(2))
            writer.write(string: requestID)
            writer.write(bytes: message)
            writer.write(array: identifiers) { writer, id in
                writer.write(id)
                writer.write(bytes: Self.commitment)
            }
            return writer.bytes
        }
        let unsorted = #expect(throws: WireError.self) {
            try SignRequest.decode(payload: signPayload(requestID: "r", message: [1], identifiers: [3, 1, 2]))
        }
        #expect(unsorted?.code == .invalidValue)
        #expect(unsorted?.field == "SignRequest.commitments")
        #expect(unsorted?.reason.contains("sorted by identifier") == true)
        let duplicate = #expect(throws: WireError.self) {
            try SignRequest.decode(payload: signPayload(requestID: "r", message: [1], identifiers: [1, 1]))
        }
        #expect(duplicate?.reason.contains("identifier 1 twice") == true)
        let badID = #expect(throws: WireError.self) {
            try SignRequest.decode(payload: signPayload(requestID: "a b", message: [1], identifiers: [1]))
        }
        #expect(badID?.field == "SignRequest.requestID")
        #expect(badID?.offset == 16)
        let empty = #expect(throws: WireError.self) {
            try SignRequest.decode(payload: signPayload(requestID: "r", message: [], identifiers: [1]))
        }
        #expect(empty?.field == "SignRequest.message")
        var count = WireWriter()
        count.write(UInt16(0))
        #expect(throws: WireError.self) { try CommitmentsRequest.decode(payload: count.bytes) }
        var shortCommitment = WireWriter()
        shortCommitment.write(UInt16(1))
        shortCommitment.write(UInt64(1))
        shortCommitment.write(array: [UInt64(1)]) { writer, id in
            writer.write(id)
            writer.write(bytes: Array(repeating: UInt8(1), count: 65))
        }
        let short = #expect(throws: WireError.self) { try CommitmentsResponse.decode(payload: shortCommitment.bytes) }
        #expect(short?.field == "CommitmentsResponse.commitments[0].commitment")
    }

    @Test func truncatedAndPaddedPayloadsAreRefused() throws {
        let payloads: [[UInt8]] = [
            try Self.signRequest().encodedPayload(),
            try CommitmentsResponse(
                nodeID: 1, bootEpoch: 1, commitments: [NonceCommitment(nonceID: 1, commitment: Self.commitment)]
            ).encodedPayload(),
            try SignResponse(nodeID: 1, bootEpoch: 1, requestID: "r", share: Self.share).encodedPayload(),
        ]
        let decoders: [([UInt8]) throws -> Void] = [
            { _ = try SignRequest.decode(payload: $0) },
            { _ = try CommitmentsResponse.decode(payload: $0) },
            { _ = try SignResponse.decode(payload: $0) },
        ]
        for (payload, decode) in zip(payloads, decoders) {
            for cut in 0..<payload.count {
                #expect(throws: WireError.self) { try decode(Array(payload.prefix(cut))) }
            }
            let padded = #expect(throws: WireError.self) { try decode(payload + [0]) }
            #expect(padded?.code == .trailingBytes)
        }
    }

    @Test func aHugeCountIsRefusedBeforeAllocating() {
        var writer = WireWriter()
        writer.write(UInt64(1))
        writer.write(UInt64(1))
        writer.write(string: "r")
        writer.write(bytes: [1])
        writer.write(UInt32.max)
        let error = #expect(throws: WireError.self) { try SignRequest.decode(payload: writer.bytes) }
        #expect(error?.code == .lengthExceedsRemaining)
        #expect(error?.field == "SignRequest.commitments")
    }

    @Test(arguments: SigningRefusal.Reason.allCases)
    func refusalsTravelInAnErrorResponse(_ reason: SigningRefusal.Reason) throws {
        let refusal = SigningRefusal(reason, "epoch 00000000000000aa: and more: colons")
        let response = refusal.errorResponse
        #expect(response.code == (reason == .noGroupKey ? .unavailable : .refused))
        let request = try Frame.request(try Self.signRequest(), correlationID: 4)
        let frame = try Frame.errorResponse(response, to: request)
        let back = try #require(SigningRefusal(try frame.errorResponse()))
        #expect(back == refusal)
        #expect(back.description == "\(reason.rawValue): epoch 00000000000000aa: and more: colons")
    }

    @Test func anErrorResponseWithoutAReasonIsNoRefusal() {
        #expect(SigningRefusal(ErrorResponse(.internal, "disk full")) == nil)
        #expect(SigningRefusal(ErrorResponse(.refused, "something-else: x")) == nil)
    }
}
