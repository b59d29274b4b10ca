/// The replicated log's messages (types 74–83): entries reach the nodes (``LogSubmit`` from a
/// proxy, ``LogGossip`` between nodes), the sequencer proposes batches (``LogBatch``) that nodes
/// store durably before they answer with their cosignature and FROST share (``LogBatchResponse``),
/// and publishes the quorum-signed checkpoint (``CheckpointPublish``); a new sequencer learns every
/// node's state first (``LogStatusRequest``), and a node that is behind fetches entries
/// (``LogFetchRequest``). See `docs/protocol.md`, "Log messages", and `docs/audit-log.md`.
public enum LogLimits {
    /// The most entries one ``LogSubmit`` or ``LogGossip`` carries.
    public static let maximumSubmitted = 1024
    /// The most entries one batch (and one fetch answer) carries.
    public static let maximumBatchEntries = 4096
    /// The most bytes of entries the sequencer puts in one batch; with the framing, a batch stays
    /// well inside the default 4 MiB frame limit.
    public static let maximumBatchBytes = 2 * 1024 * 1024
    /// The longest entry: C2SP tlog-tiles entry bundles prefix each entry with a `u16` length.
    public static let maximumEntryLength = 65_535
    /// The longest checkpoint note carried.
    public static let maximumNoteLength = 64 * 1024
    /// The length of a root hash.
    public static let rootLength = 32
    /// The length of a cosignature line's payload: key ID (4), timestamp (8), Ed25519 signature (64).
    public static let cosignatureLength = 76

    static func entriesProblem(_ entries: [[UInt8]], maximum: Int, allowEmpty: Bool = false) -> String? {
        if entries.isEmpty && !allowEmpty { return "no entries; at least 1" }
        if entries.count > maximum { return "\(entries.count) entries; at most \(maximum)" }
        if let index = entries.firstIndex(where: \.isEmpty) { return "entry \(index) is empty" }
        if let index = entries.firstIndex(where: { $0.count > maximumEntryLength }) {
            return "entry \(index) is \(entries[index].count) bytes; at most \(maximumEntryLength)"
        }
        return nil
    }

    static func rootProblem(_ root: [UInt8], _ what: String) -> String? {
        root.count == rootLength ? nil : "\(what) of \(root.count) bytes; it is \(rootLength)"
    }

    static func readEntries(
        _ reader: inout WireReader, _ field: String, maximum: Int
    ) throws(WireError) -> [[UInt8]] {
        try reader.readArray(field, minimumElementLength: 4, maximumCount: maximum) { reader throws(WireError) in
            try reader.readBytes("", maximumLength: maximumEntryLength)
        }
    }

    static func write(entries: [[UInt8]], into writer: inout WireWriter) {
        writer.write(array: entries) { $0.write(bytes: $1) }
    }

    static func check(_ problem: (String, String)?, _ message: String) throws(WireError) {
        if let (field, reason) = problem {
            throw WireError(.invalidValue, field: "\(message).\(field)", offset: 0, reason)
        }
    }
}

/// Why a node refused a log message: a reason a sequencer can act on, and the detail. Travels as
/// an error response (`refused`, or `unavailable` for ``Reason/noGroupKey`` and
/// ``Reason/overloaded``) whose message is `reason: detail`, as ``SigningRefusal`` does.
public struct LogRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    /// The reasons, by the name they carry on the wire.
    public enum Reason: String, Sendable, Hashable, CaseIterable {
        /// The node holds no group key yet: it can check no receipt and sign no checkpoint.
        case noGroupKey = "no-group-key"
        /// An entry does not decode as a log entry.
        case malformedEntry = "malformed-entry"
        /// A receipt entry whose receipt does not verify under the group key, whose request does
        /// not match its claims, or whose verdicts carry a signature that does not verify.
        case invalidReceipt = "invalid-receipt"
        /// The batch's term is below the highest term the node has seen.
        case staleTerm = "stale-term"
        /// The batch's proposer is not the node that holds its term.
        case wrongProposer = "wrong-proposer"
        /// The batch extends a log the node does not have yet: it is catching up.
        case behind = "behind"
        /// The batch's base is not the end of the node's log (another size or root).
        case wrongBase = "wrong-base"
        /// An entry of the batch is already in the node's log, or twice in the batch.
        case duplicateEntry = "duplicate-entry"
        /// The node signed another root for the checkpoint size this batch makes, and never will.
        case conflictingCheckpoint = "conflicting-checkpoint"
        /// The node's stored log disagrees with a quorum checkpoint: it signs nothing until an
        /// operator has looked.
        case stopped = "stopped"
        /// Too many entries are pending on the node; try again later.
        case overloaded = "overloaded"
    }

    /// The reason.
    public let reason: Reason
    /// What exactly was wrong.
    public let detail: String

    /// A refusal for `reason`.
    public init(_ reason: Reason, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }

    /// The refusal an error response carries, or nil when its message names no log reason.
    public init?(_ response: ErrorResponse) {
        guard let colon = response.message.firstIndex(of: ":"),
            let reason = Reason(rawValue: String(response.message[..<colon]))
        else { return nil }
        var detail = response.message[response.message.index(after: colon)...]
        if detail.first == " " { detail = detail.dropFirst() }
        self.reason = reason
        self.detail = String(detail)
    }

    /// The error response that carries the refusal.
    public var errorResponse: ErrorResponse {
        ErrorResponse(reason == .noGroupKey || reason == .overloaded ? .unavailable : .refused, description)
    }

    /// `reason: detail`.
    public var description: String { "\(reason.rawValue): \(detail)" }
}

/// Entries for the log, from a proxy (its receipts) or a node (its own entries). Each is checked
/// and, if new, kept in the node's pending pool and gossiped once to its peers.
///
/// ```
/// entries  array of bytes  1…1024, each 1…65535: LogEntry leaves
/// ```
public struct LogSubmit: WireMessage {
    /// Message type 74.
    public static let type: UInt16 = 74

    public let entries: [[UInt8]]

    /// A submission of `entries`.
    public init(entries: [[UInt8]]) throws(WireError) {
        self.entries = entries
        try LogLimits.check(
            LogLimits.entriesProblem(entries, maximum: LogLimits.maximumSubmitted).map { ("entries", $0) }, Self.name)
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) { LogLimits.write(entries: entries, into: &writer) }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        entries = try LogLimits.readEntries(&reader, "entries", maximum: LogLimits.maximumSubmitted)
        if let problem = LogLimits.entriesProblem(entries, maximum: LogLimits.maximumSubmitted) {
            throw reader.invalidValue("entries", at: start, problem)
        }
    }
}

/// What became of each submitted entry.
///
/// ```
/// status  u8      1 accepted (new, now pending), 2 known (pending or logged already), 3 refused
/// reason  string  0…1024 bytes: why it was refused (a LogRefusal's `reason: detail`)
/// ```
public struct LogSubmitOutcome: WireCodable, Hashable {
    /// What the node did with the entry.
    public enum Status: UInt8, Sendable, Hashable {
        case accepted = 1
        case known = 2
        case refused = 3
    }

    public let status: Status
    public let reason: String

    /// An outcome; a reason longer than 1024 bytes is cut.
    public init(_ status: Status, reason: String = "") {
        self.status = status
        var cut = reason
        while cut.utf8.count > 1024 { cut.removeLast() }
        self.reason = cut
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(status.rawValue)
        writer.write(string: reason)
    }

    /// Reads the fields in the order of the table above.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        let byte = try reader.readUInt8("status")
        guard let status = Status(rawValue: byte) else {
            throw reader.invalidValue("status", at: start, "status \(byte); 1 accepted, 2 known, 3 refused")
        }
        self.status = status
        reason = try reader.readString("reason", maximumLength: 1024)
    }
}

/// A node's answer to ``LogSubmit``: one outcome per entry, in order.
///
/// ```
/// nodeID    u16                       1…
/// outcomes  array of LogSubmitOutcome one per submitted entry
/// ```
public struct LogSubmitResponse: WireMessage {
    /// Message type 75.
    public static let type: UInt16 = 75

    public let nodeID: UInt16
    public let outcomes: [LogSubmitOutcome]

    /// An answer.
    public init(nodeID: UInt16, outcomes: [LogSubmitOutcome]) throws(WireError) {
        try NodeFacts.check(NodeFacts.nodeIDProblem(nodeID), Self.name, "nodeID")
        self.nodeID = nodeID
        self.outcomes = outcomes
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(nodeID)
        writer.write(array: outcomes) { $0.write($1) }
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        nodeID = try reader.readUInt16("nodeID")
        if let problem = NodeFacts.nodeIDProblem(nodeID) { throw reader.invalidValue("nodeID", at: start, problem) }
        outcomes = try reader.readArray("outcomes", minimumElementLength: 5, maximumCount: LogLimits.maximumSubmitted) {
            reader throws(WireError) in try reader.read(LogSubmitOutcome.self, "")
        }
    }
}

/// Entries a node accepted, pushed once to each peer (one-way). A receiver checks them as it
/// checks submitted ones and does not push them on: every node hears from the one that accepted.
///
/// ```
/// entries  array of bytes  1…1024, each 1…65535
/// ```
public struct LogGossip: WireMessage {
    /// Message type 76.
    public static let type: UInt16 = 76

    public let entries: [[UInt8]]

    /// Gossip of `entries`.
    public init(entries: [[UInt8]]) throws(WireError) {
        self.entries = entries
        try LogLimits.check(
            LogLimits.entriesProblem(entries, maximum: LogLimits.maximumSubmitted).map { ("entries", $0) }, Self.name)
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) { LogLimits.write(entries: entries, into: &writer) }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        entries = try LogLimits.readEntries(&reader, "entries", maximum: LogLimits.maximumSubmitted)
        if let problem = LogLimits.entriesProblem(entries, maximum: LogLimits.maximumSubmitted) {
            throw reader.invalidValue("entries", at: start, problem)
        }
    }
}

/// The sequencer's proposal: append `entries` to the log that ends at the base, and sign the
/// checkpoint that makes. Only nodes may send it.
///
/// ```
/// term      u64                  the sequencer's term; its low 16 bits are the proposer's id
/// proposer  u16                  the sequencer
/// baseSize  u64                  the log the batch extends: its size …
/// baseRoot  bytes                … and root (32)
/// entries   array of bytes       1…4096, each 1…65535
/// signers   array of SignerSlot  the FROST signer set, one nonce commitment each, sorted, distinct
/// ```
public struct LogBatch: WireMessage {
    /// Message type 77.
    public static let type: UInt16 = 77

    public let term: UInt64
    public let proposer: UInt16
    public let baseSize: UInt64
    public let baseRoot: [UInt8]
    public let entries: [[UInt8]]
    public let signers: [SignerSlot]

    /// A batch.
    ///
    /// - Throws: ``WireError/Code/invalidValue`` naming the first field that breaks the table's rules.
    public init(
        term: UInt64, proposer: UInt16, baseSize: UInt64, baseRoot: [UInt8], entries: [[UInt8]],
        signers: [SignerSlot]
    ) throws(WireError) {
        self.term = term
        self.proposer = proposer
        self.baseSize = baseSize
        self.baseRoot = baseRoot
        self.entries = entries
        self.signers = signers
        try LogLimits.check(problem(), Self.name)
    }

    /// The slot of signer `identifier`, if it is in the set.
    public func slot(of identifier: UInt16) -> SignerSlot? { signers.first { $0.identifier == identifier } }

    private func problem() -> (String, String)? {
        if let problem = NodeFacts.nodeIDProblem(proposer) { return ("proposer", problem) }
        if UInt16(truncatingIfNeeded: term) != proposer {
            return (
                "term", "term \(term) belongs to node \(UInt16(truncatingIfNeeded: term)), not proposer \(proposer)"
            )
        }
        if let problem = LogLimits.rootProblem(baseRoot, "a base root") { return ("baseRoot", problem) }
        if let problem = LogLimits.entriesProblem(entries, maximum: LogLimits.maximumBatchEntries) {
            return ("entries", problem)
        }
        if let problem = SigningLimits.signersProblem(signers.map(\.identifier)) { return ("signers", problem) }
        return nil
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(term)
        writer.write(proposer)
        writer.write(baseSize)
        writer.write(bytes: baseRoot)
        LogLimits.write(entries: entries, into: &writer)
        writer.write(array: signers) { $0.write($1) }
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        term = try reader.readUInt64("term")
        proposer = try reader.readUInt16("proposer")
        baseSize = try reader.readUInt64("baseSize")
        baseRoot = try reader.readBytes("baseRoot", maximumLength: LogLimits.rootLength)
        entries = try LogLimits.readEntries(&reader, "entries", maximum: LogLimits.maximumBatchEntries)
        signers = try reader.readArray(
            "signers", minimumElementLength: SignerSlot.minimumLength, maximumCount: SigningLimits.maximumSigners
        ) { reader throws(WireError) in try reader.read(SignerSlot.self, "") }
        if let (field, problem) = problem() { throw reader.invalidValue(field, at: start, problem) }
    }
}

/// A node's answer to ``LogBatch``, sent only once the batch is on its disk: the checkpoint it
/// now holds staged, its cosignature line over it, and its FROST share when it is a signer.
///
/// ```
/// nodeID       u16    1…
/// term         u64    the batch's term
/// size         u64    the checkpoint's size …
/// root         bytes  … and root (32)
/// cosignature  bytes  76: the cosignature line's payload (key ID ‖ timestamp ‖ Ed25519 signature)
/// share        bytes  0 or 32: the FROST share over the checkpoint note's text
/// ```
public struct LogBatchResponse: WireMessage {
    /// Message type 78.
    public static let type: UInt16 = 78

    public let nodeID: UInt16
    public let term: UInt64
    public let size: UInt64
    public let root: [UInt8]
    public let cosignature: [UInt8]
    public let share: [UInt8]

    /// An answer.
    public init(
        nodeID: UInt16, term: UInt64, size: UInt64, root: [UInt8], cosignature: [UInt8], share: [UInt8]
    ) throws(WireError) {
        self.nodeID = nodeID
        self.term = term
        self.size = size
        self.root = root
        self.cosignature = cosignature
        self.share = share
        try LogLimits.check(problem(), Self.name)
    }

    private func problem() -> (String, String)? {
        if let problem = NodeFacts.nodeIDProblem(nodeID) { return ("nodeID", problem) }
        if let problem = LogLimits.rootProblem(root, "a root") { return ("root", problem) }
        if cosignature.count != LogLimits.cosignatureLength {
            return ("cosignature", "\(cosignature.count) bytes; key ID, timestamp and signature make 76")
        }
        if !share.isEmpty, let problem = SigningLimits.shareProblem(share) { return ("share", problem) }
        return nil
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(nodeID)
        writer.write(term)
        writer.write(size)
        writer.write(bytes: root)
        writer.write(bytes: cosignature)
        writer.write(bytes: share)
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        nodeID = try reader.readUInt16("nodeID")
        term = try reader.readUInt64("term")
        size = try reader.readUInt64("size")
        root = try reader.readBytes("root", maximumLength: LogLimits.rootLength)
        cosignature = try reader.readBytes("cosignature", maximumLength: LogLimits.cosignatureLength)
        share = try reader.readBytes("share", maximumLength: SigningLimits.shareLength)
        if let (field, problem) = problem() { throw reader.invalidValue(field, at: start, problem) }
    }
}

/// A checkpoint the quorum signed, broadcast by the sequencer (one-way). Nodes verify the group
/// signature, append the batch they staged for it (or catch up), and check every cosignature
/// against what its key signed before.
///
/// ```
/// term  u64     the sequencer's term (informational)
/// note  string  1…65536 bytes: the C2SP signed note, group line first
/// ```
public struct CheckpointPublish: WireMessage {
    /// Message type 79.
    public static let type: UInt16 = 79

    public let term: UInt64
    public let note: String

    /// A publication.
    public init(term: UInt64, note: String) throws(WireError) {
        self.term = term
        self.note = note
        if note.isEmpty { throw WireError(.invalidValue, field: "\(Self.name).note", offset: 0, "an empty note") }
        if note.utf8.count > LogLimits.maximumNoteLength {
            throw WireError(
                .invalidValue, field: "\(Self.name).note", offset: 0,
                "a note of \(note.utf8.count) bytes; at most \(LogLimits.maximumNoteLength)")
        }
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(term)
        writer.write(string: note)
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        term = try reader.readUInt64("term")
        note = try reader.readString("note", maximumLength: LogLimits.maximumNoteLength)
        if note.isEmpty { throw reader.invalidValue("note", at: start, "an empty note") }
    }
}

/// A batch a node stored but has not seen published: what a new sequencer must propose again
/// before anything new, so that no node that signed it is asked to sign another root.
///
/// ```
/// term      u64            the term it was staged under
/// proposer  u16
/// baseSize  u64, baseRoot bytes (32)   the log it extends
/// size      u64, root bytes (32)       the checkpoint it makes
/// entries   array of bytes
/// ```
public struct StagedBatch: WireCodable, Hashable {
    public let term: UInt64
    public let proposer: UInt16
    public let baseSize: UInt64
    public let baseRoot: [UInt8]
    public let size: UInt64
    public let root: [UInt8]
    public let entries: [[UInt8]]

    /// A staged batch.
    public init(
        term: UInt64, proposer: UInt16, baseSize: UInt64, baseRoot: [UInt8], size: UInt64, root: [UInt8],
        entries: [[UInt8]]
    ) throws(WireError) {
        self.term = term
        self.proposer = proposer
        self.baseSize = baseSize
        self.baseRoot = baseRoot
        self.size = size
        self.root = root
        self.entries = entries
        try LogLimits.check(problem(), Self.name)
    }

    private func problem() -> (String, String)? {
        if let problem = LogLimits.rootProblem(baseRoot, "a base root") { return ("baseRoot", problem) }
        if let problem = LogLimits.rootProblem(root, "a root") { return ("root", problem) }
        if let problem = LogLimits.entriesProblem(entries, maximum: LogLimits.maximumBatchEntries) {
            return ("entries", problem)
        }
        if size != baseSize + UInt64(entries.count) {
            return ("size", "size \(size) is not the base size \(baseSize) plus \(entries.count) entries")
        }
        return nil
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(term)
        writer.write(proposer)
        writer.write(baseSize)
        writer.write(bytes: baseRoot)
        writer.write(size)
        writer.write(bytes: root)
        LogLimits.write(entries: entries, into: &writer)
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        term = try reader.readUInt64("term")
        proposer = try reader.readUInt16("proposer")
        baseSize = try reader.readUInt64("baseSize")
        baseRoot = try reader.readBytes("baseRoot", maximumLength: LogLimits.rootLength)
        size = try reader.readUInt64("size")
        root = try reader.readBytes("root", maximumLength: LogLimits.rootLength)
        entries = try LogLimits.readEntries(&reader, "entries", maximum: LogLimits.maximumBatchEntries)
        if let (field, problem) = problem() { throw reader.invalidValue(field, at: start, problem) }
    }
}

/// Asks a node for its log state. With a term (not 0) from a node, it is also a new sequencer's
/// claim of that term: a node whose highest term is lower raises it (durably) and from then on
/// refuses batches of lower terms. Operators and proxies ask with term 0.
///
/// ```
/// term  u64  the term claimed, or 0
/// ```
public struct LogStatusRequest: WireMessage {
    /// Message type 80.
    public static let type: UInt16 = 80

    public let term: UInt64

    /// A status request, claiming `term` (0: none).
    public init(term: UInt64 = 0) { self.term = term }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) { writer.write(term) }

    /// Reads the fields in the order of the table above.
    public init(from reader: inout WireReader) throws(WireError) { term = try reader.readUInt64("term") }
}

/// A node's log state: what `quorumctl status` prints and what a new sequencer plans from.
///
/// ```
/// nodeID            u16
/// highestTerm       u64                    the highest term the node has seen (after the request's claim)
/// promised          bool                   the request's term was above every term seen before
/// sequencer         u16                    who the node takes for the sequencer (0: none known)
/// logSize           u64, logRoot bytes(32) the node's Merkle log
/// checkpoint        optional string        the newest quorum checkpoint note the node knows (it may
///                                          be beyond its log while it catches up)
/// checkpointAt      i64                    when the node stored it, ms since 1970 (0: never)
/// staged            optional StagedBatch   a batch stored, not yet seen published
/// pending           u64                    entries in the pending pool
/// stopped           optional string        why the node stopped signing, if it did
/// ```
public struct LogStatusResponse: WireMessage {
    /// Message type 81.
    public static let type: UInt16 = 81

    public let nodeID: UInt16
    public let highestTerm: UInt64
    public let promised: Bool
    public let sequencer: UInt16
    public let logSize: UInt64
    public let logRoot: [UInt8]
    public let checkpoint: String?
    public let checkpointAt: Int64
    public let staged: StagedBatch?
    public let pending: UInt64
    public let stopped: String?

    /// A status answer.
    public init(
        nodeID: UInt16, highestTerm: UInt64, promised: Bool, sequencer: UInt16, logSize: UInt64, logRoot: [UInt8],
        checkpoint: String?, checkpointAt: Int64, staged: StagedBatch?, pending: UInt64, stopped: String?
    ) throws(WireError) {
        self.nodeID = nodeID
        self.highestTerm = highestTerm
        self.promised = promised
        self.sequencer = sequencer
        self.logSize = logSize
        self.logRoot = logRoot
        self.checkpoint = checkpoint
        self.checkpointAt = checkpointAt
        self.staged = staged
        self.pending = pending
        self.stopped = stopped
        try LogLimits.check(problem(), Self.name)
    }

    private func problem() -> (String, String)? {
        if let problem = NodeFacts.nodeIDProblem(nodeID) { return ("nodeID", problem) }
        if let problem = LogLimits.rootProblem(logRoot, "a log root") { return ("logRoot", problem) }
        if let checkpoint, checkpoint.utf8.count > LogLimits.maximumNoteLength {
            return ("checkpoint", "a note of \(checkpoint.utf8.count) bytes; at most \(LogLimits.maximumNoteLength)")
        }
        return nil
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(nodeID)
        writer.write(highestTerm)
        writer.write(promised)
        writer.write(sequencer)
        writer.write(logSize)
        writer.write(bytes: logRoot)
        writer.write(optional: checkpoint) { $0.write(string: $1) }
        writer.write(checkpointAt)
        writer.write(optional: staged) { $0.write($1) }
        writer.write(pending)
        writer.write(optional: stopped) { $0.write(string: $1) }
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        nodeID = try reader.readUInt16("nodeID")
        highestTerm = try reader.readUInt64("highestTerm")
        promised = try reader.readBool("promised")
        sequencer = try reader.readUInt16("sequencer")
        logSize = try reader.readUInt64("logSize")
        logRoot = try reader.readBytes("logRoot", maximumLength: LogLimits.rootLength)
        checkpoint = try reader.readOptional("checkpoint") { reader throws(WireError) in
            try reader.readString("", maximumLength: LogLimits.maximumNoteLength)
        }
        checkpointAt = try reader.readInt64("checkpointAt")
        staged = try reader.readOptional("staged") { reader throws(WireError) in
            try reader.read(StagedBatch.self, "")
        }
        pending = try reader.readUInt64("pending")
        stopped = try reader.readOptional("stopped") { reader throws(WireError) in
            try reader.readString("", maximumLength: 4096)
        }
        if let (field, problem) = problem() { throw reader.invalidValue(field, at: start, problem) }
    }
}

/// Asks a node for entries of its log, to catch up.
///
/// ```
/// from   u64  the first index
/// count  u32  1…4096
/// ```
public struct LogFetchRequest: WireMessage {
    /// Message type 82.
    public static let type: UInt16 = 82

    public let from: UInt64
    public let count: UInt32

    /// A fetch of `count` entries from index `from`.
    public init(from: UInt64, count: UInt32) throws(WireError) {
        self.from = from
        self.count = count
        if count == 0 || count > UInt32(LogLimits.maximumBatchEntries) {
            throw WireError(
                .invalidValue, field: "\(Self.name).count", offset: 0,
                "\(count) entries; 1…\(LogLimits.maximumBatchEntries)")
        }
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(from)
        writer.write(count)
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        from = try reader.readUInt64("from")
        let start = reader.offset
        count = try reader.readUInt32("count")
        if count == 0 || count > UInt32(LogLimits.maximumBatchEntries) {
            throw reader.invalidValue("count", at: start, "\(count) entries; 1…\(LogLimits.maximumBatchEntries)")
        }
    }
}

/// A node's answer to ``LogFetchRequest``: the entries it holds from `from` (fewer than asked at
/// the end of its log, or to stay within the frame), and every quorum checkpoint it stored for a
/// size up to the last entry returned, so the fetcher can check each step against one.
///
/// ```
/// nodeID       u16
/// from         u64             echoed
/// entries      array of bytes  0…4096
/// checkpoints  array of string the stored checkpoint notes of sizes in (from, from + entries]
/// ```
public struct LogFetchResponse: WireMessage {
    /// Message type 83.
    public static let type: UInt16 = 83

    public let nodeID: UInt16
    public let from: UInt64
    public let entries: [[UInt8]]
    public let checkpoints: [String]

    /// An answer.
    public init(nodeID: UInt16, from: UInt64, entries: [[UInt8]], checkpoints: [String]) throws(WireError) {
        self.nodeID = nodeID
        self.from = from
        self.entries = entries
        self.checkpoints = checkpoints
        try NodeFacts.check(NodeFacts.nodeIDProblem(nodeID), Self.name, "nodeID")
        try LogLimits.check(
            LogLimits.entriesProblem(entries, maximum: LogLimits.maximumBatchEntries, allowEmpty: true).map {
                ("entries", $0)
            }, Self.name)
    }

    /// Writes the fields in the order of the table above.
    public func encode(into writer: inout WireWriter) {
        writer.write(nodeID)
        writer.write(from)
        LogLimits.write(entries: entries, into: &writer)
        writer.write(array: checkpoints) { $0.write(string: $1) }
    }

    /// Reads the fields in the order of the table above and applies the initializer's rules.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        nodeID = try reader.readUInt16("nodeID")
        if let problem = NodeFacts.nodeIDProblem(nodeID) { throw reader.invalidValue("nodeID", at: start, problem) }
        from = try reader.readUInt64("from")
        let entriesStart = reader.offset
        entries = try LogLimits.readEntries(&reader, "entries", maximum: LogLimits.maximumBatchEntries)
        if let problem = LogLimits.entriesProblem(entries, maximum: LogLimits.maximumBatchEntries, allowEmpty: true) {
            throw reader.invalidValue("entries", at: entriesStart, problem)
        }
        checkpoints = try reader.readArray(
            "checkpoints", minimumElementLength: 4, maximumCount: LogLimits.maximumBatchEntries
        ) { reader throws(WireError) in try reader.readString("", maximumLength: LogLimits.maximumNoteLength) }
    }
}

/// The log's messages, for the registry.
let logMessages: [any WireMessage.Type] = [
    LogSubmit.self, LogSubmitResponse.self, LogGossip.self, LogBatch.self, LogBatchResponse.self,
    CheckpointPublish.self, LogStatusRequest.self, LogStatusResponse.self, LogFetchRequest.self,
    LogFetchResponse.self,
]
