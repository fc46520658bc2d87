import Foundation
import HubCore

/// Executes API operations as the design's three steps: log the request (step 1), send it through the gateway and
/// capture status, response, time and error (step 2), fold it into the daily statistics (step 3, with step 2).
public struct OperationExecutor: Sendable {
    let gateway: OutboundGateway
    let auth: AuthApplier
    let integrations: any ExternalSystemIntegrationDAO
    let operations: any APIOperationDAO
    /// Response bytes stored per operation (default 64 KiB); longer bodies are cut and flagged `response_truncated`.
    public let responseBodyCap: Int

    /// An executor over the gateway, an auth applier (its OAuth2 token cache), and the DAOs it reads and records into.
    public init(
        gateway: OutboundGateway, auth: AuthApplier, integrations: any ExternalSystemIntegrationDAO, operations: any APIOperationDAO,
        responseBodyCap: Int = 64 * 1024
    ) {
        self.responseBodyCap = responseBodyCap
        self.gateway = gateway
        self.auth = auth
        self.integrations = integrations
        self.operations = operations
    }

    /// Runs `request`. A path endpoint is relative to the integration's endpoint URL and carries the integration's
    /// auth; an absolute URL is sent as it is (with the integration's auth when one is named).
    /// - Throws: `validation` (before anything is logged; also for an absolute URL off the integration's origin),
    ///   `notFound` for an unknown integration. Network, policy and OAuth2 token failures are not thrown: they
    ///   complete the operation as `failed` with the reason.
    public func execute(_ request: APIOperationRequest) async throws -> APIOperation {
        try await execute(request, retries: 0).last!
    }

    /// Runs `request` up to `retries` more times (0–5) while the attempt may succeed on a retry (no answer, 429, 5xx),
    /// waiting `Retry-After` when the server sends one (at most 30 s), else 0.5 s doubling with ±20 % jitter. Only
    /// idempotent methods (GET, PUT, DELETE) may be retried. Every attempt is logged as its own operation; returns
    /// them in order, the last one being the outcome.
    /// - Throws: as ``execute(_:)``; `validation(retries)` for a count outside 0…5 or a non-idempotent method.
    public func execute(_ request: APIOperationRequest, retries: Int) async throws -> [APIOperation] {
        try Validate.range(retries, 0...5, field: "retries")
        if retries > 0, ![.GET, .PUT, .DELETE].contains(request.operationType) {
            throw HubError.validation(field: "retries", reason: "only idempotent methods (GET, PUT, DELETE) may be retried")
        }
        var attempts: [APIOperation] = []
        for attempt in 0...retries {
            let (operation, outcome) = try await attemptOnce(request)
            attempts.append(operation)
            guard attempt < retries, let outcome, outcome.isRetryable else { break }
            let backoff = 0.5 * pow(2, Double(attempt)) * Double.random(in: 0.8...1.2)
            let delay = outcome.retryAfter.map { min($0, .seconds(30)) } ?? .milliseconds(Int64(backoff * 1000))
            try await Task.sleep(for: delay)
        }
        return attempts
    }

    /// One attempt (steps 1-3) whose response body is read up to `readCap` bytes and returned whole in the outcome,
    /// while the operation stores at most `storedCap` bytes of it (at most ``responseBodyCap``): how the sync engine
    /// reads pages, whose bodies are records stored elsewhere. The outcome is
    /// nil when no request was sent (an OAuth2 token could not be had).
    /// - Throws: as ``execute(_:)``.
    /// `resolved`, when given, is the request's integration read once by the caller (a sync job reads it per job,
    /// not per page); it must be the request's `integrationID`.
    public func fetch(
        _ request: APIOperationRequest, resolved: ResolvedIntegration? = nil, readCap: Int, storedCap: Int = .max
    ) async throws -> (APIOperation, HTTPOutcome?) {
        try await attemptOnce(request, resolved: resolved, readCap: readCap, storedCap: min(storedCap, responseBodyCap))
    }

    /// An integration with its opened auth configuration.
    public struct ResolvedIntegration: Sendable {
        public let integration: Integration
        public let authConfig: AuthConfig
    }

    /// Reads an integration and opens its auth configuration. - Throws: `notFound`; `sealing`.
    public func resolve(_ id: IntegrationID) async throws -> ResolvedIntegration {
        ResolvedIntegration(integration: try await integrations.get(id), authConfig: try await integrations.authConfig(for: id))
    }

    /// One attempt: steps 1-3; the gateway's outcome is returned when a request was sent.
    private func attemptOnce(
        _ request: APIOperationRequest, resolved: ResolvedIntegration? = nil, readCap: Int? = nil, storedCap: Int? = nil
    ) async throws -> (APIOperation, HTTPOutcome?) {
        let storedCap = storedCap ?? responseBodyCap
        var headers = try request.validate()
        var url = request.endpoint
        var authConfig: AuthConfig?
        if let integrationID = request.integrationID {
            let integration: Integration
            if let resolved, resolved.integration.id == integrationID {
                integration = resolved.integration
            } else {
                integration = try await integrations.get(integrationID)
            }
            if url.hasPrefix("/") {
                let base = integration.endpointURL.hasSuffix("/") ? String(integration.endpointURL.dropLast()) : integration.endpointURL
                url = base + url
            }
            // The integration's credentials go only to its own origin, never to a URL the caller chose elsewhere.
            guard let target = Validate.origin(of: url), target == Validate.origin(of: integration.endpointURL) else {
                throw HubError.validation(
                    field: "endpoint", reason: "must be a path, or a URL on the integration's own origin, when integration_id is given")
            }
            if let resolved, resolved.integration.id == integrationID {
                authConfig = resolved.authConfig
            } else {
                authConfig = try await integrations.authConfig(for: integrationID)
            }
        } else if url.hasPrefix("/") {
            throw HubError.validation(field: "endpoint", reason: "a path needs integration_id; otherwise give an absolute URL")
        }
        let operation = try await operations.log(request)
        if let authConfig {
            do {
                headers.merge(try await auth.headers(for: authConfig)) { _, auth in auth }
            } catch {
                // A token that cannot be had fails this operation, recorded like any other failure; so does any other
                // error (the operation never stays pending).
                var reason = "the integration's credentials could not be applied"
                if case HubError.unavailable(let why) = error { reason = why }
                let failed = try await operations.complete(
                    operation.id, APIOperationOutcome(statusCode: nil, executionTime: 0, errorMessage: reason))
                if case HubError.unavailable = error { return (failed, nil) }
                throw error
            }
        }
        var body: Data?
        if let payload = request.payload, payload != .null {
            body = Data(payload.jsonText.utf8)
            if !headers.keys.contains(where: { $0.lowercased() == "content-type" }) { headers["Content-Type"] = "application/json" }
        }
        let outcome = await gateway.send(
            method: request.operationType.rawValue, url: url, headers: headers, body: body, timeout: .seconds(operation.timeout),
            bodyCap: max(readCap ?? 0, responseBodyCap))
        var responseData: JSONValue?
        var truncated = outcome.truncated
        if outcome.statusCode != nil, !outcome.body.isEmpty {
            if outcome.body.count > storedCap {
                // Read whole for the caller; stored cut at the cap, as text.
                truncated = true
                responseData = .string(String(decoding: outcome.body.prefix(storedCap), as: UTF8.self)).replacingNUL
            } else {
                responseData = (JSONValue.parse(bytes: outcome.body)
                    ?? .string(String(decoding: outcome.body, as: UTF8.self))).replacingNUL
            }
        }
        let error = outcome.error ?? outcome.statusCode.flatMap { $0 >= 400 ? "the endpoint answered \($0)" : nil }
        let completed = try await operations.complete(
            operation.id,
            APIOperationOutcome(
                statusCode: outcome.statusCode, responseData: responseData, executionTime: outcome.elapsedMilliseconds, errorMessage: error,
                timedOut: outcome.timedOut, responseTruncated: truncated))
        return (completed, outcome)
    }
}
