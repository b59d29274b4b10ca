import Foundation
import Logging
import QuorumCrypto
import QuorumIdentity
import QuorumNode
import QuorumPolicy
import QuorumProtocol
import ServiceLifecycle

/// Why the proxy cannot reach or use its quorum: the file or setting at fault and what is wrong.
public struct QuorumLinkError: Error, Sendable, CustomStringConvertible {
    /// One line naming the input and the problem.
    public let description: String

    init(_ description: String) { self.description = description }
}

/// The proxy's link to the quorum, made from the `[cluster]` settings: the node client with the
/// proxy's certificate, the signing coordinator (connections and commitment caches), the signing
/// and sealing groups and the sealed credentials. `quorum-proxy run` makes one and builds the
/// ``QuorumAuthorizer`` and the ``BundleFollower`` from it.
public struct QuorumLink: Sendable {
    /// Reaches the nodes; shared by deciding, signing, settling and bundle fetches.
    public let coordinator: SigningCoordinator
    /// The sealing group.
    public let sealingGroup: PublicKeyPackage<Ed25519Suite>
    /// The proxy's sealed credentials.
    public let credentials: SealedCredentialDirectory
    /// The settings it was made from.
    public let settings: ClusterSettings
    /// The proxy's node-RPC certificate (`proxy`) and the cluster CA (`ca`), for the expiry gauge.
    public let certificates: [MonitoredCertificate]

    /// Loads everything `settings` names; `dataDirectory` holds `credentials/`.
    ///
    /// - Throws: ``QuorumLinkError`` naming the file at fault: an unreadable cluster file, a
    ///   certificate that is not a proxy's, a group file of the wrong purpose or suite.
    public static func open(
        _ settings: ClusterSettings, dataDirectory: String, logger: Logger
    ) throws(QuorumLinkError) -> QuorumLink {
        let nodes: [ClusterFile.Node]
        do { nodes = try ClusterFile.load(path: settings.nodesFile).nodes } catch {
            throw QuorumLinkError(error.description)
        }
        var transport: TransportConfiguration
        do {
            transport = try TransportConfiguration.make(
                certificatePath: settings.certificate, privateKeyPath: settings.privateKey,
                clusterCAPath: settings.clusterCA)
        } catch {
            throw QuorumLinkError("\(error.peer): \(error.reason)")
        }
        guard transport.identity.role == .proxy else {
            throw QuorumLinkError(
                "\(settings.certificate): is the certificate of \(transport.identity); the proxy needs a proxy certificate"
            )
        }
        transport.connectTimeout = settings.decisionTimeout
        transport.handshakeTimeout = settings.decisionTimeout
        transport.defaultRequestDeadline = settings.decisionTimeout
        let client: NodeClient
        do { client = try NodeClient(configuration: transport, logger: logger) } catch {
            throw QuorumLinkError("\(error.peer): \(error.reason)")
        }
        let group = try Self.group(settings.group, purpose: .signing)
        let sealingGroup = try Self.group(settings.sealingGroup, purpose: .sealing)
        var configuration = SigningCoordinator.Configuration()
        configuration.deadline = settings.decisionTimeout
        configuration.attempts = 1
        let coordinator = SigningCoordinator(
            client: client, nodes: nodes, group: group, configuration: configuration, logger: logger)
        return QuorumLink(
            coordinator: coordinator, sealingGroup: sealingGroup,
            credentials: SealedCredentialDirectory(proxyDirectory: dataDirectory), settings: settings,
            certificates: transport.monitoredCertificates)
    }

    static func group(_ path: String, purpose: KeyPurpose) throws(QuorumLinkError) -> PublicKeyPackage<Ed25519Suite> {
        let bytes: [UInt8]
        do { bytes = try KeyFiles.readFile(path) } catch { throw QuorumLinkError(error.description) }
        let group: PublicKeyPackage<Ed25519Suite>
        do { group = try KeyFiles.decodeGroup(bytes, as: Ed25519Suite.self, file: path) } catch {
            throw QuorumLinkError(error.description)
        }
        guard group.purpose == purpose else {
            throw QuorumLinkError(
                "\(path): is the \(group.purpose.rawValue) group; expected the \(purpose.rawValue) group "
                    + (purpose == .signing ? "(group.json)" : "(sealing-group.json)"))
        }
        return group
    }

    /// The authorizer deciding with this link.
    public func authorizer(
        routing: RoutingTable, metrics: ProxyMetrics = ProxyMetrics(), logger: Logger
    ) throws(QuorumLinkError) -> QuorumAuthorizer {
        do {
            return try QuorumAuthorizer(
                QuorumAuthorizer.Parts(
                    coordinator: coordinator, sealingGroup: sealingGroup, credentials: credentials, routing: routing,
                    decisionTimeout: settings.decisionTimeout, signerBudget: settings.effectiveSignerBudget,
                    log: LogSubmitter(coordinator: coordinator, logger: logger)),
                metrics: metrics, logger: logger)
        } catch {
            throw QuorumLinkError("\(settings.group): \(error)")
        }
    }

    /// The newest bundle any node holds that is signed by a trusted operator, newer than
    /// `current` (any version when `nil`); `nil` when no node has one. A node whose bundle does not
    /// open is logged and passed over: the proxy installs only what it verified itself.
    public func newestBundle(
        trustedSigners: [[UInt8]], newerThan current: UInt64?, logger: Logger
    ) async -> PolicyBundle? {
        let bundles = await withTaskGroup(of: PolicyBundle?.self) { group in
            for node in coordinator.nodes.keys.sorted() {
                group.addTask {
                    do {
                        let response = try await coordinator.ask(node, PolicyFetchRequest(), PolicyFetchResponse.self)
                        guard !response.signedBundle.isEmpty else { return nil }
                        return try SignedBundle.open(
                            response.signedBundle, fileName: "node \(node)'s bundle", trustedSigners: trustedSigners,
                            newerThan: nil)
                    } catch {
                        logger.info("no bundle from node", metadata: ["node": "\(node)", "reason": "\(error)"])
                        return nil
                    }
                }
            }
            var found: [PolicyBundle] = []
            for await bundle in group { if let bundle { found.append(bundle) } }
            return found
        }
        guard let newest = bundles.max(by: { $0.version < $1.version }) else { return nil }
        if let current, newest.version <= current { return nil }
        return newest
    }
}

/// Keeps the proxy's routing view on the newest bundle the nodes hold: asks them every
/// `interval`, installs a bundle only when it is newer and signed by a trusted operator (checked
/// here, not taken on the nodes' word), and never goes back to an older one.
public struct BundleFollower: Service {
    let link: QuorumLink
    let routing: RoutingTable
    let trustedSigners: [[UInt8]]
    let interval: Duration
    let logger: Logger

    /// A follower updating `routing` from `link`'s nodes.
    public init(
        link: QuorumLink, routing: RoutingTable, trustedSigners: [[UInt8]], interval: Duration, logger: Logger
    ) {
        self.link = link
        self.routing = routing
        self.trustedSigners = trustedSigners
        self.interval = interval
        self.logger = logger
    }

    /// One poll: installs a newer bundle if a node has one. Returns whether it did.
    @discardableResult
    public func poll() async -> Bool {
        let current = routing.current.bundle.version
        guard
            let newer = await link.newestBundle(trustedSigners: trustedSigners, newerThan: current, logger: logger)
        else { return false }
        routing.replace(with: RoutingView(bundle: newer))
        logger.notice(
            "routing by a newer bundle", metadata: ["version": "\(newer.version)", "digest": "\(newer.digest)"])
        return true
    }

    /// Polls until graceful shutdown.
    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            if Task.isShuttingDownGracefully || Task.isCancelled { break }
            await poll()
        }
    }
}

extension RoutingView {
    /// The view of no bundle (version 0, no latch): every path is 404 until a bundle arrives.
    public static var empty: RoutingView {
        // An empty bundle has nothing that can be invalid.
        RoutingView(
            bundle: try! PolicyBundle(
                version: 0, secrets: [], fieldAliases: [:], prices: [:], latches: [], digest: ""))
    }
}
