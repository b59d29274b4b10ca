/// A path prefix routed to an upstream with a secret and its own filters.
///
/// A latch may have many mounts, so one token reaches many upstreams: `/openai/v1/...` goes to
/// `https://api.openai.com/v1/...` with the `openai` secret, `/github/...` to GitHub with another.
/// The path after the prefix is what the mount's `endpoint` filters see.
public struct Mount: Sendable, Equatable {
    /// The reserved prefix that answers the agent with what it may do; never forwarded upstream.
    public static let selfPath = "/self"

    /// The prefix, normalised, starting with `/` and without a trailing slash (`/openai`).
    public let path: String
    /// The upstream base URL (`https://api.openai.com`). `nil` in a derived latch: inherited.
    public let upstream: String?
    /// The name of the ``SecretSpec`` injected upstream. `nil` in a derived latch: inherited; a root
    /// latch's mount without a secret forwards without a credential.
    public let secret: String?
    /// The mount's own filters, run after the latch's filters of the same level.
    public let filters: [Filter]

    /// A mount at `path`.
    public init(path: String, upstream: String?, secret: String?, filters: [Filter]) {
        self.path = path
        self.upstream = upstream
        self.secret = secret
        self.filters = filters
    }

    /// Whether the normalised request path `requestPath` lies under `prefix`: equal to it or
    /// continuing it with `/`. `/openai` covers `/openai` and `/openai/v1`, not `/openaix`.
    static func prefix(_ prefix: String, covers requestPath: String) -> Bool {
        guard requestPath.utf8.starts(with: prefix.utf8) else { return false }
        let rest = requestPath.utf8.dropFirst(prefix.utf8.count)
        return rest.isEmpty || rest.first == UInt8(ascii: "/")
    }
}
