// swift-tools-version: 6.1
// Microbenchmarks for QuorumCrypto, QuorumLog and QuorumPolicy, kept in their own package so the benchmark dependency (and its
// malloc interposer) never reaches the main package's graph. Run from this directory:
// `swift package --disable-sandbox benchmark` (see docs/benchmarks.md).
import PackageDescription

let package = Package(
    name: "QuorumLatchBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "QuorumLatch", path: ".."),
        // Only the malloc interposer trait: the Linux ARC runtime interposer is not needed for
        // wall-clock figures and is not in the package mirror.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "FROSTBenchmarks",
            dependencies: [
                .product(name: "QuorumCrypto", package: "QuorumLatch"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/FROSTBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "LogBenchmarks",
            dependencies: [
                .product(name: "QuorumLog", package: "QuorumLatch"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/LogBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "PolicyBenchmarks",
            dependencies: [
                .product(name: "QuorumPolicy", package: "QuorumLatch"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/PolicyBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
