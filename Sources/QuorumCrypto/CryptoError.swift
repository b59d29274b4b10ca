/// Every failure of QuorumCrypto: a stable code, a human reason, and (where another participant
/// is at fault) the identifiers to blame.
public struct CryptoError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable machine-readable codes. Their raw values appear in CLI output and logs.
    public enum Code: String, Sendable {
        case invalidElement = "invalid-element"
        case identityElement = "identity-element"
        case invalidScalar = "invalid-scalar"
        case invalidIdentifier = "invalid-identifier"
        case duplicateIdentifier = "duplicate-identifier"
        case unsortedCommitments = "unsorted-commitments"
        case missingOwnCommitment = "missing-own-commitment"
        case commitmentMismatch = "commitment-mismatch"
        case tooFewParticipants = "too-few-participants"
        case groupKeyMismatch = "group-key-mismatch"
        case invalidSignatureShare = "invalid-signature-share"
        case invalidSignature = "invalid-signature"
        case invalidProofOfKnowledge = "invalid-proof-of-knowledge"
        case invalidSecretShare = "invalid-secret-share"
        case invalidParameters = "invalid-parameters"
        case transcriptMismatch = "transcript-mismatch"
        case invalidDecryptionShare = "invalid-decryption-share"
        case decryptionFailed = "decryption-failed"
        case malformed = "malformed"
        case wrongKeyPurpose = "wrong-key-purpose"
        case ciphersuiteMismatch = "ciphersuite-mismatch"
        case unknownParticipant = "unknown-participant"
        case nonceAlreadyUsed = "nonce-already-used"
    }

    public let code: Code
    public let reason: String
    /// Participants whose input caused the failure, ascending. Empty when nobody is to blame.
    public let culprits: [Identifier]

    public init(_ code: Code, _ reason: String, culprits: [Identifier] = []) {
        self.code = code
        self.reason = reason
        self.culprits = culprits.sorted()
    }

    public var description: String {
        culprits.isEmpty
            ? "\(code.rawValue): \(reason)"
            : "\(code.rawValue): \(reason) (participants \(culprits.map { String($0.value) }.joined(separator: ", ")))"
    }
}
