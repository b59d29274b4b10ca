/// A configuration value for a request primitive (endpoint glob, method, address, CIDR, time
/// window, header requirement) that could not be parsed. A stable code, a human reason naming the
/// input, and what would have been valid.
public struct RequestPrimitiveError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable machine-readable codes. Their raw values appear in validation output.
    public enum Code: String, Sendable {
        case invalidEndpointPattern = "invalid-endpoint-pattern"
        case invalidMethod = "invalid-method"
        case invalidAddress = "invalid-address"
        case invalidPrefix = "invalid-prefix"
        case invalidTimeWindow = "invalid-time-window"
        case unknownTimeZone = "unknown-time-zone"
        case invalidHeaderName = "invalid-header-name"
        case invalidGlob = "invalid-glob"
    }

    /// What kind of value was refused.
    public let code: Code
    /// Why, naming the offending input and what would have been valid.
    public let reason: String

    /// Creates an error with a stable code and a reason that names the input.
    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    /// `code: reason`, as printed by validation.
    public var description: String { "\(code.rawValue): \(reason)" }
}
