/// What a ``SSEObligationFilter`` lets through for one chunk of upstream bytes.
public struct SSEOutput: Sendable, Equatable {
    /// Bytes to send to the client now: whole events only, each byte-identical to the upstream's
    /// unless the obligations rewrote its data.
    public var bytes: [UInt8]
    /// Set (once) when the stream must be cut: send ``bytes``, then ``finalEvent``, then end the
    /// response. Nothing more passes after it.
    public var termination: ResponseBlockReason?

    /// An output.
    public init(bytes: [UInt8] = [], termination: ResponseBlockReason? = nil) {
        self.bytes = bytes
        self.termination = termination
    }

    /// The event that tells the client why the stream ended (``ResponseBlockReason/finalEvent``),
    /// when it was cut.
    public var finalEvent: [UInt8]? { termination?.finalEvent }
}

/// Applies response obligations to a server-sent event stream (`text/event-stream`), chunk by
/// chunk, whatever the chunk boundaries.
///
/// A plain value: the proxy feeds it the upstream's bytes as they arrive and sends what comes
/// back. The same stream gives the same output however it is split into chunks.
///
/// **Parsing** follows the WHATWG event-stream rules: lines end in CRLF, LF or CR (a CR ends its
/// line at once, and an LF right after it, even at the start of the next chunk, joins that line's
/// ending, so a CRLF split across chunks is still one line break); a UTF-8 byte order mark before
/// the first line is ignored; a line starting with `:` is a comment; a field's name runs to the
/// first `:` and is case-sensitive, and one space after the colon is not part of the value; a line
/// without a colon is a field with an empty value; a blank line ends the event. An event's data is
/// its `data` values joined with LF.
///
/// **Events pass whole.** Every line is held until the blank line that ends its event arrives;
/// only then is the event released, rewritten, or the stream cut. So a redaction or a block rule
/// always sees a complete payload, and no split of the bytes can slip part of one past it. At
/// ``finish()``, an unterminated last event (which a conforming client discards) is filtered the
/// same way and released without adding the blank line.
///
/// **Per event**, when there is a content obligation (``ResponseObligations/requiresJSON``):
/// - an event without `data` lines (only `event`, `id`, `retry`, other fields or comments), or
///   whose data is empty or exactly `[DONE]`, passes unchanged;
/// - data that is JSON gets the body semantics (``ResponseObligations/apply(toBody:contentType:limits:)``):
///   `blockIf` on the original cuts the stream; redactions and trims rewrite the event, whose
///   `data` lines become one `data: <compact JSON>` line where the first one was, every other line
///   (`event`, `id`, `retry`, comments) kept as it was; an event that nothing changed passes
///   byte for byte;
/// - data that is not valid JSON cuts the stream (fail closed).
///
/// **Across events.** An LLM streams its text in pieces (`choices[0].delta.content`), so a secret
/// can arrive split over many events, none of which matches a `regex` or `contains` block rule on
/// its own. For those two operators, the filter also keeps, per location selected by the rule's
/// paths (`$.choices[0].delta.content`), the last ``ResponseLimits/streamMatchLookback`` scalars
/// of the strings seen there, and evaluates the rule once more on the event with each selected
/// string prefixed by that history. A match is caught in the event that completes it, provided the
/// match begins within the lookback; the pieces already sent cannot be recalled, so the client may
/// have seen its beginning, never the whole. Anchors (`^`) then see the start of the window, which
/// can only block more. At most ``ResponseLimits/maxStreamLocations`` locations are tracked; a
/// stream that needs more is cut.
///
/// **Size.** `maxBytes` counts the upstream's bytes (before any rewrite): the stream is cut at the
/// first byte past the cap, after the events completed before it. Independently, one pending
/// event (its lines so far) larger than ``ResponseLimits/maxEventBytes`` cuts the stream, so
/// memory stays bounded whatever the upstream sends.
///
/// When cut, the output carries the reason and ``SSEOutput/finalEvent``
/// (`event: error` with `{"error":{"type":"quorum_latch_response_blocked",…}}`) to send last.
public struct SSEObligationFilter: Sendable {
    /// The obligations applied.
    public let obligations: ResponseObligations
    /// The proxy's inspection limits.
    public let limits: ResponseLimits
    /// Upstream bytes accepted so far (what `maxBytes` counts).
    public private(set) var bytesReceived = 0
    /// Why the stream was cut, once it was.
    public private(set) var termination: ResponseBlockReason?
    /// True once ``finish()`` was called.
    public private(set) var isFinished = false

    /// One complete line of the pending event, as received.
    private struct Line: Sendable {
        var content: [UInt8]
        var terminator: [UInt8]
        /// The stream's first line, which may start with a byte order mark.
        var isFirst: Bool
    }

    private var partialLine: [UInt8] = []
    private var lines: [Line] = []
    private var pendingBytes = 0
    private var sawFirstLine = false
    /// The last line ended in CR; an LF next belongs to it.
    private var afterCR = false
    /// That CR-terminated line is still pending (it was not the blank line that released its event).
    private var crLineIsPending = false
    /// Per location, the tail of the strings seen there, for the `regex` and `contains` rules.
    private var streamText: [String: String] = [:]
    private let textRules: [PayloadRule]
    private let textRulePaths: [JSONPath]

    private static let cr = UInt8(ascii: "\r")
    private static let lf = UInt8(ascii: "\n")
    private static let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]

    /// A filter at the start of a stream.
    public init(obligations: ResponseObligations, limits: ResponseLimits = .default) {
        self.obligations = obligations
        self.limits = limits
        let textRules = obligations.blockIf.filter { rule in
            switch (rule.op, rule.operand) {
            case (.regex, _), (.contains, .string?): true
            default: false
            }
        }
        self.textRules = textRules
        self.textRulePaths = textRules.flatMap(\.paths)
    }

    /// True once the stream was cut.
    public var isTerminated: Bool { termination != nil }

    /// Takes the next upstream bytes; returns the events they complete, or the cut.
    public mutating func feed(_ chunk: [UInt8]) -> SSEOutput {
        var output = SSEOutput()
        guard termination == nil, !isFinished else { return output }
        var allowed = chunk.count
        if let maxBytes = obligations.maxBytes {
            allowed = min(allowed, max(0, maxBytes - bytesReceived))
        }
        var index = 0
        while index < allowed {
            if afterCR {
                afterCR = false
                if chunk[index] == Self.lf {
                    index += 1
                    if crLineIsPending {
                        lines[lines.count - 1].terminator.append(Self.lf)
                        if !take(1, into: &output) { return output }
                    } else {
                        output.bytes.append(Self.lf)
                    }
                    continue
                }
            }
            var end = index
            while end < allowed, chunk[end] != Self.cr, chunk[end] != Self.lf { end += 1 }
            if !take(end - index, into: &output) { return output }
            partialLine.append(contentsOf: chunk[index..<end])
            index = end
            if end < allowed {
                index += 1
                if !take(1, into: &output) { return output }
                afterCR = chunk[end] == Self.cr
                completeLine(terminator: [chunk[end]], into: &output)
                if termination != nil { return output }
            }
        }
        bytesReceived += allowed
        if allowed < chunk.count, let maxBytes = obligations.maxBytes {
            cut(
                ResponseBlockReason(
                    code: .tooLarge,
                    message: "the response stream exceeded \(maxBytes) bytes, the most the response filter allows"),
                into: &output)
        }
        return output
    }

    /// Ends the stream: filters and releases an unterminated last event. Call once, when the
    /// upstream's body ended normally.
    public mutating func finish() -> SSEOutput {
        var output = SSEOutput()
        guard termination == nil, !isFinished else { return output }
        isFinished = true
        afterCR = false
        if !partialLine.isEmpty {
            completeLine(terminator: [], into: &output)
            if termination != nil { return output }
        }
        if !lines.isEmpty { dispatch(into: &output) }
        return output
    }

    /// Counts `count` more bytes into the pending event; cuts the stream (and returns false) when
    /// the event grows past the limit.
    private mutating func take(_ count: Int, into output: inout SSEOutput) -> Bool {
        pendingBytes += count
        guard pendingBytes > limits.maxEventBytes else { return true }
        cut(
            ResponseBlockReason(
                code: .tooLargeToInspect,
                message: "a response stream event exceeded \(limits.maxEventBytes) bytes, the most the proxy holds"),
            into: &output)
        return false
    }

    private mutating func completeLine(terminator: [UInt8], into output: inout SSEOutput) {
        let line = Line(content: partialLine, terminator: terminator, isFirst: !sawFirstLine)
        sawFirstLine = true
        partialLine = []
        lines.append(line)
        if Self.field(of: line) == nil {
            crLineIsPending = false
            dispatch(into: &output)
        } else {
            crLineIsPending = true
        }
    }

    /// The line's field name and value, the name `":"` for a comment; `nil` for a blank line.
    private static func field(of line: Line) -> (name: ArraySlice<UInt8>, value: ArraySlice<UInt8>)? {
        var content = line.content[...]
        if line.isFirst, content.starts(with: byteOrderMark) { content = content.dropFirst(byteOrderMark.count) }
        if content.isEmpty { return nil }
        guard let colon = content.firstIndex(of: UInt8(ascii: ":")) else { return (content, []) }
        if colon == content.startIndex { return (content[colon...colon], content[(colon + 1)...]) }
        var value = content[(colon + 1)...]
        if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        return (content[..<colon], value)
    }

    private static func isData(_ line: Line) -> Bool {
        guard let (name, _) = field(of: line) else { return false }
        return name.elementsEqual("data".utf8)
    }

    /// Releases, rewrites or blocks the pending event.
    private mutating func dispatch(into output: inout SSEOutput) {
        let event = lines
        lines = []
        pendingBytes = 0
        let raw = event.flatMap { $0.content + $0.terminator }
        guard obligations.requiresJSON else {
            output.bytes += raw
            return
        }
        var payload: [UInt8] = []
        var dataLines = 0
        for line in event {
            guard let (name, value) = Self.field(of: line), name.elementsEqual("data".utf8) else { continue }
            if dataLines > 0 { payload.append(Self.lf) }
            payload += value
            dataLines += 1
        }
        if dataLines == 0 || payload.isEmpty || payload.elementsEqual("[DONE]".utf8) {
            output.bytes += raw
            return
        }
        let document: JSONValue
        do {
            document = try JSONParser(
                configuration: JSONParserConfiguration(maxDepth: limits.maxDepth, maxBytes: limits.maxEventBytes)
            ).parse(payload)
        } catch {
            cut(ResponseObligations.notJSON("a response stream event's data", error), into: &output)
            return
        }
        if let rule = obligations.blockingRule(in: document) {
            cut(ResponseObligations.blocked(by: rule, acrossEvents: false), into: &output)
            return
        }
        if let reason = checkAcrossEvents(document) {
            cut(reason, into: &output)
            return
        }
        switch obligations.rewrite(document) {
        case .block(let reason):
            cut(reason, into: &output)
        case .unchanged:
            output.bytes += raw
        case .rewritten(let value):
            var wroteData = false
            for line in event {
                guard Self.isData(line) else {
                    output.bytes += line.content + line.terminator
                    continue
                }
                guard !wroteData else { continue }
                wroteData = true
                if line.isFirst, line.content.starts(with: Self.byteOrderMark) { output.bytes += Self.byteOrderMark }
                output.bytes += Array("data: ".utf8) + Array(value.jsonText.utf8) + line.terminator
            }
        }
    }

    /// Evaluates the `regex` and `contains` block rules on the event with each string they select
    /// prefixed by the text seen at the same location in earlier events, then remembers the tail.
    private mutating func checkAcrossEvents(_ document: JSONValue) -> ResponseBlockReason? {
        guard !textRules.isEmpty, limits.streamMatchLookback > 0 else { return nil }
        var hasHistory = false
        var overflow = false
        let lookback = limits.streamMatchLookback
        let maxLocations = limits.maxStreamLocations
        // Moved out and back so that updating it does not copy the dictionary.
        var streamText: [String: String] = [:]
        swap(&streamText, &self.streamText)
        let view = document.mappingSelectedStrings(textRulePaths) { location, text in
            let key = location.description
            let previous = streamText[key]
            if previous == nil, streamText.count >= maxLocations {
                overflow = true
                return text
            }
            let combined = (previous ?? "") + text
            if let previous, !previous.isEmpty { hasHistory = true }
            let scalars = combined.unicodeScalars
            streamText[key] =
                scalars.count > lookback ? String(String.UnicodeScalarView(scalars.suffix(lookback))) : combined
            return combined
        }
        self.streamText = streamText
        if overflow {
            return ResponseBlockReason(
                code: .tooManyStreamLocations,
                message:
                    "the response stream spread the fields a block rule reads over more than \(maxLocations) locations")
        }
        guard hasHistory, let rule = textRules.first(where: { $0.evaluate(view) == .satisfied }) else { return nil }
        return ResponseObligations.blocked(by: rule, acrossEvents: true)
    }

    private mutating func cut(_ reason: ResponseBlockReason, into output: inout SSEOutput) {
        termination = reason
        output.termination = reason
        lines = []
        partialLine = []
        streamText = [:]
        pendingBytes = 0
    }
}
