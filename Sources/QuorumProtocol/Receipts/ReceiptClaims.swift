import QuorumCrypto

/// What a receipt says about one decision: which call (request id, time, latch, mount, method,
/// path, body digest), what the quorum decided, under which policy bundle, and which nodes signed.
///
/// The claims are built independently by each of the k signers from the same decision, so they
/// must have exactly one encoding: ``canonicalJSON()`` writes RFC 8785 (JCS) bytes, and a receipt
/// whose claims are not those bytes is refused when parsed. See `docs/receipts.md`.
public struct ReceiptClaims: Sendable, Equatable {
    /// The decision a receipt records.
    public enum Decision: String, Sendable, Equatable, CaseIterable {
        /// At least k nodes allowed and signed; the call was forwarded.
        case allow
        /// The quorum denied; the call was not forwarded.
        case deny
    }

    /// The fixed `iss` claim, so a service that accepts JWTs from several issuers can tell a
    /// receipt from its other tokens.
    public static let issuer = "quorum-latch"

    /// Every claim name, in canonical (JCS) order.
    public static let names = [
        "body_sha256", "bundle", "decision", "iat", "iss", "jti", "latch", "method", "mount", "path", "reasons",
        "signers",
    ]

    /// `jti`: the request id the proxy gave the call (1–128 printable ASCII bytes, no spaces).
    public var requestID: String
    /// `iat`: when the proxy received the call, in whole seconds since 1970 (UTC).
    public var issuedAt: Int64
    /// `latch`: the latch id the token named; empty when the token named none.
    public var latch: String
    /// `mount`: the mount path that matched (`/openai`); empty when none matched.
    public var mount: String
    /// `method`: the HTTP method, as the agent sent it.
    public var method: String
    /// `path`: the normalised path the agent called, with the query if any.
    public var path: String
    /// `body_sha256`: SHA-256 of the request body as received, 64 lower-case hex digits (the digest
    /// of the empty string for a call without a body).
    public var bodySHA256: String
    /// `decision`.
    public var decision: Decision
    /// `bundle`: the SHA-256 digest of the policy bundle the nodes decided under, 64 lower-case hex
    /// digits without the `sha256:` prefix; empty when the nodes held no bundle.
    public var bundle: String
    /// `signers`: the identifiers of the nodes whose shares make the signature, ascending, each once.
    public var signers: [Int]
    /// `reasons`: why, in the nodes' words (a deny's filter and message); may be empty.
    public var reasons: [String]

    /// Claims for one decision. Nothing is checked here; ``validate()`` (called when a receipt is
    /// built or parsed) says what is wrong.
    public init(
        requestID: String, issuedAt: Int64, latch: String, mount: String, method: String, path: String,
        bodySHA256: String, decision: Decision, bundle: String, signers: [Int], reasons: [String]
    ) {
        self.requestID = requestID
        self.issuedAt = issuedAt
        self.latch = latch
        self.mount = mount
        self.method = method
        self.path = path
        self.bodySHA256 = bodySHA256
        self.decision = decision
        self.bundle = bundle
        self.signers = signers
        self.reasons = reasons
    }

    /// Checks every claim's rule, throwing ``ReceiptError/Code/invalidClaim`` naming the first
    /// claim that breaks one.
    public func validate() throws(ReceiptError) {
        func invalid(_ name: String, _ reason: String) -> ReceiptError {
            ReceiptError(.invalidClaim, "claims.\(name)", reason)
        }
        if let problem = SigningLimits.requestIDProblem(requestID) { throw invalid("jti", problem) }
        guard (0...CanonicalJSON.maximumInteger).contains(issuedAt) else {
            throw invalid("iat", "\(issuedAt) is not a time in seconds since 1970 (0…\(CanonicalJSON.maximumInteger))")
        }
        guard !method.isEmpty else { throw invalid("method", "empty; expected the HTTP method") }
        guard Self.isLowerHex(bodySHA256) else {
            throw invalid("body_sha256", "expected 64 lower-case hex digits (SHA-256 of the request body)")
        }
        guard bundle.isEmpty || Self.isLowerHex(bundle) else {
            throw invalid("bundle", "expected 64 lower-case hex digits (the bundle digest without 'sha256:') or ''")
        }
        guard !signers.isEmpty else { throw invalid("signers", "empty; a receipt names the nodes that signed it") }
        var previous = 0
        for signer in signers {
            guard (1...Int(UInt16.max)).contains(signer) else {
                throw invalid("signers", "\(signer) is not a node identifier (1…65535)")
            }
            guard signer > previous else {
                throw invalid("signers", "\(signer) after \(previous); identifiers are listed once each, ascending")
            }
            previous = signer
        }
    }

    /// The claims as their canonical JSON value.
    var value: CanonicalJSON.Value {
        .object([
            "iss": .string(Self.issuer),
            "jti": .string(requestID),
            "iat": .integer(issuedAt),
            "latch": .string(latch),
            "mount": .string(mount),
            "method": .string(method),
            "path": .string(path),
            "body_sha256": .string(bodySHA256),
            "decision": .string(decision.rawValue),
            "bundle": .string(bundle),
            "signers": .array(signers.map { .integer(Int64($0)) }),
            "reasons": .array(reasons.map { .string($0) }),
        ])
    }

    /// The RFC 8785 (JCS) bytes of the claims: the JWS payload every signer builds identically.
    public func canonicalJSON() throws(ReceiptError) -> [UInt8] {
        try validate()
        return CanonicalJSON.encode(value)
    }

    /// SHA-256 of the canonical JSON of every claim but `signers`: what was decided, whoever signs
    /// it. A node records this per request id (one decision per request id) and signs a receipt of
    /// it for any signer set; a receipt with any other claim changed is another decision.
    public var decisionDigest: [UInt8] {
        var unsigned = self
        unsigned.signers = []
        return sha256Digest(CanonicalJSON.encode(unsigned.value))
    }

    /// The claims as indented JSON in canonical key order, for people (`quorumctl receipt verify`).
    public func prettyJSON() -> String { CanonicalJSON.prettyEncode(value) }

    /// Reads claims from a decoded JSON value, refusing unknown, missing and mistyped claims.
    init(json: CanonicalJSON.Value) throws(ReceiptError) {
        guard case .object(let members) = json else {
            throw ReceiptError(.invalidJSON, "claims", "\(json.kind); the claims are a JSON object")
        }
        if let unknown = members.keys.sorted(by: CanonicalJSON.utf16Precedes).first(where: {
            !Self.names.contains($0)
        }) {
            throw ReceiptError(
                .unknownClaim, "claims.\(unknown)",
                "not a receipt claim; expected only \(Self.names.joined(separator: ", "))")
        }
        if let missing = Self.names.first(where: { members[$0] == nil }) {
            throw ReceiptError(.missingClaim, "claims.\(missing)", "required in every receipt")
        }
        func string(_ name: String) throws(ReceiptError) -> String {
            guard case .string(let text)? = members[name] else {
                throw ReceiptError(.invalidClaim, "claims.\(name)", "\(members[name]!.kind); expected a string")
            }
            return text
        }
        func integer(_ name: String, _ value: CanonicalJSON.Value?) throws(ReceiptError) -> Int64 {
            guard case .integer(let number)? = value else {
                throw ReceiptError(.invalidClaim, "claims.\(name)", "\(value!.kind); expected an integer")
            }
            return number
        }
        guard try string("iss") == Self.issuer else {
            throw ReceiptError(.invalidClaim, "claims.iss", "expected \"\(Self.issuer)\"")
        }
        let decisionText = try string("decision")
        guard let decision = Decision(rawValue: decisionText) else {
            throw ReceiptError(.invalidClaim, "claims.decision", "expected \"allow\" or \"deny\"")
        }
        guard case .array(let signerValues)? = members["signers"] else {
            throw ReceiptError(
                .invalidClaim, "claims.signers", "\(members["signers"]!.kind); expected an array of node identifiers")
        }
        var signers: [Int] = []
        for value in signerValues {
            let number = try integer("signers", value)
            guard (1...Int64(UInt16.max)).contains(number) else {
                throw ReceiptError(.invalidClaim, "claims.signers", "\(number) is not a node identifier (1…65535)")
            }
            signers.append(Int(number))
        }
        guard case .array(let reasonValues)? = members["reasons"] else {
            throw ReceiptError(
                .invalidClaim, "claims.reasons", "\(members["reasons"]!.kind); expected an array of strings")
        }
        var reasons: [String] = []
        for value in reasonValues {
            guard case .string(let text) = value else {
                throw ReceiptError(.invalidClaim, "claims.reasons", "holds \(value.kind); expected strings")
            }
            reasons.append(text)
        }
        self.init(
            requestID: try string("jti"), issuedAt: try integer("iat", members["iat"]), latch: try string("latch"),
            mount: try string("mount"), method: try string("method"), path: try string("path"),
            bodySHA256: try string("body_sha256"), decision: decision, bundle: try string("bundle"),
            signers: signers, reasons: reasons)
        try validate()
    }

    private static func isLowerHex(_ text: String) -> Bool {
        text.utf8.count == 64
            && text.utf8.allSatisfy {
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                    || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
            }
    }
}
