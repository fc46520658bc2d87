import Foundation
import HubCore
import HubStore
import Logging
import ServiceLifecycle
import Synchronization

/// Progress of a running job, reported after each committed batch.
public struct SyncProgress: Sendable {
    public var job: SyncJobID
    public var batches: Int
    public var recordsProcessed: Int64
    public var errors: Int64
    public var elapsed: Duration
}

/// Runs one claimed sync job to its end: reads pages through the integration's connector, maps every record, and
/// commits each page as one batch (records, events, errors, `sync_batches` row, progress and checkpoint together),
/// then finishes the job (deletions of a full sync, final status, reconciliation, `sync.*` event). A job resumed
/// after a crash continues from its last committed checkpoint. The lease is renewed while the job runs; when it is
/// lost, or the job is cancelled, the runner stops without writing.
public struct SyncRunner: Sendable {
    let store: SyncEngineStore
    let integrations: any ExternalSystemIntegrationDAO
    let executor: OperationExecutor
    /// This worker's lease owner name.
    public let owner: String
    /// How long a lease lasts without renewal.
    public let lease: Duration
    let logger: Logger

    /// A runner that records through `executor` and `store`.
    public init(
        store: SyncEngineStore, integrations: any ExternalSystemIntegrationDAO, executor: OperationExecutor,
        owner: String = "worker-\(UUID().uuidString.prefix(8).lowercased())", lease: Duration = .seconds(30),
        logger: Logger = Logger(label: "hub.sync")
    ) {
        self.store = store
        self.integrations = integrations
        self.executor = executor
        self.owner = owner
        self.lease = lease
        self.logger = logger
    }

    /// Runs `claim`'s job; returns the finished job, or nil when the job was given up (cancelled elsewhere, lease
    /// lost, or this task cancelled: then the lease is released for another worker to resume).
    public func run(_ claim: SyncEngineStore.Claim, progress: @escaping @Sendable (SyncProgress) -> Void = { _ in }) async -> SyncJob? {
        let job = claim.job
        let started = ContinuousClock.now
        let leaseLost = SharedCounter()
        return await withTaskGroup(of: SyncJob?.self) { group in
            // Heartbeat: renew the lease at a third of its length while the job runs.
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: lease / 3)
                    if Task.isCancelled { break }
                    if (try? await store.renew(job.id, owner: owner, lease: lease)) == false {
                        leaseLost.value.store(1, ordering: .relaxed)
                        break
                    }
                }
                return nil
            }
            let result = await runPages(claim, started: started, leaseLost: leaseLost, progress: progress)
            group.cancelAll()
            return result
        }
    }

    private func runPages(
        _ claim: SyncEngineStore.Claim, started: ContinuousClock.Instant, leaseLost: SharedCounter,
        progress: @Sendable (SyncProgress) -> Void
    ) async -> SyncJob? {
        let job = claim.job
        var batchNumber = claim.nextBatchNumber
        var failedRecords = job.summary.failed
        do {
            let integration = try await integrations.get(job.integrationID)
            guard let configuration = try SyncConfiguration.parse(integration.mappingConfig) else {
                throw SyncFailure("the integration's mapping_config names no connector")
            }
            guard let entity = configuration.entities[job.entityType] else {
                throw SyncFailure("mapping_config.entities has no '\(job.entityType)'")
            }
            if !claim.pagesDone {
                var state: PageState
                if let checkpoint = claim.checkpoint {
                    state = try JSONDecoder().decode(PageState.self, from: Data(checkpoint.jsonText.utf8))
                } else {
                    state = PageState()
                    if job.syncType == .incremental {
                        state.since = try await store.lastHighWaterMark(job.integrationID, entityType: job.entityType)
                    }
                }
                var mark = claim.highWaterMark ?? state.since
                // The mark moves only with pages read in modification order (a record changed behind a faster-moving mark
                // would be skipped by the next incremental run); otherwise the job keeps the mark it started from.
                var ordered = true
                // The integration and its credentials are read once for the job, not per page.
                let client = SourceClient(
                    executor: executor, integrationID: job.integrationID, retry: configuration.retry,
                    resolved: try await executor.resolve(job.integrationID))
                let connector: any SourceConnector
                let reader: RecordReader?
                switch configuration.connector {
                case .scim:
                    let limits = await SCIMConnector.serviceProviderLimits(client)
                    if job.syncType == .incremental, !limits.filters {
                        throw SyncFailure("the SCIM server does not support filtering, which incremental sync needs")
                    }
                    ordered = limits.sorts
                    reader = RecordReader(entity.mapping, extra: [SCIMConnector.idPath])
                    connector = SCIMConnector(
                        client: client, path: entity.path, pageSize: min(job.batchSize, limits.maxResults ?? job.batchSize),
                        incremental: job.syncType == .incremental, maxCount: limits.maxResults, sorted: limits.sorts,
                        record: entity.mapping.projection, reader: reader)
                case .restJSON(let settings):
                    // REST sources are taken to list changes since the mark in modification order only when asked
                    // incrementally; a full scan's order is unknown.
                    ordered = job.syncType == .incremental
                    reader = RecordReader(entity.mapping)
                    connector = RESTConnector(
                        client: client, path: entity.path, settings: settings, pageSize: job.batchSize,
                        incremental: job.syncType == .incremental, baseURL: integration.endpointURL, record: entity.mapping.projection,
                        reader: reader)
                }
                // A pipeline: while page N commits, page N+1 is mapped and page N+2 is read. The hub's CPU work on them is
                // done one step at a time: page N+2's request goes out as soon as page N+1 is parsed (a remote source's
                // latency is hidden behind the mapping), but its answer is parsed only once page N+1 is mapped, so the
                // database's backend keeps a core for the commits, the serial stage (parsing and mapping at once took
                // it from them). Only committed pages move the checkpoint, so pages read ahead and lost are read again
                // on resume.
                let mapping = entity.mapping
                typealias Fetch = Task<SourcePage, any Error>
                // The newest read started, cancelled with the job's pages (one read ahead may not have reached the loop).
                let newestFetch = LatestTask<SourcePage>()
                /// Reads the page at `state`, parsing it once `turn` (if any) finishes.
                @Sendable func fetchAhead(_ state: PageState, after turn: AsyncStream<Void>?) -> Fetch {
                    let fetch = Task { try await connector.fetch(state, beforeParsing: { if let turn { for await _ in turn {} } }) }
                    newestFetch.set(fetch)
                    return fetch
                }
                @Sendable func prepare(_ fetching: Fetch) async throws -> (PreparedPage, Fetch?) {
                    let page = try await withTaskCancellationHandler { try await fetching.value } onCancel: { fetching.cancel() }
                    let (mapped, mappingDone) = AsyncStream<Void>.makeStream()
                    defer { mappingDone.finish() }
                    let next = page.isLast ? nil : fetchAhead(page.next, after: mapped)
                    var prepared = PreparedPage(page: page)
                    prepared.records.reserveCapacity(page.records.count)
                    for record in page.records {
                        do {
                            let result = try mapping.apply(record, reader: reader)
                            prepared.records.append(SyncEngineStore.PreparedRecord(result))
                            if let updated = result.updated, Self.isLater(updated, than: prepared.latest) { prepared.latest = updated }
                        } catch {
                            prepared.failures.append(error)
                        }
                    }
                    if Task.isCancelled { next?.cancel() }
                    return (prepared, next)
                }
                let firstFetch = fetchAhead(state, after: nil)
                var pending = Task { try await prepare(firstFetch) }
                defer {
                    pending.cancel()
                    newestFetch.cancel()
                }
                // A batch is sent as soon as its page is mapped; on PostgreSQL the one before it may still be committing
                // (it waits on the job's row, so the database goes from one commit to the next without waiting for the
                // hub: a third of each batch's time before). Results are taken in order; a batch that overtook the one
                // before it wrote nothing and is sent again.
                var unsettled: [(task: Task<SyncEngineStore.BatchResult, any Error>, batch: SyncEngineStore.Batch)] = []
                func awaitUnsettled() async {
                    for batch in unsettled { _ = try? await batch.task.value }
                }
                // Whether the last batch settled added every record it had (the next ones probably will too: an initial
                // load, or the new end of a source).
                var addingOnly = false
                func settle(_ task: Task<SyncEngineStore.BatchResult, any Error>, _ batch: SyncEngineStore.Batch) async throws {
                    let result = try await outcome(of: task, batch, integrationID: job.integrationID, entityType: job.entityType)
                    addingOnly = result.added > 0 && result.updated == 0 && result.unchanged == 0
                    failedRecords += Int64(batch.failures.count)
                    progress(SyncProgress(
                        job: job.id, batches: batch.batchNumber, recordsProcessed: result.recordsProcessed, errors: failedRecords,
                        elapsed: ContinuousClock.now - started))
                }
                do {
                    while true {
                        try Task.checkCancellation()
                        guard leaseLost.value.load(ordering: .relaxed) == 0 else {
                            await awaitUnsettled()
                            return nil
                        }
                        let current = pending
                        let (prepared, nextFetch) = try await withTaskCancellationHandler { try await current.value } onCancel: { current.cancel() }
                        let page = prepared.page
                        if let nextFetch {
                            pending = Task {
                                try await withTaskCancellationHandler { try await prepare(nextFetch) } onCancel: { nextFetch.cancel() }
                            }
                        }
                        if ordered, let latest = prepared.latest, Self.isLater(latest, than: mark) { mark = latest }
                        let checkpoint = try JSONValue.parse(
                            String(decoding: try JSONEncoder().encode(page.next), as: UTF8.self), field: "checkpoint")
                        let batch = SyncEngineStore.Batch(
                            jobID: job.id, owner: owner, lease: lease, batchNumber: batchNumber, records: prepared.records,
                            failures: prepared.failures, checkpoint: checkpoint, highWaterMark: mark, sourceTotal: page.total,
                            pagesDone: page.isLast, recordsLikelyNew: addingOnly)
                        unsettled.append((send(batch, integrationID: job.integrationID, entityType: job.entityType), batch))
                        while unsettled.count > (page.isLast ? 0 : store.batchesInFlight - 1) {
                            let oldest = unsettled.removeFirst()
                            try await settle(oldest.task, oldest.batch)
                        }
                        batchNumber += 1
                        state = page.next
                        if page.isLast { break }
                    }
                } catch {
                    // Batches still committing end before the job does (each commits only after the ones before it).
                    await awaitUnsettled()
                    throw error
                }
            }
            let status: SyncJobStatus = failedRecords > 0 ? .completedWithErrors : .completed
            return try await store.finish(
                job.id, owner: owner, status: status, failureReason: nil, markDeletions: job.syncType == .full)
        } catch is CancellationError {
            await release(job.id)
            return nil
        } catch HubError.conflict {
            // Cancelled elsewhere, or the lease went to another worker: nothing more is ours to write.
            return nil
        } catch let error where Self.isTransient(error) {
            // The database is unreachable or busy: the job is not the source's fault; another try resumes it.
            logger.warning("sync job paused: the database is unavailable", metadata: ["sync_job_id": "\(job.id)"])
            await release(job.id)
            return nil
        } catch {
            if Task.isCancelled {
                await release(job.id)
                return nil
            }
            let reason: String = switch error {
            case let failure as SyncFailure: failure.description
            case let hub as HubError: hub.description
            default: "the job failed: \(type(of: error))"
            }
            logger.warning("sync job failed", metadata: ["sync_job_id": "\(job.id)", "reason": "\(reason)"])
            return try? await store.finish(job.id, owner: owner, status: .failed, failureReason: reason, markDeletions: false)
        }
    }

    /// Starts committing `batch`.
    private func send(
        _ batch: SyncEngineStore.Batch, integrationID: IntegrationID, entityType: String
    ) -> Task<SyncEngineStore.BatchResult, any Error> {
        let store = self.store
        return Task { try await store.commitBatch(batch, integrationID: integrationID, entityType: entityType) }
    }

    /// The result of committing `batch` (sent as `task`), sent again if it overtook the batch before it, which the
    /// caller has settled: that one is committed now.
    private func outcome(
        of task: Task<SyncEngineStore.BatchResult, any Error>, _ batch: SyncEngineStore.Batch, integrationID: IntegrationID,
        entityType: String
    ) async throws -> SyncEngineStore.BatchResult {
        do {
            return try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
        } catch is SyncEngineStore.BatchOutOfTurn {
            return try await store.commitBatch(batch, integrationID: integrationID, entityType: entityType)
        }
    }

    static func isTransient(_ error: any Error) -> Bool {
        switch error {
        case SQLError.unavailable, HubError.unavailable: true
        default: false
        }
    }

    /// Releases the lease from a task of its own: this one is cancelled, and its queries would be too.
    private func release(_ jobID: SyncJobID) async {
        let store = self.store
        let owner = self.owner
        await Task { try? await store.release(jobID, owner: owner) }.value
    }

    /// Whether the source time `candidate` is after `mark` (compared as dates when both parse, else as text). Two UTC
    /// times written alike (`…Z`, same length) compare as text without parsing.
    static func isLater(_ candidate: String, than mark: String?) -> Bool {
        guard let mark else { return true }
        if candidate == mark { return false }
        if candidate.utf8.count == mark.utf8.count, candidate.utf8.last == UInt8(ascii: "Z"), mark.utf8.last == UInt8(ascii: "Z"),
            candidate.utf8.count >= 20, sameShape(candidate, mark)
        {
            return candidate > mark
        }
        if let a = RecordMapping.parseDateTime(candidate), let b = RecordMapping.parseDateTime(mark) { return a > b }
        return candidate > mark
    }

    /// Whether two strings have digits at the same places and the same other characters (`2026-11-01T10:00:00Z`).
    private static func sameShape(_ a: String, _ b: String) -> Bool {
        for (x, y) in zip(a.utf8, b.utf8) {
            let xDigit = (0x30...0x39).contains(x)
            if xDigit != (0x30...0x39).contains(y) || (!xDigit && x != y) { return false }
        }
        return true
    }
}

/// The sync worker (a `Service` inside `hub serve`, or `hub worker` alone): starts due scheduled jobs and runs
/// claimed jobs, at most `concurrency` at once. Many workers may share one database: claims are leased, schedules are
/// claimed by moving their next run in the same statement, and the one-running-job index refuses duplicates. At
/// graceful shutdown running jobs stop after their current batch and release their leases.
public struct SyncWorker: Service {
    let runner: SyncRunner
    let store: SyncEngineStore
    let jobs: any DataSynchronizationDAO
    let concurrency: Int
    let pollInterval: Duration
    let logger: Logger

    /// A worker over `runner`, claiming jobs every `pollInterval` (default 1 s).
    public init(
        runner: SyncRunner, store: SyncEngineStore, jobs: any DataSynchronizationDAO, concurrency: Int = 2,
        pollInterval: Duration = .seconds(1), logger: Logger = Logger(label: "hub.sync")
    ) {
        self.runner = runner
        self.store = store
        self.jobs = jobs
        self.concurrency = max(1, concurrency)
        self.pollInterval = pollInterval
        self.logger = logger
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            await runLoop()
        }
    }

    /// Runs until cancelled.
    public func runLoop() async {
        let running = SharedCounter()
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                await startDueSchedules()
                while running.value.load(ordering: .relaxed) < concurrency, !Task.isCancelled {
                    let claim: SyncEngineStore.Claim?
                    do {
                        claim = try await store.claim(owner: runner.owner, lease: runner.lease)
                    } catch {
                        logger.warning("claiming sync jobs failed", metadata: ["error": "\(error)"])
                        break
                    }
                    guard let claim else { break }
                    running.value.add(1, ordering: .relaxed)
                    group.addTask {
                        _ = await runner.run(claim)
                        running.value.subtract(1, ordering: .relaxed)
                    }
                }
                try? await Task.sleep(for: pollInterval)
            }
            group.cancelAll()
        }
    }

    private func startDueSchedules() async {
        do {
            for schedule in try await store.claimDueSchedules() {
                do {
                    let job = try await jobs.start(
                        SyncJobRequest(integrationID: schedule.integrationID, syncType: schedule.syncType, entityType: schedule.entityType))
                    try await store.scheduleStarted(schedule.id, job: job.id)
                } catch HubError.conflict {
                    // A job of this entity type is still running (or the integration is disabled): skip this run.
                } catch {
                    logger.warning("a scheduled sync could not start", metadata: ["schedule_id": "\(schedule.id)", "error": "\(error)"])
                }
            }
        } catch {
            logger.warning("starting scheduled syncs failed", metadata: ["error": "\(error)"])
        }
    }
}

/// A page read and mapped, ready to commit.
struct PreparedPage: Sendable {
    var page: SourcePage
    var records: [SyncEngineStore.PreparedRecord] = []
    var failures: [MappingError] = []
    /// The latest source modification time among the page's mapped records.
    var latest: String?
}

/// An atomic integer shared by tasks.
final class SharedCounter: Sendable {
    let value = Atomic<Int>(0)
}

/// The newest of a series of tasks, to cancel it from elsewhere.
final class LatestTask<Success: Sendable>: Sendable {
    private let task = Mutex<Task<Success, any Error>?>(nil)

    func set(_ newest: Task<Success, any Error>) { task.withLock { $0 = newest } }
    func cancel() { task.withLock { $0?.cancel() } }
}
