import QuorumCrypto
import QuorumPolicy
import QuorumProtocol

/// What a node checks of an entry before it keeps it (no I/O: keys are passed in).
///
/// Two strengths:
/// - ``batch(_:groupKey:)``, what every entry of a sequencer's batch and every fetched entry must
///   pass: it decodes as a ``LogEntry``, and a receipt's JWS (an allow always, a deny too: a deny
///   receipt exists only when the group signed it) verifies under the group key.
/// - ``submitted(_:groupKey:identityKeys:)``, what an entry submitted by a proxy or gossiped by a
///   peer must pass besides: a receipt's logged request matches its claims (request id, time,
///   method, path, body digest), and each verdict it carries is about that request, reaches the
///   receipt's decision, and is signed by its node's identity key (learned from that node's
///   heartbeats over mutual TLS).
public enum EntryCheck {
    /// See the type's documentation.
    /// Without a group key (`nil`: no ceremony yet) a receipt cannot be checked and is refused.
    public static func batch(_ leaf: [UInt8], groupKey: [UInt8]?) -> Result<LogEntry, LogRefusal> {
        checked(leaf, groupKey: groupKey).map(\.entry)
    }

    /// The entry, and for a receipt entry its receipt, parsed and verified once.
    private static func checked(
        _ leaf: [UInt8], groupKey: [UInt8]?
    ) -> Result<(entry: LogEntry, receipt: Receipt?), LogRefusal> {
        let entry: LogEntry
        do { entry = try LogEntry(decoding: leaf) } catch {
            return .failure(LogRefusal(.malformedEntry, "\(error)"))
        }
        guard case .receipt(let logged) = entry else { return .success((entry, nil)) }
        guard let groupKey else {
            return .failure(LogRefusal(.noGroupKey, "request \(logged.requestID): no group key to check it with"))
        }
        do { return .success((entry, try Receipt.verified(logged.receipt, groupKey: groupKey))) } catch {
            return .failure(
                LogRefusal(.invalidReceipt, "request \(logged.requestID): the receipt does not verify: \(error)"))
        }
    }

    /// See the type's documentation. `identityKeys` are the nodes' Ed25519 identity keys by id.
    public static func submitted(
        _ leaf: [UInt8], groupKey: [UInt8]?, identityKeys: [UInt16: [UInt8]]
    ) -> Result<LogEntry, LogRefusal> {
        let entry: LogEntry
        let receipt: Receipt?
        switch checked(leaf, groupKey: groupKey) {
        case .success(let checked): (entry, receipt) = checked
        case .failure(let refusal): return .failure(refusal)
        }
        guard case .receipt(let logged) = entry, let claims = receipt?.claims else { return .success(entry) }
        let request = logged.request
        func refuse(_ detail: String) -> Result<LogEntry, LogRefusal> {
            .failure(LogRefusal(.invalidReceipt, "request \(request.requestID): \(detail)"))
        }
        let mismatches = [
            ("jti", claims.requestID == request.requestID),
            ("iat", claims.issuedAt == request.time / 1000),
            ("method", claims.method == request.method),
            ("path", claims.path == request.target),
            ("body_sha256", claims.bodySHA256 == Hex.encode(request.bodySHA256)),
        ].filter { !$0.1 }.map(\.0)
        guard mismatches.isEmpty else {
            return refuse("the logged request does not match the receipt's \(mismatches.joined(separator: ", "))")
        }
        for signed in logged.verdicts {
            guard let key = identityKeys[signed.nodeID] else {
                return refuse("node \(signed.nodeID)'s verdict cannot be checked: its identity key is not known here")
            }
            let message = DecideResponse.signedBytes(
                nodeID: signed.nodeID, requestID: request.requestID, verdict: signed.verdict)
            guard Ed25519KeyPair.verify(signature: signed.signature, message: message, publicKey: key) else {
                return refuse("node \(signed.nodeID)'s verdict signature does not verify under its identity key")
            }
            let verdict: Verdict
            do { verdict = try Verdict(decoding: signed.verdict) } catch {
                return refuse("node \(signed.nodeID)'s verdict does not decode: \(error)")
            }
            guard verdict.requestID == request.requestID else {
                return refuse("node \(signed.nodeID)'s verdict is about request \(verdict.requestID)")
            }
            let allow = verdict.decision == .allow
            guard allow == (claims.decision == .allow) else {
                return refuse(
                    "node \(signed.nodeID)'s verdict is \(allow ? "allow" : "deny"); the receipt says "
                        + claims.decision.rawValue)
            }
        }
        return .success(entry)
    }
}
