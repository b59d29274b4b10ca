import Foundation
import QuorumCrypto
import QuorumIdentity
import QuorumNode
import QuorumPolicy
import QuorumProtocol
import QuorumProxy

/// The local checks of a `quorum-proxy` configuration: its cluster certificate files, the group
/// files, the sealed credentials, the bundle file and the listeners.
struct ProxyChecks {
    let options: LocalDoctor.Options
    let text: String
    let base: String

    func run(into report: inout DoctorReport) async {
        let file = options.configPath
        let configuration: ProxyConfiguration
        do { configuration = try ProxyConfiguration.parse(text, file: file, baseDirectory: base) } catch {
            report.add(LocalDoctor(options).configFailure(error.description, key: error.key, file: file, text: text))
            return
        }
        report.add(
            .ok(
                "config",
                "\(file): proxy, listen \(configuration.listen)"
                    + (configuration.tls.map { ", HTTPS \($0.listen)" } ?? "")
                    + (configuration.cluster == nil
                        ? ", no [cluster]" : ", [cluster] nodes \(configuration.cluster!.nodesFile)")
            ))
        let owner = HostFacts.effectiveUser
        let ownerDescription = "\(HostFacts.describe(user: owner)), who runs doctor"
        if let cluster = configuration.cluster {
            report.add(contentsOf: await BlockingIO.run { checkNodes(cluster.nodesFile) })
            let certificates = CertificateChecks(
                configFile: file, table: "cluster", expected: .proxy, usages: [.client], now: options.now,
                expiryWarning: options.expiryWarning, owner: owner, ownerDescription: ownerDescription)
            let (caFinding, ca) = await BlockingIO.run { certificates.checkCA(cluster.clusterCA) }
            report.add(caFinding)
            let (certificateFinding, certificate) = await certificates.checkCertificate(
                cluster.certificate, keyPath: cluster.privateKey, ca: ca)
            report.add(certificateFinding)
            report.add(
                await BlockingIO.run {
                    certificates.checkPrivateKey(
                        cluster.privateKey, certificatePath: cluster.certificate, certificate: certificate)
                })
        } else {
            report.add(
                .warn(
                    "cluster", "no [cluster] table: the proxy answers every call a mount covers with 503",
                    fix: "add [cluster] to \(file) (docs/operations.md, The proxy)"))
        }
        report.add(
            contentsOf: await BlockingIO.run {
                checkFiles(configuration, owner: owner, ownerDescription: ownerDescription)
            })
    }

    /// The group files, credentials, bundle file, agent TLS files and listen addresses: file
    /// reads and socket probes, run on the thread pool.
    private func checkFiles(
        _ configuration: ProxyConfiguration, owner: uid_t, ownerDescription: String
    ) -> [DoctorFinding] {
        let file = configuration.file
        var report = DoctorReport(mode: "local", subject: file)
        var sealingGroup: PublicKeyPackage<Ed25519Suite>?
        if let cluster = configuration.cluster {
            checkGroup(cluster.group, &report)
            sealingGroup = checkSealingGroup(cluster.sealingGroup, &report)
        }
        if let dataDirectory = configuration.dataDirectory {
            checkCredentials(dataDirectory, sealingGroup: sealingGroup, owner: owner, &report)
        }
        if let bundle = configuration.bundlePath {
            checkBundle(bundle, trusted: configuration.trustedSigners, &report)
        } else {
            report.add(
                .ok(
                    "bundle",
                    "no bundle.file: the proxy fetches the bundle from the nodes "
                        + "(\(Doctor.count(configuration.trustedSigners.count, "trusted signer")))"))
        }
        if let tls = configuration.tls {
            report.add(agentTLS(tls, owner: owner, ownerDescription: ownerDescription))
        }
        report.add(listen("listen", configuration.listen, file: file))
        if let tls = configuration.tls { report.add(listen("tls.listen", tls.listen, file: file)) }
        return report.findings
    }

    private func checkNodes(_ path: String) -> [DoctorFinding] {
        do {
            let nodes = try ClusterFile.load(path: path).nodes
            return [
                .ok(
                    "cluster.nodes",
                    "\(path): \(Doctor.count(nodes.count, "node")) "
                        + "(\(nodes.map { "\($0.id) at \($0.address)" }.joined(separator: ", ")))")
            ]
        } catch {
            return [
                .fail(
                    "cluster.nodes", error.description,
                    fix: "give the cluster file ([[nodes]] id, address) in cluster.nodes of \(options.configPath)")
            ]
        }
    }

    private func checkGroup(_ path: String, _ report: inout DoctorReport) {
        let group: PublicKeyPackage<Ed25519Suite>
        do { group = try GroupFiles.signingGroup(path) } catch {
            report.add(
                .fail(
                    "cluster.group", "\(error)",
                    fix: "copy the cluster's group.json (from keygen --out) to \(path), or fix cluster.group in "
                        + options.configPath))
            return
        }
        let described = "\(path): group key \(GroupFiles.keyHex(group)), \(group.minSigners)-of-\(group.maxSigners)"
        guard let published = options.groupPath else {
            report.add(.ok("cluster.group", described))
            return
        }
        do {
            let other = try GroupFiles.signingGroup(published)
            guard other == group else {
                report.add(
                    .fail(
                        "cluster.group",
                        "\(path) has group key \(GroupFiles.keyHex(group)), but \(published) has \(GroupFiles.keyHex(other)): "
                            + "the proxy would refuse every receipt the nodes sign",
                        fix: "copy \(published) to \(path) and restart the proxy"))
                return
            }
            report.add(.ok("cluster.group", described + ", the same as \(published)"))
        } catch {
            report.add(.fail("group", "\(error)", fix: "pass the cluster's group.json with --group"))
        }
    }

    private func checkSealingGroup(_ path: String, _ report: inout DoctorReport) -> PublicKeyPackage<Ed25519Suite>? {
        do {
            let group = try GroupFiles.group(path, purpose: .sealing)
            report.add(.ok("cluster.sealing_group", "\(path): sealing key \(GroupFiles.keyHex(group))"))
            return group
        } catch {
            report.add(
                .fail(
                    "cluster.sealing_group", "\(error)",
                    fix: "copy the cluster's sealing-group.json (from keygen --out) to \(path), or fix "
                        + "cluster.sealing_group in \(options.configPath)"))
            return nil
        }
    }

    /// `data_dir/credentials`: every record readable, 0600, sealed to the sealing group's key.
    private func checkCredentials(
        _ dataDirectory: String, sealingGroup: PublicKeyPackage<Ed25519Suite>?, owner: uid_t,
        _ report: inout DoctorReport
    ) {
        let directory = SealedCredentialDirectory(proxyDirectory: dataDirectory)
        let records: [SealedCredential]
        do { records = try directory.loadAll() } catch {
            report.add(
                .fail(
                    "credentials", error.description,
                    fix: "seal that secret again: quorumctl secrets set NAME --value-file - --replace "
                        + "--sealing-group sealing-group.json --proxy-dir \(dataDirectory)"))
            return
        }
        var problems: [String] = []
        var fixes: [String] = []
        for record in records {
            let path = (try? directory.file(for: record.name)) ?? record.name
            if case .problems(let found, let fixing) = SecretFileCheck.inspect(
                path, owner: owner, ownerDescription: HostFacts.describe(user: owner))
            {
                problems += found
                fixes += fixing
            }
            if let sealingGroup, let key = try? sealingGroup.verifyingKey.serialized(), record.sealingGroupKey != key {
                problems.append(
                    "\(path): sealed to key \(Hex.encode(record.sealingGroupKey)), not the sealing group's "
                        + "\(Hex.encode(key)); the nodes cannot open it")
                fixes.append(
                    "quorumctl secrets set \(record.name) --value-file - --replace --sealing-group "
                        + "sealing-group.json --proxy-dir \(dataDirectory), then secrets push")
            }
        }
        guard problems.isEmpty else {
            report.add(.fail("credentials", problems.joined(separator: "; "), fix: fixes.joined(separator: "; ")))
            return
        }
        report.add(
            .ok(
                "credentials",
                "\(directory.path): \(Doctor.count(records.count, "sealed credential"))"
                    + (records.isEmpty ? "" : " (\(records.map(\.name).joined(separator: ", ")))")))
    }

    private func checkBundle(_ path: String, trusted: [[UInt8]], _ report: inout DoctorReport) {
        do {
            let bytes = try KeyFiles.readFile(path)
            let bundle = try SignedBundle.open(bytes, fileName: path, trustedSigners: trusted, newerThan: nil)
            report.add(
                .ok("bundle.file", "\(path): version \(bundle.version) \(bundle.digest), signed by a trusted signer"))
        } catch {
            report.add(
                .fail(
                    "bundle.file", "\(error)",
                    fix: "sign the bundle with a key listed in bundle.trusted_signers (quorumctl policy sign) and "
                        + "point bundle.file of \(options.configPath) at it"))
        }
    }

    private func agentTLS(_ tls: AgentTLSSettings, owner: uid_t, ownerDescription: String) -> DoctorFinding {
        guard FileManager.default.isReadableFile(atPath: tls.certificate) else {
            return .fail(
                "tls.certificate", "\(tls.certificate): not readable",
                fix: "put the agent-facing certificate chain there, or fix tls.certificate in \(options.configPath)")
        }
        switch SecretFileCheck.inspect(tls.privateKey, owner: owner, ownerDescription: ownerDescription) {
        case .missing(let reason):
            return .fail(
                "tls.private_key", "\(tls.privateKey) \(reason)",
                fix: "put the agent-facing key there (0600), or fix tls.private_key in \(options.configPath)")
        case .problems(let problems, let fixes) where !problems.isEmpty:
            return .fail("tls.private_key", problems.joined(separator: "; "), fix: fixes.joined(separator: "; "))
        case .problems:
            return .ok("tls", "\(tls.certificate) and \(tls.privateKey) (mode 0600)")
        }
    }

    /// A proxy takes no lock doctor could see, so an address in use may be the proxy itself.
    private func listen(_ key: String, _ address: NodeAddress, file: String) -> DoctorFinding {
        if address.port == 0 { return .ok(key, "\(address): port 0, any free port at start") }
        let finding = ListenProbe.finding(key, address, file: file, what: "the proxy")
        guard finding.status == .fail, finding.detail.contains("in use") else { return finding }
        return .warn(
            key, "\(address) is in use: by this proxy if it is running, otherwise by another process",
            fix: "if the proxy is not running, find the process with ss -ltnp 'sport = :\(address.port)' and stop it, "
                + "or set \(key) in \(file) to a free port")
    }
}
