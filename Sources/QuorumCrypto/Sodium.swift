import CSodium

/// libsodium must be initialised once before use; every entry point that reaches libsodium goes
/// through `Sodium.ready` so callers never have to remember it.
enum Sodium {
    /// Evaluated once, thread-safely, on first use (Swift globals are lazily initialised).
    static let ready: Void = {
        guard sodium_init() >= 0 else { fatalError("libsodium could not be initialised") }
    }()

    static func randomBytes(_ count: Int) -> [UInt8] {
        _ = ready
        var out = [UInt8](repeating: 0, count: count)
        if count > 0 { out.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, count) } }
        return out
    }

    static func sha256(_ parts: [UInt8]...) -> [UInt8] { sha256(parts) }

    static func sha256(_ parts: [[UInt8]]) -> [UInt8] {
        _ = ready
        var state = crypto_hash_sha256_state()
        crypto_hash_sha256_init(&state)
        for part in parts { crypto_hash_sha256_update(&state, part, UInt64(part.count)) }
        var out = [UInt8](repeating: 0, count: 32)
        crypto_hash_sha256_final(&state, &out)
        return out
    }

    static func sha512(_ parts: [[UInt8]]) -> [UInt8] {
        _ = ready
        var state = crypto_hash_sha512_state()
        crypto_hash_sha512_init(&state)
        for part in parts { crypto_hash_sha512_update(&state, part, UInt64(part.count)) }
        var out = [UInt8](repeating: 0, count: 64)
        crypto_hash_sha512_final(&state, &out)
        return out
    }

    /// Constant-time equality of two byte strings of equal length.
    static func constantTimeEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        return sodium_memcmp(a.baseAddress, b.baseAddress, a.count) == 0
    }

    static func zero(_ buffer: UnsafeMutableRawBufferPointer) {
        sodium_memzero(buffer.baseAddress, buffer.count)
    }
}

/// SHA-256 of the concatenation of `parts`.
public func sha256Digest(_ parts: [UInt8]...) -> [UInt8] { Sodium.sha256(parts) }

/// SHA-256 of the concatenation of `parts` (a body held in chunks), without joining them first.
public func sha256Digest(concatenating parts: [[UInt8]]) -> [UInt8] { Sodium.sha256(parts) }

/// RFC 9380 §5.3.1 `expand_message_xmd` with SHA-256.
func expandMessageXMDSHA256(_ message: [UInt8], dst: [UInt8], length: Int) -> [UInt8] {
    precondition(dst.count <= 255 && length <= 255 * 32, "expand_message_xmd parameters out of range")
    let ell = (length + 31) / 32
    let dstPrime = dst + [UInt8(dst.count)]
    let zPad = [UInt8](repeating: 0, count: 64)
    let lengthBytes: [UInt8] = [UInt8(length >> 8), UInt8(length & 0xff)]
    let b0 = Sodium.sha256([zPad, message, lengthBytes, [0], dstPrime])
    var previous = Sodium.sha256([b0, [1], dstPrime])
    var output = previous
    if ell > 1 {
        for i in 2...ell {
            let mixed = zip(b0, previous).map { $0 ^ $1 }
            previous = Sodium.sha256([mixed, [UInt8(i)], dstPrime])
            output += previous
        }
    }
    return Array(output.prefix(length))
}
