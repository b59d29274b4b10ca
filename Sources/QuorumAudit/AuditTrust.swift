import QuorumLog

/// Why an auditor's check failed: a stable code and what exactly did not hold.
public struct AuditFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable codes, printed by the CLI.
    public enum Code: String, Sendable {
        /// The note is not a checkpoint, or not of the expected origin.
        case malformedCheckpoint = "malformed-checkpoint"
        /// No signature line is by the group key.
        case noGroupSignature = "no-group-signature"
        /// A signature by the group or by a known node does not verify.
        case invalidSignature = "invalid-signature"
        /// An inclusion proof does not lead from the entry to the signed root.
        case inclusion = "inclusion-proof"
        /// A consistency proof does not link two signed checkpoints, or two of one size differ.
        case consistency = "consistency"
    }

    /// What kind of failure.
    public let code: Code
    /// What did not hold, naming sizes, roots and keys.
    public let reason: String

    /// A failure.
    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "\(code.rawValue): \(reason)" }
}

/// A checkpoint whose group signature (and every cosignature by a known node) verified.
public struct VerifiedCheckpoint: Sendable, Equatable {
    /// A node's cosignature that verified.
    public struct Cosigner: Sendable, Equatable {
        /// The node whose identity key made it.
        public let nodeID: UInt16
        /// The key name on its line.
        public let name: String
        /// When the node says it cosigned (POSIX seconds).
        public let timestamp: UInt64
    }

    /// The note as served.
    public let note: SignedNote
    /// Its body.
    public let checkpoint: Checkpoint
    /// The key name of the group's signature line.
    public let groupKeyName: String
    /// Nodes whose cosignature verified, by node id.
    public let cosigners: [Cosigner]
    /// Names on signature lines by keys the auditor does not know (not checked, not counted).
    public let unknownSigners: [String]
}

/// What an auditor trusts: the group's public key (group.json), optionally each node's identity
/// key (to check cosignatures and say which nodes signed) and the log's origin.
///
/// Signature lines are matched to keys by key ID, which binds the line's key name: a line is the
/// group's if `keyID(name, Ed25519, groupKey)` equals its key ID, and node `i`'s cosignature if
/// `keyID(name, cosignature/v1, key_i)` does. So the auditor needs no list of key names, and a
/// line cannot borrow a name to pass as another key's.
public struct AuditTrust: Sendable {
    /// The signing group's 32-byte Ed25519 key.
    public let groupKey: [UInt8]
    /// Node identity keys by node id.
    public let nodeKeys: [UInt16: [UInt8]]
    /// The origin every checkpoint must carry, if pinned.
    public let origin: String?

    /// Trust in `groupKey`, `nodeKeys` and (if given) `origin`.
    public init(groupKey: [UInt8], nodeKeys: [UInt16: [UInt8]] = [:], origin: String? = nil) {
        self.groupKey = groupKey
        self.nodeKeys = nodeKeys
        self.origin = origin
    }

    /// Checks a checkpoint note: it parses, carries the pinned origin, is signed by the group, and
    /// every signature by the group or a known node verifies. Lines by unknown keys are listed,
    /// never trusted.
    public func verifyCheckpoint(_ note: SignedNote) throws(AuditFailure) -> VerifiedCheckpoint {
        let checkpoint: Checkpoint
        do { checkpoint = try Checkpoint.parse(note.text) } catch {
            throw AuditFailure(.malformedCheckpoint, error.description)
        }
        if let origin, checkpoint.origin != origin {
            throw AuditFailure(
                .malformedCheckpoint, "the checkpoint is of origin \"\(checkpoint.origin)\", not \"\(origin)\"")
        }
        var verifiers: [NoteVerifier] = []
        var nodeOf: [String: UInt16] = [:]
        var groupNames: [String] = []
        var unknown: [String] = []
        for line in note.signatures {
            if NoteKey.keyID(name: line.name, type: .ed25519, publicKey: groupKey) == line.keyID,
                let verifier = try? NoteVerifier(name: line.name, type: .ed25519, publicKey: groupKey)
            {
                verifiers.append(verifier)
                groupNames.append(line.name)
                continue
            }
            let match = nodeKeys.sorted { $0.key < $1.key }.first { _, key in
                NoteKey.keyID(name: line.name, type: .cosignatureV1, publicKey: key) == line.keyID
            }
            if let (node, key) = match,
                let verifier = try? NoteVerifier(name: line.name, type: .cosignatureV1, publicKey: key)
            {
                verifiers.append(verifier)
                nodeOf[line.name + "+" + NoteKey.hex(line.keyID)] = node
            } else {
                unknown.append(line.name)
            }
        }
        guard let groupName = groupNames.first else {
            throw AuditFailure(
                .noGroupSignature,
                "none of the \(note.signatures.count) signature lines is by the group key "
                    + "(names: \(note.signatures.map(\.name).joined(separator: ", ")))")
        }
        let verified: [VerifiedNoteSignature]
        do { verified = try note.verifiedSignatures(with: Array(Set(verifiers))) } catch {
            throw AuditFailure(.invalidSignature, error.reason)
        }
        let cosigners = verified.compactMap { signature -> VerifiedCheckpoint.Cosigner? in
            guard signature.type == .cosignatureV1,
                let node = nodeOf[signature.name + "+" + NoteKey.hex(signature.keyID)]
            else { return nil }
            return VerifiedCheckpoint.Cosigner(nodeID: node, name: signature.name, timestamp: signature.timestamp ?? 0)
        }
        return VerifiedCheckpoint(
            note: note, checkpoint: checkpoint, groupKeyName: groupName,
            cosigners: cosigners.sorted { $0.nodeID < $1.nodeID }, unknownSigners: unknown)
    }

    /// Checks a tlog-proof: its checkpoint verifies, and its `extra` entry's leaf hash leads by
    /// the proof to the signed root. Returns the verified checkpoint and the entry.
    public func verifyInclusion(_ proof: TlogProof) throws(AuditFailure) -> (VerifiedCheckpoint, [UInt8]) {
        let verified = try verifyCheckpoint(proof.checkpoint)
        guard let entry = proof.extra else {
            throw AuditFailure(.inclusion, "the proof carries no entry (no extra line)")
        }
        do {
            try RFC9162.verifyInclusion(
                leafHash: RFC9162.leafHash(entry), index: proof.index, size: verified.checkpoint.size,
                proof: proof.hashes, root: verified.checkpoint.rootHash)
        } catch {
            throw AuditFailure(.inclusion, (error as? MerkleError)?.reason ?? "\(error)")
        }
        return (verified, entry)
    }

    /// Checks that `older` is a prefix of `newer` (both verified): equal roots at equal sizes, or
    /// an RFC 9162 consistency proof between them. A failure means the two cannot both be the
    /// log: a split view, or a fork.
    public func verifyConsistency(
        from older: VerifiedCheckpoint, to newer: VerifiedCheckpoint, proof: [[UInt8]]
    ) throws(AuditFailure) {
        let (a, b) = (older.checkpoint, newer.checkpoint)
        guard a.origin == b.origin else {
            throw AuditFailure(.consistency, "the checkpoints are of different logs (\"\(a.origin)\", \"\(b.origin)\")")
        }
        guard a.size <= b.size else {
            throw AuditFailure(.consistency, "size \(a.size) is larger than the later size \(b.size)")
        }
        if a.size == b.size {
            guard a.rootHash == b.rootHash else {
                throw AuditFailure(.consistency, "two different roots signed for size \(a.size)")
            }
            return
        }
        do {
            try RFC9162.verifyConsistency(
                size1: a.size, size2: b.size, proof: proof, root1: a.rootHash, root2: b.rootHash)
        } catch {
            throw AuditFailure(
                .consistency, "from size \(a.size) to \(b.size): \((error as? MerkleError)?.reason ?? "\(error)")")
        }
    }
}
