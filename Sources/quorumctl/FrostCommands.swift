import ArgumentParser
import QuorumCrypto

/// `quorumctl frost sign`: both FROST rounds run locally with the given shares.
///
/// For a dealer setup, tests and emergencies: in a running cluster each node signs with its own
/// share and no single process holds k of them.
struct FrostSign: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Sign a message with k signing shares; prints the signature as hex on the last line."
    )

    @Option(help: ArgumentHelp("The signing group file (group.json).", valueName: "file"))
    var group: String

    @Option(
        help: ArgumentHelp(
            "A signing share file; repeat for each participant (at least the threshold).", valueName: "file"))
    var share: [String] = []

    @Option(help: ArgumentHelp("The file holding the message to sign.", valueName: "file"))
    var messageFile: String

    func run() throws {
        let (suite, bytes) = try Inputs.groupSuite(group)
        try sign(suite.type, groupBytes: bytes)
    }

    private func sign<C: Ciphersuite>(_: C.Type, groupBytes: [UInt8]) throws {
        let groupKey = try Inputs.group(groupBytes, as: C.self, file: group, purpose: .signing, command: "frost sign")
        let message = try Inputs.contents(of: messageFile, what: "the message")
        let keys = try Inputs.shares(share, group: groupKey, groupFile: group)

        // Round one for every signer, then one session over the sorted commitment list.
        let nonces = keys.map(FROST<C>.commit)
        let package = try SigningPackage<C>(message: message, commitments: nonces.map(\.commitments))
        let session = try SigningSession<C>(package: package, verifyingKey: groupKey.verifyingKey)
        // Round two; aggregation verifies the result and names any participant whose share is bad.
        var shares: [SignatureShare<C>] = []
        for (key, nonce) in zip(keys, nonces) {
            shares.append(try FROST<C>.sign(session: session, nonces: nonce, key: key))
        }
        let signature = try FROST<C>.aggregate(session: session, shares: shares, group: groupKey)
        Output.line("signers: \(keys.map { String($0.identifier.value) }.joined(separator: ", "))")
        Output.line(signature.hex)
    }
}

/// `quorumctl frost verify`: exit 0 "valid", exit 1 "invalid", exit 2 bad input.
struct FrostVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify a group signature over a message.",
        discussion: "Exit status: 0 valid, 1 invalid, 2 bad input."
    )

    @Option(help: ArgumentHelp("The signing group file (group.json).", valueName: "file"))
    var group: String

    @Option(help: ArgumentHelp("The file holding the signed message.", valueName: "file"))
    var messageFile: String

    @Option(help: ArgumentHelp("The signature, hex.", valueName: "hex"))
    var signature: String

    func run() throws {
        let (suite, bytes) = try Inputs.groupSuite(group)
        try verify(suite.type, groupBytes: bytes)
    }

    private func verify<C: Ciphersuite>(_: C.Type, groupBytes: [UInt8]) throws {
        let groupKey = try Inputs.group(groupBytes, as: C.self, file: group, purpose: .signing, command: "frost verify")
        let text = signature.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let bytes = Hex.decode(text) else {
            throw CLIError("--signature: not hex (expected \(2 * (C.elementLength + C.scalarLength)) hex digits)")
        }
        let length = C.elementLength + C.scalarLength
        guard bytes.count == length else {
            throw CLIError("--signature: \(bytes.count) bytes, a \(C.id.rawValue) signature is \(length) bytes")
        }
        let message = try Inputs.contents(of: messageFile, what: "the message")
        if C.verifySignature(bytes, message: message, publicKey: groupKey.verifyingKey) {
            Output.line("valid")
        } else {
            Output.line("invalid")
            throw ExitCode(1)
        }
    }
}
