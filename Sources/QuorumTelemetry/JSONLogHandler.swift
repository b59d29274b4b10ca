import Foundation
import Logging
import Synchronization

/// A swift-log handler writing one JSON object per line, for log shippers (docs/operations.md,
/// "Logs"):
///
/// ```json
/// {"ts":"2026-05-01T12:00:00.123Z","level":"info","label":"quorum-proxy","source":"QuorumProxy","message":"allowed","mount":"/openai","request_id":"req_…"}
/// ```
///
/// `ts` is RFC 3339 in UTC with milliseconds; `level`, `label`, `source` and `message` follow;
/// then the metadata, flattened (a nested dictionary's keys joined with `.`), keys sorted. A
/// metadata key that would shadow one of those fields is written as `metadata.<key>`. The handler
/// writes what it is given: keeping secrets out of log lines is the callers' rule (DESIGN.md §7),
/// which the secret types' `<redacted>` descriptions back up.
public struct JSONLogHandler: LogHandler {
    /// The fields every line starts with; metadata never takes their keys.
    static let reserved: Set<String> = ["ts", "level", "label", "source", "message", "error"]

    /// The logger's label.
    public let label: String
    /// The least severe level written.
    public var logLevel: Logger.Level = .info
    /// Metadata on every line of this logger.
    public var metadata: Logger.Metadata = [:]
    /// Contextual metadata, read at each line.
    public var metadataProvider: Logger.MetadataProvider?
    private let sink: JSONLogSink
    private let clock: @Sendable () -> Date

    /// A handler for `label` writing to `sink`; `clock` gives each line's time.
    public init(
        label: String, sink: JSONLogSink = .standardError, metadataProvider: Logger.MetadataProvider? = nil,
        clock: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.label = label
        self.sink = sink
        self.metadataProvider = metadataProvider
        self.clock = clock
    }

    /// One metadata value by key.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Writes `event` as one line.
    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        var line = Self.line(
            time: clock(), level: event.level, label: label, source: event.source, message: event.message.description,
            error: event.error.map { "\($0)" }, metadata: merged)
        line.append(UInt8(ascii: "\n"))
        sink.write(line)
    }

    /// The JSON object of one line, without its newline.
    static func line(
        time: Date, level: Logger.Level, label: String, source: String, message: String, error: String?,
        metadata: Logger.Metadata
    ) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        out.append(UInt8(ascii: "{"))
        func field(_ key: String, _ value: String) {
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            appendString(key, to: &out)
            out.append(UInt8(ascii: ":"))
            appendString(value, to: &out)
        }
        field("ts", rfc3339(time))
        field("level", level.rawValue)
        field("label", label)
        field("source", source)
        field("message", message)
        if let error { field("error", error) }
        var flat: [(String, Logger.Metadata.Value)] = []
        flatten(metadata, prefix: "", into: &flat)
        for (key, value) in flat.sorted(by: { $0.0 < $1.0 }) {
            out.append(UInt8(ascii: ","))
            appendString(reserved.contains(key) ? "metadata." + key : key, to: &out)
            out.append(UInt8(ascii: ":"))
            appendValue(value, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// Dictionaries become dotted keys; everything else stays one value.
    private static func flatten(
        _ metadata: Logger.Metadata, prefix: String, into flat: inout [(String, Logger.Metadata.Value)]
    ) {
        for (key, value) in metadata {
            if case .dictionary(let nested) = value, !nested.isEmpty {
                flatten(nested, prefix: prefix + key + ".", into: &flat)
            } else {
                flat.append((prefix + key, value))
            }
        }
    }

    private static func appendValue(_ value: Logger.Metadata.Value, to out: inout [UInt8]) {
        switch value {
        case .string(let text):
            appendString(text, to: &out)
        case .stringConvertible(let convertible):
            appendString(convertible.description, to: &out)
        case .array(let values):
            out.append(UInt8(ascii: "["))
            for (index, element) in values.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                appendValue(element, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .dictionary(let entries):
            out.append(UInt8(ascii: "{"))
            for (index, (key, element)) in entries.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                appendString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                appendValue(element, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// `text` as a JSON string (RFC 8259 §7): quote, backslash and control characters escaped,
    /// everything else as UTF-8.
    static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0x00..<0x20, 0x7F:
                let hex = Array("0123456789abcdef".utf8)
                out += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// `date` as RFC 3339 in UTC with milliseconds: `2026-05-01T12:00:00.123Z`.
    static func rfc3339(_ date: Date) -> String {
        // Microseconds first, rounded, so that a time stored as x.999 (binary 0.99899…) stays .999.
        let microseconds = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        let (totalMilliseconds, _) = floorDivision(microseconds, 1000)
        let (days, dayMilliseconds) = floorDivision(totalMilliseconds, 86_400_000)
        let (year, month, day) = civil(fromDays: days)
        let hour = dayMilliseconds / 3_600_000
        let minute = dayMilliseconds / 60_000 % 60
        let second = dayMilliseconds / 1000 % 60
        let millisecond = dayMilliseconds % 1000
        func pad(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2))."
            + "\(pad(millisecond, 3))Z"
    }

    private static func floorDivision(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let quotient = value / divisor
        let remainder = value % divisor
        return remainder < 0 ? (quotient - 1, remainder + divisor) : (quotient, remainder)
    }

    /// The proleptic Gregorian date `days` after 1970-01-01 (H. Hinnant's `civil_from_days`).
    private static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

/// Where ``JSONLogHandler`` lines go: standard error, or a closure (tests). One line is written at
/// a time, so lines from concurrent loggers never interleave.
public final class JSONLogSink: Sendable {
    private let lock = Mutex(())
    private let output: @Sendable ([UInt8]) -> Void

    /// A sink handing each line to `output`.
    public init(_ output: @escaping @Sendable ([UInt8]) -> Void) {
        self.output = output
    }

    /// The process's standard error.
    public static let standardError = JSONLogSink { line in
        FileHandle.standardError.write(Data(line))
    }

    func write(_ line: [UInt8]) {
        lock.withLock { _ in output(line) }
    }
}
