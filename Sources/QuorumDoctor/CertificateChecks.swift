import Foundation
import QuorumCrypto
import QuorumIdentity
import X509

/// The checks of one process's mutual-TLS files, shared by the node's `[tls]` and the proxy's
/// `[cluster]`: the CA, the certificate (identity, chain, usage, expiry) and its private key
/// (mode, owner, that it is the certificate's).
struct CertificateChecks {
    /// The configuration file, for fixes that name it.
    let configFile: String
    /// The table the keys live in: `tls` (node) or `cluster` (proxy).
    let table: String
    /// Who the certificate must name.
    let expected: PeerIdentity
    /// The TLS sides the holder plays: a node serves and dials, a proxy only dials.
    let usages: [TLSUsage]
    /// When the checks run.
    let now: Date
    /// How soon an expiry is warned about.
    let expiryWarning: TimeInterval
    /// The user the key files must belong to.
    let owner: uid_t
    /// Who that is, for messages (`the node's user quorum (uid 998)`).
    let ownerDescription: String

    /// `quorumctl certs issue … --role node --id 3 --force`, and where the files go.
    func reissue(_ certificatePath: String, _ keyPath: String) -> String {
        let role: String
        switch expected {
        case .node(let id): role = "--role node --id \(id)"
        case .proxy: role = "--role proxy"
        case .operator(let name): role = "--role operator --name \(name)"
        }
        let stem = CertificateDirectory.stem(for: expected)
        return "quorumctl certs issue --ca-dir <the cluster's CA directory> \(role) --force (with its --host names), "
            + "then copy \(stem).pem to \(certificatePath) and \(stem).key to \(keyPath) and restart"
    }

    /// The cluster CA file: readable, a CA certificate, within its validity.
    func checkCA(_ path: String) -> (DoctorFinding, Certificate?) {
        let key = "\(table).cluster_ca"
        let certificate: Certificate
        do { certificate = try CertificateFiles.readCertificate(path) } catch {
            return (unreadable(key, path, error, what: "the cluster's ca.pem"), nil)
        }
        do { try ClusterIdentity.checkCertificateAuthority(certificate, source: path) } catch {
            return (
                .fail(
                    key, error.description,
                    fix: "set \(key) in \(configFile) to the cluster CA certificate (ca.pem from quorumctl certs init)"),
                nil
            )
        }
        let rotate = "rotate the CA (docs/operations.md, Rotating the CA)"
        if let finding = validity(key, path, certificate, what: "the cluster CA", renew: rotate) {
            return (finding, certificate)
        }
        return (
            .ok(key, "\(path): cluster CA '\(certificate.subject)', \(expiry(certificate))"), certificate
        )
    }

    /// The certificate: readable, names ``expected``, issued by `ca`, usable for every side in
    /// ``usages``, within its validity (a warn when it ends within ``expiryWarning``).
    func checkCertificate(_ path: String, keyPath: String, ca: Certificate?) async -> (DoctorFinding, Certificate?) {
        let key = "\(table).certificate"
        let read = await BlockingIO.run { () -> Result<Certificate, IdentityError> in
            do throws(IdentityError) { return .success(try CertificateFiles.readCertificate(path)) } catch {
                return .failure(error)
            }
        }
        let certificate: Certificate
        switch read {
        case .success(let found): certificate = found
        case .failure(let error): return (unreadable(key, path, error, what: "\(expected)'s certificate"), nil)
        }
        let identity: PeerIdentity
        do { identity = try ClusterIdentity.identity(of: certificate, source: path) } catch {
            return (.fail(key, error.description, fix: reissue(path, keyPath)), certificate)
        }
        guard identity == expected else {
            let fix: String
            if case .node(let id) = expected {
                fix =
                    "give node \(id)'s certificate (node-\(id).pem) in \(key), or fix node_id in \(configFile); "
                    + "to make one: \(reissue(path, keyPath))"
            } else {
                fix = "give the \(expected) certificate in \(key) (\(reissue(path, keyPath)))"
            }
            return (
                .fail(
                    key, "\(path) is the certificate of \(identity), but \(configFile) expects \(expected)", fix: fix),
                certificate
            )
        }
        guard let ca else {
            return (
                .warn(
                    key, "\(path): \(identity), \(expiry(certificate)); chain not checked: the cluster CA did not load",
                    fix: "fix \(table).cluster_ca first (see its line)"),
                certificate
            )
        }
        for usage in usages {
            do {
                _ = try await ClusterIdentity.verify(
                    leaf: certificate, against: ca, at: now, usage: usage, source: path)
            } catch {
                return (.fail(key, error.description, fix: chainFix(error, path: path, keyPath: keyPath)), certificate)
            }
        }
        if let finding = validity(
            key, path, certificate, what: "\(identity)'s certificate", renew: reissue(path, keyPath))
        {
            return (finding, certificate)
        }
        return (
            .ok(key, "\(path): \(identity), issued by the cluster CA, \(expiry(certificate))"), certificate
        )
    }

    /// The private key: a regular file readable here, not readable by group or others, owned by
    /// ``owner``, and the key of `certificate`.
    func checkPrivateKey(_ path: String, certificatePath: String, certificate: Certificate?) -> DoctorFinding {
        let key = "\(table).private_key"
        var problems: [String] = []
        var fixes: [String] = []
        switch SecretFileCheck.inspect(path, owner: owner, ownerDescription: ownerDescription) {
        case .missing(let reason):
            return .fail(
                key, "\(path): \(reason)",
                fix:
                    "copy the key issued with \(certificatePath) to \(path) (mode 0600), or fix \(key) in \(configFile)"
            )
        case .problems(let found, let fixing):
            problems += found
            fixes += fixing
        }
        if HostFacts.canAccess(path) {
            do {
                let pem = try KeyFiles.readSecretFile(path)
                if let certificate {
                    try CertificateFiles.checkKeyPair(
                        certificate: certificate, privateKeyPEM: pem, certificateSource: certificatePath,
                        keySource: path)
                }
            } catch let error as IdentityError {
                problems.append(error.description)
                fixes.append(reissue(certificatePath, path))
            } catch {
                problems.append("\(path): cannot read: \(error)")
                fixes.append("run doctor as the user the process runs as")
            }
        } else {
            problems.append("\(path): not readable by this user (uid \(HostFacts.effectiveUser))")
            fixes.append("run doctor as \(ownerDescription) (sudo -u <user> quorumctl doctor …)")
        }
        guard problems.isEmpty else {
            return .fail(key, problems.joined(separator: "; "), fix: fixes.joined(separator: "; "))
        }
        return .ok(
            key,
            "\(path): mode 0600, owned by \(ownerDescription)\(certificate == nil ? "" : "; the key of \(certificatePath)")"
        )
    }

    /// `expires 2027-05-01 (364 days)`.
    func expiry(_ certificate: Certificate) -> String {
        "expires \(Self.day(certificate.notValidAfter)) (\(Self.days(from: now, to: certificate.notValidAfter)) days)"
    }

    private func validity(
        _ key: String, _ path: String, _ certificate: Certificate, what: String, renew: String
    ) -> DoctorFinding? {
        if now < certificate.notValidBefore {
            return .fail(
                key, "\(path): \(what) is not valid before \(Self.timestamp(certificate.notValidBefore))",
                fix: "check this host's clock (timedatectl; chronyc tracking), or \(renew)")
        }
        if now > certificate.notValidAfter {
            return .fail(
                key, "\(path): \(what) expired at \(Self.timestamp(certificate.notValidAfter)); every peer refuses it",
                fix: renew)
        }
        if certificate.notValidAfter.timeIntervalSince(now) < expiryWarning {
            return .warn(
                key,
                "\(path): \(what) expires in \(Self.days(from: now, to: certificate.notValidAfter)) days, at "
                    + "\(Self.timestamp(certificate.notValidAfter))",
                fix: "renew it before then: \(renew)")
        }
        return nil
    }

    private func chainFix(_ error: IdentityError, path: String, keyPath: String) -> String {
        switch error.code {
        case .foreignCA:
            "issue it from this cluster's CA (\(reissue(path, keyPath))), or point \(table).cluster_ca in "
                + "\(configFile) at the CA that issued it"
        case .notYetValid: "check this host's clock (timedatectl; chronyc tracking), or \(reissue(path, keyPath))"
        default: reissue(path, keyPath)
        }
    }

    private func unreadable(_ key: String, _ path: String, _ error: IdentityError, what: String) -> DoctorFinding {
        if error.code == .io {
            return .fail(
                key, error.description, fix: "copy \(what) to \(path), or set \(key) in \(configFile) to where it is")
        }
        return .fail(key, error.description, fix: "set \(key) in \(configFile) to \(what) (PEM)")
    }

    static func days(from now: Date, to end: Date) -> Int { Int((end.timeIntervalSince(now) / 86400).rounded(.down)) }

    static func day(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day())
    }

    static func timestamp(_ date: Date) -> String { date.formatted(.iso8601) }
}

/// The mode and owner of a file that holds a secret (a TLS key, a key share, an identity key).
enum SecretFileCheck {
    /// What was found.
    enum Outcome {
        /// The file cannot be looked at.
        case missing(String)
        /// Problems (empty when none) and their fixes.
        case problems([String], [String])
    }

    /// Checks that `path` is a regular file, mode 0600 or stricter, owned by `owner`.
    static func inspect(_ path: String, owner: uid_t, ownerDescription: String) -> Outcome {
        let status: HostFacts.FileStatus
        switch HostFacts.status(path) {
        case .success(let found): status = found
        case .failure(let problem): return .missing(problem.isMissing ? "does not exist" : problem.reason)
        }
        guard status.isRegular else { return .missing("is not a regular file") }
        var problems: [String] = []
        var fixes: [String] = []
        if status.isWiderThanOwner {
            problems.append("\(path): mode \(status.octalMode) lets group or others read a secret key")
            fixes.append("chmod 600 \(path)")
        }
        if status.owner != owner {
            problems.append(
                "\(path): owned by \(HostFacts.describe(user: status.owner)), not by \(ownerDescription)")
            fixes.append("chown \(HostFacts.userName(owner) ?? String(owner)) \(path)")
        }
        return .problems(problems, fixes)
    }
}
