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
        let operation = try APIOperation.pending(for: request, at: clock.now(), extraRedacted: redactedHeaders)
        do {
            _ = try await database.query(
                "INSERT INTO api_operations (\(Self.columns)) VALUES \(Self.placeholders(rows: 1, from: 1))", Self.binds(operation))
            return operation
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
            try await Self.fold([StatisticsDelta(operation, outcome, at: now)], into: executor, at: now)
            return operation
        }
        if let completed { return completed }
        let operation = try await get(id)
        throw HubError.conflict(field: nil, reason: "the operation is already \(operation.status.rawValue)")
    }

    public func record(_ batch: [APIOperationRecord]) async throws {
        // One record per operation, the finished one where both states are given; ids in order, so that concurrent
        // batches lock rows in the same order.
        var byID: [UUID: APIOperationRecord] = [:]
        for record in batch {
            if record.operation.status != .pending { try record.outcome.validate() }
            let id = record.operation.id.uuid
            if let kept = byID[id], kept.operation.status != .pending { continue }
            byID[id] = record
        }
        guard !byID.isEmpty else { return }
        let now = clock.now()
        var records = byID.values.sorted { $0.operation.id.uuid.uuidString < $1.operation.id.uuid.uuidString }
        try await database.transaction { executor in
            // Operations of an integration deleted meanwhile keep no integration, as ON DELETE SET NULL did to the others.
            let named = Set(records.compactMap { $0.operation.integrationID?.uuid })
            if !named.isEmpty {
                let list = Array(named)
                let placeholders = list.indices.map { "$\($0 + 1)" }.joined(separator: ", ")
                let existing = Set(try await executor.query(
                    "SELECT integration_id FROM external_integrations WHERE integration_id IN (\(placeholders))", list.map { .uuid($0) }
                ).map { try $0.uuid("integration_id") })
                for index in records.indices {
                    if let id = records[index].operation.integrationID?.uuid, !existing.contains(id) {
                        records[index].operation.integrationID = nil
                    }
                }
            }
            // Insert, or move pending to finished; the rows returned are the ones this batch changed, so a record
            // written twice is folded once.
            var changed: Set<UUID> = []
            let chunkSize = 500
            for start in stride(from: 0, to: records.count, by: chunkSize) {
                let chunk = records[start..<min(start + chunkSize, records.count)]
                let rows = try await executor.query(
                    """
                    INSERT INTO api_operations (\(Self.columns)) VALUES \(Self.placeholders(rows: chunk.count, from: 1)) \
                    ON CONFLICT (operation_id) DO UPDATE SET status = excluded.status, status_code = excluded.status_code, \
                    response_data = excluded.response_data, response_truncated = excluded.response_truncated, \
                    execution_time = excluded.execution_time, error_message = excluded.error_message, \
                    completed_at = excluded.completed_at \
                    WHERE api_operations.status = 'pending' AND excluded.status <> 'pending' RETURNING operation_id
                    """, chunk.flatMap { Self.binds($0.operation) })
                for row in rows { changed.insert(try row.uuid("operation_id")) }
            }
            let deltas = records.filter {
                $0.operation.status != .pending && $0.countsInStatistics && changed.contains($0.operation.id.uuid)
            }.map { StatisticsDelta($0.operation, $0.outcome, at: $0.operation.completedAt ?? now) }
            try await Self.fold(deltas, into: executor, at: now)
        }
    }

    /// `($1, …, $16), (…)`: placeholders of `rows` rows of ``columns``, numbered from `first`.
    static func placeholders(rows: Int, from first: Int) -> String {
        (0..<rows).map { row in
            "(" + (0..<16).map { "$\(first + row * 16 + $0)" }.joined(separator: ", ") + ")"
        }.joined(separator: ", ")
    }

    /// The values of ``columns`` for `operation`.
    static func binds(_ operation: APIOperation) -> [SQLValue] {
        [
            .uuid(operation.id.uuid), .optional(operation.integrationID) { .uuid($0.uuid) }, .text(operation.operationType.rawValue),
            .text(operation.endpoint), .optional(operation.headers) { .json($0.jsonText) }, .optional(operation.payload) { .json($0.jsonText) },
            .int(Int64(operation.timeout)), .text(operation.status.rawValue), .optional(operation.statusCode) { .int(Int64($0)) },
            .optional(operation.responseData) { .json($0.jsonText) }, .bool(operation.responseTruncated),
            .optional(operation.executionTime) { .int($0) }, .optional(operation.errorMessage) { .text($0) },
            .timestamp(operation.startedAt), .optional(operation.completedAt) { .timestamp($0) }, .timestamp(operation.createdAt),
        ]
    }

    static let histogramColumns = (0..<LatencyHistogram.bucketCount).map { String(format: "latency_%02d", $0) }

    /// What finished operations add to one statistics row: counts, sums, extremes, error classes, histogram buckets.
    struct StatisticsDelta {
        var key: [String]
        var calls: Int64 = 0
        var errors: Int64 = 0
        var total: Int64 = 0
        var minimum = Int64.max
        var maximum = Int64.min
        var lastStatusCode: Int?
        var lastCallAt = Date.distantPast
        var counters = [Int64](repeating: 0, count: 4 + LatencyHistogram.bucketCount)

        static let classes = ["4xx", "5xx", "timeout", "connection"]

        init(_ operation: APIOperation, _ outcome: APIOperationOutcome, at completedAt: Date) {
            key = [
                operation.integrationID?.description ?? "", APIOperation.template(for: operation.endpoint), operation.operationType.rawValue,
                UTCDay.of(completedAt),
            ]
            add(outcome, at: completedAt)
        }

        mutating func add(_ outcome: APIOperationOutcome, at completedAt: Date) {
            calls += 1
            if outcome.status == .failed { errors += 1 }
            total += outcome.executionTime
            minimum = min(minimum, outcome.executionTime)
            maximum = max(maximum, outcome.executionTime)
            if completedAt >= lastCallAt {
                lastCallAt = completedAt
                lastStatusCode = outcome.statusCode
            }
            if let errorClass = outcome.errorClass, let index = Self.classes.firstIndex(of: errorClass) { counters[index] += 1 }
            counters[4 + LatencyHistogram.bucket(for: outcome.executionTime)] += 1
        }

        mutating func merge(_ other: StatisticsDelta) {
            calls += other.calls
            errors += other.errors
            total += other.total
            minimum = min(minimum, other.minimum)
            maximum = max(maximum, other.maximum)
            if other.lastCallAt >= lastCallAt {
                lastCallAt = other.lastCallAt
                lastStatusCode = other.lastStatusCode
            }
            for index in counters.indices { counters[index] += other.counters[index] }
        }
    }

    /// The step-3 upsert of `deltas`, merged per row key, one statement per 500 rows in key order. Every counter is
    /// added as `existing + excluded`, so concurrent writers never lose a call.
    static func fold(_ deltas: [StatisticsDelta], into executor: any SQLExecutor, at now: Date) async throws {
        var merged: [[String]: StatisticsDelta] = [:]
        for delta in deltas {
            if merged[delta.key] != nil { merged[delta.key]!.merge(delta) } else { merged[delta.key] = delta }
        }
        let rows = merged.values.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        guard !rows.isEmpty else { return }
        let counters = ["errors_4xx", "errors_5xx", "errors_timeout", "errors_connection"] + histogramColumns
        let width = 12 + counters.count
        let counterUpdates = counters.map { "\($0) = api_statistics.\($0) + excluded.\($0)" }.joined(separator: ", ")
        for start in stride(from: 0, to: rows.count, by: 500) {
            let chunk = rows[start..<min(start + 500, rows.count)]
            var binds: [SQLValue] = []
            var tuples: [String] = []
            for row in chunk {
                tuples.append("(" + (0..<width).map { "$\(binds.count + $0 + 1)" }.joined(separator: ", ") + ")")
                binds += row.key.map { .text($0) }
                binds += [
                    .int(row.calls), .int(row.errors), .int(row.total), .int(row.minimum), .int(row.maximum),
                    .optional(row.lastStatusCode) { .int(Int64($0)) }, .timestamp(now), .timestamp(row.lastCallAt),
                ]
                binds += row.counters.map { .int($0) }
            }
            _ = try await executor.query(
                """
                INSERT INTO api_statistics (integration_key, endpoint, operation_type, stat_date, call_count, error_count, \
                total_execution_time, min_execution_time, max_execution_time, last_status_code, recorded_at, last_call_at, \
                \(counters.joined(separator: ", "))) VALUES \(tuples.joined(separator: ", ")) \
                ON CONFLICT (integration_key, endpoint, operation_type, stat_date) DO UPDATE SET \
                call_count = api_statistics.call_count + excluded.call_count, \
                error_count = api_statistics.error_count + excluded.error_count, \
                total_execution_time = api_statistics.total_execution_time + excluded.total_execution_time, \
                min_execution_time = CASE WHEN excluded.min_execution_time < api_statistics.min_execution_time \
                THEN excluded.min_execution_time ELSE api_statistics.min_execution_time END, \
                max_execution_time = CASE WHEN excluded.max_execution_time > api_statistics.max_execution_time \
                THEN excluded.max_execution_time ELSE api_statistics.max_execution_time END, \
                last_status_code = CASE WHEN excluded.last_call_at >= api_statistics.last_call_at \
                THEN excluded.last_status_code ELSE api_statistics.last_status_code END, \
                last_call_at = CASE WHEN excluded.last_call_at > api_statistics.last_call_at \
                THEN excluded.last_call_at ELSE api_statistics.last_call_at END, \(counterUpdates)
                """, binds)
        }
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
