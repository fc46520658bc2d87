import Foundation
import HubCore
import HubPostgres
import HubSQLite
import HubStore
import Logging

/// Where the hub's database is: the one place that chooses a backend.
///
/// A `postgres://` or `postgresql://` URL selects PostgreSQL; an `sqlite://PATH` URL or a plain file path selects
/// SQLite at that path; nothing selects the embedded default, `<data dir>/hub.sqlite`.
enum DatabaseLocation: Equatable {
    case postgres(url: String)
    case sqlite(path: String)

    init(url: String?, dataDirectory: String) throws {
        guard let url, !url.isEmpty else {
            self = .sqlite(path: (dataDirectory as NSString).appendingPathComponent("hub.sqlite"))
            return
        }
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            self = .postgres(url: url)
        } else if url.hasPrefix("sqlite://") {
            let path = String(url.dropFirst("sqlite://".count))
            guard !path.isEmpty else { throw HubError.validation(field: "database_url", reason: "sqlite:// needs a file path") }
            self = .sqlite(path: path)
        } else if url.contains("://") {
            throw HubError.validation(field: "database_url", reason: "must be a postgres:// URL, an sqlite:// URL or a file path")
        } else {
            self = .sqlite(path: url)
        }
    }

    /// A description safe to print: the PostgreSQL password is never shown.
    var redacted: String {
        switch self {
        case .sqlite(let path): return "sqlite:\(path)"
        case .postgres(let url):
            guard var components = URLComponents(string: url) else { return "postgres" }
            if components.password != nil { components.password = "****" }
            return components.string ?? "postgres"
        }
    }

    /// Opens the database, runs `body` with it, and closes it (for PostgreSQL, the client runs for the duration).
    func withDatabase<T: Sendable>(logger: Logger, _ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        switch self {
        case .sqlite(let path):
            let database = try await SQLiteDatabase.open(path: path, logger: logger)
            do {
                let result = try await body(database)
                try await database.close()
                return result
            } catch {
                try? await database.close()
                throw error
            }
        case .postgres(let url):
            let database = try PostgresDatabase(url: url, logger: logger)
            return try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask {
                    await database.run()
                    return nil
                }
                do {
                    try await database.ping(timeout: .seconds(10))
                    let result = try await body(database)
                    group.cancelAll()
                    return result
                } catch {
                    group.cancelAll()
                    throw error
                }
            }
        }
    }
}
