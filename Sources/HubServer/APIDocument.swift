import HTTPTypes
import HubCore
import Hummingbird

/// One documented route: what `/openapi.json` says about it. Routes are registered through ``APIRoutes/add``, so
/// every route is documented and every documented route exists.
struct RouteSpec: Sendable {
    var method: HTTPRequest.Method
    /// OpenAPI path template, e.g. `/v1/integrations/{id}`.
    var path: String
    var summary: String
    var tag: String
    var requestSchema: String?
    var query: [QueryParameter]
    var successStatus: Int
    /// Component name of the success body; `nil` for an empty body (204).
    var successSchema: String?
    var errorStatuses: [Int]
    var authenticated: Bool
    /// The success body's member holding the created resource's id (creates only): the document links the create to
    /// every operation on that resource (OpenAPI `links`), so a client or a stateful fuzzer can follow them.
    var createdID: String? = nil

    /// `get_v1_integrations_id` for `GET /v1/integrations/{id}`.
    var operationID: String {
        method.rawValue.lowercased()
            + path.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "{", with: "")
            .replacingOccurrences(of: "}", with: "").replacingOccurrences(of: "-", with: "_")
    }
}

/// Builds the OpenAPI 3.1 document from the registered routes and the component schemas.
enum APIDocument {
    static func build(routes: [RouteSpec]) -> JSONValue {
        var paths: [String: [String: JSONValue]] = [:]
        for route in routes {
            var responses: [String: JSONValue] = [:]
            if let schema = route.successSchema {
                var success: [String: JSONValue] = [
                    "description": "Success",
                    "content": ["application/json": ["schema": ["$ref": .string("#/components/schemas/\(schema)")]]],
                ]
                if let field = route.createdID { success["links"] = .object(links(from: route, field: field, routes: routes)) }
                responses["\(route.successStatus)"] = .object(success)
            } else {
                responses["\(route.successStatus)"] = ["description": "Success, no body"]
            }
            var errors = route.errorStatuses
            if route.authenticated { errors.append(401) }
            errors.append(500)
            for status in Set(errors).sorted() {
                responses["\(status)"] = [
                    "description": .string(HTTPResponse.Status(code: status).reasonPhrase),
                    "content": ["application/problem+json": ["schema": ["$ref": "#/components/schemas/Problem"]]],
                ]
            }
            var operation: [String: JSONValue] = [
                "summary": .string(route.summary), "tags": [.string(route.tag)],
                "operationId": .string(route.operationID),
                "responses": .object(responses),
            ]
            var parameters: [JSONValue] = route.path.split(separator: "/").filter { $0.hasPrefix("{") }.map { segment in
                let name = String(segment.dropFirst().dropLast())
                return ["name": .string(name), "in": "path", "required": true, "schema": pathSchema(name)]
            }
            parameters += route.query.map { item in
                ["name": .string(item.name), "in": "query", "required": false, "description": .string(item.description), "schema": item.schema]
            }
            if !parameters.isEmpty { operation["parameters"] = .array(parameters) }
            if let schema = route.requestSchema {
                operation["requestBody"] = [
                    "required": true,
                    "content": ["application/json": ["schema": ["$ref": .string("#/components/schemas/\(schema)")]]],
                ]
            }
            if !route.authenticated { operation["security"] = [] }
            paths[route.path, default: [:]][route.method.rawValue.lowercased()] = .object(operation)
        }
        return [
            "openapi": "3.1.0",
            "info": [
                "title": "IntegrationHub API", "version": "1.0.0",
                "description": "Integrations, synchronization jobs, API operations, webhooks and connectivity (DAO-MDE-03-08). Timestamps are RFC 3339 UTC; lists are paginated with `limit` (1-500, default 50) and the opaque `cursor` from `next_cursor`; errors are RFC 9457 problem+json.",
            ],
            "servers": [["url": "/"]],
            "security": [["bearerAuth": []]],
            "paths": .object(paths.mapValues { .object($0) }),
            "components": ["securitySchemes": ["bearerAuth": ["type": "http", "scheme": "bearer", "description": "An API key from `hub keys create`"]], "schemas": .object(Schemas.all)],
        ]
    }
}

extension APIDocument {
    /// Links from a create to each operation on the created resource: the paths under the create's path whose next
    /// segment is a parameter, that parameter taken from the body's `field` and the create's own path parameters
    /// passed on. Catch-all paths (`{path}`) are left out.
    static func links(from create: RouteSpec, field: String, routes: [RouteSpec]) -> [String: JSONValue] {
        let prefix = create.path + "/{"
        var links: [String: JSONValue] = [:]
        for route in routes where route.path.hasPrefix(prefix) && !route.path.contains("{path}") {
            let rest = route.path.dropFirst(create.path.count + 1)
            guard let first = rest.split(separator: "/").first else { continue }
            var parameters: [String: JSONValue] = [String(first.dropFirst().dropLast()): .string("$response.body#/\(field)")]
            for segment in create.path.split(separator: "/") where segment.hasPrefix("{") {
                let name = String(segment.dropFirst().dropLast())
                parameters[name] = .string("$request.path.\(name)")
            }
            // Parameters after the created one are not known from the create: such operations are not linked.
            guard rest.split(separator: "/").dropFirst().allSatisfy({ !$0.hasPrefix("{") }) else { continue }
            links[route.operationID] = ["operationId": .string(route.operationID), "parameters": .object(parameters)]
        }
        return links
    }

    /// A path parameter's schema, as the routes parse it: ids are UUIDs, `message_id` is `msg_<n>`, `entity_type`
    /// follows the entity type rule, `{path}` is the rest of the path.
    static func pathSchema(_ name: String) -> JSONValue {
        switch name {
        case "id", "window_id": Schemas.uuid
        case "message_id": ["type": "string", "pattern": "^msg_[1-9][0-9]{0,17}$"]
        case "entity_type": ["type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"]
        default: ["type": "string"]
        }
    }
}

/// One documented query parameter, typed as the server parses it (a generated client or a fuzzer then sends only
/// values the server can accept, and the server's refusals of anything else are what the document promises).
struct QueryParameter: Sendable {
    var name: String
    var description: String
    var schema: JSONValue

    static let limit = QueryParameter(
        name: "limit", description: "Items per page, 1-500 (default 50)",
        schema: ["type": "integer", "minimum": 1, "maximum": 500, "default": 50])
    static let cursor = QueryParameter(
        name: "cursor", description: "next_cursor of the previous page (opaque)", schema: ["type": "string"])
    /// `limit` and `cursor`.
    static let paging = [limit, cursor]

    static func uuid(_ name: String, _ description: String) -> QueryParameter {
        QueryParameter(name: name, description: description, schema: Schemas.uuid)
    }
    static func dateTime(_ name: String, _ description: String) -> QueryParameter {
        QueryParameter(name: name, description: description, schema: Schemas.timestamp)
    }
    static func date(_ name: String, _ description: String) -> QueryParameter {
        QueryParameter(name: name, description: description, schema: ["type": "string", "format": "date"])
    }
    static func oneOf<Value: RawRepresentable & CaseIterable>(_ name: String, _ description: String, _ type: Value.Type) -> QueryParameter
    where Value.RawValue == String {
        QueryParameter(name: name, description: description, schema: Schemas.enumeration(type.allCases.map(\.rawValue)))
    }
    static func string(_ name: String, _ description: String, schema: JSONValue = ["type": "string"]) -> QueryParameter {
        QueryParameter(name: name, description: description, schema: schema)
    }
}

/// Component schemas of the document.
enum Schemas {
    static func object(_ properties: [String: JSONValue], required: [String], additional: Bool = false) -> JSONValue {
        ["type": "object", "properties": .object(properties), "required": .array(required.map(JSONValue.string)), "additionalProperties": .bool(additional)]
    }
    static let string: JSONValue = ["type": "string"]
    static let nullableString: JSONValue = ["type": ["string", "null"]]
    static let timestamp: JSONValue = ["type": "string", "format": "date-time"]
    static let nullableTimestamp: JSONValue = ["type": ["string", "null"], "format": "date-time"]
    static let integer: JSONValue = ["type": "integer"]
    static let nullableInteger: JSONValue = ["type": ["integer", "null"]]
    static let uuid: JSONValue = ["type": "string", "format": "uuid"]
    static let anyObject: JSONValue = ["type": "object"]
    /// The integration's mapping configuration, with the sync connector and record mapping described.
    static let mappingConfig: JSONValue = [
        "type": ["object", "null"],
        "description": """
            Sync configuration (optional): {"connector": {"type": "scim"} | {"type": "rest_json", "records_path": PATH, \
            "total_path": PATH, "updated_since_param": NAME, "pagination": {"type": "page", "page_param", "size_param", "start"} | \
            {"type": "offset", "offset_param", "limit_param"} | {"type": "cursor", "cursor_param", "next_path", "size_param"} | \
            {"type": "link", "size_param"}}, "retry": {"max_attempts": 1-20, "base_delay_ms", "max_delay_ms"}, \
            "entities": {ENTITY: {"path": "/Users", "external_id": PATH, "updated_field": PATH, "fields": {NAME: PATH | \
            {"path": PATH, "transforms": ["trim"|"lowercase"|"uppercase"|"string"|"number"|"boolean"|"date"], "default": ANY, \
            "required": BOOL} | {"constant": ANY}}}}}. PATH: a.b, list[0], list[key=value], ["name.with.dots"]. SCIM syncs users \
            (/Users) and groups (/Groups) without entities; rest_json needs each entity's path. Refused with the member named.
            """,
    ]
    static let nullableObject: JSONValue = ["type": ["object", "null"]]
    static let boolean: JSONValue = ["type": "boolean"]
    static let eventTypes: JSONValue = [
        "type": "array", "items": ["type": "string"],
        "description": .string(
            "Exact event names, prefixes (sync.*) or *; each must match an event of the catalog: "
                + EventCatalog.types.keys.sorted().joined(separator: ", ")),
    ]
    static let retryConfig: JSONValue = [
        "type": ["object", "null"],
        "description": """
            {"max_attempts": 1-20, "backoff_seconds": [delay before attempt 1, 2, …] (0-604800 each; the last repeats), \
            "timeout_seconds": 1-60}. Default: 8 attempts, immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (±20 % jitter), \
            15 s timeout. 429 and 503 wait at least 60 s and the schedule's delay (Retry-After up to 6 h); 410 Gone disables it.
            """,
    ]
    static let anyJSON: JSONValue = [:]
    static func enumeration(_ values: [String]) -> JSONValue { ["type": "string", "enum": .array(values.map(JSONValue.string))] }
    static func page(_ item: String) -> JSONValue {
        object(["items": ["type": "array", "items": ["$ref": .string("#/components/schemas/\(item)")]], "next_cursor": nullableString], required: ["items", "next_cursor"])
    }

    /// `base` with `properties` added (and required).
    static func extend(_ base: String, _ properties: [String: JSONValue]) -> JSONValue {
        guard case .object(var schema) = core[base], case .object(var existing) = schema["properties"],
            case .array(var required) = schema["required"]
        else { return core[base] ?? [:] }
        for (key, value) in properties {
            existing[key] = value
            required.append(.string(key))
        }
        schema["properties"] = .object(existing)
        schema["required"] = .array(required)
        return .object(schema)
    }

    static var all: [String: JSONValue] { core.merging(extended) { first, _ in first } }

    static let testResult: JSONValue = object(
        ["passed": ["type": "boolean"], "status_code": nullableInteger, "response_time_ms": nullableInteger, "error": nullableString,
         "message_id": string, "response_excerpt": string,
         "status": ["type": "string", "enum": ["healthy", "degraded", "down"], "description": "Connection checks: the probe's classification"],
         "reason": ["type": "string", "description": "Connection checks: why, in words"],
         "tls_days_remaining": ["type": ["integer", "null"], "description": "https API checks: days until the certificate expires (under 7 degrades)"]],
        required: ["passed", "status_code", "response_time_ms", "error"])

    static let extended: [String: JSONValue] = [
        "IntegrationTested": extend("Integration", ["test_result": testResult]),
        "APIOperationExecuted": extend("APIOperation", ["attempts": ["type": "array", "items": uuid, "description": "Every attempt's operation_id, in order; the body describes the last"]]),
        "ConnectionChecked": extend("Connection", ["check_result": testResult]),
        "SyncJobDetail": extend("SyncJob", [
            "batches": ["type": "array", "items": ["$ref": "#/components/schemas/SyncBatch"]],
            "errors": ["type": "array", "items": ["$ref": "#/components/schemas/SyncError"], "description": "The first errors (at most 100)"],
        ]),
        "SyncRecordPage": page("SyncRecord"),
        "SyncScheduleList": object(["items": ["type": "array", "items": ["$ref": "#/components/schemas/SyncSchedule"]]], required: ["items"]),
        "WebhookCreated": extend("Webhook", ["secret": ["type": "string", "description": "The signing secret, shown only in this response"]]),
    ]

    static let core: [String: JSONValue] = [
        "Problem": object(
            ["type": string, "title": string, "status": integer, "detail": string, "field": string, "request_id": string],
            required: ["type", "title", "status", "detail"]),
        "IntegrationCreate": object(
            ["system_id": string, "integration_type": string, "endpoint_url": string, "auth_config": anyObject, "mapping_config": mappingConfig],
            required: ["system_id", "integration_type", "endpoint_url", "auth_config"]),
        "IntegrationUpdate": object(
            ["integration_type": string, "endpoint_url": string, "auth_config": anyObject, "mapping_config": mappingConfig,
             "status": enumeration(IntegrationStatus.allCases.map(\.rawValue))], required: []),
        "Integration": object(
            ["integration_id": uuid, "system_id": string, "integration_type": string, "endpoint_url": string,
             "auth_config": anyObject, "mapping_config": mappingConfig, "status": enumeration(IntegrationStatus.allCases.map(\.rawValue)),
             "last_sync": nullableTimestamp, "error_count": integer, "config_version": string, "last_tested_at": nullableTimestamp,
             "created_at": timestamp, "updated_at": timestamp],
            required: ["integration_id", "system_id", "integration_type", "endpoint_url", "auth_config", "mapping_config", "status",
                       "last_sync", "error_count", "config_version", "last_tested_at", "created_at", "updated_at"]),
        "IntegrationPage": page("Integration"),
        "SyncJobCreate": object(
            ["integration_id": uuid, "sync_type": enumeration(SyncType.allCases.map(\.rawValue)), "entity_type": string,
             "filters": nullableObject, "batch_size": integer], required: ["integration_id", "sync_type", "entity_type"]),
        "SyncJob": object(
            ["sync_job_id": uuid, "integration_id": uuid, "sync_type": enumeration(SyncType.allCases.map(\.rawValue)), "entity_type": string,
             "filters": nullableObject, "batch_size": integer, "status": enumeration(SyncJobStatus.allCases.map(\.rawValue)),
             "records_processed": integer, "errors_count": integer, "started_at": timestamp, "last_batch_at": nullableTimestamp,
             "completion_time": nullableTimestamp, "created_at": timestamp, "summary": ["$ref": "#/components/schemas/SyncSummary"]],
            required: ["sync_job_id", "integration_id", "sync_type", "entity_type", "filters", "batch_size", "status", "records_processed",
                       "errors_count", "started_at", "last_batch_at", "completion_time", "created_at", "summary"]),
        "SyncSummary": object(
            ["source_total": nullableInteger, "added": integer, "updated": integer, "unchanged": integer, "deleted": integer, "failed": integer,
             "reconciliation_mismatch": ["type": "boolean"], "failure_reason": nullableString],
            required: ["source_total", "added", "updated", "unchanged", "deleted", "failed", "reconciliation_mismatch", "failure_reason"]),
        "SyncError": object(
            ["number": integer, "batch_number": integer, "external_id": nullableString, "reason": string, "created_at": timestamp],
            required: ["number", "batch_number", "external_id", "reason", "created_at"]),
        "SyncRecord": object(
            ["integration_id": uuid, "entity_type": string, "external_id": string, "data": ["description": "The mapped record (any JSON)"],
             "content_hash": string, "change": enumeration(RecordChange.allCases.map(\.rawValue)), "created_at": timestamp,
             "updated_at": timestamp, "deleted_at": nullableTimestamp, "last_job_id": ["type": ["string", "null"], "format": "uuid"]],
            required: ["integration_id", "entity_type", "external_id", "data", "content_hash", "change", "created_at", "updated_at",
                       "deleted_at", "last_job_id"]),
        "SyncScheduleCreate": object(
            ["entity_type": string, "sync_type": enumeration(SyncType.allCases.map(\.rawValue)), "interval_minutes": integer],
            required: ["entity_type", "sync_type", "interval_minutes"]),
        "SyncSchedule": object(
            ["schedule_id": uuid, "integration_id": uuid, "entity_type": string, "sync_type": enumeration(SyncType.allCases.map(\.rawValue)),
             "interval_minutes": integer, "next_run_at": timestamp, "last_job_id": ["type": ["string", "null"], "format": "uuid"],
             "created_at": timestamp],
            required: ["schedule_id", "integration_id", "entity_type", "sync_type", "interval_minutes", "next_run_at", "last_job_id", "created_at"]),
        "SyncBatch": object(
            ["batch_id": uuid, "batch_number": integer, "records_count": integer, "status": enumeration(SyncBatchStatus.allCases.map(\.rawValue)),
             "processed_at": timestamp], required: ["batch_id", "batch_number", "records_count", "status", "processed_at"]),
        "SyncJobPage": page("SyncJob"),
        "APIOperation": object(
            ["operation_id": uuid, "integration_id": ["type": ["string", "null"], "format": "uuid"], "operation_type": enumeration(HTTPMethod.allCases.map(\.rawValue)),
             "endpoint": string, "headers": nullableObject, "payload": anyJSON, "timeout": integer,
             "status": enumeration(APIOperationStatus.allCases.map(\.rawValue)), "status_code": nullableInteger, "response_data": anyJSON,
             "response_truncated": ["type": "boolean"],
             "execution_time": nullableInteger, "error_message": nullableString, "started_at": timestamp, "completed_at": nullableTimestamp,
             "created_at": timestamp],
            required: ["operation_id", "integration_id", "operation_type", "endpoint", "headers", "payload", "timeout", "status", "status_code",
                       "response_data", "response_truncated", "execution_time", "error_message", "started_at", "completed_at", "created_at"]),
        "APIOperationPage": page("APIOperation"),
        "APIOperationCreate": object(
            ["operation_type": enumeration(HTTPMethod.allCases.map(\.rawValue)), "endpoint": string, "headers": anyObject, "payload": anyJSON,
             "timeout": integer, "integration_id": uuid,
             "retries": ["type": "integer", "minimum": 0, "maximum": 5, "description": "GET, PUT and DELETE only: retries on no answer, 429 and 5xx, honouring Retry-After"]],
            required: ["operation_type", "endpoint"]),
        "APIStatistics": object(
            ["integration_id": ["type": ["string", "null"], "format": "uuid"], "endpoint": string,
             "operation_type": enumeration(HTTPMethod.allCases.map(\.rawValue)), "day": string, "call_count": integer,
             "error_count": integer,
             "errors": object(["4xx": integer, "5xx": integer, "timeout": integer, "connection": integer], required: ["4xx", "5xx", "timeout", "connection"]),
             "total_execution_time": integer, "avg_execution_time": ["type": "number"],
             "min_execution_time": integer, "max_execution_time": integer, "p50_execution_time": ["type": ["number", "null"]],
             "p95_execution_time": ["type": ["number", "null"]], "p99_execution_time": ["type": ["number", "null"]],
             "latency_histogram": object(["bounds_ms": ["type": "array", "items": integer], "counts": ["type": "array", "items": integer]], required: ["bounds_ms", "counts"]),
             "last_status_code": nullableInteger, "last_call_at": timestamp],
            required: ["integration_id", "endpoint", "operation_type", "day", "call_count", "error_count", "errors", "total_execution_time",
                       "avg_execution_time", "min_execution_time", "max_execution_time", "p50_execution_time", "p95_execution_time",
                       "p99_execution_time", "latency_histogram", "last_status_code", "last_call_at"]),
        "APIStatisticsList": object(["items": ["type": "array", "items": ["$ref": "#/components/schemas/APIStatistics"]]], required: ["items"]),
        "WebhookCreate": object(
            ["webhook_url": string, "event_types": eventTypes, "secret_key": string, "retry_config": retryConfig,
             "headers": nullableObject, "ordered": boolean, "rate_limit": ["type": ["integer", "null"], "minimum": 1, "maximum": 10000]],
            required: ["webhook_url", "event_types"]),
        "WebhookUpdate": object(
            ["webhook_url": string, "event_types": eventTypes, "retry_config": retryConfig, "headers": anyObject,
             "status": enumeration(WebhookStatus.allCases.map(\.rawValue)), "ordered": boolean,
             "rate_limit": ["type": "integer", "minimum": 0, "maximum": 10000, "description": "0 removes the limit"]], required: []),
        "WebhookMessage": object(
            ["message_id": string, "webhook_id": uuid, "event_id": string, "event_type": string,
             "payload": ["description": "The body every attempt sends: {id, type, timestamp, data}"],
             "status": enumeration(WebhookMessageStatus.allCases.map(\.rawValue)), "attempts": integer, "next_attempt_at": nullableTimestamp,
             "last_status_code": ["type": ["integer", "null"]], "last_error": ["type": ["string", "null"]], "event_created_at": timestamp,
             "created_at": timestamp, "delivered_at": nullableTimestamp],
            required: ["message_id", "webhook_id", "event_id", "event_type", "payload", "status", "attempts", "next_attempt_at",
                       "last_status_code", "last_error", "event_created_at", "created_at", "delivered_at"]),
        "WebhookMessagePage": page("WebhookMessage"),
        "WebhookAttempt": object(
            ["message_id": string, "attempt_number": integer, "status_code": ["type": ["integer", "null"]], "latency_ms": integer,
             "response_excerpt": ["type": ["string", "null"], "description": "The first 4 KB of the answer"],
             "error": ["type": ["string", "null"]], "succeeded": boolean, "next_attempt_at": nullableTimestamp, "attempted_at": timestamp],
            required: ["message_id", "attempt_number", "status_code", "latency_ms", "response_excerpt", "error", "succeeded",
                       "next_attempt_at", "attempted_at"]),
        "WebhookAttemptList": object(["items": ["type": "array", "items": ["$ref": "#/components/schemas/WebhookAttempt"]]], required: ["items"]),
        "WebhookRecover": object(["since": timestamp, "until": timestamp], required: ["since"]),
        "WebhookRecovered": object(["recovered": integer], required: ["recovered"]),
        "WebhookRotate": object(
            ["secret_key": ["type": "string", "description": "whsec_ + base64 of 24-64 bytes; generated when omitted"],
             "grace_seconds": ["type": "integer", "minimum": 0, "maximum": 2592000, "description": "default 86400"]], required: []),
        "WebhookRotated": object(
            ["webhook_id": uuid, "secret": ["type": "string", "description": "The new secret, shown only in this response"],
             "previous_valid_until": nullableTimestamp], required: ["webhook_id", "secret", "previous_valid_until"]),
        "Webhook": object(
            ["webhook_id": uuid, "webhook_url": string, "event_types": ["type": "array", "items": string], "retry_config": nullableObject,
             "headers": nullableObject, "status": enumeration(WebhookStatus.allCases.map(\.rawValue)), "last_tested": nullableTimestamp,
             "test_result": nullableObject, "success_count": integer, "failure_count": integer, "last_triggered": nullableTimestamp,
             "created_at": timestamp, "updated_at": timestamp, "ordered": boolean, "rate_limit": nullableInteger,
             "failing_since": nullableTimestamp, "disabled_reason": nullableString],
            required: ["webhook_id", "webhook_url", "event_types", "retry_config", "headers", "status", "last_tested", "test_result",
                       "success_count", "failure_count", "last_triggered", "created_at", "updated_at", "ordered", "rate_limit",
                       "failing_since", "disabled_reason"]),
        "WebhookPage": page("Webhook"),
        "WebhookStatistics": object(
            ["webhook_id": uuid, "success_count": integer, "failure_count": integer, "last_triggered": nullableTimestamp,
             "messages": object(["pending": integer, "succeeded": integer, "failed": integer], required: ["pending", "succeeded", "failed"])],
            required: ["webhook_id", "success_count", "failure_count", "last_triggered", "messages"]),
        "ConnectionCreate": object(
            ["system_name": string, "connection_type": enumeration(ConnectionType.allCases.map(\.rawValue)), "endpoint": string,
             "credentials": ["type": "object", "description": """
                Sealed at rest. API: token | username+password | api_key (+ header), and optionally "probe": {"method", \
                "expected_status_min", "expected_status_max" (default 200-399), "body_contains", "degraded_after_ms"}. \
                DB: username, password (, database). FTP: username, password (banner only without them).
                """],
             "health_check_interval": integer,
             "retries": ["type": "integer", "minimum": 0, "maximum": 10, "description": "Failing checks retried 20 s apart (status pending) before down; default 1"]],
            required: ["system_name", "connection_type", "endpoint", "credentials"]),
        "Connection": object(
            ["connection_id": uuid, "system_name": string, "connection_type": enumeration(ConnectionType.allCases.map(\.rawValue)),
             "endpoint": string, "credentials": anyObject, "health_check_interval": integer,
             "status": enumeration(ConnectionStatus.allCases.map(\.rawValue)), "last_check": nullableTimestamp, "response_time": nullableInteger,
             "uptime_percentage": ["type": ["number", "null"]], "avg_response_time": nullableInteger, "last_updated": nullableTimestamp,
             "created_at": timestamp, "updated_at": timestamp, "retries": integer,
             "next_check_at": ["type": ["string", "null"], "format": "date-time", "description": "When the monitor checks it next"]],
            required: ["connection_id", "system_name", "connection_type", "endpoint", "credentials", "health_check_interval", "status",
                       "last_check", "response_time", "uptime_percentage", "avg_response_time", "last_updated", "created_at", "updated_at",
                       "retries", "next_check_at"]),
        "ConnectionPage": page("Connection"),
        "HealthCheck": object(
            ["health_id": uuid, "connection_id": uuid, "check_timestamp": timestamp, "status": enumeration(ConnectionStatus.allCases.map(\.rawValue)),
             "response_time": nullableInteger], required: ["health_id", "connection_id", "check_timestamp", "status", "response_time"]),
        "HealthCheckPage": page("HealthCheck"),
        "Uptime": object(
            ["connection_id": uuid, "status": enumeration(ConnectionStatus.allCases.map(\.rawValue)), "last_check": nullableTimestamp,
             "uptime_percentage": ["type": ["number", "null"]], "avg_response_time": nullableInteger,
             "windows": ["type": "array", "items": ["$ref": "#/components/schemas/UptimeWindow"]]],
            required: ["connection_id", "status", "last_check", "uptime_percentage", "avg_response_time", "windows"]),
        "UptimeWindow": object(
            ["window": enumeration(["24h", "7d", "30d", "all"]), "checks": integer, "healthy": integer, "degraded": integer, "down": integer,
             "maintenance": integer, "uptime_percentage": ["type": ["number", "null"]], "avg_response_time": ["type": ["number", "null"]],
             "p50_response_time": ["type": ["number", "null"]], "p95_response_time": ["type": ["number", "null"]],
             "p99_response_time": ["type": ["number", "null"]]],
            required: ["window", "checks", "healthy", "degraded", "down", "maintenance", "uptime_percentage", "avg_response_time",
                       "p50_response_time", "p95_response_time", "p99_response_time"]),
        "MaintenanceWindowCreate": object(["starts_at": timestamp, "ends_at": timestamp, "reason": string], required: ["starts_at", "ends_at"]),
        "MaintenanceWindow": object(
            ["window_id": uuid, "connection_id": uuid, "starts_at": timestamp, "ends_at": timestamp, "reason": nullableString,
             "created_at": timestamp], required: ["window_id", "connection_id", "starts_at", "ends_at", "reason", "created_at"]),
        "MaintenanceWindowList": object(["items": ["type": "array", "items": ["$ref": "#/components/schemas/MaintenanceWindow"]]], required: ["items"]),
        "Status": object(["status": string], required: ["status"]),
        "UpstreamBody": ["description": "The integration's own response body: JSON as received, other bodies as text"],
    ]
}
