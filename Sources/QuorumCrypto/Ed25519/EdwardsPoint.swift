/// A point of edwards25519 in extended coordinates (X:Y:Z:T), x = X/Z, y = Y/Z, xy = T/Z.
///
/// Variable-time arithmetic for public points only; see `FieldElement25519`.
struct EdwardsPoint: Sendable {
    typealias Fe = FieldElement25519
    var x, y, z, t: Fe

    static let identity = EdwardsPoint(x: .zero, y: .one, z: .one, t: .zero)

    /// Decodes a 32-byte encoding (RFC 8032 §5.1.3). The encoding must already have been
    /// validated by libsodium (canonical, on the curve, in the prime-order subgroup); this only
    /// recovers x. Returns `nil` if no x exists, as a second line of defence.
    init?(encoding bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        let y = bytes.withUnsafeBytes { Fe(bytes: $0) }
        let sign = bytes[31] >> 7
        let yy = y.squared()
        let u = yy - .one
        let v = yy * Fe.d + .one
        // x = u v^3 (u v^7)^((p-5)/8)
        let v3 = v.squared() * v
        let v7 = v3.squared() * v
        var x = u * v3 * (u * v7).pow2523()
        let check = v * x.squared()
        if !check.equals(u) {
            guard check.equals(-u) else { return nil }
            x = x * Fe.sqrtMinusOne
        }
        if x.isZero && sign == 1 { return nil }
        if (x.isNegative ? 1 : 0) != sign { x = -x }
        self.init(x: x, y: y, z: .one, t: x * y)
    }

    init(x: Fe, y: Fe, z: Fe, t: Fe) {
        (self.x, self.y, self.z, self.t) = (x, y, z, t)
    }

    func encoded() -> [UInt8] {
        let zInv = z.inverted()
        let ax = x * zInv
        var out = (y * zInv).encoded()
        if ax.isNegative { out[31] |= 0x80 }
        return out
    }

    var isIdentity: Bool { x.isZero && y.equals(z) }

    func equals(_ other: EdwardsPoint) -> Bool {
        (x * other.z).equals(other.x * z) && (y * other.z).equals(other.y * z)
    }

    var negated: EdwardsPoint { EdwardsPoint(x: -x, y: y, z: z, t: -t) }

    /// add-2008-hwcd-3 for a = −1.
    @inline(__always)
    static func + (p: EdwardsPoint, q: EdwardsPoint) -> EdwardsPoint {
        p.adding(Cached(q))
    }

    static func - (p: EdwardsPoint, q: EdwardsPoint) -> EdwardsPoint { p + q.negated }

    /// A point prepared for repeated addition: (Y+X, Y−X, 2Z, 2dT).
    struct Cached: Sendable {
        var yPlusX, yMinusX, z2, t2d: Fe
        init(_ p: EdwardsPoint) {
            yPlusX = p.y + p.x
            yMinusX = p.y - p.x
            z2 = p.z + p.z
            t2d = p.t * Fe.d2
        }
        var negated: Cached {
            var c = self
            swap(&c.yPlusX, &c.yMinusX)
            c.t2d = -c.t2d
            return c
        }
    }

    @inline(__always)
    func adding(_ q: Cached) -> EdwardsPoint {
        let a = (y - x) * q.yMinusX
        let b = (y + x) * q.yPlusX
        let c = t * q.t2d
        let d = z * q.z2
        let e = b - a
        let f = d - c
        let g = d + c
        let h = b + a
        return EdwardsPoint(x: e * f, y: g * h, z: f * g, t: e * h)
    }

    /// dbl-2008-hwcd for a = −1.
    @inline(__always)
    func doubled() -> EdwardsPoint {
        let a = x.squared()
        let b = y.squared()
        let zz = z.squared()
        let c = zz + zz
        let d = -a
        let e = (x + y).squared() - a - b
        let g = d + b
        let f = g - c
        let h = d - b
        return EdwardsPoint(x: e * f, y: g * h, z: f * g, t: e * h)
    }

    /// Σ sᵢ·Pᵢ by Straus' method with width-5 NAF digits: one shared chain of doublings.
    /// Scalars are 32-byte little-endian values below 2²⁵³.
    static func multiScalarMultiply(_ scalars: [[UInt8]], _ points: [EdwardsPoint]) -> EdwardsPoint {
        precondition(scalars.count == points.count)
        if scalars.isEmpty { return .identity }
        let digits = scalars.map(nonAdjacentForm)
        let tables: [[Cached]] = points.map { p in
            var table = [Cached(p)]
            let p2 = Cached(p.doubled())
            var current = p
            for _ in 1..<8 {
                current = current.adding(p2)
                table.append(Cached(current))
            }
            return table
        }
        var top = 255
        while top >= 0 && digits.allSatisfy({ $0[top] == 0 }) { top -= 1 }
        var acc = EdwardsPoint.identity
        if top < 0 { return acc }
        for i in stride(from: top, through: 0, by: -1) {
            acc = acc.doubled()
            for j in 0..<digits.count {
                let digit = digits[j][i]
                if digit > 0 {
                    acc = acc.adding(tables[j][Int(digit) / 2])
                } else if digit < 0 {
                    acc = acc.adding(tables[j][Int(-digit) / 2].negated)
                }
            }
        }
        return acc
    }

    /// Width-5 non-adjacent form: 256 signed odd digits in (−16, 16), mostly zero.
    static func nonAdjacentForm(_ scalar: [UInt8]) -> [Int8] {
        var limbs = [UInt64](repeating: 0, count: 5)
        for i in 0..<32 { limbs[i / 8] |= UInt64(scalar[i]) << (8 * UInt64(i % 8)) }
        var naf = [Int8](repeating: 0, count: 257)
        var position = 0
        func isZero() -> Bool { limbs.allSatisfy { $0 == 0 } }
        while !isZero() && position < 257 {
            if limbs[0] & 1 == 1 {
                var digit = Int(limbs[0] & 31)
                if digit >= 16 { digit -= 32 }
                naf[position] = Int8(digit)
                if digit > 0 {
                    // limbs -= digit
                    var borrow = UInt64(digit)
                    for k in 0..<5 where borrow != 0 {
                        let (r, o) = limbs[k].subtractingReportingOverflow(borrow)
                        limbs[k] = r
                        borrow = o ? 1 : 0
                    }
                } else {
                    var carry = UInt64(-digit)
                    for k in 0..<5 where carry != 0 {
                        let (r, o) = limbs[k].addingReportingOverflow(carry)
                        limbs[k] = r
                        carry = o ? 1 : 0
                    }
                }
            }
            // limbs >>= 1
            for k in 0..<5 {
                limbs[k] = limbs[k] >> 1 | (k < 4 ? limbs[k + 1] << 63 : 0)
            }
            position += 1
        }
        return Array(naf.prefix(256))
    }
}
