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

/// The README's quick-start scripts: shown verbatim in the README, and run for real (against a live `hub serve` and a
/// loopback HR system that checks the bearer token).
@Suite("README quick starts", .timeLimit(.minutes(10)))
struct QuickStartTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func script(_ name: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent("examples/\(name)"), encoding: .utf8)
    }

    static func bash(_ script: String, environment: [String: String]) async throws -> HubProcess.Output {
        try await HubProcess.run(
            [root.appendingPathComponent("examples/\(script)").path], environment: environment, program: URL(fileURLWithPath: "/bin/bash"))
    }

    @Test("the README shows both scripts verbatim")
    func verbatim() throws {
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        for name in ["quickstart-curl.sh", "quickstart-cli.sh"] {
            let body = try Self.script(name).split(separator: "\n", maxSplits: 1)[1]
            #expect(readme.contains(body), "README.md does not show examples/\(name) as it is")
        }
    }

    @Test("the curl quick start against a live hub serve")
    func curl() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("quick-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await TargetServer.with { _, base in
            let (server, reader) = try HubProcess.start(["serve", "--port", "0", "--data-dir", directory, "--outbound-allowlist", "127.0.0.0/8"])
            defer { server.terminate() }  // on a failure; the process is reaped when the test process ends
            let lines = try await reader.wait(for: "listening on").split(separator: "\n").map(String.init)
            let key = try #require(lines.first { $0.hasPrefix("hub_") })
            let hub = try #require(lines.first { $0.contains("listening on") }?.split(separator: " ").first { $0.hasPrefix("http://") }).description
            let result = try await Self.bash("quickstart-curl.sh", environment: [
                "HUB": hub, "KEY": key, "ENDPOINT": base + "/auth", "TOKEN": "good-token-0123456789",
            ])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains(#""passed":true"#))
            #expect(result.stdout.contains(#""status":"active""#))
            #expect(result.stdout.contains(#""entity_type":"users""#))
            #expect(result.stdout.contains(#""token":"****6789""#))
            #expect(!result.stdout.contains("good-token-0123456789"))
            server.terminate()
            await server.exited()
        }
    }

    @Test("the CLI quick start against the embedded database")
    func cli() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("quick-cli-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await SourceServer.with { source, base in
            await source.addUsers(12)
            let result = try await Self.bash("quickstart-cli.sh", environment: [
                "HUB_BIN": HubProcess.executable.path, "HUB_DATA_DIR": directory, "HUB_OUTBOUND_ALLOWLIST": "127.0.0.0/8",
                "ENDPOINT": base + "/scim/v2", "TOKEN": SourceServer.token,
            ])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains(#"test_result: {"error":null,"passed":true"#))
            #expect(result.stdout.contains("completed: 12 records (added 12, updated 0, unchanged 0, deleted 0, failed 0); source total 12"))
            #expect(result.stdout.contains("u00005"))
            #expect(result.stderr.contains("batch 1: 12 records"))
            #expect(!result.stdout.contains(SourceServer.token) && !result.stderr.contains(SourceServer.token))
        }
    }
}
