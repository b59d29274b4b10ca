import ArgumentParser
import Foundation
import QuorumCrypto
import QuorumIdentity
import QuorumNode
import QuorumPolicy
import QuorumProtocol

/// The operator and auditor CLI (DESIGN.md §2). Argument parsing and wiring only: every decision
/// is made by the library.
@main
struct Quorumctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quorumctl",
        abstract: "Operate and audit a Quorum Latch cluster.",
        discussion: """
            Exit status: 0 success, 1 a signature that does not verify, a denied request (policy eval) or an unreachable node (status), 2 bad
            input or a refusal.
            """,
        subcommands: [
            Keygen.self, Frost.self, Seal.self, Unseal.self, Log.self, Policy.self, LatchCommand.self, Certs.self,
            Status.self, Doctor.self, Bench.self, ReceiptCommand.self, Secrets.self, Testnet.self, Audit.self,
        ]
    )

    /// Runs the command and turns every failure into one line on stderr and exit status 2.
    ///
    /// The one place errors are caught, so no error escapes as a trap or a stack trace, and
    /// usage errors exit 2 like any other bad input (not argument-parser's 64).
    static func main() {
        ConcurrencyExecutor.runOnEventLoops()
        let status: Int32
        do {
            var command = try parseAsRoot()
            try command.run()
            status = 0
        } catch {
            status = report(error)
        }
        Foundation.exit(status)
    }

    /// Prints `error` and returns the exit status for it.
    private static func report(_ error: any Error) -> Int32 {
        if let code = error as? ExitCode { return code.rawValue }
        let message: String
        switch error {
        case let error as CLIError: message = error.message
        case let error as KeyFileError: message = error.description
        case let error as CryptoError: message = error.description
        case let error as BundleProblems: message = error.description
        case let error as BundleLoadError: message = error.description
        case let error as SignedBundleError: message = error.description
        case let error as IdentityError: message = error.description
        case let error as SealedCredentialError: message = error.description
        case let error as ReceiptError: message = error.description
        default:
            if exitCode(for: error) == .success {
                // --help, --version: a clean exit whose text goes to stdout.
                Output.line(fullMessage(for: error))
                return 0
            }
            // A usage error: the brief message, then argument-parser's usage and hint lines.
            let lines = fullMessage(for: error).split(separator: "\n", omittingEmptySubsequences: false)
            let usage = lines.drop { !$0.hasPrefix("Usage:") }
            Output.error("quorumctl: error: \(oneLine(self.message(for: error)))")
            if !usage.isEmpty { Output.error(usage.joined(separator: "\n")) }
            return 2
        }
        Output.error("quorumctl: error: \(oneLine(message))")
        return 2
    }

    private static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }
}

/// `quorumctl frost …`: threshold signatures with the signing group.
struct Frost: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make and check FROST threshold signatures (RFC 9591).",
        subcommands: [FrostSign.self, FrostVerify.self]
    )
}
