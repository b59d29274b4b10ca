import QuorumCrypto
import QuorumPolicy
import QuorumProtocol

extension ReceiptClaims {
    /// The receipt claims a verdict on `request` stands for, signed by `signers`.
    ///
    /// The one place these claims are built: each node builds them from its own verdict and signs
    /// their receipt, and the proxy builds them from each node's signed verdict to check and
    /// aggregate the shares; so k honest nodes that decided alike produce one signing input.
    public init(request: DecideRequest, verdict: Verdict, signers: [UInt16]) {
        var mount = ""
        if case .upstream(let path, _, _, _)? = verdict.route { mount = path }
        let bundle =
            verdict.bundleDigest.hasPrefix("sha256:")
            ? String(verdict.bundleDigest.dropFirst("sha256:".count)) : verdict.bundleDigest
        self.init(
            requestID: request.requestID, issuedAt: request.time / 1000, latch: verdict.latchID ?? "", mount: mount,
            method: request.method, path: request.target, bodySHA256: Hex.encode(request.bodySHA256),
            decision: verdict.decision == .allow ? .allow : .deny, bundle: bundle,
            signers: signers.sorted().map(Int.init), reasons: verdict.reason.map { [$0] } ?? [])
    }
}
