import Foundation

extension FilterContext {
    /// Reserves the call's cost in every window the budget caps, or denies if any window would go
    /// over. The ledger lives under the declaring latch, so descendants share it.
    mutating func checkBudget(
        _ budget: BudgetFilter, step: PipelineStep, state: some PolicyStateReading
    )
        -> FilterResult
    {
        let amount: MicroUnits
        let pricing: SpendReservation.Pricing
        switch budget.cost {
        case .perRequest(let cost):
            amount = cost
            pricing = .fixed
        case .llm(let modelPath, let tokenField):
            let body: JSONValue
            switch jsonBody() {
            case .success(let value): body = value
            case .failure(let problem): return .deny("cannot price the call: \(problem.reason)")
            }
            let models = modelPath.evaluate(body)
            guard models.count == 1, case .string(let model) = models[0] else {
                return .deny("cannot price the call: \(modelPath) must select one model name")
            }
            guard let price = bundle.prices[model] else {
                let known = bundle.prices.keys.sorted().joined(separator: ", ")
                return .deny("no price for model '\(Money.excerpt(model))'; priced: \(known)")
            }
            let cap: Int64
            switch declaredTokens(alias: tokenField) {
            case .success(let count): cap = count
            case .failure(let problem): return .deny("cannot price the call: \(problem.reason)")
            }
            amount = Money.cost(tokens: cap, perMillion: price.outputPerMillion)
                .addingSaturating(Money.cost(tokens: Int64(request.bodyLength), perMillion: price.inputPerMillion))
            pricing = .tokens(
                model: model, inputPerMillion: price.inputPerMillion, outputPerMillion: price.outputPerMillion)
        }

        let ledger = state.budgetLedger(step.stateKey)
        let windows = budget.windows(at: instant)
        reads.append(
            .budget(
                key: step.stateKey,
                windows: windows.map {
                    BudgetWindowRead(
                        window: $0.key, committed: ledger.committed(in: $0.key),
                        latest: ledger.latestWindow(like: $0.key))
                }))
        for window in windows {
            // Day and month keys sort by date. A later window in the ledger means this node's
            // clock has gone back; the spend of the window it points at may have been forgotten,
            // so deny rather than count from zero.
            if let later = ledger.latestWindow(like: window.key), later > window.key {
                return .deny("\(window.name) budget: the clock reads \(window.key) but the ledger already has \(later)")
            }
            let committed = ledger.committed(in: window.key)
            if committed.addingSaturating(amount) > window.cap {
                let remaining = max(0, window.cap - committed)
                return .deny(
                    "\(window.name) budget: this call reserves \(Money.format(amount)), "
                        + "\(Money.format(remaining)) of \(Money.format(window.cap)) remains")
            }
        }
        changes.append(
            .reserve(
                key: step.stateKey, requestID: request.requestID, at: now, amount: amount,
                windows: windows.map(\.key)))
        reservations.append(.init(key: step.stateKey, amount: amount, pricing: pricing))
        return .pass(
            "reserved \(Money.format(amount)); "
                + windows.map {
                    "\($0.name) \(Money.format(ledger.committed(in: $0.key) + amount)) of \(Money.format($0.cap))"
                }
                .joined(separator: ", "))
    }
}

extension BudgetFilter {
    /// One capped window: its display name, state key and cap.
    struct Window {
        let name: String
        let key: String
        let cap: MicroUnits
    }

    /// The windows that contain `instant`, in the budget's calendar.
    func windows(at instant: Date) -> [Window] {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.year, .month, .day], from: instant)
        let year = parts.year!
        let month = (parts.month! < 10 ? "0" : "") + "\(parts.month!)"
        let day = (parts.day! < 10 ? "0" : "") + "\(parts.day!)"
        var result: [Window] = []
        if let perDay { result.append(Window(name: "day", key: "day:\(year)-\(month)-\(day)", cap: perDay)) }
        if let perMonth { result.append(Window(name: "month", key: "month:\(year)-\(month)", cap: perMonth)) }
        if let total { result.append(Window(name: "total", key: "total", cap: total)) }
        return result
    }
}

/// Money arithmetic in micro-units, exact and saturating.
enum Money {
    /// `tokens × perMillion / 1,000,000`, rounded up, saturating at `Int64.max`.
    static func cost(tokens: Int64, perMillion: MicroUnits) -> MicroUnits {
        let (value, overflow) = tokens.multipliedReportingOverflow(by: perMillion)
        guard !overflow, value >= 0 else { return .max }
        return value / 1_000_000 + (value % 1_000_000 == 0 ? 0 : 1)
    }

    /// `12.345` for 12,345,000 micro-units: at least two decimals, no trailing zeros beyond them.
    static func format(_ amount: MicroUnits) -> String {
        let sign = amount < 0 ? "-" : ""
        let magnitude = amount.magnitude
        var fraction = String(magnitude % 1_000_000)
        fraction = String(repeating: "0", count: 6 - fraction.count) + fraction
        while fraction.count > 2 && fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(sign)\(magnitude / 1_000_000).\(fraction)"
    }

    /// A request-supplied name cut to 40 characters, so a reason cannot carry a long value.
    static func excerpt(_ text: String) -> String {
        text.count <= 40 ? text : String(text.prefix(40)) + "…"
    }
}
