import Foundation
import HubCore
import HubStore
import Logging
import NIOCore
import SQLiteNIO

/// Embedded SQLite behind ``SQLDatabase``: one connection, with statements and transactions serialised by an
/// async lock, so a transaction never interleaves with another caller's statements.
///
/// Files use WAL journaling and a busy timeout, so a second process (for example `hub migrate` beside a running
/// server) waits instead of failing. Foreign keys are enforced.
public final class SQLiteDatabase: SQLDatabase {
    private let connection: SQLiteConnection
    private let lock = SerialLock()
    private let closed = OnceFlag()

    /// Always ``SQLDialect/sqlite``.
    public var dialect: SQLDialect { .sqlite }

    private init(connection: SQLiteConnection) {
        self.connection = connection
    }

    /// Opens (creating if needed) the database file at `path`, or a private in-memory database when `path` is nil.
    /// - Throws: `unavailable` when the file cannot be opened.
    public static func open(path: String?, logger: Logger = Logger(label: "hub.sqlite")) async throws -> SQLiteDatabase {
        if let path {
            // The database, its WAL and its shared memory hold synced HR records and payloads: mode 0600 (SQLite gives the
            // WAL and shared-memory files the database file's mode), in directories of mode 0700 when created here.
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty { try PrivateFiles.directory(directory, own: false) }
            try PrivateFiles.file(path)
            for suffix in ["-wal", "-shm", "-journal"] { try PrivateFiles.restrictIfPresent(path + suffix) }
        }
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: path.map { .file(path: $0) } ?? .memory, logger: logger)
        } catch {
            throw HubError.unavailable(reason: "cannot open the SQLite database")
        }
        let database = SQLiteDatabase(connection: connection)
        if path != nil {
            _ = try await database.query("PRAGMA journal_mode = WAL", [])
            _ = try await database.query("PRAGMA synchronous = NORMAL", [])
        }
        _ = try await database.query("PRAGMA foreign_keys = ON", [])
        _ = try await database.query("PRAGMA busy_timeout = 10000", [])
        return database
    }

    deinit {
        // SQLiteNIO requires a closed connection at deinit, and closing twice crashes it: close only if nobody did.
        // The close keeps the connection alive until it is done.
        if !closed.isSet { _ = connection.close() }
    }

    /// Closes the connection; no call may follow.
    public func close() async throws {
        await lock.acquire()
        defer { Task { await lock.release() } }
        guard closed.setOnce() else { return }
        try await connection.close()
    }

    /// Runs one statement once the lock is free (`$n` placeholders become `?n`). - Throws: ``SQLError``.
    public func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        await lock.acquire()
        do {
            let rows = try await Self.run(sql, binds, on: connection)
            await lock.release()
            return rows
        } catch {
            await lock.release()
            throw error
        }
    }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction, holding the lock throughout: committed when it returns,
    /// rolled back when it throws. - Throws: `body`'s error unchanged, or ``SQLError``.
    public func transaction<T: Sendable>(_ body: (any SQLExecutor) async throws -> T) async throws -> T {
        await lock.acquire()
        do {
            // IMMEDIATE takes the write lock up front, so two processes cannot deadlock upgrading read locks.
            _ = try await Self.run("BEGIN IMMEDIATE", [], on: connection)
            do {
                let result = try await body(TransactionExecutor(connection: connection))
                _ = try await Self.run("COMMIT", [], on: connection)
                await lock.release()
                return result
            } catch {
                // In a task of its own: a cancelled caller must still end the transaction, or the connection stays
                // inside it and every later transaction fails.
                let connection = self.connection
                await Task { _ = try? await Self.run("ROLLBACK", [], on: connection) }.value
                throw error
            }
        } catch {
            await lock.release()
            throw error
        }
    }

    /// Statements of the open transaction; the lock is already held.
    private struct TransactionExecutor: SQLExecutor {
        let connection: SQLiteConnection

        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
            try await SQLiteDatabase.run(sql, binds, on: connection)
        }
    }

    // MARK: - Statements and values

    private static func run(_ sql: String, _ binds: [SQLValue], on connection: SQLiteConnection) async throws
        -> [SQLRow]
    {
        let (text, highest) = rewritePlaceholders(sql)
        do {
            let rows = try await connection.query(text, binds.prefix(highest).map(bind))
            return rows.map { row in
                SQLRow(values: Dictionary(row.columns.map { ($0.name, value($0.data)) }, uniquingKeysWith: { first, _ in first }))
            }
        } catch {
            throw map(error)
        }
    }

    /// `$n` placeholders become SQLite's numbered `?n`; returns the text and the highest number used (SQLite
    /// refuses more binds than the statement names).
    static func rewritePlaceholders(_ sql: String) -> (String, Int) {
        var result = ""
        result.reserveCapacity(sql.utf8.count)
        var highest = 0
        var index = sql.startIndex
        while index < sql.endIndex {
            let character = sql[index]
            if character == "$" {
                var end = sql.index(after: index)
                while end < sql.endIndex, sql[end].isASCII, sql[end].isNumber { end = sql.index(after: end) }
                if let number = Int(sql[sql.index(after: index)..<end]) {
                    result += "?\(number)"
                    highest = max(highest, number)
                    index = end
                    continue
                }
            }
            result.append(character)
            index = sql.index(after: index)
        }
        return (result, highest)
    }

    private static func bind(_ value: SQLValue) -> SQLiteData {
        switch value {
        case .null: return .null
        case .int(let value): return .integer(SQLiteInt64(value))
        case .double(let value): return .float(value)
        case .text(let text), .json(let text): return .text(text)
        case .uuid(let uuid): return .text(uuid.uuidString.lowercased())
        case .timestamp(let date): return .integer(SQLiteInt64(SQLValue.microseconds(date)))
        case .textArray(let elements): return .text(JSONValue.array(elements.map { .string($0) }).jsonText)
        case .bool(let value): return .integer(value ? 1 : 0)
        }
    }

    private static func value(_ data: SQLiteData) -> SQLValue {
        switch data {
        case .integer(let value): return .int(Int64(value))
        case .float(let value): return .double(value)
        case .text(let text): return .text(text)
        case .blob(let buffer): return .text(String(buffer: buffer))
        case .null: return .null
        }
    }

    private static func map(_ error: any Error) -> any Error {
        guard let error = error as? SQLiteError else { return error is HubError ? error : SQLError.unavailable }
        switch error.reason {
        case .constraintUniqueFailed, .constraintPrimaryKeyFailed: return SQLError.uniqueViolation(constraint: nil)
        case .constraintForeignKeyFailed: return SQLError.foreignKeyViolation(constraint: nil)
        case .constraintCheckFailed: return SQLError.checkViolation(constraint: nil)
        case .busy, .locked, .ioError, .full, .cantOpen, .readOnly: return SQLError.unavailable
        default:
            // Connections report extended result codes (ioErrorFailedWrite, readonlyDirectory, busyRecovery, …):
            // classify them by their primary code's family.
            let name = "\(error.reason)"
            if ["busy", "locked", "ioError", "readonly", "readOnly", "cantOpen", "full"].contains(where: name.hasPrefix) {
                return SQLError.unavailable
            }
            return SQLError.other(code: name)
        }
    }
}

/// A FIFO async mutex.
actor SerialLock {
    private var locked = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        guard locked else {
            locked = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            locked = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}
