// swift-tools-version:6.2
import PackageDescription

/// One set of settings for every target: Swift 6 language mode and strict imports.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("ExistentialAny"),
]

let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
let nioHTTP1 = Target.Dependency.product(name: "NIOHTTP1", package: "swift-nio")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let metrics = Target.Dependency.product(name: "Metrics", package: "swift-metrics")
let serviceLifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")

let package = Package(
    name: "Paredao",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "VoteAPI", targets: ["VoteAPI"]),
        .executable(name: "VoteConsumer", targets: ["VoteConsumer"]),
        .executable(name: "paredao-token", targets: ["VoteTokenTool"]),
        .executable(name: "paredao-ceilings", targets: ["BenchCeilings"]),
        .executable(name: "paredao-load", targets: ["BenchLoad"]),
        // Libraries for the microbenchmarks package in bench/micro.
        .library(name: "VoteShared", targets: ["VoteShared"]),
        .library(name: "VoteStore", targets: ["VoteStore"]),
        // For the fuzz package.
        .library(name: "HTTPFraming", targets: ["HTTPFraming"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        // C libraries: system library targets with a shim header.
        .systemLibrary(name: "CRabbitMQ", pkgConfig: "librabbitmq", providers: [.apt(["librabbitmq-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CMongoC", pkgConfig: "libmongoc-1.0", providers: [.apt(["libmongoc-dev", "libbson-dev"])]),

        // Swift wrappers: the only modules that import a C module.
        .target(name: "RabbitMQ", dependencies: ["CRabbitMQ"], swiftSettings: swiftSettings),
        .target(name: "SQLite", dependencies: ["CSQLite"], swiftSettings: swiftSettings),
        .target(name: "MongoDB", dependencies: ["CMongoC", logging], swiftSettings: swiftSettings),

        // The vote model, its wire format and the token crypto: no networking, no metrics,
        // so every tool can link it.
        // HTTP/1.1 request framing (the API's decoder), a library of its own so that the fuzz
        // package can hold it to NIO's decoder.
        .target(name: "HTTPFraming", dependencies: [nioCore, nioHTTP1], swiftSettings: swiftSettings),

        .target(
            name: "VoteShared",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),

        // What every long-running process shares: settings (flags and environment, the
        // broker list among them), JSON logs, the /metrics listener, the service group that
        // owns the signals, and which broker of a cluster to connect to next.
        .target(
            name: "ServiceSupport",
            dependencies: [
                "VoteShared", "RabbitMQ", nioCore, nioPosix, nioHTTP1, logging, metrics, serviceLifecycle, argumentParser,
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),

        // Where the hourly buckets live: one protocol, one implementation per database.
        .target(name: "VoteStore", dependencies: ["VoteShared", "SQLite", "MongoDB", logging], swiftSettings: swiftSettings),

        // HTTP → token check → publish.
        .executableTarget(
            name: "VoteAPI",
            dependencies: ["VoteShared", "VoteStore", "RabbitMQ", "ServiceSupport", "HTTPFraming", nioCore, nioPosix, nioHTTP1, logging, metrics, serviceLifecycle, argumentParser],
            swiftSettings: swiftSettings
        ),

        // Consume → fold → store.
        .executableTarget(
            name: "VoteConsumer",
            dependencies: ["VoteShared", "VoteStore", "RabbitMQ", "ServiceSupport", logging, metrics, serviceLifecycle, argumentParser],
            swiftSettings: swiftSettings
        ),

        // Asks for a challenge, solves it and prints session tokens.
        .executableTarget(name: "VoteTokenTool", dependencies: ["VoteShared", argumentParser], swiftSettings: swiftSettings),

        // The machine's ceilings for bench/: a bare 204 server and a confirmed-publish loop.
        .executableTarget(
            name: "BenchCeilings",
            dependencies: ["VoteShared", "RabbitMQ", "ServiceSupport", nioCore, nioPosix, nioHTTP1, logging, argumentParser],
            swiftSettings: swiftSettings
        ),

        // Open-loop load for bench/: requests leave on schedule, latency from that schedule.
        .executableTarget(
            name: "BenchLoad",
            dependencies: [nioCore, nioPosix, nioHTTP1, argumentParser, .product(name: "Histogram", package: "hdrhistogram-swift")],
            swiftSettings: swiftSettings
        ),

        .testTarget(name: "VoteSharedTests", dependencies: ["VoteShared"], swiftSettings: swiftSettings),
        .testTarget(name: "ServiceSupportTests", dependencies: ["ServiceSupport", "RabbitMQ", logging, serviceLifecycle], swiftSettings: swiftSettings),
        .testTarget(name: "VoteStoreTests", dependencies: ["VoteStore", "VoteShared", "MongoDB"], swiftSettings: swiftSettings),
        .testTarget(
            name: "VoteAPITests",
            dependencies: [
                "VoteAPI", "VoteShared", "VoteStore", "ServiceSupport", "HTTPFraming", nioCore, nioPosix, nioHTTP1,
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "VoteConsumerTests", dependencies: ["VoteConsumer", "VoteShared", "VoteStore", logging], swiftSettings: swiftSettings),
        // Real VoteAPI/VoteConsumer processes on a real RabbitMQ (./run.sh test starts it).
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["VoteAPI", "VoteShared", "VoteStore", "MongoDB", "RabbitMQ", "ServiceSupport", nioCore, nioPosix],
            swiftSettings: swiftSettings
        ),
    ]
)
