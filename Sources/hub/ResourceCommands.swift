import ArgumentParser
import Foundation
import HubCore
import HubEngine
import HubServer
import HubStore

/// Options of every resource command: the database, the sealing keys, and the output format.
struct ResourceOptions: ParsableArguments {
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var sealing: SealingOptions
    @Flag(help: "Print JSON (the API's representation) instead of a table.") var json = false

    @Option(help: "Networks outbound requests may reach although the policy refuses them, comma-separated CIDRs (env HUB_OUTBOUND_ALLOWLIST).")
    var outboundAllowlist: String?

    /// The outbound side over one gateway and one OAuth2 token cache.
    struct Engine: Sendable {
        let tester: ConnectivityTester
        let executor: OperationExecutor
    }

    /// Runs `body` with the stores and the engine over a gateway under the configured policy (shut down afterwards).
    func withEngine(_ body: @escaping @Sendable (HubStores, Engine) async throws -> Void) async throws {
        var policy = try OutboundPolicy()
        var cap = 64 * 1024
        try await reportingErrors {
            policy = try database.settings().outboundPolicy(allowlistFlag: outboundAllowlist)
            cap = try database.settings().int("response_body_cap", flag: nil) ?? cap
            try Validate.range(cap, 0...(16 << 20), field: "response_body_cap")
        }
        let outboundPolicy = policy
        let responseBodyCap = cap
        try await withStores { stores in
            let gateway = OutboundGateway(policy: outboundPolicy)
            let auth = AuthApplier(gateway: gateway)
            let engine = Engine(
                tester: ConnectivityTester(
                    gateway: gateway, auth: auth, integrations: stores.integrations, webhooks: stores.webhooks,
                    connections: stores.connections),
                executor: OperationExecutor(
                    gateway: gateway, auth: auth, integrations: stores.integrations, operations: stores.apiOperations,
                    responseBodyCap: responseBodyCap))
            do {
                try await body(stores, engine)
            } catch {
                try? await gateway.shutdown()
                throw error
            }
            try await gateway.shutdown()
        }
    }

    /// Runs `body` with the stores of the configured database. The embedded default is created and migrated on first
    /// use, as `hub serve` does; a database named by URL must already be migrated (`hub migrate`).
    func withStores(_ body: @escaping @Sendable (HubStores) async throws -> Void) async throws {
        try await reportingErrors {
            let location = try database.location()
            let sealer = try sealing.sealer(
                settings: try database.settings(), dataDirectory: try database.resolvedDataDirectory(), location: location,
                isEmbeddedDefault: try database.isEmbeddedDefault())
            let embedded = try database.isEmbeddedDefault()
            let redactedHeaders = try database.settings().redactedHeaders()
            try await location.withDatabase(logger: try makeLogger(database)) { database in
                try await prepareSchema(database, embedded: embedded)
                try await body(HubStores(database: database, sealer: sealer, redactedHeaders: redactedHeaders))
            }
        }
    }
}

/// Applies pending migrations to the embedded default (zero set-up); checks a named database, which `hub migrate`
/// manages. - Throws: `schemaMismatch`.
func prepareSchema(_ database: any SQLDatabase, embedded: Bool) async throws {
    if embedded { try await Migrator(database: database).migrate() } else { try await Migrator(database: database).check() }
}

/// Parses a JSON argument given inline or as `@path`. - Throws: `validation(field)`.
func jsonArgument(_ text: String, field: String) throws -> JSONValue {
    if text.hasPrefix("@") {
        guard let data = FileManager.default.contents(atPath: String(text.dropFirst())) else {
            throw HubError.validation(field: field, reason: "cannot read \(text.dropFirst())")
        }
        return try JSONValue.parse(String(decoding: data, as: UTF8.self), field: field)
    }
    return try JSONValue.parse(text, field: field)
}

func parseID<Entity>(_ text: String, field: String = "id") throws -> Identifier<Entity> {
    try Identifier(parsing: text, field: field)
}

/// Prints `value` as JSON, or as a table of `columns` (one row per item of a page or list, or one object).
func output(_ value: JSONValue, json: Bool, columns: [String]) {
    if json {
        say(value.jsonText)
        return
    }
    let rows: [[String: JSONValue]]
    if let items = value.objectValue?["items"]?.arrayValue {
        rows = items.compactMap(\.objectValue)
    } else if let object = value.objectValue {
        // One object: key/value lines.
        for key in object.keys.sorted() { say("\(key.padding(toLength: 22, withPad: " ", startingAt: 0)) \(cell(object[key]!))") }
        return
    } else {
        rows = []
    }
    let cells = rows.map { row in columns.map { cell(row[$0] ?? .null) } }
    let widths = columns.indices.map { index in max(columns[index].count, cells.map { $0[index].count }.max() ?? 0) }
    func line(_ values: [String]) -> String {
        values.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
            .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
    }
    say(line(columns.map { $0.uppercased() }))
    for row in cells { say(line(row)) }
    if let cursor = value.objectValue?["next_cursor"]?.stringValue { say("(more: --cursor \(cursor))") }
}

private func cell(_ value: JSONValue) -> String {
    switch value {
    case .null: return "-"
    case .string(let text): return text
    default: return value.jsonText
    }
}

struct PageOptions: ParsableArguments {
    @Option(help: "Items per page, 1-500.") var limit = 50
    @Option(help: "The cursor printed by the previous page.") var cursor: String?
    var request: PageRequest { PageRequest(limit: limit, cursor: cursor) }
}

// MARK: - hub integrations

struct Integrations: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "External system integrations (DAO-MDE-03-08-01).", subcommands: [Add.self, List.self, Show.self, Test.self])
    static let columns = ["integration_id", "system_id", "integration_type", "status", "config_version", "error_count", "last_sync"]

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register an external system.")
        @OptionGroup var options: ResourceOptions
        @Option(help: "External system identifier.") var systemID: String
        @Option(help: "Integration type, e.g. HR or ERP.") var type: String
        @Option(help: "Absolute http(s) URL of the system.") var endpointURL: String
        @Option(help: "Auth configuration JSON, inline or @file (e.g. '{\"type\":\"bearer\",\"token\":\"…\"}').") var authConfig: String
        @Option(help: "Mapping configuration JSON, inline or @file.") var mappingConfig: String?

        func run() async throws {
            let (systemID, type, url, auth, mapping, json) = (systemID, type, endpointURL, authConfig, mappingConfig, options.json)
            try await options.withStores { stores in
                let integration = try await stores.integrations.register(IntegrationRegistration(
                    systemID: systemID, integrationType: type, endpointURL: url, authConfig: try jsonArgument(auth, field: "auth_config"),
                    mappingConfig: try mapping.map { try jsonArgument($0, field: "mapping_config") }))
                output(integration.json, json: json, columns: Integrations.columns)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List integrations, newest first.")
        @OptionGroup var options: ResourceOptions
        @OptionGroup var page: PageOptions

        func run() async throws {
            let (request, json) = (page.request, options.json)
            try await options.withStores { stores in
                output(try await stores.integrations.list(request).json(\.json), json: json, columns: Integrations.columns)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one integration (auth config masked).")
        @OptionGroup var options: ResourceOptions
        @Argument(help: "integration_id") var id: String

        func run() async throws {
            let (id, json) = (id, options.json)
            try await options.withStores { stores in
                output(try await stores.integrations.get(try parseID(id)).json, json: json, columns: Integrations.columns)
            }
        }
    }
}

// MARK: - hub sync

struct Sync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Synchronization jobs (DAO-MDE-03-08-02).", subcommands: [Start.self, List.self, Show.self])
    static let columns = ["sync_job_id", "integration_id", "sync_type", "entity_type", "status", "records_processed", "errors_count", "started_at"]

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a sync job and run it here, with a live progress line and the summary at the end (exit 7 when it fails).",
            discussion: "With --detach the job is only created, for a `hub serve` or `hub worker` to run.")
        @OptionGroup var options: ResourceOptions
        @Option(help: "integration_id") var integration: String
        @Option(help: "full or incremental") var type: String
        @Option(help: "Entity type, e.g. users.") var entity: String
        @Option(help: "Batch size, 1-10000 (default 1000).") var batchSize: Int?
        @Option(help: "Filters JSON, inline or @file.") var filters: String?
        @Flag(help: "Only create the job; a worker runs it.") var detach = false

        func run() async throws {
            let (integration, type, entity, batchSize, filters, json, detach) = (
                integration, type, entity, batchSize, filters, options.json, detach
            )
            var leaseSetting = Duration.seconds(30)
            try await reportingErrors { leaseSetting = try options.database.settings().syncLease() }
            let lease = leaseSetting
            try await options.withEngine { stores, engine in
                let job = try await stores.syncJobs.start(SyncJobRequest(
                    integrationID: try parseID(integration, field: "integration"), syncType: try Validate.oneOf(type, as: SyncType.self, field: "type"),
                    entityType: entity, filters: try filters.map { try jsonArgument($0, field: "filters") }, batchSize: batchSize))
                if detach {
                    output(job.json, json: json, columns: Sync.columns)
                    return
                }
                let store = SyncEngineStore(database: stores.database)
                let runner = SyncRunner(store: store, integrations: stores.integrations, executor: engine.executor, lease: lease)
                let finished: SyncJob
                if let claim = try await store.claim(owner: runner.owner, lease: runner.lease, jobID: job.id) {
                    let interactive = isatty(2) == 1
                    let result = await runner.run(claim) { progress in
                        guard !json else { return }
                        let seconds = max(0.001, Double(progress.elapsed.components.seconds) + Double(progress.elapsed.components.attoseconds) / 1e18)
                        let line = String(
                            format: "batch %d: %lld records, %.0f records/s, %lld errors", progress.batches, progress.recordsProcessed,
                            Double(progress.recordsProcessed) / seconds, progress.errors)
                        FileHandle.standardError.write(Data((interactive ? "\r\u{1B}[K" + line : line + "\n").utf8))
                    }
                    if !json, interactive { FileHandle.standardError.write(Data("\n".utf8)) }
                    if let result { finished = result } else { finished = try await stores.syncJobs.get(job.id) }
                } else {
                    // Another worker took it first: follow it to its end.
                    var current = try await stores.syncJobs.get(job.id)
                    while current.status == .running {
                        try await Task.sleep(for: .milliseconds(500))
                        current = try await stores.syncJobs.get(job.id)
                    }
                    finished = current
                }
                if json {
                    say(finished.json.jsonText)
                } else {
                    let summary = finished.summary
                    say(
                        "sync job \(finished.id) \(finished.status.rawValue): \(finished.recordsProcessed) records (added \(summary.added), "
                            + "updated \(summary.updated), unchanged \(summary.unchanged), deleted \(summary.deleted), failed \(summary.failed))"
                            + (summary.sourceTotal.map { "; source total \($0)" } ?? "")
                            + (summary.reconciliationMismatch ? "; MISMATCH with the source's total" : "")
                            + (summary.failureReason.map { "; \($0)" } ?? ""))
                }
                if finished.status == .failed || finished.status == .running { throw ExitCode(7) }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List sync jobs, newest first.")
        @OptionGroup var options: ResourceOptions
        @OptionGroup var page: PageOptions
        @Option(help: "Only this integration's jobs.") var integration: String?
        @Option(help: "Only jobs with this status.") var status: String?
        @Option(help: "Only this entity type.") var entity: String?

        func run() async throws {
            let (integration, status, entity, request, json) = (integration, status, entity, page.request, options.json)
            try await options.withStores { stores in
                let filter = SyncJobFilter(
                    integrationID: try integration.map { try parseID($0, field: "integration") },
                    status: try status.map { try Validate.oneOf($0, as: SyncJobStatus.self, field: "status") }, entityType: entity)
                output(try await stores.syncJobs.list(filter, request).json(\.json), json: json, columns: Sync.columns)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one sync job with its batches.")
        @OptionGroup var options: ResourceOptions
        @Argument(help: "sync_job_id") var id: String

        func run() async throws {
            let (id, json) = (id, options.json)
            try await options.withStores { stores in
                let jobID: SyncJobID = try parseID(id)
                let job = try await stores.syncJobs.get(jobID)
                let batches = try await stores.syncJobs.batches(of: jobID)
                guard case .object(var members) = job.json else { return }
                members["batches"] = .array(batches.map(\.json))
                if json {
                    say(JSONValue.object(members).jsonText)
                } else {
                    output(job.json, json: false, columns: Sync.columns)
                    say("")
                    output(["items": .array(batches.map(\.json))], json: false, columns: ["batch_number", "records_count", "status", "processed_at"])
                }
            }
        }
    }
}

// MARK: - hub ops

struct Ops: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "API operations and their daily statistics (DAO-MDE-03-08-03).", subcommands: [Run.self, List.self, Show.self, Stats.self])
    static let columns = ["operation_id", "operation_type", "endpoint", "status", "status_code", "execution_time", "started_at"]

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List operations, newest first.")
        @OptionGroup var options: ResourceOptions
        @OptionGroup var page: PageOptions
        @Option(help: "Only this integration's calls.") var integration: String?
        @Option(help: "pending, completed or failed") var status: String?
        @Option(help: "Logged at or after this RFC 3339 time.") var from: String?
        @Option(help: "Logged before this RFC 3339 time.") var to: String?

        func run() async throws {
            let (integration, status, from, to, request, json) = (integration, status, from, to, page.request, options.json)
            try await options.withStores { stores in
                let filter = APIOperationFilter(
                    integrationID: try integration.map { try parseID($0, field: "integration") },
                    status: try status.map { try Validate.oneOf($0, as: APIOperationStatus.self, field: "status") },
                    createdFrom: try from.map { try RFC3339.parse($0, field: "from") },
                    createdBefore: try to.map { try RFC3339.parse($0, field: "to") })
                output(try await stores.apiOperations.list(filter, request).json(\.json), json: json, columns: Ops.columns)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one operation (credential headers redacted).")
        @OptionGroup var options: ResourceOptions
        @Argument(help: "operation_id") var id: String

        func run() async throws {
            let (id, json) = (id, options.json)
            try await options.withStores { stores in
                output(try await stores.apiOperations.get(try parseID(id)).json, json: json, columns: Ops.columns)
            }
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Daily statistics by endpoint template, method and integration, with error classes and p50/p95/p99.")
        @OptionGroup var options: ResourceOptions
        @Option(help: "Endpoint or its template (/users/{id}).") var endpoint: String?
        @Option(help: "GET, POST, PUT, PATCH or DELETE") var method: String?
        @Option(help: "Only this integration's calls.") var integration: String?
        @Option(help: "First UTC day, YYYY-MM-DD.") var from: String?
        @Option(help: "Last UTC day, YYYY-MM-DD.") var to: String?
        @Flag(help: "One row per endpoint, method and integration over the days.") var merge = false

        func run() async throws {
            let (endpoint, method, integration, from, to, merge, json) = (endpoint, method, integration, from, to, merge, options.json)
            try await options.withStores { stores in
                let query = APIStatisticsQuery(
                    endpoint: endpoint, operationType: try method.map { try Validate.oneOf($0, as: HTTPMethod.self, field: "method") },
                    fromDay: from, toDay: to, integrationID: try integration.map { try parseID($0, field: "integration") })
                var rows = try await stores.apiOperations.statistics(query)
                if merge { rows = APIStatistics.merged(rows) }
                output(["items": .array(rows.map(\.json))], json: json,
                       columns: ["day", "operation_type", "endpoint", "call_count", "error_count", "avg_execution_time", "p50_execution_time",
                                 "p95_execution_time", "p99_execution_time"])
            }
        }
    }
}

// MARK: - hub webhooks

struct Webhooks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Webhook registrations (DAO-MDE-03-08-04) and their deliveries.",
        subcommands: [
            Add.self, List.self, Show.self, Test.self, Messages.self, Attempts.self, Replay.self, Recover.self, RotateSecret.self,
            Enable.self, Disable.self,
        ])
    static let columns = ["webhook_id", "webhook_url", "event_types", "status", "success_count", "failure_count", "last_triggered"]

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a webhook; its signing secret is printed this once.")
        @OptionGroup var options: ResourceOptions
        @Option(help: "Absolute http(s) URL.") var url: String
        @Option(help: "Comma-separated event types (sync.completed, sync.*, *).") var events: String
        @Option(help: "whsec_… secret; generated when omitted.") var secret: String?
        @Option(help: "Retry configuration JSON, inline or @file.") var retryConfig: String?
        @Option(help: "Custom headers JSON, inline or @file.") var headers: String?
        @Flag(help: "Deliver one message at a time, in event order.") var ordered = false
        @Option(help: "At most this many deliveries a second (1-10000).") var rateLimit: Int?

        func run() async throws {
            let (url, events, secret, retry, headers, json) = (url, events, secret, retryConfig, self.headers, options.json)
            let (ordered, rateLimit) = (ordered, rateLimit)
            try await options.withStores { stores in
                let registered = try await stores.webhooks.register(WebhookRegistration(
                    webhookURL: url, eventTypes: events.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) },
                    secretKey: secret, retryConfig: try retry.map { try jsonArgument($0, field: "retry_config") },
                    headers: try headers.map { try jsonArgument($0, field: "headers") }, ordered: ordered, rateLimit: rateLimit))
                guard case .object(var members) = registered.webhook.json else { return }
                members["secret"] = .string(registered.secret)
                if json {
                    say(JSONValue.object(members).jsonText)
                } else {
                    output(registered.webhook.json, json: false, columns: Webhooks.columns)
                    say("signing secret (shown this once): \(registered.secret)")
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List webhooks, newest first.")
        @OptionGroup var options: ResourceOptions
        @OptionGroup var page: PageOptions

        func run() async throws {
            let (request, json) = (page.request, options.json)
            try await options.withStores { stores in
                output(try await stores.webhooks.list(request).json(\.json), json: json, columns: Webhooks.columns)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one webhook with its statistics (never its secret).")
        @OptionGroup var options: ResourceOptions
        @Argument(help: "webhook_id") var id: String

        func run() async throws {
            let (id, json) = (id, options.json)
            try await options.withStores { stores in
                output(try await stores.webhooks.get(try parseID(id)).json, json: json, columns: Webhooks.columns)
            }
        }
    }
}

// MARK: - hub connections

struct Connections: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "System connections and their health (DAO-MDE-03-08-05).",
        subcommands: [Add.self, List.self, Show.self, Check.self, History.self, Uptime.self, Maintenance.self])
    static let columns = ["connection_id", "system_name", "connection_type", "endpoint", "status", "uptime_percentage", "avg_response_time"]

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a connection.")
        @OptionGroup var options: ResourceOptions
        @Option(help: "Unique system name.") var name: String
        @Option(help: "API, DB, FTP, SFTP or TCP") var type: String
        @Option(help: "Endpoint (URL or host:port, per type).") var endpoint: String
        @Option(help: "Credentials JSON, inline or @file (default {}).") var credentials: String = "{}"
        @Option(help: "Minutes between health checks, 1-1440 (default 5).") var interval: Int?
        @Option(help: "Failing checks retried 20 s apart before the connection is down, 0-10 (default 1).") var retries: Int?

        func run() async throws {
            let (name, type, endpoint, credentials, interval, json) = (name, type, endpoint, credentials, interval, options.json)
            let retries = retries
            try await options.withEngine { stores, engine in
                let connection = try await stores.connections.create(ConnectionRegistration(
                    systemName: name, connectionType: try Validate.oneOf(type, as: ConnectionType.self, field: "type"), endpoint: endpoint,
                    credentials: try jsonArgument(credentials, field: "credentials"), healthCheckInterval: interval, retries: retries))
                // The initial test (design steps 2-4); its outcome does not change the exit status of add.
                let (tested, result) = try await engine.tester.checkConnection(connection.id)
                guard case .object(var members) = tested.json else { return }
                members["check_result"] = result.details
                output(.object(members), json: json, columns: Connections.columns)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List connections, newest first.")
        @OptionGroup var options: ResourceOptions
        @OptionGroup var page: PageOptions

        func run() async throws {
            let (request, json) = (page.request, options.json)
            try await options.withStores { stores in
                output(try await stores.connections.list(request).json(\.json), json: json, columns: Connections.columns)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one connection (credentials masked).")
        @OptionGroup var options: ResourceOptions
        @Argument(help: "connection_id") var id: String

        func run() async throws {
            let (id, json) = (id, options.json)
            try await options.withStores { stores in
                output(try await stores.connections.get(try parseID(id)).json, json: json, columns: Connections.columns)
            }
        }
    }
}

/// Prints a tested resource with its result; exits 7 when the test did not pass, so scripts can tell.
func outputTest(_ resource: JSONValue, resultKey: String, result: ConnectivityTester.Result, json: Bool, columns: [String]) throws {
    guard case .object(var members) = resource else { return }
    members[resultKey] = result.details
    if json {
        say(JSONValue.object(members).jsonText)
    } else {
        output(resource, json: false, columns: columns)
        say("\(resultKey): \(result.details.jsonText)")
    }
    if !result.passed { throw ExitCode(7) }
}

extension Integrations {
    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Test connectivity now (a GET of the endpoint with the integration's auth); exit 7 when it fails.")
        @OptionGroup var options: ResourceOptions
        @Argument(help: "integration_id") var id: String

        func run() async throws {
            let (id, json) = (id, options.json)
            try await options.withEngine { _, engine in
                let (integration, result) = try await engine.tester.testIntegration(try parseID(id))
                try outputTest(integration.json, resultKey: "test_result", result: result, json: json, columns: Integrations.columns)
            }
        }
    }
}

extension Webhooks {
    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send a signed webhook.test event now; exit 7 when it fails.")
        @OptionGroup var options: ResourceOptions
        @Argument(help: "webhook_id") var id: String

        func run() async throws {
            let (id, json) = (id, options.json)
            try await options.withEngine { _, engine in
                let (webhook, result) = try await engine.tester.testWebhook(try parseID(id))
                try outputTest(webhook.json, resultKey: "test_result", result: result, json: json, columns: Webhooks.columns)
            }
        }
    }
}

extension Connections {
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Probe the connection now and record the check; exit 7 unless healthy.")
        @OptionGroup var options: ResourceOptions
        @Argument(help: "connection_id") var id: String

        func run() async throws {
            let (id, json) = (id, options.json)
            try await options.withEngine { _, engine in
                let (connection, result) = try await engine.tester.checkConnection(try parseID(id))
                try outputTest(connection.json, resultKey: "check_result", result: result, json: json, columns: Connections.columns)
            }
        }
    }
}

extension Ops {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Execute an API call through the gateway and record it; exit 7 when it fails.")
        @OptionGroup var options: ResourceOptions
        @Option(help: "GET, POST, PUT, PATCH or DELETE") var method: String
        @Option(help: "Absolute URL, or a path relative to --integration's endpoint.") var endpoint: String
        @Option(help: "integration_id whose endpoint and auth to use.") var integration: String?
        @Option(help: "Request headers JSON, inline or @file.") var headers: String?
        @Option(help: "Request payload JSON, inline or @file.") var payload: String?
        @Option(help: "Timeout in seconds, 1-300 (default 30).") var timeout: Int?
        @Option(help: "Retries on no answer, 429 and 5xx (0-5; GET, PUT and DELETE only).") var retries = 0

        func run() async throws {
            let (method, endpoint, integration, headers, payload, timeout, retries, json) = (
                method, endpoint, integration, headers, payload, timeout, retries, options.json)
            try await options.withEngine { _, engine in
                let attempts = try await engine.executor.execute(
                    APIOperationRequest(
                        operationType: try Validate.oneOf(method, as: HubCore.HTTPMethod.self, field: "method"), endpoint: endpoint,
                        headers: try headers.map { try jsonArgument($0, field: "headers") },
                        payload: try payload.map { try jsonArgument($0, field: "payload") },
                        timeout: timeout, integrationID: try integration.map { try parseID($0, field: "integration") }),
                    retries: retries)
                let operation = attempts[attempts.count - 1]
                output(operation.json, json: json, columns: Ops.columns)
                if operation.status != .completed { throw ExitCode(7) }
            }
        }
    }
}

// MARK: - hub records

struct Records: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Synced records.", subcommands: [List.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an integration's synced records of one entity type, in change order.")
        @OptionGroup var options: ResourceOptions
        @OptionGroup var page: PageOptions
        @Option(help: "integration_id") var integration: String
        @Option(help: "Entity type, e.g. users.") var entity: String
        @Option(help: "Only records changed after this RFC 3339 time.") var modifiedAfter: String?
        @Option(help: "Only records whose last change is created, updated or deleted.") var change: String?

        func run() async throws {
            let (integration, entity, modifiedAfter, change, request, json) = (integration, entity, modifiedAfter, change, page.request, options.json)
            try await options.withStores { stores in
                let id: IntegrationID = try parseID(integration, field: "integration")
                _ = try await stores.integrations.get(id)
                var filter = SyncRecordFilter()
                if let modifiedAfter { filter.modifiedAfter = try RFC3339.parse(modifiedAfter, field: "modified_after") }
                if let change { filter.change = try Validate.oneOf(change, as: RecordChange.self, field: "change") }
                let records = try await SyncEngineStore(database: stores.database).records(id, entityType: entity, filter: filter, page: request)
                output(records.json(\.json), json: json, columns: ["external_id", "change", "updated_at", "deleted_at"])
            }
        }
    }
}
