import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import QuorumAudit
import QuorumNode
import TOMLKit

/// The `[audit]` table of the proxy: which nodes' audit APIs it forwards to, in the order tried.
public struct AuditForwarding: Sendable, Hashable {
    /// Audit API base URLs (`http://host:port`), tried in order until one answers.
    public var nodes: [String]
    /// How long one node may take to its response head before the next is tried.
    public var timeout: Duration = .seconds(5)
    /// Per-client token bucket, applied before anything is forwarded.
    public var limits = ClientRateLimiter.Limits()

    /// Forwarding to `nodes`.
    public init(nodes: [String]) { self.nodes = nodes }

    static let keys = ["nodes", "timeout_ms", "burst", "per_second"]

    static func parse(_ table: TOMLTable, reader: TOMLFieldReader) throws(NodeConfigurationError) -> AuditForwarding? {
        guard let value = table["audit"] else { return nil }
        guard let audit = value.table else {
            throw reader.error("audit", "is a \(value.type); it must be a table ([audit]) with nodes")
        }
        try reader.refuseUnknown(audit, allowed: keys, prefix: "audit.")
        guard let list = audit["nodes"]?.array, !list.isEmpty else {
            throw reader.error(
                "audit.nodes", "missing or empty; list the nodes' audit API URLs, as [\"http://127.0.0.1:7301\"]")
        }
        var nodes: [String] = []
        for (index, element) in list.enumerated() {
            guard let text = element.string, let url = URL(string: text), ["http", "https"].contains(url.scheme ?? ""),
                url.host != nil, url.query == nil, url.path.isEmpty || url.path == "/"
            else {
                throw reader.error(
                    "audit.nodes[\(index + 1)]",
                    "is not an http(s) base URL without a path, as \"http://127.0.0.1:7301\"")
            }
            nodes.append(text.hasSuffix("/") ? String(text.dropLast()) : text)
        }
        var forwarding = AuditForwarding(nodes: nodes)
        forwarding.timeout = .milliseconds(
            try reader.milliseconds(audit["timeout_ms"], key: "audit.timeout_ms", default: 5000))
        forwarding.limits = try reader.auditLimits(audit, prefix: "audit.")
        return forwarding
    }
}

/// Serves `GET|HEAD /.well-known/quorum/audit/<route>` by forwarding it to the first node that
/// answers, streaming the answer back.
///
/// Only what the audit API defines is forwarded: the path is parsed as an ``AuditRoute`` and sent
/// in its canonical spelling, a query only to the proof routes and only once it parses, and no
/// header of the client's (its `Authorization` included) goes to the node. Everything else under
/// the prefix is answered here (400, 404, 405, 429) and never reaches a node. A node that does not
/// answer, or answers 429 or 5xx, is passed over for the next.
struct AuditForwarder: Sendable {
    let forwarding: AuditForwarding
    let client: HTTPClient
    let limiter: ClientRateLimiter
    let logger: Logger

    init(forwarding: AuditForwarding, client: HTTPClient, logger: Logger) {
        self.forwarding = forwarding
        self.client = client
        limiter = ClientRateLimiter(limits: forwarding.limits)
        self.logger = logger
    }

    /// The answer under the prefix when no `[audit]` table is configured.
    static func notConfigured(head: Bool) -> Response {
        AuditHTTP.response(
            .init(status: 404, code: "not_found", "this proxy forwards no audit API ([audit] nodes is not set)"),
            head: head)
    }

    /// Whether `target` is under the audit prefix (and so never an agent call).
    static func handles(_ target: String) -> Bool {
        let path = AuditHTTP.split(target).path
        return path == AuditHTTP.proxyPrefix || path.hasPrefix(AuditHTTP.proxyPrefix + "/")
    }

    func respond(to request: Request, clientAddress: String?) async -> Response {
        let head = request.method == .head
        if let refusal = AuditHTTP.refuseMethod(request.method) { return AuditHTTP.response(refusal, head: head) }
        if let wait = limiter.admit(ClientRateLimiter.key(forAddress: clientAddress)) {
            return AuditHTTP.response(AuditHTTP.rateLimited(wait), head: head)
        }
        let (path, query) = AuditHTTP.split(request.head.path ?? "")
        let route: AuditRoute
        do {
            route = try AuditRoute.parse(String(path.dropFirst(AuditHTTP.proxyPrefix.count + 1)))
            try route.checkQuery(query)
        } catch {
            return AuditHTTP.response(error, head: head)
        }
        let suffix = "/" + route.path + (route.takesQuery ? query.map { "?" + $0 } ?? "" : "")
        var last: HTTPClientResponse?
        for node in forwarding.nodes {
            var forwarded = HTTPClientRequest(url: node + suffix)
            forwarded.method = head ? .HEAD : .GET
            do {
                let response = try await client.execute(forwarded, timeout: .init(forwarding.timeout))
                if response.status.code == 429 || response.status.code >= 500 {
                    logger.info(
                        "audit node passed over", metadata: ["node": "\(node)", "status": "\(response.status.code)"])
                    last = response
                    continue
                }
                return Self.relay(response)
            } catch {
                logger.info("audit node did not answer", metadata: ["node": "\(node)", "reason": "\(error)"])
            }
        }
        if let last { return Self.relay(last) }
        return AuditHTTP.response(
            .init(status: 502, code: "audit_unavailable", "none of the \(forwarding.nodes.count) audit nodes answered"),
            head: head)
    }

    /// The node's answer, streamed: its status, the headers the audit API sets, its body.
    private static func relay(_ response: HTTPClientResponse) -> Response {
        var headers = HTTPFields()
        for name in [
            HTTPField.Name.contentType, .contentLength, .cacheControl, .retryAfter, .allow, .xContentTypeOptions,
            .contentEncoding,
        ] {
            if let value = response.headers.first(name: name.rawName) { headers[name] = value }
        }
        return Response(
            status: .init(code: Int(response.status.code)), headers: headers,
            body: ResponseBody(asyncSequence: response.body))
    }
}
