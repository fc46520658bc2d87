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
        last_check, response_time, uptime_percentage, avg_response_time, last_updated, created_at, updated_at
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
                credentials_masked, health_check_interval, status, created_at, updated_at) \
                VALUES ($1, $2, $3, $4, $5, $8, COALESCE($6, 5), 'pending', $7, $7) RETURNING \(Self.columns)
                """,
                [
                    .uuid(id.uuid), .text(registration.systemName), .text(registration.connectionType.rawValue),
                    .text(registration.endpoint), .json(JSONValue.string(sealed).jsonText),
                    .optional(registration.healthCheckInterval) { .int(Int64($0)) }, .timestamp(now),
                    .json(SystemConnection.mask(credentials: registration.credentials).jsonText),
                ])
            return try decode(row!)
        } catch SQLError.uniqueViolation {
            throw HubError.conflict(field: "system_name", reason: "a connection with this system_name already exists")
        }
    }

    public func recordCheck(_ id: ConnectionID, status: ConnectionStatus, responseTime: Int64?) async throws
        -> SystemConnection
    {
        guard status != .pending else {
            throw HubError.validation(field: "status", reason: "must be healthy, degraded or down")
        }
        if let responseTime, responseTime < 0 {
            throw HubError.validation(field: "response_time", reason: "must not be negative")
        }
        let now = clock.now()
        let row: SQLRow? = try await database.transaction { executor in
            // Step 2: the connection's status and response time.
            guard
                try await executor.queryOne(
                    """
                    UPDATE system_connections SET status = $1, last_check = $2, response_time = $3, updated_at = $2 \
                    WHERE connection_id = $4 RETURNING connection_id, status, last_check, response_time
                    """,
                    [.text(status.rawValue), .timestamp(now), .optional(responseTime) { .int($0) }, .uuid(id.uuid)])
                    != nil
            else { return nil }
            // Step 3: the health row.
            _ = try await executor.query(
                """
                INSERT INTO connection_health (health_id, connection_id, check_timestamp, status, response_time, \
                created_at) VALUES ($1, $2, $3, $4, $5, $3) RETURNING connection_id, check_timestamp, status, response_time
                """,
                [
                    .uuid(HealthCheckID.generate().uuid), .uuid(id.uuid), .timestamp(now), .text(status.rawValue),
                    .optional(responseTime) { .int($0) },
                ])
            // Step 4: uptime and average response time recomputed from every check.
            return try await executor.queryOne(
                """
                WITH uptime_calc AS (SELECT connection_id, COUNT(*) AS total_checks, \
                COUNT(CASE WHEN status = 'healthy' THEN 1 END) AS healthy_checks, AVG(response_time) AS avg_response \
                FROM connection_health WHERE connection_id = $1 GROUP BY connection_id) \
                UPDATE system_connections SET uptime_percentage = ROUND(uc.healthy_checks * 100.0 / uc.total_checks, 2), \
                avg_response_time = ROUND(uc.avg_response), last_updated = $2 FROM uptime_calc uc \
                WHERE system_connections.connection_id = uc.connection_id RETURNING \(Self.qualifiedColumns)
                """, [.uuid(id.uuid), .timestamp(now)])
        }
        guard let row else { throw HubError.notFound(entity: "connection", id: id.description) }
        return try decode(row)
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

    private func decode(_ row: SQLRow) throws -> SystemConnection {
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
            createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"))
    }
}
