import QuorumLog

/// An ``AuditLogSource`` over a ``MerkleLog`` and the checkpoints stored beside it: the newest
/// stored checkpoint is the one served, receipts are found by `receiptIndex`, and there is no
/// evidence unless `evidence` gives some.
///
/// `MerkleLog.storeCheckpoint` keeps only checkpoints whose signatures verified and whose root is
/// the log's, so what this serves is what the quorum signed over this log.
public struct MerkleLogAuditSource: AuditLogSource {
    /// The log served.
    public let log: MerkleLog
    private let lookup: @Sendable (String) throws -> UInt64?
    private let held: @Sendable () throws -> [EquivocationEvidence]

    /// Serves `log`; `receiptIndex` finds a request id's receipt entry, `evidence` lists what
    /// the node holds against equivocating signers.
    public init(
        log: MerkleLog, receiptIndex: @escaping @Sendable (String) throws -> UInt64? = { _ in nil },
        evidence: @escaping @Sendable () throws -> [EquivocationEvidence] = { [] }
    ) {
        self.log = log
        lookup = receiptIndex
        held = evidence
    }

    public func latestCheckpoint() throws -> SignedNote? { try log.latestCheckpoint() }
    public func receiptIndex(requestID: String) throws -> UInt64? { try lookup(requestID) }
    public func evidence() throws -> [EquivocationEvidence] { try held() }
    /// None: a bare log has no decisions beside it.
    public func unlogged() throws -> [UnloggedDecision] { [] }
}
