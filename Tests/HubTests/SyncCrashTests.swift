import Foundation
import HubCore
import HubPostgres
import HubSQLite
import HubStore
import Testing

/// Sync processes killed with SIGKILL at random points, then resumed by `hub worker`: the final records equal the
/// source, no batch is counted twice, the job completes. On both backends.
@Suite("Sync crash and resume", .timeLimit(.minutes(10)))
struct SyncCrashTests {
    @Test("killed at random points and resumed by workers, the job completes exactly", arguments: Backend.allCases)
    func killAndResume(backend: Backend) async throws {
        let cli = try ResourceCommandTests.CLI.make(backend)
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        var environment = cli.environment
        // Workers take any running job of their database: on PostgreSQL this test has a database of its own, so that
        // they never touch the jobs of tests running beside it.
        let ownDatabase = backend == .postgres ? try await OwnPostgres.create("hub_crash") : nil
        if let ownDatabase {
            environment["HUB_DATABASE_URL"] = ownDatabase.url
            let migrated = try await HubProcess.run(["migrate"], environment: environment)
            #expect(migrated.status == 0, "\(migrated.stderr)")
        }
        environment["HUB_OUTBOUND_ALLOWLIST"] = "127.0.0.0/8"
        environment["HUB_SYNC_LEASE_SECONDS"] = "1"
        let env = environment
        let ownURL = ownDatabase?.url
        try await SourceServer.with { source, base in
            await source.addUsers(1500)
            await source.setPageDelay(.milliseconds(15))
            let mapping = #"{"connector": {"type": "scim"}, "retry": {"max_attempts": 3, "base_delay_ms": 10, "max_delay_ms": 100}}"#
            let added = try await HubProcess.run(
                ["integrations", "add", "--system-id", unique("crash"), "--type", "HR", "--endpoint-url", base + "/scim/v2",
                 "--auth-config", #"{"type": "bearer", "token": "\#(SourceServer.token)"}"#, "--mapping-config", mapping, "--json"],
                environment: env)
            #expect(added.status == 0, "\(added.stderr)")
            let integration = try #require(try JSONValue.parse(added.stdout, field: "stdout").objectValue?["integration_id"]?.stringValue)

            // The first process starts the job and runs it until it is killed.
            let (first, _) = try HubProcess.start(
                ["sync", "start", "--integration", integration, "--type", "full", "--entity", "users", "--batch-size", "25"], environment: env)
            let (database, client) = try await Self.open(backend, cli, url: ownURL)
            let store = SyncJobStore(database: database)
            let integrationID = try IntegrationID(parsing: integration, field: "integration")
            // Killed at a random point once its first batches are in.
            var started: SyncJob?
            for _ in 0..<300 where started.map({ $0.recordsProcessed == 0 }) ?? true {
                started = try? await store.list(SyncJobFilter(integrationID: integrationID), PageRequest()).items.first
                try await Task.sleep(for: .milliseconds(20))
            }
            try await Task.sleep(for: .milliseconds(Int64.random(in: 0...200)))
            kill(first.processIdentifier, SIGKILL)
            await first.exited()
            let job = try #require(try await store.list(SyncJobFilter(integrationID: integrationID), PageRequest()).items.first)
            // The kill interrupted the job (else this test would prove nothing).
            #expect(job.status == .running && job.recordsProcessed < 1500, "\(job.status) \(job.recordsProcessed)")
            // Workers are killed at random points too, until one of them finishes the job.
            var kills = 1
            var current = try await store.get(job.id)
            for round in 0..<12 where current.status == .running {
                let (worker, _) = try HubProcess.start(["worker"], environment: env)
                if round < 4 {
                    try await Task.sleep(for: .milliseconds(Int64.random(in: 1200...2200)))
                    kill(worker.processIdentifier, SIGKILL)
                    kills += 1
                } else {
                    for _ in 0..<200 where try await store.get(job.id).status == .running { try await Task.sleep(for: .milliseconds(100)) }
                    worker.terminate()
                }
                await worker.exited()
                current = try await store.get(job.id)
            }
            #expect(current.status == .completed, "after \(kills) kills: \(current.summary)")
            #expect(current.recordsProcessed == 1500)
            #expect(current.summary.added == 1500 && current.summary.failed == 0)
            #expect(!current.summary.reconciliationMismatch)
            let batches = try await store.batches(of: job.id)
            #expect(batches.map(\.batchNumber) == Array(1...batches.count))  // none lost, none twice
            #expect(batches.map(\.recordsCount).reduce(0, +) == 1500)
            let records = try await SyncEngineStore(database: database).records(
                try IntegrationID(parsing: integration, field: "integration"), entityType: "users", filter: SyncRecordFilter(),
                page: PageRequest(limit: 500))
            var all = records.items
            var cursor = records.nextCursor
            while let next = cursor {
                let page = try await SyncEngineStore(database: database).records(
                    try IntegrationID(parsing: integration, field: "integration"), entityType: "users", filter: SyncRecordFilter(),
                    page: PageRequest(limit: 500, cursor: next))
                all += page.items
                cursor = page.nextCursor
            }
            let users = await source.users
            #expect(all.count == users.count)
            #expect(Dictionary(uniqueKeysWithValues: all.map { ($0.externalID, $0.data) }) == users.mapValues(SourceServer.scim))
            if let sqlite = database as? SQLiteDatabase { try await sqlite.close() }
            client?.cancel()
            await client?.value
        }
        await ownDatabase?.drop()
    }

    /// The test's database, opened in this process beside the subprocesses (with the PostgreSQL client's run task).
    static func open(_ backend: Backend, _ cli: ResourceCommandTests.CLI, url: String?) async throws -> (any SQLDatabase, Task<Void, Never>?) {
        switch backend {
        case .sqlite: return (try await SQLiteDatabase.open(path: (cli.directory as NSString).appendingPathComponent("hub.sqlite")), nil)
        case .postgres:
            let database = try PostgresDatabase(url: try #require(url))
            return (database, Task { await database.run() })
        }
    }
}
