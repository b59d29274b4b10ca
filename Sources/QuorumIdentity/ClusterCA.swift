import Crypto
import Foundation
import QuorumCrypto
import SwiftASN1
import X509

/// What a new leaf certificate should say: who holds it, which host names it is valid for, and
/// for how long.
public struct LeafRequest: Sendable, Hashable {
    /// The identity the certificate carries.
    public var identity: PeerIdentity
    /// DNS names and addresses for TLS hostname verification; nodes and proxies only.
    public var hosts: [HostName]
    /// Days from issue until the certificate expires.
    public var validityDays: Int

    /// How long a leaf is valid by default: one year.
    public static let defaultValidityDays = 365

    /// A request with `hosts` defaulting to ``HostName/loopback`` for nodes and proxies and to none
    /// for operators, whose certificates are client-only.
    public init(identity: PeerIdentity, hosts: [HostName]? = nil, validityDays: Int = defaultValidityDays) {
        self.identity = identity
        self.hosts = hosts ?? (identity.role == .operator ? [] : HostName.loopback)
        self.validityDays = validityDays
    }
}

/// A freshly issued leaf certificate and its private key.
///
/// Prints as its identity and subject only; the key leaves this value only as zeroizing PEM
/// bytes (``privateKeyPEM()``) for a 0600 file.
public struct IssuedCertificate: Sendable, CustomStringConvertible {
    /// The signed certificate.
    public let certificate: Certificate
    /// The identity it carries.
    public let identity: PeerIdentity
    let privateKey: P256.Signing.PrivateKey

    /// The certificate as one PEM `CERTIFICATE` block.
    public func certificatePEM() throws(IdentityError) -> String {
        try PEMFiles.pem(of: certificate, source: identity.commonName)
    }

    /// The private key as PKCS#8 PEM (`PRIVATE KEY`) in zeroizing memory.
    public func privateKeyPEM() -> SecretBytes { PEMFiles.privateKeyPEM(privateKey) }

    /// `node 3 (CN=node-3,…)`; never the key.
    public var description: String { "\(identity) (\(certificate.subject))" }
}

/// The cluster's certificate authority: a self-signed P-256 CA certificate (CA:true, pathLen 0,
/// keyCertSign and cRLSign) and its private key, which issues every node, proxy and operator
/// certificate.
///
/// P-256 ECDSA rather than Ed25519: every TLS 1.3 stack, BoringSSL under swift-nio-ssl included,
/// accepts `ecdsa_secp256r1_sha256` certificates, and swift-crypto makes the keys.
public struct ClusterCA: Sendable, CustomStringConvertible {
    /// The CA certificate: the trust root every cluster process loads.
    public let certificate: Certificate
    let privateKey: P256.Signing.PrivateKey

    /// How long a new CA is valid by default: ten years.
    public static let defaultValidityDays = 3650
    /// The longest validity accepted for any certificate: a hundred years.
    public static let maximumValidityDays = 36500
    /// Certificates start this long before the moment they are made, so a peer whose clock is a
    /// little behind does not refuse them as not yet valid.
    public static let backdating: TimeInterval = 300

    /// The organisation in every subject.
    public static let organization = "Quorum Latch"

    /// Makes a new CA with a fresh key. Its common name ends in the first bytes of its key
    /// identifier, so the CAs of two clusters can be told apart by name.
    public static func generate(
        validityDays: Int = defaultValidityDays, now: Date = Date()
    ) throws(IdentityError) -> ClusterCA {
        try checkDays(validityDays, input: "CA validity")
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        let keyID = SubjectKeyIdentifier(hash: publicKey)
        let tag = keyID.keyIdentifier.prefix(4).map { String(format: "%02x", $0) }.joined()
        do {
            let name = try DistinguishedName {
                OrganizationName(organization)
                CommonName("Quorum Latch cluster CA \(tag)")
            }
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                keyID
                AuthorityKeyIdentifier(keyIdentifier: keyID.keyIdentifier)
            }
            let certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
                notValidBefore: now - backdating, notValidAfter: now + Double(validityDays) * 86400,
                issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
                issuerPrivateKey: Certificate.PrivateKey(key))
            return ClusterCA(certificate: certificate, privateKey: key)
        } catch {
            throw IdentityError(.malformed, input: "cluster CA", "could not be made (\(error))")
        }
    }

    init(certificate: Certificate, privateKey: P256.Signing.PrivateKey) {
        self.certificate = certificate
        self.privateKey = privateKey
    }

    /// Loads a CA from its certificate and its PKCS#8 PEM key, refusing a certificate that is not
    /// a CA and a key that is not the certificate's.
    public init(
        certificate: Certificate, privateKeyPEM: SecretBytes, certificateSource: String = "ca.pem",
        keySource: String = "ca.key"
    ) throws(IdentityError) {
        try ClusterIdentity.checkCertificateAuthority(certificate, source: certificateSource)
        let key = try PEMFiles.privateKey(fromPEM: privateKeyPEM, source: keySource)
        guard Certificate.PublicKey(key.publicKey) == certificate.publicKey else {
            throw IdentityError(
                .keyMismatch, input: keySource,
                "is not the private key of \(certificateSource); use the pair made together")
        }
        self.init(certificate: certificate, privateKey: key)
    }

    /// The CA key as PKCS#8 PEM in zeroizing memory, for a 0600 file.
    public func privateKeyPEM() -> SecretBytes { PEMFiles.privateKeyPEM(privateKey) }

    /// The CA's subject; never the key.
    public var description: String { "cluster CA (\(certificate.subject))" }

    /// Issues a leaf certificate with a fresh P-256 key.
    ///
    /// Nodes and proxies get `serverAuth` and `clientAuth` (they accept and make connections),
    /// operators `clientAuth` only. Refuses a request whose validity would outlive the CA, a CA that
    /// is not valid at `now`, host names on an operator certificate, and identities that would not
    /// parse back (node id 0, a bad operator name).
    public func issue(_ request: LeafRequest, now: Date = Date()) throws(IdentityError) -> IssuedCertificate {
        let identity = request.identity
        switch identity {
        case .node(let id): _ = try PeerIdentity.node(Int(id))
        case .operator(let name): try PeerIdentity.checkName(name)
        case .proxy: break
        }
        try Self.checkDays(request.validityDays, input: "validity")
        try ClusterIdentity.checkValidity(of: certificate, at: now, source: "cluster CA")
        let notAfter = now + Double(request.validityDays) * 86400
        guard notAfter <= certificate.notValidAfter else {
            let left = Int(certificate.notValidAfter.timeIntervalSince(now) / 86400)
            throw IdentityError(
                .invalidValidity, input: "validity \(request.validityDays) days",
                "the cluster CA expires at \(ClusterIdentity.timestamp(certificate.notValidAfter)); a certificate cannot outlive it, so at most \(left) days (or rotate the CA)"
            )
        }
        if identity.role == .operator, let host = request.hosts.first {
            throw IdentityError(
                .invalidHost, input: "host '\(host)'", "operator certificates are client-only and carry no host names")
        }

        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        let names: [GeneralName] =
            [.uniformResourceIdentifier(identity.uri)]
            + request.hosts.map { host in
                switch host {
                case .dns(let name): .dnsName(name)
                case .ip(let bytes): .ipAddress(ASN1OctetString(contentBytes: bytes[...]))
                }
            }
        let usages: [ExtendedKeyUsage.Usage] = identity.role == .operator ? [.clientAuth] : [.serverAuth, .clientAuth]
        do {
            let authorityKeyID = try certificate.extensions.subjectKeyIdentifier?.keyIdentifier
            let subject = try DistinguishedName {
                OrganizationName(Self.organization)
                OrganizationalUnitName(identity.role.rawValue)
                CommonName(identity.commonName)
            }
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage(usages)
                SubjectAlternativeNames(names)
                SubjectKeyIdentifier(hash: publicKey)
                AuthorityKeyIdentifier(
                    keyIdentifier: authorityKeyID ?? SubjectKeyIdentifier(hash: certificate.publicKey).keyIdentifier)
            }
            let leaf = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
                notValidBefore: max(now - Self.backdating, certificate.notValidBefore), notValidAfter: notAfter,
                issuer: certificate.subject,
                subject: subject, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
                issuerPrivateKey: Certificate.PrivateKey(privateKey))
            return IssuedCertificate(certificate: leaf, identity: identity, privateKey: key)
        } catch {
            throw IdentityError(.malformed, input: identity.commonName, "certificate could not be made (\(error))")
        }
    }

    static func checkDays(_ days: Int, input: String) throws(IdentityError) {
        guard (1...maximumValidityDays).contains(days) else {
            throw IdentityError(
                .invalidValidity, input: "\(input) \(days) days", "must be 1-\(maximumValidityDays) days")
        }
    }
}
