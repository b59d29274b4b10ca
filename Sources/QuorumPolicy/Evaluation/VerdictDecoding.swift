/// A verdict's bytes that are not exactly what ``Verdict/encoded()`` writes: the member at fault
/// and what was wrong.
public struct VerdictDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The member at fault, dotted (`route.secret`, `trace[2].outcome`), or empty for the text as a whole.
    public let field: String
    /// What is wrong and what would be valid.
    public let reason: String

    /// An error about `field`.
    public init(field: String, _ reason: String) {
        self.field = field
        self.reason = reason
    }

    /// `verdict: FIELD: reason`, one line.
    public var description: String {
        field.isEmpty ? "verdict: \(reason)" : "verdict.\(field): \(reason)"
    }
}

extension Verdict {
    /// The most bytes a verdict encoding may have (the wire's limit for a node's verdict).
    public static let maximumEncodedLength = 256 * 1024

    /// Reads a verdict from its ``encoded()`` bytes, as a proxy receives it from a node.
    ///
    /// The inverse of ``encoded()``, exactly: every member must be present with its type, no
    /// other member is accepted, and the decoded verdict must encode back to the same bytes, so a
    /// verdict has one spelling and what the proxy acts on is what the node signed.
    ///
    /// - Throws: ``VerdictDecodingError`` naming the first member that is missing, unknown,
    ///   mistyped or not in canonical form.
    public init(decoding bytes: [UInt8]) throws(VerdictDecodingError) {
        let value: JSONValue
        do {
            value = try JSONParser(
                configuration: JSONParserConfiguration(maxDepth: 64, maxBytes: Self.maximumEncodedLength)
            ).parse(bytes)
        } catch {
            throw VerdictDecodingError(field: "", "not JSON: \(error.description)")
        }
        var object = try VerdictObject(value, "")
        let decision = try object.string("decision")
        guard let parsedDecision = Decision(rawValue: decision) else {
            throw VerdictDecodingError(field: "decision", "\"\(decision)\"; expected \"allow\" or \"deny\"")
        }
        let reason = try object.optionalString("reason")
        let trace = try object.array("trace").enumerated().map { (index, entry) throws(VerdictDecodingError) in
            try TraceEntry(decoding: entry, "trace[\(index)]")
        }
        let obligations = try ResponseObligations(decoding: try object.value("obligations"), "obligations")
        let requestID = try object.string("request_id")
        let latch = try object.optionalString("latch")
        let routeValue = try object.value("route")
        let route: Route? = routeValue == .null ? nil : try Route(decoding: routeValue, "route")
        let reservationValue = try object.value("reservation")
        let reservation: SpendReservation? =
            reservationValue == .null ? nil : try SpendReservation(decoding: reservationValue, "reservation")
        let changes = try object.array("state_changes").enumerated().map {
            (index, change) throws(VerdictDecodingError) in
            try StateChange(decoding: change, "state_changes[\(index)]")
        }
        var reads: [StateRead] = []
        if let readValue = object.optionalMember("state_read") {
            guard case .array(let items) = readValue else {
                throw VerdictDecodingError(field: "state_read", "a JSON \(readValue.kind.rawValue); expected an array")
            }
            reads = try items.enumerated().map { (index, item) throws(VerdictDecodingError) in
                try StateRead(decoding: item, "state_read[\(index)]")
            }
        }
        let selfDescription = object.optionalMember("self")
        let bundleDigest = try object.string("bundle_digest")
        let evaluatedAt = try object.integer("evaluated_at")
        try object.finish()
        self.init(
            requestID: requestID, decision: parsedDecision, reason: reason, latchID: latch, route: route,
            trace: trace, obligations: obligations, reservation: reservation, stateChanges: changes,
            selfDescription: selfDescription, bundleDigest: bundleDigest, evaluatedAt: evaluatedAt, stateReads: reads)
        guard encoded() == bytes else {
            throw VerdictDecodingError(
                field: "", "not the canonical encoding (members in order, compact, escapes as the encoder writes them)")
        }
    }
}

/// A JSON object read member by member in the encoder's order: each read takes the next member,
/// which must have the expected name, so order, presence and absence of extras are all checked.
private struct VerdictObject {
    private let members: [JSONMember]
    private var next = 0
    private let path: String

    init(_ value: JSONValue, _ path: String) throws(VerdictDecodingError) {
        guard case .object(let members) = value else {
            throw VerdictDecodingError(field: path, "a JSON \(value.kind.rawValue); expected an object")
        }
        self.members = members
        self.path = path
    }

    private func field(_ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }

    mutating func value(_ name: String) throws(VerdictDecodingError) -> JSONValue {
        guard next < members.count else { throw VerdictDecodingError(field: field(name), "missing") }
        guard members[next].key == name else {
            throw VerdictDecodingError(
                field: field(name), "expected here, found member \"\(members[next].key)\" instead")
        }
        next += 1
        return members[next - 1].value
    }

    /// The member `name` if it is the next one.
    mutating func optionalMember(_ name: String) -> JSONValue? {
        guard next < members.count, members[next].key == name else { return nil }
        next += 1
        return members[next - 1].value
    }

    mutating func string(_ name: String) throws(VerdictDecodingError) -> String {
        let value = try value(name)
        guard case .string(let text) = value else {
            throw VerdictDecodingError(field: field(name), "a JSON \(value.kind.rawValue); expected a string")
        }
        return text
    }

    mutating func optionalString(_ name: String) throws(VerdictDecodingError) -> String? {
        let value = try value(name)
        switch value {
        case .null: return nil
        case .string(let text): return text
        default:
            throw VerdictDecodingError(field: field(name), "a JSON \(value.kind.rawValue); expected a string or null")
        }
    }

    mutating func integer(_ name: String) throws(VerdictDecodingError) -> Int64 {
        let value = try value(name)
        guard case .number(let number) = value, let integer = number.int64Value else {
            throw VerdictDecodingError(field: field(name), "\(value.jsonText); expected an integer")
        }
        return integer
    }

    mutating func bool(_ name: String) throws(VerdictDecodingError) -> Bool {
        let value = try value(name)
        guard case .bool(let flag) = value else {
            throw VerdictDecodingError(field: field(name), "a JSON \(value.kind.rawValue); expected true or false")
        }
        return flag
    }

    mutating func array(_ name: String) throws(VerdictDecodingError) -> [JSONValue] {
        let value = try value(name)
        guard case .array(let items) = value else {
            throw VerdictDecodingError(field: field(name), "a JSON \(value.kind.rawValue); expected an array")
        }
        return items
    }

    mutating func strings(_ name: String) throws(VerdictDecodingError) -> [String] {
        try array(name).enumerated().map { (index, item) throws(VerdictDecodingError) in
            guard case .string(let text) = item else {
                throw VerdictDecodingError(field: "\(field(name))[\(index)]", "expected a string")
            }
            return text
        }
    }

    mutating func paths(_ name: String) throws(VerdictDecodingError) -> [JSONPath] {
        try strings(name).enumerated().map { (index, text) throws(VerdictDecodingError) in
            do throws(JSONPathError) { return try JSONPath(text) } catch {
                throw VerdictDecodingError(field: "\(field(name))[\(index)]", "not a JSON path: \(error.description)")
            }
        }
    }

    mutating func money(_ name: String) throws(VerdictDecodingError) -> MicroUnits {
        let text = try string(name)
        let negative = text.hasPrefix("-")
        guard let number = JSONNumber(negative ? String(text.dropFirst()) : text), !number.isNegative,
            case .success(let magnitude) = BundleValues.microUnits(number)
        else {
            throw VerdictDecodingError(field: field(name), "\"\(text)\" is not an amount (at most six decimals)")
        }
        return negative ? -magnitude : magnitude
    }

    /// Refuses members after the last one read.
    func finish() throws(VerdictDecodingError) {
        guard next == members.count else {
            throw VerdictDecodingError(field: field(members[next].key), "not a member of this object")
        }
    }
}

extension TraceEntry {
    fileprivate init(decoding value: JSONValue, _ path: String) throws(VerdictDecodingError) {
        var object = try VerdictObject(value, path)
        let filter = try object.string("filter")
        let kind = try object.string("kind")
        let latch = try object.optionalString("latch")
        let mount = try object.optionalString("mount")
        let outcomeText = try object.string("outcome")
        guard let outcome = Outcome(rawValue: outcomeText) else {
            throw VerdictDecodingError(field: "\(path).outcome", "\"\(outcomeText)\"; expected pass, skip or deny")
        }
        let detail = try object.string("detail")
        try object.finish()
        self.init(filter: filter, kind: kind, latch: latch, mount: mount, outcome: outcome, detail: detail)
    }
}

extension ResponseObligations {
    fileprivate init(decoding value: JSONValue, _ path: String) throws(VerdictDecodingError) {
        var object = try VerdictObject(value, path)
        let redact = try object.paths("redact")
        let trim = try object.paths("trim")
        let rules = try object.array("block_if").enumerated().map { (index, rule) throws(VerdictDecodingError) in
            try PayloadRule(decoding: rule, "\(path).block_if[\(index)]")
        }
        let capValue = try object.value("max_bytes")
        var cap: Int?
        if capValue != .null {
            guard case .number(let number) = capValue, let bytes = number.int64Value, bytes >= 0,
                let fits = Int(exactly: bytes)
            else {
                throw VerdictDecodingError(field: "\(path).max_bytes", "\(capValue.jsonText); expected a byte count")
            }
            cap = fits
        }
        try object.finish()
        self.init(redact: redact, trim: trim, blockIf: rules, maxBytes: cap)
    }
}

extension PayloadRule {
    fileprivate init(decoding value: JSONValue, _ path: String) throws(VerdictDecodingError) {
        var object = try VerdictObject(value, path)
        let paths = try object.paths("paths")
        let opText = try object.string("op")
        guard let op = PayloadOperator(rawValue: opText) else {
            throw VerdictDecodingError(field: "\(path).op", "\"\(opText)\" is not a payload operator")
        }
        let operand = object.optionalMember("value")
        let quantifierText = try object.string("quantifier")
        guard let quantifier = PayloadQuantifier(rawValue: quantifierText) else {
            throw VerdictDecodingError(field: "\(path).quantifier", "\"\(quantifierText)\" is not a quantifier")
        }
        let required = try object.bool("required")
        let missingText = try object.string("when_missing")
        guard let whenMissing = PayloadMissingBehaviour(rawValue: missingText) else {
            throw VerdictDecodingError(field: "\(path).when_missing", "\"\(missingText)\" is not a when_missing value")
        }
        try object.finish()
        do {
            try self.init(
                paths: paths, op: op, operand: operand, quantifier: quantifier, required: required,
                whenMissing: whenMissing)
        } catch {
            throw VerdictDecodingError(field: path, error.reason)
        }
    }
}

extension Verdict.Route {
    fileprivate init(decoding value: JSONValue, _ path: String) throws(VerdictDecodingError) {
        var object = try VerdictObject(value, path)
        let kind = try object.string("kind")
        switch kind {
        case "upstream":
            let mount = try object.string("mount")
            let url = try object.string("upstream")
            let secret = try object.optionalString("secret")
            let routed = try object.string("path")
            try object.finish()
            self = .upstream(mount: mount, url: url, secret: secret, path: routed)
        case "self":
            try object.finish()
            self = .selfDescription
        default:
            throw VerdictDecodingError(field: "\(path).kind", "\"\(kind)\"; expected \"upstream\" or \"self\"")
        }
    }
}

extension SpendReservation {
    fileprivate init(decoding value: JSONValue, _ path: String) throws(VerdictDecodingError) {
        var object = try VerdictObject(value, path)
        let requestID = try object.string("request_id")
        let entries = try object.array("entries").enumerated().map { (index, item) throws(VerdictDecodingError) in
            var entry = try VerdictObject(item, "\(path).entries[\(index)]")
            let key = try entry.string("key")
            let amount = try entry.money("amount")
            var pricing = Pricing.fixed
            if let model = entry.optionalMember("model") {
                guard case .string(let name) = model else {
                    throw VerdictDecodingError(field: "\(path).entries[\(index)].model", "expected a string")
                }
                pricing = .tokens(
                    model: name, inputPerMillion: try entry.money("input_per_million"),
                    outputPerMillion: try entry.money("output_per_million"))
            }
            try entry.finish()
            return Entry(key: key, amount: amount, pricing: pricing)
        }
        try object.finish()
        self.init(requestID: requestID, entries: entries)
    }
}

extension StateRead {
    fileprivate init(decoding value: JSONValue, _ path: String) throws(VerdictDecodingError) {
        var object = try VerdictObject(value, path)
        let kind = try object.string("kind")
        let key = try object.string("key")
        switch kind {
        case "rate_window":
            let window = try object.integer("window_ms")
            let requests = try object.integer("requests")
            let tokens = try object.integer("tokens")
            let expiryValue = try object.value("next_expiry")
            var expiry: Int64?
            if expiryValue != .null {
                guard case .number(let number) = expiryValue, let value = number.int64Value else {
                    throw VerdictDecodingError(
                        field: "\(path).next_expiry", "\(expiryValue.jsonText); expected an integer or null")
                }
                expiry = value
            }
            self = .rateWindow(
                key: key, windowMilliseconds: window, requests: requests, tokens: tokens, nextExpiry: expiry)
        case "budget":
            let windows = try object.array("windows").enumerated().map { (index, item) throws(VerdictDecodingError) in
                var read = try VerdictObject(item, "\(path).windows[\(index)]")
                let window = try read.string("window")
                let committed = try read.money("committed")
                let latest = try read.optionalString("latest")
                try read.finish()
                return BudgetWindowRead(window: window, committed: committed, latest: latest)
            }
            self = .budget(key: key, windows: windows)
        default:
            throw VerdictDecodingError(field: "\(path).kind", "\"\(kind)\"; expected \"rate_window\" or \"budget\"")
        }
        try object.finish()
    }
}

extension StateChange {
    fileprivate init(decoding value: JSONValue, _ path: String) throws(VerdictDecodingError) {
        var object = try VerdictObject(value, path)
        let kind = try object.string("kind")
        let key = try object.string("key")
        switch kind {
        case "rate_hit":
            let at = try object.integer("at")
            let window = try object.integer("window_ms")
            let requests = try object.integer("requests")
            let tokens = try object.integer("tokens")
            self = .rateHit(key: key, at: at, windowMilliseconds: window, requests: requests, tokens: tokens)
        case "reserve":
            let requestID = try object.string("request_id")
            let at = try object.integer("at")
            let amount = try object.money("amount")
            let windows = try object.strings("windows")
            self = .reserve(key: key, requestID: requestID, at: at, amount: amount, windows: windows)
        case "settle":
            let requestID = try object.string("request_id")
            let at = try object.integer("at")
            let actual = try object.money("actual")
            self = .settle(key: key, requestID: requestID, at: at, actual: actual)
        default:
            throw VerdictDecodingError(
                field: "\(path).kind", "\"\(kind)\"; expected \"rate_hit\", \"reserve\" or \"settle\"")
        }
        try object.finish()
    }
}
