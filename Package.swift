// swift-tools-version:6.2
import PackageDescription

/// One set of settings for every target: Swift 6 language mode and strict imports.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "Paredao",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "VoteAPI", targets: ["VoteAPI"]),
        .executable(name: "VoteConsumer", targets: ["VoteConsumer"]),
        .executable(name: "paredao-token", targets: ["VoteTokenTool"]),
        .executable(name: "paredao-ceilings", targets: ["BenchCeilings"]),
        // Libraries for the microbenchmarks package in bench/micro.
        .library(name: "VoteShared", targets: ["VoteShared"]),
        .library(name: "VoteStore", targets: ["VoteStore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
    ],
    targets: [
        // C libraries: system library targets with a shim header.
        .systemLibrary(
            name: "CRabbitMQ",
            pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]
        ),
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),

        // Swift wrappers: the only modules that import a C module.
        .target(name: "RabbitMQ", dependencies: ["CRabbitMQ"], swiftSettings: swiftSettings),
        .target(name: "SQLite", dependencies: ["CSQLite"], swiftSettings: swiftSettings),

        // Shared vote model, wire format, configuration, tokens, logging and metrics.
        .target(
            name: "VoteShared",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),

        // Where the hourly buckets live: one protocol, one implementation per database.
        .target(
            name: "VoteStore",
            dependencies: ["VoteShared", "SQLite", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),

        // HTTP → token check → publish.
        .executableTarget(
            name: "VoteAPI",
            dependencies: [
                "VoteShared", "VoteStore", "RabbitMQ",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),

        // Consume → fold → store.
        .executableTarget(
            name: "VoteConsumer",
            dependencies: [
                "VoteShared", "VoteStore", "RabbitMQ",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),

        // Asks for a challenge, solves it and prints session tokens.
        .executableTarget(
            name: "VoteTokenTool",
            dependencies: ["VoteShared"],
            swiftSettings: swiftSettings
        ),

        // The machine's ceilings for bench/: a bare 204 server and a confirmed-publish loop.
        .executableTarget(
            name: "BenchCeilings",
            dependencies: [
                "VoteShared", "RabbitMQ",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        .testTarget(
            name: "VoteSharedTests",
            dependencies: ["VoteShared"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VoteStoreTests",
            dependencies: ["VoteStore", "VoteShared"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VoteAPITests",
            dependencies: [
                "VoteAPI", "VoteShared", "VoteStore", "RabbitMQ",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "VoteAPI", "VoteShared", "RabbitMQ",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
