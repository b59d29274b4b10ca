import CSodium

/// Owns secret bytes (key shares, nonces, plaintext credentials) and zeroes them when dropped.
///
/// The storage is allocated once, never copied by Swift's value semantics, and wiped with
/// `sodium_memzero` in `deinit`. It prints as `<redacted>` so a stray interpolation in a log line
/// or an error message cannot leak it.
public final class SecretBytes: @unchecked Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    // @unchecked Sendable: the buffer is written only in `init` and read afterwards; no method
    // mutates it until `deinit`, when no other reference exists.
    private let storage: UnsafeMutableRawBufferPointer

    /// Copies `bytes` into owned storage. The caller remains responsible for its own copy.
    public init(_ bytes: some Collection<UInt8>) {
        storage = .allocate(byteCount: Swift.max(bytes.count, 1), alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        _ = UnsafeMutableRawBufferPointer(rebasing: storage[0..<bytes.count]).initializeMemory(
            as: UInt8.self, from: bytes)
        count = bytes.count
    }

    /// Takes ownership of `bytes`, wiping the array it was handed.
    public convenience init(consuming bytes: inout [UInt8]) {
        self.init(bytes)
        bytes.withUnsafeMutableBytes { Sodium.zero($0) }
        bytes = []
    }

    /// Fills `count` bytes from the system's secure random source.
    public static func random(count: Int) -> SecretBytes {
        var bytes = Sodium.randomBytes(count)
        return SecretBytes(consuming: &bytes)
    }

    /// Number of secret bytes held.
    public let count: Int

    /// Reads the secret. Keep the closure short and do not let the pointer escape.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(rebasing: storage[0..<count]))
    }

    /// A copy of the secret as an array, for APIs that need one; wipe it when done.
    public func copyBytes() -> [UInt8] { withUnsafeBytes { Array($0) } }

    /// Constant-time comparison with another secret.
    public func constantTimeEquals(_ other: SecretBytes) -> Bool {
        withUnsafeBytes { a in other.withUnsafeBytes { b in Sodium.constantTimeEqual(a, b) } }
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }

    deinit {
        Sodium.zero(storage)
        storage.deallocate()
    }
}

/// A scalar that must stay secret (a signing share, a nonce, a polynomial coefficient).
///
/// The scalar value is held in zeroizing storage; `value` hands out a transient copy for
/// arithmetic.
public final class SecretScalar<C: Ciphersuite>: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    private let bytes: SecretBytes

    public init(_ scalar: C.Scalar) {
        var encoded = scalar.serialized()
        bytes = SecretBytes(consuming: &encoded)
    }

    /// A uniformly random non-zero scalar.
    public static func random() -> SecretScalar { SecretScalar(C.Scalar.random()) }

    /// Parses a canonical scalar encoding; `nil` if the bytes are not a canonical scalar.
    public static func deserialize(_ encoded: [UInt8]) -> SecretScalar? {
        guard let scalar = C.Scalar(canonical: encoded) else { return nil }
        return SecretScalar(scalar)
    }

    /// A transient copy of the scalar for arithmetic.
    public var value: C.Scalar {
        bytes.withUnsafeBytes { C.Scalar(canonical: Array($0))! }
    }

    /// The canonical encoding, for writing a key file. The caller owns the returned copy.
    public func serialized() -> SecretBytes { bytes }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
}
