import ArgumentParser
import Foundation
import HubCore
import HubEngine
import HubServer
import HubStore
import Hummingbird
import Logging
import ServiceLifecycle

/// Where the sealing key ring comes from: `HUB_SEALING_KEYS` (entries `version:base64key`), else the key file
/// (`--key-file`, `HUB_KEY_FILE`, default `<data dir>/sealing.keys`, created with mode 0600 on first use).
struct SealingOptions: ParsableArguments {
    @Option(name: .long, help: "Sealing key ring file (env HUB_KEY_FILE, default <data dir>/sealing.keys).")
    var keyFile: String?

    /// The key ring: `sealing_keys`, else `key_file`, else — only for the embedded default database — the key file in
    /// the data directory, created on first use. A database named by URL or path must be given its keys explicitly,
    /// so that every instance and command sharing it seals with the same keys.
    func sealer(settings: Settings, dataDirectory: String, location: DatabaseLocation, isEmbeddedDefault: Bool) throws -> SecretSealer {
        // A flag wins: --key-file first, then HUB_SEALING_KEYS / HUB_KEY_FILE, then the file's settings.
        if let keyFile { return try SecretSealer.loadOrCreateKeyFile(at: keyFile) }
        if let ring = try settings.string("sealing_keys", flag: nil), !ring.isEmpty { return try SecretSealer(keyRing: ring) }
        if let path = try settings.string("key_file", flag: nil) { return try SecretSealer.loadOrCreateKeyFile(at: path) }
        guard isEmbeddedDefault else {
            throw HubError.validation(
                field: "sealing_keys",
                reason: "a database given by URL needs its sealing keys: set HUB_SEALING_KEYS (create one with `hub sealing-key generate`) or --key-file, the same for every instance")
        }
        return try SecretSealer.loadOrCreateKeyFile(at: (dataDirectory as NSString).appendingPathComponent("sealing.keys"))
    }
}

/// `hub sealing-key generate`: prints a new key ring entry.
struct SealingKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sealing-key", abstract: "Sealing keys for secrets at rest.", subcommands: [Generate.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a new key ring entry (`VERSION:base64key`) for HUB_SEALING_KEYS or a key file.")
        @Option(help: "Key version; use one higher than the newest when rotating.") var version: UInt32 = 1

        func run() throws { say("\(version):\(SecretSealer.generateKey())") }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the HTTP API (embedded SQLite in ./hub-data by default; --database-url postgres://… for PostgreSQL).")

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var sealing: SealingOptions

    @Option(help: "Address to listen on (env HUB_HOST, default 127.0.0.1).")
    var host: String?

    @Option(help: "Port to listen on (env HUB_PORT, default 8080; 0 picks a free port).")
    var port: Int?

    @Option(help: "Largest request body in bytes (env HUB_BODY_LIMIT, default 1048576).")
    var bodyLimit: Int?

    @Option(help: "Networks outbound requests may reach although the policy refuses them, comma-separated CIDRs (env HUB_OUTBOUND_ALLOWLIST), e.g. 127.0.0.0/8 for local development.")
    var outboundAllowlist: String?

    @Option(help: "At start-up, `apply` pending migrations or only `check` that none is pending (env HUB_MIGRATE, default apply).")
    var migrate: String?

    @Flag(help: .hidden) var workersOnly = false

    func run() async throws {
        let workersOnly = self.workersOnly
        try await reportingErrors {
            let settings = try database.settings()
            let location = try database.location()
            let dataDirectory = try database.resolvedDataDirectory()
            var configuration = ServerConfiguration()
            configuration.host = try settings.string("host", flag: host) ?? configuration.host
            if let port = try settings.int("port", flag: port) { configuration.port = port }
            if let limit = try settings.int("body_limit", flag: bodyLimit) { configuration.bodyLimit = limit }
            guard (0...65535).contains(configuration.port) else {
                throw HubError.validation(field: "port", reason: "must be between 0 and 65535")
            }
            guard configuration.bodyLimit >= 1024 else { throw HubError.validation(field: "body_limit", reason: "must be at least 1024") }
            configuration.outboundPolicy = try settings.outboundPolicy(allowlistFlag: outboundAllowlist)
            if let cap = try settings.int("response_body_cap", flag: nil) {
                try Validate.range(cap, 0...(16 << 20), field: "response_body_cap")
                configuration.responseBodyCap = cap
            }
            let redactedHeaders = try settings.redactedHeaders()
            let operationDays = try settings.int("operations_retention_days", flag: nil) ?? 30
            let statisticsDays = try settings.int("statistics_retention_days", flag: nil) ?? 400
            let webhookDays = try settings.int("webhook_retention_days", flag: nil) ?? 30
            let syncLease = try settings.syncLease()
            let syncConcurrency = try settings.int("sync_concurrency", flag: nil) ?? 2
            let dispatcherConfiguration = try settings.webhookDispatcher()
            let monitorConfiguration = try settings.healthMonitor()
            try Validate.range(syncConcurrency, 1...64, field: "sync_concurrency")
            let journalDirectory = try settings.string("journal_dir", flag: nil)
                ?? (dataDirectory as NSString).appendingPathComponent("journal")
            let mode = try settings.string("migrate", flag: migrate) ?? "apply"
            guard mode == "apply" || mode == "check" else { throw HubError.validation(field: "migrate", reason: "must be apply or check") }
            if case .sqlite = location { try PrivateFiles.directory(dataDirectory, own: true) }
            let sealer = try sealing.sealer(
                settings: settings, dataDirectory: dataDirectory, location: location, isEmbeddedDefault: try database.isEmbeddedDefault())
            var logger = Logger(label: "hub")
            logger.logLevel = try settings.logLevel(default: .info)

            let serverConfiguration = configuration
            let serverLogger = logger
            try await location.withDatabase(logger: logger) { database in
                let configuration = serverConfiguration
                let logger = serverLogger
                let migrator = Migrator(database: database)
                if mode == "apply" { try await migrator.migrate() } else { try await migrator.check() }
                var stores = HubStores(database: database, sealer: sealer, redactedHeaders: redactedHeaders)
                // API operations are recorded write-behind through this process's journal; journals that stopped processes
                // left are replayed before the first request.
                let recorder = try OperationRecorder(
                    store: stores.apiOperations, journalDirectory: journalDirectory, redactedHeaders: redactedHeaders, logger: logger)
                try await recorder.recover()
                stores.apiOperations = recorder
                // Only on a first start (no key ever made): a revoked admin key stays revoked.
                if try await stores.apiKeys.list().isEmpty {
                    if case .sqlite = location {
                        do {
                            let (_, token) = try await stores.apiKeys.create(name: "admin")
                            say("First start: created the API key 'admin'. It is shown this once; keep it:\n\(token)")
                        } catch HubError.conflict {
                            // Another process made it at the same moment; it printed the key.
                        }
                    } else {
                        say("No API key exists yet: create one with `hub keys create --name NAME`.")
                    }
                } else if try await stores.apiKeys.activeCount() == 0 {
                    say("Every API key is revoked: create one with `hub keys create --name NAME`.")
                }
                let host = configuration.host
                // As many connections per host as the workers may have requests in flight to one host: the dispatcher's
                // senders and rate-limited shares (its claims keep at most twice its concurrency), the monitor, syncs.
                let gateway = OutboundGateway(
                    policy: configuration.outboundPolicy,
                    connectionsPerHost: max(
                        64, 2 * dispatcherConfiguration.concurrency + monitorConfiguration.concurrency + syncConcurrency))
                let app = HubServer.application(stores: stores, configuration: configuration, gateway: gateway, logger: logger) { port in
                    say("IntegrationHub listening on http://\(host):\(port) (\(location.redacted))")
                }
                // SIGTERM/SIGINT stop accepting and let in-flight requests finish, for at most 30 s; then they are cancelled.
                let retention = try RetentionService(
                    operations: stores.apiOperations, webhookDeliveries: WebhookDeliveryStore(database: database),
                    operationDays: operationDays, statisticsDays: statisticsDays, webhookDays: webhookDays, logger: logger)
                // The sync worker: scheduled jobs, and jobs started by the API; at shutdown running jobs stop after their
                // current batch and release their leases.
                let syncStore = SyncEngineStore(database: database)
                let syncExecutor = OperationExecutor(
                    gateway: gateway, auth: AuthApplier(gateway: gateway), integrations: stores.integrations,
                    operations: stores.apiOperations, responseBodyCap: configuration.responseBodyCap)
                let worker = SyncWorker(
                    runner: SyncRunner(
                        store: syncStore, integrations: stores.integrations, executor: syncExecutor, lease: syncLease, logger: logger),
                    store: syncStore, jobs: stores.syncJobs, concurrency: syncConcurrency, logger: logger)
                // The webhook dispatcher: the outbox fanned out into messages, delivered under leases with retries.
                let dispatcher = WebhookDispatcher(
                    store: WebhookDeliveryStore(database: database), webhooks: stores.webhooks, gateway: gateway,
                    configuration: dispatcherConfiguration, logger: logger)
                // The connectivity monitor: every connection checked every health_check_interval minutes.
                let monitor = HealthMonitor(
                    store: HealthMonitorStore(database: database), connections: stores.connections, gateway: gateway,
                    configuration: monitorConfiguration, logger: logger)
                if workersOnly { say("IntegrationHub worker running (\(location.redacted))") }
                let background: [any Service] = [retention, worker, dispatcher, monitor]
                let services: [any Service] = workersOnly ? background : [app] + background
                var groupConfiguration = ServiceGroupConfiguration(
                    services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
                groupConfiguration.maximumGracefulShutdownDuration = .seconds(30)
                let group = ServiceGroup(configuration: groupConfiguration)
                do {
                    try await group.run()
                } catch {
                    await recorder.shutdown(timeout: .seconds(10))
                    try? await gateway.shutdown()
                    throw error
                }
                await recorder.shutdown(timeout: .seconds(10))
                try await gateway.shutdown()
            }
        }
    }

}

/// Writes a line to stdout at once (stdout may be a pipe, where `print` would buffer).
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage API keys of the HTTP API.", subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key; the key alone is printed on the last line.")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Unique name of the key.") var name: String

        func run() async throws {
            let name = self.name
            try await reportingErrors {
                let embedded = try database.isEmbeddedDefault()
                try await database.location().withDatabase(logger: try makeLogger(database)) { database in
                    try await prepareSchema(database, embedded: embedded)
                    let (key, token) = try await APIKeyStore(database: database).create(name: name)
                    say("created API key '\(key.name)' (id \(key.keyID)); it is shown this once:")
                    say(token)
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (never the keys themselves).")
        @OptionGroup var database: DatabaseOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let json = self.json
            try await reportingErrors {
                let embedded = try database.isEmbeddedDefault()
                try await database.location().withDatabase(logger: try makeLogger(database)) { database in
                    try await prepareSchema(database, embedded: embedded)
                    let keys = try await APIKeyStore(database: database).list()
                    if json {
                        let items: [JSONValue] = keys.map { key in
                            [
                                "name": .string(key.name), "key_id": .string(key.keyID),
                                "created_at": .string(key.createdAt.rfc3339),
                                "last_used_at": key.lastUsedAt.map { .string($0.rfc3339) } ?? .null,
                                "revoked_at": key.revokedAt.map { .string($0.rfc3339) } ?? .null,
                            ]
                        }
                        say(JSONValue.array(items).jsonText)
                    } else {
                        say("NAME\tKEY ID\tCREATED\tSTATUS")
                        for key in keys {
                            say("\(key.name)\t\(key.keyID)\t\(key.createdAt.rfc3339)\t\(key.revokedAt == nil ? "active" : "revoked")")
                        }
                    }
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key by name or key id.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "Name or key id.") var key: String

        func run() async throws {
            let key = self.key
            try await reportingErrors {
                let embedded = try database.isEmbeddedDefault()
                try await database.location().withDatabase(logger: try makeLogger(database)) { database in
                    try await prepareSchema(database, embedded: embedded)
                    let revoked = try await APIKeyStore(database: database).revoke(key)
                    say("revoked API key '\(revoked.name)'")
                }
            }
        }
    }
}

extension Date {
    /// RFC 3339 UTC with microseconds, as the API writes timestamps.
    var rfc3339: String { RFC3339.format(self) }
}

/// `hub worker`: the background workers of `hub serve` (sync jobs and schedules, retention, operation recording)
/// without the HTTP API; it takes the same options.
struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the background workers (sync jobs, schedules, retention) without the HTTP API; same options as serve.")
    @Argument(parsing: .captureForPassthrough, help: "Options as for `hub serve`.") var options: [String] = []

    func run() async throws {
        let serve = try Serve.parse(options + ["--workers-only"])
        try await serve.run()
    }
}
