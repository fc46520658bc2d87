import Foundation
import HubCore
import HubEngine
import HubStore
import Logging
import Testing

/// DAO-MDE-03-08-03 contract, on both backends.
@Suite("API Operation DAO", .timeLimit(.minutes(10)))
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

    @Test("8 concurrent writers folding 1,000 operations give exact counts and sums", arguments: Backend.allCases, Recording.allCases)
    func concurrentStatistics(backend: Backend, recording: Recording) async throws {
        let stores = try recording.apply(to: try await TestEnvironment.stores(backend))
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

    @Test("list filters by integration and status, newest first", arguments: Backend.allCases, Recording.allCases)
    func list(backend: Backend, recording: Recording) async throws {
        let clock = ManualClock()
        let stores = try recording.apply(to: try await TestEnvironment.stores(backend, clock: clock.wallClock), clock: clock.wallClock)
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
        // A time range: logged at or after the second call, before the fourth.
        let second = try await stores.apiOperations.get(ids[1]).createdAt
        let fourth = try await stores.apiOperations.get(ids[3]).createdAt
        let window = try await stores.apiOperations.list(
            APIOperationFilter(integrationID: integration.id, createdFrom: second, createdBefore: fourth), PageRequest())
        #expect(window.items.map(\.id) == [ids[2], ids[1]])
        // Configured header names are redacted too.
        let strict = HubStores(database: stores.database, sealer: TestEnvironment.sealer, redactedHeaders: ["X-Partner-Secret"])
        let redacted = try await strict.apiOperations.log(APIOperationRequest(
            operationType: .GET, endpoint: "/x", headers: ["x-partner-secret": "p-1", "X-Trace": "t"], integrationID: integration.id))
        #expect(redacted.headers == ["x-partner-secret": "[REDACTED]", "X-Trace": "t"])
    }
}

/// Retention of raw operations and daily statistics, on both backends. Dates are in 2001 so that pruning can never
/// touch rows of the other tests sharing the PostgreSQL database.
@Suite("API operation retention", .timeLimit(.minutes(10)))
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

/// Statistics as an analytics user expects them, on both backends.
@Suite("API statistics: templates, error classes, percentiles", .timeLimit(.minutes(10)))
struct StatisticsTests {
    @Test("endpoint templates fold ids together; the query is dropped")
    func templates() {
        #expect(APIOperation.template(for: "https://api.example.com/v1/users/42/groups/7?page=2") == "https://api.example.com/v1/users/{id}/groups/{id}")
        #expect(APIOperation.template(for: "/users/0a1b2c3d-0000-4000-8000-123456789abc") == "/users/{id}")
        #expect(APIOperation.template(for: "/files/deadbeef01/meta") == "/files/{id}/meta")
        #expect(APIOperation.template(for: "/tokens/aB3dE5gH7jK9mN1p") == "/tokens/{id}")
        #expect(APIOperation.template(for: "/v2/employees/search") == "/v2/employees/search")
    }

    @Test("rows per (integration, template, method, day) with error classes and histogram percentiles that match the raw calls",
          arguments: Backend.allCases, Recording.allCases)
    func percentiles(backend: Backend, recording: Recording) async throws {
        let stores = try recording.apply(to: try await TestEnvironment.stores(backend))
        let host = "https://\(unique("stats")).example.com"
        let integration = try await stores.integrations.register(IntegrationContractTests.registration())
        var latencies: [Int64] = []
        for index in 1...200 {
            let time = Int64((index * 37) % 1200 + 1)  // spread over 1…1200 ms
            latencies.append(time)
            let operation = try await stores.apiOperations.log(APIOperationRequest(operationType: .GET, endpoint: "\(host)/users/\(index)"))
            let outcome: APIOperationOutcome = switch index % 10 {
            case 0: APIOperationOutcome(statusCode: 404, executionTime: time)
            case 1: APIOperationOutcome(statusCode: 503, executionTime: time)
            case 2: APIOperationOutcome(statusCode: nil, executionTime: time, errorMessage: "timed out", timedOut: true)
            case 3: APIOperationOutcome(statusCode: nil, executionTime: time, errorMessage: "the connection failed")
            default: APIOperationOutcome(statusCode: 200, executionTime: time)
            }
            _ = try await stores.apiOperations.complete(operation.id, outcome)
        }
        let other = try await stores.apiOperations.log(APIOperationRequest(operationType: .GET, endpoint: "\(host)/users/1", integrationID: integration.id))
        _ = try await stores.apiOperations.complete(other.id, APIOperationOutcome(statusCode: 200, executionTime: 5))

        let rows = try await stores.apiOperations.statistics(APIStatisticsQuery(endpoint: "\(host)/users/{id}"))
        #expect(rows.count == 2)
        let row = try #require(rows.first { $0.integrationID == nil })
        #expect(row.endpoint == "\(host)/users/{id}")
        #expect(row.callCount == 200)
        #expect((row.errors4xx, row.errors5xx, row.errorsTimeout, row.errorsConnection) == (20, 20, 20, 20))
        #expect(row.errorCount == 80)
        #expect(row.totalExecutionTime == latencies.reduce(0, +))
        #expect(row.latencyHistogram.reduce(0, +) == 200)
        // Each estimate lies in the same histogram bucket as the true percentile of the raw latencies.
        let sorted = latencies.sorted()
        for p in [0.5, 0.95, 0.99] {
            let truth = sorted[Int((p * Double(sorted.count)).rounded(.up)) - 1]
            let estimate = try #require(row.percentile(p))
            let bucket = LatencyHistogram.bucket(for: truth)
            let lower = bucket == 0 ? 0 : Double(LatencyHistogram.bounds[bucket - 1])
            let upper = bucket < LatencyHistogram.bounds.count ? Double(LatencyHistogram.bounds[bucket]) : Double(row.maxExecutionTime)
            #expect(estimate >= lower && estimate <= upper, "p\(Int(p * 100)): \(estimate) outside (\(lower), \(upper)] of the true \(truth)")
        }
        let byIntegration = try await stores.apiOperations.statistics(APIStatisticsQuery(integrationID: integration.id))
        #expect(byIntegration.map(\.callCount) == [1])
    }

    @Test("merging days adds counts and histograms", arguments: Backend.allCases)
    func merge(backend: Backend) async throws {
        let clock = ManualClock()
        let stores = try await TestEnvironment.stores(backend, clock: clock.wallClock)
        let endpoint = "https://\(unique("merge")).example.com/ping"
        for (day, time) in [(0, 3), (0, 700), (1, 40), (2, 9000)] {
            if day > 0 { clock.advance(by: 86_400) }
            let operation = try await stores.apiOperations.log(APIOperationRequest(operationType: .GET, endpoint: endpoint))
            _ = try await stores.apiOperations.complete(operation.id, APIOperationOutcome(statusCode: 200, executionTime: Int64(time)))
        }
        let rows = try await stores.apiOperations.statistics(APIStatisticsQuery(endpoint: endpoint))
        #expect(rows.count == 3)
        let merged = try #require(APIStatistics.merged(rows).first)
        #expect(APIStatistics.merged(rows).count == 1)
        #expect(merged.callCount == 4)
        #expect(merged.minExecutionTime == 3)
        #expect(merged.maxExecutionTime == 9000)
        #expect(merged.latencyHistogram == zip(zip(rows[0].latencyHistogram, rows[1].latencyHistogram).map(+), rows[2].latencyHistogram).map(+))
        #expect(merged.day == "\(rows[0].day)..\(rows[2].day)")
    }
}
