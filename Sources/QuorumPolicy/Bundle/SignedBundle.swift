import QuorumCrypto

/// A bundle signed by an operator's Ed25519 key: what nodes accept, and only from trusted signers
/// and with a higher version than they hold (DESIGN.md §4).
///
/// The envelope is canonical JSON (keys sorted, no whitespace):
///
/// ```json
/// {"bundle":{…canonical bundle…},"digest":"sha256:…","format":"quorum-latch/signed-bundle/v1",
///  "signature":"<64-byte Ed25519 signature, hex>","signer":"<32-byte public key, hex>"}
/// ```
///
/// The signature is over the UTF-8 bytes of ``signatureContext`` followed by the digest. Signing
/// the digest rather than the bundle bytes lets a receipt's bundle digest be tied to an operator's
/// signature without the bundle; the context line keeps the signature from being valid for any
/// other message the same key might sign. On opening, the digest is recomputed from the decoded
/// bundle, so the signature covers the meaning of the bundle and not merely some bytes.
public enum SignedBundle {
    /// The envelope's `format` field.
    public static let format = "quorum-latch/signed-bundle/v1"
    /// Prefix of the signed message; the digest follows it.
    public static let signatureContext = "quorum-latch bundle signature v1\n"

    /// The bytes a signature covers for `digest`.
    public static func signedMessage(digest: String) -> [UInt8] {
        Array((signatureContext + digest).utf8)
    }

    /// The operator key an envelope names as its signer, read without checking anything else:
    /// for tools that check a bundle's integrity when no trusted key is given (``open(_:fileName:trustedSigners:newerThan:)``
    /// with this key proves only that the bundle is intact, not who may sign). Nil when `bytes`
    /// is not an envelope with a 32-byte hex `signer`.
    public static func statedSigner(_ bytes: [UInt8]) -> [UInt8]? {
        guard let value = try? JSONParser().parse(bytes), case .string(let signer)? = value["signer"] else {
            return nil
        }
        return Hex.decode(signer).flatMap { $0.count == 32 ? $0 : nil }
    }

    /// The signed envelope for `bundle`, as canonical JSON bytes.
    public static func sign(_ bundle: PolicyBundle, with key: Ed25519KeyPair) -> [UInt8] {
        let canonical = BundleDocument.canonicalBytes(of: bundle)
        let digest = BundleDocument.digest(ofCanonical: canonical)
        let signature = key.sign(signedMessage(digest: digest))
        var out: [UInt8] = Array("{\"bundle\":".utf8)
        out += canonical
        out += ",\"digest\":\"\(digest)\",\"format\":\"\(format)\"".utf8
        out += ",\"signature\":\"\(Hex.encode(signature))\",\"signer\":\"\(Hex.encode(key.publicKey))\"}".utf8
        return out
    }

    /// Checks an envelope and returns its bundle, refusing (each with its own ``SignedBundleError/Code``)
    /// anything that is not an envelope, a signer not in `trustedSigners` (32-byte public keys), a
    /// signature that does not verify, a bundle that does not validate, a bundle whose recomputed
    /// digest differs from the signed one, and a version not above `currentVersion` (when given).
    public static func open(
        _ bytes: [UInt8], fileName: String, trustedSigners: [[UInt8]], newerThan currentVersion: UInt64?
    ) throws(SignedBundleError) -> PolicyBundle {
        func refuse(_ code: SignedBundleError.Code, _ reason: String) -> SignedBundleError {
            SignedBundleError(code: code, file: fileName, reason: reason)
        }
        let root: SourceNode
        switch JSONSourceReader.read(bytes) {
        case .success(let (node, _)): root = node
        case .failure(let syntax):
            let first = syntax.problems.first
            throw refuse(
                .notAnEnvelope,
                "not a signed bundle envelope: \(first.map { "\($0.mark.line):\($0.mark.column): \($0.message)" } ?? "unreadable")"
            )
        }
        let keys = ["bundle", "digest", "format", "signature", "signer"]
        guard case .mapping(let entries) = root.content else {
            throw refuse(
                .notAnEnvelope,
                "not a signed bundle envelope: expected a JSON object with \(keys.joined(separator: ", "))")
        }
        var fields: [String: SourceNode] = [:]
        for entry in entries { fields[entry.key] = entry.value }
        if case .scalar(let text, _)? = fields["format"]?.content, text == PolicyBundle.format {
            throw refuse(
                .notAnEnvelope,
                "this is an unsigned bundle (\(PolicyBundle.format)); sign it first (quorumctl policy sign)")
        }
        if let unknown = entries.first(where: { !keys.contains($0.key) }) {
            throw refuse(
                .notAnEnvelope,
                "not a signed bundle envelope: unknown key '\(unknown.key)'; expected \(keys.joined(separator: ", "))")
        }
        func text(_ key: String) throws(SignedBundleError) -> String {
            guard case .scalar(let value, true)? = fields[key]?.content else {
                throw refuse(.notAnEnvelope, "not a signed bundle envelope: '\(key)' is missing or not a string")
            }
            return value
        }
        guard try text("format") == format else {
            throw refuse(.notAnEnvelope, "not a signed bundle envelope: format is not \(format)")
        }
        let signerText = try text("signer")
        guard signerText.utf8.count == 64, let signer = Hex.decode(signerText) else {
            throw refuse(.notAnEnvelope, "signer is not a 32-byte Ed25519 public key in hex")
        }
        let signatureText = try text("signature")
        guard signatureText.utf8.count == 128, let signature = Hex.decode(signatureText) else {
            throw refuse(.notAnEnvelope, "signature is not a 64-byte Ed25519 signature in hex")
        }
        let statedDigest = try text("digest")
        guard trustedSigners.contains(signer) else {
            throw refuse(
                .untrustedSigner, "signer \(signerText) is not one of the \(trustedSigners.count) trusted keys")
        }
        guard
            Ed25519KeyPair.verify(signature: signature, message: signedMessage(digest: statedDigest), publicKey: signer)
        else {
            throw refuse(
                .badSignature, "the signature does not verify for digest \(statedDigest) under signer \(signerText)")
        }
        guard let bundleNode = fields["bundle"] else {
            throw refuse(.notAnEnvelope, "not a signed bundle envelope: 'bundle' is missing")
        }
        let bundle: PolicyBundle
        do {
            bundle = try BundleDocument.decode(root: bundleNode, fileName: fileName)
        } catch {
            throw SignedBundleError(
                code: .invalidBundle, file: fileName, reason: "the signed bundle is not valid", problems: error.problems
            )
        }
        guard bundle.digest == statedDigest else {
            throw refuse(
                .digestMismatch,
                "the bundle's digest is \(bundle.digest), but the envelope states (and the signature covers) \(statedDigest)"
            )
        }
        if let currentVersion, bundle.version <= currentVersion {
            throw refuse(
                .notNewer, "bundle version \(bundle.version) is not above the version in force, \(currentVersion)")
        }
        return bundle
    }
}

/// Why a signed bundle was refused.
public struct SignedBundleError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable code per refusal.
    public enum Code: String, Sendable {
        /// Not JSON, or not an object of exactly the envelope's fields.
        case notAnEnvelope = "not-an-envelope"
        /// The signer is not a trusted key.
        case untrustedSigner = "untrusted-signer"
        /// The signature does not verify over the stated digest.
        case badSignature = "bad-signature"
        /// The bundle inside does not decode or validate; see ``SignedBundleError/problems``.
        case invalidBundle = "invalid-bundle"
        /// The bundle inside is not the one that was signed.
        case digestMismatch = "digest-mismatch"
        /// The version is not above the one in force (a replay or a rollback).
        case notNewer = "not-newer"
    }

    /// What was refused.
    public let code: Code
    /// The file name given to ``SignedBundle/open(_:fileName:trustedSigners:newerThan:)``.
    public let file: String
    /// Why, in words.
    public let reason: String
    /// For ``Code/invalidBundle``: every problem in the bundle.
    public let problems: [LocatedProblem]

    /// An error.
    public init(code: Code, file: String, reason: String, problems: [LocatedProblem] = []) {
        self.code = code
        self.file = file
        self.reason = reason
        self.problems = problems
    }

    /// `file: reason [code]`, then one line per bundle problem.
    public var description: String {
        (["\(file): \(reason) [\(code.rawValue)]"] + problems.map(\.description)).joined(separator: "\n")
    }
}
