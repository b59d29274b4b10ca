/// An element of GF(2²⁵⁵ − 19) in five 51-bit limbs.
///
/// Used only for the variable-time group arithmetic on public points (group commitments, share
/// and proof checks): libsodium decodes and fully validates a point on every call, which costs
/// more than the arithmetic itself when the same validated commitments are combined many times.
/// Nothing secret ever passes through this type.
struct FieldElement25519: Sendable {
    var l0, l1, l2, l3, l4: UInt64

    static let mask51: UInt64 = (1 << 51) - 1
    static let zero = FieldElement25519(l0: 0, l1: 0, l2: 0, l3: 0, l4: 0)
    static let one = FieldElement25519(l0: 1, l1: 0, l2: 0, l3: 0, l4: 0)
    /// Edwards d = −121665/121666.
    static let d = FieldElement25519(
        l0: 0x34dca135978a3, l1: 0x1a8283b156ebd, l2: 0x5e7a26001c029, l3: 0x739c663a03cbb, l4: 0x52036cee2b6ff)
    static let d2 = FieldElement25519(
        l0: 0x69b9426b2f159, l1: 0x35050762add7a, l2: 0x3cf44c0038052, l3: 0x6738cc7407977, l4: 0x2406d9dc56dff)
    static let sqrtMinusOne = FieldElement25519(
        l0: 0x61b274a0ea0b0, l1: 0xd5a5fc8f189d, l2: 0x7ef5e9cbd0c60, l3: 0x78595a6804c9e, l4: 0x2b8324804fc1d)

    /// Loads 32 little-endian bytes, ignoring the top bit (the sign bit of a point encoding).
    init(bytes: UnsafeRawBufferPointer) {
        func load(_ offset: Int) -> UInt64 {
            var v: UInt64 = 0
            for i in 0..<8 { v |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
            return v
        }
        let m = Self.mask51
        l0 = load(0) & m
        l1 = (load(6) >> 3) & m
        l2 = (load(12) >> 6) & m
        l3 = (load(19) >> 1) & m
        l4 = (load(24) >> 12) & m
    }

    init(l0: UInt64, l1: UInt64, l2: UInt64, l3: UInt64, l4: UInt64) {
        (self.l0, self.l1, self.l2, self.l3, self.l4) = (l0, l1, l2, l3, l4)
    }

    /// Carries so every limb is below 2⁵² (value unchanged mod p).
    @inline(__always)
    func carried() -> FieldElement25519 {
        let m = Self.mask51
        var r = self
        var c = r.l0 >> 51
        r.l0 &= m
        r.l1 &+= c
        c = r.l1 >> 51
        r.l1 &= m
        r.l2 &+= c
        c = r.l2 >> 51
        r.l2 &= m
        r.l3 &+= c
        c = r.l3 >> 51
        r.l3 &= m
        r.l4 &+= c
        c = r.l4 >> 51
        r.l4 &= m
        r.l0 &+= c &* 19
        return r
    }

    @inline(__always)
    static func + (a: Self, b: Self) -> Self {
        Self(l0: a.l0 &+ b.l0, l1: a.l1 &+ b.l1, l2: a.l2 &+ b.l2, l3: a.l3 &+ b.l3, l4: a.l4 &+ b.l4).carried()
    }

    @inline(__always)
    static func - (a: Self, b: Self) -> Self {
        // Add 4p first so no limb underflows (inputs are carried, limbs < 2^52).
        Self(
            l0: (a.l0 &+ 0x1f_ffff_ffff_ffb4) &- b.l0, l1: (a.l1 &+ 0x1f_ffff_ffff_fffc) &- b.l1,
            l2: (a.l2 &+ 0x1f_ffff_ffff_fffc) &- b.l2, l3: (a.l3 &+ 0x1f_ffff_ffff_fffc) &- b.l3,
            l4: (a.l4 &+ 0x1f_ffff_ffff_fffc) &- b.l4
        ).carried()
    }

    static prefix func - (a: Self) -> Self { .zero - a }

    @inline(__always)
    static func * (a: Self, b: Self) -> Self {
        @inline(__always) func m(_ x: UInt64, _ y: UInt64) -> UInt128 { UInt128(x) &* UInt128(y) }
        let b1 = b.l1 &* 19, b2 = b.l2 &* 19, b3 = b.l3 &* 19, b4 = b.l4 &* 19
        let r0 = m(a.l0, b.l0) &+ m(a.l1, b4) &+ m(a.l2, b3) &+ m(a.l3, b2) &+ m(a.l4, b1)
        var r1 = m(a.l0, b.l1) &+ m(a.l1, b.l0) &+ m(a.l2, b4) &+ m(a.l3, b3) &+ m(a.l4, b2)
        var r2 = m(a.l0, b.l2) &+ m(a.l1, b.l1) &+ m(a.l2, b.l0) &+ m(a.l3, b4) &+ m(a.l4, b3)
        var r3 = m(a.l0, b.l3) &+ m(a.l1, b.l2) &+ m(a.l2, b.l1) &+ m(a.l3, b.l0) &+ m(a.l4, b4)
        var r4 = m(a.l0, b.l4) &+ m(a.l1, b.l3) &+ m(a.l2, b.l2) &+ m(a.l3, b.l1) &+ m(a.l4, b.l0)
        let mask = UInt128(Self.mask51)
        r1 &+= r0 >> 51
        r2 &+= r1 >> 51
        r3 &+= r2 >> 51
        r4 &+= r3 >> 51
        // The top carry times 19 can exceed 64 bits for unreduced inputs: fold it in 128 bits.
        let low0 = (r0 & mask) &+ (r4 >> 51) &* 19
        return Self(
            l0: UInt64(truncatingIfNeeded: low0 & mask),
            l1: UInt64(truncatingIfNeeded: r1 & mask) &+ UInt64(truncatingIfNeeded: low0 >> 51),
            l2: UInt64(truncatingIfNeeded: r2 & mask), l3: UInt64(truncatingIfNeeded: r3 & mask),
            l4: UInt64(truncatingIfNeeded: r4 & mask))
    }

    @inline(__always)
    func squared() -> Self { self * self }

    func squared(times n: Int) -> Self {
        var r = self
        for _ in 0..<n { r = r * r }
        return r
    }

    /// (self^(2^250 − 1), self^11) — the shared prefix of inversion and square-root chains.
    private func pow22501() -> (Self, Self) {
        let t0 = squared()
        let t1 = t0.squared(times: 2) * self
        let t2 = t1 * t0  // x^11
        let t3 = t2.squared() * t1  // x^(2^5-1)
        let t4 = t3.squared(times: 5) * t3  // 2^10-1
        let t5 = t4.squared(times: 10) * t4  // 2^20-1
        let t6 = t5.squared(times: 20) * t5  // 2^40-1
        let t7 = t6.squared(times: 10) * t4  // 2^50-1
        let t8 = t7.squared(times: 50) * t7  // 2^100-1
        let t9 = t8.squared(times: 100) * t8  // 2^200-1
        let t10 = t9.squared(times: 50) * t7  // 2^250-1
        return (t10, t2)
    }

    /// self^(p − 2); zero maps to zero.
    func inverted() -> Self {
        let (t, x11) = pow22501()
        return t.squared(times: 5) * x11
    }

    /// self^((p − 5)/8).
    func pow2523() -> Self {
        let (t, _) = pow22501()
        return t.squared(times: 2) * self
    }

    /// The canonical 32-byte little-endian encoding (fully reduced mod p).
    func encoded() -> [UInt8] {
        // Three passes leave every limb below 2^51 (value < 2^255); then subtract p once if h >= p.
        var h = carried().carried().carried()
        var q = (h.l0 &+ 19) >> 51
        q = (h.l1 &+ q) >> 51
        q = (h.l2 &+ q) >> 51
        q = (h.l3 &+ q) >> 51
        q = (h.l4 &+ q) >> 51
        h.l0 &+= 19 &* q
        let m = Self.mask51
        h.l1 &+= h.l0 >> 51
        h.l0 &= m
        h.l2 &+= h.l1 >> 51
        h.l1 &= m
        h.l3 &+= h.l2 >> 51
        h.l2 &= m
        h.l4 &+= h.l3 >> 51
        h.l3 &= m
        h.l4 &= m
        let words: [UInt64] = [
            h.l0 | h.l1 << 51, h.l1 >> 13 | h.l2 << 38, h.l2 >> 26 | h.l3 << 25, h.l3 >> 39 | h.l4 << 12,
        ]
        var out = [UInt8](repeating: 0, count: 32)
        for (w, word) in words.enumerated() {
            for i in 0..<8 { out[w * 8 + i] = UInt8(truncatingIfNeeded: word >> (8 * UInt64(i))) }
        }
        return out
    }

    var isZero: Bool { encoded().allSatisfy { $0 == 0 } }
    /// The "sign" of RFC 8032: the least significant bit of the canonical encoding.
    var isNegative: Bool { encoded()[0] & 1 == 1 }

    func equals(_ other: Self) -> Bool { encoded() == other.encoded() }
}
