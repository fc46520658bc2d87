import Foundation
import HubCore
import HubStore
import Testing

/// The CLI's resource commands as subprocesses, on both backends.
@Suite("hub resource commands", .timeLimit(.minutes(10)))
struct ResourceCommandTests {
    struct CLI {
        let environment: [String: String]
        let directory: String

        static func make(_ backend: Backend) throws -> CLI {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hub-res-\(UUID().uuidString)").path
            var environment = ["HUB_DATA_DIR": directory, "HUB_SEALING_KEYS": "1:\(SecretSealer.generateKey())"]
            if backend == .postgres {
                environment["HUB_DATABASE_URL"] = try #require(TestEnvironment.postgresURL, "HUB_TEST_DATABASE_URL must be set (scripts/test.sh)")
            }
            return CLI(environment: environment, directory: directory)
        }

        func run(_ arguments: String...) async throws -> HubProcess.Output { try await HubProcess.run(arguments, environment: environment) }

        func json(_ arguments: String...) async throws -> JSONValue {
            let output = try await HubProcess.run(arguments + ["--json"], environment: environment)
            #expect(output.status == 0, "\(arguments): \(output.stderr)")
            return try JSONValue.parse(output.stdout, field: "stdout")
        }
    }

    @Test("integrations, sync, ops, webhooks and connections against the configured database", arguments: Backend.allCases)
    func resources(backend: Backend) async throws {
        let cli = try CLI.make(backend)
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        #expect(try await cli.run("migrate").status == 0)
        let system = unique("cli")
        let integration = try await cli.json(
            "integrations", "add", "--system-id", system, "--type", "HR", "--endpoint-url", "https://hr.example.com",
            "--auth-config", #"{"type":"bearer","token":"cli-secret-token-0123456789"}"#)
        let id = try #require(integration.objectValue?["integration_id"]?.stringValue)
        #expect(integration.objectValue?["auth_config"] == ["type": "bearer", "token": "****6789"])
        let table = try await cli.run("integrations", "list", "--limit", "500")
        #expect(table.stdout.hasPrefix("INTEGRATION_ID"))
        #expect(table.stdout.contains(system))
        #expect(!table.stdout.contains("cli-secret-token"))
        #expect(try await cli.json("integrations", "show", id).objectValue?["system_id"] == .string(system))

        let invalid = try await cli.run(
            "integrations", "add", "--system-id", unique("bad"), "--type", "HR", "--endpoint-url", "https://hr.example.com",
            "--auth-config", #"{"type":"bearer"}"#)
        #expect(invalid.status == 2)
        #expect(invalid.stderr.contains("auth_config.token"))
        #expect(try await cli.run("integrations", "show", UUID().uuidString).status == 3)
        #expect(try await cli.run("integrations", "show", "not-a-uuid").status == 2)

        let job = try await cli.json("sync", "start", "--integration", id, "--type", "full", "--entity", "users", "--detach")
        #expect(job.objectValue?["batch_size"] == 1000)
        let jobID = try #require(job.objectValue?["sync_job_id"]?.stringValue)
        #expect(try await cli.run("sync", "start", "--integration", id, "--type", "full", "--entity", "users", "--detach").status == 4)
        #expect(try await cli.json("sync", "list", "--integration", id).objectValue?["items"]?.arrayValue?.count == 1)
        #expect(try await cli.json("sync", "show", jobID).objectValue?["batches"] == [])

        #expect(try await cli.json("ops", "list", "--integration", id).objectValue?["items"] == [])
        #expect(try await cli.json("ops", "list", "--from", "2999-01-01T00:00:00Z").objectValue?["items"] == [])
        #expect(try await cli.run("ops", "list", "--from", "soon").status == 2)
        #expect(try await cli.run("ops", "stats", "--from", "2026-02-30").status == 2)

        let webhookText = try await cli.run("webhooks", "add", "--url", "https://hooks.example.com/in", "--events", "sync.*,connection.down")
        #expect(webhookText.status == 0)
        #expect(webhookText.stdout.contains("signing secret (shown this once): whsec_"))
        let webhook = try await cli.json("webhooks", "add", "--url", "https://hooks.example.com/in", "--events", "*")
        let secret = try #require(webhook.objectValue?["secret"]?.stringValue)
        let webhookID = try #require(webhook.objectValue?["webhook_id"]?.stringValue)
        #expect(!(try await cli.run("webhooks", "show", webhookID).stdout.contains(secret)))
        // Delivery settings, messages, rotation, recovery, enable and disable.
        let ordered = try await cli.json(
            "webhooks", "add", "--url", "https://hooks.example.com/ordered", "--events", "integration.updated", "--ordered", "--rate-limit", "3")
        #expect(ordered.objectValue?["ordered"] == true && ordered.objectValue?["rate_limit"] == 3)
        let orderedID = try #require(ordered.objectValue?["webhook_id"]?.stringValue)
        #expect(try await cli.json("webhooks", "messages", orderedID).objectValue?["items"]?.arrayValue != nil)
        #expect(try await cli.run("webhooks", "messages", orderedID, "--status", "lost").status == 2)
        let rotated = try await cli.json("webhooks", "rotate-secret", orderedID, "--grace-seconds", "60")
        let rotatedSecret = try #require(rotated.objectValue?["secret"]?.stringValue)
        #expect(rotatedSecret.hasPrefix("whsec_") && rotated.objectValue?["previous_valid_until"] != .null)
        #expect(!(try await cli.run("webhooks", "show", orderedID, "--json").stdout.contains(rotatedSecret)))
        #expect(try await cli.json("webhooks", "recover", orderedID, "--since", "2026-01-01T00:00:00Z").objectValue?["recovered"] == 0)
        #expect(try await cli.json("webhooks", "disable", orderedID).objectValue?["status"] == "disabled")
        #expect(try await cli.json("webhooks", "enable", orderedID).objectValue?["status"] == "active")
        #expect(try await cli.run("webhooks", "add", "--url", "https://h.example.com", "--events", "user.created").status == 2)

        let connection = try await cli.json(
            "connections", "add", "--name", unique("ldap"), "--type", "TCP", "--endpoint", "ldap.example.com:389",
            "--credentials", #"{"password":"cli-conn-secret"}"#)
        #expect(connection.objectValue?["credentials"] == ["password": "****"])
        #expect(try await cli.run("connections", "list", "--limit", "500").stdout.contains("ldap.example.com:389"))
        #expect(try await cli.run("connections", "add", "--name", "x", "--type", "SMTP", "--endpoint", "x:25").status == 2)

        // A database named by URL or path needs its sealing keys given: no instance may invent its own.
        var keyless = cli.environment
        keyless["HUB_SEALING_KEYS"] = nil
        keyless["HUB_DATABASE_URL"] = backend == .postgres ? cli.environment["HUB_DATABASE_URL"] : cli.directory + "/hub.sqlite"
        let refused = try await HubProcess.run(["integrations", "list"], environment: keyless)
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("sealing_keys"))
        #expect(!FileManager.default.fileExists(atPath: cli.directory + "/sealing.keys"))
    }

    @Test("test, check and run talk to a real loopback server; the default policy refuses loopback (exit 7)")
    func outbound() async throws {
        let cli = try CLI.make(.sqlite)
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        #expect(try await cli.run("migrate").status == 0)
        try await TargetServer.with { _, base in
            let integration = try await cli.json(
                "integrations", "add", "--system-id", unique("t"), "--type", "HR", "--endpoint-url", base + "/auth",
                "--auth-config", #"{"type":"bearer","token":"good-token-0123456789"}"#)
            let id = try #require(integration.objectValue?["integration_id"]?.stringValue)
            let passed = try await cli.run("integrations", "test", id, "--outbound-allowlist", "127.0.0.0/8", "--json")
            #expect(passed.status == 0, "\(passed.stderr)")
            #expect(passed.stdout.contains(#""passed":true"#))
            let refused = try await cli.run("integrations", "test", id)
            #expect(refused.status == 7)
            #expect(refused.stdout.contains("loopback"))

            let webhook = try await cli.json("webhooks", "add", "--url", base + "/hook", "--events", "*")
            let webhookID = try #require(webhook.objectValue?["webhook_id"]?.stringValue)
            #expect(try await cli.run("webhooks", "test", webhookID, "--outbound-allowlist", "127.0.0.0/8").status == 0)

            let port = String(base.split(separator: ":").last!)
            let connection = try await cli.json(
                "connections", "add", "--name", unique("tcp"), "--type", "TCP", "--endpoint", "127.0.0.1:" + port, "--outbound-allowlist", "127.0.0.0/8")
            #expect(connection.objectValue?["status"] == "healthy")  // the initial test on create
            let connectionID = try #require(connection.objectValue?["connection_id"]?.stringValue)
            let checked = try await cli.run("connections", "check", connectionID, "--outbound-allowlist", "127.0.0.0/8", "--json")
            #expect(checked.status == 0)
            #expect(checked.stdout.contains(#""status":"healthy""#))
            let uptime = try await cli.json("connections", "uptime", connectionID)
            #expect(uptime.objectValue?["items"]?.arrayValue?.first?.objectValue?["uptime_percentage"] == 100)
            #expect(try await cli.json("connections", "history", connectionID).objectValue?["items"]?.arrayValue?.count == 2)
            let window = try await cli.json(
                "connections", "maintenance", "add", connectionID, "--start", "2026-12-01T02:00:00Z", "--end", "2026-12-01T03:00:00Z")
            let windowID = try #require(window.objectValue?["window_id"]?.stringValue)
            #expect(try await cli.json("connections", "maintenance", "list", connectionID).objectValue?["items"]?.arrayValue?.count == 1)
            #expect(try await cli.run("connections", "maintenance", "delete", connectionID, windowID).status == 0)
            #expect(try await cli.run("connections", "maintenance", "add", connectionID, "--start", "x", "--end", "y").status == 2)

            let ran = try await cli.json("ops", "run", "--method", "GET", "--endpoint", base + "/json", "--outbound-allowlist", "127.0.0.0/8")
            #expect(ran.objectValue?["status"] == "completed")
            #expect(ran.objectValue?["response_data"] == ["a": 1])
            #expect(try await cli.run("ops", "run", "--method", "GET", "--endpoint", base + "/fail", "--outbound-allowlist", "127.0.0.0/8").status == 7)
        }
    }
}
