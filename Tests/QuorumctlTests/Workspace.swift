import Foundation
import QuorumCrypto
import QuorumTestKit
import Testing

/// One test's temporary directory and every quorumctl run made in it.
///
/// `withWorkspace` removes the directory afterwards and checks that no line any run printed, on
/// stdout or stderr, contains the secret of a share file found in the directory.
final class Workspace {
    let directory: URL
    private(set) var runs: [TestKit.ProcessOutput] = []

    static let quorumctl = TestKit.executable("quorumctl")

    private init(directory: URL) { self.directory = directory }

    /// The path of `relative` inside the workspace.
    func path(_ relative: String) -> String { directory.appendingPathComponent(relative).path }

    /// Runs the built quorumctl with a time limit (60 s unless told).
    @discardableResult
    func quorumctl(
        _ arguments: [String], stdin: [UInt8] = [], timeout: Duration = .seconds(60)
    ) async throws -> TestKit.ProcessOutput {
        try #require(
            FileManager.default.isExecutableFile(atPath: Self.quorumctl.path),
            "no quorumctl at \(Self.quorumctl.path); build it with the tests (swift test builds it)")
        let result = try await TestKit.run(Self.quorumctl, arguments, stdin: stdin, timeout: timeout)
        #expect(!result.timedOut, "quorumctl \(arguments.joined(separator: " ")) timed out")
        runs.append(result)
        return result
    }

    @discardableResult
    func quorumctl(_ arguments: String..., stdin: [UInt8] = []) async throws -> TestKit.ProcessOutput {
        try await quorumctl(arguments, stdin: stdin)
    }

    /// A dealer keygen into `relative` that must succeed.
    func keygen(_ relative: String, threshold: Int = 3, nodes: Int = 4, suite: String = "ed25519") async throws {
        let result = try await quorumctl(
            "keygen", "--dealer", "--threshold", "\(threshold)", "--nodes", "\(nodes)", "--ciphersuite", suite,
            "--out", path(relative))
        try #require(result.status == 0, "keygen failed: \(result)")
    }

    func write(_ relative: String, _ text: String) throws {
        try Data(text.utf8).write(to: directory.appendingPathComponent(relative))
    }

    func read(_ relative: String) throws -> Data { try Data(contentsOf: directory.appendingPathComponent(relative)) }

    /// The `signing_share` hex of every share file under the workspace.
    func shareSecrets() -> [String] {
        let walker = FileManager.default.enumerator(atPath: directory.path)
        return (walker?.compactMap { $0 as? String } ?? []).filter { $0.hasSuffix("-share.json") }.compactMap { file in
            guard let data = try? read(file),
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            else { return nil }
            return object["signing_share"] as? String
        }
    }

    /// Runs `body` in a fresh directory, then checks no output leaked a secret and removes it.
    static func with(_ body: (Workspace) async throws -> Void) async throws {
        let workspace = Workspace(directory: try TestKit.temporaryDirectory("quorumctl-test"))
        defer { try? FileManager.default.removeItem(at: workspace.directory) }
        try await body(workspace)
        let secrets = workspace.shareSecrets()
        for run in workspace.runs {
            for line in run.stdoutLines + run.stderrLines {
                for secret in secrets where line.lowercased().contains(secret.lowercased()) {
                    Issue.record("an output line contains a share's secret: \(line.prefix(20))…")
                }
            }
        }
    }
}

/// File mode bits of `path` (permissions only).
func mode(_ path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

/// Whether `text` names the problem in one `quorumctl: error:` line.
func isOneLineError(_ result: TestKit.ProcessOutput) -> Bool {
    result.stderrLines.count == 1 && result.stderrLines[0].hasPrefix("quorumctl: error: ")
}

/// The generic type of a ciphersuite, to check files in process.
func suiteType(_ id: CiphersuiteID) -> any Ciphersuite.Type {
    switch id {
    case .ed25519: Ed25519Suite.self
    case .secp256k1: Secp256k1Suite.self
    }
}
