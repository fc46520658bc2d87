import Foundation
import HubCore

/// Executes API operations as the design's three steps: log the request (step 1), send it through the gateway and
/// capture status, response, time and error (step 2), fold it into the daily statistics (step 3, with step 2).
public struct OperationExecutor: Sendable {
    let gateway: OutboundGateway
    let auth: AuthApplier
    let integrations: any ExternalSystemIntegrationDAO
    let operations: any APIOperationDAO

    /// An executor over the gateway, an auth applier (its OAuth2 token cache), and the DAOs it reads and records into.
    public init(gateway: OutboundGateway, auth: AuthApplier, integrations: any ExternalSystemIntegrationDAO, operations: any APIOperationDAO) {
        self.gateway = gateway
        self.auth = auth
        self.integrations = integrations
        self.operations = operations
    }

    /// Runs `request`. A path endpoint is relative to the integration's endpoint URL and carries the integration's
    /// auth; an absolute URL is sent as it is (with the integration's auth when one is named).
    /// - Throws: `validation` (before anything is logged), `notFound` for an unknown integration. Network and policy
    ///   failures are not thrown: they complete the operation as `failed` with the reason.
    public func execute(_ request: APIOperationRequest) async throws -> APIOperation {
        var headers = try request.validate()
        var url = request.endpoint
        if let integrationID = request.integrationID {
            let integration = try await integrations.get(integrationID)
            if url.hasPrefix("/") {
                let base = integration.endpointURL.hasSuffix("/") ? String(integration.endpointURL.dropLast()) : integration.endpointURL
                url = base + url
            }
            headers.merge(try await auth.headers(for: try await integrations.authConfig(for: integrationID))) { _, auth in auth }
        } else if url.hasPrefix("/") {
            throw HubError.validation(field: "endpoint", reason: "a path needs integration_id; otherwise give an absolute URL")
        }
        let operation = try await operations.log(request)
        var body: Data?
        if let payload = request.payload, payload != .null {
            body = Data(payload.jsonText.utf8)
            if !headers.keys.contains(where: { $0.lowercased() == "content-type" }) { headers["Content-Type"] = "application/json" }
        }
        let outcome = await gateway.send(
            method: request.operationType.rawValue, url: url, headers: headers, body: body, timeout: .seconds(operation.timeout))
        var responseData: JSONValue?
        if outcome.statusCode != nil, !outcome.body.isEmpty {
            responseData = (try? JSONDecoder().decode(JSONValue.self, from: outcome.body)) ?? .string(String(decoding: outcome.body, as: UTF8.self))
        }
        let error = outcome.error ?? outcome.statusCode.flatMap { $0 >= 400 ? "the endpoint answered \($0)" : nil }
        return try await operations.complete(
            operation.id,
            APIOperationOutcome(statusCode: outcome.statusCode, responseData: responseData, executionTime: outcome.elapsedMilliseconds, errorMessage: error))
    }
}
