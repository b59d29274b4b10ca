import ArgumentParser
import Foundation
import QuorumCrypto
import QuorumIdentity
import QuorumPolicy

/// `quorumctl latch …`: edit a bundle's latches and hand out tokens.
struct LatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latch",
        abstract: "Create, derive and revoke latches in a bundle file.",
        discussion: """
            Each command rewrites the bundle file with its version raised by one (in the file's \
            format; comments are not kept) and must be followed by `policy sign`. `create` and \
            `derive` print the new token once on stdout: the bundle keeps only its digest.
            """,
        subcommands: [LatchCreate.self, LatchDerive.self, LatchRevoke.self]
    )
}

/// Options shared by `create` and `derive`.
struct LatchOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The bundle file to edit (YAML or JSON).", valueName: "file"))
    var bundle: String

    @Option(help: ArgumentHelp("The new latch's id (a-z, 0-9, '-').", valueName: "id"))
    var id: String

    @Option(help: ArgumentHelp("When the latch stops working, ISO 8601.", valueName: "time"))
    var expires: String?

    @Option(help: ArgumentHelp("A label key=value; repeatable.", valueName: "key=value"))
    var label: [String] = []

    @Option(
        help: ArgumentHelp(
            "Bind the token to this client certificate (PEM or DER; RFC 8705 x5t#S256): the agent must present it to the proxy's TLS listener.",
            valueName: "file"))
    var clientCertificate: String?

    func labels() throws -> [String: String] {
        var result: [String: String] = [:]
        for pair in label {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw CLIError("--label '\(pair)': expected key=value")
            }
            result[String(parts[0])] = String(parts[1])
        }
        return result
    }

    /// Loads the bundle, builds the latch with a fresh token, writes the new version, prints the token.
    func add(_ makeLatch: (PolicyBundle, [UInt8], Date?, [String: String]) throws -> Latch) throws {
        Output.line(try issue(makeLatch).text)
    }

    /// ``add(_:)`` without printing the token: returns it instead, for a caller that keeps it
    /// elsewhere (`testnet up` writes it to a 0600 file).
    func issue(_ makeLatch: (PolicyBundle, [UInt8], Date?, [String: String]) throws -> Latch) throws -> LatchToken {
        guard Latch.isValidID(id) else {
            throw CLIError("--id '\(id)': expected 1-64 of a-z, 0-9 and '-', not starting with '-'")
        }
        let original = try Inputs.contents(of: bundle, what: "policy bundle")
        let current = try Bundles.load(bundle)
        guard current.resolvedLatch(id) == nil else {
            throw CLIError("\(bundle): latch '\(id)' already exists; revoke it or choose another id")
        }
        let token = LatchToken(
            latchID: id, randomBytes: SecretBytes.random(count: LatchToken.secretByteCount).copyBytes())
        let expiry = try expires.map { try Times.parse($0, flag: "--expires") }
        var latch = try makeLatch(current, token.secretDigest, expiry, try labels())
        if let clientCertificate {
            let summary: CertificateSummary
            do {
                summary = CertificateSummary(
                    try CertificateFiles.readCertificate(clientCertificate), source: clientCertificate)
            } catch {
                throw CLIError("--client-certificate \(clientCertificate): \(error)")
            }
            latch = Latch(
                id: latch.id, tokenDigest: latch.tokenDigest, labels: latch.labels, expires: latch.expires,
                parent: latch.parent, revoked: latch.revoked, filters: latch.filters, mounts: latch.mounts,
                certificateThumbprint: Hex.decode(summary.fingerprint))
        }
        let updated: PolicyBundle
        do {
            updated = try current.upserting(latch)
        } catch {
            throw Bundles.problems(error.problems.map { "\(bundle): \($0)" }, in: bundle)
        }
        try Bundles.write(updated, to: bundle, like: original)
        Output.error("\(bundle): latch '\(id)' added; version \(updated.version), digest \(updated.digest)")
        return token
    }
}

/// `quorumctl latch create`.
struct LatchCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Add a root latch and print its token once.",
        discussion: """
            Either copy the mounts and filters of an existing latch with --like, or give mounts \
            with --mount PATH=URL[,secret=NAME] and add filters by editing the file before signing.
            """
    )

    @OptionGroup var options: LatchOptions

    @Option(help: ArgumentHelp("A mount PATH=URL[,secret=NAME]; repeatable.", valueName: "spec"))
    var mount: [String] = []

    @Option(help: ArgumentHelp("Copy mounts and filters from this root latch.", valueName: "id"))
    var like: String?

    func run() throws {
        try options.add { bundle, digest, expiry, labels in
            if let like {
                guard let model = bundle.latches.first(where: { $0.id == like }), model.parent == nil else {
                    throw CLIError("--like '\(like)': no root latch with that id in \(options.bundle)")
                }
                guard mount.isEmpty else { throw CLIError("--like and --mount cannot be combined") }
                return Latch(
                    id: options.id, tokenDigest: digest, labels: labels, expires: expiry, filters: model.filters,
                    mounts: model.mounts)
            }
            guard !mount.isEmpty else { throw CLIError("give at least one --mount PATH=URL, or --like LATCH") }
            return Latch(
                id: options.id, tokenDigest: digest, labels: labels, expires: expiry, mounts: try mount.map(Self.mount))
        }
    }

    static func mount(_ spec: String) throws -> Mount {
        let parts = spec.split(separator: ",")
        guard let first = parts.first, let equals = first.firstIndex(of: "=") else {
            throw CLIError("--mount '\(spec)': expected PATH=URL[,secret=NAME]")
        }
        var secret: String?
        for option in parts.dropFirst() {
            guard option.hasPrefix("secret="), option.count > 7 else {
                throw CLIError("--mount '\(spec)': unknown option '\(option)'; expected secret=NAME")
            }
            secret = String(option.dropFirst(7))
        }
        return Mount(
            path: String(first[..<equals]), upstream: String(first[first.index(after: equals)...]), secret: secret,
            filters: [])
    }
}

/// `quorumctl latch derive`.
struct LatchDerive: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "derive",
        abstract: "Add a latch derived from another and print its token once.",
        discussion: """
            The child runs its parent's whole pipeline and may only narrow it: keep some mounts \
            (--mount PATH, repeatable; default all), expire no later than the parent, and add \
            filters (edit the file before signing).
            """
    )

    @OptionGroup var options: LatchOptions

    @Option(help: ArgumentHelp("The parent latch.", valueName: "id"))
    var parent: String

    @Option(help: ArgumentHelp("A mount of the parent to keep; repeatable (default: all).", valueName: "path"))
    var mount: [String] = []

    func run() throws {
        try options.add { bundle, digest, expiry, labels in
            guard let resolved = bundle.resolvedLatch(parent) else {
                throw CLIError("--parent '\(parent)': no latch with that id in \(options.bundle)")
            }
            let mounts = mount.isEmpty ? nil : mount.map { Mount(path: $0, upstream: nil, secret: nil, filters: []) }
            return Latch(
                id: options.id, tokenDigest: digest, labels: labels, expires: expiry ?? resolved.expires,
                parent: parent, mounts: mounts)
        }
    }
}

/// `quorumctl latch revoke`.
struct LatchRevoke: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke a latch and, with it, every latch derived from it."
    )

    @Option(help: ArgumentHelp("The bundle file to edit (YAML or JSON).", valueName: "file"))
    var bundle: String

    @Option(help: ArgumentHelp("The latch to revoke.", valueName: "id"))
    var id: String

    func run() throws {
        let original = try Inputs.contents(of: bundle, what: "policy bundle")
        let current = try Bundles.load(bundle)
        let updated: PolicyBundle
        do {
            updated = try current.revoking(id)
        } catch {
            throw Bundles.problems(error.problems.map { "\(bundle): \($0)" }, in: bundle)
        }
        try Bundles.write(updated, to: bundle, like: original)
        let revoked = updated.descendants(of: id)
        Output.line(
            "revoked \(revoked.joined(separator: ", ")) in \(bundle); version \(updated.version), digest \(updated.digest)"
        )
    }
}
