import AsyncHTTPClient
import NIOCore
import QuorumNode

/// Whether a running `quorum-proxy` (or its demo upstream) serves HTTP: what `quorum-proxy health`
/// (a container's or a supervisor's health check) asks.
///
/// For the proxy it sends `GET /` to the plain listener. No mount covers `/` in a sensible bundle,
/// so the front answers 404 `no_mount` itself without asking the quorum (or 401 `missing_token` if
/// one does); either way the answer carries `Latch-Request-Id`, which only the proxy's front sets,
/// so another server on the port does not pass. It says the front serves, not that the quorum is
/// reachable: a proxy whose nodes are down is still healthy, and answers calls 503.
public enum ProxyHealth {
    /// The URL that reaches the plain listener bound to `listen`: a wildcard host (`0.0.0.0`, `::`)
    /// on the loopback address of its family, any other host as configured.
    public static func probeURL(for listen: NodeAddress) -> String {
        let host: String
        switch listen.host {
        case "0.0.0.0", "": host = "127.0.0.1"
        case "::", "0:0:0:0:0:0:0:0": host = "[::1]"
        default: host = listen.host.contains(":") ? "[\(listen.host)]" : listen.host
        }
        return "http://\(host):\(listen.port)/"
    }

    /// Why the probe failed, in one line naming the URL.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// What failed.
        public let description: String

        init(_ description: String) { self.description = description }
    }

    /// What answered: the HTTP status, and whether the answer came from the proxy's front.
    public struct Answer: Sendable, Hashable {
        /// The HTTP status code.
        public let status: Int
        /// Whether the answer carried `Latch-Request-Id`, which the proxy's front sets on every
        /// answer of its own.
        public let fromProxyFront: Bool
    }

    /// Sends `GET url` and reads the answer within `timeout`.
    ///
    /// - Throws: ``Failure`` when nothing answered HTTP within the time.
    public static func probe(_ url: String, timeout: Duration) async throws(Failure) -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: TimeAmount(timeout))
            _ = try await response.body.collect(upTo: 1 << 16)
            return Answer(
                status: Int(response.status.code),
                fromProxyFront: response.headers.first(name: HeaderRules.requestID) != nil)
        } catch {
            throw Failure("GET \(url): no HTTP answer within \(timeout) (\(error))")
        }
    }
}
