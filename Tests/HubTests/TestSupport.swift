import Foundation
import HubCore
import HubPostgres
import HubSQLite
import HubStore
import Testing

/// The backends every contract test runs on.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres

    var testDescription: String { rawValue }
}

/// A clock the test moves by hand.
final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date

    init(_ start: Date = Date(timeIntervalSince1970: 1_790_000_000)) { current = start }

    var wallClock: WallClock { WallClock { [self] in lock.withLock { current } } }

    func advance(by seconds: TimeInterval) { lock.withLock { current += seconds } }
}

enum TestEnvironment {
    /// One sealing key ring for the whole test process.
    static let sealer = try! SecretSealer(keyRing: "1:\(SecretSealer.generateKey())")

    /// The URL exported by scripts/test.sh.
    static var postgresURL: String? { ProcessInfo.processInfo.environment["HUB_TEST_DATABASE_URL"] }

    /// One PostgreSQL client for the process, running in the background, migrated once.
    static let sharedPostgres: Task<PostgresDatabase, any Error> = Task {
        guard let url = postgresURL else {
            throw TestSetupError(
                "HUB_TEST_DATABASE_URL is not set: run the tests with scripts/test.sh, which starts PostgreSQL")
        }
        var configuration = try PostgresDatabase.configuration(url: url)
        configuration.options.maximumConnections = 40
        let database = PostgresDatabase(configuration: configuration)
        Task.detached { await database.run() }
        try await Migrator(database: database).migrate()
        return database
    }

    /// A migrated database of `backend`: a fresh in-memory SQLite, or the shared PostgreSQL.
    static func database(_ backend: Backend) async throws -> any SQLDatabase {
        switch backend {
        case .sqlite:
            let database = try await SQLiteDatabase.open(path: nil)
            try await Migrator(database: database).migrate()
            return database
        case .postgres:
            return try await sharedPostgres.value
        }
    }

    /// The five DAOs on `backend`.
    static func stores(_ backend: Backend, clock: WallClock = .system) async throws -> HubStores {
        HubStores(database: try await database(backend), sealer: sealer, clock: clock)
    }
}

/// How API operations are recorded: by the store itself, or write-behind through an ``OperationRecorder`` with a
/// journal (as `hub serve` does). Tests of steps 1-3 run both ways.
enum Recording: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case direct
    case writeBehind

    var testDescription: String { rawValue }

    /// `stores` with API operations recorded this way (a fresh journal directory for write-behind).
    func apply(to stores: HubStores, clock: WallClock = .system) throws -> HubStores {
        guard self == .writeBehind else { return stores }
        var stores = stores
        let journal = FileManager.default.temporaryDirectory.appendingPathComponent("hub-journal-\(UUID().uuidString)").path
        stores.apiOperations = try OperationRecorder(store: stores.apiOperations, journalDirectory: journal, clock: clock)
        return stores
    }
}

struct TestSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Expects `body` to throw `HubError.validation` for `field`.
func expectValidation(
    _ field: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async {
    do {
        try await body()
        Issue.record("expected a validation error for \(field), but the call succeeded", sourceLocation: sourceLocation)
    } catch let HubError.validation(actual, _) {
        #expect(actual == field, sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected a validation error for \(field), got \(error)", sourceLocation: sourceLocation)
    }
}

/// Expects `body` to throw exactly `expected`-shaped `HubError` (compared by case via `matches`).
func expectHubError(
    sourceLocation: SourceLocation = #_sourceLocation, _ matches: (HubError) -> Bool,
    _ body: () async throws -> Void
) async {
    do {
        try await body()
        Issue.record("expected an error, but the call succeeded", sourceLocation: sourceLocation)
    } catch let error as HubError {
        #expect(matches(error), "unexpected error \(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected a HubError, got \(error)", sourceLocation: sourceLocation)
    }
}

/// A unique suffix for names, so tests sharing the PostgreSQL database never collide.
func unique(_ prefix: String) -> String {
    "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
}

/// Counts rows of `table` matching `condition` (with `$1` bound to `value`), straight from the database.
func count(_ database: any SQLDatabase, _ table: String, where condition: String, _ value: SQLValue) async throws -> Int64 {
    try await database.queryOne("SELECT COUNT(*) AS n FROM \(table) WHERE \(condition)", [value])!.int("n")
}

extension HubError {
    var isNotFound: Bool { if case .notFound = self { true } else { false } }
    var isConflict: Bool { if case .conflict = self { true } else { false } }
    var isInvalidReference: Bool { if case .invalidReference = self { true } else { false } }
}

extension ManualClock {
    /// Moves the clock to `date` (never backwards).
    func set(to date: Date) {
        let now = wallClock.now()
        if date > now { advance(by: date.timeIntervalSince(now)) }
    }
}

/// A PostgreSQL database of a test's own on the test server: workers and dispatchers take every job or message of
/// their database, so tests that run them must not share one.
struct OwnPostgres: Sendable {
    let name: String
    let url: String

    static func create(_ prefix: String) async throws -> OwnPostgres {
        let shared = try #require(TestEnvironment.postgresURL)
        let name = "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
        _ = try await TestEnvironment.database(.postgres).query("CREATE DATABASE \(name)", [])
        return OwnPostgres(name: name, url: shared.replacingOccurrences(of: "/hub_test?", with: "/\(name)?"))
    }

    /// Drops it, closing what is still connected (retried while autovacuum or a closing client is still inside).
    func drop() async {
        for attempt in 1...40 {
            do {
                _ = try await TestEnvironment.database(.postgres).query("DROP DATABASE IF EXISTS \(name) WITH (FORCE)", [])
                return
            } catch {
                if attempt < 40 { try? await Task.sleep(for: .milliseconds(250)) }
            }
        }
    }
}

extension Process {
    /// Waits for the process to exit without blocking a thread: `waitUntilExit` holds one of the few threads that every
    /// test's async work shares (two on this machine) for as long as the process takes to stop.
    func exited() async {
        while isRunning { try? await Task.sleep(for: .milliseconds(20)) }
    }
}
