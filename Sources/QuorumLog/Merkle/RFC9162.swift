import QuorumCrypto

/// RFC 9162 §2.1 hashing and proof verification. Pure functions: no storage, no state.
///
/// A verifier accepts only when the proof recomputes the claimed root(s) exactly; every other case
/// throws a ``MerkleError`` whose reason says which check failed.
public enum RFC9162 {
    /// Length in bytes of every hash in the tree (SHA-256).
    public static let hashLength = 32

    /// `MTH({})`: the root of the empty tree, SHA-256 of the empty string.
    public static let emptyRoot: [UInt8] = sha256Digest([])

    /// `MTH({d})`: SHA-256(0x00 || entry). The 0x00 prefix keeps leaves from being confused with nodes.
    public static func leafHash(_ entry: [UInt8]) -> [UInt8] { sha256Digest([0x00], entry) }

    /// SHA-256(0x01 || left || right).
    public static func nodeHash(_ left: [UInt8], _ right: [UInt8]) -> [UInt8] { sha256Digest([0x01], left, right) }

    /// Checks an RFC 9162 §2.1.3.2 inclusion proof of the leaf at `index` in the tree of `size` leaves.
    ///
    /// A tree of size 0 contains nothing, so every proof against it is refused.
    public static func verifyInclusion(
        leafHash: [UInt8], index: UInt64, size: UInt64, proof: [[UInt8]], root: [UInt8]
    ) throws {
        func fail(_ reason: String) -> MerkleError { MerkleError(.invalidInclusionProof, reason) }
        guard index < size else { throw fail("leaf index \(index) is not below tree size \(size)") }
        guard leafHash.count == hashLength else { throw fail("leaf hash is \(leafHash.count) bytes, not 32") }
        guard root.count == hashLength else { throw fail("root is \(root.count) bytes, not 32") }
        if let bad = proof.firstIndex(where: { $0.count != hashLength }) {
            throw fail("proof hash \(bad) is \(proof[bad].count) bytes, not 32")
        }
        var fn = index
        var sn = size - 1
        var r = leafHash
        for p in proof {
            guard sn != 0 else { throw fail("proof has \(proof.count) hashes, more than the tree's height allows") }
            if fn & 1 == 1 || fn == sn {
                r = nodeHash(p, r)
                while fn & 1 == 0 && fn != 0 {
                    fn >>= 1
                    sn >>= 1
                }
            } else {
                r = nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        guard sn == 0 else { throw fail("proof has \(proof.count) hashes, fewer than index \(index) of \(size) needs") }
        guard r == root else { throw fail("proof for index \(index) of \(size) leads to a different root") }
    }

    /// Checks an RFC 9162 §2.1.4.2 consistency proof that the tree of `size1` leaves with root
    /// `root1` is a prefix of the tree of `size2` leaves with root `root2`.
    ///
    /// Size 0 is handled explicitly. The empty tree is a prefix of every tree, so no hash can be
    /// proven about it: from size 0 the proof must be empty and `root1` must be `MTH({})`
    /// (``emptyRoot``); to size 0 as well, `root2` must be that too; to a larger size, `root2` must
    /// at least be a 32-byte hash (nothing more about it can be checked, so accepting says only
    /// "the empty tree precedes this tree"). Any other proof from size 0 is refused, as RFC 9162's
    /// algorithm (which needs `first - 1`) is undefined there.
    public static func verifyConsistency(
        size1: UInt64, size2: UInt64, proof: [[UInt8]], root1: [UInt8], root2: [UInt8]
    ) throws {
        func fail(_ reason: String) -> MerkleError { MerkleError(.invalidConsistencyProof, reason) }
        guard size1 <= size2 else { throw fail("size1 \(size1) is greater than size2 \(size2)") }
        if size1 == 0 {
            guard proof.isEmpty else {
                throw fail("a proof from the empty tree must be empty, got \(proof.count) hashes")
            }
            guard root1 == emptyRoot else { throw fail("root1 of the empty tree must be SHA-256 of the empty string") }
            if size2 == 0 {
                guard root2 == root1 else { throw fail("sizes are both 0 but the roots differ") }
            } else {
                guard root2.count == hashLength else { throw fail("root2 is \(root2.count) bytes, not 32") }
            }
            return
        }
        if size1 == size2 {
            guard proof.isEmpty else { throw fail("sizes are equal (\(size1)) but the proof is not empty") }
            guard root1 == root2 else { throw fail("sizes are equal (\(size1)) but the roots differ") }
            return
        }
        guard !proof.isEmpty else { throw fail("proof from \(size1) to \(size2) is empty") }
        guard root1.count == hashLength else { throw fail("root1 is \(root1.count) bytes, not 32") }
        guard root2.count == hashLength else { throw fail("root2 is \(root2.count) bytes, not 32") }
        if let bad = proof.firstIndex(where: { $0.count != hashLength }) {
            throw fail("proof hash \(bad) is \(proof[bad].count) bytes, not 32")
        }
        var path = proof
        // When size1 is a power of two, its root is itself a node of the larger tree: the path starts there.
        if size1 & (size1 - 1) == 0 { path.insert(root1, at: 0) }
        var fn = size1 - 1
        var sn = size2 - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var fr = path[0]
        var sr = path[0]
        for c in path.dropFirst() {
            guard sn != 0 else { throw fail("proof from \(size1) to \(size2) has too many hashes") }
            if fn & 1 == 1 || fn == sn {
                fr = nodeHash(c, fr)
                sr = nodeHash(c, sr)
                while fn & 1 == 0 && fn != 0 {
                    fn >>= 1
                    sn >>= 1
                }
            } else {
                sr = nodeHash(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        guard sn == 0 else { throw fail("proof from \(size1) to \(size2) has too few hashes") }
        guard fr == root1 else { throw fail("proof does not lead to root1 at size \(size1)") }
        guard sr == root2 else { throw fail("proof does not lead to root2 at size \(size2)") }
    }
}
