/// A RocksDB failure: what was attempted, on which database directory, and RocksDB's own message.
public struct StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What the store was doing when RocksDB refused (`open`, `get`, `write`, `iterate`).
    public let operation: String
    /// The database directory.
    public let path: String
    /// RocksDB's message, verbatim.
    public let message: String

    /// A failure of `operation` on the database at `path`, with RocksDB's `message`.
    public init(operation: String, path: String, message: String) {
        self.operation = operation
        self.path = path
        self.message = message
    }

    public var description: String { "RocksDB \(operation) failed on \(path): \(message)" }
}
