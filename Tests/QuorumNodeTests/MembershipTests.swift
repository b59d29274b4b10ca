import QuorumProtocol
import Testing

@testable import QuorumNode

/// ``Membership`` as a plain value: time is passed in, so nothing sleeps.
@Suite struct MembershipTests {
    func heartbeat(from node: UInt16, epoch: UInt64 = 7, at time: Int64 = 0) throws -> Heartbeat {
        try Heartbeat(nodeID: node, bootEpoch: epoch, sentAt: time, groupKey: nil, bundleDigest: nil, peersSeen: [])
    }

    @Test("every peer starts down; the first tick sends a heartbeat naming no peers")
    func start() throws {
        var membership = Membership(nodeID: 1, peers: [3, 2, 1], bootEpoch: 42)
        #expect(membership.peers.keys.sorted() == [2, 3])
        #expect(membership.peersUp.isEmpty)
        let directives = membership.onTick(now: 1000)
        let expected = try Heartbeat(
            nodeID: 1, bootEpoch: 42, sentAt: 1000, groupKey: nil, bundleDigest: nil, peersSeen: [])
        #expect(directives == [.sendHeartbeat(expected)])
    }

    @Test("heartbeats are asked for once per interval")
    func interval() {
        var membership = Membership(nodeID: 1, peers: [2], intervalMilliseconds: 500, timeoutMilliseconds: 3000)
        #expect(membership.onTick(now: 0).count == 1)
        #expect(membership.onTick(now: 100).isEmpty)
        #expect(membership.onTick(now: 499).isEmpty)
        #expect(membership.onTick(now: 500).count == 1)
        #expect(membership.onTick(now: 600).isEmpty)
    }

    @Test("a heartbeat brings a peer up once; the next heartbeat lists it")
    func up() throws {
        var membership = Membership(nodeID: 1, peers: [2, 3])
        #expect(membership.onHeartbeat(try heartbeat(from: 2), at: 10) == [.peerUp(2)])
        #expect(membership.onHeartbeat(try heartbeat(from: 2), at: 20).isEmpty)
        #expect(membership.peersUp == [2])
        guard case .sendHeartbeat(let sent)? = membership.onTick(now: 30).last else {
            Issue.record("no heartbeat")
            return
        }
        #expect(sent.peersSeen == [2])
        #expect(membership.peers[2]?.lastHeardAt == 20)
        #expect(membership.peers[2]?.bootEpoch == 7)
    }

    @Test("a peer's identity key and group key are recorded from its heartbeats; a node's own facts go out")
    func facts() throws {
        let identity = [UInt8](repeating: 5, count: 32)
        var membership = Membership(nodeID: 1, peers: [2, 3], identityKey: identity)
        let peerKey = [UInt8](repeating: 9, count: 32)
        let group = [UInt8](repeating: 4, count: 32)
        _ = membership.onHeartbeat(
            try Heartbeat(
                nodeID: 2, bootEpoch: 1, sentAt: 0, groupKey: group, bundleDigest: nil, peersSeen: [],
                identityKey: peerKey), at: 10)
        _ = membership.onHeartbeat(
            try Heartbeat(nodeID: 3, bootEpoch: 1, sentAt: 0, groupKey: nil, bundleDigest: nil, peersSeen: []), at: 10)
        #expect(membership.peers[2]?.identityKey == peerKey)
        #expect(membership.peers[2]?.groupKey == group)
        #expect(membership.peers[3]?.identityKey == nil)
        #expect(membership.peersUp(reporting: group) == 1)
        membership.facts = Membership.LocalFacts(groupKey: group, bundleDigest: "sha256:00")
        guard case .sendHeartbeat(let sent)? = membership.onTick(now: 20).last else {
            Issue.record("no heartbeat")
            return
        }
        #expect(sent.identityKey == identity && sent.groupKey == group && sent.bundleDigest == "sha256:00")
        let status = try membership.status(at: 30)
        #expect(status.identityKey == identity && status.groupKey == group)
    }

    @Test("a peer silent longer than the timeout goes down, and comes back with its next heartbeat")
    func down() throws {
        var membership = Membership(nodeID: 1, peers: [2], intervalMilliseconds: 500, timeoutMilliseconds: 3000)
        _ = membership.onHeartbeat(try heartbeat(from: 2), at: 1000)
        #expect(!membership.onTick(now: 4000).contains(.peerDown(2)))
        #expect(membership.peersUp == [2])
        #expect(membership.onTick(now: 4001).contains(.peerDown(2)))
        #expect(membership.peersUp.isEmpty)
        #expect(!membership.onTick(now: 9000).contains(.peerDown(2)))
        #expect(membership.onHeartbeat(try heartbeat(from: 2, epoch: 8), at: 9100) == [.peerUp(2)])
        #expect(membership.peers[2]?.bootEpoch == 8)
    }

    @Test("heartbeats from nodes that are not configured peers are ignored")
    func strangers() throws {
        var membership = Membership(nodeID: 1, peers: [2])
        #expect(membership.onHeartbeat(try heartbeat(from: 9), at: 10).isEmpty)
        #expect(membership.peers[9] == nil)
    }

    @Test("status lists every configured peer with up/down and last heard, no key, no bundle")
    func status() throws {
        var membership = Membership(nodeID: 2, peers: [3, 1], bootEpoch: 5)
        _ = membership.onHeartbeat(try heartbeat(from: 3), at: 77)
        let status = try membership.status(at: 100)
        #expect(status.nodeID == 2)
        #expect(status.bootEpoch == 5)
        #expect(status.reportedAt == 100)
        #expect(!status.hasKey)
        #expect(status.bundleDigest == nil)
        #expect(
            status.peers == [
                try PeerStatus(nodeID: 1, isUp: false, lastHeardAt: nil),
                try PeerStatus(nodeID: 3, isUp: true, lastHeardAt: 77),
            ])
    }

    @Test("each process start draws a new boot epoch")
    func epochs() {
        let epochs = Set((0..<16).map { _ in Membership(nodeID: 1, peers: []).bootEpoch })
        #expect(epochs.count == 16)
        #expect(!epochs.contains(0))
    }
}
