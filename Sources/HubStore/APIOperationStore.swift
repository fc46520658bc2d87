import Foundation
import HubCore

/// DAO-MDE-03-08-03 over any ``SQLDatabase``.
public struct APIOperationStore: APIOperationDAO {
    let database: any SQLDatabase
    let clock: WallClock
    let redactedHeaders: Set<String>

    /// A store over `database`; `redactedHeaders` names headers (any case) redacted in addition to the built-in ones.
    public init(database: any SQLDatabase, clock: WallClock = .system, redactedHeaders: Set<String> = []) {
        self.database = database
        self.clock = clock
        self.redactedHeaders = Set(redactedHeaders.map { $0.lowercased() })
    }

    static let columns = """
        operation_id, integration_id, operation_type, endpoint, headers, payload, timeout, status, status_code, \
        response_data, response_truncated, execution_time, error_message, started_at, completed_at, created_at
        """

    public func log(_ request: APIOperationRequest) async throws -> APIOperation {
        // Step 1: validate operation_type (typed), endpoint and headers; log a pending operation.
        let headers = try request.validate()
        let now = clock.now()
        let storedHeaders: JSONValue? =
            request.headers == nil || request.headers == .null
            ? nil : .object(APIOperation.redact(headers, extra: redactedHeaders).mapValues { .string($0) })
        do {
            let row = try await database.queryOne(
                """
                INSERT INTO api_operations (operation_id, integration_id, operation_type, endpoint, headers, payload, \
                timeout, status, started_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, 30), 'pending', \
                $8, $8) RETURNING \(Self.columns)
                """,
                [
                    .uuid(OperationID.generate().uuid), .optional(request.integrationID) { .uuid($0.uuid) },
                    .text(request.operationType.rawValue), .text(APIOperation.redactQuery(request.endpoint)),
                    .optional(storedHeaders) { .json($0.jsonText) }, .optional(request.payload) { .json($0.jsonText) },
                    .optional(request.timeout) { .int(Int64($0)) }, .timestamp(now),
                ])
            return try decode(row!)
        } catch SQLError.foreignKeyViolation {
            throw HubError.invalidReference(field: "integration_id", reason: "no integration has this id")
        }
    }

    public func complete(_ id: OperationID, _ outcome: APIOperationOutcome) async throws -> APIOperation {
        try outcome.validate()
        let now = clock.now()
        let completed: APIOperation? = try await database.transaction { executor in
            // Step 2: capture the outcome of a pending operation.
            guard
                let row = try await executor.queryOne(
                    """
                    UPDATE api_operations SET status = $1, status_code = $2, response_data = $3, execution_time = $4, \
                    error_message = $5, completed_at = $6, response_truncated = $8 WHERE operation_id = $7 AND status = 'pending' \
                    RETURNING \(Self.columns)
                    """,
                    [
                        .text(outcome.status.rawValue), .optional(outcome.statusCode) { .int(Int64($0)) },
                        .optional(outcome.responseData) { .json($0.jsonText) }, .int(outcome.executionTime),
                        .optional(outcome.errorMessage) { .text($0) }, .timestamp(now), .uuid(id.uuid),
                        .bool(outcome.responseTruncated),
                    ])
            else { return nil }
            let operation = try decode(row)
            // Step 3: fold into the day's statistics row of (integration, endpoint template, method, UTC day) as counts,
            // sums, error classes and one histogram bucket, in the same transaction, by one upsert.
            try await Self.fold(operation, outcome, at: now, into: executor)
            return operation
        }
        if let completed { return completed }
        let operation = try await get(id)
        throw HubError.conflict(field: nil, reason: "the operation is already \(operation.status.rawValue)")
    }

    static let histogramColumns = (0..<LatencyHistogram.bucketCount).map { String(format: "latency_%02d", $0) }

    /// The step-3 upsert. Every counter is added as `existing + excluded`, so concurrent writers never lose a call.
    static func fold(_ operation: APIOperation, _ outcome: APIOperationOutcome, at now: Date, into executor: any SQLExecutor) async throws {
        let errorClass = outcome.errorClass
        let bucket = LatencyHistogram.bucket(for: outcome.executionTime)
        let counters = ["errors_4xx", "errors_5xx", "errors_timeout", "errors_connection"] + histogramColumns
        var binds: [SQLValue] = [
            .text(operation.integrationID?.description ?? ""), .text(APIOperation.template(for: operation.endpoint)),
            .text(operation.operationType.rawValue), .text(UTCDay.of(now)), .int(outcome.status == .failed ? 1 : 0),
            .int(outcome.executionTime), .optional(outcome.statusCode) { .int(Int64($0)) }, .timestamp(now),
        ]
        binds += ["4xx", "5xx", "timeout", "connection"].map { .int($0 == errorClass ? 1 : 0) }
        binds += (0..<LatencyHistogram.bucketCount).map { .int($0 == bucket ? 1 : 0) }
        let counterPlaceholders = counters.indices.map { "$\($0 + 9)" }.joined(separator: ", ")
        let counterUpdates = counters.map { "\($0) = api_statistics.\($0) + excluded.\($0)" }.joined(separator: ", ")
        _ = try await executor.query(
            """
            INSERT INTO api_statistics (integration_key, endpoint, operation_type, stat_date, call_count, error_count, \
            total_execution_time, min_execution_time, max_execution_time, last_status_code, recorded_at, last_call_at, \
            \(counters.joined(separator: ", "))) VALUES ($1, $2, $3, $4, 1, $5, $6, $6, $6, $7, $8, $8, \(counterPlaceholders)) \
            ON CONFLICT (integration_key, endpoint, operation_type, stat_date) DO UPDATE SET \
            call_count = api_statistics.call_count + 1, \
            error_count = api_statistics.error_count + excluded.error_count, \
            total_execution_time = api_statistics.total_execution_time + excluded.total_execution_time, \
            min_execution_time = CASE WHEN excluded.min_execution_time < api_statistics.min_execution_time \
            THEN excluded.min_execution_time ELSE api_statistics.min_execution_time END, \
            max_execution_time = CASE WHEN excluded.max_execution_time > api_statistics.max_execution_time \
            THEN excluded.max_execution_time ELSE api_statistics.max_execution_time END, \
            last_status_code = excluded.last_status_code, \
            last_call_at = CASE WHEN excluded.last_call_at > api_statistics.last_call_at \
            THEN excluded.last_call_at ELSE api_statistics.last_call_at END, \(counterUpdates)
            """, binds)
    }

    public func get(_ id: OperationID) async throws -> APIOperation {
        let row = try await database.queryOne(
            "SELECT \(Self.columns) FROM api_operations WHERE operation_id = $1", [.uuid(id.uuid)])
        guard let row else { throw HubError.notFound(entity: "API operation", id: id.description) }
        return try decode(row)
    }

    public func list(_ filter: APIOperationFilter, _ page: PageRequest) async throws -> Page<APIOperation> {
        var query = ListQuery(table: "api_operations", idColumn: "operation_id", columns: Self.columns)
        if let integrationID = filter.integrationID { query.filter("integration_id", .uuid(integrationID.uuid)) }
        if let status = filter.status { query.filter("status", .text(status.rawValue)) }
        if let from = filter.createdFrom { query.filter("created_at", ">=", .timestamp(from)) }
        if let before = filter.createdBefore { query.filter("created_at", "<", .timestamp(before)) }
        return try await query.run(on: database, page: page) { row in
            let operation = try decode(row)
            return (operation, PageCursor(createdAt: operation.createdAt, id: operation.id.uuid))
        }
    }

    public func prune(operationsBefore: Date, statisticsBefore: String) async throws -> (operations: Int, statistics: Int) {
        try UTCDay.validate(statisticsBefore, field: "statistics_before")
        var operations = 0
        while true {
            // Batches of 5,000 by the created_at index: short statements, however large the backlog.
            let deleted = try await database.query(
                """
                DELETE FROM api_operations WHERE operation_id IN \
                (SELECT operation_id FROM api_operations WHERE created_at < $1 LIMIT 5000) RETURNING operation_id
                """, [.timestamp(operationsBefore)]
            ).count
            operations += deleted
            if deleted < 5000 { break }
        }
        let statistics = try await database.query(
            "DELETE FROM api_statistics WHERE stat_date < $1 RETURNING stat_date", [.text(statisticsBefore)]
        ).count
        return (operations, statistics)
    }

    public func statistics(_ query: APIStatisticsQuery) async throws -> [APIStatistics] {
        try query.validate()
        var conditions: [String] = []
        var binds: [SQLValue] = []
        func add(_ condition: (Int) -> String, _ value: SQLValue) {
            binds.append(value)
            conditions.append(condition(binds.count))
        }
        if let endpoint = query.endpoint { add({ "endpoint = $\($0)" }, .text(APIOperation.template(for: endpoint))) }
        if let integrationID = query.integrationID { add({ "integration_key = $\($0)" }, .text(integrationID.description)) }
        if let method = query.operationType { add({ "operation_type = $\($0)" }, .text(method.rawValue)) }
        if let fromDay = query.fromDay { add({ "stat_date >= $\($0)" }, .text(fromDay)) }
        if let toDay = query.toDay { add({ "stat_date <= $\($0)" }, .text(toDay)) }
        let whereClause = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        return try await database.query(
            """
            SELECT integration_key, endpoint, operation_type, stat_date, call_count, error_count, errors_4xx, errors_5xx, \
            errors_timeout, errors_connection, total_execution_time, min_execution_time, max_execution_time, \
            \(Self.histogramColumns.joined(separator: ", ")), last_status_code, last_call_at FROM api_statistics\(whereClause) \
            ORDER BY stat_date, endpoint, operation_type, integration_key LIMIT 10000
            """, binds
        ).map { row in
            guard let method = HTTPMethod(rawValue: try row.string("operation_type")) else {
                throw SQLError.decoding(column: "operation_type")
            }
            let integrationKey = try row.string("integration_key")
            return APIStatistics(
                integrationID: integrationKey.isEmpty ? nil : try IntegrationID(parsing: integrationKey, field: "integration_key"),
                endpoint: try row.string("endpoint"), operationType: method, day: try row.string("stat_date"),
                callCount: try row.int("call_count"), errorCount: try row.int("error_count"), errors4xx: try row.int("errors_4xx"),
                errors5xx: try row.int("errors_5xx"), errorsTimeout: try row.int("errors_timeout"),
                errorsConnection: try row.int("errors_connection"), totalExecutionTime: try row.int("total_execution_time"),
                minExecutionTime: try row.int("min_execution_time"), maxExecutionTime: try row.int("max_execution_time"),
                latencyHistogram: try Self.histogramColumns.map { try row.int($0) },
                lastStatusCode: try row.optionalInt("last_status_code").map(Int.init), lastCallAt: try row.date("last_call_at"))
        }
    }

    private func decode(_ row: SQLRow) throws -> APIOperation {
        guard let method = HTTPMethod(rawValue: try row.string("operation_type")) else {
            throw SQLError.decoding(column: "operation_type")
        }
        guard let status = APIOperationStatus(rawValue: try row.string("status")) else {
            throw SQLError.decoding(column: "status")
        }
        return APIOperation(
            id: OperationID(try row.uuid("operation_id")),
            integrationID: try row.optionalUUID("integration_id").map(IntegrationID.init), operationType: method,
            endpoint: try row.string("endpoint"), headers: try row.optionalJSON("headers"),
            payload: try row.optionalJSON("payload"), timeout: Int(try row.int("timeout")), status: status,
            statusCode: try row.optionalInt("status_code").map(Int.init),
            responseData: try row.optionalJSON("response_data"), responseTruncated: try row.bool("response_truncated"),
            executionTime: try row.optionalInt("execution_time"),
            errorMessage: try row.optionalString("error_message"), startedAt: try row.date("started_at"),
            completedAt: try row.optionalDate("completed_at"), createdAt: try row.date("created_at"))
    }
}
