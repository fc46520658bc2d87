import Foundation
import HubCore
import HubSQLite
import HubStore
import Testing

/// The README's library example, line for line, in a temporary directory.
@Suite("README example")
struct ReadmeExampleTests {
    @Test("the ten-line library example runs and prints 1000")
    func example() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("readme-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let databasePath = directory.appendingPathComponent("hub.sqlite").path
        let keyPath = directory.appendingPathComponent("sealing.keys").path

        let database = try await SQLiteDatabase.open(path: databasePath)
        try await Migrator(database: database).migrate()
        let hub = HubStores(database: database, sealer: try SecretSealer.loadOrCreateKeyFile(at: keyPath))
        let workday = try await hub.integrations.register(IntegrationRegistration(
            systemID: "workday", integrationType: "HR", endpointURL: "https://hr.example.com/scim/v2",
            authConfig: ["type": "bearer", "token": "…"]))
        let job = try await hub.syncJobs.start(SyncJobRequest(integrationID: workday.id, syncType: .full, entityType: "users"))
        _ = try await hub.syncJobs.recordBatch(job.id, batchNumber: 1, recordsCount: 1000, status: .completed)
        #expect(try await hub.syncJobs.finalize(job.id, status: .completed, errorsCount: 0).recordsProcessed == 1000)
        try await database.close()
    }
}
