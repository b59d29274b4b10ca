import Foundation

/// A day of the week, as read on the wall clock of a window's time zone.
public enum Weekday: Int, Sendable, Equatable, Hashable, CaseIterable, Comparable, CustomStringConvertible {
    case monday = 1, tuesday, wednesday, thursday, friday, saturday, sunday

    /// The three-letter lower-case name used in bundles: `mon` … `sun`.
    public var description: String {
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][rawValue - 1]
    }

    /// The day before, wrapping from Monday to Sunday.
    public var previous: Weekday { Weekday(rawValue: rawValue == 1 ? 7 : rawValue - 1)! }

    /// Monday first, as in ISO 8601.
    public static func < (lhs: Weekday, rhs: Weekday) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Parses a comma-separated list of days and inclusive ranges, such as `mon-fri` or
    /// `mon,wed,fri-sun`. Names are the three-letter forms of ``description``. A range may wrap
    /// (`fri-mon` is Friday through Monday). An empty list or unknown name is refused.
    public static func parseList(_ text: String) throws(RequestPrimitiveError) -> Set<Weekday> {
        var days: Set<Weekday> = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = item.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(bounds.count), let first = day(bounds[0]), let last = day(bounds[bounds.count - 1])
            else {
                throw RequestPrimitiveError(
                    .invalidTimeWindow, "days '\(text)': '\(item)' is not a day or range; expected e.g. mon-fri,sun")
            }
            var current = first
            days.insert(current)
            while current != last {
                current = Weekday(rawValue: current.rawValue % 7 + 1)!
                days.insert(current)
            }
        }
        return days
    }

    private static func day(_ name: Substring) -> Weekday? {
        allCases.first { $0.description == name }
    }
}

/// A wall-clock time of day, in minutes after midnight: `09:30` is 570. `24:00` (1440) is allowed
/// only as the end of a window.
public struct TimeOfDay: Sendable, Equatable, Hashable, Comparable, CustomStringConvertible {
    /// Minutes after midnight, 0–1440.
    public let minutes: Int

    /// Parses `HH:MM`, exactly two digits each, `00:00` to `23:59`, or `24:00` when `allowEndOfDay`.
    public init(_ text: Substring, allowEndOfDay: Bool) throws(RequestPrimitiveError) {
        let bytes = Array(text.utf8)
        let isDigit = { (byte: UInt8) in byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        guard bytes.count == 5, bytes[2] == UInt8(ascii: ":"), isDigit(bytes[0]), isDigit(bytes[1]),
            isDigit(bytes[3]), isDigit(bytes[4])
        else {
            throw RequestPrimitiveError(.invalidTimeWindow, "'\(text)' is not a time; expected HH:MM such as 09:00")
        }
        let hour = Int(bytes[0] - 48) * 10 + Int(bytes[1] - 48)
        let minute = Int(bytes[3] - 48) * 10 + Int(bytes[4] - 48)
        let valid = (hour < 24 && minute < 60) || (allowEndOfDay && hour == 24 && minute == 0)
        guard valid else {
            throw RequestPrimitiveError(
                .invalidTimeWindow, "'\(text)' is out of range; expected 00:00-23:59\(allowEndOfDay ? " or 24:00" : "")"
            )
        }
        minutes = hour * 60 + minute
    }

    /// Earlier in the day.
    public static func < (lhs: TimeOfDay, rhs: TimeOfDay) -> Bool { lhs.minutes < rhs.minutes }

    /// `HH:MM`.
    public var description: String {
        let hour = minutes / 60
        let minute = minutes % 60
        return (hour < 10 ? "0" : "") + String(hour) + ":" + (minute < 10 ? "0" : "") + String(minute)
    }
}

/// When calls are allowed: some days of the week and a range of hours, on the wall clock of an IANA
/// time zone.
///
/// The window is half-open: `09:00-17:00` admits 09:00:00 up to 16:59:59. A window whose start is
/// after its end crosses midnight and belongs to the day it starts on: `fri` with `22:00-06:00`
/// admits Friday 22:00 to Saturday 05:59. The instant is always passed in and converted with the
/// zone's rules for that instant, so a window means local time on both sides of a DST change; a
/// local time skipped by spring-forward never occurs (no instant is admitted for it), and one
/// repeated by fall-back is admitted both times it occurs.
public struct TimeWindow: Sendable, Equatable {
    /// The days on which the window opens.
    public let days: Set<Weekday>
    /// Local time at which the window opens (inclusive).
    public let start: TimeOfDay
    /// Local time at which the window closes (exclusive); before `start` when the window crosses
    /// midnight.
    public let end: TimeOfDay
    /// The zone whose wall clock the window is read on.
    public let timeZone: TimeZone
    /// `mon,tue,wed,thu,fri 09:00-17:00 Europe/Berlin`, for traces and deny reasons.
    public let summary: String

    /// Zone names accepted besides `TimeZone.knownTimeZoneIdentifiers`, which omits them.
    private static let universalZones: Set<String> = ["UTC", "Etc/UTC", "GMT", "Etc/GMT"]
    /// The platform's IANA zone names, read once: the list is rebuilt on every call, and a large
    /// bundle has thousands of windows.
    private static let knownZones = Set(TimeZone.knownTimeZoneIdentifiers)

    /// Builds a window from its bundle form: `days` as in ``Weekday/parseList(_:)``, `hours` as
    /// `HH:MM-HH:MM`, and `timeZone` an IANA name such as `Europe/Berlin`.
    ///
    /// An unknown zone is an error, never a default. Abbreviations (`EST`, `CET`, `PST`) and offsets
    /// (`GMT+1`) are refused even where the platform accepts them: they do not name a region's rules,
    /// and `PST` in particular does not follow the DST that its users expect. `UTC` is accepted.
    /// A window whose start equals its end is refused: it is unclear whether it means never or always.
    public init(days: String, hours: String, timeZone identifier: String) throws(RequestPrimitiveError) {
        let parsedDays = try Weekday.parseList(days)
        let bounds = hours.split(separator: "-", omittingEmptySubsequences: false)
        guard bounds.count == 2 else {
            throw RequestPrimitiveError(
                .invalidTimeWindow, "hours '\(hours)': expected HH:MM-HH:MM such as 09:00-17:00")
        }
        let start = try TimeOfDay(bounds[0], allowEndOfDay: false)
        let end = try TimeOfDay(bounds[1], allowEndOfDay: true)
        guard start != end else {
            throw RequestPrimitiveError(
                .invalidTimeWindow, "hours '\(hours)': start equals end; use 00:00-24:00 for the whole day")
        }
        guard TimeWindow.universalZones.contains(identifier) || TimeWindow.knownZones.contains(identifier),
            let zone = TimeZone(identifier: identifier)
        else {
            throw RequestPrimitiveError(
                .unknownTimeZone, "'\(identifier)' is not an IANA time zone; expected e.g. Europe/Berlin or UTC")
        }
        self.days = parsedDays
        self.start = start
        self.end = end
        self.timeZone = zone
        let dayList = Weekday.allCases.filter { parsedDays.contains($0) }.map(\.description).joined(separator: ",")
        summary = "\(dayList) \(start)-\(end) \(zone.identifier)"
    }

    /// The local weekday and minute of day at `instant` in the window's zone.
    public func localTime(at instant: Date) -> (day: Weekday, minutes: Int) {
        // The zone's offset at this very instant (so DST is that of the instant), then plain
        // arithmetic: a Calendar per call costs more than the rest of a pipeline's filters.
        let seconds = Int((instant.timeIntervalSince1970).rounded(.down)) + timeZone.secondsFromGMT(for: instant)
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // 1970-01-01 was a Thursday; Weekday numbers Monday 1 … Sunday 7.
        let weekday = Weekday(rawValue: ((days % 7 + 7) % 7 + 3) % 7 + 1)!
        return (weekday, secondOfDay / 60)
    }

    /// Whether the window is open at `instant`.
    public func contains(_ instant: Date) -> Bool {
        let (day, minutes) = localTime(at: instant)
        if start < end {
            return days.contains(day) && minutes >= start.minutes && minutes < end.minutes
        }
        // Crosses midnight: the evening part belongs to today, the morning part to yesterday.
        return (days.contains(day) && minutes >= start.minutes)
            || (days.contains(day.previous) && minutes < end.minutes)
    }
}
