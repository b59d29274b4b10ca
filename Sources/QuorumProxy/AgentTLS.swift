import HummingbirdTLS
import NIOCore
import NIOSSL
import QuorumCrypto
import QuorumNode

/// The proxy's agent-facing HTTPS listener: the `[tls]` table.
///
/// It exists for sender-constrained latches (RFC 8705, docs/policy.md "Sender-constrained
/// tokens"): a latch bound to a client certificate is accepted only from an agent that presents
/// that certificate here, so a stolen token alone is useless. The listener asks every agent for a
/// certificate but requires none, and accepts any, self-signed ones included (RFC 8705 §2.2,
/// "self-signed certificate mutual TLS"): the binding is the certificate's SHA-256 thumbprint in
/// the latch, not a chain to some CA. The TLS handshake's CertificateVerify proves the agent holds
/// the certificate's private key, so presenting someone else's certificate does not work.
public struct AgentTLSSettings: Sendable, Hashable {
    /// Where the HTTPS listener binds; port 0 asks for any free port.
    public var listen: NodeAddress
    /// The server's certificate chain, PEM, leaf first (any CA the agents trust; not the cluster's).
    public var certificate: String
    /// The server certificate's private key, PEM.
    public var privateKey: String

    /// Settings for a listener on `listen` presenting `certificate`.
    public init(listen: NodeAddress, certificate: String, privateKey: String) {
        self.listen = listen
        self.certificate = certificate
        self.privateKey = privateKey
    }
}

/// Builds the HTTPS listener's TLS setup and reads the client certificate's thumbprint.
enum AgentTLS {
    /// The server side of `settings`, loaded and checked now (the certificate and key read, and a
    /// TLS context made from them, so a key that does not match its certificate fails at start-up
    /// rather than at the first handshake).
    ///
    /// Client certificates: requested, optional, and any accepted (the custom verification
    /// callback trusts every chain); RFC 8705 binds the latch to the leaf's thumbprint instead.
    static func channelConfiguration(
        _ settings: AgentTLSSettings, file: String
    ) throws(ProxyConfigurationError) -> TLSChannelConfiguration {
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMFile(settings.certificate) } catch {
            throw ProxyConfigurationError(
                file: file, key: "tls.certificate", "\(settings.certificate): not a readable PEM certificate chain")
        }
        guard !chain.isEmpty else {
            throw ProxyConfigurationError(
                file: file, key: "tls.certificate", "\(settings.certificate): holds no PEM certificate")
        }
        let secret: SecretBytes
        do { secret = try KeyFiles.readSecretFile(settings.privateKey) } catch {
            throw ProxyConfigurationError(file: file, key: "tls.private_key", error.description)
        }
        let key: NIOSSLPrivateKey
        do {
            // swift-nio-ssl wants an array; it is wiped once BoringSSL holds its own copy.
            var bytes = secret.copyBytes()
            defer { _ = SecretBytes(consuming: &bytes) }
            key = try NIOSSLPrivateKey(bytes: bytes, format: .pem)
        } catch {
            throw ProxyConfigurationError(
                file: file, key: "tls.private_key",
                "\(settings.privateKey): not a PEM private key swift-nio-ssl can read")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        // Ask for a certificate (SSL_VERIFY_PEER) without requiring one; the callback below
        // replaces chain validation, so any certificate the agent proves it holds is taken.
        configuration.certificateVerification = .optionalVerification
        configuration.applicationProtocols = ["http/1.1"]
        do { _ = try NIOSSLContext(configuration: configuration) } catch {
            throw ProxyConfigurationError(
                file: file, key: "tls.private_key",
                "\(settings.privateKey) and \(settings.certificate) do not make a TLS server context (\(error)); "
                    + "is the key the certificate's?")
        }
        return TLSChannelConfiguration(
            tlsConfiguration: configuration,
            customVerificationCallback: { _, promise in promise.succeed(.certificateVerified) })
    }

    /// SHA-256 of the DER leaf certificate the agent presented on `channel`, or `nil` when it
    /// presented none. RFC 8705 §3.1's `x5t#S256` is this digest, base64url-encoded.
    static func clientCertificateSHA256(on channel: any Channel) async throws -> [UInt8]? {
        guard let certificate = try await channel.nioSSL_peerCertificate().get() else { return nil }
        return sha256Digest(try certificate.toDERBytes())
    }
}
