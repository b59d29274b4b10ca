import Foundation

// The filters that read only the request and the clock.
extension FilterContext {
    func checkMethod(_ methods: MethodSet) -> FilterResult {
        methods.contains(request.method)
            ? .pass("\(request.method) allowed")
            : .deny("method \(request.method) not allowed; allowed: \(methods.listing)")
    }

    func checkEndpoint(_ endpoint: EndpointFilter) -> FilterResult {
        if let blocked = endpoint.block.first(where: { $0.matches(path, ignoringASCIICase: true) }) {
            return .deny("\(path.value) is blocked by \(blocked)")
        }
        if endpoint.allow.isEmpty { return .pass("\(path.value) not blocked") }
        if let allowed = endpoint.allow.first(where: { $0.matches(path) }) {
            return .pass("\(path.value) allowed by \(allowed)")
        }
        let allowed = endpoint.allow.map(\.description).joined(separator: ", ")
        return .deny("\(path.value) is not an allowed endpoint; allowed: \(allowed)")
    }

    mutating func checkPayload(_ rules: [PayloadRule]) -> FilterResult {
        let body: JSONValue
        switch jsonBody() {
        case .success(let value): body = value
        case .failure(let problem): return .deny(problem.reason)
        }
        for rule in rules {
            if case .violated(let reason) = rule.evaluate(body) { return .deny(reason) }
        }
        return .pass("\(rules.count) rule\(rules.count == 1 ? "" : "s") satisfied")
    }

    func checkBodySize(_ maxBytes: Int) -> FilterResult {
        request.bodyLength <= maxBytes
            ? .pass("\(request.bodyLength) bytes ≤ \(maxBytes)")
            : .deny("body of \(request.bodyLength) bytes exceeds \(maxBytes)")
    }

    func checkTimeWindow(_ windows: [TimeWindow]) -> FilterResult {
        if let open = windows.first(where: { $0.contains(instant) }) {
            return .pass("inside \(open.summary)")
        }
        let (day, minutes) = windows[0].localTime(at: instant)
        let local = "\(day) \(TimeOfDay.format(minutes)) \(windows[0].timeZone.identifier)"
        return .deny("outside \(windows.map(\.summary).joined(separator: " and ")) (now \(local))")
    }

    func checkClientAddress(_ allowlist: IPAllowlist) -> FilterResult {
        let address: IPAddress
        do {
            address = try IPAddress(request.clientAddress)
        } catch {
            return .deny("client address '\(request.clientAddress)' is not an IP address")
        }
        return allowlist.contains(address)
            ? .pass("\(address) allowed")
            : .deny(
                "client address \(address) is not in \(allowlist.ranges.map(\.description).joined(separator: ", "))")
    }

    func checkHeaders(_ requirements: [HeaderRequirement]) -> FilterResult {
        let fields = request.headers.map { (name: $0.name, value: $0.value) }
        for requirement in requirements {
            switch requirement.check(fields) {
            case .satisfied: continue
            case .missing: return .deny("required header \(requirement.name) is missing")
            case .mismatched(let occurrence):
                return .deny(
                    "header \(requirement.name) (occurrence \(occurrence + 1)) does not match \(requirement.pattern?.description ?? "")"
                )
            }
        }
        return .pass("\(requirements.map(\.name).joined(separator: ", ")) present")
    }
}

extension TimeOfDay {
    /// `HH:MM` for a minute of the day.
    static func format(_ minutes: Int) -> String {
        let hours = minutes / 60
        let rest = minutes % 60
        return (hours < 10 ? "0" : "") + "\(hours):" + (rest < 10 ? "0" : "") + "\(rest)"
    }
}
