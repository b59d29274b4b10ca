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
    func skipReason(_ condition: FilterCondition?) -> String? {
        guard let condition else { return nil }
        if let methods = condition.methods, !methods.contains(request.method) {
            return "applies only to \(methods.listing); request is \(request.method)"
        }
        if let endpoints = condition.endpoints, !endpoints.contains(where: { $0.matches(path) }) {
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

    /// `application/json` or `application/<anything>+json`, any case, parameters allowed. Compared
    /// byte by byte: this runs on every call with a payload rule.
    static func isJSONMediaType(_ value: String) -> Bool {
        var type = value.utf8.prefix { $0 != UInt8(ascii: ";") }[...]
        while let first = type.first, first == 0x20 || first == 0x09 { type = type.dropFirst() }
        while let last = type.last, last == 0x20 || last == 0x09 { type = type.dropLast() }
        let lowered = type.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
        let application = Array("application/".utf8)
        guard lowered.starts(with: application) else { return false }
        let subtype = lowered.dropFirst(application.count)
        return subtype.elementsEqual("json".utf8)
            || (subtype.count > 5 && subtype.suffix(5).elementsEqual("+json".utf8))
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
