import QuorumCrypto
import QuorumProtocol

/// The DKG rounds of the node runtime (Ed25519 only: DESIGN.md §6).
typealias NodeDKG = DKG<Ed25519Suite>

/// The one digest every participant of a ceremony signs, and the operator recomputes: it binds
/// the ceremony id, its kind and threshold, every participant's identity key, every signed
/// round-1 message, and both public key packages that came out. Equal digests mean every node saw
/// the same broadcast and derived the same groups.
public enum CeremonyTranscript {
    static let domain = "quorum-latch/ceremony-transcript/v1"

    /// SHA-256 over the codec encoding of the domain and, in order: the ceremony id, kind,
    /// threshold, each participant (id, identity key) ascending, each round-1 message's signed
    /// bytes and signature ascending by sender, then each group (purpose, threshold, commitment,
    /// identifiers), signing first.
    public static func digest(
        ceremonyID: [UInt8], kind: CeremonyKind, threshold: Int, participants: [CeremonyParticipant],
        round1: [CeremonyRound1], signingGroup: PublicKeyPackage<Ed25519Suite>,
        sealingGroup: PublicKeyPackage<Ed25519Suite>
    ) throws(CryptoError) -> [UInt8] {
        var writer = WireWriter()
        writer.write(string: domain)
        writer.write(bytes: ceremonyID)
        writer.write(kind.rawValue)
        writer.write(UInt16(clamping: threshold))
        writer.write(array: participants) { $0.write($1) }
        writer.write(array: round1.sorted { $0.nodeID < $1.nodeID }) { writer, message in
            writer.write(bytes: message.signedBytes)
            writer.write(bytes: message.signature)
        }
        for group in [signingGroup, sealingGroup] {
            writer.write(string: group.purpose.rawValue)
            writer.write(UInt16(clamping: group.minSigners))
            var elements: [[UInt8]] = []
            for element in group.commitment { elements.append(try element.serialized()) }
            writer.write(array: elements) { $0.write(bytes: $1) }
            writer.write(array: group.identifiers) { $0.write($1.value) }
        }
        return sha256Digest(writer.bytes)
    }

    /// The first 8 bytes of `bytes` in hex, for messages (`3fa9c2…`).
    static func short(_ bytes: [UInt8]) -> String { Hex.encode(Array(bytes.prefix(6))) + "…" }
}
