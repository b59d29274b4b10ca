import CSecp256k1
import CSodium
import Testing

@testable import QuorumCrypto

/// Our own arithmetic (Ed25519 public-point arithmetic, secp256k1 scalars) checked against the
/// libraries on random inputs.
@Suite("Arithmetic against libsodium and libsecp256k1")
struct ArithmeticTests {
    @Test("Ed25519 multi-scalar multiplication equals libsodium's per-term products and sums")
    func ed25519MSM() throws {
        for count in [1, 2, 3, 7, 10] {
            let scalars = (0..<count).map { _ in Ed25519Scalar.random() }
            let points = (0..<count).map { _ in Ed25519Element.baseMultiply(.random()) }
            // Reference: libsodium noclamp products, added with crypto_core_ed25519_add.
            var reference = try (scalars[0] * points[0]).serialized()
            for i in 1..<count {
                let term = try (scalars[i] * points[i]).serialized()
                var sum = [UInt8](repeating: 0, count: 32)
                #expect(crypto_core_ed25519_add(&sum, reference, term) == 0)
                reference = sum
            }
            let ours = Ed25519Element.publicMultiScalarMultiply(scalars, points)
            #expect(try ours.serialized() == reference)
        }
    }

    @Test("Ed25519 addition, subtraction, doubling and decoding agree with libsodium")
    func ed25519Ops() throws {
        for _ in 0..<50 {
            let p = Ed25519Element.baseMultiply(.random())
            let q = Ed25519Element.baseMultiply(.random())
            var sum = [UInt8](repeating: 0, count: 32)
            var difference = [UInt8](repeating: 0, count: 32)
            #expect(crypto_core_ed25519_add(&sum, try p.serialized(), try q.serialized()) == 0)
            #expect(crypto_core_ed25519_sub(&difference, try p.serialized(), try q.serialized()) == 0)
            #expect(Ed25519Element(point: (p + q).point).encodedBytes == sum)
            #expect(Ed25519Element(point: (p - q).point).encodedBytes == difference)
            #expect(try Ed25519Element(validating: sum) == p + q)
            #expect(Ed25519Element(point: p.point.doubled()) == Ed25519Scalar(2) * p)
            #expect((p - p).isIdentity)
        }
        // The largest scalar, and small ones, through the NAF path.
        let g = Ed25519Element.generator
        for s in [Ed25519Scalar.one, Ed25519Scalar(2), Ed25519Scalar(31), -Ed25519Scalar.one] {
            #expect(Ed25519Element.publicMultiScalarMultiply([s], [g]) == Ed25519Element.baseMultiply(s))
        }
        #expect(Ed25519Element.publicMultiScalarMultiply([.zero], [g]).isIdentity)
    }

    @Test("Ed25519 scalar arithmetic laws")
    func ed25519Scalars() {
        for _ in 0..<50 {
            let a = Ed25519Scalar.random(), b = Ed25519Scalar.random()
            #expect(a * a.inverse! == .one)
            #expect(a + (-a) == .zero)
            #expect((a - b) + b == a)
            #expect(Ed25519Element.baseMultiply(a * b) == b * Ed25519Element.baseMultiply(a))
        }
        #expect(Ed25519Scalar.zero.inverse == nil)
    }

    @Test("secp256k1 scalars: products and sums agree with libsecp256k1's group operations")
    func secp256k1Scalars() throws {
        for _ in 0..<50 {
            let a = Secp256k1Scalar.random(), b = Secp256k1Scalar.random()
            // (a·b)·G computed by us equals libsecp256k1's tweak_mul(a·G, b).
            #expect(Secp256k1Element.baseMultiply(a * b) == b * Secp256k1Element.baseMultiply(a))
            #expect(
                Secp256k1Element.baseMultiply(a + b) == Secp256k1Element.baseMultiply(a)
                    + Secp256k1Element.baseMultiply(b))
            #expect(
                Secp256k1Element.baseMultiply(a - b) == Secp256k1Element.baseMultiply(a)
                    - Secp256k1Element.baseMultiply(b))
            #expect(a * a.inverse! == .one)
            #expect(a + (-a) == .zero)
            #expect(Secp256k1Scalar(canonical: a.serialized()) == a)
        }
        // Edge values: n − 1 squared is 1; inverse of 2.
        let nMinus1 = -Secp256k1Scalar.one
        #expect(nMinus1 * nMinus1 == .one)
        #expect(Secp256k1Scalar(2) * Secp256k1Scalar(2).inverse! == .one)
        #expect(Secp256k1Scalar.zero.inverse == nil)
        // Identity handling that libsecp256k1 cannot represent.
        let p = Secp256k1Element.baseMultiply(.random())
        #expect((p - p).isIdentity)
        #expect(((p - p) + p) == p)
        #expect(throws: CryptoError.self) { _ = try (p - p).serialized() }
    }

    @Test("RFC 9380 expand_message_xmd(SHA-256) test vector")
    func expandMessage() {
        // RFC 9380 appendix K.1, DST "QUUX-V01-CS02-with-expander-SHA256-128", msg "", len 0x20.
        let out = expandMessageXMDSHA256([], dst: Array("QUUX-V01-CS02-with-expander-SHA256-128".utf8), length: 32)
        #expect(Hex.encode(out) == "68a985b87eb6b46952128911f2a4412bbc302a9d759667f87f7a21d803f07235")
        let abc = expandMessageXMDSHA256(
            Array("abc".utf8), dst: Array("QUUX-V01-CS02-with-expander-SHA256-128".utf8), length: 32)
        #expect(Hex.encode(abc) == "d8ccab23b5985ccea865c6c97b6e5b8350e794e603b4b97902f53a8a0d605615")
    }

    @Test("Hex round trip and rejection")
    func hex() {
        #expect(Hex.decode("00ffAb") == [0, 255, 171])
        #expect(Hex.encode([0, 255, 171]) == "00ffab")
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("zz") == nil)
    }
}
