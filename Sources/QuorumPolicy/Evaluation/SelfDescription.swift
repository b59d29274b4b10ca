import Foundation

extension PolicyEngine {
    /// The `/self` answer: what the latch may do, with the rate and budget left right now. It names
    /// mounts, filters and limits; it never names upstream URLs or secrets.
    func selfDescription(
        of latch: ResolvedLatch, state: some PolicyStateReading, at instant: Date, now: Int64
    )
        -> JSONValue
    {
        var members: [JSONMember] = [
            .init(key: "latch", value: .string(latch.id)),
            .init(key: "chain", value: .array(latch.chain.map(JSONValue.string))),
            .init(key: "expires", value: latch.expires.map { .string(PolicyEngine.iso($0)) } ?? .null),
            .init(
                key: "labels",
                value: .object(
                    latch.latch.labels.sorted { $0.key < $1.key }.map { .init(key: $0.key, value: .string($0.value)) })),
        ]
        let mounts: [JSONValue] = latch.mounts.map { mount in
            .object([
                .init(key: "path", value: .string(mount.path)),
                .init(
                    key: "filters",
                    value: .array(
                        mount.pipeline.map { describe($0, mount: mount, state: state, at: instant, now: now) })),
            ])
        }
        members.append(.init(key: "mounts", value: .array(mounts)))
        return .object(members)
    }

    private func describe(
        _ step: PipelineStep, mount: ResolvedMount, state: some PolicyStateReading, at instant: Date, now: Int64
    ) -> JSONValue {
        var members: [JSONMember] = [
            .init(key: "filter", value: .string(step.filter.id)),
            .init(key: "kind", value: .string(step.filter.kind.name)),
            .init(key: "declared_by", value: .string(step.declaringLatch)),
        ]
        func add(_ key: String, _ value: JSONValue) { members.append(.init(key: key, value: value)) }
        func number(_ value: Int64) -> JSONValue { .number(JSONNumber(value)) }
        func strings(_ values: [String]) -> JSONValue { .array(values.map(JSONValue.string)) }
        switch step.filter.kind {
        case .method(let methods): add("methods", strings(methods.methods.map { $0.sorted() } ?? ["*"]))
        case .endpoint(let endpoint):
            add("allow", strings(endpoint.allow.map(\.description)))
            add("block", strings(endpoint.block.map(\.description)))
        case .payload(let rules): add("rules", strings(rules.map(\.summary)))
        case .bodySize(let maxBytes): add("max_bytes", number(Int64(maxBytes)))
        case .timeWindow(let windows): add("windows", strings(windows.map(\.summary)))
        case .ipAllowlist(let allowlist): add("allow", strings(allowlist.ranges.map(\.description)))
        case .headers(let requirements):
            add("required", strings(requirements.map { $0.name + ($0.pattern.map { ": \($0)" } ?? "") }))
        case .response(let obligations): add("obligations", .string(obligations.summary))
        case .rateLimit(let limit):
            // Per-client windows depend on the caller's address, which `/self` does not single out:
            // report the latch-wide or per-mount window, and the limits alone for per-client ones.
            let key: String? =
                switch limit.key {
                case .latch: step.stateKey
                case .mount: step.stateKey + "@" + mount.path
                case .client: nil
                }
            let used = key.map { state.rateWindow($0).usage(at: now, window: limit.windowMilliseconds) }
            add("window", .string(Duration.format(milliseconds: limit.windowMilliseconds)))
            add("key", .string(limit.key.rawValue))
            if let requests = limit.requests {
                add("requests", number(requests))
                if let used { add("requests_remaining", number(max(0, requests - used.requests))) }
            }
            if let tokens = limit.tokens {
                add("tokens", number(tokens))
                if let used { add("tokens_remaining", number(max(0, tokens - used.tokens))) }
            }
        case .budget(let budget):
            let ledger = state.budgetLedger(step.stateKey)
            for window in budget.windows(at: instant) {
                add(
                    window.name,
                    .object([
                        .init(key: "cap", value: .string(Money.format(window.cap))),
                        .init(
                            key: "remaining",
                            value: .string(Money.format(max(0, window.cap - ledger.committed(in: window.key))))),
                    ]))
            }
        }
        if let condition = step.filter.condition {
            var when: [JSONMember] = []
            if let methods = condition.methods {
                when.append(.init(key: "methods", value: strings(methods.methods.map { $0.sorted() } ?? [])))
            }
            if let endpoints = condition.endpoints {
                when.append(.init(key: "endpoints", value: strings(endpoints.map(\.description))))
            }
            add("when", .object(when))
        }
        return .object(members)
    }
}
