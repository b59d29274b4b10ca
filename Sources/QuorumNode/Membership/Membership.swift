import QuorumProtocol

/// The membership protocol without I/O: which configured peers this node hears from, and what to
/// send next (DESIGN.md §8, the `SWIM.Instance` split).
///
/// A plain value driven by two events: ``onHeartbeat(_:at:)`` when a peer's heartbeat arrives, and
/// ``onTick(now:)`` on a timer, which returns the ``Directive``s the shell carries out (send a
/// heartbeat to every peer, log a peer going up or down). Times are milliseconds since the Unix
/// epoch, passed in, so tests drive it without a clock.
public struct Membership: Sendable {
    /// What the shell should do after a tick or a heartbeat.
    public enum Directive: Sendable, Hashable {
        /// Send this heartbeat to every peer.
        case sendHeartbeat(Heartbeat)
        /// The peer was heard from again (or for the first time).
        case peerUp(UInt16)
        /// The peer has been silent for longer than the timeout.
        case peerDown(UInt16)
    }

    /// One configured peer as this node sees it.
    public struct Peer: Sendable, Hashable {
        /// The peer's node id.
        public let nodeID: UInt16
        /// When its last heartbeat arrived (this node's clock), or nil if none has.
        public var lastHeardAt: Int64?
        /// Its boot epoch, from its last heartbeat.
        public var bootEpoch: UInt64?
        /// Whether it counts as up: heard from within ``Membership/timeoutMilliseconds``.
        public var isUp: Bool
        /// Its Ed25519 identity key, from its last heartbeat that carried one.
        public var identityKey: [UInt8]?
        /// The signing group key it reported in its last heartbeat (nil: none yet).
        public var groupKey: [UInt8]?
    }

    /// What this node says about itself in heartbeats and status answers besides its id and
    /// epoch; the shell refreshes it from the key store and the bundle before each use.
    public struct LocalFacts: Sendable, Hashable {
        /// The signing group key, once a ceremony has completed.
        public var groupKey: [UInt8]?
        /// The digest of the bundle the node runs.
        public var bundleDigest: String?
        /// Nonce commitments handed out and not yet used (status only, not heartbeats): what
        /// `quorumctl doctor` reads to see that some proxy holds commitments of this boot epoch.
        public var outstandingNonces: Int?

        /// Facts with these values.
        public init(groupKey: [UInt8]? = nil, bundleDigest: String? = nil, outstandingNonces: Int? = nil) {
            self.groupKey = groupKey
            self.bundleDigest = bundleDigest
            self.outstandingNonces = outstandingNonces
        }
    }

    /// This node's id.
    public let nodeID: UInt16
    /// Random per process start; see ``Heartbeat/bootEpoch``.
    public let bootEpoch: UInt64
    /// This node's Ed25519 identity public key, sent in every heartbeat.
    public let identityKey: [UInt8]?
    /// The group key and bundle this node reports.
    public var facts = LocalFacts()
    /// How often ``onTick(now:)`` asks for a heartbeat to be sent.
    public let intervalMilliseconds: Int64
    /// How long a peer may be silent before it counts as down.
    public let timeoutMilliseconds: Int64
    /// The configured peers, by node id.
    public private(set) var peers: [UInt16: Peer]
    /// When the last heartbeat was asked for.
    private var lastSentAt: Int64?

    /// Membership for `nodeID` among `peers` (this node's own id is ignored if listed).
    ///
    /// - Precondition: `intervalMilliseconds > 0` and `timeoutMilliseconds > intervalMilliseconds`.
    public init(
        nodeID: UInt16, peers: [UInt16], bootEpoch: UInt64 = UInt64.random(in: 1...UInt64.max),
        intervalMilliseconds: Int64 = 500, timeoutMilliseconds: Int64 = 3000, identityKey: [UInt8]? = nil
    ) {
        precondition(intervalMilliseconds > 0, "the heartbeat interval must be positive")
        precondition(timeoutMilliseconds > intervalMilliseconds, "the timeout must exceed the heartbeat interval")
        self.nodeID = nodeID
        self.bootEpoch = bootEpoch
        self.identityKey = identityKey
        self.intervalMilliseconds = intervalMilliseconds
        self.timeoutMilliseconds = timeoutMilliseconds
        var table: [UInt16: Peer] = [:]
        for peer in peers where peer != nodeID && peer != 0 {
            table[peer] = Peer(
                nodeID: peer, lastHeardAt: nil, bootEpoch: nil, isUp: false, identityKey: nil, groupKey: nil)
        }
        self.peers = table
    }

    /// How many peers that are up report `groupKey` as theirs.
    public func peersUp(reporting groupKey: [UInt8]) -> Int {
        peers.values.filter { $0.isUp && $0.groupKey == groupKey }.count
    }

    /// The peers currently up, ascending.
    public var peersUp: [UInt16] { peers.values.filter(\.isUp).map(\.nodeID).sorted() }

    /// Records `heartbeat`, received at `now`. A heartbeat from a node that is not a configured
    /// peer (or from this node's own id) is ignored and returns nothing.
    public mutating func onHeartbeat(_ heartbeat: Heartbeat, at now: Int64) -> [Directive] {
        guard var peer = peers[heartbeat.nodeID] else { return [] }
        let wasUp = peer.isUp
        peer.lastHeardAt = now
        peer.bootEpoch = heartbeat.bootEpoch
        if let key = heartbeat.identityKey { peer.identityKey = key }
        peer.groupKey = heartbeat.groupKey
        peer.isUp = true
        peers[heartbeat.nodeID] = peer
        return wasUp ? [] : [.peerUp(heartbeat.nodeID)]
    }

    /// Marks peers silent for longer than the timeout as down, and asks for a heartbeat when the
    /// interval has passed since the last one.
    public mutating func onTick(now: Int64) -> [Directive] {
        var directives: [Directive] = []
        for id in peers.keys.sorted() {
            guard var peer = peers[id], peer.isUp, let heard = peer.lastHeardAt else { continue }
            if now - heard > timeoutMilliseconds {
                peer.isUp = false
                peers[id] = peer
                directives.append(.peerDown(id))
            }
        }
        if lastSentAt.map({ now - $0 >= intervalMilliseconds }) ?? true {
            lastSentAt = now
            // The fields are this node's own and checked where they are made: a heartbeat with
            // an ascending peer list always builds.
            if let heartbeat = try? Heartbeat(
                nodeID: nodeID, bootEpoch: bootEpoch, sentAt: now, groupKey: facts.groupKey,
                bundleDigest: facts.bundleDigest, peersSeen: peersUp, identityKey: identityKey)
            {
                directives.append(.sendHeartbeat(heartbeat))
            }
        }
        return directives
    }

    /// This node's answer to a ``StatusRequest`` at `now`: its facts, and every configured peer
    /// with whether it is up.
    public func status(at now: Int64) throws(WireError) -> StatusResponse {
        var entries: [PeerStatus] = []
        for id in peers.keys.sorted() {
            let peer = peers[id]!
            entries.append(try PeerStatus(nodeID: id, isUp: peer.isUp, lastHeardAt: peer.lastHeardAt))
        }
        return try StatusResponse(
            nodeID: nodeID, bootEpoch: bootEpoch, reportedAt: now, groupKey: facts.groupKey,
            bundleDigest: facts.bundleDigest, peers: entries, identityKey: identityKey,
            outstandingNonces: facts.outstandingNonces.map { UInt32(clamping: $0) })
    }
}
