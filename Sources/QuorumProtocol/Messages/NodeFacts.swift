/// The rules the fields shared by ``Heartbeat`` and ``StatusResponse`` must keep, in one place so
/// that the initializers (which build outgoing messages) and the decoders (which read incoming
/// ones) apply the same ones: whatever a node can build, its peers accept.
enum NodeFacts {
    /// Group public key lengths: 32 bytes (Ed25519) or 33 (secp256k1, compressed).
    static let groupKeyLengths: Set<Int> = [32, 33]
    /// The longest bundle digest accepted (`sha256:` and 64 hex digits is 71).
    static let maximumBundleDigestLength = 128
    /// The most peers a message lists: more than any cluster this design runs.
    static let maximumPeers = 1024

    static func nodeIDProblem(_ nodeID: UInt16) -> String? {
        nodeID == 0 ? "node id 0; node ids start at 1" : nil
    }

    static func groupKeyProblem(_ key: [UInt8]) -> String? {
        groupKeyLengths.contains(key.count)
            ? nil : "a group key of \(key.count) bytes; it is 32 (Ed25519) or 33 (secp256k1)"
    }

    static func bundleDigestProblem(_ digest: String) -> String? {
        let length = digest.utf8.count
        if length == 0 { return "an empty bundle digest; absent is encoded as absent" }
        if length > maximumBundleDigestLength {
            return "a bundle digest of \(length) bytes; at most \(maximumBundleDigestLength)"
        }
        return nil
    }

    /// Peers are listed once each, ascending, never node 0 and never the sender itself, so a list
    /// has one encoding.
    static func peerListProblem(_ peers: [UInt16], sender: UInt16) -> String? {
        if peers.count > maximumPeers { return "\(peers.count) peers; at most \(maximumPeers)" }
        var previous: UInt16 = 0
        for peer in peers {
            if peer == 0 { return "node id 0 among the peers; node ids start at 1" }
            if peer == sender { return "the sender, node \(sender), lists itself as a peer" }
            if peer <= previous { return "peer \(peer) after \(previous); peers are listed once each, ascending" }
            previous = peer
        }
        return nil
    }

    /// Throws an ``WireError/Code/invalidValue`` refusal of `field` when `problem` names one; for
    /// initializers, which have no payload offset.
    static func check(_ problem: String?, _ message: @autoclosure () -> String, _ field: String) throws(WireError) {
        if let problem { throw WireError(.invalidValue, field: "\(message()).\(field)", offset: 0, problem) }
    }

    /// Reads a group key: present exactly when the `hasKey` flag before it says so.
    static func readGroupKey(_ reader: inout WireReader, hasKey: Bool) throws(WireError) -> [UInt8]? {
        let start = reader.offset
        let groupKey = try reader.readOptional("groupKey") { reader throws(WireError) in
            let keyStart = reader.offset
            let key = try reader.readBytes("groupKey", maximumLength: 33)
            if let problem = groupKeyProblem(key) { throw reader.invalidValue("groupKey", at: keyStart, problem) }
            return key
        }
        if hasKey != (groupKey != nil) {
            throw reader.invalidValue(
                "groupKey", at: start,
                hasKey ? "hasKey is true but no group key follows" : "a group key follows but hasKey is false")
        }
        return groupKey
    }

    static func readBundleDigest(_ reader: inout WireReader) throws(WireError) -> String? {
        try reader.readOptional("bundleDigest") { reader throws(WireError) in
            let start = reader.offset
            let digest = try reader.readString("bundleDigest", maximumLength: maximumBundleDigestLength)
            if let problem = bundleDigestProblem(digest) {
                throw reader.invalidValue("bundleDigest", at: start, problem)
            }
            return digest
        }
    }

    static func writeGroupKey(_ writer: inout WireWriter, _ groupKey: [UInt8]?) {
        writer.write(groupKey != nil)
        writer.write(optional: groupKey) { $0.write(bytes: $1) }
    }

    static func identityKeyProblem(_ key: [UInt8]) -> String? {
        key.count == 32 ? nil : "an identity key of \(key.count) bytes; it is 32 (Ed25519)"
    }

    static func readIdentityKey(_ reader: inout WireReader) throws(WireError) -> [UInt8]? {
        try reader.readOptional("identityKey") { reader throws(WireError) in
            let start = reader.offset
            let key = try reader.readBytes("identityKey", maximumLength: 32)
            if let problem = identityKeyProblem(key) { throw reader.invalidValue("identityKey", at: start, problem) }
            return key
        }
    }

    static func writeIdentityKey(_ writer: inout WireWriter, _ identityKey: [UInt8]?) {
        writer.write(optional: identityKey) { $0.write(bytes: $1) }
    }

    static func writeBundleDigest(_ writer: inout WireWriter, _ bundleDigest: String?) {
        writer.write(optional: bundleDigest) { $0.write(string: $1) }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
