/// Applying the `response` filter's obligations to an upstream answer.
///
/// The proxy applies them after the quorum allowed the call; nodes only name them in the verdict.
/// Everything here is a pure function of the obligations, the limits and the bytes.
///
/// **Semantics** (shared by bodies and by each `data:` payload of a stream):
/// - `maxBytes` caps the upstream's bytes: a body longer than the cap is blocked; a stream is cut
///   once the bytes received exceed it. Exactly `maxBytes` passes.
/// - `blockIf` rules are evaluated on the document *as the upstream sent it*, before any redaction
///   or trim, so an obligation cannot hide a match from another. A rule blocks when
///   ``PayloadRule/evaluate(_:)`` says `.satisfied`. With the default `whenMissing: .deny`, a rule
///   whose paths select nothing is violated and does not block; a rule written with
///   `whenMissing: .satisfy`, or a `not_exists` rule, blocks a response that *lacks* the field.
///   The reason names the rule by ``PayloadRule/summary`` and never quotes the response.
/// - `redact`: every value a path selects (wildcards included, any JSON type) becomes the string
///   `"[REDACTED]"`. `$` redacts the whole document.
/// - `trim`: every object member a path selects is removed, and every array element a path selects
///   (by index or wildcard) is removed, the later elements moving up. `$` cannot be trimmed: the
///   response is blocked instead. A value selected by both a redact and a trim path is removed.
/// - All paths are matched against the document as the upstream sent it, in one walk, so the
///   order of the paths never matters (see ``JSONValue``'s `rewritten(redact:trim:)`). A path that
///   selects nothing is not an error and changes nothing.
/// - If nothing changed, the upstream's bytes pass byte for byte. Otherwise the document is
///   re-encoded as compact JSON (members in their original order, numbers exactly as written).
/// - Fail closed: when there is any content obligation (`redact`, `trim` or `blockIf`), a response
///   that is not JSON in UTF-8 (by its content type, `application/json` or `*/*+json` with
///   parameters allowed, and by parsing it with the strict ``JSONParser``: duplicate keys, bad
///   UTF-8, trailing data, excessive depth) is blocked, never passed unredacted. A body with a
///   `Content-Encoding` must be decoded by the proxy before it gets here. With only `maxBytes`,
///   any content type passes.
extension ResponseObligations {
    /// Whether some obligation reads or changes the content, so the response must be JSON.
    public var requiresJSON: Bool { !redact.isEmpty || !trim.isEmpty || !blockIf.isEmpty }

    /// Applies the obligations to a complete response body.
    ///
    /// - Parameters:
    ///   - body: The upstream's body, after any content decoding.
    ///   - contentType: The upstream's `Content-Type` header, or `nil` when it sent none.
    ///   - limits: The proxy's inspection limits.
    /// - Returns: the bytes to send (byte-identical to `body` unless something was redacted or
    ///   trimmed), or why the body must not be sent.
    public func apply(
        toBody body: [UInt8], contentType: String?, limits: ResponseLimits = .default
    )
        -> ResponseResult
    {
        if let maxBytes, body.count > maxBytes {
            return .block(
                ResponseBlockReason(
                    code: .tooLarge,
                    message: "the response body is \(body.count) bytes; the response filter allows at most \(maxBytes)"
                ))
        }
        guard requiresJSON else { return .pass(body) }
        guard ResponseMediaKind(contentType: contentType) == .json else {
            return .block(
                ResponseBlockReason(
                    code: .unsupportedContentType,
                    message:
                        "the response's content type \(ResponseObligations.describe(contentType: contentType)) is not JSON in UTF-8, and the response filter must inspect it"
                ))
        }
        guard body.count <= limits.maxJSONBodyBytes else {
            return .block(
                ResponseBlockReason(
                    code: .tooLargeToInspect,
                    message:
                        "the response body is \(body.count) bytes; the proxy inspects at most \(limits.maxJSONBodyBytes)"
                ))
        }
        let document: JSONValue
        do {
            document = try JSONParser(
                configuration: JSONParserConfiguration(maxDepth: limits.maxDepth, maxBytes: limits.maxJSONBodyBytes)
            ).parse(body)
        } catch {
            return .block(ResponseObligations.notJSON("the response body", error))
        }
        switch inspect(document) {
        case .block(let reason): return .block(reason)
        case .unchanged: return .pass(body)
        case .rewritten(let value): return .pass(Array(value.jsonText.utf8))
        }
    }

    /// What the content obligations make of one document.
    enum Inspection: Equatable {
        case block(ResponseBlockReason)
        case unchanged
        case rewritten(JSONValue)
    }

    /// Applies `blockIf` (on the original), then `redact` and `trim`, to one document.
    func inspect(_ document: JSONValue) -> Inspection {
        if let rule = blockingRule(in: document) {
            return .block(ResponseObligations.blocked(by: rule, acrossEvents: false))
        }
        return rewrite(document)
    }

    /// The first `blockIf` rule the document satisfies.
    func blockingRule(in document: JSONValue) -> PayloadRule? {
        blockIf.first { $0.evaluate(document) == .satisfied }
    }

    /// Applies `redact` and `trim` to one document.
    func rewrite(_ document: JSONValue) -> Inspection {
        if trim.contains(where: { $0.segments.isEmpty }) {
            return .block(
                ResponseBlockReason(
                    code: .trimsWholeResponse, message: "the response filter trims $, which would leave nothing to send"
                ))
        }
        if redact.contains(where: { $0.segments.isEmpty }) {
            return document == JSONValue.redactedMarker ? .unchanged : .rewritten(JSONValue.redactedMarker)
        }
        let (value, changed) = document.rewritten(redact: redact, trim: trim)
        return changed ? .rewritten(value) : .unchanged
    }

    static func blocked(by rule: PayloadRule, acrossEvents: Bool) -> ResponseBlockReason {
        ResponseBlockReason(
            code: .blockRule,
            message: "the response matched the block rule \(rule.summary)\(acrossEvents ? " across stream events" : "")"
        )
    }

    /// A parse failure, by position and code only: the parser's own reason may quote a byte.
    static func notJSON(_ what: String, _ error: JSONParseError) -> ResponseBlockReason {
        ResponseBlockReason(
            code: .notJSON,
            message:
                "\(what) is not valid JSON (line \(error.line), column \(error.column): \(error.code.rawValue)), and the response filter must inspect it"
        )
    }

    /// The header as it may be quoted: printable ASCII, at most 64 characters.
    static func describe(contentType: String?) -> String {
        guard let contentType else { return "(none)" }
        let printable = contentType.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7F }
        guard printable, contentType.unicodeScalars.count <= 64 else { return "(unprintable or too long)" }
        return "'\(contentType)'"
    }
}
