import QuorumProxy
import Testing

/// How the proxy orders nodes as optimistic signers from their decide round-trip times.
@Suite("SignerPreference")
struct SignerPreferenceTests {
    static let nodes: [UInt16] = [1, 2, 3, 4]

    /// A preference that has seen `latencies` (milliseconds, by node) `times` times each.
    static func preference(_ latencies: [UInt16: Int], times: Int = 1) -> SignerPreference {
        var preference = SignerPreference()
        for _ in 0..<times {
            for (node, milliseconds) in latencies.sorted(by: { $0.key < $1.key }) {
                preference.observe(node, latency: .milliseconds(milliseconds))
            }
        }
        return preference
    }

    @Test("before any latency is known, and with all nodes alike, the lowest ids come first")
    func lowestIDsFirst() {
        #expect(SignerPreference().ordered(Self.nodes, threshold: 3, down: []) == [1, 2, 3, 4])
        let alike = Self.preference([1: 12, 2: 9, 3: 14, 4: 10])
        #expect(alike.ordered(Self.nodes, threshold: 3, down: []) == [1, 2, 3, 4])
        #expect(alike.slowNodes(among: Self.nodes, threshold: 3).isEmpty)
    }

    @Test("a node far slower than the k fastest goes last; down nodes go after it")
    func slowNodeLast() {
        let slow = Self.preference([1: 610, 2: 8, 3: 11, 4: 9])
        #expect(slow.slowNodes(among: Self.nodes, threshold: 3) == [1])
        #expect(slow.ordered(Self.nodes, threshold: 3, down: []) == [2, 3, 4, 1])
        // With node 3 down, only k nodes are up: the slow one must sign too.
        #expect(slow.ordered(Self.nodes, threshold: 3, down: [3]) == [1, 2, 4, 3])
    }

    @Test("with only k nodes up, none is passed over as slow: all k must sign")
    func onlyThresholdLeft() {
        let slow = Self.preference([1: 610, 2: 8, 3: 11, 4: 9])
        #expect(slow.slowNodes(among: [1, 2, 3], threshold: 3).isEmpty)
        #expect(slow.ordered(Self.nodes, threshold: 3, down: [4]) == [1, 2, 3, 4])
    }

    @Test("two slow nodes of four at k = 3: the faster of them is named with the two fast ones")
    func twoSlowNodes() {
        let two = Self.preference([1: 900, 2: 400, 3: 10, 4: 12])
        #expect(two.ordered(Self.nodes, threshold: 3, down: []).prefix(3).sorted() == [2, 3, 4])
    }

    @Test("a node that answers fast again is named again after a few calls")
    func recovery() {
        var preference = Self.preference([1: 2000, 2: 10, 3: 10, 4: 10])
        #expect(preference.ordered(Self.nodes, threshold: 3, down: []).first == 2)
        var calls = 0
        while preference.ordered(Self.nodes, threshold: 3, down: []).first != 1, calls < 100 {
            for node in Self.nodes { preference.observe(node, latency: .milliseconds(10)) }
            calls += 1
        }
        #expect((5...20).contains(calls), "named again after \(calls) fast answers")
    }

    @Test("jitter of a few milliseconds does not reorder the signers")
    func jitter() {
        let jittery = Self.preference([1: 30, 2: 6, 3: 7, 4: 5])
        #expect(jittery.ordered(Self.nodes, threshold: 3, down: []) == [1, 2, 3, 4])
        #expect(jittery.latency(of: 1) == .milliseconds(30))
        #expect(jittery.latency(of: 9) == nil)
    }
}
