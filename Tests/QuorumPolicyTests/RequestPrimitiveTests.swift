import Foundation
import QuorumPolicy
import Testing

// MARK: - Path normalisation

private func normalised(_ raw: String) -> String? {
    guard case .success(let target) = RequestTarget.parse(raw) else { return nil }
    return target.path.value
}

private func refusal(_ raw: String) -> PathRefusal.Reason? {
    guard case .failure(let refusal) = RequestTarget.parse(raw) else { return nil }
    return refusal.reason
}

struct PathRefusalCase: Sendable, CustomStringConvertible {
    let raw: String
    let reason: PathRefusal.Reason
    var description: String { "\(raw.debugDescription) -> \(reason.rawValue)" }
}

@Suite("Path normalisation refuses ambiguity")
struct PathNormalisationTests {
    static let refusals: [PathRefusalCase] = [
        .init(raw: "", reason: .empty),
        .init(raw: "?a=1", reason: .empty),
        .init(raw: "v1/chat", reason: .notAbsolute),
        .init(raw: "http://evil.example/v1", reason: .notAbsolute),
        .init(raw: "*", reason: .notAbsolute),
        .init(raw: "//v1/chat", reason: .emptySegment),
        .init(raw: "/v1//chat", reason: .emptySegment),
        .init(raw: "/v1/chat//", reason: .emptySegment),
        .init(raw: "//", reason: .emptySegment),
        .init(raw: "/v1/./chat", reason: .dotSegment),
        .init(raw: "/v1/../admin", reason: .dotSegment),
        .init(raw: "/v1/chat/.", reason: .dotSegment),
        .init(raw: "/v1/chat/..", reason: .dotSegment),
        .init(raw: "/..", reason: .dotSegment),
        .init(raw: "/./", reason: .dotSegment),
        .init(raw: "/v1%2fadmin", reason: .encodedSeparator),
        .init(raw: "/v1%2Fadmin", reason: .encodedSeparator),
        .init(raw: "/v1%5cadmin", reason: .encodedSeparator),
        .init(raw: "/v1%5Cadmin", reason: .encodedSeparator),
        .init(raw: "/v1/%2e%2e/admin", reason: .encodedSeparator),
        .init(raw: "/v1/%2E/admin", reason: .encodedSeparator),
        .init(raw: "/v1/.%2e/admin", reason: .encodedSeparator),
        .init(raw: "/v1%252fadmin", reason: .doubleEncoding),
        .init(raw: "/v1%252Fadmin", reason: .doubleEncoding),
        .init(raw: "/v1/%252e%252e/admin", reason: .doubleEncoding),
        .init(raw: "/v1%25252fadmin", reason: .doubleEncoding),
        .init(raw: "/v1/chat;jsessionid=x", reason: .pathParameter),
        .init(raw: "/admin;/v1", reason: .pathParameter),
        .init(raw: "/v1/chat%3Bx", reason: .pathParameter),
        .init(raw: "/v1\\admin", reason: .backslash),
        .init(raw: "/v1/chat\u{0}", reason: .controlCharacter),
        .init(raw: "/v1/chat\r\nX-Injected: 1", reason: .controlCharacter),
        .init(raw: "/v1/\u{7F}", reason: .controlCharacter),
        .init(raw: "/v1/chat%00", reason: .controlCharacter),
        .init(raw: "/v1/chat%0a", reason: .controlCharacter),
        .init(raw: "/v1/chat%", reason: .invalidPercentEncoding),
        .init(raw: "/v1/chat%4", reason: .invalidPercentEncoding),
        .init(raw: "/v1/chat%zz", reason: .invalidPercentEncoding),
        .init(raw: "/v1/%u002e", reason: .invalidPercentEncoding),
        .init(raw: "/v1/caf\u{E9}", reason: .nonASCII),
        .init(raw: "/v1/\u{FF0F}admin", reason: .nonASCII),
        .init(raw: "/v1/chat completions", reason: .disallowedCharacter),
        .init(raw: "/v1/chat#frag", reason: .disallowedCharacter),
        .init(raw: "/v1/{id}", reason: .disallowedCharacter),
        .init(raw: "/v1/chat?x=1#frag", reason: .disallowedCharacter),
        .init(raw: "/v1/chat?x=\u{0}", reason: .controlCharacter),
        .init(raw: "/v1/chat?x=\u{E9}", reason: .nonASCII),
    ]

    @Test("refuses", arguments: refusals)
    func refuses(_ vector: PathRefusalCase) {
        #expect(refusal(vector.raw) == vector.reason)
    }

    @Test(
        "accepts and normalises",
        arguments: [
            ("/", "/"),
            ("/v1/chat/completions", "/v1/chat/completions"),
            ("/v1/chat/completions/", "/v1/chat/completions/"),
            ("/v1/%7Euser", "/v1/~user"),
            ("/v1/%41%62%63-%5f%2D", "/v1/Abc-_-"),
            ("/v1/caf%c3%a9", "/v1/caf%C3%A9"),
            ("/v1/a%20b", "/v1/a%20b"),
            ("/v1/a%3fb", "/v1/a%3Fb"),
            ("/v1/100%25", "/v1/100%25"),
            ("/v1/file.json", "/v1/file.json"),
            ("/v1/...", "/v1/..."),
            ("/v1/.well-known", "/v1/.well-known"),
            ("/v1/models/gpt-4o:generate", "/v1/models/gpt-4o:generate"),
            ("/v1/a@b!$&'()*+,=", "/v1/a@b!$&'()*+,="),
        ])
    func accepts(_ raw: String, _ expected: String) {
        #expect(normalised(raw) == expected)
    }

    @Test func querySplitOffUndecoded() throws {
        let target = try RequestTarget.parse("/v1/chat?model=gpt%2F4&x=/../").get()
        #expect(target.path.value == "/v1/chat")
        #expect(target.path.segments == ["v1", "chat"])
        #expect(target.query == "model=gpt%2F4&x=/../")
        #expect(try RequestTarget.parse("/v1/chat").get().query == nil)
        #expect(try RequestTarget.parse("/v1/chat?").get().query == "")
    }

    @Test func segmentsAndTrailingSlash() throws {
        let root = try RequestTarget.parse("/").get().path
        #expect(root.segments.isEmpty && !root.hasTrailingSlash)
        let trailing = try RequestTarget.parse("/a/b/").get().path
        #expect(trailing.segments == ["a", "b"] && trailing.hasTrailingSlash)
    }

    @Test func refusalNamesTheOffset() {
        #expect(RequestTarget.parse("/v1/a%2fb") == .failure(PathRefusal(.encodedSeparator, at: 5)))
        #expect(RequestTarget.parse("/v1//b") == .failure(PathRefusal(.emptySegment, at: 4)))
    }
}

// MARK: - Endpoint globs and methods

@Suite("Endpoint globs")
struct EndpointPatternTests {
    private func path(_ raw: String) throws -> NormalisedPath { try RequestTarget.parse(raw).get().path }

    @Test(
        "matches",
        arguments: [
            ("/v1/chat/completions", "/v1/chat/completions", true),
            ("/v1/chat/completions", "/v1/chat/completions/", true),
            ("/v1/chat/completions", "/v1/chat", false),
            ("/v1/chat/completions", "/v1/chat/completions/x", false),
            ("/v1/chat/completions", "/x/v1/chat/completions", false),
            ("/v1/*/completions", "/v1/chat/completions", true),
            ("/v1/*/completions", "/v1/completions", false),
            ("/v1/*/completions", "/v1/a/b/completions", false),
            ("/v1/*", "/v1", false),
            ("/v1/**", "/v1", true),
            ("/v1/**", "/v1/a/b/c", true),
            ("/v1/**", "/v2/a", false),
            ("/**", "/", true),
            ("/**", "/anything/at/all", true),
            ("/", "/", true),
            ("/", "/a", false),
            ("/v1/**/files/*", "/v1/files/f1", true),
            ("/v1/**/files/*", "/v1/org/x/files/f1", true),
            ("/v1/**/files/*", "/v1/org/x/files", false),
            ("/v1/**/files/*", "/v1/files/files/f1", true),
            ("/a/**/b/**/c", "/a/b/c", true),
            ("/a/**/b/**/c", "/a/x/b/y/z/c", true),
            ("/a/**/b/**/c", "/a/x/c/y/b", false),
            ("/v1/%7Euser", "/v1/~user", true),
            ("/V1/chat", "/v1/chat", false),
        ])
    func matches(_ pattern: String, _ raw: String, _ expected: Bool) throws {
        #expect(try EndpointPattern(pattern).matches(path(raw)) == expected)
    }

    @Test(
        "refuses patterns",
        arguments: ["", "v1/chat", "/v1//chat", "/v1/../chat", "/v1/chat*", "/v1/**x", "/v1/a%2fb", "/v1?x=1", "/v1;a"])
    func refusesPattern(_ pattern: String) {
        #expect(throws: RequestPrimitiveError.self) { try EndpointPattern(pattern) }
    }

    @Test func manyDoubleStarsStayFast() throws {
        // A backtracking matcher is exponential in the number of `**` on a near-miss; the NFA is not.
        let pattern = try EndpointPattern("/" + Array(repeating: "**/a", count: 20).joined(separator: "/") + "/b")
        let longPath = try path("/" + Array(repeating: "a", count: 2_000).joined(separator: "/"))
        let clock = ContinuousClock()
        let elapsed = clock.measure { #expect(pattern.matches(longPath) == false) }
        #expect(elapsed < .seconds(5))
    }

    @Test func methodsAreCaseSensitiveTokens() throws {
        let methods = try MethodSet(["GET", "POST"])
        #expect(methods.contains("GET"))
        #expect(methods.contains("POST"))
        #expect(!methods.contains("get"))
        #expect(!methods.contains("Post"))
        #expect(!methods.contains("DELETE"))
        #expect(!methods.contains(""))
        #expect(MethodSet.any.contains("PATCH"))
        #expect(!MethodSet.any.contains(""))
        #expect(!MethodSet.any.contains("GET /"))
    }

    @Test("refuses method lists", arguments: [[], ["get"], ["GET", ""], ["GET "], ["G\u{0}T"]])
    func refusesMethods(_ methods: [String]) {
        #expect(throws: RequestPrimitiveError.self) { try MethodSet(methods) }
    }
}

// MARK: - IP allowlist

@Suite("IP addresses and allowlists")
struct IPAllowlistTests {
    @Test(
        "canonical form",
        arguments: [
            ("192.0.2.1", "192.0.2.1"),
            ("0.0.0.0", "0.0.0.0"),
            ("255.255.255.255", "255.255.255.255"),
            ("::", "::"),
            ("::1", "::1"),
            ("2001:DB8::1", "2001:db8::1"),
            ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
            ("fe80::", "fe80::"),
            ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
            ("::ffff:1.2.3.4", "1.2.3.4"),
            ("::FFFF:0102:0304", "1.2.3.4"),
            ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ])
    func canonical(_ text: String, _ expected: String) throws {
        #expect(try IPAddress(text).description == expected)
    }

    @Test(
        "refuses addresses",
        arguments: [
            "", "1.2.3", "1.2.3.4.5", "256.0.0.1", "010.0.0.1", "1.2.3.04", "00.0.0.0", "0x7f.0.0.1", "127.1",
            " 1.2.3.4", "1.2.3.4 ", "+1.2.3.4", "1..2.3", "fe80::1%eth0", "fe80::1%25eth0", "[::1]", ":::",
            "1::2::3", ":1::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::", "g::1", "::ffff:010.0.0.1",
            "1.2.3.4::", "::1.2.3", "1:2:3:4:5:6:7:8::",
        ])
    func refusesAddress(_ text: String) {
        #expect(throws: RequestPrimitiveError.self) { try IPAddress(text) }
    }

    @Test(
        "refuses ranges",
        arguments: [
            "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/", "10.0.0.0/08", "10.0.0.0/8/8", "10.0.0.1/8", "::/129",
            "2001:db8::1/32", "::ffff:10.0.0.0/95", "fe80::/10%eth0", "10.0.0.0/ 8",
        ])
    func refusesRange(_ text: String) {
        #expect(throws: RequestPrimitiveError.self) { try CIDR(text) }
    }

    @Test func rangesCanonicalise() throws {
        #expect(try CIDR("10.0.0.0/8").description == "10.0.0.0/8")
        #expect(try CIDR("192.0.2.7").description == "192.0.2.7/32")
        #expect(try CIDR("2001:DB8::/32").description == "2001:db8::/32")
        #expect(try CIDR("::1").description == "::1/128")
        #expect(try CIDR("::ffff:10.0.0.0/104") == CIDR("10.0.0.0/8"))
        #expect(try CIDR("::ffff:1.2.3.4") == CIDR("1.2.3.4"))
        #expect(try CIDR("0.0.0.0/0").description == "0.0.0.0/0")
    }

    @Test(
        "contains",
        arguments: [
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.0", false),
            ("10.0.0.0/8", "::ffff:10.1.2.3", true),
            ("10.0.0.0/8", "::ffff:0a01:0203", true),
            ("10.0.0.0/8", "::10.1.2.3", false),
            ("10.0.0.0/8", "2001:db8::1", false),
            ("192.0.2.7", "192.0.2.7", true),
            ("192.0.2.7", "192.0.2.8", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("0.0.0.0/0", "::1", false),
            ("2001:db8::/32", "2001:db8:ffff::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("2001:db8::/127", "2001:db8::1", true),
            ("2001:db8::/127", "2001:db8::2", false),
            ("2001:db8:0:0:8000::/65", "2001:db8::8000:0:0:1", true),
            ("2001:db8:0:0:8000::/65", "2001:db8::7fff:0:0:1", false),
            ("::/0", "192.0.2.1", true),
            ("::ffff:0:0/96", "192.0.2.1", true),
            ("::1", "::1", true),
            ("::1", "127.0.0.1", false),
        ])
    func contains(_ range: String, _ address: String, _ expected: Bool) throws {
        #expect(try CIDR(range).contains(IPAddress(address)) == expected)
    }

    @Test func allowlist() throws {
        let list = try IPAllowlist(["10.0.0.0/8", "2001:db8::/32", "198.51.100.4"])
        #expect(list.contains("10.1.1.1"))
        #expect(list.contains("::ffff:198.51.100.4"))
        #expect(list.contains("2001:db8::42"))
        #expect(!list.contains("198.51.100.5"))
        #expect(!list.contains("010.1.1.1"))
        #expect(!list.contains("2001:db8::42%eth0"))
        #expect(!list.contains("not an address"))
        #expect(!(try IPAllowlist([])).contains("10.0.0.1"))
        #expect(throws: RequestPrimitiveError.self) { try IPAllowlist(["10.0.0.0/8", "10.0.0.1/8"]) }
    }
}

// MARK: - Time windows

/// An instant given by its UTC wall clock.
private func utc(_ year: Int, _ month: Int, _ day: Int, _ hour: Int, _ minute: Int) -> Date {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    return calendar.date(from: DateComponents(year: year, month: month, day: day, hour: hour, minute: minute))!
}

@Suite("Time windows")
struct TimeWindowTests {
    // 2026 changes: Europe on Sun 29 March and Sun 25 October; United States on Sun 8 March and
    // Sun 1 November.

    @Test func businessHoursAfterSpringForwardBerlin() throws {
        let window = try TimeWindow(days: "mon-fri", hours: "09:00-17:00", timeZone: "Europe/Berlin")
        #expect(window.contains(utc(2026, 3, 30, 7, 30)))  // 09:30 CEST
        #expect(!window.contains(utc(2026, 3, 30, 6, 30)))  // 08:30 CEST, open under a stale +1
        #expect(window.contains(utc(2026, 3, 30, 14, 59)))  // 16:59 CEST
        #expect(!window.contains(utc(2026, 3, 30, 15, 0)))  // 17:00 CEST
    }

    @Test func businessHoursAfterFallBackBerlin() throws {
        let window = try TimeWindow(days: "mon-fri", hours: "09:00-17:00", timeZone: "Europe/Berlin")
        #expect(window.contains(utc(2026, 10, 26, 8, 30)))  // 09:30 CET
        #expect(!window.contains(utc(2026, 10, 26, 7, 30)))  // 08:30 CET, open under a stale +2
        #expect(!window.contains(utc(2026, 10, 25, 8, 30)))  // Sunday
    }

    @Test func businessHoursAcrossChangesNewYork() throws {
        let window = try TimeWindow(days: "mon-fri", hours: "09:00-17:00", timeZone: "America/New_York")
        #expect(window.contains(utc(2026, 3, 9, 13, 30)))  // 09:30 EDT
        #expect(!window.contains(utc(2026, 3, 9, 12, 30)))  // 08:30 EDT
        #expect(window.contains(utc(2026, 11, 2, 14, 30)))  // 09:30 EST
        #expect(!window.contains(utc(2026, 11, 2, 13, 30)))  // 08:30 EST
    }

    @Test func windowAtNonexistentLocalTimeNeverOpens() throws {
        // 02:00-03:00 local does not exist on 29 March in Berlin (01:00 UTC jumps from 02:00 to 03:00).
        let window = try TimeWindow(days: "mon-sun", hours: "02:00-03:00", timeZone: "Europe/Berlin")
        let openOnChangeDay = (0..<180).filter {
            window.contains(utc(2026, 3, 28, 23, 0).addingTimeInterval(60 * Double($0)))
        }
        #expect(openOnChangeDay.isEmpty)
        let openDayBefore = (0..<180).filter {
            window.contains(utc(2026, 3, 27, 23, 0).addingTimeInterval(60 * Double($0)))
        }
        #expect(openDayBefore.count == 60)
        // A window straddling the gap opens at the first instant after it.
        let straddling = try TimeWindow(days: "sun", hours: "02:30-04:00", timeZone: "Europe/Berlin")
        #expect(!straddling.contains(utc(2026, 3, 29, 0, 59)))  // 01:59 CET
        #expect(straddling.contains(utc(2026, 3, 29, 1, 0)))  // 03:00 CEST
    }

    @Test func repeatedLocalHourOpensTwice() throws {
        // 01:00-02:00 local happens twice in New York on 1 November: once in EDT, once in EST.
        let window = try TimeWindow(days: "sun", hours: "01:00-02:00", timeZone: "America/New_York")
        #expect(window.contains(utc(2026, 11, 1, 5, 30)))  // 01:30 EDT
        #expect(window.contains(utc(2026, 11, 1, 6, 30)))  // 01:30 EST
        #expect(!window.contains(utc(2026, 11, 1, 7, 30)))  // 02:30 EST
        let open = (0..<240).filter { window.contains(utc(2026, 11, 1, 4, 0).addingTimeInterval(60 * Double($0))) }
        #expect(open.count == 120)
    }

    @Test func crossingMidnightBelongsToTheStartDay() throws {
        let window = try TimeWindow(days: "fri", hours: "22:00-06:00", timeZone: "Europe/Berlin")
        #expect(window.contains(utc(2026, 3, 27, 21, 30)))  // Fri 22:30 CET
        #expect(window.contains(utc(2026, 3, 28, 4, 59)))  // Sat 05:59 CET
        #expect(!window.contains(utc(2026, 3, 28, 5, 0)))  // Sat 06:00 CET
        #expect(!window.contains(utc(2026, 3, 28, 21, 30)))  // Sat 22:30: Saturday is not a start day
        #expect(!window.contains(utc(2026, 3, 27, 4, 30)))  // Fri 05:30: Thursday's window
        #expect(!window.contains(utc(2026, 3, 27, 20, 59)))  // Fri 21:59
    }

    @Test func wholeDayAndUTC() throws {
        let window = try TimeWindow(days: "sat-sun", hours: "00:00-24:00", timeZone: "UTC")
        #expect(window.contains(utc(2026, 3, 28, 0, 0)))
        #expect(window.contains(utc(2026, 3, 29, 23, 59)))
        #expect(!window.contains(utc(2026, 3, 30, 0, 0)))
        #expect(!window.contains(utc(2026, 3, 27, 23, 59)))
    }

    @Test(
        "unknown zone is an error, never a default",
        arguments: ["Nowhere/Land", "", "europe/berlin", "Europe/Berlin ", "EST", "CET", "PST", "GMT+1", "+01:00"])
    func unknownZone(_ zone: String) {
        #expect(
            throws: RequestPrimitiveError(
                .unknownTimeZone, "'\(zone)' is not an IANA time zone; expected e.g. Europe/Berlin or UTC")
        ) {
            try TimeWindow(days: "mon", hours: "09:00-17:00", timeZone: zone)
        }
    }

    @Test(
        "refuses hours",
        arguments: [
            "9:00-17:00", "09:00", "09:00-17:00-18:00", "24:00-01:00", "09:60-10:00", "09:00-09:00", "09:00-24:01",
            "09:00 - 17:00", "",
        ])
    func refusesHours(_ hours: String) {
        #expect(throws: RequestPrimitiveError.self) { try TimeWindow(days: "mon", hours: hours, timeZone: "UTC") }
    }

    @Test func daysParse() throws {
        #expect(try Weekday.parseList("mon-fri") == [.monday, .tuesday, .wednesday, .thursday, .friday])
        #expect(try Weekday.parseList("fri-mon") == [.friday, .saturday, .sunday, .monday])
        #expect(try Weekday.parseList("sat,sun,mon") == [.saturday, .sunday, .monday])
        #expect(try Weekday.parseList("wed") == [.wednesday])
        for bad in ["", "monday", "mon-", "Mon", "mon,,tue", "mon-tue-wed"] {
            #expect(throws: RequestPrimitiveError.self) { try Weekday.parseList(bad) }
        }
    }
}

// MARK: - Header requirements

@Suite("Header requirements")
struct HeaderRequirementTests {
    @Test(
        "glob matches",
        arguments: [
            ("*", "", true),
            ("*", "anything", true),
            ("", "", true),
            ("", "x", false),
            ("team-*", "team-blue", true),
            ("team-*", "Team-blue", false),
            ("team-*", "xteam-blue", false),
            ("team-?", "team-b", true),
            ("team-?", "team-", false),
            ("team-?", "team-bb", false),
            ("v[0-9].[0-9]", "v1.2", true),
            ("v[0-9].[0-9]", "v1x2", false),
            ("[!a-z]*", "Abc", true),
            ("[!a-z]*", "abc", false),
            ("[abc]", "b", true),
            ("[abc]", "d", false),
            ("[a\\]]", "]", true),
            ("[a-]", "-", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("*.example.com", "api.example.com", true),
            ("*.example.com", "api.example.com.evil", false),
            ("Bearer *", "Bearer abc", true),
            ("?", "\u{E9}", true),
            ("caf\u{E9}", "caf\u{E9}", true),
        ])
    func globMatches(_ pattern: String, _ value: String, _ expected: Bool) throws {
        #expect(try GlobPattern(pattern).matches(value) == expected)
    }

    @Test("refuses patterns", arguments: ["[abc", "[]", "[!]", "[z-a]", "abc\\", "[a\\"])
    func refusesPattern(_ pattern: String) {
        #expect(throws: RequestPrimitiveError.self) { try GlobPattern(pattern) }
    }

    @Test func pathologicalPatternIsLinear() throws {
        let pattern = try GlobPattern("*a*a*a*a*a*b")
        let value = String(repeating: "a", count: 10_000)
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            #expect(pattern.matches(value) == false)
            #expect(pattern.matches(value + "b") == true)
            #expect(try! GlobPattern("*?*?*?*?*?*?*?*?[!a]").matches(value) == false)
        }
        // Generous: a backtracking matcher would not finish within the lifetime of the test run.
        #expect(elapsed < .seconds(10))
    }

    @Test func presenceWithCaseInsensitiveNames() throws {
        let requirement = try HeaderRequirement(name: "X-Team-Id")
        #expect(requirement.name == "x-team-id")
        #expect(requirement.isSatisfied(by: [("x-team-id", "")]))
        #expect(requirement.isSatisfied(by: [("X-TEAM-ID", "blue")]))
        #expect(requirement.check([("X-Team", "blue")]) == .missing)
        #expect(requirement.check([]) == .missing)
    }

    @Test func valuePatternAppliesToEveryOccurrence() throws {
        let requirement = try HeaderRequirement(name: "x-team-id", pattern: "team-[a-z]*")
        #expect(requirement.check([("X-Team-Id", "team-blue")]) == .satisfied)
        #expect(requirement.check([("X-Team-Id", "TEAM-blue")]) == .mismatched(occurrence: 0))
        #expect(
            requirement.check([("x-team-id", "team-blue"), ("Accept", "*/*"), ("X-Team-Id", "admin")])
                == .mismatched(occurrence: 1))
        #expect(requirement.check([("x-team-id", "team-blue"), ("X-Team-Id", "team-red")]) == .satisfied)
    }

    @Test("refuses header names", arguments: ["", "X Team", "X-Team:", "X-T\u{E9}am", "X-Team\r\n"])
    func refusesName(_ name: String) {
        #expect(throws: RequestPrimitiveError.self) { try HeaderRequirement(name: name) }
    }

    @Test func refusesBadValuePattern() {
        #expect(throws: RequestPrimitiveError.self) { try HeaderRequirement(name: "X-Team", pattern: "[abc") }
    }
}
