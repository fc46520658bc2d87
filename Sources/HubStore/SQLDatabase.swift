import Foundation
import HubCore

/// The SQL dialects the stores speak. Statements are written once with `$n` placeholders; where the dialects
/// differ (types in migrations, data-modifying CTEs), the store picks the text by dialect.
public enum SQLDialect: Sendable, Hashable {
    /// PostgreSQL: `uuid`, `timestamptz`, `jsonb` and `text[]` columns.
    case postgres
    /// SQLite: UUIDs as text, timestamps as integer microseconds, JSON as text.
    case sqlite
}

extension SQLDialect {
    /// The condition that `expression` is one of the strings bound as the text-array parameter `parameter` (`$n`),
    /// compared as `type`: one statement however many values. PostgreSQL: `expression = ANY($n::text[]::type[])`;
    /// SQLite, where a text array is bound as JSON text: `expression IN (SELECT value FROM json_each($n))`.
    func isIn(_ expression: String, textArray parameter: String, as type: String) -> String {
        switch self {
        case .postgres: "\(expression) = ANY(\(parameter)::text[]::\(type)[])"
        case .sqlite: "\(expression) IN (SELECT value FROM json_each(\(parameter)))"
        }
    }
}

/// A value bound to, or read from, a statement. Each backend maps it onto its own wire types.
public enum SQLValue: Sendable, Hashable {
    /// SQL NULL.
    case null
    /// A 64-bit integer.
    case int(Int64)
    /// A double-precision number.
    case double(Double)
    /// Text.
    case text(String)
    /// A UUID (PostgreSQL `uuid`; SQLite lower-case text).
    case uuid(UUID)
    /// A point in time with microsecond precision (PostgreSQL `timestamptz`; SQLite integer microseconds).
    case timestamp(Date)
    /// JSON text (PostgreSQL `jsonb`; SQLite text).
    case json(String)
    /// A list of strings (PostgreSQL `text[]`; SQLite JSON text).
    case textArray([String])
    /// A truth value (PostgreSQL `boolean`; SQLite integer 0 or 1).
    case bool(Bool)

    /// Binds an optional value, `null` when absent.
    public static func optional<T>(_ value: T?, _ wrap: (T) -> SQLValue) -> SQLValue {
        value.map(wrap) ?? .null
    }

    /// Microseconds since 1970 of a timestamp, the exact integer both backends store.
    /// Clamped to Int64's range (a date from outside, such as one far beyond year 9999, never traps here).
    public static func microseconds(_ date: Date) -> Int64 {
        let value = (date.timeIntervalSince1970 * 1_000_000).rounded()
        guard value.isFinite else { return 0 }
        if value >= 9_223_372_036_854_775_807 { return .max }
        if value <= -9_223_372_036_854_775_808 { return .min }
        return Int64(value)
    }

    /// The date of `microseconds` since 1970.
    public static func date(microseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(microseconds) / 1_000_000)
    }
}

/// One result row, read by column name. Accessors convert between the backends' representations (a UUID is
/// text in SQLite, a timestamp an integer) and throw ``SQLError/decoding(column:)`` on a type mismatch.
public struct SQLRow: Sendable {
    /// The row's values by column name.
    public let values: [String: SQLValue]

    /// Creates a row with every value given.
    public init(values: [String: SQLValue]) { self.values = values }

    private func value(_ column: String) -> SQLValue { values[column] ?? .null }

    /// Whether the column is NULL or absent from the row.
    public func isNull(_ column: String) -> Bool { value(column) == .null }

    /// The column as a UUID (PostgreSQL `uuid` or text). - Throws: `decoding` otherwise, NULL included.
    public func uuid(_ column: String) throws -> UUID {
        switch value(column) {
        case .uuid(let uuid): return uuid
        case .text(let text): if let uuid = UUID(uuidString: text) { return uuid }
        default: break
        }
        throw SQLError.decoding(column: column)
    }

    /// The column as a UUID, `nil` when NULL. - Throws: `decoding` otherwise.
    public func optionalUUID(_ column: String) throws -> UUID? {
        isNull(column) ? nil : try uuid(column)
    }

    /// The column as text. - Throws: `decoding` otherwise, NULL included.
    public func string(_ column: String) throws -> String {
        guard case .text(let text) = value(column) else { throw SQLError.decoding(column: column) }
        return text
    }

    /// The column as text, `nil` when NULL. - Throws: `decoding` otherwise.
    public func optionalString(_ column: String) throws -> String? {
        isNull(column) ? nil : try string(column)
    }

    /// The column as an integer (an integral double is accepted). - Throws: `decoding` otherwise.
    public func int(_ column: String) throws -> Int64 {
        switch value(column) {
        case .int(let value): return value
        case .double(let value) where value.rounded() == value:
            guard let integer = Int64(exactly: value) else { throw SQLError.decoding(column: column) }
            return integer
        default: throw SQLError.decoding(column: column)
        }
    }

    /// The column as an integer, `nil` when NULL. - Throws: `decoding` otherwise.
    public func optionalInt(_ column: String) throws -> Int64? {
        isNull(column) ? nil : try int(column)
    }

    /// The column as a double (an integer is converted). - Throws: `decoding` otherwise.
    /// The column as a truth value (PostgreSQL boolean, SQLite 0/1). - Throws: ``SQLError/decoding(column:)``.
    public func bool(_ column: String) throws -> Bool {
        switch value(column) {
        case .bool(let value): return value
        case .int(let value): return value != 0
        default: throw SQLError.decoding(column: column)
        }
    }

    public func double(_ column: String) throws -> Double {
        switch value(column) {
        case .double(let value): return value
        case .int(let value): return Double(value)
        default: throw SQLError.decoding(column: column)
        }
    }

    /// The column as a double, `nil` when NULL. - Throws: `decoding` otherwise.
    public func optionalDouble(_ column: String) throws -> Double? {
        isNull(column) ? nil : try double(column)
    }

    /// The column as a date: a PostgreSQL timestamp or SQLite integer microseconds since 1970 (UTC).
    /// - Throws: `decoding` otherwise, NULL included.
    public func date(_ column: String) throws -> Date {
        switch value(column) {
        case .timestamp(let date): return date
        case .int(let microseconds): return SQLValue.date(microseconds: microseconds)
        default: throw SQLError.decoding(column: column)
        }
    }

    /// The column as a date, `nil` when NULL. - Throws: `decoding` otherwise.
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

    /// The column's JSON text parsed. - Throws: `decoding` when it is not JSON text.
    public func json(_ column: String) throws -> JSONValue {
        guard let value = JSONValue.parse(bytes: try jsonText(column).utf8) else { throw SQLError.decoding(column: column) }
        return value
    }

    /// The column's JSON parsed, `nil` when NULL. - Throws: `decoding` otherwise.
    public func optionalJSON(_ column: String) throws -> JSONValue? {
        isNull(column) ? nil : try json(column)
    }

    /// The column as strings: PostgreSQL `text[]` or a JSON array of strings (SQLite).
    /// - Throws: `decoding` otherwise.
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
    /// A value has characters the database cannot store (PostgreSQL: NUL in text or JSON).
    case invalidText
    /// A column had an unexpected type.
    case decoding(column: String)
    /// Any other database error; `code` is the SQLSTATE (PostgreSQL) or result code name (SQLite).
    case other(code: String)

    /// A short message naming the constraint, column or code; never driver text.
    public var description: String {
        switch self {
        case .uniqueViolation(let name): "unique constraint violated (\(name ?? "unnamed"))"
        case .foreignKeyViolation(let name): "foreign key violated (\(name ?? "unnamed"))"
        case .checkViolation(let name): "check constraint violated (\(name ?? "unnamed"))"
        case .unavailable: "database unavailable"
        case .invalidText: "a value contains characters the database cannot store"
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
    /// The dialect the stores write statements in.
    var dialect: SQLDialect { get }

    /// Runs `statement`, which the hub runs often and whose parsing and planning cost shows: a backend may prepare it
    /// once per connection. The default runs its text with ``query(_:_:)``.
    func queryPrepared<Statement: PreparedSQL>(_ statement: Statement.Type, _ binds: [SQLValue]) async throws -> [SQLRow]

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws. Statements of the
    /// transaction go through the executor passed to `body`, never through `self`.
    func transaction<T: Sendable>(_ body: (any SQLExecutor) async throws -> T) async throws -> T
}

/// A constant statement with a name of its own, for ``SQLDatabase/queryPrepared(_:_:)``. Every parameter's type must
/// be fixed by the text (a cast where the context does not fix it), since a statement prepared with a null
/// parameter keeps the type the server inferred for it.
public protocol PreparedSQL {
    /// A name unique among the hub's prepared statements.
    static var name: String { get }
    static var sql: String { get }
}

extension SQLDatabase {
    public func queryPrepared<Statement: PreparedSQL>(_ statement: Statement.Type, _ binds: [SQLValue]) async throws -> [SQLRow] {
        try await query(Statement.sql, binds)
    }

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

/// A flag that is set once and read from any thread (a deinit included); the backends use it for "closed" and
/// "started".
public final class OnceFlag: @unchecked Sendable {
    private let mutex = NSLock()
    private var value = false

    /// A flag that is not set.
    public init() {}

    /// Whether the flag is set.
    public var isSet: Bool { mutex.withLock { value } }

    /// Sets the flag; returns whether this call set it.
    @discardableResult
    public func setOnce() -> Bool {
        mutex.withLock {
            defer { value = true }
            return !value
        }
    }
}
