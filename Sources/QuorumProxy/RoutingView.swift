import Foundation
import NIOConcurrencyHelpers
import QuorumPolicy

/// The proxy's routing view of a policy bundle: which mount a call's path prefix picks.
///
/// The proxy never decides with it: the nodes evaluate every call against the bundle they hold.
/// The view only lets the front name the mount in the ``AgentCall`` and answer 404 at once for a
/// path that no mount of any latch covers (nothing for the nodes to decide, or to log).
public struct RoutingView: Sendable {
    /// Where the front sends a call.
    public enum Route: Sendable, Equatable {
        /// Ask the authorizer; the mount the prefix picked, if one did.
        case ask(mountPath: String?)
        /// No mount of any latch covers the path: 404 without asking.
        case noMount(path: String)
    }

    /// The bundle the view was built from.
    public let bundle: PolicyBundle
    /// Every latch, resolved once (inherited mounts included).
    private let resolved: [ResolvedLatch]

    /// The view of `bundle`.
    public init(bundle: PolicyBundle) {
        self.bundle = bundle
        resolved = bundle.latches.compactMap { bundle.resolvedLatch($0.id) }
    }

    /// Opens the signed bundle at `path` (QuorumPolicy's ``SignedBundle``: a trusted signer, a
    /// valid signature and bundle) and builds its view.
    public static func load(signedBundleAt path: String, trustedSigners: [[UInt8]]) throws -> RoutingView {
        let bytes: [UInt8]
        do {
            bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw SignedBundleError(
                code: .notAnEnvelope, file: path, reason: "cannot read the bundle file (\(error.localizedDescription))")
        }
        return RoutingView(
            bundle: try SignedBundle.open(bytes, fileName: path, trustedSigners: trustedSigners, newerThan: nil))
    }

    /// The route for a raw request target presented with `token`.
    ///
    /// A target that does not normalise is still asked about (the nodes refuse the ambiguous path
    /// and log it); so is a path that some latch's mount covers, whatever the token (a bad token is
    /// a decision the nodes log). Only a well-formed path that no mount of any latch covers, and
    /// that is not `/self`, is refused here.
    public func route(target: String, token: String) -> Route {
        let path: String
        switch RequestTarget.parse(target) {
        case .failure: return .ask(mountPath: nil)
        case .success(let parsed): path = parsed.path.value
        }
        if path == Mount.selfPath || path.hasPrefix(Mount.selfPath + "/") { return .ask(mountPath: Mount.selfPath) }
        if let latchToken = LatchToken(token), let latch = bundle.resolvedLatch(latchToken.latchID),
            let mount = latch.mount(for: path)
        {
            return .ask(mountPath: mount.path)
        }
        let covering = resolved.compactMap { $0.mount(for: path)?.path }
        guard let longest = covering.max(by: { $0.utf8.count < $1.utf8.count }) else { return .noMount(path: path) }
        return .ask(mountPath: longest)
    }
}

/// The routing view in force, replaceable while the proxy runs (a new bundle from a file or, once
/// the proxy follows the nodes, from the quorum). Readers get a consistent snapshot.
public final class RoutingTable: Sendable {
    private let view: NIOLockedValueBox<RoutingView>

    /// A table starting with `view`.
    public init(_ view: RoutingView) {
        self.view = NIOLockedValueBox(view)
    }

    /// The view in force.
    public var current: RoutingView { view.withLockedValue { $0 } }

    /// Replaces the view; calls already routed keep the one they read.
    public func replace(with newView: RoutingView) {
        view.withLockedValue { $0 = newView }
    }
}
