extension FilterContext {
    /// Counts the request (and its declared tokens) against a sliding window kept under the
    /// declaring latch, per mount or per client address as the filter says.
    mutating func checkRateLimit(
        _ limit: RateLimitFilter, step: PipelineStep, state: some PolicyStateReading
    )
        -> FilterResult
    {
        let key: String
        switch limit.key {
        case .latch: key = step.stateKey
        case .mount: key = step.stateKey + "@" + mount.path
        case .client:
            // One window per parsed address, so `::1` and `0::1` are one client; IPv6 clients by
            // their /64, which one host can fill with addresses.
            guard let address = try? IPAddress(request.clientAddress) else {
                return .deny("client address '\(request.clientAddress)' is not an IP address")
            }
            let client: String =
                switch address {
                case .v4: address.description
                case .v6(let high, _): "\(IPAddress.v6(high: high, low: 0))/64"
                }
            key = step.stateKey + "@" + client
        }
        var tokens: Int64 = 0
        if limit.tokens != nil {
            switch declaredTokens(alias: limit.tokenField) {
            case .success(let count): tokens = count
            case .failure(let problem): return .deny("cannot count tokens: \(problem.reason)")
            }
        }
        let window = state.rateWindow(key)
        let used = window.usage(at: now, window: limit.windowMilliseconds)
        let expiry = window.nextExpiry(at: now, window: limit.windowMilliseconds)
        reads.append(
            .rateWindow(
                key: key, windowMilliseconds: limit.windowMilliseconds, requests: used.requests, tokens: used.tokens,
                nextExpiry: expiry))
        let span = Duration.format(milliseconds: limit.windowMilliseconds)
        let retry = expiry.map {
            "; retry in \(Duration.format(milliseconds: max(1, $0 - now)))"
        }
        if let maxRequests = limit.requests, used.requests >= maxRequests {
            return .deny("\(maxRequests) requests per \(span) reached\(retry ?? "")")
        }
        if let maxTokens = limit.tokens, used.tokens.addingSaturating(tokens) > maxTokens {
            return .deny(
                "\(used.tokens) of \(maxTokens) tokens per \(span) used; this request declares \(tokens)\(retry ?? "")")
        }
        changes.append(
            .rateHit(key: key, at: now, windowMilliseconds: limit.windowMilliseconds, requests: 1, tokens: tokens))
        var detail: [String] = []
        if let maxRequests = limit.requests { detail.append("\(used.requests + 1) of \(maxRequests) requests") }
        if let maxTokens = limit.tokens { detail.append("\(used.tokens + tokens) of \(maxTokens) tokens") }
        return .pass(detail.joined(separator: ", ") + " per \(span)")
    }
}

/// Durations as the bundle writes them.
enum Duration {
    /// `90s`, `1m`, `1h`, `1d`, or milliseconds: the largest unit that divides evenly.
    static func format(milliseconds: Int64) -> String {
        for (unit, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000)]
        where milliseconds % size == 0 {
            return "\(milliseconds / size)\(unit)"
        }
        return "\(milliseconds)ms"
    }
}
