import QuorumLog

extension TlogTiles {
    /// The entries of a C2SP entry bundle (each a big-endian uint16 length and that many bytes),
    /// or `nil` if the bytes are not exactly a sequence of such entries.
    public static func entries(inBundle bundle: [UInt8]) -> [[UInt8]]? {
        var entries: [[UInt8]] = []
        var offset = 0
        while offset < bundle.count {
            guard offset + 2 <= bundle.count else { return nil }
            let length = Int(bundle[offset]) << 8 | Int(bundle[offset + 1])
            offset += 2
            guard offset + length <= bundle.count else { return nil }
            entries.append(Array(bundle[offset..<(offset + length)]))
            offset += length
        }
        return entries
    }
}
