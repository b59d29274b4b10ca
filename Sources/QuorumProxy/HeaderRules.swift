import Foundation
import QuorumCrypto
import QuorumPolicy

/// One header field as a list entry, name case preserved. The front works on plain lists so that
/// the same rules apply to Hummingbird's `HTTPFields`, AsyncHTTPClient's `HTTPHeaders` and
/// QuorumPolicy's ``HeaderField``.
public typealias HeaderList = [(name: String, value: String)]

/// Which headers cross the proxy, in which direction, and which it adds. One place for the rules
/// of a correct reverse proxy (RFC 9110 §7.6) and for the proxy's own headers.
public enum HeaderRules {
    /// Sent to the agent and to the upstream: the allow (or deny) receipt, a compact JWS.
    public static let receipt = "Latch-Receipt"
    /// Sent to the agent and to the upstream: the request id every verdict and receipt names.
    public static let requestID = "Latch-Request-Id"
    /// The agent's token header, the alternative to `Authorization: Bearer`.
    public static let tokenHeader = "x-latch-token"

    /// Hop-by-hop fields (RFC 9110 §7.6.1 and the de-facto `Keep-Alive`, `Proxy-Connection`):
    /// meaningful for one connection only, never forwarded either way.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
        "transfer-encoding", "upgrade",
    ]

    /// Fields that carry the agent's token: never forwarded, never sent to the nodes as headers
    /// (the token travels in the decision request's own field).
    static let agentCredentials: Set<String> = ["authorization", HeaderRules.tokenHeader]

    /// The lower-cased names that a `Connection` field lists: hop-by-hop for this message.
    static func connectionOptions(_ headers: HeaderList) -> Set<String> {
        var names: Set<String> = []
        for field in headers where field.name.lowercased() == "connection" {
            for option in field.value.split(separator: ",") {
                let name = option.trimmingCharacters(in: .whitespaces).lowercased()
                if !name.isEmpty { names.insert(name) }
            }
        }
        return names
    }

    /// The agent's token: `x-latch-token`, else the credentials of `Authorization: Bearer`; empty
    /// when neither is present. `nil` when the agent sent more than one token field or two
    /// different tokens: ambiguous, refused.
    public static func agentToken(_ headers: HeaderList) -> String? {
        let explicit = headers.filter { $0.name.lowercased() == tokenHeader }.map {
            $0.value.trimmingCharacters(in: .whitespaces)
        }
        let authorization = headers.filter { $0.name.lowercased() == "authorization" }.map(\.value)
        if explicit.count > 1 || authorization.count > 1 { return nil }
        var bearer: String?
        if let value = authorization.first {
            let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                bearer = parts[1].trimmingCharacters(in: .whitespaces)
            }
        }
        switch (explicit.first, bearer) {
        case (let token?, let other?) where token != other && other.hasPrefix(LatchToken.prefix): return nil
        case (let token?, _): return token
        case (nil, let token?): return token
        case (nil, nil): return ""
        }
    }

    /// The headers the nodes see: what the agent sent, less hop-by-hop fields, the token fields
    /// and `Cookie` (a session cookie is a credential for the upstream, not something to spread to
    /// every node's log). Order and case are kept.
    public static func decisionHeaders(_ headers: HeaderList) -> [HeaderField] {
        let options = connectionOptions(headers)
        return headers.compactMap { field in
            let name = field.name.lowercased()
            if hopByHop.contains(name) || options.contains(name) || agentCredentials.contains(name) || name == "cookie"
            {
                return nil
            }
            return HeaderField(name: field.name, value: field.value)
        }
    }

    /// The headers sent upstream, before the credential: the agent's less hop-by-hop fields, its
    /// token fields, `Host` (the upstream's comes from its URL), `Content-Length` (set from the
    /// body forwarded), `Expect`, our own headers and `X-Forwarded-Proto`/`-Host`; then
    /// `X-Forwarded-For` with the client appended, `X-Forwarded-Proto`, `X-Forwarded-Host`,
    /// `Accept-Encoding: identity` (the proxy reads the body for usage and obligations), the
    /// request id and the receipt.
    public static func upstreamHeaders(
        agent headers: HeaderList, clientAddress: String, scheme: String, requestID: String, receipt: String
    ) -> HeaderList {
        let options = connectionOptions(headers)
        let dropped: Set<String> = [
            "host", "content-length", "expect", "accept-encoding", "x-forwarded-proto", "x-forwarded-host",
            HeaderRules.receipt.lowercased(), HeaderRules.requestID.lowercased(),
        ]
        var out: HeaderList = []
        var forwardedFor: [String] = []
        var host: String?
        for field in headers {
            let name = field.name.lowercased()
            if name == "host" { host = host ?? field.value }
            if name == "x-forwarded-for" {
                forwardedFor.append(field.value)
                continue
            }
            if hopByHop.contains(name) || options.contains(name) || agentCredentials.contains(name)
                || dropped.contains(name)
            {
                continue
            }
            out.append(field)
        }
        forwardedFor.append(clientAddress)
        out.append(("X-Forwarded-For", forwardedFor.joined(separator: ", ")))
        out.append(("X-Forwarded-Proto", scheme))
        if let host { out.append(("X-Forwarded-Host", host)) }
        out.append(("Accept-Encoding", "identity"))
        out.append((HeaderRules.requestID, requestID))
        out.append((HeaderRules.receipt, receipt))
        return out
    }

    /// The upstream's response headers sent to the agent: less hop-by-hop fields, `Content-Length`
    /// (the front frames the body it sends) and any `Latch-*` of the upstream's (the proxy's own
    /// are added by the front).
    public static func responseHeaders(_ headers: HeaderList) -> HeaderList {
        let options = connectionOptions(headers)
        return headers.filter { field in
            let name = field.name.lowercased()
            return
                !(hopByHop.contains(name) || options.contains(name) || name == "content-length"
                || name == HeaderRules.receipt.lowercased() || name == HeaderRules.requestID.lowercased())
        }
    }
}

/// Why a credential could not be injected. Never carries the credential.
public struct InjectionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was wrong, naming the secret's injection but never its value.
    public let reason: String

    /// `reason`.
    public var description: String { reason }
}

/// Puts a released credential into an upstream request as its ``SecretSpec`` says.
public enum CredentialInjection {
    /// Adds `credential` to `headers` or `query` per `injection`, replacing whatever the agent sent
    /// in the same place. Works on a transient copy of the secret, which it wipes; the header or
    /// query string it writes lives until the request is sent (Swift strings cannot be wiped).
    public static func inject(
        _ credential: SecretBytes, as injection: SecretSpec.Injection, headers: inout HeaderList, query: inout String?
    ) throws(InjectionError) {
        var bytes = credential.copyBytes()
        defer { wipe(&bytes) }
        switch injection {
        case .bearer:
            let value = try headerValue(bytes, for: "Authorization: Bearer")
            headers.removeAll { $0.name.lowercased() == "authorization" }
            headers.append(("Authorization", "Bearer " + value))
        case .header(let name):
            let value = try headerValue(bytes, for: "header \(name)")
            headers.removeAll { $0.name.lowercased() == name.lowercased() }
            headers.append((name, value))
        case .basic(let username):
            var pair = Array(username.utf8) + [UInt8(ascii: ":")] + bytes
            defer { wipe(&pair) }
            headers.removeAll { $0.name.lowercased() == "authorization" }
            headers.append(("Authorization", "Basic " + Data(pair).base64EncodedString()))
        case .query(let parameter):
            var kept: [Substring] = []
            if let query, !query.isEmpty {
                for item in query.split(separator: "&", omittingEmptySubsequences: false) {
                    let name = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
                    if decodeQueryComponent(name) == parameter { continue }
                    kept.append(item)
                }
            }
            kept.append(Substring(percentEncode(Array(parameter.utf8)) + "=" + percentEncode(bytes)))
            query = kept.joined(separator: "&")
        }
    }

    /// The credential as a header value; refused when it holds bytes a header cannot carry.
    private static func headerValue(_ bytes: [UInt8], for place: String) throws(InjectionError) -> String {
        guard !bytes.isEmpty, bytes.allSatisfy({ $0 == 0x09 || (0x20...0x7E).contains($0) }) else {
            throw InjectionError(
                reason: "the released credential cannot be sent as \(place): it is empty or holds bytes other than "
                    + "printable ASCII")
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// RFC 3986 percent-encoding of everything but the unreserved characters.
    static func percentEncode(_ bytes: [UInt8]) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 3)
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.append(byte)
            default:
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
        defer { wipe(&out) }
        return String(decoding: out, as: UTF8.self)
    }

    /// A query name as an upstream reads it: `+` is a space and percent-encodings decoded, so
    /// `ke%79` and `key` are the same parameter (an agent must not smuggle its own past the
    /// replacement).
    static func decodeQueryComponent(_ text: Substring) -> String {
        var out: [UInt8] = []
        let bytes = Array(text.utf8)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), index + 2 < bytes.count,
                let value = UInt8(String(decoding: bytes[(index + 1)...(index + 2)], as: UTF8.self), radix: 16)
            {
                out.append(value)
                index += 2
            } else {
                out.append(byte)
            }
            index += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Zeroes a transient copy (through ``SecretBytes``, which wipes with `sodium_memzero`).
    private static func wipe(_ bytes: inout [UInt8]) {
        _ = SecretBytes(consuming: &bytes)
    }
}
