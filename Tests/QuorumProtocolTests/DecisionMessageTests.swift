import QuorumProtocol
import QuorumTestKit
import Testing

@Suite struct DecisionMessages {
    static let commitment = (0..<64).map { UInt8($0) }

    static func decide(
        requestID: String = "call-1", method: String = "POST", body: [UInt8] = Array("{}".utf8),
        bodyLength: UInt64 = 2, signers: [UInt16] = [1, 3, 4]
    ) throws -> DecideRequest {
        try DecideRequest(
            requestID: requestID, time: 1_795_000_000_000, method: method, target: "/openai/v1/chat/completions?x=1",
            headers: [try DecisionHeader(name: "content-type", value: "application/json")], body: body,
            bodyLength: bodyLength, clientAddress: "10.0.0.5", token: "lat_a_b",
            signers: try signers.map {
                try SignerSlot(identifier: $0, bootEpoch: 7, nonceID: UInt64($0) * 10, commitment: commitment)
            })
    }

    @Test func typeNumbersAreTheDocumentedOnes() {
        let types: [(any WireMessage.Type, UInt16)] = [
            (PolicyPushRequest.self, 64), (PolicyPushResponse.self, 65), (PolicyFetchRequest.self, 66),
            (PolicyFetchResponse.self, 67), (DecideRequest.self, 68), (DecideResponse.self, 69),
            (SettleRequest.self, 70), (SettleResponse.self, 71),
        ]
        for (type, number) in types {
            #expect(type.type == number)
            #expect(MessageRegistry.all.contains(number))
        }
    }

    @Test func everyMessageRoundTripsThroughAFrame() throws {
        let request = try Self.decide()
        let frame = try Frame.request(request, correlationID: 3, deadlineMilliseconds: 250)
        #expect(try MessageRegistry.all.decode(frame) as? DecideRequest == request)
        #expect(request.slot(of: 3)?.nonceID == 30)
        #expect(request.slot(of: 2) == nil)
        let response = try DecideResponse(
            nodeID: 2, bootEpoch: 9, requestID: "call-1", verdict: Array(#"{"decision":"allow"}"#.utf8),
            signature: Array(repeating: 5, count: 64), share: Array(repeating: 1, count: 32),
            decryptionShare: Array(repeating: 2, count: 96))
        #expect(try Frame.response(response, to: frame).decode(DecideResponse.self) == response)
        let settle = try SettleRequest(requestID: "call-1", usage: (inputTokens: 12, outputTokens: 30))
        #expect(try SettleRequest.decode(payload: settle.encodedPayload()) == settle)
        let bare = try SettleRequest(requestID: "call-1", usage: nil)
        #expect(try SettleRequest.decode(payload: bare.encodedPayload()) == bare)
        #expect(bare != settle)
        let settled = try SettleResponse(nodeID: 4, requestID: "call-1", settled: true)
        #expect(try SettleResponse.decode(payload: settled.encodedPayload()) == settled)
        let push = try PolicyPushRequest(signedBundle: Array("{}".utf8))
        #expect(try PolicyPushRequest.decode(payload: push.encodedPayload()) == push)
        let pushed = try PolicyPushResponse(
            nodeID: 1, version: 3, digest: "sha256:" + String(repeating: "a", count: 64), installed: true)
        #expect(try PolicyPushResponse.decode(payload: pushed.encodedPayload()) == pushed)
        let fetched = try PolicyFetchResponse(nodeID: 1, signedBundle: [])
        #expect(try PolicyFetchResponse.decode(payload: fetched.encodedPayload()) == fetched)
        #expect(PolicyFetchRequest().encodedPayload().isEmpty)
    }

    @Test func theVerdictSignatureCoversNodeRequestAndVerdict() {
        let base = DecideResponse.signedBytes(nodeID: 1, requestID: "r", verdict: [1, 2])
        #expect(base.starts(with: Array("quorum-latch verdict v1\n".utf8)))
        #expect(base != DecideResponse.signedBytes(nodeID: 2, requestID: "r", verdict: [1, 2]))
        #expect(base != DecideResponse.signedBytes(nodeID: 1, requestID: "s", verdict: [1, 2]))
        #expect(base != DecideResponse.signedBytes(nodeID: 1, requestID: "r", verdict: [1, 3]))
    }

    @Test(arguments: [
        ("an empty method", "method"), ("a body length below the bytes carried", "bodyLength"),
        ("unsorted signers", "signers"), ("a bad request id", "requestID"),
    ])
    func badDecideRequestsAreRefusedNamingTheField(_ what: String, _ field: String) throws {
        let error = #expect(throws: WireError.self, "\(what)") {
            switch field {
            case "method": _ = try Self.decide(method: "")
            case "bodyLength": _ = try Self.decide(body: [1, 2, 3], bodyLength: 2)
            case "signers": _ = try Self.decide(signers: [3, 1])
            default: _ = try Self.decide(requestID: "has space")
            }
        }
        #expect(error?.description.contains("DecideRequest.\(field)") == true, "\(String(describing: error))")
    }

    @Test func malformedPayloadsAreRefusedNotTrusted() throws {
        // The encoder never writes these; the decoder refuses them all the same.
        var payload = try Self.decide().encodedPayload()
        payload.removeLast()
        #expect(throws: WireError.self) { try DecideRequest.decode(payload: payload) }
        let response = try DecideResponse(
            nodeID: 2, bootEpoch: 9, requestID: "call-1", verdict: [1], signature: Array(repeating: 5, count: 64))
        var writer = WireWriter()
        writer.write(UInt16(2))
        writer.write(UInt64(9))
        writer.write(string: "call-1")
        writer.write(bytes: [1])
        writer.write(bytes: Array(repeating: 5, count: 63))
        writer.write(bytes: [UInt8]())
        writer.write(bytes: [UInt8]())
        #expect(throws: WireError.self) { try DecideResponse.decode(payload: writer.bytes) }
        #expect(try DecideResponse.decode(payload: response.encodedPayload()) == response)
    }
}
