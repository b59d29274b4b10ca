import Crypto
import Foundation
import QuorumCrypto
import QuorumProtocol
import QuorumTestKit
import Testing

/// Receipts as docs/receipts.md specifies them: one canonical byte string per decision, signed by
/// a real FROST group, verifiable by any Ed25519 implementation, and parsed strictly.
@Suite("Receipts")
struct ReceiptTests {
    /// SHA-256 of the empty body.
    static let emptyBody = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    /// SHA-256 of "bundle".
    static let bundle = "1e6ed65d77d6364eeaed5a745ba5c4985ae2b700dd85d7cf7f027bdf294a33fc"
    /// A group key of bytes 00…1f, for encoding tests that need no signature.
    static let fixedKey = (0..<32).map { UInt8($0) }

    static let claims = ReceiptClaims(
        requestID: "req_01HZX7", issuedAt: 1_764_000_000, latch: "assistant", mount: "/openai", method: "POST",
        path: "/openai/v1/chat/completions?stream=true", bodySHA256: emptyBody, decision: .allow, bundle: bundle,
        signers: [1, 2, 4], reasons: [])

    /// A plain Ed25519 key standing in for a group key where only parsing is under test.
    static let plainKey = try! Ed25519KeyPair(seed: (0..<32).map { UInt8(0x40 + $0) })

    /// A compact receipt for `claims`, signed by `plainKey`.
    static func plainReceipt(_ claims: ReceiptClaims = claims) throws -> String {
        let input = try Receipt.signingInput(claims: claims, groupKey: plainKey.publicKey)
        return try Receipt(claims: claims, groupKey: plainKey.publicKey, signature: plainKey.sign(input)).compact
    }

    static func b64(_ text: String) -> String { b64(Array(text.utf8)) }

    static func b64(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func segments(_ compact: String) -> [String] { compact.split(separator: ".").map(String.init) }

    // MARK: Canonical form

    @Test("the canonical claims and header of a fixed decision are these exact bytes")
    func canonicalBytes() throws {
        let claimsJSON = String(decoding: try Self.claims.canonicalJSON(), as: UTF8.self)
        #expect(
            claimsJSON
                == #"{"body_sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","#
                + #""bundle":"1e6ed65d77d6364eeaed5a745ba5c4985ae2b700dd85d7cf7f027bdf294a33fc","decision":"allow","#
                + #""iat":1764000000,"iss":"quorum-latch","jti":"req_01HZX7","latch":"assistant","method":"POST","#
                + #""mount":"/openai","path":"/openai/v1/chat/completions?stream=true","reasons":[],"signers":[1,2,4]}"#
        )
        let header = String(decoding: try Receipt.header(groupKey: Self.fixedKey), as: UTF8.self)
        #expect(
            header
                == #"{"alg":"EdDSA","kid":"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f","typ":"JWT"}"#
        )
        let input = String(
            decoding: try Receipt.signingInput(claims: Self.claims, groupKey: Self.fixedKey), as: UTF8.self)
        #expect(
            input
                == "eyJhbGciOiJFZERTQSIsImtpZCI6IjAwMDEwMjAzMDQwNTA2MDcwODA5MGEwYjBjMGQwZTBmMTAxMTEyMTMxNDE1MTYxNzE4MTkxYTFiMWMxZDFlMWYiLCJ0eXAiOiJKV1QifQ"
                + ".eyJib2R5X3NoYTI1NiI6ImUzYjBjNDQyOThmYzFjMTQ5YWZiZjRjODk5NmZiOTI0MjdhZTQxZTQ2NDliOTM0Y2E0OTU5OTFiNzg1MmI4NTUiLCJidW5kbGUiOiIxZTZlZDY1ZDc3ZDYzNjRlZWFlZDVhNzQ1YmE1YzQ5ODVhZTJiNzAwZGQ4NWQ3Y2Y3ZjAyN2JkZjI5NGEzM2ZjIiwiZGVjaXNpb24iOiJhbGxvdyIsImlhdCI6MTc2NDAwMDAwMCwiaXNzIjoicXVvcnVtLWxhdGNoIiwianRpIjoicmVxXzAxSFpYNyIsImxhdGNoIjoiYXNzaXN0YW50IiwibWV0aG9kIjoiUE9TVCIsIm1vdW50IjoiL29wZW5haSIsInBhdGgiOiIvb3BlbmFpL3YxL2NoYXQvY29tcGxldGlvbnM_c3RyZWFtPXRydWUiLCJyZWFzb25zIjpbXSwic2lnbmVycyI6WzEsMiw0XX0"
        )
    }

    @Test("reasons are written with JCS escapes: only quote, backslash and control characters")
    func reasonsEscaping() throws {
        var claims = Self.claims
        claims.decision = .deny
        claims.reasons = ["token-cap: max_tokens 16000 > 4096", "line\nbreak \"q\" \\ é/€ 😀 \u{7f}\u{1}"]
        let json = String(decoding: try claims.canonicalJSON(), as: UTF8.self)
        #expect(
            json.contains(
                #""reasons":["token-cap: max_tokens 16000 > 4096","line\nbreak \"q\" \\ é/€ 😀 "# + "\u{7f}"
                    + #"\u0001"],"#))
    }

    @Test(
        "JCS string escapes",
        arguments: [
            ("quote", "a\"b", #""a\"b""#),
            ("backslash", "\\", #""\\""#),
            ("short forms", "\u{08}\u{0C}\n\r\t", #""\b\f\n\r\t""#),
            ("other controls in lower-case hex", "\u{00}\u{01}\u{1f}\u{0b}", #""\u0000\u0001\u001f\u000b""#),
            ("DEL is not escaped", "\u{7f}", "\"\u{7f}\""),
            ("slash is not escaped", "/a/b", #""/a/b""#),
            ("non-ASCII is raw UTF-8", "é€😀\u{2028}", "\"é€😀\u{2028}\""),
        ])
    func jcsEscapes(_ name: String, _ input: String, _ expected: String) throws {
        var out: [UInt8] = []
        CanonicalJSON.writeString(input, into: &out)
        #expect(String(decoding: out, as: UTF8.self) == expected, "\(name)")
        // And the reader gives the same string back.
        #expect(try CanonicalJSON.parse(out) == .string(input), "\(name)")
    }

    @Test("keys sort by UTF-16 code units (RFC 8785 §3.2.3), not by scalar or byte")
    func utf16KeyOrder() {
        // U+1F600 is D83D DE00 in UTF-16, so it sorts before U+FB33, though its scalar is larger.
        let value = CanonicalJSON.Value.object([
            "\u{FB33}": .integer(1), "\u{1F600}": .integer(2), "a": .integer(3), "é": .integer(4), "B": .integer(5),
        ])
        #expect(
            String(decoding: CanonicalJSON.encode(value), as: UTF8.self)
                == "{\"B\":5,\"a\":3,\"é\":4,\"\u{1F600}\":2,\"\u{FB33}\":1}")
    }

    @Test("integers are plain decimal within ±(2^53 − 1); other numbers and literals are refused")
    func integers() throws {
        #expect(CanonicalJSON.encode(.integer(0)) == Array("0".utf8))
        #expect(CanonicalJSON.encode(.integer(-42)) == Array("-42".utf8))
        #expect(try CanonicalJSON.parse(Array("9007199254740991".utf8)) == .integer(9_007_199_254_740_991))
        for bad in ["9007199254740992", "1.0", "1e3", "01", "-0", "-", "true", "null", "false"] {
            #expect(throws: CanonicalJSON.ParseError.self, "\(bad)") { try CanonicalJSON.parse(Array(bad.utf8)) }
        }
    }

    @Test("the reader refuses duplicate keys, also when spelled with escapes, and broken UTF-8 or surrogates")
    func readerRefusals() throws {
        func code(_ bytes: [UInt8]) -> CanonicalJSON.ParseError.Code? {
            do {
                _ = try CanonicalJSON.parse(bytes)
                return nil
            } catch { return error.code }
        }
        #expect(code(Array(#"{"a":1,"a":2}"#.utf8)) == .duplicateKey)
        #expect(code(Array(#"{"a":1,"\u0061":2}"#.utf8)) == .duplicateKey)
        #expect(code([0x22, 0xC3, 0x28, 0x22]) == .invalidUTF8)
        #expect(code([0x22, 0xED, 0xA0, 0x80, 0x22]) == .invalidUTF8)  // an encoded surrogate
        #expect(code([0x22, 0xC0, 0xAF, 0x22]) == .invalidUTF8)  // overlong '/'
        #expect(code(Array(#""\ud83d""#.utf8)) == .syntax)
        #expect(code(Array(#""\ude00""#.utf8)) == .syntax)
        #expect(code(Array(#""\x""#.utf8)) == .syntax)
        #expect(code(Array("\"a\nb\"".utf8)) == .syntax)
        #expect(code(Array(#"{"a":1} x"#.utf8)) == .syntax)
        #expect(try CanonicalJSON.parse(Array(#""\ud83d\ude00""#.utf8)) == .string("😀"))
    }

    @Test("claims break their rules: each refused naming the claim")
    func claimRules() {
        func refusal(_ change: (inout ReceiptClaims) -> Void) -> String? {
            var claims = Self.claims
            change(&claims)
            do {
                _ = try claims.canonicalJSON()
                return nil
            } catch { return error.code == .invalidClaim ? error.part : "\(error.code)" }
        }
        #expect(refusal { $0.requestID = "" } == "claims.jti")
        #expect(refusal { $0.requestID = "has space" } == "claims.jti")
        #expect(refusal { $0.issuedAt = -1 } == "claims.iat")
        #expect(refusal { $0.method = "" } == "claims.method")
        #expect(refusal { $0.bodySHA256 = Self.emptyBody.uppercased() } == "claims.body_sha256")
        #expect(refusal { $0.bundle = "sha256:" + Self.bundle } == "claims.bundle")
        #expect(refusal { $0.signers = [] } == "claims.signers")
        #expect(refusal { $0.signers = [2, 1, 3] } == "claims.signers")
        #expect(refusal { $0.signers = [1, 1, 3] } == "claims.signers")
        #expect(refusal { $0.signers = [0, 1] } == "claims.signers")
        #expect(refusal { $0.signers = [1, 65536] } == "claims.signers")
        #expect(refusal { $0.bundle = "" } == nil)
        #expect(
            refusal {
                $0.latch = ""; $0.mount = ""
            } == nil)
    }

    @Test("a signing input longer than a node signs is refused when built")
    func tooLongToSign() {
        var claims = Self.claims
        claims.reasons = [String(repeating: "x", count: 60_000)]
        do {
            _ = try Receipt.signingInput(claims: claims, groupKey: Self.fixedKey)
            Issue.record("a signing input of over 80,000 bytes was built")
        } catch {
            #expect(error.code == .tooLarge && error.part == "claims", "\(error)")
        }
    }

    // MARK: Signed by a real FROST group

    @Test("a receipt signed 3-of-4 by a FROST group verifies with ours and with swift-crypto's Ed25519")
    func frostSignedReceiptVerifies() throws {
        let (keys, group) = try SigningHelpers.dealer(Ed25519Suite.self, k: 3, n: 4)
        let groupKey = try group.verifyingKey.serialized()
        for signers in [[0, 1, 3], [1, 2, 3]] {
            var claims = Self.claims
            claims.signers = signers.map { Int(keys[$0].identifier.value) }
            let input = try Receipt.signingInput(claims: claims, groupKey: groupKey)
            let signature = try SigningHelpers.sign(input, keys: signers.map { keys[$0] }, group: group)
            let receipt = try Receipt(claims: claims, groupKey: groupKey, signature: signature.bytes)

            let parsed = try Receipt.verified(receipt.compact, groupKey: groupKey)
            #expect(parsed == receipt)
            #expect(parsed.claims == claims)

            // Independently: swift-crypto (BoringSSL's Ed25519) over the JWS signing input.
            let parts = Self.segments(receipt.compact)
            let independentKey = try Curve25519.Signing.PublicKey(rawRepresentation: groupKey)
            let rawSignature = try #require(Data(base64Encoded: Self.standardBase64(parts[2])))
            #expect(independentKey.isValidSignature(rawSignature, for: Data((parts[0] + "." + parts[1]).utf8)))
            // The header's kid is the group key, readable by a JWT library that picks keys by kid.
            let header = try #require(Data(base64Encoded: Self.standardBase64(parts[0])))
            #expect(String(decoding: header, as: UTF8.self).contains("\"kid\":\"\(Hex.encode(groupKey))\""))
        }
    }

    static func standardBase64(_ text: String) -> String {
        let base = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        return base + String(repeating: "=", count: (4 - base.count % 4) % 4)
    }

    /// One claim changed in the canonical claims, as a forger would re-encode them.
    static let tamperings: [(String, @Sendable (inout ReceiptClaims) -> Void)] = [
        ("jti", { $0.requestID = "req_01HZX8" }),
        ("iat", { $0.issuedAt += 1 }),
        ("latch", { $0.latch = "assistant-ci" }),
        ("mount", { $0.mount = "/github" }),
        ("method", { $0.method = "GET" }),
        ("path", { $0.path = "/openai/v1/files" }),
        ("body_sha256", { $0.bodySHA256 = ReceiptTests.bundle }),
        ("decision", { $0.decision = .deny }),
        ("bundle", { $0.bundle = "" }),
        ("signers", { $0.signers = [1, 2, 3] }),
        ("reasons", { $0.reasons = ["forged"] }),
    ]

    @Test("changing any claim breaks the signature", arguments: 0..<11)
    func tamperedClaim(_ index: Int) throws {
        let (name, change) = Self.tamperings[index]
        let (keys, group) = try SigningHelpers.dealer(Ed25519Suite.self, k: 3, n: 4)
        let groupKey = try group.verifyingKey.serialized()
        var claims = Self.claims
        claims.signers = [1, 2, 4]
        let input = try Receipt.signingInput(claims: claims, groupKey: groupKey)
        let signature = try SigningHelpers.sign(input, keys: [keys[0], keys[1], keys[3]], group: group)
        let genuine = try Receipt(claims: claims, groupKey: groupKey, signature: signature.bytes)
        try genuine.verify(groupKey: groupKey)

        var forged = claims
        change(&forged)
        #expect(forged != claims, "the tampering of \(name) changes nothing")
        let parts = Self.segments(genuine.compact)
        let forgedJSON = try forged.canonicalJSON()
        let compact = parts[0] + "." + Self.b64(forgedJSON) + "." + parts[2]
        let parsed = try Receipt(parsing: compact)
        #expect(parsed.claims == forged)
        do {
            try parsed.verify(groupKey: groupKey)
            Issue.record("a receipt with \(name) changed verified")
        } catch {
            #expect(error.code == .invalidSignature, "\(name): \(error)")
        }
    }

    @Test("a header naming another key, or a signature by another group, fails verification")
    func otherKeysFail() throws {
        let (keysA, groupA) = try SigningHelpers.dealer(Ed25519Suite.self, k: 3, n: 4)
        let (keysB, groupB) = try SigningHelpers.dealer(Ed25519Suite.self, k: 3, n: 4)
        let keyA = try groupA.verifyingKey.serialized()
        let keyB = try groupB.verifyingKey.serialized()
        let inputA = try Receipt.signingInput(claims: Self.claims, groupKey: keyA)
        let signedA = try SigningHelpers.sign(inputA, keys: [keysA[0], keysA[1], keysA[3]], group: groupA)
        let receiptA = try Receipt(claims: Self.claims, groupKey: keyA, signature: signedA.bytes)

        func code(_ compact: String, _ key: [UInt8]) -> ReceiptError.Code? {
            do {
                _ = try Receipt.verified(compact, groupKey: key)
                return nil
            } catch { return error.code }
        }
        #expect(code(receiptA.compact, keyA) == nil)
        // Verified against another group: the kid does not match.
        #expect(code(receiptA.compact, keyB) == .keyMismatch)
        // Header tampered to name group B, signature still A's: B's key does not verify it.
        let parts = Self.segments(receiptA.compact)
        let headerB = Self.b64(try Receipt.header(groupKey: keyB))
        #expect(code(headerB + "." + parts[1] + "." + parts[2], keyB) == .invalidSignature)
        // Group B signs the input that names group A: A's key does not verify it.
        let signedB = try SigningHelpers.sign(inputA, keys: [keysB[0], keysB[2], keysB[3]], group: groupB)
        #expect(code(parts[0] + "." + parts[1] + "." + Self.b64(signedB.bytes), keyA) == .invalidSignature)
        // A flipped bit in the signature.
        var flipped = signedA.bytes
        flipped[10] ^= 0x01
        #expect(code(parts[0] + "." + parts[1] + "." + Self.b64(flipped), keyA) == .invalidSignature)
        // A group key of the wrong length is refused as such.
        #expect(code(receiptA.compact, Array(keyA.prefix(31))) == .invalidGroupKey)
    }

    // MARK: Strict parsing

    struct Malformed: CustomTestStringConvertible, Sendable {
        let name: String
        let code: ReceiptError.Code
        let part: String
        let make: @Sendable (String) throws -> String
        var testDescription: String { name }
    }

    /// Replaces one segment (0 header, 1 claims, 2 signature) of a valid compact receipt.
    static func replacing(_ index: Int, with segment: String) -> @Sendable (String) -> String {
        { compact in
            var parts = segments(compact)
            parts[index] = segment
            return parts.joined(separator: ".")
        }
    }

    static let kid = Hex.encode(plainKey.publicKey)
    static let claimsText = String(decoding: try! claims.canonicalJSON(), as: UTF8.self)

    static func claimsEdited(_ edit: @escaping @Sendable (String) -> String) -> @Sendable (String) -> String {
        replacing(1, with: b64(edit(claimsText)))
    }

    static let malformed: [Malformed] = [
        Malformed(name: "two segments", code: .segmentCount, part: "receipt") {
            segments($0).prefix(2).joined(separator: ".")
        },
        Malformed(name: "four segments", code: .segmentCount, part: "receipt") { $0 + ".AAAA" },
        Malformed(name: "empty header", code: .emptySegment, part: "header", make: replacing(0, with: "")),
        Malformed(name: "empty claims", code: .emptySegment, part: "claims", make: replacing(1, with: "")),
        Malformed(name: "empty signature (unsigned JWS)", code: .emptySegment, part: "signature") {
            segments($0).prefix(2).joined(separator: ".") + "."
        },
        Malformed(name: "padding", code: .invalidBase64URL, part: "header") {
            var parts = segments($0)
            parts[0] += "=="
            return parts.joined(separator: ".")
        },
        Malformed(name: "standard base64 characters", code: .invalidBase64URL, part: "claims") {
            var parts = segments($0)
            parts[1] = parts[1].replacingOccurrences(of: "_", with: "/")
            return parts.joined(separator: ".")
        },
        Malformed(name: "a space inside a segment", code: .invalidBase64URL, part: "signature") {
            var parts = segments($0)
            parts[2].insert(" ", at: parts[2].index(parts[2].startIndex, offsetBy: 4))
            return parts.joined(separator: ".")
        },
        Malformed(name: "non-zero trailing bits", code: .invalidBase64URL, part: "signature") {
            var parts = segments($0)
            // 64 bytes end in a 2-character group whose second character carries 4 unused bits.
            let last = parts[2].removeLast()
            parts[2].append(last == "B" ? "C" : "B")
            return parts.joined(separator: ".")
        },
        Malformed(
            name: "claims not UTF-8", code: .invalidJSON, part: "claims",
            make: replacing(1, with: b64([0x7B, 0xFF, 0x7D]))),
        Malformed(
            name: "claims not JSON", code: .invalidJSON, part: "claims", make: replacing(1, with: b64("{\"iss\""))),
        Malformed(name: "claims an array", code: .invalidJSON, part: "claims", make: replacing(1, with: b64("[]"))),
        Malformed(name: "claims with a float iat", code: .invalidJSON, part: "claims") {
            claimsEdited { $0.replacingOccurrences(of: "1764000000", with: "1764000000.0") }($0)
        },
        Malformed(name: "claims with a duplicate key", code: .duplicateKey, part: "claims") {
            claimsEdited { "{\"jti\":\"req_other\"," + $0.dropFirst() }($0)
        },
        Malformed(name: "header with a duplicate key", code: .duplicateKey, part: "header") {
            replacing(0, with: b64(#"{"alg":"EdDSA","alg":"EdDSA","kid":"\#(kid)","typ":"JWT"}"#))($0)
        },
        Malformed(name: "alg none", code: .unsupportedAlgorithm, part: "header.alg") {
            replacing(0, with: b64(#"{"alg":"none","kid":"\#(kid)","typ":"JWT"}"#))($0)
        },
        Malformed(name: "alg HS256", code: .unsupportedAlgorithm, part: "header.alg") {
            replacing(0, with: b64(#"{"alg":"HS256","kid":"\#(kid)","typ":"JWT"}"#))($0)
        },
        Malformed(name: "alg Ed25519 (not the JOSE name)", code: .unsupportedAlgorithm, part: "header.alg") {
            replacing(0, with: b64(#"{"alg":"Ed25519","kid":"\#(kid)","typ":"JWT"}"#))($0)
        },
        Malformed(name: "header with crit", code: .invalidHeader, part: "header.crit") {
            replacing(0, with: b64(#"{"alg":"EdDSA","crit":["exp"],"kid":"\#(kid)","typ":"JWT"}"#))($0)
        },
        Malformed(name: "header with jwk", code: .invalidHeader, part: "header.jwk") {
            replacing(0, with: b64(#"{"alg":"EdDSA","jwk":"x","kid":"\#(kid)","typ":"JWT"}"#))($0)
        },
        Malformed(name: "header without kid", code: .invalidHeader, part: "header.kid") {
            replacing(0, with: b64(#"{"alg":"EdDSA","typ":"JWT"}"#))($0)
        },
        Malformed(name: "header typ JOSE", code: .invalidHeader, part: "header.typ") {
            replacing(0, with: b64(#"{"alg":"EdDSA","kid":"\#(kid)","typ":"JOSE"}"#))($0)
        },
        Malformed(name: "header kid in upper case", code: .invalidHeader, part: "header.kid") {
            replacing(0, with: b64(#"{"alg":"EdDSA","kid":"\#(kid.uppercased())","typ":"JWT"}"#))($0)
        },
        Malformed(name: "header kid too short", code: .invalidHeader, part: "header.kid") {
            replacing(0, with: b64(#"{"alg":"EdDSA","kid":"\#(kid.dropLast(2))","typ":"JWT"}"#))($0)
        },
        Malformed(name: "header with whitespace", code: .invalidHeader, part: "header") {
            replacing(0, with: b64(#"{"alg": "EdDSA", "kid": "\#(kid)", "typ": "JWT"}"#))($0)
        },
        Malformed(name: "header keys reordered", code: .invalidHeader, part: "header") {
            replacing(0, with: b64(#"{"typ":"JWT","alg":"EdDSA","kid":"\#(kid)"}"#))($0)
        },
        Malformed(name: "missing claim", code: .missingClaim, part: "claims.reasons") {
            claimsEdited { $0.replacingOccurrences(of: #""reasons":[],"#, with: "") }($0)
        },
        Malformed(name: "unknown claim exp", code: .unknownClaim, part: "claims.exp") {
            claimsEdited { $0.replacingOccurrences(of: #""iat":"#, with: #""exp":1,"iat":"#) }($0)
        },
        Malformed(name: "iat as a string", code: .invalidClaim, part: "claims.iat") {
            claimsEdited { $0.replacingOccurrences(of: "1764000000", with: "\"1764000000\"") }($0)
        },
        Malformed(name: "signers not integers", code: .invalidClaim, part: "claims.signers") {
            claimsEdited { $0.replacingOccurrences(of: "[1,2,4]", with: "[\"1\",\"2\",\"4\"]") }($0)
        },
        Malformed(name: "signers unsorted", code: .invalidClaim, part: "claims.signers") {
            claimsEdited { $0.replacingOccurrences(of: "[1,2,4]", with: "[2,1,4]") }($0)
        },
        Malformed(name: "decision maybe", code: .invalidClaim, part: "claims.decision") {
            claimsEdited { $0.replacingOccurrences(of: "\"allow\"", with: "\"maybe\"") }($0)
        },
        Malformed(name: "another issuer", code: .invalidClaim, part: "claims.iss") {
            claimsEdited { $0.replacingOccurrences(of: "quorum-latch", with: "someone-else") }($0)
        },
        Malformed(name: "reasons holding a number", code: .invalidClaim, part: "claims.reasons") {
            claimsEdited { $0.replacingOccurrences(of: #""reasons":[]"#, with: #""reasons":[1]"#) }($0)
        },
        Malformed(name: "claims with whitespace", code: .nonCanonicalClaims, part: "claims") {
            claimsEdited { $0.replacingOccurrences(of: "\":", with: "\": ") }($0)
        },
        Malformed(name: "claims keys reordered", code: .nonCanonicalClaims, part: "claims") {
            claimsEdited {
                "{\"signers\":[1,2,4],"
                    + $0.dropFirst().replacingOccurrences(of: #","signers":[1,2,4]}"#, with: "}")
            }($0)
        },
        Malformed(name: "claims with an escaped slash", code: .nonCanonicalClaims, part: "claims") {
            claimsEdited { $0.replacingOccurrences(of: "\"/openai\"", with: #""\/openai""#) }($0)
        },
        Malformed(name: "claims with a needless \\u escape", code: .nonCanonicalClaims, part: "claims") {
            claimsEdited { $0.replacingOccurrences(of: "\"POST\"", with: #""\u0050OST""#) }($0)
        },
        Malformed(name: "signature of 63 bytes", code: .invalidSignatureLength, part: "signature") {
            replacing(2, with: b64([UInt8](repeating: 7, count: 63)))($0)
        },
        Malformed(name: "signature of 65 bytes", code: .invalidSignatureLength, part: "signature") {
            replacing(2, with: b64([UInt8](repeating: 7, count: 65)))($0)
        },
        Malformed(name: "too large", code: .tooLarge, part: "receipt") {
            $0 + String(repeating: "A", count: Receipt.maximumLength)
        },
    ]

    @Test("each malformed receipt is refused with its own code", arguments: malformed)
    func malformedReceipt(_ example: Malformed) throws {
        let input = try example.make(try Self.plainReceipt())
        do {
            let parsed = try Receipt(parsing: input)
            Issue.record("accepted: \(parsed.claims)")
        } catch {
            #expect(error.code == example.code, "\(error)")
            #expect(error.part == example.part, "\(error)")
            #expect(!error.reason.isEmpty)
        }
    }

    @Test("the unmodified receipt used by the malformed cases parses and verifies")
    func baselineParses() throws {
        let receipt = try Receipt.verified(try Self.plainReceipt(), groupKey: Self.plainKey.publicKey)
        #expect(receipt.claims == Self.claims)
        #expect(receipt.groupKey == Self.plainKey.publicKey)
    }

    @Test("random claims round-trip through the compact form, and Foundation's JSON reader reads the same strings")
    func randomRoundTrip() throws {
        var random = SeededGenerator(seed: 8785)
        // Controls, quotes, backslashes, ASCII, Latin-1, BMP (around the surrogates) and astral scalars.
        let pools: [ClosedRange<UInt32>] = [
            0x00...0x1F, 0x20...0x7F, 0x80...0xFF, 0xD700...0xD7FF, 0xE000...0xFFFF, 0x1_0000...0x1_0FFF,
        ]
        func text(_ maxLength: Int) -> String {
            var scalars = String.UnicodeScalarView()
            for _ in 0..<Int.random(in: 0...maxLength, using: &random) {
                let pool = pools[Int.random(in: 0..<pools.count, using: &random)]
                scalars.append(Unicode.Scalar(UInt32.random(in: pool, using: &random))!)
            }
            return String(scalars)
        }
        for _ in 0..<300 {
            var signers = Set<Int>()
            for _ in 0..<Int.random(in: 1...7, using: &random) {
                signers.insert(Int.random(in: 1...65535, using: &random))
            }
            let claims = ReceiptClaims(
                requestID: "req-\(UInt64.random(in: 0...UInt64.max, using: &random))",
                issuedAt: Int64.random(in: 0...CanonicalJSON.maximumInteger, using: &random), latch: text(8),
                mount: text(8), method: "M" + text(4), path: text(40), bodySHA256: Self.emptyBody, decision: .deny,
                bundle: Bool.random(using: &random) ? "" : Self.bundle, signers: signers.sorted(),
                reasons: (0..<Int.random(in: 0...3, using: &random)).map { _ in text(30) })
            let compact = try Self.plainReceipt(claims)
            let parsed = try Receipt.verified(compact, groupKey: Self.plainKey.publicKey)
            #expect(parsed.claims == claims)

            let json = try claims.canonicalJSON()
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json)) as? [String: Any])
            #expect(object["path"] as? String == claims.path)
            #expect(object["reasons"] as? [String] == claims.reasons)
            #expect(object["signers"] as? [Int] == claims.signers)
            #expect((object["iat"] as? NSNumber)?.int64Value == claims.issuedAt)
        }
    }

    @Test("pretty JSON lists the claims in canonical order, signers on one line")
    func prettyJSON() {
        var claims = Self.claims
        claims.reasons = ["a", "b"]
        let text = claims.prettyJSON()
        #expect(text.hasPrefix("{\n  \"body_sha256\": \"e3b0"))
        #expect(text.contains("\n  \"signers\": [1, 2, 4]\n}"))
        #expect(text.contains("\n  \"reasons\": [\n    \"a\",\n    \"b\"\n  ],\n"))
    }
}
