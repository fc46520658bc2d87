import Foundation

/// The kinds of synchronization of DAO-MDE-03-08-02.
public enum SyncType: String, Sendable, Codable, CaseIterable {
    case full
    case incremental
}

/// Status of a sync job. Only `running` jobs accept batches; the others are final.
public enum SyncJobStatus: String, Sendable, Codable, CaseIterable {
    case running
    case completed
    case completedWithErrors = "completed_with_errors"
    case failed
    case cancelled

    /// Whether the status is final.
    public var isFinal: Bool { self != .running }
}

/// The arguments of DAO-MDE-03-08-02 (Data Synchronization).
public struct SyncJobRequest: Sendable, Hashable {
    public var integrationID: IntegrationID
    public var syncType: SyncType
    /// Entity type: 1–64 of lower-case letters, digits and `_`, starting with a letter (`users`, `groups`, …).
    public var entityType: String
    /// Optional filters (a JSON object).
    public var filters: JSONValue?
    /// Records per batch, 1…10000; `nil` means the design's default of 1000.
    public var batchSize: Int?

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
        try Validate.objectIfPresent(filters, field: "filters")
        if let batchSize { try Validate.range(batchSize, 1...10_000, field: "batch_size") }
    }
}

/// A sync job: the design's returns (sync_job_id, status, records_processed, errors_count, completion_time)
/// and its arguments.
public struct SyncJob: Sendable, Hashable {
    public var id: SyncJobID
    public var integrationID: IntegrationID
    public var syncType: SyncType
    public var entityType: String
    public var filters: JSONValue?
    public var batchSize: Int
    public var status: SyncJobStatus
    public var recordsProcessed: Int64
    public var errorsCount: Int64
    public var startedAt: Date
    public var lastBatchAt: Date?
    /// The design's completion_time.
    public var completedAt: Date?
    public var createdAt: Date

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

    static func validateEntityType(_ value: String) throws {
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
    case completed
    case failed
}

/// A processed batch of a sync job.
public struct SyncBatch: Sendable, Hashable {
    public var id: SyncBatchID
    public var syncJobID: SyncJobID
    public var batchNumber: Int
    public var recordsCount: Int
    public var status: SyncBatchStatus
    public var processedAt: Date

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
    public var batchID: SyncBatchID
    public var recordsProcessed: Int64

    public init(batchID: SyncBatchID, recordsProcessed: Int64) {
        self.batchID = batchID
        self.recordsProcessed = recordsProcessed
    }
}

/// Filters for listing sync jobs.
public struct SyncJobFilter: Sendable, Hashable {
    public var integrationID: IntegrationID?
    public var status: SyncJobStatus?
    public var entityType: String?

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
    /// - Throws: `validation`; `invalidReference(integration_id)` for an unknown integration; `conflict` when a job
    ///   for the same integration and entity type is already running.
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
