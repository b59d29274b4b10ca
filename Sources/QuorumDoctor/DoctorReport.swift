import Foundation

/// One thing `quorumctl doctor` checked: how it stands, what was checked and found, and for every
/// problem the fix as a command or configuration change an operator can act on.
public struct DoctorFinding: Sendable, Hashable, Codable {
    /// How a check came out.
    public enum Status: String, Sendable, Hashable, Codable, Comparable {
        /// Nothing to do.
        case ok
        /// Works now, but needs attention (an expiry soon, a node not yet set up, a check that
        /// could not run); does not fail the run.
        case warn
        /// Broken: the node, proxy or cluster does not work as configured. Fails the run (exit 1).
        case fail

        /// `ok`, `warn`, `FAIL`: the word a text report starts the line with.
        public var word: String { self == .fail ? "FAIL" : rawValue }

        private var rank: Int {
            switch self {
            case .ok: 0
            case .warn: 1
            case .fail: 2
            }
        }

        /// Worse is greater: `ok < warn < fail`.
        public static func < (a: Status, b: Status) -> Bool { a.rank < b.rank }
    }

    /// How the check came out.
    public let status: Status
    /// What was checked, as a stable name: the configuration key (`tls.certificate`,
    /// `data_dir`) in the local mode, or a cluster check (`reach`, `clock`, `bundle`).
    public let check: String
    /// The node the finding is about, in the cluster mode.
    public let node: UInt16?
    /// What was found, naming the file, key, node or address; never secret material.
    public let detail: String
    /// For a warn or a FAIL: what to do, as a command or a configuration change.
    public let fix: String?

    /// A finding; `fix` is required in spirit for every warn and FAIL.
    public init(_ status: Status, _ check: String, node: UInt16? = nil, _ detail: String, fix: String? = nil) {
        self.status = status
        self.check = check
        self.node = node
        self.detail = detail
        self.fix = fix
    }

    /// A passed check.
    public static func ok(_ check: String, node: UInt16? = nil, _ detail: String) -> DoctorFinding {
        DoctorFinding(.ok, check, node: node, detail)
    }

    /// A check that needs attention, with what to do.
    public static func warn(_ check: String, node: UInt16? = nil, _ detail: String, fix: String) -> DoctorFinding {
        DoctorFinding(.warn, check, node: node, detail, fix: fix)
    }

    /// A failed check, with what to do.
    public static func fail(_ check: String, node: UInt16? = nil, _ detail: String, fix: String) -> DoctorFinding {
        DoctorFinding(.fail, check, node: node, detail, fix: fix)
    }

    /// `FAIL  tls.private_key   node-1.key: mode 0644 …; fix: chmod 600 node-1.key`: one line.
    public var line: String {
        let subject = node.map { "\(check) node \($0)" } ?? check
        var text = status.word.padding(toLength: 6, withPad: " ", startingAt: 0)
        text += subject.count < 22 ? subject.padding(toLength: 22, withPad: " ", startingAt: 0) : subject + " "
        text += detail
        if let fix { text += "; fix: " + fix }
        return text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}

/// Wording shared by the checks.
enum Doctor {
    /// `1 peer`, `3 peers`.
    static func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }
}

/// What one `quorumctl doctor` run found, in order.
public struct DoctorReport: Sendable, Codable {
    /// `local` (one node's or proxy's host) or `cluster` (every node over mutual TLS).
    public let mode: String
    /// What was examined: the configuration file, or the cluster file.
    public let subject: String
    /// Every finding, in the order checked.
    public private(set) var findings: [DoctorFinding]

    /// An empty report.
    public init(mode: String, subject: String, findings: [DoctorFinding] = []) {
        self.mode = mode
        self.subject = subject
        self.findings = findings
    }

    /// Adds a finding.
    public mutating func add(_ finding: DoctorFinding) { findings.append(finding) }

    /// Adds findings.
    public mutating func add(contentsOf more: [DoctorFinding]) { findings.append(contentsOf: more) }

    /// How many findings have `status`.
    public func count(_ status: DoctorFinding.Status) -> Int { findings.filter { $0.status == status }.count }

    /// Whether nothing failed: the run exits 0.
    public var passed: Bool { count(.fail) == 0 }

    /// `doctor: 12 ok, 1 warn, 0 FAIL`.
    public var summary: String {
        "doctor: \(count(.ok)) ok, \(count(.warn)) warn, \(count(.fail)) FAIL"
    }

    /// One line per finding, then the summary.
    public var text: String {
        (findings.map(\.line) + [summary]).joined(separator: "\n")
    }

    /// The report as JSON for machines: `mode`, `subject`, `checks` (each `status`, `check`,
    /// `node`, `detail`, `fix`), and the counts `ok`, `warn`, `fail`, keys sorted.
    public func json() -> String {
        struct Document: Encodable {
            let mode: String
            let subject: String
            let checks: [DoctorFinding]
            let ok: Int
            let warn: Int
            let fail: Int
            let passed: Bool
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let document = Document(
            mode: mode, subject: subject, checks: findings, ok: count(.ok), warn: count(.warn), fail: count(.fail),
            passed: passed)
        // Encoding strings, integers and booleans cannot fail.
        let data = (try? encoder.encode(document)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
