import QuorumCrypto
import QuorumProtocol
import Testing

/// The log messages of docs/protocol.md ("Log messages"): each round-trips through a frame and the
/// registry, each rule refuses a payload that breaks it naming the field, and a refusal travels as
/// `reason: detail` in an error response.
@Suite("Log messages")
struct LogMessageTests {
    static let root = [UInt8](repeating: 0x5a, count: 32)
    static let entries: [[UInt8]] = [[1, 1, 0xaa], [1, 2, 0xbb, 0xcc]]

    static func slot(_ id: UInt16) throws -> SignerSlot {
        try SignerSlot(identifier: id, bootEpoch: 7, nonceID: UInt64(id), commitment: [UInt8](repeating: 1, count: 64))
    }

    static func roundTrip<M: WireMessage>(_ message: M) throws {
        let frame = try Frame.request(message, correlationID: 3)
        var decoder = FrameDecoder()
        let decoded = try #require(try decoder.feed(frame.encoded()).first)
        #expect(try decoded.decode(M.self) == message)
        #expect(try MessageRegistry.all.decode(decoded) as? M == message)
        #expect(try M.decode(payload: message.encodedPayload()).encodedPayload() == message.encodedPayload())
    }

    static func refuses<M: WireMessage>(
        _: M.Type, _ payload: [UInt8], field: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(sourceLocation: sourceLocation) {
            _ = try M.decode(payload: payload)
        } throws: { error in
            guard let error = error as? WireError else { return false }
            return error.field.contains(field)
        }
    }

    static var staged: StagedBatch {
        try! StagedBatch(
            term: 0x1_0001, proposer: 1, baseSize: 10, baseRoot: root, size: 12, root: root, entries: entries)
    }

    @Test func typeNumbersAreTheDocumentedOnes() {
        let types: [any WireMessage.Type] = [
            LogSubmit.self, LogSubmitResponse.self, LogGossip.self, LogBatch.self, LogBatchResponse.self,
            CheckpointPublish.self, LogStatusRequest.self, LogStatusResponse.self, LogFetchRequest.self,
            LogFetchResponse.self,
        ]
        #expect(types.map { $0.type } == Array(74...83))
        for type in 74...83 { #expect(MessageRegistry.all.contains(UInt16(type))) }
    }

    @Test func everyMessageRoundTrips() throws {
        try Self.roundTrip(try LogSubmit(entries: Self.entries))
        try Self.roundTrip(
            try LogSubmitResponse(
                nodeID: 2, outcomes: [LogSubmitOutcome(.accepted), LogSubmitOutcome(.refused, reason: "x: y")]))
        try Self.roundTrip(try LogGossip(entries: Self.entries))
        try Self.roundTrip(
            try LogBatch(
                term: 0x2_0003, proposer: 3, baseSize: 10, baseRoot: Self.root, entries: Self.entries,
                signers: [try Self.slot(1), try Self.slot(3)]))
        try Self.roundTrip(
            try LogBatchResponse(
                nodeID: 1, term: 5, size: 12, root: Self.root, cosignature: [UInt8](repeating: 2, count: 76),
                share: [UInt8](repeating: 3, count: 32)))
        try Self.roundTrip(try CheckpointPublish(term: 5, note: "o\n1\nx\n\n— o abc=\n"))
        try Self.roundTrip(LogStatusRequest(term: 0x1_0002))
        for (staged, checkpoint, stopped) in [(Self.staged, "note", "why"), (nil, nil, nil)]
            as [(StagedBatch?, String?, String?)]
        {
            try Self.roundTrip(
                try LogStatusResponse(
                    nodeID: 4, highestTerm: 9, promised: true, sequencer: 1, logSize: 10, logRoot: Self.root,
                    checkpoint: checkpoint, checkpointAt: 1_700_000_000_000, staged: staged, pending: 3,
                    stopped: stopped))
        }
        try Self.roundTrip(try LogFetchRequest(from: 5, count: 100))
        try Self.roundTrip(try LogFetchResponse(nodeID: 2, from: 5, entries: Self.entries, checkpoints: ["a", "b"]))
        try Self.roundTrip(try LogFetchResponse(nodeID: 2, from: 5, entries: [], checkpoints: []))
    }

    @Test func rulesRefuseWhatBreaksThem() throws {
        #expect(throws: WireError.self) { try LogSubmit(entries: []) }
        #expect(throws: WireError.self) { try LogSubmit(entries: [[]]) }
        #expect(throws: WireError.self) { try LogSubmit(entries: [[UInt8](repeating: 0, count: 65_536)]) }
        // A term that is not the proposer's.
        #expect(throws: WireError.self) {
            try LogBatch(
                term: 0x1_0002, proposer: 3, baseSize: 0, baseRoot: Self.root, entries: Self.entries,
                signers: [try Self.slot(1)])
        }
        let batch = try LogBatch(
            term: 0x1_0003, proposer: 3, baseSize: 0, baseRoot: Self.root, entries: Self.entries,
            signers: [try Self.slot(1)])
        var payload = batch.encodedPayload()
        payload[9] = 2  // proposer's low byte: 3 → 2
        Self.refuses(LogBatch.self, payload, field: "term")
        #expect(throws: WireError.self) {
            try LogBatch(
                term: 0x1_0003, proposer: 3, baseSize: 0, baseRoot: [1], entries: Self.entries,
                signers: [try Self.slot(1)])
        }
        #expect(throws: WireError.self) {
            try LogBatchResponse(
                nodeID: 1, term: 1, size: 1, root: Self.root, cosignature: [UInt8](repeating: 0, count: 75), share: [])
        }
        #expect(throws: WireError.self) {
            try StagedBatch(
                term: 1, proposer: 1, baseSize: 10, baseRoot: Self.root, size: 13, root: Self.root,
                entries: Self.entries)
        }
        #expect(throws: WireError.self) { try LogFetchRequest(from: 0, count: 0) }
        #expect(throws: WireError.self) { try LogFetchRequest(from: 0, count: 4097) }
        #expect(throws: WireError.self) { try CheckpointPublish(term: 1, note: "") }
    }

    @Test func refusalsTravelAsReasonAndDetail() {
        for reason in LogRefusal.Reason.allCases {
            let refusal = LogRefusal(reason, "the detail: with a colon")
            let response = refusal.errorResponse
            #expect(LogRefusal(response) == refusal)
            #expect(response.code == (reason == .noGroupKey || reason == .overloaded ? .unavailable : .refused))
        }
        #expect(LogRefusal(ErrorResponse(.refused, "not-a-reason: x")) == nil)
    }
}
