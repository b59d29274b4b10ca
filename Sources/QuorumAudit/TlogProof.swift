import Foundation
import QuorumLog

/// A C2SP `tlog-proof` (c2sp.org/tlog-proof): an entry's index, its inclusion proof and the signed
/// checkpoint it is proven against, in one text that verifies offline.
///
/// ```
/// c2sp.org/tlog-proof@v1
/// extra <base64 of the log entry>
/// index 73894
/// <one base64 hash per line, leaf's sibling first>
///
/// <the signed checkpoint note, verbatim>
/// ```
///
/// The `extra` line carries the log entry itself, so the proof needs nothing else to check an
/// entry's inclusion. As the spec says, `extra` is not trusted: ``AuditTrust/verifyInclusion(_:)``
/// hashes it and accepts it only if the inclusion proof leads from that leaf to the signed root.
public struct TlogProof: Sendable, Equatable {
    /// The first line of every proof.
    public static let header = "c2sp.org/tlog-proof@v1"

    /// The opaque extra data (here: the entry), if any.
    public let extra: [UInt8]?
    /// The entry's index in the log.
    public let index: UInt64
    /// The RFC 9162 inclusion proof, leaf's sibling first.
    public let hashes: [[UInt8]]
    /// The checkpoint the proof is against, signatures included.
    public let checkpoint: SignedNote

    /// A proof from its parts.
    public init(extra: [UInt8]?, index: UInt64, hashes: [[UInt8]], checkpoint: SignedNote) {
        self.extra = extra
        self.index = index
        self.hashes = hashes
        self.checkpoint = checkpoint
    }

    /// The proof's text.
    public var text: String {
        var lines = [Self.header]
        if let extra { lines.append("extra " + Data(extra).base64EncodedString()) }
        lines.append("index \(index)")
        lines += hashes.map { Data($0).base64EncodedString() }
        return lines.map { $0 + "\n" }.joined() + "\n" + checkpoint.serialized
    }

    /// Why a text is not a tlog-proof, naming the line.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        /// What was wrong, and on which line.
        public let reason: String
        public var description: String { reason }
    }

    /// Parses a proof, checking its syntax (and the checkpoint note's); nothing is verified.
    public static func parse(_ text: String) throws(ParseError) -> TlogProof {
        func fail(_ reason: String) -> ParseError { ParseError(reason: reason) }
        guard let blank = text.range(of: "\n\n") else {
            throw fail("no blank line separates the proof from the checkpoint")
        }
        let head = text[..<blank.lowerBound].split(separator: "\n", omittingEmptySubsequences: false)
        let noteText = String(text[blank.upperBound...])
        guard head.first == Substring(header) else {
            throw fail("line 1 is not \(header)")
        }
        var line = 1
        var extra: [UInt8]?
        if line < head.count, head[line].hasPrefix("extra ") {
            guard let bytes = Data(base64Encoded: String(head[line].dropFirst(6))) else {
                throw fail("line \(line + 1): extra data is not base64")
            }
            extra = Array(bytes)
            line += 1
        }
        guard line < head.count, head[line].hasPrefix("index ") else {
            throw fail("line \(line + 1) is not \"index <n>\"")
        }
        let indexText = head[line].dropFirst(6)
        guard let index = UInt64(indexText), indexText == "0" || !indexText.hasPrefix("0") else {
            throw fail("line \(line + 1): index \"\(indexText)\" is not a decimal without leading zeros")
        }
        line += 1
        var hashes: [[UInt8]] = []
        while line < head.count {
            guard let hash = Data(base64Encoded: String(head[line])), hash.count == 32 else {
                throw fail("line \(line + 1): not a base64 SHA-256 hash")
            }
            hashes.append(Array(hash))
            line += 1
        }
        do {
            return TlogProof(extra: extra, index: index, hashes: hashes, checkpoint: try SignedNote.parse(noteText))
        } catch {
            throw fail("the checkpoint: \(error)")
        }
    }
}
