import Foundation
import Testing

@testable import QuorumPolicy

@Suite("Bundle canonical encoding, digest and rendering")
struct BundleDigestTests {
    private func full() throws -> PolicyBundle { try BundleFixtures.decode(BundleFixtures.fullYAML) }

    @Test("Comments, whitespace, key order and flow versus block style do not change the digest")
    func layoutDoesNotMatter() throws {
        let original = try full()
        let respelled = BundleFixtures.fullYAML
            .replacingOccurrences(of: "# A bundle that uses every filter kind.", with: "# another comment")
            .replacingOccurrences(
                of: "format: quorum-latch/bundle/v1\nversion: 7",
                with: "version: 7   # v7\nformat: quorum-latch/bundle/v1"
            )
            .replacingOccurrences(of: "{input: 2.50, output: 10.00}", with: "\n    output: 10\n    input: 2.5")
        #expect(respelled != BundleFixtures.fullYAML)
        #expect(try BundleFixtures.decode(respelled).digest == original.digest)
    }

    @Test(
        "Any change of meaning changes the digest",
        arguments: [
            ("version: 7", "version: 8"),
            ("requests: 60, tokens", "requests: 61, tokens"),
            ("{field: token_cap, op: le, value: 4096}", "{field: token_cap, op: le, value: 4097}"),
            ("{field: token_cap, op: le, value: 4096}", "{field: token_cap, op: le, value: \"4096\"}"),
            ("gpt-4o: {input: 2.50", "gpt-4o: {input: 2.51"),
            ("team: support", "team: sales"),
            ("- method: [POST, GET]", "- method: [POST]"),
            ("hours: \"09:00-18:00\"", "hours: \"09:00-18:01\""),
            ("time_zone: Europe/Berlin", "time_zone: Europe/Paris"),
            ("expires: 2027-01-01T00:00:00Z", "expires: 2027-01-01T00:00:01Z"),
            ("body_size: 64KiB", "body_size: 65537"),
            ("inject: bearer", "inject: {header: authorization}"),
            ("      - id: office-hours\n", "      - id: office-hour\n"),
            ("key: client}", "key: mount}"),
        ])
    func semanticChange(from: String, to: String) throws {
        let original = try full()
        #expect(BundleFixtures.fullYAML.contains(from))
        let changed = try BundleFixtures.decode(BundleFixtures.fullYAML.replacingOccurrences(of: from, with: to))
        #expect(changed.digest != original.digest)
    }

    @Test("The digest is the SHA-256 of the canonical bytes, which are sorted, compact JSON")
    func canonicalForm() throws {
        let bundle = try full()
        let bytes = BundleDocument.canonicalBytes(of: bundle)
        #expect(BundleDocument.digest(ofCanonical: bytes) == bundle.digest)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix(#"{"fields":{"model":["$.model"],"token_cap":["$.max_tokens","#))
        #expect(!text.contains(" ") || !text.contains("\n"))
        #expect(text.contains(#""prices":{"gpt-4o":{"input":2.5,"output":10}}"#))
        #expect(
            text.contains(#"{"key":"client","requests":60,"token_field":"token_cap","tokens":200000,"window":"1m"}"#))
        #expect(text.contains(#"{"days":"mon,tue,wed,thu,fri","hours":"09:00-18:00","time_zone":"Europe/Berlin"}"#))
        #expect(text.contains(#""expires":"2027-01-01T00:00:00Z""#))
        #expect(text.contains(#""body_size":65536"#))
        #expect(text.contains(#""method":["GET","POST"]"#))
        #expect(text.contains(#""op":"eq","paths":["$.n"],"quantifier":"all","required":false,"value":1,"#))
        #expect(text.contains(#""cost":{"per_request":0.01}"#))
        // Unnamed filters have no id in the canonical form; named ones keep theirs.
        #expect(!text.contains("#"))
        #expect(text.contains(#""id":"office-hours""#))
    }

    @Test("The canonical JSON decodes back to an equal bundle with the same digest")
    func canonicalRoundTrip() throws {
        let bundle = try full()
        let bytes = BundleDocument.canonicalBytes(of: bundle)
        let again = try BundleDocument.decode(bytes, fileName: "canonical.json")
        #expect(again.digest == bundle.digest)
        #expect(again.latches == bundle.latches)
        #expect(again.secrets == bundle.secrets)
        #expect(again.fieldAliases == bundle.fieldAliases)
        #expect(again.prices == bundle.prices)
        #expect(BundleDocument.canonicalBytes(of: again) == bytes)
    }

    @Test("Rendered YAML and JSON decode back to the same digest", arguments: [BundleDocument.Format.yaml, .json])
    func renderRoundTrip(format: BundleDocument.Format) throws {
        let bundle = try full()
        let text = BundleDocument.render(bundle, as: format)
        let again = try BundleFixtures.decode(text, file: format == .yaml ? "rendered.yaml" : "rendered.json")
        #expect(again.digest == bundle.digest)
        #expect(again.latches == bundle.latches)
    }

    @Test("Rendered YAML is block style and quotes what would otherwise change type")
    func renderedYAMLReads() throws {
        let bundle = try BundleFixtures.decode(
            BundleFixtures.withMountFilters(
                """
                          - payload:
                              - {path: $.a, op: in, value: ["true", "12", "null", "", " x", "a: b", "#c", true, 12, null]}
                """
            ).replacingOccurrences(of: "  - id: a\n", with: "  - id: a\n    labels: {\"x y\": \"-1\", k: \"yes\"}\n"))
        let yaml = BundleDocument.render(bundle, as: .yaml)
        #expect(yaml.contains("latches:\n  - id: a\n"))
        #expect(yaml.contains(#""x y": "-1""#))
        #expect(yaml.contains(##"value: ["true", "12", "null", "", " x", "a: b", "#c", true, 12, null]"##), "\(yaml)")
        #expect(try BundleFixtures.decode(yaml).digest == bundle.digest)
    }

    @Test(
        "Rendered YAML escapes characters YAML cannot hold raw",
        arguments: ["del\u{7F}", "c1\u{85}\u{9F}", "ls\u{2028}ps\u{2029}", "bom\u{FEFF}", "tab\tnl\nq\"b\\", "é ✓ 😀"])
    func renderedYAMLEscapes(value: String) throws {
        let base = try BundleFixtures.decode(BundleFixtures.withMountFilters("          - body_size: 10"))
        let latch = base.latches[0]
        let labelled = try base.upserting(
            Latch(id: latch.id, tokenDigest: latch.tokenDigest, labels: ["k": value, value: "v"], mounts: latch.mounts))
        let again = try BundleFixtures.decode(BundleDocument.render(labelled, as: .yaml))
        #expect(again.latches[0].labels == ["k": value, value: "v"])
        #expect(again.digest == labelled.digest)
    }

    @Test("Editing a bundle bumps the version and recomputes the digest")
    func editing() throws {
        let bundle = try full()
        let helper = try #require(bundle.latches.first { $0.id == "helper" })
        let revoked = try bundle.revoking("helper")
        #expect(revoked.version == 8)
        #expect(revoked.digest != bundle.digest)
        #expect(revoked.resolvedLatch("helper")?.revokedBy == "helper")
        #expect(revoked.latches.count == bundle.latches.count)
        let added = try bundle.upserting(
            Latch(
                id: "third", tokenDigest: helper.tokenDigest, expires: helper.expires, parent: "helper", mounts: nil),
            version: 20)
        #expect(added.version == 20 && added.latches.last?.id == "third")
        let rendered = BundleDocument.render(added, as: .yaml)
        #expect(try BundleFixtures.decode(rendered).digest == added.digest)
        #expect(throws: BundleProblems.self) { try bundle.replacing(latches: bundle.latches, version: 7) }
        // A bundle built in code gets the same digest as the file written for it.
        let built = try PolicyBundle(
            version: bundle.version, secrets: Array(bundle.secrets.values), fieldAliases: bundle.fieldAliases,
            prices: bundle.prices, latches: bundle.latches)
        #expect(built.digest == bundle.digest)
    }

    @Test("Canonical numbers have one spelling per value")
    func canonicalNumbers() {
        let cases: [(String, String)] = [
            ("1.0", "1"), ("10e-1", "1"), ("-0", "0"), ("0.5", "0.5"), ("1.25e2", "125"),
            ("1e20", "100000000000000000000"),
            ("1e21", "1e21"), ("1e22", "1e22"), ("0.000001", "0.000001"), ("1e-7", "1e-7"), ("-12.50", "-12.5"),
            ("123456.789e-2", "1234.56789"),
            ("2.5e-7", "2.5e-7"),
        ]
        for (input, expected) in cases {
            #expect(BundleValues.canonical(JSONNumber(input)!).text == expected, "\(input)")
            #expect(BundleValues.canonical(JSONNumber(input)!) == JSONNumber(input)!)
        }
    }

    @Test("Instants, money, durations and sizes print in a form that parses back")
    func valueNotations() throws {
        for text in [
            "2027-01-01T00:00:00Z", "2000-02-29T23:59:59Z", "1970-01-01T00:00:00.250Z", "1969-12-31T23:59:59Z",
        ] {
            let date = BundleValues.instant(text)
            #expect(date != nil, "\(text)")
            #expect(date.map(BundleValues.instantText) == text)
        }
        #expect(BundleValues.instant("2027-01-01T01:00:00+01:00") == BundleValues.instant("2027-01-01T00:00:00Z"))
        for bad in [
            "2027-02-29T00:00:00Z", "2027-01-01T24:00:00Z", "2027-01-01 00:00:00Z", "2027-01-01T00:00:00",
            "2027-01-01T00:00:60Z", "2027-01-01T00:00:00.1234Z", "2027-01-01t00:00:00z",
        ] {
            #expect(BundleValues.instant(bad) == nil, "\(bad)")
        }
        for micro: MicroUnits in [0, 1, 10, 2_500_000, 10_000_000, 123_456_789, .max] {
            let text = BundleValues.moneyText(micro)
            #expect(try BundleValues.microUnits(JSONNumber(text)!).get() == micro, "\(text)")
        }
        #expect(BundleValues.milliseconds("1500ms") == 1500 && BundleValues.milliseconds("2h") == 7_200_000)
        #expect(BundleValues.milliseconds("01m") == nil && BundleValues.milliseconds("1.5s") == nil)
        #expect(BundleValues.durationText(90_000) == "90s" && BundleValues.durationText(86_400_000) == "1d")
        #expect(BundleValues.bytes("64KiB") == 65_536 && BundleValues.bytes("1MiB") == 1_048_576)
        #expect(BundleValues.bytes("64kb") == nil)
    }
}
