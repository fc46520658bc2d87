import Foundation
import HubCore

/// The SQL dialects the stores speak. Statements are written once with `$n` placeholders; where the dialects
/// differ (types in migrations, data-modifying CTEs), the store picks the text by dialect.
public enum SQLDialect: Sendable, Hashable {
    case postgres
    case sqlite
}

/// A value bound to, or read from, a statement. Each backend maps it onto its own wire types.
public enum SQLValue: Sendable, Hashable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case uuid(UUID)
    /// A point in time with microsecond precision (PostgreSQL `timestamptz`; SQLite integer microseconds).
    case timestamp(Date)
    /// JSON text (PostgreSQL `jsonb`; SQLite text).
    case json(String)
    /// A list of strings (PostgreSQL `text[]`; SQLite JSON text).
    case textArray([String])

    /// Binds an optional value, `null` when absent.
    public static func optional<T>(_ value: T?, _ wrap: (T) -> SQLValue) -> SQLValue {
        value.map(wrap) ?? .null
    }

    /// Microseconds since 1970 of a timestamp, the exact integer both backends store.
    public static func microseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }

    /// The date of `microseconds` since 1970.
    public static func date(microseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(microseconds) / 1_000_000)
    }
}

/// One result row, read by column name. Accessors convert between the backends' representations (a UUID is
/// text in SQLite, a timestamp an integer) and throw ``SQLError/decoding(column:)`` on a type mismatch.
public struct SQLRow: Sendable {
    public let values: [String: SQLValue]

    public init(values: [String: SQLValue]) { self.values = values }

    private func value(_ column: String) -> SQLValue { values[column] ?? .null }

    public func isNull(_ column: String) -> Bool { value(column) == .null }

    public func uuid(_ column: String) throws -> UUID {
        switch value(column) {
        case .uuid(let uuid): return uuid
        case .text(let text): if let uuid = UUID(uuidString: text) { return uuid }
        default: break
        }
        throw SQLError.decoding(column: column)
    }

    public func optionalUUID(_ column: String) throws -> UUID? {
        isNull(column) ? nil : try uuid(column)
    }

    public func string(_ column: String) throws -> String {
        guard case .text(let text) = value(column) else { throw SQLError.decoding(column: column) }
        return text
    }

    public func optionalString(_ column: String) throws -> String? {
        isNull(column) ? nil : try string(column)
    }

    public func int(_ column: String) throws -> Int64 {
        switch value(column) {
        case .int(let value): return value
        case .double(let value) where value.rounded() == value: return Int64(value)
        default: throw SQLError.decoding(column: column)
        }
    }

    public func optionalInt(_ column: String) throws -> Int64? {
        isNull(column) ? nil : try int(column)
    }

    public func double(_ column: String) throws -> Double {
        switch value(column) {
        case .double(let value): return value
        case .int(let value): return Double(value)
        default: throw SQLError.decoding(column: column)
        }
    }

    public func optionalDouble(_ column: String) throws -> Double? {
        isNull(column) ? nil : try double(column)
    }

    public func date(_ column: String) throws -> Date {
        switch value(column) {
        case .timestamp(let date): return date
        case .int(let microseconds): return SQLValue.date(microseconds: microseconds)
        default: throw SQLError.decoding(column: column)
        }
    }

    public func optionalDate(_ column: String) throws -> Date? {
        isNull(column) ? nil : try date(column)
    }

    /// The column's JSON text (PostgreSQL jsonb, SQLite text).
    public func jsonText(_ column: String) throws -> String {
        switch value(column) {
        case .json(let text), .text(let text): return text
        default: throw SQLError.decoding(column: column)
        }
    }

    public func json(_ column: String) throws -> JSONValue {
        do {
            return try JSONDecoder().decode(JSONValue.self, from: Data(try jsonText(column).utf8))
        } catch {
            throw SQLError.decoding(column: column)
        }
    }

    public func optionalJSON(_ column: String) throws -> JSONValue? {
        isNull(column) ? nil : try json(column)
    }

    public func stringArray(_ column: String) throws -> [String] {
        switch value(column) {
        case .textArray(let elements): return elements
        case .text(let text), .json(let text):
            guard let elements = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else {
                throw SQLError.decoding(column: column)
            }
            return elements
        default: throw SQLError.decoding(column: column)
        }
    }
}

/// Driver failures as the stores see them. No case carries driver text or bound values.
public enum SQLError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A unique constraint was violated; `constraint` names it where the driver says (PostgreSQL).
    case uniqueViolation(constraint: String?)
    /// A foreign key was violated.
    case foreignKeyViolation(constraint: String?)
    /// A check constraint was violated.
    case checkViolation(constraint: String?)
    /// The database is unreachable, shutting down, or asked to retry (serialization failure, deadlock, busy).
    case unavailable
    /// A column had an unexpected type.
    case decoding(column: String)
    /// Any other database error; `code` is the SQLSTATE (PostgreSQL) or result code name (SQLite).
    case other(code: String)

    public var description: String {
        switch self {
        case .uniqueViolation(let name): "unique constraint violated (\(name ?? "unnamed"))"
        case .foreignKeyViolation(let name): "foreign key violated (\(name ?? "unnamed"))"
        case .checkViolation(let name): "check constraint violated (\(name ?? "unnamed"))"
        case .unavailable: "database unavailable"
        case .decoding(let column): "unexpected type in column \(column)"
        case .other(let code): "database error \(code)"
        }
    }
}

/// Runs statements. Placeholders are written `$1`, `$2`, …; values are always bound, never spliced.
public protocol SQLExecutor: Sendable {
    /// Runs one statement and returns its rows. - Throws: ``SQLError``.
    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow]
}

/// A database: an executor that also runs transactions and names its dialect. Implementations must be safe to
/// use from many tasks at once.
public protocol SQLDatabase: SQLExecutor {
    var dialect: SQLDialect { get }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws. Statements of the
    /// transaction go through the executor passed to `body`, never through `self`.
    func transaction<T: Sendable>(_ body: (any SQLExecutor) async throws -> T) async throws -> T
}

extension SQLDatabase {
    /// Checks that the database answers `SELECT 1` within `timeout`.
    /// - Throws: ``SQLError/unavailable`` when it does not (a pool that keeps retrying a refused connection would
    ///   otherwise make the caller wait for minutes).
    public func ping(timeout: Duration = .seconds(5)) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                _ = try await self.query("SELECT 1 AS one", [])
                return true
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return false
            }
            defer { group.cancelAll() }
            guard let answered = try await group.next(), answered else { throw SQLError.unavailable }
        }
    }
}

extension SQLExecutor {
    /// Runs a statement that returns at most one row.
    public func queryOne(_ sql: String, _ binds: [SQLValue]) async throws -> SQLRow? {
        try await query(sql, binds).first
    }
}
