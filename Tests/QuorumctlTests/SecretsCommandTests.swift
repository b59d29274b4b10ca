import Foundation
import QuorumCrypto
import QuorumTestKit
import Testing

/// `quorumctl secrets set|list` run as real processes: the value never appears in the record, on
/// stdout or on stderr; the record is 0600 and opens, from the documented format alone, with k
/// decryption shares to the value, and only under its own name and group.
@Suite("quorumctl secrets", .serialized, .timeLimit(.minutes(5)))
struct SecretsCommandTests {
    static let value = "sk-test-VALUE-0123456789abcdef"
    static let bundle = TestKit.packageRoot.appendingPathComponent("cluster/policies/assistant.yaml")

    /// The associated data docs/operations.md documents for a credential box.
    static func associatedData(name: String, key: [UInt8]) -> [UInt8] {
        Array("quorum-latch sealed credential v1".utf8) + [0] + [
            UInt8(name.utf8.count >> 8), UInt8(name.utf8.count & 0xFF),
        ]
            + Array(name.utf8) + [UInt8(key.count >> 8), UInt8(key.count & 0xFF)] + key
    }

    /// Opens the record file with nodes 1–3's sealing shares under `keys`, binding `name`.
    static func open(_ ws: Workspace, record: String, name: String, keys: String = "keys") throws -> String {
        let object = try #require(try JSONSerialization.jsonObject(with: ws.read(record)) as? [String: Any])
        let boxHex = try #require(object["sealed_box"] as? String)
        let box = SealedBox(bytes: try #require(Hex.decode(boxHex)))
        let group = try KeyFiles.decodeGroup(
            try KeyFiles.readFile(ws.path("\(keys)/sealing-group.json")), as: Ed25519Suite.self, file: "sealing")
        let shares = try (1...3).map { node in
            let key = try KeyFiles.decodeShare(
                try KeyFiles.readSecretFile(ws.path("\(keys)/node-\(node)/sealing-share.json")),
                as: Ed25519Suite.self, file: "share")
            return try ThresholdSealing<Ed25519Suite>.decryptionShare(for: box, key: key)
        }
        let keyHex = try #require(object["sealing_group_key"] as? String)
        let key = try #require(Hex.decode(keyHex))
        let plaintext = try ThresholdSealing<Ed25519Suite>.open(
            box, shares: shares, group: group, associatedData: Self.associatedData(name: name, key: key))
        return String(decoding: plaintext.copyBytes(), as: UTF8.self)
    }

    /// No output of any run and no file under the proxy directory holds the value (or its hex).
    static func expectValueNowhere(_ ws: Workspace, _ value: String = value) throws {
        for run in ws.runs {
            #expect(!run.stdout.contains(value) && !run.stderr.contains(value), "a run printed the value")
        }
        let proxy = URL(fileURLWithPath: ws.path("proxy"))
        let walker = FileManager.default.enumerator(atPath: proxy.path)
        for case let file as String in walker?.allObjects ?? [] {
            var isDirectory: ObjCBool = false
            let path = proxy.appendingPathComponent(file).path
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue
            else { continue }
            let contents = try Data(contentsOf: URL(fileURLWithPath: path))
            #expect(contents.range(of: Data(value.utf8)) == nil, "\(file) holds the value")
            #expect(
                String(decoding: contents, as: UTF8.self).range(of: Hex.encode(Array(value.utf8))) == nil,
                "\(file) holds the value in hex")
        }
    }

    func set(
        _ ws: Workspace, _ name: String, valueFile: String = "value.txt", _ extra: [String] = [], stdin: String = ""
    ) async throws -> TestKit.ProcessOutput {
        try await ws.quorumctl(
            [
                "secrets", "set", name, "--value-file", valueFile == "-" ? "-" : ws.path(valueFile),
                "--sealing-group", ws.path("keys/sealing-group.json"), "--proxy-dir", ws.path("proxy"),
            ] + extra, stdin: Array(stdin.utf8))
    }

    @Test("set seals the value into a 0600 record that opens with 3 of 4 shares, under its name and group only")
    func setSealsAndOpens() async throws {
        try await Workspace.with { ws in
            try await ws.keygen("keys")
            try await ws.keygen("other")
            try ws.write("value.txt", Self.value + "\n")
            let run = try await set(ws, "openai")
            #expect(run.status == 0, "\(run)")
            let record = "proxy/credentials/openai.json"
            #expect(run.stdout.contains("sealed secret 'openai' to the 3-of-4 sealing group"))
            #expect(run.stdout.contains(ws.path(record) + " (0600)"))
            #expect(try mode(ws.path(record)) == 0o600)
            #expect(try mode(ws.path("proxy/credentials")) == 0o700)

            let object = try #require(try JSONSerialization.jsonObject(with: ws.read(record)) as? [String: Any])
            #expect(Set(object.keys) == ["created", "format", "name", "sealed_box", "sealing_group_key"])
            #expect(object["format"] as? String == "quorum-latch/sealed-credential/v1")
            #expect(object["name"] as? String == "openai")
            let sealing = try #require(
                try JSONSerialization.jsonObject(with: ws.read("keys/sealing-group.json")) as? [String: Any])
            #expect(object["sealing_group_key"] as? String == sealing["group_public_key"] as? String)

            // The trailing newline was dropped; the value comes back exactly.
            #expect(try Self.open(ws, record: record, name: "openai") == Self.value)
            // Another name, or another group's shares, do not open it.
            #expect(throws: CryptoError.self) { try Self.open(ws, record: record, name: "github") }
            #expect(throws: (any Error).self) { try Self.open(ws, record: record, name: "openai", keys: "other") }
            try Self.expectValueNowhere(ws)
        }
    }

    @Test("stdin values, --replace, and refusals: existing name, empty value, bad name, signing group")
    func setRefusals() async throws {
        try await Workspace.with { ws in
            try await ws.keygen("keys")
            try ws.write("value.txt", Self.value)
            #expect(try await set(ws, "openai").status == 0)
            let before = try ws.read("proxy/credentials/openai.json")

            let again = try await set(ws, "openai")
            #expect(again.status == 2)
            #expect(isOneLineError(again), "\(again)")
            #expect(again.stderr.contains("secret 'openai' already exists; pass --replace to replace it"))
            #expect(try ws.read("proxy/credentials/openai.json") == before)

            let replaced = try await set(ws, "openai", valueFile: "-", ["--replace"], stdin: "second-value\r\n")
            #expect(replaced.status == 0, "\(replaced)")
            #expect(try ws.read("proxy/credentials/openai.json") != before)
            #expect(try Self.open(ws, record: "proxy/credentials/openai.json", name: "openai") == "second-value")

            try ws.write("empty.txt", "\n")
            let empty = try await set(ws, "blank", valueFile: "empty.txt")
            #expect(empty.status == 2)
            #expect(empty.stderr.contains("\(ws.path("empty.txt")): the value is empty"), "\(empty)")
            #expect(!FileManager.default.fileExists(atPath: ws.path("proxy/credentials/blank.json")))

            for bad in ["../escape", "a/b", "", String(repeating: "x", count: 65), "sp ace"] {
                let run = try await set(ws, bad)
                #expect(run.status == 2, "\(bad): \(run)")
                #expect(run.stderr.contains("not a valid secret name; expected 1-64 of letters"), "\(bad): \(run)")
            }

            let signing = try await ws.quorumctl(
                "secrets", "set", "x", "--value-file", ws.path("value.txt"), "--sealing-group",
                ws.path("keys/group.json"), "--proxy-dir", ws.path("proxy"))
            #expect(signing.status == 2)
            #expect(signing.stderr.contains("is the signing group; secrets set needs the sealing group"), "\(signing)")

            let entries = try FileManager.default.contentsOfDirectory(atPath: ws.path("proxy/credentials"))
            #expect(entries == ["openai.json"], "leftover files: \(entries)")
            try Self.expectValueNowhere(ws)
            try Self.expectValueNowhere(ws, "second-value")
        }
    }

    @Test("list shows names, sealing key, created and the mounts using each, never values")
    func list() async throws {
        try await Workspace.with { ws in
            try await ws.keygen("keys")
            try ws.write("value.txt", Self.value)
            let proxy = ws.path("proxy")

            let none = try await ws.quorumctl("secrets", "list", "--proxy-dir", proxy, "--bundle", Self.bundle.path)
            #expect(none.status == 0, "\(none)")
            #expect(none.stdout.contains("no sealed credentials in \(proxy)/credentials"))
            #expect(
                none.stdout.contains(
                    "missing: secret 'openai' is in the bundle but not sealed in \(proxy)/credentials "
                        + "(used by assistant:/openai, assistant-ci:/openai)"), "\(none)")

            #expect(try await set(ws, "openai").status == 0)
            #expect(try await set(ws, "github").status == 0)
            let plain = try await ws.quorumctl("secrets", "list", "--proxy-dir", proxy)
            #expect(plain.status == 0, "\(plain)")
            let sealing = try #require(
                try JSONSerialization.jsonObject(with: ws.read("keys/sealing-group.json")) as? [String: Any])
            let fingerprint = String(try #require(sealing["group_public_key"] as? String).prefix(16))
            let lines = plain.stdoutLines
            #expect(lines.count == 3, "\(plain)")
            #expect(lines.first?.hasPrefix("NAME    SEALING KEY       CREATED") == true, "\(plain)")
            #expect(lines[1].hasPrefix("github  \(fingerprint)  20"), "\(plain)")
            #expect(lines[1].hasSuffix("Z  -"), "\(plain)")
            #expect(lines[2].hasPrefix("openai  \(fingerprint)  20"), "\(plain)")

            let used = try await ws.quorumctl("secrets", "list", "--proxy-dir", proxy, "--bundle", Self.bundle.path)
            #expect(used.status == 0, "\(used)")
            #expect(used.stdoutLines.contains { $0.hasPrefix("github") && $0.hasSuffix("(not in the bundle)") })
            #expect(
                used.stdoutLines.contains {
                    $0.hasPrefix("openai") && $0.hasSuffix("assistant:/openai, assistant-ci:/openai")
                },
                "\(used)")
            #expect(!used.stdout.contains("missing:"))
            try Self.expectValueNowhere(ws)
        }
    }

    @Test("malformed or moved records are refused naming their file")
    func malformedRecords() async throws {
        try await Workspace.with { ws in
            try await ws.keygen("keys")
            try ws.write("value.txt", Self.value)
            #expect(try await set(ws, "openai").status == 0)
            let proxy = ws.path("proxy")

            // A record copied under another name does not pass for that name.
            try FileManager.default.copyItem(
                atPath: ws.path("proxy/credentials/openai.json"), toPath: ws.path("proxy/credentials/github.json"))
            let moved = try await ws.quorumctl("secrets", "list", "--proxy-dir", proxy)
            #expect(moved.status == 2)
            #expect(isOneLineError(moved), "\(moved)")
            #expect(
                moved.stderr.contains(
                    "\(proxy)/credentials/github.json: field 'name': is 'openai' but the file is named for 'github'"),
                "\(moved)")
            try FileManager.default.removeItem(atPath: ws.path("proxy/credentials/github.json"))

            for (contents, field) in [
                ("not json", "not a sealed credential record"),
                (
                    #"{"format":"quorum-latch/sealed-credential/v1","name":"broken"}"#,
                    "field 'sealing_group_key': missing"
                ),
            ] {
                try ws.write("proxy/credentials/broken.json", contents)
                let run = try await ws.quorumctl("secrets", "list", "--proxy-dir", proxy)
                #expect(run.status == 2)
                #expect(run.stderr.contains("\(proxy)/credentials/broken.json: \(field)"), "\(run)")
            }
            // A leftover temporary file of an interrupted write is not a record.
            try FileManager.default.removeItem(atPath: ws.path("proxy/credentials/broken.json"))
            try ws.write("proxy/credentials/openai.json.tmp-123", "partial")
            let listed = try await ws.quorumctl("secrets", "list", "--proxy-dir", proxy)
            #expect(listed.status == 0, "\(listed)")
            #expect(listed.stdoutLines.count == 2)
        }
    }
}
