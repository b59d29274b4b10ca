import Foundation
import QuorumIdentity
import QuorumProtocol
import Synchronization
import Testing

@testable import QuorumNode

/// The mutual-TLS node transport on real sockets (127.0.0.1, port 0) with certificates issued in
/// the test: who may connect, who may call what, and what a broken peer can and cannot disturb.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct TransportTests {
    let cluster: TestCluster

    init() throws { cluster = try TestCluster() }

    // MARK: round trips

    @Test("node 2 calls node 1: both sides see who the other is")
    func roundTrip() async throws {
        let logs = LogCapture()
        try await cluster.withServer(.node(id: 1), logs: logs) { _, port in
            let client = try NodeClient(configuration: cluster.configuration(.node(id: 2)), logger: logs.logger)
            try await bounded {
                let connection = try await client.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                #expect(connection.peer == .node(id: 1))
                let echo = try await connection.request(messageType: TestMessage.echo, payload: [0, 1, 2, 3])
                #expect(echo.kind == .response)
                #expect(echo.payload == [0, 1, 2, 3])
                let whoAmI = try await connection.request(messageType: TestMessage.whoAmI, payload: [])
                #expect(String(decoding: whoAmI.payload, as: UTF8.self) == "quorum-latch://node/2")
                await connection.close()
            }
        }
    }

    @Test("many concurrent requests on one connection each get their own answer")
    func concurrentRequestsCorrelate() async throws {
        let logs = LogCapture()
        try await cluster.withServer(logs: logs) { _, port in
            var configuration = try cluster.configuration(.node(id: 2))
            configuration.maximumInFlightRequests = 16
            let client = try NodeClient(configuration: configuration, logger: logs.logger)
            try await bounded {
                let connection = try await client.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                // The first byte is the server's delay, so answers come back out of order; the rest
                // identify the request.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<300 {
                        group.addTask {
                            let payload = [UInt8(index % 7)] + withUnsafeBytes(of: UInt32(index).bigEndian, Array.init)
                            let response = try await connection.request(
                                messageType: TestMessage.echo, payload: payload, deadline: .seconds(20))
                            #expect(response.payload == payload)
                        }
                    }
                    try await group.waitForAll()
                }
                await connection.close()
            }
        }
    }

    // MARK: who may connect and call

    @Test("a proxy certificate is refused by a listener for nodes only")
    func proxyRefusedWhereNodeRequired() async throws {
        let logs = LogCapture()
        let nodesOnly = AuthorizationPolicy(
            connectionRoles: [.node], requestRoles: TestCluster.policy.requestRoles)
        try await cluster.withServer(policy: nodesOnly, logs: logs) { _, port in
            let client = try NodeClient(configuration: cluster.configuration(.proxy), logger: logs.logger)
            let error = await transportError {
                try await bounded {
                    let connection = try await client.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                    _ = try await connection.request(messageType: TestMessage.whoAmI, payload: [])
                }
            }
            #expect(error?.code == .connectionClosed || error?.code == .connectFailed)
            #expect(await logs.waitFor("refused peer certificate", "unauthorized-role", "proxy"))
            // A node is still welcome.
            let node = try NodeClient(configuration: cluster.configuration(.node(id: 2)), logger: logs.logger)
            try await bounded {
                let connection = try await node.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                _ = try await connection.request(messageType: TestMessage.whoAmI, payload: [])
                await connection.close()
            }
        }
    }

    @Test("each call needs its role: a proxy cannot make a node call, a node cannot make an operator call")
    func callsNeedTheirRole() async throws {
        let logs = LogCapture()
        try await cluster.withServer(logs: logs) { _, port in
            let proxy = try NodeClient(configuration: cluster.configuration(.proxy), logger: logs.logger)
            let node = try NodeClient(configuration: cluster.configuration(.node(id: 2)), logger: logs.logger)
            let admin = try NodeClient(
                configuration: cluster.configuration(.operator(name: "admin")), logger: logs.logger)
            try await bounded {
                let proxyConnection = try await proxy.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                let refused = await transportError {
                    _ = try await proxyConnection.request(messageType: TestMessage.echo, payload: [0])
                }
                #expect(refused?.code == .refusedByPeer)
                #expect(refused?.response?.code == .unauthorized)
                // The refusal is per call: the connection stays open for what a proxy may do.
                let allowed = try await proxyConnection.request(messageType: TestMessage.whoAmI, payload: [])
                #expect(String(decoding: allowed.payload, as: UTF8.self) == "quorum-latch://proxy")

                let nodeConnection = try await node.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                let notOperator = await transportError {
                    _ = try await nodeConnection.request(messageType: TestMessage.operatorWhoAmI, payload: [])
                }
                #expect(notOperator?.response?.code == .unauthorized)

                let adminConnection = try await admin.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                let answer = try await adminConnection.request(messageType: TestMessage.operatorWhoAmI, payload: [])
                #expect(String(decoding: answer.payload, as: UTF8.self) == "quorum-latch://operator/admin")
                for connection in [proxyConnection, nodeConnection, adminConnection] { await connection.close() }
            }
            #expect(await logs.waitFor("refused request", "proxy certificate may not send message type 28673"))
        }
    }

    @Test("dialling node 3 and reaching a certificate for node 2 is refused")
    func dialledNodeMustMatch() async throws {
        let logs = LogCapture()
        try await cluster.withServer(.node(id: 2), logs: logs) { _, port in
            let client = try NodeClient(configuration: cluster.configuration(.node(id: 1)), logger: logs.logger)
            let error = await transportError {
                _ = try await bounded {
                    try await client.connect(host: "127.0.0.1", port: port, expecting: .node(id: 3))
                }
            }
            #expect(error?.code == .identityMismatch)
            #expect(error?.reason.contains("dialled node 3, but its certificate says node 2") == true)
            #expect(await logs.waitFor("refused peer certificate", "identity-mismatch"))
        }
    }

    @Test("a node that says in a frame that it is another node is refused and disconnected")
    func frameClaimMustMatchCertificate() async throws {
        let logs = LogCapture()
        try await cluster.withServer(logs: logs) { _, port in
            let client = try NodeClient(configuration: cluster.configuration(.node(id: 2)), logger: logs.logger)
            try await bounded {
                let connection = try await client.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                let honest = try Heartbeat(
                    nodeID: 2, bootEpoch: 1, sentAt: 0, groupKey: nil, bundleDigest: nil, peersSeen: [])
                _ = try await connection.request(honest)
                let forged = try Heartbeat(
                    nodeID: 5, bootEpoch: 1, sentAt: 0, groupKey: nil, bundleDigest: nil, peersSeen: [])
                let error = await transportError { _ = try await connection.request(forged) }
                #expect(error?.code == .refusedByPeer || error?.code == .connectionClosed)
                try await connection.channel.closeFuture.get()
            }
            #expect(await logs.waitFor("closing connection", "says it is from node 5", "node 2"))
        }
    }

    // MARK: certificates refused

    @Test("an expired client certificate is refused")
    func expiredClientRefused() async throws {
        let logs = LogCapture()
        let cluster = try TestCluster(caIssuedDaysAgo: 30)
        try await cluster.withServer(logs: logs) { _, port in
            let expired = try cluster.configuration(.node(id: 2), issuedDaysAgo: 20, validityDays: 10)
            let client = try NodeClient(configuration: expired, logger: logs.logger)
            let error = await transportError {
                try await bounded {
                    let connection = try await client.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                    _ = try await connection.request(messageType: TestMessage.whoAmI, payload: [])
                }
            }
            #expect(error != nil)
            #expect(await logs.waitFor("refused peer certificate", "expired"))
        }
    }

    @Test("an expired server certificate is refused by the client")
    func expiredServerRefused() async throws {
        let logs = LogCapture()
        let cluster = try TestCluster(caIssuedDaysAgo: 30)
        let expired = try cluster.configuration(.node(id: 1), issuedDaysAgo: 20, validityDays: 10)
        try await cluster.withServer(configuration: expired, logs: logs) { _, port in
            let client = try NodeClient(configuration: cluster.configuration(.node(id: 2)), logger: logs.logger)
            let error = await transportError {
                _ = try await bounded {
                    try await client.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                }
            }
            #expect(error?.code == .untrustedPeer)
            #expect(error?.reason.contains("expired") == true)
        }
    }

    @Test("a certificate from a foreign CA is refused, whichever side presents it")
    func foreignCARefused() async throws {
        let logs = LogCapture()
        try await cluster.withServer(logs: logs) { _, port in
            let outsider = try NodeClient(
                configuration: cluster.foreignConfiguration(.node(id: 2)), logger: logs.logger)
            let error = await transportError {
                try await bounded {
                    let connection = try await outsider.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                    _ = try await connection.request(messageType: TestMessage.whoAmI, payload: [])
                }
            }
            #expect(error != nil)
            #expect(await logs.waitFor("refused peer certificate", "foreignCA"))
        }
        let foreignServer = try cluster.foreignConfiguration(.node(id: 1))
        try await cluster.withServer(configuration: foreignServer, logs: logs) { _, port in
            let client = try NodeClient(configuration: cluster.configuration(.node(id: 2)), logger: logs.logger)
            let error = await transportError {
                _ = try await bounded {
                    try await client.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                }
            }
            #expect(error?.code == .untrustedPeer)
            #expect(error?.reason.contains("foreignCA") == true)
        }
    }

    @Test("a client without a certificate is refused")
    func clientWithoutCertificateRefused() async throws {
        let logs = LogCapture()
        try await cluster.withServer(logs: logs) { _, port in
            var anonymous = try cluster.configuration(.node(id: 2))
            anonymous.presentsClientCertificate = false
            let client = try NodeClient(configuration: anonymous, logger: logs.logger)
            let error = await transportError {
                try await bounded {
                    let connection = try await client.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                    _ = try await connection.request(messageType: TestMessage.whoAmI, payload: [])
                }
            }
            #expect(error != nil)
            #expect(await logs.waitFor("TLS handshake failed"))
        }
    }

    // MARK: broken frames

    @Test("an oversized frame closes only its own connection")
    func oversizedFrameClosesOnlyItsConnection() async throws {
        try await brokenFrameClosesOnlyItsConnection(
            bytes: lengthPrefix(UInt32(1 << 16) + 1) + [1, 1, 0, 0], expectedLog: "oversized")
    }

    @Test("a malformed frame closes only its own connection")
    func malformedFrameClosesOnlyItsConnection() async throws {
        // Length 16, then protocol version 9.
        try await brokenFrameClosesOnlyItsConnection(
            bytes: lengthPrefix(16) + [9, 1] + Array(repeating: 0, count: 14), expectedLog: "unsupported-version")
    }

    private func brokenFrameClosesOnlyItsConnection(bytes: [UInt8], expectedLog: String) async throws {
        let logs = LogCapture()
        var serverConfiguration = try cluster.configuration(.node(id: 1))
        serverConfiguration.frameLimits = FrameLimits(maximumFrameLength: 1 << 16)
        try await cluster.withServer(configuration: serverConfiguration, logs: logs) { _, port in
            let client = try NodeClient(configuration: cluster.configuration(.node(id: 2)), logger: logs.logger)
            try await bounded {
                let good = try await client.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                let bad = try await client.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                _ = try await bad.request(messageType: TestMessage.echo, payload: [0])
                let waiting = Task { try await bad.request(messageType: TestMessage.slow, payload: []) }
                try await bad.writeRaw(bytes)
                try await bad.channel.closeFuture.get()
                let error = await transportError { _ = try await waiting.value }
                #expect(error?.code == .connectionClosed)
                let echo = try await good.request(messageType: TestMessage.echo, payload: [0, 42])
                #expect(echo.payload == [0, 42])
                await good.close()
            }
            #expect(await logs.waitFor("closing connection: malformed frame", expectedLog))
        }
    }

    @Test("a frame larger than the limit is not sent")
    func oversizedRequestNotSent() async throws {
        let logs = LogCapture()
        try await cluster.withServer(logs: logs) { _, port in
            var configuration = try cluster.configuration(.node(id: 2))
            configuration.frameLimits = FrameLimits(maximumFrameLength: 1024)
            let client = try NodeClient(configuration: configuration, logger: logs.logger)
            try await bounded {
                let connection = try await client.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                let error = await transportError {
                    _ = try await connection.request(
                        messageType: TestMessage.echo, payload: Array(repeating: 0, count: 2000))
                }
                #expect(error?.code == .frameTooLarge)
                #expect(connection.isActive)
                await connection.close()
            }
        }
    }

    // MARK: deadlines

    @Test("a request past its deadline fails clearly, and its late answer is dropped")
    func deadlineExpiry() async throws {
        let logs = LogCapture()
        try await cluster.withServer(logs: logs) { _, port in
            let client = try NodeClient(configuration: cluster.configuration(.node(id: 2)), logger: logs.logger)
            try await bounded {
                let connection = try await client.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                let start = ContinuousClock.now
                let error = await transportError {
                    _ = try await connection.request(
                        messageType: TestMessage.slow, payload: [], deadline: .milliseconds(200))
                }
                let elapsed = ContinuousClock.now - start
                #expect(error?.code == .deadlineExceeded)
                #expect(error?.reason.contains("no answer within") == true)
                #expect(elapsed >= .milliseconds(200) && elapsed < .seconds(10))
                // The server's own deadline-exceeded answer arrives after the client gave up and is
                // dropped; the connection carries on.
                let echo = try await connection.request(messageType: TestMessage.echo, payload: [100, 7])
                #expect(echo.payload == [100, 7])
                await connection.close()
            }
            #expect(await logs.waitFor("request expired"))
        }
    }

    // MARK: certificate checks off the shared pool

    @Test("a handshake completes while CPU-bound tasks hold every thread of the shared pool")
    func handshakeWhileSharedPoolIsSaturated() async throws {
        let logs = LogCapture()
        try await cluster.withServer(logs: logs) { server, port in
            let client = try NodeClient(configuration: cluster.configuration(.node(id: 2)), logger: logs.logger)
            // The spinners stop on their own after 5 s; the handshake must be done well before.
            let saturation = PoolSaturation(limit: .seconds(5))
            defer { saturation.stop() }
            // The test drives the handshake from a thread of its own: its body runs on the pool.
            let driver = VerificationExecutor(numberOfThreads: 1)
            let probeRanAt = Stamp()
            let measured = Task(executorPreference: driver) { () -> HandshakeUnderLoad in
                guard saturation.waitUntilSaturated(seconds: 5) else { return .notSaturated }
                // Proof that the pool is held: this task cannot start until a spinner stops.
                Task.detached { probeRanAt.set() }
                let start = ContinuousClock.now
                do throws(TransportError) {
                    let connection = try await client.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                    let clientSide = ContinuousClock.now - start
                    // TLS 1.3: the server checks the client's certificate after the client is done.
                    let end = ContinuousClock.now + .seconds(4)
                    while !server.connectedPeers.contains(.node(id: 2)), ContinuousClock.now < end { usleep(1000) }
                    let serverSide = ContinuousClock.now - start
                    let spinners = saturation.spinners
                    let finishedAt = ContinuousClock.now
                    await connection.close()
                    return .measured(
                        client: clientSide, server: serverSide, spinnersAtEnd: spinners, finishedAt: finishedAt)
                } catch {
                    return .failed(error, after: ContinuousClock.now - start)
                }
            }
            let outcome = await measured.value
            saturation.stop()
            await driver.shutdown()
            switch outcome {
            case .notSaturated:
                Issue.record("the spinners did not all start within 5 s")
            case .failed(let error, let elapsed):
                Issue.record("the handshake failed after \(elapsed): \(error)")
            case .measured(let clientSide, let serverSide, let spinnersAtEnd, let finishedAt):
                print("handshake with the shared pool saturated: client \(clientSide), server \(serverSide)")
                #expect(spinnersAtEnd == saturation.threads, "the pool was not saturated throughout")
                #expect(clientSide < .seconds(2))
                #expect(serverSide < .seconds(2))
                #expect(await eventually { probeRanAt.value != nil })
                if let probe = probeRanAt.value {
                    #expect(
                        probe > finishedAt, "a task on the shared pool ran during the handshake: it was not saturated")
                }
            }
        }
    }

    // MARK: limits on a server's connections

    @Test("connections beyond maximumConnections are closed at accept; open ones carry on")
    func connectionLimit() async throws {
        let logs = LogCapture()
        var configuration = try cluster.configuration(.node(id: 1))
        configuration.maximumConnections = 2
        try await cluster.withServer(configuration: configuration, logs: logs) { server, port in
            let client = try NodeClient(configuration: cluster.configuration(.node(id: 2)), logger: logs.logger)
            try await bounded {
                let first = try await client.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                let second = try await client.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                let refused = await transportError {
                    let third = try await client.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                    _ = try await third.request(messageType: TestMessage.echo, payload: [0])
                }
                #expect(refused?.code == .connectFailed || refused?.code == .connectionClosed)
                #expect(await logs.waitFor("refusing connection", "2 connections are open; the limit is 2"))
                for connection in [first, second] {
                    let echo = try await connection.request(messageType: TestMessage.echo, payload: [0, 9])
                    #expect(echo.payload == [0, 9])
                }
                // A place frees up when a connection closes.
                await first.close()
                #expect(await eventually { server.connectionCount == 1 })
                let again = try await client.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                _ = try await again.request(messageType: TestMessage.echo, payload: [0])
                await again.close()
                await second.close()
            }
        }
    }

    @Test("a connection runs at most maximumInFlightRequests requests at once; the rest wait their turn")
    func inFlightLimit() async throws {
        let logs = LogCapture()
        var configuration = try cluster.configuration(.node(id: 1))
        configuration.maximumInFlightRequests = 2
        let gate = Gate()
        let handler: NodeRequestHandler = { peer, request in
            guard request.messageType == TestMessage.gated else { return try await TestCluster.handler(peer, request) }
            try await gate.pass()
            return try Frame(
                kind: .response, messageType: request.messageType, correlationID: request.correlationID,
                payload: request.payload)
        }
        try await cluster.withServer(configuration: configuration, logs: logs, handler: handler) { _, port in
            let client = try NodeClient(configuration: cluster.configuration(.node(id: 2)), logger: logs.logger)
            try await bounded {
                let connection = try await client.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<6 {
                        group.addTask {
                            let answer = try await connection.request(
                                messageType: TestMessage.gated, payload: [UInt8(index)])
                            #expect(answer.payload == [UInt8(index)])
                        }
                    }
                    #expect(await eventually { gate.running == 2 })
                    // The other four were sent (the client's own limit is 64) and are held back.
                    try await Task.sleep(for: .milliseconds(300))
                    #expect(gate.started == 2)
                    gate.open()
                    try await group.waitForAll()
                }
                #expect(gate.started == 6)
                #expect(gate.mostRunning == 2)
                await connection.close()
            }
        }
    }

    @Test("a connection with no frames for idleTimeout is closed; heartbeats and running requests keep one open")
    func idleTimeout() async throws {
        let logs = LogCapture()
        var configuration = try cluster.configuration(.node(id: 1))
        // Long enough that a heartbeat every 100 ms keeps a connection open even when this 2-core
        // machine stalls the test for a few hundred milliseconds.
        configuration.idleTimeout = .milliseconds(1200)
        try await cluster.withServer(configuration: configuration, logs: logs) { _, port in
            let client = try NodeClient(configuration: cluster.configuration(.node(id: 2)), logger: logs.logger)
            try await bounded {
                let idle = try await client.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                let beating = try await client.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                let working = try await client.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                let start = ContinuousClock.now
                let slow = Task {
                    await transportError {
                        _ = try await working.request(
                            messageType: TestMessage.slow, payload: [], deadline: .milliseconds(3000))
                    }
                }
                let heartbeat = try Heartbeat(
                    nodeID: 2, bootEpoch: 1, sentAt: 0, groupKey: nil, bundleDigest: nil, peersSeen: [])
                while ContinuousClock.now - start < .milliseconds(3000) {
                    try await beating.send(oneWay: heartbeat)
                    try await Task.sleep(for: .milliseconds(100))
                }
                try await idle.channel.closeFuture.get()
                #expect(!idle.isActive)
                #expect(beating.isActive)
                // The slow request outlived the idle timeout and was answered at its deadline.
                #expect(await slow.value?.code == .deadlineExceeded)
                #expect(working.isActive)
                #expect(await logs.waitFor("closing connection: idle", "idleTimeout"))
                // Once everything is quiet, the others go too.
                try await beating.channel.closeFuture.get()
                try await working.channel.closeFuture.get()
            }
        }
    }

    @Test("limits that would make a server useless are refused")
    func limitsRefused() throws {
        let changes: [(inout TransportConfiguration) -> Void] = [
            { $0.maximumConnections = 0 }, { $0.maximumInFlightRequests = 0 }, { $0.idleTimeout = .zero },
        ]
        for change in changes {
            var configuration = try cluster.configuration(.node(id: 1))
            change(&configuration)
            #expect(throws: TransportError.self) {
                _ = try NodeServer(configuration: configuration, policy: TestCluster.policy) { _, _ in nil }
            }
        }
    }

    // MARK: frames the server starts

    @Test("one-way frames the server pushes arrive on the client's stream, in order")
    func serverPushesOneWayFrames() async throws {
        let logs = LogCapture()
        try await cluster.withServer(logs: logs) { server, port in
            let client = try NodeClient(configuration: cluster.configuration(.node(id: 2)), logger: logs.logger)
            try await bounded {
                let connection = try await client.connect(
                    host: "127.0.0.1", port: port, expecting: .node(id: 1),
                    serverFrames: ServerFrames(bufferedOneWayFrames: 8))
                #expect(await eventually { server.connectedPeers.contains(.node(id: 2)) })
                for epoch in UInt64(1)...3 {
                    let sent = await server.send(oneWay: try Self.heartbeat(from: 1, epoch: epoch), to: .node(id: 2))
                    #expect(sent == 1)
                }
                #expect(await server.send(oneWay: try Self.heartbeat(from: 1, epoch: 9), to: .node(id: 3)) == 0)
                var epochs: [UInt64] = []
                for await frame in connection.oneWayFrames {
                    epochs.append(try frame.decode(Heartbeat.self).bootEpoch)
                    if epochs.count == 3 { break }
                }
                #expect(epochs == [1, 2, 3])
                // The connection still carries requests, and the stream ends when it closes.
                _ = try await connection.request(messageType: TestMessage.echo, payload: [0])
                await connection.close()
                var after = 0
                for await _ in connection.oneWayFrames { after += 1 }
                #expect(after == 0)
            }
        }
    }

    @Test("a full one-way buffer drops the newest frame, or closes the connection, as configured")
    func serverPushOverflow() async throws {
        let logs = LogCapture()
        try await cluster.withServer(logs: logs) { server, port in
            let client = try NodeClient(configuration: cluster.configuration(.node(id: 2)), logger: logs.logger)
            try await bounded {
                let dropping = try await client.connect(
                    host: "127.0.0.1", port: port, expecting: .node(id: 1),
                    serverFrames: ServerFrames(bufferedOneWayFrames: 2, overflow: .dropNewest))
                #expect(await eventually { server.connectedPeers.count == 1 })
                for epoch in UInt64(1)...5 {
                    _ = await server.send(oneWay: try Self.heartbeat(from: 1, epoch: epoch), to: .node(id: 2))
                }
                #expect(await eventually { dropping.droppedOneWayFrames == 3 })
                var epochs: [UInt64] = []
                for await frame in dropping.oneWayFrames {
                    epochs.append(try frame.decode(Heartbeat.self).bootEpoch)
                    if epochs.count == 2 { break }
                }
                #expect(epochs == [1, 2])
                #expect(dropping.isActive)
                #expect(await logs.waitFor("dropping a one-way frame", "buffer of 2 frames is full"))
                await dropping.close()

                let closing = try await client.connect(
                    host: "127.0.0.1", port: port, expecting: .node(id: 1),
                    serverFrames: ServerFrames(bufferedOneWayFrames: 1, overflow: .closeConnection))
                #expect(await eventually { server.connectedPeers.count == 1 })
                for epoch in UInt64(1)...3 {
                    _ = await server.send(oneWay: try Self.heartbeat(from: 1, epoch: epoch), to: .node(id: 2))
                }
                try await closing.channel.closeFuture.get()
                var kept: [UInt64] = []
                for await frame in closing.oneWayFrames { kept.append(try frame.decode(Heartbeat.self).bootEpoch) }
                #expect(kept == [1])
                #expect(await logs.waitFor("closing connection", "consumer is not keeping up"))
            }
        }
    }

    @Test("a client answers the server's requests with its handler, or unknown-message-type without one")
    func serverRequests() async throws {
        let logs = LogCapture()
        try await cluster.withServer(logs: logs) { server, port in
            let client = try NodeClient(configuration: cluster.configuration(.node(id: 2)), logger: logs.logger)
            try await bounded {
                let plain = try await client.connect(host: "127.0.0.1", port: port, expecting: .node(id: 1))
                #expect(await eventually { server.connectedPeers == [.node(id: 2)] })
                let unknown = await transportError {
                    _ = try await server.request(messageType: TestMessage.echo, payload: [1], to: .node(id: 2))
                }
                #expect(unknown?.code == .refusedByPeer)
                #expect(unknown?.response?.code == .unknownMessageType)
                // Not a reason to close: the connection still works both ways.
                #expect(plain.isActive)
                _ = try await plain.request(messageType: TestMessage.echo, payload: [0])
                await plain.close()
                #expect(await eventually { server.connectedPeers.isEmpty })

                let answering = try await client.connect(
                    host: "127.0.0.1", port: port, expecting: .node(id: 1),
                    serverFrames: ServerFrames(requestHandler: { peer, request in
                        if request.payload.first == 0xff { try await Task.sleep(for: .seconds(5)) }
                        return try Frame(
                            kind: .response, messageType: request.messageType, correlationID: request.correlationID,
                            payload: Array(peer.uri.utf8) + request.payload)
                    }))
                #expect(await eventually { server.connectedPeers == [.node(id: 2)] })
                let answer = try await server.request(messageType: TestMessage.echo, payload: [7, 8], to: .node(id: 2))
                #expect(answer.payload == Array("quorum-latch://node/1".utf8) + [7, 8])
                let late = await transportError {
                    _ = try await server.request(
                        messageType: TestMessage.echo, payload: [0xff], to: .node(id: 2), deadline: .milliseconds(300))
                }
                #expect(late?.code == .deadlineExceeded)
                #expect(answering.isActive)
                let nobody = await transportError {
                    _ = try await server.request(messageType: TestMessage.echo, payload: [], to: .node(id: 3))
                }
                #expect(nobody?.code == .connectionClosed)
                await answering.close()
            }
        }
    }

    private static func heartbeat(from node: UInt16, epoch: UInt64) throws -> Heartbeat {
        try Heartbeat(nodeID: node, bootEpoch: epoch, sentAt: 0, groupKey: nil, bundleDigest: nil, peersSeen: [])
    }

    // MARK: reconnecting

    @Test("backoff doubles from its initial delay up to its cap, then gives up")
    func backoffDelays() {
        var backoff = ReconnectBackoff(
            initial: .milliseconds(100), maximum: .milliseconds(500), multiplier: 2, maximumAttempts: 6)
        var delays: [Duration] = []
        while let delay = backoff.nextDelay() { delays.append(delay) }
        #expect(delays == [100, 200, 400, 500, 500, 500].map { .milliseconds($0) })
        backoff.reset()
        #expect(backoff.nextDelay() == .milliseconds(100))
    }

    @Test("connect retries with backoff, sleeping on the given clock, and reports the last failure")
    func connectRetriesWithBackoff() async throws {
        let logs = LogCapture()
        let client = try NodeClient(configuration: cluster.configuration(.node(id: 2)), logger: logs.logger)
        // A port nothing listens on: bind a server, note its port, stop it.
        let port = try await cluster.withServer(logs: logs) { _, port in port }
        let slept = SleepRecorder()
        let error = await transportError {
            _ = try await bounded {
                try await client.connect(
                    host: "127.0.0.1", port: port, expecting: .node(id: 1),
                    backoff: ReconnectBackoff(initial: .milliseconds(50), maximum: .seconds(1), maximumAttempts: 3),
                    sleep: { slept.record($0) })
            }
        }
        #expect(error?.code == .connectFailed)
        #expect(slept.delays == [.milliseconds(50), .milliseconds(100), .milliseconds(200)])
    }
}

/// What the saturated-pool test saw.
enum HandshakeUnderLoad: Sendable {
    case notSaturated
    case failed(TransportError, after: Duration)
    case measured(client: Duration, server: Duration, spinnersAtEnd: Int, finishedAt: ContinuousClock.Instant)
}

/// When something happened, once it has.
final class Stamp: Sendable {
    private let stamped = Mutex<ContinuousClock.Instant?>(nil)
    func set() { stamped.withLock { $0 = .now } }
    var value: ContinuousClock.Instant? { stamped.withLock { $0 } }
}

/// A fake sleep: records the delays asked for and returns at once.
final class SleepRecorder: Sendable {
    private let recorded = Mutex<[Duration]>([])
    func record(_ delay: Duration) { recorded.withLock { $0.append(delay) } }
    var delays: [Duration] { recorded.withLock { $0 } }
}
