import Logging
import NIOConcurrencyHelpers
import QuorumCrypto
import QuorumIdentity
import QuorumProtocol

/// The coordinator's side of FROST signing (RFC 9591 §5), over node RPC: what a proxy (and
/// `quorumctl bench signing`, and the tests) use to get a threshold signature from the nodes.
///
/// It keeps one connection per node and a cache of each node's nonce commitments, fetched in
/// batches ahead of time and refilled in the background when it runs low, so a signature costs one
/// round trip to each signer. A node's cache is dropped when the node's boot epoch changes (it
/// restarted; its nonces are gone) or when it refuses a commitment as stale or unknown.
///
/// ``sign(requestID:message:signers:shareDeadline:)`` takes one commitment from each signer, builds the
/// signing package, asks every signer for its share at once, checks each share against the
/// signer's verifying share, and aggregates. A commitment never goes out twice: it leaves the
/// cache before it is used.
public final class SigningCoordinator: Sendable {
    /// Batch sizes and deadlines.
    public struct Configuration: Sendable {
        /// How many commitments to fetch from a node at once (1…256).
        public var commitmentBatch = 64
        /// Refill a node's cache in the background when it holds fewer than this.
        public var refillBelow = 16
        /// The deadline of each request.
        public var deadline: Duration = .seconds(5)
        /// How many times ``SigningCoordinator/sign(requestID:message:signers:shareDeadline:)`` tries with fresh
        /// commitments (and, when it picks the signers, other nodes) before giving up.
        public var attempts = 2

        /// The defaults: batches of 64, refill below 16, 5 s deadlines, two attempts.
        public init() {}
    }

    /// Why the coordinator could not get a signature or an answer.
    public struct SigningError: Error, Sendable, CustomStringConvertible {
        /// What kind of failure.
        public enum Code: String, Sendable, Hashable {
            /// The node could not be reached, or the connection failed.
            case transport
            /// The node refused; ``SigningError/refusal`` says why when it is a signing refusal.
            case refused
            /// The node answered with something that does not fit the request.
            case badAnswer = "bad-answer"
            /// The node's share does not verify against its verifying share.
            case invalidShare = "invalid-share"
            /// Not enough signers are known or reachable.
            case tooFewSigners = "too-few-signers"
        }

        /// What kind of failure.
        public let code: Code
        /// The node at fault, if one is.
        public let node: UInt16?
        /// What went wrong.
        public let reason: String
        /// The node's signing refusal, for ``Code/refused``.
        public let refusal: SigningRefusal?
        /// The node's error response, for ``Code/refused``.
        public let response: ErrorResponse?

        init(
            _ code: Code, node: UInt16?, _ reason: String, refusal: SigningRefusal? = nil,
            response: ErrorResponse? = nil
        ) {
            self.code = code
            self.node = node
            self.reason = reason
            self.refusal = refusal
            self.response = response
        }

        /// `code: node N: reason`.
        public var description: String {
            "\(code.rawValue): " + (node.map { "node \($0): " } ?? "") + reason
        }
    }

    /// A commitment taken from the cache, ready to be named in a sign request.
    public struct Commitment: Sendable, Hashable {
        /// The node.
        public let nodeID: UInt16
        /// The node's boot epoch the commitment belongs to.
        public let bootEpoch: UInt64
        /// The node's nonce id and the commitment.
        public let entry: NonceCommitment
    }

    private struct Cache {
        var bootEpoch: UInt64?
        var commitments: [NonceCommitment] = []
        /// The batch being fetched, if one is: every caller that finds the cache empty waits for
        /// it instead of fetching its own, so a burst never asks a node for more commitments than
        /// its pool holds (the node would discard the oldest).
        var inflight: Task<Void, any Error>?

        mutating func pop() -> Commitment? {
            guard let epoch = bootEpoch, !commitments.isEmpty else { return nil }
            return Commitment(nodeID: 0, bootEpoch: epoch, entry: commitments.removeFirst())
        }
    }

    /// The signing group's public package (`group.json`).
    public let group: PublicKeyPackage<Ed25519Suite>
    /// The nodes that can be asked, by id.
    public let nodes: [UInt16: ClusterFile.Node]
    private let client: NodeClient
    private let configuration: Configuration
    private let connections = NIOLockedValueBox<[UInt16: NodeConnection]>([:])
    private let caches = NIOLockedValueBox<[UInt16: Cache]>([:])
    private let logger: Logger

    /// A coordinator that reaches `nodes` with `client` (holding a proxy certificate) and checks
    /// shares against `group`.
    public init(
        client: NodeClient, nodes: [ClusterFile.Node], group: PublicKeyPackage<Ed25519Suite>,
        configuration: Configuration = Configuration(), logger: Logger = Logger(label: "quorum.signing.coordinator")
    ) {
        self.client = client
        self.nodes = Dictionary(nodes.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        self.group = group
        self.configuration = configuration
        self.logger = logger
    }

    /// The group's threshold.
    public var threshold: Int { group.minSigners }

    // MARK: - Single requests

    /// The open connection to node `id`, connecting first if there is none.
    public func connection(to id: UInt16) async throws(SigningError) -> NodeConnection {
        if let open = connections.withLockedValue({ $0[id] }), open.isActive { return open }
        guard let node = nodes[id] else {
            throw SigningError(.tooFewSigners, node: id, "is not one of the nodes this coordinator knows")
        }
        let made: NodeConnection
        do {
            made = try await client.connect(
                host: node.address.host, port: node.address.port, expecting: .node(id: id))
        } catch {
            throw SigningError(.transport, node: id, error.description)
        }
        let (winner, stale) = connections.withLockedValue { table -> (NodeConnection, NodeConnection?) in
            if let other = table[id], other.isActive { return (other, made) }
            let replaced = table[id]
            table[id] = made
            return (made, replaced)
        }
        if let stale { await stale.close() }
        return winner
    }

    /// Sends `message` to node `id` over its persistent connection and decodes the answer as
    /// `Response`, within `deadline` (the configured deadline when `nil`). The proxy's decision
    /// path sends its decide and settle requests this way, over the connections signing uses.
    public func ask<Response: WireMessage>(
        _ id: UInt16, _ message: some WireMessage, _: Response.Type, deadline: Duration? = nil
    ) async throws(SigningError) -> Response {
        let connection = try await connection(to: id)
        let frame: Frame
        do {
            frame = try await connection.request(message, deadline: deadline ?? configuration.deadline)
        } catch {
            if error.code == .refusedByPeer, let response = error.response {
                throw SigningError(
                    .refused, node: id, response.description, refusal: SigningRefusal(response), response: response)
            }
            throw SigningError(.transport, node: id, error.description)
        }
        do { return try frame.decode(Response.self) } catch {
            throw SigningError(.badAnswer, node: id, "an answer that does not decode as \(Response.name): \(error)")
        }
    }

    /// Asks node `id` for `count` fresh commitments (not cached).
    public func fetchCommitments(from id: UInt16, count: Int) async throws(SigningError) -> CommitmentsResponse {
        let request: CommitmentsRequest
        do { request = try CommitmentsRequest(count: count) } catch {
            throw SigningError(.badAnswer, node: id, "cannot ask for \(count) commitments: \(error)")
        }
        let response = try await ask(id, request, CommitmentsResponse.self)
        guard response.nodeID == id else {
            throw SigningError(.badAnswer, node: id, "commitments answered as node \(response.nodeID)")
        }
        return response
    }

    /// Sends `request` to node `id` and returns its answer: one signer's round trip, share
    /// unchecked (``sign(requestID:message:signers:shareDeadline:)`` checks it). `deadline` bounds
    /// the wait (the configured deadline when `nil`); a node that does not answer in it fails as
    /// ``SigningError/Code/transport``, naming the node.
    public func requestShare(
        _ request: SignRequest, from id: UInt16, deadline: Duration? = nil
    ) async throws(SigningError) -> SignResponse {
        let response = try await ask(id, request, SignResponse.self, deadline: deadline)
        guard response.nodeID == id, response.requestID == request.requestID, response.bootEpoch == request.bootEpoch
        else {
            throw SigningError(
                .badAnswer, node: id,
                "a share for node \(response.nodeID), request \(response.requestID), epoch \(response.bootEpoch); "
                    + "asked node \(id), request \(request.requestID), epoch \(request.bootEpoch)")
        }
        return response
    }

    // MARK: - The commitment cache

    /// Takes one of node `id`'s cached commitments, waiting for a batch when none is cached, and
    /// starts a background refill when the cache runs low. At most one batch per node is in
    /// flight at a time. The commitment is out of the cache: it is never handed out again.
    public func nextCommitment(from id: UInt16) async throws(SigningError) -> Commitment {
        for _ in 0..<16 {
            let (popped, low) = caches.withLockedValue { table -> (Commitment?, Bool) in
                var cache = table[id] ?? Cache()
                let popped = cache.pop()
                table[id] = cache
                return (popped, cache.inflight == nil && cache.commitments.count < configuration.refillBelow)
            }
            if let popped {
                if low { _ = startRefill(id) }
                return Commitment(nodeID: id, bootEpoch: popped.bootEpoch, entry: popped.entry)
            }
            try await refill(id)
        }
        throw SigningError(.badAnswer, node: id, "no commitment left after fetching batches")
    }

    /// One of node `id`'s cached commitments if the cache holds one, without waiting; `nil` when it
    /// is empty (a refill is then started in the background, as it is when the cache runs low).
    /// For callers that must not wait on a node that may hang: the proxy picks its optimistic
    /// signers this way first.
    public func cachedCommitment(from id: UInt16) -> Commitment? {
        let (popped, low) = caches.withLockedValue { table -> (Commitment?, Bool) in
            var cache = table[id] ?? Cache()
            let popped = cache.pop()
            table[id] = cache
            return (popped, cache.inflight == nil && cache.commitments.count < configuration.refillBelow)
        }
        if low { _ = startRefill(id) }
        return popped.map { Commitment(nodeID: id, bootEpoch: $0.bootEpoch, entry: $0.entry) }
    }

    /// How many of node `id`'s commitments are cached now (for the proxy's metrics).
    public func cachedCommitmentCount(of id: UInt16) -> Int {
        caches.withLockedValue { $0[id]?.commitments.count ?? 0 }
    }

    /// Waits for a batch of commitments from node `id` to reach its cache: the one in flight, or
    /// a new one. A batch of another epoch replaces what was cached.
    public func refill(_ id: UInt16) async throws(SigningError) {
        do {
            try await startRefill(id).value
        } catch let error as SigningError {
            throw error
        } catch {
            throw SigningError(.transport, node: id, "\(error)")
        }
    }

    /// The batch fetch in flight for node `id`, started if there is none.
    private func startRefill(_ id: UInt16) -> Task<Void, any Error> {
        caches.withLockedValue { table in
            if let running = table[id]?.inflight { return running }
            // The task clears `inflight` under this lock, so it cannot finish before it is stored.
            let task = Task { try await self.fetchBatch(id) }
            table[id, default: Cache()].inflight = task
            return task
        }
    }

    private func fetchBatch(_ id: UInt16) async throws(SigningError) {
        let response: CommitmentsResponse
        do {
            response = try await fetchCommitments(from: id, count: configuration.commitmentBatch)
        } catch {
            caches.withLockedValue { $0[id]?.inflight = nil }
            throw error
        }
        caches.withLockedValue { table in
            var cache = table[id] ?? Cache()
            if cache.bootEpoch != response.bootEpoch {
                cache.bootEpoch = response.bootEpoch
                cache.commitments = []
            }
            cache.commitments += response.commitments
            cache.inflight = nil
            table[id] = cache
        }
    }

    /// Forgets every commitment cached for node `id` (it restarted, or refused one as unknown).
    public func dropCommitments(of id: UInt16) {
        caches.withLockedValue { $0[id] = Cache() }
    }

    // MARK: - Signing

    /// A threshold signature over `message` for `requestID` by `signers` (at least the threshold),
    /// or by the threshold's worth of nodes it picks, lowest id first, skipping nodes that fail.
    ///
    /// Each attempt takes one commitment per signer, asks them all in parallel and verifies every
    /// share; a stale or unknown commitment drops that node's cache and the next attempt fetches
    /// fresh ones. The signature is an RFC 8032 Ed25519 signature under the group key.
    /// `shareDeadline` bounds each signer's wait for its share (the configured deadline when
    /// `nil`), so a signer that hangs fails the attempt, named, instead of holding it.
    public func sign(
        requestID: String, message: [UInt8], signers: [UInt16]? = nil, shareDeadline: Duration? = nil
    ) async throws(SigningError) -> Signature {
        var excluded = Set<UInt16>()
        var lastError: SigningError?
        for _ in 0..<max(1, configuration.attempts) {
            let chosen: [UInt16]
            if let signers {
                chosen = signers.sorted()
            } else {
                chosen = Array(nodes.keys.sorted().filter { !excluded.contains($0) }.prefix(threshold))
            }
            guard chosen.count >= threshold else {
                throw lastError
                    ?? SigningError(
                        .tooFewSigners, node: nil, "\(chosen.count) signers available; the threshold is \(threshold)")
            }
            do {
                return try await attempt(
                    requestID: requestID, message: message, signers: chosen, shareDeadline: shareDeadline)
            } catch {
                lastError = error
                guard let node = error.node else { throw error }
                switch (error.code, error.refusal?.reason) {
                case (.refused, .staleEpoch?), (.refused, .unknownNonce?), (.refused, .nonceAlreadyUsed?):
                    dropCommitments(of: node)
                case (.refused, .conflictingDecision?), (.refused, .noGroupKey?), (.transport, _), (.invalidShare, _),
                    (.badAnswer, _):
                    dropCommitments(of: node)
                    excluded.insert(node)
                default:
                    throw error
                }
                logger.info(
                    "signing attempt failed; retrying", metadata: ["request_id": "\(requestID)", "error": "\(error)"])
            }
        }
        throw lastError ?? SigningError(.tooFewSigners, node: nil, "no attempt was made")
    }

    /// One signing round with `signers` (sorted): commitments, requests in parallel, share checks,
    /// aggregation.
    private func attempt(
        requestID: String, message: [UInt8], signers: [UInt16], shareDeadline: Duration?
    ) async throws(SigningError) -> Signature {
        let commitments = try await collect(signers) { id throws(SigningError) in
            try await self.nextCommitment(from: id)
        }
        let (package, session) = try prepare(message: message, commitments: commitments)
        _ = package
        let list: [SignerCommitment]
        do {
            list = try commitments.map { commitment throws(WireError) in
                try SignerCommitment(identifier: commitment.nodeID, commitment: commitment.entry.commitment)
            }
        } catch {
            throw SigningError(.badAnswer, node: nil, "\(error)")
        }
        let requests: [UInt16: SignRequest]
        do {
            requests = try Dictionary(
                uniqueKeysWithValues: commitments.map { commitment throws(WireError) in
                    (
                        commitment.nodeID,
                        try SignRequest(
                            bootEpoch: commitment.bootEpoch, nonceID: commitment.entry.nonceID, requestID: requestID,
                            message: message, commitments: list)
                    )
                })
        } catch {
            throw SigningError(.tooFewSigners, node: nil, "cannot build the sign request: \(error)")
        }
        let responses = try await collect(signers) { id throws(SigningError) in
            try await self.requestShare(requests[id]!, from: id, deadline: shareDeadline)
        }
        var shares: [SignatureShare<Ed25519Suite>] = []
        for response in responses {
            shares.append(try verifiedShare(response.share, from: response.nodeID, session: session))
        }
        return try aggregate(shares, session: session)
    }

    /// Node `nodeID`'s signature share `encoded`, checked against its verifying share in the
    /// group for `session`: a share that does not verify is refused naming the node, so a bad
    /// signer is found before aggregation.
    public func verifiedShare(
        _ encoded: [UInt8], from nodeID: UInt16, session: SigningSession<Ed25519Suite>
    ) throws(SigningError) -> SignatureShare<Ed25519Suite> {
        do {
            let share = try SignatureShare<Ed25519Suite>(identifier: try Identifier(nodeID), encoded: encoded)
            guard try FROST<Ed25519Suite>.verifyShare(share, session: session, group: group) else {
                throw SigningError(.invalidShare, node: nodeID, "its share does not verify against its verifying share")
            }
            return share
        } catch let error as SigningError {
            throw error
        } catch {
            throw SigningError(.invalidShare, node: nodeID, "\(error)")
        }
    }

    /// The group signature from verified `shares` of every signer of `session`.
    public func aggregate(
        _ shares: [SignatureShare<Ed25519Suite>], session: SigningSession<Ed25519Suite>
    ) throws(SigningError) -> Signature {
        do {
            return try FROST<Ed25519Suite>.aggregate(session: session, shares: shares, group: group)
        } catch {
            throw SigningError(.invalidShare, node: error.culprits.first?.value, error.description)
        }
    }

    /// The signing package and session for `message` over `commitments` (sorted by node id).
    public func prepare(
        message: [UInt8], commitments: [Commitment]
    ) throws(SigningError) -> (SigningPackage<Ed25519Suite>, SigningSession<Ed25519Suite>) {
        do {
            let parsed = try commitments.map { commitment throws(CryptoError) in
                try SigningCommitments<Ed25519Suite>(
                    identifier: try Identifier(commitment.nodeID), encoded: commitment.entry.commitment)
            }
            let package = try SigningPackage(message: message, commitments: parsed)
            return (package, try SigningSession(package: package, verifyingKey: group.verifyingKey))
        } catch {
            throw SigningError(.badAnswer, node: error.culprits.first?.value, "unusable commitments: \(error)")
        }
    }

    /// `body(id)` with its failure as a value. Kept out of the task-group child closure: a
    /// typed-throws `do`/`catch` inline there crashed the concurrency runtime in release builds
    /// (see `NodeClient.answer`).
    private static func outcome<T>(
        of body: @Sendable (UInt16) async throws(SigningError) -> T, for id: UInt16
    ) async -> Result<T, SigningError> {
        do throws(SigningError) { return .success(try await body(id)) } catch { return .failure(error) }
    }

    /// Runs `body` for every id at once; the results in the order of `ids`, or the first error.
    private func collect<T: Sendable>(
        _ ids: [UInt16], _ body: @escaping @Sendable (UInt16) async throws(SigningError) -> T
    ) async throws(SigningError) -> [T] {
        let results = await withTaskGroup(of: (Int, Result<T, SigningError>).self) { group in
            for (index, id) in ids.enumerated() {
                group.addTask { (index, await Self.outcome(of: body, for: id)) }
            }
            var results: [(Int, Result<T, SigningError>)] = []
            for await result in group { results.append(result) }
            return results.sorted { $0.0 < $1.0 }.map(\.1)
        }
        var values: [T] = []
        for result in results {
            switch result {
            case .success(let value): values.append(value)
            case .failure(let error): throw error
            }
        }
        return values
    }

    /// Closes every connection.
    public func close() async {
        let open = connections.withLockedValue { table in
            defer { table = [:] }
            return Array(table.values)
        }
        for connection in open { await connection.close() }
    }
}
