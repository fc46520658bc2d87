import Foundation
import HubCore
import HubEngine
import HubStore
import Testing

/// The sync engine end to end against the loopback SCIM and REST sources, on both backends.
@Suite("Sync engine", .timeLimit(.minutes(10)))
struct SyncEngineTests {
    /// The hub side of a test: stores, an executor allowed to reach loopback, the engine store and a runner.
    struct Hub: Sendable {
        let stores: HubStores
        let engine: SyncEngineStore
        let runner: SyncRunner
        let gateway: OutboundGateway

        init(_ backend: Backend, owner: String = "test-worker", lease: Duration = .seconds(30), sharing: HubStores? = nil) async throws {
            if let sharing { stores = sharing } else { stores = try await TestEnvironment.stores(backend) }
            engine = SyncEngineStore(database: stores.database)
            gateway = OutboundGateway(policy: try OutboundPolicy(allowlist: ["127.0.0.0/8"]))
            let executor = OperationExecutor(
                gateway: gateway, auth: AuthApplier(gateway: gateway), integrations: stores.integrations, operations: stores.apiOperations)
            runner = SyncRunner(store: engine, integrations: stores.integrations, executor: executor, owner: owner, lease: lease)
        }

        /// A hub for the duration of `body`; its HTTP client is shut down however `body` ends.
        static func with<T: Sendable>(
            _ backend: Backend, owner: String = "test-worker", lease: Duration = .seconds(30), sharing: HubStores? = nil,
            _ body: @Sendable (Hub) async throws -> T
        ) async throws -> T {
            let hub = try await Hub(backend, owner: owner, lease: lease, sharing: sharing)
            do {
                let result = try await body(hub)
                try await hub.gateway.shutdown()
                return result
            } catch {
                try? await hub.gateway.shutdown()
                throw error
            }
        }

        func register(_ base: String, mapping: JSONValue) async throws -> Integration {
            try await stores.integrations.register(IntegrationRegistration(
                systemID: unique("hr"), integrationType: "HR", endpointURL: base,
                authConfig: ["type": "bearer", "token": .string(SourceServer.token)], mappingConfig: mapping))
        }

        /// A full-sync job of a new integration, claimed by this hub's runner, to commit batches to directly.
        func claimedJob() async throws -> DirectJob {
            let integration = try await register("http://127.0.0.1:9/scim/v2", mapping: SyncEngineTests.scimMapping)
            let job = try await stores.syncJobs.start(
                SyncJobRequest(integrationID: integration.id, syncType: .full, entityType: "users", batchSize: 10))
            _ = try #require(try await engine.claim(owner: runner.owner, lease: .seconds(30), jobID: job.id))
            return DirectJob(hub: self, integration: integration, job: job)
        }

        /// Starts a job and runs it in this process to its end.
        func sync(_ integration: Integration, _ type: SyncType, entity: String = "users", batchSize: Int = 40) async throws -> SyncJob {
            let job = try await stores.syncJobs.start(
                SyncJobRequest(integrationID: integration.id, syncType: type, entityType: entity, batchSize: batchSize))
            let claim = try #require(try await engine.claim(owner: runner.owner, lease: runner.lease, jobID: job.id))
            return try #require(await runner.run(claim))
        }

        func records(_ integration: Integration, _ filter: SyncRecordFilter = SyncRecordFilter(), entity: String = "users") async throws -> [SyncRecord] {
            var all: [SyncRecord] = []
            var cursor: String?
            repeat {
                let page = try await engine.records(integration.id, entityType: entity, filter: filter, page: PageRequest(limit: 37, cursor: cursor))
                all += page.items
                cursor = page.nextCursor
            } while cursor != nil
            return all
        }
    }

    static let scimMapping: JSONValue = [
        "connector": ["type": "scim"],
        "retry": ["max_attempts": 4, "base_delay_ms": 5, "max_delay_ms": 50],
        "entities": ["users": [
            "path": "/Users", "external_id": "id",
            "fields": [
                "user_name": "userName",
                "email": ["path": "emails[primary=true].value", "transforms": ["trim", "lowercase"], "required": true],
                "source": ["constant": "scim"],
            ],
        ]],
    ]

    /// The stored data the mapping must give for each source user, computed here independently.
    static func expected(_ users: [String: SourceServer.User]) -> [String: JSONValue] {
        users.mapValues { user in
            ["user_name": .string(user.userName), "email": .string(user.email.trimmingCharacters(in: .whitespaces).lowercased()), "source": "scim"]
        }
    }

    @Test("SCIM full sync stores every user as mapped, reconciles with totalResults, records events and API operations", arguments: Backend.allCases)
    func scimFull(backend: Backend) async throws {
        try await Hub.with(backend) { hub in try await SourceServer.with { source, base in
            await source.addUsers(130)
            let integration = try await hub.register(base + "/scim/v2", mapping: Self.scimMapping)
            let eventsBefore = try await hub.engine.lastEventSequence()
            let job = try await hub.sync(integration, .full)
            #expect(job.status == .completed)
            #expect(job.summary.added == 130 && job.summary.updated == 0 && job.summary.failed == 0)
            // A batch size above the server's maxResults (50) is capped to it: pages of at most 50 (each after the first
            // re-reads the last few of the one before, to find its place).
            let capped = try await hub.sync(integration, .full, batchSize: 500)
            let cappedBatches = try await hub.stores.syncJobs.batches(of: capped.id).map(\.recordsCount)
            #expect(cappedBatches.count == 3 && cappedBatches.allSatisfy { $0 <= 50 } && cappedBatches.reduce(0, +) == 130, "\(cappedBatches)")
            #expect(capped.summary.unchanged == 130)
            #expect(job.summary.sourceTotal == 130)
            #expect(!job.summary.reconciliationMismatch)
            #expect(job.recordsProcessed == 130)
            // maxResults 50 caps the batch size of 40? No: 40 < 50, so pages of 40: 4 batches, numbered 1-4.
            let batches = try await hub.stores.syncJobs.batches(of: job.id)
            #expect(batches.map(\.batchNumber) == [1, 2, 3, 4])
            #expect(batches.map(\.recordsCount).reduce(0, +) == 130)
            let stored = try await hub.records(integration)
            let expected = Self.expected(await source.users)
            #expect(stored.count == 130)
            #expect(Dictionary(uniqueKeysWithValues: stored.map { ($0.externalID, $0.data) }) == expected)
            #expect(stored.allSatisfy { $0.lastChange == .created && $0.lastJobID == job.id })
            let events = try await hub.engine.events(after: eventsBefore, limit: 100_000).filter {
                $0.payload.objectValue?["integration_id"]?.stringValue == integration.id.description
            }
            #expect(events.filter { $0.type == "record.created" }.count == 130)
            #expect(events.last?.type == "sync.completed")
            let integrationAfter = try await hub.stores.integrations.get(integration.id)
            #expect(integrationAfter.lastSync != nil)
            let operations = try await hub.stores.apiOperations.list(APIOperationFilter(integrationID: integration.id), PageRequest(limit: 100))
            #expect(operations.items.count == 9)  // per job: ServiceProviderConfig, then 4 pages and 3 pages
            #expect(operations.items.allSatisfy { $0.status == .completed && $0.headers?.objectValue?["Authorization"] == nil })
        } }
    }

    @Test("incremental sync reads changes from the last high-water mark; a full sync marks the missing deleted and brings returns back",
          arguments: Backend.allCases)
    func incrementalAndDeletions(backend: Backend) async throws {
        try await Hub.with(backend) { hub in try await SourceServer.with { source, base in
            let ids = await source.addUsers(60)
            let integration = try await hub.register(base + "/scim/v2", mapping: Self.scimMapping)
            let eventsBefore = try await hub.engine.lastEventSequence()
            _ = try await hub.sync(integration, .full)
            for id in ids.prefix(3) { await source.modify(id, email: "changed-\(id)@example.com") }
            let added = await source.addUsers(2, prefix: "n")
            await source.remove(ids[10])
            let incremental = try await hub.sync(integration, .incremental, batchSize: 2)
            #expect(incremental.status == .completed)
            #expect(incremental.summary.added == 2)
            #expect(incremental.summary.updated == 3)
            let stored = try await hub.records(integration)
            #expect(stored.count == 62)  // an incremental run cannot see the removal
            let byID = Dictionary(uniqueKeysWithValues: stored.map { ($0.externalID, $0) })
            #expect(byID[ids[0]]?.data.objectValue?["email"] == .string("changed-\(ids[0])@example.com"))
            #expect(byID[ids[0]]?.lastChange == .updated)
            #expect(added.allSatisfy { byID[$0]?.lastChange == .created })

            // Nothing changed since: the next incremental run adds and updates nothing.
            let quiet = try await hub.sync(integration, .incremental)
            #expect(quiet.summary.added == 0 && quiet.summary.updated == 0)

            let full = try await hub.sync(integration, .full)
            #expect(full.summary.deleted == 1)
            let deleted = try await hub.records(integration, SyncRecordFilter(change: .deleted))
            #expect(deleted.map(\.externalID) == [ids[10]])
            #expect(deleted.first?.deletedAt != nil)
            let events = try await hub.engine.events(after: eventsBefore, type: "record.deleted", limit: 100_000)
            #expect(events.contains { $0.payload.objectValue?["external_id"]?.stringValue == ids[10] })

            // modified_after: only what the full sync changed.
            let changedSince = try await hub.records(integration, SyncRecordFilter(modifiedAfter: incremental.completedAt!))
            #expect(changedSince.map(\.externalID) == [ids[10]])
        } }
    }

    @Test("resources removed while pages are read shift nothing past the engine: nothing present is missed or wrongly deleted",
          arguments: Backend.allCases)
    func shiftingPages(backend: Backend) async throws {
        try await Hub.with(backend) { hub in try await SourceServer.with { source, base in
            let ids = await source.addUsers(100)
            let integration = try await hub.register(base + "/scim/v2", mapping: Self.scimMapping)
            // After the first page (startIndex 1, 20 users), three users of that page disappear: a naive reader would
            // skip users 21-23.
            await source.removeWhileReading(afterPageStartingAt: 1, positions: [0, 5, 7])
            let job = try await hub.sync(integration, .full, batchSize: 20)
            #expect(job.status == .completed)
            // The source's last total (97) differs from what was stored (100 seen): the job says so.
            #expect(job.summary.sourceTotal == 97)
            #expect(job.summary.reconciliationMismatch)
            let stored = Set(try await hub.records(integration).filter { $0.deletedAt == nil }.map(\.externalID))
            #expect(stored.isSuperset(of: Set(await source.users.keys)))
            #expect(stored.count == 100)  // the three removed were read before they went
            #expect(Set(ids).subtracting(stored).isEmpty)
        } }
    }

    @Test("429, 503 with Retry-After and 500 are retried and the job completes; a source that keeps failing fails the job with the reason",
          arguments: Backend.allCases)
    func sourceFailures(backend: Backend) async throws {
        try await Hub.with(backend) { hub in try await SourceServer.with { source, base in
            await source.addUsers(30)
            let integration = try await hub.register(base + "/scim/v2", mapping: Self.scimMapping)
            let eventsBefore = try await hub.engine.lastEventSequence()
            await source.failNext([503, 429, 500])
            let job = try await hub.sync(integration, .full, batchSize: 10)
            #expect(job.status == .completed)
            #expect(job.summary.added == 30)
            let failedCalls = try await hub.stores.apiOperations.list(
                APIOperationFilter(integrationID: integration.id, status: .failed), PageRequest(limit: 100))
            #expect(failedCalls.items.map(\.statusCode).sorted { ($0 ?? 0) < ($1 ?? 0) } == [429, 500, 503])

            // Retry-After is honoured up to the integration's longest delay: 1 s is waited for when max_delay_ms allows it.
            let patient = try await hub.register(base + "/scim/v2", mapping: [
                "connector": ["type": "scim"], "retry": ["max_attempts": 3, "base_delay_ms": 5, "max_delay_ms": 2000],
            ])
            await source.failNext([429], retryAfter: 1)
            let started = ContinuousClock.now
            let slowed = try await hub.sync(patient, .full, batchSize: 10)
            #expect(slowed.status == .completed)
            #expect(ContinuousClock.now - started >= .seconds(1))

            await source.failNext(Array(repeating: 500, count: 10))
            let failed = try await hub.sync(integration, .full, batchSize: 10)
            #expect(failed.status == .failed)
            #expect(failed.summary.failureReason?.contains("500") == true)
            #expect(failed.summary.failureReason?.contains("after 4 attempts") == true)
            #expect(try await hub.records(integration).filter { $0.deletedAt != nil }.isEmpty)  // a failed run deletes nothing
            let events = try await hub.engine.events(after: eventsBefore, type: "sync.failed", limit: 100_000)
            #expect(events.contains { $0.payload.objectValue?["sync_job_id"]?.stringValue == failed.id.description })
        } }
    }

    @Test("REST JSON: page, offset, cursor and Link pagination with transforms; unmappable records are counted with reasons",
          arguments: Backend.allCases)
    func restJSON(backend: Backend) async throws {
        try await Hub.with(backend) { hub in try await SourceServer.with { source, base in
            await source.addUsers(23)
            await source.addUsers(2, prefix: "")  // ids without the prefix still map; emails of these are fine too
            let fields: JSONValue = [
                "name": ["path": "name", "transforms": ["uppercase"]],
                "email": ["path": "mail", "transforms": ["trim", "lowercase"]],
                "hired": ["path": "hired", "transforms": ["date"]],
                "level": ["path": "missing", "default": 1],
            ]
            let paginations: [(String, JSONValue, String)] = [
                ("page", ["type": "page", "page_param": "page", "size_param": "per_page"], "/api/employees"),
                ("offset", ["type": "offset"], "/api/employees"),
                ("cursor", ["type": "cursor", "cursor_param": "cursor", "next_path": "next", "size_param": "limit"], "/api/employees"),
                ("link", ["type": "link", "size_param": "size"], "/api/linked"),
            ]
            for (name, pagination, path) in paginations {
                var connector: [String: JSONValue] = ["type": "rest_json", "pagination": pagination, "updated_since_param": "updated_since"]
                connector["records_path"] = name == "cursor" ? "items" : name == "link" ? nil : "data"
                if name == "page" { connector["total_path"] = "total" }
                let mapping: JSONValue = [
                    "connector": .object(connector.compactMapValues { $0 }),
                    "entities": ["employees": ["path": .string(path), "external_id": "employee_id", "updated_field": "updated", "fields": fields]],
                ]
                let integration = try await hub.register(base, mapping: mapping)
                let job = try await hub.sync(integration, .full, entity: "employees", batchSize: 7)
                #expect(job.status == .completed, "\(name): \(job.summary.failureReason ?? "")")
                #expect(job.summary.added == 25, "\(name)")
                let stored = try await hub.records(integration, entity: "employees")
                #expect(stored.count == 25, "\(name)")
                let first = try #require(stored.first { $0.externalID == "u00001" })
                #expect(first.data == ["name": "USER.1", "email": "user1@example.com", "hired": "2021-03-04T07:00:00Z", "level": 1], "\(name)")
                if name == "page" { #expect(job.summary.sourceTotal == 25) }
            }
            // A mapping that requires a field some records lack: those records are errors with reasons; the rest are stored.
            await source.modify("u00002", email: "")
            let strict: JSONValue = [
                "connector": ["type": "rest_json", "records_path": "data", "pagination": ["type": "offset"]],
                "entities": ["employees": ["path": "/api/employees", "external_id": "employee_id", "fields": [
                    "email": ["path": "mail", "transforms": ["trim", "number"], "required": true],
                ]]],
            ]
            let integration = try await hub.register(base, mapping: strict)
            let job = try await hub.sync(integration, .full, entity: "employees", batchSize: 10)
            #expect(job.status == .completedWithErrors)
            // Records that fail to map are still in the source: a full sync does not take stored ones for deleted.
            let lenient = try await hub.register(base, mapping: [
                "connector": ["type": "rest_json", "records_path": "data", "pagination": ["type": "offset"]],
                "entities": ["employees": ["path": "/api/employees", "external_id": "employee_id"]],
            ])
            #expect(try await hub.sync(lenient, .full, entity: "employees", batchSize: 10).summary.added == 25)
            _ = try await hub.stores.integrations.updateConfig(lenient.id, IntegrationConfigUpdate(mappingConfig: strict))
            let failing = try await hub.sync(lenient, .full, entity: "employees", batchSize: 10)
            #expect(failing.summary.failed == 25 && failing.summary.deleted == 0)
            #expect(try await hub.records(lenient, SyncRecordFilter(change: .deleted), entity: "employees").isEmpty)
            #expect(job.summary.failed == 25)
            #expect(job.errorsCount == 25)
            let errors = try await hub.engine.errors(of: job.id)
            #expect(errors.count == 25)
            #expect(errors.first?.reason.contains("email: cannot apply number") == true)
            #expect(errors.first?.externalID != nil)
        } }
    }

    @Test("a source that repeats its page, cursor or next link fails the job with that reason; the next run can start",
          arguments: Backend.allCases)
    func repeatingSource(backend: Backend) async throws {
        try await Hub.with(backend) { hub in try await SourceServer.with { _, base in
            let cases: [(JSONValue, String, String)] = [
                (["type": "page", "page_param": "page", "size_param": "per_page"], "/api/stuck", "the source sent the same page again"),
                (["type": "offset"], "/api/stuck", "the source sent the same page again"),
                (["type": "cursor", "cursor_param": "cursor", "next_path": "next"], "/api/repeat", "the source gave the same cursor again"),
                (["type": "link"], "/api/repeat", "the source gave the same next link again"),
            ]
            for (pagination, path, reason) in cases {
                let integration = try await hub.register(base, mapping: [
                    "connector": ["type": "rest_json", "records_path": "data", "pagination": pagination],
                    "entities": ["employees": ["path": .string(path), "external_id": "employee_id"]],
                ])
                let job = try await hub.sync(integration, .full, entity: "employees", batchSize: 10)
                #expect(job.status == .failed, "\(pagination)")
                #expect(job.summary.failureReason?.contains(reason) == true, "\(job.summary.failureReason ?? "")")
                // The integration is free for its next run.
                #expect(try await hub.sync(integration, .full, entity: "employees", batchSize: 10).status == .failed)
            }
        } }
    }

    @Test("a cancel that read the job before a batch committed its errors keeps them: the count is the row's", arguments: Backend.allCases)
    func cancelKeepsBatchErrors(backend: Backend) async throws {
        try await Hub.with(backend) { hub in
            let direct = try await hub.claimedJob()
            let stale = try await hub.stores.syncJobs.get(direct.job.id)  // what the cancel route read
            var batch = try direct.batch(1, [("a", 1)])
            batch.failures = [MappingError(externalID: "b", reason: "email: missing"), MappingError(externalID: "c", reason: "email: missing")]
            _ = try await hub.engine.commitBatch(batch, integrationID: direct.integration.id, entityType: "users")
            let cancelled = try await hub.stores.syncJobs.finalize(direct.job.id, status: .cancelled, errorsCount: Int(stale.errorsCount))
            #expect(stale.errorsCount == 0)
            #expect(cancelled.status == .cancelled && cancelled.errorsCount == 2)
            #expect(try await hub.stores.integrations.get(direct.integration.id).errorCount == 2)
        }
    }

    @Test("a bad mapping is refused at registration, naming the member", arguments: [Backend.sqlite])
    func mappingValidation(backend: Backend) async throws {
        try await Hub.with(backend) { hub in
        await expectValidation("mapping_config.entities.users.fields.email.transforms[1]") {
            _ = try await hub.register("https://hr.example.com", mapping: [
                "connector": ["type": "scim"],
                "entities": ["users": ["fields": ["email": ["path": "emails[0].value", "transforms": ["trim", "shout"]]]]],
            ])
        }
        await expectValidation("mapping_config.connector.type") {
            _ = try await hub.register("https://hr.example.com", mapping: ["connector": ["type": "ldap"]])
        }
        await expectValidation("mapping_config.entities.employees.path") {
            _ = try await hub.register("https://hr.example.com", mapping: [
                "connector": ["type": "rest_json", "pagination": ["type": "page"]], "entities": ["employees": ["external_id": "id"]],
            ])
        }
        }
    }

    @Test("a batch commits only as the job's next: one sent early writes nothing, one sent while the one before commits waits for it", arguments: Backend.allCases)
    func batchTurns(backend: Backend) async throws {
        try await Hub.with(backend) { hub in
            let direct = try await hub.claimedJob()
            let (integration, job) = (direct.integration, direct.job)
            func commit(_ number: Int) async throws -> SyncEngineStore.BatchResult {
                try await direct.commit(number, (1...3).map { ("b\(number)-\($0)", Int64($0)) })
            }
            // Batch 2 before batch 1: refused, nothing written.
            await #expect(throws: SyncEngineStore.BatchOutOfTurn(batchNumber: 2, lastCommitted: 0)) { _ = try await commit(2) }
            #expect(try await hub.records(integration).isEmpty)
            #expect(try await hub.stores.syncJobs.batches(of: job.id).isEmpty)
            #expect(try await hub.stores.syncJobs.get(job.id).recordsProcessed == 0)
            #expect(try await commit(1).added == 3)
            await expectHubError({ $0.isConflict }) { _ = try await commit(1) }
            // Batch 3 is sent while batch 2 is committing (here: a transaction that made batch 2 the job's last and has
            // not committed yet): it waits for that commit, then commits in turn.
            let database = hub.stores.database
            let (locked, lockedSignal) = AsyncStream<Int64>.makeStream()
            let (release, releaseSignal) = AsyncStream<Void>.makeStream()
            let holder = Task {
                try await database.transaction { executor in
                    _ = try await executor.query(
                        "UPDATE sync_jobs SET last_batch_number = 2 WHERE sync_job_id = $1", [.uuid(job.id.uuid)])
                    let pid = backend == .postgres ? try await executor.queryOne("SELECT pg_backend_pid() AS pid", [])!.int("pid") : 0
                    lockedSignal.yield(pid)
                    for await _ in release { break }
                }
            }
            var holderPID: Int64 = 0
            for await pid in locked {
                holderPID = pid
                break
            }
            let third = Task { try await commit(3) }
            if backend == .postgres {
                // Released only once batch 3's statement waits for the holder (its snapshot older than the holder's commit).
                var waiting = false
                for _ in 0..<500 where !waiting {
                    waiting = try await database.queryOne(
                        "SELECT count(*) AS n FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))", [.int(holderPID)]
                    )!.int("n") > 0
                    if !waiting { try await Task.sleep(for: .milliseconds(10)) }
                }
                #expect(waiting)
            } else {
                try await Task.sleep(for: .milliseconds(100))  // SQLite: one writer; batch 3 runs after the holder commits
            }
            releaseSignal.yield()
            try await holder.value
            #expect(try await third.value.added == 3)
            #expect(try await hub.stores.syncJobs.batches(of: job.id).map(\.batchNumber) == [1, 3])
            #expect(try await hub.stores.syncJobs.get(job.id).recordsProcessed == 6)
        }
    }

    @Test("a batch taken for new records that meets stored ones is upserted after all: the same counts, records and events", arguments: Backend.allCases)
    func likelyNewFallsBack(backend: Backend) async throws {
        try await Hub.with(backend) { hub in
            let eventsBefore = try await hub.engine.lastEventSequence()
            let direct = try await hub.claimedJob()
            let (integration, job) = (direct.integration, direct.job)
            func commit(_ number: Int, likelyNew: Bool, _ records: [(String, Int64)]) async throws -> SyncEngineStore.BatchResult {
                try await direct.commit(number, likelyNew: likelyNew, records)
            }
            #expect(try await commit(1, likelyNew: false, [("a1", 1), ("a2", 1), ("a3", 1)]).added == 3)
            // New ones: a plain insert on PostgreSQL (SQLite always upserts).
            let new = try await commit(2, likelyNew: true, [("b1", 1), ("b2", 1)])
            #expect(new.added == 2 && new.insertedOnly == (backend == .postgres))
            // New, unchanged and changed: refused as an insert, then upserted.
            let mixed = try await commit(3, likelyNew: true, [("c1", 1), ("a1", 1), ("a2", 2)])
            #expect(mixed.added == 1 && mixed.updated == 1 && mixed.unchanged == 1 && !mixed.insertedOnly)
            let stored = try await hub.records(integration)
            #expect(Dictionary(uniqueKeysWithValues: stored.map { ($0.externalID, $0.data) }) == [
                "a1": ["id": "a1", "v": 1], "a2": ["id": "a2", "v": 2], "a3": ["id": "a3", "v": 1], "b1": ["id": "b1", "v": 1],
                "b2": ["id": "b2", "v": 1], "c1": ["id": "c1", "v": 1],
            ])
            let events = try await hub.engine.events(after: eventsBefore)
                .filter { $0.type.hasPrefix("record.") && $0.payload.objectValue?["integration_id"]?.stringValue == integration.id.description }
                .map { "\($0.type) \($0.payload.objectValue?["external_id"]?.stringValue ?? "")" }
            #expect(events == [
                "record.created a1", "record.created a2", "record.created a3", "record.created b1", "record.created b2",
                "record.created c1", "record.updated a2",
            ])
            let after = try await hub.stores.syncJobs.get(job.id)
            #expect(after.summary.added == 6 && after.summary.updated == 1 && after.summary.unchanged == 1 && after.recordsProcessed == 8)
            #expect(try await hub.stores.syncJobs.batches(of: job.id).map(\.batchNumber) == [1, 2, 3])
        }
    }

    @Test("a page of more records than one outbox row holds (a source may send more than asked) is split into rows and numbers every event once, in order", arguments: Backend.allCases)
    func largePageEvents(backend: Backend) async throws {
        // A database of its own: its 33,000 events stay out of the shared one, whose fan-outs other tests wait for.
        let own = try await DeliveryDatabase.make(backend)
        defer { Task { await own.cleanup() } }
        let stores = HubStores(database: own.database, sealer: TestEnvironment.sealer)
        try await Hub.with(backend, sharing: stores) { hub in
            let direct = try await hub.claimedJob()
            let start = try await hub.engine.lastEventSequence()
            let count = 10_500  // more than one outbox row holds (10,000), and than one SQLite statement takes (5,000)
            // (Records built outside #expect: its expansion of a call with a `$0` closure among the arguments misread it.)
            let first = try await direct.commit(1, (1...count).map { ("p\($0)", 1) })
            #expect(first.added == count)
            let second = try await direct.commit(2, likelyNew: true, (1...count).map { ("q\($0)", 1) })


            #expect(second.added == count && second.insertedOnly == (backend == .postgres), "\(second)")
            var events: [HubEvent] = []
            while true {
                let page = try await hub.engine.events(after: events.last?.sequence ?? start, limit: 8_000)
                if page.isEmpty { break }
                events += page
            }
            let mine = events.filter { $0.payload.objectValue?["integration_id"]?.stringValue == direct.integration.id.description }
            #expect(mine.count == 2 * count && mine.allSatisfy { $0.type == "record.created" })
            #expect(zip(events, events.dropFirst()).allSatisfy { $0.sequence < $1.sequence })
            #expect(Set(mine.compactMap { $0.payload.objectValue?["external_id"]?.stringValue }).count == 2 * count)
            #expect(try await hub.engine.lastEventSequence() >= mine.last?.sequence ?? .max)
            // Each batch's events took two rows: no row holds more than its share, so none runs into the next one's numbers.
            let size = own.database.dialect == .postgres ? "cardinality(e.external_ids)" : "json_array_length(e.external_ids)"
            let sizes = try await own.database.query(
                "SELECT \(size) AS n FROM events e WHERE e.sync_job_id = $1",
                [.uuid(direct.job.id.uuid)]
            ).map { try $0.int("n") }
            #expect(sizes.sorted() == [500, 500, 10_000, 10_000])
        }
    }

    @Test("leases: one claimer per job; a stopped runner's job is resumed from its checkpoint, no batch counted twice", arguments: Backend.allCases)
    func leasesAndResume(backend: Backend) async throws {
        try await Hub.with(backend, owner: "worker-a", lease: .seconds(20)) { first in try await SourceServer.with { source, base in
            await source.addUsers(90)
            let integration = try await first.register(base + "/scim/v2", mapping: Self.scimMapping)
            let job = try await first.stores.syncJobs.start(
                SyncJobRequest(integrationID: integration.id, syncType: .full, entityType: "users", batchSize: 10))
            let claim = try #require(try await first.engine.claim(owner: "worker-a", lease: .seconds(20), jobID: job.id))
            #expect(try await first.engine.claim(owner: "worker-b", lease: .seconds(20), jobID: job.id) == nil)
            // Worker A stops after its third batch (its task is cancelled: it releases the lease). On PostgreSQL the fourth
            // may already have been sent, and then commits.
            let runA = Task { await first.runner.run(claim) { progress in if progress.batches == 3 { withUnsafeCurrentTask { $0?.cancel() } } } }
            #expect(await runA.value == nil)
            let afterA = try await first.stores.syncJobs.get(job.id)
            #expect(afterA.status == .running)
            let committed = try await first.stores.syncJobs.batches(of: job.id).map(\.batchNumber)
            #expect(committed == Array(1...3) || (backend == .postgres && committed == Array(1...4)))
            #expect(afterA.recordsProcessed == Int64(committed.count * 10))
            // Worker B resumes from the batch after them.
            try await Hub.with(backend, owner: "worker-b", sharing: first.stores) { second in
            let resumed = try #require(try await second.engine.claim(owner: "worker-b", lease: .seconds(30), jobID: job.id))
            #expect(resumed.job.id == job.id)
            #expect(resumed.nextBatchNumber == committed.count + 1)
            let done = try #require(await second.runner.run(resumed))
            #expect(done.status == .completed)
            #expect(done.recordsProcessed == 90)
            #expect(done.summary.added == 90)
            }
            #expect(try await first.stores.syncJobs.batches(of: job.id).map(\.batchNumber) == Array(1...9))
            // A worker whose lease is gone cannot write.
            await expectHubError({ $0.isConflict }) {
                _ = try await first.engine.commitBatch(
                    SyncEngineStore.Batch(
                        jobID: job.id, owner: "worker-a", lease: .seconds(1), batchNumber: 10, records: [], failures: [], checkpoint: [:],
                        highWaterMark: nil, sourceTotal: nil, pagesDone: true), integrationID: integration.id, entityType: "users")
            }
        } }
    }

    @Test("an expired lease lets another worker take the job over; the old worker's writes are refused", arguments: Backend.allCases)
    func expiredLease(backend: Backend) async throws {
        try await Hub.with(backend) { hub in
        let integration = try await hub.register("https://hr.example.com/scim/v2", mapping: Self.scimMapping)
        let job = try await hub.stores.syncJobs.start(SyncJobRequest(integrationID: integration.id, syncType: .full, entityType: "users"))
        // The workers' clock is moved by hand: the lease expires when the test says, however loaded the machine is.
        let clock = ManualClock(Date())
        let engine = SyncEngineStore(database: hub.stores.database, clock: clock.wallClock)
        _ = try #require(try await engine.claim(owner: "dead", lease: .seconds(6), jobID: job.id))
        clock.advance(by: 5.9)
        #expect(try await engine.claim(owner: "alive", lease: .seconds(30), jobID: job.id) == nil)
        clock.advance(by: 0.2)
        #expect(try await engine.claim(owner: "alive", lease: .seconds(30), jobID: job.id)?.job.id == job.id)
        #expect(try await engine.renew(job.id, owner: "dead", lease: .seconds(30)) == false)
        #expect(try await engine.finish(job.id, owner: "dead", status: .completed, failureReason: nil, markDeletions: true) == nil)
        }
    }

    @Test("due schedules are claimed once among concurrent schedulers", arguments: Backend.allCases)
    func schedules(backend: Backend) async throws {
        let clock = ManualClock()
        let stores = try await TestEnvironment.stores(backend, clock: clock.wallClock)
        let engine = SyncEngineStore(database: stores.database, clock: clock.wallClock)
        let integration = try await stores.integrations.register(IntegrationRegistration(
            systemID: unique("hr"), integrationType: "HR", endpointURL: "https://hr.example.com/scim/v2",
            authConfig: ["type": "bearer", "token": "t"], mappingConfig: Self.scimMapping))
        let schedule = try await engine.schedule(integration.id, entityType: "users", syncType: .incremental, intervalMinutes: 15)
        #expect(try await engine.schedules(of: integration.id) == [schedule])
        await expectValidation("interval_minutes") {
            _ = try await engine.schedule(integration.id, entityType: "users", syncType: .full, intervalMinutes: 0)
        }
        clock.advance(by: 15 * 60)
        let claimed = try await withThrowingTaskGroup(of: [SyncSchedule].self) { group in
            for _ in 0..<6 { group.addTask { try await engine.claimDueSchedules() } }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(claimed.filter { $0.id == schedule.id }.count == 1)
        let moved = try #require(claimed.first { $0.id == schedule.id }).nextRunAt.timeIntervalSince(schedule.nextRunAt)
        #expect(abs(moved - 15 * 60) < 0.001)
        #expect(try await engine.unschedule(integration.id, entityType: "users"))
    }
}

/// The sync routes of the HTTP API and the worker's scheduler, end to end.
@Suite("Sync over HTTP and schedules", .timeLimit(.minutes(10)))
struct SyncServiceTests {
    @Test("records and schedules routes answer as documented; a job started over HTTP shows its summary and errors", arguments: Backend.allCases)
    func routes(backend: Backend) async throws {
        let harness = try await APIHarness.make(backend)
        try await SyncEngineTests.Hub.with(backend, sharing: harness.stores) { hub in try await SourceServer.with { source, base in
            await source.addUsers(12)
            let integration = try await hub.register(base + "/scim/v2", mapping: SyncEngineTests.scimMapping)
            let job = try await hub.sync(integration, .full)
            try await harness.test { client in
                let document = try await ServerTests.document(client)
                let path = "/v1/integrations/\(integration.id)/records/users"
                let template = "/v1/integrations/{id}/records/{entity_type}"
                let first = try await client.checked(.get, path + "?limit=5", template: template, document: document)
                #expect(first.status == .ok)
                #expect(first["items"]?.arrayValue?.count == 5)
                let cursor = try #require(first["next_cursor"]?.stringValue)
                let rest = try await client.checked(.get, path + "?limit=50&cursor=\(cursor)", template: template, document: document)
                #expect(rest["items"]?.arrayValue?.count == 7)
                #expect(try await client.checked(.get, path + "?change=deleted", template: template, document: document)["items"] == [])
                #expect(try await client.checked(.get, path + "?change=gone", template: template, document: document)["field"] == "change")
                let detail = try await client.checked(.get, "/v1/sync-jobs/\(job.id)", template: "/v1/sync-jobs/{id}", document: document)
                #expect(detail["summary"]?.objectValue?["added"] == 12)
                #expect(detail["errors"] == [])
                let schedules = "/v1/integrations/\(integration.id)/schedules"
                let created = try await client.checked(
                    .put, schedules, template: "/v1/integrations/{id}/schedules",
                    json: ["entity_type": "users", "sync_type": "incremental", "interval_minutes": 60], document: document)
                #expect(created.status == .ok)
                #expect(created["interval_minutes"] == 60)
                let invalid = try await client.checked(
                    .put, schedules, template: "/v1/integrations/{id}/schedules",
                    json: ["entity_type": "users", "sync_type": "full", "interval_minutes": 0], document: document)
                #expect(invalid["field"] == "interval_minutes")
                let listed = try await client.checked(.get, schedules, template: "/v1/integrations/{id}/schedules", document: document)
                #expect(listed["items"]?.arrayValue?.count == 1)
                let removed = try await client.checked(
                    .delete, schedules + "/users", template: "/v1/integrations/{id}/schedules/{entity_type}", document: document)
                #expect(removed.status == .noContent)
                let again = try await client.checked(
                    .delete, schedules + "/users", template: "/v1/integrations/{id}/schedules/{entity_type}", document: document)
                #expect(again.status == .notFound)
            }
        } }
    }

    // SQLite only: a worker takes any running job of its database, and the PostgreSQL test database is shared with
    // tests running beside this one (the crash test runs `hub worker` on a PostgreSQL database of its own).
    @Test("the worker starts a due scheduled sync and runs it to completion", arguments: [Backend.sqlite])
    func workerRunsSchedules(backend: Backend) async throws {
        let clock = ManualClock(Date())
        try await SyncEngineTests.Hub.with(backend) { hub in try await SourceServer.with { source, base in
            await source.addUsers(30)
            let integration = try await hub.register(base + "/scim/v2", mapping: SyncEngineTests.scimMapping)
            let engine = SyncEngineStore(database: hub.stores.database, clock: clock.wallClock)
            _ = try await engine.schedule(integration.id, entityType: "users", syncType: .full, intervalMinutes: 5)
            clock.advance(by: 5 * 60)
            let worker = SyncWorker(runner: hub.runner, store: engine, jobs: hub.stores.syncJobs, pollInterval: .milliseconds(50))
            let running = Task { await worker.runLoop() }
            defer { running.cancel() }
            var jobs: [SyncJob] = []
            for _ in 0..<200 {
                jobs = try await hub.stores.syncJobs.list(SyncJobFilter(integrationID: integration.id), PageRequest()).items
                if jobs.first?.status.isFinal == true { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            running.cancel()
            await running.value
            #expect(jobs.count == 1)  // due once: one job
            #expect(jobs.first?.status == .completed)
            #expect(jobs.first?.summary.added == 30)
            let schedule = try #require(try await engine.schedules(of: integration.id).first)
            #expect(schedule.lastJobID == jobs.first?.id)
        } }
    }
}

extension SyncEngineTests {
    /// A claimed job and the batches committed to it by hand: records `(external id, value)` mapped as `{"id", "v"}`.
    struct DirectJob: Sendable {
        let hub: Hub
        let integration: Integration
        let job: SyncJob
        static let mapping = try! RecordMapping(["external_id": "id"], field: "mapping")

        func batch(_ number: Int, likelyNew: Bool = false, _ records: [(String, Int64)]) throws -> SyncEngineStore.Batch {
            let prepared = try records.map { SyncEngineStore.PreparedRecord(try Self.mapping.apply(["id": .string($0.0), "v": .int($0.1)])) }
            return SyncEngineStore.Batch(
                jobID: job.id, owner: hub.runner.owner, lease: .seconds(30), batchNumber: number, records: prepared, failures: [],
                checkpoint: ["page": .int(Int64(number))], highWaterMark: nil, sourceTotal: nil, pagesDone: false,
                recordsLikelyNew: likelyNew)
        }

        func commit(_ number: Int, likelyNew: Bool = false, _ records: [(String, Int64)]) async throws -> SyncEngineStore.BatchResult {
            try await hub.engine.commitBatch(try batch(number, likelyNew: likelyNew, records), integrationID: integration.id, entityType: "users")
        }
    }
}
