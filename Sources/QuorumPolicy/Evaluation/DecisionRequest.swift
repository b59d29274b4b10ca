/// One header field as received, name case preserved.
public struct HeaderField: Sendable, Equatable, Hashable {
    /// The field name.
    public var name: String
    /// The field value.
    public var value: String

    /// A field.
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// The canonical description of one agent call that the proxy sends to every node.
///
/// It carries the raw request target (nodes normalise it themselves, so a proxy cannot hand them a
/// friendlier path than the upstream would see), the headers filters may read, the body (or a
/// prefix of it, with its full length), the client address and the agent's token. The token is
/// needed to authenticate the latch; it prints as `<redacted>` and never reaches a verdict.
public struct DecisionRequest: Sendable, Equatable, CustomStringConvertible {
    /// Unique per call; verdicts and receipts name it.
    public var requestID: String
    /// The method as received (case-sensitive).
    public var method: String
    /// The request target as received: path and optional `?query`, undecoded.
    public var target: String
    /// Header fields in the order received.
    public var headers: [HeaderField]
    /// The body, or its first bytes when it was longer than the proxy forwards.
    public private(set) var body: [UInt8]
    /// The body's full length in bytes (at least `body.count`).
    public private(set) var bodyLength: Int
    /// The client's IP address as the proxy saw it.
    public var clientAddress: String
    /// The `lat_…` token the agent presented, or empty when it presented none.
    public var token: String
    /// SHA-256 of the DER client certificate the agent presented to the proxy's TLS listener
    /// (RFC 8705 `x5t#S256`), or nil when it presented none.
    public var clientCertificateSHA256: [UInt8]?

    /// A request; `bodyLength` defaults to the body's length.
    public init(
        requestID: String, method: String, target: String, headers: [HeaderField] = [], body: [UInt8] = [],
        bodyLength: Int? = nil, clientAddress: String, token: String, clientCertificateSHA256: [UInt8]? = nil
    ) {
        self.clientCertificateSHA256 = clientCertificateSHA256
        self.requestID = requestID
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.bodyLength = max(bodyLength ?? body.count, body.count)
        self.clientAddress = clientAddress
        self.token = token
    }

    /// Whether the whole body is present.
    public var hasCompleteBody: Bool { bodyLength == body.count }

    /// The values of header `name` (ASCII case-insensitive), in order.
    public func headerValues(_ name: String) -> [String] {
        headers.filter { $0.name.equalsIgnoringASCIICase(name) }.map(\.value)
    }

    /// The request without its token.
    public var description: String {
        "DecisionRequest(\(requestID) \(method) \(target) from \(clientAddress), \(bodyLength) body bytes, token <redacted>)"
    }
}
