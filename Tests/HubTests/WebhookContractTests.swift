import Foundation
import HubCore
import HubStore
import Testing

/// DAO-MDE-03-08-04 contract, on both backends.
@Suite("Webhook Management DAO", .timeLimit(.minutes(10)))
struct WebhookContractTests {
    static func registration(url: String = "https://hooks.example.com/\(unique("in"))") -> WebhookRegistration {
        WebhookRegistration(
            webhookURL: url, eventTypes: ["sync.completed", "connection.*"],
            retryConfig: ["max_attempts": 5, "backoff_seconds": [0, 5, 300]], headers: ["X-Team": "platform"])
    }

    @Test("steps 1 and 3 register the webhook with zeroed statistics and a generated secret", arguments: Backend.allCases)
    func register(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let registered = try await stores.webhooks.register(Self.registration())
        let webhook = registered.webhook
        #expect(webhook.status == .active)
        #expect(webhook.successCount == 0)
        #expect(webhook.failureCount == 0)
        #expect(webhook.lastTriggered == nil)
        #expect(webhook.lastTested == nil)
        #expect(webhook.eventTypes == ["sync.completed", "connection.*"])
        #expect(webhook.retryConfig == ["max_attempts": 5, "backoff_seconds": [0, 5, 300]])
        #expect(webhook.headers == ["X-Team": "platform"])
        try WebhookSecret.validate(registered.secret, field: "secret")
        #expect(try await stores.webhooks.get(webhook.id) == webhook)
        #expect(try await stores.webhooks.signingSecret(for: webhook.id) == registered.secret)
        #expect(try await count(stores.database, "webhook_statistics", where: "webhook_id = $1", .uuid(webhook.id.uuid)) == 1)
    }

    @Test("the secret is sealed at rest; a given secret is kept", arguments: Backend.allCases)
    func secret(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let given = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        var registration = Self.registration()
        registration.secretKey = given
        let registered = try await stores.webhooks.register(registration)
        #expect(registered.secret == given)
        let raw = try await stores.database.queryOne(
            "SELECT secret_key FROM webhooks WHERE webhook_id = $1", [.uuid(registered.webhook.id.uuid)])!.string("secret_key")
        #expect(!raw.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        #expect(raw.hasPrefix("sealed:v1:"))
        #expect(try await stores.webhooks.signingSecret(for: registered.webhook.id) == given)
    }

    @Test("custom headers are sealed at rest, masked on reads, clear for the dispatcher", arguments: Backend.allCases)
    func sealedHeaders(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        var registration = Self.registration()
        registration.headers = ["Authorization": "Bearer receiver-secret-42", "X-Team": "platform", "X-Signing-Key": "k-99"]
        let webhook = try await stores.webhooks.register(registration).webhook
        #expect(webhook.headers == ["Authorization": "****", "X-Team": "platform", "X-Signing-Key": "****"])
        let raw = try await stores.database.queryOne(
            "SELECT headers, headers_masked FROM webhooks WHERE webhook_id = $1", [.uuid(webhook.id.uuid)])!
        #expect(!(try raw.jsonText("headers")).contains("receiver-secret"))
        #expect(!(try raw.jsonText("headers_masked")).contains("receiver-secret"))
        #expect(try await stores.webhooks.deliveryHeaders(for: webhook.id)
            == ["Authorization": "Bearer receiver-secret-42", "X-Team": "platform", "X-Signing-Key": "k-99"])
        let updated = try await stores.webhooks.update(webhook.id, WebhookUpdate(headers: ["X-Api-Key": "new-key-7"]))
        #expect(updated.headers == ["X-Api-Key": "****"])
        #expect(try await stores.webhooks.deliveryHeaders(for: webhook.id) == ["X-Api-Key": "new-key-7"])
        let plain = try await stores.webhooks.register(WebhookRegistration(webhookURL: "https://h.example.com", eventTypes: ["*"]))
        #expect(try await stores.webhooks.deliveryHeaders(for: plain.webhook.id) == [:])
    }

    @Test("custom headers do not follow the URL to another origin: moving it needs them given again", arguments: Backend.allCases)
    func headersBoundToOrigin(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        var registration = Self.registration(url: "https://hooks.example.com/\(unique("in"))")
        registration.headers = ["Authorization": "Bearer receiver-secret-42"]
        let webhook = try await stores.webhooks.register(registration).webhook
        // Another host, scheme or port: refused without headers, nothing written.
        for url in ["https://evil.example.net/in", "http://hooks.example.com/in", "https://hooks.example.com:8443/in"] {
            await expectValidation("headers") { _ = try await stores.webhooks.update(webhook.id, WebhookUpdate(webhookURL: url)) }
        }
        #expect(try await stores.webhooks.get(webhook.id).webhookURL == registration.webhookURL)
        #expect(try await stores.webhooks.deliveryHeaders(for: webhook.id) == ["Authorization": "Bearer receiver-secret-42"])
        // The same origin keeps them; another origin with headers given (or `{}`) replaces them.
        let samePath = try await stores.webhooks.update(webhook.id, WebhookUpdate(webhookURL: "https://hooks.example.com/other"))
        #expect(samePath.webhookURL == "https://hooks.example.com/other")
        #expect(try await stores.webhooks.deliveryHeaders(for: webhook.id) == ["Authorization": "Bearer receiver-secret-42"])
        _ = try await stores.webhooks.update(webhook.id, WebhookUpdate(webhookURL: "https://elsewhere.example.org/in", headers: [:]))
        #expect(try await stores.webhooks.deliveryHeaders(for: webhook.id) == [:])
        // A webhook without custom headers moves freely.
        let plain = try await stores.webhooks.register(WebhookRegistration(
            webhookURL: "https://hooks.example.com/\(unique("in"))", eventTypes: ["*"])).webhook
        #expect(try await stores.webhooks.update(plain.id, WebhookUpdate(webhookURL: "https://other.example.org/in")).webhookURL
            == "https://other.example.org/in")
        await expectHubError({ if case .notFound = $0 { true } else { false } }) {
            _ = try await stores.webhooks.update(WebhookID.generate(), WebhookUpdate(webhookURL: "https://x.example.org/"))
        }
    }

    @Test("step 1 validation names the field and writes nothing", arguments: Backend.allCases)
    func validation(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let url = "https://hooks.example.com/\(unique("bad"))"
        func attempt(_ field: String, _ change: (inout WebhookRegistration) -> Void) async {
            var registration = Self.registration(url: url)
            change(&registration)
            await expectValidation(field) { _ = try await stores.webhooks.register(registration) }
        }
        await attempt("webhook_url") { $0.webhookURL = "hooks.example.com/in" }
        await attempt("webhook_url") { $0.webhookURL = "mailto:ops@example.com" }
        await attempt("event_types") { $0.eventTypes = [] }
        await attempt("event_types[0]") { $0.eventTypes = ["Sync.Completed"] }
        await attempt("event_types[1]") { $0.eventTypes = ["sync.completed", "sync.completed"] }
        await attempt("event_types[0]") { $0.eventTypes = ["*.completed"] }
        await attempt("event_types[0]") { $0.eventTypes = ["sync..completed"] }
        await attempt("secret_key") { $0.secretKey = "plain-secret" }
        await attempt("secret_key") { $0.secretKey = "whsec_c2hvcnQ=" }
        await attempt("retry_config") { $0.retryConfig = [1, 2] }
        await attempt("retry_config.max_attempts") { $0.retryConfig = ["max_attempts": 0] }
        await attempt("retry_config.max_attempts") { $0.retryConfig = ["max_attempts": "3"] }
        await attempt("retry_config.backoff_seconds") { $0.retryConfig = ["backoff_seconds": []] }
        await attempt("retry_config.backoff_seconds[1]") { $0.retryConfig = ["backoff_seconds": [1, -5]] }
        await attempt("retry_config.jitter") { $0.retryConfig = ["jitter": true] }
        await attempt("headers.Content-Type") { $0.headers = ["Content-Type": "text/plain"] }
        await attempt("headers.webhook-signature") { $0.headers = ["webhook-signature": "v1,forged"] }
        await attempt("headers") { $0.headers = "X-A: b" }
        for reserved in ["Host", "content-length", "Transfer-Encoding", "Connection", "Upgrade", "TE", "Trailer", "Proxy-Authorization"] {
            await attempt("headers.\(reserved)") { $0.headers = [reserved: "x"] }
        }
        await attempt("headers.X-A") { $0.headers = ["X-A": "b\r\nX-Injected: 1"] }
        await attempt("headers.X-A") { $0.headers = ["X-A": "b\u{7F}"] }
        #expect(try await count(stores.database, "webhooks", where: "webhook_url = $1", .text(url)) == 0)
        var wildcard = Self.registration(url: url)
        wildcard.eventTypes = ["*", "sync.*"]
        #expect(try await stores.webhooks.register(wildcard).webhook.eventTypes == ["*", "sync.*"])
    }

    @Test("step 2 records the endpoint test", arguments: Backend.allCases)
    func test(backend: Backend) async throws {
        let clock = ManualClock()
        let stores = try await TestEnvironment.stores(backend, clock: clock.wallClock)
        let webhook = try await stores.webhooks.register(Self.registration()).webhook
        clock.advance(by: 5)
        let failed = try await stores.webhooks.recordTestResult(webhook.id, passed: false, result: ["status_code": 500, "latency_ms": 12])
        #expect(failed.status == .failing)
        #expect(failed.lastTested == clock.wallClock.now())
        #expect(failed.testResult == ["status_code": 500, "latency_ms": 12])
        #expect(try await stores.webhooks.recordTestResult(webhook.id, passed: true, result: ["status_code": 204]).status == .active)
        _ = try await stores.webhooks.update(webhook.id, WebhookUpdate(status: .disabled))
        await expectHubError({ $0.isConflict }) {
            _ = try await stores.webhooks.recordTestResult(webhook.id, passed: true, result: [:])
        }
        await expectHubError({ $0.isNotFound }) { _ = try await stores.webhooks.recordTestResult(.generate(), passed: true, result: [:]) }
    }

    @Test("delivery outcomes are counted exactly under concurrency", arguments: Backend.allCases)
    func deliveries(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let webhook = try await stores.webhooks.register(Self.registration()).webhook
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<60 {
                group.addTask { _ = try await stores.webhooks.recordDelivery(webhook.id, succeeded: index % 3 != 0) }
            }
            try await group.waitForAll()
        }
        let counted = try await stores.webhooks.get(webhook.id)
        #expect(counted.successCount == 40)
        #expect(counted.failureCount == 20)
        #expect(counted.lastTriggered != nil)
        await expectHubError({ $0.isNotFound }) { _ = try await stores.webhooks.recordDelivery(.generate(), succeeded: true) }
    }

    @Test("update, list and delete", arguments: Backend.allCases)
    func lifecycle(backend: Backend) async throws {
        let clock = ManualClock()
        let stores = try await TestEnvironment.stores(backend, clock: clock.wallClock)
        let first = try await stores.webhooks.register(Self.registration()).webhook
        clock.advance(by: 1)
        let second = try await stores.webhooks.register(Self.registration()).webhook
        let updated = try await stores.webhooks.update(
            first.id, WebhookUpdate(webhookURL: "https://hooks.example.com/moved", eventTypes: ["*"]))
        #expect(updated.webhookURL == "https://hooks.example.com/moved")
        #expect(updated.eventTypes == ["*"])
        #expect(updated.headers == first.headers)
        await expectValidation("event_types") { _ = try await stores.webhooks.update(first.id, WebhookUpdate(eventTypes: [])) }
        await expectValidation("body") { _ = try await stores.webhooks.update(first.id, WebhookUpdate()) }
        await expectHubError({ $0.isNotFound }) { _ = try await stores.webhooks.update(.generate(), WebhookUpdate(status: .active)) }
        var seen: [WebhookID] = []
        var cursor: String?
        repeat {
            let page = try await stores.webhooks.list(PageRequest(limit: 1, cursor: cursor))
            seen += page.items.map(\.id)
            cursor = page.nextCursor
        } while cursor != nil && seen.count < 10_000
        let ours = seen.filter { $0 == first.id || $0 == second.id }
        #expect(ours == [second.id, first.id])
        try await stores.webhooks.delete(first.id)
        await expectHubError({ $0.isNotFound }) { _ = try await stores.webhooks.get(first.id) }
        #expect(try await count(stores.database, "webhook_statistics", where: "webhook_id = $1", .uuid(first.id.uuid)) == 0)
        await expectHubError({ $0.isNotFound }) { try await stores.webhooks.delete(first.id) }
    }
}
