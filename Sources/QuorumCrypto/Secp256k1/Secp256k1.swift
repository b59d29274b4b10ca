import CSecp256k1

/// The one libsecp256k1 context this process uses (read-only after creation, so shareable).
enum Secp256k1Context {
    // nonisolated(unsafe): the context is created once and only read afterwards; libsecp256k1
    // documents read-only use of a context as thread-safe. Randomisation is applied once here.
    nonisolated(unsafe) static let shared: OpaquePointer = {
        let ctx = secp256k1_context_create(UInt32(SECP256K1_CONTEXT_NONE))!
        let seed = Sodium.randomBytes(32)
        _ = secp256k1_context_randomize(ctx, seed)
        return ctx
    }()
}

/// A point of secp256k1 (prime order), or the identity, which libsecp256k1 cannot represent.
public struct Secp256k1Element: GroupElement {
    public typealias Scalar = Secp256k1Scalar
    /// libsecp256k1's parsed form; `nil` is the identity.
    var key: secp256k1_pubkey?

    init(key: secp256k1_pubkey?) { self.key = key }

    public static let identity = Secp256k1Element(key: nil)
    public static let generator = baseMultiply(.one)

    public var isIdentity: Bool { key == nil }

    /// SEC1 compressed encoding (33 bytes); libsecp256k1 checks the x coordinate is canonical and
    /// on the curve. secp256k1 has cofactor 1, so every curve point is in the group.
    public init(validating bytes: [UInt8]) throws(CryptoError) {
        guard bytes.count == 33 else {
            throw CryptoError(.invalidElement, "a secp256k1 element is 33 bytes (SEC1 compressed), got \(bytes.count)")
        }
        guard bytes[0] == 0x02 || bytes[0] == 0x03 else {
            if bytes.allSatisfy({ $0 == 0 }) {
                throw CryptoError(.identityElement, "the secp256k1 identity element is not a valid input")
            }
            throw CryptoError(.invalidElement, "a compressed secp256k1 point starts with 02 or 03")
        }
        var parsed = secp256k1_pubkey()
        guard secp256k1_ec_pubkey_parse(Secp256k1Context.shared, &parsed, bytes, 33) == 1 else {
            throw CryptoError(.invalidElement, "not a canonical encoding of a secp256k1 point")
        }
        key = parsed
    }

    public func serialized() throws(CryptoError) -> [UInt8] {
        guard var key else { throw CryptoError(.identityElement, "the identity element has no encoding") }
        var out = [UInt8](repeating: 0, count: 33)
        var length = 33
        _ = secp256k1_ec_pubkey_serialize(
            Secp256k1Context.shared, &out, &length, &key, UInt32(SECP256K1_EC_COMPRESSED))
        return out
    }

    public static func + (a: Self, b: Self) -> Self {
        guard let ka = a.key else { return b }
        guard let kb = b.key else { return a }
        var out = secp256k1_pubkey()
        let ok = withUnsafePointer(to: ka) { pa in
            withUnsafePointer(to: kb) { pb in
                var inputs: [UnsafePointer<secp256k1_pubkey>?] = [pa, pb]
                return secp256k1_ec_pubkey_combine(Secp256k1Context.shared, &out, &inputs, 2)
            }
        }
        // combine fails only when the sum is the point at infinity.
        return ok == 1 ? Self(key: out) : .identity
    }

    var negated: Self {
        guard var k = key else { return self }
        _ = secp256k1_ec_pubkey_negate(Secp256k1Context.shared, &k)
        return Self(key: k)
    }

    public static func - (a: Self, b: Self) -> Self { a + b.negated }

    public static func * (s: Scalar, p: Self) -> Self {
        guard var k = p.key, !s.isZero else { return .identity }
        let tweak = s.serialized()
        // Constant-time in libsecp256k1; fails only for a zero or out-of-range tweak.
        guard secp256k1_ec_pubkey_tweak_mul(Secp256k1Context.shared, &k, tweak) == 1 else { return .identity }
        return Self(key: k)
    }

    public static func baseMultiply(_ s: Scalar) -> Self {
        guard !s.isZero else { return .identity }
        var k = secp256k1_pubkey()
        let secret = s.serialized()
        guard secp256k1_ec_pubkey_create(Secp256k1Context.shared, &k, secret) == 1 else { return .identity }
        return Self(key: k)
    }

    public static func publicMultiScalarMultiply(_ scalars: [Scalar], _ points: [Self]) -> Self {
        zip(scalars, points).reduce(.identity) { $0 + $1.0 * $1.1 }
    }

    public static func == (a: Self, b: Self) -> Bool {
        switch (a.key, b.key) {
        case (nil, nil): return true
        case (nil, _), (_, nil): return false
        case (var x?, var y?): return secp256k1_ec_pubkey_cmp(Secp256k1Context.shared, &x, &y) == 0
        }
    }
}

/// FROST(secp256k1, SHA-256), RFC 9591 §6.5.
public enum Secp256k1Suite: Ciphersuite {
    public typealias Scalar = Secp256k1Scalar
    public typealias Element = Secp256k1Element
    public static let id = CiphersuiteID.secp256k1
    public static let scalarLength = 32
    public static let elementLength = 33

    private static let context = Array(CiphersuiteID.secp256k1.rawValue.utf8)

    /// hash_to_field(m, 1) with expand_message_xmd(SHA-256), DST = contextString || tag, L = 48.
    public static func hashToScalar(tag: String, _ message: [UInt8]) -> Scalar {
        Scalar(wideBigEndian: expandMessageXMDSHA256(message, dst: context + Array(tag.utf8), length: 48))
    }

    public static func H2(_ message: [UInt8]) -> Scalar { hashToScalar(tag: "chal", message) }

    public static func hashToBytes(tag: String, _ message: [UInt8]) -> [UInt8] {
        Sodium.sha256([context, Array(tag.utf8), message])
    }

    public static func verifySignature(_ signature: [UInt8], message: [UInt8], publicKey: Element) -> Bool {
        schnorrVerify(signature, message: message, publicKey: publicKey)
    }
}
