import Foundation
import NIOSSL
import QuorumCrypto
import QuorumIdentity
import QuorumProtocol
import SwiftASN1
import X509

/// Everything one process needs to speak node RPC over mutual TLS: its own certificate and key,
/// the cluster CA it trusts, where it listens, and the limits and timeouts of its connections.
///
/// A plain `Sendable` value, like NIOSSL's `TLSConfiguration`: build it once at start-up with one
/// of the `make…` factories (which load and check the files, naming the one at fault), then hand
/// it to ``NodeServer`` and ``NodeClient``. Nothing in the transport reads the environment.
public struct TransportConfiguration: Sendable {
    /// The identity this process's own certificate carries (`node 3`, `proxy`, `operator alice`).
    public let identity: PeerIdentity
    /// This process's certificate, presented in every handshake, both as server and as client.
    public let certificate: Certificate
    /// The cluster CA: the only trust root, for peers in both directions.
    public let clusterCA: Certificate

    /// The address ``NodeServer`` binds; `127.0.0.1` by default.
    public var listenHost: String = "127.0.0.1"
    /// The port ``NodeServer`` binds; 0 asks the system for a free one.
    public var listenPort: Int = 0
    /// The largest frame accepted or sent (the length prefix, header included).
    public var frameLimits: FrameLimits = .default
    /// How long a TCP connect may take.
    public var connectTimeout: Duration = .seconds(5)
    /// How long a TLS handshake, certificate checks included, may take before the connection is
    /// dropped; bounds what a peer that connects and stalls can hold.
    public var handshakeTimeout: Duration = .seconds(10)
    /// The deadline of a request that names none.
    public var defaultRequestDeadline: Duration = .seconds(5)
    /// Requests one connection runs at once, in each direction. Beyond it a server stops reading
    /// the connection (TCP pushes back on the peer) and a client queues the request.
    public var maximumInFlightRequests: Int = 64
    /// Requests a client connection queues behind the in-flight ones before refusing new ones as
    /// ``TransportError/Code/overloaded``.
    public var maximumQueuedRequests: Int = 1024
    /// Connections a ``NodeServer`` holds open at once, authenticated or still in their
    /// handshake. One more is closed as soon as it is accepted, with the reason logged; the open
    /// ones are not disturbed. A cluster needs one per peer node and proxy plus a few operators.
    public var maximumConnections: Int = 256
    /// How long a ``NodeServer`` keeps a connection on which no frame has gone either way and
    /// nothing is running; then it closes it, logging why. Heartbeats (every 500 ms between nodes)
    /// keep node connections open; a client that holds a connection for pushes has to send
    /// something within this time or reconnect. Nil keeps idle connections forever.
    public var idleTimeout: Duration? = .seconds(120)
    /// The clock certificates are checked against. Tests move it; production leaves `Date()`.
    public var now: @Sendable () -> Date = { Date() }

    /// Whether the client presents its certificate; only tests turn it off, to check that a server
    /// refuses a client without one.
    var presentsClientCertificate = true

    /// The key and chain in the form swift-nio-ssl loads into its contexts.
    let tlsCertificate: NIOSSLCertificate
    let tlsPrivateKey: NIOSSLPrivateKey
    let tlsClusterCA: NIOSSLCertificate

    /// A configuration from a certificate, its PKCS#8 PEM key and the cluster CA, all in memory.
    ///
    /// Refuses a certificate that carries no cluster identity or was not issued by `clusterCA`,
    /// a CA certificate that is not a CA, and a key swift-nio-ssl cannot read. Whether the key
    /// belongs to the certificate is checked when a server or client makes its TLS context.
    public static func make(
        certificate: Certificate, privateKeyPEM: SecretBytes, clusterCA: Certificate,
        certificateSource: String = "certificate", keySource: String = "private key",
        caSource: String = "cluster CA"
    ) throws(TransportError) -> TransportConfiguration {
        let identity: PeerIdentity
        do {
            try ClusterIdentity.checkCertificateAuthority(clusterCA, source: caSource)
            identity = try ClusterIdentity.identity(of: certificate, source: certificateSource)
        } catch {
            throw TransportError(.configuration, peer: error.input, error.reason)
        }
        guard certificate.issuer == clusterCA.subject,
            clusterCA.publicKey.isValidSignature(certificate.signature, for: certificate)
        else {
            throw TransportError(
                .configuration, peer: certificateSource,
                "is not issued by \(caSource) ('\(clusterCA.subject)'); peers would refuse it")
        }
        let tlsCertificate = try nioCertificate(certificate, source: certificateSource)
        let tlsClusterCA = try nioCertificate(clusterCA, source: caSource)
        // swift-nio-ssl wants an array; it is wiped as soon as BoringSSL holds its own copy (which
        // is beyond our reach, like the copies inside swift-crypto).
        var keyBytes = privateKeyPEM.copyBytes()
        defer { _ = SecretBytes(consuming: &keyBytes) }
        let tlsPrivateKey: NIOSSLPrivateKey
        do {
            tlsPrivateKey = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw TransportError(.configuration, peer: keySource, "is not a PEM private key swift-nio-ssl can read")
        }
        return TransportConfiguration(
            identity: identity, certificate: certificate, clusterCA: clusterCA, tlsCertificate: tlsCertificate,
            tlsPrivateKey: tlsPrivateKey, tlsClusterCA: tlsClusterCA)
    }

    /// Refuses limits that would make a listener or client useless or unbounded.
    func checkLimits() throws(TransportError) {
        let source = "\(identity) transport configuration"
        guard maximumConnections >= 1 else {
            throw TransportError(
                .configuration, peer: source, "maximumConnections is \(maximumConnections); it must be at least 1")
        }
        guard maximumInFlightRequests >= 1 else {
            throw TransportError(
                .configuration, peer: source,
                "maximumInFlightRequests is \(maximumInFlightRequests); it must be at least 1")
        }
        if let idleTimeout, idleTimeout <= .zero {
            throw TransportError(
                .configuration, peer: source, "idleTimeout is \(idleTimeout); it must be positive, or nil for none")
        }
    }

    /// A configuration from a freshly issued certificate (tests, `quorumctl` one-offs).
    public static func make(
        issued: IssuedCertificate, clusterCA: Certificate
    ) throws(TransportError)
        -> TransportConfiguration
    {
        try make(
            certificate: issued.certificate, privateKeyPEM: issued.privateKeyPEM(), clusterCA: clusterCA,
            certificateSource: issued.identity.description, keySource: "\(issued.identity) key")
    }

    /// A configuration from files: the certificate (`node-3.pem`), its key (`node-3.key`, read
    /// into zeroizing memory) and the cluster CA (`ca.pem`); errors name the file.
    public static func make(
        certificatePath: String, privateKeyPath: String, clusterCAPath: String
    ) throws(TransportError) -> TransportConfiguration {
        let certificate: Certificate
        let clusterCA: Certificate
        do {
            certificate = try CertificateFiles.readCertificate(certificatePath)
            clusterCA = try CertificateFiles.readCertificate(clusterCAPath)
        } catch {
            throw TransportError(.configuration, peer: error.input, error.reason)
        }
        let key: SecretBytes
        do { key = try KeyFiles.readSecretFile(privateKeyPath) } catch {
            throw TransportError(.configuration, peer: privateKeyPath, error.reason)
        }
        return try make(
            certificate: certificate, privateKeyPEM: key, clusterCA: clusterCA, certificateSource: certificatePath,
            keySource: privateKeyPath, caSource: clusterCAPath)
    }

    /// A configuration for the holder of `identity` in a `certs init` directory (`ca.pem`,
    /// `node-3.pem`, `node-3.key`).
    public static func make(
        directory: CertificateDirectory, identity: PeerIdentity
    ) throws(TransportError) -> TransportConfiguration {
        let prefix = directory.prefix(for: identity)
        return try make(
            certificatePath: prefix + ".pem", privateKeyPath: prefix + ".key",
            clusterCAPath: directory.caCertificatePath)
    }

    private static func nioCertificate(
        _ certificate: Certificate, source: String
    ) throws(TransportError)
        -> NIOSSLCertificate
    {
        do {
            var serializer = DER.Serializer()
            try serializer.serialize(certificate)
            return try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der)
        } catch {
            throw TransportError(.configuration, peer: source, "cannot be handed to swift-nio-ssl (\(error))")
        }
    }

    /// TLS 1.3 only, this process's certificate presented, the cluster CA the only trust root.
    ///
    /// Verification is `noHostnameVerification` so that BoringSSL requires a peer certificate
    /// (`SSL_VERIFY_FAIL_IF_NO_PEER_CERT`) and calls our custom callback; the callback replaces
    /// BoringSSL's chain check with ``PeerAuthenticator``, which pins the peer by the cluster
    /// identity in its certificate rather than by host name.
    func tlsConfiguration(server: Bool) -> TLSConfiguration {
        var tls: TLSConfiguration
        if server {
            tls = .makeServerConfigurationWithMTLS(
                certificateChain: [.certificate(tlsCertificate)], privateKey: .privateKey(tlsPrivateKey),
                trustRoots: .certificates([tlsClusterCA]))
        } else {
            tls = .makeClientConfiguration()
            if presentsClientCertificate {
                tls.certificateChain = [.certificate(tlsCertificate)]
                tls.privateKey = .privateKey(tlsPrivateKey)
            }
            tls.trustRoots = .certificates([tlsClusterCA])
        }
        tls.certificateVerification = .noHostnameVerification
        tls.minimumTLSVersion = .tlsv13
        tls.maximumTLSVersion = .tlsv13
        tls.renegotiationSupport = .none
        return tls
    }
}
