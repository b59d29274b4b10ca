import QuorumProtocol
import QuorumTestKit
import Testing

/// Deterministic fuzzing of the frame decoder and the message codec: the same inputs on every run
/// (fixed seeds), so a failure reproduces. `scripts/fuzz-frames.sh` runs the coverage-guided
/// libFuzzer harness over the same properties.
@Suite struct FrameFuzz {
    /// Valid streams of 1 to 4 frames, the material every mutation starts from.
    static func corpus(seed: UInt64, count: Int) -> [[UInt8]] {
        var random = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Samples.stream(&random, frames: Int.random(in: 1...4, using: &random)).bytes }
    }

    /// One mutation of `input`, chosen by `random`; sometimes several stacked.
    static func mutate(_ input: [UInt8], corpus: [[UInt8]], _ random: inout SeededGenerator) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...3, using: &random) {
            switch Int.random(in: 0..<9, using: &random) {
            case 0 where !bytes.isEmpty:  // flip one bit
                let index = Int.random(in: 0..<bytes.count, using: &random)
                bytes[index] ^= 1 << UInt8.random(in: 0..<8, using: &random)
            case 1 where !bytes.isEmpty:  // overwrite a byte, favouring the header
                let index = Int.random(in: 0..<min(bytes.count, 24), using: &random)
                bytes[index] = UInt8.random(in: 0...255, using: &random)
            case 2:  // truncate
                bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &random)))
            case 3:  // splice: a prefix of this one, a suffix of another
                let other = corpus.randomElement(using: &random)!
                bytes =
                    Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &random)))
                    + other.suffix(Int.random(in: 0...other.count, using: &random))
            case 4:  // insert random bytes
                let index = Int.random(in: 0...bytes.count, using: &random)
                bytes.insert(contentsOf: random.bytes(Int.random(in: 1...8, using: &random)), at: index)
            case 5 where !bytes.isEmpty:  // delete a range
                let start = Int.random(in: 0..<bytes.count, using: &random)
                bytes.removeSubrange(start..<min(bytes.count, start + Int.random(in: 1...8, using: &random)))
            case 6 where bytes.count >= 4:  // rewrite the first length prefix
                let length = [
                    UInt32.random(in: 0...40, using: &random), UInt32.random(in: 0...UInt32.max, using: &random),
                    UInt32(4 << 20), UInt32(4 << 20 + 1),
                ].randomElement(using: &random)!
                withUnsafeBytes(of: length.bigEndian) { bytes.replaceSubrange(0..<4, with: $0) }
            case 7:  // append another valid stream
                bytes += corpus.randomElement(using: &random)!
            default:  // random bytes
                bytes = random.bytes(Int.random(in: 0...64, using: &random))
            }
        }
        return bytes
    }

    static func randomSplits(_ count: Int, _ random: inout SeededGenerator) -> [Int] {
        (0..<Int.random(in: 0...6, using: &random)).map { _ in Int.random(in: 0...count, using: &random) }.sorted()
    }

    /// The properties every input must keep, whatever it is.
    static func check(_ input: [UInt8], _ random: inout SeededGenerator) {
        let specified = decodeByTheSpec(input)
        // Chunked at random, and one byte at a time: the same frames, the same refusal, at the
        // same stream offset.
        let chunked = decodeIncrementally(input, splits: randomSplits(input.count, &random))
        #expect(chunked == specified, "input \(input)")
        if input.count <= 64 {
            #expect(decodeIncrementally(input, splits: Array(0..<input.count)) == specified, "input \(input)")
        }
        // Re-encoding the frames gives back exactly the bytes they were decoded from.
        var reencoded: [UInt8] = []
        for frame in chunked.frames { try! frame.encode(into: &reencoded) }
        #expect(reencoded[...] == input.prefix(reencoded.count), "input \(input)")
        // Every payload decodes as a message or is a WireError, and what decodes re-encodes to
        // the same payload (the codec has one encoding per value).
        for frame in chunked.frames {
            checkPayload(frame)
        }
    }

    static func checkPayload(_ frame: Frame) {
        do throws(WireError) {
            if frame.kind == .errorResponse {
                #expect(try frame.errorResponse().encodedPayload() == frame.payload)
            } else {
                let message = try MessageRegistry.all.decode(frame)
                #expect(message.encodedPayload() == frame.payload)
            }
        } catch {
            #expect(!error.reason.isEmpty)
        }
    }

    @Test func mutatedStreamsDecodeAsTheSpecSays() {
        let corpus = Self.corpus(seed: 0x5EED, count: 200)
        var random = SeededGenerator(seed: 0xF022)
        var outcomes: [String: Int] = [:]
        for iteration in 0..<30_000 {
            let input = Self.mutate(corpus[iteration % corpus.count], corpus: corpus, &random)
            Self.check(input, &random)
            outcomes[decodeByTheSpec(input).error?.rawValue ?? "frames", default: 0] += 1
        }
        // The mutations reach every refusal, not only the easy ones.
        #expect(Set(outcomes.keys) == Set(FrameError.Code.allCases.map(\.rawValue) + ["frames"]), "\(outcomes)")
    }

    @Test func randomBytesNeverTrap() {
        var random = SeededGenerator(seed: 0xBAD)
        for _ in 0..<10_000 {
            Self.check(random.bytes(Int.random(in: 0...40, using: &random)), &random)
        }
    }

    @Test func validStreamsDecodeIdenticallyAtEveryChunkBoundary() {
        var random = SeededGenerator(seed: 0xC4)
        for _ in 0..<100 {
            let (frames, bytes) = Samples.stream(&random, frames: Int.random(in: 1...3, using: &random))
            for cut in 0...bytes.count {
                #expect(decodeIncrementally(bytes, splits: [cut]).frames == frames, "cut at \(cut)")
            }
            let cuts = (0..<3).map { _ in Int.random(in: 0...bytes.count, using: &random) }.sorted()
            #expect(decodeIncrementally(bytes, splits: cuts) == StreamOutcome(frames: frames, error: nil))
            #expect(decodeIncrementally(bytes, splits: Array(0..<bytes.count)).frames == frames)
        }
    }

    @Test func mutatedPayloadsDecodeOrAreRefused() throws {
        var random = SeededGenerator(seed: 0x9A7)
        var decodedCount = 0
        for _ in 0..<20_000 {
            let base: Frame =
                Bool.random(using: &random)
                ? Frame.oneWay(Samples.heartbeat(&random))
                : try Frame.response(
                    Samples.statusResponse(&random), to: Frame.request(StatusRequest(), correlationID: 1))
            var payload = base.payload
            for _ in 0..<Int.random(in: 1...2, using: &random) {
                switch Int.random(in: 0..<4, using: &random) {
                case 0:
                    let index = Int.random(in: 0..<payload.count, using: &random)
                    payload[index] ^= 1 << UInt8.random(in: 0..<8, using: &random)
                case 1:
                    payload = Array(payload.prefix(Int.random(in: 0...payload.count, using: &random)))
                case 2:
                    payload.insert(
                        UInt8.random(in: 0...255, using: &random), at: Int.random(in: 0...payload.count, using: &random)
                    )
                default:
                    let index = Int.random(in: 0..<payload.count, using: &random)
                    payload[index] = [0, 1, 2, 0xFF].randomElement(using: &random)!
                }
                if payload.isEmpty { break }
            }
            let frame = try Frame(
                kind: base.kind, messageType: base.messageType, correlationID: base.correlationID, payload: payload)
            if (try? MessageRegistry.all.decode(frame)) != nil { decodedCount += 1 }
            Self.checkPayload(frame)
        }
        // Some mutations (a changed epoch or timestamp) still decode; most do not.
        #expect(decodedCount > 100)
        #expect(decodedCount < 20_000)
    }
}
