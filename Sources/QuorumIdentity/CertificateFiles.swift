import Crypto
import Foundation
import QuorumCrypto
import X509

/// Where a cluster's certificates live in one directory: `ca.pem` and `ca.key`, then one
/// `<stem>.pem` and `<stem>.key` per holder, the stem `node-<id>`, `proxy` or `operator`.
public struct CertificateDirectory: Sendable, Hashable {
    /// The directory.
    public let path: String

    /// A layout rooted at `path`.
    public init(_ path: String) { self.path = path }

    /// The CA certificate, public, the trust root every process loads.
    public var caCertificatePath: String { file("ca.pem") }
    /// The CA private key, 0600; needed only to issue certificates.
    public var caKeyPath: String { file("ca.key") }

    /// The default file stem for a holder: `node-3`, `proxy`, `operator`.
    public static func stem(for identity: PeerIdentity) -> String {
        switch identity {
        case .node(let id): "node-\(id)"
        case .proxy: "proxy"
        case .operator: "operator"
        }
    }

    /// The path prefix (without `.pem`/`.key`) of a holder's files in this directory.
    public func prefix(for identity: PeerIdentity) -> String { file(Self.stem(for: identity)) }

    private func file(_ name: String) -> String {
        path.hasSuffix("/") ? path + name : path + "/" + name
    }
}

/// What `certs init` makes: a CA and, from it, nodes 1…`nodes`, one proxy and one operator.
public struct ClusterCertificatesPlan: Sendable, Hashable {
    /// How many node certificates, ids 1…`nodes`.
    public var nodes: Int
    /// Host names for every node and the proxy certificate.
    public var hosts: [HostName]
    /// Validity of each leaf, in days.
    public var leafValidityDays: Int
    /// Validity of the CA, in days.
    public var caValidityDays: Int
    /// The name in the operator certificate.
    public var operatorName: String

    /// The operator name `certs init` uses unless told otherwise.
    public static let defaultOperatorName = "admin"

    /// A plan with the defaults: loopback hosts, leaves for a year, the CA for ten.
    public init(
        nodes: Int, hosts: [HostName] = HostName.loopback, leafValidityDays: Int = LeafRequest.defaultValidityDays,
        caValidityDays: Int = ClusterCA.defaultValidityDays, operatorName: String = defaultOperatorName
    ) {
        self.nodes = nodes
        self.hosts = hosts
        self.leafValidityDays = leafValidityDays
        self.caValidityDays = caValidityDays
        self.operatorName = operatorName
    }
}

/// One certificate and its key as written to disk.
public struct WrittenCertificate: Sendable, Hashable {
    /// `cluster CA`, `node 3`, `proxy`, `operator admin`.
    public let holder: String
    /// The PEM certificate (0644).
    public let certificatePath: String
    /// The PKCS#8 PEM key (0600).
    public let keyPath: String
    /// When the certificate expires.
    public let notValidAfter: Date
}

/// Reading and writing certificate and key files: certificates as PEM with mode 0644, keys as
/// PKCS#8 PEM written 0600 atomically through `KeyFiles.writeSecretFile`. Nothing is overwritten
/// unless the caller says `force`, and every target is checked before the first file is written,
/// so a refusal leaves the directory as it was.
public enum CertificateFiles {
    /// Reads one certificate, PEM or DER, naming `path` in every error.
    ///
    /// A key file given by mistake is refused before its text is copied anywhere, and the bytes
    /// read are wiped.
    public static func readCertificate(_ path: String) throws(IdentityError) -> Certificate {
        var bytes: [UInt8]
        do { bytes = try KeyFiles.readFile(path) } catch { throw IdentityError(.io, input: path, error.reason) }
        defer { PEMFiles.wipe(&bytes) }
        if bytes.first == 0x30 { return try ClusterIdentity.certificate(der: bytes, source: path) }
        let marker = Array("PRIVATE KEY-----".utf8)
        if bytes.count >= marker.count,
            (0...(bytes.count - marker.count)).contains(where: { start in
                bytes[start..<(start + marker.count)].elementsEqual(marker)
            })
        {
            throw IdentityError(.malformed, input: path, "holds a PEM PRIVATE KEY; expected a CERTIFICATE")
        }
        return try ClusterIdentity.certificate(pem: String(decoding: bytes, as: UTF8.self), source: path)
    }

    /// Checks that a PKCS#8 PEM private key is the key of `certificate`: a node or proxy started
    /// with a mismatched pair fails its first handshake, so tools (`quorumctl doctor`) say so
    /// before. The key is parsed in zeroizing memory and never quoted.
    ///
    /// - Throws: ``IdentityError`` `.malformed` for a key that is not P-256 PKCS#8 PEM, and
    ///   `.keyMismatch` naming both files for another certificate's key.
    public static func checkKeyPair(
        certificate: Certificate, privateKeyPEM: SecretBytes, certificateSource: String, keySource: String
    ) throws(IdentityError) {
        let key = try PEMFiles.privateKey(fromPEM: privateKeyPEM, source: keySource)
        guard Certificate.PublicKey(key.publicKey) == certificate.publicKey else {
            throw IdentityError(
                .keyMismatch, input: keySource,
                "is not the private key of \(certificateSource); use the key issued with the certificate")
        }
    }

    /// Loads the CA of a certificate directory (`ca.pem` and `ca.key`).
    public static func readCA(in directory: CertificateDirectory) throws(IdentityError) -> ClusterCA {
        let certificate = try readCertificate(directory.caCertificatePath)
        let key: SecretBytes
        do { key = try KeyFiles.readSecretFile(directory.caKeyPath) } catch {
            throw IdentityError(.io, input: directory.caKeyPath, error.reason)
        }
        return try ClusterCA(
            certificate: certificate, privateKeyPEM: key, certificateSource: directory.caCertificatePath,
            keySource: directory.caKeyPath)
    }

    /// Writes a leaf to `prefix.pem` and `prefix.key`.
    @discardableResult
    public static func write(
        _ issued: IssuedCertificate, prefix: String, force: Bool
    ) throws(IdentityError) -> WrittenCertificate {
        if !force { try refuseExisting([prefix + ".pem", prefix + ".key"]) }
        return try writeLeaf(issued, prefix: prefix)
    }

    /// Makes a new cluster's certificates in `directory`, creating it if needed, and returns what
    /// it wrote, CA first.
    ///
    /// Refuses (before writing anything) a node count outside 1…65535 and, unless `force`, any
    /// file of the layout that already exists.
    @discardableResult
    public static func initialize(
        _ directory: CertificateDirectory, plan: ClusterCertificatesPlan, force: Bool, now: Date = Date()
    ) throws(IdentityError) -> [WrittenCertificate] {
        guard PeerIdentity.nodeIDs.contains(plan.nodes) else {
            throw IdentityError(
                .invalidNodeID, input: "\(plan.nodes) nodes", "a cluster has 1-65535 nodes (ids 1..N)")
        }
        var requests = try (1...plan.nodes).map { (id) throws(IdentityError) in
            LeafRequest(identity: try .node(id), hosts: plan.hosts, validityDays: plan.leafValidityDays)
        }
        requests.append(LeafRequest(identity: .proxy, hosts: plan.hosts, validityDays: plan.leafValidityDays))
        requests.append(
            LeafRequest(
                identity: try .operatorNamed(plan.operatorName), hosts: [], validityDays: plan.leafValidityDays))

        let prefixes = requests.map { directory.prefix(for: $0.identity) }
        let paths =
            [directory.caCertificatePath, directory.caKeyPath] + prefixes.flatMap { [$0 + ".pem", $0 + ".key"] }
        if !force { try refuseExisting(paths) }

        // Issue everything in memory first, so a bad request fails before any file is written.
        let ca = try ClusterCA.generate(validityDays: plan.caValidityDays, now: now)
        let issued = try requests.map { (request) throws(IdentityError) in try ca.issue(request, now: now) }

        do {
            try FileManager.default.createDirectory(atPath: directory.path, withIntermediateDirectories: true)
        } catch {
            throw IdentityError(
                .io, input: directory.path, "cannot create the directory (\(error.localizedDescription))")
        }
        try writeSecret(ca.privateKeyPEM(), to: directory.caKeyPath)
        try writePublic(try PEMFiles.pem(of: ca.certificate, source: "cluster CA"), to: directory.caCertificatePath)
        var written = [
            WrittenCertificate(
                holder: "cluster CA", certificatePath: directory.caCertificatePath, keyPath: directory.caKeyPath,
                notValidAfter: ca.certificate.notValidAfter)
        ]
        for (leaf, prefix) in zip(issued, prefixes) { written.append(try writeLeaf(leaf, prefix: prefix)) }
        return written
    }

    private static func writeLeaf(
        _ issued: IssuedCertificate, prefix: String
    ) throws(IdentityError) -> WrittenCertificate {
        try writeSecret(issued.privateKeyPEM(), to: prefix + ".key")
        try writePublic(try issued.certificatePEM(), to: prefix + ".pem")
        return WrittenCertificate(
            holder: issued.identity.description, certificatePath: prefix + ".pem", keyPath: prefix + ".key",
            notValidAfter: issued.certificate.notValidAfter)
    }

    private static func writeSecret(_ contents: SecretBytes, to path: String) throws(IdentityError) {
        do { try KeyFiles.writeSecretFile(contents, to: path) } catch {
            throw IdentityError(.io, input: path, error.reason)
        }
    }

    private static func writePublic(_ text: String, to path: String) throws(IdentityError) {
        do { try KeyFiles.writePublicFile(Array(text.utf8), to: path) } catch {
            throw IdentityError(.io, input: path, error.reason)
        }
    }

    /// Refuses if any of `paths` exists (a dangling symlink counts).
    static func refuseExisting(_ paths: [String]) throws(IdentityError) {
        let existing = paths.filter { path in
            var status = stat()
            return lstat(path, &status) == 0
        }
        guard let first = existing.first else { return }
        let more = existing.count > 1 ? " (and \(existing.count - 1) more)" : ""
        throw IdentityError(
            .fileExists, input: first,
            "already exists\(more); refusing to overwrite certificates or keys (pass --force to replace them)")
    }
}
