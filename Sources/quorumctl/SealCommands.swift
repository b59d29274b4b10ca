import ArgumentParser
import QuorumCrypto

/// `quorumctl seal`: encrypts a credential to the sealing group; k nodes are needed to open it.
struct Seal: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Seal a credential to the sealing group.",
        discussion: "The output file holds the raw bytes of the sealed box."
    )

    @Option(help: ArgumentHelp("The sealing group file (sealing-group.json).", valueName: "file"))
    var group: String

    @Option(name: .customLong("in"), help: ArgumentHelp("The plaintext file, or - for stdin.", valueName: "file"))
    var input: String

    @Option(name: .customLong("out"), help: ArgumentHelp("Where to write the sealed box.", valueName: "file"))
    var output: String

    @Option(
        help: ArgumentHelp(
            "Text bound to the box (e.g. the credential's name); must be given again to unseal.", valueName: "text"))
    var associatedData: String = ""

    func run() throws {
        let (suite, bytes) = try Inputs.groupSuite(group)
        try seal(suite.type, groupBytes: bytes)
    }

    private func seal<C: Ciphersuite>(_: C.Type, groupBytes: [UInt8]) throws {
        let groupKey = try Inputs.group(groupBytes, as: C.self, file: group, purpose: .sealing, command: "seal")
        let plaintext = try Inputs.secret(input)
        let box = try ThresholdSealing<C>.seal(plaintext, to: groupKey, associatedData: Array(associatedData.utf8))
        try KeyFiles.writePublicFile(box.bytes, to: output)
        Output.line(
            "sealed \(plaintext.count) bytes to \(output) (\(box.bytes.count) bytes) for the "
                + "\(groupKey.minSigners)-of-\(groupKey.maxSigners) sealing group")
    }
}

/// `quorumctl unseal`: opens a sealed box with k sealing shares; the plaintext goes to stdout.
struct Unseal: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open a sealed box with k sealing shares; writes the plaintext to stdout.",
        discussion: """
            Each share file yields a decryption share with its proof; the box opens only with \
            at least the threshold of valid ones. For a dealer setup and tests: in a running \
            cluster each node contributes its own decryption share.
            """
    )

    @Option(help: ArgumentHelp("The sealing group file (sealing-group.json).", valueName: "file"))
    var group: String

    @Option(
        help: ArgumentHelp(
            "A sealing share file; repeat for each participant (at least the threshold).", valueName: "file"))
    var share: [String] = []

    @Option(name: .customLong("in"), help: ArgumentHelp("The sealed box file, or - for stdin.", valueName: "file"))
    var input: String

    @Option(help: ArgumentHelp("The text given when sealing.", valueName: "text"))
    var associatedData: String = ""

    func run() throws {
        let (suite, bytes) = try Inputs.groupSuite(group)
        try unseal(suite.type, groupBytes: bytes)
    }

    private func unseal<C: Ciphersuite>(_: C.Type, groupBytes: [UInt8]) throws {
        let groupKey = try Inputs.group(groupBytes, as: C.self, file: group, purpose: .sealing, command: "unseal")
        let box = SealedBox(bytes: try Inputs.contents(of: input, what: "the sealed box"))
        let keys = try Inputs.shares(share, group: groupKey, groupFile: group)
        var shares: [DecryptionShare<C>] = []
        for key in keys {
            do {
                shares.append(try ThresholdSealing<C>.decryptionShare(for: box, key: key))
            } catch {
                throw CLIError("\(input): \(error.description)")
            }
        }
        let plaintext: SecretBytes
        do {
            plaintext = try ThresholdSealing<C>.open(
                box, shares: shares, group: groupKey, associatedData: Array(associatedData.utf8))
        } catch {
            throw CLIError("\(input): \(error.description)")
        }
        try Output.write(plaintext)
    }
}
