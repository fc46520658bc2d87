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
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
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
        // Outbound work: the gateway (address policy, one HTTP client), auth application, connectivity tests.
        .target(
            name: "HubEngine",
            dependencies: [
                "HubCore", "HubStore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The HTTP API: routes, API-key auth, problem+json, OpenAPI document, metrics.
        .target(
            name: "HubServer",
            dependencies: [
                "HubCore", "HubStore", "HubEngine",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "hub",
            dependencies: [
                "HubCore", "HubStore", "HubPostgres", "HubSQLite", "HubServer", "HubEngine",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "hub-bench",
            dependencies: [
                "HubCore", "HubStore", "HubPostgres", "HubSQLite", "HubEngine",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Benchmarks/HubBench"
        ),
        .testTarget(
            name: "HubTests",
            dependencies: [
                "HubCore", "HubStore", "HubPostgres", "HubSQLite", "HubServer", "HubEngine",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
    ]
)
