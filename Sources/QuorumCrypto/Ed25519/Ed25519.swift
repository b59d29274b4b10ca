import CSodium

/// A scalar modulo the order L of the edwards25519 prime-order subgroup, little-endian, with
/// constant-time arithmetic from libsodium.
public struct Ed25519Scalar: GroupScalar {
    // Four words hold the 32 little-endian bytes inline: no heap allocation per operation.
    var words: (UInt64, UInt64, UInt64, UInt64)

    init(words: (UInt64, UInt64, UInt64, UInt64)) { self.words = words }

    /// Builds a scalar by letting libsodium write its 32 bytes.
    @inline(__always)
    static func make(_ body: (UnsafeMutablePointer<UInt8>) -> Void) -> Ed25519Scalar {
        var s = Ed25519Scalar(words: (0, 0, 0, 0))
        withUnsafeMutableBytes(of: &s.words) { body($0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
        return s
    }

    @inline(__always)
    func withBytes<R>(_ body: (UnsafePointer<UInt8>) -> R) -> R {
        withUnsafeBytes(of: words) { body($0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
    }

    public static let zero = Ed25519Scalar(words: (0, 0, 0, 0))
    public static let one = Ed25519Scalar(words: (1, 0, 0, 0))

    public init(_ small: UInt64) { words = (small, 0, 0, 0) }

    /// L in little-endian 64-bit words.
    static let order: [UInt64] = [0x5812631a5cf5d3ed, 0x14def9dea2f79cd6, 0, 0x1000000000000000]

    public init?(canonical bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        var w = [UInt64](repeating: 0, count: 4)
        for i in 0..<32 { w[i / 8] |= UInt64(bytes[i]) << (8 * UInt64(i % 8)) }
        // Constant-time w < L: the borrow out of w − L is set exactly when w < L.
        var borrow: UInt64 = 0
        for i in 0..<4 {
            let (d1, o1) = w[i].subtractingReportingOverflow(Self.order[i])
            let (_, o2) = d1.subtractingReportingOverflow(borrow)
            borrow = (o1 ? 1 : 0) | (o2 ? 1 : 0)
        }
        guard borrow == 1 else { return nil }
        words = (w[0], w[1], w[2], w[3])
    }

    /// Reduces a 64-byte little-endian value modulo L (RFC 9591's hash-to-scalar for Ed25519).
    init(wide bytes: [UInt8]) {
        _ = Sodium.ready
        precondition(bytes.count == 64)
        self = .make { crypto_core_ed25519_scalar_reduce($0, bytes) }
    }

    public func serialized() -> [UInt8] { withBytes { Array(UnsafeBufferPointer(start: $0, count: 32)) } }

    public static func random() -> Ed25519Scalar {
        _ = Sodium.ready
        return .make { crypto_core_ed25519_scalar_random($0) }
    }

    public static func + (a: Self, b: Self) -> Self {
        a.withBytes { pa in b.withBytes { pb in .make { crypto_core_ed25519_scalar_add($0, pa, pb) } } }
    }

    public static func - (a: Self, b: Self) -> Self {
        a.withBytes { pa in b.withBytes { pb in .make { crypto_core_ed25519_scalar_sub($0, pa, pb) } } }
    }

    public static func * (a: Self, b: Self) -> Self {
        a.withBytes { pa in b.withBytes { pb in .make { crypto_core_ed25519_scalar_mul($0, pa, pb) } } }
    }

    public static prefix func - (a: Self) -> Self {
        a.withBytes { pa in .make { crypto_core_ed25519_scalar_negate($0, pa) } }
    }

    public var inverse: Self? {
        if isZero { return nil }
        return withBytes { p in .make { _ = crypto_core_ed25519_scalar_invert($0, p) } }
    }

    public var isZero: Bool { withBytes { sodium_is_zero($0, 32) == 1 } }

    public static func == (a: Self, b: Self) -> Bool {
        a.withBytes { pa in b.withBytes { pb in sodium_memcmp(pa, pb, 32) == 0 } }
    }
}

/// A point of the edwards25519 prime-order subgroup.
///
/// Decoded once on arrival (libsodium validates the encoding, our code recovers x) and kept both
/// as coordinates and, when known, as its encoding, so repeated use costs neither a decode nor a
/// re-encode.
public struct Ed25519Element: GroupElement {
    public typealias Scalar = Ed25519Scalar
    var point: EdwardsPoint
    /// The canonical encoding when it is already known (received or computed by libsodium).
    var encoding: [UInt8]?

    init(point: EdwardsPoint, encoding: [UInt8]? = nil) {
        self.point = point
        self.encoding = encoding
    }

    public static let identity = Ed25519Element(point: .identity)
    public static let generator: Ed25519Element = baseMultiply(.one)

    public var isIdentity: Bool { point.isIdentity }

    public init(validating bytes: [UInt8]) throws(CryptoError) {
        _ = Sodium.ready
        guard bytes.count == 32 else {
            throw CryptoError(.invalidElement, "an Ed25519 element is 32 bytes, got \(bytes.count)")
        }
        // libsodium: canonical encoding, on the curve, in the prime-order subgroup, not of small
        // order (which excludes the identity).
        guard crypto_core_ed25519_is_valid_point(bytes) == 1 else {
            if bytes == Ed25519Element.identityEncoding {
                throw CryptoError(.identityElement, "the Ed25519 identity element is not a valid input")
            }
            throw CryptoError(
                .invalidElement,
                "not a canonical encoding of a point in the Ed25519 prime-order subgroup")
        }
        guard let point = EdwardsPoint(encoding: bytes) else {
            throw CryptoError(.invalidElement, "Ed25519 point failed to decode")
        }
        self.init(point: point, encoding: bytes)
    }

    static let identityEncoding: [UInt8] = [1] + [UInt8](repeating: 0, count: 31)

    public func serialized() throws(CryptoError) -> [UInt8] {
        if let encoding { return encoding }
        guard !isIdentity else { throw CryptoError(.identityElement, "the identity element has no encoding") }
        return point.encoded()
    }

    /// The encoding without the identity check, for internal hashing of known non-identity points.
    var encodedBytes: [UInt8] { encoding ?? point.encoded() }

    public static func + (a: Self, b: Self) -> Self { Self(point: a.point + b.point) }
    public static func - (a: Self, b: Self) -> Self { Self(point: a.point - b.point) }

    public static func * (s: Scalar, p: Self) -> Self {
        if s.isZero || p.isIdentity { return .identity }
        _ = Sodium.ready
        let input = p.encodedBytes
        var out = [UInt8](repeating: 0, count: 32)
        let rc = s.withBytes { crypto_scalarmult_ed25519_noclamp(&out, $0, input) }
        // libsodium refuses only an identity result, impossible for a non-zero scalar times a
        // point of prime order.
        precondition(rc == 0, "libsodium rejected a validated point")
        return Self(point: EdwardsPoint(encoding: out)!, encoding: out)
    }

    public static func baseMultiply(_ s: Scalar) -> Self {
        if s.isZero { return .identity }
        _ = Sodium.ready
        var out = [UInt8](repeating: 0, count: 32)
        let rc = s.withBytes { crypto_scalarmult_ed25519_base_noclamp(&out, $0) }
        precondition(rc == 0, "libsodium base multiplication failed for a non-zero scalar")
        return Self(point: EdwardsPoint(encoding: out)!, encoding: out)
    }

    public static func publicMultiScalarMultiply(_ scalars: [Scalar], _ points: [Self]) -> Self {
        Self(point: EdwardsPoint.multiScalarMultiply(scalars.map { $0.serialized() }, points.map(\.point)))
    }

    public static func == (a: Self, b: Self) -> Bool { a.point.equals(b.point) }
}

/// FROST(Ed25519, SHA-512), RFC 9591 §6.1. Signatures are RFC 8032 Ed25519 signatures.
public enum Ed25519Suite: Ciphersuite {
    public typealias Scalar = Ed25519Scalar
    public typealias Element = Ed25519Element
    public static let id = CiphersuiteID.ed25519
    public static let scalarLength = 32
    public static let elementLength = 32

    private static let context = Array(CiphersuiteID.ed25519.rawValue.utf8)

    public static func hashToScalar(tag: String, _ message: [UInt8]) -> Scalar {
        Scalar(wide: Sodium.sha512([context, Array(tag.utf8), message]))
    }

    public static func H2(_ message: [UInt8]) -> Scalar { Scalar(wide: Sodium.sha512([message])) }

    public static func hashToBytes(tag: String, _ message: [UInt8]) -> [UInt8] {
        Sodium.sha512([context, Array(tag.utf8), message])
    }

    /// RFC 8032 verification by libsodium (`crypto_sign_verify_detached`), independent of our code.
    public static func verifySignature(_ signature: [UInt8], message: [UInt8], publicKey: Element) -> Bool {
        guard !publicKey.isIdentity else { return false }
        return Ed25519KeyPair.verify(signature: signature, message: message, publicKey: publicKey.encodedBytes)
    }
}
