import QuorumCrypto

/// Signed checkpoints kept beside the tree, in the `checkpoints` column family: size (u64
/// big-endian) → the signed note as received.
extension MerkleLog {
    /// Stores a signed checkpoint of this log and returns its checkpoint.
    ///
    /// Refused, with nothing written, unless the note verifies under `verifiers` (at least one
    /// known signature, none failing), its origin is `origin`, its size is within the log, and its
    /// root equals this log's root at that size. A second checkpoint for the same size must carry
    /// the same root; its note replaces the first (it may carry more cosignatures).
    @discardableResult
    public func storeCheckpoint(_ note: SignedNote, origin: String, verifiers: [NoteVerifier]) throws -> Checkpoint {
        let checkpoint = try note.verifiedCheckpoint(with: verifiers)
        guard checkpoint.origin == origin else {
            throw MerkleError(
                .invalidArgument, "the checkpoint is for origin \"\(checkpoint.origin)\", not \"\(origin)\"")
        }
        guard checkpoint.size <= size else {
            throw MerkleError(
                .invalidArgument, "the checkpoint is for size \(checkpoint.size), the log has \(size) entries")
        }
        guard try root(at: checkpoint.size) == checkpoint.rootHash else {
            throw MerkleError(
                .invalidArgument, "the checkpoint's root differs from this log's root at size \(checkpoint.size)")
        }
        var batch = WriteBatch()
        batch.put(Self.checkpointsFamily, Self.entryKey(checkpoint.size), Array(note.serialized.utf8))
        try store.write(batch)
        return checkpoint
    }

    /// The stored signed checkpoint for `size`, if any.
    public func checkpoint(at size: UInt64) throws -> SignedNote? {
        guard let bytes = try store.get(Self.checkpointsFamily, Self.entryKey(size)) else { return nil }
        do {
            return try SignedNote.parse(bytes)
        } catch {
            throw MerkleError(.corruptStore, "\(store.path): stored checkpoint for size \(size): \(error)")
        }
    }

    /// The stored signed checkpoints of sizes `after` < size ≤ `through`, by size: what a node
    /// that fetches entries from this one checks each stretch of them against.
    public func checkpoints(after: UInt64, through: UInt64) throws -> [SignedNote] {
        guard after < through else { return [] }
        var notes: [SignedNote] = []
        let end = through == .max ? nil : Self.entryKey(through + 1)
        try store.scan(Self.checkpointsFamily, from: Self.entryKey(after + 1), until: end) { key, value in
            do { notes.append(try SignedNote.parse(value)) } catch {
                throw MerkleError(.corruptStore, "\(store.path): stored checkpoint \(Hex.encode(key)): \(error)")
            }
            return true
        }
        return notes
    }

    /// The stored signed checkpoint with the largest size, if any.
    public func latestCheckpoint() throws -> SignedNote? {
        // Keys are sizes big-endian, so the last key is the largest size.
        guard let latest = try store.last(Self.checkpointsFamily)?.value else { return nil }
        do { return try SignedNote.parse(latest) } catch {
            throw MerkleError(.corruptStore, "\(store.path): latest stored checkpoint: \(error)")
        }
    }

    /// Checks every stored checkpoint against the tree: its key matches its size, its body parses,
    /// and its root is the log's root at that size; with `verifiers`, its signatures verify too.
    func auditCheckpoints(verifiers: [NoteVerifier]) throws -> [StoreProblem] {
        var problems: [StoreProblem] = []
        let size = self.size
        try store.scan(Self.checkpointsFamily) { key, value in
            let location = "checkpoints key \(Hex.encode(key))"
            guard let keySize = UInt64(bigEndianBytes: key) else {
                problems.append(StoreProblem(location: location, reason: "key is not an 8-byte size"))
                return true
            }
            let checkpoint: Checkpoint
            do {
                let note = try SignedNote.parse(value)
                checkpoint =
                    verifiers.isEmpty ? try Checkpoint.parse(note.text) : try note.verifiedCheckpoint(with: verifiers)
            } catch {
                problems.append(StoreProblem(location: "checkpoints size \(keySize)", reason: "\(error)"))
                return true
            }
            if checkpoint.size != keySize {
                problems.append(
                    StoreProblem(
                        location: "checkpoints size \(keySize)", reason: "holds a checkpoint of size \(checkpoint.size)"
                    ))
            } else if keySize > size {
                problems.append(
                    StoreProblem(location: "checkpoints size \(keySize)", reason: "beyond the log's size \(size)"))
            } else if try root(at: keySize) != checkpoint.rootHash {
                problems.append(
                    StoreProblem(
                        location: "checkpoints size \(keySize)",
                        reason: "root differs from the tree's root at that size"))
            }
            return true
        }
        return problems
    }
}
