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
        let (groupKey, key) = try Inputs.signingGroup(group, command: "receipt verify")
        let (source, text) = try ReceiptInput.read(receipt)
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
        Output.line("valid: " + ReceiptInput.summary(parsed, group: groupKey))
        Output.line(parsed.claims.prettyJSON())
    }
}

/// Receipts as the commands take them, shared by `receipt verify` and `audit receipt`.
enum ReceiptInput {
    /// The receipt's text, trimmed, and a name for it in messages: `argument` is the receipt
    /// itself, `@FILE`, or `-` for stdin.
    static func read(_ argument: String) throws -> (String, String) {
        let source: String
        let bytes: [UInt8]
        if argument == "-" {
            source = "stdin"
            bytes = try Inputs.contents(of: "-", what: "the receipt")
        } else if argument.hasPrefix("@") {
            source = String(argument.dropFirst())
            bytes = try Inputs.contents(of: source, what: "the receipt")
        } else {
            source = "RECEIPT"
            bytes = Array(argument.utf8)
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

    /// `allow of request R, signed by the k-of-n group G (nodes 1, 2, 4)`.
    static func summary(_ receipt: Receipt, group: PublicKeyPackage<Ed25519Suite>) -> String {
        let signers = receipt.claims.signers.map(String.init).joined(separator: ", ")
        let key = (try? group.verifyingKey.serialized()).map(Hex.encode) ?? "?"
        return "\(receipt.claims.decision.rawValue) of request \(receipt.claims.requestID), signed by the "
            + "\(group.minSigners)-of-\(group.maxSigners) group \(key) (nodes \(signers))"
    }
}

extension Inputs {
    /// The Ed25519 signing group of `path` (group.json) and its 32-byte key: what receipts and
    /// checkpoints are signed by.
    static func signingGroup(_ path: String, command: String) throws -> (PublicKeyPackage<Ed25519Suite>, [UInt8]) {
        let (suite, bytes) = try groupSuite(path)
        guard suite == .ed25519 else {
            throw CLIError(
                "\(path): a \(suite.rawValue) group; receipts are EdDSA JWS signed by an Ed25519 signing group, "
                    + "and checkpoints are signed by it too")
        }
        let group = try Inputs.group(bytes, as: Ed25519Suite.self, file: path, purpose: .signing, command: command)
        return (group, try group.verifyingKey.serialized())
    }
}
