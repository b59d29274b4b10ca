import Foundation
import QuorumCrypto
import QuorumProtocol

/// What a node keeps about a ceremony in its state store (family `ceremony`): while staged, under
/// `pending`, everything needed to check a success certificate after a restart; once committed,
/// under `completed/<hex id>`, with the certificate, and `last` names it.
///
/// ```
/// ceremonyID        bytes                        16
/// kind              u8
/// threshold         u16
/// transcriptDigest  bytes                        32
/// participants      array of CeremonyParticipant
/// certificate       array of CeremonySignature   empty while pending
/// ```
struct CeremonyRecord: WireCodable, Hashable {
    let ceremonyID: [UInt8]
    let kind: CeremonyKind
    let threshold: UInt16
    let transcriptDigest: [UInt8]
    let participants: [CeremonyParticipant]
    let certificate: [CeremonySignature]

    init(
        ceremonyID: [UInt8], kind: CeremonyKind, threshold: UInt16, transcriptDigest: [UInt8],
        participants: [CeremonyParticipant], certificate: [CeremonySignature]
    ) {
        self.ceremonyID = ceremonyID
        self.kind = kind
        self.threshold = threshold
        self.transcriptDigest = transcriptDigest
        self.participants = participants
        self.certificate = certificate
    }

    func encode(into writer: inout WireWriter) {
        writer.write(bytes: ceremonyID)
        writer.write(kind.rawValue)
        writer.write(threshold)
        writer.write(bytes: transcriptDigest)
        writer.write(array: participants) { $0.write($1) }
        writer.write(array: certificate) { $0.write($1) }
    }

    init(from reader: inout WireReader) throws(WireError) {
        ceremonyID = try reader.readBytes("ceremonyID", maximumLength: 16)
        let start = reader.offset
        guard let kind = CeremonyKind(rawValue: try reader.readUInt8("kind")) else {
            throw reader.invalidValue("kind", at: start, "unknown kind")
        }
        self.kind = kind
        threshold = try reader.readUInt16("threshold")
        transcriptDigest = try reader.readBytes("transcriptDigest", maximumLength: 32)
        participants = try reader.readArray("participants") { reader throws(WireError) in
            try reader.read(CeremonyParticipant.self, "")
        }
        certificate = try reader.readArray("certificate") { reader throws(WireError) in
            try reader.read(CeremonySignature.self, "")
        }
    }

    /// Checks that `certificate` holds exactly one valid transcript signature from each
    /// participant; names the first that is missing or wrong.
    func check(_ certificate: [CeremonySignature]) -> String? {
        let signers = certificate.map(\.nodeID)
        let ids = participants.map(\.nodeID)
        guard signers == ids else {
            return "the certificate is signed by nodes \(list(signers)); every participant (\(list(ids))) must sign"
        }
        for (participant, entry) in zip(participants, certificate)
        where !CeremonyTranscriptSignature.verify(
            entry.signature, ceremonyID: ceremonyID, transcriptDigest: transcriptDigest,
            identityKey: participant.identityKey)
        {
            return "node \(participant.nodeID)'s signature in the certificate does not verify under its identity key"
        }
        return nil
    }
}

/// The durable half of a ceremony on one node: new keys staged in `<data_dir>/keys.pending-<hex id>`
/// (the key store's format, shares 0600 in a 0700 directory) with a ``CeremonyRecord`` under
/// `pending`; installed with ``NodeKeyStore/install(_:)`` only by ``commit(_:)``; discarded by an
/// abort or the next begin. Staged keys survive a restart, so a commit can still arrive; nothing
/// reads them except ``commit(_:)``.
struct CeremonyStaging: Sendable {
    static let pendingKey = Array("pending".utf8)
    static let lastKey = Array("last".utf8)
    static func completedKey(_ id: [UInt8]) -> [UInt8] { Array("completed/".utf8) + Array(Hex.encode(id).utf8) }

    let dataDirectory: String
    let keys: NodeKeyStore
    /// The state store. The node runtime closes it at shutdown; later calls then throw
    /// ``NodeStoreError`` naming it.
    let store: NodeStore

    init(dataDirectory: String, store: NodeStore, keys: NodeKeyStore) {
        self.dataDirectory = dataDirectory
        self.keys = keys
        self.store = store
    }

    func directory(_ id: [UInt8]) -> String {
        (dataDirectory as NSString).appendingPathComponent("keys.pending-\(Hex.encode(id))")
    }

    /// The staged ceremony, if any.
    func pending() throws(NodeStoreError) -> CeremonyRecord? {
        guard let bytes = try store.get(.ceremony, Self.pendingKey) else { return nil }
        return try? CeremonyRecord.decode(payload: bytes)
    }

    /// The completed ceremony with `id`, if any.
    func completed(_ id: [UInt8]) throws(NodeStoreError) -> CeremonyRecord? {
        guard let bytes = try store.get(.ceremony, Self.completedKey(id)) else { return nil }
        return try? CeremonyRecord.decode(payload: bytes)
    }

    /// Writes `newKeys` beside the live keys and records `record` as pending, replacing whatever
    /// was staged before.
    func stage(_ newKeys: NodeKeys, _ record: CeremonyRecord) throws(CeremonyRefusalReason) {
        discard()
        do {
            try NodeKeyStore.write(newKeys, to: directory(record.ceremonyID))
            try store.write([.put(.ceremony, Self.pendingKey, record.encodedPayload())])
        } catch {
            discard()
            throw CeremonyRefusalReason(.round3, "cannot stage the new keys: \(error)")
        }
    }

    /// Removes every staged key directory and the pending record.
    func discard() {
        try? store.write([.delete(.ceremony, Self.pendingKey)])
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: dataDirectory)) ?? []
        for entry in entries where entry.hasPrefix("keys.pending-") {
            try? FileManager.default.removeItem(atPath: (dataDirectory as NSString).appendingPathComponent(entry))
        }
    }

    /// Checks `commit` against the pending record and installs the staged keys; records the
    /// ceremony with its certificate. A commit of the ceremony already completed is accepted again.
    func commit(_ commit: CeremonyCommit) throws(CeremonyRefusalReason) -> NodeKeys? {
        let pending: CeremonyRecord?
        do {
            if let done = try completed(commit.ceremonyID) {
                guard done.transcriptDigest == commit.transcriptDigest else {
                    throw CeremonyRefusalReason(.commit, "ceremony was committed with another transcript digest")
                }
                return nil
            }
            pending = try self.pending()
        } catch let error as CeremonyRefusalReason {
            throw error
        } catch {
            throw CeremonyRefusalReason(.commit, "cannot read the staged ceremony: \(error)")
        }
        guard let pending, pending.ceremonyID == commit.ceremonyID else {
            throw CeremonyRefusalReason(
                .commit,
                "no keys are staged for this ceremony (it was aborted, replaced, or never reached round 3 here)")
        }
        guard pending.transcriptDigest == commit.transcriptDigest else {
            throw CeremonyRefusalReason(
                .commit,
                "the certificate is for transcript \(CeremonyTranscript.short(commit.transcriptDigest)), this node "
                    + "staged \(CeremonyTranscript.short(pending.transcriptDigest))")
        }
        if let problem = pending.check(commit.certificate) { throw CeremonyRefusalReason(.commit, problem) }
        let staged: NodeKeys
        do {
            guard let loaded = try NodeKeyStore.load(directory(pending.ceremonyID)) else {
                throw NodeKeysError("the staged key directory is missing")
            }
            staged = loaded
            try keys.install(staged)
        } catch {
            throw CeremonyRefusalReason(.commit, "cannot install the staged keys: \(error)")
        }
        let record = CeremonyRecord(
            ceremonyID: pending.ceremonyID, kind: pending.kind, threshold: pending.threshold,
            transcriptDigest: pending.transcriptDigest, participants: pending.participants,
            certificate: commit.certificate)
        do {
            try store.write([
                .put(.ceremony, Self.completedKey(record.ceremonyID), record.encodedPayload()),
                .put(.ceremony, Self.lastKey, record.ceremonyID),
                .delete(.ceremony, Self.pendingKey),
            ])
        } catch {
            throw CeremonyRefusalReason(.commit, "installed the keys but cannot record the ceremony: \(error)")
        }
        try? FileManager.default.removeItem(atPath: directory(record.ceremonyID))
        return staged
    }
}
