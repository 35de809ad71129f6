// swift-tools-version:6.2
import PackageDescription

// libFuzzer targets for the parsers and decoders that read untrusted bytes (VoteShared's, and
// the API's HTTP/1.1 request framing in HTTPFraming):
//
//     fuzz/run.sh [--seconds N] [target…]        (builds, then fuzzes each target)
//
// Build by hand (every Swift module, VoteShared included, gets coverage and AddressSanitizer):
//
//     swift build --package-path fuzz -c debug -Xswiftc -sanitize=fuzzer,address
//
// A separate package, like bench/micro, so that the main build never carries sanitizer
// flags. It reaches the main package by path and uses its `VoteShared` library.

/// The main package's settings, so the targets read like the code they test.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("ExistentialAny"),
]

let voteShared = Target.Dependency.product(name: "VoteShared", package: "Paredao")

/// One executable per fuzz target: its `@main` hands libFuzzer's driver the target's
/// `LLVMFuzzerTestOneInput` (SwiftPM links executables with `main` renamed, so libFuzzer's
/// own `main` cannot be used).
func fuzzTarget(_ name: String) -> Target {
    .executableTarget(name: name, dependencies: ["FuzzSupport", voteShared], swiftSettings: swiftSettings)
}

let package = Package(
    name: "ParedaoFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        // `name:` so that the product below can say "Paredao" whatever the folder is called.
        .package(name: "Paredao", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        // libFuzzer's driver entry point (`LLVMFuzzerRunDriver`), declared for Swift.
        .target(name: "CLibFuzzer"),
        // The driver call and the fixed keys, network, clock and poll every target shares.
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer", voteShared], swiftSettings: swiftSettings),
        fuzzTarget("FuzzVoteBody"),
        fuzzTarget("FuzzSessionToken"),
        fuzzTarget("FuzzChallenge"),
        fuzzTarget("FuzzBase64URL"),
        fuzzTarget("FuzzVoteMessage"),
        fuzzTarget("FuzzClientNetwork"),
        // The API's HTTP/1.1 request framing, held to NIO's decoder.
        .executableTarget(
            name: "FuzzHTTPRequest",
            dependencies: [
                "FuzzSupport", .product(name: "HTTPFraming", package: "Paredao"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
