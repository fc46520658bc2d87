import Foundation
import HubCore

/// DAO-MDE-03-08-02 over any ``SQLDatabase``.
public struct SyncJobStore: DataSynchronizationDAO {
    let database: any SQLDatabase
    let clock: WallClock

    public init(database: any SQLDatabase, clock: WallClock = .system) {
        self.database = database
        self.clock = clock
    }

    static let columns = """
        sync_job_id, integration_id, sync_type, entity_type, filters, batch_size, status, records_processed, \
        errors_count, started_at, last_batch_at, completed_at, created_at, source_total, records_added, records_updated, \
        records_unchanged, records_deleted, records_failed, reconciliation_mismatch, failure_reason
        """

    public func start(_ request: SyncJobRequest) async throws -> SyncJob {
        // Step 1: validate sync_type and entity_type, check that the integration exists and is not disabled, insert.
        // The one-running-job rule is a partial unique index, so concurrent starts cannot both succeed.
        try request.validate()
        let now = clock.now()
        do {
            // The integration is read under a share lock (PostgreSQL), so it cannot be disabled or deleted between the
            // check and the insert.
            let lock = database.dialect == .postgres ? " FOR SHARE" : ""
            return try await database.transaction { executor in
                guard
                    let integration = try await executor.queryOne(
                        "SELECT status FROM external_integrations WHERE integration_id = $1\(lock)", [.uuid(request.integrationID.uuid)])
                else {
                    throw HubError.invalidReference(field: "integration_id", reason: "no integration has this id")
                }
                guard try integration.string("status") != IntegrationStatus.disabled.rawValue else {
                    throw HubError.conflict(field: "integration_id", reason: "the integration is disabled; enable it to sync")
                }
                let row = try await executor.queryOne(
                    """
                    INSERT INTO sync_jobs (sync_job_id, integration_id, sync_type, entity_type, filters, batch_size, \
                    status, started_at, created_at) VALUES ($1, $2, $3, $4, $5, COALESCE($6, 1000), 'running', $7, $7) \
                    RETURNING \(Self.columns)
                    """,
                    [
                        .uuid(SyncJobID.generate().uuid), .uuid(request.integrationID.uuid), .text(request.syncType.rawValue),
                        .text(request.entityType), .optional(request.filters.flatMap { $0 == .null ? nil : $0 }) { .json($0.jsonText) },
                        .optional(request.batchSize) { .int(Int64($0)) }, .timestamp(now),
                    ])
                return try decode(row!)
            }
        } catch SQLError.foreignKeyViolation {
            throw HubError.invalidReference(field: "integration_id", reason: "no integration has this id")
        } catch SQLError.uniqueViolation {
            throw HubError.conflict(
                field: "entity_type", reason: "a sync job for this integration and entity type is already running")
        }
    }

    public func recordBatch(_ jobID: SyncJobID, batchNumber: Int, recordsCount: Int, status: SyncBatchStatus)
        async throws -> BatchProgress
    {
        // Step 2: the batch row and the job's progress commit together or not at all.
        try Validate.range(batchNumber, 1...Int(Int32.max), field: "batch_number")
        try Validate.range(recordsCount, 0...Int(Int32.max), field: "records_count")
        let now = clock.now()
        let batchID = SyncBatchID.generate()
        let binds: [SQLValue] = [
            .uuid(jobID.uuid), .int(Int64(batchNumber)), .int(Int64(recordsCount)), .text(status.rawValue),
            .timestamp(now), .uuid(batchID.uuid),
        ]
        do {
            let progress: BatchProgress?
            switch database.dialect {
            case .postgres:
                // The design's CTE, with the insert fed by the job update so that a batch is only recorded for a
                // running job.
                let row = try await database.queryOne(
                    """
                    WITH job_update AS (UPDATE sync_jobs SET records_processed = records_processed + $3, \
                    last_batch_at = $5 WHERE sync_job_id = $1 AND status = 'running' \
                    RETURNING sync_job_id, records_processed), \
                    sync_progress AS (INSERT INTO sync_batches (batch_id, sync_job_id, batch_number, records_count, \
                    status, processed_at) SELECT $6, ju.sync_job_id, $2, $3, $4, $5 FROM job_update ju \
                    RETURNING batch_id) \
                    SELECT sp.batch_id, ju.records_processed FROM sync_progress sp, job_update ju
                    """, binds)
                progress = try row.map(Self.decodeProgress)
            case .sqlite:
                progress = try await database.transaction { executor in
                    guard
                        let job = try await executor.queryOne(
                            """
                            UPDATE sync_jobs SET records_processed = records_processed + $3, last_batch_at = $5 \
                            WHERE sync_job_id = $1 AND status = 'running' RETURNING records_processed
                            """, binds)
                    else { return nil }
                    _ = try await executor.query(
                        """
                        INSERT INTO sync_batches (batch_id, sync_job_id, batch_number, records_count, status, \
                        processed_at) VALUES ($6, $1, $2, $3, $4, $5)
                        """, binds)
                    return BatchProgress(batchID: batchID, recordsProcessed: try job.int("records_processed"))
                }
            }
            if let progress { return progress }
        } catch SQLError.uniqueViolation {
            throw HubError.conflict(field: "batch_number", reason: "batch \(batchNumber) of this job is already recorded")
        }
        let job = try await get(jobID)
        throw HubError.conflict(field: nil, reason: "the sync job is \(job.status.rawValue), not running")
    }

    public func finalize(_ jobID: SyncJobID, status: SyncJobStatus, errorsCount: Int) async throws -> SyncJob {
        // Step 3, and the integration's last_sync and error_count, in one transaction.
        guard status.isFinal else {
            throw HubError.validation(field: "status", reason: "must be a final status, not running")
        }
        try Validate.range(errorsCount, 0...Int(Int32.max), field: "errors_count")
        let now = clock.now()
        let finished: SyncJob? = try await database.transaction { executor in
            try await Self.finalize(jobID, status: status, errorsCount: errorsCount, at: now, leaseOwner: nil, in: executor)
        }
        if let finished { return finished }
        let job = try await get(jobID)
        throw HubError.conflict(field: nil, reason: "the sync job is already \(job.status.rawValue)")
    }

    /// Step 3 inside a transaction: finalizes the job if it is running (and, when `leaseOwner` is given, leased to it),
    /// releasing its lease, and updates the integration's last_sync and error_count. Nil when the job was not running.
    static func finalize(
        _ jobID: SyncJobID, status: SyncJobStatus, errorsCount: Int, at now: Date, leaseOwner: String?, in executor: any SQLExecutor
    ) async throws -> SyncJob? {
        var binds: [SQLValue] = [.text(status.rawValue), .timestamp(now), .int(Int64(errorsCount)), .uuid(jobID.uuid)]
        var leaseCondition = ""
        if let leaseOwner {
            binds.append(.text(leaseOwner))
            leaseCondition = " AND lease_owner = $5"
        }
        guard
            let row = try await executor.queryOne(
                """
                UPDATE sync_jobs SET status = $1, completed_at = $2, \
                errors_count = CASE WHEN errors_count > $3 THEN errors_count ELSE $3 END, lease_owner = NULL, lease_expires_at = NULL \
                WHERE sync_job_id = $4 AND status = 'running'\(leaseCondition) RETURNING \(Self.columns)
                """, binds)
        else { return nil }
        // The count is the row's own (never below what its batches recorded): a caller's count read before a batch that
        // committed meanwhile (a cancel racing the runner) no longer loses that batch's errors.
        let job = try decode(row)
        _ = try await executor.query(
            """
            UPDATE external_integrations SET last_sync = $1, error_count = error_count + $2, updated_at = $1 \
            WHERE integration_id = $3
            """,
            [.timestamp(now), .int(job.errorsCount), .uuid(job.integrationID.uuid)])
        return job
    }

    public func get(_ jobID: SyncJobID) async throws -> SyncJob {
        let row = try await database.queryOne(
            "SELECT \(Self.columns) FROM sync_jobs WHERE sync_job_id = $1", [.uuid(jobID.uuid)])
        guard let row else { throw HubError.notFound(entity: "sync job", id: jobID.description) }
        return try decode(row)
    }

    public func batches(of jobID: SyncJobID) async throws -> [SyncBatch] {
        _ = try await get(jobID)
        return try await database.query(
            """
            SELECT batch_id, sync_job_id, batch_number, records_count, status, processed_at FROM sync_batches \
            WHERE sync_job_id = $1 ORDER BY batch_number
            """, [.uuid(jobID.uuid)]
        ).map { row in
            guard let status = SyncBatchStatus(rawValue: try row.string("status")) else {
                throw SQLError.decoding(column: "status")
            }
            return SyncBatch(
                id: SyncBatchID(try row.uuid("batch_id")), syncJobID: SyncJobID(try row.uuid("sync_job_id")),
                batchNumber: Int(try row.int("batch_number")), recordsCount: Int(try row.int("records_count")),
                status: status, processedAt: try row.date("processed_at"))
        }
    }

    public func list(_ filter: SyncJobFilter, _ page: PageRequest) async throws -> Page<SyncJob> {
        var query = ListQuery(table: "sync_jobs", idColumn: "sync_job_id", columns: Self.columns)
        if let integrationID = filter.integrationID { query.filter("integration_id", .uuid(integrationID.uuid)) }
        if let status = filter.status { query.filter("status", .text(status.rawValue)) }
        if let entityType = filter.entityType { query.filter("entity_type", .text(entityType)) }
        return try await query.run(on: database, page: page) { row in
            let job = try decode(row)
            return (job, PageCursor(createdAt: job.createdAt, id: job.id.uuid))
        }
    }

    private static func decodeProgress(_ row: SQLRow) throws -> BatchProgress {
        BatchProgress(
            batchID: SyncBatchID(try row.uuid("batch_id")), recordsProcessed: try row.int("records_processed"))
    }

    private func decode(_ row: SQLRow) throws -> SyncJob { try Self.decode(row) }

    static func decode(_ row: SQLRow) throws -> SyncJob {
        guard let syncType = SyncType(rawValue: try row.string("sync_type")) else {
            throw SQLError.decoding(column: "sync_type")
        }
        guard let status = SyncJobStatus(rawValue: try row.string("status")) else {
            throw SQLError.decoding(column: "status")
        }
        var job = SyncJob(
            id: SyncJobID(try row.uuid("sync_job_id")), integrationID: IntegrationID(try row.uuid("integration_id")),
            syncType: syncType, entityType: try row.string("entity_type"), filters: try row.optionalJSON("filters"),
            batchSize: Int(try row.int("batch_size")), status: status,
            recordsProcessed: try row.int("records_processed"), errorsCount: try row.int("errors_count"),
            startedAt: try row.date("started_at"), lastBatchAt: try row.optionalDate("last_batch_at"),
            completedAt: try row.optionalDate("completed_at"), createdAt: try row.date("created_at"))
        job.summary.sourceTotal = try row.optionalInt("source_total")
        job.summary.added = try row.int("records_added")
        job.summary.updated = try row.int("records_updated")
        job.summary.unchanged = try row.int("records_unchanged")
        job.summary.deleted = try row.int("records_deleted")
        job.summary.failed = try row.int("records_failed")
        job.summary.reconciliationMismatch = try row.bool("reconciliation_mismatch")
        job.summary.failureReason = try row.optionalString("failure_reason")
        return job
    }
}
