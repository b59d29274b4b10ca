import Foundation
import QuorumTestKit
import Testing

@testable import QuorumLog

/// The published RFC 9162 proof vectors: every file under `merkle/inclusion` and
/// `merkle/consistency`, one case per file. A vector marked `wantErr` must be refused, every other
/// one accepted.
@Suite("RFC 9162 proof vectors")
struct MerkleProofVectorTests {
    static let inclusionFiles = TestKit.vectorFiles(under: "merkle/inclusion")
    static let consistencyFiles = TestKit.vectorFiles(under: "merkle/consistency")

    @Test("the vector folders are there")
    func vectorsPresent() {
        #expect(Self.inclusionFiles.count > 50)
        #expect(Self.consistencyFiles.count > 50)
    }

    @Test("inclusion", arguments: inclusionFiles)
    func inclusion(path: String) throws {
        let v = try TestKit.vector(path)
        let wantErr = try #require(v["wantErr"].bool as Bool?, "\(path): no wantErr")
        let outcome = Result<Void, Error> {
            try RFC9162.verifyInclusion(
                leafHash: try base64(v["leafHash"]), index: try uint64(v["leafIdx"]),
                size: try uint64(v["treeSize"]), proof: try v["proof"].array.map(base64),
                root: try base64(v["root"]))
        }
        check(outcome, wantErr: wantErr, path: path, desc: v["desc"].string)
    }

    @Test("consistency", arguments: consistencyFiles)
    func consistency(path: String) throws {
        let v = try TestKit.vector(path)
        let wantErr = try #require(v["wantErr"].bool as Bool?, "\(path): no wantErr")
        let outcome = Result<Void, Error> {
            try RFC9162.verifyConsistency(
                size1: try uint64(v["size1"]), size2: try uint64(v["size2"]),
                proof: try v["proof"].array.map(base64), root1: try base64(v["root1"]), root2: try base64(v["root2"]))
        }
        check(outcome, wantErr: wantErr, path: path, desc: v["desc"].string)
    }

    @Test("the empty tree precedes every tree, with an empty proof only")
    func consistencyFromEmpty() throws {
        let root = RFC9162.leafHash([1])
        try RFC9162.verifyConsistency(size1: 0, size2: 1, proof: [], root1: RFC9162.emptyRoot, root2: root)
        try RFC9162.verifyConsistency(
            size1: 0, size2: 0, proof: [], root1: RFC9162.emptyRoot, root2: RFC9162.emptyRoot)
        #expect(throws: MerkleError.self) {
            try RFC9162.verifyConsistency(size1: 0, size2: 1, proof: [root], root1: RFC9162.emptyRoot, root2: root)
        }
        #expect(throws: MerkleError.self) {
            try RFC9162.verifyConsistency(size1: 0, size2: 1, proof: [], root1: root, root2: root)
        }
    }

    private func check(_ outcome: Result<Void, Error>, wantErr: Bool, path: String, desc: String?) {
        let name = "\(path) (\(desc ?? "no desc"))"
        switch (outcome, wantErr) {
        case (.success, true): Issue.record("\(name): accepted, but the vector wants it refused")
        case (.failure(let error), false): Issue.record("\(name): refused with \(error)")
        default: break
        }
    }
}

/// Base64 field of a vector; a value that is not base64 at all is an error of the vector file.
private func base64(_ value: JSON) throws -> [UInt8] {
    let text = try #require(value.string, "not a string")
    return [UInt8](try #require(Data(base64Encoded: text), "not base64: \(text)"))
}

/// An unsigned 64-bit field; some vectors use 2^64 - 1, beyond `Int`.
private func uint64(_ value: JSON) throws -> UInt64 {
    try #require((value.raw as? NSNumber)?.uint64Value, "not an unsigned integer: \(value.raw)")
}
