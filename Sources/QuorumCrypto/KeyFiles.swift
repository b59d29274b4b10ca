import Foundation

/// A key file that could not be read or used: names the file, the field, and what was wrong.
public struct KeyFileError: Error, Sendable, CustomStringConvertible {
    public let file: String
    public let field: String?
    public let reason: String

    public init(file: String, field: String? = nil, _ reason: String) {
        self.file = file
        self.field = field
        self.reason = reason
    }

    public var description: String {
        field.map { "\(file): field '\($0)': \(reason)" } ?? "\(file): \(reason)"
    }
}

/// The on-disk formats of group (public) and share (secret) files.
///
/// `group.json` is public: ciphersuite, purpose, threshold, participant count, group public key,
/// verifying shares by identifier and the VSS commitment. A share file is secret and written
/// 0600; its `signing_share` never passes through a JSON parser (see `decodeShare`).
public enum KeyFiles {
    public static let groupFormat = "quorum-latch/group/v1"
    public static let shareFormat = "quorum-latch/key-share/v1"

    // MARK: Group files

    /// `group.json` for a public key package, pretty-printed with sorted keys. Throws rather than
    /// write a file with an element that has no encoding (the identity).
    public static func encodeGroup<C>(_ group: PublicKeyPackage<C>) throws(CryptoError) -> [UInt8] {
        var shares: [String: String] = [:]
        for (id, share) in group.verifyingShares { shares[String(id.value)] = Hex.encode(try share.serialized()) }
        var commitment: [String] = []
        for element in group.commitment { commitment.append(Hex.encode(try element.serialized())) }
        let object: [String: Any] = [
            "format": groupFormat,
            "ciphersuite": C.id.rawValue,
            "purpose": group.purpose.rawValue,
            "threshold": group.minSigners,
            "participants": group.maxSigners,
            "group_public_key": Hex.encode(try group.verifyingKey.serialized()),
            "verifying_shares": shares,
            "vss_commitment": commitment,
        ]
        let data = try! JSONSerialization.data(
            withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return Array(data) + [0x0a]
    }

    /// The ciphersuite a group or share file declares, so a caller can pick the generic type.
    public static func ciphersuite(of bytes: [UInt8], file: String) throws(KeyFileError) -> CiphersuiteID {
        let object = try parseObject(redactingSecretOf: bytes, file: file).object
        let name = try string(object, "ciphersuite", file)
        guard let suite = CiphersuiteID(rawValue: name) ?? CiphersuiteID(shortName: name) else {
            throw KeyFileError(
                file: file, field: "ciphersuite",
                "unknown ciphersuite '\(name)'; expected one of \(CiphersuiteID.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        return suite
    }

    /// Parses and fully checks `group.json`.
    public static func decodeGroup<C>(
        _ bytes: [UInt8], as _: C.Type, file: String
    ) throws(KeyFileError) -> PublicKeyPackage<C> {
        let object = try parseObject(redactingSecretOf: bytes, file: file).object
        try expect(object, "format", groupFormat, file)
        try expectSuite(object, C.self, file)
        let purpose = try purposeField(object, file)
        let threshold = try int(object, "threshold", file)
        let participants = try int(object, "participants", file)
        let groupKey: C.Element = try element(object, "group_public_key", file)
        guard let sharesObject = object["verifying_shares"] as? [String: Any] else {
            throw KeyFileError(file: file, field: "verifying_shares", "missing or not an object of identifier → hex")
        }
        var shares: [Identifier: C.Element] = [:]
        for (key, value) in sharesObject {
            let field = "verifying_shares.\(key)"
            guard let raw = Int(key), let id = try? Identifier(parsing: raw) else {
                throw KeyFileError(file: file, field: field, "identifier '\(key)' is not an integer in 1…65535")
            }
            shares[id] = try element(["v": value], "v", file, name: field)
        }
        guard shares.count == participants else {
            throw KeyFileError(
                file: file, field: "participants",
                "says \(participants) but \(shares.count) verifying shares are listed")
        }
        guard let commitmentArray = object["vss_commitment"] as? [Any] else {
            throw KeyFileError(file: file, field: "vss_commitment", "missing or not an array of hex elements")
        }
        var commitment: [C.Element] = []
        for (i, value) in commitmentArray.enumerated() {
            commitment.append(try element(["v": value], "v", file, name: "vss_commitment[\(i)]"))
        }
        do {
            return try PublicKeyPackage(
                purpose: purpose, verifyingKey: groupKey, verifyingShares: shares, commitment: commitment,
                minSigners: threshold)
        } catch {
            throw KeyFileError(file: file, error.description)
        }
    }

    // MARK: Share files

    /// A secret share file. The result is zeroizing memory; write it with `writeSecretFile`.
    public static func encodeShare<C>(_ key: KeyPackage<C>) throws(CryptoError) -> SecretBytes {
        let groupKey = Hex.encode(try key.verifyingKey.serialized())
        let verifyingShare = Hex.encode(try key.verifyingShare.serialized())
        let header = """
            {
              "format": "\(shareFormat)",
              "ciphersuite": "\(C.id.rawValue)",
              "purpose": "\(key.purpose.rawValue)",
              "identifier": \(key.identifier.value),
              "threshold": \(key.minSigners),
              "group_public_key": "\(groupKey)",
              "verifying_share": "\(verifyingShare)",
              "signing_share": "
            """
        return secretFile(header: header, secret: key.signingShare.serialized())
    }

    /// Parses and checks a share file held in zeroizing memory. The secret's hex is decoded
    /// straight from that memory; the JSON parser only ever sees a copy with the secret blanked.
    public static func decodeShare<C>(
        _ contents: SecretBytes, as _: C.Type, file: String
    ) throws(KeyFileError) -> KeyPackage<C> {
        let bytes = contents.copyBytes()
        defer { var wipe = bytes; wipe.withUnsafeMutableBytes { Sodium.zero($0) } }
        let (object, secretRange) = try parseObject(redactingSecretOf: bytes, file: file)
        try expect(object, "format", shareFormat, file)
        try expectSuite(object, C.self, file)
        let purpose = try purposeField(object, file)
        let identifier: Identifier
        do { identifier = try Identifier(parsing: try int(object, "identifier", file)) } catch let error as KeyFileError
        {
            throw error
        } catch {
            throw KeyFileError(file: file, field: "identifier", "\(error)")
        }
        let threshold = try int(object, "threshold", file)
        let groupKey: C.Element = try element(object, "group_public_key", file)
        guard let range = secretRange else {
            throw KeyFileError(file: file, field: "signing_share", "missing; expected \(C.scalarLength * 2) hex digits")
        }
        guard range.count == C.scalarLength * 2,
            var secret = Hex.decode(bytes[range].map { Character(UnicodeScalar($0)) }.map(String.init).joined())
        else {
            throw KeyFileError(file: file, field: "signing_share", "expected \(C.scalarLength * 2) hex digits")
        }
        defer { secret.withUnsafeMutableBytes { Sodium.zero($0) } }
        guard let share = SecretScalar<C>.deserialize(secret) else {
            throw KeyFileError(file: file, field: "signing_share", "not a canonical \(C.id.shortName) scalar")
        }
        let key: KeyPackage<C>
        do {
            key = try KeyPackage(
                identifier: identifier, signingShare: share, verifyingKey: groupKey, minSigners: threshold,
                purpose: purpose)
        } catch {
            throw KeyFileError(file: file, error.description)
        }
        if object["verifying_share"] != nil {
            let stated: C.Element = try element(object, "verifying_share", file)
            guard stated == key.verifyingShare else {
                throw KeyFileError(
                    file: file, field: "verifying_share", "does not match the signing share in this file")
            }
        }
        return key
    }

    /// `header`, the secret in hex, and the closing `"` and `}`, built in memory that is zeroed.
    private static func secretFile(header: String, secret: SecretBytes) -> SecretBytes {
        // Reserved up front so the array never reallocates and leaves a copy of the hex behind.
        var out: [UInt8] = []
        out.reserveCapacity(header.utf8.count + 2 * secret.count + 4)
        out += header.utf8
        secret.withUnsafeBytes { bytes in
            let digits = Array("0123456789abcdef".utf8)
            for byte in bytes {
                out.append(digits[Int(byte >> 4)])
                out.append(digits[Int(byte & 0x0f)])
            }
        }
        out += Array("\"\n}\n".utf8)
        return SecretBytes(consuming: &out)
    }

    // MARK: Ed25519 key files

    /// The format of a single-holder Ed25519 key file (an operator's bundle-signing key; a node's
    /// identity key).
    public static let ed25519KeyFormat = "quorum-latch/ed25519-key/v1"

    /// A secret Ed25519 key file naming its `role`. The seed goes from zeroizing memory to
    /// zeroizing memory as hex; write the result with `writeSecretFile`.
    public static func encodeEd25519Key(_ key: Ed25519KeyPair, role: String) -> SecretBytes {
        let header = """
            {
              "format": "\(ed25519KeyFormat)",
              "role": "\(role)",
              "public_key": "\(Hex.encode(key.publicKey))",
              "seed": "
            """
        return secretFile(header: header, secret: key.seed)
    }

    /// Reads an Ed25519 key file written by `encodeEd25519Key`, checking its role and that the
    /// stated public key is the seed's. The seed never passes through a JSON parser.
    public static func decodeEd25519Key(
        _ contents: SecretBytes, role: String, file: String
    ) throws(KeyFileError) -> Ed25519KeyPair {
        let bytes = contents.copyBytes()
        defer { var wipe = bytes; wipe.withUnsafeMutableBytes { Sodium.zero($0) } }
        let (object, secretRange) = try parseObject(redactingSecretOf: bytes, field: "seed", file: file)
        try expect(object, "format", ed25519KeyFormat, file)
        try expect(object, "role", role, file)
        guard let range = secretRange, range.count == 64 else {
            throw KeyFileError(file: file, field: "seed", "expected 64 hex digits")
        }
        var seed = [UInt8](repeating: 0, count: 32)
        defer { seed.withUnsafeMutableBytes { Sodium.zero($0) } }
        for index in 0..<32 {
            guard let high = hexDigit(bytes[range.lowerBound + 2 * index]),
                let low = hexDigit(bytes[range.lowerBound + 2 * index + 1])
            else { throw KeyFileError(file: file, field: "seed", "expected 64 hex digits") }
            seed[index] = high << 4 | low
        }
        let key: Ed25519KeyPair
        do { key = try Ed25519KeyPair(seed: SecretBytes(seed)) } catch {
            throw KeyFileError(file: file, field: "seed", error.description)
        }
        guard Hex.encode(key.publicKey) == (try string(object, "public_key", file)).lowercased() else {
            throw KeyFileError(file: file, field: "public_key", "does not match the seed in this file")
        }
        return key
    }

    private static func hexDigit(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    // MARK: Files

    /// Writes a secret file with mode 0600 (created so, never widened), replacing any old one
    /// atomically, and syncs it. With `replaceExisting: false` an existing file is left alone and
    /// the write refused ("already exists"), decided atomically by the file system, not by a check
    /// that a concurrent writer could race.
    public static func writeSecretFile(
        _ contents: SecretBytes, to path: String, replaceExisting: Bool = true
    ) throws(KeyFileError) {
        try writeFile(path: path, mode: 0o600, replace: replaceExisting) { fd in
            contents.withUnsafeBytes { writeAll(fd, $0) }
        }
    }

    /// Writes a public file with mode 0644.
    public static func writePublicFile(_ contents: [UInt8], to path: String) throws(KeyFileError) {
        try writeFile(path: path, mode: 0o644) { fd in contents.withUnsafeBytes { writeAll(fd, $0) } }
    }

    /// Reads a file into zeroizing memory.
    public static func readSecretFile(_ path: String) throws(KeyFileError) -> SecretBytes {
        var bytes = try readFile(path)
        return SecretBytes(consuming: &bytes)
    }

    public static func readFile(_ path: String) throws(KeyFileError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw KeyFileError(file: path, "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n < 0 { throw KeyFileError(file: path, "cannot read: \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            out += buffer[0..<n]
            guard out.count <= 1 << 20 else { throw KeyFileError(file: path, "larger than 1 MiB; not a key file") }
        }
        buffer.withUnsafeMutableBytes { Sodium.zero($0) }
        return out
    }

    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    private static func writeFile(
        path: String, mode: mode_t, replace: Bool = true, _ body: (Int32) -> Bool
    ) throws(KeyFileError) {
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw KeyFileError(file: path, "cannot create: \(String(cString: strerror(errno)))") }
        let ok = fchmod(fd, mode) == 0 && body(fd) && fsync(fd) == 0
        close(fd)
        // Without replacing, link(2) puts the finished file in place only if the name is free.
        guard ok, replace ? rename(temporary, path) == 0 : link(temporary, path) == 0 else {
            let exists = !replace && errno == EEXIST
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw KeyFileError(file: path, exists ? "already exists" : "cannot write: \(reason)")
        }
        if !replace { unlink(temporary) }
    }

    // MARK: Parsing helpers

    /// Finds the string value of `secretField`, blanks it in a copy, and parses the copy.
    private static func parseObject(
        redactingSecretOf bytes: [UInt8], field secretField: String = "signing_share", file: String
    ) throws(KeyFileError) -> (object: [String: Any], secret: Range<Int>?) {
        var redacted = bytes
        defer { redacted.withUnsafeMutableBytes { Sodium.zero($0) } }
        let secret = locateStringValue(of: secretField, in: bytes)
        if let secret { for i in secret { redacted[i] = UInt8(ascii: "0") } }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(redacted))
        } catch {
            throw KeyFileError(file: file, "not valid JSON (\(describe(error)))")
        }
        guard let object = parsed as? [String: Any] else { throw KeyFileError(file: file, "expected a JSON object") }
        return (object, secret)
    }

    private static func describe(_ error: any Error) -> String {
        let text = "\(error)"
        if let range = text.range(of: "NSDebugDescription=") {
            return String(text[range.upperBound...].prefix { $0 != "," && $0 != "}" })
        }
        return (error as NSError).localizedDescription
    }

    /// The byte range of the characters of the JSON string value of `key`, if present.
    static func locateStringValue(of key: String, in bytes: [UInt8]) -> Range<Int>? {
        let needle = Array("\"\(key)\"".utf8)
        guard bytes.count >= needle.count else { return nil }
        var i = 0
        while i + needle.count <= bytes.count {
            if Array(bytes[i..<(i + needle.count)]) == needle {
                var j = i + needle.count
                while j < bytes.count, [0x20, 0x09, 0x0a, 0x0d].contains(bytes[j]) { j += 1 }
                guard j < bytes.count, bytes[j] == UInt8(ascii: ":") else { i += 1; continue }
                j += 1
                while j < bytes.count, [0x20, 0x09, 0x0a, 0x0d].contains(bytes[j]) { j += 1 }
                guard j < bytes.count, bytes[j] == UInt8(ascii: "\"") else { return nil }
                let start = j + 1
                var end = start
                while end < bytes.count, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\") { end += 1 }
                guard end < bytes.count, bytes[end] == UInt8(ascii: "\"") else { return nil }
                return start..<end
            }
            i += 1
        }
        return nil
    }

    private static func string(_ object: [String: Any], _ key: String, _ file: String) throws(KeyFileError) -> String {
        guard let value = object[key] as? String else {
            throw KeyFileError(file: file, field: key, object[key] == nil ? "missing" : "expected a string")
        }
        return value
    }

    private static func int(_ object: [String: Any], _ key: String, _ file: String) throws(KeyFileError) -> Int {
        // Booleans arrive as NSNumber too; their Objective-C type code is "c".
        guard let number = object[key] as? NSNumber, String(cString: number.objCType) != "c",
            let value = Int(exactly: number.doubleValue)
        else {
            throw KeyFileError(file: file, field: key, object[key] == nil ? "missing" : "expected an integer")
        }
        return value
    }

    private static func expect(
        _ object: [String: Any], _ key: String, _ value: String, _ file: String
    ) throws(KeyFileError) {
        let found = try string(object, key, file)
        guard found == value else { throw KeyFileError(file: file, field: key, "is '\(found)', expected '\(value)'") }
    }

    private static func expectSuite<C: Ciphersuite>(
        _ object: [String: Any], _: C.Type, _ file: String
    ) throws(KeyFileError) {
        let found = try string(object, "ciphersuite", file)
        guard found == C.id.rawValue || found == C.id.shortName else {
            throw KeyFileError(file: file, field: "ciphersuite", "is '\(found)', expected '\(C.id.rawValue)'")
        }
    }

    private static func purposeField(_ object: [String: Any], _ file: String) throws(KeyFileError) -> KeyPurpose {
        let raw = try string(object, "purpose", file)
        guard let purpose = KeyPurpose(rawValue: raw) else {
            throw KeyFileError(file: file, field: "purpose", "is '\(raw)', expected 'signing' or 'sealing'")
        }
        return purpose
    }

    private static func element<E: GroupElement>(
        _ object: [String: Any], _ key: String, _ file: String, name: String? = nil
    ) throws(KeyFileError) -> E {
        let field = name ?? key
        guard let text = object[key] as? String else {
            throw KeyFileError(file: file, field: field, object[key] == nil ? "missing" : "expected a hex string")
        }
        guard let bytes = Hex.decode(text) else { throw KeyFileError(file: file, field: field, "not hex") }
        do { return try E(validating: bytes) } catch { throw KeyFileError(file: file, field: field, error.reason) }
    }
}
