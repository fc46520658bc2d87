import Foundation
import HubCore

/// DAO-MDE-03-08-05 over any ``SQLDatabase``. Credentials are sealed with the row id as context; a masked copy is
/// stored beside them, so reads never open the secret.
public struct ConnectionStore: SystemConnectivityDAO {
    let database: any SQLDatabase
    let sealer: SecretSealer
    let clock: WallClock

    public init(database: any SQLDatabase, sealer: SecretSealer, clock: WallClock = .system) {
        self.database = database
        self.sealer = sealer
        self.clock = clock
    }

    static let columns = """
        connection_id, system_name, connection_type, endpoint, credentials_masked, health_check_interval, status, \
        last_check, response_time, uptime_percentage, avg_response_time, last_updated, created_at, updated_at, retries, \
        next_check_at
        """

    /// ``columns`` qualified by table, for the step-4 update whose FROM clause also has a connection_id.
    static let qualifiedColumns = columns.split(separator: ",")
        .map { $0.trimmingCharacters(in: .whitespaces) }
        .map { "system_connections.\($0) AS \($0)" }
        .joined(separator: ", ")

    public func create(_ registration: ConnectionRegistration) async throws -> SystemConnection {
        // Step 1: validate connection_type (typed), endpoint format and interval; system_name uniqueness is the
        // unique constraint's job, so two concurrent creates cannot both take a name.
        try registration.validate()
        let id = ConnectionID.generate()
        let sealed = try sealer.seal(registration.credentials.jsonText, context: context(id))
        let now = clock.now()
        do {
            let row = try await database.queryOne(
                """
                INSERT INTO system_connections (connection_id, system_name, connection_type, endpoint, credentials, \
                credentials_masked, health_check_interval, status, created_at, updated_at, retries, next_check_at) \
                VALUES ($1, $2, $3, $4, $5, $8, COALESCE($6, 5), 'pending', $7, $7, $9, $10) RETURNING \(Self.columns)
                """,
                [
                    .uuid(id.uuid), .text(registration.systemName), .text(registration.connectionType.rawValue),
                    .text(registration.endpoint), .json(JSONValue.string(sealed).jsonText),
                    .optional(registration.healthCheckInterval) { .int(Int64($0)) }, .timestamp(now),
                    .json(SystemConnection.mask(credentials: registration.credentials).jsonText),
                    .int(Int64(registration.retries ?? 1)),
                    // The first monitored check at a random point of the first interval: checks spread evenly.
                    .timestamp(now.addingTimeInterval(Double.random(in: 0..<1) * Double(registration.healthCheckInterval ?? 5) * 60)),
                ])
            return try decode(row!)
        } catch SQLError.uniqueViolation {
            throw HubError.conflict(field: "system_name", reason: "a connection with this system_name already exists")
        }
    }

    public func recordCheck(_ id: ConnectionID, status: ConnectionStatus, responseTime: Int64?) async throws
        -> SystemConnection
    {
        try await recordCheck(id, CheckOutcome(status: status, responseTime: responseTime))
    }

    public func recordCheck(_ id: ConnectionID, _ outcome: CheckOutcome) async throws -> SystemConnection {
        // Steps 2-4 with the rollups and events the monitor keeps (a check made on request is never retried).
        try await HealthMonitorStore(database: database, clock: clock).record(id, outcome, monitored: false)
    }

    public func get(_ id: ConnectionID) async throws -> SystemConnection {
        let row = try await database.queryOne(
            "SELECT \(Self.columns) FROM system_connections WHERE connection_id = $1", [.uuid(id.uuid)])
        guard let row else { throw HubError.notFound(entity: "connection", id: id.description) }
        return try decode(row)
    }

    public func list(_ page: PageRequest) async throws -> Page<SystemConnection> {
        let query = ListQuery(table: "system_connections", idColumn: "connection_id", columns: Self.columns)
        return try await query.run(on: database, page: page) { row in
            let connection = try decode(row)
            return (connection, PageCursor(createdAt: connection.createdAt, id: connection.id.uuid))
        }
    }

    public func healthHistory(_ id: ConnectionID, _ page: PageRequest) async throws -> Page<HealthCheck> {
        _ = try await get(id)
        var query = ListQuery(
            table: "connection_health", idColumn: "health_id",
            columns: "health_id, connection_id, check_timestamp, status, response_time, created_at")
        query.filter("connection_id", .uuid(id.uuid))
        return try await query.run(on: database, page: page) { row in
            guard let status = ConnectionStatus(rawValue: try row.string("status")) else {
                throw SQLError.decoding(column: "status")
            }
            let check = HealthCheck(
                id: HealthCheckID(try row.uuid("health_id")), connectionID: ConnectionID(try row.uuid("connection_id")),
                checkTimestamp: try row.date("check_timestamp"), status: status,
                responseTime: try row.optionalInt("response_time"))
            return (check, PageCursor(createdAt: try row.date("created_at"), id: check.id.uuid))
        }
    }

    public func delete(_ id: ConnectionID) async throws {
        let row = try await database.queryOne(
            "DELETE FROM system_connections WHERE connection_id = $1 RETURNING connection_id", [.uuid(id.uuid)])
        guard row != nil else { throw HubError.notFound(entity: "connection", id: id.description) }
    }

    public func credentials(for id: ConnectionID) async throws -> JSONValue {
        let row = try await database.queryOne(
            "SELECT connection_id, credentials FROM system_connections WHERE connection_id = $1", [.uuid(id.uuid)])
        guard let row else { throw HubError.notFound(entity: "connection", id: id.description) }
        return try unseal(row, id: id)
    }

    private func context(_ id: ConnectionID) -> String { "system_connections.credentials:\(id)" }

    private func unseal(_ row: SQLRow, id: ConnectionID) throws -> JSONValue {
        guard let sealed = try row.json("credentials").stringValue else {
            throw HubError.sealing(reason: "stored credentials are not sealed")
        }
        return try JSONValue.parse(try sealer.open(sealed, context: context(id)), field: "credentials")
    }

    func decode(_ row: SQLRow) throws -> SystemConnection { try Self.decode(row) }

    static func decode(_ row: SQLRow) throws -> SystemConnection {
        let id = ConnectionID(try row.uuid("connection_id"))
        guard let type = ConnectionType(rawValue: try row.string("connection_type")) else {
            throw SQLError.decoding(column: "connection_type")
        }
        guard let status = ConnectionStatus(rawValue: try row.string("status")) else {
            throw SQLError.decoding(column: "status")
        }
        return SystemConnection(
            id: id, systemName: try row.string("system_name"), connectionType: type,
            endpoint: try row.string("endpoint"),
            maskedCredentials: try row.json("credentials_masked"),
            healthCheckInterval: Int(try row.int("health_check_interval")), status: status,
            lastCheck: try row.optionalDate("last_check"), responseTime: try row.optionalInt("response_time"),
            uptimePercentage: try row.optionalDouble("uptime_percentage"),
            avgResponseTime: try row.optionalInt("avg_response_time"), lastUpdated: try row.optionalDate("last_updated"),
            createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"), retries: Int(try row.int("retries")),
            nextCheckAt: try row.optionalDate("next_check_at"))
    }
}
