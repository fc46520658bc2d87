import Foundation
import HubCore
import HubPostgres
import HubSQLite
import HubStore
import Testing

/// `hub worker` delivering webhooks, killed with SIGKILL at random points with messages pending and in flight, then
/// restarted: in the end the receiver has every message at least once and every message is recorded delivered.
@Suite("Webhook delivery crash and restart", .timeLimit(.minutes(10)))
struct WebhookCrashTests {
    @Test("dispatchers killed at random points lose no message", arguments: Backend.allCases)
    func killAndRestart(backend: Backend) async throws {
        let cli = try ResourceCommandTests.CLI.make(backend)
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        var environment = cli.environment
        let ownDatabase = backend == .postgres ? try await OwnPostgres.create("hub_hookcrash") : nil
        if let ownDatabase { environment["HUB_DATABASE_URL"] = ownDatabase.url }
        let migrated = try await HubProcess.run(["migrate"], environment: environment)
        #expect(migrated.status == 0, "\(migrated.stderr)")
        environment["HUB_OUTBOUND_ALLOWLIST"] = "127.0.0.0/8"
        environment["HUB_WEBHOOK_LEASE_SECONDS"] = "5"
        environment["HUB_WEBHOOK_CONCURRENCY"] = "4"
        let env = environment
        let ownURL = ownDatabase?.url
        let total = 400
        try await Receiver.with { receiver, base in
            // Slow enough that a kill finds messages in flight; one in ten fails and is retried.
            await receiver.script("kill", (0..<2000).map { $0 % 10 == 3 ? .status(500) : .sleep(.milliseconds(15)) })
            let added = try await HubProcess.run(
                ["webhooks", "add", "--url", base + "/kill", "--events", "record.*",
                 "--retry-config", #"{"backoff_seconds": [0, 1], "max_attempts": 20, "timeout_seconds": 2}"#, "--json"],
                environment: env)
            #expect(added.status == 0, "\(added.stderr)")
            let hook = try JSONValue.parse(added.stdout, field: "stdout").objectValue
            let secret = try #require(hook?["secret"]?.stringValue)
            let webhookID = try WebhookID(parsing: try #require(hook?["webhook_id"]?.stringValue), field: "id")
            await receiver.trust("kill", secrets: [secret])
            let (database, client) = try await SyncCrashTests.open(backend, cli, url: ownURL)
            let delivery = WebhookDeliveryStore(database: database)
            for index in 0..<total { try await delivery.emit("record.updated", payload: ["n": .int(Int64(index))]) }

            var kills = 0
            var interrupted = false
            for round in 0..<8 {
                let (worker, _) = try HubProcess.start(["worker"], environment: env)
                if round < 4 {
                    try await Task.sleep(for: .milliseconds(Int64.random(in: 700...1500)))
                    kill(worker.processIdentifier, SIGKILL)
                    kills += 1
                    await worker.exited()
                    let counts = try await delivery.counts(of: webhookID)
                    if (counts[.succeeded] ?? 0) < total { interrupted = true }
                } else {
                    for _ in 0..<300 where (try await delivery.counts(of: webhookID)[.succeeded] ?? 0) < total {
                        try await Task.sleep(for: .milliseconds(100))
                    }
                    worker.terminate()
                    await worker.exited()
                    break
                }
            }
            // The kills cut the work short (else this test would prove nothing).
            #expect(interrupted, "every message was delivered before the first kill")
            let counts = try await delivery.counts(of: webhookID)
            #expect(counts[.succeeded] == Int64(total), "after \(kills) kills: \(counts)")
            #expect(counts[.pending] == nil && counts[.failed] == nil)
            var ids: Set<String> = []
            var cursor: String?
            repeat {
                let page = try await delivery.messages(of: webhookID, page: PageRequest(limit: 500, cursor: cursor))
                ids.formUnion(page.items.map(\.id))
                cursor = page.nextCursor
            } while cursor != nil
            #expect(ids.count == total)
            let received = await receiver.succeeded("kill")
            #expect(Set(received.map(\.id)).isSuperset(of: ids), "every message reached the receiver at least once")
            #expect(received.allSatisfy { $0.verifiedWith == [secret] })
            // Every payload arrived (duplicates from killed attempts are allowed: delivery is at least once).
            let numbers = Set(received.compactMap { try? JSONValue.parse($0.body, field: "b").objectValue?["data"]?.objectValue?["n"]?.intValue })
            #expect(numbers == Set((0..<Int64(total))))
            if let sqlite = database as? SQLiteDatabase { try await sqlite.close() }
            client?.cancel()
            await client?.value
        }
        await ownDatabase?.drop()
    }
}
