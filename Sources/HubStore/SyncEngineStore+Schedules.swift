import Foundation
import HubCore

extension SyncEngineStore {
    // MARK: - Schedules

    /// Creates or replaces the schedule of an integration's entity type; the first run is due after one interval.
    /// - Throws: `validation(interval_minutes)` outside 1…525600, `validation(entity_type)`; `invalidReference`.
    public func schedule(
        _ integrationID: IntegrationID, entityType: String, syncType: SyncType, intervalMinutes: Int
    ) async throws -> SyncSchedule {
        try SyncJobRequest(integrationID: integrationID, syncType: syncType, entityType: entityType).validate()
        try Validate.range(intervalMinutes, 1...525_600, field: "interval_minutes")
        let now = clock.now()
        do {
            let row = try await database.queryOne(
                """
                INSERT INTO sync_schedules (schedule_id, integration_id, entity_type, sync_type, interval_minutes, next_run_at, created_at) \
                VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (integration_id, entity_type) DO UPDATE SET \
                sync_type = excluded.sync_type, interval_minutes = excluded.interval_minutes, next_run_at = excluded.next_run_at \
                RETURNING \(Self.scheduleColumns)
                """,
                [
                    .uuid(UUID()), .uuid(integrationID.uuid), .text(entityType), .text(syncType.rawValue), .int(Int64(intervalMinutes)),
                    .timestamp(now.addingTimeInterval(Double(intervalMinutes) * 60)), .timestamp(now),
                ])
            return try Self.decodeSchedule(row!)
        } catch SQLError.foreignKeyViolation {
            throw HubError.invalidReference(field: "integration_id", reason: "no integration has this id")
        }
    }

    /// Removes the schedule; false when there was none.
    public func unschedule(_ integrationID: IntegrationID, entityType: String) async throws -> Bool {
        try await !database.query(
            "DELETE FROM sync_schedules WHERE integration_id = $1 AND entity_type = $2 RETURNING schedule_id",
            [.uuid(integrationID.uuid), .text(entityType)]
        ).isEmpty
    }

    /// The integration's schedules by entity type.
    public func schedules(of integrationID: IntegrationID) async throws -> [SyncSchedule] {
        try await database.query(
            "SELECT \(Self.scheduleColumns) FROM sync_schedules WHERE integration_id = $1 ORDER BY entity_type", [.uuid(integrationID.uuid)]
        ).map(Self.decodeSchedule)
    }

    /// Claims schedules that are due: each is moved to its next run in the same statement, so that of many schedulers
    /// exactly one gets it (`FOR UPDATE SKIP LOCKED` on PostgreSQL).
    public func claimDueSchedules(limit: Int = 50) async throws -> [SyncSchedule] {
        let now = clock.now()
        let lock = database.dialect == .postgres ? " FOR UPDATE SKIP LOCKED" : ""
        let nextRun = database.dialect == .postgres
            ? "$1 + make_interval(mins => interval_minutes::int)" : "$1 + interval_minutes * 60000000"
        return try await database.query(
            """
            UPDATE sync_schedules SET next_run_at = \(nextRun) WHERE schedule_id IN \
            (SELECT schedule_id FROM sync_schedules WHERE next_run_at <= $1 ORDER BY next_run_at LIMIT $2\(lock)) \
            AND next_run_at <= $1 RETURNING \(Self.scheduleColumns)
            """, [.timestamp(now), .int(Int64(limit))]
        ).map(Self.decodeSchedule)
    }

    /// Notes the job a schedule started.
    public func scheduleStarted(_ scheduleID: UUID, job: SyncJobID) async throws {
        _ = try await database.query(
            "UPDATE sync_schedules SET last_job_id = $1 WHERE schedule_id = $2", [.uuid(job.uuid), .uuid(scheduleID)])
    }

    static let scheduleColumns = "schedule_id, integration_id, entity_type, sync_type, interval_minutes, next_run_at, last_job_id, created_at"

    static func decodeSchedule(_ row: SQLRow) throws -> SyncSchedule {
        guard let type = SyncType(rawValue: try row.string("sync_type")) else { throw SQLError.decoding(column: "sync_type") }
        return SyncSchedule(
            id: try row.uuid("schedule_id"), integrationID: IntegrationID(try row.uuid("integration_id")),
            entityType: try row.string("entity_type"), syncType: type, intervalMinutes: Int(try row.int("interval_minutes")),
            nextRunAt: try row.date("next_run_at"), lastJobID: try row.optionalUUID("last_job_id").map(SyncJobID.init),
            createdAt: try row.date("created_at"))
    }
}
