import Foundation

/// The kinds of synchronization of DAO-MDE-03-08-02.
public enum SyncType: String, Sendable, Codable, CaseIterable {
    /// A full synchronization of the entity type.
    case full
    /// An incremental synchronization (changes only).
    case incremental
}

/// Status of a sync job. Only `running` jobs accept batches; the others are final.
public enum SyncJobStatus: String, Sendable, Codable, CaseIterable {
    /// Started and accepting batches; at most one per integration and entity type.
    case running
    /// Final: finished successfully.
    case completed
    /// Final: finished, with errors (stored as `completed_with_errors`).
    case completedWithErrors = "completed_with_errors"
    /// Final: the job failed.
    case failed
    /// Final: the job was cancelled.
    case cancelled

    /// Whether the status is final.
    public var isFinal: Bool { self != .running }
}

/// The arguments of DAO-MDE-03-08-02 (Data Synchronization).
public struct SyncJobRequest: Sendable, Hashable {
    /// The integration to synchronize; it must exist (enforced by the insert's foreign key).
    public var integrationID: IntegrationID
    /// Full or incremental.
    public var syncType: SyncType
    /// Entity type: 1–64 of lower-case letters, digits and `_`, starting with a letter (`users`, `groups`, …).
    public var entityType: String
    /// Optional filters (a JSON object).
    public var filters: JSONValue?
    /// Records per batch, 1…10000; `nil` means the design's default of 1000.
    public var batchSize: Int?

    /// Creates a request with every member given; nothing is validated until ``validate()``.
    public init(
        integrationID: IntegrationID, syncType: SyncType, entityType: String, filters: JSONValue? = nil,
        batchSize: Int? = nil
    ) {
        self.integrationID = integrationID
        self.syncType = syncType
        self.entityType = entityType
        self.filters = filters
        self.batchSize = batchSize
    }

    /// Step 1's data validation (the integration's existence is checked by the insert itself).
    public func validate() throws {
        try SyncJob.validateEntityType(entityType)
        try Validate.noNUL(filters, field: "filters")
        try Validate.objectIfPresent(filters, field: "filters")
        if let batchSize { try Validate.range(batchSize, 1...10_000, field: "batch_size") }
    }
}

/// A sync job: the design's returns (sync_job_id, status, records_processed, errors_count, completion_time)
/// and its arguments.
public struct SyncJob: Sendable, Hashable {
    /// The job's id (sync_job_id).
    public var id: SyncJobID
    /// The integration the job synchronizes.
    public var integrationID: IntegrationID
    /// Full or incremental.
    public var syncType: SyncType
    /// The entity type synchronized (`users`, `groups`, …).
    public var entityType: String
    /// Filters as given (a JSON object), or `nil`.
    public var filters: JSONValue?
    /// Records per batch, 1…10000 (1000 when the request gave none).
    public var batchSize: Int
    /// `running` from step 1 until step 3 sets a final status.
    public var status: SyncJobStatus
    /// Sum of the records counts of every recorded batch, completed or failed.
    public var recordsProcessed: Int64
    /// Errors reported by step 3; 0 while running.
    public var errorsCount: Int64
    /// When step 1 started the job.
    public var startedAt: Date
    /// When the last batch was recorded; `nil` before the first.
    public var lastBatchAt: Date?
    /// The design's completion_time.
    public var completedAt: Date?
    /// When the row was inserted (the same instant as `startedAt`); lists are ordered by it.
    public var createdAt: Date
    /// What the sync engine recorded about the run (counts by outcome, reconciliation, failure reason).
    public var summary = SyncSummary()

    /// Creates a value with every member given; nothing is validated.
    public init(
        id: SyncJobID, integrationID: IntegrationID, syncType: SyncType, entityType: String, filters: JSONValue?,
        batchSize: Int, status: SyncJobStatus, recordsProcessed: Int64, errorsCount: Int64, startedAt: Date,
        lastBatchAt: Date?, completedAt: Date?, createdAt: Date
    ) {
        self.id = id
        self.integrationID = integrationID
        self.syncType = syncType
        self.entityType = entityType
        self.filters = filters
        self.batchSize = batchSize
        self.status = status
        self.recordsProcessed = recordsProcessed
        self.errorsCount = errorsCount
        self.startedAt = startedAt
        self.lastBatchAt = lastBatchAt
        self.completedAt = completedAt
        self.createdAt = createdAt
    }

    /// Checks an entity type's name. - Throws: `validation(entity_type)`.
    public static func validateEntityType(_ value: String) throws {
        guard (1...64).contains(value.count), value.first.map({ $0 >= "a" && $0 <= "z" }) == true,
            value.allSatisfy({ ($0 >= "a" && $0 <= "z") || ($0 >= "0" && $0 <= "9") || $0 == "_" })
        else {
            throw HubError.validation(
                field: "entity_type",
                reason: "must be 1 to 64 lower-case letters, digits or '_', starting with a letter")
        }
    }
}

/// Status of one batch.
public enum SyncBatchStatus: String, Sendable, Codable, CaseIterable {
    /// The batch was processed.
    case completed
    /// The batch failed; its records still count towards the job's records_processed.
    case failed
}

/// A processed batch of a sync job.
public struct SyncBatch: Sendable, Hashable {
    /// The batch's id (batch_id).
    public var id: SyncBatchID
    /// The job the batch belongs to.
    public var syncJobID: SyncJobID
    /// The batch's number, ≥ 1 and unique within its job.
    public var batchNumber: Int
    /// Records in the batch, ≥ 0.
    public var recordsCount: Int
    /// Whether the batch completed or failed.
    public var status: SyncBatchStatus
    /// When step 2 recorded the batch.
    public var processedAt: Date

    /// Creates a value with every member given.
    public init(
        id: SyncBatchID, syncJobID: SyncJobID, batchNumber: Int, recordsCount: Int, status: SyncBatchStatus,
        processedAt: Date
    ) {
        self.id = id
        self.syncJobID = syncJobID
        self.batchNumber = batchNumber
        self.recordsCount = recordsCount
        self.status = status
        self.processedAt = processedAt
    }
}

/// What step 2 returns: the new batch's id and the job's running total.
public struct BatchProgress: Sendable, Hashable {
    /// The id of the batch just recorded.
    public var batchID: SyncBatchID
    /// The job's records_processed including this batch.
    public var recordsProcessed: Int64

    /// Creates a value with every member given.
    public init(batchID: SyncBatchID, recordsProcessed: Int64) {
        self.batchID = batchID
        self.recordsProcessed = recordsProcessed
    }
}

/// Filters for listing sync jobs.
public struct SyncJobFilter: Sendable, Hashable {
    /// Only jobs of this integration; `nil` for all.
    public var integrationID: IntegrationID?
    /// Only jobs with this status; `nil` for all.
    public var status: SyncJobStatus?
    /// Only jobs of exactly this entity type; `nil` for all.
    public var entityType: String?

    /// Creates a filter with every member given; `nil` members do not filter.
    public init(integrationID: IntegrationID? = nil, status: SyncJobStatus? = nil, entityType: String? = nil) {
        self.integrationID = integrationID
        self.status = status
        self.entityType = entityType
    }
}

/// DAO-MDE-03-08-02, Data Synchronization: sync jobs processed in tracked batches.
///
/// At most one job per (integration, entity type) is `running` at a time, enforced by the database, so two
/// concurrent starts cannot both win. Safe to call concurrently.
public protocol DataSynchronizationDAO: Sendable {
    /// Step 1: validates the request and inserts a `running` job (batch_size defaults to 1000).
    /// - Throws: `validation`; `invalidReference(integration_id)` for an unknown integration; `conflict` when the
    ///   integration is disabled or a job for the same integration and entity type is already running.
    func start(_ request: SyncJobRequest) async throws -> SyncJob

    /// Step 2: records batch `batchNumber` (≥ 1) of `recordsCount` (≥ 0) records and adds them to the job's
    /// records_processed, atomically (one statement on PostgreSQL, one transaction on SQLite).
    /// - Throws: `notFound`; `conflict` when the job is not running or the batch number was already recorded.
    func recordBatch(_ jobID: SyncJobID, batchNumber: Int, recordsCount: Int, status: SyncBatchStatus) async throws
        -> BatchProgress

    /// Step 3: finalizes a running job with a final `status` and its total `errorsCount`, and in the same
    /// transaction sets the integration's last_sync and adds the errors to its error_count.
    /// - Throws: `validation` for a non-final status or a negative count; `notFound`; `conflict` when the job is
    ///   already final.
    func finalize(_ jobID: SyncJobID, status: SyncJobStatus, errorsCount: Int) async throws -> SyncJob

    /// The job with this id. - Throws: `notFound`.
    func get(_ jobID: SyncJobID) async throws -> SyncJob

    /// The job's batches in batch-number order.
    func batches(of jobID: SyncJobID) async throws -> [SyncBatch]

    /// Jobs matching `filter`, newest first, one page at a time.
    func list(_ filter: SyncJobFilter, _ page: PageRequest) async throws -> Page<SyncJob>
}

/// What a sync run recorded: records by outcome, the source's reported total, and whether they reconcile.
public struct SyncSummary: Sendable, Hashable, Codable {
    /// The total the source reported (SCIM totalResults, a REST total), when it gives one.
    public var sourceTotal: Int64?
    /// Records new to the store (or back after a deletion).
    public var added: Int64 = 0
    /// Records whose content changed.
    public var updated: Int64 = 0
    /// Records read again with the same content.
    public var unchanged: Int64 = 0
    /// Records a full sync did not see any more, marked deleted.
    public var deleted: Int64 = 0
    /// Records that could not be mapped.
    public var failed: Int64 = 0
    /// Whether the source's total differs from what was stored plus what failed.
    public var reconciliationMismatch = false
    /// Why the job failed, when it did.
    public var failureReason: String?

    /// An empty summary.
    public init() {}
}

/// The last change of a stored record.
public enum RecordChange: String, Sendable, Codable, CaseIterable {
    /// New to the store, or back after a deletion.
    case created
    /// Content changed.
    case updated
    /// Not seen by a full sync any more.
    case deleted
}

/// One synced record: the mapped data of an (integration, entity type, external id).
public struct SyncRecord: Sendable, Hashable {
    public var integrationID: IntegrationID
    public var entityType: String
    public var externalID: String
    public var data: JSONValue
    /// SHA-256 (hex) of the data's canonical JSON.
    public var contentHash: String
    public var lastChange: RecordChange
    public var createdAt: Date
    public var updatedAt: Date
    public var deletedAt: Date?
    /// The job that last changed the record.
    public var lastJobID: SyncJobID?

    /// Creates a value with every member given.
    public init(integrationID: IntegrationID, entityType: String, externalID: String, data: JSONValue, contentHash: String, lastChange: RecordChange, createdAt: Date, updatedAt: Date, deletedAt: Date?, lastJobID: SyncJobID?) {
        self.integrationID = integrationID
        self.entityType = entityType
        self.externalID = externalID
        self.data = data
        self.contentHash = contentHash
        self.lastChange = lastChange
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.deletedAt = deletedAt
        self.lastJobID = lastJobID
    }
}

/// Filters for reading synced records.
public struct SyncRecordFilter: Sendable, Hashable {
    /// Only records changed after this time.
    public var modifiedAfter: Date?
    /// Only records whose last change is this one.
    public var change: RecordChange?

    /// A filter; `nil` members do not filter.
    public init(modifiedAfter: Date? = nil, change: RecordChange? = nil) {
        self.modifiedAfter = modifiedAfter
        self.change = change
    }
}

/// One of the first errors of a sync job.
public struct SyncErrorEntry: Sendable, Hashable {
    public var jobID: SyncJobID
    public var number: Int
    public var batchNumber: Int
    public var externalID: String?
    public var reason: String
    public var createdAt: Date

    /// Creates a value with every member given.
    public init(jobID: SyncJobID, number: Int, batchNumber: Int, externalID: String?, reason: String, createdAt: Date) {
        self.jobID = jobID
        self.number = number
        self.batchNumber = batchNumber
        self.externalID = externalID
        self.reason = reason
        self.createdAt = createdAt
    }
}

/// A schedule: sync an entity type of an integration every `intervalMinutes`.
public struct SyncSchedule: Sendable, Hashable {
    public var id: UUID
    public var integrationID: IntegrationID
    public var entityType: String
    public var syncType: SyncType
    public var intervalMinutes: Int
    public var nextRunAt: Date
    public var lastJobID: SyncJobID?
    public var createdAt: Date

    /// Creates a value with every member given.
    public init(id: UUID, integrationID: IntegrationID, entityType: String, syncType: SyncType, intervalMinutes: Int, nextRunAt: Date, lastJobID: SyncJobID?, createdAt: Date) {
        self.id = id
        self.integrationID = integrationID
        self.entityType = entityType
        self.syncType = syncType
        self.intervalMinutes = intervalMinutes
        self.nextRunAt = nextRunAt
        self.lastJobID = lastJobID
        self.createdAt = createdAt
    }
}

/// An event of the outbox, stored in the transaction of the change it describes.
public struct HubEvent: Sendable, Hashable {
    /// The outbox order.
    public var sequence: Int64
    /// `evt_<sequence>`: stable for the event's life.
    public var id: String
    /// A dotted name: `sync.completed`, `record.updated`, …
    public var type: String
    public var payload: JSONValue
    public var createdAt: Date

    /// Creates a value with every member given.
    public init(sequence: Int64, id: String, type: String, payload: JSONValue, createdAt: Date) {
        self.sequence = sequence
        self.id = id
        self.type = type
        self.payload = payload
        self.createdAt = createdAt
    }
}
