import Foundation
import HubCore
import HubPostgres
import Logging
import HubServer
import HubStore
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("HTTP API", .timeLimit(.minutes(10)))
struct ServerTests {
    static let bearer: JSONValue = ["type": "bearer", "token": "integration-secret-token-0123456789"]

    static func document(_ client: APIClient) async throws -> JSONValue {
        try await client.send(.get, "/openapi.json", token: .some(.some("none"))).json
    }

    @Test("integrations: create, get, list, update, delete, each response as documented", arguments: Backend.allCases)
    func integrations(backend: Backend) async throws {
        let harness = try await APIHarness.make(backend)
        try await harness.test { client in
            let document = try await Self.document(client)
            let system = unique("workday")
            let created = try await client.checked(.post, "/v1/integrations", json: [
                "system_id": .string(system), "integration_type": "HR", "endpoint_url": "https://hr.example.com/scim/v2",
                "auth_config": Self.bearer, "mapping_config": ["external_id": "id"],
            ], document: document)
            #expect(created.status == .created)
            #expect(created["config_version"] == "v1.0")
            #expect(created["auth_config"] == ["type": "bearer", "token": "****6789"])
            let id = try #require(created["integration_id"]?.stringValue)
            let fetched = try await client.checked(.get, "/v1/integrations/\(id)", template: "/v1/integrations/{id}", document: document)
            #expect(fetched.json == created.json)
            let listed = try await client.checked(.get, "/v1/integrations?limit=500", document: document)
            #expect(listed["items"]?.arrayValue?.contains { $0.objectValue?["integration_id"] == .string(id) } == true)
            let updated = try await client.checked(
                .patch, "/v1/integrations/\(id)", template: "/v1/integrations/{id}", json: ["endpoint_url": "https://hr.example.com/scim/v3"],
                document: document)
            #expect(updated["config_version"] == "v1.1")
            #expect(updated["endpoint_url"] == "https://hr.example.com/scim/v3")
            let moved = try await client.checked(
                .patch, "/v1/integrations/\(id)", template: "/v1/integrations/{id}", json: ["endpoint_url": "https://elsewhere.example.net"],
                document: document)
            #expect(moved["field"] == "auth_config")
            let duplicate = try await client.checked(.post, "/v1/integrations", json: [
                "system_id": .string(system), "integration_type": "HR", "endpoint_url": "https://hr.example.com", "auth_config": ["type": "none"],
            ], document: document)
            #expect(duplicate.status == .conflict)
            let deleted = try await client.checked(.delete, "/v1/integrations/\(id)", template: "/v1/integrations/{id}", document: document)
            #expect(deleted.status == .noContent)
            let gone = try await client.checked(.get, "/v1/integrations/\(id)", template: "/v1/integrations/{id}", document: document)
            #expect(gone.status == .notFound)
            #expect(gone.headers[.contentType] == "application/problem+json")
            let notAnID = try await client.checked(.get, "/v1/integrations/42", template: "/v1/integrations/{id}", document: document)
            #expect(notAnID.status == .notFound)
        }
    }

    @Test("errors: 400, 401, 413, 415, 422 with the field; a rejected request writes nothing", arguments: Backend.allCases)
    func errors(backend: Backend) async throws {
        var configured = try await APIHarness.make(backend)
        configured.configuration.bodyLimit = 2048
        let harness = configured
        try await harness.test { client in
            let document = try await Self.document(client)
            let system = unique("rejected")
            let valid: JSONValue = [
                "system_id": .string(system), "integration_type": "HR", "endpoint_url": "https://hr.example.com", "auth_config": ["type": "none"],
            ]
            let noKey = try await client.checked(.get, "/v1/integrations", token: .none, document: document)
            #expect(noKey.status == .unauthorized)
            #expect(noKey.headers[.wwwAuthenticate] == "Bearer")
            let badKey = try await client.checked(.get, "/v1/integrations", token: .some(.some("hub_000000000000_" + String(repeating: "x", count: 43))), document: document)
            #expect(badKey.status == .unauthorized)
            let malformed = try await client.checked(.post, "/v1/integrations", raw: "{\"system_id\": ", document: document)
            #expect(malformed.status == .badRequest)
            let wrongType = try await client.checked(.post, "/v1/integrations", raw: valid.jsonText, contentType: "text/plain", document: document)
            #expect(wrongType.status == .unsupportedMediaType)
            let tooLarge = try await client.checked(
                .post, "/v1/integrations", json: ["system_id": .string(String(repeating: "a", count: 4096))], document: document)
            #expect(tooLarge.status == .contentTooLarge)
            var invalid = valid.objectValue!
            invalid["auth_config"] = ["type": "bearer"]
            let unprocessable = try await client.checked(.post, "/v1/integrations", json: .object(invalid), document: document)
            #expect(unprocessable.status == .unprocessableContent)
            #expect(unprocessable["field"] == "auth_config.token")
            #expect(unprocessable["request_id"]?.stringValue?.isEmpty == false)
            invalid = valid.objectValue!
            invalid["unexpected"] = true
            #expect(try await client.checked(.post, "/v1/integrations", json: .object(invalid), document: document)["field"] == "unexpected")
            let notObject = try await client.checked(.post, "/v1/integrations", raw: "[1]", document: document)
            #expect(notObject.status == .unprocessableContent)
            #expect(try await count(harness.stores.database, "external_integrations", where: "system_id = $1", .text(system)) == 0)
            // A NUL in a query filter is refused where it enters: a 422 naming it, never a 500.
            let nul = try await client.send(.get, "/v1/sync-jobs?entity_type=%00")
            #expect(nul.status == .unprocessableContent && nul["field"] == "entity_type")
            let badLimit = try await client.checked(.get, "/v1/integrations?limit=0", document: document)
            #expect(badLimit["field"] == "limit")
        }
    }

    @Test("sync jobs: start, list with filters, get with batches, cancel", arguments: Backend.allCases)
    func syncJobs(backend: Backend) async throws {
        let harness = try await APIHarness.make(backend)
        let integration = try await harness.stores.integrations.register(IntegrationContractTests.registration())
        try await harness.test { client in
            let document = try await Self.document(client)
            let started = try await client.checked(.post, "/v1/sync-jobs", json: [
                "integration_id": .string(integration.id.description), "sync_type": "full", "entity_type": "users",
            ], document: document)
            #expect(started.status == .created)
            #expect(started["batch_size"] == 1000)
            let id = try #require(started["sync_job_id"]?.stringValue)
            _ = try await harness.stores.syncJobs.recordBatch(SyncJobID(UUID(uuidString: id)!), batchNumber: 1, recordsCount: 10, status: .completed)
            let again = try await client.checked(.post, "/v1/sync-jobs", json: [
                "integration_id": .string(integration.id.description), "sync_type": "full", "entity_type": "users",
            ], document: document)
            #expect(again.status == .conflict)
            let unknown = try await client.checked(.post, "/v1/sync-jobs", json: [
                "integration_id": .string(UUID().uuidString), "sync_type": "sideways", "entity_type": "users",
            ], document: document)
            #expect(unknown["field"] == "sync_type")
            let detail = try await client.checked(.get, "/v1/sync-jobs/\(id)", template: "/v1/sync-jobs/{id}", document: document)
            #expect(detail["records_processed"] == 10)
            #expect(detail["batches"]?.arrayValue?.count == 1)
            let filtered = try await client.checked(
                .get, "/v1/sync-jobs?integration_id=\(integration.id)&status=running&entity_type=users", document: document)
            #expect(filtered["items"]?.arrayValue?.count == 1)
            let cancelled = try await client.checked(.post, "/v1/sync-jobs/\(id)/cancel", template: "/v1/sync-jobs/{id}/cancel", document: document)
            #expect(cancelled["status"] == "cancelled")
            #expect(cancelled["completion_time"] != .null)
            let twice = try await client.checked(.post, "/v1/sync-jobs/\(id)/cancel", template: "/v1/sync-jobs/{id}/cancel", document: document)
            #expect(twice.status == .conflict)
            let badStatus = try await client.checked(.get, "/v1/sync-jobs?status=paused", document: document)
            #expect(badStatus["field"] == "status")
        }
    }

    @Test("API operations and daily statistics", arguments: Backend.allCases)
    func apiOperations(backend: Backend) async throws {
        let harness = try await APIHarness.make(backend)
        let endpoint = "https://api.example.com/\(unique("ops"))"
        let operation = try await harness.stores.apiOperations.log(APIOperationRequest(
            operationType: .GET, endpoint: endpoint, headers: ["Authorization": "Bearer op-secret-123"]))
        _ = try await harness.stores.apiOperations.complete(operation.id, APIOperationOutcome(statusCode: 200, responseData: ["n": 1], executionTime: 40))
        try await harness.test { client in
            let document = try await Self.document(client)
            let fetched = try await client.checked(.get, "/v1/api-operations/\(operation.id)", template: "/v1/api-operations/{id}", document: document)
            #expect(fetched["headers"] == ["Authorization": "[REDACTED]"])
            #expect(fetched["execution_time"] == 40)
            let listed = try await client.checked(.get, "/v1/api-operations?status=completed&limit=500", document: document)
            #expect(listed.status == .ok)
            let future = try await client.checked(.get, "/v1/api-operations?from=2999-01-01T00:00:00Z", document: document)
            #expect(future["items"] == [])
            // A few milliseconds around the operation (other tests write operations to the shared database too).
            let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
            let from = operation.createdAt.addingTimeInterval(-0.002).formatted(style)
            let to = operation.createdAt.addingTimeInterval(0.002).formatted(style)
            let window = try await client.checked(
                .get, "/v1/api-operations?from=\(from)&to=\(to)&limit=500", template: "/v1/api-operations", document: document)
            #expect(window["items"]?.arrayValue?.contains { $0.objectValue?["operation_id"] == .string(operation.id.description) } == true)
            #expect(try await client.checked(.get, "/v1/api-operations?from=yesterday", document: document)["field"] == "from")
            let escaped = endpoint.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let statistics = try await client.checked(.get, "/v1/api-statistics?endpoint=\(escaped)&method=GET", document: document)
            #expect(statistics["items"]?.arrayValue?.first?.objectValue?["avg_execution_time"] == 40)
            let badDay = try await client.checked(.get, "/v1/api-statistics?from=yesterday", document: document)
            #expect(badDay["field"] == "from")
        }
    }

    @Test("webhooks: the secret is shown on creation only", arguments: Backend.allCases)
    func webhooks(backend: Backend) async throws {
        let harness = try await APIHarness.make(backend)
        try await harness.test { client in
            let document = try await Self.document(client)
            let created = try await client.checked(.post, "/v1/webhooks", json: [
                "webhook_url": "https://hooks.example.com/in", "event_types": ["sync.*"], "headers": ["X-Team": "hr"],
            ], document: document)
            #expect(created.status == .created)
            let secret = try #require(created["secret"]?.stringValue)
            #expect(secret.hasPrefix("whsec_"))
            let id = try #require(created["webhook_id"]?.stringValue)
            let fetched = try await client.checked(.get, "/v1/webhooks/\(id)", template: "/v1/webhooks/{id}", document: document)
            #expect(!fetched.text.contains(secret))
            #expect(fetched["secret"] == nil)
            let updated = try await client.checked(
                .patch, "/v1/webhooks/\(id)", template: "/v1/webhooks/{id}", json: ["status": "disabled"], document: document)
            #expect(updated["status"] == "disabled")
            let statistics = try await client.checked(.get, "/v1/webhooks/\(id)/statistics", template: "/v1/webhooks/{id}/statistics", document: document)
            #expect(statistics["success_count"] == 0)
            let list = try await client.checked(.get, "/v1/webhooks?limit=500", document: document)
            #expect(!list.text.contains(secret))
            let invalid = try await client.checked(.post, "/v1/webhooks", json: ["webhook_url": "https://h.example.com", "event_types": []], document: document)
            #expect(invalid["field"] == "event_types")
            #expect(try await client.checked(.delete, "/v1/webhooks/\(id)", template: "/v1/webhooks/{id}", document: document).status == .noContent)
        }
    }

    @Test("webhook deliveries: messages, attempts, recover, replay, rotation, enable and disable", arguments: Backend.allCases)
    func webhookDeliveries(backend: Backend) async throws {
        let harness = try await APIHarness.make(backend)
        let delivery = WebhookDeliveryStore(database: harness.stores.database)
        try await harness.test { client in
            let document = try await Self.document(client)
            let created = try await client.checked(.post, "/v1/webhooks", json: [
                "webhook_url": "https://hooks.example.com/deliveries", "event_types": ["integration.updated"], "ordered": true, "rate_limit": 5,
            ], document: document)
            #expect(created["ordered"] == true && created["rate_limit"] == 5 && created["failing_since"] == .null)
            let id = try #require(created["webhook_id"]?.stringValue)
            let secret = try #require(created["secret"]?.stringValue)
            let webhookID = try WebhookID(parsing: id, field: "id")
            // Other tests on the shared database change integrations too: this event is told apart by its marker.
            let marker = unique("marker")
            try await delivery.emit("integration.updated", payload: ["integration_id": .string(marker)])
            // Fan-out runs one at a time per database (other tests may hold it for a moment).
            var found: [String: JSONValue]?
            for _ in 0..<100 where found == nil {
                _ = try await delivery.fanOut()
                let messages = try await client.checked(
                    .get, "/v1/webhooks/\(id)/messages?limit=500", template: "/v1/webhooks/{id}/messages", document: document)
                found = messages["items"]?.arrayValue?.compactMap(\.objectValue).first {
                    $0["payload"]?.objectValue?["data"] == ["integration_id": .string(marker)]
                }
                if found == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            let message = try #require(found)
            #expect(message["status"] == "pending" && message["event_type"] == "integration.updated" && message["attempts"] == 0)
            let messageID = try #require(message["message_id"]?.stringValue)
            let one = try await client.checked(
                .get, "/v1/webhooks/\(id)/messages/\(messageID)", template: "/v1/webhooks/{id}/messages/{message_id}", document: document)
            #expect(one["message_id"] == .string(messageID))
            let attempts = try await client.checked(
                .get, "/v1/webhooks/\(id)/messages/\(messageID)/attempts", template: "/v1/webhooks/{id}/messages/{message_id}/attempts",
                document: document)
            #expect(attempts["items"] == [])
            // A failed message (as the dispatcher leaves one that ran out of attempts) is found by status and recovered.
            _ = try await harness.stores.database.query(
                "UPDATE webhook_messages SET status = 'failed' WHERE message_seq = $1", [.int(try WebhookMessage.sequence(of: messageID))])
            let failed = try await client.checked(
                .get, "/v1/webhooks/\(id)/messages?status=failed", template: "/v1/webhooks/{id}/messages", document: document)
            #expect(failed["items"]?.arrayValue?.count == 1)
            let statistics = try await client.checked(.get, "/v1/webhooks/\(id)/statistics", template: "/v1/webhooks/{id}/statistics", document: document)
            #expect(statistics["messages"]?.objectValue?["failed"] == 1)
            let recovered = try await client.checked(
                .post, "/v1/webhooks/\(id)/recover", template: "/v1/webhooks/{id}/recover",
                json: ["since": .string(RFC3339.format(Date().addingTimeInterval(-600)))], document: document)
            #expect(recovered["recovered"] == 1)
            #expect(try await delivery.message(try WebhookMessage.sequence(of: messageID), of: webhookID).status == .pending)
            let replayed = try await client.checked(
                .post, "/v1/webhooks/\(id)/messages/\(messageID)/replay", template: "/v1/webhooks/{id}/messages/{message_id}/replay",
                document: document)
            #expect(replayed["status"] == "pending")
            // Rotation: the new secret once, the old one still signing for the grace period.
            let rotated = try await client.checked(.post, "/v1/webhooks/\(id)/rotate-secret", template: "/v1/webhooks/{id}/rotate-secret", document: document)
            let newSecret = try #require(rotated["secret"]?.stringValue)
            #expect(newSecret.hasPrefix("whsec_") && newSecret != secret && rotated["previous_valid_until"] != .null)
            #expect(try await harness.stores.webhooks.signingSecrets(for: webhookID) == [newSecret, secret])
            let fetched = try await client.checked(.get, "/v1/webhooks/\(id)", template: "/v1/webhooks/{id}", document: document)
            #expect(!fetched.text.contains(newSecret) && !fetched.text.contains(secret))
            let disabled = try await client.checked(.post, "/v1/webhooks/\(id)/disable", template: "/v1/webhooks/{id}/disable", document: document)
            #expect(disabled["status"] == "disabled" && disabled["disabled_reason"] == "disabled by a user")
            let enabled = try await client.checked(.post, "/v1/webhooks/\(id)/enable", template: "/v1/webhooks/{id}/enable", document: document)
            #expect(enabled["status"] == "active" && enabled["disabled_reason"] == .null)
            // Bad input names the field; unknown messages are 404.
            let badStatus = try await client.checked(
                .get, "/v1/webhooks/\(id)/messages?status=lost", template: "/v1/webhooks/{id}/messages", document: document)
            #expect(badStatus["field"] == "status")
            let unknown = try await client.checked(
                .get, "/v1/webhooks/\(id)/messages/msg_x", template: "/v1/webhooks/{id}/messages/{message_id}", document: document)
            #expect(unknown.status == .notFound)
            let noSince = try await client.checked(.post, "/v1/webhooks/\(id)/recover", template: "/v1/webhooks/{id}/recover", json: [:], document: document)
            #expect(noSince["field"] == "since")
            let badGrace = try await client.checked(
                .post, "/v1/webhooks/\(id)/rotate-secret", template: "/v1/webhooks/{id}/rotate-secret", json: ["grace_seconds": -1], document: document)
            #expect(badGrace["field"] == "grace_seconds")
            let badRate = try await client.checked(.patch, "/v1/webhooks/\(id)", template: "/v1/webhooks/{id}", json: ["rate_limit": 20000], document: document)
            #expect(badRate["field"] == "rate_limit")
            #expect(try await harness.stores.webhooks.get(webhookID).rateLimit == 5)
        }
    }

    @Test("connection monitoring: retries on create, uptime windows, maintenance windows", arguments: Backend.allCases)
    func connectionMonitoring(backend: Backend) async throws {
        let harness = try await APIHarness.make(backend)
        try await harness.test { client in
            let document = try await Self.document(client)
            let created = try await client.checked(.post, "/v1/connections", json: [
                "system_name": .string(unique("ldap")), "connection_type": "TCP", "endpoint": "127.0.0.1:1", "credentials": [:], "retries": 3,
            ], document: document)
            #expect(created.status == .created)
            #expect(created["status"] == "down" && created["check_result"]?.objectValue?["passed"] == false)
            #expect(created["retries"] == 3 && created["next_check_at"]?.stringValue != nil)
            let id = try #require(created["connection_id"]?.stringValue)
            let badRetries = try await client.checked(.post, "/v1/connections", json: [
                "system_name": .string(unique("x")), "connection_type": "TCP", "endpoint": "127.0.0.1:1", "credentials": [:], "retries": 11,
            ], document: document)
            #expect(badRetries["field"] == "retries")
            let checked = try await client.checked(.post, "/v1/connections/\(id)/check", template: "/v1/connections/{id}/check", document: document)
            #expect(checked["status"] == "down")  // a check on request is not retried
            let uptime = try await client.checked(.get, "/v1/connections/\(id)/uptime", template: "/v1/connections/{id}/uptime", document: document)
            let windows = try #require(uptime["windows"]?.arrayValue)
            #expect(windows.compactMap { $0.objectValue?["window"]?.stringValue } == ["24h", "7d", "30d", "all"])
            // The initial test on create and the check on request.
            #expect(windows.allSatisfy { $0.objectValue?["checks"] == 2 && $0.objectValue?["down"] == 2 && $0.objectValue?["uptime_percentage"] == 0 })
            let window = try await client.checked(
                .post, "/v1/connections/\(id)/maintenance", template: "/v1/connections/{id}/maintenance",
                json: ["starts_at": "2026-12-01T02:00:00Z", "ends_at": "2026-12-01T04:00:00Z", "reason": "upgrade"], document: document)
            #expect(window.status == .created && window["reason"] == "upgrade")
            let windowID = try #require(window["window_id"]?.stringValue)
            let backwards = try await client.checked(
                .post, "/v1/connections/\(id)/maintenance", template: "/v1/connections/{id}/maintenance",
                json: ["starts_at": "2026-12-01T04:00:00Z", "ends_at": "2026-12-01T02:00:00Z"], document: document)
            #expect(backwards["field"] == "ends_at")
            let list = try await client.checked(.get, "/v1/connections/\(id)/maintenance", template: "/v1/connections/{id}/maintenance", document: document)
            #expect(list["items"]?.arrayValue?.count == 1)
            let deleted = try await client.checked(
                .delete, "/v1/connections/\(id)/maintenance/\(windowID)", template: "/v1/connections/{id}/maintenance/{window_id}", document: document)
            #expect(deleted.status == .noContent)
            let again = try await client.checked(
                .delete, "/v1/connections/\(id)/maintenance/\(windowID)", template: "/v1/connections/{id}/maintenance/{window_id}", document: document)
            #expect(again.status == .notFound)
        }
    }

    @Test("connections: create, get, health history, uptime, delete", arguments: Backend.allCases)
    func connections(backend: Backend) async throws {
        let harness = try await APIHarness.make(backend)
        try await harness.test { client in
            let document = try await Self.document(client)
            let name = unique("ldap")
            let created = try await client.checked(.post, "/v1/connections", json: [
                "system_name": .string(name), "connection_type": "TCP", "endpoint": "ldap.example.com:389",
                "credentials": ["username": "monitor", "password": "conn-secret-pw"],
            ], document: document)
            #expect(created.status == .created)
            #expect(created["credentials"] == ["username": "monitor", "password": "****"])
            #expect(created["health_check_interval"] == 5)
            // The initial test ran on create: ldap.example.com does not resolve here, so it found the system down.
            #expect(created["status"] == "down" && created["check_result"]?.objectValue?["passed"] == false)
            let id = try #require(created["connection_id"]?.stringValue)
            _ = try await harness.stores.connections.recordCheck(ConnectionID(UUID(uuidString: id)!), status: .healthy, responseTime: 12)
            let history = try await client.checked(.get, "/v1/connections/\(id)/health", template: "/v1/connections/{id}/health", document: document)
            #expect(history["items"]?.arrayValue?.count == 2)
            let uptime = try await client.checked(.get, "/v1/connections/\(id)/uptime", template: "/v1/connections/{id}/uptime", document: document)
            #expect(uptime["uptime_percentage"] == 50)
            #expect(uptime["avg_response_time"] == 12)
            let taken = try await client.checked(.post, "/v1/connections", json: [
                "system_name": .string(name), "connection_type": "TCP", "endpoint": "x:1", "credentials": [:],
            ], document: document)
            #expect(taken.status == .conflict)
            #expect(taken["field"] == "system_name")
            #expect(try await client.checked(.get, "/v1/connections?limit=2", document: document).status == .ok)
            #expect(try await client.checked(.get, "/v1/connections/\(id)", template: "/v1/connections/{id}", document: document)["status"] == "healthy")
            #expect(try await client.checked(.delete, "/v1/connections/\(id)", template: "/v1/connections/{id}", document: document).status == .noContent)
        }
    }

    @Test("the OpenAPI document lists every route, and every listed route answers")
    func openAPI() async throws {
        let harness = try await APIHarness.make(.sqlite)
        try await harness.test { client in
            let document = try await Self.document(client)
            #expect(document.objectValue?["openapi"] == "3.1.0")
            let paths = try #require(document.objectValue?["paths"]?.objectValue)
            #expect(paths.count >= 19)
            for (path, operations) in paths {
                for method in operations.objectValue?.keys ?? [:].keys {
                    let uri = path.replacingOccurrences(of: "{id}", with: UUID().uuidString)
                    let response = try await client.send(.init(method.uppercased())!, uri, raw: method == "get" || method == "delete" ? nil : "{}")
                    #expect(response.status != .methodNotAllowed, "\(method) \(path)")
                    if response.status == .notFound {
                        // A 404 must come from the route (an unknown id), not from a missing route.
                        #expect(response["title"] == "Not found", "\(method) \(path) is documented but not routed")
                    }
                }
            }
            let undocumented = try await client.send(.get, "/v1/nothing-here")
            #expect(undocumented.status == .notFound)
        }
    }

    @Test("operations endpoints: healthz, readyz, metrics")
    func operations() async throws {
        let harness = try await APIHarness.make(.sqlite)
        try await harness.test { client in
            #expect(try await client.send(.get, "/healthz", token: .none)["status"] == "ok")
            #expect(try await client.send(.get, "/readyz", token: .none)["status"] == "ready")
            _ = try await client.send(.get, "/v1/integrations")
            let metrics = try await client.send(.get, "/metrics", token: .none)
            #expect(metrics.status == .ok)
            #expect(metrics.text.contains("hb_requests") || metrics.text.contains("http_requests"))
        }
    }

    @Test("no response outside registration and no log line carries a stored secret", arguments: Backend.allCases)
    func secretsNeverLeak(backend: Backend) async throws {
        let harness = try await APIHarness.make(backend)
        let secrets = ["integration-secret-token-0123456789", "conn-secret-pw-42", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", harness.token]
        try await harness.test { client in
            let integration = try await client.send(.post, "/v1/integrations", json: [
                "system_id": .string(unique("leak")), "integration_type": "HR", "endpoint_url": "https://hr.example.com", "auth_config": Self.bearer,
            ])
            let connection = try await client.send(.post, "/v1/connections", json: [
                "system_name": .string(unique("leak")), "connection_type": "API", "endpoint": "https://api.example.com",
                "credentials": ["token": "conn-secret-pw-42"],
            ])
            let webhook = try await client.send(.post, "/v1/webhooks", json: [
                "webhook_url": "https://hooks.example.com", "event_types": ["*"], "secret_key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ])
            #expect(webhook.text.contains("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
            var bodies = [integration.text, connection.text]
            for uri in [
                "/v1/integrations/\(integration["integration_id"]?.stringValue ?? "")", "/v1/integrations?limit=500",
                "/v1/connections/\(connection["connection_id"]?.stringValue ?? "")", "/v1/connections?limit=500",
                "/v1/webhooks/\(webhook["webhook_id"]?.stringValue ?? "")", "/v1/webhooks?limit=500",
            ] {
                bodies.append(try await client.send(.get, uri).text)
            }
            for body in bodies {
                for secret in secrets { #expect(!body.contains(secret), "a response contains a secret") }
            }
        }
        let lines = harness.logs.all
        #expect(lines.count > 5)
        for line in lines {
            for secret in secrets { #expect(!line.contains(secret), "log line contains a secret: \(line.prefix(80))") }
        }
    }

    @Test("end to end: a live server on a loopback port", arguments: Backend.allCases)
    func live(backend: Backend) async throws {
        let harness = try await APIHarness.make(backend)
        try await harness.test(.live) { client in
            let created = try await client.send(.post, "/v1/integrations", json: [
                "system_id": .string(unique("live")), "integration_type": "ERP", "endpoint_url": "https://erp.example.com",
                "auth_config": ["type": "basic", "username": "svc", "password": "pw"],
            ])
            #expect(created.status == .created)
            let id = try #require(created["integration_id"]?.stringValue)
            #expect(try await client.send(.get, "/v1/integrations/\(id)")["auth_config"] == ["type": "basic", "username": "svc", "password": "****"])
            #expect(try await client.send(.get, "/readyz", token: .none).status == .ok)
        }
    }

    @Test("an unreachable database makes /readyz answer 503 problem+json")
    func databaseUnavailable() async throws {
        var quiet = Logger(label: "test.unavailable")
        quiet.logLevel = .critical
        let database = try PostgresDatabase(url: "postgres://hub:pw@127.0.0.1:1/none?sslmode=disable", logger: quiet)
        let stores = HubStores(database: database, sealer: TestEnvironment.sealer)
        let app = HubServer.application(stores: stores, configuration: ServerConfiguration(port: 0), gateway: APIHarness.gateway, logger: quiet)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await database.run() }
            try await app.test(.router) { client in
                let response = try await client.execute(uri: "/readyz", method: .get)
                #expect(response.status == .serviceUnavailable)
                #expect(response.headers[.contentType] == "application/problem+json")
                #expect(String(buffer: response.body).contains("the database is unavailable"))
            }
            group.cancelAll()
        }
    }

    @Test("an unexpected failure is a 500 with a request id and nothing internal; it is logged in full", arguments: Backend.allCases)
    func unexpected(backend: Backend) async throws {
        let harness = try await APIHarness.make(backend)
        // A row no build of the hub writes: a health check whose status is outside the enumeration, on a connection of
        // this test's own (no other test reads its history).
        let connection = try await harness.stores.connections.create(ConnectionContractTests.registration())
        _ = try await harness.stores.connections.recordCheck(connection.id, status: .healthy, responseTime: 1)
        _ = try await harness.stores.database.query(
            "UPDATE connection_health SET status = 'corrupted' WHERE connection_id = $1", [.uuid(connection.id.uuid)])
        try await harness.test { client in
            let response = try await client.send(.get, "/v1/connections/\(connection.id)/health")
            #expect(response.status == .internalServerError)
            #expect(response["detail"] == "an unexpected error occurred")
            let requestID = try #require(response["request_id"]?.stringValue)
            #expect(!response.text.contains("corrupted") && !response.text.contains("decoding"))
            #expect(harness.logs.all.contains { $0.contains("unexpected error") && $0.contains(requestID) })
        }
    }
}
