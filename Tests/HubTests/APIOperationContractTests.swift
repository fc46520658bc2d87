import Foundation
import HubCore
import HubEngine
import HubStore
import Logging
import Testing

/// DAO-MDE-03-08-03 contract, on both backends.
@Suite("API Operation DAO", .timeLimit(.minutes(3)))
struct APIOperationContractTests {
    @Test("step 1 logs a pending operation, timeout 30 by default, credentials redacted", arguments: Backend.allCases)
    func log(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let operation = try await stores.apiOperations.log(
            APIOperationRequest(
                operationType: .POST, endpoint: "https://api.example.com/v1/users",
                headers: ["Authorization": "Bearer live-token-123", "X-Api-Key": "key-456", "Accept": "application/json"],
                payload: ["name": "Ada"]))
        #expect(operation.status == .pending)
        #expect(operation.timeout == 30)
        #expect(operation.statusCode == nil)
        #expect(operation.headers == ["Authorization": "[REDACTED]", "X-Api-Key": "[REDACTED]", "Accept": "application/json"])
        #expect(operation.payload == ["name": "Ada"])
        let raw = try await stores.database.queryOne(
            "SELECT headers FROM api_operations WHERE operation_id = $1", [.uuid(operation.id.uuid)])!.jsonText("headers")
        #expect(!raw.contains("live-token") && !raw.contains("key-456"))
        let keyed = try await stores.apiOperations.log(APIOperationRequest(
            operationType: .GET, endpoint: "https://api.example.com/v1/users?page=2&api_key=live-key-789&Access_Token=t0k"))
        #expect(keyed.endpoint == "https://api.example.com/v1/users?page=2&api_key=[REDACTED]&Access_Token=[REDACTED]")
        #expect(APIOperation.redactQuery("/a?token=x#frag") == "/a?token=[REDACTED]#frag")
        let timed = try await stores.apiOperations.log(APIOperationRequest(operationType: .GET, endpoint: "/users/1", timeout: 5))
        #expect(timed.timeout == 5)
        #expect(try await stores.apiOperations.get(timed.id) == timed)
    }

    @Test("step 1 validation names the field and writes nothing", arguments: Backend.allCases)
    func validation(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let endpoint = "https://api.example.com/\(unique("v"))"
        func attempt(_ field: String, _ request: APIOperationRequest) async {
            await expectValidation(field) { _ = try await stores.apiOperations.log(request) }
        }
        await attempt("endpoint", APIOperationRequest(operationType: .GET, endpoint: "users"))
        await attempt("endpoint", APIOperationRequest(operationType: .GET, endpoint: ""))
        await attempt("endpoint", APIOperationRequest(operationType: .GET, endpoint: "ftp://x.example/a"))
        await attempt("endpoint", APIOperationRequest(operationType: .GET, endpoint: "//evil.example/a"))
        await attempt("timeout", APIOperationRequest(operationType: .GET, endpoint: endpoint, timeout: 0))
        await attempt("timeout", APIOperationRequest(operationType: .GET, endpoint: endpoint, timeout: 301))
        await attempt("headers", APIOperationRequest(operationType: .GET, endpoint: endpoint, headers: ["a", "b"]))
        await attempt("headers.X-Count", APIOperationRequest(operationType: .GET, endpoint: endpoint, headers: ["X-Count": 3]))
        await attempt("headers.Bad Name", APIOperationRequest(operationType: .GET, endpoint: endpoint, headers: ["Bad Name": "v"]))
        await attempt("payload.list[1]", APIOperationRequest(operationType: .POST, endpoint: endpoint, payload: ["list": ["ok", "n\u{0}"]]))
        await attempt("headers.X-Inject", APIOperationRequest(operationType: .GET, endpoint: endpoint, headers: ["X-Inject": "a\r\nb: c"]))
        #expect(try await count(stores.database, "api_operations", where: "endpoint = $1", .text(endpoint)) == 0)
        await expectHubError({ $0.isInvalidReference }) {
            _ = try await stores.apiOperations.log(APIOperationRequest(operationType: .GET, endpoint: endpoint, integrationID: .generate()))
        }
        #expect(try await count(stores.database, "api_operations", where: "endpoint = $1", .text(endpoint)) == 0)
        #expect(try HTTPMethod.allCases.map(\.rawValue) == ["GET", "POST", "PUT", "PATCH", "DELETE"])
    }

    @Test("steps 2 and 3 record the outcome and fold it into the day's statistics", arguments: Backend.allCases)
    func complete(backend: Backend) async throws {
        let clock = ManualClock()
        let stores = try await TestEnvironment.stores(backend, clock: clock.wallClock)
        let endpoint = "https://api.example.com/\(unique("stats"))"
        let first = try await stores.apiOperations.log(APIOperationRequest(operationType: .GET, endpoint: endpoint))
        let done = try await stores.apiOperations.complete(
            first.id, APIOperationOutcome(statusCode: 200, responseData: ["ok": true], executionTime: 120))
        #expect(done.status == .completed)
        #expect(done.statusCode == 200)
        #expect(done.responseData == ["ok": true])
        #expect(done.executionTime == 120)
        #expect(done.completedAt == clock.wallClock.now())
        await expectHubError({ $0.isConflict }) {
            _ = try await stores.apiOperations.complete(first.id, APIOperationOutcome(statusCode: 200, executionTime: 1))
        }
        let second = try await stores.apiOperations.log(APIOperationRequest(operationType: .GET, endpoint: endpoint))
        let failed = try await stores.apiOperations.complete(
            second.id, APIOperationOutcome(statusCode: nil, executionTime: 30_000, errorMessage: "timed out after 30 s"))
        #expect(failed.status == .failed)
        #expect(failed.errorMessage == "timed out after 30 s")
        let third = try await stores.apiOperations.log(APIOperationRequest(operationType: .GET, endpoint: endpoint))
        _ = try await stores.apiOperations.complete(third.id, APIOperationOutcome(statusCode: 404, executionTime: 30))

        let stats = try await stores.apiOperations.statistics(APIStatisticsQuery(endpoint: endpoint))
        #expect(stats.count == 1)
        let row = try #require(stats.first)
        #expect(row.day == UTCDay.of(clock.wallClock.now()))
        #expect(row.callCount == 3)
        #expect(row.errorCount == 2)
        #expect(row.totalExecutionTime == 30_150)
        #expect(row.minExecutionTime == 30)
        #expect(row.maxExecutionTime == 30_000)
        #expect(row.averageExecutionTime == 10_050)
        #expect(row.lastStatusCode == 404)

        // The next UTC day gets its own row.
        clock.advance(by: 86_400)
        let next = try await stores.apiOperations.log(APIOperationRequest(operationType: .GET, endpoint: endpoint))
        _ = try await stores.apiOperations.complete(next.id, APIOperationOutcome(statusCode: 204, executionTime: 7))
        let days = try await stores.apiOperations.statistics(APIStatisticsQuery(endpoint: endpoint, operationType: .GET))
        #expect(days.map(\.callCount) == [3, 1])
        let onlyLast = try await stores.apiOperations.statistics(
            APIStatisticsQuery(endpoint: endpoint, fromDay: UTCDay.of(clock.wallClock.now())))
        #expect(onlyLast.map(\.callCount) == [1])
        await expectValidation("execution_time") {
            _ = try await stores.apiOperations.complete(next.id, APIOperationOutcome(statusCode: 200, executionTime: -1))
        }
        await expectValidation("from") { _ = try await stores.apiOperations.statistics(APIStatisticsQuery(fromDay: "2026-13-01")) }
        await expectHubError({ $0.isNotFound }) {
            _ = try await stores.apiOperations.complete(.generate(), APIOperationOutcome(statusCode: 200, executionTime: 1))
        }
    }

    @Test("8 concurrent writers folding 1,000 operations give exact counts and sums", arguments: Backend.allCases)
    func concurrentStatistics(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let endpoint = "https://api.example.com/\(unique("concurrent"))"
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    for index in 0..<125 {
                        let operation = try await stores.apiOperations.log(APIOperationRequest(operationType: .PUT, endpoint: endpoint))
                        let time = Int64(writer * 125 + index + 1)
                        _ = try await stores.apiOperations.complete(
                            operation.id, APIOperationOutcome(statusCode: time % 10 == 0 ? 500 : 200, executionTime: time))
                    }
                }
            }
            try await group.waitForAll()
        }
        let row = try #require(try await stores.apiOperations.statistics(APIStatisticsQuery(endpoint: endpoint)).first)
        #expect(row.callCount == 1000)
        #expect(row.totalExecutionTime == 500_500)
        #expect(row.errorCount == 100)
        #expect(row.minExecutionTime == 1)
        #expect(row.maxExecutionTime == 1000)
        #expect(row.averageExecutionTime == 500.5)
    }

    @Test("list filters by integration and status, newest first", arguments: Backend.allCases)
    func list(backend: Backend) async throws {
        let clock = ManualClock()
        let stores = try await TestEnvironment.stores(backend, clock: clock.wallClock)
        let integration = try await stores.integrations.register(IntegrationContractTests.registration())
        var ids: [OperationID] = []
        for index in 0..<4 {
            let operation = try await stores.apiOperations.log(
                APIOperationRequest(operationType: .GET, endpoint: "/users/\(index)", integrationID: integration.id))
            ids.append(operation.id)
            clock.advance(by: 1)
        }
        _ = try await stores.apiOperations.complete(ids[0], APIOperationOutcome(statusCode: 200, executionTime: 5))
        let all = try await stores.apiOperations.list(APIOperationFilter(integrationID: integration.id), PageRequest(limit: 3))
        #expect(all.items.map(\.id) == [ids[3], ids[2], ids[1]])
        let rest = try await stores.apiOperations.list(APIOperationFilter(integrationID: integration.id), PageRequest(limit: 3, cursor: all.nextCursor))
        #expect(rest.items.map(\.id) == [ids[0]])
        let completed = try await stores.apiOperations.list(
            APIOperationFilter(integrationID: integration.id, status: .completed), PageRequest())
        #expect(completed.items.map(\.id) == [ids[0]])
    }
}

/// Retention of raw operations and daily statistics, on both backends. Dates are in 2001 so that pruning can never
/// touch rows of the other tests sharing the PostgreSQL database.
@Suite("API operation retention", .timeLimit(.minutes(2)))
struct RetentionTests {
    @Test("operations older than 30 days and statistics older than 400 days are pruned, the rest kept", arguments: Backend.allCases)
    func prune(backend: Backend) async throws {
        let clock = ManualClock(Date(timeIntervalSince1970: 1_000_000_000))  // 2001-09-09
        let stores = try await TestEnvironment.stores(backend, clock: clock.wallClock)
        let endpoint = "https://api.example.com/\(unique("retention"))"
        func call() async throws -> OperationID {
            let operation = try await stores.apiOperations.log(APIOperationRequest(operationType: .GET, endpoint: endpoint))
            _ = try await stores.apiOperations.complete(operation.id, APIOperationOutcome(statusCode: 200, executionTime: 3))
            return operation.id
        }
        let old = try await call()
        clock.advance(by: 20 * 86_400)
        let recent = try await call()
        clock.advance(by: 15 * 86_400)  // old is 35 days old, recent 15
        var logger = Logger(label: "test.retention")
        logger.logLevel = .critical
        let service = try RetentionService(
            operations: stores.apiOperations, operationDays: 30, statisticsDays: 30, clock: clock.wallClock, logger: logger)
        let pruned = try await service.pruneOnce()
        #expect(pruned.operations >= 1)
        await expectHubError({ $0.isNotFound }) { _ = try await stores.apiOperations.get(old) }
        #expect(try await stores.apiOperations.get(recent).id == recent)
        let days = try await stores.apiOperations.statistics(APIStatisticsQuery(endpoint: endpoint)).map(\.day)
        #expect(days == [UTCDay.of(Date(timeIntervalSince1970: 1_000_000_000 + 20 * 86_400))])
        #expect(try await service.pruneOnce().operations == 0)
        #expect(throws: HubError.self) {
            try RetentionService(operations: stores.apiOperations, operationDays: 0, logger: logger)
        }
    }
}
