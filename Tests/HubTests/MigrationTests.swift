import Foundation
import Logging
import HubCore
import HubPostgres
@testable import HubSQLite
@testable import HubStore
import Testing

@Suite("Migrations", .timeLimit(.minutes(10)))
struct MigrationTests {
    @Test("a new database is reported as pending, then migrated once, then up to date")
    func sqliteLifecycle() async throws {
        let database = try await SQLiteDatabase.open(path: nil)
        let migrator = Migrator(database: database)
        await expectHubError({ if case .schemaMismatch = $0 { true } else { false } }) { try await migrator.check() }
        #expect(try await migrator.migrate().map(\.version) == Migrator.all.map(\.version))
        #expect(try await migrator.migrate().isEmpty)
        try await migrator.check()
        #expect(try await migrator.appliedVersions() == Migrator.all.map(\.version))
    }

    @Test("migration versions are numbered 1, 2, … in order with unique names")
    func numbering() {
        #expect(Migrator.all.map(\.version) == Array(1...Migrator.all.count))
        #expect(Set(Migrator.all.map(\.name)).count == Migrator.all.count)
    }

    @Test("a database migrated by a newer build is refused", arguments: Backend.allCases)
    func unknownVersion(backend: Backend) async throws {
        // SQLite only: adding a fake version to the shared PostgreSQL database would break the other tests.
        guard backend == .sqlite else { return }
        let database = try await SQLiteDatabase.open(path: nil)
        try await Migrator(database: database).migrate()
        _ = try await database.query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)", [])
        await expectHubError({ if case .schemaMismatch(let reason) = $0 { reason.contains("999") } else { false } }) {
            try await Migrator(database: database).check()
        }
    }

    @Test("webhook claims on PostgreSQL: half-free message pages and a claim-order index (migration 6), no statistics of churning message columns (7); index scans and no JIT only inside a claim's transaction")
    func webhookClaimSettings() async throws {
        let database = try await TestEnvironment.database(.postgres)
        let row = try #require(
            try await database.queryOne(
                """
                SELECT (SELECT array_to_string(reloptions, ',') FROM pg_class WHERE oid = 'webhook_messages'::regclass) AS options, \
                to_regclass('webhooks_claim_order') IS NOT NULL AS claim_order
                """, []))
        #expect(try row.string("options") == "fillfactor=50")
        #expect(try row.bool("claim_order"))
        // Migration 7: the message columns every claim and outcome rewrites keep no statistics.
        let unsampled = try await database.query(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'webhook_messages'::regclass AND attnum > 0 AND attstattarget = 0 ORDER BY attname", []
        ).map { try $0.string("attname") }
        #expect(unsampled == [
            "attempts", "delivered_at", "last_error", "last_status_code", "lease_expires_at", "lease_owner", "next_attempt_at", "status",
        ])
        let settings = "current_setting('enable_seqscan') || ',' || current_setting('enable_bitmapscan') || ',' || current_setting('jit') AS s"
        let inside = try await database.transaction { executor in
            try await WebhookDeliveryStore.indexScansOnly(executor)
            return try await executor.queryOne("SELECT \(settings)", [])!.string("s")
        }
        #expect(inside == "off,off,off")
        // Local to that transaction: no pooled session keeps them (every connection read at once).
        try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    try await database.transaction { executor in
                        _ = try await executor.query("SELECT pg_sleep(0.05)", [])
                        return try await executor.queryOne("SELECT \(settings)", [])!.string("s")
                    }
                }
            }
            for try await outside in group { #expect(outside.hasPrefix("on,on,"), "\(outside)") }
        }
    }

    @Test("records' entity types and external ids compare byte by byte on PostgreSQL (migration 8), as SQLite compares them")
    func bytewiseRecordKeys() async throws {
        let database = try await TestEnvironment.database(.postgres)
        let collations = try await database.query(
            """
            SELECT a.attname, c.collname FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation \
            WHERE a.attrelid = 'sync_records'::regclass AND a.attname IN ('entity_type', 'external_id') ORDER BY a.attname
            """, []
        ).map { "\(try $0.string("attname"))=\(try $0.string("collname"))" }
        #expect(collations == ["entity_type=C", "external_id=C"])
    }

    @Test("a sync batch whose preparation failed on a connection (its tables not there yet) commits there once they are: PostgresNIO keeps a failed preparation, the database runs the text instead")
    func failedPreparationIsNotKept() async throws {
        // One connection: every statement below runs on it.
        try await Self.withSchema("prep", connections: 1) { database in
            await #expect(throws: SQLError.self) { _ = try await database.queryPrepared(SyncEngineStore.PostgresCleanBatch.self, []) }
            try await Migrator(database: database).migrate()
            let stores = HubStores(database: database, sealer: try SecretSealer(keyRing: "1:\(SecretSealer.generateKey())"))
            let integration = try await stores.integrations.register(IntegrationRegistration(
                systemID: "prep", integrationType: "HR", endpointURL: "https://hr.example.com/scim/v2",
                authConfig: ["type": "bearer", "token": "prep-token-0123456789"],
                mappingConfig: ["connector": ["type": "scim"], "entities": ["users": ["external_id": "id"]]]))
            let job = try await stores.syncJobs.start(SyncJobRequest(integrationID: integration.id, syncType: .full, entityType: "users"))
            let engine = SyncEngineStore(database: database)
            _ = try #require(try await engine.claim(owner: "prep", lease: .seconds(30), jobID: job.id))
            let mapped = try RecordMapping(["external_id": "id"], field: "mapping").apply(["id": "u1", "name": "One"])
            let result = try await engine.commitBatch(
                SyncEngineStore.Batch(
                    jobID: job.id, owner: "prep", lease: .seconds(30), batchNumber: 1, records: [SyncEngineStore.PreparedRecord(mapped)],
                    failures: [], checkpoint: [:], highWaterMark: nil, sourceTotal: nil, pagesDone: true),
                integrationID: integration.id, entityType: "users")
            #expect(result.added == 1)
        }
    }

    /// Runs `body` with a PostgreSQL database of a new schema on the test server (at most `connections` connections),
    /// then drops the schema.
    static func withSchema(_ prefix: String, connections: Int, _ body: @Sendable (PostgresDatabase) async throws -> Void) async throws {
        let url = try #require(TestEnvironment.postgresURL, "HUB_TEST_DATABASE_URL must be set (scripts/test.sh)")
        let shared = try await TestEnvironment.database(.postgres)
        let schema = "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
        _ = try await shared.query("CREATE SCHEMA \(schema)", [])
        var configuration = try PostgresDatabase.configuration(url: url)
        configuration.options.additionalStartupParameters.append(("search_path", schema))
        configuration.options.maximumConnections = connections
        let database = PostgresDatabase(configuration: configuration)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await database.run() }
            defer { group.cancelAll() }
            try await body(database)
        }
        _ = try await shared.query("DROP SCHEMA \(schema) CASCADE", [])
    }

    @Test("concurrent migrators on one PostgreSQL database apply each migration once")
    func concurrentPostgres() async throws {
        try await Self.withSchema("mig", connections: 4) { database in
            let applied = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<4 {
                    group.addTask { try await Migrator(database: database).migrate().count }
                }
                return try await group.reduce(0, +)
            }
            #expect(applied == Migrator.all.count)
            try await Migrator(database: database).check()
        }
    }

    @Test("an SQLite file is migrated by one process and checked by another open")
    func sqliteFile() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hub-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let first = try await SQLiteDatabase.open(path: path)
        try await Migrator(database: first).migrate()
        try await first.close()
        let second = try await SQLiteDatabase.open(path: path)
        try await Migrator(database: second).check()
        #expect(try await second.queryOne("PRAGMA journal_mode", [])?.string("journal_mode") == "wal")
        #expect(try await second.queryOne("PRAGMA foreign_keys", [])?.int("foreign_keys") == 1)
        try await second.close()
    }
}

@Suite("Driver errors", .timeLimit(.minutes(10)))
struct DriverErrorTests {
    @Test("an unreachable PostgreSQL is reported as unavailable, with no driver text")
    func unreachable() async throws {
        var quiet = Logger(label: "test.unreachable")
        quiet.logLevel = .critical
        let database = try PostgresDatabase(url: "postgres://hub:secret-pw@127.0.0.1:1/nowhere?sslmode=disable", logger: quiet)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await database.run() }
            do {
                try await database.ping(timeout: .seconds(1))
                Issue.record("a closed port answered")
            } catch {
                #expect(error as? SQLError == .unavailable)
                #expect(!"\(error)".contains("secret-pw"))
            }
            group.cancelAll()
        }
    }

    @Test("a bad URL names the field")
    func badURL() async throws {
        await expectValidation("database_url") { _ = try PostgresDatabase.configuration(url: "mysql://x") }
        await expectValidation("database_url") { _ = try PostgresDatabase.configuration(url: "postgres://127.0.0.1/db") }
        await expectValidation("database_url") { _ = try PostgresDatabase.configuration(url: "postgres://u@h/db?sslmode=maybe") }
        let configuration = try PostgresDatabase.configuration(url: "postgresql://a%40b:p%3Aw@db.example.com:6543/hr?sslmode=disable")
        #expect(configuration.username == "a@b")
        #expect(configuration.password == "p:w")
        #expect(try PostgresDatabase.configuration(url: "postgres://u:100%2541@h/db").password == "100%41")
        #expect(configuration.port == 6543)
        #expect(configuration.database == "hr")
    }

    @Test("SQLite turns $n placeholders into numbered parameters and binds only what a statement names")
    func placeholders() async throws {
        #expect(SQLiteDatabase.rewritePlaceholders("SELECT $1, $12, '$' || $2") == ("SELECT ?1, ?12, '$' || ?2", 12))
        let database = try await SQLiteDatabase.open(path: nil)
        let row = try await database.queryOne("SELECT $2 AS b, $1 AS a", [.int(1), .text("two"), .int(3)])
        #expect(try row?.string("b") == "two")
        #expect(try row?.int("a") == 1)
    }

    @Test("a failed transaction writes nothing", arguments: Backend.allCases)
    func rollback(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let name = unique("rollback")
        do {
            _ = try await stores.database.transaction { executor in
                _ = try await executor.query(
                    "INSERT INTO system_connections (connection_id, system_name, connection_type, endpoint, credentials, created_at, updated_at) VALUES ($1, $2, 'TCP', 'h:1', $3, $4, $4)",
                    [.uuid(UUID()), .text(name), .json("{}"), .timestamp(Date())])
                throw HubError.conflict(field: nil, reason: "abort")
            }
            Issue.record("the transaction did not throw")
        } catch let error as HubError {
            #expect(error == .conflict(field: nil, reason: "abort"))
        }
        #expect(try await count(stores.database, "system_connections", where: "system_name = $1", .text(name)) == 0)
    }
}

@Suite("SQLite lifecycle")
struct SQLiteLifecycleTests {
    @Test("closing a database and then releasing it does not close it twice")
    func closeThenRelease() async throws {
        for _ in 0..<20 {
            let database = try await SQLiteDatabase.open(path: nil)
            _ = try await database.query("SELECT 1 AS one", [])
            try await database.close()
            try await database.close()
        }
        // Released databases close on SQLiteNIO's thread pool; give it a moment, then prove the process is alive.
        try await Task.sleep(for: .milliseconds(100))
        let database = try await SQLiteDatabase.open(path: nil)
        #expect(try await database.queryOne("SELECT 2 AS two", [])?.int("two") == 2)
    }
}
