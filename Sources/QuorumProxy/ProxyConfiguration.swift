import Foundation
import QuorumCrypto
import QuorumNode
import QuorumPolicy
import TOMLKit

/// A bad `quorum-proxy` configuration file: the file, the key at fault and what would be valid.
public struct ProxyConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The configuration file.
    public let file: String
    /// The key at fault, dotted (`upstream.read_timeout_ms`), or empty for the file as a whole.
    public let key: String
    /// What is wrong and what would be valid.
    public let reason: String

    /// An error about `key` in `file`.
    public init(file: String, key: String, _ reason: String) {
        self.file = file
        self.key = key
        self.reason = reason
    }

    init(_ error: NodeConfigurationError) {
        self.init(file: error.file, key: error.key, error.reason)
    }

    /// `FILE: KEY: reason`, one line.
    public var description: String {
        key.isEmpty ? "\(file): \(reason)" : "\(file): \(key): \(reason)"
    }
}

/// How the proxy talks to upstreams.
public struct UpstreamConfiguration: Sendable, Hashable {
    /// Longest wait for a TCP (and TLS) connection to an upstream.
    public var connectTimeout: Duration = .seconds(10)
    /// Longest wait from sending the request to the upstream's response head; past it the agent
    /// gets 504.
    public var responseTimeout: Duration = .seconds(120)
    /// Longest silence while reading the upstream's body (an idle timeout, not a total: a long
    /// stream that keeps sending is never cut by it).
    public var readTimeout: Duration = .seconds(300)

    /// Defaults: 10 s to connect, 120 s to the response head, 300 s of silence in a body.
    public init() {}
}

/// Bounds on what the front reads from an agent before asking the quorum.
public struct RequestLimits: Sendable, Hashable {
    /// Most body bytes sent to the nodes in the decision request. A longer body is described by
    /// its first bytes and its full length, so a `payload` rule cannot see it whole (it denies) and
    /// a `body_size` filter decides on the length.
    public var decisionBodyBytes = 1 << 20
    /// Most body bytes held while deciding a request whose length the agent did not declare
    /// (chunked): the front must know the length before it asks. Past it: 413, nothing asked.
    public var maxBufferedBodyBytes = 32 << 20

    /// Defaults: 1 MiB to the nodes, 32 MiB buffered.
    public init() {}
}

/// Everything `quorum-proxy` needs to serve agents: where it listens, the routing view's source,
/// upstream timeouts and the front's limits.
///
/// The TOML file (docs/operations.md, "The proxy"):
///
/// ```toml
/// listen = "127.0.0.1:8080"
///
/// [bundle]
/// file = "bundle.signed.json"          # a signed policy bundle (quorumctl policy sign)
/// trusted_signers = ["<64 hex>"]       # operator public keys it must be signed by
///
/// [upstream]                           # optional
/// connect_timeout_ms = 10000
/// response_timeout_ms = 120000
/// read_timeout_ms = 300000
///
/// [limits]                             # optional
/// decision_body_bytes = 1048576
/// max_buffered_body_bytes = 33554432
/// ```
public struct ProxyConfiguration: Sendable {
    /// The file this was read from, for messages.
    public var file: String
    /// Where the agent-facing HTTP listener binds; port 0 asks for any free port.
    public var listen: NodeAddress
    /// The signed policy bundle whose mounts route calls.
    public var bundlePath: String
    /// Operator Ed25519 public keys (32 bytes each) the bundle must be signed by.
    public var trustedSigners: [[UInt8]]
    /// Upstream timeouts.
    public var upstream = UpstreamConfiguration()
    /// Request limits.
    public var limits = RequestLimits()
    /// Bounds on inspecting responses (QuorumPolicy's ``ResponseLimits``); not in the file yet.
    public var responseLimits = ResponseLimits.default

    /// A configuration.
    public init(file: String, listen: NodeAddress, bundlePath: String, trustedSigners: [[UInt8]]) {
        self.file = file
        self.listen = listen
        self.bundlePath = bundlePath
        self.trustedSigners = trustedSigners
    }

    static let topKeys = ["listen", "bundle", "upstream", "limits"]
    static let bundleKeys = ["file", "trusted_signers"]
    static let upstreamKeys = ["connect_timeout_ms", "response_timeout_ms", "read_timeout_ms"]
    static let limitsKeys = ["decision_body_bytes", "max_buffered_body_bytes"]

    /// Reads and checks the configuration at `path`.
    public static func load(path: String) throws(ProxyConfigurationError) -> ProxyConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ProxyConfigurationError(
                file: path, key: "", "cannot read the configuration file (\(error.localizedDescription))")
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try parse(text, file: path, baseDirectory: base)
    }

    /// Parses configuration `text` read from `file`, resolving relative paths against
    /// `baseDirectory`.
    public static func parse(
        _ text: String, file: String, baseDirectory: String
    ) throws(ProxyConfigurationError) -> ProxyConfiguration {
        do {
            return try parseFields(text, file: file, baseDirectory: baseDirectory)
        } catch {
            throw ProxyConfigurationError(error)
        }
    }

    private static func parseFields(
        _ text: String, file: String, baseDirectory: String
    ) throws(NodeConfigurationError) -> ProxyConfiguration {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw NodeConfigurationError(
                file: file, key: "",
                "not valid TOML at line \(error.source.begin.line), column \(error.source.begin.column): \(error.description)"
            )
        } catch {
            throw NodeConfigurationError(file: file, key: "", "not valid TOML (\(error))")
        }
        let reader = TOMLFieldReader(file: file, base: baseDirectory)
        try reader.refuseUnknown(table, allowed: topKeys, prefix: "")
        let listen = try reader.address(table["listen"], key: "listen", ports: 0...65535)

        guard let bundleValue = table["bundle"] else {
            throw reader.error("bundle", "missing; a [bundle] table with file and trusted_signers is required")
        }
        guard let bundle = bundleValue.table else {
            throw reader.error("bundle", "is a \(bundleValue.type); it must be a table ([bundle])")
        }
        try reader.refuseUnknown(bundle, allowed: bundleKeys, prefix: "bundle.")
        let bundlePath = try reader.path(bundle["file"], key: "bundle.file")
        guard let signersValue = bundle["trusted_signers"] else {
            throw reader.error(
                "bundle.trusted_signers",
                "missing; list the operator public keys (64 hex digits) the bundle is signed by")
        }
        guard let signers = signersValue.array, !signers.isEmpty else {
            throw reader.error(
                "bundle.trusted_signers", "must be a non-empty array of operator public keys (64 hex digits each)")
        }
        var trusted: [[UInt8]] = []
        for (index, element) in signers.enumerated() {
            let key = "bundle.trusted_signers[\(index + 1)]"
            guard let text = element.string, text.utf8.count == 64, let bytes = Hex.decode(text) else {
                throw reader.error(key, "is not an Ed25519 public key as 64 hex digits")
            }
            trusted.append(bytes)
        }

        var configuration = ProxyConfiguration(
            file: file, listen: listen, bundlePath: bundlePath, trustedSigners: trusted)
        if let upstreamValue = table["upstream"] {
            guard let upstream = upstreamValue.table else {
                throw reader.error("upstream", "is a \(upstreamValue.type); it must be a table ([upstream])")
            }
            try reader.refuseUnknown(upstream, allowed: upstreamKeys, prefix: "upstream.")
            configuration.upstream.connectTimeout = .milliseconds(
                try reader.milliseconds(
                    upstream["connect_timeout_ms"], key: "upstream.connect_timeout_ms", default: 10_000))
            configuration.upstream.responseTimeout = .milliseconds(
                try reader.milliseconds(
                    upstream["response_timeout_ms"], key: "upstream.response_timeout_ms", default: 120_000))
            configuration.upstream.readTimeout = .milliseconds(
                try reader.milliseconds(upstream["read_timeout_ms"], key: "upstream.read_timeout_ms", default: 300_000))
        }
        if let limitsValue = table["limits"] {
            guard let limits = limitsValue.table else {
                throw reader.error("limits", "is a \(limitsValue.type); it must be a table ([limits])")
            }
            try reader.refuseUnknown(limits, allowed: limitsKeys, prefix: "limits.")
            configuration.limits.decisionBodyBytes = try byteCount(
                limits["decision_body_bytes"], key: "limits.decision_body_bytes", default: 1 << 20, reader: reader)
            configuration.limits.maxBufferedBodyBytes = try byteCount(
                limits["max_buffered_body_bytes"], key: "limits.max_buffered_body_bytes", default: 32 << 20,
                reader: reader)
            guard configuration.limits.maxBufferedBodyBytes >= configuration.limits.decisionBodyBytes else {
                throw reader.error(
                    "limits.max_buffered_body_bytes",
                    "\(configuration.limits.maxBufferedBodyBytes) is below decision_body_bytes "
                        + "(\(configuration.limits.decisionBodyBytes)); it must be at least as large")
            }
        }
        return configuration
    }

    private static func byteCount(
        _ value: (any TOMLValueConvertible)?, key: String, default fallback: Int, reader: TOMLFieldReader
    ) throws(NodeConfigurationError) -> Int {
        guard let value else { return fallback }
        guard let number = value.int, (0...(1 << 30)).contains(number) else {
            throw reader.error(key, "\(value) is not a byte count 0-1073741824")
        }
        return number
    }
}
