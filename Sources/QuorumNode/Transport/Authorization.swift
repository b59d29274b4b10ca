import Foundation
import QuorumIdentity
import QuorumProtocol
import X509

/// Who may use a listener, and which roles may make each request: the transport's authorization
/// rules (docs/architecture.md, "Transport").
///
/// Two gates, both failing closed. ``connectionRoles`` is checked in the TLS handshake, so a
/// certificate of another role never gets to send a frame. ``requestRoles`` is checked on every
/// request: a message type it does not list is refused as `unauthorized`, so a new message is
/// unreachable until someone decides who may send it.
public struct AuthorizationPolicy: Sendable {
    /// The roles whose certificates may connect to the listener at all.
    public var connectionRoles: Set<ClusterRole>
    /// For each request or one-way message type, the roles that may send it.
    public var requestRoles: [UInt16: Set<ClusterRole>]
    /// The node id a frame claims to come from, if its message names one (a heartbeat's
    /// `nodeID`). A node certificate must carry exactly that id; another role may not claim to be
    /// a node at all. The default reads ``Heartbeat``s.
    public var claimedNodeID: @Sendable (Frame) -> UInt16?

    /// A policy admitting `connectionRoles` and allowing `requestRoles`.
    public init(
        connectionRoles: Set<ClusterRole>, requestRoles: [UInt16: Set<ClusterRole>],
        claimedNodeID: @escaping @Sendable (Frame) -> UInt16? = AuthorizationPolicy.heartbeatSender
    ) {
        self.connectionRoles = connectionRoles
        self.requestRoles = requestRoles
        self.claimedNodeID = claimedNodeID
    }

    /// The node id in a heartbeat frame, or nil for any other frame (or one that does not decode:
    /// the request handler refuses that itself).
    public static let heartbeatSender: @Sendable (Frame) -> UInt16? = { frame in
        guard frame.messageType == Heartbeat.type, frame.kind != .errorResponse else { return nil }
        return (try? frame.decode(Heartbeat.self))?.nodeID
    }

    /// Whether a certificate with `role` may connect.
    public func admits(_ role: ClusterRole) -> Bool { connectionRoles.contains(role) }

    /// Why `peer` may not send `frame`, or nil when it may.
    public func refusal(of frame: Frame, from peer: PeerIdentity) -> TransportError? {
        guard let roles = requestRoles[frame.messageType] else {
            return TransportError(
                .unauthorizedRole, peer: peer.description,
                "message type \(frame.messageType) is not open to any role on this listener")
        }
        guard roles.contains(peer.role) else {
            let allowed = roles.map(\.rawValue).sorted().joined(separator: ", ")
            return TransportError(
                .unauthorizedRole, peer: peer.description,
                "a \(peer.role) certificate may not send message type \(frame.messageType); it needs role \(allowed)")
        }
        return nil
    }

    /// Why `frame`'s claimed sender contradicts `peer`'s certificate, or nil when it does not.
    public func impersonation(in frame: Frame, from peer: PeerIdentity) -> TransportError? {
        guard let claimed = claimedNodeID(frame) else { return nil }
        guard peer.nodeID != claimed else { return nil }
        return TransportError(
            .identityMismatch, peer: peer.description,
            "a frame (message type \(frame.messageType)) says it is from node \(claimed), but the certificate says \(peer)"
        )
    }
}

/// Checks a peer's certificate chain in the TLS handshake: the cluster's rules of
/// ``ClusterIdentity/verify(leaf:against:at:usage:source:)`` (chain to the cluster CA, validity,
/// extended key usage for the peer's side), then who the certificate says the peer is against
/// what this end expects.
struct PeerAuthenticator: Sendable {
    /// What this end expects of the peer's identity.
    enum Expectation: Sendable {
        /// A server: any identity whose role may use the listener.
        case roles(Set<ClusterRole>)
        /// A client dialling one peer: exactly that identity.
        case exactly(PeerIdentity)
    }

    let clusterCA: Certificate
    let expectation: Expectation
    /// The side the peer plays: `client` when we are the server.
    let peerUsage: TLSUsage
    let now: @Sendable () -> Date

    /// The peer's identity, or why it is refused. `chain` is what the peer presented, leaf first.
    func authenticate(chain: [[UInt8]], peer: String) async -> Result<PeerIdentity, TransportError> {
        guard let leafDER = chain.first else {
            return .failure(TransportError(.untrustedPeer, peer: peer, "presented no certificate"))
        }
        let identity: PeerIdentity
        do {
            let leaf = try ClusterIdentity.certificate(der: leafDER, source: "peer certificate")
            identity = try await ClusterIdentity.verify(leaf: leaf, against: clusterCA, at: now(), usage: peerUsage)
        } catch {
            return .failure(TransportError(.untrustedPeer, peer: peer, "\(error.code.rawValue): \(error.description)"))
        }
        switch expectation {
        case .roles(let roles):
            guard roles.contains(identity.role) else {
                let allowed = roles.map(\.rawValue).sorted().joined(separator: ", ")
                return .failure(
                    TransportError(
                        .unauthorizedRole, peer: "\(identity) at \(peer)",
                        "a \(identity.role) certificate may not use this listener; it admits \(allowed)"))
            }
        case .exactly(let expected):
            guard identity == expected else {
                return .failure(
                    TransportError(
                        .identityMismatch, peer: peer,
                        "dialled \(expected), but its certificate says \(identity)"))
            }
        }
        return .success(identity)
    }
}
