import Foundation
import QuorumLog
import QuorumProtocol

/// One answer of the audit API, before HTTP: status, content type, caching and body.
public struct AuditAnswer: Sendable, Equatable {
    /// The HTTP status code.
    public var status: Int
    /// The `Content-Type`.
    public var contentType: String
    /// The `Cache-Control`.
    public var cacheControl: String
    /// The body.
    public var body: [UInt8]

    /// An answer.
    public init(status: Int = 200, contentType: String, cacheControl: String, body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.cacheControl = cacheControl
        self.body = body
    }

    /// Tiles and entry bundles never change once they exist (a partial tile of a given width is
    /// as fixed as a full one), so caches may keep them for a year without asking again.
    public static let immutable = "public, max-age=31536000, immutable"
    static let json = "application/json"
    static let text = "text/plain; charset=utf-8"
    static let octets = "application/octet-stream"
}

/// The read-only audit API over an ``AuditLogSource``: what each route answers, as plain values,
/// with no HTTP in sight (``AuditResponder`` puts it on the wire).
///
/// Everything is bounded by the newest quorum-signed checkpoint: tiles, entry bundles, proofs and
/// receipts are served only within its size, so nothing is ever proven against a tree size the
/// quorum has not signed, and an entry the node holds but the quorum has not yet checkpointed is
/// not shown. Every call reads RocksDB: run it on a thread pool, never on an event loop.
public struct AuditAPI: Sendable {
    /// Where the log, checkpoints, receipt index and evidence come from.
    public let source: any AuditLogSource
    /// `max-age` of `/checkpoint`, in seconds: the one mutable resource, so caches keep it briefly.
    public let checkpointMaxAge: Int

    /// The API over `source`.
    public init(source: any AuditLogSource, checkpointMaxAge: Int = 5) {
        self.source = source
        self.checkpointMaxAge = checkpointMaxAge
    }

    /// The answer to `route` with `query`.
    ///
    /// - Throws: ``AuditRequestError`` for what the request got wrong (400, 404); any other error
    ///   means the log could not be read, which the responder answers as a 500 without details.
    public func answer(_ route: AuditRoute, query: String?) throws -> AuditAnswer {
        try route.checkQuery(query)
        switch route {
        case .checkpoint:
            let (note, _) = try signed()
            return AuditAnswer(
                contentType: AuditAnswer.text, cacheControl: "public, max-age=\(checkpointMaxAge)",
                body: Array(note.serialized.utf8))
        case .hashTile(let level, let index, let width):
            let (_, checkpoint) = try signed()
            // A level-8 tile would hold subtrees of 2^64 entries: no such tile can exist.
            guard level < 8, Self.within(index: index, width: width, nodes: checkpoint.size >> UInt64(8 * level))
            else {
                throw AuditRequestError.notFound(
                    "no hash tile \(route.path) within the latest checkpoint (size \(checkpoint.size))")
            }
            return AuditAnswer(
                contentType: AuditAnswer.octets, cacheControl: AuditAnswer.immutable,
                body: try source.log.hashTile(level: level, index: index, width: width))
        case .entryBundle(let index, let width):
            let (_, checkpoint) = try signed()
            guard Self.within(index: index, width: width, nodes: checkpoint.size) else {
                throw AuditRequestError.notFound(
                    "no entry bundle \(route.path) within the latest checkpoint (size \(checkpoint.size))")
            }
            return AuditAnswer(
                contentType: AuditAnswer.octets, cacheControl: AuditAnswer.immutable,
                body: try source.log.entryBundle(index: index, width: width))
        case .inclusionProof:
            let parameters = try AuditQuery(query, allowed: ["index", "size"])
            let (_, checkpoint) = try signed()
            let index = try parameters.required("index")
            let size = try Self.signedSize(parameters["size"], name: "size", checkpoint: checkpoint)
            guard index < size else {
                throw AuditRequestError.badParameter(
                    "index",
                    "\(index) is not below size \(size); the tree of \(size) entries holds indices 0…\(size - 1)")
            }
            let proof = InclusionProofDocument(
                index: index, size: size, leafHash: try source.log.leafHash(at: index),
                root: try source.log.root(at: size), hashes: try source.log.inclusionProof(index: index, size: size))
            return Self.json(proof.json)
        case .consistencyProof:
            let parameters = try AuditQuery(query, allowed: ["from", "to"])
            let (_, checkpoint) = try signed()
            let from = try parameters.required("from")
            let to = try Self.signedSize(parameters["to"], name: "to", checkpoint: checkpoint)
            guard from <= to else {
                throw AuditRequestError.badParameter("from", "\(from) is greater than to (\(to)); need from ≤ to")
            }
            let proof = ConsistencyProofDocument(
                from: from, to: to, root1: try source.log.root(at: from), root2: try source.log.root(at: to),
                hashes: try source.log.consistencyProof(from: from, to: to))
            return Self.json(proof.json)
        case .receipt(let requestID):
            let (note, checkpoint) = try signed()
            guard let index = try source.receiptIndex(requestID: requestID) else {
                throw AuditRequestError.notFound("no receipt for request id \(requestID) in the log")
            }
            guard index < checkpoint.size else {
                throw AuditRequestError(
                    status: 404, code: "not_checkpointed",
                    "the receipt for \(requestID) is at index \(index), beyond the latest checkpoint (size "
                        + "\(checkpoint.size)); retry once the quorum has signed a checkpoint that covers it")
            }
            let entry = try source.log.entry(at: index)
            let proof = TlogProof(
                extra: entry, index: index, hashes: try source.log.inclusionProof(index: index, size: checkpoint.size),
                checkpoint: note)
            let document = ReceiptDocument(requestID: requestID, size: checkpoint.size, proof: proof)
            return Self.json(document.json)
        case .evidence:
            let document = EvidenceDocument(evidence: try source.evidence())
            return AuditAnswer(contentType: AuditAnswer.json, cacheControl: "no-cache", body: document.json)
        case .unlogged:
            let document = UnloggedDocument(decisions: try source.unlogged())
            return AuditAnswer(contentType: AuditAnswer.json, cacheControl: "no-cache", body: document.json)
        }
    }

    /// The newest signed checkpoint and its parsed body, or 404 before the first.
    private func signed() throws -> (SignedNote, Checkpoint) {
        guard let note = try source.latestCheckpoint() else {
            throw AuditRequestError(
                status: 404, code: "no_checkpoint", "the quorum has not signed a checkpoint of this log yet")
        }
        let checkpoint = try Checkpoint.parse(note.text)
        guard checkpoint.size <= source.log.size else {
            throw MerkleError(
                .corruptStore,
                "the latest checkpoint is of size \(checkpoint.size) but the log holds \(source.log.size)")
        }
        return (note, checkpoint)
    }

    /// `value` (default: the checkpoint's size), refused with a 400 past the checkpoint or at 0.
    private static func signedSize(_ value: UInt64?, name: String, checkpoint: Checkpoint) throws -> UInt64 {
        let size = value ?? checkpoint.size
        guard size <= checkpoint.size else {
            throw AuditRequestError.badParameter(
                name,
                "\(size) is beyond the latest checkpoint (size \(checkpoint.size)); proofs are served only "
                    + "against sizes the quorum has signed")
        }
        guard size > 0 || name == "to" else {
            throw AuditRequestError.badParameter(name, "0; the empty tree contains no entry")
        }
        return size
    }

    /// Whether a tile of `width` at `index` lies within `nodes` nodes of its level.
    private static func within(index: UInt64, width: Int, nodes: UInt64) -> Bool {
        let (first, overflow) = index.multipliedReportingOverflow(by: UInt64(TlogTiles.width))
        return !overflow && first <= nodes && UInt64(width) <= nodes - first
    }

    private static func json(_ body: [UInt8]) -> AuditAnswer {
        // A proof against a fixed size never changes, but one without `size` follows the checkpoint.
        AuditAnswer(contentType: AuditAnswer.json, cacheControl: "no-cache", body: body)
    }
}
