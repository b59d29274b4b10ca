import Foundation
import QuorumTestKit
import Testing

/// `quorumctl certs init|issue|show` as real processes: the layout and modes `init` writes, an
/// independent check of the certificates with `openssl` where it is installed, one more
/// certificate with `issue`, what `show` prints, and each refusal as one line naming the flag or
/// file, with no key material in any output.
@Suite("quorumctl certs", .serialized, .timeLimit(.minutes(5)))
struct CertsCommandTests {
    /// `openssl` on the PATH, used only here as an independent verifier; `nil` skips those checks.
    static let openssl: URL? = ["/usr/bin/openssl", "/usr/local/bin/openssl", "/opt/homebrew/bin/openssl"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }.map(URL.init(fileURLWithPath:))

    /// Fails the test if any output line shows a key: a PEM header or any base64 line of a
    /// `.key` file in the workspace.
    private func expectNoKeyMaterial(_ ws: Workspace) throws {
        let walker = FileManager.default.enumerator(atPath: ws.directory.path)
        let keyFiles = (walker?.compactMap { $0 as? String } ?? []).filter { $0.hasSuffix(".key") }
        let keyLines = try keyFiles.flatMap { file in
            String(decoding: try ws.read(file), as: UTF8.self).split(separator: "\n")
                .filter { !$0.hasPrefix("-----") }.map(String.init)
        }
        #expect(!keyLines.isEmpty)
        for run in ws.runs {
            for line in run.stdoutLines + run.stderrLines {
                #expect(!line.contains("-----BEGIN"), "\(line)")
                for secret in keyLines where line.contains(secret) {
                    Issue.record("an output line contains a key file's line: \(line.prefix(20))…")
                }
            }
        }
    }

    /// The `label: value` lines `certs show` printed.
    private func fields(_ result: TestKit.ProcessOutput) -> [String: String] {
        Dictionary(
            result.stdoutLines.compactMap { line -> (String, String)? in
                guard let colon = line.firstIndex(of: ":") else { return nil }
                return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }, uniquingKeysWith: { first, _ in first })
    }

    private func openssl(_ arguments: String...) async throws -> TestKit.ProcessOutput? {
        guard let openssl = Self.openssl else { return nil }
        return try await TestKit.run(openssl, arguments, timeout: .seconds(30))
    }

    @Test("init writes the CA, nodes, proxy and operator; keys 0600; openssl agrees with every certificate")
    func initialize() async throws {
        try await Workspace.with { ws in
            let out = ws.path("certs")
            let result = try await ws.quorumctl("certs", "init", "--nodes", "4", "--out", out)
            #expect(result.status == 0, "\(result)")
            #expect(result.stdoutLines.count == 8, "\(result)")
            #expect(result.stdout.contains("node 4: \(out)/node-4.pem, key \(out)/node-4.key (0600)"))
            #expect(result.stdout.contains("operator admin: \(out)/operator.pem"))
            let holders = (1...4).map { "node-\($0)" } + ["proxy", "operator"]
            for stem in ["ca"] + holders {
                #expect(try mode(ws.path("certs/\(stem).key")) == 0o600, "\(stem).key")
                #expect(try mode(ws.path("certs/\(stem).pem")) == 0o644, "\(stem).pem")
            }

            if Self.openssl == nil {
                print("openssl not installed: skipping the independent certificate checks")
            }
            for stem in holders {
                if let verify = try await openssl("verify", "-CAfile", "\(out)/ca.pem", "\(out)/\(stem).pem") {
                    #expect(verify.status == 0 && verify.stdout.contains("OK"), "\(stem): \(verify)")
                }
                // The key file is the certificate's key, as OpenSSL reads it.
                if let fromKey = try await openssl("pkey", "-in", "\(out)/\(stem).key", "-pubout"),
                    let fromCert = try await openssl("x509", "-in", "\(out)/\(stem).pem", "-noout", "-pubkey")
                {
                    #expect(fromKey.status == 0 && fromKey.stdout == fromCert.stdout, "\(stem)")
                }
            }
            if let ca = try await openssl("x509", "-in", "\(out)/ca.pem", "-noout", "-text") {
                #expect(ca.stdout.contains("CA:TRUE, pathlen:0"), "\(ca.stdout)")
                #expect(ca.stdout.contains("Certificate Sign, CRL Sign"))
                #expect(ca.stdout.contains("ASN1 OID: prime256v1"))
            }
            if let node = try await openssl("x509", "-in", "\(out)/node-3.pem", "-noout", "-text") {
                #expect(node.stdout.contains("URI:quorum-latch://node/3"), "\(node.stdout)")
                #expect(node.stdout.contains("DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1"))
                #expect(node.stdout.contains("TLS Web Server Authentication, TLS Web Client Authentication"))
                #expect(node.stdout.contains("CA:FALSE"))
                #expect(node.stdout.contains("Subject: O = Quorum Latch, OU = node, CN = node-3"))
            }
            if let op = try await openssl("x509", "-in", "\(out)/operator.pem", "-noout", "-text") {
                #expect(op.stdout.contains("URI:quorum-latch://operator/admin"))
                #expect(op.stdout.contains("TLS Web Client Authentication"))
                #expect(!op.stdout.contains("TLS Web Server Authentication"))
                #expect(!op.stdout.contains("DNS:"))
            }
            if let purpose = try await openssl(
                "verify", "-CAfile", "\(out)/ca.pem", "-purpose", "sslserver", "\(out)/operator.pem")
            {
                #expect(purpose.status != 0, "openssl accepts the operator certificate for a server")
            }

            let again = try await ws.quorumctl("certs", "init", "--nodes", "4", "--out", out)
            #expect(again.status == 2 && isOneLineError(again), "\(again)")
            #expect(again.stderr.contains("\(out)/ca.pem: already exists (and 13 more)"))
            #expect(again.stderr.contains("--force"))
            let forced = try await ws.quorumctl("certs", "init", "--nodes", "4", "--out", out, "--force")
            #expect(forced.status == 0, "\(forced)")
            try expectNoKeyMaterial(ws)
        }
    }

    @Test("issue adds a node with its own host names and an operator at a chosen prefix; show reads them back")
    func issueAndShow() async throws {
        try await Workspace.with { ws in
            let out = ws.path("certs")
            try #require(try await ws.quorumctl("certs", "init", "--nodes", "3", "--out", out).status == 0)

            let issued = try await ws.quorumctl(
                "certs", "issue", "--ca-dir", out, "--role", "node", "--id", "4", "--host", "n4.example", "--host",
                "10.0.0.4", "--days", "30")
            #expect(issued.status == 0, "\(issued)")
            #expect(issued.stdout.hasPrefix("node 4: \(out)/node-4.pem, key \(out)/node-4.key (0600)"))
            #expect(try mode("\(out)/node-4.key") == 0o600)

            let shown = try await ws.quorumctl("certs", "show", "\(out)/node-4.pem")
            #expect(shown.status == 0, "\(shown)")
            let node = fields(shown)
            #expect(node["role"] == "node")
            #expect(node["node id"] == "4")
            #expect(node["subject"]?.contains("CN=node-4") == true)
            #expect(node["names"] == "URI quorum-latch://node/4, DNS n4.example, IP 10.0.0.4")
            #expect(node["ext key usage"] == "serverAuth, clientAuth")
            #expect(node["key usage"] == "digitalSignature")
            #expect(
                node["not after"]?.contains("valid, 29 days left") == true
                    || node["not after"]?.contains("valid, 30 days left") == true, "\(shown)")
            #expect(node["public key"] == "ECDSA P-256")

            let ca = try await ws.quorumctl("certs", "show", "\(out)/ca.pem")
            #expect(ca.status == 0, "\(ca)")
            #expect(fields(ca)["role"] == "cluster CA (pathLen 0)", "\(ca.stdout)")
            #expect(fields(ca)["key usage"] == "keyCertSign, cRLSign")
            #expect(fields(ca)["key id"] != nil)
            #expect(node["issuer key id"] == fields(ca)["key id"])

            let op = try await ws.quorumctl(
                "certs", "issue", "--ca-dir", out, "--role", "operator", "--name", "bob", "--out-prefix", ws.path("bob")
            )
            #expect(op.status == 0, "\(op)")
            let opShown = try await ws.quorumctl("certs", "show", ws.path("bob.pem"))
            #expect(fields(opShown)["operator"] == "bob", "\(opShown.stdout)")
            #expect(fields(opShown)["ext key usage"] == "clientAuth")
            if let verify = try await openssl("verify", "-CAfile", "\(out)/ca.pem", ws.path("bob.pem")) {
                #expect(verify.status == 0, "\(verify)")
            }

            // Rotation: a node's certificate is replaced with --force, under the same CA.
            let replace = try await ws.quorumctl("certs", "issue", "--ca-dir", out, "--role", "node", "--id", "1")
            #expect(replace.status == 2 && replace.stderr.contains("\(out)/node-1.pem: already exists"), "\(replace)")
            let rotated = try await ws.quorumctl(
                "certs", "issue", "--ca-dir", out, "--role", "node", "--id", "1", "--force")
            #expect(rotated.status == 0, "\(rotated)")
            try expectNoKeyMaterial(ws)
        }
    }

    @Test("bad flags and files are refused in one line that names them and what would be valid")
    func refusals() async throws {
        try await Workspace.with { ws in
            let out = ws.path("certs")
            try #require(try await ws.quorumctl("certs", "init", "--nodes", "1", "--out", out).status == 0)
            let cases: [([String], String)] = [
                (["issue", "--ca-dir", out, "--role", "node", "--id", "0"], "--id 0: node ids are 1-65535"),
                (["issue", "--ca-dir", out, "--role", "node", "--id", "65536"], "--id 65536: node ids are 1-65535"),
                (["issue", "--ca-dir", out, "--role", "node"], "--role node needs --id"),
                (["issue", "--ca-dir", out, "--role", "operator"], "--role operator needs --name"),
                (
                    ["issue", "--ca-dir", out, "--role", "proxy", "--id", "2"],
                    "--id: only node certificates carry an id"
                ),
                (["issue", "--ca-dir", out, "--role", "node", "--id", "2", "--name", "x"], "--name: only operator"),
                (
                    ["issue", "--ca-dir", out, "--role", "operator", "--name", "a/b"],
                    "--name 'a/b': use 1-64 letters, digits"
                ),
                (
                    ["issue", "--ca-dir", out, "--role", "operator", "--name", "bob", "--host", "x.example"],
                    "--host 'x.example': operator certificates are client-only"
                ),
                (["issue", "--ca-dir", out, "--role", "proxy", "--host", "*.example"], "--host '*.example': expected"),
                (["issue", "--ca-dir", out, "--role", "proxy", "--days", "0"], "--days 0: must be 1-36500 days"),
                (
                    ["issue", "--ca-dir", out, "--role", "proxy", "--days", "5000", "--out-prefix", ws.path("p")],
                    "--days 5000: the cluster CA expires at"
                ),
                (
                    ["issue", "--ca-dir", ws.path("nowhere"), "--role", "proxy"],
                    "\(ws.path("nowhere"))/ca.pem: cannot open"
                ),
                (["issue", "--ca-dir", out, "--role", "admin"], "--role"),
                (["init", "--nodes", "0", "--out", ws.path("x")], "--nodes 0: a cluster has 1-65535 nodes"),
                (
                    ["init", "--nodes", "2", "--out", ws.path("x"), "--days", "4000"],
                    "--days 4000: certificates cannot outlive the CA"
                ),
                (["show", ws.path("nothing.pem")], "nothing.pem: cannot open"),
                (["show", "\(out)/node-1.key"], "node-1.key: holds a PEM PRIVATE KEY; expected a CERTIFICATE"),
            ]
            for (arguments, expected) in cases {
                let result = try await ws.quorumctl(["certs"] + arguments)
                #expect(result.status == 2, "\(arguments): \(result)")
                #expect(result.stderr.contains(expected), "\(arguments): \(result.stderr)")
                #expect(
                    result.stderrLines.first?.hasPrefix("quorumctl: error: ") == true, "\(arguments): \(result.stderr)")
            }
            #expect(!FileManager.default.fileExists(atPath: ws.path("x")))
            #expect(!FileManager.default.fileExists(atPath: ws.path("p.pem")))

            // A CA key that is not the CA's.
            try #require(try await ws.quorumctl("certs", "init", "--nodes", "1", "--out", ws.path("other")).status == 0)
            try FileManager.default.removeItem(atPath: "\(out)/ca.key")
            try FileManager.default.copyItem(atPath: ws.path("other/ca.key"), toPath: "\(out)/ca.key")
            let mismatch = try await ws.quorumctl("certs", "issue", "--ca-dir", out, "--role", "proxy", "--force")
            #expect(mismatch.status == 2 && isOneLineError(mismatch), "\(mismatch)")
            #expect(mismatch.stderr.contains("\(out)/ca.key: is not the private key of \(out)/ca.pem"))

            // show prints a certificate the cluster would refuse, then says why (openssl makes one).
            if let made = try await openssl(
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                ws.path("plain.key"), "-out", ws.path("plain.pem"), "-subj", "/CN=plain", "-days", "1",
                "-addext", "basicConstraints=critical,CA:FALSE")
            {
                try #require(made.status == 0, "\(made)")
                let plain = try await ws.quorumctl("certs", "show", ws.path("plain.pem"))
                #expect(plain.status == 2 && isOneLineError(plain), "\(plain)")
                #expect(fields(plain)["role"] == "none", "\(plain.stdout)")
                #expect(plain.stderr.contains("plain.pem: names no cluster role"), "\(plain.stderr)")
            }
            try expectNoKeyMaterial(ws)
        }
    }
}
