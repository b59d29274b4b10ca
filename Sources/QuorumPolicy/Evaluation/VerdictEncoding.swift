extension Verdict {
    /// The verdict as JSON: `decision`, `reason`, `trace`, `obligations` first, then the rest, in a
    /// fixed member order. Equal verdicts give byte-identical text, so nodes and a later replay
    /// can compare encodings.
    public var jsonValue: JSONValue {
        var members: [JSONMember] = [
            .init(key: "decision", value: .string(decision.rawValue)),
            .init(key: "reason", value: reason.map(JSONValue.string) ?? .null),
            .init(key: "trace", value: .array(trace.map(\.jsonValue))),
            .init(key: "obligations", value: obligations.jsonValue),
            .init(key: "request_id", value: .string(requestID)),
            .init(key: "latch", value: latchID.map(JSONValue.string) ?? .null),
            .init(key: "route", value: route.map(\.jsonValue) ?? .null),
            .init(key: "reservation", value: reservation.map(\.jsonValue) ?? .null),
            .init(key: "state_changes", value: .array(stateChanges.map(\.jsonValue))),
        ]
        // Only when something was read, so verdicts of pipelines without state keep their bytes.
        if !stateReads.isEmpty { members.append(.init(key: "state_read", value: .array(stateReads.map(\.jsonValue)))) }
        if let selfDescription { members.append(.init(key: "self", value: selfDescription)) }
        members.append(.init(key: "bundle_digest", value: .string(bundleDigest)))
        members.append(.init(key: "evaluated_at", value: .number(JSONNumber(evaluatedAt))))
        return .object(members)
    }

    /// Compact UTF-8 JSON of ``jsonValue``: the bytes a node signs.
    public func encoded() -> [UInt8] { Array(jsonValue.jsonText.utf8) }
}

extension Verdict.Route {
    var jsonValue: JSONValue {
        switch self {
        case .upstream(let mount, let url, let secret, let path):
            .object([
                .init(key: "kind", value: .string("upstream")),
                .init(key: "mount", value: .string(mount)),
                .init(key: "upstream", value: .string(url)),
                .init(key: "secret", value: secret.map(JSONValue.string) ?? .null),
                .init(key: "path", value: .string(path)),
            ])
        case .selfDescription:
            .object([.init(key: "kind", value: .string("self"))])
        }
    }
}

extension TraceEntry {
    var jsonValue: JSONValue {
        .object([
            .init(key: "filter", value: .string(filter)),
            .init(key: "kind", value: .string(kind)),
            .init(key: "latch", value: latch.map(JSONValue.string) ?? .null),
            .init(key: "mount", value: mount.map(JSONValue.string) ?? .null),
            .init(key: "outcome", value: .string(outcome.rawValue)),
            .init(key: "detail", value: .string(detail)),
        ])
    }
}

extension ResponseObligations {
    /// The obligations as JSON: paths as text, rules in their bundle form.
    public var jsonValue: JSONValue {
        .object([
            .init(key: "redact", value: .array(redact.map { .string($0.description) })),
            .init(key: "trim", value: .array(trim.map { .string($0.description) })),
            .init(key: "block_if", value: .array(blockIf.map(\.jsonValue))),
            .init(key: "max_bytes", value: maxBytes.map { .number(JSONNumber(Int64($0))) } ?? .null),
        ])
    }
}

extension PayloadRule {
    /// The rule in its bundle form: `paths`, `op`, `value`, `quantifier`, `required`, `when_missing`.
    public var jsonValue: JSONValue {
        var members: [JSONMember] = [
            .init(key: "paths", value: .array(paths.map { .string($0.description) })),
            .init(key: "op", value: .string(op.rawValue)),
        ]
        if let operand { members.append(.init(key: "value", value: operand)) }
        members += [
            .init(key: "quantifier", value: .string(quantifier.rawValue)),
            .init(key: "required", value: .bool(required)),
            .init(key: "when_missing", value: .string(whenMissing.rawValue)),
        ]
        return .object(members)
    }
}

extension SpendReservation {
    var jsonValue: JSONValue {
        .object([
            .init(key: "request_id", value: .string(requestID)),
            .init(
                key: "entries",
                value: .array(
                    entries.map { entry in
                        var members: [JSONMember] = [
                            .init(key: "key", value: .string(entry.key)),
                            .init(key: "amount", value: .string(Money.format(entry.amount))),
                        ]
                        if case .tokens(let model, let input, let output) = entry.pricing {
                            members.append(.init(key: "model", value: .string(model)))
                            members.append(.init(key: "input_per_million", value: .string(Money.format(input))))
                            members.append(.init(key: "output_per_million", value: .string(Money.format(output))))
                        }
                        return .object(members)
                    })),
        ])
    }
}

extension StateRead {
    var jsonValue: JSONValue {
        func number(_ value: Int64) -> JSONValue { .number(JSONNumber(value)) }
        switch self {
        case .rateWindow(let key, let window, let requests, let tokens, let nextExpiry):
            return .object([
                .init(key: "kind", value: .string("rate_window")), .init(key: "key", value: .string(key)),
                .init(key: "window_ms", value: number(window)), .init(key: "requests", value: number(requests)),
                .init(key: "tokens", value: number(tokens)),
                .init(key: "next_expiry", value: nextExpiry.map(number) ?? .null),
            ])
        case .budget(let key, let windows):
            return .object([
                .init(key: "kind", value: .string("budget")), .init(key: "key", value: .string(key)),
                .init(
                    key: "windows",
                    value: .array(
                        windows.map { read in
                            .object([
                                .init(key: "window", value: .string(read.window)),
                                .init(key: "committed", value: .string(Money.format(read.committed))),
                                .init(key: "latest", value: read.latest.map(JSONValue.string) ?? .null),
                            ])
                        })),
            ])
        }
    }
}

extension StateChange {
    var jsonValue: JSONValue {
        func number(_ value: Int64) -> JSONValue { .number(JSONNumber(value)) }
        switch self {
        case .rateHit(let key, let at, let window, let requests, let tokens):
            return .object([
                .init(key: "kind", value: .string("rate_hit")), .init(key: "key", value: .string(key)),
                .init(key: "at", value: number(at)), .init(key: "window_ms", value: number(window)),
                .init(key: "requests", value: number(requests)), .init(key: "tokens", value: number(tokens)),
            ])
        case .reserve(let key, let requestID, let at, let amount, let windows):
            return .object([
                .init(key: "kind", value: .string("reserve")), .init(key: "key", value: .string(key)),
                .init(key: "request_id", value: .string(requestID)), .init(key: "at", value: number(at)),
                .init(key: "amount", value: .string(Money.format(amount))),
                .init(key: "windows", value: .array(windows.map(JSONValue.string))),
            ])
        case .settle(let key, let requestID, let at, let actual):
            return .object([
                .init(key: "kind", value: .string("settle")), .init(key: "key", value: .string(key)),
                .init(key: "request_id", value: .string(requestID)), .init(key: "at", value: number(at)),
                .init(key: "actual", value: .string(Money.format(actual))),
            ])
        }
    }
}
