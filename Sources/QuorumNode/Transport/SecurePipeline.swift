import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import QuorumIdentity
import QuorumProtocol

/// The result of checking one connection's peer certificate, written by the TLS verification
/// callback and read by the connection handler once the handshake has completed.
typealias PeerVerdict = NIOLockedValueBox<Result<PeerIdentity, TransportError>?>

/// Builds one connection's pipeline: TLS (with ``PeerAuthenticator`` as the verification
/// callback), the frame decoder and encoder, then the connection handler.
enum SecurePipeline {
    /// The TLS handler for one connection. The verification callback replaces BoringSSL's own
    /// chain check (see ``TransportConfiguration``): it runs the cluster's checks off the event
    /// loop and off the shared cooperative pool (on ``VerificationExecutor``), records the verdict
    /// for the connection handler, logs a refusal with its reason, and lets the handshake fail
    /// with a TLS alert.
    static func tlsHandler(
        context: NIOSSLContext, isServer: Bool, serverHostname: String?, authenticator: PeerAuthenticator,
        verdict: PeerVerdict, remote: String, logger: Logger
    ) throws -> NIOSSLHandler {
        let callback: NIOSSLCustomVerificationCallback = { certificates, promise in
            let chain = certificates.compactMap { try? $0.toDERBytes() }
            // Not `promise.completeWithTask`: that task would wait for a thread of the shared
            // cooperative pool, which CPU-bound work can hold for seconds (VerificationExecutor).
            Task(executorPreference: VerificationExecutor.shared) {
                let result = await authenticator.authenticate(chain: chain, peer: remote)
                verdict.withLockedValue { $0 = result }
                switch result {
                case .success:
                    promise.succeed(.certificateVerified)
                case .failure(let error):
                    logger.warning(
                        "refused peer certificate",
                        metadata: ["peer": "\(remote)", "code": "\(error.code.rawValue)", "reason": "\(error.reason)"])
                    promise.succeed(.failed)
                }
            }
        }
        if isServer {
            return NIOSSLServerHandler(context: context, customVerificationCallback: callback)
        }
        return try NIOSSLClientHandler(
            context: context, serverHostname: serverHostname, customVerificationCallback: callback)
    }

    /// Adds TLS, framing and `handler` to `channel`'s pipeline; call on the channel's event loop.
    static func configure(
        _ channel: any Channel, tls: NIOSSLHandler, limits: FrameLimits, logger: Logger,
        handler: some ChannelHandler
    ) throws {
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(tls)
        try sync.addHandler(FrameInboundHandler(limits: limits, logger: logger))
        try sync.addHandler(FrameOutboundEncoder(limits: limits))
        try sync.addHandler(handler)
    }

    /// `127.0.0.1:51234`, or `?` when the address is unknown.
    static func describe(_ address: SocketAddress?) -> String {
        guard let address else { return "?" }
        if let ip = address.ipAddress, let port = address.port { return "\(ip):\(port)" }
        return "\(address)"
    }
}
