import ArgumentParser
import Foundation
import QuorumAudit
import QuorumLog

/// `quorumctl audit unlogged --node URL... --group group.json`: the nodes' decisions whose
/// receipts never reached the log, compared across nodes.
struct AuditUnlogged: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unlogged",
        abstract: "Find decisions a quorum reached whose receipts never reached the log (a proxy withholding them).",
        discussion: """
            Each node records the decisions it reached whose receipt did not reach its log within its \
            replication.unlogged_after_ms. Give every node's own audit URL (not the proxy's, which answers from \
            one node). A request id that is still not in the log and that k or more nodes (the group's threshold) \
            report is WITHHELD: the proxy held a quorum's verdicts (and, for an allow of a route with a secret, \
            their decryption shares) and logged nothing; it kept the receipt out, or lost it (a signing round that \
            failed, a crash, no node reachable), which its own log tells apart. Fewer than k reports are printed \
            as a note: a round that failed with fewer than k answers leaves those too. Exit status: 1 if anything was withheld or a node \
            could not be read, 0 otherwise.
            """
    )

    @OptionGroup var nodes: AuditNodeOptions
    @OptionGroup var trust: AuditTrustOptions

    func run() throws {
        let urls = try nodes.urls()
        if let twice = Dictionary(grouping: urls, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw CLIError("--node \(twice) is given twice; each --node must be a different node's audit API")
        }
        let (_, group, _) = try trust.load(command: "audit unlogged")
        let threshold = group.minSigners
        let fetcher = AuditFetcher(timeout: nodes.timeout)
        defer { fetcher.shutdown() }
        var failures = 0
        var reports: [String: [(url: String, decision: UnloggedDecision)]] = [:]
        for url in urls {
            let listed = fetcher.get(url, AuditRoute.unlogged.path).flatMap { body in
                Result { () throws(CLIError) -> UnloggedDocument in
                    do { return try UnloggedDocument(json: body) } catch {
                        throw CLIError("\(url): /\(AuditRoute.unlogged.path): \(error)")
                    }
                }
            }
            switch listed {
            case .failure(let error):
                Output.line("FAIL \(url): \(error.message)")
                failures += 1
            case .success(let document):
                Output.line("ok   \(url): \(document.decisions.count) decision(s) without a receipt in its log")
                for decision in document.decisions { reports[decision.requestID, default: []].append((url, decision)) }
            }
        }
        var withheld = 0
        for requestID in reports.keys.sorted() {
            let reported = reports[requestID]!
            // A receipt that arrived after the node looked is in the log now: late, not withheld.
            if case .success = fetcher.get(reported[0].url, AuditRoute.receipt(requestID: requestID).path) {
                Output.line(
                    "late \(requestID): in the log now (reported by \(reported.count) node(s) before it arrived)")
                continue
            }
            let allows = reported.filter(\.decision.allow)
            let shares = allows.filter(\.decision.decryptionShare).count
            let decided =
                allows.count >= threshold ? "allow" : reported.count - allows.count >= threshold ? "deny" : nil
            let summary =
                "\(allows.count) allow (\(shares) with a decryption share), \(reported.count - allows.count) deny, "
                + "reported by " + reported.map(\.url).joined(separator: ", ")
            if let decided {
                withheld += 1
                Output.line(
                    "WITHHELD \(requestID): a quorum (k=\(threshold)) decided \(decided) and no receipt is in the log; "
                        + summary)
            } else {
                Output.line(
                    "note \(requestID): fewer than k=\(threshold) nodes report it (a failed round or an early stop); "
                        + summary)
            }
        }
        if withheld == 0, failures == 0 {
            Output.line(
                "no withheld receipts: no request id is reported by k=\(threshold) or more of \(urls.count) node(s)")
        }
        if withheld + failures > 0 { throw ExitCode(1) }
    }
}
