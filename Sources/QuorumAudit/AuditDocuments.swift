import Foundation
import QuorumLog
import QuorumProtocol

/// Why a JSON document from the audit API could not be read: the field at fault and what was wrong.
public struct AuditDocumentError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The field (`hashes[2]`, `tlog_proof`), or `document` for the whole.
    public let field: String
    /// What was wrong.
    public let reason: String

    init(_ field: String, _ reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { "\(field): \(reason)" }
}

/// Reading the canonical JSON documents of the API, with errors naming the field.
struct DocumentReader {
    let members: [String: CanonicalJSON.Value]

    init(_ bytes: [UInt8]) throws(AuditDocumentError) {
        let value: CanonicalJSON.Value
        do { value = try CanonicalJSON.parse(bytes) } catch {
            throw AuditDocumentError("document", "not JSON of the audit API: \(error)")
        }
        guard case .object(let members) = value else {
            throw AuditDocumentError("document", "is \(value.kind), not an object")
        }
        self.members = members
    }

    func string(_ key: String) throws(AuditDocumentError) -> String {
        guard case .string(let text) = members[key] else { throw AuditDocumentError(key, "missing or not a string") }
        return text
    }

    func number(_ key: String) throws(AuditDocumentError) -> UInt64 {
        guard case .integer(let value) = members[key], value >= 0 else {
            throw AuditDocumentError(key, "missing or not a non-negative integer")
        }
        return UInt64(value)
    }

    func hash(_ key: String) throws(AuditDocumentError) -> [UInt8] {
        try Self.hash(try string(key), field: key)
    }

    func hashes(_ key: String) throws(AuditDocumentError) -> [[UInt8]] {
        guard case .array(let items) = members[key] else { throw AuditDocumentError(key, "missing or not an array") }
        var hashes: [[UInt8]] = []
        for (index, item) in items.enumerated() {
            guard case .string(let text) = item else { throw AuditDocumentError("\(key)[\(index)]", "not a string") }
            hashes.append(try Self.hash(text, field: "\(key)[\(index)]"))
        }
        return hashes
    }

    static func hash(_ text: String, field: String) throws(AuditDocumentError) -> [UInt8] {
        guard let bytes = Data(base64Encoded: text), bytes.count == RFC9162.hashLength else {
            throw AuditDocumentError(field, "not a base64 SHA-256 hash")
        }
        return Array(bytes)
    }
}

extension CanonicalJSON.Value {
    static func number(_ value: UInt64) -> CanonicalJSON.Value { .integer(Int64(clamping: value)) }
    static func base64(_ bytes: [UInt8]) -> CanonicalJSON.Value { .string(Data(bytes).base64EncodedString()) }
}

/// `GET proof/inclusion`: the fields of `quorumctl log prove inclusion`, so one shape serves both.
public struct InclusionProofDocument: Sendable, Equatable {
    /// The entry's index.
    public let index: UInt64
    /// The tree size the proof is against.
    public let size: UInt64
    /// The entry's RFC 9162 leaf hash.
    public let leafHash: [UInt8]
    /// The root at `size`, as the node computes it; trust it only once a signed checkpoint of that
    /// size carries the same root.
    public let root: [UInt8]
    /// The audit path, deepest first.
    public let hashes: [[UInt8]]

    /// A document from its parts.
    public init(index: UInt64, size: UInt64, leafHash: [UInt8], root: [UInt8], hashes: [[UInt8]]) {
        self.index = index
        self.size = size
        self.leafHash = leafHash
        self.root = root
        self.hashes = hashes
    }

    /// Canonical JSON, newline-terminated.
    public var json: [UInt8] {
        CanonicalJSON.encode(
            .object([
                "index": .number(index), "size": .number(size), "leaf_hash": .base64(leafHash), "root": .base64(root),
                "hashes": .array(hashes.map { .base64($0) }),
            ])) + [0x0a]
    }

    /// Reads a document the API served.
    public init(json bytes: [UInt8]) throws(AuditDocumentError) {
        let reader = try DocumentReader(bytes)
        self.init(
            index: try reader.number("index"), size: try reader.number("size"), leafHash: try reader.hash("leaf_hash"),
            root: try reader.hash("root"), hashes: try reader.hashes("hashes"))
    }
}

/// `GET proof/consistency`: the fields of `quorumctl log prove consistency`.
public struct ConsistencyProofDocument: Sendable, Equatable {
    /// The smaller size.
    public let from: UInt64
    /// The larger size.
    public let to: UInt64
    /// The root at `from`, as the node computes it.
    public let root1: [UInt8]
    /// The root at `to`, as the node computes it.
    public let root2: [UInt8]
    /// The RFC 9162 consistency proof.
    public let hashes: [[UInt8]]

    /// A document from its parts.
    public init(from: UInt64, to: UInt64, root1: [UInt8], root2: [UInt8], hashes: [[UInt8]]) {
        self.from = from
        self.to = to
        self.root1 = root1
        self.root2 = root2
        self.hashes = hashes
    }

    /// Canonical JSON, newline-terminated.
    public var json: [UInt8] {
        CanonicalJSON.encode(
            .object([
                "from": .number(from), "to": .number(to), "root1": .base64(root1), "root2": .base64(root2),
                "hashes": .array(hashes.map { .base64($0) }),
            ])) + [0x0a]
    }

    /// Reads a document the API served.
    public init(json bytes: [UInt8]) throws(AuditDocumentError) {
        let reader = try DocumentReader(bytes)
        self.init(
            from: try reader.number("from"), to: try reader.number("to"), root1: try reader.hash("root1"),
            root2: try reader.hash("root2"), hashes: try reader.hashes("hashes"))
    }
}

/// `GET receipts/<request-id>`: the receipt's log entry, its index, its inclusion proof and the
/// checkpoint it is proven against, both as JSON fields and as one C2SP tlog-proof text (whose
/// `extra` line is the entry).
///
/// Where tlog-proof does not fit, the JSON carries what it lacks: the request id the lookup was
/// by, and the tree size, which the proof only implies through its checkpoint.
public struct ReceiptDocument: Sendable, Equatable {
    /// The request id looked up.
    public let requestID: String
    /// The checkpoint's size.
    public let size: UInt64
    /// The entry (as `extra`), index, proof and checkpoint.
    public let proof: TlogProof

    /// A document from its parts.
    public init(requestID: String, size: UInt64, proof: TlogProof) {
        self.requestID = requestID
        self.size = size
        self.proof = proof
    }

    /// Canonical JSON, newline-terminated: `request_id`, `index`, `size`, `entry`, `leaf_hash`,
    /// `hashes`, `checkpoint` and `tlog_proof`.
    public var json: [UInt8] {
        let entry = proof.extra ?? []
        return CanonicalJSON.encode(
            .object([
                "request_id": .string(requestID), "index": .number(proof.index), "size": .number(size),
                "entry": .base64(entry), "leaf_hash": .base64(RFC9162.leafHash(entry)),
                "hashes": .array(proof.hashes.map { .base64($0) }), "checkpoint": .string(proof.checkpoint.serialized),
                "tlog_proof": .string(proof.text),
            ])) + [0x0a]
    }

    /// Reads a document the API served: the tlog-proof is what counts; the other fields must agree
    /// with it, so two readers of one document cannot see different things.
    public init(json bytes: [UInt8]) throws(AuditDocumentError) {
        let reader = try DocumentReader(bytes)
        let proofText = try reader.string("tlog_proof")
        let proof: TlogProof
        do { proof = try TlogProof.parse(proofText) } catch { throw AuditDocumentError("tlog_proof", error.reason) }
        guard let entry = proof.extra else { throw AuditDocumentError("tlog_proof", "carries no entry (extra line)") }
        guard try reader.number("index") == proof.index else {
            throw AuditDocumentError("index", "differs from the tlog-proof's")
        }
        guard Data(base64Encoded: try reader.string("entry")).map(Array.init) == entry else {
            throw AuditDocumentError("entry", "differs from the tlog-proof's extra line")
        }
        guard try reader.hashes("hashes") == proof.hashes else {
            throw AuditDocumentError("hashes", "differ from the tlog-proof's")
        }
        guard try reader.string("checkpoint") == proof.checkpoint.serialized else {
            throw AuditDocumentError("checkpoint", "differs from the tlog-proof's")
        }
        self.init(requestID: try reader.string("request_id"), size: try reader.number("size"), proof: proof)
    }
}

/// `GET evidence`: every pair of conflicting checkpoints the node holds.
public struct EvidenceDocument: Sendable, Equatable {
    /// The evidence, as the source reported it.
    public let evidence: [EquivocationEvidence]

    /// A document listing `evidence`.
    public init(evidence: [EquivocationEvidence]) { self.evidence = evidence }

    /// Canonical JSON, newline-terminated: `{"evidence":[{key_name,size,note_a,note_b}]}`.
    public var json: [UInt8] {
        CanonicalJSON.encode(
            .object([
                "evidence": .array(
                    evidence.map {
                        .object([
                            "key_name": .string($0.keyName), "size": .number($0.size),
                            "note_a": .string($0.noteA), "note_b": .string($0.noteB),
                        ])
                    })
            ])) + [0x0a]
    }

    /// Reads a document the API served.
    public init(json bytes: [UInt8]) throws(AuditDocumentError) {
        let reader = try DocumentReader(bytes)
        guard case .array(let items) = reader.members["evidence"] else {
            throw AuditDocumentError("evidence", "missing or not an array")
        }
        var evidence: [EquivocationEvidence] = []
        for (index, item) in items.enumerated() {
            guard case .object(let members) = item else {
                throw AuditDocumentError("evidence[\(index)]", "not an object")
            }
            let entry = DocumentReader(members: members)
            func note(_ key: String) throws(AuditDocumentError) -> String {
                let text = try entry.string(key)
                do { _ = try SignedNote.parse(text) } catch {
                    throw AuditDocumentError("evidence[\(index)].\(key)", error.description)
                }
                return text
            }
            evidence.append(
                EquivocationEvidence(
                    keyName: try entry.string("key_name"), size: try entry.number("size"), noteA: try note("note_a"),
                    noteB: try note("note_b")))
        }
        self.init(evidence: evidence)
    }
}

/// `GET unlogged`: the node's decisions whose receipts did not reach its log in time, oldest first.
public struct UnloggedDocument: Sendable, Equatable {
    /// The decisions, as the source reported them.
    public let decisions: [UnloggedDecision]

    /// A document listing `decisions`.
    public init(decisions: [UnloggedDecision]) { self.decisions = decisions }

    /// Canonical JSON, newline-terminated:
    /// `{"unlogged":[{request_id,decided_at,decision,decryption_share}]}`, `decided_at` in
    /// milliseconds since the Unix epoch, `decision` `allow` or `deny`, `decryption_share`
    /// `given` or `none`.
    public var json: [UInt8] {
        CanonicalJSON.encode(
            .object([
                "unlogged": .array(
                    decisions.map {
                        .object([
                            "request_id": .string($0.requestID), "decided_at": .integer($0.decidedAt),
                            "decision": .string($0.allow ? "allow" : "deny"),
                            "decryption_share": .string($0.decryptionShare ? "given" : "none"),
                        ])
                    })
            ])) + [0x0a]
    }

    /// Reads a document the API served.
    public init(json bytes: [UInt8]) throws(AuditDocumentError) {
        let reader = try DocumentReader(bytes)
        guard case .array(let items) = reader.members["unlogged"] else {
            throw AuditDocumentError("unlogged", "missing or not an array")
        }
        var decisions: [UnloggedDecision] = []
        for (index, item) in items.enumerated() {
            guard case .object(let members) = item else {
                throw AuditDocumentError("unlogged[\(index)]", "not an object")
            }
            let entry = DocumentReader(members: members)
            func choice(_ key: String, _ yes: String, _ no: String) throws(AuditDocumentError) -> Bool {
                switch try entry.string(key) {
                case yes: return true
                case no: return false
                case let other:
                    throw AuditDocumentError("unlogged[\(index)].\(key)", "\"\(other)\"; expected \(yes) or \(no)")
                }
            }
            decisions.append(
                UnloggedDecision(
                    requestID: try entry.string("request_id"),
                    decidedAt: Int64(clamping: try entry.number("decided_at")),
                    allow: try choice("decision", "allow", "deny"),
                    decryptionShare: try choice("decryption_share", "given", "none")))
        }
        self.init(decisions: decisions)
    }
}

extension DocumentReader {
    init(members: [String: CanonicalJSON.Value]) { self.members = members }
}
