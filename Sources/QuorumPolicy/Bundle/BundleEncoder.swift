import Foundation
import QuorumCrypto

/// Writes the decoded model back as a bundle document (a ``Doc`` in reading order), then as
/// canonical JSON, pretty JSON or block YAML. Every writer starts from the model, never from source
/// text, so what two nodes hash is what they will enforce.
enum BundleEncoder {
    /// A document to write: like ``JSONValue``, but numbers are already canonical text, so
    /// encoding never re-parses a number it printed. Not `indirect`: arrays already break the
    /// recursion, and a box per value would double the allocations.
    enum Doc {
        case string(String)
        /// Canonical JSON number text.
        case number(String)
        case bool(Bool)
        case null
        case array([Doc])
        case object([(key: String, value: Doc)])
    }

    // MARK: Model to document

    static func document(_ parts: BundleComponents) -> Doc {
        let secrets = parts.secrets.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        return object([
            ("format", .string(PolicyBundle.format)),
            ("version", .number(String(parts.version))),
            ("secrets", .array(secrets.map(secret))),
            ("fields", sortedObject(parts.fieldAliases.map { ($0.key, .array($0.value.map(path))) })),
            (
                "prices",
                sortedObject(
                    parts.prices.map { name, price in
                        (
                            name,
                            object([("input", money(price.inputPerMillion)), ("output", money(price.outputPerMillion))])
                        )
                    })
            ),
            ("latches", .array(parts.latches.map(latch))),
        ])
    }

    private static func object(_ members: [(String, Doc?)]) -> Doc {
        .object(members.compactMap { key, value in value.map { (key, $0) } })
    }

    private static func sortedObject(_ members: [(String, Doc)]) -> Doc {
        .object(members.sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }.map { ($0.0, $0.1) })
    }

    private static func integer(_ value: some BinaryInteger) -> Doc { .number(String(value)) }
    private static func money(_ micro: MicroUnits) -> Doc { .number(BundleValues.moneyText(micro)) }
    private static func path(_ path: JSONPath) -> Doc { .string(path.description) }
    private static func strings(_ items: [String]) -> Doc { .array(items.map { .string($0) }) }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Lower-case hex without going through `Character`s (a token digest per latch adds up).
    private static func hex(_ bytes: [UInt8]) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { buffer in
            for (index, byte) in bytes.enumerated() {
                buffer[2 * index] = hexDigits[Int(byte >> 4)]
                buffer[2 * index + 1] = hexDigits[Int(byte & 0x0F)]
            }
            return bytes.count * 2
        }
    }

    private static func secret(_ spec: SecretSpec) -> Doc {
        let inject: Doc =
            switch spec.injection {
            case .bearer: .string("bearer")
            case .header(let name): object([("header", .string(name))])
            case .query(let parameter): object([("query", .string(parameter))])
            case .basic(let username): object([("basic", .string(username))])
            }
        return object([("name", .string(spec.name)), ("inject", inject)])
    }

    private static func latch(_ latch: Latch) -> Doc {
        object([
            ("id", .string(latch.id)),
            ("token_sha256", .string(hex(latch.tokenDigest))),
            ("labels", sortedObject(latch.labels.map { ($0.key, .string($0.value)) })),
            ("expires", latch.expires.map { .string(BundleValues.instantText($0)) }),
            ("parent", latch.parent.map { .string($0) }),
            ("revoked", .bool(latch.revoked)),
            ("filters", .array(latch.filters.map(filter))),
            ("mounts", latch.mounts.map { .array($0.map(mount)) }),
            (
                "cnf",
                latch.certificateThumbprint.map {
                    object([("x5t#S256", .string(BundleValues.base64URLEncode($0)))])
                }
            ),
        ])
    }

    private static func mount(_ mount: Mount) -> Doc {
        object([
            ("path", .string(mount.path)),
            ("upstream", mount.upstream.map { .string($0) }),
            ("secret", mount.secret.map { .string($0) }),
            ("filters", .array(mount.filters.map(filter))),
        ])
    }

    private static func filter(_ filter: Filter) -> Doc {
        let when = filter.condition.map { condition in
            object([
                ("methods", condition.methods.map(methods)),
                ("endpoints", condition.endpoints.map { .array($0.map { .string($0.description) }) }),
            ])
        }
        return object([
            ("id", filter.isNamed ? .string(filter.id) : nil),
            ("when", when),
            (filter.kind.name, kind(filter.kind)),
        ])
    }

    private static func methods(_ set: MethodSet) -> Doc {
        guard let methods = set.methods else { return strings(["*"]) }
        return strings(methods.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
    }

    private static func kind(_ kind: FilterKind) -> Doc {
        switch kind {
        case .method(let set):
            return methods(set)
        case .endpoint(let endpoint):
            return object([
                ("allow", .array(endpoint.allow.map { .string($0.description) })),
                ("block", .array(endpoint.block.map { .string($0.description) })),
            ])
        case .payload(let rules):
            return .array(rules.map(rule))
        case .rateLimit(let limit):
            return object([
                ("requests", limit.requests.map(integer)),
                ("tokens", limit.tokens.map(integer)),
                ("window", .string(BundleValues.durationText(limit.windowMilliseconds))),
                ("key", .string(limit.key.rawValue)),
                ("token_field", .string(limit.tokenField)),
            ])
        case .bodySize(let maxBytes):
            return integer(maxBytes)
        case .timeWindow(let windows):
            return .array(
                windows.map { window in
                    object([
                        ("days", .string(window.days.sorted().map(\.description).joined(separator: ","))),
                        ("hours", .string("\(window.start)-\(window.end)")),
                        ("time_zone", .string(window.timeZone.identifier)),
                    ])
                })
        case .ipAllowlist(let list):
            return strings(list.ranges.map(\.description))
        case .headers(let requirements):
            return .array(
                requirements.map { requirement in
                    object([
                        ("name", .string(requirement.name)),
                        ("pattern", requirement.pattern.map { .string($0.description) }),
                    ])
                })
        case .response(let obligations):
            return object([
                // Empty lists are left out: the decoder refuses an empty list as a likely mistake.
                ("redact", obligations.redact.isEmpty ? nil : .array(obligations.redact.map(path))),
                ("trim", obligations.trim.isEmpty ? nil : .array(obligations.trim.map(path))),
                ("block_if", obligations.blockIf.isEmpty ? nil : .array(obligations.blockIf.map(rule))),
                ("max_bytes", obligations.maxBytes.map(integer)),
            ])
        case .budget(let budget):
            let cost: Doc =
                switch budget.cost {
                case .perRequest(let amount): object([("per_request", money(amount))])
                case .llm(let modelPath, let tokenField):
                    object([
                        ("llm", object([("model", path(modelPath)), ("token_field", .string(tokenField))]))
                    ])
                }
            return object([
                ("day", budget.perDay.map(money)),
                ("month", budget.perMonth.map(money)),
                ("total", budget.total.map(money)),
                ("time_zone", .string(budget.timeZone.identifier)),
                ("cost", cost),
            ])
        }
    }

    private static func rule(_ rule: PayloadRule) -> Doc {
        object([
            ("paths", .array(rule.paths.map(path))),
            ("op", .string(rule.op.rawValue)),
            ("value", rule.operand.map(canonicalOperand)),
            ("quantifier", .string(rule.quantifier.rawValue)),
            ("required", .bool(rule.required)),
            ("when_missing", .string(rule.whenMissing.rawValue)),
        ])
    }

    /// Numbers in one spelling; object members keep their order here and are sorted when written
    /// canonically (`eq` ignores member order, so sorting changes no meaning).
    private static func canonicalOperand(_ value: JSONValue) -> Doc {
        switch value {
        case .null: .null
        case .bool(let flag): .bool(flag)
        case .string(let text): .string(text)
        case .number(let number): .number(BundleValues.canonical(number).text)
        case .array(let items): .array(items.map(canonicalOperand))
        case .object(let members): .object(members.map { ($0.key, canonicalOperand($0.value)) })
        }
    }

    // MARK: Writers

    /// Keys sorted by UTF-8 bytes, no whitespace, strings escaped only where JSON requires.
    static func canonicalBytes(_ value: Doc) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(1 << 16)
        writeCanonical(value, to: &out)
        return out
    }

    private static func writeCanonical(_ value: Doc, to out: inout [UInt8]) {
        switch value {
        case .null: out += "null".utf8
        case .bool(let flag): out += (flag ? "true" : "false").utf8
        case .number(let text): out += text.utf8
        case .string(let text): writeString(text, to: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                writeCanonical(item, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            var sorted = members
            if !isSorted(sorted) { sorted.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) } }
            for (index, member) in sorted.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                writeString(member.key, to: &out)
                out.append(UInt8(ascii: ":"))
                writeCanonical(member.value, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func isSorted(_ members: [(key: String, value: Doc)]) -> Bool {
        var index = 1
        while index < members.count {
            if !members[index - 1].key.utf8.lexicographicallyPrecedes(members[index].key.utf8) { return false }
            index += 1
        }
        return true
    }

    private static func writeString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out += text.utf8
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += "\\\"".utf8
            case UInt8(ascii: "\\"): out += "\\\\".utf8
            case 0x0A: out += "\\n".utf8
            case 0x0D: out += "\\r".utf8
            case 0x09: out += "\\t".utf8
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += "\\u00".utf8
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Two-space indented JSON in reading order.
    /// `text` as a JSON string literal, escaped as in canonical form.
    static func quoted(_ text: String) -> String {
        var out: [UInt8] = []
        writeString(text, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Compact JSON (keys in document order) for one value.
    private static func compact(_ value: Doc) -> String {
        switch value {
        case .null: "null"
        case .bool(let flag): flag ? "true" : "false"
        case .number(let text): text
        case .string(let text): quoted(text)
        case .array(let items): "[" + items.map(compact).joined(separator: ",") + "]"
        case .object(let members):
            "{" + members.map { quoted($0.key) + ":" + compact($0.value) }.joined(separator: ",") + "}"
        }
    }

    static func prettyJSON(_ value: Doc) -> String {
        var out = ""
        writePretty(value, indent: "", to: &out)
        return out + "\n"
    }

    private static func writePretty(_ value: Doc, indent: String, to out: inout String) {
        let inner = indent + "  "
        switch value {
        case .array(let items) where !items.isEmpty:
            if items.allSatisfy(isScalar) {
                let line = "[" + items.map(compact).joined(separator: ", ") + "]"
                if line.count + indent.count <= 100 {
                    out += line
                    return
                }
            }
            out += "[\n"
            for (index, item) in items.enumerated() {
                out += inner
                writePretty(item, indent: inner, to: &out)
                out += index == items.count - 1 ? "\n" : ",\n"
            }
            out += indent + "]"
        case .object(let members) where !members.isEmpty:
            out += "{\n"
            for (index, member) in members.enumerated() {
                out += inner + quoted(member.key) + ": "
                writePretty(member.value, indent: inner, to: &out)
                out += index == members.count - 1 ? "\n" : ",\n"
            }
            out += indent + "}"
        default:
            out += compact(value)
        }
    }

    private static func isScalar(_ value: Doc) -> Bool {
        switch value {
        case .array, .object: false
        default: true
        }
    }

    /// Block YAML in reading order. Strings that YAML (or our schema, for a rule's `value`) could
    /// read as something else are double-quoted with JSON escapes, which YAML accepts unchanged.
    static func yaml(_ value: Doc) -> String {
        var out = ""
        guard case .object(let members) = value else { return yamlScalar(value) + "\n" }
        writeMembers(members, indent: "", firstPrefix: "", to: &out)
        return out
    }

    private static func writeMembers(
        _ members: [(key: String, value: Doc)], indent: String, firstPrefix: String, to out: inout String
    ) {
        for (index, member) in members.enumerated() {
            out += (index == 0 ? firstPrefix : indent) + yamlKey(member.key) + ":"
            writeValue(member.value, indent: indent, to: &out)
        }
    }

    /// Writes what follows `key:` (or `-`): a scalar or flow collection on the same line, or a block
    /// on the following lines.
    private static func writeValue(_ value: Doc, indent: String, to out: inout String) {
        let inner = indent + "  "
        switch value {
        case .object(let members) where !members.isEmpty:
            out += "\n"
            writeMembers(members, indent: inner, firstPrefix: inner, to: &out)
        case .array(let items) where !items.isEmpty:
            if items.allSatisfy(isScalar) {
                let line = "[" + items.map(yamlScalar).joined(separator: ", ") + "]"
                if line.count + indent.count <= 100 {
                    out += " " + line + "\n"
                    return
                }
            }
            out += "\n"
            for item in items {
                switch item {
                case .object(let members) where !members.isEmpty:
                    writeMembers(members, indent: inner + "  ", firstPrefix: inner + "- ", to: &out)
                case .array(let nested) where !nested.isEmpty:
                    out += inner + "-"
                    writeValue(item, indent: inner, to: &out)
                default:
                    out += inner + "- " + yamlScalar(item) + "\n"
                }
            }
        default:
            out += " " + yamlScalar(value) + "\n"
        }
    }

    private static func yamlKey(_ key: String) -> String {
        isPlainSafe(key) ? key : yamlQuoted(key)
    }

    /// A double-quoted YAML scalar. JSON escapes, plus escapes for what YAML (libyaml reads YAML
    /// 1.1) does not allow raw: DEL, C1 controls, the byte order mark, U+2028/U+2029 (line breaks
    /// to YAML 1.1) and the non-characters U+FFFE/U+FFFF.
    private static func yamlQuoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0..<0x20, 0x7F...0x9F, 0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    private static func yamlScalar(_ value: Doc) -> String {
        switch value {
        case .string(let text):
            return isPlainSafe(text) ? text : yamlQuoted(text)
        case .array(let items): return "[" + items.map(yamlScalar).joined(separator: ", ") + "]"
        case .object(let members):
            return "{" + members.map { yamlKey($0.key) + ": " + yamlScalar($0.value) }.joined(separator: ", ") + "}"
        default:
            return compact(value)
        }
    }

    /// Whether `text` reads back as the same string when written plain, both in YAML and in our
    /// typing of a rule's `value` (so `true`, `null`, `12` and `1e3` are quoted).
    private static func isPlainSafe(_ text: String) -> Bool {
        guard let first = text.utf8.first, text.utf8.last != UInt8(ascii: ":") else { return false }
        if text == "true" || text == "false" || text == "null" || text == "~" || JSONNumber(text) != nil {
            return false
        }
        let startsWell =
            switch first {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "/"), UInt8(ascii: "$"), UInt8(ascii: "_"):
                true
            default: false
            }
        guard startsWell else { return false }
        let bytes = Array(text.utf8)
        for index in bytes.indices.dropLast() where bytes[index] == UInt8(ascii: ":") && bytes[index + 1] == 0x20 {
            return false
        }
        return text.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "/"), UInt8(ascii: "$"), UInt8(ascii: "_"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "*"), UInt8(ascii: ":"), UInt8(ascii: "+"),
                UInt8(ascii: "@"):
                true
            default: false
            }
        }
    }
}

extension JSONValue {
    /// Two-space indented JSON with members in their order: how the CLI prints verdicts.
    public var prettyText: String { BundleEncoder.prettyJSON(document) }

    /// The value as a writer's document, numbers as written.
    private var document: BundleEncoder.Doc {
        switch self {
        case .null: .null
        case .bool(let flag): .bool(flag)
        case .string(let text): .string(text)
        case .number(let number): .number(number.text)
        case .array(let items): .array(items.map(\.document))
        case .object(let members): .object(members.map { ($0.key, $0.value.document) })
        }
    }
}
