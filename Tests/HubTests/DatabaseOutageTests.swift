import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HubCore
import HubEngine
import HubStore
import Testing

/// `hub serve` while its PostgreSQL stops and starts again, and the probe against a TLS server: on clusters of their
/// own (the other tests' cluster keeps running).
@Suite("PostgreSQL clusters of their own: outage, TLS", .timeLimit(.minutes(10)))
struct DatabaseOutageTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/postgres.sh")

    /// Runs `scripts/postgres.sh` for the cluster in `directory` on `port`.
    static func cluster(_ arguments: [String], port: Int, directory: String, ssl: Bool = false) async throws -> String {
        let output = try await HubProcess.run(
            arguments, environment: ["HUB_PG_PORT": "\(port)", "HUB_PG_DIR": directory, "HUB_PG_SSL": ssl ? "1" : "0"], program: script)
        guard output.status == 0 else { throw TestSetupError("postgres.sh \(arguments) failed: \(output.stderr)") }
        return output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A request with a generous client timeout: a hang fails the test instead of stalling it.
    static func send(_ method: String, _ url: String, token: String?, body: String? = nil) async throws -> (Int, JSONValue, [AnyHashable: Any]) {
        var request = URLRequest(url: URL(string: url)!, timeoutInterval: 30)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = Data(body.utf8)
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        return (http.statusCode, (try? JSONDecoder().decode(JSONValue.self, from: data)) ?? .null, http.allHeaderFields)
    }

    @Test("PostgreSQL stopped: every /v1 route and /readyz answer 503 problem+json, no hang; back by itself when it returns")
    func outage() async throws {
        #expect(TestEnvironment.postgresURL != nil, "needs PostgreSQL (scripts/test.sh starts it)")
        guard TestEnvironment.postgresURL != nil else { return }
        let port = 54341
        let directory = "/tmp/hub-postgres-outage-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let url = try await Self.cluster([], port: port, directory: directory)
        let environment = [
            "HUB_DATABASE_URL": url, "HUB_SEALING_KEYS": "1:\(SecretSealer.generateKey())", "HUB_OUTBOUND_ALLOWLIST": "127.0.0.0/8",
        ]
        let migrated = try await HubProcess.run(["migrate"], environment: environment)
        #expect(migrated.status == 0, "\(migrated.stderr)")
        let created = try await HubProcess.run(["keys", "create", "--name", "outage"], environment: environment)
        #expect(created.status == 0, "\(created.stderr)")
        let token = try #require(created.stdout.split(separator: "\n").last.map(String.init))
        let errors = Pipe()
        let (process, reader) = try HubProcess.start(["serve", "--port", "0"], environment: environment, standardError: errors)
        let logs = ServeCommandTests.LineReader(errors)
        defer { process.terminate() }
        let output = try await reader.wait(for: "listening on")
        let base = try #require(output.split(separator: " ").first { $0.hasPrefix("http://") }).description

        let (status, integration, _) = try await Self.send("POST", base + "/v1/integrations", token: token, body: """
            {"system_id": "outage", "integration_type": "HR", "endpoint_url": "https://hr.example.com", \
            "auth_config": {"type": "bearer", "token": "outage-token-0123456789"}}
            """)
        #expect(status == 201)
        let id = try #require(integration.objectValue?["integration_id"]?.stringValue)
        let (_, document, _) = try await Self.send("GET", base + "/openapi.json", token: nil)
        let paths = try #require(document.objectValue?["paths"]?.objectValue)

        _ = try await Self.cluster(["stop"], port: port, directory: directory)
        let logLinesBefore = logs.text.split(separator: "\n").count
        let outageStart = ContinuousClock.now
        let (ready, readyBody, _) = try await Self.send("GET", base + "/readyz", token: nil)
        #expect(ready == 503, "\(readyBody)")
        var answered = 0
        for (path, operations) in paths.sorted(by: { $0.key < $1.key }) where path.hasPrefix("/v1/") {
            for method in (operations.objectValue ?? [:]).keys.sorted() {
                let uri = path.replacingOccurrences(of: "{id}", with: id).replacingOccurrences(of: "{entity_type}", with: "users")
                    .replacingOccurrences(of: "{message_id}", with: "msg_1").replacingOccurrences(of: "{window_id}", with: UUID().uuidString)
                    .replacingOccurrences(of: "{path}", with: "users")
                let upper = method.uppercased()
                let (status, problem, headers) = try await Self.send(
                    upper, base + uri, token: token, body: upper == "GET" || upper == "DELETE" ? nil : "{}")
                #expect(status == 503, "\(upper) \(path) answered \(status): \(problem)")
                #expect((headers["Content-Type"] as? String) == "application/problem+json", "\(upper) \(path)")
                #expect(problem.objectValue?["detail"] == "the database is unavailable", "\(upper) \(path): \(problem)")
                answered += 1
            }
        }
        #expect(answered >= 40)
        let outage = ContinuousClock.now - outageStart
        #expect(process.isRunning)
        // The workers (fan-out, dispatcher, monitor, scheduler, recorder) back off: a warning per loop now and then,
        // not a flood.
        let warnings = logs.text.split(separator: "\n").count - logLinesBefore
        print("outage: \(answered) routes answered 503 in \(outage) (\(outage / answered) each on average); \(warnings) log lines")
        #expect(warnings < 400, "\(warnings) log lines during the outage")

        _ = try await Self.cluster([], port: port, directory: directory)
        try await WebhookDeliveryTests.eventually(120) { (try? await Self.send("GET", base + "/readyz", token: nil))?.0 == 200 }
        let (listed, page, _) = try await Self.send("GET", base + "/v1/integrations", token: token)
        #expect(listed == 200)
        #expect(page.objectValue?["items"]?.arrayValue?.contains { $0.objectValue?["integration_id"]?.stringValue == id } == true)
        let (again, _, _) = try await Self.send("POST", base + "/v1/connections", token: token, body: """
            {"system_name": "after-outage", "connection_type": "API", "endpoint": "https://127.0.0.1:1", "credentials": {"token": "t-0123456789"}}
            """)
        #expect(again == 201)
        process.terminate()
        await process.exited()
        #expect(process.terminationStatus == 0)
        _ = try await Self.cluster(["stop"], port: port, directory: directory)
    }

    @Test("the PostgreSQL probe: require encrypts without verifying; verify-ca and verify-full verify the certificate")
    func probeVerifiesCertificates() async throws {
        #expect(TestEnvironment.postgresURL != nil, "needs PostgreSQL (scripts/test.sh starts it)")
        guard TestEnvironment.postgresURL != nil else { return }
        let port = 54343
        let directory = "/tmp/hub-postgres-tls-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try await Self.cluster([], port: port, directory: directory, ssl: true)
        let gateway = OutboundGateway(policy: try OutboundPolicy(allowlist: ["127.0.0.0/8"]))
        let prober = HealthProber(gateway: gateway, timeout: .seconds(20))
        let stores = try await TestEnvironment.stores(.sqlite)
        let credentials: JSONValue = ["username": "hub", "password": "hub-test-password"]
        func probe(_ mode: String) async throws -> ProbeResult {
            let connection = try await stores.connections.create(ConnectionRegistration(
                systemName: unique("tls"), connectionType: .DB, endpoint: "postgres://127.0.0.1:\(port)/hub_test?sslmode=\(mode)",
                credentials: credentials))
            return await prober.probe(connection, credentials: credentials)
        }
        // The server's certificate is self-signed: encrypted sessions work, verified ones are refused.
        for mode in ["require", "prefer", "disable"] {
            let result = try await probe(mode)
            #expect(result.status == .healthy, "\(mode): \(result.reason)")
        }
        for mode in ["verify-ca", "verify-full"] {
            let result = try await probe(mode)
            #expect(result.status == .down, "\(mode): \(result.reason)")
        }
        try await gateway.shutdown()
        _ = try await Self.cluster(["stop"], port: port, directory: directory)
    }
}
