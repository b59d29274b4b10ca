import Foundation
import NIOConcurrencyHelpers
import QuorumCrypto

/// The group keys one node holds once a ceremony (or a dealer import) has completed: its signing
/// and sealing shares and both groups' public packages. Ed25519 only: the node runtime signs
/// receipts and checkpoints as RFC 8032 signatures (DESIGN.md §6).
public struct NodeKeys: Sendable {
    /// This node's share of the group signing key.
    public let signing: KeyPackage<Ed25519Suite>
    /// This node's share of the group sealing key.
    public let sealing: KeyPackage<Ed25519Suite>
    /// The signing group's public package (`group.json`).
    public let signingGroup: PublicKeyPackage<Ed25519Suite>
    /// The sealing group's public package (`sealing-group.json`).
    public let sealingGroup: PublicKeyPackage<Ed25519Suite>

    /// The node's keys, after checking that they belong together: each share's purpose, its
    /// verifying share in its group, one identifier for both, and two different group keys.
    public init(
        signing: KeyPackage<Ed25519Suite>, sealing: KeyPackage<Ed25519Suite>,
        signingGroup: PublicKeyPackage<Ed25519Suite>, sealingGroup: PublicKeyPackage<Ed25519Suite>
    ) throws(NodeKeysError) {
        guard signing.purpose == .signing, signingGroup.purpose == .signing else {
            throw NodeKeysError("the signing share and group must have purpose signing")
        }
        guard sealing.purpose == .sealing, sealingGroup.purpose == .sealing else {
            throw NodeKeysError("the sealing share and group must have purpose sealing")
        }
        guard signing.identifier == sealing.identifier else {
            throw NodeKeysError(
                "the signing share is participant \(signing.identifier) but the sealing share is \(sealing.identifier)")
        }
        do {
            try signing.check(against: signingGroup)
            try sealing.check(against: sealingGroup)
        } catch {
            throw NodeKeysError("a share does not match its group: \(error)")
        }
        guard signingGroup.verifyingKey != sealingGroup.verifyingKey else {
            throw NodeKeysError("the signing and sealing group keys are the same key; they must be independent")
        }
        self.signing = signing
        self.sealing = sealing
        self.signingGroup = signingGroup
        self.sealingGroup = sealingGroup
    }

    /// The participant identifier both shares carry.
    public var identifier: Identifier { signing.identifier }

    /// The signing group public key, as the wire and `group.json` encode it.
    public var groupKeyBytes: [UInt8] { (try? signingGroup.verifyingKey.serialized()) ?? [] }
}

/// Why a node's keys are refused; names the file when one is at fault.
public struct NodeKeysError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public let description: String

    init(_ description: String) { self.description = description }
}

/// The node's key files in `<data_dir>/keys` (0700): `signing-share.json` and `sealing-share.json`
/// (0600) and the public `group.json` and `sealing-group.json`: the same four files, in the same
/// formats, that `quorumctl keygen --dealer` writes for a node, so a dealer's `node-<i>/` plus the
/// group files can be installed by copying them.
///
/// ``install(_:)`` writes a complete new set beside the old one and swaps the directories, so a
/// crash leaves either the old set or the new one, never a mixture; a half-written set from a
/// crash is removed at the next start.
public final class NodeKeyStore: Sendable {
    /// The file names of a key set.
    public static let fileNames = [
        "signing-share.json", "sealing-share.json", "group.json", "sealing-group.json",
    ]

    /// The directory holding the current set.
    public let directory: String
    private let keys: NIOLockedValueBox<NodeKeys?>

    /// Opens `<dataDirectory>/keys`, loading the set there if there is one.
    ///
    /// - Throws: ``NodeKeysError`` naming the file for a partial set, an unreadable or malformed
    ///   file, a share file readable by others, or shares that do not belong together.
    public init(dataDirectory: String) throws(NodeKeysError) {
        directory = (dataDirectory as NSString).appendingPathComponent("keys")
        for leftover in [directory + ".new", directory + ".old"] {
            try? FileManager.default.removeItem(atPath: leftover)
        }
        keys = NIOLockedValueBox(try Self.load(directory))
    }

    /// The keys, once a ceremony or an import has installed them.
    public var current: NodeKeys? { keys.withLockedValue { $0 } }

    /// Reads the key set in `<dataDirectory>/keys` under the same checks as opening the store
    /// (complete set, shares 0600, shares that belong together), without touching anything on
    /// disk: what `quorumctl doctor` reads beside a running node. Nil when no keys are installed.
    public static func read(dataDirectory: String) throws(NodeKeysError) -> NodeKeys? {
        try load((dataDirectory as NSString).appendingPathComponent("keys"))
    }

    /// Makes `newKeys` the node's keys: on disk first (synced, shares 0600), then in memory.
    public func install(_ newKeys: NodeKeys) throws(NodeKeysError) {
        try Self.write(newKeys, to: directory + ".new")
        let hadKeys = FileManager.default.fileExists(atPath: directory)
        if hadKeys, rename(directory, directory + ".old") != 0 {
            throw NodeKeysError("\(directory): cannot move the old keys aside: \(String(cString: strerror(errno)))")
        }
        guard rename(directory + ".new", directory) == 0 else {
            let reason = String(cString: strerror(errno))
            if hadKeys { _ = rename(directory + ".old", directory) }
            throw NodeKeysError("\(directory): cannot put the new keys in place: \(reason)")
        }
        Self.syncDirectory((directory as NSString).deletingLastPathComponent)
        try? FileManager.default.removeItem(atPath: directory + ".old")
        keys.withLockedValue { $0 = newKeys }
    }

    /// Writes `keys` as a complete set into `path` (created 0700, replaced if present).
    static func write(_ keys: NodeKeys, to path: String) throws(NodeKeysError) {
        try? FileManager.default.removeItem(atPath: path)
        guard mkdir(path, 0o700) == 0 else {
            throw NodeKeysError("\(path): cannot create: \(String(cString: strerror(errno)))")
        }
        func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
        do {
            try KeyFiles.writeSecretFile(
                try encode { () throws(CryptoError) in try KeyFiles.encodeShare(keys.signing) },
                to: file("signing-share.json"))
            try KeyFiles.writeSecretFile(
                try encode { () throws(CryptoError) in try KeyFiles.encodeShare(keys.sealing) },
                to: file("sealing-share.json"))
            try KeyFiles.writePublicFile(
                try encode { () throws(CryptoError) in try KeyFiles.encodeGroup(keys.signingGroup) },
                to: file("group.json"))
            try KeyFiles.writePublicFile(
                try encode { () throws(CryptoError) in try KeyFiles.encodeGroup(keys.sealingGroup) },
                to: file("sealing-group.json"))
        } catch let error as NodeKeysError {
            throw error
        } catch {
            throw NodeKeysError("\(path): \(error)")
        }
        syncDirectory(path)
    }

    private static func encode<T>(_ body: () throws(CryptoError) -> T) throws(NodeKeysError) -> T {
        do { return try body() } catch { throw NodeKeysError("cannot encode the keys: \(error)") }
    }

    /// Reads a complete set from `path`, or nil when the directory does not exist.
    static func load(_ path: String) throws(NodeKeysError) -> NodeKeys? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
        let missing = fileNames.filter { !FileManager.default.fileExists(atPath: file($0)) }
        if missing.count == fileNames.count { return nil }
        guard missing.isEmpty else {
            throw NodeKeysError(
                "\(path): an incomplete key set, missing \(missing.joined(separator: ", ")); restore it from backup, "
                    + "or remove the directory and run a ceremony or `quorumctl keygen repair`")
        }
        for name in ["signing-share.json", "sealing-share.json"] {
            var status = stat()
            if stat(file(name), &status) == 0, status.st_mode & 0o077 != 0 {
                throw NodeKeysError(
                    "\(file(name)): mode \(String(status.st_mode & 0o777, radix: 8)) lets others read a key share; "
                        + "run chmod 600 on it")
            }
        }
        do {
            let signing = try KeyFiles.decodeShare(
                try KeyFiles.readSecretFile(file("signing-share.json")), as: Ed25519Suite.self,
                file: file("signing-share.json"))
            let sealing = try KeyFiles.decodeShare(
                try KeyFiles.readSecretFile(file("sealing-share.json")), as: Ed25519Suite.self,
                file: file("sealing-share.json"))
            let signingGroup = try KeyFiles.decodeGroup(
                try KeyFiles.readFile(file("group.json")), as: Ed25519Suite.self, file: file("group.json"))
            let sealingGroup = try KeyFiles.decodeGroup(
                try KeyFiles.readFile(file("sealing-group.json")), as: Ed25519Suite.self,
                file: file("sealing-group.json"))
            return try NodeKeys(
                signing: signing, sealing: sealing, signingGroup: signingGroup, sealingGroup: sealingGroup)
        } catch let error as NodeKeysError {
            throw NodeKeysError("\(path): \(error.description)")
        } catch {
            throw NodeKeysError("\(error)")
        }
    }

    private static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}

/// The node's identity key: an Ed25519 key pair made on first start in `<data_dir>/identity.key`
/// (0600), which never leaves the node. Peers learn its public half from heartbeats over mutual
/// TLS; it signs ceremony transcripts and checkpoint cosignatures, and is the end point of the
/// encrypted round-2 shares of a ceremony.
public enum NodeIdentityKey {
    /// The role written into the key file.
    public static let role = "node-identity"

    /// Loads `<dataDirectory>/identity.key`, creating it when absent.
    public static func loadOrCreate(dataDirectory: String) throws(NodeKeysError) -> Ed25519KeyPair {
        let path = (dataDirectory as NSString).appendingPathComponent("identity.key")
        if FileManager.default.fileExists(atPath: path) {
            do {
                return try KeyFiles.decodeEd25519Key(try KeyFiles.readSecretFile(path), role: role, file: path)
            } catch {
                throw NodeKeysError("\(error)")
            }
        }
        let key = Ed25519KeyPair()
        do { try KeyFiles.writeSecretFile(KeyFiles.encodeEd25519Key(key, role: role), to: path) } catch {
            throw NodeKeysError("\(error)")
        }
        return key
    }
}
