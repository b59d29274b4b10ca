/// A cluster's k-of-n threshold and the number of faulty nodes it tolerates (DESIGN.md §4).
///
/// With f nodes crashed or lying, the cluster must keep three properties:
/// - **no forged allow**: the f faulty nodes alone cannot reach the threshold, k > f;
/// - **no log fork**: any two quorums share more than f nodes, so an honest node sits in both and
///   refuses to sign a second checkpoint of the same size, 2k − n > f;
/// - **liveness**: the n − f honest nodes can still reach the threshold, n − f ≥ k.
///
/// A plain value so keygen, the node's startup checks and documentation compute the same answer.
public struct ThresholdParameters: Sendable, Hashable, CustomStringConvertible {
    /// The largest cluster quorumctl sets up. Far below the 65535 identifiers FROST allows: signing
    /// and log replication cost grows with n, and no deployment needs more policy nodes than this.
    public static let maximumParticipants = 255

    /// k: signature shares needed for a group signature (and decryption shares to open a box).
    public let threshold: Int
    /// n: nodes holding a share.
    public let participants: Int

    /// One of the three properties of DESIGN.md §4.
    public enum Property: String, Sendable, CaseIterable {
        case noForgedAllow = "no forged allow"
        case noLogFork = "no log fork"
        case liveness = "liveness"

        /// The condition as DESIGN.md states it.
        public var condition: String {
            switch self {
            case .noForgedAllow: "k > f"
            case .noLogFork: "2k − n > f"
            case .liveness: "n − f ≥ k"
            }
        }
    }

    /// Checks 2 ≤ k ≤ n ≤ `maximumParticipants`; the error says which bound was broken.
    public init(threshold: Int, participants: Int) throws(CryptoError) {
        guard threshold >= 2 else {
            throw CryptoError(
                .invalidParameters,
                "threshold \(threshold) is below the minimum of 2: a single share would be the whole key")
        }
        guard participants <= Self.maximumParticipants else {
            throw CryptoError(
                .invalidParameters, "\(participants) nodes is more than the supported \(Self.maximumParticipants)")
        }
        guard threshold <= participants else {
            throw CryptoError(
                .invalidParameters,
                "threshold \(threshold) is larger than the \(participants) nodes: no quorum could ever sign")
        }
        self.threshold = threshold
        self.participants = participants
    }

    /// The largest f for which `property` holds; negative when it fails even with no faulty node.
    public func faultBound(for property: Property) -> Int {
        switch property {
        case .noForgedAllow: threshold - 1
        case .noLogFork: 2 * threshold - participants - 1
        case .liveness: participants - threshold
        }
    }

    /// The largest f for which all three properties hold, or `nil` when even f = 0 breaks one
    /// (k ≤ n/2: two disjoint quorums could sign different checkpoints).
    public var toleratedFaults: Int? {
        let bound = Property.allCases.map(faultBound(for:)).min()!
        return bound >= 0 ? bound : nil
    }

    /// The properties that stop the cluster from tolerating one more faulty node.
    public var limitingProperties: [Property] {
        let bound = Property.allCases.map(faultBound(for:)).min()!
        return Property.allCases.filter { faultBound(for: $0) == bound }
    }

    /// The smallest threshold that tolerates the most faults possible with `participants` nodes
    /// (f = ⌊(n − 1) / 3⌋), or `nil` when `participants` is too small to tolerate one.
    public static func recommended(participants: Int) -> ThresholdParameters? {
        let faults = (participants - 1) / 3
        guard faults >= 1 else { return nil }
        return try? ThresholdParameters(threshold: (participants + faults) / 2 + 1, participants: participants)
    }

    /// `3-of-4`.
    public var description: String { "\(threshold)-of-\(participants)" }
}
