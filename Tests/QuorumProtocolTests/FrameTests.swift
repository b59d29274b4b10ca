import QuorumProtocol
import QuorumTestKit
import Testing

@Suite struct FrameLayout {
    @Test func requestBytesAreTheDocumentedLayout() throws {
        let frame = try Frame(
            kind: .request, messageType: 0x0102, correlationID: 0x1122_3344_5566_7788, deadlineMilliseconds: 1500,
            payload: [0xAA, 0xBB])
        // The example of docs/protocol.md, field by field.
        #expect(try frame.encoded() == hexBytes("00000012 01 01 0102 1122334455667788 000005dc aabb"))
        #expect(frame.length == 18)
        #expect(frame.deadline == .milliseconds(1500))
    }

    @Test func oneWayHeartbeatBytesAreTheDocumentedExample() throws {
        let heartbeat = try Heartbeat(
            nodeID: 2, bootEpoch: 0x0102_0304_0506_0708, sentAt: 1_700_000_000_000, groupKey: nil,
            bundleDigest: nil, peersSeen: [1, 3])
        #expect(
            try Frame.oneWay(heartbeat).encoded()
                == hexBytes(
                    """
                    0000002e 01 04 0001 0000000000000000 00000000
                    0002 0102030405060708 0000018bcfe56800 00 00 00 00000002 0001 0003 00
                    """))
    }

    @Test func framesRoundTripThroughTheDecoder() throws {
        var random = SeededGenerator(seed: 1)
        let (frames, bytes) = Samples.stream(&random, frames: 50)
        var decoder = FrameDecoder()
        #expect(try decoder.feed(bytes) == frames)
        try decoder.finish()
        #expect(decoder.bufferedByteCount == 0)
        #expect(decoder.streamOffset == UInt64(bytes.count))
    }

    @Test func anEmptyPayloadIsAFrame() throws {
        let frame = try Frame(kind: .response, messageType: 9, correlationID: 3, payload: [])
        var decoder = FrameDecoder()
        #expect(try decoder.feed(frame.encoded()) == [frame])
    }

    @Test func aFrameOfExactlyTheLimitIsAccepted() throws {
        let limits = FrameLimits(maximumFrameLength: 64)
        let frame = try Frame(kind: .oneWay, messageType: 1, correlationID: 0, payload: Array(repeating: 7, count: 48))
        var decoder = FrameDecoder(limits: limits)
        #expect(try decoder.feed(frame.encoded(limits: limits)) == [frame])
    }

    @Test func aRequestWithoutDeadlineHasNone() throws {
        let frame = try Frame.request(StatusRequest(), correlationID: 1)
        #expect(frame.deadline == nil)
        #expect(frame.deadlineMilliseconds == 0)
    }
}

@Suite struct FrameRefusals {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let bytes: [UInt8]
        let code: FrameError.Code
        /// Bytes after which the decoder must have refused (the earliest byte that proves the
        /// frame bad).
        let refusedAfter: Int
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "zero length", bytes: [0, 0, 0, 0, 1, 1], code: .zeroLength, refusedAfter: 4),
        Case(name: "4 GiB length prefix", bytes: [0xFF, 0xFF, 0xFF, 0xFF], code: .oversized, refusedAfter: 4),
        Case(
            name: "one byte over the 4 MiB default", bytes: rawFrame(length: 4 << 20 + 1), code: .oversized,
            refusedAfter: 4),
        Case(name: "version 0", bytes: rawFrame(version: 0), code: .unsupportedVersion, refusedAfter: 5),
        Case(name: "version 2", bytes: rawFrame(version: 2), code: .unsupportedVersion, refusedAfter: 5),
        Case(name: "length 1 (version byte only)", bytes: [0, 0, 0, 1, 1], code: .headerTruncated, refusedAfter: 5),
        Case(name: "length 15", bytes: rawFrame(length: 15), code: .headerTruncated, refusedAfter: 5),
        Case(name: "kind 0", bytes: rawFrame(kind: 0), code: .unknownKind, refusedAfter: 6),
        Case(name: "kind 5", bytes: rawFrame(kind: 5), code: .unknownKind, refusedAfter: 6),
        Case(name: "kind 255", bytes: rawFrame(kind: 255), code: .unknownKind, refusedAfter: 6),
        Case(
            name: "response with a deadline", bytes: rawFrame(kind: 2, deadline: 10), code: .unexpectedDeadline,
            refusedAfter: 20),
        Case(
            name: "one-way with a deadline", bytes: rawFrame(kind: 4, correlationID: 0, deadline: 1),
            code: .unexpectedDeadline, refusedAfter: 20),
        Case(
            name: "request with correlation id 0", bytes: rawFrame(kind: 1, correlationID: 0),
            code: .missingCorrelationID, refusedAfter: 20),
        Case(
            name: "error response with correlation id 0", bytes: rawFrame(kind: 3, correlationID: 0),
            code: .missingCorrelationID, refusedAfter: 20),
        Case(
            name: "one-way with a correlation id", bytes: rawFrame(kind: 4, correlationID: 9),
            code: .unexpectedCorrelationID, refusedAfter: 20),
    ]

    @Test(arguments: cases) func refusedAtTheEarliestByte(_ refusal: Case) {
        var decoder = FrameDecoder()
        for (index, byte) in refusal.bytes.enumerated() {
            do {
                #expect(try decoder.feed([byte]) == [], "byte \(index)")
                #expect(index + 1 < refusal.refusedAfter, "accepted byte \(index + 1) of \(refusal.name)")
            } catch {
                #expect(error.code == refusal.code)
                #expect(index + 1 == refusal.refusedAfter)
                #expect(error.streamOffset == 0)
                #expect(decoder.bufferedByteCount == 0)
                return
            }
        }
        Issue.record("\(refusal.name) was never refused")
    }

    @Test(arguments: cases) func refusedWholeAndAfterAValidFrame(_ refusal: Case) throws {
        let valid = try Frame.request(StatusRequest(), correlationID: 5).encoded()
        var decoder = FrameDecoder()
        var frames: [Frame] = []
        let error = #expect(throws: FrameError.self) { try decoder.feed(valid + refusal.bytes, into: &frames) }
        #expect(error?.code == refusal.code)
        // The frame before the refused one is handed over, and the error names where the bad one
        // started.
        #expect(frames.count == 1)
        #expect(error?.streamOffset == UInt64(valid.count))
        #expect(error?.description.hasPrefix(refusal.code.rawValue + ": ") == true)
    }

    @Test func everyCodeIsCovered() {
        let covered = Set(Self.cases.map(\.code)).union([.truncatedFrame])
        #expect(covered == Set(FrameError.Code.allCases))
    }

    @Test func theSizeCapIsEnforcedFromThePrefixAlone() throws {
        // A peer claiming 4 GiB is refused after 4 bytes: the decoder neither waits for the body
        // nor reserves room for it.
        var decoder = FrameDecoder()
        #expect(try decoder.feed([0xFF, 0xFF, 0xFF]) == [])
        #expect(decoder.bufferedByteCount == 3)
        let error = #expect(throws: FrameError.self) { try decoder.feed([0xFF]) }
        #expect(error?.code == .oversized)
        #expect(error?.reason == "length prefix 4294967295 exceeds the limit of 4194304 bytes")
        #expect(decoder.bufferedByteCount == 0)
        #expect(decoder.streamOffset == 4)
    }

    @Test func aConfiguredCapIsEnforced() {
        var decoder = FrameDecoder(limits: FrameLimits(maximumFrameLength: 100))
        let error = #expect(throws: FrameError.self) { try decoder.feed(rawFrame(length: 101)) }
        #expect(error?.code == .oversized)
    }

    @Test func aClaimedLengthHoldsOnlyTheBytesSent() throws {
        // The length says 4 MiB; only the 30 bytes that arrived are held.
        var decoder = FrameDecoder()
        #expect(try decoder.feed(rawFrame(length: 4 << 20, payload: Array(repeating: 1, count: 10))) == [])
        #expect(decoder.bufferedByteCount == 30)
    }

    @Test(arguments: [1, 3, 4, 5, 12, 20, 21, 29])
    func aStreamEndingInsideAFrameIsTruncated(keeping count: Int) throws {
        let bytes =
            try Frame.request(StatusRequest(), correlationID: 1, deadlineMilliseconds: 0).encoded()
            + rawFrame(kind: 2, payload: Array(repeating: 0, count: 10))
        let whole = bytes.count
        var decoder = FrameDecoder()
        #expect(try decoder.feed(bytes.prefix(20 + count)).count == 1)
        let error = #expect(throws: FrameError.self) { try decoder.finish() }
        #expect(error?.code == .truncatedFrame)
        #expect(error?.streamOffset == 20)
        #expect(20 + count < whole)
    }

    @Test func aFailedDecoderStaysFailed() throws {
        var decoder = FrameDecoder()
        let first = #expect(throws: FrameError.self) { try decoder.feed(rawFrame(version: 9)) }
        #expect(decoder.isFailed)
        #expect(decoder.failure == first)
        let valid = try Frame.request(StatusRequest(), correlationID: 1).encoded()
        let again = #expect(throws: FrameError.self) { try decoder.feed(valid) }
        #expect(again == first)
        let atEnd = #expect(throws: FrameError.self) { try decoder.finish() }
        #expect(atEnd == first)
    }
}

@Suite struct FrameConstruction {
    @Test func headerRulesAreTheDecodersRules() {
        #expect(
            throws: FrameError(.unexpectedDeadline, "a response frame carries deadline 5 ms; only requests have one")
        ) {
            try Frame(kind: .response, messageType: 1, correlationID: 1, deadlineMilliseconds: 5, payload: [])
        }
        let missing = #expect(throws: FrameError.self) {
            try Frame(kind: .request, messageType: 1, correlationID: 0, payload: [])
        }
        #expect(missing?.code == .missingCorrelationID)
        let unexpected = #expect(throws: FrameError.self) {
            try Frame(kind: .oneWay, messageType: 1, correlationID: 4, payload: [])
        }
        #expect(unexpected?.code == .unexpectedCorrelationID)
    }

    @Test func answeringAOneWayFrameIsRefused() {
        let heartbeat = Frame.oneWay(StatusRequest())
        let error = #expect(throws: FrameError.self) { try Frame.response(StatusRequest(), to: heartbeat) }
        #expect(error?.code == .missingCorrelationID)
    }

    @Test func encodingRefusesAFrameOverTheCap() throws {
        let limits = FrameLimits(maximumFrameLength: 32)
        let frame = try Frame(kind: .oneWay, messageType: 1, correlationID: 0, payload: Array(repeating: 0, count: 17))
        var buffer: [UInt8] = [1, 2, 3]
        let error = #expect(throws: FrameError.self) { try frame.encode(into: &buffer, limits: limits) }
        #expect(error?.code == .oversized)
        #expect(buffer == [1, 2, 3])
        #expect(limits.maximumPayloadLength == 16)
    }

    @Test func limitsBelowAHeaderAreAProgrammingError() async {
        await #expect(processExitsWith: .failure) { _ = FrameLimits(maximumFrameLength: 15) }
    }
}
