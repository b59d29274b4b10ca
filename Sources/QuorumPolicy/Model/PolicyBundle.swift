import Foundation

/// Everything a node needs to decide calls: secrets (names only), field aliases, a price table and
/// the latches, under a version number that only grows.
///
/// **Derivation.** A latch with a `parent` inherits the parent's effective pipeline and may only
/// add to it:
/// - its pipeline is the parent's followed by its own filters, so nothing of the parent's can be
///   dropped, reordered or replaced (a filter `id` equal to one of the parent's is refused);
/// - its mounts are a subset of the parent's, named by path; a mount may add filters but may not
///   name another upstream or secret;
/// - it expires no later than its parent (and must expire if the parent does).
/// Revoking a latch revokes every descendant. Filters with state (rate limits, budgets) keep it
/// under the latch that declared them, so a parent's budget is shared by all its descendants.
///
/// The initialiser checks all of this and throws every problem found, each naming the offending
/// field path (`latches[3].mounts[0].upstream`).
public struct PolicyBundle: Sendable {
    /// The value of the bundle's `format` field.
    public static let format = "quorum-latch/bundle/v1"

    /// The bundle version; a node accepts only a higher one than it holds.
    public let version: UInt64
    /// The secrets mounts may name, by name.
    public let secrets: [String: SecretSpec]
    /// Field aliases: a name (`token_cap`) for the paths that mean the same thing.
    public let fieldAliases: [String: [JSONPath]]
    /// Model prices for LLM budgets, by model name.
    public let prices: [String: ModelPrice]
    /// The latches, in bundle order.
    public let latches: [Latch]
    /// `sha256:<hex>` of the bundle's canonical encoding: what verdicts and receipts name.
    public let digest: String

    private let resolvedByID: [String: ResolvedLatch]

    /// Checks and resolves a bundle. `digest` is computed by whoever encoded it canonically.
    public init(
        version: UInt64, secrets: [SecretSpec], fieldAliases: [String: [JSONPath]], prices: [String: ModelPrice],
        latches: [Latch], digest: String
    ) throws(BundleProblems) {
        var problems: [BundleProblem] = []
        var secretsByName: [String: SecretSpec] = [:]
        for (index, secret) in secrets.enumerated() {
            if secretsByName.updateValue(secret, forKey: secret.name) != nil {
                problems.append(.init("secrets[\(index)].name", "secret '\(secret.name)' is declared twice"))
            }
        }
        var indexByID: [String: Int] = [:]
        for (index, latch) in latches.enumerated() {
            if !Latch.isValidID(latch.id) {
                problems.append(
                    .init(
                        "latches[\(index)].id",
                        "'\(latch.id)' is not a latch id; expected 1-64 of a-z, 0-9 and '-', not starting with '-'"))
            }
            if indexByID.updateValue(index, forKey: latch.id) != nil {
                problems.append(.init("latches[\(index)].id", "latch '\(latch.id)' is declared twice"))
            }
        }
        var context = ResolutionContext(
            latches: latches, indexByID: indexByID, secrets: secretsByName, fieldAliases: fieldAliases,
            prices: prices)
        for index in latches.indices { _ = context.resolve(index) }
        problems += context.problems
        if !problems.isEmpty { throw BundleProblems(problems) }

        self.version = version
        self.secrets = secretsByName
        self.fieldAliases = fieldAliases
        self.prices = prices
        self.latches = latches
        self.digest = digest
        var resolved: [String: ResolvedLatch] = [:]
        for case let latch? in context.resolved { resolved[latch.id] = latch }
        resolvedByID = resolved
    }

    /// The latch `id` with its inherited pipeline, expiry and revocation, or `nil` if unknown.
    public func resolvedLatch(_ id: String) -> ResolvedLatch? { resolvedByID[id] }

    /// The latches whose chain includes `id` (itself and every descendant), in bundle order.
    public func descendants(of id: String) -> [String] {
        latches.compactMap { latch in resolvedByID[latch.id]?.chain.contains(id) == true ? latch.id : nil }
    }
}

/// A latch with everything inherited worked out.
public struct ResolvedLatch: Sendable {
    /// The latch id.
    public let id: String
    /// Ids from the root latch down to this one.
    public let chain: [String]
    /// The latch as declared.
    public let latch: Latch
    /// The earliest expiry along the chain.
    public let expires: Date?
    /// The first revoked latch along the chain (root first), if any.
    public let revokedBy: String?
    /// The effective mounts, in the order of the root's declaration.
    public let mounts: [ResolvedMount]
    /// The RFC 8705 certificate bindings along the chain (root first), each of which the client
    /// certificate must satisfy; empty when no latch in the chain is sender-constrained.
    public let certificateThumbprints: [[UInt8]]
    /// `expires` in milliseconds since 1970 and as ISO 8601 text, worked out once at load: every
    /// evaluation compares against it and names it in the trace.
    let expiry: (milliseconds: Int64, text: String)?

    init(
        id: String, chain: [String], latch: Latch, expires: Date?, revokedBy: String?, mounts: [ResolvedMount],
        certificateThumbprints: [[UInt8]]
    ) {
        self.certificateThumbprints = certificateThumbprints
        self.id = id
        self.chain = chain
        self.latch = latch
        self.expires = expires
        self.revokedBy = revokedBy
        self.mounts = mounts
        expiry = expires.map { (PolicyEngine.milliseconds($0), $0.formatted(.iso8601)) }
    }

    /// The mount with the longest prefix covering the normalised `path`, if any.
    public func mount(for path: String) -> ResolvedMount? {
        var best: ResolvedMount?
        for mount in mounts where Mount.prefix(mount.path, covers: path) {
            if best == nil || mount.path.utf8.count > best!.path.utf8.count { best = mount }
        }
        return best
    }
}

/// A mount with its complete pipeline: for each latch from the root down, the latch's filters and
/// then its filters for this mount.
public struct ResolvedMount: Sendable {
    /// The prefix.
    public let path: String
    /// The upstream base URL.
    public let upstream: String
    /// The secret injected, if any.
    public let secret: String?
    /// The filters to run, in order.
    public let pipeline: [PipelineStep]
}

/// One filter in a resolved pipeline, with where it came from.
public struct PipelineStep: Sendable {
    /// The filter.
    public let filter: Filter
    /// The latch whose declaration holds the filter (the state owner).
    public let declaringLatch: String
    /// The mount path when declared on a mount, `nil` when declared on the latch.
    public let declaringMount: String?
    /// Where the filter's state lives: `<latch>/<mount or *>/<filter id>`.
    public var stateKey: String { "\(declaringLatch)/\(declaringMount ?? "*")/\(filter.id)" }
}

/// One problem with a bundle: the field path and what is wrong there.
public struct BundleProblem: Sendable, Equatable, CustomStringConvertible {
    /// The field path, `latches[2].mounts[0].upstream`, or empty for the whole document.
    public let path: String
    /// What is wrong and what would be valid.
    public let message: String

    /// A problem at `path`.
    public init(_ path: String, _ message: String) {
        self.path = path
        self.message = message
    }

    /// `path: message`.
    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// Every problem found in a bundle.
public struct BundleProblems: Error, Sendable, Equatable, CustomStringConvertible {
    /// The problems, in document order where known.
    public let problems: [BundleProblem]

    /// Problems.
    public init(_ problems: [BundleProblem]) { self.problems = problems }

    /// One line per problem.
    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// Resolves latches parent first, memoised, recording problems once per latch.
private struct ResolutionContext {
    let latches: [Latch]
    let indexByID: [String: Int]
    let secrets: [String: SecretSpec]
    let fieldAliases: [String: [JSONPath]]
    let prices: [String: ModelPrice]
    var resolved: [ResolvedLatch?]
    var state: [Int: Bool] = [:]  // false: in progress, true: done
    var problems: [BundleProblem] = []

    init(
        latches: [Latch], indexByID: [String: Int], secrets: [String: SecretSpec],
        fieldAliases: [String: [JSONPath]], prices: [String: ModelPrice]
    ) {
        self.latches = latches
        self.indexByID = indexByID
        self.secrets = secrets
        self.fieldAliases = fieldAliases
        self.prices = prices
        resolved = Array(repeating: nil, count: latches.count)
    }

    mutating func resolve(_ index: Int) -> ResolvedLatch? {
        if state[index] == true { return resolved[index] }
        let latch = latches[index]
        let at = "latches[\(index)]"
        if state[index] == false {
            problems.append(.init("\(at).parent", "latch '\(latch.id)' is its own ancestor (a parent cycle)"))
            return nil
        }
        state[index] = false
        defer { state[index] = true }
        checkFilters(latch.filters, at: "\(at).filters", against: [])

        guard let parentID = latch.parent else {
            resolved[index] = resolveRoot(latch, at: at)
            return resolved[index]
        }
        guard let parentIndex = indexByID[parentID] else {
            problems.append(.init("\(at).parent", "no latch '\(parentID)' in the bundle"))
            return nil
        }
        guard let parent = resolve(parentIndex) else { return nil }
        resolved[index] = resolveChild(latch, of: parent, at: at)
        return resolved[index]
    }

    private mutating func resolveRoot(_ latch: Latch, at: String) -> ResolvedLatch? {
        guard let mounts = latch.mounts, !mounts.isEmpty else {
            problems.append(.init("\(at).mounts", "a latch without a parent needs at least one mount"))
            return nil
        }
        var seen: Set<String> = []
        var resolvedMounts: [ResolvedMount] = []
        for (index, mount) in mounts.enumerated() {
            let mountAt = "\(at).mounts[\(index)]"
            checkMountPath(mount.path, at: "\(mountAt).path")
            if !seen.insert(mount.path).inserted {
                problems.append(.init("\(mountAt).path", "mount '\(mount.path)' is declared twice"))
            }
            guard let upstream = mount.upstream else {
                problems.append(.init("\(mountAt).upstream", "a mount of a root latch needs an upstream URL"))
                continue
            }
            if let secret = mount.secret, secrets[secret] == nil {
                let known = secrets.keys.sorted().joined(separator: ", ")
                problems.append(
                    .init(
                        "\(mountAt).secret",
                        "no secret '\(secret)' in the bundle; declared: \(known.isEmpty ? "none" : known)"))
            }
            checkFilters(mount.filters, at: "\(mountAt).filters", against: [])
            let steps =
                latch.filters.map { PipelineStep(filter: $0, declaringLatch: latch.id, declaringMount: nil) }
                + mount.filters.map { PipelineStep(filter: $0, declaringLatch: latch.id, declaringMount: mount.path) }
            resolvedMounts.append(
                ResolvedMount(path: mount.path, upstream: upstream, secret: mount.secret, pipeline: steps))
        }
        return ResolvedLatch(
            id: latch.id, chain: [latch.id], latch: latch, expires: latch.expires,
            revokedBy: latch.revoked ? latch.id : nil, mounts: resolvedMounts,
            certificateThumbprints: latch.certificateThumbprint.map { [$0] } ?? [])
    }

    private mutating func resolveChild(_ latch: Latch, of parent: ResolvedLatch, at: String) -> ResolvedLatch? {
        let inheritedIDs = Set(parent.mounts.flatMap { $0.pipeline.map(\.filter) }.filter(\.isNamed).map(\.id))
        for (index, filter) in latch.filters.enumerated() where filter.isNamed && inheritedIDs.contains(filter.id) {
            problems.append(
                .init(
                    "\(at).filters[\(index)].id",
                    "filter '\(filter.id)' is the parent's; a derived latch cannot replace its parent's filters, only add new ones with other ids"
                ))
        }
        if let parentExpiry = parent.expires {
            if let expiry = latch.expires {
                if expiry > parentExpiry {
                    problems.append(
                        .init(
                            "\(at).expires",
                            "expires \(iso(expiry)), after its parent '\(parent.id)' (\(iso(parentExpiry))); a derived latch must expire no later"
                        ))
                }
            } else {
                problems.append(
                    .init(
                        "\(at).expires",
                        "missing: the parent '\(parent.id)' expires \(iso(parentExpiry)), so this latch must expire no later"
                    ))
            }
        }
        var mounts: [ResolvedMount] = []
        if let declared = latch.mounts {
            if declared.isEmpty {
                problems.append(.init("\(at).mounts", "empty; omit `mounts` to keep every mount of the parent"))
            }
            var seen: Set<String> = []
            for (index, mount) in declared.enumerated() {
                let mountAt = "\(at).mounts[\(index)]"
                if !seen.insert(mount.path).inserted {
                    problems.append(.init("\(mountAt).path", "mount '\(mount.path)' is declared twice"))
                }
                guard let inherited = parent.mounts.first(where: { $0.path == mount.path }) else {
                    let known = parent.mounts.map(\.path).joined(separator: ", ")
                    problems.append(
                        .init(
                            "\(mountAt).path",
                            "'\(mount.path)' is not a mount of the parent '\(parent.id)'; a derived latch may only keep some of: \(known)"
                        ))
                    continue
                }
                if let upstream = mount.upstream, upstream != inherited.upstream {
                    problems.append(
                        .init(
                            "\(mountAt).upstream",
                            "'\(upstream)' differs from the parent's '\(inherited.upstream)'; omit it to inherit"))
                }
                if let secret = mount.secret, secret != inherited.secret {
                    problems.append(
                        .init("\(mountAt).secret", "'\(secret)' differs from the parent's secret; omit it to inherit"))
                }
                let inheritedIDsHere = Set(inherited.pipeline.map(\.filter).filter(\.isNamed).map(\.id))
                checkFilters(mount.filters, at: "\(mountAt).filters", against: inheritedIDsHere)
                mounts.append(extend(inherited, latch: latch, mountFilters: mount.filters))
            }
        } else {
            mounts = parent.mounts.map { extend($0, latch: latch, mountFilters: []) }
        }
        let expiry: Date? =
            switch (parent.expires, latch.expires) {
            case (nil, nil): nil
            case (let p?, nil): p
            case (nil, let c?): c
            case (let p?, let c?): min(p, c)
            }
        return ResolvedLatch(
            id: latch.id, chain: parent.chain + [latch.id], latch: latch, expires: expiry,
            revokedBy: parent.revokedBy ?? (latch.revoked ? latch.id : nil), mounts: mounts,
            certificateThumbprints: parent.certificateThumbprints + (latch.certificateThumbprint.map { [$0] } ?? []))
    }

    private func extend(_ mount: ResolvedMount, latch: Latch, mountFilters: [Filter]) -> ResolvedMount {
        let steps =
            mount.pipeline
            + latch.filters.map { PipelineStep(filter: $0, declaringLatch: latch.id, declaringMount: nil) }
            + mountFilters.map { PipelineStep(filter: $0, declaringLatch: latch.id, declaringMount: mount.path) }
        return ResolvedMount(path: mount.path, upstream: mount.upstream, secret: mount.secret, pipeline: steps)
    }

    private mutating func checkMountPath(_ path: String, at: String) {
        let valid: Bool
        switch RequestTarget.parse(path) {
        case .success(let target): valid = target.query == nil && target.path.value == path && path != "/"
        case .failure: valid = false
        }
        if !valid || path.hasSuffix("/") {
            problems.append(.init(at, "'\(path)' is not a mount prefix; expected '/' and segments, such as /openai"))
        } else if Mount.prefix(Mount.selfPath, covers: path) || Mount.prefix(path, covers: Mount.selfPath) {
            problems.append(.init(at, "'\(path)' overlaps the reserved '/self' mount"))
        }
    }

    private mutating func checkFilters(_ filters: [Filter], at: String, against inherited: Set<String>) {
        var seen: Set<String> = []
        for (index, filter) in filters.enumerated() {
            let filterAt = "\(at)[\(index)]"
            if !seen.insert(filter.id).inserted {
                problems.append(.init("\(filterAt).id", "filter id '\(filter.id)' is used twice in this list"))
            }
            if filter.isNamed && inherited.contains(filter.id) {
                problems.append(
                    .init(
                        "\(filterAt).id",
                        "filter '\(filter.id)' is the parent's; a derived latch cannot replace its parent's filters, only add new ones with other ids"
                    ))
            }
            switch filter.kind {
            case .rateLimit(let limit) where limit.tokens != nil:
                checkAlias(limit.tokenField, at: "\(filterAt).rate_limit.token_field")
            case .budget(let budget):
                if case .llm(_, let tokenField) = budget.cost {
                    checkAlias(tokenField, at: "\(filterAt).budget.token_field")
                    if prices.isEmpty {
                        problems.append(
                            .init("\(filterAt).budget", "an LLM budget needs the bundle's `prices` table; it is empty"))
                    }
                }
            default: break
            }
        }
    }

    private mutating func checkAlias(_ name: String, at: String) {
        if fieldAliases[name] == nil {
            let known = fieldAliases.keys.sorted().joined(separator: ", ")
            problems.append(
                .init(
                    at, "no field alias '\(name)' in the bundle's `fields`; declared: \(known.isEmpty ? "none" : known)"
                ))
        }
    }

    private func iso(_ date: Date) -> String { date.formatted(.iso8601) }
}
