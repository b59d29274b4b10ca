import QuorumProtocol
import QuorumTestKit

/// Frame bytes written field by field, without the checks of `Frame`, so tests can build frames
/// the decoder must refuse.
func rawFrame(
    length: UInt32? = nil, version: UInt8 = 1, kind: UInt8 = 1, type: UInt16 = 2, correlationID: UInt64 = 7,
    deadline: UInt32 = 0, payload: [UInt8] = []
) -> [UInt8] {
    var bytes: [UInt8] = []
    func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }
    append(length ?? UInt32(16 + payload.count))
    bytes.append(version)
    bytes.append(kind)
    append(type)
    append(correlationID)
    append(deadline)
    bytes.append(contentsOf: payload)
    return bytes
}

/// Parses hex with optional spaces, as the docs print frames.
func hexBytes(_ text: String) -> [UInt8] {
    let digits = Array(text.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

/// What decoding a whole stream gave: the frames, then the error that stopped it (if any).
struct StreamOutcome: Equatable, CustomStringConvertible {
    var frames: [Frame]
    var error: FrameError.Code?
    var errorOffset: UInt64?

    var description: String {
        "\(frames.count) frames, error \(error.map(\.rawValue) ?? "none") at \(errorOffset ?? 0)"
    }
}

/// Decodes `stream` through `FrameDecoder`, fed in the chunks `splits` cuts it into, then
/// declares the end of the stream.
func decodeIncrementally(_ stream: [UInt8], splits: [Int], limits: FrameLimits = .default) -> StreamOutcome {
    var decoder = FrameDecoder(limits: limits)
    var frames: [Frame] = []
    var start = 0
    do throws(FrameError) {
        for end in splits + [stream.count] where end >= start {
            try decoder.feed(stream[start..<end], into: &frames)
            start = end
        }
        try decoder.finish()
        return StreamOutcome(frames: frames, error: nil, errorOffset: nil)
    } catch {
        return StreamOutcome(frames: frames, error: error.code, errorOffset: error.streamOffset)
    }
}

/// An independent whole-buffer reading of the frame layout of docs/protocol.md, checked in the
/// order the document gives, to hold the incremental decoder to.
func decodeByTheSpec(
    _ stream: [UInt8], maximumFrameLength: Int = FrameLimits.default.maximumFrameLength
)
    -> StreamOutcome
{
    var frames: [Frame] = []
    var at = 0
    func integer(_ offset: Int, _ size: Int) -> UInt64 {
        stream[offset..<(offset + size)].reduce(0) { $0 << 8 | UInt64($1) }
    }
    func stop(_ code: FrameError.Code) -> StreamOutcome {
        StreamOutcome(frames: frames, error: code, errorOffset: UInt64(at))
    }
    while at < stream.count {
        let left = stream.count - at
        guard left >= 4 else { return stop(.truncatedFrame) }
        let length = Int(integer(at, 4))
        if length == 0 { return stop(.zeroLength) }
        if length > maximumFrameLength { return stop(.oversized) }
        guard left >= 5 else { return stop(.truncatedFrame) }
        if stream[at + 4] != 1 { return stop(.unsupportedVersion) }
        if length < 16 { return stop(.headerTruncated) }
        guard left >= 6 else { return stop(.truncatedFrame) }
        guard let kind = FrameKind(rawValue: stream[at + 5]) else { return stop(.unknownKind) }
        guard left >= 20 else { return stop(.truncatedFrame) }
        let correlationID = integer(at + 8, 8)
        let deadline = UInt32(integer(at + 16, 4))
        if kind != .request && deadline != 0 { return stop(.unexpectedDeadline) }
        if kind == .oneWay && correlationID != 0 { return stop(.unexpectedCorrelationID) }
        if kind != .oneWay && correlationID == 0 { return stop(.missingCorrelationID) }
        guard left >= 4 + length else { return stop(.truncatedFrame) }
        let frame = try! Frame(
            kind: kind, messageType: UInt16(integer(at + 6, 2)), correlationID: correlationID,
            deadlineMilliseconds: deadline, payload: Array(stream[(at + 20)..<(at + 4 + length)]))
        frames.append(frame)
        at += 4 + length
    }
    return StreamOutcome(frames: frames, error: nil, errorOffset: nil)
}

/// Sample messages and frames built from a seeded generator.
enum Samples {
    static func heartbeat(_ random: inout SeededGenerator) -> Heartbeat {
        let nodeID = UInt16.random(in: 1...9, using: &random)
        let peers = (1...9).filter { $0 != nodeID && Bool.random(using: &random) }.map { UInt16($0) }
        return try! Heartbeat(
            nodeID: nodeID, bootEpoch: random.next(), sentAt: Int64.random(in: 0...Int64.max, using: &random),
            groupKey: Bool.random(using: &random) ? random.bytes(Bool.random(using: &random) ? 32 : 33) : nil,
            bundleDigest: Bool.random(using: &random) ? "sha256:" + String(repeating: "ab", count: 32) : nil,
            peersSeen: peers)
    }

    static func statusResponse(_ random: inout SeededGenerator) -> StatusResponse {
        let nodeID = UInt16.random(in: 1...9, using: &random)
        let peers = (1...9).filter { $0 != nodeID && Bool.random(using: &random) }.map {
            try! PeerStatus(
                nodeID: UInt16($0), isUp: Bool.random(using: &random),
                lastHeardAt: Bool.random(using: &random) ? Int64.random(in: -5...Int64.max, using: &random) : nil)
        }
        return try! StatusResponse(
            nodeID: nodeID, bootEpoch: random.next(), reportedAt: Int64.random(in: 0...Int64.max, using: &random),
            groupKey: Bool.random(using: &random) ? random.bytes(32) : nil,
            bundleDigest: Bool.random(using: &random) ? "sha256:" + String(repeating: "0f", count: 32) : nil,
            peers: peers, identityKey: Bool.random(using: &random) ? random.bytes(32) : nil,
            outstandingNonces: Bool.random(using: &random) ? UInt32.random(in: 0...UInt32.max, using: &random) : nil)
    }

    /// A valid frame: a registered message of a fitting kind, or an opaque payload of any type.
    static func frame(_ random: inout SeededGenerator) -> Frame {
        let correlationID = UInt64.random(in: 1...UInt64.max, using: &random)
        let deadline = Bool.random(using: &random) ? UInt32.random(in: 1...60_000, using: &random) : 0
        switch Int.random(in: 0..<6, using: &random) {
        case 0:
            return Frame.oneWay(heartbeat(&random))
        case 1:
            return try! Frame.request(StatusRequest(), correlationID: correlationID, deadlineMilliseconds: deadline)
        case 2:
            let request = try! Frame.request(StatusRequest(), correlationID: correlationID)
            return try! Frame.response(statusResponse(&random), to: request)
        case 3:
            let request = try! Frame(
                kind: .request, messageType: UInt16.random(in: 4...UInt16.max, using: &random),
                correlationID: correlationID, payload: [])
            let error = ErrorResponse(
                ErrorResponse.Code(rawValue: UInt16.random(in: 0...8, using: &random)), "no handler for this type")
            return try! Frame.errorResponse(error, to: request)
        default:
            let kind = FrameKind.allCases.randomElement(using: &random)!
            return try! Frame(
                kind: kind, messageType: UInt16.random(in: 0...UInt16.max, using: &random),
                correlationID: kind == .oneWay ? 0 : correlationID,
                deadlineMilliseconds: kind == .request ? deadline : 0,
                payload: random.bytes(Int.random(in: 0...48, using: &random)))
        }
    }

    static func stream(_ random: inout SeededGenerator, frames count: Int) -> (frames: [Frame], bytes: [UInt8]) {
        let frames = (0..<count).map { _ in frame(&random) }
        var bytes: [UInt8] = []
        for frame in frames { try! frame.encode(into: &bytes) }
        return (frames, bytes)
    }
}
