import Foundation

/// What one filter concluded.
enum FilterResult {
    case pass(String)
    case deny(String)
}

/// Everything the filters of one evaluation share: the request, the clock, the parsed body (parsed
/// at most once, and only if a filter needs it) and the state changes, obligations and
/// reservations collected so far.
struct FilterContext {
    let request: DecisionRequest
    let instant: Date
    let now: Int64
    let latch: ResolvedLatch
    let mount: ResolvedMount
    /// The normalised path after the mount prefix: what endpoint patterns match.
    let path: NormalisedPath
    let bundle: PolicyBundle
    var changes: [StateChange] = []
    var obligations = ResponseObligations.none
    var reservations: [SpendReservation.Entry] = []
    /// What the state-dependent filters read, for the verdict (``StateRead``).
    var reads: [StateRead] = []
    private var parsedBody: Result<JSONValue, BodyProblem>?

    /// Why a body cannot be read as JSON.
    struct BodyProblem: Error {
        let reason: String
    }

    init(
        request: DecisionRequest, instant: Date, now: Int64, latch: ResolvedLatch, mount: ResolvedMount,
        path: NormalisedPath, bundle: PolicyBundle
    ) {
        self.request = request
        self.instant = instant
        self.now = now
        self.latch = latch
        self.mount = mount
        self.path = path
        self.bundle = bundle
    }

    /// `nil` when the filter applies, or why its condition does not match.
    ///
    /// A method condition skips only a method written as conditions are (upper-case letters). A
    /// `post` or `POST ` is not `POST` to the engine, but some upstreams upper-case or trim the
    /// method, so skipping it would let the call past a filter meant for `POST`; the filter applies.
    func skipReason(_ condition: FilterCondition?) -> String? {
        guard let condition else { return nil }
        if let methods = condition.methods, MethodSet.isUpperCaseToken(request.method),
            !methods.contains(request.method)
        {
            return "applies only to \(methods.listing); request is \(request.method)"
        }
        if let endpoints = condition.endpoints,
            !endpoints.contains(where: { $0.matches(path, ignoringASCIICase: true) })
        {
            return "applies only to \(endpoints.map(\.description).joined(separator: ", ")); path is \(path.value)"
        }
        return nil
    }

    mutating func evaluate(_ step: PipelineStep, state: some PolicyStateReading) -> FilterResult {
        switch step.filter.kind {
        case .method(let methods): return checkMethod(methods)
        case .endpoint(let endpoint): return checkEndpoint(endpoint)
        case .payload(let rules): return checkPayload(rules)
        case .bodySize(let maxBytes): return checkBodySize(maxBytes)
        case .timeWindow(let windows): return checkTimeWindow(windows)
        case .ipAllowlist(let allowlist): return checkClientAddress(allowlist)
        case .headers(let requirements): return checkHeaders(requirements)
        case .response(let obligations):
            self.obligations = self.obligations.merged(with: obligations)
            return .pass("response obligations: \(obligations.summary)")
        case .rateLimit(let limit): return checkRateLimit(limit, step: step, state: state)
        case .budget(let budget): return checkBudget(budget, step: step, state: state)
        }
    }

    /// The body as JSON, refusing what a payload rule must not guess at: a content type that is not
    /// JSON, a body the proxy did not forward whole, duplicate keys, excessive depth, bad syntax.
    mutating func jsonBody() -> Result<JSONValue, BodyProblem> {
        if let parsedBody { return parsedBody }
        let result: Result<JSONValue, BodyProblem>
        let types = request.headerValues("content-type")
        if types.count != 1 || !FilterContext.isJSONMediaType(types[0]) {
            let found = types.isEmpty ? "no content type" : "content type '\(types.joined(separator: ", "))'"
            result = .failure(BodyProblem(reason: "\(found); JSON rules need exactly one application/json body"))
        } else if !request.hasCompleteBody {
            result = .failure(
                BodyProblem(reason: "body of \(request.bodyLength) bytes was not forwarded whole; cannot check it"))
        } else {
            do {
                result = .success(try JSONParser().parse(request.body))
            } catch {
                result = .failure(BodyProblem(reason: "body is not acceptable JSON: \(error.description)"))
            }
        }
        parsedBody = result
        return result
    }

    /// The token count a request declares through the field alias `alias`: the largest value any of
    /// its paths selects. Absent, or not a non-negative integer, is an error, never "unlimited".
    mutating func declaredTokens(alias: String) -> Result<Int64, BodyProblem> {
        let body: JSONValue
        switch jsonBody() {
        case .success(let value): body = value
        case .failure(let problem): return .failure(problem)
        }
        guard let paths = bundle.fieldAliases[alias] else {
            return .failure(BodyProblem(reason: "no field alias '\(alias)'"))
        }
        var largest: Int64?
        for path in paths {
            for value in path.evaluate(body) {
                guard case .number(let number) = value, let count = number.int64Value, count >= 0 else {
                    return .failure(BodyProblem(reason: "\(path) is not a non-negative integer"))
                }
                largest = max(largest ?? 0, count)
            }
        }
        guard let largest else {
            let names = paths.map(\.description).joined(separator: ", ")
            return .failure(
                BodyProblem(reason: "the request declares no token cap (\(names)); an absent cap is not unlimited"))
        }
        return .success(largest)
    }

    /// `application/json` or `application/<anything>+json`, any case, parameters allowed except a
    /// `charset` other than `utf-8`. The body is parsed as UTF-8; an upstream that honours
    /// `charset=gbk` (Spring does) reads other members out of the same bytes, because a UTF-8
    /// sequence can swallow the backslash of an escaped quote. Compared byte by byte: this runs
    /// on every call with a payload rule.
    static func isJSONMediaType(_ value: String) -> Bool {
        let parts = value.utf8.split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: false)
        let lowered = lowercased(trimmed(parts[0]))
        let application = Array("application/".utf8)
        guard lowered.starts(with: application) else { return false }
        let subtype = lowered.dropFirst(application.count)
        guard
            subtype.elementsEqual("json".utf8) || (subtype.count > 5 && subtype.suffix(5).elementsEqual("+json".utf8))
        else { return false }
        for parameter in parts.dropFirst() {
            let pair = parameter.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard lowercased(trimmed(pair[0])).elementsEqual("charset".utf8) else { continue }
            var charset = pair.count == 2 ? trimmed(pair[1]) : pair[0].prefix(0)
            if charset.count >= 2, charset.first == UInt8(ascii: "\""), charset.last == UInt8(ascii: "\"") {
                charset = charset.dropFirst().dropLast()
            }
            guard lowercased(charset).elementsEqual("utf-8".utf8) else { return false }
        }
        return true
    }

    private static func trimmed(_ text: Substring.UTF8View.SubSequence) -> Substring.UTF8View.SubSequence {
        var text = text
        while let first = text.first, first == 0x20 || first == 0x09 { text = text.dropFirst() }
        while let last = text.last, last == 0x20 || last == 0x09 { text = text.dropLast() }
        return text
    }

    private static func lowercased(_ text: Substring.UTF8View.SubSequence) -> [UInt8] {
        text.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
    }
}

extension MethodSet {
    /// `GET, POST` or `any method`.
    var listing: String { methods.map { $0.sorted().joined(separator: ", ") } ?? "any method" }
}

extension ResponseObligations {
    /// A one-line summary for the trace.
    var summary: String {
        var parts: [String] = []
        if !redact.isEmpty { parts.append("redact \(redact.map(\.description).joined(separator: ", "))") }
        if !trim.isEmpty { parts.append("trim \(trim.map(\.description).joined(separator: ", "))") }
        if !blockIf.isEmpty { parts.append("block if \(blockIf.map(\.summary).joined(separator: "; "))") }
        if let maxBytes { parts.append("at most \(maxBytes) bytes") }
        return parts.isEmpty ? "none" : parts.joined(separator: "; ")
    }
}
