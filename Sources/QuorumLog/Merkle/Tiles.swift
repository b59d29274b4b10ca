/// C2SP `tlog-tiles` (https://c2sp.org/tlog-tiles): the log's hashes and entries cut into tiles of
/// height 8, so that clients and mirrors can fetch them as static files.
///
/// A hash tile at level `L`, index `N` and width `W` (1…256) is the concatenation of the 32-byte
/// hashes of the tree nodes at tree level `8·L`, indices `256·N` … `256·N + W − 1`. An entry bundle
/// at index `N` holds entries `256·N` … `256·N + W − 1`, each as a big-endian uint16 length
/// followed by the entry's bytes. A tile of width 256 is full; a narrower one is partial.
public enum TlogTiles {
    /// Hashes (or entries) per full tile: tile height 8.
    public static let width = 256
    static let height = 8

    /// The tile path: `tile/<L>/<N>` or `tile/<L>/<N>.p/<W>`, with `N` written in groups of three
    /// digits, every group but the last prefixed by `x` (1234067 → `x001/x234/067`).
    public static func hashTilePath(level: Int, index: UInt64, width: Int = TlogTiles.width) -> String {
        "tile/\(level)/" + encode(index: index, width: width)
    }

    /// The entry bundle path: `tile/entries/<N>` or `tile/entries/<N>.p/<W>`.
    public static func entryBundlePath(index: UInt64, width: Int = TlogTiles.width) -> String {
        "tile/entries/" + encode(index: index, width: width)
    }

    private static func encode(index: UInt64, width: Int) -> String {
        var groups: [String] = []
        var rest = index
        repeat {
            let group = String(rest % 1000)
            groups.append(String(repeating: "0", count: 3 - group.count) + group)
            rest /= 1000
        } while rest > 0
        let path = groups.reversed().enumerated().map { $0.offset < groups.count - 1 ? "x" + $0.element : $0.element }
            .joined(separator: "/")
        return width == Self.width ? path : path + ".p/\(width)"
    }

    /// Length-prefixes each entry (big-endian uint16) and concatenates them, as an entry bundle.
    public static func entryBundle(_ entries: [[UInt8]]) -> [UInt8] {
        var bundle: [UInt8] = []
        for entry in entries {
            precondition(entry.count <= MerkleLog.maximumEntryLength, "entry longer than a uint16 length")
            bundle += [UInt8(entry.count >> 8), UInt8(entry.count & 0xff)] + entry
        }
        return bundle
    }
}

extension MerkleLog {
    /// The bytes of the hash tile at `level`, `index` and `width` (256 for a full tile): row 0 of
    /// a complete tile's record, or of the right edge's partial tile. Throws if the log is too
    /// small to have all of its hashes.
    public func hashTile(level: Int, index: UInt64, width: Int = TlogTiles.width) throws -> [UInt8] {
        guard (0...7).contains(level) else {
            throw MerkleError(.invalidArgument, "tile level \(level) is outside 0…7 (trees of at most 2^64 leaves)")
        }
        let treeLevel = level * TlogTiles.height
        _ = try checkTile(index: index, width: width, nodes: size >> UInt64(treeLevel), what: "hash tile")
        // The size only grows: if this is no longer the partial tile, it has been completed.
        let row = try partialTileRow(level: level, index: index) ?? readTile(level: level, index: index)
        return Array(row[0..<(width * RFC9162.hashLength)])
    }

    /// The entry bundle at `index` and `width` (256 for a full bundle).
    public func entryBundle(index: UInt64, width: Int = TlogTiles.width) throws -> [UInt8] {
        let first = try checkTile(index: index, width: width, nodes: size, what: "entry bundle")
        var entries: [[UInt8]] = []
        entries.reserveCapacity(width)
        try store.scan(
            Self.entriesFamily, from: Self.entryKey(first), until: Self.entryKey(first + UInt64(width))
        ) { _, entry in
            entries.append(entry)
            return true
        }
        guard entries.count == width else {
            throw MerkleError(.corruptStore, "\(store.path): entry bundle \(index) is missing entries")
        }
        return TlogTiles.entryBundle(entries)
    }

    /// Checks that a tile of `width` at `index` lies within `nodes` available nodes; returns its first node.
    private func checkTile(index: UInt64, width: Int, nodes: UInt64, what: String) throws -> UInt64 {
        guard (1...TlogTiles.width).contains(width) else {
            throw MerkleError(.invalidArgument, "\(what) width \(width) is outside 1…256")
        }
        let (first, overflow) = index.multipliedReportingOverflow(by: UInt64(TlogTiles.width))
        guard !overflow, first + UInt64(width) <= nodes else {
            throw MerkleError(
                .invalidArgument, "\(what) \(index) of width \(width) is beyond the log (\(nodes) nodes at that level)")
        }
        return first
    }
}
