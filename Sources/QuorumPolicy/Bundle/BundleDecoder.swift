import Foundation
import QuorumCrypto

/// The parts of a bundle before ``PolicyBundle/init(version:secrets:fieldAliases:prices:latches:digest:)``
/// checks derivation: what the canonical encoding is computed from.
struct BundleComponents {
    var version: UInt64 = 0
    var secrets: [SecretSpec] = []
    var fieldAliases: [String: [JSONPath]] = [:]
    var prices: [String: ModelPrice] = [:]
    var latches: [Latch] = []
}

/// Types a ``SourceNode`` tree with the bundle schema, collecting every problem.
///
/// Typing is ours, not YAML's: a string field takes any scalar, a boolean only `true`/`false`, an
/// integer only unquoted digits. When a part fails it is left out (or given a placeholder) so the
/// rest can still be read and checked; the paths that failed are remembered so the derivation
/// check, which runs on what remains, does not repeat or invent problems there.
struct BundleDecoder {
    struct Problem {
        var mark: SourceMark
        var path: String
        var message: String
    }

    private(set) var problems: [Problem] = []
    /// Field paths at or under which a problem was already reported (or an element dropped).
    private(set) var brokenPaths: Set<String> = []
    /// Latch indices with any problem, whose descendants' derivation problems may be artefacts.
    private(set) var brokenLatches: Set<Int> = []
    private var currentLatch: Int?
    private var aliases: [String: [JSONPath]] = [:]
    private var brokenAliases: Set<String> = []

    static let topKeys = ["format", "version", "secrets", "fields", "prices", "latches"]
    static let latchKeys = [
        "id", "token_sha256", "labels", "expires", "parent", "revoked", "filters", "mounts", "cnf",
    ]
    static let mountKeys = ["path", "upstream", "secret", "filters"]
    static let filterKeys = ["id", "when"] + FilterKind.names
    static let ruleKeys = ["field", "path", "paths", "op", "value", "quantifier", "required", "when_missing"]

    // MARK: Reporting

    private mutating func report(_ mark: SourceMark, _ path: String, _ message: String) {
        problems.append(Problem(mark: mark, path: path, message: message))
        brokenPaths.insert(path)
        if let currentLatch { brokenLatches.insert(currentLatch) }
    }

    private mutating func markBroken(_ path: String) {
        brokenPaths.insert(path)
        if let currentLatch { brokenLatches.insert(currentLatch) }
    }

    private static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }
    private static func join(_ path: String, _ index: Int) -> String { path + "[\(index)]" }

    // MARK: Shapes

    /// A mapping's entries with unknown keys reported, or `nil` (reported) if not a mapping.
    private struct Fields {
        let node: SourceNode
        let entries: [SourceEntry]
        let path: String

        subscript(key: String) -> SourceNode? {
            for entry in entries where entry.key == key { return entry.value }
            return nil
        }

        func path(_ key: String) -> String { BundleDecoder.join(path, key) }

        func has(_ key: String) -> Bool { self[key] != nil }
    }

    private mutating func fields(_ node: SourceNode, _ path: String, keys: [String], _ what: String) -> Fields? {
        guard case .mapping(let entries) = node.content else {
            report(node.mark, path, "expected \(what), found \(node.kindDescription)")
            return nil
        }
        for entry in entries where !keys.contains(entry.key) {
            report(
                entry.keyMark, Self.join(path, entry.key),
                "unknown key \(BundleText.quote(entry.key)); valid keys here: \(keys.joined(separator: ", "))")
        }
        return Fields(node: node, entries: entries, path: path)
    }

    private mutating func required(_ fields: Fields, _ key: String, _ what: String) -> SourceNode? {
        if let node = fields[key] { return node }
        report(fields.node.mark, fields.path(key), "missing; expected \(what)")
        return nil
    }

    private mutating func list(_ node: SourceNode, _ path: String, _ what: String) -> [SourceNode]? {
        guard case .sequence(let items) = node.content else {
            report(node.mark, path, "expected a list of \(what), found \(node.kindDescription)")
            return nil
        }
        return items
    }

    private mutating func string(_ node: SourceNode, _ path: String, _ what: String = "a string") -> String? {
        switch node.content {
        case .scalar(let text, _): return text
        case .null:
            report(node.mark, path, "expected \(what), found null (quote it, \"null\", if you mean the text)")
            return nil
        default:
            report(node.mark, path, "expected \(what), found \(node.kindDescription)")
            return nil
        }
    }

    /// One string, or a list of strings (`method: POST` and `method: [GET, POST]`).
    private mutating func strings(
        _ node: SourceNode, _ path: String, _ what: String, allowSingle: Bool
    )
        -> [(String, SourceNode, String)]?
    {
        if allowSingle, case .scalar(let text, _) = node.content { return [(text, node, path)] }
        guard let items = list(node, path, what) else { return nil }
        var out: [(String, SourceNode, String)] = []
        var failed = false
        for (index, item) in items.enumerated() {
            let itemPath = Self.join(path, index)
            if let text = string(item, itemPath, what) { out.append((text, item, itemPath)) } else { failed = true }
        }
        return failed ? nil : out
    }

    private mutating func bool(_ node: SourceNode, _ path: String) -> Bool? {
        if case .scalar(let text, false) = node.content {
            if text == "true" { return true }
            if text == "false" { return false }
        }
        report(node.mark, path, "expected true or false, found \(node.kindDescription)")
        return nil
    }

    /// Unquoted digits with an optional `-`, no leading zeros, within `range`.
    private mutating func integer(
        _ node: SourceNode, _ path: String, in range: ClosedRange<Int64>, _ what: String
    )
        -> Int64?
    {
        guard case .scalar(let text, false) = node.content,
            let value = BundleValues.decimal(text.hasPrefix("-") ? Substring(text.dropFirst()) : Substring(text))
                .map({ text.hasPrefix("-") ? -$0 : $0 })
        else {
            report(node.mark, path, "expected \(what), found \(node.kindDescription)")
            return nil
        }
        guard range.contains(value) else {
            report(node.mark, path, "\(value) is out of range; expected \(what)")
            return nil
        }
        return value
    }

    private mutating func money(_ node: SourceNode, _ path: String, positive: Bool) -> MicroUnits? {
        let example = positive ? "a positive amount such as 5 or 2.50" : "an amount such as 0 or 2.50"
        guard case .scalar(let text, false) = node.content, let number = JSONNumber(text) else {
            report(node.mark, path, "expected \(example), found \(node.kindDescription)")
            return nil
        }
        switch BundleValues.microUnits(number) {
        case .success(let micro):
            if positive && micro == 0 {
                report(node.mark, path, "must be more than 0; expected \(example)")
                return nil
            }
            return micro
        case .failure(.negative):
            report(node.mark, path, "\(text) is negative; expected \(example)")
        case .failure(.tooPrecise):
            report(node.mark, path, "\(text) has more than 6 decimal places; amounts are kept in millionths")
        case .failure(.tooLarge):
            report(node.mark, path, "\(text) is too large; at most 9223372036854.775807")
        }
        return nil
    }

    private mutating func duration(_ node: SourceNode, _ path: String) -> Int64? {
        let expected = "expected e.g. 30s, 1m, 1h (a whole number of ms, s, m, h or d, from 1s to 31d)"
        guard case .scalar(let text, _) = node.content, let milliseconds = BundleValues.milliseconds(text) else {
            report(node.mark, path, "\(node.kindDescription) is not a duration; \(expected)")
            return nil
        }
        guard BundleValues.windowRange.contains(milliseconds) else {
            report(node.mark, path, "\(BundleText.quote(text)) is out of range; \(expected)")
            return nil
        }
        return milliseconds
    }

    private mutating func size(_ node: SourceNode, _ path: String) -> Int? {
        let expected = "expected a positive number of bytes such as 65536, or 512B, 64KiB, 1MiB, 1GiB"
        let bytes: Int64?
        switch node.content {
        case .scalar(let text, false) where text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }):
            bytes = BundleValues.decimal(Substring(text))
        case .scalar(let text, _):
            bytes = BundleValues.bytes(text)
        default:
            bytes = nil
        }
        guard let bytes, bytes > 0, let value = Int(exactly: bytes) else {
            report(node.mark, path, "\(node.kindDescription) is not a size; \(expected)")
            return nil
        }
        return value
    }

    private mutating func name(_ node: SourceNode, _ path: String, _ what: String) -> String? {
        guard let text = string(node, path, what) else { return nil }
        guard BundleValues.isName(text) else {
            report(
                node.mark, path, "\(BundleText.quote(text)) is not a valid \(what); expected \(BundleValues.nameRule)")
            return nil
        }
        return text
    }

    private mutating func jsonPath(_ node: SourceNode, _ path: String) -> JSONPath? {
        guard let text = string(node, path, "a JSON path such as $.max_tokens") else { return nil }
        do {
            return try JSONPath(text)
        } catch {
            report(
                node.mark, path,
                "\(BundleText.quote(text)) is not a JSON path (\(error.description)); expected e.g. $.model or $.messages[*].role"
            )
            return nil
        }
    }

    private mutating func jsonPaths(_ node: SourceNode, _ path: String, allowSingle: Bool) -> [JSONPath]? {
        guard let items = strings(node, path, "JSON paths", allowSingle: allowSingle) else { return nil }
        var out: [JSONPath] = []
        var failed = false
        for (_, item, itemPath) in items {
            if let parsed = jsonPath(item, itemPath) { out.append(parsed) } else { failed = true }
        }
        return failed ? nil : out
    }

    private mutating func timeZone(_ node: SourceNode, _ path: String) -> TimeZone? {
        guard let text = string(node, path, "an IANA time zone such as Europe/Berlin") else { return nil }
        // TimeWindow holds the one rule for which zone names are accepted.
        do {
            return try TimeWindow(days: "mon", hours: "00:00-24:00", timeZone: text).timeZone
        } catch {
            report(node.mark, path, error.reason)
            return nil
        }
    }

    // MARK: The document

    mutating func bundle(_ root: SourceNode) -> BundleComponents {
        var components = BundleComponents()
        guard let top = fields(root, "", keys: Self.topKeys, "a mapping (the bundle document)") else {
            return components
        }
        if let node = required(top, "format", "format: \(PolicyBundle.format)"),
            let format = string(node, "format", "the text \(PolicyBundle.format)"), format != PolicyBundle.format
        {
            report(
                node.mark, "format",
                "\(BundleText.quote(format)) is not a bundle format this version reads; expected \(PolicyBundle.format)"
            )
        }
        if let node = required(top, "version", "an integer version of at least 1") {
            components.version = version(node)
        }
        if let node = top["secrets"] { components.secrets = secrets(node, "secrets") }
        if let node = top["fields"] { aliases = fieldAliases(node, "fields") }
        components.fieldAliases = aliases
        if let node = top["prices"] { components.prices = prices(node, "prices") }
        if let node = required(top, "latches", "a list of latches"), let items = list(node, "latches", "latches") {
            components.latches.reserveCapacity(items.count)
            for (index, item) in items.enumerated() {
                currentLatch = index
                components.latches.append(latch(item, Self.join("latches", index)))
            }
            currentLatch = nil
        }
        return components
    }

    private mutating func version(_ node: SourceNode) -> UInt64 {
        let expected = "an integer version of at least 1, such as 7"
        guard case .scalar(let text, false) = node.content, !text.isEmpty,
            text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), text.utf8.first != UInt8(ascii: "0") || text == "0"
        else {
            report(node.mark, "version", "expected \(expected), found \(node.kindDescription)")
            return 0
        }
        guard let value = UInt64(text), value >= 1 else {
            report(node.mark, "version", "\(text) is out of range; expected an integer from 1 to \(UInt64.max)")
            return 0
        }
        return value
    }

    private mutating func secrets(_ node: SourceNode, _ path: String) -> [SecretSpec] {
        guard let items = list(node, path, "secrets") else { return [] }
        var out: [SecretSpec] = []
        for (index, item) in items.enumerated() {
            let at = Self.join(path, index)
            guard let spec = fields(item, at, keys: ["name", "inject"], "a secret mapping with name and inject") else {
                continue
            }
            guard let nameNode = required(spec, "name", "the secret's name"),
                let name = name(nameNode, spec.path("name"), "secret name")
            else { continue }
            // A placeholder injection keeps mounts that name this secret from reporting it unknown.
            var injection = SecretSpec.Injection.bearer
            if let injectNode = required(spec, "inject", "bearer, {header: NAME}, {query: NAME} or {basic: USERNAME}"),
                let parsed = self.injection(injectNode, spec.path("inject"))
            {
                injection = parsed
            }
            out.append(SecretSpec(name: name, injection: injection))
        }
        return out
    }

    private mutating func injection(_ node: SourceNode, _ path: String) -> SecretSpec.Injection? {
        let expected = "expected bearer, {header: NAME}, {query: NAME} or {basic: USERNAME}"
        if case .scalar(let text, _) = node.content {
            if text == "bearer" { return .bearer }
            report(node.mark, path, "\(BundleText.quote(text)) is not an injection; \(expected)")
            return nil
        }
        guard let spec = fields(node, path, keys: ["header", "query", "basic"], "an injection; \(expected)") else {
            return nil
        }
        guard spec.entries.count == 1, let entry = spec.entries.first else {
            report(node.mark, path, "\(spec.entries.isEmpty ? "empty" : "more than one way to inject"); \(expected)")
            return nil
        }
        let at = spec.path(entry.key)
        guard let value = string(entry.value, at) else { return nil }
        switch entry.key {
        case "header":
            guard (try? HeaderRequirement(name: value)) != nil else {
                report(entry.value.mark, at, "\(BundleText.quote(value)) is not a header name; expected e.g. x-api-key")
                return nil
            }
            return .header(name: value)
        case "query":
            let valid =
                !value.isEmpty
                && value.utf8.allSatisfy { byte in
                    switch byte {
                    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
                        UInt8(ascii: "."), UInt8(ascii: "~"):
                        true
                    default: false
                    }
                }
            guard valid else {
                report(
                    entry.value.mark, at,
                    "\(BundleText.quote(value)) is not a query parameter name; expected letters, digits, '-', '_', '.', '~'"
                )
                return nil
            }
            return .query(parameter: value)
        case "basic":
            guard !value.isEmpty, !value.contains(":"), !value.unicodeScalars.contains(where: { $0.value < 0x20 })
            else {
                report(
                    entry.value.mark, at,
                    "\(BundleText.quote(value)) is not a Basic auth user name; expected non-empty text without ':'")
                return nil
            }
            return .basic(username: value)
        default:
            return nil
        }
    }

    private mutating func fieldAliases(_ node: SourceNode, _ path: String) -> [String: [JSONPath]] {
        guard case .mapping(let entries) = node.content else {
            report(node.mark, path, "expected a mapping of alias name to JSON paths, found \(node.kindDescription)")
            return [:]
        }
        var out: [String: [JSONPath]] = [:]
        for entry in entries {
            let at = Self.join(path, entry.key)
            guard BundleValues.isName(entry.key) else {
                report(
                    entry.keyMark, at,
                    "\(BundleText.quote(entry.key)) is not a valid alias name; expected \(BundleValues.nameRule)")
                continue
            }
            guard let paths = jsonPaths(entry.value, at, allowSingle: true) else {
                out[entry.key] = []
                brokenAliases.insert(entry.key)
                continue
            }
            if paths.isEmpty {
                report(entry.value.mark, at, "empty; an alias names at least one JSON path")
                brokenAliases.insert(entry.key)
            }
            out[entry.key] = paths
        }
        return out
    }

    private mutating func prices(_ node: SourceNode, _ path: String) -> [String: ModelPrice] {
        guard case .mapping(let entries) = node.content else {
            report(
                node.mark, path, "expected a mapping of model name to {input, output}, found \(node.kindDescription)")
            return [:]
        }
        var out: [String: ModelPrice] = [:]
        for entry in entries {
            let at = Self.join(path, entry.key)
            guard
                let price = fields(
                    entry.value, at, keys: ["input", "output"], "a price mapping {input, output} per million tokens")
            else { continue }
            let input = required(price, "input", "the price of a million prompt tokens").flatMap {
                money($0, price.path("input"), positive: false)
            }
            let output = required(price, "output", "the price of a million completion tokens").flatMap {
                money($0, price.path("output"), positive: false)
            }
            if let input, let output { out[entry.key] = ModelPrice(inputPerMillion: input, outputPerMillion: output) }
        }
        return out
    }

    // MARK: Latches and mounts

    private mutating func latch(_ node: SourceNode, _ path: String) -> Latch {
        guard let spec = fields(node, path, keys: Self.latchKeys, "a latch mapping") else {
            return Latch(id: "", tokenDigest: [], mounts: nil)
        }
        let id = required(spec, "id", "the latch id").flatMap { string($0, spec.path("id"), "a latch id") } ?? ""
        var digest: [UInt8] = []
        if let node = required(spec, "token_sha256", "the SHA-256 of the token's secret part, 64 lower-case hex digits")
        {
            digest = tokenDigest(node, spec.path("token_sha256")) ?? []
        }
        var labels: [String: String] = [:]
        if let node = spec["labels"] { labels = self.labels(node, spec.path("labels")) }
        var expires: Date?
        if let node = spec["expires"], let text = string(node, spec.path("expires"), "an RFC 3339 time") {
            expires = BundleValues.instant(text)
            if expires == nil {
                report(
                    node.mark, spec.path("expires"),
                    "\(BundleText.quote(text)) is not an RFC 3339 time; expected e.g. 2027-01-01T00:00:00Z or 2027-01-01T09:00:00+01:00"
                )
            }
        }
        let parent = spec["parent"].flatMap { string($0, spec.path("parent"), "a parent latch id") }
        let revoked = spec["revoked"].flatMap { bool($0, spec.path("revoked")) } ?? false
        let latchFilters = spec["filters"].map { filters($0, spec.path("filters")) } ?? []
        var mounts: [Mount]?
        if let node = spec["mounts"], let items = list(node, spec.path("mounts"), "mounts") {
            var decoded: [Mount] = []
            for (index, item) in items.enumerated() {
                if let mount = mount(item, Self.join(spec.path("mounts"), index)) {
                    decoded.append(mount)
                } else {
                    markBroken(spec.path("mounts"))
                }
            }
            mounts = decoded
        } else if spec.has("mounts") {
            mounts = []
        }
        let thumbprint = spec["cnf"].flatMap { confirmation($0, spec.path("cnf")) }
        return Latch(
            id: id, tokenDigest: digest, labels: labels, expires: expires, parent: parent, revoked: revoked,
            filters: latchFilters, mounts: mounts, certificateThumbprint: thumbprint)
    }

    /// `cnf: {x5t#S256: <base64url SHA-256 of the DER certificate>}` (RFC 8705 §3.1).
    private mutating func confirmation(_ node: SourceNode, _ path: String) -> [UInt8]? {
        guard let spec = fields(node, path, keys: ["x5t#S256"], "a mapping with x5t#S256") else { return nil }
        guard let value = required(spec, "x5t#S256", "the base64url SHA-256 thumbprint of the client certificate"),
            let text = string(value, spec.path("x5t#S256"), "a base64url SHA-256 thumbprint")
        else { return nil }
        guard let bytes = BundleValues.base64URLDecode(text), bytes.count == 32 else {
            report(
                value.mark, spec.path("x5t#S256"),
                "\(BundleText.quote(text)) is not a base64url SHA-256 thumbprint (43 characters, no padding); "
                    + "`quorumctl latch create --client-certificate FILE` computes it")
            return nil
        }
        return bytes
    }

    private mutating func tokenDigest(_ node: SourceNode, _ path: String) -> [UInt8]? {
        let expected =
            "expected 64 lower-case hex digits: the SHA-256 of the token's secret part (LatchToken.secretDigest)"
        guard case .scalar(let text, _) = node.content, text.utf8.count == 64,
            text.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }),
            let bytes = Hex.decode(text)
        else {
            // Not quoted back: whatever was written here, it was meant to stand for a token.
            report(node.mark, path, "not a token digest; \(expected)")
            return nil
        }
        return bytes
    }

    private mutating func labels(_ node: SourceNode, _ path: String) -> [String: String] {
        guard case .mapping(let entries) = node.content else {
            report(node.mark, path, "expected a mapping of label name to text, found \(node.kindDescription)")
            return [:]
        }
        var out: [String: String] = [:]
        for entry in entries {
            let at = Self.join(path, entry.key)
            if entry.key.isEmpty { report(entry.keyMark, at, "a label name cannot be empty") }
            if let value = string(entry.value, at, "label text") { out[entry.key] = value }
        }
        return out
    }

    private mutating func mount(_ node: SourceNode, _ path: String) -> Mount? {
        guard let spec = fields(node, path, keys: Self.mountKeys, "a mount mapping") else { return nil }
        guard let pathNode = required(spec, "path", "the mount prefix, such as /openai"),
            let prefix = string(pathNode, spec.path("path"), "a mount prefix such as /openai")
        else { return nil }
        var upstream: String?
        if let node = spec["upstream"], let text = string(node, spec.path("upstream"), "an upstream URL") {
            if let problem = BundleValues.upstreamProblem(text) {
                report(
                    node.mark, spec.path("upstream"),
                    "\(BundleText.quote(text)) is not an upstream base URL: it \(problem); expected e.g. https://api.openai.com"
                )
            } else {
                upstream = text
            }
        }
        let secret = spec["secret"].flatMap { string($0, spec.path("secret"), "a secret name") }
        let mountFilters = spec["filters"].map { filters($0, spec.path("filters")) } ?? []
        return Mount(path: prefix, upstream: upstream, secret: secret, filters: mountFilters)
    }

    // MARK: Filters

    private mutating func filters(_ node: SourceNode, _ path: String) -> [Filter] {
        guard let items = list(node, path, "filters") else { return [] }
        var out: [Filter] = []
        out.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            if let filter = filter(item, Self.join(path, index), position: index + 1) {
                out.append(filter)
            } else {
                // Later filters moved up one place; their derivation checks would name wrong paths.
                markBroken(path)
            }
        }
        return out
    }

    private mutating func filter(_ node: SourceNode, _ path: String, position: Int) -> Filter? {
        let kinds = FilterKind.names.joined(separator: ", ")
        guard let spec = fields(node, path, keys: Self.filterKeys, "a filter mapping with one of: \(kinds)") else {
            return nil
        }
        let kindEntries = spec.entries.filter { FilterKind.names.contains($0.key) }
        guard let kindEntry = kindEntries.first else {
            report(node.mark, path, "no filter kind; expected exactly one of: \(kinds)")
            return nil
        }
        if kindEntries.count > 1 {
            let names = kindEntries.map(\.key).joined(separator: " and ")
            report(
                kindEntries[1].keyMark, spec.path(kindEntries[1].key),
                "\(names) in one filter; a filter has exactly one kind, so write them as separate filters")
            return nil
        }
        var id = "\(kindEntry.key)#\(position)"
        var failed = false
        if let idNode = spec["id"] {
            if let named = name(idNode, spec.path("id"), "filter id") { id = named } else { failed = true }
        }
        var condition: FilterCondition?
        if let whenNode = spec["when"] {
            condition = self.condition(whenNode, spec.path("when"))
            if condition == nil { failed = true }
        }
        guard let kind = kind(kindEntry.key, kindEntry.value, spec.path(kindEntry.key)), !failed else { return nil }
        return Filter(id: id, condition: condition, kind: kind)
    }

    private mutating func condition(_ node: SourceNode, _ path: String) -> FilterCondition? {
        guard let spec = fields(node, path, keys: ["methods", "endpoints"], "a condition {methods, endpoints}") else {
            return nil
        }
        guard spec.has("methods") || spec.has("endpoints") else {
            report(node.mark, path, "empty; give methods, endpoints or both (or drop `when` to always apply)")
            return nil
        }
        var methods: MethodSet?
        var endpoints: [EndpointPattern]?
        var failed = false
        if let node = spec["methods"] {
            methods = methodSet(node, spec.path("methods"))
            if methods == nil { failed = true }
        }
        if let node = spec["endpoints"] {
            endpoints = endpointPatterns(node, spec.path("endpoints"))
            if endpoints == nil || endpoints!.isEmpty {
                if endpoints != nil { report(node.mark, spec.path("endpoints"), "empty; list at least one endpoint") }
                failed = true
            }
        }
        return failed ? nil : FilterCondition(methods: methods, endpoints: endpoints)
    }

    private mutating func kind(_ name: String, _ node: SourceNode, _ path: String) -> FilterKind? {
        switch name {
        case "method": return methodSet(node, path).map(FilterKind.method)
        case "endpoint": return endpointFilter(node, path).map(FilterKind.endpoint)
        case "payload": return payloadRules(node, path).map(FilterKind.payload)
        case "rate_limit": return rateLimit(node, path).map(FilterKind.rateLimit)
        case "body_size": return size(node, path).map { FilterKind.bodySize(maxBytes: $0) }
        case "time_window": return timeWindows(node, path).map(FilterKind.timeWindow)
        case "ip_allowlist": return ipAllowlist(node, path).map(FilterKind.ipAllowlist)
        case "header_req": return headerRequirements(node, path).map(FilterKind.headers)
        case "response": return response(node, path).map(FilterKind.response)
        case "budget": return budget(node, path).map(FilterKind.budget)
        default: return nil
        }
    }

    private mutating func methodSet(_ node: SourceNode, _ path: String) -> MethodSet? {
        guard let items = strings(node, path, "methods such as GET or POST", allowSingle: true) else { return nil }
        if items.count == 1, items[0].0 == "*" { return .any }
        var failed = false
        for (method, item, itemPath) in items {
            do {
                _ = try MethodSet([method])
            } catch {
                report(item.mark, itemPath, error.reason)
                failed = true
            }
        }
        if failed { return nil }
        do {
            return try MethodSet(items.map(\.0))
        } catch {
            report(node.mark, path, error.reason)
            return nil
        }
    }

    private mutating func endpointPatterns(_ node: SourceNode, _ path: String) -> [EndpointPattern]? {
        guard let items = strings(node, path, "endpoint patterns such as /v1/chat/*", allowSingle: false) else {
            return nil
        }
        var out: [EndpointPattern] = []
        var failed = false
        for (text, item, itemPath) in items {
            do {
                out.append(try EndpointPattern(text))
            } catch {
                report(item.mark, itemPath, error.reason)
                failed = true
            }
        }
        return failed ? nil : out
    }

    private mutating func endpointFilter(_ node: SourceNode, _ path: String) -> EndpointFilter? {
        guard let spec = fields(node, path, keys: ["allow", "block"], "a mapping {allow: [...], block: [...]}") else {
            return nil
        }
        let allow = spec["allow"].map { endpointPatterns($0, spec.path("allow")) } ?? []
        let block = spec["block"].map { endpointPatterns($0, spec.path("block")) } ?? []
        guard let allow, let block else { return nil }
        if allow.isEmpty && block.isEmpty {
            report(node.mark, path, "needs at least one pattern in allow or block")
            return nil
        }
        return EndpointFilter(allow: allow, block: block)
    }

    private mutating func payloadRules(_ node: SourceNode, _ path: String) -> [PayloadRule]? {
        guard let items = list(node, path, "payload rules") else { return nil }
        if items.isEmpty {
            report(node.mark, path, "empty; list at least one rule such as {field: token_cap, op: le, value: 4096}")
            return nil
        }
        var out: [PayloadRule] = []
        var failed = false
        for (index, item) in items.enumerated() {
            if let rule = payloadRule(item, Self.join(path, index)) { out.append(rule) } else { failed = true }
        }
        return failed ? nil : out
    }

    private mutating func payloadRule(_ node: SourceNode, _ path: String) -> PayloadRule? {
        guard let spec = fields(node, path, keys: Self.ruleKeys, "a rule mapping {field|path|paths, op, value}") else {
            return nil
        }
        let sources = ["field", "path", "paths"].filter { spec.has($0) }
        guard sources.count == 1 else {
            report(
                node.mark, path,
                sources.isEmpty
                    ? "names no field; give exactly one of field (an alias from `fields`), path or paths"
                    : "gives \(sources.joined(separator: " and ")); give exactly one of field, path or paths")
            return nil
        }
        var paths: [JSONPath]?
        switch sources[0] {
        case "field":
            if let alias = string(spec["field"]!, spec.path("field"), "a field alias name") {
                if brokenAliases.contains(alias) {
                    markBroken(path)
                } else if let expanded = aliases[alias] {
                    paths = expanded
                } else {
                    report(
                        spec["field"]!.mark, spec.path("field"),
                        "no field alias \(BundleText.quote(alias)) in the bundle's `fields`; declared: \(BundleText.list(aliases.keys.sorted()))"
                    )
                }
            }
        case "path":
            paths = jsonPath(spec["path"]!, spec.path("path")).map { [$0] }
        default:
            paths = jsonPaths(spec["paths"]!, spec.path("paths"), allowSingle: false)
            if let list = paths, list.isEmpty {
                report(spec["paths"]!.mark, spec.path("paths"), "empty; list at least one JSON path")
                paths = nil
            }
        }
        var op: PayloadOperator?
        if let node = required(spec, "op", "an operator") {
            let valid = PayloadOperator.allCases.map(\.rawValue).joined(separator: ", ")
            if let text = string(node, spec.path("op"), "an operator") {
                op = PayloadOperator(rawValue: text)
                if op == nil {
                    report(
                        node.mark, spec.path("op"),
                        "\(BundleText.quote(text)) is not an operator; expected one of: \(valid)")
                }
            }
        }
        let operand = spec["value"].map { Self.operand($0) }
        var quantifier = PayloadQuantifier.all
        if let node = spec["quantifier"], let text = string(node, spec.path("quantifier"), "all or any") {
            if let parsed = PayloadQuantifier(rawValue: text) {
                quantifier = parsed
            } else {
                report(
                    node.mark, spec.path("quantifier"),
                    "\(BundleText.quote(text)) is not a quantifier; expected all or any")
                return nil
            }
        }
        let required = spec["required"].flatMap { bool($0, spec.path("required")) } ?? false
        var whenMissing = PayloadMissingBehaviour.deny
        if let node = spec["when_missing"], let text = string(node, spec.path("when_missing"), "deny or satisfy") {
            if let parsed = PayloadMissingBehaviour(rawValue: text) {
                whenMissing = parsed
            } else {
                report(
                    node.mark, spec.path("when_missing"),
                    "\(BundleText.quote(text)) is not valid; expected deny or satisfy"
                )
                return nil
            }
        }
        guard let paths, let op, !brokenPaths.contains(spec.path("required")) else { return nil }
        do {
            return try PayloadRule(
                paths: paths, op: op, operand: operand, quantifier: quantifier, required: required,
                whenMissing: whenMissing)
        } catch {
            report(node.mark, path, error.reason)
            return nil
        }
    }

    /// A rule's `value` as JSON: quoted scalars are strings; plain ones are `true`, `false`, a JSON
    /// number, or else a string; null is null (YAML `null`, `~`, or nothing).
    static func operand(_ node: SourceNode) -> JSONValue {
        switch node.content {
        case .null: return .null
        case .scalar(let text, true): return .string(text)
        case .scalar(let text, false):
            if text == "true" { return .bool(true) }
            if text == "false" { return .bool(false) }
            if let number = JSONNumber(text) { return .number(number) }
            return .string(text)
        case .sequence(let items): return .array(items.map(operand))
        case .mapping(let entries): return .object(entries.map { JSONMember(key: $0.key, value: operand($0.value)) })
        }
    }

    private mutating func rateLimit(_ node: SourceNode, _ path: String) -> RateLimitFilter? {
        let keys = ["requests", "tokens", "window", "key", "token_field"]
        guard let spec = fields(node, path, keys: keys, "a mapping {requests, tokens, window, key}") else { return nil }
        let positive: ClosedRange<Int64> = 1...Int64.max
        let requests = spec["requests"].map { integer($0, spec.path("requests"), in: positive, "a positive integer") }
        let tokens = spec["tokens"].map { integer($0, spec.path("tokens"), in: positive, "a positive integer") }
        if requests == nil && tokens == nil {
            report(node.mark, path, "needs requests, tokens or both")
            return nil
        }
        let window = required(spec, "window", "a window such as 1m").flatMap { duration($0, spec.path("window")) }
        var key = RateLimitKey.latch
        if let node = spec["key"], let text = string(node, spec.path("key"), "latch, mount or client") {
            if let parsed = RateLimitKey(rawValue: text) {
                key = parsed
            } else {
                report(
                    node.mark, spec.path("key"),
                    "\(BundleText.quote(text)) is not a key; expected latch, mount or client")
                return nil
            }
        }
        var tokenField = "token_cap"
        if let node = spec["token_field"] {
            guard let name = name(node, spec.path("token_field"), "field alias name") else { return nil }
            tokenField = name
        }
        guard let window, requests != .some(nil), tokens != .some(nil) else { return nil }
        return RateLimitFilter(
            requests: requests ?? nil, tokens: tokens ?? nil, windowMilliseconds: window, key: key,
            tokenField: tokenField)
    }

    private mutating func timeWindows(_ node: SourceNode, _ path: String) -> [TimeWindow]? {
        if case .mapping = node.content { return timeWindow(node, path).map { [$0] } }
        guard let items = list(node, path, "time windows {days, hours, time_zone}") else { return nil }
        if items.isEmpty {
            report(node.mark, path, "empty; give at least one window {days, hours, time_zone}")
            return nil
        }
        var out: [TimeWindow] = []
        var failed = false
        for (index, item) in items.enumerated() {
            if let window = timeWindow(item, Self.join(path, index)) { out.append(window) } else { failed = true }
        }
        return failed ? nil : out
    }

    private mutating func timeWindow(_ node: SourceNode, _ path: String) -> TimeWindow? {
        guard
            let spec = fields(
                node, path, keys: ["days", "hours", "time_zone"],
                "a window {days: mon-fri, hours: \"09:00-18:00\", time_zone: Europe/Berlin}")
        else { return nil }
        let daysNode = required(spec, "days", "days such as mon-fri")
        let hoursNode = required(spec, "hours", "hours such as \"09:00-18:00\"")
        let zoneNode = required(spec, "time_zone", "an IANA time zone such as Europe/Berlin")
        guard let daysNode, let hoursNode, let zoneNode,
            let days = strings(daysNode, spec.path("days"), "days such as mon-fri", allowSingle: true),
            let hours = string(hoursNode, spec.path("hours"), "hours such as \"09:00-18:00\""),
            let zone = string(zoneNode, spec.path("time_zone"), "an IANA time zone such as Europe/Berlin")
        else { return nil }
        do {
            return try TimeWindow(days: days.map(\.0).joined(separator: ","), hours: hours, timeZone: zone)
        } catch {
            let (at, atPath) =
                error.code == .unknownTimeZone
                ? (zoneNode, spec.path("time_zone"))
                : error.reason.hasPrefix("days") ? (daysNode, spec.path("days")) : (hoursNode, spec.path("hours"))
            report(at.mark, atPath, error.reason)
            return nil
        }
    }

    private mutating func ipAllowlist(_ node: SourceNode, _ path: String) -> IPAllowlist? {
        guard let items = strings(node, path, "addresses or CIDR ranges such as 10.0.0.0/8", allowSingle: false) else {
            return nil
        }
        if items.isEmpty {
            report(node.mark, path, "empty, which admits nobody; list at least one address or range such as 10.0.0.0/8")
            return nil
        }
        if let list = try? IPAllowlist(items.map(\.0)) { return list }
        // Parse again one by one only to place each bad entry.
        for (text, item, itemPath) in items {
            do {
                _ = try CIDR(text)
            } catch {
                report(item.mark, itemPath, error.reason)
            }
        }
        return nil
    }

    private mutating func headerRequirements(_ node: SourceNode, _ path: String) -> [HeaderRequirement]? {
        guard let items = list(node, path, "header requirements (a name, or {name, pattern})") else { return nil }
        if items.isEmpty {
            report(
                node.mark, path,
                "empty; list at least one header, such as x-team or {name: x-team, pattern: \"support-*\"}")
            return nil
        }
        var out: [HeaderRequirement] = []
        var failed = false
        for (index, item) in items.enumerated() {
            let at = Self.join(path, index)
            var nameNode = item
            var namePath = at
            var patternNode: SourceNode?
            if case .mapping = item.content {
                guard let spec = fields(item, at, keys: ["name", "pattern"], "a header requirement {name, pattern}"),
                    let node = required(spec, "name", "a header name such as x-team")
                else {
                    failed = true
                    continue
                }
                nameNode = node
                namePath = spec.path("name")
                patternNode = spec["pattern"]
            }
            guard let name = string(nameNode, namePath, "a header name such as x-team") else {
                failed = true
                continue
            }
            var pattern: String?
            if let patternNode {
                pattern = string(patternNode, Self.join(at, "pattern"), "a glob such as \"support-*\"")
                if pattern == nil {
                    failed = true
                    continue
                }
            }
            do {
                out.append(try HeaderRequirement(name: name, pattern: pattern))
            } catch {
                let (where_, wherePath) =
                    error.code == .invalidHeaderName
                    ? (nameNode, namePath) : (patternNode ?? item, Self.join(at, "pattern"))
                report(where_.mark, wherePath, error.reason)
                failed = true
            }
        }
        return failed ? nil : out
    }

    private mutating func response(_ node: SourceNode, _ path: String) -> ResponseObligations? {
        let keys = ["redact", "trim", "block_if", "max_bytes"]
        guard let spec = fields(node, path, keys: keys, "a mapping {redact, trim, block_if, max_bytes}") else {
            return nil
        }
        let redact = spec["redact"].map { jsonPaths($0, spec.path("redact"), allowSingle: false) } ?? []
        let trim = spec["trim"].map { jsonPaths($0, spec.path("trim"), allowSingle: false) } ?? []
        let blockIf = spec["block_if"].map { payloadRules($0, spec.path("block_if")) } ?? []
        let maxBytes = spec["max_bytes"].map { size($0, spec.path("max_bytes")) }
        guard let redact, let trim, let blockIf, maxBytes != .some(nil) else { return nil }
        let obligations = ResponseObligations(redact: redact, trim: trim, blockIf: blockIf, maxBytes: maxBytes ?? nil)
        if obligations.isEmpty {
            report(node.mark, path, "empty; give at least one of redact, trim, block_if or max_bytes")
            return nil
        }
        return obligations
    }

    private mutating func budget(_ node: SourceNode, _ path: String) -> BudgetFilter? {
        let keys = ["day", "month", "total", "time_zone", "cost"]
        guard let spec = fields(node, path, keys: keys, "a mapping {day, month, total, time_zone, cost}") else {
            return nil
        }
        let day = spec["day"].map { money($0, spec.path("day"), positive: true) }
        let month = spec["month"].map { money($0, spec.path("month"), positive: true) }
        let total = spec["total"].map { money($0, spec.path("total"), positive: true) }
        if day == nil && month == nil && total == nil {
            report(node.mark, path, "needs at least one cap: day, month or total")
            return nil
        }
        var zone = TimeZone(identifier: "UTC")!
        if let node = spec["time_zone"] {
            guard let parsed = timeZone(node, spec.path("time_zone")) else { return nil }
            zone = parsed
        }
        let cost = required(spec, "cost", "{per_request: AMOUNT} or {llm: {model: $.model, token_field: token_cap}}")
            .flatMap { costModel($0, spec.path("cost")) }
        guard let cost, day != .some(nil), month != .some(nil), total != .some(nil) else { return nil }
        return BudgetFilter(perDay: day ?? nil, perMonth: month ?? nil, total: total ?? nil, timeZone: zone, cost: cost)
    }

    private mutating func costModel(_ node: SourceNode, _ path: String) -> CostModel? {
        let expected = "{per_request: AMOUNT} or {llm: {model: $.model, token_field: token_cap}}"
        guard let spec = fields(node, path, keys: ["per_request", "llm"], expected) else { return nil }
        guard spec.entries.count == 1, let entry = spec.entries.first else {
            report(
                node.mark, path,
                "\(spec.entries.isEmpty ? "empty" : "gives both per_request and llm"); expected \(expected)")
            return nil
        }
        if entry.key == "per_request" {
            return money(entry.value, spec.path("per_request"), positive: false).map(CostModel.perRequest)
        }
        let llmPath = spec.path("llm")
        guard let llm = fields(entry.value, llmPath, keys: ["model", "token_field"], "a mapping {model, token_field}")
        else { return nil }
        var model = try! JSONPath("$.model")
        if let node = llm["model"] {
            guard let parsed = jsonPath(node, llm.path("model")) else { return nil }
            model = parsed
        }
        var tokenField = "token_cap"
        if let node = llm["token_field"] {
            guard let name = name(node, llm.path("token_field"), "field alias name") else { return nil }
            tokenField = name
        }
        return .llm(modelPath: model, tokenField: tokenField)
    }
}
