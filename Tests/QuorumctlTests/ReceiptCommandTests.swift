import Foundation
import QuorumCrypto
import QuorumTestKit
import Testing

/// `quorumctl receipt verify` run as a real process on receipts made here from the documented
/// format alone (docs/receipts.md): header and canonical claims written out by hand, signed 3-of-4
/// with the share files a dealer keygen wrote.
@Suite("quorumctl receipt", .serialized, .timeLimit(.minutes(5)))
struct ReceiptCommandTests {
    static let claims =
        #"{"body_sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","bundle":"","#
        + #""decision":"allow","iat":1764000000,"iss":"quorum-latch","jti":"req-cli-1","latch":"assistant","#
        + #""method":"POST","mount":"/openai","path":"/openai/v1/chat/completions","reasons":[],"signers":[1,2,3]}"#

    static func b64(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// A compact receipt over `claims`, signed by nodes 1–3 of the keys under `keys`.
    static func receipt(_ ws: Workspace, keys: String = "keys", claims: String = claims) throws -> String {
        let group = try KeyFiles.decodeGroup(
            try KeyFiles.readFile(ws.path("\(keys)/group.json")), as: Ed25519Suite.self, file: "group.json")
        let shares = try (1...3).map { node in
            try KeyFiles.decodeShare(
                try KeyFiles.readSecretFile(ws.path("\(keys)/node-\(node)/signing-share.json")),
                as: Ed25519Suite.self, file: "share")
        }
        let kid = Hex.encode(try group.verifyingKey.serialized())
        let header = #"{"alg":"EdDSA","kid":"\#(kid)","typ":"JWT"}"#
        let input = b64(Array(header.utf8)) + "." + b64(Array(claims.utf8))
        let signature = try SigningHelpers.sign(Array(input.utf8), keys: shares, group: group)
        return input + "." + b64(signature.bytes)
    }

    /// The JSON after the verdict line(s) of a verify run.
    static func printedClaims(_ output: TestKit.ProcessOutput) throws -> [String: Any] {
        let json = try #require(output.stdout.firstIndex(of: "{"))
        let object = try JSONSerialization.jsonObject(with: Data(output.stdout[json...].utf8))
        return try #require(object as? [String: Any])
    }

    @Test("a valid receipt, given inline, as @FILE or on stdin with whitespace around it, exits 0 with its claims")
    func valid() async throws {
        try await Workspace.with { ws in
            try await ws.keygen("keys")
            let receipt = try Self.receipt(ws)
            try ws.write("receipt.txt", "\n  \(receipt)\n\n")
            for (arguments, stdin) in [
                ([receipt], ""), (["@" + ws.path("receipt.txt")], ""), (["-"], "\t\(receipt)\r\n"),
            ] {
                let run = try await ws.quorumctl(
                    ["receipt", "verify"] + arguments + ["--group", ws.path("keys/group.json")],
                    stdin: Array(stdin.utf8))
                #expect(run.status == 0, "\(run)")
                let first = run.stdoutLines.first ?? ""
                #expect(first.hasPrefix("valid: allow of request req-cli-1, signed by the 3-of-4 group "), "\(first)")
                #expect(first.hasSuffix("(nodes 1, 2, 3)"))
                let claims = try Self.printedClaims(run)
                #expect(claims["decision"] as? String == "allow")
                #expect(claims["signers"] as? [Int] == [1, 2, 3])
                #expect(claims["path"] as? String == "/openai/v1/chat/completions")
                #expect(claims["iat"] as? Int == 1_764_000_000)
                #expect(run.stdout.contains("\n  \"signers\": [1, 2, 3]\n"))
                #expect(run.stderr.isEmpty)
            }
        }
    }

    @Test("a tampered receipt exits 1 and prints its claims marked UNVERIFIED")
    func tampered() async throws {
        try await Workspace.with { ws in
            try await ws.keygen("keys")
            let parts = try Self.receipt(ws).split(separator: ".").map(String.init)
            let forged = Self.claims.replacingOccurrences(of: "\"allow\"", with: "\"deny\"")
            let compact = parts[0] + "." + Self.b64(Array(forged.utf8)) + "." + parts[2]
            let run = try await ws.quorumctl("receipt", "verify", compact, "--group", ws.path("keys/group.json"))
            #expect(run.status == 1, "\(run)")
            #expect(run.stdoutLines.first?.hasPrefix("invalid: invalid-signature: signature: does not verify") == true)
            #expect(run.stdout.contains("UNVERIFIED"))
            #expect(try Self.printedClaims(run)["decision"] as? String == "deny")

            // A receipt of another quorum: it names another key.
            try await ws.keygen("other")
            let foreign = try Self.receipt(ws, keys: "other")
            let mismatch = try await ws.quorumctl("receipt", "verify", foreign, "--group", ws.path("keys/group.json"))
            #expect(mismatch.status == 1, "\(mismatch)")
            #expect(mismatch.stdoutLines.first?.hasPrefix("invalid: key-mismatch: header.kid:") == true)
            #expect(mismatch.stdout.contains("UNVERIFIED"))
        }
    }

    @Test("malformed input and unusable files exit 2 with one line naming what was wrong")
    func refusals() async throws {
        try await Workspace.with { ws in
            try await ws.keygen("keys")
            let group = ws.path("keys/group.json")
            let parts = try Self.receipt(ws).split(separator: ".").map(String.init)
            let kid = try #require(
                (try JSONSerialization.jsonObject(with: ws.read("keys/group.json")) as? [String: Any])?[
                    "group_public_key"] as? String)
            let none = Self.b64(Array(#"{"alg":"none","kid":"\#(kid)","typ":"JWT"}"#.utf8))
            let cases: [([String], String)] = [
                (
                    ["receipt", "verify", none + "." + parts[1] + "." + parts[2], "--group", group],
                    "RECEIPT: not a valid receipt: unsupported-algorithm: header.alg:"
                ),
                (
                    ["receipt", "verify", parts[0] + "." + parts[1], "--group", group],
                    "RECEIPT: not a valid receipt: segment-count: receipt:"
                ),
                (
                    ["receipt", "verify", parts[0] + "." + parts[1] + "=." + parts[2], "--group", group],
                    "RECEIPT: not a valid receipt: invalid-base64url: claims:"
                ),
                (
                    ["receipt", "verify", "@" + ws.path("absent.txt"), "--group", group],
                    "\(ws.path("absent.txt")): cannot open the receipt:"
                ),
                (
                    ["receipt", "verify", parts.joined(separator: "."), "--group", ws.path("keys/sealing-group.json")],
                    "\(ws.path("keys/sealing-group.json")): is the sealing group; receipt verify needs the signing group"
                ),
                (
                    ["receipt", "verify", parts.joined(separator: "."), "--group", ws.path("absent.json")],
                    "\(ws.path("absent.json")): cannot open"
                ),
                (["receipt", "verify", "   ", "--group", group], "RECEIPT: empty"),
            ]
            for (arguments, message) in cases {
                let run = try await ws.quorumctl(arguments)
                #expect(run.status == 2, "\(run)")
                #expect(isOneLineError(run), "\(run)")
                #expect(run.stderr.contains("quorumctl: error: " + message), "\(run.stderr)")
                #expect(run.stdout.isEmpty)
            }
        }
    }

    @Test("a secp256k1 group is refused: receipts are EdDSA")
    func secp256k1Group() async throws {
        try await Workspace.with { ws in
            try await ws.keygen("keys")
            try await ws.keygen("k1", suite: "secp256k1")
            let run = try await ws.quorumctl(
                "receipt", "verify", try Self.receipt(ws), "--group", ws.path("k1/group.json"))
            #expect(run.status == 2)
            #expect(run.stderr.contains("receipts are EdDSA JWS signed by an Ed25519 signing group"), "\(run)")
        }
    }
}
