import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import QuorumAudit
import QuorumLog
import QuorumTestKit
import ServiceLifecycle
import Synchronization
import Testing

@testable import QuorumProxy

/// A stand-in node that answers every request 200 and records what reached it.
final class RecordingNode: Sendable {
    struct Seen: Sendable, Equatable {
        let method: String
        let target: String
        let headerNames: [String]
    }

    private let seen = Mutex<[Seen]>([])
    var requests: [Seen] { seen.withLock { $0 } }

    struct Responder: HTTPResponder {
        typealias Context = BasicRequestContext
        let node: RecordingNode
        func respond(to request: Request, context: Context) async throws -> Response {
            node.seen.withLock {
                $0.append(
                    Seen(
                        method: request.method.rawValue, target: request.head.path ?? "",
                        headerNames: request.headers.map { $0.name.canonicalName }))
            }
            return Response(
                status: .ok, headers: [.contentType: "application/octet-stream", .cacheControl: "public, max-age=1"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: "node bytes")))
        }
    }

    /// Runs the node on loopback for the length of `body`.
    func serving(_ body: (String) async throws -> Void) async throws {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let application = Application(
            responder: Responder(node: self), configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: Logger(label: "node"))
        let group = ServiceGroup(services: [application], logger: Logger(label: "node"))
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        do { try await body("http://127.0.0.1:\(port)") } catch {
            await group.triggerGracefulShutdown()
            _ = await task.result
            throw error
        }
        await group.triggerGracefulShutdown()
        _ = await task.result
    }
}

/// The proxy forwards the audit API under `/.well-known/quorum/audit/` to a node, and nothing else.
@Suite("proxy forwards the audit API", .serialized, .timeLimit(.minutes(5)))
struct AuditForwardingTests {
    static let prefix = AuditHTTP.proxyPrefix

    static func never(_ call: AgentCall, _ context: ProxyHarnessContext) -> CallAuthorization {
        Issue.record("an audit request reached the decision path: \(call.decisionRequest.target)")
        return .unavailable(reason: "not here")
    }

    @Test("the first node that answers serves it, byte for byte: tiles, the checkpoint, proofs")
    func forwards() async throws {
        let directory = try TestKit.temporaryDirectory("proxy-audit")
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = try AuditedLog(directory: directory.path)
        try log.append((0..<300).map { Array("entry \($0)".utf8) })
        let note = try log.signCheckpoint()
        try await log.serving { node in
            // Port 1 on loopback refuses connections: that node does not answer, the next does.
            var forwarding = AuditForwarding(nodes: ["http://127.0.0.1:1", node])
            forwarding.timeout = .seconds(2)
            try await ProxyHarness.with(audit: forwarding, decide: Self.never) { proxy in
                let checkpoint = try await proxy.send(.GET, Self.prefix + "/checkpoint")
                #expect(checkpoint.status == 200)
                #expect(checkpoint.body == note.serialized)
                #expect(checkpoint.headers.first(name: "cache-control") == "public, max-age=5")
                #expect(checkpoint.headers.first(name: "content-type") == "text/plain; charset=utf-8")

                var request = HTTPClientRequest(url: proxy.proxyURL + Self.prefix + "/tile/0/000")
                request.method = .GET
                let response = try await proxy.client.execute(request, timeout: .seconds(30))
                let bytes = Array(try await response.body.collect(upTo: 1 << 20).readableBytesView)
                #expect(response.status.code == 200)
                #expect(bytes == (try log.log.hashTile(level: 0, index: 0)))
                #expect(response.headers.first(name: "cache-control") == AuditAnswer.immutable)

                let proof = try await proxy.send(.GET, Self.prefix + "/proof/inclusion?index=7")
                #expect(proof.status == 200)
                let document = try InclusionProofDocument(json: Array(proof.body.utf8))
                try RFC9162.verifyInclusion(
                    leafHash: document.leafHash, index: 7, size: 300, proof: document.hashes, root: log.log.root)

                let bad = try await proxy.send(.GET, Self.prefix + "/proof/inclusion?index=x")
                #expect(bad.status == 400 && bad.body.contains("\"parameter\":\"index\""), "\(bad)")
            }
        }
    }

    @Test("only the API's routes, by GET or HEAD, in canonical form and without the client's headers, reach a node")
    func forwardsNothingElse() async throws {
        let node = RecordingNode()
        try await node.serving { url in
            try await ProxyHarness.with(audit: AuditForwarding(nodes: [url]), decide: Self.never) { proxy in
                let tile = try await proxy.send(
                    .GET, Self.prefix + "/tile/1/x001/002.p/9", headers: [("Cookie", "session=1"), ("X-Secret", "s")])
                #expect(tile.status == 200 && tile.body == "node bytes")
                let head = try await proxy.send(.HEAD, Self.prefix + "/checkpoint")
                #expect(head.status == 200)
                let proof = try await proxy.send(.GET, Self.prefix + "/proof/consistency?from=1&to=2")
                #expect(proof.status == 200)
                let refused: [(HTTPMethod, String, Int)] = [
                    (.POST, "/checkpoint", 405), (.PUT, "/tile/0/000", 405), (.DELETE, "/evidence", 405),
                    (.GET, "/admin", 404), (.GET, "/../../metrics", 404), (.GET, "/tile/0/0001", 400),
                    (.GET, "/checkpoint?debug=1", 400), (.GET, "/proof/inclusion?index=1&path=/etc", 400),
                    (.GET, "", 404), (.GET, "/", 404),
                ]
                for (method, path, status) in refused {
                    let answer = try await proxy.send(method, Self.prefix + path)
                    #expect(answer.status == status, "\(method) \(path): \(answer)")
                    #expect(answer.headers.first(name: "content-type") == "application/json", "\(path)")
                }
                #expect(
                    node.requests.map { "\($0.method) \($0.target)" } == [
                        "GET /tile/1/x001/002.p/9", "HEAD /checkpoint", "GET /proof/consistency?from=1&to=2",
                    ])
                for seen in node.requests {
                    let leaked = seen.headerNames.filter { ["Authorization", "Cookie", "X-Secret"].contains($0) }
                    #expect(leaked.isEmpty, "\(seen)")
                }
            }
        }
    }

    @Test("without [audit] the prefix is a 404 of the proxy's own; with no node answering, 502")
    func unavailable() async throws {
        try await ProxyHarness.with(decide: Self.never) { proxy in
            let answer = try await proxy.send(.GET, Self.prefix + "/checkpoint")
            #expect(answer.status == 404 && answer.body.contains("[audit] nodes is not set"), "\(answer)")
        }
        var forwarding = AuditForwarding(nodes: ["http://127.0.0.1:1"])
        forwarding.timeout = .seconds(2)
        try await ProxyHarness.with(audit: forwarding, decide: Self.never) { proxy in
            let answer = try await proxy.send(.GET, Self.prefix + "/checkpoint")
            #expect(answer.status == 502 && answer.body.contains("audit_unavailable"), "\(answer)")
        }
    }
}
