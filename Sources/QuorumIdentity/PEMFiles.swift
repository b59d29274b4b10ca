import Crypto
import Foundation
import QuorumCrypto
import SwiftASN1
import X509

/// PEM encoding of certificates and of private keys, the keys kept in zeroizing memory.
///
/// Private keys are PKCS#8 (`-----BEGIN PRIVATE KEY-----`), what swift-nio-ssl, OpenSSL and Go
/// read. The PEM text is built in one buffer of its exact final size (no reallocation leaves a
/// copy behind) and handed to `SecretBytes`, which wipes it; the DER bytes on the way are wiped
/// too. Copies inside swift-crypto are beyond our reach.
enum PEMFiles {
    static let privateKeyLabel = "PRIVATE KEY"

    /// One PEM `CERTIFICATE` block.
    static func pem(of certificate: Certificate, source: String) throws(IdentityError) -> String {
        do {
            return try certificate.serializeAsPEM().pemString + "\n"
        } catch {
            throw IdentityError(.malformed, input: source, "cannot be encoded (\(error))")
        }
    }

    /// PKCS#8 PEM of a P-256 key.
    static func privateKeyPEM(_ key: P256.Signing.PrivateKey) -> SecretBytes {
        var der = [UInt8](key.derRepresentation)
        defer { wipe(&der) }
        let header = Array("-----BEGIN \(privateKeyLabel)-----\n".utf8)
        let footer = Array("-----END \(privateKeyLabel)-----\n".utf8)
        let encodedCount = (der.count + 2) / 3 * 4
        let lineCount = (encodedCount + 63) / 64
        var pem = [UInt8](repeating: 0, count: header.count + encodedCount + lineCount + footer.count)
        var out = 0
        for byte in header {
            pem[out] = byte
            out += 1
        }
        var column = 0
        var index = 0
        while index < der.count {
            let a = UInt32(der[index])
            let b = index + 1 < der.count ? UInt32(der[index + 1]) : 0
            let c = index + 2 < der.count ? UInt32(der[index + 2]) : 0
            let group = a << 16 | b << 8 | c
            let available = min(der.count - index, 3)
            for position in 0..<4 {
                let sextet = Int(group >> UInt32(18 - 6 * position) & 0x3f)
                pem[out] = position <= available ? alphabet[sextet] : UInt8(ascii: "=")
                out += 1
            }
            column += 4
            index += 3
            if column == 64 || index >= der.count {
                pem[out] = UInt8(ascii: "\n")
                out += 1
                column = 0
            }
        }
        for byte in footer {
            pem[out] = byte
            out += 1
        }
        return SecretBytes(consuming: &pem)
    }

    /// Reads a PEM private key (PKCS#8 `PRIVATE KEY`, or SEC 1 `EC PRIVATE KEY`) for P-256.
    static func privateKey(fromPEM pem: SecretBytes, source: String) throws(IdentityError) -> P256.Signing.PrivateKey {
        // `withUnsafeBytes` rethrows untyped errors, so the block's result travels as a Result.
        var der = try pem.withUnsafeBytes { text in
            Result { () throws(IdentityError) in try decodeKeyBlock(text, source: source) }
        }.get()
        defer { wipe(&der) }
        do {
            return try P256.Signing.PrivateKey(derRepresentation: der)
        } catch {
            throw IdentityError(
                .malformed, input: source, "not a P-256 private key (cluster keys are ECDSA P-256, PKCS#8 PEM)")
        }
    }

    /// The DER bytes of the single private-key block in `text`; no error quotes the text.
    private static func decodeKeyBlock(_ text: UnsafeRawBufferPointer, source: String) throws(IdentityError) -> [UInt8]
    {
        let bytes = text.bindMemory(to: UInt8.self)
        func find(_ needle: [UInt8], from start: Int) -> Int? {
            guard needle.count <= bytes.count else { return nil }
            var i = start
            while i + needle.count <= bytes.count {
                if bytes[i] == needle[0], Array(bytes[i..<(i + needle.count)]) == needle { return i }
                i += 1
            }
            return nil
        }
        var body: Range<Int>?
        for label in [privateKeyLabel, "EC PRIVATE KEY"] {
            let begin = Array("-----BEGIN \(label)-----".utf8)
            let end = Array("-----END \(label)-----".utf8)
            if let start = find(begin, from: 0), let stop = find(end, from: start + begin.count) {
                body = (start + begin.count)..<stop
                break
            }
        }
        guard let body else {
            throw IdentityError(.malformed, input: source, "holds no PEM PRIVATE KEY block")
        }
        var sextets = 0
        var padding = 0
        for i in body {
            let byte = bytes[i]
            if byte == UInt8(ascii: "=") {
                padding += 1
            } else if let _ = value(of: byte), padding == 0 {
                sextets += 1
            } else if ![0x20, 0x09, 0x0a, 0x0d].contains(byte) {
                throw IdentityError(.malformed, input: source, "PEM key block is not valid base64")
            }
        }
        guard (sextets + padding) % 4 == 0, padding <= 2, sextets > 0 else {
            throw IdentityError(.malformed, input: source, "PEM key block is not valid base64")
        }
        var der = [UInt8](repeating: 0, count: sextets * 6 / 8)
        var accumulator: UInt32 = 0
        var bits = 0
        var out = 0
        for i in body {
            guard let sextet = value(of: bytes[i]) else { continue }
            accumulator = accumulator << 6 | UInt32(sextet)
            bits += 6
            if bits >= 8 {
                bits -= 8
                if out < der.count { der[out] = UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)) }
                out += 1
            }
        }
        accumulator = 0
        return der
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    private static func value(of byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: "/"): 63
        default: nil
        }
    }

    /// Zeroes an array we own, through `SecretBytes`' wipe (libsodium's `sodium_memzero`, which the
    /// optimiser cannot drop), and empties it.
    static func wipe(_ bytes: inout [UInt8]) {
        _ = SecretBytes(consuming: &bytes)
    }
}
