import CSodium
import Foundation
import QuorumCrypto
import QuorumTestKit
import Testing

/// quorumctl run as a real process: exit status, files, and what it prints.
@Suite("quorumctl", .serialized, .timeLimit(.minutes(5)))
struct QuorumctlTests {
    static let suites = ["ed25519", "secp256k1"]

    // MARK: keygen

    @Test("dealer keygen 3-of-4 writes the documented files with private modes", arguments: suites)
    func keygenWritesFiles(suite: String) async throws {
        try await Workspace.with { ws in
            try await ws.keygen("keys", suite: suite)
            let id = try #require(CiphersuiteID(shortName: suite))
            let summary = ws.runs[0].stdout
            #expect(summary.contains("3-of-4"))
            #expect(summary.contains("tolerates f = 1"))

            var keys: [String: String] = [:]
            for (file, purpose) in [("keys/group.json", "signing"), ("keys/sealing-group.json", "sealing")] {
                #expect(try mode(ws.path(file)) == 0o644)
                let group = try #require(try JSONSerialization.jsonObject(with: ws.read(file)) as? [String: Any])
                #expect(group["ciphersuite"] as? String == id.rawValue)
                #expect(group["purpose"] as? String == purpose)
                #expect(group["threshold"] as? Int == 3)
                #expect(group["participants"] as? Int == 4)
                let key = try #require(group["group_public_key"] as? String)
                #expect(Hex.decode(key)?.count == (id == .ed25519 ? 32 : 33))
                #expect((group["verifying_shares"] as? [String: String]).map { Set($0.keys) } == ["1", "2", "3", "4"])
                let commitment = try #require(group["vss_commitment"] as? [String])
                #expect(commitment.count == 3)
                #expect(commitment.first == key)
                #expect(summary.contains(key))
                keys[purpose] = key
            }
            #expect(keys["signing"] != keys["sealing"], "signing and sealing keys must be separate keys")

            for node in 1...4 {
                #expect(try mode(ws.path("keys/node-\(node)")) == 0o700)
                for file in ["signing-share.json", "sealing-share.json"] {
                    let path = ws.path("keys/node-\(node)/\(file)")
                    #expect(try mode(path) == 0o600, "\(path)")
                    #expect(summary.contains(path))
                }
            }
            // The files decode with the library and the shares belong to their groups.
            try checkFilesDecode(suiteType(id), ws)
        }
    }

    private func checkFilesDecode<C: Ciphersuite>(_: C.Type, _ ws: Workspace) throws {
        for (groupFile, shareFile) in [
            ("group.json", "signing-share.json"), ("sealing-group.json", "sealing-share.json"),
        ] {
            let group = try KeyFiles.decodeGroup(
                try KeyFiles.readFile(ws.path("keys/\(groupFile)")), as: C.self, file: groupFile)
            for node in 1...4 {
                let path = ws.path("keys/node-\(node)/\(shareFile)")
                let key = try KeyFiles.decodeShare(try KeyFiles.readSecretFile(path), as: C.self, file: path)
                try key.check(against: group)
                #expect(key.identifier.value == UInt16(node))
            }
        }
    }

    @Test(
        "keygen refuses parameters that tolerate no faulty node, and impossible thresholds",
        arguments: [
            (2, 3, "2-of-3 tolerates no faulty node"),
            (2, 4, "2-of-4 is unsafe even with no faulty node"),
            (3, 3, "liveness"),
            (1, 3, "below the minimum of 2"),
            (0, 4, "below the minimum of 2"),
            (5, 4, "larger than the 4 nodes"),
            (3, 256, "more than the supported 255"),
        ])
    func keygenRefuses(threshold: Int, nodes: Int, expected: String) async throws {
        try await Workspace.with { ws in
            let result = try await ws.quorumctl(
                "keygen", "--dealer", "--threshold", "\(threshold)", "--nodes", "\(nodes)", "--out", ws.path("keys"))
            #expect(result.status == 2)
            #expect(isOneLineError(result), "\(result)")
            #expect(result.stderr.contains(expected), "\(result)")
            #expect(!FileManager.default.fileExists(atPath: ws.path("keys/group.json")))
        }
    }

    @Test("keygen with --allow-unsafe accepts 2-of-3 and warns")
    func keygenAllowsWeakWithFlag() async throws {
        try await Workspace.with { ws in
            let result = try await ws.quorumctl(
                "keygen", "--dealer", "--threshold", "2", "--nodes", "3", "--out", ws.path("keys"),
                "--allow-unsafe")
            #expect(result.status == 0, "\(result)")
            #expect(result.stderr.contains("warning"))
            #expect(FileManager.default.fileExists(atPath: ws.path("keys/node-3/signing-share.json")))
        }
    }

    @Test("keygen without --dealer explains that the ceremony needs a cluster")
    func keygenWithoutDealer() async throws {
        try await Workspace.with { ws in
            let result = try await ws.quorumctl("keygen", "--threshold", "3", "--nodes", "4", "--out", ws.path("keys"))
            #expect(result.status == 2)
            #expect(isOneLineError(result))
            #expect(result.stderr.contains("running cluster"))
            #expect(result.stderr.contains("--dealer"))
        }
    }

    @Test("keygen refuses to overwrite group.json without --force")
    func keygenRefusesOverwrite() async throws {
        try await Workspace.with { ws in
            try await ws.keygen("keys")
            let before = try ws.read("keys/group.json")
            let refused = try await ws.quorumctl(
                "keygen", "--dealer", "--threshold", "3", "--nodes", "4", "--out", ws.path("keys"))
            #expect(refused.status == 2)
            #expect(refused.stderr.contains(ws.path("keys/group.json")))
            #expect(refused.stderr.contains("--force"))
            #expect(try ws.read("keys/group.json") == before)

            let forced = try await ws.quorumctl(
                "keygen", "--dealer", "--threshold", "3", "--nodes", "4", "--out", ws.path("keys"), "--force")
            #expect(forced.status == 0)
            #expect(try ws.read("keys/group.json") != before)
        }
    }

    // MARK: frost sign and verify

    @Test("sign with 3 of 4 shares, verify with quorumctl, in process and (Ed25519) with libsodium", arguments: suites)
    func signAndVerify(suite: String) async throws {
        try await Workspace.with { ws in
            try await ws.keygen("keys", suite: suite)
            let message = "allow: POST /openai/v1/chat/completions request 7f3a"
            try ws.write("message", message)
            let signed = try await ws.quorumctl(
                "frost", "sign", "--group", ws.path("keys/group.json"), "--share",
                ws.path("keys/node-4/signing-share.json"),
                "--share", ws.path("keys/node-1/signing-share.json"), "--share",
                ws.path("keys/node-2/signing-share.json"),
                "--message-file", ws.path("message"))
            try #require(signed.status == 0, "\(signed)")
            let hex = try #require(signed.stdoutLines.last)
            let signature = try #require(Hex.decode(hex))

            let verified = try await ws.quorumctl(
                "frost", "verify", "--group", ws.path("keys/group.json"), "--message-file", ws.path("message"),
                "--signature", hex)
            #expect(verified.status == 0, "\(verified)")
            #expect(verified.stdoutLines == ["valid"])

            let id = try #require(CiphersuiteID(shortName: suite))
            #expect(try verifiesInProcess(suiteType(id), signature, Array(message.utf8), ws.path("keys/group.json")))
            if id == .ed25519 {
                let key = try groupKey(ws.path("keys/group.json"))
                #expect(sodium_init() >= 0)
                let status = crypto_sign_verify_detached(signature, message, UInt64(message.utf8.count), key)
                #expect(status == 0, "libsodium rejects the FROST(Ed25519) signature")
            }

            // A tampered message, and a tampered signature, do not verify: exit 1.
            try ws.write("tampered", message + ".")
            let tampered = try await ws.quorumctl(
                "frost", "verify", "--group", ws.path("keys/group.json"), "--message-file", ws.path("tampered"),
                "--signature", hex)
            #expect(tampered.status == 1, "\(tampered)")
            #expect(tampered.stdoutLines == ["invalid"])
            var flipped = signature
            flipped[flipped.count - 5] ^= 0x01
            let badSignature = try await ws.quorumctl(
                "frost", "verify", "--group", ws.path("keys/group.json"), "--message-file", ws.path("message"),
                "--signature", Hex.encode(flipped))
            #expect(badSignature.status == 1, "\(badSignature)")
        }
    }

    private func verifiesInProcess<C: Ciphersuite>(
        _: C.Type, _ signature: [UInt8], _ message: [UInt8], _ path: String
    ) throws -> Bool {
        let group = try KeyFiles.decodeGroup(try KeyFiles.readFile(path), as: C.self, file: path)
        return C.verifySignature(signature, message: message, publicKey: group.verifyingKey)
    }

    private func groupKey(_ path: String) throws -> [UInt8] {
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        return try #require((object["group_public_key"] as? String).flatMap(Hex.decode))
    }

    @Test("sign with all 4 shares of a 3-of-4 group also works")
    func signWithAllShares() async throws {
        try await Workspace.with { ws in
            try await ws.keygen("keys")
            try ws.write("message", "checkpoint 42")
            let signed = try await ws.quorumctl(
                ["frost", "sign", "--group", ws.path("keys/group.json"), "--message-file", ws.path("message")]
                    + (1...4).flatMap { ["--share", ws.path("keys/node-\($0)/signing-share.json")] })
            try #require(signed.status == 0, "\(signed)")
            let verified = try await ws.quorumctl(
                "frost", "verify", "--group", ws.path("keys/group.json"), "--message-file", ws.path("message"),
                "--signature", try #require(signed.stdoutLines.last))
            #expect(verified.status == 0)
        }
    }

    @Test("verify refuses bad input with exit 2")
    func verifyBadInput() async throws {
        try await Workspace.with { ws in
            try await ws.keygen("keys")
            try ws.write("message", "hello")
            let group = ws.path("keys/group.json")
            let valid = String(repeating: "ab", count: 64)
            let cases: [([String], String)] = [
                (["--group", group, "--message-file", ws.path("message"), "--signature", "not-hex!"], "not hex"),
                (["--group", group, "--message-file", ws.path("message"), "--signature", "abcd"], "2 bytes"),
                (["--group", group, "--message-file", ws.path("absent"), "--signature", valid], ws.path("absent")),
                (
                    ["--group", ws.path("absent.json"), "--message-file", ws.path("message"), "--signature", valid],
                    ws.path("absent.json")
                ),
                (
                    [
                        "--group", ws.path("keys/sealing-group.json"), "--message-file", ws.path("message"),
                        "--signature", valid,
                    ], "sealing group"
                ),
                (
                    ["--group", ws.path("message"), "--message-file", ws.path("message"), "--signature", valid],
                    ws.path("message")
                ),
            ]
            for (arguments, expected) in cases {
                let result = try await ws.quorumctl(["frost", "verify"] + arguments)
                #expect(result.status == 2, "\(arguments): \(result)")
                #expect(isOneLineError(result), "\(result)")
                #expect(result.stderr.contains(expected), "\(result)")
                #expect(result.stdout.isEmpty)
            }
        }
    }

    @Test("usage errors exit 2, not argument-parser's 64; --help exits 0")
    func usageErrors() async throws {
        try await Workspace.with { ws in
            for arguments in [["frost", "verify", "--group", "g.json"], ["frost", "sign", "--bogus"], ["nonsense"]] {
                let result = try await ws.quorumctl(arguments)
                #expect(result.status == 2, "\(arguments): \(result)")
                #expect(result.stderrLines.first?.hasPrefix("quorumctl: error: ") == true, "\(result)")
            }
            let help = try await ws.quorumctl("frost", "sign", "--help")
            #expect(help.status == 0)
            #expect(help.stdout.contains("--message-file"))
        }
    }

    @Test("sign with 2 shares of a 3-of-4 group names the threshold")
    func signTooFewShares() async throws {
        try await Workspace.with { ws in
            try await ws.keygen("keys")
            try ws.write("message", "hello")
            let result = try await ws.quorumctl(
                "frost", "sign", "--group", ws.path("keys/group.json"), "--share",
                ws.path("keys/node-1/signing-share.json"),
                "--share", ws.path("keys/node-2/signing-share.json"), "--message-file", ws.path("message"))
            #expect(result.status == 2)
            #expect(isOneLineError(result), "\(result)")
            #expect(result.stderr.contains("too few shares: 2 given"), "\(result)")
            #expect(result.stderr.contains("threshold"), "\(result)")
            #expect(result.stdout.isEmpty)
        }
    }

    @Test("the same participant's share twice is refused, naming the duplicate file")
    func signDuplicateShare() async throws {
        try await Workspace.with { ws in
            try await ws.keygen("keys")
            try ws.write("message", "hello")
            // The same file twice, and a copy of it under another name.
            try FileManager.default.copyItem(
                atPath: ws.path("keys/node-2/signing-share.json"), toPath: ws.path("copy.json"))
            for (second, named) in [
                ("keys/node-2/signing-share.json", "keys/node-2/signing-share.json"), ("copy.json", "copy.json"),
            ] {
                let result = try await ws.quorumctl(
                    "frost", "sign", "--group", ws.path("keys/group.json"),
                    "--share", ws.path("keys/node-2/signing-share.json"), "--share", ws.path(second),
                    "--share", ws.path("keys/node-3/signing-share.json"), "--message-file", ws.path("message"))
                #expect(result.status == 2)
                #expect(isOneLineError(result), "\(result)")
                #expect(result.stderr.contains("duplicate share"), "\(result)")
                #expect(result.stderr.contains("participant 2"), "\(result)")
                #expect(result.stderr.contains("quorumctl: error: \(ws.path(named)):"), "\(result)")
            }
        }
    }

    @Test("a share of another keygen, or the sealing key, is refused naming the file")
    func signForeignShare() async throws {
        try await Workspace.with { ws in
            try await ws.keygen("keys")
            try await ws.keygen("other")
            try await ws.keygen("secp", suite: "secp256k1")
            try ws.write("message", "hello")
            let cases = [
                ("other/node-3/signing-share.json", "belongs to another group"),
                ("keys/node-3/sealing-share.json", "sealing"),
                ("secp/node-3/signing-share.json", "ciphersuite"),
            ]
            for (foreign, expected) in cases {
                let result = try await signWithOneBadShare(ws, foreign)
                #expect(result.status == 2, "\(foreign): \(result)")
                #expect(isOneLineError(result), "\(result)")
                #expect(result.stderr.contains(ws.path(foreign)), "\(result)")
                #expect(result.stderr.contains(expected), "\(result)")
            }
        }
    }

    /// `frost sign` with the good shares of nodes 1 and 2 of `keys/` and `bad` in between.
    private func signWithOneBadShare(_ ws: Workspace, _ bad: String) async throws -> TestKit.ProcessOutput {
        try await ws.quorumctl(
            "frost", "sign", "--group", ws.path("keys/group.json"),
            "--share", ws.path("keys/node-1/signing-share.json"), "--share", ws.path(bad),
            "--share", ws.path("keys/node-2/signing-share.json"), "--message-file", ws.path("message"))
    }

    @Test("unreadable or malformed share files are refused naming the file")
    func signMalformedShare() async throws {
        try await Workspace.with { ws in
            try await ws.keygen("keys")
            try ws.write("message", "hello")
            let good = String(decoding: try ws.read("keys/node-3/signing-share.json"), as: UTF8.self)
            let secretStart = try #require(good.range(of: "\"signing_share\": \"")).upperBound
            var altered = good
            // A different (still canonical) scalar: the share no longer matches its verifying share.
            // (The first byte is the least significant, so the scalar stays canonical; the
            // replacement always differs from the original byte.)
            let firstByte = secretStart..<good.index(secretStart, offsetBy: 2)
            altered.replaceSubrange(firstByte, with: good[firstByte] == "00" ? "01" : "00")
            try ws.write("altered.json", altered)
            try ws.write("truncated.json", String(good.prefix(good.count / 2)))
            try ws.write("empty.json", "")
            try ws.write("no-secret.json", good.replacingOccurrences(of: "signing_share", with: "other_field"))
            try FileManager.default.createDirectory(atPath: ws.path("a-directory"), withIntermediateDirectories: false)
            let cases = [
                ("absent.json", "cannot open"), ("a-directory", "cannot"), ("truncated.json", "not valid JSON"),
                ("empty.json", "not valid JSON"), ("no-secret.json", "signing_share"),
                ("altered.json", "verifying_share"),
            ]
            for (file, expected) in cases {
                let result = try await signWithOneBadShare(ws, file)
                #expect(result.status == 2, "\(file): \(result)")
                #expect(isOneLineError(result), "\(result)")
                #expect(result.stderr.contains("quorumctl: error: \(ws.path(file)):"), "\(result)")
                #expect(result.stderr.contains(expected), "\(file): \(result)")
            }
            // The altered file's secret is no share's secret; it must not be printed either.
            let alteredSecret = String(altered[secretStart...].prefix(64))
            #expect(!ws.runs.contains { $0.stderr.contains(alteredSecret) || $0.stdout.contains(alteredSecret) })
        }
    }

    @Test("frost sign refuses a missing message file and the sealing group")
    func signBadGroupOrMessage() async throws {
        try await Workspace.with { ws in
            try await ws.keygen("keys")
            let shares = (1...3).flatMap { ["--share", ws.path("keys/node-\($0)/signing-share.json")] }
            let missing = try await ws.quorumctl(
                ["frost", "sign", "--group", ws.path("keys/group.json"), "--message-file", ws.path("absent")] + shares)
            #expect(missing.status == 2)
            #expect(isOneLineError(missing))
            #expect(missing.stderr.contains(ws.path("absent")))

            try ws.write("message", "hello")
            let sealing = try await ws.quorumctl(
                ["frost", "sign", "--group", ws.path("keys/sealing-group.json"), "--message-file", ws.path("message")]
                    + (1...3).flatMap { ["--share", ws.path("keys/node-\($0)/sealing-share.json")] })
            #expect(sealing.status == 2)
            #expect(isOneLineError(sealing))
            #expect(sealing.stderr.contains("sealing group"), "\(sealing)")
        }
    }

    // MARK: seal and unseal

    @Test("seal then unseal with 3 of 4 shares returns the credential", arguments: suites)
    func sealRoundTrip(suite: String) async throws {
        try await Workspace.with { ws in
            try await ws.keygen("keys", suite: suite)
            let credential = "sk-live-\(UUID().uuidString)"
            try ws.write("credential", credential)
            let sealed = try await ws.quorumctl(
                "seal", "--group", ws.path("keys/sealing-group.json"), "--in", ws.path("credential"),
                "--out", ws.path("credential.sealed"), "--associated-data", "mount:openai")
            try #require(sealed.status == 0, "\(sealed)")
            #expect(!sealed.stdout.contains(credential))
            let box = try ws.read("credential.sealed")
            #expect(box.range(of: Data(credential.utf8)) == nil, "the sealed box holds the plaintext")

            let unsealArguments = [
                "unseal", "--group", ws.path("keys/sealing-group.json"), "--in", ws.path("credential.sealed"),
            ]
            let shares = [1, 3, 4].flatMap { ["--share", ws.path("keys/node-\($0)/sealing-share.json")] }
            let opened = try await ws.quorumctl(unsealArguments + shares + ["--associated-data", "mount:openai"])
            #expect(opened.status == 0, "\(opened)")
            #expect(opened.stdout == credential)

            // Other associated data does not open it.
            let wrongData = try await ws.quorumctl(unsealArguments + shares + ["--associated-data", "mount:github"])
            #expect(wrongData.status == 2)
            #expect(isOneLineError(wrongData), "\(wrongData)")
            #expect(!wrongData.stdout.contains(credential))

            // Plaintext from stdin.
            let piped = try await ws.quorumctl(
                "seal", "--group", ws.path("keys/sealing-group.json"), "--in", "-", "--out", ws.path("piped.sealed"),
                stdin: Array(credential.utf8))
            #expect(piped.status == 0, "\(piped)")
            let pipedOpened = try await ws.quorumctl(
                ["unseal", "--group", ws.path("keys/sealing-group.json"), "--in", ws.path("piped.sealed")] + shares)
            #expect(pipedOpened.stdout == credential)
        }
    }

    @Test("unseal refuses too few shares, signing keys, and seal refuses the signing group")
    func sealRefusals() async throws {
        try await Workspace.with { ws in
            try await ws.keygen("keys")
            try ws.write("credential", "sk-demo")
            let sealed = try await ws.quorumctl(
                "seal", "--group", ws.path("keys/sealing-group.json"), "--in", ws.path("credential"), "--out",
                ws.path("box"))
            try #require(sealed.status == 0)

            let tooFew = try await ws.quorumctl(
                "unseal", "--group", ws.path("keys/sealing-group.json"), "--in", ws.path("box"),
                "--share", ws.path("keys/node-1/sealing-share.json"), "--share",
                ws.path("keys/node-2/sealing-share.json"))
            #expect(tooFew.status == 2)
            #expect(isOneLineError(tooFew), "\(tooFew)")
            #expect(tooFew.stderr.contains("too few shares"))
            #expect(tooFew.stdout.isEmpty)

            let signingShares = try await ws.quorumctl(
                ["unseal", "--group", ws.path("keys/sealing-group.json"), "--in", ws.path("box")]
                    + (1...3).flatMap { ["--share", ws.path("keys/node-\($0)/signing-share.json")] })
            #expect(signingShares.status == 2)
            #expect(signingShares.stderr.contains(ws.path("keys/node-1/signing-share.json")), "\(signingShares)")

            let signingGroup = try await ws.quorumctl(
                ["unseal", "--group", ws.path("keys/group.json"), "--in", ws.path("box")]
                    + (1...3).flatMap { ["--share", ws.path("keys/node-\($0)/sealing-share.json")] })
            #expect(signingGroup.status == 2)
            #expect(signingGroup.stderr.contains("signing group"), "\(signingGroup)")

            let sealToSigning = try await ws.quorumctl(
                "seal", "--group", ws.path("keys/group.json"), "--in", ws.path("credential"), "--out", ws.path("box2"))
            #expect(sealToSigning.status == 2)
            #expect(isOneLineError(sealToSigning))
            #expect(!FileManager.default.fileExists(atPath: ws.path("box2")))

            let corrupt = try await ws.quorumctl(
                ["unseal", "--group", ws.path("keys/sealing-group.json"), "--in", ws.path("credential")]
                    + (1...3).flatMap { ["--share", ws.path("keys/node-\($0)/sealing-share.json")] })
            #expect(corrupt.status == 2)
            #expect(corrupt.stderr.contains(ws.path("credential")), "\(corrupt)")
        }
    }

    @Test("no output line of any command contains a share's secret")
    func noSecretsInOutput() async throws {
        try await Workspace.with { ws in
            try await ws.keygen("keys")
            try ws.write("message", "hello")
            let secrets = ws.shareSecrets()
            #expect(secrets.count == 8)
            let signing = (1...4).flatMap { ["--share", ws.path("keys/node-\($0)/signing-share.json")] }
            try await ws.quorumctl(
                ["frost", "sign", "--group", ws.path("keys/group.json"), "--message-file", ws.path("message")] + signing
            )
            try await ws.quorumctl(
                ["frost", "sign", "--group", ws.path("keys/sealing-group.json"), "--message-file", ws.path("message")]
                    + signing)
            try await ws.quorumctl(
                ["unseal", "--group", ws.path("keys/sealing-group.json"), "--in", ws.path("message")] + signing)
            // A share given as the group file, and a share file passed where a message goes.
            try await ws.quorumctl(
                "frost", "verify", "--group", ws.path("keys/node-1/signing-share.json"), "--message-file",
                ws.path("message"),
                "--signature", String(repeating: "00", count: 64))
            // Withholding the secret from output is checked by Workspace.with for every run above.
            #expect(ws.runs.count == 5)
        }
    }
}
