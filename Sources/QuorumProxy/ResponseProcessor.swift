import QuorumPolicy

/// What the proxy does with one upstream answer's body: the response obligations (QuorumPolicy's
/// response module, used as designed) and the usage tap, with no I/O.
///
/// Three ways, chosen from the obligations and the content type:
/// - **pass-through** (no obligations): bytes go out as they arrive; a JSON body is also copied
///   (up to ``ResponseLimits/maxJSONBodyBytes``) for its `usage`, an event stream is scanned for it;
/// - **event stream** with obligations: ``SSEObligationFilter`` releases whole events, rewritten
///   or not, and cuts the stream with its final error event when a rule blocks;
/// - **buffered** (any other content with obligations): the body is collected, up to the first
///   byte past what the obligations could accept, and ``ResponseObligations/apply(toBody:contentType:limits:)``
///   passes, rewrites or blocks it as a whole, before the agent sees the status.
///
/// Fail closed: with content obligations, a `Content-Encoding` other than `identity` is blocked
/// (the proxy asks upstreams for `identity`; one that compresses anyway cannot be inspected).
public struct ResponseProcessor: Sendable {
    /// How the body is handled.
    public enum Mode: Sendable, Equatable {
        /// Bytes pass as they arrive.
        case passThrough
        /// Whole events pass through ``SSEObligationFilter``.
        case eventStream
        /// The body is collected, then passed, rewritten or blocked whole.
        case buffered
        /// The answer is blocked before any byte is read.
        case blocked(ResponseBlockReason)
    }

    /// What to send for some upstream bytes.
    public struct Output: Sendable, Equatable {
        /// Bytes to send now.
        public var bytes: [UInt8] = []
        /// Set when the stream was cut: send ``bytes``, then ``finalBytes``, then end.
        public var termination: ResponseBlockReason?
        /// The last bytes of a cut stream (the event stream's error event), if any.
        public var finalBytes: [UInt8] = []
    }

    /// The way chosen.
    public let mode: Mode
    private let obligations: ResponseObligations
    private let limits: ResponseLimits
    private let contentType: String?
    private let kind: ResponseMediaKind
    private var filter: SSEObligationFilter?
    private var scanner: SSEUsageScanner?
    private var collected: [UInt8] = []
    private var collectLimit: Int
    private var tapOverflowed = false

    /// A processor for an answer with `contentType` and `contentEncoding` under `obligations`.
    public init(
        obligations: ResponseObligations, limits: ResponseLimits, contentType: String?, contentEncoding: String?
    ) {
        self.obligations = obligations
        self.limits = limits
        self.contentType = contentType
        kind = ResponseMediaKind(contentType: contentType)
        let encoded = contentEncoding.map { !$0.isEmpty && $0.lowercased() != "identity" } ?? false
        collectLimit = limits.maxJSONBodyBytes
        if obligations.requiresJSON && encoded {
            mode = .blocked(
                ResponseBlockReason(
                    code: .unsupportedContentType,
                    message:
                        "the response is content-encoded (\(ResponseProcessor.describe(contentEncoding))), and the response filter must inspect it"
                ))
        } else if obligations.isEmpty {
            mode = .passThrough
            if kind == .eventStream && !encoded { scanner = SSEUsageScanner(limits: limits) }
            if kind != .json || encoded { collectLimit = 0 }
        } else if kind == .eventStream {
            mode = .eventStream
            filter = SSEObligationFilter(obligations: obligations, limits: limits)
            scanner = encoded ? nil : SSEUsageScanner(limits: limits)
        } else {
            mode = .buffered
            // One byte past the largest body the obligations could pass, so apply(toBody:) sees the excess.
            var bound = Int.max - 1
            if let maxBytes = obligations.maxBytes { bound = min(bound, maxBytes) }
            if obligations.requiresJSON { bound = min(bound, limits.maxJSONBodyBytes) }
            collectLimit = bound + 1
        }
    }

    /// Whether the whole body must be read before the response head is sent.
    public var needsWholeBody: Bool { mode == .buffered }

    /// Whether a buffered body has reached the size past which it cannot pass: stop reading.
    public var collectedEnough: Bool { mode == .buffered && collected.count >= collectLimit }

    /// Takes the next upstream bytes (pass-through and event-stream modes: what to send now; in
    /// buffered mode nothing is sent until ``finishBuffered()``).
    public mutating func feed(_ chunk: [UInt8]) -> Output {
        switch mode {
        case .blocked:
            return Output()
        case .buffered:
            let room = collectLimit - collected.count
            if room > 0 { collected += chunk.prefix(room) }
            return Output()
        case .passThrough:
            scanner?.feed(chunk)
            tap(chunk)
            return Output(bytes: chunk)
        case .eventStream:
            scanner?.feed(chunk)
            guard var filter else { return Output(bytes: chunk) }
            let out = filter.feed(chunk)
            self.filter = filter
            return Output(bytes: out.bytes, termination: out.termination, finalBytes: out.finalEvent ?? [])
        }
    }

    /// The body ended normally (pass-through and event-stream): what is left to send.
    public mutating func finish() -> Output {
        scanner?.finish()
        guard mode == .eventStream, var filter else { return Output() }
        let out = filter.finish()
        self.filter = filter
        return Output(bytes: out.bytes, termination: out.termination, finalBytes: out.finalEvent ?? [])
    }

    /// The buffered body's fate, once the upstream's body ended or ``collectedEnough``.
    public func finishBuffered() -> ResponseResult {
        if case .blocked(let reason) = mode { return .block(reason) }
        return obligations.apply(toBody: collected, contentType: contentType, limits: limits)
    }

    /// The usage the upstream reported, as far as it was read (call after the body ended).
    public var usage: SpendUsage? {
        if let scanner { return scanner.usage }
        guard kind == .json, !tapOverflowed, !collected.isEmpty else { return nil }
        return UsageExtraction.usage(inBody: collected, limits: limits)
    }

    private mutating func tap(_ chunk: [UInt8]) {
        guard collectLimit > 0, !tapOverflowed else { return }
        if collected.count + chunk.count > collectLimit {
            tapOverflowed = true
            collected = []
            return
        }
        collected += chunk
    }

    private static func describe(_ encoding: String?) -> String {
        guard let encoding, encoding.utf8.count <= 32,
            encoding.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7F })
        else { return "unprintable" }
        return encoding
    }
}
