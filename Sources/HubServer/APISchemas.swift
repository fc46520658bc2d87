import HubCore

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

    static var all: [String: JSONValue] { core.merging(extended) { first, _ in first }.merging(requests) { first, _ in first } }

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
        "Integration": object(
            ["integration_id": uuid, "system_id": string, "integration_type": string, "endpoint_url": string,
             "auth_config": anyObject, "mapping_config": mappingConfig, "status": enumeration(IntegrationStatus.allCases.map(\.rawValue)),
             "last_sync": nullableTimestamp, "error_count": integer, "config_version": string, "last_tested_at": nullableTimestamp,
             "created_at": timestamp, "updated_at": timestamp],
            required: ["integration_id", "system_id", "integration_type", "endpoint_url", "auth_config", "mapping_config", "status",
                       "last_sync", "error_count", "config_version", "last_tested_at", "created_at", "updated_at"]),
        "IntegrationPage": page("Integration"),
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
        "WebhookRecovered": object(["recovered": integer], required: ["recovered"]),
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
        "MaintenanceWindow": object(
            ["window_id": uuid, "connection_id": uuid, "starts_at": timestamp, "ends_at": timestamp, "reason": nullableString,
             "created_at": timestamp], required: ["window_id", "connection_id", "starts_at", "ends_at", "reason", "created_at"]),
        "MaintenanceWindowList": object(["items": ["type": "array", "items": ["$ref": "#/components/schemas/MaintenanceWindow"]]], required: ["items"]),
        "Status": object(["status": string], required: ["status"]),
        "UpstreamBody": ["description": "The integration's own response body: JSON as received, other bodies as text"],
    ]
}

// MARK: - Request bodies

