import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import QuorumAudit
import QuorumCrypto
import QuorumLog
import QuorumProtocol

/// What every `audit` command trusts: `--group` (the signing group's key), `--cosigners` (the
/// nodes' identity keys) and `--origin`.
struct AuditTrustOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The signing group file (group.json): checkpoints and receipts verify under its key.", valueName: "file"))
    var group: String

    @Option(
        help: ArgumentHelp(
            "The nodes' identity keys, to check cosignatures: a JSON file with participants [{node_id, identity_key}], "
                + "as the ceremony.json keygen writes. Default: ceremony.json beside --group, if there is one.",
            valueName: "file"))
    var cosigners: String?

    @Option(
        help: ArgumentHelp(
            "The log origin every checkpoint must name (default: the one derived from the group key, quorum-latch/<hex>).",
            valueName: "origin"))
    var origin: String?

    /// The trust these options describe, the group, and where the node keys came from (for messages).
    func load(command: String) throws -> (AuditTrust, PublicKeyPackage<Ed25519Suite>, String?) {
        let (group, key) = try Inputs.signingGroup(self.group, command: command)
        var nodeKeys: [UInt16: [UInt8]] = [:]
        var keysFile = cosigners
        if keysFile == nil {
            let beside = URL(fileURLWithPath: self.group).deletingLastPathComponent().appendingPathComponent(
                "ceremony.json"
            ).path
            if FileManager.default.fileExists(atPath: beside) { keysFile = beside }
        }
        if let keysFile { nodeKeys = try Self.nodeKeys(keysFile) }
        let origin = self.origin ?? CheckpointNames.origin(groupPublicKey: key)
        return (AuditTrust(groupKey: key, nodeKeys: nodeKeys, origin: origin), group, keysFile)
    }

    /// Node id → identity key from a participants file.
    static func nodeKeys(_ path: String) throws -> [UInt16: [UInt8]] {
        let bytes = try Inputs.contents(of: path, what: "the node keys")
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
            let participants = object["participants"] as? [[String: Any]]
        else {
            throw CLIError(
                "\(path): not a participants file; expected {\"participants\": [{\"node_id\": 1, \"identity_key\": \"<64 hex>\"}]}"
            )
        }
        var keys: [UInt16: [UInt8]] = [:]
        for (position, participant) in participants.enumerated() {
            guard let id = participant["node_id"] as? Int, let node = UInt16(exactly: id), node > 0,
                let hex = participant["identity_key"] as? String, let key = Hex.decode(hex), key.count == 32
            else {
                throw CLIError(
                    "\(path): participants[\(position)]: needs node_id (1-65535) and identity_key (64 hex digits)")
            }
            guard keys[node] == nil else { throw CLIError("\(path): node \(node) is listed twice") }
            keys[node] = key
        }
        return keys
    }
}

/// `--node URL`, repeatable, or several URLs after one `--node`.
struct AuditNodeOptions: ParsableArguments {
    @Option(
        parsing: .upToNextOption,
        help: ArgumentHelp(
            "A node's audit API base URL (http://host:port), or a proxy's (http://proxy/.well-known/quorum/audit).",
            valueName: "url"))
    var node: [String] = []

    @Option(help: ArgumentHelp("Seconds to wait for each answer.", valueName: "s"))
    var timeout: Int = 10

    /// The base URLs, checked and without a trailing slash.
    func urls(atLeast count: Int = 1) throws -> [String] {
        guard node.count >= count else {
            throw CLIError("give --node URL\(count > 1 ? " at least \(count) times" : ""): a node's audit API")
        }
        guard (1...300).contains(timeout) else { throw CLIError("--timeout \(timeout) is outside 1…300 seconds") }
        return try node.map { url in
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil,
                parsed.query == nil
            else {
                throw CLIError("--node \(url): not an http(s) URL without a query, as http://127.0.0.1:7301")
            }
            return url.hasSuffix("/") ? String(url.dropLast()) : url
        }
    }
}

/// GETs from audit APIs: one HTTP client for the command's life, bodies capped at 32 MiB.
final class AuditFetcher: Sendable {
    private let client: HTTPClient
    private let timeout: Int

    init(timeout: Int) {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.timeout = .init(connect: .seconds(Int64(timeout)), read: .seconds(Int64(timeout)))
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.timeout = timeout
    }

    func shutdown() { try? client.syncShutdown() }

    /// The body of `base/path` when it answers 200; otherwise a message naming the node, the
    /// resource and the API's reason.
    func get(_ base: String, _ path: String) -> Result<[UInt8], CLIError> {
        let client = client
        let timeout = timeout
        return Blocking.wait { () -> Result<[UInt8], CLIError> in
            do {
                let response = try await client.execute(
                    HTTPClientRequest(url: base + "/" + path), timeout: .seconds(Int64(timeout)))
                let body = Array(try await response.body.collect(upTo: 32 << 20).readableBytesView)
                guard response.status.code == 200 else {
                    let reason =
                        (try? JSONSerialization.jsonObject(with: Data(body)) as? [String: String])
                        .map { object in
                            [object["error"], object["parameter"].map { "(\($0))" }, object["reason"]]
                                .compactMap { $0 }.joined(separator: " ")
                        } ?? String(decoding: body.prefix(200), as: UTF8.self)
                    return .failure(CLIError("\(base): GET /\(path): \(response.status.code) \(reason)"))
                }
                return .success(body)
            } catch {
                return .failure(CLIError("\(base): GET /\(path): \(error)"))
            }
        }
    }

    /// The node's checkpoint note, parsed (not verified).
    func checkpoint(_ base: String) -> Result<SignedNote, CLIError> {
        get(base, "checkpoint").flatMap { body in
            Result { () throws(CLIError) -> SignedNote in
                do { return try SignedNote.parse(body) } catch {
                    throw CLIError("\(base): /checkpoint is not a signed note: \(error)")
                }
            }
        }
    }

    /// The consistency proof the node at `base` serves from `from` to `to`.
    func consistency(_ base: String, from: UInt64, to: UInt64) -> Result<ConsistencyProofDocument, CLIError> {
        get(base, "proof/consistency?from=\(from)&to=\(to)").flatMap { body in
            Result { () throws(CLIError) -> ConsistencyProofDocument in
                do { return try ConsistencyProofDocument(json: body) } catch {
                    throw CLIError("\(base): /proof/consistency: \(error)")
                }
            }
        }
    }
}

/// How the audit commands print what they checked.
enum AuditText {
    /// `size 600, root <b64>; signed by the group (quorum-latch/…); cosigned by nodes 1, 2, 3 (3 of 4 known)`.
    static func describe(_ verified: VerifiedCheckpoint, knownNodes: Int) -> String {
        var text =
            "size \(verified.checkpoint.size), root \(Base64.encode(verified.checkpoint.rootHash)); "
            + "signed by the group (\(verified.groupKeyName))"
        if knownNodes > 0 {
            let nodes = verified.cosigners.map { String($0.nodeID) }.joined(separator: ", ")
            text +=
                verified.cosigners.isEmpty
                ? "; no cosignature by a known node (\(knownNodes) known)"
                : "; cosigned by node\(verified.cosigners.count == 1 ? "" : "s") \(nodes) (\(verified.cosigners.count) of \(knownNodes) known)"
        } else if !verified.cosigners.isEmpty || !verified.unknownSigners.isEmpty {
            text += "; cosignatures not checked (no node keys: --cosigners)"
        }
        if knownNodes > 0, !verified.unknownSigners.isEmpty {
            text += "; \(verified.unknownSigners.count) line(s) by unknown keys ignored"
        }
        return text
    }

    /// A note framed for evidence output.
    static func note(_ title: String, _ note: SignedNote) -> String {
        "--- \(title)\n" + note.serialized.trimmingCharacters(in: .newlines)
    }
}
