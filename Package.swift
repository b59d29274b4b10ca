// swift-tools-version: 6.1
// The layout follows DESIGN.md §3: C libraries behind system-library targets, then one module per
// concern, arrows pointing down. Targets for the protocol, node and proxy arrive with their issues.
import PackageDescription

let package = Package(
    name: "QuorumLatch",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "QuorumCrypto", targets: ["QuorumCrypto"]),
        .library(name: "QuorumLog", targets: ["QuorumLog"]),
        .library(name: "QuorumPolicy", targets: ["QuorumPolicy"]),
        .executable(name: "quorumctl", targets: ["quorumctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
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
            name: "QuorumTestKit",
            dependencies: ["QuorumCrypto"]
        ),
        .executableTarget(
            name: "quorumctl",
            dependencies: [
                "QuorumCrypto",
                "QuorumLog",
                "QuorumPolicy",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
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
            name: "QuorumctlTests",
            dependencies: ["QuorumCrypto", "QuorumLog", "QuorumTestKit", "quorumctl", "CSodium"]
        ),
    ]
)
