import QuorumProtocol

/// Why the transport refused a connection, a frame or a request.
///
/// Modelled on swift-certificates' `CertificateError`: a stable ``code`` to switch on, the ``peer``
/// or input at fault, a ``reason`` saying what would have been valid, and the source location
/// that raised it. The description is one line and never contains key material or payload bytes.
public struct TransportError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of refusal this is; stable across releases, so callers switch on it.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// A certificate, key or setting could not be loaded or is out of range.
        case configuration
        /// The peer's certificate was refused: foreign CA, expired, wrong usage, no identity.
        case untrustedPeer = "untrusted-peer"
        /// The peer's certificate is valid but its role may not use this listener or call.
        case unauthorizedRole = "unauthorized-role"
        /// The peer's certificate names another identity than the one dialled, or a frame claims an
        /// identity its certificate does not carry.
        case identityMismatch = "identity-mismatch"
        /// The TCP connection or the TLS handshake failed or took too long.
        case connectFailed = "connect-failed"
        /// The connection closed (or was closed by a refusal) before the answer arrived.
        case connectionClosed = "connection-closed"
        /// The request's deadline passed before its answer arrived; a later answer is dropped.
        case deadlineExceeded = "deadline-exceeded"
        /// Too many requests are waiting on this connection; try later or another node.
        case overloaded
        /// A frame is larger than the configured maximum and was not sent.
        case frameTooLarge = "frame-too-large"
        /// The peer answered with an error response (``ErrorResponse``), carried in ``response``.
        case refusedByPeer = "refused-by-peer"
        /// The peer broke the protocol: a frame that does not decode, or one that does not fit.
        case protocolViolation = "protocol-violation"
    }

    /// What kind of refusal this is.
    public let code: Code
    /// The peer (`node 3 at 127.0.0.1:7100`) or input (a file path, a setting) at fault.
    public let peer: String
    /// What was wrong and, where there is one, what would have been valid.
    public let reason: String
    /// The peer's error response, for ``Code/refusedByPeer``.
    public let response: ErrorResponse?
    /// Where the error was raised (for debugging; not part of `description`).
    public let sourceFile: String
    /// The line in `sourceFile`.
    public let sourceLine: Int

    /// Makes an error about `peer`; the source location defaults to the caller's.
    public init(
        _ code: Code, peer: String, _ reason: String, response: ErrorResponse? = nil,
        sourceFile: String = #fileID, sourceLine: Int = #line
    ) {
        self.code = code
        self.peer = peer
        self.reason = reason
        self.response = response
        self.sourceFile = sourceFile
        self.sourceLine = sourceLine
    }

    /// `code: peer: reason`, on one line.
    public var description: String { "\(code.rawValue): \(peer): \(reason)" }
}
