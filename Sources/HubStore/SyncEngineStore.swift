import Foundation
import HubCore

/// What the sync engine stores beside the Data Synchronization DAO: job leases and checkpoints, the records store,
/// the first errors of each job, schedules and the events outbox. Every batch commits its records, events, errors,
/// `sync_batches` row (step 2), progress and checkpoint in one transaction, guarded by the job's lease.
public struct SyncEngineStore: Sendable {
    let database: any SQLDatabase
    let clock: WallClock
    /// Errors kept per job in `sync_errors` (the first ones); all are counted.
    public static let keptErrors = 100

    /// A store over `database`.
    public init(database: any SQLDatabase, clock: WallClock = .system) {
        self.database = database
        self.clock = clock
    }

    /// How many of a job's batches a runner has committing at once: on PostgreSQL a batch is sent while the ones before
    /// it are still committing (each has a connection and a backend of its own and waits on the job's row); SQLite has
    /// one writer.
    public var batchesInFlight: Int {
        database.dialect == .postgres ? 2 : 1
    }

    /// A running job leased to one worker, with what it needs to resume.
    public struct Claim: Sendable {
        public var job: SyncJob
        /// The connector's page state after the last committed batch; nil for a job not begun.
        public var checkpoint: JSONValue?
        /// The largest source modification time committed by this job (or the one it started from).
        public var highWaterMark: String?
        /// Whether every page was committed (only the finish remains).
        public var pagesDone: Bool
        /// The number the next batch gets.
        public var nextBatchNumber: Int
    }

    static let claimColumns = SyncJobStore.columns + ", checkpoint, high_water_mark, pages_done"

    /// Leases the oldest running job that no live worker holds (never leased, or lease expired), or `jobID` only when
    /// given; nil when there is none. Concurrent claimers never get the same job (`FOR UPDATE SKIP LOCKED` on PostgreSQL).
    public func claim(owner: String, lease: Duration, jobID: SyncJobID? = nil) async throws -> Claim? {
        let now = clock.now()
        var binds: [SQLValue] = [.text(owner), .timestamp(now.addingTimeInterval(lease.seconds)), .timestamp(now)]
        var only = ""
        if let jobID {
            binds.append(.uuid(jobID.uuid))
            only = " AND sync_job_id = $4"
        }
        let lock = database.dialect == .postgres ? " FOR UPDATE SKIP LOCKED" : ""
        let claimable = "status = 'running' AND (lease_expires_at IS NULL OR lease_expires_at < $3)\(only)"
        return try await database.transaction { executor in
            guard
                let row = try await executor.queryOne(
                    """
                    UPDATE sync_jobs SET lease_owner = $1, lease_expires_at = $2 WHERE sync_job_id = \
                    (SELECT sync_job_id FROM sync_jobs WHERE \(claimable) ORDER BY created_at LIMIT 1\(lock)) \
                    AND \(claimable) RETURNING \(Self.claimColumns)
                    """, binds)
            else { return nil }
            let job = try SyncJobStore.decode(row)
            // The job's last batch, as its batches say (the turn of the next one: see commitBatch).
            let next = try await executor.queryOne(
                """
                UPDATE sync_jobs SET last_batch_number = (SELECT COALESCE(MAX(batch_number), 0) FROM sync_batches \
                WHERE sync_job_id = $1) WHERE sync_job_id = $1 RETURNING last_batch_number AS n
                """, [.uuid(job.id.uuid)])!
            return Claim(
                job: job, checkpoint: try row.optionalJSON("checkpoint"), highWaterMark: try row.optionalString("high_water_mark"),
                pagesDone: try row.bool("pages_done"), nextBatchNumber: Int(try next.int("n")) + 1)
        }
    }

    /// Extends the lease; false when `owner` no longer holds it or the job is no longer running.
    public func renew(_ jobID: SyncJobID, owner: String, lease: Duration) async throws -> Bool {
        let now = clock.now()
        return try await !database.query(
            """
            UPDATE sync_jobs SET lease_expires_at = $1 WHERE sync_job_id = $2 AND lease_owner = $3 AND status = 'running' \
            RETURNING sync_job_id
            """, [.timestamp(now.addingTimeInterval(lease.seconds)), .uuid(jobID.uuid), .text(owner)]
        ).isEmpty
    }

    /// Gives the lease up at once (graceful shutdown), so another worker resumes the job without waiting.
    public func release(_ jobID: SyncJobID, owner: String) async throws {
        _ = try await database.query(
            "UPDATE sync_jobs SET lease_owner = NULL, lease_expires_at = NULL WHERE sync_job_id = $1 AND lease_owner = $2",
            [.uuid(jobID.uuid), .text(owner)])
    }

    /// The high-water mark of the last successful job of this integration and entity type.
    public func lastHighWaterMark(_ integrationID: IntegrationID, entityType: String) async throws -> String? {
        try await database.queryOne(
            """
            SELECT high_water_mark FROM sync_jobs WHERE integration_id = $1 AND entity_type = $2 \
            AND status IN ('completed', 'completed_with_errors') AND high_water_mark IS NOT NULL \
            ORDER BY completed_at DESC LIMIT 1
            """, [.uuid(integrationID.uuid), .text(entityType)]
        )?.optionalString("high_water_mark")
    }

    /// A mapped record ready to store: its canonical JSON text and the text's SHA-256 (prepared off the commit path).
    public struct PreparedRecord: Sendable {
        public var externalID: String
        public var text: String
        public var hash: String

        /// Prepares `mapped`.
        public init(_ mapped: RecordMapping.Mapped) {
            externalID = mapped.externalID
            text = mapped.text
            hash = JSONValue.sha256Hex(text)
        }
    }

    /// One page's work to commit.
    public struct Batch: Sendable {
        public var jobID: SyncJobID
        public var owner: String
        public var lease: Duration
        public var batchNumber: Int
        public var records: [PreparedRecord]
        public var failures: [MappingError]
        /// The connector's state after this page.
        public var checkpoint: JSONValue
        public var highWaterMark: String?
        public var sourceTotal: Int64?
        /// Whether this was the last page.
        public var pagesDone: Bool
        /// Whether the records are probably all new (the job's batches before added every record they had): PostgreSQL
        /// then inserts them without the upsert's look for each one's stored row, and upserts them after all when one is
        /// stored (its key refuses the insert, which writes nothing).
        public var recordsLikelyNew = false

        public init(
            jobID: SyncJobID, owner: String, lease: Duration, batchNumber: Int, records: [PreparedRecord], failures: [MappingError],
            checkpoint: JSONValue, highWaterMark: String?, sourceTotal: Int64?, pagesDone: Bool, recordsLikelyNew: Bool = false
        ) {
            self.recordsLikelyNew = recordsLikelyNew
            self.jobID = jobID
            self.owner = owner
            self.lease = lease
            self.batchNumber = batchNumber
            self.records = records
            self.failures = failures
            self.checkpoint = checkpoint
            self.highWaterMark = highWaterMark
            self.sourceTotal = sourceTotal
            self.pagesDone = pagesDone
        }
    }

    /// A batch sent before the one before it was committed (see ``commitBatch(_:integrationID:entityType:)``): nothing
    /// was written; it may be sent again once that one is.
    public struct BatchOutOfTurn: Error, Sendable, Hashable {
        public var batchNumber: Int
        /// The job's last committed batch when this one was refused.
        public var lastCommitted: Int

        public init(batchNumber: Int, lastCommitted: Int) {
            self.batchNumber = batchNumber
            self.lastCommitted = lastCommitted
        }
    }

    /// The error for batch `number` refused while `lastCommitted` is the job's last batch: a conflict when the batch is
    /// already committed, else ``BatchOutOfTurn``.
    static func outOfTurn(_ number: Int, lastCommitted: Int) -> any Error {
        if lastCommitted >= number {
            return HubError.conflict(field: "batch_number", reason: "batch \(number) of this job is already recorded")
        }
        return BatchOutOfTurn(batchNumber: number, lastCommitted: lastCommitted)
    }

    /// What a committed batch changed.
    public struct BatchResult: Sendable, Hashable {
        public var added = 0
        public var updated = 0
        public var unchanged = 0
        public var failed = 0
        /// The job's records_processed after the batch.
        public var recordsProcessed: Int64 = 0
        /// Whether the records were written by a plain insert (PostgreSQL, ``Batch/recordsLikelyNew``), not upserted.
        public var insertedOnly = false
    }

    /// Commits one batch: records upserted (added / updated / unchanged by content hash; a deleted record that returns
    /// is added again), `record.created` / `record.updated` events, the first errors, the job's progress, counts,
    /// checkpoint and high-water mark, its lease renewed, and the `sync_batches` row — all or nothing. A batch commits
    /// only as the job's next one (its number one past the job's last batch): on PostgreSQL the job's row is locked
    /// first, so a batch sent while the one before it is still committing waits for it (a runner overlaps them).
    /// - Throws: `conflict` when the job is no longer running, its lease is no longer `owner`'s or the batch is already
    ///   committed; ``BatchOutOfTurn`` when the batch before it is not committed. Nothing is written then.
    public func commitBatch(_ batch: Batch, integrationID: IntegrationID, entityType: String) async throws -> BatchResult {
        let now = clock.now()
        // The last occurrence of an external id in a page wins (one row may be written once per statement).
        var latest: [String: Int] = [:]
        for (index, record) in batch.records.enumerated() { latest[record.externalID] = index }
        let records = batch.records.enumerated().filter { latest[$0.element.externalID] == $0.offset }.map(\.element)
        let duplicates = batch.records.count - records.count
        if database.dialect == .postgres {
            return try await commitBatchPostgres(
                batch, records: records, duplicates: duplicates, integrationID: integrationID, entityType: entityType, at: now)
        }
        do {
            return try await commitBatchSQLite(
                batch, records: records, duplicates: duplicates, integrationID: integrationID, entityType: entityType, at: now)
        } catch SQLError.uniqueViolation {
            throw HubError.conflict(field: "batch_number", reason: "batch \(batch.batchNumber) of this job is already recorded")
        }
    }

    private func commitBatchSQLite(
        _ batch: Batch, records: [PreparedRecord], duplicates: Int, integrationID: IntegrationID, entityType: String, at now: Date
    ) async throws -> BatchResult {
        try await database.transaction { executor in
            var result = BatchResult()
            var events: [RecordEvent] = []
            // A statement per 5,000 records (15,004 parameters, within SQLite's limit of 32,766; a source's page may hold
            // more records than the batch size asked).
            for start in stride(from: 0, to: records.count, by: 5000) {
                var binds: [SQLValue] = [.uuid(integrationID.uuid), .text(entityType), .timestamp(now), .uuid(batch.jobID.uuid)]
                var tuples: [String] = []
                tuples.reserveCapacity(min(5000, records.count - start))
                for record in records[start..<min(start + 5000, records.count)] {
                    binds += [.text(record.externalID), .json(record.text), .text(record.hash)]
                    let base = binds.count - 2
                    tuples.append("($1, $2, $\(base), $\(base + 1), $\(base + 2), 'created', $3, $3, NULL, $4, $4)")
                }
                let rows = try await executor.query(
                    Self.recordsUpsert(from: "VALUES " + tuples.joined(separator: ", ")) + " RETURNING external_id, last_change, updated_at",
                    binds)
                for row in rows {
                    guard try row.date("updated_at") == SQLValue.date(microseconds: SQLValue.microseconds(now)) else {
                        result.unchanged += 1
                        continue
                    }
                    let externalID = try row.string("external_id")
                    let created = try row.string("last_change") == RecordChange.created.rawValue
                    if created { result.added += 1 } else { result.updated += 1 }
                    events.append(RecordEvent(type: created ? "record.created" : "record.updated", externalID: externalID))
                }
            }
            result.unchanged += duplicates
            result.failed = batch.failures.count
            // One row per kind, as on PostgreSQL: the created ones, then the updated ones.
            try await Self.insertRecordEvents(
                events.filter { $0.type == "record.created" } + events.filter { $0.type != "record.created" },
                integrationID: integrationID, entityType: entityType, jobID: batch.jobID, at: now, dialect: .sqlite, into: executor)
            let processed = records.count + duplicates
            guard
                let job = try await executor.queryOne(
                    """
                    UPDATE sync_jobs SET records_processed = records_processed + $1, last_batch_at = $2, checkpoint = $3, \
                    high_water_mark = COALESCE($4, high_water_mark), source_total = COALESCE($5, source_total), \
                    records_added = records_added + $6, records_updated = records_updated + $7, \
                    records_unchanged = records_unchanged + $8, records_failed = records_failed + $9, \
                    errors_count = errors_count + $9, pages_done = $10, lease_expires_at = $11, last_batch_number = $14 \
                    WHERE sync_job_id = $12 AND status = 'running' AND lease_owner = $13 AND last_batch_number = $14 - 1 \
                    RETURNING records_processed, errors_count
                    """,
                    [
                        .int(Int64(processed)), .timestamp(now), .json(batch.checkpoint.jsonText),
                        .optional(batch.highWaterMark) { .text($0) }, .optional(batch.sourceTotal) { .int($0) },
                        .int(Int64(result.added)), .int(Int64(result.updated)), .int(Int64(result.unchanged)), .int(Int64(result.failed)),
                        .bool(batch.pagesDone), .timestamp(now.addingTimeInterval(batch.lease.seconds)), .uuid(batch.jobID.uuid),
                        .text(batch.owner), .int(Int64(batch.batchNumber)),
                    ])
            else {
                // Rolled back: either the lease is gone or the batch is not the next one.
                if let current = try await executor.queryOne(
                    "SELECT last_batch_number FROM sync_jobs WHERE sync_job_id = $1 AND status = 'running' AND lease_owner = $2",
                    [.uuid(batch.jobID.uuid), .text(batch.owner)])
                {
                    throw Self.outOfTurn(batch.batchNumber, lastCommitted: Int(try current.int("last_batch_number")))
                }
                throw HubError.conflict(field: nil, reason: "the sync job is no longer running under this worker's lease")
            }
            result.recordsProcessed = try job.int("records_processed")
            // The first errors are kept with their reasons; all are counted.
            let errorsBefore = Int(try job.int("errors_count")) - batch.failures.count
            let room = max(0, Self.keptErrors - errorsBefore)
            for (offset, failure) in batch.failures.prefix(room).enumerated() {
                _ = try await executor.query(
                    """
                    INSERT INTO sync_errors (sync_job_id, error_number, batch_number, external_id, reason, created_at) \
                    VALUES ($1, $2, $3, $4, $5, $6)
                    """,
                    [
                        .uuid(batch.jobID.uuid), .int(Int64(errorsBefore + offset + 1)), .int(Int64(batch.batchNumber)),
                        .optional(failure.externalID) { .text($0) }, .text(String(failure.reason.prefix(1000))), .timestamp(now),
                    ])
            }
            // Records that failed to map are still in the source: a full sync must not take them for deleted.
            let failedIDs = batch.failures.compactMap(\.externalID)
            if !failedIDs.isEmpty {
                _ = try await executor.query(
                    """
                    UPDATE sync_records SET failed_job_id = $1 WHERE integration_id = $2 AND entity_type = $3 \
                    AND \(database.dialect.isIn("external_id", textArray: "$4", as: "text"))
                    """,
                    [.uuid(batch.jobID.uuid), .uuid(integrationID.uuid), .text(entityType), .textArray(failedIDs)])
            }
            // Step 2 of the design: the batch row (its records are the page's records, mapped or not).
            _ = try await executor.query(
                """
                INSERT INTO sync_batches (batch_id, sync_job_id, batch_number, records_count, status, processed_at) \
                VALUES ($1, $2, $3, $4, $5, $6)
                """,
                [
                    .uuid(SyncBatchID.generate().uuid), .uuid(batch.jobID.uuid), .int(Int64(batch.batchNumber)),
                    .int(Int64(processed + batch.failures.count)), .text(SyncBatchStatus.completed.rawValue), .timestamp(now),
                ])
            return result
        }
    }

    /// The records upsert both backends run, from `source` (the rows, in `sync_records` column order): a new record is
    /// `created`; a known one whose content hash differs is `updated`; a deleted one that returns is `created` again
    /// (those three get `updated_at` and `last_job_id` of this batch); every one is marked seen by the job.
    static func recordsUpsert(from source: String) -> String {
        let changed = "(sync_records.deleted_at IS NOT NULL OR sync_records.content_hash <> excluded.content_hash)"
        return """
            \(recordsInsert(from: source)) ON CONFLICT (integration_id, entity_type, external_id) DO UPDATE SET \
            data = CASE WHEN \(changed) THEN excluded.data ELSE sync_records.data END, \
            last_change = CASE WHEN sync_records.deleted_at IS NOT NULL THEN 'created' \
            WHEN sync_records.content_hash <> excluded.content_hash THEN 'updated' ELSE sync_records.last_change END, \
            updated_at = CASE WHEN \(changed) THEN excluded.updated_at ELSE sync_records.updated_at END, \
            last_job_id = CASE WHEN \(changed) THEN excluded.last_job_id ELSE sync_records.last_job_id END, \
            content_hash = excluded.content_hash, deleted_at = NULL, seen_job_id = excluded.seen_job_id
            """
    }

    /// The insert of new records from `source` (the rows, in `sync_records` column order).
    static func recordsInsert(from source: String) -> String {
        """
        INSERT INTO sync_records (integration_id, entity_type, external_id, data, content_hash, last_change, created_at, \
        updated_at, deleted_at, last_job_id, seen_job_id) \(source)
        """
    }

    /// The page's rows from three array parameters (one plan however many rows), only under the lease.
    private static let postgresRows = """
            SELECT $1::uuid, $2::text, r.external_id, r.data::json, r.content_hash, 'created', $3::timestamptz, $3::timestamptz, \
            NULL::timestamptz, $4::uuid, $4::uuid FROM unnest($6::text[], $7::text[], $8::text[]) AS r(external_id, data, content_hash) \
            WHERE EXISTS (SELECT 1 FROM lease)
            """

    /// The batch statement (see ``commitBatchPostgres``), prepared once per connection: every parameter's type is
    /// fixed by a cast or its column. A batch without failed records runs ``PostgresCleanBatch``, which leaves out the
    /// errors and the marking of failed records (and their parameters, $19-$21).
    enum PostgresBatch: PreparedSQL {
        static let name = "hub_sync_batch"
        static let sql = batchSQL(plainInsert: false, failures: true)
    }

    /// The batch statement for a batch whose records all mapped.
    enum PostgresCleanBatch: PreparedSQL {
        static let name = "hub_sync_clean_batch"
        static let sql = batchSQL(plainInsert: false, failures: false)
    }

    /// The batch statement for a batch whose records all mapped and are probably all new (``Batch/recordsLikelyNew``):
    /// a plain insert, refused as a whole by the records' key when one is stored after all. Every record is added (one
    /// `record.created` event of each of the batch's ids); nothing is read back.
    enum PostgresNewBatch: PreparedSQL {
        static let name = "hub_sync_new_batch"
        static let sql = batchSQL(plainInsert: true, failures: false)
    }

    /// A batch statement: the job's row locked by key and the turn checked on it (`lease`: no row unless the lease is
    /// the owner's and the batch is the job's next), the records written (upserted, or inserted when `plainInsert`),
    /// their events in rows of at most ``idsPerEventRow`` ids per kind, the counts, the job's progress, the first errors
    /// and the failed records' marks (`failures`) and the batch row. Every write is under `lease`.
    static func batchSQL(plainInsert: Bool, failures: Bool) -> String {
        // A kind's ids into rows of at most idsPerEventRow, by array slices.
        func eventRows(type: String, ids: String, from source: String, order: String) -> String {
            """
            ev AS (INSERT INTO events (event_type, integration_id, entity_type, external_ids, sync_job_id, created_at) \
            SELECT \(type), $1, $2, \(ids)[k * \(idsPerEventRow) + 1 : (k + 1) * \(idsPerEventRow)], $4, $3 \
            FROM \(source), generate_series(0, (cardinality(\(ids)) - 1) / \(idsPerEventRow)) AS k WHERE cardinality(\(ids)) > 0 \
            ORDER BY \(order)k RETURNING 1),
            """
        }
        let records = plainInsert
            ? """
            ins AS (\(recordsInsert(from: postgresRows))), \
            \(eventRows(type: "'record.created'", ids: "($6::text[])", from: "lease", order: "")) \
            counts AS (SELECT cardinality($6::text[]) AS added, 0 AS updated, cardinality($6::text[]) AS total),
            """
            : """
            up AS (\(recordsUpsert(from: postgresRows)) RETURNING external_id, last_change, updated_at), \
            \(eventRows(
                type: "CASE WHEN g.last_change = 'created' THEN 'record.created' ELSE 'record.updated' END", ids: "g.ids",
                from: "(SELECT last_change, array_agg(external_id) AS ids FROM up WHERE updated_at = $3 GROUP BY last_change) AS g",
                order: "g.last_change, ")) \
            counts AS (SELECT count(*) FILTER (WHERE updated_at = $3 AND last_change = 'created') AS added, \
            count(*) FILTER (WHERE updated_at = $3 AND last_change = 'updated') AS updated, count(*) AS total FROM up),
            """
        let failed = failures ? """
            errs AS (INSERT INTO sync_errors (sync_job_id, error_number, batch_number, external_id, reason, created_at) \
            SELECT $4, lease.errors_count + e.position, $18, NULLIF(e.external_id, ''), e.reason, $3 \
            FROM lease, unnest($19::text[], $20::text[]) WITH ORDINALITY AS e(external_id, reason, position) \
            WHERE lease.errors_count + e.position <= $21 RETURNING 1), \
            seen AS (UPDATE sync_records SET failed_job_id = $4 FROM unnest($19::text[]) AS f(external_id) \
            WHERE sync_records.integration_id = $1 AND sync_records.entity_type = $2 AND sync_records.external_id = f.external_id \
            AND EXISTS (SELECT 1 FROM lease) RETURNING 1),
            """ : ""
        return """
            WITH job_row AS (SELECT sync_job_id, errors_count, status, lease_owner, last_batch_number FROM sync_jobs \
            WHERE sync_job_id = $4 FOR UPDATE), \
            lease AS (SELECT sync_job_id, errors_count FROM job_row WHERE status = 'running' AND lease_owner = $5 \
            AND last_batch_number = $18 - 1), \
            \(records) \
            job AS (UPDATE sync_jobs SET records_processed = records_processed + $9, last_batch_at = $3, checkpoint = $10, \
            high_water_mark = COALESCE($11::text, high_water_mark), source_total = COALESCE($12::bigint, source_total), \
            records_added = records_added + (SELECT added FROM counts), records_updated = records_updated + (SELECT updated FROM counts), \
            records_unchanged = records_unchanged + (SELECT total - added - updated FROM counts) + $16, \
            records_failed = records_failed + $13, errors_count = errors_count + $13, pages_done = $14, lease_expires_at = $15, \
            last_batch_number = $18 WHERE sync_job_id IN (SELECT sync_job_id FROM lease) RETURNING records_processed, errors_count), \
            \(failed) batch AS (INSERT INTO sync_batches (batch_id, sync_job_id, batch_number, records_count, status, processed_at) \
            SELECT $17, sync_job_id, $18, $9 + $13, 'completed', $3 FROM lease RETURNING 1) \
            SELECT job_row.status = 'running' AND job_row.lease_owner = $5 AS ours, job_row.last_batch_number, \
            job.records_processed, counts.added, counts.updated, counts.total FROM job_row LEFT JOIN job ON true, counts
            """
    }

    /// The name of the records' key (PostgreSQL), which refuses a stored record in ``PostgresNewBatch``.
    static let recordsKey = "sync_records_pkey"

    /// The batch as one PostgreSQL statement (atomic by itself, one round trip): the job row locked under the lease,
    /// the records upserted only if it was, their events, the counts, the job's progress, the first errors and the
    /// batch row. No row comes back but the totals.
    private func commitBatchPostgres(
        _ batch: Batch, records: [PreparedRecord], duplicates: Int, integrationID: IntegrationID, entityType: String, at now: Date
    ) async throws -> BatchResult {
        let failures = batch.failures
        let binds: [SQLValue] = [
            .uuid(integrationID.uuid), .text(entityType), .timestamp(now), .uuid(batch.jobID.uuid), .text(batch.owner),
            .textArray(records.map(\.externalID)), .textArray(records.map(\.text)), .textArray(records.map(\.hash)),
            .int(Int64(records.count + duplicates)), .json(batch.checkpoint.jsonText), .optional(batch.highWaterMark) { .text($0) },
            .optional(batch.sourceTotal) { .int($0) }, .int(Int64(failures.count)), .bool(batch.pagesDone),
            .timestamp(now.addingTimeInterval(batch.lease.seconds)), .int(Int64(duplicates)), .uuid(SyncBatchID.generate().uuid),
            .int(Int64(batch.batchNumber)),
        ]
        do {
            var rows: [SQLRow]?
            var insertedOnly = false
            if batch.recordsLikelyNew, failures.isEmpty, !records.isEmpty {
                do {
                    rows = try await database.queryPrepared(PostgresNewBatch.self, binds)
                    insertedOnly = true
                } catch SQLError.uniqueViolation(constraint: Self.recordsKey) {
                    rows = nil  // a record is stored after all: the upsert below
                }
            }
            if rows == nil {
                rows = failures.isEmpty
                    ? try await database.queryPrepared(PostgresCleanBatch.self, binds)
                    : try await database.queryPrepared(
                        PostgresBatch.self,
                        binds + [
                            .textArray(failures.map { $0.externalID ?? "" }), .textArray(failures.map { String($0.reason.prefix(1000)) }),
                            .int(Int64(Self.keptErrors)),
                        ])
            }
            guard let row = rows?.first, try row.bool("ours") else {
                throw HubError.conflict(field: nil, reason: "the sync job is no longer running under this worker's lease")
            }
            guard !row.isNull("records_processed") else {
                throw Self.outOfTurn(batch.batchNumber, lastCommitted: Int(try row.int("last_batch_number")))
            }
            var result = BatchResult()
            result.added = Int(try row.int("added"))
            result.updated = Int(try row.int("updated"))
            result.unchanged = Int(try row.int("total")) - result.added - result.updated + duplicates
            result.failed = failures.count
            result.recordsProcessed = try row.int("records_processed")
            result.insertedOnly = insertedOnly
            return result
        } catch SQLError.uniqueViolation {
            throw HubError.conflict(field: "batch_number", reason: "batch \(batch.batchNumber) of this job is already recorded")
        }
    }

    /// Ends a job (step 3) in one transaction: for a completed full sync, records of the integration and entity type
    /// that the job did not see are marked deleted (`record.deleted` events); the job gets its final status, counts,
    /// reconciliation and failure reason; the integration's last_sync and error_count are updated; and a
    /// `sync.completed`, `sync.failed` or `sync.cancelled` event is written. Nil when the job is no longer running
    /// under `owner`'s lease.
    public func finish(
        _ jobID: SyncJobID, owner: String, status: SyncJobStatus, failureReason: String?, markDeletions: Bool
    ) async throws -> SyncJob? {
        let now = clock.now()
        // The job row is locked first (PostgreSQL), so no cancel or takeover lands between the checks and the writes.
        let lock = database.dialect == .postgres ? " FOR UPDATE" : ""
        do {
            return try await finishLocked(jobID, owner: owner, status: status, failureReason: failureReason, markDeletions: markDeletions, lock: lock, at: now)
        } catch HubError.conflict(field: Self.notOurs, _) {
            return nil
        }
    }

    /// The field of the conflict that rolls `finish` back when the job is no longer this worker's (a domain error, so
    /// that every backend passes it through unchanged).
    private static let notOurs = "sync_job_lease"

    private func finishLocked(
        _ jobID: SyncJobID, owner: String, status: SyncJobStatus, failureReason: String?, markDeletions: Bool, lock: String, at now: Date
    ) async throws -> SyncJob? {
        try await database.transaction { executor in
            guard
                let current = try await executor.queryOne(
                    "SELECT \(Self.claimColumns) FROM sync_jobs WHERE sync_job_id = $1 AND status = 'running' AND lease_owner = $2\(lock)",
                    [.uuid(jobID.uuid), .text(owner)])
            else { throw HubError.conflict(field: Self.notOurs, reason: "the job is not this worker's") }
            let job = try SyncJobStore.decode(current)
            var deleted = 0
            var stored = job.summary.added + job.summary.updated + job.summary.unchanged
            if markDeletions {
                let rows = try await executor.query(
                    """
                    UPDATE sync_records SET deleted_at = $1, updated_at = $1, last_change = 'deleted', last_job_id = $2 \
                    WHERE integration_id = $3 AND entity_type = $4 AND deleted_at IS NULL \
                    AND (seen_job_id IS NULL OR seen_job_id <> $2) AND (failed_job_id IS NULL OR failed_job_id <> $2) \
                    RETURNING external_id
                    """, [.timestamp(now), .uuid(jobID.uuid), .uuid(job.integrationID.uuid), .text(job.entityType)])
                deleted = rows.count
                try await Self.insertRecordEvents(
                    try rows.map { RecordEvent(type: "record.deleted", externalID: try $0.string("external_id")) },
                    integrationID: job.integrationID, entityType: job.entityType, jobID: jobID, at: now, dialect: database.dialect,
                    into: executor)
                // A full sync stores each record it saw once, however often pages overlapped.
                stored = try await executor.queryOne(
                    "SELECT COUNT(*) AS n FROM sync_records WHERE integration_id = $1 AND entity_type = $2 AND seen_job_id = $3",
                    [.uuid(job.integrationID.uuid), .text(job.entityType), .uuid(jobID.uuid)])!.int("n")
            }
            let mismatch = job.summary.sourceTotal.map { $0 != stored + job.summary.failed } ?? false
            _ = try await executor.query(
                """
                UPDATE sync_jobs SET records_deleted = $1, reconciliation_mismatch = $2, failure_reason = $3 WHERE sync_job_id = $4
                """, [.int(Int64(deleted)), .bool(mismatch && status != .failed), .optional(failureReason) { .text($0) }, .uuid(jobID.uuid)])
            guard
                let finished = try await SyncJobStore.finalize(
                    jobID, status: status, errorsCount: Int(job.errorsCount), at: now, leaseOwner: owner, in: executor)
            else { throw HubError.conflict(field: Self.notOurs, reason: "the job is not this worker's") }  // rolls back the deletions
            let eventType = switch status {
            case .failed: "sync.failed"
            case .cancelled: "sync.cancelled"
            default: "sync.completed"
            }
            var payload: [String: JSONValue] = [
                "sync_job_id": .string(jobID.description), "integration_id": .string(job.integrationID.description),
                "entity_type": .string(job.entityType), "sync_type": .string(job.syncType.rawValue), "status": .string(status.rawValue),
                "records_processed": .int(finished.recordsProcessed), "added": .int(finished.summary.added),
                "updated": .int(finished.summary.updated), "unchanged": .int(finished.summary.unchanged), "deleted": .int(Int64(deleted)),
                "failed": .int(finished.summary.failed), "reconciliation_mismatch": .bool(finished.summary.reconciliationMismatch),
            ]
            if let total = finished.summary.sourceTotal { payload["source_total"] = .int(total) }
            if let failureReason { payload["failure_reason"] = .string(failureReason) }
            try await Self.insertEvents([(eventType, .object(payload))], at: now, dialect: database.dialect, into: executor)
            return finished
        }
    }

    /// A thin record event: the payload is assembled when the event is read.
    struct RecordEvent {
        var type: String
        var externalID: String
    }

    /// Inserts events with a payload, in order; returns their sequence numbers. The payload is kept as its canonical
    /// text (PostgreSQL `json` from text, not `jsonb`, which would respace it), so that a webhook message's body takes
    /// it as it is.
    @discardableResult
    static func insertEvents(
        _ events: [(type: String, payload: JSONValue)], at now: Date, dialect: SQLDialect, into executor: any SQLExecutor
    ) async throws -> [Int64] {
        var sequences: [Int64] = []
        for event in events {
            let row = try await executor.queryOne(
                "INSERT INTO events (event_type, payload, created_at) VALUES ($1, \(dialect == .postgres ? "$2::text::json" : "$2"), $3) RETURNING event_seq",
                [.text(event.type), .text(event.payload.jsonText), .timestamp(now)])
            sequences.append(try row!.int("event_seq"))
        }
        return sequences
    }

    /// The most record events one outbox row holds (below the 16,384 numbers a PostgreSQL row takes: migration 10).
    public static let idsPerEventRow = 10_000

    /// Inserts record events in order: each run of one type in rows of at most ``idsPerEventRow`` external ids, the
    /// events of a row numbered from its `event_seq` on (SQLite's sequence is moved past a row's last one; PostgreSQL
    /// leaves room for them).
    static func insertRecordEvents(
        _ events: [RecordEvent], integrationID: IntegrationID, entityType: String, jobID: SyncJobID, at now: Date,
        dialect: SQLDialect, into executor: any SQLExecutor
    ) async throws {
        var start = 0
        while start < events.count {
            let type = events[start].type
            var end = start
            while end < events.count, end - start < idsPerEventRow, events[end].type == type { end += 1 }
            let ids = events[start..<end].map(\.externalID)
            _ = try await executor.query(
                """
                INSERT INTO events (event_type, integration_id, entity_type, external_ids, sync_job_id, created_at) \
                VALUES ($1, $2, $3, \(dialect == .postgres ? "$4::text[]" : "$4"), $5, $6)
                """,
                [.text(type), .uuid(integrationID.uuid), .text(entityType), .textArray(ids), .uuid(jobID.uuid), .timestamp(now)])
            if dialect == .sqlite, ids.count > 1 {
                _ = try await executor.query(
                    "UPDATE sqlite_sequence SET seq = seq + $1 WHERE name = 'events'", [.int(Int64(ids.count - 1))])
            }
            start = end
        }
    }
}

extension Duration {
    /// The duration in seconds.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
