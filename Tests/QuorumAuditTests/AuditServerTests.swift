import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import QuorumAudit
import QuorumCrypto
import QuorumLog
import QuorumTestKit
import Testing

/// One HTTP answer, read whole.
struct Fetched {
    let status: UInt
    let headers: [String: String]
    let body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The JSON error body's members.
    var error: [String: String] {
        (try? JSONSerialization.jsonObject(with: Data(body)) as? [String: String]) ?? [:]
    }
}

/// GET (or another method) `url` with a real HTTP client.
func fetch(_ url: String, method: HTTPMethod = .GET) async throws -> Fetched {
    var request = HTTPClientRequest(url: url)
    request.method = method
    // 30 s: a loaded machine (many suites at once on two cores) needs it.
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
    let body = try await response.body.collect(upTo: 1 << 24)
    var headers: [String: String] = [:]
    for header in response.headers { headers[header.name.lowercased()] = header.value }
    return Fetched(status: response.status.code, headers: headers, body: Array(body.readableBytesView))
}

/// The RFC 9162 tree hash of `entries`, computed here from the definition alone (no MerkleLog).
func treeHash(_ entries: ArraySlice<[UInt8]>) -> [UInt8] {
    if entries.count == 1 { return sha256Digest([0x00], entries.first!) }
    var split = 1
    while split * 2 < entries.count { split *= 2 }
    let start = entries.startIndex
    return sha256Digest([0x01], treeHash(entries[start..<start + split]), treeHash(entries[(start + split)...]))
}

/// The audit API over HTTP on loopback, against a real RocksDB log with checkpoints signed by a
/// dealer FROST group and cosigned by four node keys.
@Suite("audit API over HTTP", .serialized, .timeLimit(.minutes(5)))
struct AuditServerTests {
    /// 600 distinct entries: two full level-0 tiles, a partial one of width 88, a partial level-1
    /// tile of width 2.
    static let entries: [[UInt8]] = (0..<600).map {
        Array("entry \($0) ".utf8) + Array(repeating: UInt8($0 % 251), count: $0 % 7)
    }

    static func withLog(_ body: (AuditedLog, URL) async throws -> Void) async throws {
        let directory = try TestKit.temporaryDirectory("audit-api")
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = try AuditedLog(directory: directory.appendingPathComponent("log").path)
        try await body(log, directory)
    }

    @Test("tiles and entry bundles are byte-exact: as MerkleLog stores them and as C2SP defines them")
    func tilesByteExact() async throws {
        try await Self.withLog { log, _ in
            try log.append(Self.entries)
            try log.signCheckpoint()
            try await log.serving { base in
                let leaves = Self.entries.map { sha256Digest([0x00], $0) }
                let full = try await fetch(base + "/tile/0/001")
                #expect(full.status == 200)
                #expect(full.body == Array(leaves[256..<512].joined()))
                #expect(full.body == (try log.log.hashTile(level: 0, index: 1)))
                #expect(full.headers["content-type"] == "application/octet-stream")
                #expect(full.headers["cache-control"] == "public, max-age=31536000, immutable")

                let partial = try await fetch(base + "/tile/0/002.p/88")
                #expect(partial.status == 200)
                #expect(partial.body == Array(leaves[512..<600].joined()))
                #expect(partial.body.count == 88 * 32)

                let upper = try await fetch(base + "/tile/1/000.p/2")
                #expect(upper.body == treeHash(Self.entries[0..<256]) + treeHash(Self.entries[256..<512]))

                let bundle = try await fetch(base + "/tile/entries/002.p/88")
                var expected: [UInt8] = []
                for entry in Self.entries[512..<600] {
                    expected += [UInt8(entry.count >> 8), UInt8(entry.count & 0xff)] + entry
                }
                #expect(bundle.body == expected)
                #expect(bundle.headers["content-type"] == "application/octet-stream")
                let fullBundle = try await fetch(base + "/tile/entries/000")
                #expect(fullBundle.body == (try log.log.entryBundle(index: 0)))

                // A narrower partial tile is a prefix; a wider one or a full one is not there yet.
                #expect(try await fetch(base + "/tile/0/002.p/5").body == Array(leaves[512..<517].joined()))
                for missing in ["/tile/0/002.p/89", "/tile/0/002", "/tile/1/000", "/tile/2/000.p/1", "/tile/8/000.p/1"]
                {
                    let answer = try await fetch(base + missing)
                    #expect(answer.status == 404, "\(missing): \(answer.text)")
                }
            }
        }
    }

    @Test("the checkpoint is the signed note, short-lived in caches; before the first one, 404")
    func checkpoint() async throws {
        try await Self.withLog { log, _ in
            try await log.serving { base in
                let none = try await fetch(base + "/checkpoint")
                #expect(none.status == 404)
                #expect(none.error["error"] == "no_checkpoint")
            }
            try log.append(Array(Self.entries.prefix(3)))
            let note = try log.signCheckpoint()
            try await log.serving { base in
                let answer = try await fetch(base + "/checkpoint")
                #expect(answer.status == 200)
                #expect(answer.text == note.serialized)
                #expect(answer.headers["content-type"] == "text/plain; charset=utf-8")
                #expect(answer.headers["cache-control"] == "public, max-age=5")
                let head = try await fetch(base + "/checkpoint", method: .HEAD)
                #expect(head.status == 200)
                #expect(head.body.isEmpty)
                #expect(head.headers["content-length"] == String(note.serialized.utf8.count))
            }
        }
    }

    @Test("nothing beyond the signed size: unsigned entries get no tile, no proof, no receipt")
    func boundedByCheckpoint() async throws {
        try await Self.withLog { log, _ in
            try log.append(Array(Self.entries.prefix(256)), receipts: ["req-signed"])
            try log.signCheckpoint()
            try log.append(Array(Self.entries[256..<300]), receipts: ["req-unsigned"])
            try await log.serving { base in
                #expect(try await fetch(base + "/tile/0/000").status == 200)
                #expect(try await fetch(base + "/tile/0/001.p/1").status == 404)
                #expect(try await fetch(base + "/tile/entries/001.p/1").status == 404)
                let proof = try await fetch(base + "/proof/inclusion?index=260&size=300")
                #expect(proof.status == 400)
                #expect(proof.error["parameter"] == "size")
                #expect(proof.error["reason"]?.contains("beyond the latest checkpoint (size 256)") == true)
                let consistency = try await fetch(base + "/proof/consistency?from=10&to=257")
                #expect(consistency.error["parameter"] == "to")
                let receipt = try await fetch(base + "/receipts/req-unsigned")
                #expect(receipt.status == 404)
                #expect(receipt.error["error"] == "not_checkpointed")
                #expect(try await fetch(base + "/receipts/req-signed").status == 200)
            }
        }
    }

    static let badRequests: [(String, String, String)] = [
        ("/proof/inclusion", "index", "missing"), ("/proof/inclusion?index=abc", "index", "not a decimal"),
        ("/proof/inclusion?index=01", "index", "leading zero"),
        ("/proof/inclusion?index=5&size=5", "index", "not below"),
        ("/proof/inclusion?index=1&size=0", "size", "empty tree"),
        ("/proof/inclusion?index=1&index=2", "index", "twice"),
        ("/proof/inclusion?index=1&limit=2", "limit", "unknown parameter"),
        ("/proof/inclusion?index", "index", "no value"),
        ("/proof/consistency?to=5", "from", "missing"), ("/proof/consistency?from=6&to=5", "from", "greater"),
        ("/proof/inclusion?index=-1", "index", "not a decimal"),
        ("/proof/inclusion?index=99999999999999999999", "index", "outside"),
        ("/checkpoint?x=1", "query", "takes no query"), ("/tile/0/x000/000", "tile index", "leading"),
        ("/receipts/a%20b", "request id", "printable ASCII"),
    ]

    @Test("bad parameters are 400s whose JSON names the parameter and says what was wrong", arguments: badRequests)
    func badParameters(path: String, parameter: String, words: String) async throws {
        try await Self.withLog { log, _ in
            try log.append(Array(Self.entries.prefix(10)))
            try log.signCheckpoint()
            try await log.serving { base in
                let answer = try await fetch(base + path)
                #expect(answer.status == 400, "\(path): \(answer.text)")
                #expect(answer.headers["content-type"] == "application/json")
                #expect(answer.error["error"] == "bad_parameter")
                #expect(answer.error["parameter"] == parameter, "\(path): \(answer.text)")
                #expect(answer.error["reason"]?.contains(words) == true, "\(path): \(answer.text)")
            }
        }
    }

    @Test("only GET and HEAD: anything else is 405 with Allow")
    func readOnly() async throws {
        try await Self.withLog { log, _ in
            try await log.serving { base in
                for method in [HTTPMethod.POST, .PUT, .DELETE, .PATCH] {
                    let answer = try await fetch(base + "/checkpoint", method: method)
                    #expect(answer.status == 405)
                    #expect(answer.headers["allow"] == "GET, HEAD")
                    #expect(answer.error["error"] == "method_not_allowed")
                }
            }
        }
    }

    @Test("past its burst a client gets 429 with Retry-After, and is served again once that has passed")
    func rateLimited() async throws {
        try await Self.withLog { log, _ in
            // One token per 10 s: however slow a loaded machine is, six requests fit in that.
            try await log.serving(limits: .init(burst: 5, refillPerSecond: 0.1)) { base in
                var statuses: [UInt] = []
                for _ in 0..<5 { statuses.append(try await fetch(base + "/checkpoint").status) }
                #expect(statuses.allSatisfy { $0 == 404 }, "\(statuses)")
                let limited = try await fetch(base + "/checkpoint")
                #expect(limited.status == 429)
                #expect(limited.error["error"] == "rate_limited")
                let wait = try #require(limited.headers["retry-after"].flatMap { Int($0) })
                #expect((1...10).contains(wait))
                try await Task.sleep(for: .seconds(wait))
                #expect(try await fetch(base + "/checkpoint").status == 404)
            }
        }
    }

    @Test("inclusion and consistency proofs verify against the signed roots")
    func proofsVerify() async throws {
        try await Self.withLog { log, _ in
            try log.append(Array(Self.entries.prefix(100)))
            let first = try log.signCheckpoint()
            try log.append(Array(Self.entries[100..<600]))
            let second = try log.signCheckpoint()
            let trust = AuditTrust(groupKey: log.groupKey)
            let older = try trust.verifyCheckpoint(first)
            let newer = try trust.verifyCheckpoint(second)
            try await log.serving { base in
                for index: UInt64 in [0, 99, 255, 256, 511, 599] {
                    let answer = try await fetch(base + "/proof/inclusion?index=\(index)")
                    let proof = try InclusionProofDocument(json: answer.body)
                    #expect(proof.size == 600 && proof.leafHash == sha256Digest([0x00], Self.entries[Int(index)]))
                    try RFC9162.verifyInclusion(
                        leafHash: proof.leafHash, index: index, size: 600, proof: proof.hashes,
                        root: newer.checkpoint.rootHash)
                }
                let old = try InclusionProofDocument(
                    json: try await fetch(base + "/proof/inclusion?index=42&size=100").body)
                try RFC9162.verifyInclusion(
                    leafHash: old.leafHash, index: 42, size: 100, proof: old.hashes, root: older.checkpoint.rootHash)
                let consistency = try ConsistencyProofDocument(
                    json: try await fetch(base + "/proof/consistency?from=100").body)
                #expect(consistency.to == 600)
                try trust.verifyConsistency(from: older, to: newer, proof: consistency.hashes)
                var forged = consistency.hashes
                forged[0][0] ^= 1
                #expect(throws: AuditFailure.self) {
                    try trust.verifyConsistency(from: older, to: newer, proof: forged)
                }
            }
        }
    }

    @Test("a receipt comes with its entry, index, proof and checkpoint, as a tlog-proof that verifies offline")
    func receipts() async throws {
        try await Self.withLog { log, _ in
            let entries = Array(Self.entries.prefix(40))
            try log.append(entries, receipts: (0..<40).map { "req_\($0)" })
            try log.signCheckpoint()
            try await log.serving { base in
                let answer = try await fetch(base + "/receipts/req_17")
                #expect(answer.status == 200, "\(answer.text)")
                let document = try ReceiptDocument(json: answer.body)
                #expect(document.requestID == "req_17" && document.size == 40 && document.proof.index == 17)
                #expect(document.proof.text.hasPrefix("c2sp.org/tlog-proof@v1\nextra "))
                let reparsed = try TlogProof.parse(document.proof.text)
                let (checkpoint, entry) = try AuditTrust(groupKey: log.groupKey).verifyInclusion(reparsed)
                #expect(entry == entries[17])
                #expect(checkpoint.checkpoint.size == 40)

                var tampered = reparsed
                tampered = TlogProof(
                    extra: entries[18], index: tampered.index, hashes: tampered.hashes, checkpoint: tampered.checkpoint)
                #expect(throws: AuditFailure.self) { try AuditTrust(groupKey: log.groupKey).verifyInclusion(tampered) }

                let unknown = try await fetch(base + "/receipts/req_none")
                #expect(unknown.status == 404 && unknown.error["error"] == "not_found")
            }
        }
    }

    @Test("evidence is served as both signed notes")
    func evidence() async throws {
        try await Self.withLog { log, _ in
            try log.append(Array(Self.entries.prefix(4)))
            let real = try log.signCheckpoint()
            let other = try log.checkpointNote(size: 4, root: Array(repeating: 9, count: 32))
            log.addEvidence(
                EquivocationEvidence(
                    keyName: log.cosignerName(2), size: 4, noteA: real.serialized, noteB: other.serialized))
            try await log.serving { base in
                let answer = try await fetch(base + "/evidence")
                let document = try EvidenceDocument(json: answer.body)
                #expect(document.evidence.count == 1)
                #expect(document.evidence.first?.noteA == real.serialized)
                #expect(document.evidence.first?.noteB == other.serialized)
                #expect(document.evidence.first?.keyName == log.cosignerName(2))
            }
        }
    }
}
