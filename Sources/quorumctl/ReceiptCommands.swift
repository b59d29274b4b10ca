import ArgumentParser
import Foundation
import QuorumCrypto
import QuorumProtocol

/// `quorumctl receipt …`: check the receipts the proxy attaches to every decision.
struct ReceiptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receipt",
        abstract: "Verify decision receipts offline.",
        subcommands: [ReceiptVerify.self]
    )
}

/// `quorumctl receipt verify RECEIPT --group group.json`: exit 0 valid, 1 a signature that does
/// not verify under the group (claims printed marked UNVERIFIED), 2 malformed input.
struct ReceiptVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a receipt against the signing group key and print its claims.",
        discussion: """
            Prints the verdict on the first line, then the claims as JSON. The receipt is parsed \
            strictly (docs/receipts.md): any deviation from the canonical form the quorum signs is \
            refused. Exit status: 0 valid, 1 the signature does not verify under this group (the \
            claims are printed marked UNVERIFIED), 2 malformed input or an unreadable file.
            """
    )

    @Argument(
        help: ArgumentHelp(
            "The receipt (compact JWS), @FILE to read it from a file, or - for stdin.", valueName: "receipt"))
    var receipt: String

    @Option(help: ArgumentHelp("The signing group file (group.json).", valueName: "file"))
    var group: String

    func run() throws {
        let (suite, bytes) = try Inputs.groupSuite(group)
        guard suite == .ed25519 else {
            throw CLIError(
                "\(group): a \(suite.rawValue) group; receipts are EdDSA JWS signed by an Ed25519 signing group")
        }
        let groupKey = try Inputs.group(
            bytes, as: Ed25519Suite.self, file: group, purpose: .signing, command: "receipt verify")
        let key = try groupKey.verifyingKey.serialized()
        let (source, text) = try readReceipt()
        let parsed: Receipt
        do {
            parsed = try Receipt(parsing: text)
        } catch {
            throw CLIError("\(source): not a valid receipt: \(error.description)")
        }
        do {
            try parsed.verify(groupKey: key)
        } catch  where error.isVerificationFailure {
            Output.line("invalid: \(error.description)")
            Output.line("UNVERIFIED claims (not signed by the group in \(group)):")
            Output.line(parsed.claims.prettyJSON())
            throw ExitCode(1)
        } catch {
            throw CLIError("\(source): \(error.description)")
        }
        let signers = parsed.claims.signers.map(String.init).joined(separator: ", ")
        Output.line(
            "valid: \(parsed.claims.decision.rawValue) of request \(parsed.claims.requestID), signed by the "
                + "\(groupKey.minSigners)-of-\(groupKey.maxSigners) group \(Hex.encode(key)) (nodes \(signers))")
        Output.line(parsed.claims.prettyJSON())
    }

    /// The receipt's text, trimmed, and a name for it in messages.
    private func readReceipt() throws -> (String, String) {
        let source: String
        let bytes: [UInt8]
        if receipt == "-" {
            source = "stdin"
            bytes = try Inputs.contents(of: "-", what: "the receipt")
        } else if receipt.hasPrefix("@") {
            source = String(receipt.dropFirst())
            bytes = try Inputs.contents(of: source, what: "the receipt")
        } else {
            source = "RECEIPT"
            bytes = Array(receipt.utf8)
        }
        guard bytes.count <= Receipt.maximumLength + 4096 else {
            throw CLIError("\(source): \(bytes.count) bytes; a receipt is at most \(Receipt.maximumLength)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw CLIError("\(source): not UTF-8 text; a receipt is a compact JWS (header.claims.signature)")
        }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw CLIError("\(source): empty; expected a receipt (header.claims.signature)") }
        return (source, trimmed)
    }
}
