import Foundation
import Logging
import Synchronization
import Testing

@testable import QuorumTelemetry

/// Lines a sink received.
final class CapturedLines: Sendable {
    private let lines = Mutex<[[UInt8]]>([])

    var sink: JSONLogSink { JSONLogSink { line in self.lines.withLock { $0.append(line) } } }

    var all: [[UInt8]] { lines.withLock { $0 } }

    /// Each line parsed as a JSON object.
    func objects() throws -> [[String: Any]] {
        try all.map { line in
            #expect(line.last == UInt8(ascii: "\n"), "a line ends with one newline")
            #expect(!line.dropLast().contains(UInt8(ascii: "\n")), "a line holds no other newline")
            return try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
        }
    }
}

@Suite("JSON log lines: one object per line, RFC 3339 times, flattened metadata")
struct JSONLogHandlerTests {
    static let instant = Date(timeIntervalSince1970: 1_777_636_800.123)  // 2026-05-01T12:00:00.123Z

    @Test("a line carries ts, level, label, source, message and the metadata of the handler, the provider and the call")
    func fields() throws {
        let captured = CapturedLines()
        var handler = JSONLogHandler(
            label: "quorum-proxy", sink: captured.sink,
            metadataProvider: Logger.MetadataProvider { ["trace": "t-1"] }, clock: { Self.instant })
        handler.logLevel = .debug
        handler[metadataKey: "node"] = "3"
        var logger = Logger(label: "quorum-proxy") { _ in handler }
        logger.logLevel = .debug
        logger.info("allowed", metadata: ["request_id": "req_00ff", "node": "4"])
        logger.trace("below the level")

        let objects = try captured.objects()
        try #require(objects.count == 1, "the trace line is below the handler's level")
        let line = objects[0]
        #expect(line["ts"] as? String == "2026-05-01T12:00:00.123Z")
        #expect(line["level"] as? String == "info")
        #expect(line["label"] as? String == "quorum-proxy")
        #expect(line["source"] as? String == "QuorumTelemetryTests")
        #expect(line["message"] as? String == "allowed")
        #expect(line["request_id"] as? String == "req_00ff")
        #expect(line["node"] as? String == "4", "the call's metadata overrides the logger's")
        #expect(line["trace"] as? String == "t-1", "the provider's metadata is included")
    }

    @Test("nested metadata is flattened with dotted keys, arrays stay arrays, and a reserved key moves aside")
    func flattening() throws {
        let text = JSONLogHandler.line(
            time: Self.instant, level: .warning, label: "quorumd", source: "QuorumNode", message: "m", error: nil,
            metadata: [
                "peer": .dictionary(["id": "2", "address": .dictionary(["port": "7102"])]),
                "nodes": .array(["1", "2"]),
                "message": "shadowing",
                "count": .stringConvertible(42),
            ])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text)) as? [String: Any])
        #expect(object["peer.id"] as? String == "2")
        #expect(object["peer.address.port"] as? String == "7102")
        #expect(object["nodes"] as? [String] == ["1", "2"])
        #expect(object["message"] as? String == "m", "the line's own message wins")
        #expect(object["metadata.message"] as? String == "shadowing")
        #expect(object["count"] as? String == "42")
        let keys = String(decoding: text, as: UTF8.self)
        #expect(keys.hasPrefix(#"{"ts":"#), "ts comes first")
    }

    @Test(
        "strings are escaped as RFC 8259 asks: quotes, backslashes, newlines and control characters",
        arguments: [
            ("plain", #""plain""#), ("quote \" and \\", #""quote \" and \\""#),
            ("two\nlines\r\t", #""two\nlines\r\t""#),
            ("bell\u{07}", #""bell\u0007""#), ("é ✓", "\"é ✓\""),
        ])
    func escaping(input: String, expected: String) throws {
        var out: [UInt8] = []
        JSONLogHandler.appendString(input, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == expected)
        let decoded = try JSONSerialization.jsonObject(with: Data(out), options: .fragmentsAllowed) as? String
        #expect(decoded == input)
    }

    @Test(
        "times are RFC 3339 in UTC with milliseconds",
        arguments: [
            (0.0, "1970-01-01T00:00:00.000Z"), (951_868_799.999, "2000-02-29T23:59:59.999Z"),
            (-0.001, "1969-12-31T23:59:59.999Z"), (4_102_444_800.5, "2100-01-01T00:00:00.500Z"),
            (1_709_208_000.042, "2024-02-29T12:00:00.042Z"),
        ])
    func timestamps(seconds: Double, expected: String) {
        #expect(JSONLogHandler.rfc3339(Date(timeIntervalSince1970: seconds)) == expected)
    }

    @Test("lines logged from many tasks at once arrive whole, one per line")
    func concurrentLines() async throws {
        let captured = CapturedLines()
        let handler = JSONLogHandler(label: "load", sink: captured.sink)
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    let logger = Logger(label: "load") { _ in handler }
                    for index in 0..<50 {
                        logger.info("line", metadata: ["task": "\(task)", "index": "\(index)"])
                    }
                }
            }
        }
        let objects = try captured.objects()
        #expect(objects.count == 400)
        #expect(Set(objects.map { "\($0["task"]!)-\($0["index"]!)" }).count == 400)
    }
}
