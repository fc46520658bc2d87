import Foundation
import HubCore
import NIOCore
import NIOPosix

/// The connectivity steps of the design that need the network: an integration's step 2 (test the external
/// system), a webhook's step 2 (send a signed `webhook.test` event), and a connection's steps 2–4 (probe it).
/// Each runs the real request through the gateway and records the result through its DAO.
public struct ConnectivityTester: Sendable {
    let gateway: OutboundGateway
    let auth: AuthApplier
    let integrations: any ExternalSystemIntegrationDAO
    let webhooks: any WebhookManagementDAO
    let connections: any SystemConnectivityDAO

    /// A tester over the gateway and the three DAOs it records into; `auth` shares an OAuth2 token cache (a new one
    /// when nil).
    public init(
        gateway: OutboundGateway, auth: AuthApplier? = nil, integrations: any ExternalSystemIntegrationDAO,
        webhooks: any WebhookManagementDAO, connections: any SystemConnectivityDAO
    ) {
        self.gateway = gateway
        self.auth = auth ?? AuthApplier(gateway: gateway)
        self.integrations = integrations
        self.webhooks = webhooks
        self.connections = connections
    }

    /// What a test found, as the API returns it.
    public struct Result: Sendable {
        /// Whether the test passed.
        public var passed: Bool
        /// `{"passed", "status_code", "response_time_ms", "error"}`.
        public var details: JSONValue
    }

    static func details(passed: Bool, _ outcome: HTTPOutcome, extra: [String: JSONValue] = [:]) -> JSONValue {
        var members: [String: JSONValue] = [
            "passed": .bool(passed), "status_code": outcome.statusCode.map { .int(Int64($0)) } ?? .null,
            "response_time_ms": .int(outcome.elapsedMilliseconds), "error": outcome.error.map(JSONValue.string) ?? .null,
        ]
        members.merge(extra) { _, new in new }
        return .object(members)
    }

    /// Integration step 2: a GET of the endpoint with the integration's auth; passes on a 2xx or 3xx answer.
    public func testIntegration(_ id: IntegrationID) async throws -> (Integration, Result) {
        let integration = try await integrations.get(id)
        let headers: [String: String]
        do {
            headers = try await auth.headers(for: try await integrations.authConfig(for: id))
        } catch HubError.unavailable(let reason) {
            let details: JSONValue = ["passed": false, "status_code": .null, "response_time_ms": .null, "error": .string(reason)]
            return (try await integrations.recordConnectivityTest(id, reachable: false), Result(passed: false, details: details))
        }
        let outcome = await gateway.send(method: "GET", url: integration.endpointURL, headers: headers, timeout: .seconds(15), bodyCap: 0)
        let passed = outcome.statusCode.map { (200..<400).contains($0) } ?? false
        let recorded = try await integrations.recordConnectivityTest(id, reachable: passed)
        var result = Result(passed: passed, details: Self.details(passed: passed, outcome))
        if !passed, outcome.error == nil, let status = outcome.statusCode, case .object(var members) = result.details {
            members["error"] = .string("the endpoint answered \(status)")
            result.details = .object(members)
        }
        return (recorded, result)
    }

    /// Webhook step 2: POSTs a signed `webhook.test` event (Standard Webhooks headers and the webhook's own
    /// headers); passes on a 2xx answer within the webhook's timeout (default 15 s). Redirects are not followed.
    public func testWebhook(_ id: WebhookID) async throws -> (Webhook, Result) {
        let webhook = try await webhooks.get(id)
        guard webhook.status != .disabled else {
            throw HubError.conflict(field: "status", reason: "the webhook is disabled; enable it before testing")
        }
        let secrets = try await webhooks.signingSecrets(for: id)
        let messageID = "msg_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let timestamp = Int64(Date().timeIntervalSince1970)
        let payload: JSONValue = [
            "type": "webhook.test", "timestamp": .string(ISO8601DateFormatter().string(from: Date())),
            "data": ["webhook_id": .string(id.description), "message": "This is a test event from IntegrationHub."],
        ]
        let body = Data(payload.jsonText.utf8)
        var headers = try await webhooks.deliveryHeaders(for: id)
        headers["Content-Type"] = "application/json"
        headers["webhook-id"] = messageID
        headers["webhook-timestamp"] = String(timestamp)
        headers["webhook-signature"] = try WebhookSignature.sign(secrets: secrets, id: messageID, timestamp: timestamp, body: body)
        let timeout = (try? webhook.retryConfig.map { try RetryConfig(json: $0) })??.timeoutSeconds ?? 15
        let outcome = await gateway.send(
            method: "POST", url: webhook.webhookURL, headers: headers, body: body, timeout: .seconds(timeout), bodyCap: 4096)
        let passed = outcome.statusCode.map { (200..<300).contains($0) } ?? false
        let details = Self.details(
            passed: passed, outcome,
            extra: [
                "message_id": .string(messageID),
                "response_excerpt": JSONValue.string(String(decoding: outcome.body.prefix(512), as: UTF8.self)).replacingNUL,
            ])
        let recorded = try await webhooks.recordTestResult(id, passed: passed, result: details)
        return (recorded, Result(passed: passed, details: details))
    }

    /// Connection steps 2–4: probes the connection now with its type's real protocol probe (``HealthProber``) and
    /// records the check (never retried: a check on request reports what it found).
    public func checkConnection(_ id: ConnectionID) async throws -> (SystemConnection, Result) {
        let connection = try await connections.get(id)
        let result = await HealthProber(gateway: gateway).probe(connection, credentials: try await connections.credentials(for: id))
        let recorded = try await connections.recordCheck(
            id, CheckOutcome(status: result.status, responseTime: result.responseTime, reason: result.reason))
        guard case .object(var details) = result.json else { return (recorded, Result(passed: false, details: result.json)) }
        details["error"] = result.status == .healthy ? .null : .string(result.reason)
        return (recorded, Result(passed: result.status == .healthy, details: .object(details)))
    }

    static func hostAndPort(_ endpoint: String, type: ConnectionType) throws -> (String, Int) {
        let defaults: [ConnectionType: Int] = [.DB: 5432, .FTP: 21, .SFTP: 22]
        func checked(_ host: String, _ port: Int?) throws -> (String, Int) {
            let host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
            guard !host.isEmpty else { throw HubError.validation(field: "endpoint", reason: "has no host") }
            guard let port, (1...65535).contains(port) else { throw HubError.validation(field: "endpoint", reason: "has no valid port") }
            return (host, port)
        }
        if endpoint.contains("://") {
            // URL forms are read the way validation read them.
            guard let components = URLComponents(string: endpoint), let host = components.host else {
                throw HubError.validation(field: "endpoint", reason: "is not a valid URL")
            }
            return try checked(host, components.port ?? defaults[type])
        }
        if endpoint.hasPrefix("["), let close = endpoint.firstIndex(of: "]") {
            let rest = endpoint[endpoint.index(after: close)...]
            return try checked(String(endpoint[endpoint.index(after: endpoint.startIndex)..<close]), rest.hasPrefix(":") ? Int(rest.dropFirst()) : defaults[type])
        }
        let parts = endpoint.split(separator: ":", omittingEmptySubsequences: false)
        return try checked(String(parts[0]), parts.count > 1 ? Int(parts[1]) : defaults[type])
    }
}
