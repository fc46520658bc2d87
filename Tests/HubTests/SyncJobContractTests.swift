import Foundation
import HubCore
import HubStore
import Testing

/// DAO-MDE-03-08-02 contract, on both backends.
@Suite("Data Synchronization DAO", .timeLimit(.minutes(10)))
struct SyncJobContractTests {
    static func integration(_ stores: HubStores) async throws -> Integration {
        try await stores.integrations.register(IntegrationContractTests.registration())
    }

    @Test("step 1 starts a running job with batch_size 1000 by default", arguments: Backend.allCases)
    func start(backend: Backend) async throws {
        let clock = ManualClock()
        let stores = try await TestEnvironment.stores(backend, clock: clock.wallClock)
        let integration = try await Self.integration(stores)
        let job = try await stores.syncJobs.start(
            SyncJobRequest(integrationID: integration.id, syncType: .incremental, entityType: "users",
                           filters: ["department": "sales"]))
        #expect(job.status == .running)
        #expect(job.batchSize == 1000)
        #expect(job.recordsProcessed == 0)
        #expect(job.errorsCount == 0)
        #expect(job.completedAt == nil)
        #expect(job.startedAt == clock.wallClock.now())
        #expect(job.filters == ["department": "sales"])
        #expect(try await stores.syncJobs.get(job.id) == job)
        let sized = try await stores.syncJobs.start(
            SyncJobRequest(integrationID: integration.id, syncType: .full, entityType: "groups", batchSize: 250))
        #expect(sized.batchSize == 250)
    }

    @Test("step 1 validation names the field and writes nothing", arguments: Backend.allCases)
    func validation(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let integration = try await Self.integration(stores)
        func attempt(_ field: String, _ change: (inout SyncJobRequest) -> Void) async {
            var request = SyncJobRequest(integrationID: integration.id, syncType: .full, entityType: "users")
            change(&request)
            await expectValidation(field) { _ = try await stores.syncJobs.start(request) }
        }
        await attempt("entity_type") { $0.entityType = "" }
        await attempt("entity_type") { $0.entityType = "Users" }
        await attempt("entity_type") { $0.entityType = "1users" }
        await attempt("entity_type") { $0.entityType = "users-list" }
        await attempt("batch_size") { $0.batchSize = 0 }
        await attempt("batch_size") { $0.batchSize = 10_001 }
        await attempt("filters") { $0.filters = "active" }
        _ = try await stores.syncJobs.start(
            SyncJobRequest(integrationID: integration.id, syncType: .full, entityType: "users", batchSize: 10_000))
        #expect(try await count(stores.database, "sync_jobs", where: "integration_id = $1", .uuid(integration.id.uuid)) == 1)
        await expectHubError({ $0.isInvalidReference }) {
            _ = try await stores.syncJobs.start(SyncJobRequest(integrationID: .generate(), syncType: .full, entityType: "users"))
        }
        // A disabled integration does not sync, and a connectivity test does not re-enable it.
        _ = try await stores.integrations.updateConfig(integration.id, IntegrationConfigUpdate(status: .disabled))
        #expect(try await stores.integrations.recordConnectivityTest(integration.id, reachable: true).status == .disabled)
        await expectHubError({ $0 == .conflict(field: "integration_id", reason: "the integration is disabled; enable it to sync") }) {
            _ = try await stores.syncJobs.start(SyncJobRequest(integrationID: integration.id, syncType: .full, entityType: "groups"))
        }
    }

    @Test("only one job per integration and entity type runs; concurrent starts have one winner", arguments: Backend.allCases)
    func oneRunning(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let integration = try await Self.integration(stores)
        let request = SyncJobRequest(integrationID: integration.id, syncType: .full, entityType: "employees")
        let outcomes = await withTaskGroup(of: Result<SyncJob, any Error>.self) { group in
            for _ in 0..<8 {
                group.addTask { do { return .success(try await stores.syncJobs.start(request)) } catch { return .failure(error) } }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let winners = outcomes.compactMap { try? $0.get() }
        #expect(winners.count == 1)
        for case .failure(let error) in outcomes {
            #expect((error as? HubError)?.isConflict == true, "unexpected \(error)")
        }
        // Another entity type may run beside it, and a new job may start once the first is final.
        _ = try await stores.syncJobs.start(SyncJobRequest(integrationID: integration.id, syncType: .full, entityType: "groups"))
        _ = try await stores.syncJobs.finalize(winners[0].id, status: .failed, errorsCount: 1)
        #expect(try await stores.syncJobs.start(request).status == .running)
    }

    @Test("step 2 records batches and advances records_processed atomically", arguments: Backend.allCases)
    func batches(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let integration = try await Self.integration(stores)
        let job = try await stores.syncJobs.start(SyncJobRequest(integrationID: integration.id, syncType: .full, entityType: "users"))
        let first = try await stores.syncJobs.recordBatch(job.id, batchNumber: 1, recordsCount: 1000, status: .completed)
        #expect(first.recordsProcessed == 1000)
        let second = try await stores.syncJobs.recordBatch(job.id, batchNumber: 2, recordsCount: 250, status: .completed)
        #expect(second.recordsProcessed == 1250)
        #expect(second.batchID != first.batchID)
        await expectHubError({ $0 == .conflict(field: "batch_number", reason: "batch 2 of this job is already recorded") }) {
            _ = try await stores.syncJobs.recordBatch(job.id, batchNumber: 2, recordsCount: 7, status: .completed)
        }
        #expect(try await stores.syncJobs.get(job.id).recordsProcessed == 1250)
        let batches = try await stores.syncJobs.batches(of: job.id)
        #expect(batches.map(\.batchNumber) == [1, 2])
        #expect(batches.map(\.recordsCount) == [1000, 250])
        #expect(batches[0].id == first.batchID)
        #expect(try await stores.syncJobs.get(job.id).lastBatchAt != nil)
        await expectValidation("batch_number") { _ = try await stores.syncJobs.recordBatch(job.id, batchNumber: 0, recordsCount: 1, status: .completed) }
        await expectValidation("records_count") { _ = try await stores.syncJobs.recordBatch(job.id, batchNumber: 3, recordsCount: -1, status: .completed) }
        await expectHubError({ $0.isNotFound }) {
            _ = try await stores.syncJobs.recordBatch(.generate(), batchNumber: 1, recordsCount: 1, status: .completed)
        }
    }

    @Test("concurrent batches of one job add up exactly", arguments: Backend.allCases)
    func concurrentBatches(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let integration = try await Self.integration(stores)
        let job = try await stores.syncJobs.start(SyncJobRequest(integrationID: integration.id, syncType: .full, entityType: "users"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for number in 1...40 {
                group.addTask { _ = try await stores.syncJobs.recordBatch(job.id, batchNumber: number, recordsCount: number, status: .completed) }
            }
            try await group.waitForAll()
        }
        #expect(try await stores.syncJobs.get(job.id).recordsProcessed == Int64((1...40).reduce(0, +)))
        #expect(try await stores.syncJobs.batches(of: job.id).count == 40)
    }

    @Test("step 3 finalizes the job and updates the integration in one transaction", arguments: Backend.allCases)
    func finalize(backend: Backend) async throws {
        let clock = ManualClock()
        let stores = try await TestEnvironment.stores(backend, clock: clock.wallClock)
        let integration = try await Self.integration(stores)
        let job = try await stores.syncJobs.start(SyncJobRequest(integrationID: integration.id, syncType: .full, entityType: "users"))
        _ = try await stores.syncJobs.recordBatch(job.id, batchNumber: 1, recordsCount: 10, status: .completed)
        clock.advance(by: 30)
        let done = try await stores.syncJobs.finalize(job.id, status: .completedWithErrors, errorsCount: 3)
        #expect(done.status == .completedWithErrors)
        #expect(done.errorsCount == 3)
        #expect(done.recordsProcessed == 10)
        #expect(done.completedAt == clock.wallClock.now())
        let updated = try await stores.integrations.get(integration.id)
        #expect(updated.lastSync == clock.wallClock.now())
        #expect(updated.errorCount == 3)
        await expectHubError({ $0.isConflict }) { _ = try await stores.syncJobs.finalize(job.id, status: .completed, errorsCount: 0) }
        await expectHubError({ $0.isConflict }) {
            _ = try await stores.syncJobs.recordBatch(job.id, batchNumber: 2, recordsCount: 1, status: .completed)
        }
        #expect(try await stores.syncJobs.batches(of: job.id).count == 1)
        #expect(try await stores.integrations.get(integration.id).errorCount == 3)
        await expectValidation("status") { _ = try await stores.syncJobs.finalize(job.id, status: .running, errorsCount: 0) }
        await expectValidation("errors_count") { _ = try await stores.syncJobs.finalize(job.id, status: .failed, errorsCount: -1) }
        await expectHubError({ $0.isNotFound }) { _ = try await stores.syncJobs.finalize(.generate(), status: .failed, errorsCount: 0) }
        // A second job adds its errors to the integration's count.
        let next = try await stores.syncJobs.start(SyncJobRequest(integrationID: integration.id, syncType: .incremental, entityType: "users"))
        _ = try await stores.syncJobs.finalize(next.id, status: .failed, errorsCount: 2)
        #expect(try await stores.integrations.get(integration.id).errorCount == 5)
    }

    @Test("list filters and pages jobs newest first", arguments: Backend.allCases)
    func list(backend: Backend) async throws {
        let clock = ManualClock()
        let stores = try await TestEnvironment.stores(backend, clock: clock.wallClock)
        let integration = try await Self.integration(stores)
        var ids: [SyncJobID] = []
        for entity in ["a", "b", "c", "d", "e"] {
            let job = try await stores.syncJobs.start(SyncJobRequest(integrationID: integration.id, syncType: .full, entityType: entity))
            ids.append(job.id)
            clock.advance(by: 1)
        }
        _ = try await stores.syncJobs.finalize(ids[1], status: .completed, errorsCount: 0)
        let filter = SyncJobFilter(integrationID: integration.id)
        let first = try await stores.syncJobs.list(filter, PageRequest(limit: 2))
        #expect(first.items.map(\.id) == [ids[4], ids[3]])
        let second = try await stores.syncJobs.list(filter, PageRequest(limit: 2, cursor: first.nextCursor))
        #expect(second.items.map(\.id) == [ids[2], ids[1]])
        let third = try await stores.syncJobs.list(filter, PageRequest(limit: 2, cursor: second.nextCursor))
        #expect(third.items.map(\.id) == [ids[0]])
        #expect(third.nextCursor == nil)
        let completed = try await stores.syncJobs.list(
            SyncJobFilter(integrationID: integration.id, status: .completed), PageRequest())
        #expect(completed.items.map(\.id) == [ids[1]])
        let byEntity = try await stores.syncJobs.list(
            SyncJobFilter(integrationID: integration.id, entityType: "c"), PageRequest())
        #expect(byEntity.items.map(\.id) == [ids[2]])
    }
}
