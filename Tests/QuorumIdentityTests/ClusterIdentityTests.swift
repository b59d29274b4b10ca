import Crypto
import Foundation
import QuorumCrypto
import QuorumTestKit
import SwiftASN1
import Testing
import X509

@testable import QuorumIdentity

/// A CA made once for the suite, at a fixed moment, so validity tests are exact.
private let now = Date(timeIntervalSince1970: 1_790_000_000)  // 2026-09-21
private let ca = try! ClusterCA.generate(now: now)

/// A leaf signed by `issuer` with every field chosen by the test, for the certificates
/// `ClusterCA.issue` would never make.
private func craft(
    by issuer: ClusterCA = ca, uris: [String], commonName: String,
    usages: [ExtendedKeyUsage.Usage]? = [.serverAuth, .clientAuth],
    constraints: BasicConstraints? = .notCertificateAuthority,
    extra: Certificate.Extension? = nil
) throws -> Certificate {
    let key = P256.Signing.PrivateKey()
    var extensions = Certificate.Extensions()
    if let constraints { try extensions.append(Critical(constraints).makeCertificateExtension()) }
    if let usages { try extensions.append(ExtendedKeyUsage(usages).makeCertificateExtension()) }
    try extensions.append(
        SubjectAlternativeNames(uris.map { .uniformResourceIdentifier($0) }).makeCertificateExtension())
    if let extra { try extensions.append(extra) }
    return try Certificate(
        version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: now - 60,
        notValidAfter: now + 86400, issuer: issuer.certificate.subject,
        subject: try DistinguishedName { CommonName(commonName) }, signatureAlgorithm: .ecdsaWithSHA256,
        extensions: extensions, issuerPrivateKey: .init(issuer.privateKey))
}

/// The code of the `IdentityError` that `body` throws, or `nil` if it does not throw one.
private func refusal<T>(_ body: () async throws -> T) async -> IdentityError.Code? {
    do {
        _ = try await body()
        return nil
    } catch let error as IdentityError {
        return error.code
    } catch {
        return nil
    }
}

@Suite("Cluster identities")
struct ClusterIdentityTests {
    static let identities: [PeerIdentity] = [.node(id: 1), .node(id: 65535), .proxy, .operator(name: "alice")]

    @Test("each role round-trips through PEM and verifies for the TLS sides it may take", arguments: identities)
    func roundTrip(identity: PeerIdentity) async throws {
        let issued = try ca.issue(LeafRequest(identity: identity), now: now)
        let parsed = try ClusterIdentity.certificate(pem: try issued.certificatePEM())
        #expect(parsed == issued.certificate)
        #expect(try ClusterIdentity.identity(of: parsed) == identity)
        #expect(
            try await ClusterIdentity.verify(leaf: parsed, against: ca.certificate, at: now, usage: .client) == identity
        )
        if identity.role != .operator {
            #expect(
                try await ClusterIdentity.verify(leaf: parsed, against: ca.certificate, at: now, usage: .server)
                    == identity)
        }
        var serializer = DER.Serializer()
        try serializer.serialize(parsed)
        let der = serializer.serializedBytes
        #expect(try ClusterIdentity.identity(of: try ClusterIdentity.certificate(der: der)) == identity)
    }

    @Test("the certificate carries the URI, the common name, host names and the usages of its role")
    func contents() throws {
        let node = try ca.issue(LeafRequest(identity: .node(id: 3)), now: now).certificate
        let names = try #require(try node.extensions.subjectAlternativeNames).map { $0 }
        #expect(names.contains(.uniformResourceIdentifier("quorum-latch://node/3")))
        #expect(names.contains(.dnsName("localhost")))
        #expect(names.contains(.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))))
        #expect(try node.extensions.extendedKeyUsage == ExtendedKeyUsage([.serverAuth, .clientAuth]))
        #expect(try node.extensions.basicConstraints == .notCertificateAuthority)
        #expect(
            try node.extensions.authorityKeyIdentifier?.keyIdentifier
                == ca.certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
        #expect(node.notValidAfter == now + 365 * 86400)

        let op = try ca.issue(LeafRequest(identity: .operator(name: "alice")), now: now).certificate
        #expect(try op.extensions.extendedKeyUsage == ExtendedKeyUsage([.clientAuth]))
        #expect(
            try op.extensions.subjectAlternativeNames.map(Array.init) == [
                .uniformResourceIdentifier("quorum-latch://operator/alice")
            ])

        #expect(try ca.certificate.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
        #expect(try ca.certificate.extensions.keyUsage?.keyCertSign == true)
        #expect(try ca.certificate.extensions.keyUsage?.cRLSign == true)
        #expect(ca.certificate.notValidAfter == now + 3650 * 86400)

        let other = try ca.issue(LeafRequest(identity: .node(id: 3)), now: now).certificate
        #expect(other.serialNumber != node.serialNumber)
        #expect(other.publicKey != node.publicKey)
    }

    @Test("a certificate of another cluster's CA is foreign")
    func foreignCA() async throws {
        let other = try ClusterCA.generate(now: now)
        let leaf = try other.issue(LeafRequest(identity: .node(id: 1)), now: now).certificate
        #expect(
            await refusal {
                try await ClusterIdentity.verify(leaf: leaf, against: ca.certificate, at: now, usage: .client)
            } == .foreignCA)
        // Same issuer name, another key: still foreign.
        let impostor = ClusterCA(certificate: ca.certificate, privateKey: other.privateKey)
        let forged = try craft(by: impostor, uris: ["quorum-latch://node/1"], commonName: "node-1")
        #expect(
            await refusal {
                try await ClusterIdentity.verify(leaf: forged, against: ca.certificate, at: now, usage: .client)
            } == .foreignCA)
    }

    @Test("expired and not-yet-valid certificates are refused, naming which")
    func validity() async throws {
        let leaf = try ca.issue(LeafRequest(identity: .node(id: 2), validityDays: 1), now: now).certificate
        #expect(
            try await ClusterIdentity.verify(leaf: leaf, against: ca.certificate, at: now + 86000, usage: .server)
                == .node(id: 2))
        #expect(
            await refusal {
                try await ClusterIdentity.verify(
                    leaf: leaf, against: ca.certificate, at: now + 2 * 86400, usage: .server)
            } == .expired)

        let future = try ca.issue(LeafRequest(identity: .node(id: 2)), now: now + 10 * 86400).certificate
        #expect(
            await refusal {
                try await ClusterIdentity.verify(leaf: future, against: ca.certificate, at: now, usage: .server)
            } == .notYetValid)

        let shortCA = try ClusterCA.generate(validityDays: 2, now: now)
        let early = try shortCA.issue(LeafRequest(identity: .proxy, validityDays: 1), now: now).certificate
        do {
            _ = try await ClusterIdentity.verify(
                leaf: early, against: shortCA.certificate, at: now + 3 * 86400, usage: .client)
            Issue.record("an expired CA was accepted")
        } catch {
            #expect(error.code == .expired)
            #expect(error.input == "cluster CA")
        }
    }

    @Test(
        "identity URIs have one spelling; anything else is refused with its reason",
        arguments: [
            ("quorum-latch://admin", IdentityError.Code.unknownRole),
            ("quorum-latch://node/0", .invalidNodeID),
            ("quorum-latch://node/65536", .invalidNodeID),
            ("quorum-latch://node/03", .invalidNodeID),
            ("quorum-latch://node/-3", .invalidNodeID),
            ("quorum-latch://node/3x", .invalidNodeID),
            ("quorum-latch://node", .invalidNodeID),
            ("quorum-latch://node/", .invalidNodeID),
            ("quorum-latch://node/3/", .unknownRole),
            ("quorum-latch://proxy/2", .unknownRole),
            ("quorum-latch://operator", .invalidName),
            ("quorum-latch://operator/a b", .invalidName),
            ("quorum-latch://operator/-x", .invalidName),
            ("QUORUM-LATCH://node/3", .unknownRole),
            ("quorum-latch:node/3", .unknownRole),
        ])
    func badURIs(uri: String, code: IdentityError.Code) async throws {
        #expect(await refusal { try PeerIdentity.parse(uri: uri) } == code)
        let leaf = try craft(uris: [uri], commonName: "node-3")
        #expect(await refusal { try ClusterIdentity.identity(of: leaf) } == code)
    }

    @Test("two role URIs, or a common name that disagrees, are ambiguous")
    func ambiguous() async throws {
        for uris in [
            ["quorum-latch://node/1", "quorum-latch://node/2"],
            ["quorum-latch://node/1", "quorum-latch://node/1"],
            ["quorum-latch://node/1", "quorum-latch://proxy"],
            ["quorum-latch://proxy", "Quorum-Latch://operator/x"],
        ] {
            let leaf = try craft(uris: uris, commonName: "node-1")
            #expect(await refusal { try ClusterIdentity.identity(of: leaf) } == .ambiguousRole, "\(uris)")
        }
        let mismatch = try craft(uris: ["quorum-latch://node/1"], commonName: "node-2")
        #expect(await refusal { try ClusterIdentity.identity(of: mismatch) } == .ambiguousRole)
        // Other URIs are not role claims.
        let extra = try craft(uris: ["https://example.com/x", "quorum-latch://proxy"], commonName: "proxy")
        #expect(try ClusterIdentity.identity(of: extra) == .proxy)
    }

    @Test("a certificate without a role URI names no role")
    func missingRole() async throws {
        let leaf = try craft(uris: [], commonName: "node-1")
        #expect(await refusal { try ClusterIdentity.identity(of: leaf) } == .missingRole)
        let missingID = try craft(uris: ["quorum-latch://node"], commonName: "node-1")
        #expect(await refusal { try ClusterIdentity.identity(of: missingID) } == .invalidNodeID)
    }

    @Test("a CA certificate is not a leaf, and a leaf is not a CA")
    func caAsLeaf() async throws {
        #expect(await refusal { try ClusterIdentity.identity(of: ca.certificate) } == .notALeaf)
        #expect(
            await refusal {
                try await ClusterIdentity.verify(leaf: ca.certificate, against: ca.certificate, at: now, usage: .client)
            } == .notALeaf)
        let subCA = try craft(
            uris: ["quorum-latch://node/1"], commonName: "node-1",
            constraints: .isCertificateAuthority(maxPathLength: nil))
        #expect(
            await refusal {
                try await ClusterIdentity.verify(leaf: subCA, against: ca.certificate, at: now, usage: .client)
            } == .notALeaf)
        let noConstraints = try craft(uris: ["quorum-latch://node/1"], commonName: "node-1", constraints: nil)
        #expect(await refusal { try ClusterIdentity.identity(of: noConstraints) } == .notALeaf)

        let node = try ca.issue(LeafRequest(identity: .node(id: 1)), now: now).certificate
        #expect(
            await refusal { try await ClusterIdentity.verify(leaf: node, against: node, at: now, usage: .client) }
                == .notACertificateAuthority)
    }

    @Test("extended key usage decides the TLS side: an operator or a client-only node cannot serve")
    func wrongUsage() async throws {
        let op = try ca.issue(LeafRequest(identity: .operator(name: "bob")), now: now).certificate
        #expect(
            await refusal {
                try await ClusterIdentity.verify(leaf: op, against: ca.certificate, at: now, usage: .server)
            } == .wrongUsage)
        let clientOnly = try craft(uris: ["quorum-latch://node/4"], commonName: "node-4", usages: [.clientAuth])
        #expect(
            try await ClusterIdentity.verify(leaf: clientOnly, against: ca.certificate, at: now, usage: .client)
                == .node(id: 4))
        #expect(
            await refusal {
                try await ClusterIdentity.verify(leaf: clientOnly, against: ca.certificate, at: now, usage: .server)
            } == .wrongUsage)
        let noUsage = try craft(uris: ["quorum-latch://node/4"], commonName: "node-4", usages: nil)
        #expect(
            await refusal {
                try await ClusterIdentity.verify(leaf: noUsage, against: ca.certificate, at: now, usage: .client)
            } == .wrongUsage)
    }

    @Test("the chain verifier has the last word: an unknown critical extension is rejected")
    func verifierRejects() async throws {
        let unknown = Certificate.Extension(oid: [1, 3, 6, 1, 4, 1, 99999, 1], critical: true, value: [0x05, 0x00])
        let leaf = try craft(uris: ["quorum-latch://node/5"], commonName: "node-5", extra: unknown)
        #expect(try ClusterIdentity.identity(of: leaf) == .node(id: 5))
        #expect(
            await refusal {
                try await ClusterIdentity.verify(leaf: leaf, against: ca.certificate, at: now, usage: .client)
            } == .rejected)
    }

    @Test("issuing refuses what would not parse back or would outlive the CA")
    func issueRefusals() async throws {
        #expect(await refusal { try ca.issue(LeafRequest(identity: .node(id: 0)), now: now) } == .invalidNodeID)
        #expect(await refusal { try PeerIdentity.node(70000) } == .invalidNodeID)
        #expect(await refusal { try ca.issue(LeafRequest(identity: .operator(name: "a/b")), now: now) } == .invalidName)
        #expect(
            await refusal { try ca.issue(LeafRequest(identity: .proxy, validityDays: 4000), now: now) }
                == .invalidValidity)
        #expect(
            await refusal { try ca.issue(LeafRequest(identity: .proxy, validityDays: 0), now: now) } == .invalidValidity
        )
        #expect(
            await refusal {
                try ca.issue(LeafRequest(identity: .operator(name: "x"), hosts: [.dns("a.example")]), now: now)
            } == .invalidHost)
        #expect(await refusal { try ca.issue(LeafRequest(identity: .proxy), now: now - 86400) } == .notYetValid)
    }

    @Test(
        "host names: addresses and DNS names, nothing else",
        arguments: [
            ("127.0.0.1", true), ("::1", true), ("fd00::1:2", true), ("node-1.cluster.example", true),
            ("LOCALHOST", true), ("*.example", false), ("-a.example", false), ("a..b", false), ("", false),
            ("a_b.example", false), ("300.1.1.1", false),
        ])
    func hostNames(text: String, valid: Bool) async {
        #expect((await refusal { try HostName.parse(text) } == nil) == valid)
    }

    @Test("HostName prints addresses in their usual form")
    func hostNameText() throws {
        #expect(try HostName.parse("::1").description == "::1")
        #expect(try HostName.parse("10.0.0.7").description == "10.0.0.7")
        #expect(try HostName.parse("Node-1.Example").description == "node-1.example")
    }
}

@Suite("Certificate and key files")
struct CertificateFileTests {
    @Test("init writes the layout, keys 0600 and certificates 0644, and refuses to overwrite without force")
    func initialize() async throws {
        let directory = try TestKit.temporaryDirectory("certs")
        defer { try? FileManager.default.removeItem(at: directory) }
        let layout = CertificateDirectory(directory.path)
        let written = try CertificateFiles.initialize(layout, plan: ClusterCertificatesPlan(nodes: 3), force: false)
        #expect(written.map(\.holder) == ["cluster CA", "node 1", "node 2", "node 3", "proxy", "operator admin"])
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(
            names == [
                "ca.key", "ca.pem", "node-1.key", "node-1.pem", "node-2.key", "node-2.pem", "node-3.key", "node-3.pem",
                "operator.key", "operator.pem", "proxy.key", "proxy.pem",
            ])
        for name in names {
            let mode =
                try FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent(name).path)[
                    .posixPermissions] as? NSNumber
            #expect(mode?.intValue == (name.hasSuffix(".key") ? 0o600 : 0o644), "\(name)")
        }

        let loaded = try CertificateFiles.readCA(in: layout)
        for file in written.dropFirst() {
            let leaf = try CertificateFiles.readCertificate(file.certificatePath)
            let identity = try await ClusterIdentity.verify(
                leaf: leaf, against: loaded.certificate, at: Date(), usage: .client)
            #expect(identity.description == file.holder)
            // The key file holds the certificate's key, readable by swift-crypto's own PEM parser.
            let keyPEM = String(decoding: try KeyFiles.readSecretFile(file.keyPath).copyBytes(), as: UTF8.self)
            #expect(keyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
            let key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM)
            #expect(Certificate.PublicKey(key.publicKey) == leaf.publicKey)
        }

        let before = try Data(contentsOf: directory.appendingPathComponent("ca.key"))
        do {
            try CertificateFiles.initialize(layout, plan: ClusterCertificatesPlan(nodes: 3), force: false)
            Issue.record("existing files were overwritten")
        } catch {
            #expect(error.code == .fileExists)
            #expect(error.description.contains("--force"))
        }
        #expect(try Data(contentsOf: directory.appendingPathComponent("ca.key")) == before)
        try CertificateFiles.initialize(layout, plan: ClusterCertificatesPlan(nodes: 3), force: true)
        #expect(try Data(contentsOf: directory.appendingPathComponent("ca.key")) != before)
    }

    @Test("the CA refuses a key that is not its own, and keys never print")
    func keys() async throws {
        let other = try ClusterCA.generate(now: now)
        #expect(
            await refusal { try ClusterCA(certificate: ca.certificate, privateKeyPEM: other.privateKeyPEM()) }
                == .keyMismatch)
        let reloaded = try ClusterCA(certificate: ca.certificate, privateKeyPEM: ca.privateKeyPEM())
        #expect(reloaded.certificate == ca.certificate)
        #expect(
            await refusal {
                try ClusterCA(certificate: ca.certificate, privateKeyPEM: SecretBytes(Array("nonsense".utf8)))
            } == .malformed)

        let issued = try ca.issue(LeafRequest(identity: .proxy), now: now)
        let pem = String(decoding: issued.privateKeyPEM().copyBytes(), as: UTF8.self)
        #expect(
            pem.trimmingCharacters(in: .newlines)
                == issued.privateKey.pemRepresentation.trimmingCharacters(in: .newlines))
        #expect("\(issued.privateKeyPEM())" == "<redacted>")
        for text in ["\(issued)", "\(ca)", String(reflecting: ca)] {
            #expect(!text.contains("PRIVATE"), "\(text)")
        }
        let round = try PEMFiles.privateKey(fromPEM: issued.privateKeyPEM(), source: "k")
        #expect(round.rawRepresentation == issued.privateKey.rawRepresentation)
    }

    @Test("a file holding two certificates or a key is not one certificate")
    func readRefusals() async throws {
        let pem = try ca.issue(LeafRequest(identity: .proxy), now: now).certificatePEM()
        #expect(await refusal { try ClusterIdentity.certificate(pem: pem + pem) } == .malformed)
        #expect(
            await refusal {
                try ClusterIdentity.certificate(pem: String(decoding: ca.privateKeyPEM().copyBytes(), as: UTF8.self))
            } == .malformed)
        #expect(await refusal { try ClusterIdentity.certificate(der: [0x30, 0x03, 0x02, 0x01, 0x01]) } == .malformed)
    }

    @Test("a summary says what a certificate is to the cluster")
    func summary() throws {
        let node = try ca.issue(
            LeafRequest(identity: .node(id: 7), hosts: [.dns("n7.example"), .ip([10, 0, 0, 7])]), now: now)
        let summary = CertificateSummary(node.certificate)
        guard case .leaf(.node(id: 7)) = summary.kind else { Issue.record("\(summary.kind)"); return }
        #expect(summary.alternativeNames == ["URI quorum-latch://node/7", "DNS n7.example", "IP 10.0.0.7"])
        #expect(summary.extendedKeyUsage == ["serverAuth", "clientAuth"])
        #expect(summary.issuerKeyID == CertificateSummary(ca.certificate).keyID)
        #expect(summary.keyAlgorithm == "ECDSA P-256")
        #expect(summary.fingerprint.count == 64)
        #expect(CertificateSummary(ca.certificate).role == "cluster CA (pathLen 0)")
        #expect(CertificateSummary(ca.certificate).keyUsage == ["keyCertSign", "cRLSign"])
        #expect(summary.keyUsage == ["digitalSignature"])
    }
}
