import Foundation
import SwiftASN1
@_spi(FixedExpiryValidationTime) import X509

/// The side of a TLS handshake a certificate is presented for, which decides the extended key
/// usage it needs: `serverAuth` to accept connections, `clientAuth` to make them.
public enum TLSUsage: String, Sendable, Hashable, CustomStringConvertible {
    /// The holder accepts the connection (a node serving RPC).
    case server
    /// The holder opens the connection (a node dialling a peer, the proxy, an operator).
    case client

    /// The extended key usage this side needs.
    public var requiredUsage: ExtendedKeyUsage.Usage { self == .server ? .serverAuth : .clientAuth }

    /// `server` or `client`.
    public var description: String { rawValue }
}

/// Reading identities out of cluster certificates and checking them against the cluster CA: what
/// the mutual-TLS layer calls on every peer certificate.
///
/// Everything here refuses rather than guesses: a certificate that names two roles, an unknown
/// role, a node without an id, or a CA certificate where a leaf belongs is an error, never the
/// first match.
public enum ClusterIdentity {
    /// Parses one PEM `CERTIFICATE` block. `source` names the input in errors.
    public static func certificate(pem: String, source: String = "certificate") throws(IdentityError) -> Certificate {
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: pem)
        } catch {
            throw IdentityError(.malformed, input: source, "not a PEM certificate (\(error))")
        }
        guard documents.count == 1, let document = documents.first else {
            throw IdentityError(
                .malformed, input: source, "holds \(documents.count) PEM blocks; expected exactly one CERTIFICATE")
        }
        guard document.discriminator == "CERTIFICATE" else {
            throw IdentityError(
                .malformed, input: source, "holds a PEM \(document.discriminator); expected a CERTIFICATE")
        }
        return try certificate(der: document.derBytes, source: source)
    }

    /// Parses a DER certificate, as a TLS stack hands over the peer's.
    public static func certificate(der: [UInt8], source: String = "certificate") throws(IdentityError) -> Certificate {
        do {
            return try Certificate(derEncoded: der)
        } catch {
            throw IdentityError(.malformed, input: source, "not a DER X.509 certificate (\(error))")
        }
    }

    /// The identity a leaf certificate carries, read without checking who signed it.
    ///
    /// The certificate must state `CA:false`, carry exactly one `quorum-latch:` SAN URI in its
    /// canonical spelling, and have a subject common name that repeats it. Use ``verify(leaf:against:at:usage:source:)``
    /// for anything that arrives from a peer.
    public static func identity(
        of certificate: Certificate, source: String = "certificate"
    ) throws(IdentityError) -> PeerIdentity {
        let extensions = certificate.extensions
        let constraints: BasicConstraints?
        let names: SubjectAlternativeNames?
        do {
            constraints = try extensions.basicConstraints
            names = try extensions.subjectAlternativeNames
        } catch {
            throw IdentityError(.malformed, input: source, "unreadable extension (\(error))")
        }
        switch constraints {
        case .isCertificateAuthority?:
            throw IdentityError(
                .notALeaf, input: source,
                "is a CA certificate (CA:true); a node, proxy or operator certificate states CA:false")
        case nil:
            throw IdentityError(
                .notALeaf, input: source,
                "has no basic constraints; a node, proxy or operator certificate states CA:false")
        case .notCertificateAuthority?:
            break
        }
        let uris = (names.map(Array.init) ?? []).compactMap { name -> String? in
            if case .uniformResourceIdentifier(let uri) = name, PeerIdentity.isIdentityURI(uri) { return uri }
            return nil
        }
        guard let uri = uris.first else {
            throw IdentityError(
                .missingRole, input: source,
                "names no cluster role; expected one SAN URI quorum-latch://node/<id>, quorum-latch://proxy or quorum-latch://operator/<name>"
            )
        }
        guard uris.count == 1 else {
            throw IdentityError(
                .ambiguousRole, input: source,
                "names \(uris.count) roles (\(uris.joined(separator: ", "))); a cluster certificate carries exactly one"
            )
        }
        let identity: PeerIdentity
        do {
            identity = try PeerIdentity.parse(uri: uri)
        } catch {
            throw IdentityError(error.code, input: source, "\(error.input): \(error.reason)")
        }
        let commonNames = certificate.subject.flatMap { $0 }.filter { $0.type == .RDNAttributeType.commonName }
            .map { String($0.value) ?? "\($0.value)" }
        guard commonNames == [identity.commonName] else {
            let found =
                commonNames.isEmpty ? "no common name" : "common name '\(commonNames.joined(separator: "', '"))'"
            throw IdentityError(
                .ambiguousRole, input: source,
                "subject has \(found) but its identity URI \(uri) needs exactly CN=\(identity.commonName)")
        }
        return identity
    }

    /// Checks that `ca` can be a cluster trust anchor: a CA certificate allowed to sign certificates.
    public static func checkCertificateAuthority(
        _ ca: Certificate, source: String = "cluster CA"
    ) throws(IdentityError) {
        let constraints: BasicConstraints?
        let usage: KeyUsage?
        do {
            constraints = try ca.extensions.basicConstraints
            usage = try ca.extensions.keyUsage
        } catch {
            throw IdentityError(.malformed, input: source, "unreadable extension (\(error))")
        }
        guard case .isCertificateAuthority? = constraints else {
            throw IdentityError(
                .notACertificateAuthority, input: source,
                "is not a CA certificate (no CA:true); use the cluster's ca.pem")
        }
        if let usage, !usage.keyCertSign {
            throw IdentityError(
                .notACertificateAuthority, input: source, "its key usage does not include keyCertSign")
        }
    }

    /// Verifies a peer's leaf certificate against the cluster CA at `time` for one side of a TLS
    /// handshake and returns the identity it carries.
    ///
    /// The checks that have a clear answer run first so the error says which one failed: the
    /// identity itself (``identity(of:source:)``), the issuer and its signature (`foreignCA`), the
    /// validity of the CA and of the leaf (`expired`, `notYetValid`) and the extended key usage
    /// for `usage` (`wrongUsage`). Then swift-certificates' `Verifier` builds and checks the chain
    /// under RFC 5280 (signature, validity, basic constraints, critical extensions) plus the
    /// cluster's own rules (issued directly by the CA, not a CA, the right usage); anything it
    /// refuses beyond that is `rejected`, with its reasons.
    public static func verify(
        leaf: Certificate, against ca: Certificate, at time: Date, usage: TLSUsage,
        source: String = "peer certificate"
    ) async throws(IdentityError) -> PeerIdentity {
        try checkCertificateAuthority(ca)
        let identity = try identity(of: leaf, source: source)

        guard leaf.issuer == ca.subject, ca.publicKey.isValidSignature(leaf.signature, for: leaf) else {
            let issuer = leaf.issuer == ca.subject ? "an issuer with the same name but another key" : "'\(leaf.issuer)'"
            throw IdentityError(
                .foreignCA, input: source,
                "not issued by this cluster's CA (signed by \(issuer); the cluster CA is '\(ca.subject)')")
        }
        try checkValidity(of: ca, at: time, source: "cluster CA")
        try checkValidity(of: leaf, at: time, source: source)

        let usages: ExtendedKeyUsage?
        do { usages = try leaf.extensions.extendedKeyUsage } catch {
            throw IdentityError(.malformed, input: source, "unreadable extended key usage (\(error))")
        }
        guard let usages, usages.contains(usage.requiredUsage) else {
            let has = usages.map { "extended key usage [\($0.map(\.description).joined(separator: ", "))]" }
            throw IdentityError(
                .wrongUsage, input: source,
                "\(identity) certificate has \(has ?? "no extended key usage"); acting as a TLS \(usage) needs \(usage.requiredUsage)"
            )
        }

        var verifier = Verifier(rootCertificates: CertificateStore([ca])) {
            RFC5280Policy(fixedExpiryValidationTime: time)
            ClusterLeafPolicy(usage: usage)
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore())
        guard case .validCertificate = result else {
            var reasons: [String] = []
            if case .couldNotValidate(let failures) = result {
                reasons = failures.map { $0.policyFailureReason.description }
            }
            throw IdentityError(
                .rejected, input: source,
                "refused by the chain verifier: \(reasons.isEmpty ? "no chain to the cluster CA" : reasons.joined(separator: "; "))"
            )
        }
        return identity
    }

    /// Refuses a certificate outside its validity period at `time`.
    static func checkValidity(of certificate: Certificate, at time: Date, source: String) throws(IdentityError) {
        if time < certificate.notValidBefore {
            throw IdentityError(
                .notYetValid, input: source,
                "not valid before \(timestamp(certificate.notValidBefore)) (checked at \(timestamp(time)))")
        }
        if time > certificate.notValidAfter {
            throw IdentityError(
                .expired, input: source,
                "expired at \(timestamp(certificate.notValidAfter)) (checked at \(timestamp(time))); issue a new one")
        }
    }

    /// A UTC timestamp in ISO 8601, to the second.
    static func timestamp(_ date: Date) -> String { date.formatted(.iso8601) }
}

/// The cluster's own chain rules, on top of RFC 5280: a leaf issued directly by the cluster CA
/// (which has pathLen 0, so no intermediates), stating `CA:false`, with the extended key usage the
/// TLS side needs.
struct ClusterLeafPolicy: VerifierPolicy {
    let usage: TLSUsage

    /// Extended key usage is enforced here, so a leaf that marks it critical is still accepted.
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [.X509ExtensionID.extendedKeyUsage]

    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) -> PolicyEvaluationResult {
        guard chain.count == 2 else {
            return .failsToMeetPolicy(
                reason: "cluster leaf must be issued directly by the cluster CA (chain of \(chain.count))")
        }
        let leaf = chain.leaf
        guard case .notCertificateAuthority? = try? leaf.extensions.basicConstraints else {
            return .failsToMeetPolicy(reason: "cluster leaf must state CA:false")
        }
        guard let usages = try? leaf.extensions.extendedKeyUsage, usages.contains(usage.requiredUsage) else {
            return .failsToMeetPolicy(reason: "cluster leaf lacks \(usage.requiredUsage) for a TLS \(usage)")
        }
        return .meetsPolicy
    }
}
