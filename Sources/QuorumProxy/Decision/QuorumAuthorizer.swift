import Foundation
import Logging
import NIOConcurrencyHelpers
import QuorumCrypto
import QuorumIdentity
import QuorumNode
import QuorumPolicy
import QuorumProtocol

/// The decision path of a proxy that asks the quorum (DESIGN.md §5, "A call", steps 2-5): the
/// real ``CallAuthorizer``.
///
/// For each call it names an optimistic signer set of k nodes believed up (one cached nonce
/// commitment each, from ``SigningCoordinator``'s per-node caches), sends one ``DecideRequest``
/// to all n nodes at once over the coordinator's mutual-TLS connections, checks every answer (the
/// verdict's signature under the node's identity key, the FROST share against the node's verifying
/// share, the decryption share's proof) and feeds it to a ``DecisionRound``, which says what to do
/// next. An allow is returned only with a group signature verified under `group.json`'s key and,
/// when the route names a secret, the credential opened from k verified decryption shares.
/// Anything less is a deny or a 503; there is no fallback.
public final class QuorumAuthorizer: CallAuthorizer, Sendable {
    /// The parts it needs, already loaded.
    public struct Parts: Sendable {
        /// Reaches the nodes, caches their commitments, verifies and aggregates shares.
        public var coordinator: SigningCoordinator
        /// The sealing group (`sealing-group.json`), which the proxy's credentials are sealed to.
        public var sealingGroup: PublicKeyPackage<Ed25519Suite>
        /// The proxy's sealed credentials (`<data_dir>/credentials`).
        public var credentials: SealedCredentialDirectory
        /// The routing view, for the secrets' injection rules.
        public var routing: RoutingTable
        /// How long a call may wait for its decision, signing included.
        public var decisionTimeout: Duration
        /// How long a chosen signer is waited for before k other nodes that reached the decision
        /// sign it instead (``DecisionRound/signerBudgetPassed()``); also the bound on each share
        /// of a sign request round, and on waiting for a node's commitments when its cache is empty.
        public var signerBudget: Duration
        /// Where each receipt goes once it is made (allow and deny), with the request and the
        /// verdicts it rests on, for the nodes' replicated log; `nil` logs nothing.
        public var log: LogSubmitter?

        /// The parts; the per-signer budget defaults to a third of the decision timeout.
        public init(
            coordinator: SigningCoordinator, sealingGroup: PublicKeyPackage<Ed25519Suite>,
            credentials: SealedCredentialDirectory, routing: RoutingTable, decisionTimeout: Duration,
            signerBudget: Duration? = nil, log: LogSubmitter? = nil
        ) {
            self.coordinator = coordinator
            self.sealingGroup = sealingGroup
            self.credentials = credentials
            self.routing = routing
            self.decisionTimeout = decisionTimeout
            self.signerBudget = signerBudget ?? decisionTimeout / 3
            self.log = log
        }
    }

    private struct IdentityKey {
        let bootEpoch: UInt64
        let key: [UInt8]
    }

    private let parts: Parts
    private let groupKey: [UInt8]
    private let nodeIDs: [UInt16]
    private let identityKeys = NIOLockedValueBox<[UInt16: IdentityKey]>([:])
    /// Nodes that failed recently, and until when they are not picked as optimistic signers.
    private let downUntil = NIOLockedValueBox<[UInt16: ContinuousClock.Instant]>([:])
    private let metrics: ProxyMetrics
    /// How fast each node has been answering decide requests, to name fast nodes as signers.
    private let preference = NIOLockedValueBox(SignerPreference())
    private let logger: Logger

    /// How long a node that failed is passed over when picking optimistic signers.
    static let downPenalty: Duration = .seconds(2)

    /// An authorizer over `parts`.
    ///
    /// - Throws: ``CryptoError`` when the signing group's key cannot be serialised.
    public init(_ parts: Parts, metrics: ProxyMetrics = ProxyMetrics(), logger: Logger) throws(CryptoError) {
        self.parts = parts
        groupKey = try parts.coordinator.group.verifyingKey.serialized()
        nodeIDs = parts.coordinator.nodes.keys.sorted()
        self.metrics = metrics
        self.logger = logger
    }

    /// The threshold k.
    public var threshold: Int { parts.coordinator.threshold }

    /// Learns every node's identity key and fills every commitment cache, so the first calls do
    /// not pay for it. Failures are only logged: a node that is down now is asked again per call.
    public func warmUp() async {
        await withTaskGroup(of: Void.self) { group in
            for node in nodeIDs {
                group.addTask {
                    _ = await self.identityKey(of: node, refresh: false)
                    do { try await self.parts.coordinator.refill(node) } catch {
                        self.logger.info("node not ready", metadata: ["node": "\(node)", "reason": "\(error)"])
                    }
                }
            }
        }
    }

    /// Sends what the log submitter still holds (at most 10 s), then closes the connections.
    public func close() async {
        if let log = parts.log, await !log.flush(within: .seconds(10)) {
            logger.error("log entries still queued at shutdown were not delivered within 10 s")
        }
        await parts.coordinator.close()
    }

    /// Brings the commitments-available gauge up to date for every node; the metrics listener
    /// calls it before each scrape.
    public func sampleGauges() {
        for node in nodeIDs { metrics.commitments(node, parts.coordinator.cachedCommitmentCount(of: node)) }
    }

    // MARK: - Deciding

    /// Decides `call` with the quorum.
    public func authorize(_ call: AgentCall) async -> CallAuthorization {
        await authorizeTimed(call).authorization
    }

    /// Decides `call` with the quorum and says where the time went: the verdict round, sign
    /// request rounds, and the receipt check with the credential's opening.
    public func authorizeTimed(_ call: AgentCall) async -> TimedAuthorization {
        let start = ContinuousClock.now
        let deadline = start + parts.decisionTimeout
        let requestID = call.decisionRequest.requestID
        let slots = await optimisticSlots(deadline: deadline)
        let request: DecideRequest
        do {
            request = try Self.decideRequest(call, signers: slots.map(\.slot))
        } catch {
            return TimedAuthorization(
                authorization: .unavailable(reason: "cannot build the decision request: \(error)"),
                timings: DecisionTimings(verdict: ContinuousClock.now - start))
        }
        let commitments = slots.map(\.commitment)
        var round = DecisionRound(
            threshold: threshold, nodes: nodeIDs, optimisticSigners: slots.map(\.slot.identifier))
        let allowed = NIOLockedValueBox<Set<UInt16>>([])
        /// Each node's signed verdict and the decision it stands for, for the receipt's log entry.
        var verdicts: [UInt16: (signed: SignedVerdict, decision: [UInt8])] = [:]

        enum Event: Sendable {
            case answer(UInt16, Result<DecideResponse, SigningCoordinator.SigningError>)
            case signerBudget
            case deadline
        }
        let (events, continuation) = AsyncStream.makeStream(of: Event.self)
        for node in nodeIDs {
            Task {
                let sent = ContinuousClock.now
                let answer = await self.decide(request, at: node, deadline: deadline)
                // Measured even when the round has already finished: a slow node's late answer is
                // what tells the proxy to name other signers.
                self.observe(node, answer, after: ContinuousClock.now - sent)
                continuation.yield(.answer(node, answer))
            }
        }
        let timer = Task {
            let budget = start + parts.signerBudget
            if budget < deadline, (try? await Task.sleep(until: budget, clock: .continuous)) != nil {
                continuation.yield(.signerBudget)
            }
            try? await Task.sleep(until: deadline, clock: .continuous)
            continuation.yield(.deadline)
        }
        defer {
            timer.cancel()
            continuation.finish()
        }

        var next = DecisionRound.Next.wait
        var signing = Duration.zero
        eventLoop: for await event in events {
            switch event {
            case .deadline:
                next = round.deadlinePassed()
            case .signerBudget:
                next = round.signerBudgetPassed()
                for node in round.overdueSigners {
                    markDown(node)
                    logger.warning(
                        "a chosen signer did not answer within the per-signer budget; signing without it",
                        metadata: [
                            "request_id": "\(requestID)", "node": "\(node)", "budget": "\(parts.signerBudget)",
                        ])
                }
            case .answer(let node, .failure(let error)):
                markDown(node)
                next = round.failed(node, reason: error.description)
            case .answer(let node, .success(let response)):
                switch await check(response, from: node, request: request) {
                case .refused(let reason):
                    logger.warning(
                        "unusable verdict",
                        metadata: ["request_id": "\(requestID)", "node": "\(node)", "reason": "\(reason)"])
                    next = round.failed(node, reason: reason)
                case .verdict(let verdict):
                    markUp(node)
                    if verdict.decision == .allow { allowed.withLockedValue { _ = $0.insert(node) } }
                    let claims = ReceiptClaims(
                        request: request, verdict: verdict, signers: request.signers.map(\.identifier))
                    verdicts[node] = (SignedVerdict(response), claims.decisionDigest)
                    let share = parsedShare(
                        response, commitments: commitments, requestID: requestID)
                    let decryption = parsedDecryptionShare(
                        response, verdict: verdict, requestID: requestID)
                    next = round.received(
                        DecisionRound.Answer(
                            node: node, verdict: verdict, claims: claims, share: share, decryptionShare: decryption))
                }
            }
            // Signing steps run here, in order; answers that arrive meanwhile wait in the stream.
            while true {
                switch next {
                case .wait:
                    continue eventLoop
                case .finish:
                    break eventLoop
                case .aggregate(let claims, let shares):
                    next = aggregate(claims, shares: shares, commitments: commitments, round: &round)
                case .sign(let claims, let signers):
                    let signStart = ContinuousClock.now
                    next = await signAgain(
                        claims, signers: signers, requestID: requestID, deadline: deadline, round: &round)
                    signing += ContinuousClock.now - signStart
                }
            }
        }
        let decided = ContinuousClock.now
        for node in round.missedSigners { metrics.signerMissed(node) }
        var timings = DecisionTimings(verdict: decided - start - signing, signing: signing)
        guard case .finish(let outcome) = next else {
            return TimedAuthorization(
                authorization: .unavailable(reason: "the decision round ended without a decision"), timings: timings)
        }
        let authorization = finish(outcome, call: call, allowed: allowed)
        submitReceipt(authorization, claims: outcome.receiptClaims, request: request, verdicts: verdicts)
        let finished = ContinuousClock.now
        switch authorization {
        case .allow, .answer: timings.credential = finished - decided
        case .deny, .unavailable: break
        }
        logger.debug("decided", metadata: ["request_id": "\(requestID)", "elapsed": "\(finished - start)"])
        return TimedAuthorization(authorization: authorization, timings: timings)
    }

    /// Records how long node `node` took to answer a decide request; a failure counts as the
    /// whole decision timeout, so a node that cannot answer is not named as a signer either.
    private func observe(
        _ node: UInt16, _ answer: Result<DecideResponse, SigningCoordinator.SigningError>, after elapsed: Duration
    ) {
        let latency: Duration
        switch answer {
        case .success: latency = elapsed
        case .failure: latency = max(elapsed, parts.decisionTimeout)
        }
        preference.withLockedValue { $0.observe(node, latency: latency) }
    }

    /// Hands the receipt `authorization` carries (if any) to the log submitter, as a receipt entry
    /// with the logged request and the signed verdicts that reached the receipt's decision
    /// (`claims`, the round's, so the receipt just made is not parsed again). It
    /// only queues: the agent's answer never waits on the log.
    private func submitReceipt(
        _ authorization: CallAuthorization, claims: ReceiptClaims?, request: DecideRequest,
        verdicts: [UInt16: (signed: SignedVerdict, decision: [UInt8])]
    ) {
        guard let log = parts.log, let claims else { return }
        let compact: String?
        switch authorization {
        case .allow(let call): compact = call.receipt
        case .answer(let call): compact = call.receipt
        case .deny(let call): compact = call.receipt
        case .unavailable: compact = nil
        }
        guard let compact else { return }
        let decision = claims.decisionDigest
        let entry = ReceiptEntry(
            receipt: compact, request: LoggedRequest(request),
            verdicts: verdicts.values.filter { $0.decision == decision }.map(\.signed))
        var leaf = LogEntry.receipt(entry).encoded()
        if leaf.count > LogEntry.maximumLength {
            // Verdicts with long traces: the receipt and the request still go in; the verdicts
            // are in every node's own records.
            leaf = LogEntry.receipt(ReceiptEntry(receipt: compact, request: LoggedRequest(request), verdicts: []))
                .encoded()
        }
        guard leaf.count <= LogEntry.maximumLength else {
            logger.error(
                "the receipt's log entry is over the leaf limit; not logged",
                metadata: ["request_id": "\(request.requestID)", "bytes": "\(leaf.count)"])
            return
        }
        log.submit(leaf)
    }

    /// Node `node`'s answer to `request`, or why there is none. A function of its own rather than
    /// inline in the task's closure: typed throws caught inline in a child task's closure crashed
    /// the concurrency runtime in release builds (see `NodeClient.answer`).
    private func decide(
        _ request: DecideRequest, at node: UInt16, deadline: ContinuousClock.Instant
    ) async -> Result<DecideResponse, SigningCoordinator.SigningError> {
        do throws(SigningCoordinator.SigningError) {
            return .success(
                try await parts.coordinator.ask(node, request, DecideResponse.self, deadline: deadline - .now))
        } catch {
            return .failure(error)
        }
    }

    /// The decide request for `call`, naming `signers`.
    static func decideRequest(_ call: AgentCall, signers: [SignerSlot]) throws(WireError) -> DecideRequest {
        let decision = call.decisionRequest
        return try DecideRequest(
            requestID: decision.requestID, time: Int64((call.receivedAt.timeIntervalSince1970 * 1000).rounded(.down)),
            method: decision.method, target: decision.target,
            headers: try decision.headers.map { header throws(WireError) in
                try DecisionHeader(name: header.name, value: header.value)
            },
            body: decision.body, bodyLength: UInt64(decision.bodyLength), bodySHA256: call.bodySHA256,
            clientAddress: decision.clientAddress, token: decision.token,
            clientCertificateSHA256: decision.clientCertificateSHA256 ?? [],
            signers: signers.sorted { $0.identifier < $1.identifier })
    }

    // MARK: - Optimistic signers

    private struct PickedSlot: Sendable {
        let slot: SignerSlot
        let commitment: SigningCoordinator.Commitment
    }

    /// One cached commitment from each of k nodes believed up, in ``SignerPreference`` order
    /// (the lowest ids among nodes that answer fast, then slow nodes, then nodes that failed
    /// recently), skipping nodes whose commitment cannot be had; fewer than k when not enough can
    /// (the round then signs in a sign request round, or finds too few answers). A cached commitment is taken without
    /// waiting; a node whose cache is empty is waited for at most the per-signer budget, so a
    /// node that hangs cannot hold the call here either.
    private func optimisticSlots(deadline: ContinuousClock.Instant) async -> [PickedSlot] {
        let now = ContinuousClock.now
        let down = downUntil.withLockedValue { table in Set(table.filter { $0.value > now }.keys) }
        let ordered = preference.withLockedValue { $0.ordered(nodeIDs, threshold: threshold, down: down) }
        var picked: [PickedSlot] = []
        var index = 0
        let budget = parts.signerBudget
        while picked.count < threshold, index < ordered.count, ContinuousClock.now < deadline {
            let batch = Array(ordered[index..<min(ordered.count, index + threshold - picked.count)])
            index += batch.count
            let results = await withTaskGroup(of: PickedSlot?.self) { group in
                for node in batch {
                    group.addTask { await self.slot(of: node, waitingAtMost: min(budget, deadline - .now)) }
                }
                var results: [PickedSlot] = []
                for await result in group { if let result { results.append(result) } }
                return results
            }
            picked += results
        }
        return picked.sorted { $0.slot.identifier < $1.slot.identifier }
    }

    /// Node `node`'s signer slot: a cached commitment taken at once, else one waited for at most
    /// `limit`; `nil` (and the node passed over for a while) when none can be had. A function of
    /// its own rather than inline in the task-group child: typed throws caught inline there
    /// crashed the concurrency runtime in release builds (see `NodeClient.answer`).
    private func slot(of node: UInt16, waitingAtMost limit: Duration) async -> PickedSlot? {
        let coordinator = parts.coordinator
        var found = coordinator.cachedCommitment(from: node)
        if found == nil {
            found = await Self.within(limit) { await Self.fetchedCommitment(coordinator, node) }
        }
        guard let commitment = found else {
            markDown(node)
            return nil
        }
        do throws(WireError) {
            let slot = try SignerSlot(
                identifier: node, bootEpoch: commitment.bootEpoch, nonceID: commitment.entry.nonceID,
                commitment: commitment.entry.commitment)
            return PickedSlot(slot: slot, commitment: commitment)
        } catch {
            markDown(node)
            return nil
        }
    }

    private static func fetchedCommitment(
        _ coordinator: SigningCoordinator, _ node: UInt16
    ) async -> SigningCoordinator.Commitment? {
        do throws(SigningCoordinator.SigningError) { return try await coordinator.nextCommitment(from: node) } catch {
            return nil
        }
    }

    /// What `operation` returns if it finishes within `limit`, else `nil` at once; an operation
    /// still running then is left to finish on its own (a commitment batch in flight still fills
    /// the cache for later calls).
    static func within<T: Sendable>(
        _ limit: Duration, _ operation: @escaping @Sendable () async -> T?
    ) async -> T? {
        guard limit > .zero else { return nil }
        let resumed = NIOLockedValueBox(false)
        return await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
            let claim: @Sendable () -> Bool = {
                resumed.withLockedValue { done in
                    defer { done = true }
                    return !done
                }
            }
            let timer = Task {
                try? await Task.sleep(for: limit)
                if claim() { continuation.resume(returning: nil) }
            }
            Task {
                let value = await operation()
                if claim() {
                    timer.cancel()
                    continuation.resume(returning: value)
                }
            }
        }
    }

    private func markDown(_ node: UInt16) {
        let until = ContinuousClock.now + Self.downPenalty
        downUntil.withLockedValue { $0[node] = until }
    }

    private func markUp(_ node: UInt16) {
        downUntil.withLockedValue { _ = $0.removeValue(forKey: node) }
    }

    // MARK: - Checking answers

    /// The identity key of `node`, from its status; fetched again when `refresh` is set.
    /// `requestID` names the call that needed it, for the log.
    private func identityKey(of node: UInt16, refresh: Bool, requestID: String? = nil) async -> IdentityKey? {
        if !refresh, let known = identityKeys.withLockedValue({ $0[node] }) { return known }
        do {
            let status = try await parts.coordinator.ask(node, StatusRequest(), StatusResponse.self)
            guard status.nodeID == node, let key = status.identityKey else { return nil }
            let learned = IdentityKey(bootEpoch: status.bootEpoch, key: key)
            identityKeys.withLockedValue { $0[node] = learned }
            return learned
        } catch {
            var metadata: Logger.Metadata = ["node": "\(node)", "reason": "\(error)"]
            if let requestID { metadata["request_id"] = "\(requestID)" }
            logger.info("cannot learn a node's identity key", metadata: metadata)
            return nil
        }
    }

    private enum Checked {
        case verdict(Verdict)
        case refused(String)
    }

    /// The verdict in `response`, if `response` is node `node`'s signed answer to `request`. The
    /// identity key is fetched again when the node's epoch changed or the signature does not
    /// verify under the key known (the node restarted with a new key), never more than once.
    private func check(
        _ response: DecideResponse, from node: UInt16, request: DecideRequest
    ) async -> Checked {
        guard response.nodeID == node, response.requestID == request.requestID else {
            return .refused(
                "answered as node \(response.nodeID) for request \(response.requestID); asked node \(node) for \(request.requestID)"
            )
        }
        let requestID = request.requestID
        var key = await identityKey(of: node, refresh: false, requestID: requestID)
        if let known = key, known.bootEpoch != response.bootEpoch {
            key = await identityKey(of: node, refresh: true, requestID: requestID)
        }
        guard var identity = key else { return .refused("its identity key is unknown (status did not answer)") }
        var valid = Ed25519KeyPair.verify(
            signature: response.signature, message: response.signedBytes, publicKey: identity.key)
        if !valid, let fresh = await identityKey(of: node, refresh: true, requestID: requestID),
            fresh.key != identity.key
        {
            identity = fresh
            valid = Ed25519KeyPair.verify(
                signature: response.signature, message: response.signedBytes, publicKey: identity.key)
        }
        guard valid else { return .refused("its verdict signature does not verify under its identity key") }
        let verdict: Verdict
        do { verdict = try Verdict(decoding: response.verdict) } catch {
            return .refused("its verdict does not decode: \(error)")
        }
        guard verdict.requestID == request.requestID else {
            return .refused("its verdict is about request \(verdict.requestID), not \(request.requestID)")
        }
        return .verdict(verdict)
    }

    /// The node's share over `claims`, if it is an optimistic signer and sent a well-formed one.
    /// Not checked here: the aggregate signature is verified, and only if it fails is each share
    /// checked to name the culprit (FROST.aggregate), which saves k share checks per call.
    private func parsedShare(
        _ response: DecideResponse, commitments: [SigningCoordinator.Commitment], requestID: String
    ) -> SignatureShare<Ed25519Suite>? {
        guard !response.share.isEmpty, commitments.contains(where: { $0.nodeID == response.nodeID }) else {
            return nil
        }
        do {
            return try SignatureShare<Ed25519Suite>(
                identifier: try Identifier(response.nodeID), encoded: response.share)
        } catch {
            logger.warning(
                "share refused",
                metadata: ["request_id": "\(requestID)", "node": "\(response.nodeID)", "reason": "\(error)"])
            return nil
        }
    }

    /// The node's decryption share of the route's credential, if it sent a well-formed one.
    private func parsedDecryptionShare(
        _ response: DecideResponse, verdict: Verdict, requestID: String
    ) -> DecryptionShare<Ed25519Suite>? {
        guard !response.decryptionShare.isEmpty, case .upstream(_, _, _?, _)? = verdict.route else { return nil }
        do {
            // Parsed (points validated) but its proof not checked yet: `finish` opens the box with k
            // shares and checks proofs only if the AEAD refuses the key they make.
            return try DecryptionShare<Ed25519Suite>(
                identifier: try Identifier(response.nodeID), encoded: response.decryptionShare)
        } catch {
            logger.warning(
                "decryption share refused",
                metadata: ["request_id": "\(requestID)", "node": "\(response.nodeID)", "reason": "\(error)"])
            return nil
        }
    }

    // MARK: - Signing

    private func aggregate(
        _ claims: ReceiptClaims, shares: [SignatureShare<Ed25519Suite>], commitments: [SigningCoordinator.Commitment],
        round: inout DecisionRound
    ) -> DecisionRound.Next {
        do {
            let message = try Receipt.signingInput(claims: claims, groupKey: groupKey)
            let session = try parts.coordinator.prepare(message: message, commitments: commitments).1
            // FROST.aggregate verifies the group signature, and only when it fails checks each
            // share to name the culprits (the SigningError's node).
            let signature = try parts.coordinator.aggregate(shares, session: session)
            return round.signed(signature.bytes)
        } catch let error as SigningCoordinator.SigningError {
            logger.warning("aggregation failed", metadata: ["request_id": "\(claims.requestID)", "reason": "\(error)"])
            return round.signingFailed(nodes: error.node.map { [$0] } ?? [])
        } catch {
            logger.warning("aggregation failed", metadata: ["request_id": "\(claims.requestID)", "reason": "\(error)"])
            return round.signingFailed(nodes: [])
        }
    }

    /// A sign request round with `signers` over `claims` (whose signer set is `signers`): each
    /// node checks that the message stands for the decision it recorded for the request id. Each
    /// share is waited for at most the per-signer budget (and never past `deadline`): a signer
    /// that hangs fails the round naming itself, and the next round signs without it.
    private func signAgain(
        _ claims: ReceiptClaims, signers: [UInt16], requestID: String, deadline: ContinuousClock.Instant,
        round: inout DecisionRound
    ) async -> DecisionRound.Next {
        let left = deadline - ContinuousClock.now
        guard left > .zero else { return round.deadlinePassed() }
        do {
            let message = try Receipt.signingInput(claims: claims, groupKey: groupKey)
            let signature = try await parts.coordinator.sign(
                requestID: requestID, message: message, signers: signers,
                shareDeadline: min(parts.signerBudget, left))
            guard Ed25519KeyPair.verify(signature: signature.bytes, message: message, publicKey: groupKey) else {
                return round.signingFailed(nodes: [])
            }
            return round.signed(signature.bytes)
        } catch let error as SigningCoordinator.SigningError {
            logger.info(
                "sign request round failed", metadata: ["request_id": "\(requestID)", "reason": "\(error)"])
            if let node = error.node, error.code == .transport { markDown(node) }
            return round.signingFailed(nodes: error.node.map { [$0] } ?? [])
        } catch {
            return round.signingFailed(nodes: [])
        }
    }

    // MARK: - Outcomes

    private func finish(
        _ outcome: DecisionRound.Outcome, call: AgentCall,
        allowed: NIOLockedValueBox<Set<UInt16>>
    ) -> CallAuthorization {
        switch outcome {
        case .unavailable(let reason):
            return .unavailable(reason: reason)
        case .deny(let reasons, let signed):
            var receipt: String?
            if let signed {
                receipt = try? Receipt(claims: signed.claims, groupKey: groupKey, signature: signed.signature).compact
            }
            // The metrics label comes from claims k nodes signed, never from one node's word.
            let step = signed.map { MetricLabels.step(ofReason: $0.claims.reasons.first ?? "") }
            return .deny(DeniedCall(receipt: receipt, reasons: reasons, step: step))
        case .allow(let claims, let signature, let verdicts, let decryptionShares):
            let receipt: String
            do {
                // The signature was verified over these claims' signing input when it was made
                // (aggregate, signAgain), so it is not checked a second time here.
                receipt = try Receipt(claims: claims, groupKey: groupKey, signature: signature).compact
            } catch {
                return .unavailable(reason: "the allow receipt does not verify under the group key: \(error)")
            }
            guard let first = verdicts.first, let route = first.route else {
                return .unavailable(reason: "the allowing verdicts name no route")
            }
            let obligations = verdicts.dropFirst().reduce(first.obligations) { $0.merged(with: $1.obligations) }
            switch route {
            case .selfDescription:
                let body = Array((first.selfDescription ?? .object([])).jsonText.utf8)
                return .answer(AnsweredCall(body: body, receipt: receipt))
            case .upstream(_, let url, let secret, let path):
                guard let upstream = URL(string: url), upstream.scheme != nil else {
                    return .unavailable(reason: "the route's upstream \(url) is not a URL")
                }
                var credential: SecretBytes?
                var injection: SecretSpec.Injection?
                if let secret {
                    guard let spec = parts.routing.current.bundle.secrets[secret] else {
                        return .unavailable(reason: "the proxy's bundle does not declare secret '\(secret)'")
                    }
                    guard let record = try? parts.credentials.load(secret) else {
                        return .unavailable(
                            reason: "the proxy holds no sealed credential '\(secret)' (quorumctl secrets set \(secret))"
                        )
                    }
                    guard decryptionShares.count >= parts.sealingGroup.minSigners else {
                        return .unavailable(
                            reason:
                                "\(decryptionShares.count) valid decryption shares of '\(secret)'; opening needs \(parts.sealingGroup.minSigners)"
                        )
                    }
                    let k = parts.sealingGroup.minSigners
                    do {
                        credential = try record.open(
                            shares: Array(decryptionShares.prefix(k)), group: parts.sealingGroup,
                            checkingProofs: false)
                    } catch {
                        // A share that is wrong (a faulty or lying node) makes a key the AEAD refuses:
                        // now check every share's proof, name the culprits, and open with k valid ones.
                        let valid = decryptionShares.filter {
                            (try? ThresholdSealing<Ed25519Suite>.verify($0, for: record.box, group: parts.sealingGroup))
                                == true
                        }
                        let culprits = Set(decryptionShares.map(\.identifier)).subtracting(valid.map(\.identifier))
                        logger.warning(
                            "decryption shares refused",
                            metadata: [
                                "request_id": "\(claims.requestID)",
                                "nodes": "\(culprits.map(\.description).sorted().joined(separator: ","))",
                            ])
                        do {
                            credential = try record.open(shares: Array(valid.prefix(k)), group: parts.sealingGroup)
                        } catch {
                            return .unavailable(reason: "credential '\(secret)' does not open: \(error)")
                        }
                    }
                    injection = spec.injection
                }
                let coordinator = parts.coordinator
                let logger = self.logger
                let requestID = claims.requestID
                return .allow(
                    AllowedCall(
                        upstream: upstream, path: path, credential: credential, injection: injection,
                        receipt: receipt, obligations: obligations,
                        settle: { usage in
                            await Self.settle(
                                requestID: requestID, usage: usage, nodes: allowed.withLockedValue { $0.sorted() },
                                coordinator: coordinator, logger: logger)
                        }))
            }
        }
    }

    /// Reports the call's actual spend to every node that allowed it (each reserved spend).
    static func settle(
        requestID: String, usage: SpendUsage?, nodes: [UInt16], coordinator: SigningCoordinator, logger: Logger
    ) async {
        let request: SettleRequest
        do {
            request = try SettleRequest(
                requestID: requestID, usage: usage.map { (inputTokens: $0.inputTokens, outputTokens: $0.outputTokens) })
        } catch {
            logger.error(
                "cannot build the settle request", metadata: ["request_id": "\(requestID)", "reason": "\(error)"])
            return
        }
        await withTaskGroup(of: Void.self) { group in
            for node in nodes {
                group.addTask {
                    do {
                        _ = try await coordinator.ask(node, request, SettleResponse.self)
                    } catch {
                        logger.warning(
                            "settle failed; the node settles from the reservation when it times out",
                            metadata: ["request_id": "\(requestID)", "node": "\(node)", "reason": "\(error)"])
                    }
                }
            }
        }
    }
}
