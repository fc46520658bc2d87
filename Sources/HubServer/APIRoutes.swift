import Foundation
import HTTPTypes
import HubCore
import HubEngine
import HubStore
import Hummingbird

/// Registers every route of the API on a router and records it for `/openapi.json`.
final class APIRoutes: @unchecked Sendable {
    private(set) var specs: [RouteSpec] = []
    let router: Router<HubRequestContext>
    let stores: HubStores
    let bodyLimit: Int
    let gateway: OutboundGateway
    let tester: ConnectivityTester
    let executor: OperationExecutor
    let delivery: WebhookDeliveryStore
    /// Every served path and its methods, for 405 answers.
    let table: RouteTable

    init(
        router: Router<HubRequestContext>, stores: HubStores, bodyLimit: Int, gateway: OutboundGateway, table: RouteTable,
        responseBodyCap: Int = 64 * 1024
    ) {
        self.router = router
        self.table = table
        self.stores = stores
        self.bodyLimit = bodyLimit
        self.gateway = gateway
        let auth = AuthApplier(gateway: gateway)
        self.tester = ConnectivityTester(
            gateway: gateway, auth: auth, integrations: stores.integrations, webhooks: stores.webhooks, connections: stores.connections)
        self.executor = OperationExecutor(
            gateway: gateway, auth: auth, integrations: stores.integrations, operations: stores.apiOperations,
            responseBodyCap: responseBodyCap)
        self.delivery = WebhookDeliveryStore(database: stores.database)
    }

    typealias Handler = @Sendable (Request, HubRequestContext) async throws -> Response

    /// Adds a route under `group` (`nil` for public routes) and documents it.
    func add(
        _ method: HTTPRequest.Method, _ path: String, on group: RouterGroup<HubRequestContext>?, summary: String, tag: String,
        request: String? = nil, query: [QueryParameter] = [], success: Int = 200, response: String?, errors: [Int] = [],
        createdID: String? = nil, bodyOptional: Bool = false, handler: @escaping Handler
    ) {
        // Grouped routes are registered relative to the group (`/v1`).
        let segments = path.split(separator: "/").dropFirst(group == nil ? 0 : 1)
        // `{path}` is a catch-all (the rest of the path); other `{name}` segments are single parameters.
        let hummingbirdPath = segments.map { $0 == "{path}" ? "**" : $0.hasPrefix("{") ? ":" + $0.dropFirst().dropLast() : $0 }
            .joined(separator: "/")
        let routePath = RouterPath("/" + hummingbirdPath)
        if let group {
            group.on(routePath, method: method, use: handler)
        } else {
            router.on(routePath, method: method, use: handler)
        }
        table.add(method, path)
        var statuses = errors
        if request != nil { statuses += [400, 413, 415, 422] }
        if group != nil { statuses.append(503) }
        specs.append(RouteSpec(
            method: method, path: path, summary: summary, tag: tag, requestSchema: request,
            query: query, successStatus: success, successSchema: response,
            errorStatuses: statuses, authenticated: group != nil, createdID: createdID, bodyOptional: bodyOptional))
    }

    /// Registers the `/v1` routes behind API-key authentication.
    func registerV1() {
        let v1 = router.group("v1").add(middleware: APIKeyMiddleware(keys: stores.apiKeys))
        registerIntegrations(v1)
        registerSyncJobs(v1)
        registerRecordsAndSchedules(v1)
        registerAPIOperations(v1)
        registerWebhooks(v1)
        registerConnections(v1)
    }

    /// Reads a JSON object body with this server's limit.
    func body(_ request: Request) async throws -> JSONBody { try await JSONBody.read(request, limit: bodyLimit) }

    /// The body, or no members when the request has none (a body that is sent must be JSON).
    func body(_ request: Request, optional: Bool) async throws -> JSONBody {
        if optional, request.headers[.contentType] == nil, (request.headers[.contentLength].flatMap(Int.init) ?? 0) == 0 {
            return JSONBody(members: [:])
        }
        return try await body(request)
    }

    /// Parses the `{id}` path parameter; an id that is not a UUID cannot exist, so it is a 404.
    static func id<Entity>(_ context: HubRequestContext, _ entity: String) throws -> Identifier<Entity> {
        let text = context.parameters.get("id") ?? ""
        guard let uuid = UUID(uuidString: text) else { throw HubError.notFound(entity: entity, id: text) }
        return Identifier(uuid)
    }

    // MARK: - Integrations (DAO-MDE-03-08-01)

    func registerIntegrations(_ v1: RouterGroup<HubRequestContext>) {
        let stores = self.stores
        let tag = "Integrations"
        add(.post, "/v1/integrations", on: v1, summary: "Register an external system (design step 1)", tag: tag,
            request: "IntegrationCreate", success: 201, response: "Integration", errors: [409], createdID: "integration_id") { request, _ in
            let body = try await self.body(request)
            try body.allowOnly(["system_id", "integration_type", "endpoint_url", "auth_config", "mapping_config"])
            let integration = try await stores.integrations.register(IntegrationRegistration(
                systemID: try body.string("system_id"), integrationType: try body.string("integration_type"),
                endpointURL: try body.string("endpoint_url"), authConfig: try body.json("auth_config"),
                mappingConfig: body.optionalJSON("mapping_config")))
            return integration.json.response(status: .created)
        }
        add(.get, "/v1/integrations", on: v1, summary: "List integrations, newest first", tag: tag,
            query: QueryParameter.paging, response: "IntegrationPage",
            errors: [422]) { request, _ in
            try await stores.integrations.list(try request.pageRequest()).json(\.json).response()
        }
        add(.get, "/v1/integrations/{id}", on: v1, summary: "Get an integration (auth_config masked)", tag: tag,
            response: "Integration", errors: [404]) { _, context in
            try await stores.integrations.get(try Self.id(context, "integration")).json.response()
        }
        add(.patch, "/v1/integrations/{id}", on: v1, summary: "Update the configuration (bumps config_version)", tag: tag,
            request: "IntegrationUpdate", response: "Integration", errors: [404, 409]) { request, context in
            let id: IntegrationID = try Self.id(context, "integration")
            let body = try await self.body(request)
            try body.allowOnly(["integration_type", "endpoint_url", "auth_config", "mapping_config", "status"])
            let update = IntegrationConfigUpdate(
                integrationType: try body.optionalString("integration_type"), endpointURL: try body.optionalString("endpoint_url"),
                authConfig: body.optionalJSON("auth_config"), mappingConfig: body.optionalJSON("mapping_config"),
                status: try body.optionalEnum("status", IntegrationStatus.self))
            return try await stores.integrations.updateConfig(id, update).json.response()
        }
        let tester = self.tester
        add(.post, "/v1/integrations/{id}/test", on: v1, summary: "Test connectivity now: a GET of the endpoint with the integration's auth (design step 2)", tag: tag,
            response: "IntegrationTested", errors: [404]) { _, context in
            let (integration, result) = try await tester.testIntegration(try Self.id(context, "integration"))
            guard case .object(var members) = integration.json else { return integration.json.response() }
            members["test_result"] = result.details
            return JSONValue.object(members).response()
        }
        for method in [HTTPRequest.Method.get, .post, .put, .patch, .delete] {
            add(method, "/v1/integrations/{id}/proxy/{path}", on: v1,
                summary: "Call the integration's API at {path} (with the query) with its sealed auth; logged as an API operation. Answers with the upstream status and body and an X-Hub-Operation-Id header; 502 when no answer arrived.",
                tag: tag, response: "UpstreamBody", errors: [404, 415, 422, 502]) { request, context in
                try await self.proxy(method, request, context)
            }
        }
        add(.delete, "/v1/integrations/{id}", on: v1, summary: "Delete an integration with its sync jobs", tag: tag,
            success: 204, response: nil, errors: [404, 409]) { _, context in
            try await stores.integrations.delete(try Self.id(context, "integration"))
            return Response(status: .noContent)
        }
    }

    /// Forwards one call to an integration through the executor (design steps 1-3 of the API Operation DAO).
    func proxy(_ method: HTTPRequest.Method, _ request: Request, _ context: HubRequestContext) async throws -> Response {
        let id: IntegrationID = try Self.id(context, "integration")
        guard let operationType = HubCore.HTTPMethod(rawValue: method.rawValue) else {
            throw Problem(status: .methodNotAllowed, title: "Method not allowed", detail: "\(method) cannot be proxied")
        }
        var endpoint = "/" + context.parameters.getCatchAll().joined(separator: "/")
        if let query = request.uri.query, !query.isEmpty { endpoint += "?" + query }
        var payload: JSONValue?
        let buffer = try await request.body.collect(upTo: bodyLimit)
        if buffer.readableBytes > 0 {
            let type = request.headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
            guard type == "application/json" else {
                throw Problem(status: .unsupportedMediaType, title: "Unsupported media type", detail: "proxy bodies are JSON: send Content-Type: application/json")
            }
            guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: buffer)) else {
                throw Problem(status: .badRequest, title: "Malformed JSON", detail: "the body is not valid JSON")
            }
            payload = value
        }
        var headers: JSONValue?
        if let accept = request.headers[.accept] { headers = ["Accept": .string(accept)] }
        let operation = try await executor.execute(APIOperationRequest(
            operationType: operationType, endpoint: endpoint, headers: headers, payload: payload, integrationID: id))
        guard let status = operation.statusCode else {
            var problem = Problem(status: .badGateway, title: "Bad gateway", detail: operation.errorMessage ?? "no answer from the integration")
            problem.headers[HTTPField.Name("X-Hub-Operation-Id")!] = operation.id.description
            throw problem
        }
        var responseHeaders: HTTPFields = [HTTPField.Name("X-Hub-Operation-Id")!: operation.id.description]
        let body: ByteBuffer
        switch operation.responseData {
        case .string(let text)?:
            responseHeaders[.contentType] = "text/plain; charset=utf-8"
            body = ByteBuffer(string: text)
        case let value?:
            responseHeaders[.contentType] = "application/json"
            body = ByteBuffer(string: value.jsonText)
        case nil:
            body = ByteBuffer()
        }
        return Response(status: HTTPResponse.Status(code: status), headers: responseHeaders, body: .init(byteBuffer: body))
    }

    // MARK: - Sync jobs (DAO-MDE-03-08-02)

    func registerSyncJobs(_ v1: RouterGroup<HubRequestContext>) {
        let stores = self.stores
        let engine = SyncEngineStore(database: stores.database)
        let tag = "Sync jobs"
        add(.post, "/v1/sync-jobs", on: v1, summary: "Start a sync job (design step 1)", tag: tag,
            request: "SyncJobCreate", success: 201, response: "SyncJob", errors: [409], createdID: "sync_job_id") { request, _ in
            let body = try await self.body(request)
            try body.allowOnly(["integration_id", "sync_type", "entity_type", "filters", "batch_size"])
            let integrationID = try IntegrationID(parsing: try body.string("integration_id"), field: "integration_id")
            guard let syncType = try body.optionalEnum("sync_type", SyncType.self) else {
                throw HubError.validation(field: "sync_type", reason: "is required")
            }
            let job = try await stores.syncJobs.start(SyncJobRequest(
                integrationID: integrationID, syncType: syncType, entityType: try body.string("entity_type"),
                filters: body.optionalJSON("filters"), batchSize: try body.optionalInt("batch_size")))
            return job.json.response(status: .created)
        }
        add(.get, "/v1/sync-jobs", on: v1, summary: "List sync jobs, newest first", tag: tag,
            query: [.uuid("integration_id", "only this integration's jobs"), .oneOf("status", "only jobs in this state", SyncJobStatus.self),
                    .string("entity_type", "only this entity type", schema: APIDocument.pathSchema("entity_type"))] + QueryParameter.paging,
            response: "SyncJobPage", errors: [422]) { request, _ in
            var filter = SyncJobFilter()
            if let text = request.query("integration_id") { filter.integrationID = try IntegrationID(parsing: text, field: "integration_id") }
            if let text = request.query("status") { filter.status = try Validate.oneOf(text, as: SyncJobStatus.self, field: "status") }
            if let text = request.query("entity_type") {
                try SyncJob.validateEntityType(text)
                filter.entityType = text
            }
            return try await stores.syncJobs.list(filter, try request.pageRequest()).json(\.json).response()
        }
        add(.get, "/v1/sync-jobs/{id}", on: v1, summary: "Get a sync job with its batches", tag: tag,
            response: "SyncJobDetail", errors: [404]) { _, context in
            let id: SyncJobID = try Self.id(context, "sync job")
            let job = try await stores.syncJobs.get(id)
            let batches = try await stores.syncJobs.batches(of: id)
            guard case .object(var members) = job.json else { return job.json.response() }
            members["batches"] = .array(batches.map(\.json))
            members["errors"] = .array(try await engine.errors(of: id).map(\.json))
            return JSONValue.object(members).response()
        }
        add(.post, "/v1/sync-jobs/{id}/cancel", on: v1, summary: "Cancel a running sync job (design step 3, status cancelled)", tag: tag,
            response: "SyncJob", errors: [404, 409]) { _, context in
            let id: SyncJobID = try Self.id(context, "sync job")
            let job = try await stores.syncJobs.get(id)
            return try await stores.syncJobs.finalize(id, status: .cancelled, errorsCount: Int(job.errorsCount)).json.response()
        }
    }

    /// Synced records and sync schedules of an integration.
    func registerRecordsAndSchedules(_ v1: RouterGroup<HubRequestContext>) {
        let stores = self.stores
        let engine = SyncEngineStore(database: stores.database)
        let tag = "Synced records"
        add(.get, "/v1/integrations/{id}/records/{entity_type}", on: v1, summary: "List synced records in change order (keyset cursor)", tag: tag,
            query: [.dateTime("modified_after", "only records changed after this RFC 3339 time"),
                    .oneOf("change", "only records whose last change was this", RecordChange.self), .limit,
                    .cursor(CursorPattern.record)],
            response: "SyncRecordPage", errors: [404, 422]) { request, context in
            let id: IntegrationID = try Self.id(context, "integration")
            _ = try await stores.integrations.get(id)
            let entityType = context.parameters.get("entity_type") ?? ""
            try SyncJobRequest(integrationID: id, syncType: .full, entityType: entityType).validate()
            var filter = SyncRecordFilter()
            if let text = request.query("modified_after") { filter.modifiedAfter = try RFC3339.parse(text, field: "modified_after") }
            if let text = request.query("change") { filter.change = try Validate.oneOf(text, as: RecordChange.self, field: "change") }
            return try await engine.records(id, entityType: entityType, filter: filter, page: try request.pageRequest()).json(\.json).response()
        }
        add(.put, "/v1/integrations/{id}/schedules", on: v1, summary: "Sync an entity type every N minutes (creates or replaces its schedule)", tag: tag,
            request: "SyncScheduleCreate", response: "SyncSchedule", errors: [404], createdID: "entity_type") { request, context in
            let id: IntegrationID = try Self.id(context, "integration")
            _ = try await stores.integrations.get(id)
            let body = try await self.body(request)
            try body.allowOnly(["entity_type", "sync_type", "interval_minutes"])
            guard let syncType = try body.optionalEnum("sync_type", SyncType.self) else {
                throw HubError.validation(field: "sync_type", reason: "is required")
            }
            guard let minutes = try body.optionalInt("interval_minutes") else {
                throw HubError.validation(field: "interval_minutes", reason: "is required")
            }
            return try await engine.schedule(id, entityType: try body.string("entity_type"), syncType: syncType, intervalMinutes: minutes)
                .json.response()
        }
        add(.get, "/v1/integrations/{id}/schedules", on: v1, summary: "List an integration's sync schedules", tag: tag,
            response: "SyncScheduleList", errors: [404]) { _, context in
            let id: IntegrationID = try Self.id(context, "integration")
            _ = try await stores.integrations.get(id)
            return JSONValue.object(["items": .array(try await engine.schedules(of: id).map(\.json))]).response()
        }
        add(.delete, "/v1/integrations/{id}/schedules/{entity_type}", on: v1, summary: "Remove a sync schedule", tag: tag,
            success: 204, response: nil, errors: [404]) { _, context in
            let id: IntegrationID = try Self.id(context, "integration")
            guard try await engine.unschedule(id, entityType: context.parameters.get("entity_type") ?? "") else {
                throw HubError.notFound(entity: "sync schedule", id: context.parameters.get("entity_type") ?? "")
            }
            return Response(status: .noContent)
        }
    }

    // MARK: - API operations (DAO-MDE-03-08-03)

    func registerAPIOperations(_ v1: RouterGroup<HubRequestContext>) {
        let stores = self.stores
        let tag = "API operations"
        add(.post, "/v1/api-operations", on: v1, summary: "Execute an API call through the gateway: log, execute, measure, fold into statistics (design steps 1-3)", tag: tag,
            request: "APIOperationCreate", success: 201, response: "APIOperationExecuted", errors: [404],
            createdID: "operation_id") { request, _ in
            let body = try await self.body(request)
            try body.allowOnly(["operation_type", "endpoint", "headers", "payload", "timeout", "integration_id", "retries"])
            guard let method = try body.optionalEnum("operation_type", HubCore.HTTPMethod.self) else {
                throw HubError.validation(field: "operation_type", reason: "is required")
            }
            let integrationID = try body.optionalString("integration_id").map { try IntegrationID(parsing: $0, field: "integration_id") }
            let attempts = try await self.executor.execute(
                APIOperationRequest(
                    operationType: method, endpoint: try body.string("endpoint"), headers: body.optionalJSON("headers"),
                    payload: body.optionalJSON("payload"), timeout: try body.optionalInt("timeout"), integrationID: integrationID),
                retries: try body.optionalInt("retries") ?? 0)
            guard let last = attempts.last, case .object(var members) = last.json else { throw HubError.unavailable(reason: "no attempt ran") }
            members["attempts"] = .array(attempts.map { .string($0.id.description) })
            return JSONValue.object(members).response(status: .created)
        }
        add(.get, "/v1/api-operations", on: v1, summary: "List API operations, newest first", tag: tag,
            query: [.uuid("integration_id", "only this integration's calls"), .oneOf("status", "only calls in this state", APIOperationStatus.self),
                    .dateTime("from", "logged at or after this RFC 3339 time"), .dateTime("to", "logged before this RFC 3339 time")]
                + QueryParameter.paging,
            response: "APIOperationPage", errors: [422]) { request, _ in
            var filter = APIOperationFilter()
            if let text = request.query("from") { filter.createdFrom = try RFC3339.parse(text, field: "from") }
            if let text = request.query("to") { filter.createdBefore = try RFC3339.parse(text, field: "to") }
            if let text = request.query("integration_id") { filter.integrationID = try IntegrationID(parsing: text, field: "integration_id") }
            if let text = request.query("status") { filter.status = try Validate.oneOf(text, as: APIOperationStatus.self, field: "status") }
            return try await stores.apiOperations.list(filter, try request.pageRequest()).json(\.json).response()
        }
        add(.get, "/v1/api-operations/{id}", on: v1, summary: "Get an API operation (credential headers redacted)", tag: tag,
            response: "APIOperation", errors: [404]) { _, context in
            try await stores.apiOperations.get(try Self.id(context, "API operation")).json.response()
        }
        add(.get, "/v1/api-statistics", on: v1, summary: "Daily statistics by endpoint template, method, integration and day, with error classes and p50/p95/p99 (design step 3)", tag: tag,
            query: [.string("endpoint", "endpoint or its template (/users/{id})", schema: ["type": "string", "minLength": 1]),
                    .oneOf("method", "only this method", HubCore.HTTPMethod.self),
                    .uuid("integration_id", "only this integration's calls"), .date("from", "first UTC day, YYYY-MM-DD"),
                    .date("to", "last UTC day, YYYY-MM-DD"),
                    .string("merge", "true: one row per endpoint, method and integration over the days", schema: Schemas.boolean)],
            response: "APIStatisticsList", errors: [422]) { request, _ in
            if request.query("endpoint") == "" { throw HubError.validation(field: "endpoint", reason: "must not be empty") }
            var query = APIStatisticsQuery(endpoint: request.query("endpoint"), fromDay: request.query("from"), toDay: request.query("to"))
            if let text = request.query("method") { query.operationType = try Validate.oneOf(text, as: HubCore.HTTPMethod.self, field: "method") }
            if let text = request.query("integration_id") { query.integrationID = try IntegrationID(parsing: text, field: "integration_id") }
            var rows = try await stores.apiOperations.statistics(query)
            switch request.query("merge") {
            case nil, "false": break
            case "true": rows = APIStatistics.merged(rows)
            default: throw HubError.validation(field: "merge", reason: "must be true or false")
            }
            return JSONValue.object(["items": .array(rows.map(\.json))]).response()
        }
    }

    // MARK: - Webhooks (DAO-MDE-03-08-04)

    func registerWebhooks(_ v1: RouterGroup<HubRequestContext>) {
        let stores = self.stores
        let tag = "Webhooks"
        add(.post, "/v1/webhooks", on: v1, summary: "Register a webhook (design steps 1 and 3); the secret is shown only here", tag: tag,
            request: "WebhookCreate", success: 201, response: "WebhookCreated", createdID: "webhook_id") { request, _ in
            let body = try await self.body(request)
            try body.allowOnly(["webhook_url", "event_types", "secret_key", "retry_config", "headers", "ordered", "rate_limit"])
            guard let eventTypes = try body.optionalStringArray("event_types") else {
                throw HubError.validation(field: "event_types", reason: "is required")
            }
            let registered = try await stores.webhooks.register(WebhookRegistration(
                webhookURL: try body.string("webhook_url"), eventTypes: eventTypes, secretKey: try body.optionalString("secret_key"),
                retryConfig: body.optionalJSON("retry_config"), headers: body.optionalJSON("headers"),
                ordered: try body.optionalBool("ordered") ?? false, rateLimit: try body.optionalInt("rate_limit")))
            guard case .object(var members) = registered.webhook.json else { return registered.webhook.json.response() }
            members["secret"] = .string(registered.secret)
            return JSONValue.object(members).response(status: .created)
        }
        add(.get, "/v1/webhooks", on: v1, summary: "List webhooks, newest first", tag: tag,
            query: QueryParameter.paging, response: "WebhookPage",
            errors: [422]) { request, _ in
            try await stores.webhooks.list(try request.pageRequest()).json(\.json).response()
        }
        add(.get, "/v1/webhooks/{id}", on: v1, summary: "Get a webhook (never its secret)", tag: tag,
            response: "Webhook", errors: [404]) { _, context in
            try await stores.webhooks.get(try Self.id(context, "webhook")).json.response()
        }
        add(.patch, "/v1/webhooks/{id}", on: v1, summary: "Update a webhook", tag: tag,
            request: "WebhookUpdate", response: "Webhook", errors: [404]) { request, context in
            let id: WebhookID = try Self.id(context, "webhook")
            let body = try await self.body(request)
            try body.allowOnly(["webhook_url", "event_types", "retry_config", "headers", "status", "ordered", "rate_limit"])
            let update = WebhookUpdate(
                webhookURL: try body.optionalString("webhook_url"), eventTypes: try body.optionalStringArray("event_types"),
                retryConfig: body.optionalJSON("retry_config"), headers: body.optionalJSON("headers"),
                status: try body.optionalEnum("status", WebhookStatus.self), ordered: try body.optionalBool("ordered"),
                rateLimit: try body.optionalInt("rate_limit"))
            return try await stores.webhooks.update(id, update).json.response()
        }
        add(.delete, "/v1/webhooks/{id}", on: v1, summary: "Delete a webhook and its statistics", tag: tag,
            success: 204, response: nil, errors: [404]) { _, context in
            try await stores.webhooks.delete(try Self.id(context, "webhook"))
            return Response(status: .noContent)
        }
        add(.post, "/v1/webhooks/{id}/test", on: v1, summary: "Send a signed webhook.test event now and record the result (design step 2)", tag: tag,
            response: "Webhook", errors: [404, 409]) { _, context in
            try await self.tester.testWebhook(try Self.id(context, "webhook")).0.json.response()
        }
        let delivery = self.delivery
        add(.get, "/v1/webhooks/{id}/statistics", on: v1, summary: "Delivery statistics of a webhook", tag: tag,
            response: "WebhookStatistics", errors: [404]) { _, context in
            let id: WebhookID = try Self.id(context, "webhook")
            guard case .object(var members) = try await stores.webhooks.get(id).statisticsJSON else { throw HubError.notFound(entity: "webhook", id: id.description) }
            let counts = try await delivery.counts(of: id)
            members["messages"] = .object(Dictionary(uniqueKeysWithValues: WebhookMessageStatus.allCases.map {
                ($0.rawValue, JSONValue.int(counts[$0] ?? 0))
            }))
            return JSONValue.object(members).response()
        }
        registerDeliveries(v1)
    }

    /// Messages, attempts, replay and recovery, secret rotation, enabling and disabling.
    func registerDeliveries(_ v1: RouterGroup<HubRequestContext>) {
        let stores = self.stores
        let delivery = self.delivery
        let tag = "Webhooks"
        add(.get, "/v1/webhooks/{id}/messages", on: v1, summary: "Messages of a webhook, newest first", tag: tag,
            query: [.oneOf("status", "only messages in this state", WebhookMessageStatus.self), .limit, .cursor(CursorPattern.message)],
            response: "WebhookMessagePage", errors: [404, 422]) { request, context in
            let status = try request.query("status").map { text in
                guard let status = WebhookMessageStatus(rawValue: text) else {
                    throw HubError.validation(field: "status", reason: "must be one of pending, succeeded, failed")
                }
                return status
            }
            return try await delivery.messages(of: try Self.id(context, "webhook"), status: status, page: try request.pageRequest())
                .json(\.json).response()
        }
        add(.get, "/v1/webhooks/{id}/messages/{message_id}", on: v1, summary: "One message with its payload and state", tag: tag,
            response: "WebhookMessage", errors: [404]) { _, context in
            let sequence = try Self.messageSequence(context)
            return try await delivery.message(sequence, of: try Self.id(context, "webhook")).json.response()
        }
        add(.get, "/v1/webhooks/{id}/messages/{message_id}/attempts", on: v1, summary: "Every delivery attempt of a message", tag: tag,
            response: "WebhookAttemptList", errors: [404]) { _, context in
            let sequence = try Self.messageSequence(context)
            let attempts = try await delivery.attempts(of: sequence, webhookID: try Self.id(context, "webhook"))
            return JSONValue.object(["items": .array(attempts.map(\.json))]).response()
        }
        add(.post, "/v1/webhooks/{id}/messages/{message_id}/replay", on: v1,
            summary: "Send a message again now (same webhook-id), with a fresh retry schedule", tag: tag,
            response: "WebhookMessage", errors: [404]) { _, context in
            let sequence = try Self.messageSequence(context)
            return try await delivery.replay(sequence, of: try Self.id(context, "webhook")).json.response()
        }
        add(.post, "/v1/webhooks/{id}/recover", on: v1, summary: "Send again every failed message created in a time range", tag: tag,
            request: "WebhookRecover", response: "WebhookRecovered", errors: [404, 422]) { request, context in
            let body = try await self.body(request)
            try body.allowOnly(["since", "until"])
            let since = try RFC3339.parse(try body.string("since"), field: "since")
            let until = try body.optionalString("until").map { try RFC3339.parse($0, field: "until") }
            let count = try await delivery.recover(try Self.id(context, "webhook"), since: since, until: until)
            return JSONValue.object(["recovered": .int(Int64(count))]).response()
        }
        add(.post, "/v1/webhooks/{id}/rotate-secret", on: v1,
            summary: "Replace the signing secret; the old one keeps signing for grace_seconds (default 86400)", tag: tag,
            request: "WebhookRotate", response: "WebhookRotated", errors: [404, 422], bodyOptional: true) { request, context in
            let id: WebhookID = try Self.id(context, "webhook")
            let body = try await self.body(request, optional: true)
            try body.allowOnly(["secret_key", "grace_seconds"])
            let grace = try body.optionalInt("grace_seconds") ?? 86_400
            let rotated = try await stores.webhooks.rotateSecret(id, newSecret: try body.optionalString("secret_key"), grace: .seconds(grace))
            return JSONValue.object([
                "webhook_id": .string(id.description), "secret": .string(rotated.secret),
                "previous_valid_until": .timestamp(rotated.previousValidUntil),
            ]).response()
        }
        add(.post, "/v1/webhooks/{id}/enable", on: v1, summary: "Enable a webhook (resets its failing clock)", tag: tag,
            response: "Webhook", errors: [404]) { _, context in
            try await stores.webhooks.update(try Self.id(context, "webhook"), WebhookUpdate(status: .active)).json.response()
        }
        add(.post, "/v1/webhooks/{id}/disable", on: v1, summary: "Disable a webhook: nothing is sent to it until it is enabled", tag: tag,
            response: "Webhook", errors: [404]) { _, context in
            try await stores.webhooks.update(try Self.id(context, "webhook"), WebhookUpdate(status: .disabled)).json.response()
        }
    }

    static func messageSequence(_ context: HubRequestContext) throws -> Int64 {
        let text = context.parameters.get("message_id") ?? ""
        guard let sequence = try? WebhookMessage.sequence(of: text) else { throw HubError.notFound(entity: "message", id: text) }
        return sequence
    }

    // MARK: - Connections (DAO-MDE-03-08-05)

    func registerConnections(_ v1: RouterGroup<HubRequestContext>) {
        let stores = self.stores
        let tag = "Connections"
        add(.post, "/v1/connections", on: v1,
            summary: "Create a system connection (design step 1) and run its initial test (steps 2-4): check_result says what it found",
            tag: tag, request: "ConnectionCreate", success: 201, response: "ConnectionChecked", errors: [409], createdID: "connection_id") { request, _ in
            let body = try await self.body(request)
            try body.allowOnly(["system_name", "connection_type", "endpoint", "credentials", "health_check_interval", "retries"])
            guard let type = try body.optionalEnum("connection_type", ConnectionType.self) else {
                throw HubError.validation(field: "connection_type", reason: "is required")
            }
            let connection = try await stores.connections.create(ConnectionRegistration(
                systemName: try body.string("system_name"), connectionType: type, endpoint: try body.string("endpoint"),
                credentials: try body.json("credentials"), healthCheckInterval: try body.optionalInt("health_check_interval"),
                retries: try body.optionalInt("retries")))
            let (tested, result) = try await self.tester.checkConnection(connection.id)
            guard case .object(var members) = tested.json else { return tested.json.response(status: .created) }
            members["check_result"] = result.details
            return JSONValue.object(members).response(status: .created)
        }
        add(.get, "/v1/connections", on: v1, summary: "List connections, newest first", tag: tag,
            query: QueryParameter.paging, response: "ConnectionPage",
            errors: [422]) { request, _ in
            try await stores.connections.list(try request.pageRequest()).json(\.json).response()
        }
        add(.get, "/v1/connections/{id}", on: v1, summary: "Get a connection (credentials masked)", tag: tag,
            response: "Connection", errors: [404]) { _, context in
            try await stores.connections.get(try Self.id(context, "connection")).json.response()
        }
        add(.delete, "/v1/connections/{id}", on: v1, summary: "Delete a connection and its checks", tag: tag,
            success: 204, response: nil, errors: [404]) { _, context in
            try await stores.connections.delete(try Self.id(context, "connection"))
            return Response(status: .noContent)
        }
        add(.post, "/v1/connections/{id}/check", on: v1, summary: "Probe the connection now and record the check (design steps 2-4)", tag: tag,
            response: "ConnectionChecked", errors: [404]) { _, context in
            let (connection, result) = try await self.tester.checkConnection(try Self.id(context, "connection"))
            guard case .object(var members) = connection.json else { return connection.json.response() }
            members["check_result"] = result.details
            return JSONValue.object(members).response()
        }
        add(.get, "/v1/connections/{id}/health", on: v1, summary: "Health check history, newest first", tag: tag,
            query: QueryParameter.paging, response: "HealthCheckPage",
            errors: [404, 422]) { request, context in
            try await stores.connections.healthHistory(try Self.id(context, "connection"), try request.pageRequest()).json(\.json).response()
        }
        let monitor = HealthMonitorStore(database: stores.database)
        add(.get, "/v1/connections/{id}/uptime", on: v1,
            summary: "Uptime and response times: the design's all-time figures and the 24h, 7d, 30d and all-time windows", tag: tag,
            response: "Uptime", errors: [404]) { _, context in
            let id: ConnectionID = try Self.id(context, "connection")
            guard case .object(var members) = try await stores.connections.get(id).uptimeJSON else { throw HubError.notFound(entity: "connection", id: id.description) }
            members["windows"] = .array(try await monitor.uptime(id).map(\.json))
            return JSONValue.object(members).response()
        }
        add(.get, "/v1/connections/{id}/maintenance", on: v1, summary: "Maintenance windows of a connection, earliest first", tag: tag,
            response: "MaintenanceWindowList", errors: [404]) { _, context in
            JSONValue.object(["items": .array(try await monitor.maintenance(try Self.id(context, "connection")).map(\.json))]).response()
        }
        add(.post, "/v1/connections/{id}/maintenance", on: v1,
            summary: "Add a maintenance window: checks inside it are kept but not counted in uptime and raise no events", tag: tag,
            request: "MaintenanceWindowCreate", success: 201, response: "MaintenanceWindow", errors: [404, 422],
            createdID: "window_id") { request, context in
            let body = try await self.body(request)
            try body.allowOnly(["starts_at", "ends_at", "reason"])
            let window = try await monitor.addMaintenance(
                try Self.id(context, "connection"), startsAt: try RFC3339.parse(try body.string("starts_at"), field: "starts_at"),
                endsAt: try RFC3339.parse(try body.string("ends_at"), field: "ends_at"), reason: try body.optionalString("reason"))
            return window.json.response(status: .created)
        }
        add(.delete, "/v1/connections/{id}/maintenance/{window_id}", on: v1, summary: "Delete a maintenance window", tag: tag,
            success: 204, response: nil, errors: [404]) { _, context in
            let text = context.parameters.get("window_id") ?? ""
            guard let window = UUID(uuidString: text) else { throw HubError.notFound(entity: "maintenance window", id: text) }
            try await monitor.deleteMaintenance(try Self.id(context, "connection"), window: window)
            return Response(status: .noContent)
        }
    }
}
