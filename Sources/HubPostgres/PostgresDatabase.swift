import Foundation
import HubCore
import HubStore
import Logging
import NIOCore
import NIOSSL
import PostgresNIO

/// PostgreSQL behind ``SQLDatabase``, over a `PostgresClient` pool.
///
/// The client must be running: call ``run()`` in a task group or `ServiceGroup` before the first query (queries
/// wait for it). Every session is pinned to UTC. Driver errors are mapped onto ``SQLError``; no driver text or
/// bound value reaches an error message.
public final class PostgresDatabase: SQLDatabase {
    /// The connection pool; queries proceed only while ``run()`` runs.
    public let client: PostgresClient
    private let logger: Logger
    private let started = OnceFlag()

    /// Always ``SQLDialect/postgres``.
    public var dialect: SQLDialect { .postgres }

    /// A database over a new client for `configuration`.
    public init(configuration: PostgresClient.Configuration, logger: Logger = Logger(label: "hub.postgres")) {
        var configuration = configuration
        configuration.options.additionalStartupParameters.append(("TimeZone", "UTC"))
        configuration.options.additionalStartupParameters.append(("application_name", "integration-hub"))
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
    }

    /// A database for a `postgres://user:password@host:port/database?sslmode=…` URL.
    public convenience init(url: String, logger: Logger = Logger(label: "hub.postgres")) throws {
        self.init(configuration: try Self.configuration(url: url), logger: logger)
    }

    /// Runs the client's connection pool until the task is cancelled.
    public func run() async {
        started.setOnce()
        await client.run()
    }

    /// Waits (up to a second) for ``run()`` to start, so a query issued in the same breath as `run()` neither
    /// races it nor logs PostgresNIO's "run() hasn't been called yet" warning.
    private func awaitRunning() async {
        var waited = 0
        while !started.isSet, waited < 1000 {
            try? await Task.sleep(for: .milliseconds(1))
            waited += 1
        }
    }

    /// Parses a `postgres://` or `postgresql://` URL: user, password (percent-decoded), host, port (5432),
    /// database, and `sslmode` (`disable`; `prefer`, the default; `require`).
    /// - Throws: `validation(database_url)` naming what is wrong.
    public static func configuration(url: String) throws -> PostgresClient.Configuration {
        let field = "database_url"
        guard let components = URLComponents(string: url),
            let scheme = components.scheme, scheme == "postgres" || scheme == "postgresql"
        else {
            throw HubError.validation(field: field, reason: "must be a postgres:// URL")
        }
        guard let host = components.host, !host.isEmpty else {
            throw HubError.validation(field: field, reason: "must name a host")
        }
        if let port = components.port, !(1...65535).contains(port) {
            throw HubError.validation(field: field, reason: "has a port outside 1-65535")
        }
        // URLComponents' user and password are already percent-decoded: decode nothing twice.
        guard let user = components.user, !user.isEmpty else {
            throw HubError.validation(field: field, reason: "must name a user")
        }
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        let mode = components.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? "prefer"
        let tls: PostgresClient.Configuration.TLS
        switch mode {
        case "disable": tls = .disable
        case "prefer", "allow": tls = .prefer(.makeClientConfiguration())
        case "require", "verify-ca", "verify-full": tls = .require(.makeClientConfiguration())
        default: throw HubError.validation(field: field, reason: "sslmode must be disable, prefer or require")
        }
        return PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: components.password,
            database: database.isEmpty ? nil : database, tls: tls)
    }

    /// Runs one statement on a pooled connection, first waiting up to a second for ``run()`` to start.
    /// - Throws: ``SQLError``.
    public func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        await awaitRunning()
        do {
            let rows = try await client.query(PostgresQuery(unsafeSQL: sql, binds: Self.bindings(binds)), logger: logger)
            return try await Self.collect(rows)
        } catch {
            throw Self.map(error)
        }
    }

    /// Runs `statement` as a named prepared statement of a pooled connection: PostgresNIO prepares it on the
    /// connection's first use (parameter types from the binds, which the statement's casts fix), and later runs
    /// skip PostgreSQL's parsing and analysis (and its planning, once it keeps a generic plan). A server error other
    /// than an integrity violation runs the text unprepared once more: PostgresNIO keeps a failed preparation (a
    /// lock or statement timeout while a migration held the table) for the connection's life and answers every later
    /// run on that connection with the same error, which would otherwise fail each batch that lands there.
    /// - Throws: ``SQLError``.
    public func queryPrepared<Statement: PreparedSQL>(_ statement: Statement.Type, _ binds: [SQLValue]) async throws -> [SQLRow] {
        await awaitRunning()
        do {
            var result: [SQLRow] = []
            for try await row in try await client.execute(Prepared<Statement>(binds: binds), logger: logger) { result.append(row) }
            return result
        } catch let error as PSQLError where error.code == .server && !(error.serverInfo?[.sqlState] ?? "").hasPrefix("23") {
            return try await query(Statement.sql, binds)
        } catch {
            throw Self.map(error)
        }
    }

    /// A ``PreparedSQL`` as PostgresNIO prepares statements.
    private struct Prepared<Statement: PreparedSQL>: PostgresPreparedStatement {
        static var name: String { Statement.name }
        static var sql: String { Statement.sql }
        typealias Row = SQLRow
        let binds: [SQLValue]

        func makeBindings() throws -> PostgresBindings { PostgresDatabase.bindings(binds) }
        func decodeRow(_ row: PostgresRow) throws -> SQLRow { try PostgresDatabase.row(row) }
    }

    /// Runs `body` in a transaction on one leased connection: committed when it returns, rolled back when it throws.
    /// - Throws: `body`'s ``HubError`` or ``SQLError`` unchanged; anything else mapped onto ``SQLError``.
    public func transaction<T: Sendable>(_ body: (any SQLExecutor) async throws -> T) async throws -> T {
        await awaitRunning()
        do {
            return try await client.withTransaction(logger: logger) { connection in
                try await body(ConnectionExecutor(connection: connection, logger: logger))
            }
        } catch let error as PostgresTransactionError {
            // Surface the closure's own error (already mapped) rather than the wrapper.
            if let closureError = error.closureError { throw Self.map(closureError) }
            throw Self.map(error.commitError ?? error.beginError ?? error.rollbackError ?? error)
        } catch {
            throw Self.map(error)
        }
    }

    /// Statements of one transaction, on its leased connection.
    private struct ConnectionExecutor: SQLExecutor, @unchecked Sendable {
        let connection: PostgresConnection
        let logger: Logger

        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
            do {
                let rows = try await connection.query(
                    PostgresQuery(unsafeSQL: sql, binds: PostgresDatabase.bindings(binds)), logger: logger)
                return try await PostgresDatabase.collect(rows)
            } catch {
                throw PostgresDatabase.map(error)
            }
        }
    }

    // MARK: - Values

    static func bindings(_ values: [SQLValue]) -> PostgresBindings {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case .null: bindings.appendNull()
            case .int(let value): bindings.append(value)
            case .double(let value): bindings.append(value)
            case .text(let value): bindings.append(value)
            case .uuid(let value): bindings.append(value)
            case .timestamp(let date): bindings.append(Timestamp(microseconds: SQLValue.microseconds(date)))
            case .json(let text): bindings.append(JSONB(text: text))
            case .textArray(let elements): bindings.append(elements)
            case .bool(let value): bindings.append(value)
            }
        }
        return bindings
    }

    static func collect(_ rows: PostgresRowSequence) async throws -> [SQLRow] {
        var result: [SQLRow] = []
        for try await row in rows { result.append(try Self.row(row)) }
        return result
    }

    static func row(_ row: PostgresRow) throws -> SQLRow {
        var values: [String: SQLValue] = [:]
        for cell in row { values[cell.columnName] = try decode(cell) }
        return SQLRow(values: values)
    }

    private static func decode(_ cell: PostgresCell) throws -> SQLValue {
        guard var bytes = cell.bytes else { return .null }
        switch cell.dataType {
        case .uuid: return .uuid(try cell.decode(UUID.self))
        case .int2, .int4, .int8: return .int(try cell.decode(Int64.self))
        case .float4, .float8: return .double(try cell.decode(Double.self))
        case .numeric:
            return .double(NSDecimalNumber(decimal: try cell.decode(Decimal.self)).doubleValue)
        case .bool: return .int(try cell.decode(Bool.self) ? 1 : 0)
        case .timestamptz, .timestamp:
            guard cell.format == .binary, let micros = bytes.readInteger(as: Int64.self) else {
                throw SQLError.decoding(column: cell.columnName)
            }
            // 'infinity' and times past year 294,000 overflow the epoch shift: a decoding error, not a trap.
            let (shifted, overflow) = micros.addingReportingOverflow(Timestamp.epochOffset)
            guard !overflow else { throw SQLError.decoding(column: cell.columnName) }
            return .timestamp(SQLValue.date(microseconds: shifted))
        case .jsonb, .json: return .json(try cell.decode(String.self))
        case .textArray, .varcharArray: return .textArray(try cell.decode([String].self))
        default: return .text(try cell.decode(String.self))
        }
    }

    // MARK: - Errors

    /// Maps driver errors onto ``SQLError``; domain errors pass through.
    static func map(_ error: any Error) -> any Error {
        if error is HubError || error is SQLError { return error }
        if let error = error as? PSQLError {
            switch error.code {
            case .server:
                let state = error.serverInfo?[.sqlState] ?? ""
                let constraint = error.serverInfo?[.constraintName]
                switch state {
                case "23505": return SQLError.uniqueViolation(constraint: constraint)
                case "23503": return SQLError.foreignKeyViolation(constraint: constraint)
                case "23514": return SQLError.checkViolation(constraint: constraint)
                case "22021", "22P05": return SQLError.invalidText
                case "40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300":
                    return SQLError.unavailable
                default:
                    if state.hasPrefix("08") || state.hasPrefix("53") { return SQLError.unavailable }
                    return SQLError.other(code: state)
                }
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed,
                .sslUnsupported, .failedToAddSSLHandler:
                return SQLError.unavailable
            default:
                return SQLError.other(code: "\(error.code)")
            }
        }
        if error is PostgresDecodingError { return SQLError.other(code: "decoding") }
        if error is CancellationError { return error }
        return SQLError.unavailable
    }
}

/// A `timestamptz` bound from exact microseconds since 1970 (PostgresNIO's `Date` encoding truncates).
struct Timestamp: PostgresNonThrowingEncodable {
    /// Microseconds between 1970-01-01 and PostgreSQL's epoch, 2000-01-01.
    static let epochOffset: Int64 = 946_684_800_000_000
    let microseconds: Int64

    static var psqlType: PostgresDataType { .timestamptz }
    static var psqlFormat: PostgresFormat { .binary }

    func encode<JSONEncoder: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        let (shifted, overflow) = microseconds.subtractingReportingOverflow(Self.epochOffset)
        byteBuffer.writeInteger(overflow ? Int64.min : shifted)
    }
}

/// JSON text bound as `jsonb`.
struct JSONB: PostgresNonThrowingEncodable {
    let text: String

    static var psqlType: PostgresDataType { .jsonb }
    static var psqlFormat: PostgresFormat { .binary }

    func encode<JSONEncoder: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        byteBuffer.writeInteger(UInt8(1))
        byteBuffer.writeString(text)
    }
}
