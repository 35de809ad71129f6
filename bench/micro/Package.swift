// swift-tools-version:6.2
import PackageDescription

// Microbenchmarks for the hot paths in VoteShared, run with ordo-one's package-benchmark:
//
//     swift package --package-path bench/micro benchmark        (from the repository root)
//     bench/micro/run.sh [--smoke]
//
// A separate package so that the main build and `swift test` never resolve or build the
// benchmark tooling. It reaches the main package by path and uses its `VoteShared` library.
let package = Package(
    name: "ParedaoMicrobenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // `name:` lets the product below say "Paredao": a path dependency's identity is
        // otherwise its folder's name ("main" here), which differs between clones.
        .package(name: "Paredao", path: "../.."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "ParedaoBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "VoteShared", package: "Paredao"),
                .product(name: "VoteStore", package: "Paredao"),
            ],
            path: "Benchmarks/ParedaoBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
    ]
)
