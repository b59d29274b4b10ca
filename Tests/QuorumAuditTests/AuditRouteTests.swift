import QuorumLog
import Testing

@testable import QuorumAudit

/// The C2SP tlog-tiles path grammar, both ways: every index written by `TlogTiles` parses back to
/// itself, and every spelling the spec does not allow is a 400 naming the part at fault.
@Suite("audit routes")
struct AuditRouteTests {
    static let indices: [(UInt64, String)] = [
        (0, "000"), (7, "007"), (999, "999"), (1000, "x001/000"), (1_234_067, "x001/x234/067"),
        (1_000_000, "x001/x000/000"), (UInt64.max, "x018/x446/x744/x073/x709/x551/615"),
    ]

    @Test("index encoding round-trips", arguments: indices)
    func indexEncoding(index: UInt64, path: String) throws {
        #expect(TlogTiles.hashTilePath(level: 0, index: index) == "tile/0/" + path)
        #expect(try AuditRoute.parse("tile/0/" + path) == .hashTile(level: 0, index: index, width: 256))
        #expect(try AuditRoute.parse("tile/3/\(path).p/17") == .hashTile(level: 3, index: index, width: 17))
        #expect(try AuditRoute.parse("tile/entries/" + path) == .entryBundle(index: index, width: 256))
        #expect(try AuditRoute.parse("tile/entries/\(path).p/255") == .entryBundle(index: index, width: 255))
        #expect(AuditRoute.entryBundle(index: index, width: 5).path == "tile/entries/\(path).p/5")
    }

    static let refused: [(String, String)] = [
        ("tile/0/1", "tile index"), ("tile/0/0001", "tile index"), ("tile/0/001/002", "tile index"),
        ("tile/0/x000/001", "tile index"), ("tile/0/xx01/001", "tile index"), ("tile/0/x1/000", "tile index"),
        ("tile/0/x001/x002/x003/x004/x005/x006/x007/008", "tile index"),
        ("tile/0/x018/x446/x744/x073/x709/x551/616", "tile index"), ("tile/00/000", "tile level"),
        ("tile/64/000", "tile level"), ("tile/-1/000", "tile level"), ("tile/0/000.p/256", "tile width"),
        ("tile/0/000.p/0", "tile width"), ("tile/0/000.p/07", "tile width"), ("tile/entries/000.p/", "tile width"),
        ("receipts/a%2", "request id"), ("receipts/a%20b", "request id"), ("receipts/", "request id"),
    ]

    @Test("non-canonical tile paths and bad request ids are 400s naming the part", arguments: refused)
    func refusedPaths(path: String, parameter: String) {
        #expect(throws: AuditRequestError.self) { try AuditRoute.parse(path) }
        do {
            _ = try AuditRoute.parse(path)
        } catch {
            #expect(error.status == 400, "\(path): \(error)")
            #expect(error.parameter == parameter, "\(path): \(error)")
            #expect(!error.reason.isEmpty)
        }
    }

    @Test("unknown resources are 404s that list the API")
    func unknown() {
        for path in ["", "checkpoint/", "tile", "tile/0", "proof", "proof/other", "admin", "receipts/a/b", "../etc"] {
            do {
                _ = try AuditRoute.parse(path)
                Issue.record("\(path) parsed")
            } catch {
                #expect(error.status == 404, "\(path): \(error)")
                #expect(error.reason.contains("proof/inclusion"))
            }
        }
    }

    @Test("request ids are percent-decoded and percent-encoded")
    func requestIDs() throws {
        #expect(try AuditRoute.parse("receipts/req_01%2Fx") == .receipt(requestID: "req_01/x"))
        #expect(AuditRoute.receipt(requestID: "req_01/x").path == "receipts/req_01%2Fx")
        #expect(try AuditRoute.parse("receipts/req-1.a~b") == .receipt(requestID: "req-1.a~b"))
    }

    @Test("unlogged parses, takes no query, and its document round-trips; a bad member is named")
    func unlogged() throws {
        #expect(try AuditRoute.parse("unlogged") == .unlogged)
        #expect(AuditRoute.unlogged.path == "unlogged")
        #expect(throws: AuditRequestError.self) { try AuditRoute.unlogged.checkQuery("since=1") }
        let decisions = [
            UnloggedDecision(requestID: "req_a", decidedAt: 1_790_000_000_000, allow: true, decryptionShare: true),
            UnloggedDecision(requestID: "req_b", decidedAt: 1_790_000_000_500, allow: false, decryptionShare: false),
        ]
        let json = UnloggedDocument(decisions: decisions).json
        #expect(
            String(decoding: json, as: UTF8.self)
                == #"{"unlogged":[{"decided_at":1790000000000,"decision":"allow","decryption_share":"given","request_id":"req_a"},"#
                + #"{"decided_at":1790000000500,"decision":"deny","decryption_share":"none","request_id":"req_b"}]}"#
                + "\n")
        #expect(try UnloggedDocument(json: json).decisions == decisions)
        let bad = Array(
            #"{"unlogged":[{"decided_at":1,"decision":"maybe","decryption_share":"none","request_id":"r"}]}"#.utf8)
        #expect {
            try UnloggedDocument(json: bad)
        } throws: {
            "\($0)".contains("unlogged[0].decision") && "\($0)".contains("maybe")
        }
    }
}
