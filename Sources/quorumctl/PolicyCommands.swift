import ArgumentParser
import Foundation
import QuorumCrypto
import QuorumPolicy

/// `quorumctl policy …`: write, check, sign and try out policy bundles offline.
struct Policy: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate, sign, evaluate and push policy bundles.",
        subcommands: [PolicyValidate.self, PolicyKeygen.self, PolicySign.self, PolicyEval.self, PolicyPush.self]
    )
}

/// Reading bundles, plain or signed, with every problem listed.
enum Bundles {
    /// The role written in an operator key file.
    static let operatorRole = "operator"

    /// Decodes a plain bundle file, or opens a signed one. A signed bundle is checked against
    /// `signers` when given; otherwise against the key it names, which proves only integrity, so
    /// a note says so.
    static func load(_ path: String, signers: [String] = []) throws -> PolicyBundle {
        let bytes = try Inputs.contents(of: path, what: "policy bundle")
        guard isSigned(bytes) else {
            do {
                return try BundleDocument.decode(bytes, fileName: path)
            } catch {
                throw problems(error.problems.map(\.description), in: path)
            }
        }
        var trusted: [[UInt8]] = []
        for signer in signers {
            guard let key = Hex.decode(signer), key.count == 32 else {
                throw CLIError("--signer '\(signer)': expected an operator public key as 64 hex digits")
            }
            trusted.append(key)
        }
        if trusted.isEmpty {
            guard let stated = SignedBundle.statedSigner(bytes) else {
                throw CLIError("\(path): signed bundle without a valid 'signer' field")
            }
            Output.error(
                "note: \(path): signature checked against the key it names; pass --signer to require a trusted key")
            trusted = [stated]
        }
        do {
            return try SignedBundle.open(bytes, fileName: path, trustedSigners: trusted, newerThan: nil)
        } catch {
            throw problems([error.description], in: path)
        }
    }

    /// Whether `bytes` look like a signed-bundle envelope.
    static func isSigned(_ bytes: [UInt8]) -> Bool {
        guard let value = try? JSONParser().parse(bytes), case .string(let format)? = value["format"] else {
            return false
        }
        return format == SignedBundle.format
    }

    /// Prints every problem on its own line and exits 2.
    static func problems(_ lines: [String], in path: String) -> any Error {
        for line in lines { Output.error(line) }
        Output.error("quorumctl: error: \(path): \(lines.count) problem\(lines.count == 1 ? "" : "s")")
        return ExitCode(2)
    }

    /// Writes `bundle` back to `path` in the format the file had (JSON if it starts with `{`).
    static func write(_ bundle: PolicyBundle, to path: String, like original: [UInt8]) throws {
        let json = original.first { ![0x20, 0x09, 0x0a, 0x0d].contains($0) } == UInt8(ascii: "{")
        let text = BundleDocument.render(bundle, as: json ? .json : .yaml)
        try KeyFiles.writePublicFile(Array(text.utf8), to: path)
    }
}

/// `quorumctl policy validate FILE`.
struct PolicyValidate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a bundle; list every problem with file, line, field and what would be valid.",
        discussion: "Exit status 0 when the bundle is valid, 2 with every problem listed on stderr."
    )

    @Argument(help: ArgumentHelp("The bundle (YAML, JSON, or a signed bundle).", valueName: "file"))
    var file: String

    @Option(
        help: ArgumentHelp("For a signed bundle: a trusted operator public key (hex); repeatable.", valueName: "hex"))
    var signer: [String] = []

    func run() throws {
        let bundle = try Bundles.load(file, signers: signer)
        Output.line(
            "\(file): valid: version \(bundle.version), \(bundle.latches.count) latch\(bundle.latches.count == 1 ? "" : "es"), "
                + "\(bundle.secrets.count) secret\(bundle.secrets.count == 1 ? "" : "s"), digest \(bundle.digest)")
    }
}

/// `quorumctl policy keygen --out FILE`.
struct PolicyKeygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make an operator Ed25519 key for signing bundles.",
        discussion: "The key file is written 0600; the public key (what nodes trust) is printed."
    )

    @Option(name: .customLong("out"), help: ArgumentHelp("Where to write the secret key file.", valueName: "file"))
    var output: String

    func run() throws {
        Output.line(Hex.encode(try Self.generate(to: output)))
    }

    /// Writes a fresh operator key to `path` (0600) and returns its public key: shared with
    /// `testnet up`, which makes the testnet's operator key the same way.
    static func generate(to path: String) throws -> [UInt8] {
        let key = Ed25519KeyPair()
        try KeyFiles.writeSecretFile(KeyFiles.encodeEd25519Key(key, role: Bundles.operatorRole), to: path)
        return key.publicKey
    }
}

/// `quorumctl policy sign FILE --key KEY --out FILE`.
struct PolicySign: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Sign a valid bundle with an operator key.",
        discussion: "The signed bundle holds the canonical form; nodes accept it only with a higher version."
    )

    @Argument(help: ArgumentHelp("The bundle (YAML or JSON).", valueName: "file"))
    var file: String

    @Option(help: ArgumentHelp("The operator key file (from `policy keygen`).", valueName: "file"))
    var key: String

    @Option(name: .customLong("out"), help: ArgumentHelp("Where to write the signed bundle.", valueName: "file"))
    var output: String

    func run() throws {
        let operatorKey = try KeyFiles.decodeEd25519Key(
            try KeyFiles.readSecretFile(key), role: Bundles.operatorRole, file: key)
        let bundle = try Bundles.load(file)
        try KeyFiles.writePublicFile(SignedBundle.sign(bundle, with: operatorKey), to: output)
        Output.line("signed version \(bundle.version) (\(bundle.digest)) by \(Hex.encode(operatorKey.publicKey))")
    }
}

/// `quorumctl policy eval --bundle FILE --request FILE [--at T] [--state FILE]`.
struct PolicyEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate one request against a bundle and print the verdict as JSON.",
        discussion: """
            The request file is JSON: method, path, query (optional), headers (an object of \
            strings or lists of strings), body (text) or body_base64, client_address, token, \
            client_certificate_sha256 (hex, the certificate the agent presented; optional), and \
            request_id (optional). With --state, rate windows and budgets are read from the file \
            and the verdict's state changes written back, so a sequence of calls can be played. \
            Exit status 0 for allow, 1 for deny, 2 for bad input.
            """
    )

    @Option(help: ArgumentHelp("The bundle (YAML, JSON, or signed).", valueName: "file"))
    var bundle: String

    @Option(help: ArgumentHelp("The request file (JSON).", valueName: "file"))
    var request: String

    @Option(help: ArgumentHelp("The evaluation time, ISO 8601 (default: now).", valueName: "time"))
    var at: String?

    @Option(help: ArgumentHelp("A state file to read and update (created if missing).", valueName: "file"))
    var state: String?

    @Option(
        help: ArgumentHelp("For a signed bundle: a trusted operator public key (hex); repeatable.", valueName: "hex"))
    var signer: [String] = []

    func run() throws {
        let policy = try Bundles.load(bundle, signers: signer)
        let decision = try RequestFile.decode(try Inputs.contents(of: request, what: "request"), file: request)
        let instant = try at.map { try Times.parse($0, flag: "--at") } ?? Date()
        var current = try state.map(StateFile.read) ?? PolicyState()
        let verdict = PolicyEngine(bundle: policy).evaluate(decision, state: current, at: instant)
        if let state {
            current.apply(verdict.stateChanges)
            try StateFile.write(current, to: state)
        }
        Output.line(verdict.jsonValue.prettyText)
        if verdict.decision == .deny { throw ExitCode(1) }
    }
}

/// The JSON request file of `policy eval`.
enum RequestFile {
    static func decode(_ bytes: [UInt8], file: String) throws -> DecisionRequest {
        let value: JSONValue
        do { value = try JSONParser().parse(bytes) } catch { throw CLIError("\(file): \(error.description)") }
        guard case .object(let members) = value else { throw CLIError("\(file): expected a JSON object") }
        let known: Set = [
            "request_id", "method", "path", "query", "headers", "body", "body_base64", "client_address", "token",
            "client_certificate_sha256",
        ]
        if let unknown = members.first(where: { !known.contains($0.key) }) {
            throw CLIError(
                "\(file): unknown field '\(unknown.key)'; expected \(known.sorted().joined(separator: ", "))")
        }
        func string(_ key: String, required: Bool = true) throws -> String? {
            switch value[key] {
            case .string(let text)?: return text
            case nil where !required: return nil
            case nil: throw CLIError("\(file): missing field '\(key)' (a string)")
            default: throw CLIError("\(file): field '\(key)' must be a string")
            }
        }
        var headers: [HeaderField] = []
        switch value["headers"] {
        case nil: break
        case .object(let fields)?:
            for field in fields {
                switch field.value {
                case .string(let text): headers.append(HeaderField(name: field.key, value: text))
                case .array(let items):
                    for item in items {
                        guard case .string(let text) = item else {
                            throw CLIError("\(file): header '\(field.key)' must be a string or a list of strings")
                        }
                        headers.append(HeaderField(name: field.key, value: text))
                    }
                default: throw CLIError("\(file): header '\(field.key)' must be a string or a list of strings")
                }
            }
        default: throw CLIError("\(file): field 'headers' must be an object")
        }
        var body: [UInt8] = []
        if let text = try string("body", required: false) { body = Array(text.utf8) }
        if let encoded = try string("body_base64", required: false) {
            guard value["body"] == nil else { throw CLIError("\(file): give 'body' or 'body_base64', not both") }
            guard let data = Data(base64Encoded: encoded) else {
                throw CLIError("\(file): field 'body_base64' is not base64")
            }
            body = Array(data)
        }
        let path = try string("path")!
        let query = try string("query", required: false)
        let target = query.map { path + "?" + $0 } ?? path
        var thumbprint: [UInt8]?
        if let text = try string("client_certificate_sha256", required: false) {
            guard let bytes = Hex.decode(text), bytes.count == 32 else {
                throw CLIError(
                    "\(file): field 'client_certificate_sha256' must be 64 hex digits (`certs show` prints it as the fingerprint)"
                )
            }
            thumbprint = bytes
        }
        return DecisionRequest(
            requestID: try string("request_id", required: false) ?? "eval-\(Hex.encode(sha256Digest(bytes).prefix(8)))",
            method: try string("method")!, target: target, headers: headers, body: body,
            clientAddress: try string("client_address")!, token: try string("token", required: false) ?? "",
            clientCertificateSHA256: thumbprint)
    }
}

/// The `--state` file: `PolicyState` as JSON.
enum StateFile {
    static func read(_ path: String) throws -> PolicyState {
        guard FileManager.default.fileExists(atPath: path) else { return PolicyState() }
        let bytes = try KeyFiles.readFile(path)
        do {
            return try JSONDecoder().decode(PolicyState.self, from: Data(bytes))
        } catch {
            throw CLIError("\(path): not a policy state file (\(error.localizedDescription))")
        }
    }

    static func write(_ state: PolicyState, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try KeyFiles.writePublicFile(Array(try encoder.encode(state)), to: path)
    }
}

/// ISO 8601 times on the command line.
enum Times {
    static func parse(_ text: String, flag: String) throws -> Date {
        if let date = try? Date(text, strategy: .iso8601) { return date }
        throw CLIError("\(flag) '\(text)': expected an ISO 8601 time such as 2026-11-23T14:00:00Z")
    }
}
