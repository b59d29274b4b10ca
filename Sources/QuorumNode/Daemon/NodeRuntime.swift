import Foundation
import Logging
import NIOConcurrencyHelpers
import QuorumAudit
import QuorumCrypto
import QuorumIdentity
import QuorumLog
import QuorumProtocol
import ServiceLifecycle

/// One subsystem of a node that answers frames: membership, the key ceremony, the signing
/// service. Each declares the message types it serves and which roles may send each; the
/// ``NodeRouter`` hands it exactly those frames, after the transport has checked the roles.
public protocol NodeFrameHandler: Sendable {
    /// The message types this handler serves, and the certificate roles that may send each.
    var requestRoles: [UInt16: Set<ClusterRole>] { get }

    /// Answers `frame` from `peer`: a response or error-response frame for a request, nil for a
    /// one-way frame. A thrown ``WireError`` is answered as a malformed request by the server.
    func handle(_ peer: PeerIdentity, _ frame: Frame) async throws -> Frame?
}

/// Routes each frame to the ``NodeFrameHandler`` that serves its message type, and derives the
/// listener's ``AuthorizationPolicy`` from what the handlers declare: a role may connect only if
/// some message is open to it, and a message no handler serves is open to no one.
public struct NodeRouter: Sendable {
    private let routes: [UInt16: any NodeFrameHandler]
    /// The listener's authorization rules.
    public let authorization: AuthorizationPolicy

    /// A router over `handlers`.
    ///
    /// - Precondition: no two handlers serve the same message type.
    public init(_ handlers: [any NodeFrameHandler]) {
        var routes: [UInt16: any NodeFrameHandler] = [:]
        var roles: [UInt16: Set<ClusterRole>] = [:]
        for handler in handlers {
            for (type, allowed) in handler.requestRoles {
                precondition(routes[type] == nil, "two node handlers serve message type \(type)")
                routes[type] = handler
                roles[type] = allowed
            }
        }
        self.routes = routes
        authorization = AuthorizationPolicy(
            connectionRoles: roles.values.reduce(into: Set<ClusterRole>()) { $0.formUnion($1) },
            requestRoles: roles)
    }

    /// Hands `frame` to its handler; a message type no handler serves is answered as unknown.
    public func handle(_ peer: PeerIdentity, _ frame: Frame) async throws -> Frame? {
        guard let handler = routes[frame.messageType] else {
            guard frame.kind == .request else { return nil }
            return try Frame.errorResponse(
                ErrorResponse(.unknownMessageType, "message type \(frame.messageType) is not served here"), to: frame)
        }
        return try await handler.handle(peer, frame)
    }
}

/// A running node's parts, opened from its configuration: the state store, the key store, the
/// identity key, the transport, membership and every request handler. `quorumd` builds one and
/// runs ``services`` in a `ServiceGroup`; tests do the same in-process.
public final class NodeRuntime: Sendable {
    /// The configuration it was built from.
    public let configuration: NodeConfiguration
    /// Persistent node state (RocksDB under `data_dir/state`).
    public let store: NodeStore
    /// The group key shares, once installed.
    public let keys: NodeKeyStore
    /// The node's identity key.
    public let identity: Ed25519KeyPair
    /// The client used to dial peers.
    public let client: NodeClient
    /// Heartbeats and the live view of peers.
    public let membership: MembershipService
    /// The listener.
    public let server: NodeServer
    /// Routes frames to the handlers.
    public let router: NodeRouter
    /// The policy decision point: bundles, verdicts, settlement.
    public let verdicts: VerdictService
    /// The signer: nonce commitments and signature shares.
    public let signing: SigningService
    /// The node's metrics; ``NodeMetrics/log`` is where the log code reports its gauges.
    public let metrics: NodeMetrics
    private let certificateExpiry: CertificateExpiryGauges
    /// The replicated audit log: entries in, sequencing, checkpoints, catch-up, evidence.
    public let log: LogService
    /// Looks for the receipt of each of this node's decisions and records those never logged.
    public let unloggedWatch: UnloggedWatch
    /// The log as the audit API reads it (entries, tiles, proofs, the newest quorum checkpoint,
    /// the receipt index, equivocation evidence).
    public var auditLog: ReplicatedLog { log.replicated }
    private let logger: Logger

    /// Opens the data directory and builds every part; nothing listens until ``services`` run.
    ///
    /// - Throws: a one-line description naming what is wrong (the configuration key, the store or
    ///   key file), as ``NodeRuntimeError``.
    public init(
        configuration: NodeConfiguration, metrics: NodeMetrics = NodeMetrics(), logger: Logger
    ) throws(NodeRuntimeError) {
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        let transport: TransportConfiguration
        let replicated: ReplicatedLog
        do {
            transport = try configuration.transport()
            try configuration.prepareDataDirectory()
            store = try NodeStore(dataDirectory: configuration.dataDirectory)
            replicated = try ReplicatedLog(dataDirectory: configuration.dataDirectory)
            keys = try NodeKeyStore(dataDirectory: configuration.dataDirectory)
            identity = try NodeIdentityKey.loadOrCreate(dataDirectory: configuration.dataDirectory)
            client = try NodeClient(configuration: transport, logger: logger)
        } catch let error as NodeConfigurationError {
            throw NodeRuntimeError(error.description)
        } catch let error as NodeStoreError {
            throw NodeRuntimeError(error.description)
        } catch let error as NodeKeysError {
            throw NodeRuntimeError(error.description)
        } catch {
            throw NodeRuntimeError("\(error)")
        }
        certificateExpiry = CertificateExpiryGauges(transport.monitoredCertificates, factory: metrics.factory)
        let keys = keys
        // Membership reports the installed bundle's digest and the signer's outstanding nonces, and
        // the verdict service signs with the signing service, which needs membership's epoch: both
        // are read through boxes filled once the services exist.
        let decisionPoint = NIOLockedValueBox<VerdictService?>(nil)
        let signer = NIOLockedValueBox<SigningService?>(nil)
        membership = MembershipService(
            membership: configuration.membership(identityKey: identity.publicKey), peers: configuration.peerAddresses,
            client: client, logger: logger,
            facts: {
                Membership.LocalFacts(
                    groupKey: keys.current?.groupKeyBytes,
                    bundleDigest: decisionPoint.withLockedValue { $0 }?.bundleDigest,
                    outstandingNonces: signer.withLockedValue { $0 }?.poolDepth)
            })
        let signing = SigningService(
            store: store, keys: keys, membership: membership, logger: logger, metrics: metrics)
        self.signing = signing
        signer.withLockedValue { $0 = signing }
        let verdicts = try VerdictService(
            configuration: configuration, identity: identity, store: store, keys: { keys.current }, signer: signing,
            metrics: metrics, logger: logger)
        decisionPoint.withLockedValue { $0 = verdicts }
        self.verdicts = verdicts
        let log: LogService
        do {
            log = try LogService(
                nodeID: configuration.nodeID, identity: identity, replicated: replicated, keys: { keys.current },
                signing: signing, membership: membership, client: client, peers: configuration.peerAddresses,
                configuration: configuration.log, logger: logger)
        } catch {
            throw NodeRuntimeError("\(replicated.path): cannot read the log's replica records: \(error)")
        }
        self.log = log
        unloggedWatch = UnloggedWatch(
            store: store, replicated: replicated, after: configuration.log.unloggedAfter, metrics: metrics.log,
            logger: logger)
        // Every node installing a bundle, or committing a ceremony, makes the same entry, so the
        // log holds it once.
        verdicts.onBundleInstalled { entry in log.submitLocal(.bundle(entry)) }
        let ceremony = CeremonyService(
            configuration: configuration, identity: identity, keys: keys, store: store, membership: membership,
            logger: logger)
        ceremony.onCommitted { entry in log.submitLocal(.ceremony(entry)) }
        // Every subsystem that answers frames is listed here, once.
        let handlers: [any NodeFrameHandler] = [
            membership,
            verdicts,
            KeyImportService(nodeID: configuration.nodeID, identity: identity, keys: keys, logger: logger),
            signing,
            ceremony,
            RepairService(
                nodeID: configuration.nodeID, identity: identity, keys: keys, membership: membership, logger: logger),
            log,
        ]
        let router = NodeRouter(handlers)
        self.router = router
        do {
            server = try NodeServer(
                configuration: transport, policy: router.authorization, logger: logger,
                handler: { peer, frame in try await router.handle(peer, frame) })
        } catch {
            throw NodeRuntimeError(error.description)
        }
    }

    /// Brings the gauges that are read rather than pushed up to date: the nonce pool's depth, each
    /// peer's liveness, certificate expiry and the checkpoint's age. The metrics listener calls it
    /// before each scrape.
    public func sampleGauges() {
        metrics.sample(
            poolDepth: signing.poolDepth, peers: membership.membership.peers.values.sorted { $0.nodeID < $1.nodeID })
        certificateExpiry.sample()
        if let status = log.status() {
            // The log holds only entries a quorum checkpoint covers, so its size is the
            // checkpoint's; what gossip brought in and no checkpoint covers yet is the lag.
            metrics.log.logSize(status.logSize)
            if status.checkpointAt > 0 {
                metrics.log.checkpoint(
                    size: status.logSize, signedAt: Date(timeIntervalSince1970: Double(status.checkpointAt) / 1000))
            }
            metrics.log.gossipLag(status.pending)
        }
        metrics.log.sample(now: Date())
    }

    /// The node's long-running services, for one `ServiceGroup`: the listener (calling
    /// `onListening` with the bound port), membership, log replication and the watch for
    /// unlogged decisions. Any ending stops the
    /// group.
    public func services(
        onListening: @escaping @Sendable (Int) throws -> Void = { _ in }
    ) -> [ServiceGroupConfiguration.ServiceConfiguration] {
        let listener = NodeServerService(server: server, logger: logger, onListening: onListening)
        return [
            .init(service: listener, successTerminationBehavior: .gracefullyShutdownGroup),
            .init(service: membership, successTerminationBehavior: .gracefullyShutdownGroup),
            .init(service: log, successTerminationBehavior: .gracefullyShutdownGroup),
            .init(service: unloggedWatch, successTerminationBehavior: .gracefullyShutdownGroup),
        ]
    }

    /// The `[audit]` listener serving `source` (the node's log) read-only, for the same
    /// `ServiceGroup`, or `nil` when the configuration has no `[audit]` table. `onListening` gets
    /// the bound port.
    public func auditService(
        source: any AuditLogSource, onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> ServiceGroupConfiguration.ServiceConfiguration? {
        guard let audit = configuration.audit else { return nil }
        return .init(
            service: NodeAuditServer(configuration: audit, source: source, logger: logger, onListening: onListening),
            successTerminationBehavior: .gracefullyShutdownGroup)
    }

    /// Closes the node's databases (the state store and the log), after its services stopped and
    /// before the process exits, so that no RocksDB thread runs into the process's teardown.
    public func close() {
        store.close()
        auditLog.log.close()
    }
}

/// Why a node could not be built; one line naming the file, key or store at fault.
public struct NodeRuntimeError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public let description: String

    init(_ description: String) { self.description = description }
}
