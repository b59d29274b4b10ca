// libFuzzer harness for the node RPC frame decoder and message codec. Not part of the package:
// scripts/fuzz-frames.sh compiles it together with Sources/QuorumProtocol into one module with
// `swiftc -sanitize=fuzzer,address -parse-as-library`, so it uses the module's types directly.
//
// The first input byte picks what the rest is fed to and how; every property violation traps
// (fatalError), which libFuzzer reports as a crash with the input that caused it.
//
//   byte 0 % 4 == 0, 1  the rest is a frame stream under the default limits
//   byte 0 % 4 == 2     the rest is a payload for message (byte 0 >> 2) % 4
//   byte 0 % 4 == 3     the rest is a frame stream under a 64-byte frame limit
//
// Properties (the same as Tests/QuorumProtocolTests/FrameFuzzTests.swift):
// - decoding never traps; every outcome is frames or a FrameError;
// - fed whole, one byte at a time, or in chunks of (byte 0 >> 2) % 17 + 1 bytes, the decoder
//   gives the same frames and the same refusal at the same stream offset;
// - the decoded frames re-encode to exactly the bytes they came from;
// - a payload that decodes as a message re-encodes to the same bytes (one encoding per value).

@_cdecl("LLVMFuzzerTestOneInput")
public func frameFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let selector = data[0]
    let input = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    switch selector % 4 {
    case 2:
        fuzzPayload(input, message: Int(selector >> 2) % 4)
    case 3:
        fuzzStream(input, limits: FrameLimits(maximumFrameLength: 64), chunk: Int(selector >> 2) % 17 + 1)
    default:
        fuzzStream(input, limits: .default, chunk: Int(selector >> 2) % 17 + 1)
    }
    return 0
}

private struct Outcome: Equatable {
    var frames: [Frame] = []
    var error: FrameError?
}

private func decode(_ stream: [UInt8], limits: FrameLimits, chunk: Int) -> Outcome {
    var decoder = FrameDecoder(limits: limits)
    var outcome = Outcome()
    do throws(FrameError) {
        var start = 0
        while start < stream.count {
            let end = min(stream.count, start + chunk)
            try decoder.feed(stream[start..<end], into: &outcome.frames)
            start = end
        }
        try decoder.finish()
    } catch {
        outcome.error = error
        guard decoder.failure == error, decoder.bufferedByteCount == 0 else {
            fatalError("the decoder is not dead after \(error)")
        }
    }
    return outcome
}

private func fuzzStream(_ stream: [UInt8], limits: FrameLimits, chunk: Int) {
    let whole = decode(stream, limits: limits, chunk: max(stream.count, 1))
    let chunked = decode(stream, limits: limits, chunk: chunk)
    let bytewise = decode(stream, limits: limits, chunk: 1)
    guard whole == chunked, whole == bytewise else {
        fatalError("chunking changed the outcome: \(whole) / \(chunked) / \(bytewise)")
    }
    var reencoded: [UInt8] = []
    for frame in whole.frames {
        do throws(FrameError) {
            try frame.encode(into: &reencoded, limits: limits)
        } catch {
            fatalError("a decoded frame does not encode: \(error)")
        }
        checkPayload(frame)
    }
    guard reencoded[...] == stream.prefix(reencoded.count) else {
        fatalError("decoded frames re-encode to other bytes")
    }
    if whole.error == nil && reencoded.count != stream.count {
        fatalError("bytes left over without an error")
    }
}

private func checkPayload(_ frame: Frame) {
    do throws(WireError) {
        let reencoded: [UInt8]
        if frame.kind == .errorResponse {
            reencoded = try frame.errorResponse().encodedPayload()
        } else {
            reencoded = try MessageRegistry.all.decode(frame).encodedPayload()
        }
        guard reencoded == frame.payload else { fatalError("payload of \(frame.kind) re-encodes differently") }
    } catch {
        guard !error.reason.isEmpty else { fatalError("a WireError without a reason") }
    }
}

private func fuzzPayload(_ payload: [UInt8], message: Int) {
    func roundTrip<Message: WireCodable>(_: Message.Type) {
        do throws(WireError) {
            let decoded = try Message.decode(payload: payload)
            guard decoded.encodedPayload() == payload else {
                fatalError("\(Message.self) re-encodes differently")
            }
        } catch {
            guard !error.reason.isEmpty, error.offset <= payload.count else {
                fatalError("a WireError out of bounds or without a reason: \(error)")
            }
        }
    }
    switch message {
    case 0: roundTrip(Heartbeat.self)
    case 1: roundTrip(StatusResponse.self)
    case 2: roundTrip(StatusRequest.self)
    default: roundTrip(ErrorResponse.self)
    }
}
