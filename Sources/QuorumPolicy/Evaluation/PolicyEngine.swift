import Foundation

/// Evaluates decision requests under one bundle: a pure function of (request, state, time).
///
/// The steps, each a trace entry, stop at the first deny:
/// 1. `authentication`: the token is `lat_<id>_<secret>` and its secret hashes to the latch's digest;
/// 2. `revoked`: neither the latch nor an ancestor is revoked;
/// 3. `expiry`: the latch (and so every ancestor) has not expired;
/// 4. `path`: the request target normalises without ambiguity (see ``RequestTarget``);
/// 5. `mount`: a mount of the latch covers the path (or the path is `/self`);
/// 6. the mount's pipeline, root latch first (see ``PolicyBundle``).
///
/// Any error inside a step is a deny naming it; nothing is ever allowed by default. State changes
/// (rate-window hits, budget reservations) are returned, not applied, and only for an allow, so a
/// denied call consumes nothing.
public struct PolicyEngine: Sendable {
    /// The bundle evaluated against.
    public let bundle: PolicyBundle

    /// An engine for `bundle`.
    public init(bundle: PolicyBundle) { self.bundle = bundle }

    /// The verdict for `request` given `state` at `instant`.
    public func evaluate(_ request: DecisionRequest, state: some PolicyStateReading, at instant: Date) -> Verdict {
        var standIns: [TraceEntry] = []
        return evaluate(request, state: state, at: instant, substitutes: nil, standIns: &standIns)
    }

    /// Re-evaluates a logged decision: `request` as logged (the body only if the auditor has it),
    /// `state` the readings the logged verdict recorded (``RecordedState``), `instant` the logged
    /// time. What the log does not hold is taken from the logged verdict as `substitutes` says,
    /// and every entry so taken is returned in ``ReplayOutcome/standIns``, so nothing taken on
    /// trust passes for re-evaluated.
    public func replay(
        _ request: DecisionRequest, state: some PolicyStateReading, at instant: Date, substitutes: ReplaySubstitutes
    ) -> ReplayOutcome {
        var standIns: [TraceEntry] = []
        let verdict = evaluate(request, state: state, at: instant, substitutes: substitutes, standIns: &standIns)
        return ReplayOutcome(verdict: verdict, standIns: standIns)
    }

    private func evaluate(
        _ request: DecisionRequest, state: some PolicyStateReading, at instant: Date, substitutes: ReplaySubstitutes?,
        standIns: inout [TraceEntry]
    ) -> Verdict {
        let now = PolicyEngine.milliseconds(instant)
        var run = Run(request: request, digest: bundle.digest, now: now)

        let latch: ResolvedLatch
        if let logged = substitutes?.authentication {
            // The token is not logged: the step stands as the node logged it.
            standIns.append(logged)
            run.latchID = logged.latch
            guard logged.outcome == .pass else { return run.deny(step: "authentication", logged.detail) }
            guard let id = logged.latch, let resolved = bundle.resolvedLatch(id) else {
                return run.deny(
                    step: "authentication", "no latch '\(logged.latch ?? "")' in bundle version \(bundle.version)")
            }
            latch = resolved
        } else {
            guard let token = LatchToken(request.token) else {
                let detail =
                    request.token.isEmpty
                    ? "no latch token; send Authorization: Bearer lat_<id>_<secret>" : "malformed latch token"
                return run.deny(step: "authentication", detail)
            }
            run.latchID = token.latchID
            guard let resolved = bundle.resolvedLatch(token.latchID) else {
                return run.deny(
                    step: "authentication", "no latch '\(token.latchID)' in bundle version \(bundle.version)")
            }
            guard token.matches(digest: resolved.latch.tokenDigest) else {
                return run.deny(step: "authentication", "token secret does not match latch '\(resolved.id)'")
            }
            latch = resolved
        }
        run.pass(step: "authentication", "latch '\(latch.id)'")

        if !latch.certificateThumbprints.isEmpty {
            guard let presented = request.clientCertificateSHA256 else {
                return run.deny(
                    step: "sender-constraint",
                    "latch '\(latch.id)' is bound to a client certificate (RFC 8705); present it to the proxy's TLS listener"
                )
            }
            guard latch.certificateThumbprints.allSatisfy({ $0 == presented }) else {
                return run.deny(
                    step: "sender-constraint",
                    "the client certificate presented (x5t#S256 \(BundleValues.base64URLEncode(presented))) is not the one "
                        + "latch '\(latch.id)' is bound to")
            }
            run.pass(step: "sender-constraint", "client certificate matches x5t#S256")
        }

        if let revokedBy = latch.revokedBy {
            let detail =
                revokedBy == latch.id
                ? "latch '\(latch.id)' is revoked" : "latch '\(latch.id)' is revoked with its ancestor '\(revokedBy)'"
            return run.deny(step: "revoked", detail)
        }
        run.pass(step: "revoked", "not revoked")

        if let expiry = latch.expiry {
            if now >= expiry.milliseconds { return run.deny(step: "expiry", "expired at \(expiry.text)") }
            run.pass(step: "expiry", "expires at \(expiry.text)")
        } else {
            run.pass(step: "expiry", "no expiry")
        }

        let target: RequestTarget
        switch RequestTarget.parse(request.target) {
        case .success(let parsed): target = parsed
        case .failure(let refusal): return run.deny(step: "path", "ambiguous request path refused: \(refusal)")
        }
        if let override = PolicyEngine.methodOverride(in: request, query: target.query) {
            return run.deny(
                step: "path",
                "\(override) refused: an upstream could run another method than the \(request.method) filters checked")
        }
        run.pass(step: "path", target.path.value)

        if Mount.prefix(Mount.selfPath, covers: target.path.value) {
            run.pass(step: "mount", "/self: answered by the nodes, never forwarded")
            return run.allow(
                route: .selfDescription,
                selfDescription: selfDescription(of: latch, state: state, at: instant, now: now)
            )
        }
        guard let mount = latch.mount(for: target.path.value) else {
            let mounts = latch.mounts.map(\.path).joined(separator: ", ")
            return run.deny(
                step: "mount", "no mount of latch '\(latch.id)' covers \(target.path.value); mounts: \(mounts)")
        }
        run.pass(step: "mount", mount.path)

        let remainder = mount.remainder(ofPath: target.path)
        var context = FilterContext(
            request: request, instant: instant, now: now, latch: latch, mount: mount, path: remainder, bundle: bundle)
        for step in mount.pipeline {
            let filter = step.filter
            let entry = { (outcome: TraceEntry.Outcome, detail: String) in
                TraceEntry(
                    filter: filter.id, kind: filter.kind.name, latch: step.declaringLatch, mount: step.declaringMount,
                    outcome: outcome, detail: detail)
            }
            if let skip = context.skipReason(filter.condition) {
                run.trace.append(entry(.skip, skip))
                continue
            }
            let result: FilterResult
            if let substitutes, substitutes.bodyUnavailable, step.readsBody {
                // The body is not logged: the filter's logged entry stands in for it.
                guard
                    let logged = substitutes.logged.first(where: {
                        $0.filter == filter.id && $0.latch == step.declaringLatch && $0.mount == step.declaringMount
                    }), logged.outcome != .skip
                else {
                    let missing = entry(
                        .deny, "not replayed: it reads the request body, and the node logged no entry for it")
                    standIns.append(missing)
                    run.trace.append(missing)
                    return run.finishDeny("\(filter.id): \(missing.detail)", reads: context.reads)
                }
                standIns.append(logged)
                result = logged.outcome == .pass ? .pass(logged.detail) : .deny(logged.detail)
            } else {
                result = context.evaluate(step, state: state)
            }
            switch result {
            case .pass(let detail):
                run.trace.append(entry(.pass, detail))
            case .deny(let detail):
                run.trace.append(entry(.deny, detail))
                return run.finishDeny("\(filter.id): \(detail)", reads: context.reads)
            }
        }
        let reservation =
            context.reservations.isEmpty
            ? nil : SpendReservation(requestID: request.requestID, entries: context.reservations)
        return run.allow(
            route: .upstream(mount: mount.path, url: mount.upstream, secret: mount.secret, path: remainder.value),
            obligations: context.obligations, reservation: reservation, changes: context.changes, reads: context.reads)
    }

    /// The state changes that settle `reservation` once the call's actual `usage` is known. A call
    /// with fixed pricing settles at its reservation.
    public func settle(_ reservation: SpendReservation, usage: SpendUsage?, at instant: Date) -> [StateChange] {
        let now = PolicyEngine.milliseconds(instant)
        return reservation.entries.map { entry in
            let actual: MicroUnits
            switch (entry.pricing, usage) {
            case (.tokens(_, let input, let output), let usage?):
                actual =
                    Money.cost(tokens: max(0, usage.inputTokens), perMillion: input)
                    .addingSaturating(Money.cost(tokens: max(0, usage.outputTokens), perMillion: output))
            default:
                actual = entry.amount
            }
            return .settle(key: entry.key, requestID: reservation.requestID, at: now, actual: actual)
        }
    }

    /// Header fields and a query parameter that frameworks (Rails, Laravel, Express's
    /// method-override, ASP.NET) read as the real method.
    static let methodOverrideHeaders = ["x-http-method-override", "x-http-method", "x-method-override"]

    /// The method-override header or `_method` query parameter the request carries, if any.
    static func methodOverride(in request: DecisionRequest, query: String?) -> String? {
        if let field = request.headers.first(where: { field in
            methodOverrideHeaders.contains { field.name.equalsIgnoringASCIICase($0) }
        }) {
            return "method-override header \(field.name)"
        }
        guard let query else { return nil }
        for parameter in query.split(separator: "&") {
            let name = String(parameter.prefix { $0 != "=" }).replacingOccurrences(of: "%5F", with: "_")
                .replacingOccurrences(of: "%5f", with: "_")
            if name.equalsIgnoringASCIICase("_method") { return "method-override query parameter \(name)" }
        }
        return nil
    }

    static func milliseconds(_ instant: Date) -> Int64 {
        let value = (instant.timeIntervalSince1970 * 1000).rounded(.down)
        return value >= Double(Int64.max) ? .max : value <= Double(Int64.min) ? .min : Int64(value)
    }

    static func iso(_ date: Date) -> String { date.formatted(.iso8601) }
}

/// What a replay takes from the logged verdict instead of evaluating it, because the log does not
/// hold what evaluating needs.
public struct ReplaySubstitutes: Sendable {
    /// The logged `authentication` step, taken as it stands (the log holds only the token's
    /// SHA-256); `nil` authenticates the request's token as a node does.
    public var authentication: TraceEntry?
    /// Whether the body is missing; then each filter that reads it (``PipelineStep/readsBody``)
    /// takes its entry from `logged`, and has no state changes of its own in the replay.
    public var bodyUnavailable: Bool
    /// The logged verdict's trace.
    public var logged: [TraceEntry]

    /// Substitutes from a logged trace.
    public init(authentication: TraceEntry?, bodyUnavailable: Bool, logged: [TraceEntry]) {
        self.authentication = authentication
        self.bodyUnavailable = bodyUnavailable
        self.logged = logged
    }
}

/// A replay's verdict, and the trace entries it took from the log rather than evaluated.
public struct ReplayOutcome: Sendable {
    /// The verdict the replay reached.
    public let verdict: Verdict
    /// Entries copied from the logged trace (authentication without the token, filters that read a
    /// body the auditor does not have).
    public let standIns: [TraceEntry]
}

/// The verdict under construction.
private struct Run {
    let request: DecisionRequest
    let digest: String
    let now: Int64
    var latchID: String?
    var trace: [TraceEntry] = []

    init(request: DecisionRequest, digest: String, now: Int64) {
        self.request = request
        self.digest = digest
        self.now = now
    }

    mutating func pass(step: String, _ detail: String) {
        trace.append(TraceEntry(filter: step, kind: step, latch: latchID, mount: nil, outcome: .pass, detail: detail))
    }

    mutating func deny(step: String, _ detail: String) -> Verdict {
        trace.append(TraceEntry(filter: step, kind: step, latch: latchID, mount: nil, outcome: .deny, detail: detail))
        return finishDeny("\(step): \(detail)")
    }

    func finishDeny(_ reason: String, reads: [StateRead] = []) -> Verdict {
        Verdict(
            requestID: request.requestID, decision: .deny, reason: reason, latchID: latchID, route: nil, trace: trace,
            obligations: .none, reservation: nil, stateChanges: [], selfDescription: nil, bundleDigest: digest,
            evaluatedAt: now, stateReads: reads)
    }

    func allow(
        route: Verdict.Route, obligations: ResponseObligations = .none, reservation: SpendReservation? = nil,
        changes: [StateChange] = [], selfDescription: JSONValue? = nil, reads: [StateRead] = []
    ) -> Verdict {
        Verdict(
            requestID: request.requestID, decision: .allow, reason: nil, latchID: latchID, route: route, trace: trace,
            obligations: obligations, reservation: reservation, stateChanges: changes,
            selfDescription: selfDescription, bundleDigest: digest, evaluatedAt: now, stateReads: reads)
    }
}

extension ResolvedMount {
    /// The normalised path after this mount's prefix (`/` when nothing follows it).
    func remainder(ofPath path: NormalisedPath) -> NormalisedPath {
        let rest = String(path.value.utf8.dropFirst(self.path.utf8.count))!
        let text = rest.isEmpty ? "/" : rest
        let prefixSegments = self.path.utf8.split(separator: UInt8(ascii: "/")).count
        return NormalisedPath(
            value: text, segments: Array(path.segments.dropFirst(prefixSegments)),
            hasTrailingSlash: path.hasTrailingSlash && text != "/")
    }
}
