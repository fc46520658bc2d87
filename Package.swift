// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "IntegrationHub",
    platforms: [.macOS(.v14)],
    products: [
        /// The five DAOs of DAO-MDE-03-08 with both backends, usable without the server.
        .library(name: "IntegrationHubStore", targets: ["HubCore", "HubStore", "HubPostgres", "HubSQLite"]),
        .executable(name: "hub", targets: ["hub"]),
    ],
    dependencies: [
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/vapor/sqlite-nio", from: "1.13.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // Models, typed IDs, validation, the domain error, the five DAO protocols, secret sealing.
        .target(
            name: "HubCore",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The five DAOs written once over a small SQL seam; each backend supplies a connection and its dialect.
        .target(
            name: "HubStore",
            dependencies: [
                "HubCore",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "HubPostgres",
            dependencies: [
                "HubCore", "HubStore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "HubSQLite",
            dependencies: [
                "HubCore", "HubStore",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "hub",
            dependencies: [
                "HubCore", "HubStore", "HubPostgres", "HubSQLite",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "hub-bench",
            dependencies: ["HubCore", "HubStore", "HubPostgres", "HubSQLite"],
            path: "Benchmarks/HubBench"
        ),
        .testTarget(
            name: "HubStoreTests",
            dependencies: [
                "HubCore", "HubStore", "HubPostgres", "HubSQLite",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)
