import Crypto
import Foundation
import SwiftASN1
import X509

/// The public facts of a certificate, for `quorumctl certs show` and, later, `doctor`: what it is
/// (the cluster CA, a node, proxy or operator, or something the cluster would refuse, and why),
/// who issued it, the names it is valid for, when, and fingerprints to compare with `ca.pem`.
public struct CertificateSummary: Sendable {
    /// What a certificate is to the cluster.
    public enum Kind: Sendable {
        /// A CA certificate (a possible trust root), with its path length limit.
        case certificateAuthority(maxPathLength: Int?)
        /// A leaf whose identity parses.
        case leaf(PeerIdentity)
        /// Neither: the reason `ClusterIdentity.identity(of:)` refused it.
        case refused(IdentityError)
    }

    /// What the certificate is to the cluster.
    public let kind: Kind
    /// The subject distinguished name.
    public let subject: String
    /// The issuer distinguished name.
    public let issuer: String
    /// The serial number in hex.
    public let serialNumber: String
    /// Start of validity.
    public let notValidBefore: Date
    /// End of validity.
    public let notValidAfter: Date
    /// Subject alternative names as `URI …`, `DNS …`, `IP …`.
    public let alternativeNames: [String]
    /// Key usages (`digitalSignature`, `keyCertSign`, `cRLSign`, …).
    public let keyUsage: [String]
    /// Extended key usages (`serverAuth`, `clientAuth`, …).
    public let extendedKeyUsage: [String]
    /// The public key's algorithm, such as `P-256`.
    public let keyAlgorithm: String
    /// The subject key identifier in hex: for a CA, what its leaves name as their issuer key.
    public let keyID: String?
    /// The authority key identifier in hex: the key id of the CA that issued this certificate.
    public let issuerKeyID: String?
    /// SHA-256 of the DER certificate, hex.
    public let fingerprint: String

    /// Summarises `certificate`; `source` names it in a refusal reason.
    public init(_ certificate: Certificate, source: String = "certificate") {
        if case .isCertificateAuthority(let length)? = try? certificate.extensions.basicConstraints {
            kind = .certificateAuthority(maxPathLength: length)
        } else {
            do { kind = .leaf(try ClusterIdentity.identity(of: certificate, source: source)) } catch {
                kind = .refused(error)
            }
        }
        subject = certificate.subject.description
        issuer = certificate.issuer.description
        serialNumber = Self.hex(certificate.serialNumber.bytes)
        notValidBefore = certificate.notValidBefore
        notValidAfter = certificate.notValidAfter
        let names = (try? certificate.extensions.subjectAlternativeNames).map { Array($0) } ?? []
        alternativeNames = names.map { name in
            switch name {
            case .uniformResourceIdentifier(let uri): "URI \(uri)"
            case .dnsName(let dns): "DNS \(dns)"
            case .ipAddress(let address): "IP \(HostName.ip(Array(address.bytes)))"
            case .rfc822Name(let mail): "email \(mail)"
            default: "\(name)"
            }
        }
        keyUsage = ((try? certificate.extensions.keyUsage) ?? nil).map(Self.names(of:)) ?? []
        extendedKeyUsage = ((try? certificate.extensions.extendedKeyUsage).map { Array($0) } ?? []).map(\.description)
        keyAlgorithm =
            P256.Signing.PublicKey(certificate.publicKey) != nil
            ? "ECDSA P-256" : "other (\(certificate.signatureAlgorithm))"
        keyID = (try? certificate.extensions.subjectKeyIdentifier).flatMap { $0.map { Self.hex($0.keyIdentifier) } }
        issuerKeyID = (try? certificate.extensions.authorityKeyIdentifier).flatMap { $0?.keyIdentifier.map(Self.hex) }
        var serializer = DER.Serializer()
        let der = (try? serializer.serialize(certificate)).map { serializer.serializedBytes } ?? []
        fingerprint = Self.hex(SHA256.hash(data: der))
    }

    /// `node 3`, `cluster CA (pathLen 0)`, `none`.
    public var role: String {
        switch kind {
        case .certificateAuthority(let length): "cluster CA" + (length.map { " (pathLen \($0))" } ?? "")
        case .leaf(let identity): identity.role.rawValue
        case .refused: "none"
        }
    }

    private static func names(of usage: KeyUsage) -> [String] {
        [
            (usage.digitalSignature, "digitalSignature"), (usage.nonRepudiation, "nonRepudiation"),
            (usage.keyEncipherment, "keyEncipherment"), (usage.dataEncipherment, "dataEncipherment"),
            (usage.keyAgreement, "keyAgreement"), (usage.keyCertSign, "keyCertSign"), (usage.cRLSign, "cRLSign"),
            (usage.encipherOnly, "encipherOnly"), (usage.decipherOnly, "decipherOnly"),
        ].filter(\.0).map(\.1)
    }

    private static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }
}
