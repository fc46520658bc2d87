import Foundation

/// Connection types of DAO-MDE-03-08-05.
public enum ConnectionType: String, Sendable, Codable, CaseIterable {
    /// HTTP API, PostgreSQL database, FTP, SFTP and plain TCP; each type has its own endpoint format.
    case API, DB, FTP, SFTP, TCP
}

/// Status of a connection: `pending` until its first check.
public enum ConnectionStatus: String, Sendable, Codable, CaseIterable {
    /// Created and not yet checked.
    case pending
    /// The last check found the system healthy; only healthy checks count towards uptime.
    case healthy
    /// The last check found the system degraded; it does not count towards uptime.
    case degraded
    /// The last check found the system down; it does not count towards uptime.
    case down
}

/// The arguments of DAO-MDE-03-08-05 (System Connectivity).
public struct ConnectionRegistration: Sendable, Hashable {
    /// Unique name, 1–128 characters.
    public var systemName: String
    /// The kind of system, which decides the endpoint's format.
    public var connectionType: ConnectionType
    /// Per type: API `http(s)://host[:port]/…`; DB `postgres://host[:port][/database]`; FTP `ftp://host[:port]`
    /// or `host:port`; SFTP `sftp://host[:port]` or `host:port`; TCP `host:port` or `tcp://host:port`.
    public var endpoint: String
    /// Credentials (a JSON object, may be empty); sealed at rest.
    public var credentials: JSONValue
    /// Minutes between health checks, 1…1440; `nil` means the design's default of 5.
    public var healthCheckInterval: Int?
    /// Failing checks retried (20 s apart, the connection `pending` meanwhile) before it is declared down, 0…10;
    /// `nil` means 1.
    public var retries: Int?

    /// Creates a registration with every member given; nothing is validated until ``validate()``.
    public init(
        systemName: String, connectionType: ConnectionType, endpoint: String, credentials: JSONValue,
        healthCheckInterval: Int? = nil, retries: Int? = nil
    ) {
        self.retries = retries
        self.systemName = systemName
        self.connectionType = connectionType
        self.endpoint = endpoint
        self.credentials = credentials
        self.healthCheckInterval = healthCheckInterval
    }

    /// Step 1's data validation (uniqueness of system_name is enforced by the insert).
    public func validate() throws {
        try Validate.nonEmpty(systemName, field: "system_name", maxLength: 128)
        try SystemConnection.validateEndpoint(endpoint, type: connectionType)
        try Validate.noNUL(credentials, field: "credentials")
        guard credentials.objectValue != nil else {
            throw HubError.validation(field: "credentials", reason: "must be a JSON object, not \(credentials.typeName)")
        }
        guard credentials.jsonText.utf8.count <= 16_384 else {
            throw HubError.validation(field: "credentials", reason: "must be at most 16 KiB")
        }
        if let healthCheckInterval { try Validate.range(healthCheckInterval, 1...1440, field: "health_check_interval") }
        if let retries { try Validate.range(retries, 0...10, field: "retries") }
        if let probe = credentials.objectValue?["probe"] { try SystemConnection.validateProbe(probe, type: connectionType) }
        try SystemConnection.validateLineCredentials(credentials)
    }
}

extension SystemConnection {
    /// Credential members the probes write into a protocol line or a header: an FTP command, a PostgreSQL startup
    /// message, an HTTP header.
    public static let lineCredentialKeys = ["username", "user", "password", "database", "token", "api_key", "header"]

    /// Each of ``lineCredentialKeys`` present must be a string without control characters (a CR/LF in an FTP password
    /// would end the PASS line and send commands of the caller's choosing to whatever answered); `header` must be a
    /// header name that neither frames nor routes the request.
    static func validateLineCredentials(_ credentials: JSONValue) throws {
        guard let members = credentials.objectValue else { return }
        for key in lineCredentialKeys {
            guard let value = members[key] else { continue }
            guard let text = value.stringValue else {
                throw HubError.validation(field: "credentials.\(key)", reason: "must be a string, not \(value.typeName)")
            }
            try Validate.lineSafe(text, field: "credentials.\(key)")
        }
        if let header = members["header"]?.stringValue {
            guard Validate.isHeaderName(header) else {
                throw HubError.validation(field: "credentials.header", reason: "is not a valid header name")
            }
            guard !Validate.isReservedHeader(header) else {
                throw HubError.validation(field: "credentials.header", reason: "frames or routes the request and is set by the hub")
            }
        }
    }
}

/// A system connection: the design's returns (connection_id, status, last_check, uptime_percentage,
/// avg_response_time) and its registration, credentials masked.
public struct SystemConnection: Sendable, Hashable {
    /// The connection's id (connection_id).
    public var id: ConnectionID
    /// Unique name, 1–128 characters.
    public var systemName: String
    /// The kind of system, which decides the endpoint's format.
    public var connectionType: ConnectionType
    /// The endpoint as given, in the format of its ``connectionType``.
    public var endpoint: String
    /// Credentials with every value masked except `username`, `user`, `database` and `header`.
    public var maskedCredentials: JSONValue
    /// Minutes between health checks, 1…1440 (5 when the registration gave none).
    public var healthCheckInterval: Int
    /// `pending` until the first check, then the status the last check reported.
    public var status: ConnectionStatus
    /// When the last check was recorded; `nil` before the first.
    public var lastCheck: Date?
    /// Response time of the last check, in milliseconds.
    public var responseTime: Int64?
    /// Percentage of healthy checks among all checks (0–100, two decimals).
    public var uptimePercentage: Double?
    /// Average response time of all checks that measured one, in milliseconds.
    public var avgResponseTime: Int64?
    /// When uptime and average response time were last recomputed (at every check); `nil` before the first.
    public var lastUpdated: Date?
    /// When the connection was created; lists are ordered by it.
    public var createdAt: Date
    /// When the row last changed: creation or a check.
    public var updatedAt: Date
    /// Failing checks retried before the connection is down.
    public var retries: Int = 1
    /// When the monitor checks it next.
    public var nextCheckAt: Date?

    /// Creates a value with every member given; nothing is validated.
    public init(
        id: ConnectionID, systemName: String, connectionType: ConnectionType, endpoint: String,
        maskedCredentials: JSONValue, healthCheckInterval: Int, status: ConnectionStatus, lastCheck: Date?,
        responseTime: Int64?, uptimePercentage: Double?, avgResponseTime: Int64?, lastUpdated: Date?,
        createdAt: Date, updatedAt: Date, retries: Int = 1, nextCheckAt: Date? = nil
    ) {
        self.retries = retries
        self.nextCheckAt = nextCheckAt
        self.id = id
        self.systemName = systemName
        self.connectionType = connectionType
        self.endpoint = endpoint
        self.maskedCredentials = maskedCredentials
        self.healthCheckInterval = healthCheckInterval
        self.status = status
        self.lastCheck = lastCheck
        self.responseTime = responseTime
        self.uptimePercentage = uptimePercentage
        self.avgResponseTime = avgResponseTime
        self.lastUpdated = lastUpdated
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// Checks `credentials.probe` (API connections only): `{"method": "GET"|"HEAD"|"POST"|…, "expected_status_min":
    /// 100…599, "expected_status_max": 100…599, "body_contains": TEXT, "degraded_after_ms": 1…600000}`.
    static func validateProbe(_ probe: JSONValue, type: ConnectionType) throws {
        let field = "credentials.probe"
        guard type == .API else { throw HubError.validation(field: field, reason: "is for API connections only") }
        guard let members = probe.objectValue else { throw HubError.validation(field: field, reason: "must be a JSON object") }
        try members.rejectUnknown(["method", "expected_status_min", "expected_status_max", "body_contains", "degraded_after_ms"], field: field)
        if let method = members["method"] {
            guard let text = method.stringValue, ["GET", "HEAD", "POST", "PUT", "OPTIONS"].contains(text.uppercased()) else {
                throw HubError.validation(field: "\(field).method", reason: "must be GET, HEAD, POST, PUT or OPTIONS")
            }
        }
        let low = try members.optionalInt("expected_status_min", in: 100...599, field: field) ?? 200
        let high = try members.optionalInt("expected_status_max", in: 100...599, field: field) ?? 399
        guard low <= high else { throw HubError.validation(field: "\(field).expected_status_max", reason: "must not be below expected_status_min") }
        if let text = members["body_contains"], text.stringValue == nil || text.stringValue!.isEmpty {
            throw HubError.validation(field: "\(field).body_contains", reason: "must be a non-empty string")
        }
        _ = try members.optionalInt("degraded_after_ms", in: 1...600_000, field: field)
    }

    /// Credential members shown in clear by ``mask(credentials:)``.
    public static let visibleCredentialKeys: Set<String> = ["username", "user", "database", "header"]

    /// `credentials` with every value masked except the members in ``visibleCredentialKeys``.
    public static func mask(credentials: JSONValue) -> JSONValue {
        guard let members = credentials.objectValue else { return .null }
        return .object(Dictionary(uniqueKeysWithValues: members.map { key, value in
            // Only plain strings under the visible keys are shown; anything nested is masked.
            if visibleCredentialKeys.contains(key), case .string = value { return (key, value) }
            return (key, JSONValue.string("****"))
        }))
    }

    static func validateEndpoint(_ endpoint: String, type: ConnectionType) throws {
        let field = "endpoint"
        try Validate.nonEmpty(endpoint, field: field, maxLength: 2048)
        switch type {
        case .API:
            try Validate.httpURL(endpoint, field: field)
        case .DB:
            try validateURL(endpoint, schemes: ["postgres", "postgresql"], field: field, example: "postgres://host:5432/db")
        case .FTP:
            if endpoint.contains("://") {
                try validateURL(endpoint, schemes: ["ftp"], field: field, example: "ftp://host:21")
            } else {
                try validateHostPort(endpoint, field: field)
            }
        case .SFTP:
            if endpoint.contains("://") {
                try validateURL(endpoint, schemes: ["sftp"], field: field, example: "sftp://host:22")
            } else {
                try validateHostPort(endpoint, field: field)
            }
        case .TCP:
            if endpoint.hasPrefix("tcp://") {
                try validateHostPort(String(endpoint.dropFirst(6)), field: field)
            } else {
                try validateHostPort(endpoint, field: field)
            }
        }
    }

    private static func validateURL(_ value: String, schemes: Set<String>, field: String, example: String) throws {
        guard let components = URLComponents(string: value), let scheme = components.scheme?.lowercased(),
            schemes.contains(scheme)
        else {
            throw HubError.validation(field: field, reason: "must be a URL like \(example)")
        }
        guard let host = components.host, !host.isEmpty else {
            throw HubError.validation(field: field, reason: "must include a host")
        }
        guard components.user == nil, components.password == nil else {
            throw HubError.validation(field: field, reason: "must not embed credentials; put them in credentials")
        }
        if let port = components.port, !(1...65535).contains(port) {
            throw HubError.validation(field: field, reason: "port must be between 1 and 65535")
        }
    }

    /// `host:port` with a DNS name, an IPv4 address or a bracketed IPv6 address.
    private static func validateHostPort(_ value: String, field: String) throws {
        let host: Substring
        let port: Substring
        if value.hasPrefix("[") {
            guard let close = value.firstIndex(of: "]"), value[value.index(after: close)...].hasPrefix(":") else {
                throw HubError.validation(field: field, reason: "must be host:port")
            }
            host = value[value.index(after: value.startIndex)..<close]
            port = value[value.index(close, offsetBy: 2)...]
            guard !host.isEmpty, host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                throw HubError.validation(field: field, reason: "has an invalid IPv6 address")
            }
        } else {
            let parts = value.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw HubError.validation(field: field, reason: "must be host:port") }
            host = parts[0]
            port = parts[1]
            guard !host.isEmpty, host.count <= 253,
                host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") })
            else {
                throw HubError.validation(field: field, reason: "has an invalid host name")
            }
        }
        guard let number = Int(port), (1...65535).contains(number) else {
            throw HubError.validation(field: field, reason: "port must be between 1 and 65535")
        }
    }
}

/// One health check of a connection (a `connection_health` row).
public struct HealthCheck: Sendable, Hashable {
    /// The check's id (health_id).
    public var id: HealthCheckID
    /// The connection checked.
    public var connectionID: ConnectionID
    /// When the check was recorded.
    public var checkTimestamp: Date
    /// The status the check reported (never `pending`).
    public var status: ConnectionStatus
    /// Milliseconds, `nil` when the check got no answer.
    public var responseTime: Int64?

    /// Creates a value with every member given.
    public init(
        id: HealthCheckID, connectionID: ConnectionID, checkTimestamp: Date, status: ConnectionStatus,
        responseTime: Int64?
    ) {
        self.id = id
        self.connectionID = connectionID
        self.checkTimestamp = checkTimestamp
        self.status = status
        self.responseTime = responseTime
    }
}

/// What one health check found (a probe's classification), as the monitor records it.
public struct CheckOutcome: Sendable, Hashable {
    public var status: ConnectionStatus
    public var responseTime: Int64?
    public var reason: String?

    public init(status: ConnectionStatus, responseTime: Int64?, reason: String? = nil) {
        self.status = status
        self.responseTime = responseTime
        self.reason = reason
    }
}

/// DAO-MDE-03-08-05, System Connectivity: connections, their health checks, uptime and response times.
public protocol SystemConnectivityDAO: Sendable {
    /// Step 1: validates and creates a `pending` connection (interval defaults to 5 minutes), credentials sealed.
    /// - Throws: `validation`; `conflict(system_name)` when the name is taken.
    func create(_ registration: ConnectionRegistration) async throws -> SystemConnection

    /// Steps 2, 3 and 4 in one transaction: sets the connection's status, last_check and response_time, appends
    /// a `connection_health` row, and recomputes uptime_percentage and avg_response_time from all checks.
    /// - Throws: `validation` when `status` is `pending` or `responseTime` is negative; `notFound`.
    func recordCheck(_ id: ConnectionID, status: ConnectionStatus, responseTime: Int64?) async throws
        -> SystemConnection

    /// ``recordCheck(_:status:responseTime:)`` with the probe's reason kept on the health row.
    func recordCheck(_ id: ConnectionID, _ outcome: CheckOutcome) async throws -> SystemConnection

    /// The connection with this id, credentials masked. - Throws: `notFound`.
    func get(_ id: ConnectionID) async throws -> SystemConnection

    /// Connections, newest first, one page at a time.
    func list(_ page: PageRequest) async throws -> Page<SystemConnection>

    /// The connection's checks, newest first, one page at a time. - Throws: `notFound`.
    func healthHistory(_ id: ConnectionID, _ page: PageRequest) async throws -> Page<HealthCheck>

    /// Deletes the connection and its checks. - Throws: `notFound`.
    func delete(_ id: ConnectionID) async throws

    /// The credentials in clear, for the probes. Never log or return them. - Throws: `notFound`; `sealing`.
    func credentials(for id: ConnectionID) async throws -> JSONValue
}
