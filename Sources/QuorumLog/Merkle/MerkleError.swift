/// Every failure of the Merkle log: a stable code and a reason naming the input at fault.
public struct MerkleError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable machine-readable codes. Their raw values appear in CLI output and logs.
    public enum Code: String, Sendable {
        /// An inclusion proof does not lead to the claimed root, or its shape is wrong.
        case invalidInclusionProof = "invalid-inclusion-proof"
        /// A consistency proof does not lead to both claimed roots, or its shape is wrong.
        case invalidConsistencyProof = "invalid-consistency-proof"
        /// A size, index or range outside the log (index beyond size, from > to, size > current).
        case invalidArgument = "invalid-argument"
        /// An entry longer than ``MerkleLog/maximumEntryLength`` bytes.
        case entryTooLarge = "entry-too-large"
        /// The store holds something that cannot have been written by this code.
        case corruptStore = "corrupt-store"
        /// RocksDB refused an operation.
        case storage = "storage"
    }

    /// What kind of failure this is.
    public let code: Code
    /// What was wrong, naming the values or the stored location involved.
    public let reason: String

    /// A failure of kind `code`, explained by `reason`.
    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "\(code.rawValue): \(reason)" }
}
