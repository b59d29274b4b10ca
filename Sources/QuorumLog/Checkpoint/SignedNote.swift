/// A C2SP `signed-note`: a text ending in a newline, a blank line, then signature lines
/// `— <key name> base64(key ID ‖ signature)`.
///
/// The text means nothing until `verify(with:)` has found a trusted key's signature on it.
public struct SignedNote: Sendable, Hashable {
    /// Signature lines beyond this many are refused rather than parsed. C2SP requires accepting at
    /// least 16; the Go reference implementation stops at 100.
    public static let maximumSignatures = 100

    /// The note text, including its final newline but not the separating blank line.
    public let text: String
    /// The signature lines, in order.
    public private(set) var signatures: [NoteSignature]

    /// A note with `text` and, optionally, signatures already made over it.
    public init(text: String, signatures: [NoteSignature] = []) throws(NoteError) {
        try Self.checkText(Array(text.utf8))
        guard signatures.count <= Self.maximumSignatures else {
            throw NoteError(
                .tooManySignatures, "\(signatures.count) signatures; at most \(Self.maximumSignatures) are accepted")
        }
        self.text = text
        self.signatures = signatures
    }

    /// Signs `text` with each signer in turn.
    public init(text: String, signers: [any NoteSigner]) throws {
        try self.init(text: text)
        try sign(with: signers)
    }

    /// Appends a signature line from each signer. A signer whose key already signed (same name
    /// and key ID) replaces its earlier line.
    public mutating func sign(with signers: [any NoteSigner]) throws {
        let message = Array(text.utf8)
        for signer in signers {
            let signature = try signer.signature(for: message)
            signatures.removeAll { KeyHandle($0.name, $0.keyID) == KeyHandle(signature.name, signature.keyID) }
            signatures.append(signature)
        }
        guard signatures.count <= Self.maximumSignatures else {
            throw NoteError(
                .tooManySignatures, "\(signatures.count) signatures; at most \(Self.maximumSignatures) are accepted")
        }
    }

    /// The note as transmitted: text, blank line, signature lines.
    public var serialized: String {
        text + "\n" + signatures.map(\.line).joined()
    }

    /// Parses a note, checking its syntax only; call `verify(with:)` before trusting the text.
    public static func parse(_ note: String) throws(NoteError) -> SignedNote {
        try parse(Array(note.utf8))
    }

    /// Parses a note from its bytes, refusing invalid UTF-8, control characters, a missing blank
    /// line, malformed signature lines and more than `maximumSignatures` lines.
    public static func parse(_ bytes: [UInt8]) throws(NoteError) -> SignedNote {
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw NoteError(.malformedNote, "the note is not valid UTF-8")
        }
        if let offset = bytes.firstIndex(where: { $0 < 0x20 && $0 != 0x0a }) {
            throw NoteError(
                .malformedNote, "control character 0x\(String(bytes[offset], radix: 16)) at byte \(offset)")
        }
        // The text ends at the last blank line; a signature line never contains one.
        var split: Int?
        var index = bytes.count - 2
        while index >= 0 {
            if bytes[index] == 0x0a, bytes[index + 1] == 0x0a {
                split = index
                break
            }
            index -= 1
        }
        guard let split else {
            throw NoteError(.malformedNote, "no blank line separates the text from the signatures")
        }
        let text = Array(bytes[...split])
        let block = bytes[(split + 2)...]
        guard !block.isEmpty else { throw NoteError(.malformedNote, "the note has no signature lines") }
        guard block.last == 0x0a else {
            throw NoteError(.malformedNote, "the last signature line does not end with a newline")
        }
        let textLines = text.count { $0 == 0x0a }
        let lines = block.dropLast().split(separator: 0x0a, omittingEmptySubsequences: false)
        guard lines.count <= maximumSignatures else {
            throw NoteError(
                .tooManySignatures, "\(lines.count) signature lines; at most \(maximumSignatures) are accepted")
        }
        var signatures: [NoteSignature] = []
        for (number, line) in lines.enumerated() {
            let lineNumber = textLines + 2 + number
            signatures.append(try parseSignatureLine(String(decoding: line, as: UTF8.self), lineNumber: lineNumber))
        }
        return try SignedNote(text: String(decoding: text, as: UTF8.self), signatures: signatures)
    }

    private static func parseSignatureLine(_ line: String, lineNumber: Int) throws(NoteError) -> NoteSignature {
        let prefix = "\u{2014} "
        guard line.hasPrefix(prefix) else {
            throw NoteError(.malformedNote, "line \(lineNumber) does not start with an em dash (U+2014) and a space")
        }
        let rest = line.dropFirst(prefix.count)
        guard let space = rest.firstIndex(of: " ") else {
            throw NoteError(.malformedNote, "line \(lineNumber) has no space between key name and signature")
        }
        let name = String(rest[..<space])
        let encoded = rest[rest.index(after: space)...]
        guard NoteKey.isValidName(name) else {
            throw NoteError(
                .malformedNote, "line \(lineNumber): key name \"\(name)\" is empty or contains a space or '+'")
        }
        guard let decoded = NoteBase64.decode(encoded) else {
            throw NoteError(.malformedNote, "line \(lineNumber): the signature is not canonical padded base64")
        }
        guard decoded.count >= 5 else {
            throw NoteError(
                .malformedNote, "line \(lineNumber): \(decoded.count) bytes is too short for a key ID and a signature")
        }
        let keyID = decoded.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        return try NoteSignature(name: name, keyID: keyID, signature: Array(decoded.dropFirst(4)))
    }

    /// Checks the signatures against `verifiers` and returns the names of the keys that signed,
    /// in order of appearance.
    ///
    /// Signatures by unknown keys (no verifier with that name *and* key ID) are ignored. Every
    /// signature by a known key must verify, or the whole note is refused. At least one must.
    @discardableResult
    public func verify(with verifiers: [NoteVerifier]) throws(NoteError) -> [String] {
        try verifiedSignatures(with: verifiers).map(\.name)
    }

    /// Like `verify(with:)`, with the key ID, type and (for cosignatures) timestamp of each
    /// verified signature.
    public func verifiedSignatures(with verifiers: [NoteVerifier]) throws(NoteError) -> [VerifiedNoteSignature] {
        var known: [KeyHandle: NoteVerifier] = [:]
        for verifier in verifiers {
            let handle = KeyHandle(verifier.name, verifier.keyID)
            if let existing = known[handle], existing != verifier {
                throw NoteError(
                    .ambiguousVerifier,
                    "two different keys are configured as \(verifier.name)+\(NoteKey.hex(verifier.keyID))")
            }
            known[handle] = verifier
        }
        guard signatures.count <= Self.maximumSignatures else {
            throw NoteError(
                .tooManySignatures, "\(signatures.count) signatures; at most \(Self.maximumSignatures) are accepted")
        }
        let message = Array(text.utf8)
        var verified: [VerifiedNoteSignature] = []
        for signature in signatures {
            guard let verifier = known[KeyHandle(signature.name, signature.keyID)] else { continue }
            let timestamp = try verifier.check(text: message, signature: signature.signature)
            guard
                !verified.contains(where: { KeyHandle($0.name, $0.keyID) == KeyHandle(signature.name, signature.keyID) }
                )
            else {
                continue
            }
            verified.append(
                VerifiedNoteSignature(
                    name: signature.name, keyID: signature.keyID, type: verifier.type, timestamp: timestamp))
        }
        guard !verified.isEmpty else {
            throw NoteError(
                .noVerifiedSignature,
                "none of the \(signatures.count) signatures is by a known key (\(verifiers.count) configured)")
        }
        return verified
    }

    /// Verifies the note and parses its text as a checkpoint.
    public func verifiedCheckpoint(with verifiers: [NoteVerifier]) throws(NoteError) -> Checkpoint {
        try verify(with: verifiers)
        return try Checkpoint.parse(text)
    }

    static func checkText(_ text: [UInt8]) throws(NoteError) {
        guard !text.isEmpty else { throw NoteError(.malformedNote, "the note text is empty") }
        guard text.last == 0x0a else { throw NoteError(.malformedNote, "the note text does not end with a newline") }
        if let offset = text.firstIndex(where: { $0 < 0x20 && $0 != 0x0a }) {
            throw NoteError(
                .malformedNote,
                "the note text has control character 0x\(String(text[offset], radix: 16)) at byte \(offset)")
        }
    }

    /// A key's identity in a note: its name as bytes (Swift's `String` equality would treat
    /// canonically equivalent but differently encoded names as one) and its key ID.
    private struct KeyHandle: Hashable {
        let name: [UInt8]
        let keyID: UInt32

        init(_ name: String, _ keyID: UInt32) {
            self.name = Array(name.utf8)
            self.keyID = keyID
        }
    }
}

/// A signature line that verified under a configured key.
public struct VerifiedNoteSignature: Sendable, Hashable {
    /// The key name of the line.
    public let name: String
    /// The key ID of the line (and of the configured verifier).
    public let keyID: UInt32
    /// The verifier's signature type.
    public let type: NoteSignatureType
    /// The cosignature's POSIX timestamp; `nil` for a plain Ed25519 signature.
    public let timestamp: UInt64?
}

extension Checkpoint {
    /// The checkpoint as an unsigned note, ready for `SignedNote.sign(with:)`.
    public func note() -> SignedNote {
        // `text` always ends with a newline and holds no control characters.
        try! SignedNote(text: text)
    }
}
