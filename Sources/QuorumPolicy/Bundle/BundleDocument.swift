import QuorumCrypto

/// The policy bundle file: reading it (YAML or JSON), its canonical encoding and digest, and
/// writing it back.
///
/// ## The format
///
/// One YAML or JSON document. A document whose first non-space byte is `{` is read as JSON (with
/// the strict ``JSONParser``: duplicate keys and invalid JSON are refused with line and column);
/// anything else as YAML. YAML anchors, aliases, tags (`!!str`) and duplicate keys are refused,
/// and scalars are typed by this schema, not by YAML 1.1 (`on` and `yes` are not booleans):
/// a text field takes any scalar, a boolean only `true`/`false`, an integer only unquoted digits.
/// `null`, `~` or nothing is null, which no field except a rule's `value` accepts. Unknown keys are
/// errors that list the valid ones. Every problem is reported at once.
///
/// ```yaml
/// format: quorum-latch/bundle/v1        # required, exactly this
/// version: 7                            # required, integer >= 1; nodes accept only higher ones
/// secrets:                              # names unique; values are never in the bundle
///   - name: openai                      # 1-64 of letters, digits, '-', '_', '.'
///     inject: bearer                    # bearer | {header: x-api-key} | {query: key} | {basic: user}
/// fields:                               # field aliases: name -> JSON path or non-empty list of them
///   token_cap: [$.max_tokens, $.max_completion_tokens, $.max_output_tokens]
/// prices:                               # per million tokens; amounts have <= 6 decimal places
///   gpt-4o: {input: 2.50, output: 10.00}
/// latches:
///   - id: assistant                     # a-z, 0-9, '-'; 1-64, not starting with '-'
///     token_sha256: 6b86b2…             # 64 lower-case hex digits: LatchToken.secretDigest
///     labels: {team: support}           # optional, text -> text
///     expires: 2027-01-01T00:00:00Z     # optional, RFC 3339 with Z or ±HH:MM, at most milliseconds
///     parent: other-latch               # optional: derive from that latch
///     revoked: false                    # optional, default false
///     filters: [ ... ]                  # optional: run for every mount, before the mount's own
///     mounts:                           # required for a root latch; omit in a derived one to keep all
///       - path: /openai
///         upstream: https://api.openai.com   # http(s), no query, fragment, user info or trailing '/';
///                                            # omit in a derived latch (it is inherited)
///         secret: openai                     # optional
///         filters: [ ... ]
/// ```
///
/// A filter is a mapping with exactly one kind key, an optional `id` (1-64 of letters, digits,
/// `-`, `_`, `.`; unnamed filters are called `<kind>#<position>`), and an optional
/// `when: {methods: [POST], endpoints: [/v1/chat/*]}` that limits which requests it applies to:
///
/// | kind | value |
/// |---|---|
/// | `method` | `[GET, POST]`, one method, or `"*"` for any well-formed method |
/// | `endpoint` | `{allow: [/v1/chat/completions], block: [/v1/admin/**]}`, at least one pattern |
/// | `payload` | rules `{field: token_cap \| path: $.x \| paths: [$.a, $.b], op: le, value: 4096, quantifier: all\|any, required: false, when_missing: deny\|satisfy}` |
/// | `rate_limit` | `{requests: 60, tokens: 200000, window: 1m, key: latch\|mount\|client, token_field: token_cap}` |
/// | `body_size` | bytes: `65536`, or `512B`, `64KiB`, `1MiB`, `1GiB` |
/// | `time_window` | `{days: mon-fri, hours: "09:00-18:00", time_zone: Europe/Berlin}` or a list of them |
/// | `ip_allowlist` | `[10.0.0.0/8, "2001:db8::/32", 192.0.2.7]`, not empty |
/// | `header_req` | `[x-request-id, {name: x-team, pattern: "support-*"}]` |
/// | `response` | `{redact: [$.id], trim: [$.system_fingerprint], block_if: [rule...], max_bytes: 1MiB}` |
/// | `budget` | `{day: 5.00, month: 100, total: 1000, time_zone: UTC, cost: {per_request: 0.01} \| {llm: {model: $.model, token_field: token_cap}}}` |
///
/// A rule's `value` is JSON: in YAML, an unquoted scalar is `true`, `false`, `null` or a JSON
/// number when it reads as one, else a string; a quoted scalar is always a string. `field` names an
/// alias from `fields` and expands to its paths. Rate windows are `<n>ms|s|m|h|d` from 1s to 31d;
/// `requests`/`tokens` are positive; `key` defaults to `latch` and `token_field` to `token_cap`.
/// Budget caps are positive amounts; `time_zone` defaults to `UTC`; `llm` defaults to
/// `model: $.model` and `token_field: token_cap`. Money is exact: an amount becomes whole
/// micro-units (millionths), and more than six decimal places, negative amounts and overflow are
/// refused.
///
/// ## The digest
///
/// ``PolicyBundle/digest`` is `sha256:` and the lower-case hex SHA-256 of the canonical encoding:
/// JSON of the decoded model, not of the source text, so YAML and JSON spellings, key order,
/// comments and whitespace do not change it and any change of meaning does. Canonical JSON has
/// object keys sorted by UTF-8 bytes, no insignificant whitespace, strings escaped only where JSON
/// requires (`\"`, `\\`, `\n`, `\r`, `\t`, `\u00XX` below U+0020) and otherwise raw UTF-8. Every
/// field is written with defaults made explicit (`revoked`, `labels`, `filters`, a rule's
/// `quantifier`, `required` and `when_missing`, a rate limit's `key` and `token_field`, a budget's
/// `time_zone`); an absent optional value (`expires`, `parent`, `mounts` of a derived latch, a
/// mount's `upstream` and `secret`, an unnamed filter's `id`, `when`) is left out. Lists keep their
/// order, except `secrets` (by name) and `method` lists (sorted). Field aliases are expanded: a
/// rule is written with `paths`. Amounts are decimal numbers in currency units in their shortest
/// form (`2.5`, `10`, `0.000001`); sizes are integer bytes; windows are written in their largest
/// exact unit (`1m`, `90s`); `expires` as `YYYY-MM-DDTHH:MM:SSZ` in UTC (with `.fff` only for
/// milliseconds); time windows as `days` (sorted, comma-separated three-letter names), `hours`
/// (`HH:MM-HH:MM`) and `time_zone`; paths, patterns and ranges in their canonical text; a rule's
/// number values in one spelling per value (`1.0` and `1` are both `1`). The canonical JSON is
/// itself a bundle document that decodes to an equal bundle with the same digest.
public enum BundleDocument {
    /// The syntax ``render(_:as:)`` writes.
    public enum Format: Sendable {
        /// Block YAML, for people to read and edit.
        case yaml
        /// Two-space indented JSON.
        case json
    }

    /// Reads, types and validates a bundle file, returning it with its digest.
    ///
    /// `fileName` is used only to place problems (`bundle.yaml:14:9: …`). Throws every problem
    /// found: syntax, schema (with the field path), and derivation (mapped back to the line of the
    /// field, or of its nearest written ancestor when the field itself is not written).
    public static func decode(_ bytes: [UInt8], fileName: String) throws(BundleLoadError) -> PolicyBundle {
        let root: SourceNode
        switch readSource(bytes) {
        case .success(let node): root = node
        case .failure(let syntax):
            throw BundleLoadError(
                syntax.problems.map {
                    LocatedProblem(
                        file: fileName, line: $0.mark.line, column: $0.mark.column, path: "", message: $0.message)
                })
        }
        return try decode(root: root, fileName: fileName)
    }

    /// The canonical encoding of `bundle` (see the type's documentation), whose SHA-256 is its digest.
    public static func canonicalBytes(of bundle: PolicyBundle) -> [UInt8] {
        BundleEncoder.canonicalBytes(BundleEncoder.document(BundleComponents(bundle)))
    }

    /// `sha256:<hex>` of canonical bytes.
    public static func digest(ofCanonical bytes: [UInt8]) -> String {
        "sha256:" + Hex.encode(sha256Digest(bytes))
    }

    /// The bundle as a readable document that decodes back to the same digest.
    ///
    /// Written from the model, so comments, key order and spelling of the file it came from are not
    /// preserved; aliases used by `field:` in rules are written expanded as `paths:`.
    public static func render(_ bundle: PolicyBundle, as format: Format) -> String {
        let document = BundleEncoder.document(BundleComponents(bundle))
        switch format {
        case .yaml:
            return "# Policy bundle \(bundle.version), \(bundle.digest)\n" + BundleEncoder.yaml(document)
        case .json:
            return BundleEncoder.prettyJSON(document)
        }
    }

    // MARK: Internals

    static func readSource(_ bytes: [UInt8]) -> Result<SourceNode, SyntaxProblems> {
        let first = bytes.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
        if first == UInt8(ascii: "{") {
            return JSONSourceReader.read(bytes).map(\.0)
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return .failure(SyntaxProblems([SyntaxProblem(mark: .unknown, message: "not UTF-8 text")]))
        }
        return YAMLSourceReader.read(text)
    }

    static func decode(root: SourceNode, fileName: String) throws(BundleLoadError) -> PolicyBundle {
        func locate(_ mark: SourceMark, _ path: String, _ message: String) -> LocatedProblem {
            LocatedProblem(file: fileName, line: mark.line, column: mark.column, path: path, message: message)
        }
        if case .mapping(let entries) = root.content,
            let format = entries.first(where: { $0.key == "format" }),
            case .scalar(SignedBundle.format, _) = format.value.content
        {
            throw BundleLoadError([
                locate(
                    format.value.mark, "format",
                    "this is a signed bundle; use SignedBundle.open (quorumctl checks the signature) to read it")
            ])
        }
        var decoder = BundleDecoder()
        let parts = decoder.bundle(root)
        var problems = decoder.problems.map { locate($0.mark, $0.path, $0.message) }
        let digest =
            problems.isEmpty ? digest(ofCanonical: BundleEncoder.canonicalBytes(BundleEncoder.document(parts))) : ""
        do {
            let bundle = try PolicyBundle(
                version: parts.version, secrets: parts.secrets, fieldAliases: parts.fieldAliases, prices: parts.prices,
                latches: parts.latches, digest: digest)
            if problems.isEmpty { return bundle }
        } catch {
            let suppression = Suppression(decoder: decoder, latches: parts.latches)
            for problem in error.problems where !suppression.hides(problem.path) {
                problems.append(locate(mark(of: problem.path, in: root), problem.path, problem.message))
            }
        }
        throw BundleLoadError(ordered(problems))
    }

    /// The position of a model field path in the source, or of its nearest written ancestor.
    static func mark(of path: String, in root: SourceNode) -> SourceMark {
        var segments = FieldPathSegment.parse(path)
        // The model names an LLM budget's alias `budget.token_field`; the file nests it in `cost.llm`.
        if segments.suffix(2) == [.key("budget"), .key("token_field")] {
            segments.removeLast()
            segments += [.key("cost"), .key("llm"), .key("token_field")]
        }
        return root.nearest(segments[...])
    }

    private static func ordered(_ problems: [LocatedProblem]) -> [LocatedProblem] {
        var seen: Set<String> = []
        let unique = problems.filter { seen.insert($0.description).inserted }
        return unique.enumerated().sorted { a, b in
            (a.element.line, a.element.column, a.offset) < (b.element.line, b.element.column, b.offset)
        }.map(\.element)
    }

    /// Which derivation problems to leave out because a schema problem already covers them: those
    /// at or under a path that failed to decode, and those of latches descending from a latch that
    /// did (their parent's mounts or filters may be incomplete).
    private struct Suppression {
        let brokenPaths: Set<String>
        let hiddenLatches: Set<Int>

        init(decoder: BundleDecoder, latches: [Latch]) {
            brokenPaths = decoder.brokenPaths
            var indexByID: [String: Int] = [:]
            for (index, latch) in latches.enumerated() where indexByID[latch.id] == nil { indexByID[latch.id] = index }
            var hidden: Set<Int> = []
            if !decoder.brokenLatches.isEmpty {
                for index in latches.indices {
                    var seen: Set<Int> = [index]
                    var current = latches[index].parent.flatMap { indexByID[$0] }
                    while let ancestor = current, seen.insert(ancestor).inserted {
                        if decoder.brokenLatches.contains(ancestor) {
                            hidden.insert(index)
                            break
                        }
                        current = latches[ancestor].parent.flatMap { indexByID[$0] }
                    }
                }
            }
            hiddenLatches = hidden
        }

        func hides(_ path: String) -> Bool {
            if !hiddenLatches.isEmpty, case .index(let index)? = FieldPathSegment.parse(path).dropFirst().first,
                path.hasPrefix("latches["), hiddenLatches.contains(index)
            {
                return true
            }
            var prefix = Substring(path)
            while !prefix.isEmpty {
                if brokenPaths.contains(String(prefix)) { return true }
                guard let cut = prefix.lastIndex(where: { $0 == "." || $0 == "[" }) else { break }
                prefix = prefix[..<cut]
            }
            return false
        }
    }
}

extension BundleComponents {
    init(_ bundle: PolicyBundle) {
        self.init(
            version: bundle.version, secrets: Array(bundle.secrets.values), fieldAliases: bundle.fieldAliases,
            prices: bundle.prices, latches: bundle.latches)
    }
}

extension PolicyBundle {
    /// Checks and resolves a bundle built in code, computing its digest from the canonical encoding
    /// (see ``BundleDocument``), so it names the same digest as the file ``BundleDocument/render(_:as:)``
    /// writes for it.
    public init(
        version: UInt64, secrets: [SecretSpec], fieldAliases: [String: [JSONPath]], prices: [String: ModelPrice],
        latches: [Latch]
    ) throws(BundleProblems) {
        let parts = BundleComponents(
            version: version, secrets: secrets, fieldAliases: fieldAliases, prices: prices, latches: latches)
        let digest = BundleDocument.digest(ofCanonical: BundleEncoder.canonicalBytes(BundleEncoder.document(parts)))
        try self.init(
            version: version, secrets: secrets, fieldAliases: fieldAliases, prices: prices, latches: latches,
            digest: digest)
    }

    /// This bundle with other latches and a new version (by default one more), digest recomputed.
    ///
    /// Nodes accept only a higher version, so an edit that keeps the version would be refused on
    /// push; passing a version not above the current one is therefore a problem too.
    public func replacing(latches: [Latch], version: UInt64? = nil) throws(BundleProblems) -> PolicyBundle {
        let next = version ?? (self.version == .max ? self.version : self.version + 1)
        guard next > self.version else {
            throw BundleProblems([
                BundleProblem("version", "\(next) is not above the current version \(self.version)")
            ])
        }
        return try PolicyBundle(
            version: next, secrets: Array(secrets.values), fieldAliases: fieldAliases, prices: prices,
            latches: latches)
    }

    /// This bundle with `latch` replacing the latch of the same id, or appended when there is none
    /// (`quorumctl latch create|derive`), under a new version.
    public func upserting(_ latch: Latch, version: UInt64? = nil) throws(BundleProblems) -> PolicyBundle {
        var updated = latches
        if let index = updated.firstIndex(where: { $0.id == latch.id }) {
            updated[index] = latch
        } else {
            updated.append(latch)
        }
        return try replacing(latches: updated, version: version)
    }

    /// This bundle with latch `id` revoked (and so every descendant), under a new version.
    public func revoking(_ id: String, version: UInt64? = nil) throws(BundleProblems) -> PolicyBundle {
        guard let latch = latches.first(where: { $0.id == id }) else {
            throw BundleProblems([
                BundleProblem("latches", "no latch '\(id)' in the bundle")
            ])
        }
        return try upserting(
            Latch(
                id: latch.id, tokenDigest: latch.tokenDigest, labels: latch.labels, expires: latch.expires,
                parent: latch.parent, revoked: true, filters: latch.filters, mounts: latch.mounts,
                certificateThumbprint: latch.certificateThumbprint),
            version: version)
    }
}
