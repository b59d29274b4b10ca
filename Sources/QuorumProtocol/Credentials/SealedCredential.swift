import QuorumCrypto

/// A credential value sealed to the quorum's sealing key, as the proxy stores it: the name the
/// policy bundle's mounts use, the sealing group key it was sealed to, the sealed box, and when.
///
/// Neither the proxy nor any node ever holds the plaintext at rest: the proxy keeps this record,
/// and for an allowed call k nodes each return a decryption share for ``box``; the proxy combines
/// them (``open(shares:group:)``) for that call only.
///
/// The box is sealed with associated data binding the name and the group key
/// (``associatedData(name:sealingGroupKey:)``), so a box copied into another record, under
/// another name or for another group, does not open.
///
/// The file form (``encoded()``) is one line of RFC 8785 canonical JSON:
/// `{"created":"2026-11-24T09:00:00Z","format":"quorum-latch/sealed-credential/v1","name":"openai",
/// "sealed_box":"<hex>","sealing_group_key":"<hex>"}`.
public struct SealedCredential: Sendable, Equatable {
    /// The value of the record's `format` field.
    public static let format = "quorum-latch/sealed-credential/v1"
    /// The domain string that starts the associated data, so a sealed credential's box can never
    /// be taken for a box sealed for another purpose with the same key.
    public static let associatedDataDomain = "quorum-latch sealed credential v1"
    /// The record's fields, in canonical order.
    static let fields = ["created", "format", "name", "sealed_box", "sealing_group_key"]

    /// The secret's name, as the bundle's `secrets` and each mount's `secret` spell it.
    public let name: String
    /// The sealing group public key the box was sealed to (32 bytes for Ed25519, 33 for secp256k1).
    public let sealingGroupKey: [UInt8]
    /// The sealed value.
    public let box: SealedBox
    /// When it was sealed, whole seconds since 1970 (UTC); written as RFC 3339 (`created`).
    public let created: Int64

    /// A record of an already sealed box. The box must have been sealed with
    /// ``associatedData(name:sealingGroupKey:)`` of the same name and key, or it will not open.
    public init(name: String, sealingGroupKey: [UInt8], box: SealedBox, created: Int64) {
        self.name = name
        self.sealingGroupKey = sealingGroupKey
        self.box = box
        self.created = created
    }

    /// The associated data every credential box is sealed with:
    /// `domain ‖ 0x00 ‖ u16be(len name) ‖ name ‖ u16be(len key) ‖ key`, lengths in bytes, so no
    /// two (name, key) pairs give the same bytes.
    public static func associatedData(name: String, sealingGroupKey: [UInt8]) -> [UInt8] {
        func lengthPrefixed(_ bytes: [UInt8]) -> [UInt8] {
            [UInt8(truncatingIfNeeded: bytes.count >> 8), UInt8(truncatingIfNeeded: bytes.count)] + bytes
        }
        return Array(associatedDataDomain.utf8) + [0] + lengthPrefixed(Array(name.utf8))
            + lengthPrefixed(sealingGroupKey)
    }

    /// This record's associated data.
    public var associatedData: [UInt8] { Self.associatedData(name: name, sealingGroupKey: sealingGroupKey) }

    /// Seals `value` under `name` to the sealing `group`; the plaintext stays in zeroizing memory
    /// and is not kept.
    public static func seal<C: Ciphersuite>(
        _ value: SecretBytes, name: String, to group: PublicKeyPackage<C>, created: Int64
    ) throws(CryptoError) -> SealedCredential {
        let key = try group.verifyingKey.serialized()
        let box = try ThresholdSealing<C>.seal(
            value, to: group, associatedData: associatedData(name: name, sealingGroupKey: key))
        return SealedCredential(name: name, sealingGroupKey: key, box: box, created: created)
    }

    /// Opens the box from k decryption shares (each node's ``ThresholdSealing/decryptionShare(for:key:)``
    /// over ``box``). Refuses a group other than the record's, invalid shares (naming their nodes)
    /// and a box that does not open under this record's name and key.
    public func open<C: Ciphersuite>(
        shares: [DecryptionShare<C>], group: PublicKeyPackage<C>, checkingProofs: Bool = true
    ) throws(CryptoError) -> SecretBytes {
        let given = try group.verifyingKey.serialized()
        guard given == sealingGroupKey else {
            throw CryptoError(
                .groupKeyMismatch,
                "credential '\(name)' is sealed to group key \(Hex.encode(sealingGroupKey)), not \(Hex.encode(given))")
        }
        return try ThresholdSealing<C>.open(
            box, shares: shares, group: group, associatedData: associatedData, checkingProofs: checkingProofs)
    }

    // MARK: File form

    /// `created` as RFC 3339 UTC with whole seconds (`2026-11-24T09:00:00Z`).
    public var createdText: String { RFC3339.format(created) }

    /// The record's file bytes: canonical JSON and a newline.
    public func encoded() -> [UInt8] {
        CanonicalJSON.encode(
            .object([
                "format": .string(Self.format),
                "name": .string(name),
                "sealing_group_key": .string(Hex.encode(sealingGroupKey)),
                "sealed_box": .string(box.hex),
                "created": .string(createdText),
            ])) + [0x0A]
    }

    /// Reads a record file, refusing (naming `file` and the field) anything but an object with
    /// exactly the five fields: the right `format`, a non-empty `name`, a group key of 32 or 33
    /// bytes in hex, a sealed box in hex of at least the sealed-box overhead, and an RFC 3339 UTC
    /// `created`. The name's own rule (the bundle's) is the caller's to check.
    public init(decoding bytes: [UInt8], file: String) throws(SealedCredentialError) {
        func refuse(_ field: String?, _ reason: String) -> SealedCredentialError {
            SealedCredentialError(file: file, field: field, reason)
        }
        let value: CanonicalJSON.Value
        do { value = try CanonicalJSON.parse(bytes) } catch {
            throw refuse(nil, "not a sealed credential record: \(error.description)")
        }
        guard case .object(let members) = value else {
            throw refuse(nil, "\(value.kind); a sealed credential record is a JSON object")
        }
        if let unknown = members.keys.sorted().first(where: { !Self.fields.contains($0) }) {
            throw refuse(
                unknown, "not a field of a sealed credential record; expected \(Self.fields.joined(separator: ", "))")
        }
        func string(_ field: String) throws(SealedCredentialError) -> String {
            guard let member = members[field] else { throw refuse(field, "missing") }
            guard case .string(let text) = member else { throw refuse(field, "\(member.kind); expected a string") }
            return text
        }
        func hex(_ field: String, _ what: String) throws(SealedCredentialError) -> [UInt8] {
            let text = try string(field)
            guard text == text.lowercased(), let bytes = Hex.decode(text) else {
                throw refuse(field, "expected \(what) as lower-case hex")
            }
            return bytes
        }
        let format = try string("format")
        guard format == Self.format else { throw refuse("format", "is '\(format)', expected '\(Self.format)'") }
        let name = try string("name")
        guard !name.isEmpty else { throw refuse("name", "empty; expected the secret's name") }
        let key = try hex("sealing_group_key", "the sealing group public key")
        guard key.count == 32 || key.count == 33 else {
            throw refuse("sealing_group_key", "\(key.count) bytes; a group key is 32 (Ed25519) or 33 (secp256k1)")
        }
        let box = try hex("sealed_box", "the sealed box")
        // version, suite, U (32 or 33), 24-byte nonce, 16-byte tag.
        guard box.count >= 2 + key.count + 24 + 16 else {
            throw refuse("sealed_box", "\(box.count) bytes; too short to be a sealed box")
        }
        guard box[0] == SealedBox.version else {
            throw refuse("sealed_box", "version \(box[0]); expected \(SealedBox.version)")
        }
        let createdText = try string("created")
        guard let created = RFC3339.parse(createdText) else {
            throw refuse("created", "expected an RFC 3339 UTC time with whole seconds, such as 2026-11-24T09:00:00Z")
        }
        self.init(name: name, sealingGroupKey: key, box: SealedBox(bytes: box), created: created)
    }
}

/// A sealed credential record that could not be read: the file, the field, and what was wrong.
public struct SealedCredentialError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file read (or the record's name when it came from elsewhere).
    public let file: String
    /// The field at fault, or nil for the whole record.
    public let field: String?
    /// What was wrong and what would have been valid; never a credential value.
    public let reason: String

    /// A refusal of `file`'s `field`.
    public init(file: String, field: String? = nil, _ reason: String) {
        self.file = file
        self.field = field
        self.reason = reason
    }

    /// `file: field 'f': reason`, on one line.
    public var description: String {
        field.map { "\(file): field '\($0)': \(reason)" } ?? "\(file): \(reason)"
    }
}

/// RFC 3339 timestamps in the one form records use: UTC, whole seconds, `Z`
/// (`2026-11-24T09:00:00Z`), without Foundation (QuorumProtocol does no I/O and has no clock).
enum RFC3339 {
    /// Seconds since 1970 as `YYYY-MM-DDTHH:MM:SSZ`, for years 0000–9999.
    static func format(_ seconds: Int64) -> String {
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let rest = seconds - days * 86400
        let (year, month, day) = civil(fromDays: days)
        func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let yearText = String(repeating: "0", count: max(0, 4 - String(year).count)) + String(year)
        return "\(yearText)-\(two(month))-\(two(day))T\(two(rest / 3600)):\(two(rest / 60 % 60)):\(two(rest % 60))Z"
    }

    /// The seconds `text` names, or nil unless it is exactly `YYYY-MM-DDTHH:MM:SSZ` with a real
    /// date and a time below 24:00:00 (no leap second, fraction or offset).
    static func parse(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        guard bytes.count == 20, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
            bytes[10] == UInt8(ascii: "T"), bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
            bytes[19] == UInt8(ascii: "Z")
        else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for byte in bytes[range] {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year), hour < 24, minute < 60,
            second < 60
        else { return nil }
        return days(fromCivil: year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    }

    private static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    private static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146097 + dayOfEra - 719468
    }

    /// The date of a day count since 1970-01-01 (Hinnant's `civil_from_days`).
    private static func civil(fromDays count: Int64) -> (Int64, Int64, Int64) {
        let z = count + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let dayOfEra = z - era * 146097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
