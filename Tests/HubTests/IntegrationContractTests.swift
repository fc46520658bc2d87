import Foundation
import HubCore
import HubStore
import Testing

/// DAO-MDE-03-08-01 contract, on both backends.
@Suite("External System Integration DAO", .timeLimit(.minutes(10)))
struct IntegrationContractTests {
    static func registration(
        system: String = unique("workday"), auth: JSONValue = ["type": "bearer", "token": "tok-1234567890-secret-abcd"]
    ) -> IntegrationRegistration {
        IntegrationRegistration(
            systemID: system, integrationType: "HR", endpointURL: "https://hr.example.com/scim/v2", authConfig: auth,
            mappingConfig: ["external_id": "id"])
    }

    @Test("step 1 registers with the design's initial returns", arguments: Backend.allCases)
    func register(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let registration = Self.registration()
        let integration = try await stores.integrations.register(registration)
        #expect(integration.status == .active)
        #expect(integration.configVersion == "v1.0")
        #expect(integration.errorCount == 0)
        #expect(integration.lastSync == nil)
        #expect(integration.systemID == registration.systemID)
        #expect(integration.mappingConfig == ["external_id": "id"])
        #expect(integration.maskedAuthConfig == ["type": "bearer", "token": "****abcd"])
        #expect(try await stores.integrations.get(integration.id) == integration)
        // Absent JSON reads back as absent (nil), not as a JSON null.
        var bare = Self.registration()
        bare.mappingConfig = nil
        #expect(try await stores.integrations.register(bare).mappingConfig == nil)
        #expect(try await stores.webhooks.register(WebhookRegistration(webhookURL: "https://h.example.com", eventTypes: ["*"])).webhook.retryConfig == nil)
    }

    @Test("auth_config is sealed at rest and opens only for the engines", arguments: Backend.allCases)
    func authSealed(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let auth: JSONValue = [
            "type": "oauth2_client_credentials", "token_url": "https://login.example.com/token", "client_id": "hub",
            "client_secret": "very-secret-client-secret-value",
        ]
        let integration = try await stores.integrations.register(Self.registration(auth: auth))
        let raw = try await stores.database.queryOne(
            "SELECT auth_config FROM external_integrations WHERE integration_id = $1", [.uuid(integration.id.uuid)])!
            .jsonText("auth_config")
        #expect(!raw.contains("very-secret"))
        #expect(!raw.contains("login.example.com"))
        #expect(raw.contains("sealed:v1:"))
        #expect(try await stores.integrations.authConfig(for: integration.id) == AuthConfig(json: auth))
        #expect(integration.maskedAuthConfig.objectValue?["client_secret"] == "****")
    }

    @Test("step 1 validation names the field and writes nothing", arguments: Backend.allCases)
    func validation(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let system = unique("bad")
        func attempt(_ field: String, _ change: (inout IntegrationRegistration) -> Void) async {
            var registration = Self.registration(system: system)
            change(&registration)
            await expectValidation(field) { _ = try await stores.integrations.register(registration) }
        }
        await attempt("system_id") { $0.systemID = "" }
        await attempt("system_id") { $0.systemID = "has space" }
        await attempt("system_id") { $0.systemID = String(repeating: "a", count: 65) }
        await attempt("integration_type") { $0.integrationType = "hr" }
        await attempt("endpoint_url") { $0.endpointURL = "ftp://hr.example.com" }
        await attempt("endpoint_url") { $0.endpointURL = "not a url" }
        await attempt("endpoint_url") { $0.endpointURL = "https://user:pw@hr.example.com" }
        await attempt("auth_config") { $0.authConfig = "bearer" }
        await attempt("auth_config.type") { $0.authConfig = ["type": "kerberos"] }
        await attempt("auth_config.token") { $0.authConfig = ["type": "bearer"] }
        await attempt("auth_config.token") { $0.authConfig = ["type": "bearer", "token": 42] }
        await attempt("auth_config.extra") { $0.authConfig = ["type": "none", "extra": true] }
        await attempt("auth_config.password") { $0.authConfig = ["type": "basic", "username": "u"] }
        await attempt("auth_config.api_key") { $0.authConfig = ["type": "api_key", "api_key": ""] }
        await attempt("auth_config.token_url") {
            $0.authConfig = [
                "type": "oauth2_client_credentials", "token_url": "nope", "client_id": "a", "client_secret": "b",
            ]
        }
        await attempt("mapping_config") { $0.mappingConfig = ["a", "b"] }
        await attempt("mapping_config.name") { $0.mappingConfig = ["name": "nul\u{0}inside"] }
        await attempt("auth_config.token") { $0.authConfig = ["type": "bearer", "token": "to\u{0}ken"] }
        #expect(try await count(stores.database, "external_integrations", where: "system_id = $1", .text(system)) == 0)
    }

    @Test("each auth type is accepted", arguments: Backend.allCases)
    func authTypes(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let configs: [JSONValue] = [
            ["type": "none"],
            ["type": "api_key", "api_key": "k-123", "header": "X-Token"],
            ["type": "basic", "username": "svc", "password": "pw"],
            ["type": "bearer", "token": "t"],
            ["type": "oauth2_client_credentials", "token_url": "https://a.example/t", "client_id": "c", "client_secret": "s", "scope": "read"],
        ]
        for config in configs {
            let integration = try await stores.integrations.register(Self.registration(auth: config))
            #expect(try await stores.integrations.authConfig(for: integration.id).json == config)
        }
    }

    @Test("a second registration of the same system and type conflicts", arguments: Backend.allCases)
    func duplicate(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let registration = Self.registration()
        _ = try await stores.integrations.register(registration)
        await expectHubError({ $0 == .conflict(field: "system_id", reason: "an integration of this type is already registered for this system_id") }) {
            _ = try await stores.integrations.register(registration)
        }
        var other = registration
        other.integrationType = "ERP"
        #expect(try await stores.integrations.register(other).integrationType == "ERP")
    }

    @Test("step 2 records the connectivity result", arguments: Backend.allCases)
    func connectivity(backend: Backend) async throws {
        let clock = ManualClock()
        let stores = try await TestEnvironment.stores(backend, clock: clock.wallClock)
        let integration = try await stores.integrations.register(Self.registration())
        clock.advance(by: 60)
        let failed = try await stores.integrations.recordConnectivityTest(integration.id, reachable: false)
        #expect(failed.status == .error)
        #expect(failed.lastTestedAt == clock.wallClock.now())
        #expect(failed.configVersion == "v1.0")
        #expect(failed.errorCount == 0)
        #expect(try await stores.integrations.recordConnectivityTest(integration.id, reachable: true).status == .active)
        await expectHubError({ $0.isNotFound }) {
            _ = try await stores.integrations.recordConnectivityTest(.generate(), reachable: true)
        }
    }

    @Test("config updates patch fields and bump config_version", arguments: Backend.allCases)
    func updateConfig(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let integration = try await stores.integrations.register(Self.registration())
        let first = try await stores.integrations.updateConfig(
            integration.id, IntegrationConfigUpdate(endpointURL: "https://hr.example.com/api/v3"))
        #expect(first.configVersion == "v1.1")
        #expect(first.endpointURL == "https://hr.example.com/api/v3")
        // Credentials stay with their origin: moving the endpoint elsewhere needs them given again.
        await expectValidation("auth_config") {
            _ = try await stores.integrations.updateConfig(integration.id, IntegrationConfigUpdate(endpointURL: "https://evil.example.net/"))
        }
        #expect(try await stores.integrations.get(integration.id).endpointURL == "https://hr.example.com/api/v3")
        #expect(first.mappingConfig == integration.mappingConfig)
        #expect(first.maskedAuthConfig == integration.maskedAuthConfig)
        let second = try await stores.integrations.updateConfig(
            integration.id, IntegrationConfigUpdate(authConfig: ["type": "basic", "username": "u", "password": "p2"]))
        #expect(second.configVersion == "v1.2")
        #expect(try await stores.integrations.authConfig(for: integration.id) == .basic(username: "u", password: "p2"))
        await expectValidation("endpoint_url") {
            _ = try await stores.integrations.updateConfig(integration.id, IntegrationConfigUpdate(endpointURL: "x"))
        }
        await expectValidation("body") {
            _ = try await stores.integrations.updateConfig(integration.id, IntegrationConfigUpdate())
        }
        #expect(try await stores.integrations.get(integration.id).configVersion == "v1.2")
        await expectHubError({ $0.isNotFound }) {
            _ = try await stores.integrations.updateConfig(.generate(), IntegrationConfigUpdate(status: .disabled))
        }
    }

    @Test("delete removes the integration unless a sync is running", arguments: Backend.allCases)
    func delete(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let integration = try await stores.integrations.register(Self.registration())
        let job = try await stores.syncJobs.start(SyncJobRequest(integrationID: integration.id, syncType: .full, entityType: "users"))
        await expectHubError({ $0.isConflict }) { try await stores.integrations.delete(integration.id) }
        _ = try await stores.syncJobs.finalize(job.id, status: .completed, errorsCount: 0)
        try await stores.integrations.delete(integration.id)
        await expectHubError({ $0.isNotFound }) { _ = try await stores.integrations.get(integration.id) }
        await expectHubError({ $0.isNotFound }) { _ = try await stores.syncJobs.get(job.id) }
        await expectHubError({ $0.isNotFound }) { try await stores.integrations.delete(integration.id) }
    }

    @Test("lists page with a stable cursor", arguments: Backend.allCases)
    func paging(backend: Backend) async throws {
        let clock = ManualClock(Date(timeIntervalSince1970: 1_900_000_000 + Double.random(in: 0..<1_000_000)))
        let stores = try await TestEnvironment.stores(backend, clock: clock.wallClock)
        var created: [IntegrationID] = []
        for _ in 0..<7 {
            created.append(try await stores.integrations.register(Self.registration()).id)
            clock.advance(by: 0.001)
        }
        var seen: [IntegrationID] = []
        var cursor: String?
        repeat {
            let page = try await stores.integrations.list(PageRequest(limit: 3, cursor: cursor))
            #expect(page.items.count <= 3)
            seen += page.items.map(\.id)
            cursor = page.nextCursor
        } while cursor != nil
        #expect(Set(seen).count == seen.count)
        let ours = seen.filter(created.contains)
        #expect(ours == created.reversed())
        await expectValidation("cursor") { _ = try await stores.integrations.list(PageRequest(cursor: "garbage!")) }
        await expectValidation("limit") { _ = try await stores.integrations.list(PageRequest(limit: 0)) }
    }

    @Test("a delete racing a sync start never removes a job that was started", arguments: Backend.allCases)
    func deleteRacesStart(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        for _ in 0..<15 {
            let integration = try await stores.integrations.register(Self.registration())
            async let started: SyncJob? = try? await stores.syncJobs.start(
                SyncJobRequest(integrationID: integration.id, syncType: .full, entityType: "users"))
            async let deleted: Bool = (try? await stores.integrations.delete(integration.id)) != nil
            let (job, didDelete) = await (started, deleted)
            #expect(!(job != nil && didDelete), "both the start and the delete succeeded")
            if let job { #expect(try await stores.syncJobs.get(job.id).status == .running) }
        }
    }
}
