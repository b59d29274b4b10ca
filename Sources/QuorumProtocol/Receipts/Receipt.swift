import QuorumCrypto

/// A decision certified by the quorum: a compact JWS (RFC 7515) with `alg: EdDSA` (RFC 8037),
/// signed by the FROST(Ed25519, SHA-512) group key.
///
/// A FROST Ed25519 group signature is an ordinary RFC 8032 signature, so any JWT library holding
/// the group public key verifies a receipt; no FROST code is needed on the verifying side.
///
/// The k signers each build the signing input from the same decision, so it has exactly one
/// byte string: the protected header is the fixed `{"alg":"EdDSA","kid":"<group key hex>",
/// "typ":"JWT"}` and the claims are RFC 8785 (JCS) canonical JSON. Parsing refuses anything else
/// (see ``ReceiptError/Code``), so a receipt has one spelling and what was verified is what is read.
///
/// Making one: ``signingInput(claims:groupKey:)`` gives the bytes the signers FROST-sign; the
/// aggregated 64-byte signature goes to ``init(claims:groupKey:signature:)``, whose ``compact``
/// string travels in the `Latch-Receipt` header. Checking one: ``verified(_:groupKey:)``.
public struct Receipt: Sendable, Equatable {
    /// The JWS `alg`: EdDSA over Ed25519 (RFC 8037 §3.1).
    public static let algorithm = "EdDSA"
    /// The JWS `typ` (RFC 7519 §5.1).
    public static let type = "JWT"
    /// Length of the group key a receipt names and is verified with.
    public static let groupKeyLength = Ed25519KeyPair.publicKeyLength
    /// Length of the signature.
    public static let signatureLength = Ed25519KeyPair.signatureLength
    /// The longest compact receipt read: the longest signing input a node signs
    /// (``SigningLimits/maximumMessageLength``), a dot, and 86 characters of signature.
    public static let maximumLength = SigningLimits.maximumMessageLength + 87

    /// What the receipt says.
    public let claims: ReceiptClaims
    /// The group public key the header names (`kid`), 32 bytes.
    public let groupKey: [UInt8]
    /// The bytes signed: ASCII(base64url(header) "." base64url(claims)).
    public let signingInput: [UInt8]
    /// The 64-byte Ed25519 signature (R ‖ S).
    public let signature: [UInt8]

    /// The compact serialisation: `header.claims.signature`, each unpadded base64url.
    public var compact: String {
        String(decoding: signingInput, as: UTF8.self) + "." + Base64URL.encode(signature)
    }

    // MARK: Making a receipt

    /// The canonical protected header for a group key: `{"alg":"EdDSA","kid":"<64 hex>","typ":"JWT"}`.
    public static func header(groupKey: [UInt8]) throws(ReceiptError) -> [UInt8] {
        guard groupKey.count == groupKeyLength else {
            throw ReceiptError(
                .invalidGroupKey, "group key", "\(groupKey.count) bytes; an Ed25519 group key is \(groupKeyLength)")
        }
        return CanonicalJSON.encode(headerValue(kid: Hex.encode(groupKey)))
    }

    private static func headerValue(kid: String) -> CanonicalJSON.Value {
        .object(["alg": .string(algorithm), "kid": .string(kid), "typ": .string(type)])
    }

    /// The bytes the quorum signs for `claims` under `groupKey`: ASCII(base64url(header) "."
    /// base64url(claims)). Throws if a claim breaks its rule, or if the input would be longer than
    /// a node signs (``SigningLimits/maximumMessageLength``; long `reasons` are the usual cause).
    public static func signingInput(claims: ReceiptClaims, groupKey: [UInt8]) throws(ReceiptError) -> [UInt8] {
        let headerBytes = try header(groupKey: groupKey)
        let payload = try claims.canonicalJSON()
        let input = Array((Base64URL.encode(headerBytes) + "." + Base64URL.encode(payload)).utf8)
        guard input.count <= SigningLimits.maximumMessageLength else {
            throw ReceiptError(
                .tooLarge, "claims",
                "the signing input would be \(input.count) bytes; at most \(SigningLimits.maximumMessageLength)")
        }
        return input
    }

    /// A receipt from its claims, the group key and the aggregated signature. The signature is
    /// not checked here (FROST aggregation already verified it); ``verify(groupKey:)`` does.
    public init(claims: ReceiptClaims, groupKey: [UInt8], signature: [UInt8]) throws(ReceiptError) {
        guard signature.count == Self.signatureLength else {
            throw ReceiptError(
                .invalidSignatureLength, "signature",
                "\(signature.count) bytes; an Ed25519 signature is \(Self.signatureLength)")
        }
        self.signingInput = try Self.signingInput(claims: claims, groupKey: groupKey)
        self.claims = claims
        self.groupKey = groupKey
        self.signature = signature
    }

    // MARK: Reading a receipt

    /// The claims of a receipt signing input (`header.claims`, what a signer is asked to sign),
    /// read as strictly as a whole receipt: the header must be the canonical one for `groupKey`
    /// and the claims canonical. A node uses it to see which decision a sign request stands for.
    public static func claims(inSigningInput input: [UInt8], groupKey: [UInt8]) throws(ReceiptError) -> ReceiptClaims {
        // The parser wants three segments; a placeholder signature completes the form and is
        // checked for nothing but its length.
        let placeholder = Base64URL.encode([UInt8](repeating: 0, count: signatureLength))
        let receipt = try Receipt(parsing: String(decoding: input, as: UTF8.self) + "." + placeholder)
        guard receipt.signingInput == input else {
            throw ReceiptError(.invalidJSON, "receipt", "the signing input is not valid UTF-8 of a receipt")
        }
        guard receipt.groupKey == groupKey else {
            throw ReceiptError(.keyMismatch, "header.kid", "names another group key than this node's")
        }
        return receipt.claims
    }

    /// Parses a compact receipt strictly, without checking its signature.
    ///
    /// Refused, each with its own code: more than ``maximumLength`` characters; not three
    /// segments; an empty segment; padding or non-base64url characters; bytes that are not UTF-8
    /// JSON of the subset; a duplicate key; an `alg` other than EdDSA; a header other than the
    /// canonical one (extra fields such as `crit`, another `typ`, a `kid` that is not 64
    /// lower-case hex digits, whitespace); unknown, missing or mistyped claims, or claims breaking
    /// their rule; claims that are not in canonical form; a signature that is not 64 bytes.
    public init(parsing compact: some StringProtocol) throws(ReceiptError) {
        let text = Substring(compact)
        guard text.utf8.count <= Self.maximumLength else {
            throw ReceiptError(
                .tooLarge, "receipt", "\(text.utf8.count) bytes; a receipt is at most \(Self.maximumLength)")
        }
        let segments = text.split(separator: ".", omittingEmptySubsequences: false)
        guard segments.count == 3 else {
            throw ReceiptError(
                .segmentCount, "receipt",
                "\(segments.count) segment\(segments.count == 1 ? "" : "s"); a compact JWS is header.claims.signature")
        }
        let names = ["header", "claims", "signature"]
        var decoded: [[UInt8]] = []
        for (name, segment) in zip(names, segments) {
            guard !segment.isEmpty else {
                throw ReceiptError(.emptySegment, name, "empty; a receipt has a header, claims and a signature")
            }
            switch Base64URL.decode(segment) {
            case .success(let bytes): decoded.append(bytes)
            case .failure(let problem): throw ReceiptError(.invalidBase64URL, name, problem.reason)
            }
        }
        let groupKey = try Self.parseHeader(decoded[0])
        let claims = try ReceiptClaims(json: Self.json(decoded[1], "claims"))
        guard CanonicalJSON.encode(claims.value) == decoded[1] else {
            throw ReceiptError(
                .nonCanonicalClaims, "claims",
                "not in canonical form (RFC 8785: keys sorted, no whitespace, minimal escapes); "
                    + "the quorum signs only the canonical bytes")
        }
        guard decoded[2].count == Self.signatureLength else {
            throw ReceiptError(
                .invalidSignatureLength, "signature",
                "\(decoded[2].count) bytes; an Ed25519 signature is \(Self.signatureLength)")
        }
        self.claims = claims
        self.groupKey = groupKey
        self.signingInput = Array(text.utf8.prefix(segments[0].utf8.count + 1 + segments[1].utf8.count))
        self.signature = decoded[2]
    }

    private static func json(_ bytes: [UInt8], _ part: String) throws(ReceiptError) -> CanonicalJSON.Value {
        do {
            return try CanonicalJSON.parse(bytes)
        } catch {
            switch error.code {
            case .duplicateKey: throw ReceiptError(.duplicateKey, part, error.description)
            case .invalidUTF8, .syntax: throw ReceiptError(.invalidJSON, part, error.description)
            }
        }
    }

    /// Checks the protected header and returns the group key its `kid` names.
    private static func parseHeader(_ bytes: [UInt8]) throws(ReceiptError) -> [UInt8] {
        let header = try json(bytes, "header")
        guard case .object(let members) = header else {
            throw ReceiptError(.invalidHeader, "header", "\(header.kind); the header is a JSON object")
        }
        guard case .string(let alg)? = members["alg"] else {
            throw ReceiptError(.invalidHeader, "header.alg", "missing or not a string; expected \"\(algorithm)\"")
        }
        guard alg == algorithm else {
            throw ReceiptError(
                .unsupportedAlgorithm, "header.alg",
                "\"\(alg.prefix(32))\" is not accepted; receipts are signed with \"\(algorithm)\" only")
        }
        let allowed = ["alg", "kid", "typ"]
        if let extra = members.keys.sorted(by: CanonicalJSON.utf16Precedes).first(where: { !allowed.contains($0) }) {
            throw ReceiptError(
                .invalidHeader, "header.\(extra.prefix(64))",
                "not accepted; the header holds exactly alg, kid and typ")
        }
        guard case .string(let typ)? = members["typ"], typ == type else {
            throw ReceiptError(.invalidHeader, "header.typ", "missing or not \"\(type)\"")
        }
        guard case .string(let kid)? = members["kid"], kid.utf8.count == 2 * groupKeyLength,
            kid == kid.lowercased(), let key = Hex.decode(kid)
        else {
            throw ReceiptError(
                .invalidHeader, "header.kid",
                "expected the group public key as \(2 * groupKeyLength) lower-case hex digits")
        }
        guard CanonicalJSON.encode(headerValue(kid: kid)) == bytes else {
            throw ReceiptError(
                .invalidHeader, "header", "not in canonical form: {\"alg\":\"EdDSA\",\"kid\":\"…\",\"typ\":\"JWT\"}")
        }
        return key
    }

    // MARK: Verifying

    /// Checks that the receipt names `groupKey` and that its signature verifies under it (plain
    /// RFC 8032 Ed25519, libsodium's `crypto_sign_verify_detached`).
    public func verify(groupKey expected: [UInt8]) throws(ReceiptError) {
        guard expected.count == Self.groupKeyLength else {
            throw ReceiptError(
                .invalidGroupKey, "group key",
                "\(expected.count) bytes; an Ed25519 group key is \(Self.groupKeyLength)")
        }
        guard expected == groupKey else {
            throw ReceiptError(
                .keyMismatch, "header.kid",
                "the receipt was signed for group key \(Hex.encode(groupKey)), not \(Hex.encode(expected))")
        }
        guard Ed25519KeyPair.verify(signature: signature, message: signingInput, publicKey: expected) else {
            throw ReceiptError(
                .invalidSignature, "signature", "does not verify under group key \(Hex.encode(expected))")
        }
    }

    /// Parses `compact` strictly and verifies it under `groupKey`: the one call a service needs.
    public static func verified(_ compact: some StringProtocol, groupKey: [UInt8]) throws(ReceiptError) -> Receipt {
        let receipt = try Receipt(parsing: compact)
        try receipt.verify(groupKey: groupKey)
        return receipt
    }
}
