import HubCore
import HubStore

/// The API's JSON shape of each model (also printed by the CLI's `--json`): snake_case names as in the design, RFC 3339 UTC timestamps, secrets masked.
extension Integration {
    /// The JSON representation the API returns (snake_case, RFC 3339 UTC, secrets masked).
    public var json: JSONValue {
        [
            "integration_id": .string(id.description), "system_id": .string(systemID), "integration_type": .string(integrationType),
            "endpoint_url": .string(endpointURL), "auth_config": maskedAuthConfig, "mapping_config": mappingConfig ?? .null,
            "status": .string(status.rawValue), "last_sync": .timestamp(lastSync), "error_count": .int(errorCount),
            "config_version": .string(configVersion), "last_tested_at": .timestamp(lastTestedAt),
            "created_at": .timestamp(createdAt), "updated_at": .timestamp(updatedAt),
        ]
    }
}

extension SyncJob {
    /// The JSON representation the API returns (snake_case, RFC 3339 UTC, secrets masked).
    public var json: JSONValue {
        [
            "sync_job_id": .string(id.description), "integration_id": .string(integrationID.description),
            "sync_type": .string(syncType.rawValue), "entity_type": .string(entityType), "filters": filters ?? .null,
            "batch_size": .int(Int64(batchSize)), "status": .string(status.rawValue), "records_processed": .int(recordsProcessed),
            "errors_count": .int(errorsCount), "started_at": .timestamp(startedAt), "last_batch_at": .timestamp(lastBatchAt),
            "completion_time": .timestamp(completedAt), "created_at": .timestamp(createdAt), "summary": summary.json,
        ]
    }
}

extension SyncSummary {
    /// The JSON representation the API returns.
    public var json: JSONValue {
        [
            "source_total": sourceTotal.map(JSONValue.int) ?? .null, "added": .int(added), "updated": .int(updated),
            "unchanged": .int(unchanged), "deleted": .int(deleted), "failed": .int(failed),
            "reconciliation_mismatch": .bool(reconciliationMismatch), "failure_reason": failureReason.map(JSONValue.string) ?? .null,
        ]
    }
}

extension SyncRecord {
    /// The JSON representation the API returns.
    public var json: JSONValue {
        [
            "integration_id": .string(integrationID.description), "entity_type": .string(entityType), "external_id": .string(externalID),
            "data": data, "content_hash": .string(contentHash), "change": .string(lastChange.rawValue), "created_at": .timestamp(createdAt),
            "updated_at": .timestamp(updatedAt), "deleted_at": .timestamp(deletedAt), "last_job_id": lastJobID.map { .string($0.description) } ?? .null,
        ]
    }
}

extension SyncErrorEntry {
    /// The JSON representation the API returns.
    public var json: JSONValue {
        ["number": .int(Int64(number)), "batch_number": .int(Int64(batchNumber)), "external_id": externalID.map(JSONValue.string) ?? .null,
         "reason": .string(reason), "created_at": .timestamp(createdAt)]
    }
}

extension SyncSchedule {
    /// The JSON representation the API returns.
    public var json: JSONValue {
        [
            "schedule_id": .string(id.uuidString.lowercased()), "integration_id": .string(integrationID.description),
            "entity_type": .string(entityType), "sync_type": .string(syncType.rawValue), "interval_minutes": .int(Int64(intervalMinutes)),
            "next_run_at": .timestamp(nextRunAt), "last_job_id": lastJobID.map { .string($0.description) } ?? .null,
            "created_at": .timestamp(createdAt),
        ]
    }
}

extension SyncBatch {
    /// The JSON representation the API returns (snake_case, RFC 3339 UTC, secrets masked).
    public var json: JSONValue {
        [
            "batch_id": .string(id.description), "batch_number": .int(Int64(batchNumber)), "records_count": .int(Int64(recordsCount)),
            "status": .string(status.rawValue), "processed_at": .timestamp(processedAt),
        ]
    }
}

extension APIOperation {
    /// The JSON representation the API returns (snake_case, RFC 3339 UTC, secrets masked).
    public var json: JSONValue {
        [
            "operation_id": .string(id.description), "integration_id": integrationID.map { .string($0.description) } ?? .null,
            "operation_type": .string(operationType.rawValue), "endpoint": .string(endpoint), "headers": headers ?? .null,
            "payload": payload ?? .null, "timeout": .int(Int64(timeout)), "status": .string(status.rawValue),
            "status_code": statusCode.map { .int(Int64($0)) } ?? .null, "response_data": responseData ?? .null,
            "response_truncated": .bool(responseTruncated),
            "execution_time": executionTime.map(JSONValue.int) ?? .null, "error_message": errorMessage.map(JSONValue.string) ?? .null,
            "started_at": .timestamp(startedAt), "completed_at": .timestamp(completedAt), "created_at": .timestamp(createdAt),
        ]
    }
}

extension APIStatistics {
    /// The JSON representation the API returns: counts and sums as stored, with the average and the p50/p95/p99
    /// execution times derived from them (milliseconds).
    public var json: JSONValue {
        func number(_ value: Double?) -> JSONValue { value.map { .double(($0 * 100).rounded() / 100) } ?? .null }
        return [
            "integration_id": integrationID.map { .string($0.description) } ?? .null, "endpoint": .string(endpoint),
            "operation_type": .string(operationType.rawValue), "day": .string(day), "call_count": .int(callCount),
            "error_count": .int(errorCount),
            "errors": ["4xx": .int(errors4xx), "5xx": .int(errors5xx), "timeout": .int(errorsTimeout), "connection": .int(errorsConnection)],
            "total_execution_time": .int(totalExecutionTime), "avg_execution_time": .double(averageExecutionTime),
            "min_execution_time": .int(minExecutionTime), "max_execution_time": .int(maxExecutionTime),
            "p50_execution_time": number(percentile(0.5)), "p95_execution_time": number(percentile(0.95)),
            "p99_execution_time": number(percentile(0.99)),
            "latency_histogram": ["bounds_ms": .array(LatencyHistogram.bounds.map(JSONValue.int)), "counts": .array(latencyHistogram.map(JSONValue.int))],
            "last_status_code": lastStatusCode.map { .int(Int64($0)) } ?? .null, "last_call_at": .timestamp(lastCallAt),
        ]
    }
}

extension Webhook {
    /// The JSON representation the API returns (snake_case, RFC 3339 UTC, secrets masked).
    public var json: JSONValue {
        [
            "webhook_id": .string(id.description), "webhook_url": .string(webhookURL), "event_types": .array(eventTypes.map(JSONValue.string)),
            "retry_config": retryConfig ?? .null, "headers": headers ?? .null, "status": .string(status.rawValue),
            "last_tested": .timestamp(lastTested), "test_result": testResult ?? .null, "success_count": .int(successCount),
            "failure_count": .int(failureCount), "last_triggered": .timestamp(lastTriggered), "created_at": .timestamp(createdAt),
            "updated_at": .timestamp(updatedAt), "ordered": .bool(ordered), "rate_limit": rateLimit.map { .int(Int64($0)) } ?? .null,
            "failing_since": .timestamp(failingSince), "disabled_reason": disabledReason.map(JSONValue.string) ?? .null,
        ]
    }

    /// The delivery statistics alone (`GET /v1/webhooks/{id}/statistics`).
    public var statisticsJSON: JSONValue {
        [
            "webhook_id": .string(id.description), "success_count": .int(successCount), "failure_count": .int(failureCount),
            "last_triggered": .timestamp(lastTriggered),
        ]
    }
}

extension WebhookMessage {
    /// The JSON representation the API returns; `payload` is the body every attempt sends, parsed.
    public var json: JSONValue {
        [
            "message_id": .string(id), "webhook_id": .string(webhookID.description), "event_id": .string("evt_\(eventSequence)"),
            "event_type": .string(eventType), "payload": (try? JSONValue.parse(body, field: "body")) ?? .string(body),
            "status": .string(status.rawValue), "attempts": .int(Int64(attempts)), "next_attempt_at": .timestamp(nextAttemptAt),
            "last_status_code": lastStatusCode.map { .int(Int64($0)) } ?? .null, "last_error": lastError.map(JSONValue.string) ?? .null,
            "event_created_at": .timestamp(eventCreatedAt), "created_at": .timestamp(createdAt), "delivered_at": .timestamp(deliveredAt),
        ]
    }
}

extension UptimeWindow {
    /// The JSON representation the API returns.
    public var json: JSONValue {
        func number(_ value: Double?) -> JSONValue { value.map { .double(($0 * 100).rounded() / 100) } ?? .null }
        return [
            "window": .string(name), "checks": .int(checks), "healthy": .int(healthy), "degraded": .int(degraded), "down": .int(down),
            "maintenance": .int(maintenance), "uptime_percentage": number(uptimePercentage),
            "avg_response_time": number(averageResponseTime), "p50_response_time": number(p50), "p95_response_time": number(p95),
            "p99_response_time": number(p99),
        ]
    }
}

extension MaintenanceWindow {
    /// The JSON representation the API returns.
    public var json: JSONValue {
        [
            "window_id": .string(id.uuidString.lowercased()), "connection_id": .string(connectionID.description),
            "starts_at": .timestamp(startsAt), "ends_at": .timestamp(endsAt), "reason": reason.map(JSONValue.string) ?? .null,
            "created_at": .timestamp(createdAt),
        ]
    }
}

extension WebhookAttempt {
    /// The JSON representation the API returns.
    public var json: JSONValue {
        [
            "message_id": .string("msg_\(messageSequence)"), "attempt_number": .int(Int64(attemptNumber)),
            "status_code": statusCode.map { .int(Int64($0)) } ?? .null, "latency_ms": .int(latencyMilliseconds),
            "response_excerpt": responseExcerpt.map(JSONValue.string) ?? .null, "error": error.map(JSONValue.string) ?? .null,
            "succeeded": .bool(succeeded), "next_attempt_at": .timestamp(nextAttemptAt), "attempted_at": .timestamp(attemptedAt),
        ]
    }
}

extension SystemConnection {
    /// The JSON representation the API returns (snake_case, RFC 3339 UTC, secrets masked).
    public var json: JSONValue {
        [
            "connection_id": .string(id.description), "system_name": .string(systemName), "connection_type": .string(connectionType.rawValue),
            "endpoint": .string(endpoint), "credentials": maskedCredentials, "health_check_interval": .int(Int64(healthCheckInterval)),
            "status": .string(status.rawValue), "last_check": .timestamp(lastCheck), "response_time": responseTime.map(JSONValue.int) ?? .null,
            "uptime_percentage": uptimePercentage.map(JSONValue.double) ?? .null,
            "avg_response_time": avgResponseTime.map(JSONValue.int) ?? .null, "last_updated": .timestamp(lastUpdated),
            "created_at": .timestamp(createdAt), "updated_at": .timestamp(updatedAt), "retries": .int(Int64(retries)),
            "next_check_at": .timestamp(nextCheckAt),
        ]
    }

    /// The design's step-4 figures alone (`GET /v1/connections/{id}/uptime`).
    public var uptimeJSON: JSONValue {
        [
            "connection_id": .string(id.description), "status": .string(status.rawValue), "last_check": .timestamp(lastCheck),
            "uptime_percentage": uptimePercentage.map(JSONValue.double) ?? .null,
            "avg_response_time": avgResponseTime.map(JSONValue.int) ?? .null,
        ]
    }
}

extension HealthCheck {
    /// The JSON representation the API returns (snake_case, RFC 3339 UTC, secrets masked).
    public var json: JSONValue {
        [
            "health_id": .string(id.description), "connection_id": .string(connectionID.description),
            "check_timestamp": .timestamp(checkTimestamp), "status": .string(status.rawValue),
            "response_time": responseTime.map(JSONValue.int) ?? .null,
        ]
    }
}
