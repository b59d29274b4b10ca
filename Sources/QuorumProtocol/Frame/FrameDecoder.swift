/// Splits one connection's byte stream into ``Frame``s, fed chunks of any size as they arrive.
///
/// Every header field is checked as soon as its bytes arrive, so a bad frame is refused at the
/// earliest byte that proves it bad, whatever the chunking: the length prefix is checked against
/// ``FrameLimits/maximumFrameLength`` from its four bytes alone, before any of the body is held. A
/// payload is buffered only as its bytes arrive (no allocation sized by the peer's claim), so a
/// peer that announces a large frame and stalls holds no more memory than it has sent.
///
/// After a ``FrameError`` the decoder is dead: every later call throws the same error. The caller
/// closes the connection and logs the error's description; no other connection shares the state.
///
/// The decoder is a plain value with no I/O; the NIO shell wraps it in a `ByteToMessageDecoder`.
public struct FrameDecoder: Sendable {
    /// The limits frames must keep.
    public let limits: FrameLimits
    /// The refusal that killed this decoder, if one did.
    public private(set) var failure: FrameError?
    /// Bytes accepted from the stream so far, across all chunks.
    public private(set) var streamOffset: UInt64 = 0

    /// The prefix and header of the frame being read (at most 4 + 16 bytes).
    private var header: [UInt8] = []
    /// The payload of the frame being read, as much as has arrived.
    private var payload: [UInt8] = []
    /// The length prefix of the frame being read, once its four bytes have arrived.
    private var frameLength = 0
    /// Where in the stream the frame being read started.
    private var frameStart: UInt64 = 0

    private static let fullHeader = Frame.prefixLength + Frame.headerLength

    /// A decoder for a new connection.
    public init(limits: FrameLimits = .default) {
        self.limits = limits
        header.reserveCapacity(Self.fullHeader)
    }

    /// Bytes held for a frame not yet complete; 0 between frames.
    public var bufferedByteCount: Int { header.count + payload.count }

    /// Whether a ``FrameError`` has killed the decoder.
    public var isFailed: Bool { failure != nil }

    /// Decodes `chunk`, appending every frame it completes to `frames`.
    ///
    /// The frames completed before a refused one are appended before the error is thrown, so a
    /// caller that wants to act on them can; a caller that does not can use ``feed(_:)``.
    ///
    /// - Throws: the ``FrameError`` of the first refused frame, and from then on on every call.
    public mutating func feed(_ chunk: some Collection<UInt8>, into frames: inout [Frame]) throws(FrameError) {
        if let failure { throw failure }
        let error: FrameError?
        if let result = chunk.withContiguousStorageIfAvailable({ process($0, into: &frames) }) {
            error = result
        } else {
            error = Array(chunk).withUnsafeBufferPointer { process($0, into: &frames) }
        }
        if let error { throw error }
    }

    /// Decodes `chunk` and returns the frames it completes, in stream order (often none, when
    /// the chunk ends inside a frame).
    ///
    /// - Throws: the ``FrameError`` of the first refused frame, and from then on on every call.
    ///   Frames completed earlier in the same chunk are dropped with the connection.
    public mutating func feed(_ chunk: some Collection<UInt8>) throws(FrameError) -> [Frame] {
        var frames: [Frame] = []
        try feed(chunk, into: &frames)
        return frames
    }

    /// Declares the end of the stream.
    ///
    /// - Throws: ``FrameError/Code/truncatedFrame`` when the stream ended inside a frame, or the
    ///   error that killed the decoder earlier.
    public mutating func finish() throws(FrameError) {
        if let failure { throw failure }
        guard bufferedByteCount == 0 else {
            let reason =
                header.count < Frame.prefixLength
                ? "the stream ended inside a length prefix, \(header.count) of its 4 bytes read"
                : "the stream ended \(bufferedByteCount) bytes into a frame of \(Frame.prefixLength + frameLength) bytes"
            throw fail(FrameError(.truncatedFrame, reason))
        }
    }

    /// Consumes `bytes`; returns the error that killed the decoder, if one did.
    private mutating func process(_ bytes: UnsafeBufferPointer<UInt8>, into frames: inout [Frame]) -> FrameError? {
        var index = 0
        while index < bytes.count {
            if header.count < Self.fullHeader {
                header.append(bytes[index])
                index += 1
                streamOffset += 1
                do throws(FrameError) {
                    try checkHeaderProgress()
                } catch {
                    return fail(error)
                }
                if header.count == Self.fullHeader && frameLength == Frame.headerLength {
                    frames.append(completeFrame())
                }
                continue
            }
            let wanted = frameLength - Frame.headerLength - payload.count
            let taken = min(wanted, bytes.count - index)
            payload.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[index..<(index + taken)]))
            index += taken
            streamOffset += UInt64(taken)
            if payload.count == frameLength - Frame.headerLength {
                frames.append(completeFrame())
            }
        }
        return nil
    }

    /// Checks the header field whose last byte just arrived.
    private mutating func checkHeaderProgress() throws(FrameError) {
        switch header.count {
        case Frame.prefixLength:
            let length = header.bigEndianInteger(UInt32.self, at: 0)
            if length == 0 {
                throw FrameError(
                    .zeroLength, "length prefix 0; a frame holds at least its \(Frame.headerLength)-byte header")
            }
            if Int(length) > limits.maximumFrameLength {
                throw FrameError(
                    .oversized, "length prefix \(length) exceeds the limit of \(limits.maximumFrameLength) bytes")
            }
            frameLength = Int(length)
        case Frame.prefixLength + 1:
            let version = header[4]
            if version != Frame.protocolVersion {
                throw FrameError(
                    .unsupportedVersion,
                    "protocol version \(version); this node speaks version \(Frame.protocolVersion)")
            }
            if frameLength < Frame.headerLength {
                throw FrameError(
                    .headerTruncated,
                    "length prefix \(frameLength) cannot hold the \(Frame.headerLength)-byte version \(version) header")
            }
        case Frame.prefixLength + 2:
            if FrameKind(rawValue: header[5]) == nil {
                throw FrameError(
                    .unknownKind, "frame kind \(header[5]); known kinds are 1 (request) through 4 (one-way)")
            }
        case Self.fullHeader:
            try Frame.checkHeader(
                kind: FrameKind(rawValue: header[5])!,
                correlationID: header.bigEndianInteger(UInt64.self, at: 8),
                deadlineMilliseconds: header.bigEndianInteger(UInt32.self, at: 16))
        default:
            break
        }
    }

    /// The frame whose last byte just arrived; resets for the next one.
    private mutating func completeFrame() -> Frame {
        let frame = Frame(
            unchecked: FrameKind(rawValue: header[5])!,
            messageType: header.bigEndianInteger(UInt16.self, at: 6),
            correlationID: header.bigEndianInteger(UInt64.self, at: 8),
            deadlineMilliseconds: header.bigEndianInteger(UInt32.self, at: 16),
            payload: payload)
        header.removeAll(keepingCapacity: true)
        payload = []
        frameLength = 0
        frameStart = streamOffset
        return frame
    }

    private mutating func fail(_ error: FrameError) -> FrameError {
        let located = error.at(streamOffset: frameStart)
        failure = located
        header = []
        payload = []
        return located
    }
}

extension Array where Element == UInt8 {
    /// The big-endian integer at `offset`; the caller has checked the bounds.
    func bigEndianInteger<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        var value: T = 0
        for byte in self[offset..<(offset + MemoryLayout<T>.size)] {
            value = value << 8 | T(byte)
        }
        return value
    }
}
