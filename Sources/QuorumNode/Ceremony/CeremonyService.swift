import Foundation
import Logging
import NIOConcurrencyHelpers
import QuorumCrypto
import QuorumIdentity
import QuorumProtocol

/// The node's side of the key ceremony (`quorumctl keygen --cluster`, `keygen refresh`): the I/O
/// shell around ``CeremonySession``. Every ceremony message comes from an operator certificate;
/// the node checks what it can against what it knows itself (its peers' identity keys from
/// heartbeats over mutual TLS, its own keys), stages new keys durably after round three, and
/// installs them only on a success certificate signed by every participant.
///
/// A node holds at most one ceremony: a new begin replaces one not yet committed, and a session
/// idle for longer than `expiry` is dropped. A refusal discards the ceremony; the operator aborts
/// it everywhere and can run a new one.
public final class CeremonyService: NodeFrameHandler, Sendable {
    /// Ceremony requests come from operators only; nodes and proxies are refused.
    public static let roles: [UInt16: Set<ClusterRole>] = [
        CeremonyBegin.type: [.operator], CeremonyRound2Request.type: [.operator],
        CeremonyRound3Request.type: [.operator], CeremonyCommit.type: [.operator], CeremonyAbort.type: [.operator],
    ]

    /// ``roles``, as ``NodeFrameHandler`` asks.
    public var requestRoles: [UInt16: Set<ClusterRole>] { Self.roles }

    private struct Held {
        var session: CeremonySession
        var touched: ContinuousClock.Instant
    }

    private let nodeID: UInt16
    private let identity: Ed25519KeyPair
    private let keys: NodeKeyStore
    private let staging: CeremonyStaging
    private let committed = NIOLockedValueBox<(@Sendable (CeremonyEntry) -> Void)?>(nil)

    /// Calls `hook` with the log entry of every ceremony this node commits from now on (the node's
    /// runtime submits it to the replicated log; every participant makes the same bytes).
    public func onCommitted(_ hook: @escaping @Sendable (CeremonyEntry) -> Void) {
        committed.withLockedValue { $0 = hook }
    }
    private let peerIdentityKeys: @Sendable () -> [UInt16: [UInt8]?]
    private let expiry: Duration
    private let logger: Logger
    private let held = NIOLockedValueBox<Held?>(nil)

    /// A service for node `nodeID`.
    ///
    /// - Parameter peerIdentityKeys: every configured peer with the identity key its heartbeats
    ///   carried, or nil before one has arrived.
    public init(
        nodeID: UInt16, identity: Ed25519KeyPair, keys: NodeKeyStore, store: NodeStore, dataDirectory: String,
        peerIdentityKeys: @escaping @Sendable () -> [UInt16: [UInt8]?], expiry: Duration = .seconds(120),
        logger: Logger
    ) {
        self.nodeID = nodeID
        self.identity = identity
        self.keys = keys
        self.staging = CeremonyStaging(dataDirectory: dataDirectory, store: store, keys: keys)
        self.peerIdentityKeys = peerIdentityKeys
        self.expiry = expiry
        self.logger = logger
    }

    /// The service of a runtime's parts; what ``NodeRuntime`` lists among its handlers.
    public convenience init(
        configuration: NodeConfiguration, identity: Ed25519KeyPair, keys: NodeKeyStore, store: NodeStore,
        membership: MembershipService, logger: Logger
    ) {
        self.init(
            nodeID: configuration.nodeID, identity: identity, keys: keys, store: store,
            dataDirectory: configuration.dataDirectory,
            peerIdentityKeys: { membership.membership.peers.mapValues(\.identityKey) }, logger: logger)
    }

    /// Answers one ceremony request with the next message or a ``CeremonyRefusal``.
    public func handle(_ peer: PeerIdentity, _ frame: Frame) async throws -> Frame? {
        guard frame.kind == .request else { return nil }
        switch frame.messageType {
        case CeremonyBegin.type:
            let message = try frame.decode(CeremonyBegin.self)
            return try answer(frame, message.ceremonyID, .begin, peer) { () throws(CeremonyRefusalReason) in
                try self.begin(message)
            }
        case CeremonyRound2Request.type:
            let message = try frame.decode(CeremonyRound2Request.self)
            return try answer(frame, message.ceremonyID, .round2, peer) { () throws(CeremonyRefusalReason) in
                try self.step(message.ceremonyID, .round2) { session throws(CeremonyRefusalReason) in
                    try session.round2(message, identity: self.identity)
                }
            }
        case CeremonyRound3Request.type:
            let message = try frame.decode(CeremonyRound3Request.self)
            return try answer(frame, message.ceremonyID, .round3, peer) { () throws(CeremonyRefusalReason) in
                try self.round3(message)
            }
        case CeremonyCommit.type:
            let message = try frame.decode(CeremonyCommit.self)
            return try answer(frame, message.ceremonyID, .commit, peer) { () throws(CeremonyRefusalReason) in
                try self.commit(message)
            }
        case CeremonyAbort.type:
            let message = try frame.decode(CeremonyAbort.self)
            return try answer(frame, message.ceremonyID, .abort, peer) { () throws(CeremonyRefusalReason) in
                try self.abort(message)
            }
        default:
            return try Frame.errorResponse(
                ErrorResponse(.unknownMessageType, "message type \(frame.messageType) is not served here"), to: frame)
        }
    }

    /// Runs `body`; a refusal discards the session (not the committed keys) and is answered as a
    /// ``CeremonyRefusal``.
    private func answer(
        _ frame: Frame, _ id: [UInt8], _ phase: CeremonyPhase, _ peer: PeerIdentity,
        _ body: () throws(CeremonyRefusalReason) -> any WireMessage
    ) throws -> Frame {
        let message: any WireMessage
        do {
            message = try body()
        } catch {
            if phase != .commit && phase != .abort {
                held.withLockedValue { held in if held?.session.ceremonyID == id { held = nil } }
            }
            logger.warning(
                "refused a ceremony step",
                metadata: [
                    "ceremony": "\(Hex.encode(id))", "phase": "\(phase)", "operator": "\(peer)",
                    "culprit": "\(error.culprit.map { "node \($0)" } ?? "-")", "reason": "\(error.reason)",
                ])
            let refusal = try CeremonyRefusal(
                ceremonyID: id, nodeID: nodeID, phase: phase, culprit: error.culprit, reason: error.reason)
            return try Frame.response(refusal, to: frame)
        }
        return try Frame.response(message, to: frame)
    }

    private func begin(_ message: CeremonyBegin) throws(CeremonyRefusalReason) -> CeremonyRound1 {
        let (session, round1) = try CeremonySession.begin(
            message, nodeID: nodeID, identity: identity, peerIdentityKeys: peerIdentityKeys(), current: keys.current)
        // One ceremony at a time: whatever was in progress or staged and not committed is gone.
        held.withLockedValue { $0 = Held(session: session, touched: .now) }
        staging.discard()
        logger.notice(
            "ceremony begun",
            metadata: [
                "ceremony": "\(Hex.encode(message.ceremonyID))", "kind": "\(message.kind)",
                "parameters": "\(session.threshold)-of-\(session.participants.count)",
            ])
        return round1
    }

    /// Runs one round on the held session of `id`, if it is there and fresh.
    private func step<Answer>(
        _ id: [UInt8], _ phase: CeremonyPhase,
        _ body: (inout CeremonySession) throws(CeremonyRefusalReason) -> Answer
    ) throws(CeremonyRefusalReason) -> Answer {
        let expiry = expiry
        let result: Result<Answer, CeremonyRefusalReason> = held.withLockedValue { held in
            do throws(CeremonyRefusalReason) {
                guard var current = held, current.session.ceremonyID == id else {
                    throw CeremonyRefusalReason(
                        phase,
                        "ceremony \(Hex.encode(id)) is not in progress on this node (never begun, replaced or aborted)")
                }
                guard ContinuousClock.now - current.touched <= expiry else {
                    held = nil
                    throw CeremonyRefusalReason(
                        phase, "ceremony \(Hex.encode(id)) expired after \(expiry) without progress")
                }
                let answer = try body(&current.session)
                current.touched = .now
                held = current
                return .success(answer)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private func round3(_ message: CeremonyRound3Request) throws(CeremonyRefusalReason) -> CeremonyRound3 {
        let (staged, session) = try step(message.ceremonyID, .round3) {
            session throws(CeremonyRefusalReason) in (try session.round3(message, identity: identity), session)
        }
        let record = CeremonyRecord(
            ceremonyID: session.ceremonyID, kind: session.kind, threshold: UInt16(session.threshold),
            transcriptDigest: staged.transcriptDigest, participants: session.participants, certificate: [])
        try staging.stage(staged.keys, record)
        held.withLockedValue { if $0?.session.ceremonyID == session.ceremonyID { $0 = nil } }
        logger.notice(
            "ceremony staged; waiting for the success certificate",
            metadata: [
                "ceremony": "\(Hex.encode(session.ceremonyID))",
                "transcript": "\(Hex.encode(staged.transcriptDigest))",
                "group_key": "\(Hex.encode(staged.keys.groupKeyBytes))",
            ])
        return staged.response
    }

    private func commit(_ message: CeremonyCommit) throws(CeremonyRefusalReason) -> CeremonyAck {
        let installed = try staging.commit(message)
        if let installed {
            logger.notice(
                "ceremony committed; new keys installed",
                metadata: [
                    "ceremony": "\(Hex.encode(message.ceremonyID))",
                    "group_key": "\(Hex.encode(installed.groupKeyBytes))",
                ])
            if let hook = committed.withLockedValue({ $0 }),
                let record = try? staging.completed(message.ceremonyID),
                let sealingKey = try? installed.sealingGroup.verifyingKey.serialized()
            {
                hook(
                    CeremonyEntry(
                        ceremonyID: record.ceremonyID, kind: record.kind.description, threshold: record.threshold,
                        participants: record.participants.map(\.nodeID), transcriptDigest: record.transcriptDigest,
                        signingGroupKey: installed.groupKeyBytes, sealingGroupKey: sealingKey))
            }
        }
        do { return try CeremonyAck(ceremonyID: message.ceremonyID, nodeID: nodeID, outcome: .committed) } catch {
            throw CeremonyRefusalReason(.commit, "\(error)")
        }
    }

    private func abort(_ message: CeremonyAbort) throws(CeremonyRefusalReason) -> CeremonyAck {
        if (try? staging.completed(message.ceremonyID)) != nil {
            throw CeremonyRefusalReason(.abort, "ceremony \(Hex.encode(message.ceremonyID)) is already committed")
        }
        held.withLockedValue { if $0?.session.ceremonyID == message.ceremonyID { $0 = nil } }
        if (try? staging.pending())??.ceremonyID == message.ceremonyID { staging.discard() }
        logger.notice(
            "ceremony aborted; nothing of it is kept",
            metadata: ["ceremony": "\(Hex.encode(message.ceremonyID))", "reason": "\(message.reason)"])
        do { return try CeremonyAck(ceremonyID: message.ceremonyID, nodeID: nodeID, outcome: .aborted) } catch {
            throw CeremonyRefusalReason(.abort, "\(error)")
        }
    }
}
