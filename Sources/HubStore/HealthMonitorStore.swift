import Foundation
import HubCore

/// Uptime and response times of one window, from the rollups.
public struct UptimeWindow: Sendable, Hashable {
    /// `24h`, `7d`, `30d` or `all`.
    public var name: String
    /// Checks counted (maintenance excluded).
    public var checks: Int64
    public var healthy: Int64
    public var degraded: Int64
    public var down: Int64
    /// Checks that fell in a maintenance window (not counted in uptime).
    public var maintenance: Int64
    /// healthy × 100 / checks, two decimals; nil without checks.
    public var uptimePercentage: Double?
    public var averageResponseTime: Double?
    public var p50: Double?
    public var p95: Double?
    public var p99: Double?
}

/// A maintenance window: checks inside it are recorded but not counted in uptime, and raise no events.
public struct MaintenanceWindow: Sendable, Hashable {
    public var id: UUID
    public var connectionID: ConnectionID
    public var startsAt: Date
    public var endsAt: Date
    public var reason: String?
    public var createdAt: Date
}

/// The connectivity monitor's storage: checks recorded with rollups, events and retries; due connections claimed so
/// that each is checked once per interval however many monitors share the database; uptime windows; maintenance
/// windows; retention.
public struct HealthMonitorStore: Sendable {
    let database: any SQLDatabase
    let clock: WallClock

    public init(database: any SQLDatabase, clock: WallClock = .system) {
        self.database = database
        self.clock = clock
    }

    /// The store's clock.
    public func now() -> Date { clock.now() }

    /// How long a failing check waits before it is retried (while the connection is pending): 20 s, or the interval
    /// when that is shorter.
    public static func retryDelay(intervalMinutes: Int) -> TimeInterval { min(20, Double(intervalMinutes) * 60) }

    // MARK: - Recording

    /// Records one check in one transaction (design steps 2–4 and more): the connection's status, last check and
    /// response time; the health row with its reason; the hourly and daily rollups; uptime_percentage and
    /// avg_response_time recomputed from the daily rollups (all time, maintenance excluded); and, when the reported
    /// status changes outside maintenance, a `connection.up`, `connection.down` or `connection.degraded` event.
    /// A `monitored` check that fails while the connection has retries left leaves it `pending` and due again soon.
    /// - Throws: `validation(status | response_time)`, `notFound`.
    @discardableResult
    public func record(_ id: ConnectionID, _ outcome: CheckOutcome, monitored: Bool) async throws -> SystemConnection {
        guard outcome.status != .pending else {
            throw HubError.validation(field: "status", reason: "must be healthy, degraded or down")
        }
        if let responseTime = outcome.responseTime, responseTime < 0 {
            throw HubError.validation(field: "response_time", reason: "must not be negative")
        }
        let now = clock.now()
        let lock = database.dialect == .postgres ? " FOR UPDATE" : ""
        let row: SQLRow? = try await database.transaction { executor in
            guard
                let current = try await executor.queryOne(
                    """
                    SELECT system_name, connection_type, health_check_interval, retries, failed_attempts, reported_status \
                    FROM system_connections WHERE connection_id = $1\(lock)
                    """, [.uuid(id.uuid)])
            else { return nil }
            let inMaintenance = try await executor.queryOne(
                """
                SELECT window_id FROM connection_maintenance WHERE connection_id = $1 AND starts_at <= $2 AND ends_at > $2 LIMIT 1
                """, [.uuid(id.uuid), .timestamp(now)]) != nil
            let reported = try current.optionalString("reported_status")
            var status = outcome.status
            var failedAttempts = 0
            var nextCheck: Date?
            if outcome.status == .down {
                failedAttempts = Int(try current.int("failed_attempts")) + 1
                // Retries before down: not once the connection is already reported down, nor in maintenance.
                if monitored, !inMaintenance, reported != ConnectionStatus.down.rawValue, failedAttempts <= Int(try current.int("retries")) {
                    status = .pending
                    nextCheck = now.addingTimeInterval(Self.retryDelay(intervalMinutes: Int(try current.int("health_check_interval"))))
                }
            }
            // What users were told last: unchanged while retrying and during maintenance.
            let newReported = status == .pending || inMaintenance ? reported : status.rawValue
            // Step 2: the connection's status and response time.
            _ = try await executor.query(
                """
                UPDATE system_connections SET status = $1, last_check = $2, response_time = $3, updated_at = $2, \
                failed_attempts = $4, reported_status = $5, next_check_at = COALESCE($6, next_check_at) WHERE connection_id = $7
                """,
                [
                    .text(status.rawValue), .timestamp(now), .optional(outcome.responseTime) { .int($0) }, .int(Int64(failedAttempts)),
                    .optional(newReported) { .text($0) }, .optional(nextCheck) { .timestamp($0) }, .uuid(id.uuid),
                ])
            // Step 3: the health row, with why and whether maintenance covered it.
            _ = try await executor.query(
                """
                INSERT INTO connection_health (health_id, connection_id, check_timestamp, status, response_time, created_at, \
                reason, in_maintenance) VALUES ($1, $2, $3, $4, $5, $3, $6, $7)
                """,
                [
                    .uuid(HealthCheckID.generate().uuid), .uuid(id.uuid), .timestamp(now), .text(outcome.status.rawValue),
                    .optional(outcome.responseTime) { .int($0) }, .optional(outcome.reason) { .text(String($0.prefix(500))) },
                    .bool(inMaintenance),
                ])
            try await Self.rollUp(id, outcome, inMaintenance: inMaintenance, at: now, into: executor)
            // The event of a change of the reported status (a first check that finds the system healthy is no change).
            if let newReported, newReported != reported, !inMaintenance, !(reported == nil && status == .healthy) {
                let type = status == .healthy ? "connection.up" : status == .down ? "connection.down" : "connection.degraded"
                let payload: JSONValue = [
                    "connection_id": .string(id.description), "system_name": .string(try current.string("system_name")),
                    "connection_type": .string(try current.string("connection_type")), "status": .string(status.rawValue),
                    "previous_status": reported.map(JSONValue.string) ?? .null, "reason": outcome.reason.map(JSONValue.string) ?? .null,
                    "response_time_ms": outcome.responseTime.map(JSONValue.int) ?? .null,
                ]
                try await SyncEngineStore.insertEvents([(type, payload)], at: now, dialect: database.dialect, into: executor)
            }
            // Step 4: uptime and average response time from the daily rollups (every check ever made, without
            // maintenance; raw checks are pruned, rollups keep counting).
            return try await executor.queryOne(
                """
                UPDATE system_connections SET uptime_percentage = (SELECT ROUND(SUM(healthy) * 100.0 / \
                NULLIF(SUM(checks) - SUM(maintenance), 0), 2) FROM connection_rollups WHERE connection_id = $1 AND bucket = 'day'), \
                avg_response_time = (SELECT ROUND(SUM(response_sum) * 1.0 / NULLIF(SUM(response_count), 0)) \
                FROM connection_rollups WHERE connection_id = $1 AND bucket = 'day'), last_updated = $2 \
                WHERE connection_id = $1 RETURNING \(ConnectionStore.columns)
                """, [.uuid(id.uuid), .timestamp(now)])
        }
        guard let row else { throw HubError.notFound(entity: "connection", id: id.description) }
        return try ConnectionStore.decode(row)
    }

    static let histogramColumns = (0..<LatencyHistogram.bucketCount).map { "h\($0)" }

    /// The hour and the day (UTC) that `date` falls in.
    static func bucketStarts(_ date: Date) -> [(String, Date)] {
        let seconds = floor(date.timeIntervalSince1970)
        return [
            ("hour", Date(timeIntervalSince1970: seconds - seconds.truncatingRemainder(dividingBy: 3600))),
            ("day", Date(timeIntervalSince1970: seconds - seconds.truncatingRemainder(dividingBy: 86_400))),
        ]
    }

    static func rollUp(_ id: ConnectionID, _ outcome: CheckOutcome, inMaintenance: Bool, at now: Date, into executor: any SQLExecutor) async throws {
        let counted = !inMaintenance
        let time = counted ? outcome.responseTime : nil
        let bucket = time.map(LatencyHistogram.bucket(for:))
        let histogram = histogramColumns.joined(separator: ", ")
        let histogramValues = (0..<LatencyHistogram.bucketCount).map { bucket == $0 ? "1" : "0" }.joined(separator: ", ")
        let histogramUpdates = histogramColumns.map { "\($0) = connection_rollups.\($0) + excluded.\($0)" }.joined(separator: ", ")
        func extreme(_ column: String, _ pick: String) -> String {
            """
            \(column) = CASE WHEN excluded.\(column) IS NULL THEN connection_rollups.\(column) \
            WHEN connection_rollups.\(column) IS NULL OR excluded.\(column) \(pick) connection_rollups.\(column) \
            THEN excluded.\(column) ELSE connection_rollups.\(column) END
            """
        }
        for (name, start) in bucketStarts(now) {
            _ = try await executor.query(
                """
                INSERT INTO connection_rollups (connection_id, bucket, bucket_start, checks, healthy, degraded, down, maintenance, \
                response_count, response_sum, response_min, response_max, \(histogram)) \
                VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $8, $9, $10, $10, \(histogramValues)) \
                ON CONFLICT (connection_id, bucket, bucket_start) DO UPDATE SET checks = connection_rollups.checks + 1, \
                healthy = connection_rollups.healthy + excluded.healthy, degraded = connection_rollups.degraded + excluded.degraded, \
                down = connection_rollups.down + excluded.down, maintenance = connection_rollups.maintenance + excluded.maintenance, \
                response_count = connection_rollups.response_count + excluded.response_count, \
                response_sum = connection_rollups.response_sum + excluded.response_sum, \
                \(extreme("response_min", "<")), \(extreme("response_max", ">")), \(histogramUpdates)
                """,
                [
                    .uuid(id.uuid), .text(name), .timestamp(start), .int(counted && outcome.status == .healthy ? 1 : 0),
                    .int(counted && outcome.status == .degraded ? 1 : 0), .int(counted && outcome.status == .down ? 1 : 0),
                    .int(counted ? 0 : 1), .int(time == nil ? 0 : 1), .int(time ?? 0), .optional(time) { .int($0) },
                ])
        }
    }

    // MARK: - Scheduling

    /// A connection due for a check, with what the probe needs.
    public struct Due: Sendable {
        public var connection: SystemConnection
        /// When it was due (the claim moved it one interval on).
        public var dueAt: Date
    }

    /// Claims up to `limit` connections due now, oldest due first, and moves each one interval on in the same
    /// statement (`FOR UPDATE SKIP LOCKED` on PostgreSQL): each due check is claimed once, however many monitors run.
    /// The next check keeps the connection's phase (its jitter from creation) unless it fell a whole interval behind.
    public func claimDue(limit: Int) async throws -> [Due] {
        let now = clock.now()
        let lock = database.dialect == .postgres ? " FOR UPDATE SKIP LOCKED" : ""
        let interval = database.dialect == .postgres
            ? "make_interval(mins => health_check_interval)" : "health_check_interval * 60000000"
        let rows = try await database.query(
            """
            UPDATE system_connections SET next_check_at = CASE WHEN next_check_at + \(interval) > $1 \
            THEN next_check_at + \(interval) ELSE $1 + \(interval) END WHERE connection_id IN \
            (SELECT connection_id FROM system_connections WHERE next_check_at <= $1 ORDER BY next_check_at LIMIT $2\(lock)) \
            AND next_check_at <= $1 RETURNING \(ConnectionStore.columns)
            """, [.timestamp(now), .int(Int64(limit))])
        return try rows.map { row in
            let connection = try ConnectionStore.decode(row)
            let next = try row.date("next_check_at")
            let dueAt = next.addingTimeInterval(-Double(connection.healthCheckInterval) * 60)
            return Due(connection: connection, dueAt: dueAt)
        }
    }

    /// When the next connection is due, if any.
    public func nextDue() async throws -> Date? {
        try await database.queryOne("SELECT MIN(next_check_at) AS t FROM system_connections", [])?.optionalDate("t")
    }

    // MARK: - Uptime windows

    /// Uptime, average and percentiles of response time over the last 24 h and 7 d (hourly rollups), 30 d and all
    /// time (daily rollups), maintenance excluded. - Throws: `notFound`.
    public func uptime(_ id: ConnectionID) async throws -> [UptimeWindow] {
        try await requireConnection(id)
        let now = clock.now()
        let starts = Self.bucketStarts(now)
        let hour = starts[0].1
        let day = starts[1].1
        let windows: [(String, String, Date)] = [
            ("24h", "hour", hour.addingTimeInterval(-23 * 3600)), ("7d", "hour", hour.addingTimeInterval(-(7 * 24 - 1) * 3600)),
            ("30d", "day", day.addingTimeInterval(-29 * 86_400)), ("all", "day", Date(timeIntervalSince1970: 0)),
        ]
        let sums = (["checks", "healthy", "degraded", "down", "maintenance", "response_count", "response_sum"] + Self.histogramColumns)
            .map { "COALESCE(SUM(\($0)), 0) AS \($0)" }.joined(separator: ", ")
        var result: [UptimeWindow] = []
        for (name, bucket, from) in windows {
            let row = try await database.queryOne(
                """
                SELECT \(sums), MIN(response_min) AS response_min, MAX(response_max) AS response_max FROM connection_rollups \
                WHERE connection_id = $1 AND bucket = $2 AND bucket_start >= $3
                """, [.uuid(id.uuid), .text(bucket), .timestamp(from)])!
            let checks = try row.int("checks") - row.int("maintenance")
            let healthy = try row.int("healthy")
            let count = try row.int("response_count")
            let histogram = try Self.histogramColumns.map { try row.int($0) }
            let minimum = try row.optionalInt("response_min") ?? 0
            let maximum = try row.optionalInt("response_max") ?? 0
            func percentile(_ p: Double) -> Double? {
                count == 0 ? nil : LatencyHistogram.percentile(p, buckets: histogram, minimum: minimum, maximum: maximum)
            }
            result.append(UptimeWindow(
                name: name, checks: checks, healthy: healthy, degraded: try row.int("degraded"), down: try row.int("down"),
                maintenance: try row.int("maintenance"),
                uptimePercentage: checks == 0 ? nil : (Double(healthy) * 10_000 / Double(checks)).rounded() / 100,
                averageResponseTime: count == 0 ? nil : Double(try row.int("response_sum")) / Double(count),
                p50: percentile(0.5), p95: percentile(0.95), p99: percentile(0.99)))
        }
        return result
    }

    // MARK: - Maintenance windows

    /// Adds a maintenance window. - Throws: `validation(ends_at | reason)`, `notFound`.
    public func addMaintenance(_ id: ConnectionID, startsAt: Date, endsAt: Date, reason: String?) async throws -> MaintenanceWindow {
        guard endsAt > startsAt else { throw HubError.validation(field: "ends_at", reason: "must be after starts_at") }
        if let reason {
            guard reason.count <= 500 else { throw HubError.validation(field: "reason", reason: "must be at most 500 characters") }
            try Validate.noNUL(reason, field: "reason")
        }
        let window = MaintenanceWindow(
            id: UUID(), connectionID: id, startsAt: startsAt, endsAt: endsAt, reason: reason, createdAt: clock.now())
        do {
            _ = try await database.query(
                """
                INSERT INTO connection_maintenance (window_id, connection_id, starts_at, ends_at, reason, created_at) \
                VALUES ($1, $2, $3, $4, $5, $6)
                """,
                [
                    .uuid(window.id), .uuid(id.uuid), .timestamp(startsAt), .timestamp(endsAt), .optional(reason) { .text($0) },
                    .timestamp(window.createdAt),
                ])
        } catch SQLError.foreignKeyViolation {
            throw HubError.notFound(entity: "connection", id: id.description)
        }
        return window
    }

    /// The connection's maintenance windows, earliest first. - Throws: `notFound`.
    public func maintenance(_ id: ConnectionID) async throws -> [MaintenanceWindow] {
        try await requireConnection(id)
        return try await database.query(
            """
            SELECT window_id, connection_id, starts_at, ends_at, reason, created_at FROM connection_maintenance \
            WHERE connection_id = $1 ORDER BY starts_at, window_id
            """, [.uuid(id.uuid)]
        ).map { row in
            MaintenanceWindow(
                id: try row.uuid("window_id"), connectionID: ConnectionID(try row.uuid("connection_id")), startsAt: try row.date("starts_at"),
                endsAt: try row.date("ends_at"), reason: try row.optionalString("reason"), createdAt: try row.date("created_at"))
        }
    }

    /// Deletes a maintenance window. - Throws: `notFound`.
    public func deleteMaintenance(_ id: ConnectionID, window: UUID) async throws {
        let rows = try await database.query(
            "DELETE FROM connection_maintenance WHERE window_id = $1 AND connection_id = $2 RETURNING window_id",
            [.uuid(window), .uuid(id.uuid)])
        guard !rows.isEmpty else { throw HubError.notFound(entity: "maintenance window", id: window.uuidString.lowercased()) }
    }

    private func requireConnection(_ id: ConnectionID) async throws {
        guard try await database.queryOne("SELECT connection_id FROM system_connections WHERE connection_id = $1", [.uuid(id.uuid)]) != nil
        else { throw HubError.notFound(entity: "connection", id: id.description) }
    }

    // MARK: - Retention

    /// Deletes raw checks older than `rawDays` and rollups older than `rollupDays`; returns how many rows went.
    @discardableResult
    public func prune(rawDays: Int, rollupDays: Int) async throws -> Int {
        let now = clock.now()
        // In batches of 5,000, each its own statement: a first prune after months never holds everything at once.
        var removed = 0
        for (table, key, column, days) in [
            ("connection_health", "health_id", "check_timestamp", rawDays), ("connection_rollups", "connection_id, bucket, bucket_start", "bucket_start", rollupDays),
        ] {
            let cutoff = SQLValue.timestamp(now.addingTimeInterval(-Double(days) * 86_400))
            while true {
                let count = try await database.query(
                    """
                    DELETE FROM \(table) WHERE (\(key)) IN (SELECT \(key) FROM \(table) WHERE \(column) < $1 LIMIT 5000) RETURNING 1 AS gone
                    """, [cutoff]).count
                removed += count
                if count < 5000 { break }
            }
        }
        return removed
    }
}
