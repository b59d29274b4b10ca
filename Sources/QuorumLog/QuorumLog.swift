/// `QuorumLog`: the append-only, tamper-evident audit log every node keeps (RFC 9162 Merkle tree
/// on RocksDB, proofs, C2SP checkpoints, signed notes and tiles). No networking.
public enum QuorumLogModule {}
