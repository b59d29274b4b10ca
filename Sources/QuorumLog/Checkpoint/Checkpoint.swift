/// A C2SP `tlog-checkpoint` body: what a log commits to at one size.
///
/// ```
/// <origin>
/// <tree size, decimal>
/// <root hash, base64>
/// [extension lines]
/// ```
///
/// The checkpoint alone proves nothing; it is the text of a `SignedNote` whose signatures do.
public struct Checkpoint: Sendable, Hashable {
    /// The log's identity, e.g. `example.com/log42`. Non-empty, one line.
    public let origin: String
    /// Number of entries in the tree.
    public let size: UInt64
    /// RFC 9162 root hash of the tree at `size` (32 bytes).
    public let rootHash: [UInt8]
    /// Opaque optional lines after the root hash, each non-empty. Not recommended by C2SP.
    public let extensionLines: [String]

    /// Builds a checkpoint, refusing what could not be written as a valid body.
    public init(origin: String, size: UInt64, rootHash: [UInt8], extensionLines: [String] = []) throws(NoteError) {
        guard !origin.isEmpty else { throw NoteError(.malformedCheckpoint, "the origin is empty") }
        guard Self.isSingleLine(origin) else {
            throw NoteError(.malformedCheckpoint, "the origin contains a control character or newline")
        }
        guard rootHash.count == 32 else {
            throw NoteError(.malformedCheckpoint, "the root hash is \(rootHash.count) bytes; a SHA-256 root is 32")
        }
        for (index, line) in extensionLines.enumerated() {
            guard !line.isEmpty else {
                throw NoteError(
                    .malformedCheckpoint, "extension line \(index + 1) is empty; extension lines must not be")
            }
            guard Self.isSingleLine(line) else {
                throw NoteError(
                    .malformedCheckpoint, "extension line \(index + 1) contains a control character or newline")
            }
        }
        self.origin = origin
        self.size = size
        self.rootHash = rootHash
        self.extensionLines = extensionLines
    }

    /// The note text: every line newline-terminated.
    public var text: String {
        ([origin, String(size), NoteBase64.encode(rootHash)] + extensionLines).map { $0 + "\n" }.joined()
    }

    /// Parses a checkpoint body (a note's text), refusing anything that is not exactly one.
    public static func parse(_ text: String) throws(NoteError) -> Checkpoint {
        // Work on bytes: Swift's Character view would fold "\r\n" into one newline-like grapheme.
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { throw NoteError(.malformedCheckpoint, "the checkpoint is empty") }
        guard bytes.last == 0x0a else {
            throw NoteError(.malformedCheckpoint, "the checkpoint does not end with a newline")
        }
        if let offset = bytes.firstIndex(where: { $0 < 0x20 && $0 != 0x0a }) {
            throw NoteError(
                .malformedCheckpoint, "control character 0x\(String(bytes[offset], radix: 16)) at byte \(offset)")
        }
        let lines = bytes.dropLast().split(separator: 0x0a, omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
        guard lines.count >= 3 else {
            throw NoteError(
                .malformedCheckpoint,
                "a checkpoint has at least three lines (origin, size, root hash), got \(lines.count)")
        }
        guard !lines[0].isEmpty else { throw NoteError(.malformedCheckpoint, "line 1: the origin is empty") }
        let sizeLine = lines[1]
        guard !sizeLine.isEmpty, sizeLine.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else {
            throw NoteError(.malformedCheckpoint, "line 2: tree size \"\(sizeLine)\" is not an ASCII decimal number")
        }
        guard sizeLine == "0" || !sizeLine.hasPrefix("0") else {
            throw NoteError(.malformedCheckpoint, "line 2: tree size \"\(sizeLine)\" has a leading zero")
        }
        guard let size = UInt64(sizeLine) else {
            throw NoteError(.malformedCheckpoint, "line 2: tree size \"\(sizeLine)\" does not fit in 64 bits")
        }
        guard let root = NoteBase64.decode(lines[2]) else {
            throw NoteError(.malformedCheckpoint, "line 3: root hash \"\(lines[2])\" is not canonical padded base64")
        }
        guard root.count == 32 else {
            throw NoteError(.malformedCheckpoint, "line 3: root hash is \(root.count) bytes; a SHA-256 root is 32")
        }
        let extensions = Array(lines[3...])
        if let empty = extensions.firstIndex(where: \.isEmpty) {
            throw NoteError(
                .malformedCheckpoint,
                "line \(empty + 4): extension lines must be non-empty (a blank line ends the text)"
            )
        }
        return try Checkpoint(origin: lines[0], size: size, rootHash: root, extensionLines: extensions)
    }

    private static func isSingleLine(_ text: String) -> Bool {
        !text.unicodeScalars.contains { $0.value < 0x20 }
    }
}
