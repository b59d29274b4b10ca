// swift-tools-version: 6.1
// The layout follows DESIGN.md §3: C libraries behind system-library targets, then one module per
// concern, arrows pointing down.
import PackageDescription

let package = Package(
    name: "QuorumLatch",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "QuorumCrypto", targets: ["QuorumCrypto"]),
        .library(name: "QuorumLog", targets: ["QuorumLog"]),
        .library(name: "QuorumPolicy", targets: ["QuorumPolicy"]),
        .library(name: "QuorumIdentity", targets: ["QuorumIdentity"]),
        .library(name: "QuorumProtocol", targets: ["QuorumProtocol"]),
        .library(name: "QuorumAudit", targets: ["QuorumAudit"]),
        .library(name: "QuorumNode", targets: ["QuorumNode"]),
        .executable(name: "quorumctl", targets: ["quorumctl"]),
        .executable(name: "quorumd", targets: ["quorumd"]),
        .library(name: "QuorumProxy", targets: ["QuorumProxy"]),
        .library(name: "QuorumDoctor", targets: ["QuorumDoctor"]),
        .executable(name: "quorum-proxy", targets: ["quorum-proxy"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        .systemLibrary(
            name: "CSecp256k1",
            pkgConfig: "libsecp256k1",
            providers: [.apt(["libsecp256k1-dev"])]
        ),
        .systemLibrary(
            name: "CRocksDB",
            pkgConfig: "rocksdb",
            providers: [.apt(["librocksdb-dev"])]
        ),
        .target(
            name: "QuorumCrypto",
            dependencies: ["CSodium", "CSecp256k1"]
        ),
        .target(
            name: "QuorumLog",
            dependencies: ["CRocksDB", "QuorumCrypto"]
        ),
        .target(
            name: "QuorumPolicy",
            dependencies: ["QuorumCrypto", .product(name: "Yams", package: "Yams")]
        ),
        .target(
            name: "QuorumIdentity",
            dependencies: [
                "QuorumCrypto",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "QuorumProtocol",
            dependencies: ["QuorumCrypto"]
        ),
        .target(
            name: "QuorumAudit",
            dependencies: [
                "QuorumCrypto", "QuorumLog", "QuorumProtocol",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "QuorumNode",
            dependencies: [
                "QuorumCrypto", "QuorumLog", "QuorumPolicy", "QuorumIdentity", "QuorumProtocol", "QuorumAudit",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "QuorumProxy",
            dependencies: [
                "QuorumCrypto", "QuorumPolicy", "QuorumProtocol", "QuorumIdentity", "QuorumNode", "QuorumAudit",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Process-level telemetry, for the executables: the JSON log handler and the Prometheus
        // /metrics listener. Library targets record through swift-metrics only and never bootstrap.
        .target(
            name: "QuorumTelemetry",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "QuorumDoctor",
            dependencies: [
                "QuorumCrypto", "QuorumLog", "QuorumPolicy", "QuorumIdentity", "QuorumProtocol", "QuorumNode",
                "QuorumProxy",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
        .target(
            name: "QuorumTestKit",
            dependencies: [
                "QuorumCrypto", "QuorumLog", "QuorumAudit",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "quorumctl",
            dependencies: [
                "QuorumCrypto",
                "QuorumLog",
                "QuorumPolicy",
                "QuorumIdentity",
                "QuorumProtocol",
                "QuorumNode",
                "QuorumAudit",
                "QuorumDoctor",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "quorumd",
            dependencies: [
                "QuorumNode", "QuorumTelemetry",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "quorum-proxy",
            dependencies: [
                "QuorumProxy", "QuorumNode", "QuorumTelemetry",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "QuorumCryptoTests",
            dependencies: ["QuorumCrypto", "QuorumTestKit", "CSodium", "CSecp256k1"]
        ),
        .testTarget(
            name: "QuorumLogTests",
            dependencies: ["QuorumLog", "QuorumCrypto", "QuorumTestKit"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "QuorumPolicyTests",
            dependencies: ["QuorumPolicy", "QuorumTestKit"]
        ),
        .testTarget(
            name: "QuorumIdentityTests",
            dependencies: ["QuorumIdentity", "QuorumTestKit"]
        ),
        .testTarget(
            name: "QuorumProtocolTests",
            dependencies: [
                "QuorumProtocol", "QuorumTestKit", .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "QuorumAuditTests",
            dependencies: [
                "QuorumAudit", "QuorumLog", "QuorumCrypto", "QuorumTestKit",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "QuorumNodeTests",
            dependencies: [
                "QuorumNode", "QuorumIdentity", "QuorumProtocol", "QuorumTestKit", "QuorumLog", "QuorumPolicy",
                "QuorumCrypto",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ]
        ),
        .testTarget(
            name: "QuorumTelemetryTests",
            dependencies: [
                "QuorumTelemetry", "QuorumTestKit",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "QuorumctlTests",
            dependencies: [
                "QuorumCrypto", "QuorumLog", "QuorumAudit", "QuorumPolicy", "QuorumProtocol", "QuorumNode",
                "QuorumTestKit", "quorumctl", "quorumd", "quorum-proxy", "CSodium",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(
            name: "QuorumProxyTests",
            dependencies: [
                "QuorumProxy", "QuorumPolicy", "QuorumCrypto", "QuorumNode", "QuorumProtocol", "QuorumTestKit",
                "QuorumIdentity", "QuorumAudit", "QuorumLog", "quorum-proxy",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
    ]
)
