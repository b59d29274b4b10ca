/// `QuorumPolicy`: what each node evaluates for every call. Latches, mounts, derivation and the
/// filter pipeline. No I/O, deterministic: the same request, state snapshot and clock give the
/// same verdict on every node and on replay.
public enum QuorumPolicyModule {}
