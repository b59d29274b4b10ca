import Foundation
import Logging
import QuorumAudit
import QuorumCrypto
import QuorumLog
import ServiceLifecycle
import Synchronization

/// A real log on disk whose checkpoints a dealer FROST group signs (the quorum's line) and node
/// identity keys cosign, under the names nodes use (``CheckpointNames``), served by the real audit server on loopback: what the audit tests and the
/// auditor command tests run against until nodes replicate a log of their own.
public final class AuditedLog: Sendable {
    /// The log's origin line.
    public let origin: String
    /// The RocksDB log.
    public let log: MerkleLog
    /// The signing group's public key package.
    public let group: PublicKeyPackage<Ed25519Suite>
    /// Node identity keys that cosign, by node id.
    public let nodeKeys: [UInt16: Ed25519KeyPair]
    private let shares: [KeyPackage<Ed25519Suite>]
    private let receipts = Mutex<[String: UInt64]>([:])
    private let heldEvidence = Mutex<[EquivocationEvidence]>([])

    /// A new log in `directory`, signed by `shares` (at least the threshold) of `group`.
    public init(
        directory: String, group: PublicKeyPackage<Ed25519Suite>, shares: [KeyPackage<Ed25519Suite>],
        nodeKeys: [UInt16: Ed25519KeyPair]
    ) throws {
        origin = CheckpointNames.origin(groupPublicKey: try group.verifyingKey.serialized())
        self.group = group
        self.shares = shares
        self.nodeKeys = nodeKeys
        log = try MerkleLog(directory: directory)
    }

    /// A log with a fresh 3-of-4 dealer group and four node keys.
    public convenience init(directory: String) throws {
        let (shares, group) = try SigningHelpers.dealer(Ed25519Suite.self, k: 3, n: 4)
        var keys: [UInt16: Ed25519KeyPair] = [:]
        for node in 1...4 { keys[UInt16(node)] = Ed25519KeyPair() }
        try self.init(directory: directory, group: group, shares: Array(shares.prefix(3)), nodeKeys: keys)
    }

    /// The group's 32-byte key.
    public var groupKey: [UInt8] { try! group.verifyingKey.serialized() }

    /// Appends `entries`; each `(requestID, entry)` pair is indexed as that request's receipt.
    @discardableResult
    public func append(_ entries: [[UInt8]], receipts ids: [String?] = []) throws -> [UInt64] {
        let indices = try log.append(entries)
        receipts.withLock { receipts in
            for (id, index) in zip(ids, indices) { if let id { receipts[id] = index } }
        }
        return indices
    }

    /// The key name node `id` cosigns with, as nodes name it.
    public func cosignerName(_ id: UInt16) -> String { CheckpointNames.nodeKeyName(origin: origin, nodeID: id) }

    /// Signs the checkpoint of the log's current size with the group and cosigns it with
    /// `cosigners` (default: every node), stores it beside the log and returns it.
    @discardableResult
    public func signCheckpoint(cosigners: [UInt16]? = nil, timestamp: UInt64 = 1_764_000_000) throws -> SignedNote {
        let note = try checkpointNote(size: log.size, root: log.root, cosigners: cosigners, timestamp: timestamp)
        try log.storeCheckpoint(note, origin: origin, verifiers: [groupSigner.verifier])
        return note
    }

    /// A signed note for any `size` and `root` (a forged or forked one, for tests), not stored.
    public func checkpointNote(
        size: UInt64, root: [UInt8], cosigners: [UInt16]? = nil, timestamp: UInt64 = 1_764_000_000
    ) throws -> SignedNote {
        let checkpoint = try Checkpoint(origin: origin, size: size, rootHash: root)
        var signers: [any NoteSigner] = [groupSigner]
        for id in (cosigners ?? nodeKeys.keys.sorted()) {
            signers.append(
                try CosignatureNoteSigner(name: cosignerName(id), keyPair: nodeKeys[id]!, timestamp: timestamp))
        }
        return try SignedNote(text: checkpoint.text, signers: signers)
    }

    /// The quorum's note signer: a whole FROST run with the shares, as a ceremony would.
    public var groupSigner: FROSTGroupNoteSigner {
        let shares = shares
        let group = group
        return try! FROSTGroupNoteSigner(name: origin, group: group) { message in
            try SigningHelpers.sign(message, keys: shares, group: group).bytes
        }
    }

    /// Adds evidence the source reports.
    public func addEvidence(_ evidence: EquivocationEvidence) { heldEvidence.withLock { $0.append(evidence) } }

    /// The log as an audit source.
    public var source: MerkleLogAuditSource {
        MerkleLogAuditSource(
            log: log, receiptIndex: { [self] id in receipts.withLock { $0[id] } },
            evidence: { [self] in heldEvidence.withLock { $0 } })
    }

    /// `{"participants":[{"node_id":…,"identity_key":…}]}`: the node keys as `ceremony.json` lists
    /// them, for `quorumctl audit --cosigners`.
    public var participantsJSON: String {
        let items = nodeKeys.keys.sorted().map {
            "{\"node_id\":\($0),\"identity_key\":\"\(Hex.encode(nodeKeys[$0]!.publicKey))\"}"
        }
        return "{\"participants\":[" + items.joined(separator: ",") + "]}\n"
    }

    /// Serves the log with the real audit server on `127.0.0.1`, runs `body` with its base URL,
    /// then stops the server.
    public func serving<T>(
        limits: ClientRateLimiter.Limits = .init(burst: 10_000, refillPerSecond: 10_000),
        _ body: (String) async throws -> T
    ) async throws -> T {
        try await Self.serve(source, limits: limits, body)
    }

    /// Serves `source` on loopback for the length of `body`.
    public static func serve<T>(
        _ source: any AuditLogSource, limits: ClientRateLimiter.Limits = .init(burst: 10_000, refillPerSecond: 10_000),
        _ body: (String) async throws -> T
    ) async throws -> T {
        var configuration = AuditServerConfiguration(host: "127.0.0.1", port: 0)
        configuration.limits = limits
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "audit-test")
        logger.logLevel = .warning
        let server = NodeAuditServer(configuration: configuration, source: source, logger: logger) { port in
            continuation.yield(port)
            continuation.finish()
        }
        let group = ServiceGroup(
            configuration: .init(services: [server], gracefulShutdownSignals: [], logger: logger))
        let task = Task { try await group.run() }
        defer { task.cancel() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CocoaError(.featureUnsupported) }
        let outcome: Result<T, any Error>
        do { outcome = .success(try await body("http://127.0.0.1:\(port)")) } catch { outcome = .failure(error) }
        await group.triggerGracefulShutdown()
        _ = await task.result
        let result = try outcome.get()
        return result
    }
}
