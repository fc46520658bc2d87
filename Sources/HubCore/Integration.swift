import Foundation

/// Status of an external integration.
public enum IntegrationStatus: String, Sendable, Codable, CaseIterable {
    /// Registered and, when tested, reachable.
    case active
    /// The last connectivity test failed.
    case error
    /// Switched off by an operator; no sync runs.
    case disabled
}

/// The arguments of DAO-MDE-03-08-01 (External System Integration).
public struct IntegrationRegistration: Sendable, Hashable {
    /// External system identifier: 1–64 letters, digits, `.`, `_`, `-`, starting with a letter or digit.
    public var systemID: String
    /// Type of integration: an upper-case code such as `HR`, `ERP`, `PAYROLL` (2–32 of `A–Z`, `0–9`, `_`).
    public var integrationType: String
    /// Absolute http(s) URL of the external system.
    public var endpointURL: String
    /// Authentication configuration, see ``AuthConfig``.
    public var authConfig: JSONValue
    /// Optional data mapping configuration (a JSON object).
    public var mappingConfig: JSONValue?

    /// Creates a registration with every member given; nothing is validated until ``validate()``.
    public init(
        systemID: String, integrationType: String, endpointURL: String, authConfig: JSONValue,
        mappingConfig: JSONValue? = nil
    ) {
        self.systemID = systemID
        self.integrationType = integrationType
        self.endpointURL = endpointURL
        self.authConfig = authConfig
        self.mappingConfig = mappingConfig
    }

    /// Step 1's data validation. Returns the parsed auth configuration.
    public func validate() throws -> AuthConfig {
        try Validate.token(systemID, field: "system_id")
        try Integration.validateType(integrationType)
        try Validate.httpURL(endpointURL, field: "endpoint_url")
        try Validate.noNUL(authConfig, field: "auth_config")
        try Validate.noNUL(mappingConfig, field: "mapping_config")
        let auth = try AuthConfig(json: authConfig)
        try Validate.objectIfPresent(mappingConfig, field: "mapping_config")
        _ = try SyncConfiguration.parse(mappingConfig)
        return auth
    }
}

/// A change to an integration's configuration. `nil` members stay as they are; any change bumps
/// `config_version` (`v1.0` → `v1.1` → …).
public struct IntegrationConfigUpdate: Sendable, Hashable {
    /// New integration type (2–32 of `A–Z`, `0–9`, `_`, such as `HR`), or `nil` to keep it.
    public var integrationType: String?
    /// New absolute http(s) URL, or `nil` to keep it.
    public var endpointURL: String?
    /// New authentication configuration (see ``AuthConfig``), sealed at rest, or `nil` to keep it.
    public var authConfig: JSONValue?
    /// New mapping configuration (a JSON object), or `nil` to keep it.
    public var mappingConfig: JSONValue?
    /// New status, or `nil` to keep it.
    public var status: IntegrationStatus?

    /// Creates an update with every member given; ``validate()`` requires at least one non-nil member.
    public init(
        integrationType: String? = nil, endpointURL: String? = nil, authConfig: JSONValue? = nil,
        mappingConfig: JSONValue? = nil, status: IntegrationStatus? = nil
    ) {
        self.integrationType = integrationType
        self.endpointURL = endpointURL
        self.authConfig = authConfig
        self.mappingConfig = mappingConfig
        self.status = status
    }

    /// Validates every present member. Returns the parsed auth configuration when one is given.
    public func validate() throws -> AuthConfig? {
        guard integrationType != nil || endpointURL != nil || authConfig != nil || mappingConfig != nil
            || status != nil
        else {
            throw HubError.validation(field: "body", reason: "must change at least one field")
        }
        try Validate.noNUL(authConfig, field: "auth_config")
        try Validate.noNUL(mappingConfig, field: "mapping_config")
        if let integrationType { try Integration.validateType(integrationType) }
        if let endpointURL { try Validate.httpURL(endpointURL, field: "endpoint_url") }
        if let mappingConfig {
            guard mappingConfig.objectValue != nil else {
                throw HubError.validation(field: "mapping_config", reason: "must be a JSON object, not \(mappingConfig.typeName)")
            }
            _ = try SyncConfiguration.parse(mappingConfig)
        }
        return try authConfig.map { try AuthConfig(json: $0) }
    }
}

/// An external integration as stored: the design's returns (integration_id, status, last_sync, error_count,
/// config_version) and the registration, with the auth configuration masked.
public struct Integration: Sendable, Hashable {
    /// The integration's id (integration_id).
    public var id: IntegrationID
    /// External system identifier (system_id).
    public var systemID: String
    /// Type of integration, an upper-case code such as `HR`.
    public var integrationType: String
    /// Absolute http(s) URL of the external system.
    public var endpointURL: String
    /// The auth configuration with secret values masked (``AuthConfig/masked``).
    public var maskedAuthConfig: JSONValue
    /// Data mapping configuration (a JSON object), or `nil` when none was given.
    public var mappingConfig: JSONValue?
    /// `active` at registration; set by connectivity tests (`active` or `error`) and by config updates.
    public var status: IntegrationStatus
    /// When the last sync of this integration finished (set by the Data Synchronization DAO's step 3).
    public var lastSync: Date?
    /// Synchronization errors accumulated over finished jobs.
    public var errorCount: Int64
    /// `v1.0` at registration, bumped by every configuration update.
    public var configVersion: String
    /// When connectivity was last tested, and whether the test passed.
    public var lastTestedAt: Date?
    /// When the integration was registered; lists are ordered by it.
    public var createdAt: Date
    /// When the row last changed: registration, connectivity test, config update or a finalized sync job.
    public var updatedAt: Date

    /// Creates a value with every member given; nothing is validated.
    public init(
        id: IntegrationID, systemID: String, integrationType: String, endpointURL: String,
        maskedAuthConfig: JSONValue, mappingConfig: JSONValue?, status: IntegrationStatus, lastSync: Date?,
        errorCount: Int64, configVersion: String, lastTestedAt: Date?, createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.systemID = systemID
        self.integrationType = integrationType
        self.endpointURL = endpointURL
        self.maskedAuthConfig = maskedAuthConfig
        self.mappingConfig = mappingConfig
        self.status = status
        self.lastSync = lastSync
        self.errorCount = errorCount
        self.configVersion = configVersion
        self.lastTestedAt = lastTestedAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    static func validateType(_ value: String) throws {
        guard (2...32).contains(value.count),
            value.first.map({ $0 >= "A" && $0 <= "Z" }) == true,
            value.allSatisfy({ ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "_" })
        else {
            throw HubError.validation(
                field: "integration_type",
                reason: "must be an upper-case code of 2 to 32 characters (A-Z, 0-9, _), such as HR or ERP")
        }
    }
}

/// One page of a list, newest first (creation time, then id). Pass `nextCursor` back to get the following page.
public struct Page<Item: Sendable>: Sendable {
    /// This page's items, at most the requested limit.
    public var items: [Item]
    /// Opaque cursor for the next page; `nil` on the last page.
    public var nextCursor: String?

    /// Creates a page with every member given.
    public init(items: [Item], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }
}

/// A page request: at most `limit` items (1…500) after `cursor`.
public struct PageRequest: Sendable, Hashable {
    /// Maximum number of items, 1…500 (default 50).
    public var limit: Int
    /// The `nextCursor` of the previous page; `nil` for the first page.
    public var cursor: String?

    /// Creates a request with every member given; by default the first 50 items.
    public init(limit: Int = 50, cursor: String? = nil) {
        self.limit = limit
        self.cursor = cursor
    }

    /// Validates the limit.
    public func validate() throws {
        try Validate.range(limit, 1...500, field: "limit")
    }
}
