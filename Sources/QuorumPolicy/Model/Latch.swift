import Foundation
import QuorumCrypto

/// A scoped token an agent holds instead of a real API key: `lat_<id>_<secret>`.
///
/// The id names the latch in the bundle; the secret is 32 random bytes in unpadded base64url. The
/// bundle keeps only the SHA-256 digest of the secret part, so a leaked bundle does not leak
/// tokens. The secret has 256 bits of entropy, so a plain hash (no password KDF) is the right tool.
public struct LatchToken: Sendable, Equatable, CustomStringConvertible {
    /// The token prefix.
    public static let prefix = "lat_"
    /// Random bytes in a token's secret part.
    public static let secretByteCount = 32

    /// The latch id the token names.
    public let latchID: String
    private let secret: String

    /// Splits a token into id and secret; `nil` unless it is `lat_<id>_<secret>` with a valid id and
    /// a secret of 43 base64url characters.
    public init?(_ text: String) {
        guard text.utf8.starts(with: LatchToken.prefix.utf8) else { return nil }
        let rest = text.utf8.dropFirst(LatchToken.prefix.utf8.count)
        guard let separator = rest.firstIndex(of: UInt8(ascii: "_")) else { return nil }
        let id = String(decoding: rest[..<separator], as: UTF8.self)
        let secret = String(decoding: rest[rest.index(after: separator)...], as: UTF8.self)
        guard Latch.isValidID(id), secret.utf8.count == 43, secret.utf8.allSatisfy(LatchToken.isBase64URL) else {
            return nil
        }
        latchID = id
        self.secret = secret
    }

    /// A token for `latchID` with the given 32 random bytes (the caller draws them).
    public init(latchID: String, randomBytes: [UInt8]) {
        precondition(randomBytes.count == LatchToken.secretByteCount && Latch.isValidID(latchID))
        self.latchID = latchID
        secret = LatchToken.base64URL(randomBytes)
    }

    /// The whole token, to hand to the agent once.
    public var text: String { LatchToken.prefix + latchID + "_" + secret }

    /// SHA-256 of the secret part: what the bundle stores as `token_sha256`.
    public var secretDigest: [UInt8] { sha256Digest(Array(secret.utf8)) }

    /// Whether this token's secret hashes to `digest`, compared in constant time.
    public func matches(digest: [UInt8]) -> Bool {
        let mine = secretDigest
        guard mine.count == digest.count else { return false }
        var difference: UInt8 = 0
        for index in mine.indices { difference |= mine[index] ^ digest[index] }
        return difference == 0
    }

    /// Always names only the latch: the secret part never reaches a log.
    public var description: String { "lat_\(latchID)_<redacted>" }

    private static func isBase64URL(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
            return true
        default: return false
        }
    }

    private static func base64URL(_ bytes: [UInt8]) -> String { BundleValues.base64URLEncode(bytes) }
}

/// A latch as the bundle declares it: an identity with its own filters and mounts, possibly
/// derived from a parent (see ``PolicyBundle`` for what derivation may and may not do).
public struct Latch: Sendable, Equatable {
    /// Lower-case letters, digits and `-`, 1 to 64 characters, starting with a letter or digit.
    public let id: String
    /// SHA-256 of the token's secret part.
    public let tokenDigest: [UInt8]
    /// Free-form labels (`team: support`), for people and the `/self` answer.
    public let labels: [String: String]
    /// When the latch stops working, or `nil` (a derived latch of an expiring parent must expire).
    public let expires: Date?
    /// The latch this one derives from, or `nil` for a root latch.
    public let parent: String?
    /// Whether the latch is revoked (and with it every descendant).
    public let revoked: Bool
    /// Filters for every mount, run before the mount's own filters at the same level.
    public let filters: [Filter]
    /// The mounts. `nil` in a derived latch means every mount of the parent.
    public let mounts: [Mount]?
    /// RFC 8705 sender constraint (`cnf: {x5t#S256: …}`): the SHA-256 of the DER client certificate
    /// the agent must present to the proxy's TLS listener, or `nil`. A derived latch is bound by
    /// every binding in its chain.
    public let certificateThumbprint: [UInt8]?

    /// A latch.
    public init(
        id: String, tokenDigest: [UInt8], labels: [String: String] = [:], expires: Date? = nil, parent: String? = nil,
        revoked: Bool = false, filters: [Filter] = [], mounts: [Mount]?, certificateThumbprint: [UInt8]? = nil
    ) {
        self.certificateThumbprint = certificateThumbprint
        self.id = id
        self.tokenDigest = tokenDigest
        self.labels = labels
        self.expires = expires
        self.parent = parent
        self.revoked = revoked
        self.filters = filters
        self.mounts = mounts
    }

    /// Whether `id` is a valid latch id.
    public static func isValidID(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        guard (1...64).contains(bytes.count), bytes[0] != UInt8(ascii: "-") else { return false }
        return bytes.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "-")
        }
    }
}
