import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HubCore
import HubEngine
import HubStore
import Testing

/// Tests against PostgreSQL clusters of their own (the other tests' cluster keeps running): the probe against a TLS
/// server.
@Suite("PostgreSQL clusters of their own", .timeLimit(.minutes(10)))
struct OwnClusterTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/postgres.sh")

    /// Runs `scripts/postgres.sh` for the cluster in `directory` on `port`.
    static func cluster(_ arguments: [String], port: Int, directory: String, ssl: Bool = false) async throws -> String {
        let output = try await HubProcess.run(
            arguments, environment: ["HUB_PG_PORT": "\(port)", "HUB_PG_DIR": directory, "HUB_PG_SSL": ssl ? "1" : "0"], program: script)
        guard output.status == 0 else { throw TestSetupError("postgres.sh \(arguments) failed: \(output.stderr)") }
        return output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
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
