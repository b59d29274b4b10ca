/// A receipt that was refused: a stable code, the part at fault (`header`, `claims.signers`,
/// `signature`), and a reason naming what would have been valid.
///
/// Parsing is strict (see ``Receipt/init(parsing:)``): every way a compact JWS can differ from
/// the one byte string the quorum signed has its own code, so a verifier, a log line or a test
/// can tell a truncated header from a forged `alg` from a signature by another quorum.
public struct ReceiptError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of refusal this is; stable across releases (the raw values appear in CLI output).
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// The compact string is longer than ``Receipt/maximumLength``.
        case tooLarge = "too-large"
        /// Not three dot-separated segments (header, claims, signature).
        case segmentCount = "segment-count"
        /// A segment is empty (an unsigned JWS, or a detached payload).
        case emptySegment = "empty-segment"
        /// A segment is not unpadded, canonical base64url.
        case invalidBase64URL = "invalid-base64url"
        /// A segment's bytes are not UTF-8 JSON of the subset receipts use.
        case invalidJSON = "invalid-json"
        /// A JSON object names one key twice.
        case duplicateKey = "duplicate-key"
        /// `alg` is not `EdDSA` (`none`, `HS256`, `ES256`, …).
        case unsupportedAlgorithm = "unsupported-algorithm"
        /// The protected header is not exactly the canonical `{"alg":"EdDSA","kid":…,"typ":"JWT"}`
        /// (an extra field such as `crit` or `jku`, a missing `kid`, another `typ`, whitespace).
        case invalidHeader = "invalid-header"
        /// A claim receipts require is absent.
        case missingClaim = "missing-claim"
        /// A claim receipts do not define is present.
        case unknownClaim = "unknown-claim"
        /// A claim has the wrong type or a value outside its rule.
        case invalidClaim = "invalid-claim"
        /// The claims decode but are not their canonical (RFC 8785) bytes.
        case nonCanonicalClaims = "non-canonical-claims"
        /// The signature segment does not decode to 64 bytes.
        case invalidSignatureLength = "invalid-signature-length"
        /// A group key that is not a 32-byte Ed25519 public key.
        case invalidGroupKey = "invalid-group-key"
        /// The receipt names (`kid`) another group key than the one it is verified against.
        case keyMismatch = "key-mismatch"
        /// The signature does not verify under the group key.
        case invalidSignature = "invalid-signature"
    }

    /// What kind of refusal this is.
    public let code: Code
    /// The part at fault: `receipt`, `header`, `header.alg`, `claims`, `claims.<name>`, `signature`.
    public let part: String
    /// What was wrong and what would have been valid; never more of the input than a field name.
    public let reason: String

    /// A refusal of kind `code` of `part`.
    public init(_ code: Code, _ part: String, _ reason: String) {
        self.code = code
        self.part = part
        self.reason = reason
    }

    /// `code: part: reason`, on one line.
    public var description: String { "\(code.rawValue): \(part): \(reason)" }

    /// Whether the receipt itself was well formed and only its signature (or the key it names)
    /// failed: a verifier reports this differently from garbage input.
    public var isVerificationFailure: Bool { code == .invalidSignature || code == .keyMismatch }
}
