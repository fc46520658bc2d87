import Foundation
import HubCore
import HubPostgres
import HubSQLite
import HubStore
import Hummingbird
import Logging

/// `swift run -c release hub-bench [sqlite|postgres|all]`: DAO throughput and latency on both backends.
///
/// PostgreSQL comes from `HUB_BENCH_DATABASE_URL` (or `HUB_TEST_DATABASE_URL`, as `scripts/postgres.sh` prints);
/// SQLite is a new file in a temporary directory. Each scenario is bounded in count and stops by itself.
@main
struct HubBench {
    static func main() async throws {
        let which = CommandLine.arguments.dropFirst().first ?? "all"
        let sealer = try SecretSealer(keyRing: "1:\(SecretSealer.generateKey())")
        print("hub-bench on \(ProcessInfo.processInfo.activeProcessorCount) cores")
        if which == "sync" {
            // `hub-bench sync [COUNT…]`: the sync ingest path on SQLite and PostgreSQL (default 50,000 then 200,000).
            let counts = CommandLine.arguments.dropFirst(2).compactMap { Int($0) }
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("hub-bench-\(UUID().uuidString).sqlite").path
            defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
            let sqlite = try await SQLiteDatabase.open(path: path)
            let environment = ProcessInfo.processInfo.environment
            let url = environment["HUB_BENCH_DATABASE_URL"] ?? environment["HUB_TEST_DATABASE_URL"]
            let sizes = counts.isEmpty ? [50_000, 200_000] : counts
            if let url {
                // `HUB_BENCH_SYNC_BACKENDS=postgres` (or `sqlite`) runs one backend only.
                let backends = environment["HUB_BENCH_SYNC_BACKENDS"] ?? "sqlite,postgres"
                try await withOwnDatabase(url: url) { postgres, ownURL in
                    let databases: [(String, any SQLDatabase)] = [("sqlite (file, WAL)", sqlite), ("postgres", postgres)]
                    try await SyncBench.run(
                        counts: sizes, databases: databases.filter { backends.contains($0.0.prefix(6)) }, postgresURL: ownURL)
                }
            } else {
                try await SyncBench.run(counts: sizes, databases: [("sqlite (file, WAL)", sqlite)], postgresURL: nil)
            }
            try await sqlite.close()
            return
        }
        if which == "webhooks" {
            // `hub-bench webhooks [EVENTS]`: webhook delivery on PostgreSQL (default 20,000 deliveries per scenario).
            let environment = ProcessInfo.processInfo.environment
            guard let url = environment["HUB_BENCH_DATABASE_URL"] ?? environment["HUB_TEST_DATABASE_URL"] else {
                print("webhooks: set HUB_BENCH_DATABASE_URL (scripts/postgres.sh prints one)")
                return
            }
            let total = CommandLine.arguments.dropFirst(2).compactMap { Int($0) }.first ?? 20_000
            try await withOwnDatabase(url: url) { postgres, _ in
                try await WebhookBench.run(database: postgres, sealer: sealer, total: total)
            }
            return
        }
        if which == "monitor" {
            // `hub-bench monitor [CONNECTIONS] [SECONDS]`: the connectivity monitor on PostgreSQL (default 50,000 for 330 s).
            let environment = ProcessInfo.processInfo.environment
            guard let url = environment["HUB_BENCH_DATABASE_URL"] ?? environment["HUB_TEST_DATABASE_URL"] else {
                print("monitor: set HUB_BENCH_DATABASE_URL (scripts/postgres.sh prints one)")
                return
            }
            let numbers = CommandLine.arguments.dropFirst(2).compactMap { Int($0) }
            let count = numbers.first ?? 50_000
            let seconds = numbers.dropFirst().first ?? 330
            try await withOwnDatabase(url: url) { postgres, _ in
                try await MonitorBench.run(database: postgres, sealer: sealer, count: count, seconds: seconds)
            }
            return
        }
        if which == "all" || which == "sqlite" {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("hub-bench-\(UUID().uuidString).sqlite").path
            defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
            let database = try await SQLiteDatabase.open(path: path)
            try await run(backend: "sqlite (file, WAL)", database: database, sealer: sealer)
            try await database.close()
        }
        if which == "all" || which == "postgres" {
            let environment = ProcessInfo.processInfo.environment
            guard let url = environment["HUB_BENCH_DATABASE_URL"] ?? environment["HUB_TEST_DATABASE_URL"] else {
                print("postgres: set HUB_BENCH_DATABASE_URL (scripts/postgres.sh prints one)")
                return
            }
            let database = try PostgresDatabase(url: url)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await database.run() }
                try await run(backend: "postgres", database: database, sealer: sealer)
                group.cancelAll()
            }
        }
    }

    /// With `HUB_BENCH_MONOTONIC` set, prints the window of a phase that just ended, `seconds` long, on the monotonic
    /// clock, for `perf record -k CLOCK_MONOTONIC …` and then `perf report --time START,END` on that phase alone.
    static func printWindow(_ phase: String, seconds: Double) {
        guard ProcessInfo.processInfo.environment["HUB_BENCH_MONOTONIC"] != nil else { return }
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let end = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
        print(String(format: "%@ window (CLOCK_MONOTONIC): %.6f,%.6f", phase, end - seconds, end))
    }

    /// User and system time of this process (the hub's code and anything else the benchmark runs in it).
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
            + Double(usage.ru_stime.tv_usec) / 1e6
    }

    /// User and system time of every process named postgres, with the time of its children that ended (the
    /// postmaster's reaped backends and autovacuum workers), so that a process ending between two readings counts.
    static func postgresCPUSeconds() -> Double {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var total = 0.0
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where Int(entry) != nil {
            guard let comm = try? String(contentsOfFile: "/proc/\(entry)/comm", encoding: .utf8), comm.hasPrefix("postgres"),
                let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 14, let user = Double(fields[11]), let system = Double(fields[12]), let children = Double(fields[13]),
                let childrenSystem = Double(fields[14])
            {
                total += (user + system + children + childrenSystem) / ticks
            }
        }
        return total
    }

    /// Runs `router` on a free loopback port (its log quiet) while `body` runs; `body` gets the port.
    static func withLoopbackServer<T: Sendable>(_ router: Router<BasicRequestContext>, _ body: (Int) async throws -> T) async throws -> T {
        var quiet = Logger(label: "bench.loopback")
        quiet.logLevel = .critical
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let application = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: quiet)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await application.run()
                return nil
            }
            var iterator = ports.makeAsyncIterator()
            let result = try await body(await iterator.next() ?? 0)
            group.cancelAll()
            return result
        }
    }

    /// Runs `body` with a PostgreSQL database of the run's own, created on the server of `url` and dropped afterwards,
    /// so that every run starts empty; `body` gets the client (running) and the database's URL.
    static func withOwnDatabase(url: String, _ body: @escaping @Sendable (PostgresDatabase, String) async throws -> Void) async throws {
        let admin = try PostgresDatabase(url: url)
        let name = "hub_bench_\(UUID().uuidString.prefix(8).lowercased())"
        guard var components = URLComponents(string: url) else { throw HubError.validation(field: "url", reason: "is not a URL") }
        components.path = "/" + name
        let ownURL = components.string ?? url
        let postgres = try PostgresDatabase(url: ownURL)
        try await withThrowingTaskGroup(of: Void.self) { outer in
            outer.addTask { await admin.run() }
            _ = try await admin.query("CREATE DATABASE \(name)", [])
            var failure: (any Error)?
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { await postgres.run() }
                    try await body(postgres, ownURL)
                    group.cancelAll()
                }
            } catch {
                failure = error
            }
            // Our connections are closed; autovacuum may still be in the database for a moment.
            for attempt in 1...40 {
                do {
                    _ = try await admin.query("DROP DATABASE IF EXISTS \(name)", [])
                    break
                } catch where attempt < 40 {
                    try await Task.sleep(for: .milliseconds(250))
                }
            }
            outer.cancelAll()
            if let failure { throw failure }
        }
    }

    static func run(backend: String, database: any SQLDatabase, sealer: SecretSealer) async throws {
        try await Migrator(database: database).migrate()
        let hub = HubStores(database: database, sealer: sealer)
        print("\n## \(backend)")

        // API operations: log + complete (steps 1-3) from 8 concurrent writers into one statistics row.
        let endpoint = "https://bench.example.com/\(UUID().uuidString.prefix(8))"
        let operations = 4000
        let (opsSeconds, opsLatencies) = try await timed(total: operations, concurrency: 8) { _ in
            let operation = try await hub.apiOperations.log(APIOperationRequest(operationType: .GET, endpoint: endpoint))
            _ = try await hub.apiOperations.complete(operation.id, APIOperationOutcome(statusCode: 200, executionTime: 5))
        }
        report("api operation log+complete+statistics, 8 writers", operations, opsSeconds, opsLatencies)

        // Sync batches: step 2 for one job, 8 concurrent writers.
        let integration = try await hub.integrations.register(IntegrationRegistration(
            systemID: "bench-\(UUID().uuidString.prefix(8))", integrationType: "HR",
            endpointURL: "https://hr.example.com", authConfig: ["type": "bearer", "token": "t"]))
        let job = try await hub.syncJobs.start(SyncJobRequest(integrationID: integration.id, syncType: .full, entityType: "users"))
        let batches = 4000
        let (batchSeconds, batchLatencies) = try await timed(total: batches, concurrency: 8) { index in
            _ = try await hub.syncJobs.recordBatch(job.id, batchNumber: index + 1, recordsCount: 1000, status: .completed)
        }
        report("sync batch record (step 2), 8 writers", batches, batchSeconds, batchLatencies)

        // Connection checks: steps 2-4 on one connection; step 4 re-reads all of its checks, so cost grows.
        let connection = try await hub.connections.create(ConnectionRegistration(
            systemName: "bench-\(UUID().uuidString.prefix(8))", connectionType: .TCP, endpoint: "127.0.0.1:9", credentials: [:]))
        for size in [1000, 1000, 1000] {
            let (seconds, latencies) = try await timed(total: size, concurrency: 1) { index in
                _ = try await hub.connections.recordCheck(connection.id, status: index % 10 == 0 ? .down : .healthy, responseTime: 12)
            }
            report("connection check (steps 2-4), next \(size) checks", size, seconds, latencies)
        }
        try await GatewayBench.run(backend: backend, stores: hub)
    }

    /// Runs `body(index)` for indexes 0..<total from `concurrency` tasks; returns wall seconds and per-call latencies.
    static func timed(total: Int, concurrency: Int, _ body: @escaping @Sendable (Int) async throws -> Void) async throws
        -> (Double, [Double])
    {
        let start = ContinuousClock.now
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var mine: [Double] = []
                    var index = worker
                    while index < total {
                        let began = ContinuousClock.now
                        try await body(index)
                        mine.append((ContinuousClock.now - began).seconds * 1000)
                        index += concurrency
                    }
                    return mine
                }
            }
            return try await group.reduce(into: [Double]()) { $0 += $1 }
        }
        return ((ContinuousClock.now - start).seconds, latencies.sorted())
    }

    static func report(_ name: String, _ count: Int, _ seconds: Double, _ latencies: [Double]) {
        func percentile(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        print(String(format: "%@: %d calls in %.2f s = %.0f/s; latency p50 %.2f ms, p99 %.2f ms",
                     name, count, seconds, Double(count) / seconds, percentile(0.5), percentile(0.99)))
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

