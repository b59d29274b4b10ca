import Foundation
import QuorumProtocol
import QuorumTestKit
import Testing

@Suite struct Messages {
    static let groupKey = (0..<32).map { UInt8($0) }
    static let digest = "sha256:" + String(repeating: "5a", count: 32)

    /// Every `| N | `Name` |` row of docs/protocol.md's message tables, in order.
    static func documentedTypes() throws -> [(UInt16, String)] {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/protocol.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        var rows: [(UInt16, String)] = []
        var inMessageTable = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("| type | message |") {
                inMessageTable = true
                continue
            }
            guard inMessageTable, line.hasPrefix("|") else {
                inMessageTable = false
                continue
            }
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 2, let number = UInt16(cells[0]) else { continue }
            rows.append((number, cells[1].trimmingCharacters(in: CharacterSet(charactersIn: "`"))))
        }
        return rows
    }

    @Test func typeNumbersAreTheDocumentedOnes() throws {
        #expect(Heartbeat.type == 1)
        #expect(StatusRequest.type == 2)
        #expect(StatusResponse.type == 3)
        let documented = try Self.documentedTypes().sorted { $0.0 < $1.0 }
        #expect(documented.map(\.0) == MessageRegistry.all.messageTypes, "docs/protocol.md and the registry differ")
        for (number, name) in documented {
            #expect(MessageRegistry.all.name(of: number) == name, "type \(number) is documented as \(name)")
        }
    }

    @Test func heartbeatRoundTrips() throws {
        let heartbeat = try Heartbeat(
            nodeID: 3, bootEpoch: 0xDEAD_BEEF, sentAt: -1, groupKey: Self.groupKey, bundleDigest: Self.digest,
            peersSeen: [1, 2, 4, 65535])
        #expect(heartbeat.hasKey)
        let frame = Frame.oneWay(heartbeat)
        #expect(frame.messageType == 1)
        var decoder = FrameDecoder()
        let decoded = try #require(try decoder.feed(frame.encoded()).first)
        #expect(try decoded.decode(Heartbeat.self) == heartbeat)
        #expect(try MessageRegistry.all.decode(decoded) as? Heartbeat == heartbeat)
    }

    @Test func randomHeartbeatsAndStatusesRoundTrip() throws {
        var random = SeededGenerator(seed: 7)
        for _ in 0..<500 {
            let heartbeat = Samples.heartbeat(&random)
            #expect(try Heartbeat.decode(payload: heartbeat.encodedPayload()) == heartbeat)
            let status = Samples.statusResponse(&random)
            #expect(try StatusResponse.decode(payload: status.encodedPayload()) == status)
        }
    }

    @Test func statusRequestAndResponseRoundTrip() throws {
        let request = try Frame.request(StatusRequest(), correlationID: 42, deadlineMilliseconds: 2000)
        #expect(request.payload.isEmpty)
        #expect(try request.decode(StatusRequest.self) == StatusRequest())
        let status = try StatusResponse(
            nodeID: 1, bootEpoch: 99, reportedAt: 1_700_000_000_000, groupKey: Self.groupKey + [0x02],
            bundleDigest: Self.digest,
            peers: [
                PeerStatus(nodeID: 2, isUp: true, lastHeardAt: 1_699_999_999_000),
                PeerStatus(nodeID: 3, isUp: false, lastHeardAt: nil),
            ])
        let response = try Frame.response(status, to: request)
        #expect(response.correlationID == 42)
        #expect(response.kind == .response)
        #expect(try response.decode(StatusResponse.self) == status)
        #expect(status.groupKeyHex == "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f02")
        #expect(status.hasKey)
    }

    @Test func aNodeWithoutKeyOrBundleRoundTrips() throws {
        let status = try StatusResponse(
            nodeID: 4, bootEpoch: 0, reportedAt: 0, groupKey: nil, bundleDigest: nil, peers: [])
        #expect(!status.hasKey)
        #expect(status.groupKeyHex == nil)
        #expect(try StatusResponse.decode(payload: status.encodedPayload()) == status)
    }

    @Test func outstandingNoncesRoundTripAndAnOlderNodesStatusStillDecodes() throws {
        let status = try StatusResponse(
            nodeID: 2, bootEpoch: 7, reportedAt: 1_700_000_000_000, groupKey: Self.groupKey, bundleDigest: nil,
            peers: [], identityKey: Array(repeating: 9, count: 32), outstandingNonces: 12)
        let payload = status.encodedPayload()
        #expect(Array(payload.suffix(4)) == [0, 0, 0, 12])
        #expect(try StatusResponse.decode(payload: payload) == status)
        // A node built before the field ends the payload after identityKey: the count is absent,
        // and absent is encoded as nothing, so the older payload is also the one encoding.
        let older = try StatusResponse.decode(payload: Array(payload.dropLast(4)))
        #expect(older.outstandingNonces == nil)
        #expect(older.identityKey == status.identityKey && older.reportedAt == status.reportedAt)
        #expect(older.encodedPayload() == Array(payload.dropLast(4)))
        // Present but cut short is refused, naming the field.
        let cut = #expect(throws: WireError.self) { try StatusResponse.decode(payload: Array(payload.dropLast(2))) }
        #expect(cut?.field == "StatusResponse.outstandingNonces")
    }

    @Test(arguments: [0, 1, 2, 3, 4, 5, 6, 77] as [UInt16])
    func errorResponsesRoundTripWithUnknownCodesKept(_ code: UInt16) throws {
        let request = try Frame.request(StatusRequest(), correlationID: 8)
        let error = ErrorResponse(ErrorResponse.Code(rawValue: code), "why")
        let frame = try Frame.errorResponse(error, to: request)
        #expect(frame.messageType == StatusRequest.type)
        #expect(frame.kind == .errorResponse)
        #expect(try frame.errorResponse() == error)
    }

    @Test func errorCodeNames() {
        #expect(ErrorResponse.Code.unknownMessageType.description == "unknown-message-type")
        #expect(ErrorResponse.Code(rawValue: 77).description == "code-77")
        #expect(ErrorResponse(.unavailable, "no group key yet").description == "unavailable: no group key yet")
    }

    @Test func anUnknownMessageTypeIsAnErrorResponseNotACrash() throws {
        let request = try Frame(kind: .request, messageType: 0x7777, correlationID: 5, payload: [1, 2, 3])
        let refusal = #expect(throws: WireError.self) { try MessageRegistry.all.decode(request) }
        let error = try #require(refusal)
        #expect(error.code == .unknownMessageType)
        let answer = try Frame.errorResponse(ErrorResponse(refusing: error), to: request)
        #expect(answer.correlationID == 5)
        #expect(answer.messageType == 0x7777)
        #expect(try answer.errorResponse().code == .unknownMessageType)
        #expect(
            try answer.errorResponse().message
                == "unknown-message-type: message type 30583 is not one this build knows (docs/protocol.md lists them)")
    }

    @Test func aMalformedRequestIsAnErrorResponse() throws {
        let request = try Frame(kind: .request, messageType: StatusRequest.type, correlationID: 5, payload: [0])
        let error = try #require(#expect(throws: WireError.self) { try MessageRegistry.all.decode(request) })
        #expect(error.code == .trailingBytes)
        #expect(error.field == "StatusRequest")
        #expect(ErrorResponse(refusing: error).code == .malformedRequest)
    }

    @Test func framesDecodeOnlyAsTheTypeTheyName() throws {
        let frame = try Frame.request(StatusRequest(), correlationID: 1)
        #expect(throws: WireError.self) { try frame.decode(Heartbeat.self) }
        let errorFrame = try Frame.errorResponse(ErrorResponse(.internal, "x"), to: frame)
        let asMessage = #expect(throws: WireError.self) { try errorFrame.decode(StatusRequest.self) }
        #expect(asMessage?.code == .wrongMessageType)
        let viaRegistry = #expect(throws: WireError.self) { try MessageRegistry.all.decode(errorFrame) }
        #expect(viaRegistry?.code == .wrongMessageType)
        let notAnError = #expect(throws: WireError.self) { try frame.errorResponse() }
        #expect(notAnError?.code == .wrongMessageType)
    }

    struct InvalidHeartbeat: CustomTestStringConvertible, Sendable {
        let name: String
        let nodeID: UInt16
        let groupKey: [UInt8]?
        let bundleDigest: String?
        let peers: [UInt16]
        let field: String
        var testDescription: String { name }
    }

    static let invalidHeartbeats: [InvalidHeartbeat] = [
        .init(name: "node 0", nodeID: 0, groupKey: nil, bundleDigest: nil, peers: [], field: "nodeID"),
        .init(
            name: "31-byte key", nodeID: 1, groupKey: Array(repeating: 1, count: 31), bundleDigest: nil, peers: [],
            field: "groupKey"),
        .init(name: "empty key", nodeID: 1, groupKey: [], bundleDigest: nil, peers: [], field: "groupKey"),
        .init(name: "empty digest", nodeID: 1, groupKey: nil, bundleDigest: "", peers: [], field: "bundleDigest"),
        .init(
            name: "129-byte digest", nodeID: 1, groupKey: nil, bundleDigest: String(repeating: "a", count: 129),
            peers: [], field: "bundleDigest"),
        .init(name: "peer 0", nodeID: 1, groupKey: nil, bundleDigest: nil, peers: [0, 2], field: "peersSeen"),
        .init(name: "itself as peer", nodeID: 2, groupKey: nil, bundleDigest: nil, peers: [1, 2], field: "peersSeen"),
        .init(name: "unsorted peers", nodeID: 1, groupKey: nil, bundleDigest: nil, peers: [3, 2], field: "peersSeen"),
        .init(name: "repeated peer", nodeID: 1, groupKey: nil, bundleDigest: nil, peers: [2, 2], field: "peersSeen"),
    ]

    @Test(arguments: invalidHeartbeats)
    func whatCannotBeBuiltCannotBeDecoded(_ invalid: InvalidHeartbeat) {
        // The initializer refuses it...
        let built = #expect(throws: WireError.self) {
            try Heartbeat(
                nodeID: invalid.nodeID, bootEpoch: 1, sentAt: 1, groupKey: invalid.groupKey,
                bundleDigest: invalid.bundleDigest, peersSeen: invalid.peers)
        }
        #expect(built?.code == .invalidValue)
        #expect(built?.field == "Heartbeat.\(invalid.field)")
        // ...and so does the decoder, given the same fields written by hand.
        var writer = WireWriter()
        writer.write(invalid.nodeID)
        writer.write(UInt64(1))
        writer.write(Int64(1))
        writer.write(invalid.groupKey != nil)
        writer.write(optional: invalid.groupKey) { $0.write(bytes: $1) }
        writer.write(optional: invalid.bundleDigest) { $0.write(string: $1) }
        writer.write(array: invalid.peers) { $0.write($1) }
        let decoded = #expect(throws: WireError.self) { try Heartbeat.decode(payload: writer.bytes) }
        #expect(decoded?.code == .invalidValue)
        #expect(decoded?.field == "Heartbeat.\(invalid.field)")
    }

    @Test(arguments: [true, false])
    func hasKeyMustAgreeWithTheKey(_ hasKey: Bool) {
        var writer = WireWriter()
        writer.write(UInt16(1))
        writer.write(UInt64(1))
        writer.write(Int64(1))
        writer.write(hasKey)
        writer.write(optional: hasKey ? nil : Self.groupKey) { $0.write(bytes: $1) }
        writer.write(optional: String?.none) { $0.write(string: $1) }
        writer.write(array: [UInt16]()) { $0.write($1) }
        let error = #expect(throws: WireError.self) { try Heartbeat.decode(payload: writer.bytes) }
        #expect(error?.code == .invalidValue)
        #expect(error?.field == "Heartbeat.groupKey")
        #expect(error?.offset == 19)
    }

    @Test func statusPeersFollowTheSameRules() {
        let peer = #expect(throws: WireError.self) { try PeerStatus(nodeID: 0, isUp: true, lastHeardAt: nil) }
        #expect(peer?.field == "PeerStatus.nodeID")
        let unsorted = #expect(throws: WireError.self) {
            try StatusResponse(
                nodeID: 1, bootEpoch: 1, reportedAt: 1, groupKey: nil, bundleDigest: nil,
                peers: [
                    PeerStatus(nodeID: 3, isUp: true, lastHeardAt: nil),
                    PeerStatus(nodeID: 2, isUp: true, lastHeardAt: nil),
                ])
        }
        #expect(unsorted?.field == "StatusResponse.peers")
    }

    @Test func everyWireErrorCodeIsExercised() throws {
        // One line per code, so a new code without a test is noticed here.
        var seen: Set<WireError.Code> = []
        func record(_ body: () throws(WireError) -> Void) {
            do throws(WireError) { try body() } catch { seen.insert(error.code) }
        }
        record { () throws(WireError) in
            var r = WireReader([1]); _ = try r.readUInt16("")
        }
        record { () throws(WireError) in
            var r = WireReader([0, 0, 0, 9]); _ = try r.readBytes("")
        }
        record { () throws(WireError) in try WireReader([1]).finish() }
        record { () throws(WireError) in
            var r = WireReader([0, 0, 0, 1, 0xFF]); _ = try r.readString("")
        }
        record { () throws(WireError) in
            var r = WireReader([2]); _ = try r.readBool("")
        }
        record { () throws(WireError) in
            var r = WireReader([2]); _ = try r.readOptional("") { r throws(WireError) in try r.readUInt8("") }
        }
        record { () throws(WireError) in _ = try Heartbeat.decode(payload: [0, 0]) }
        record { () throws(WireError) in _ = try MessageRegistry.all.decode(Frame.oneWay(UnregisteredMessage())) }
        record { () throws(WireError) in _ = try Frame.oneWay(StatusRequest()).decode(Heartbeat.self) }
        #expect(seen == Set(WireError.Code.allCases))
    }
}

/// A message no registry knows, as a newer peer would send.
struct UnregisteredMessage: WireMessage {
    static let type: UInt16 = 999
    init() {}
    func encode(into writer: inout WireWriter) {}
    init(from reader: inout WireReader) throws(WireError) {}
}
