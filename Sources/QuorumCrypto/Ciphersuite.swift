/// An element of the scalar field of a prime-order group.
///
/// Arithmetic on values that may be secret is constant-time (libsodium for Ed25519, fixed-limb
/// Montgomery arithmetic for secp256k1). Equality is constant-time.
public protocol GroupScalar: Sendable, Equatable {
    static var zero: Self { get }
    static var one: Self { get }
    /// The scalar equal to a small integer (an identifier, a polynomial index).
    init(_ small: UInt64)
    /// Parses the ciphersuite's canonical encoding; `nil` unless the value is below the group order.
    init?(canonical bytes: [UInt8])
    /// The ciphersuite's canonical encoding (`SerializeScalar`).
    func serialized() -> [UInt8]
    /// A uniformly random non-zero scalar from the system's secure source.
    static func random() -> Self
    static func + (a: Self, b: Self) -> Self
    static func - (a: Self, b: Self) -> Self
    static func * (a: Self, b: Self) -> Self
    static prefix func - (a: Self) -> Self
    /// Multiplicative inverse; `nil` for zero.
    var inverse: Self? { get }
    var isZero: Bool { get }
}

/// An element of a prime-order group.
public protocol GroupElement: Sendable, Equatable {
    associatedtype Scalar: GroupScalar
    static var identity: Self { get }
    static var generator: Self { get }
    var isIdentity: Bool { get }
    static func + (a: Self, b: Self) -> Self
    static func - (a: Self, b: Self) -> Self
    /// Constant-time multiplication by a scalar that may be secret.
    static func * (s: Scalar, p: Self) -> Self
    /// Constant-time multiplication of the generator by a scalar that may be secret.
    static func baseMultiply(_ s: Scalar) -> Self
    /// Σ sᵢ·Pᵢ in variable time. Only for public scalars and points (binding factors,
    /// challenges, commitments): its running time depends on the inputs.
    static func publicMultiScalarMultiply(_ scalars: [Scalar], _ points: [Self]) -> Self
    /// `SerializeElement`: the canonical encoding. The identity has none and throws.
    func serialized() throws(CryptoError) -> [UInt8]
    /// `DeserializeElement`: rejects non-canonical encodings, points off the curve or outside the
    /// prime-order subgroup, and the identity.
    init(validating bytes: [UInt8]) throws(CryptoError)
}

extension GroupElement {
    /// Σ Pᵢ.
    public static func sum(_ points: [Self]) -> Self { points.reduce(.identity, +) }
}

/// Which ciphersuite a file or message speaks, by its RFC 9591 context string.
public enum CiphersuiteID: String, Sendable, Codable, CaseIterable {
    case ed25519 = "FROST-ED25519-SHA512-v1"
    case secp256k1 = "FROST-secp256k1-SHA256-v1"

    /// The short name used on the command line (`--ciphersuite ed25519`).
    public var shortName: String {
        switch self {
        case .ed25519: "ed25519"
        case .secp256k1: "secp256k1"
        }
    }

    public init?(shortName: String) {
        guard let match = Self.allCases.first(where: { $0.shortName == shortName }) else { return nil }
        self = match
    }

    /// One byte naming the suite inside our own binary encodings (sealed blobs, transcripts).
    var tag: UInt8 {
        switch self {
        case .ed25519: 1
        case .secp256k1: 2
        }
    }
}

/// A FROST ciphersuite (RFC 9591 §6): a prime-order group and the hash functions H1…H5, plus the
/// DKG proof-of-knowledge hash. The protocol code is written once, generic over this.
public protocol Ciphersuite: Sendable {
    associatedtype Scalar: GroupScalar
    associatedtype Element: GroupElement where Element.Scalar == Scalar

    static var id: CiphersuiteID { get }
    static var scalarLength: Int { get }
    static var elementLength: Int { get }

    /// Hashes `message` to a scalar under the domain `contextString || tag`. H1 (`rho`), H3
    /// (`nonce`) and HDKG (`dkg`) are instances; our own domains (sealing, DLEQ) use it too.
    static func hashToScalar(tag: String, _ message: [UInt8]) -> Scalar
    /// H2: the signature challenge hash (Ed25519 omits the context string so signatures verify
    /// as RFC 8032).
    static func H2(_ message: [UInt8]) -> Scalar
    /// Hashes `message` to bytes under the domain `contextString || tag` (H4 `msg`, H5 `com`).
    static func hashToBytes(tag: String, _ message: [UInt8]) -> [UInt8]

    /// Verifies a Schnorr signature `R || z` as the ciphersuite defines it (RFC 9591 §6 and, for
    /// Ed25519, RFC 8032).
    static func verifySignature(_ signature: [UInt8], message: [UInt8], publicKey: Element) -> Bool
}

extension Ciphersuite {
    public static var contextString: String { id.rawValue }
    static func H1(_ m: [UInt8]) -> Scalar { hashToScalar(tag: "rho", m) }
    static func H3(_ m: [UInt8]) -> Scalar { hashToScalar(tag: "nonce", m) }
    static func H4(_ m: [UInt8]) -> [UInt8] { hashToBytes(tag: "msg", m) }
    static func H5(_ m: [UInt8]) -> [UInt8] { hashToBytes(tag: "com", m) }
    static func HDKG(_ m: [UInt8]) -> Scalar { hashToScalar(tag: "dkg", m) }

    /// Parses a canonical scalar or throws naming `what`.
    static func scalar(_ bytes: [UInt8], _ what: String) throws(CryptoError) -> Scalar {
        guard bytes.count == scalarLength, let s = Scalar(canonical: bytes) else {
            throw CryptoError(.invalidScalar, "\(what) is not a canonical \(id.shortName) scalar")
        }
        return s
    }

    /// The generic RFC 9591 verification: z·G == R + c·PK.
    static func schnorrVerify(_ signature: [UInt8], message: [UInt8], publicKey: Element) -> Bool {
        guard signature.count == elementLength + scalarLength,
            let r = try? Element(validating: Array(signature[0..<elementLength])),
            let z = Scalar(canonical: Array(signature[elementLength...])),
            let pk = try? publicKey.serialized()
        else { return false }
        let c = H2(Array(signature[0..<elementLength]) + pk + message)
        return Element.baseMultiply(z) == r + Element.publicMultiScalarMultiply([c], [publicKey])
    }
}
