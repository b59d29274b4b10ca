import Foundation
import QuorumCrypto
import QuorumTestKit
import Testing

@testable import QuorumLog

/// Hash tiles checked against the Go reference implementation (golang.org/x/mod/sumdb/tlog):
/// `Fixtures/tlog-tiles-70000.txt` lists every full and partial tile of a 70,000-entry tree with
/// the SHA-256 of its bytes; `scripts/fixtures/tlog_tiles_fixture.go` generated it.
@Suite("tlog-tiles against the Go reference", .serialized)
struct TilesReferenceTests {
    struct Expected {
        let path: String
        let level: Int
        let index: UInt64
        let width: Int
        let digest: String
    }

    /// Parses `tile/L/x001/x234/067[.p/W] <sha256>` without our own path code.
    static func parse(_ line: Substring) throws -> Expected {
        let parts = line.split(separator: " ")
        try #require(parts.count == 2)
        let path = String(parts[0])
        var rest = path.dropFirst("tile/".count)
        let level = try #require(Int(rest.prefix { $0 != "/" }))
        rest = rest.drop { $0 != "/" }.dropFirst()
        var width = 256
        if let range = rest.range(of: ".p/") {
            width = try #require(Int(rest[range.upperBound...]))
            rest = rest[..<range.lowerBound]
        }
        let digits = rest.split(separator: "/").map { $0.hasPrefix("x") ? $0.dropFirst() : $0 }.joined()
        return Expected(
            path: path, level: level, index: try #require(UInt64(digits)), width: width, digest: String(parts[1]))
    }

    @Test("Every hash tile and path of a 70,000-entry log matches the reference")
    func matchesReference() throws {
        let fixture = TestKit.packageRoot.appendingPathComponent("Tests/QuorumLogTests/Fixtures/tlog-tiles-70000.txt")
        let lines = try String(contentsOf: fixture, encoding: .utf8).split(separator: "\n").filter {
            !$0.hasPrefix("#")
        }
        let expected = try lines.map(Self.parse)
        #expect(expected.count == 404)

        let dir = try TestKit.temporaryDirectory("tiles-reference")
        defer { try? FileManager.default.removeItem(at: dir) }
        let log = try MerkleLog(directory: dir.path)
        var next = 0
        while next < 70_000 {
            let end = min(next + 5_000, 70_000)
            try log.append((next..<end).map { Array("quorum tile fixture \($0)".utf8) })
            next = end
        }
        for tile in expected {
            #expect(TlogTiles.hashTilePath(level: tile.level, index: tile.index, width: tile.width) == tile.path)
            let bytes = try log.hashTile(level: tile.level, index: tile.index, width: tile.width)
            #expect(bytes.count == 32 * tile.width, "\(tile.path)")
            #expect(Hex.encode(sha256Digest(bytes)) == tile.digest, "\(tile.path)")
        }
    }
}
