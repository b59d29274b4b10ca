/// Why a signed note, a checkpoint, a verifier key or a signer was refused: a stable code, a human
/// reason naming the offending line or field, and the source location that raised it.
public struct NoteError: Error, Sendable, CustomStringConvertible {
    /// Stable machine-readable codes. Their raw values appear in CLI output and logs.
    public enum Code: String, Sendable {
        /// The note is not a C2SP signed note (encoding, blank line, signature line syntax).
        case malformedNote = "malformed-note"
        /// The note text is not a C2SP tlog-checkpoint body.
        case malformedCheckpoint = "malformed-checkpoint"
        /// A verifier key string (`name+keyid+base64`) could not be used.
        case malformedVerifierKey = "malformed-verifier-key"
        /// A key name is empty or contains a Unicode space or `+`.
        case invalidKeyName = "invalid-key-name"
        /// The note carries more signature lines than a verifier is willing to check.
        case tooManySignatures = "too-many-signatures"
        /// A signature by a known key does not verify: the whole note is refused.
        case invalidSignature = "invalid-signature"
        /// No signature by a known key is present.
        case noVerifiedSignature = "no-verified-signature"
        /// Two configured verifiers share a key name and key ID.
        case ambiguousVerifier = "ambiguous-verifier"
        /// A signer could not produce a signature.
        case signingFailed = "signing-failed"
    }

    /// What kind of refusal this is.
    public let code: Code
    /// What was wrong and where (line, field, key), for a human.
    public let reason: String
    /// The source file that raised the error.
    public let file: String
    /// The source line that raised the error.
    public let line: Int

    /// An error raised at the caller's source location.
    public init(_ code: Code, _ reason: String, file: StaticString = #fileID, line: Int = #line) {
        self.code = code
        self.reason = reason
        self.file = "\(file)"
        self.line = line
    }

    /// `<code>: <reason>`, as printed by the CLI and logs.
    public var description: String { "\(code.rawValue): \(reason)" }
}
