import QuorumPolicy

/// Reads the actual spend out of an upstream's answer, to settle the call's reservation.
///
/// Understood: a `usage` object at the top of a JSON document, or under `message` (Anthropic's
/// `message_start`), with `prompt_tokens`/`completion_tokens` (OpenAI) or
/// `input_tokens`/`output_tokens` (Anthropic). A stream reports usage in its events (OpenAI's last
/// chunk with `stream_options.include_usage`; Anthropic's split over `message_start` and
/// `message_delta`): the latest value of each count wins. Anything else reports no usage, and the
/// nodes settle from the reservation.
public enum UsageExtraction {
    /// The usage in one document, or `nil`.
    public static func usage(in document: JSONValue) -> SpendUsage? {
        var counts = UsageCounts()
        counts.merge(document)
        return counts.usage
    }

    /// The usage in a complete JSON body, or `nil` (not JSON, too large, or no usage).
    public static func usage(inBody body: [UInt8], limits: ResponseLimits) -> SpendUsage? {
        guard body.count <= limits.maxJSONBodyBytes, contains(body[...], usageKey) else { return nil }
        let parser = JSONParser(
            configuration: JSONParserConfiguration(maxDepth: limits.maxDepth, maxBytes: limits.maxJSONBodyBytes))
        guard let document = try? parser.parse(body) else { return nil }
        return usage(in: document)
    }

    static let usageKey = Array("\"usage\"".utf8)

    static func contains(_ haystack: ArraySlice<UInt8>, _ needle: [UInt8]) -> Bool {
        guard needle.count <= haystack.count, let first = needle.first else { return false }
        var index = haystack.startIndex
        let last = haystack.endIndex - needle.count
        while index <= last {
            if haystack[index] == first && haystack[index..<(index + needle.count)].elementsEqual(needle) {
                return true
            }
            index += 1
        }
        return false
    }
}

/// The token counts seen so far; each count is replaced by a later report of it.
struct UsageCounts: Sendable, Equatable {
    var input: Int64?
    var output: Int64?

    var usage: SpendUsage? {
        guard input != nil || output != nil else { return nil }
        return SpendUsage(inputTokens: input ?? 0, outputTokens: output ?? 0)
    }

    mutating func merge(_ document: JSONValue) {
        for candidate in [document["usage"], document["message"]?["usage"]] {
            guard let usage = candidate, case .object = usage else { continue }
            if let value = Self.count(usage["prompt_tokens"]) ?? Self.count(usage["input_tokens"]) { input = value }
            if let value = Self.count(usage["completion_tokens"]) ?? Self.count(usage["output_tokens"]) {
                output = value
            }
        }
    }

    private static func count(_ value: JSONValue?) -> Int64? {
        guard case .number(let number)? = value, let count = number.int64Value, count >= 0 else { return nil }
        return count
    }
}

/// Follows a server-sent event stream for usage reports, whatever the chunk boundaries.
///
/// A plain value fed the upstream's bytes as they pass (it never holds more than one line, at
/// most ``maxLineBytes``; a longer line is skipped). Only `data` lines matter; an event's data is
/// parsed only when it mentions `"usage"`.
public struct SSEUsageScanner: Sendable {
    /// The longest line kept; longer ones are skipped (no usage report is that long).
    public static let maxLineBytes = 1 << 20

    private let limits: ResponseLimits
    private var line: [UInt8] = []
    private var lineTooLong = false
    private var data: [UInt8] = []
    private var afterCR = false
    private var counts = UsageCounts()

    /// A scanner at the start of a stream.
    public init(limits: ResponseLimits = .default) {
        self.limits = limits
    }

    /// The usage reported so far, or `nil`.
    public var usage: SpendUsage? { counts.usage }

    /// Takes the next bytes of the stream.
    public mutating func feed(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            if afterCR {
                afterCR = false
                if byte == UInt8(ascii: "\n") { continue }
            }
            switch byte {
            case UInt8(ascii: "\r"):
                afterCR = true
                endLine()
            case UInt8(ascii: "\n"):
                endLine()
            default:
                if line.count < Self.maxLineBytes { line.append(byte) } else { lineTooLong = true }
            }
        }
    }

    /// Ends the stream: an unterminated last event is still read.
    public mutating func finish() {
        if !line.isEmpty { endLine() }
        dispatch()
    }

    private mutating func endLine() {
        defer {
            line.removeAll(keepingCapacity: true)
            lineTooLong = false
        }
        if line.isEmpty {
            dispatch()
            return
        }
        guard !lineTooLong, line.starts(with: "data".utf8) else { return }
        var value = line.dropFirst(4)
        if let first = value.first {
            guard first == UInt8(ascii: ":") else { return }
            value = value.dropFirst()
            if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        }
        if !data.isEmpty { data.append(UInt8(ascii: "\n")) }
        if data.count + value.count <= limits.maxEventBytes { data += value }
    }

    private mutating func dispatch() {
        defer { data.removeAll(keepingCapacity: true) }
        guard UsageExtraction.contains(data[...], UsageExtraction.usageKey) else { return }
        let parser = JSONParser(
            configuration: JSONParserConfiguration(maxDepth: limits.maxDepth, maxBytes: limits.maxEventBytes))
        guard let document = try? parser.parse(data) else { return }
        counts.merge(document)
    }
}
