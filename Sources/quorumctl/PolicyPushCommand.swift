import ArgumentParser
import Foundation
import QuorumNode
import QuorumPolicy
import QuorumProtocol

/// `quorumctl policy push`: installs a signed bundle on every node of a running cluster.
struct PolicyPush: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Install a signed policy bundle on every node of a running cluster.",
        discussion: """
            Sends the signed bundle (`policy sign` output) to each node over mutual TLS with the operator \
            certificate. Each node installs it only if one of its policy.operator_keys signed it and its version is \
            newer than the one it runs; the same bundle again changes nothing. Prints one line per node. Exit status: \
            0 when every node runs the bundle, 1 when any node refused or could not be reached (the reasons follow \
            on stderr), 2 bad input.
            """
    )

    @OptionGroup var options: OperatorOptions

    @Argument(help: ArgumentHelp("The signed bundle (`quorumctl policy sign` output).", valueName: "signed-bundle"))
    var bundle: String

    func run() throws {
        let cluster = try options.clusterFile()
        let client = try options.client(for: "policy push")
        let bytes = try Inputs.contents(of: bundle, what: "signed bundle")
        guard Bundles.isSigned(bytes) else {
            throw CLIError("\(bundle): is not a signed bundle; sign it first with quorumctl policy sign")
        }
        let request: PolicyPushRequest
        do { request = try PolicyPushRequest(signedBundle: bytes) } catch { throw CLIError("\(bundle): \(error)") }
        let limit = options.limit
        let results = Blocking.wait {
            await client.askEach(cluster.nodes, request, expecting: PolicyPushResponse.self, deadline: limit)
        }
        var failures = 0
        for (node, result) in results {
            switch result {
            case .success(let answer):
                Output.line(
                    "node \(node.id): \(answer.installed ? "installed" : "already runs") version \(answer.version) "
                        + answer.digest)
            case .failure(let error):
                failures += 1
                Output.error("node \(node.id) at \(node.address): \(error.code.rawValue): \(error.reason)")
            }
        }
        if failures > 0 { throw ExitCode(1) }
    }
}
