import Foundation
import QuorumCrypto
import QuorumNode
import QuorumTestKit
import Testing

/// The node's persistent state on a real disk: the RocksDB state store, the key store's files
/// and the identity key.
@Suite("node state: store, keys, identity")
struct NodeStateTests {
    /// A dealer's keys for participant `id` of a 3-of-4 group, signing and sealing.
    static func dealerKeys(count: Int = 4) throws -> [NodeKeys] {
        let (signingShares, signingGroup) = try TrustedDealer<Ed25519Suite>.generate(
            minSigners: 3, maxSigners: count, purpose: .signing)
        let (sealingShares, sealingGroup) = try TrustedDealer<Ed25519Suite>.generate(
            minSigners: 3, maxSigners: count, purpose: .sealing)
        return try zip(signingShares, sealingShares).map { signing, sealing in
            try NodeKeys(
                signing: try signing.verify(), sealing: try sealing.verify(), signingGroup: signingGroup,
                sealingGroup: sealingGroup)
        }
    }

    static func withDirectory(_ body: (String) throws -> Void) throws {
        let directory = try TestKit.temporaryDirectory("node-state")
        defer { try? FileManager.default.removeItem(at: directory) }
        try body(directory.path)
    }

    @Test("the store keeps synced writes across reopen and refuses a store of another format untouched")
    func store() throws {
        try Self.withDirectory { dataDir in
            do {
                let store = try NodeStore(dataDirectory: dataDir)
                try store.write([.put(.decisions, [1], [9, 9]), .put(.ceremony, [2], [7]), .put(.decisions, [3], [8])])
                try store.write([.delete(.decisions, [3])])
            }
            let reopened = try NodeStore(dataDirectory: dataDir)
            #expect(try reopened.get(.decisions, [1]) == [9, 9])
            #expect(try reopened.get(.ceremony, [2]) == [7])
            #expect(try reopened.get(.decisions, [3]) == nil)
            #expect(try reopened.get(.meta, Array("format".utf8)) == Array(NodeStore.format.utf8))
            var seen: [[UInt8]] = []
            try reopened.scan(.decisions) { key, _ in
                seen.append(key)
                return true
            }
            #expect(seen == [[1]])
        }
        try Self.withDirectory { dataDir in
            do {
                let store = try NodeStore(dataDirectory: dataDir)
                try store.write([.put(.meta, Array("format".utf8), Array("quorum-node-state 99".utf8))])
            }
            #expect {
                _ = try NodeStore(dataDirectory: dataDir)
            } throws: { error in
                "\(error)".contains("holds format \"quorum-node-state 99\"; this build reads \"\(NodeStore.format)\"")
            }
        }
    }

    @Test("pruning a decision past retention forgets its verdict, claims and open reservation; newer ones stay")
    func verdictsArePrunedWithTheirDecision() throws {
        try Self.withDirectory { dataDir in
            let store = try NodeStore(dataDirectory: dataDir)
            let ledger = DecisionLedger(store: store)
            for (id, at) in [("old", Int64(1_000)), ("new", Int64(9_000))] {
                try store.write(
                    DecisionLedger.changes(recording: [(id, sha256Digest(Array(id.utf8)), at)])
                        + ["verdict/", "claims/", "reservation/"].map {
                            .put(.policy, Array(($0 + id).utf8), [1])
                        })
            }
            #expect(try ledger.prune(signedBefore: 5_000) == 1)
            for prefix in ["verdict/", "claims/", "reservation/"] {
                #expect(try store.get(.policy, Array((prefix + "old").utf8)) == nil, "\(prefix)old")
                #expect(try store.get(.policy, Array((prefix + "new").utf8)) == [1], "\(prefix)new")
            }
            #expect(try ledger.decision(for: "old") == nil)
            #expect(try ledger.decision(for: "new") != nil)
        }
    }

    @Test("group commit: writes queued in order land in order (the last put of a key wins), all durable when awaited")
    func groupCommitKeepsOrder() async throws {
        let directory = try TestKit.temporaryDirectory("node-state")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try NodeStore(dataDirectory: directory.path)
        let committer = StoreCommitter(store: store)
        let futures = (0..<200).map { index in
            committer.enqueue([
                .put(.policy, Array("same".utf8), [UInt8(index)]), .put(.policy, Array("key-\(index)".utf8), [1]),
            ])
        }
        for future in futures { try await future.get() }
        #expect(try store.get(.policy, Array("same".utf8)) == [199])
        for index in 0..<200 { #expect(try store.get(.policy, Array("key-\(index)".utf8)) == [1]) }
        store.close()
        // A closed store fails the writes queued after it, and says so.
        let failed = committer.enqueue([.put(.policy, [1], [1])])
        await #expect(throws: NodeStoreError.self) { try await failed.get() }
    }

    @Test("keys install as the dealer's four files (shares 0600), load after a restart, and replace whole")
    func keyStore() throws {
        let keys = try Self.dealerKeys()
        let other = try Self.dealerKeys()
        try Self.withDirectory { dataDir in
            let store = try NodeKeyStore(dataDirectory: dataDir)
            #expect(store.current == nil)
            try store.install(keys[1])
            #expect(store.current?.identifier == keys[1].identifier)
            let directory = (dataDir as NSString).appendingPathComponent("keys")
            for name in NodeKeyStore.fileNames {
                let path = (directory as NSString).appendingPathComponent(name)
                let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
                #expect(mode == (name.hasSuffix("-share.json") ? 0o600 : 0o644), "\(name)")
            }
            let reloaded = try NodeKeyStore(dataDirectory: dataDir)
            #expect(reloaded.current?.groupKeyBytes == keys[1].groupKeyBytes)
            #expect(
                reloaded.current?.signing.signingShare.serialized().copyBytes()
                    == keys[1].signing.signingShare.serialized().copyBytes())

            try reloaded.install(other[1])
            #expect(try NodeKeyStore(dataDirectory: dataDir).current?.groupKeyBytes == other[1].groupKeyBytes)
            #expect(!FileManager.default.fileExists(atPath: directory + ".old"))
        }
    }

    @Test("a partial key set, a share others can read, and a leftover half-written set")
    func keyStoreRefusals() throws {
        let keys = try Self.dealerKeys()
        try Self.withDirectory { dataDir in
            try NodeKeyStore(dataDirectory: dataDir).install(keys[0])
            let directory = (dataDir as NSString).appendingPathComponent("keys")
            let sealing = (directory as NSString).appendingPathComponent("sealing-share.json")

            #expect(chmod(sealing, 0o644) == 0)
            #expect {
                _ = try NodeKeyStore(dataDirectory: dataDir)
            } throws: { error in
                "\(error)".contains("sealing-share.json: mode 644 lets others read a key share")
            }
            #expect(chmod(sealing, 0o600) == 0)

            try FileManager.default.createDirectory(atPath: directory + ".new", withIntermediateDirectories: false)
            #expect(try NodeKeyStore(dataDirectory: dataDir).current?.identifier == keys[0].identifier)
            #expect(!FileManager.default.fileExists(atPath: directory + ".new"), "a half-written set is removed")

            try FileManager.default.removeItem(atPath: sealing)
            #expect {
                _ = try NodeKeyStore(dataDirectory: dataDir)
            } throws: { error in
                "\(error)".contains("an incomplete key set, missing sealing-share.json")
            }
        }
    }

    @Test("keys that do not belong together are refused")
    func mismatchedKeys() throws {
        let keys = try Self.dealerKeys()
        let other = try Self.dealerKeys()
        #expect(throws: NodeKeysError.self) {
            try NodeKeys(
                signing: keys[0].signing, sealing: keys[1].sealing, signingGroup: keys[0].signingGroup,
                sealingGroup: keys[0].sealingGroup)
        }
        #expect(throws: NodeKeysError.self) {
            try NodeKeys(
                signing: keys[0].signing, sealing: keys[0].sealing, signingGroup: other[0].signingGroup,
                sealingGroup: keys[0].sealingGroup)
        }
        #expect(throws: NodeKeysError.self) {
            try NodeKeys(
                signing: keys[0].sealing, sealing: keys[0].signing, signingGroup: keys[0].sealingGroup,
                sealingGroup: keys[0].signingGroup)
        }
    }

    @Test("the identity key is made once, 0600, and the same after a restart")
    func identityKey() throws {
        try Self.withDirectory { dataDir in
            let first = try NodeIdentityKey.loadOrCreate(dataDirectory: dataDir)
            let path = (dataDir as NSString).appendingPathComponent("identity.key")
            #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600)
            let second = try NodeIdentityKey.loadOrCreate(dataDirectory: dataDir)
            #expect(first.publicKey == second.publicKey)
            let text = try String(contentsOfFile: path, encoding: .utf8)
            #expect(text.contains("\"role\": \"node-identity\""))
        }
    }
}
