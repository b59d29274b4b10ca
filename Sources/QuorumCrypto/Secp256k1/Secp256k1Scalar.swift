/// A scalar modulo the secp256k1 group order n.
///
/// libsecp256k1's public API has no scalar arithmetic beyond tweaks that refuse zero and no
/// inversion, so this is our own: four 64-bit limbs, Montgomery multiplication, and branch-free
/// conditional subtraction so running time does not depend on secret values.
public struct Secp256k1Scalar: GroupScalar {
    /// Little-endian limbs of a value in [0, n).
    var l: (UInt64, UInt64, UInt64, UInt64)

    static let n: (UInt64, UInt64, UInt64, UInt64) = (
        0xbfd25e8cd0364141, 0xbaaedce6af48a03b, 0xffffffffffffffff - 1, 0xffffffffffffffff
    )
    /// −n⁻¹ mod 2⁶⁴.
    static let nPrime: UInt64 = 0x4b0dff665588b13f
    /// R² mod n with R = 2²⁵⁶.
    static let r2 = Secp256k1Scalar(
        limbs: (0x896cf21467d7d140, 0x741496c20e7cf878, 0xe697f5e45bcd07c6, 0x9d671cd581c69bc5))

    init(limbs: (UInt64, UInt64, UInt64, UInt64)) { l = limbs }

    public static let zero = Secp256k1Scalar(limbs: (0, 0, 0, 0))
    public static let one = Secp256k1Scalar(limbs: (1, 0, 0, 0))

    public init(_ small: UInt64) { l = (small, 0, 0, 0) }

    /// (a − b, borrow) over four limbs.
    @inline(__always)
    static func subtract(
        _ a: (UInt64, UInt64, UInt64, UInt64), _ b: (UInt64, UInt64, UInt64, UInt64)
    ) -> ((UInt64, UInt64, UInt64, UInt64), UInt64) {
        var borrow: UInt64 = 0
        func step(_ x: UInt64, _ y: UInt64) -> UInt64 {
            let (d1, o1) = x.subtractingReportingOverflow(y)
            let (d2, o2) = d1.subtractingReportingOverflow(borrow)
            borrow = (o1 ? 1 : 0) | (o2 ? 1 : 0)
            return d2
        }
        let r = (step(a.0, b.0), step(a.1, b.1), step(a.2, b.2), step(a.3, b.3))
        return (r, borrow)
    }

    /// Branch-free select: `mask` all ones picks `a`, all zeros picks `b`.
    @inline(__always)
    static func select(
        _ mask: UInt64, _ a: (UInt64, UInt64, UInt64, UInt64), _ b: (UInt64, UInt64, UInt64, UInt64)
    ) -> (UInt64, UInt64, UInt64, UInt64) {
        (b.0 ^ (mask & (a.0 ^ b.0)), b.1 ^ (mask & (a.1 ^ b.1)), b.2 ^ (mask & (a.2 ^ b.2)), b.3 ^ (mask & (a.3 ^ b.3)))
    }

    /// Reduces a value below 2n (given as limbs plus a carry bit) into [0, n).
    @inline(__always)
    static func reduceOnce(_ v: (UInt64, UInt64, UInt64, UInt64), carry: UInt64) -> Secp256k1Scalar {
        let (d, borrow) = subtract(v, n)
        // Keep v only when v < n, i.e. the subtraction borrowed and there was no carry.
        let keep = 0 &- (borrow & ~carry & 1)
        return Secp256k1Scalar(limbs: select(keep, v, d))
    }

    public init?(canonical bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        let v = Self.loadBigEndian(bytes)
        let (_, borrow) = Self.subtract(v, Self.n)
        guard borrow == 1 else { return nil }
        l = v
    }

    static func loadBigEndian(_ bytes: some RandomAccessCollection<UInt8>) -> (UInt64, UInt64, UInt64, UInt64) {
        precondition(bytes.count == 32)
        var w = [UInt64](repeating: 0, count: 4)
        for (i, byte) in bytes.enumerated() { w[3 - i / 8] |= UInt64(byte) << (8 * UInt64(7 - i % 8)) }
        return (w[0], w[1], w[2], w[3])
    }

    /// Reduces a 48-byte big-endian value modulo n (RFC 9380 hash_to_field with L = 48).
    init(wideBigEndian bytes: [UInt8]) {
        precondition(bytes.count == 48)
        let high = Self.loadBigEndian([UInt8](repeating: 0, count: 16) + bytes[0..<16])
        let low = Self.loadBigEndian(bytes[16..<48])
        // low < 2^256 < 2n, so one conditional subtraction reduces it.
        let lowReduced = Self.reduceOnce(low, carry: 0)
        // high·2^256 mod n = montgomery(high, R²).
        let highShifted = Self.montgomeryMultiply(Secp256k1Scalar(limbs: high), Self.r2)
        self = lowReduced + highShifted
    }

    public func serialized() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let w = [l.0, l.1, l.2, l.3]
        for i in 0..<32 { out[i] = UInt8(truncatingIfNeeded: w[3 - i / 8] >> (8 * UInt64(7 - i % 8))) }
        return out
    }

    public static func random() -> Secp256k1Scalar {
        while true {
            let s = Secp256k1Scalar(wideBigEndian: Sodium.randomBytes(48))
            if !s.isZero { return s }
        }
    }

    /// (a + b, carry) over four limbs.
    @inline(__always)
    static func add(
        _ a: (UInt64, UInt64, UInt64, UInt64), _ b: (UInt64, UInt64, UInt64, UInt64)
    ) -> ((UInt64, UInt64, UInt64, UInt64), UInt64) {
        var carry: UInt64 = 0
        func step(_ x: UInt64, _ y: UInt64) -> UInt64 {
            let (s1, o1) = x.addingReportingOverflow(y)
            let (s2, o2) = s1.addingReportingOverflow(carry)
            carry = (o1 ? 1 : 0) | (o2 ? 1 : 0)
            return s2
        }
        let r = (step(a.0, b.0), step(a.1, b.1), step(a.2, b.2), step(a.3, b.3))
        return (r, carry)
    }

    public static func + (a: Self, b: Self) -> Self {
        let (sum, carry) = add(a.l, b.l)
        return reduceOnce(sum, carry: carry)
    }

    public static func - (a: Self, b: Self) -> Self {
        let (difference, borrow) = subtract(a.l, b.l)
        // Add n back when the subtraction borrowed (the carry out is discarded: it cancels the borrow).
        return Secp256k1Scalar(limbs: add(difference, select(0 &- borrow, n, (0, 0, 0, 0))).0)
    }

    public static prefix func - (a: Self) -> Self { zero - a }

    /// a·b·R⁻¹ mod n (CIOS Montgomery multiplication).
    static func montgomeryMultiply(_ a: Self, _ b: Self) -> Self {
        let x = [a.l.0, a.l.1, a.l.2, a.l.3]
        let y = [b.l.0, b.l.1, b.l.2, b.l.3]
        let m = [n.0, n.1, n.2, n.3]
        var t = [UInt64](repeating: 0, count: 6)
        for i in 0..<4 {
            var carry: UInt64 = 0
            for j in 0..<4 {
                let p = UInt128(x[j]) &* UInt128(y[i]) &+ UInt128(t[j]) &+ UInt128(carry)
                t[j] = UInt64(truncatingIfNeeded: p)
                carry = UInt64(truncatingIfNeeded: p >> 64)
            }
            let (s4, o4) = t[4].addingReportingOverflow(carry)
            t[4] = s4
            t[5] = o4 ? 1 : 0
            let q = t[0] &* nPrime
            var p = UInt128(q) &* UInt128(m[0]) &+ UInt128(t[0])
            carry = UInt64(truncatingIfNeeded: p >> 64)
            for j in 1..<4 {
                p = UInt128(q) &* UInt128(m[j]) &+ UInt128(t[j]) &+ UInt128(carry)
                t[j - 1] = UInt64(truncatingIfNeeded: p)
                carry = UInt64(truncatingIfNeeded: p >> 64)
            }
            let (s3, o3) = t[4].addingReportingOverflow(carry)
            t[3] = s3
            t[4] = t[5] &+ (o3 ? 1 : 0)
        }
        return reduceOnce((t[0], t[1], t[2], t[3]), carry: t[4])
    }

    public static func * (a: Self, b: Self) -> Self {
        montgomeryMultiply(montgomeryMultiply(a, b), r2)
    }

    /// a^(n−2) by a fixed square-and-multiply chain over the public exponent.
    public var inverse: Self? {
        if isZero { return nil }
        let exponent = Self.subtract(Self.n, (2, 0, 0, 0)).0
        let base = Self.montgomeryMultiply(self, Self.r2)  // to Montgomery form
        var acc = Self.montgomeryMultiply(.one, Self.r2)  // R mod n, i.e. one in Montgomery form
        let words = [exponent.3, exponent.2, exponent.1, exponent.0]
        for word in words {
            for bit in stride(from: 63, through: 0, by: -1) {
                acc = Self.montgomeryMultiply(acc, acc)
                if (word >> UInt64(bit)) & 1 == 1 { acc = Self.montgomeryMultiply(acc, base) }
            }
        }
        return Self.montgomeryMultiply(acc, .one)  // out of Montgomery form
    }

    public var isZero: Bool { (l.0 | l.1 | l.2 | l.3) == 0 }

    public static func == (a: Self, b: Self) -> Bool {
        ((a.l.0 ^ b.l.0) | (a.l.1 ^ b.l.1) | (a.l.2 ^ b.l.2) | (a.l.3 ^ b.l.3)) == 0
    }
}
