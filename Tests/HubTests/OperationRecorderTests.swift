import Foundation
import HubCore
import HubServer
import HubSQLite
import HubStore
import Testing

/// The bulk write of steps 1-3 (``APIOperationDAO/record(_:)``) and write-behind recording with its journal.
@Suite("API operations: batch records and write-behind recording", .timeLimit(.minutes(10)))
struct OperationRecorderTests {
    static func journalDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("hub-journal-\(UUID().uuidString)").path
    }

    static func finished(_ operation: APIOperation, status: Int?, time: Int64, at date: Date, timedOut: Bool = false) -> APIOperationRecord {
        let outcome = APIOperationOutcome(
            statusCode: status, executionTime: time, errorMessage: status == nil ? "the connection failed" : nil, timedOut: timedOut)
        return APIOperationRecord(operation: operation.completed(with: outcome, at: date), timedOut: timedOut)
    }

    @Test("a batch inserts, finishes and folds each operation once, however often it is written", arguments: Backend.allCases)
    func recordIsIdempotent(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let endpoint = "https://api.example.com/\(unique("batch"))/items/7"
        let now = Date()
        let integration = try await stores.integrations.register(IntegrationContractTests.registration())
        let pending = try (0..<6).map { _ in
            try APIOperation.pending(
                for: APIOperationRequest(operationType: .GET, endpoint: endpoint, headers: ["Authorization": "Bearer s3cret"],
                                         integrationID: integration.id), at: now)
        }
        // Pending only: stored as pending, nothing folded.
        try await stores.apiOperations.record(pending.map { APIOperationRecord(operation: $0) })
        #expect(try await stores.apiOperations.get(pending[0].id).status == .pending)
        #expect(try await stores.apiOperations.get(pending[0].id).headers == ["Authorization": "[REDACTED]"])
        #expect(try await stores.apiOperations.statistics(APIStatisticsQuery(endpoint: endpoint)).isEmpty)
        // Both states of operations 0-2 in one batch (the finished one wins), 3 finished alone, 4 finished with a
        // timeout, 5 stays pending; then the whole batch again.
        let batch = pending[0...2].flatMap { [APIOperationRecord(operation: $0), Self.finished($0, status: 200, time: 10, at: now)] }
            + [Self.finished(pending[3], status: 503, time: 40, at: now), Self.finished(pending[4], status: nil, time: 30_000, at: now, timedOut: true),
               APIOperationRecord(operation: pending[5])]
        try await stores.apiOperations.record(batch)
        try await stores.apiOperations.record(batch.reversed())
        let row = try #require(try await stores.apiOperations.statistics(APIStatisticsQuery(endpoint: endpoint)).first)
        #expect(row.callCount == 5)
        #expect(row.errorCount == 2)
        #expect((row.errors5xx, row.errorsTimeout, row.errorsConnection) == (1, 1, 0))
        #expect(row.totalExecutionTime == 30_070)
        #expect((row.minExecutionTime, row.maxExecutionTime) == (10, 30_000))
        #expect(row.integrationID == integration.id)
        #expect(try await stores.apiOperations.get(pending[3].id).statusCode == 503)
        #expect(try await stores.apiOperations.get(pending[5].id).status == .pending)
        // A finished operation never seen pending is inserted and folded; one of an integration deleted meanwhile is
        // kept without it.
        let gone = try await stores.integrations.register(IntegrationContractTests.registration())
        let orphan = try APIOperation.pending(
            for: APIOperationRequest(operationType: .GET, endpoint: endpoint, integrationID: gone.id), at: now)
        try await stores.integrations.delete(gone.id)
        try await stores.apiOperations.record([Self.finished(orphan, status: 200, time: 5, at: now)])
        #expect(try await stores.apiOperations.get(orphan.id).integrationID == nil)
        #expect(try await stores.apiOperations.statistics(APIStatisticsQuery(endpoint: endpoint)).map(\.callCount).reduce(0, +) == 6)
        // An invalid outcome is refused and writes nothing.
        let bad = try APIOperation.pending(for: APIOperationRequest(operationType: .GET, endpoint: endpoint), at: now)
        await expectValidation("execution_time") {
            try await stores.apiOperations.record([Self.finished(bad, status: 200, time: -1, at: now)])
        }
        await expectHubError({ $0.isNotFound }) { _ = try await stores.apiOperations.get(bad.id) }
    }

    @Test("write-behind: the caller reads its own writes at once; the journal is emptied after commit and removed at shutdown",
          arguments: Backend.allCases)
    func readsOwnWrites(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let journal = Self.journalDirectory()
        defer { try? FileManager.default.removeItem(atPath: journal) }
        let recorder = try OperationRecorder(store: stores.apiOperations, journalDirectory: journal)
        let endpoint = "https://api.example.com/\(unique("rw"))"
        let integration = try await stores.integrations.register(IntegrationContractTests.registration())
        let operation = try await recorder.log(
            APIOperationRequest(operationType: .POST, endpoint: endpoint, payload: ["a": 1], integrationID: integration.id))
        let completed = try await recorder.complete(operation.id, APIOperationOutcome(statusCode: 201, responseData: ["id": 9], executionTime: 12))
        #expect(try await recorder.get(operation.id) == completed)
        await expectHubError({ $0.isConflict }) {
            _ = try await recorder.complete(operation.id, APIOperationOutcome(statusCode: 200, executionTime: 1))
        }
        #expect(await recorder.flush())
        // Committed exactly as returned (times at microsecond precision), straight from the store.
        #expect(try await stores.apiOperations.get(operation.id) == completed)
        let listed = try await recorder.list(APIOperationFilter(integrationID: integration.id), PageRequest(limit: 200))
        #expect(listed.items == [completed])
        let directories = try FileManager.default.contentsOfDirectory(atPath: journal)
        #expect(directories.count == 1)
        let own = (journal as NSString).appendingPathComponent(directories[0])
        for name in try FileManager.default.contentsOfDirectory(atPath: own) where name.hasPrefix("segment-") {
            #expect(try FileManager.default.attributesOfItem(atPath: (own as NSString).appendingPathComponent(name))[.size] as? Int == 0)
        }
        await recorder.shutdown()
        #expect(try FileManager.default.contentsOfDirectory(atPath: journal).isEmpty)
        await expectHubError({ if case .unavailable = $0 { true } else { false } }) {
            _ = try await recorder.log(APIOperationRequest(operationType: .GET, endpoint: endpoint))
        }
    }

    @Test("a crash loses nothing: the next process replays the journal once, running calls become interrupted", arguments: Backend.allCases)
    func crashReplay(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let journal = Self.journalDirectory()
        defer { try? FileManager.default.removeItem(atPath: journal) }
        // The first process's database refuses every write (its schema is missing), so all it did stays in its journal.
        let broken = try await SQLiteDatabase.open(path: nil)
        let dying = try OperationRecorder(store: APIOperationStore(database: broken), journalDirectory: journal)
        let endpoint = "https://api.example.com/\(unique("crash"))"
        var finished: [APIOperation] = []
        for index in 1...50 {
            let operation = try await dying.log(APIOperationRequest(operationType: .GET, endpoint: endpoint))
            finished.append(try await dying.complete(operation.id, APIOperationOutcome(statusCode: index % 5 == 0 ? 500 : 200, executionTime: Int64(index))))
        }
        let running = try await dying.log(APIOperationRequest(operationType: .GET, endpoint: endpoint))
        #expect(await dying.flush(timeout: .milliseconds(200)) == false)

        // While the process lives, another recorder leaves its journal alone.
        let next = try OperationRecorder(store: stores.apiOperations, journalDirectory: journal)
        #expect(try await next.recover() == 0)
        await expectHubError({ $0.isNotFound }) { _ = try await stores.apiOperations.get(finished[0].id) }

        await dying.stop()  // as a crash leaves it: nothing committed, the journal on disk
        // A subprocess that another test is spawning can hold a copy of the lock for an instant (fork before exec).
        var replayed = 0
        for _ in 0..<100 where replayed == 0 {
            replayed = try await next.recover()
            if replayed == 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(replayed == 51)
        for operation in finished { #expect(try await stores.apiOperations.get(operation.id) == operation) }
        let interrupted = try await stores.apiOperations.get(running.id)
        #expect(interrupted.status == .failed)
        #expect(interrupted.errorMessage?.hasPrefix("interrupted") == true)
        let row = try #require(try await stores.apiOperations.statistics(APIStatisticsQuery(endpoint: endpoint)).first)
        #expect(row.callCount == 50)
        #expect(row.errorCount == 10)
        #expect(row.totalExecutionTime == 1275)
        // Replayed once: the dead journal is gone, and replaying the same records again would change nothing.
        #expect(try await next.recover() == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: journal).count == 1)
        await next.shutdown()
        try await broken.close()
    }
}

extension OperationRecorderTests {
    @Test("the queue is bounded in bytes: a new call waits for room, then is refused (503); admitted calls still complete")
    func boundedInBytes() async throws {
        let journal = Self.journalDirectory()
        defer { try? FileManager.default.removeItem(atPath: journal) }
        // A database that refuses every write (no schema): nothing drains, so the queue only grows.
        let broken = try await SQLiteDatabase.open(path: nil)
        let recorder = try OperationRecorder(
            store: APIOperationStore(database: broken), journalDirectory: journal, maximumQueuedBytes: 64 * 1024,
            admissionWait: .milliseconds(300))
        let payload: JSONValue = ["blob": .string(String(repeating: "x", count: 4000))]
        var admitted: [APIOperation] = []
        var refusal: (any Error)?
        for _ in 0..<100 {
            do {
                admitted.append(try await recorder.log(APIOperationRequest(operationType: .POST, endpoint: "https://api.example.com/x", payload: payload)))
            } catch {
                refusal = error
                break
            }
        }
        // About 64 KiB of 4 KB records: refused well before the record limit (50,000).
        #expect((10...20).contains(admitted.count), "\(admitted.count) admitted")
        guard case HubError.unavailable(let reason)? = refusal as? HubError else {
            Issue.record("expected unavailable, got \(String(describing: refusal))")
            return
        }
        #expect(reason.contains("try again"))
        #expect(Problem(.unavailable(reason: reason)).status == .serviceUnavailable)
        // The outcome of an admitted call is always taken, full or not, and it is no longer pending.
        let completed = try await recorder.complete(admitted[0].id, APIOperationOutcome(statusCode: 200, executionTime: 3))
        #expect(completed.status == .completed)
        #expect(try await recorder.get(admitted[0].id).status == .completed)
        await recorder.stop()
        try await broken.close()
    }
}

@Suite("API operations: a call still running when the process dies", .timeLimit(.minutes(10)))
struct RunningCallCrashTests {
    @Test("a call whose pending row was already committed is still recorded as interrupted after a crash", arguments: Backend.allCases)
    func runningCall(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let journal = OperationRecorderTests.journalDirectory()
        defer { try? FileManager.default.removeItem(atPath: journal) }
        let dying = try OperationRecorder(store: stores.apiOperations, journalDirectory: journal)
        let running = try await dying.log(APIOperationRequest(operationType: .GET, endpoint: "https://api.example.com/\(unique("slow"))"))
        let done = try await dying.log(APIOperationRequest(operationType: .GET, endpoint: "https://api.example.com/\(unique("fast"))"))
        _ = try await dying.complete(done.id, APIOperationOutcome(statusCode: 200, executionTime: 3))
        #expect(await dying.flush())  // both committed (one pending); the journal keeps only the running call
        #expect(try await stores.apiOperations.get(running.id).status == .pending)
        await dying.stop()
        let next = try OperationRecorder(store: stores.apiOperations, journalDirectory: journal)
        var replayed = 0
        for _ in 0..<100 where replayed == 0 {
            replayed = try await next.recover()
            if replayed == 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(replayed == 1)
        let interrupted = try await stores.apiOperations.get(running.id)
        #expect(interrupted.status == .failed && interrupted.errorMessage?.hasPrefix("interrupted") == true)
        #expect(try await stores.apiOperations.get(done.id).status == .completed)
        await next.shutdown()
    }
}
