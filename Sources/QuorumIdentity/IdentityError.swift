/// A certificate, key or request the cluster's identity layer refused.
///
/// Modelled on swift-certificates' `CertificateError`: a stable `code` to switch on, the `input`
/// that was at fault (a file, a flag, "peer certificate"), a `reason` that says what would have been
/// valid, and the source location that raised it for debugging. The description is one line,
/// `input: reason`, and never contains key material.
public struct IdentityError: Error, Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What kind of refusal this is; stable across releases, so callers (the mTLS layer, tests)
    /// switch on it rather than on the text.
    public enum Code: String, Sendable, Hashable {
        /// Not a certificate or key at all: bad PEM, bad DER, the wrong PEM label.
        case malformed
        /// A CA certificate presented where a leaf (node, proxy, operator) belongs.
        case notALeaf
        /// The trust anchor given is not a CA certificate.
        case notACertificateAuthority
        /// The certificate names no cluster role.
        case missingRole
        /// The certificate names more than one role, or its subject disagrees with its role.
        case ambiguousRole
        /// A `quorum-latch:` URI whose role is not node, proxy or operator.
        case unknownRole
        /// A node id of 0, out of range, not a number, or missing from a node certificate.
        case invalidNodeID
        /// An operator name outside the allowed characters or length.
        case invalidName
        /// A host name or address that cannot go into a certificate.
        case invalidHost
        /// A validity period out of range, or one that would outlive the CA.
        case invalidValidity
        /// Not signed by the cluster CA.
        case foreignCA
        /// Past its notAfter.
        case expired
        /// Before its notBefore.
        case notYetValid
        /// Its extended key usage does not allow the TLS side it is used for.
        case wrongUsage
        /// swift-certificates' verifier refused the chain for another reason, given in `reason`.
        case rejected
        /// A private key that does not belong to the certificate beside it.
        case keyMismatch
        /// A file that would be overwritten without `force`.
        case fileExists
        /// A file that could not be read or written.
        case io
    }

    /// What kind of refusal this is.
    public let code: Code
    /// The input at fault: a file path, a flag, or a label such as "peer certificate".
    public let input: String
    /// What was wrong and, where there is one, what would have been valid.
    public let reason: String
    /// Where in this module the error was raised (for debugging; not part of `description`).
    public let sourceFile: String
    /// The line in `sourceFile`.
    public let sourceLine: Int

    /// Makes an error naming `input`; the source location defaults to the caller's.
    public init(
        _ code: Code, input: String, _ reason: String, sourceFile: String = #fileID, sourceLine: Int = #line
    ) {
        self.code = code
        self.input = input
        self.reason = reason
        self.sourceFile = sourceFile
        self.sourceLine = sourceLine
    }

    /// The same error about a different input (a file name instead of "certificate").
    public func naming(_ input: String) -> IdentityError {
        IdentityError(code, input: input, reason, sourceFile: sourceFile, sourceLine: sourceLine)
    }

    /// `input: reason`, on one line.
    public var description: String { "\(input): \(reason)" }

    /// The description with the code and source location.
    public var debugDescription: String { "IdentityError.\(code)(\(description)) at \(sourceFile):\(sourceLine)" }
}
