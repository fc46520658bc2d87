import Foundation
import HubCore

/// DAO-MDE-03-08-01 over any ``SQLDatabase``. The auth configuration is sealed with the row id as context; a
/// masked copy (``AuthConfig/masked``) is stored beside it, so reads never open the secret.
public struct IntegrationStore: ExternalSystemIntegrationDAO {
    let database: any SQLDatabase
    let sealer: SecretSealer
    let clock: WallClock

    public init(database: any SQLDatabase, sealer: SecretSealer, clock: WallClock = .system) {
        self.database = database
        self.sealer = sealer
        self.clock = clock
    }

    static let columns = """
        integration_id, system_id, integration_type, endpoint_url, auth_config_masked, mapping_config, status, last_sync, \
        error_count, config_version, last_tested_at, created_at, updated_at
        """

    public func register(_ registration: IntegrationRegistration) async throws -> Integration {
        // Step 1: validate system_id, endpoint_url, auth_config; then insert with status 'active'.
        let auth = try registration.validate()
        let id = IntegrationID.generate()
        let now = clock.now()
        let sealed = try seal(auth, id: id)
        return try await mapErrors {
            try await database.transaction { executor in
                let row = try await executor.queryOne(
                    """
                    INSERT INTO external_integrations (integration_id, system_id, integration_type, endpoint_url, \
                    auth_config, auth_config_masked, mapping_config, status, created_at, updated_at) \
                    VALUES ($1, $2, $3, $4, $5, $8, $6, 'active', $7, $7) RETURNING \(Self.columns)
                    """,
                    [
                        .uuid(id.uuid), .text(registration.systemID), .text(registration.integrationType),
                        .text(registration.endpointURL), .json(JSONValue.string(sealed).jsonText),
                        .optional(registration.mappingConfig.flatMap { $0 == .null ? nil : $0 }) { .json($0.jsonText) },
                        .timestamp(now), .json(auth.masked.jsonText),
                    ])
                let integration = try decode(row!)
                try await Self.emit("integration.created", integration, at: now, dialect: database.dialect, into: executor)
                return integration
            }
        }
    }

    /// The event of a change to an integration, in the change's transaction: its identity and state, never its
    /// credentials.
    static func emit(
        _ type: String, _ integration: Integration, at now: Date, dialect: SQLDialect, into executor: any SQLExecutor
    ) async throws {
        let payload: JSONValue = [
            "integration_id": .string(integration.id.description), "system_id": .string(integration.systemID),
            "integration_type": .string(integration.integrationType), "endpoint_url": .string(integration.endpointURL),
            "status": .string(integration.status.rawValue), "config_version": .string(integration.configVersion),
        ]
        try await SyncEngineStore.insertEvents([(type, payload)], at: now, dialect: dialect, into: executor)
    }

    public func recordConnectivityTest(_ id: IntegrationID, reachable: Bool) async throws -> Integration {
        // Step 2: status from the connectivity result; last_sync, error_count and config_version are kept
        // (see docs/design-notes.md).
        // A disabled integration stays disabled: the test time is recorded, the status is not touched.
        let status: IntegrationStatus = reachable ? .active : .error
        let row = try await database.queryOne(
            """
            UPDATE external_integrations SET status = CASE WHEN status = 'disabled' THEN status ELSE $1 END, \
            last_tested_at = $2, updated_at = $2 WHERE integration_id = $3 RETURNING \(Self.columns)
            """,
            [.text(status.rawValue), .timestamp(clock.now()), .uuid(id.uuid)])
        guard let row else { throw HubError.notFound(entity: "integration", id: id.description) }
        return try decode(row)
    }

    public func get(_ id: IntegrationID) async throws -> Integration {
        let row = try await database.queryOne(
            "SELECT \(Self.columns) FROM external_integrations WHERE integration_id = $1", [.uuid(id.uuid)])
        guard let row else { throw HubError.notFound(entity: "integration", id: id.description) }
        return try decode(row)
    }

    public func list(_ page: PageRequest) async throws -> Page<Integration> {
        let query = ListQuery(table: "external_integrations", idColumn: "integration_id", columns: Self.columns)
        return try await query.run(on: database, page: page) { row in
            let integration = try decode(row)
            return (integration, PageCursor(createdAt: integration.createdAt, id: integration.id.uuid))
        }
    }

    public func updateConfig(_ id: IntegrationID, _ update: IntegrationConfigUpdate) async throws -> Integration {
        let auth = try update.validate()
        let now = clock.now()
        let sealed = try auth.map { try seal($0, id: id) }
        // Credentials are bound to the endpoint's origin: moving the endpoint elsewhere needs them given again, so a
        // caller who cannot read them cannot point them at a host of their choosing. The row is locked while checked.
        let lock = database.dialect == .postgres ? " FOR UPDATE" : ""
        let row: SQLRow? = try await mapErrors {
            try await database.transaction { executor in
            if let endpointURL = update.endpointURL, auth == nil {
                guard
                    let current = try await executor.queryOne(
                        "SELECT endpoint_url FROM external_integrations WHERE integration_id = $1\(lock)", [.uuid(id.uuid)])
                else { return nil }
                if Validate.origin(of: endpointURL) != Validate.origin(of: try current.string("endpoint_url")) {
                    throw HubError.validation(
                        field: "auth_config", reason: "must be given again when endpoint_url moves to another origin")
                }
            }
            // One statement: COALESCE patches, and the version bump computed from the row being updated.
            let updated = try await executor.queryOne(
                """
                UPDATE external_integrations SET \
                integration_type = COALESCE($1, integration_type), endpoint_url = COALESCE($2, endpoint_url), \
                auth_config = COALESCE($3, auth_config), auth_config_masked = COALESCE($8, auth_config_masked), mapping_config = COALESCE($4, mapping_config), \
                status = COALESCE($5, status), config_revision = config_revision + 1, \
                config_version = 'v1.' || (config_revision + 1), updated_at = $6 \
                WHERE integration_id = $7 RETURNING \(Self.columns)
                """,
                [
                    .optional(update.integrationType) { .text($0) }, .optional(update.endpointURL) { .text($0) },
                    .optional(sealed) { .json(JSONValue.string($0).jsonText) },
                    .optional(update.mappingConfig) { .json($0.jsonText) },
                    .optional(update.status) { .text($0.rawValue) }, .timestamp(now), .uuid(id.uuid),
                    .optional(auth) { .json($0.masked.jsonText) },
                ])
            if let updated { try await Self.emit("integration.updated", try decode(updated), at: now, dialect: database.dialect, into: executor) }
            return updated
            }
        }
        guard let row else { throw HubError.notFound(entity: "integration", id: id.description) }
        return try decode(row)
    }

    public func delete(_ id: IntegrationID) async throws {
        // Lock the row first (PostgreSQL: FOR UPDATE waits for a concurrent sync start, whose foreign key holds a
        // KEY SHARE lock), then look for running jobs in a fresh statement, then delete: a job started meanwhile is
        // seen, never cascaded away.
        let lock = database.dialect == .postgres ? " FOR UPDATE" : ""
        try await database.transaction { executor in
            guard
                let current = try await executor.queryOne(
                    "SELECT \(Self.columns) FROM external_integrations WHERE integration_id = $1\(lock)", [.uuid(id.uuid)])
            else { throw HubError.notFound(entity: "integration", id: id.description) }
            if try await executor.queryOne(
                "SELECT sync_job_id FROM sync_jobs WHERE integration_id = $1 AND status = 'running' LIMIT 1", [.uuid(id.uuid)]) != nil
            {
                throw HubError.conflict(field: nil, reason: "the integration has a running sync job; cancel or finish it first")
            }
            // Synced records carry no foreign key (it would cost every synced row a lookup): they go here, in the same
            // transaction; no job is running, so none is being written.
            _ = try await executor.query("DELETE FROM sync_records WHERE integration_id = $1", [.uuid(id.uuid)])
            _ = try await executor.query("DELETE FROM external_integrations WHERE integration_id = $1", [.uuid(id.uuid)])
            try await Self.emit("integration.deleted", try decode(current), at: clock.now(), dialect: database.dialect, into: executor)
        }
    }

    public func authConfig(for id: IntegrationID) async throws -> AuthConfig {
        let row = try await database.queryOne(
            "SELECT auth_config FROM external_integrations WHERE integration_id = $1", [.uuid(id.uuid)])
        guard let row else { throw HubError.notFound(entity: "integration", id: id.description) }
        return try unseal(row, id: id)
    }

    // MARK: - Sealing and decoding

    private func context(_ id: IntegrationID) -> String { "external_integrations.auth_config:\(id)" }

    private func seal(_ auth: AuthConfig, id: IntegrationID) throws -> String {
        try sealer.seal(auth.json.jsonText, context: context(id))
    }

    private func unseal(_ row: SQLRow, id: IntegrationID) throws -> AuthConfig {
        guard let sealed = try row.json("auth_config").stringValue else {
            throw HubError.sealing(reason: "stored auth_config is not sealed")
        }
        let text = try sealer.open(sealed, context: context(id))
        return try AuthConfig(json: try JSONValue.parse(text, field: "auth_config"))
    }

    private func decode(_ row: SQLRow) throws -> Integration {
        let id = IntegrationID(try row.uuid("integration_id"))
        guard let status = IntegrationStatus(rawValue: try row.string("status")) else {
            throw SQLError.decoding(column: "status")
        }
        return Integration(
            id: id, systemID: try row.string("system_id"), integrationType: try row.string("integration_type"),
            endpointURL: try row.string("endpoint_url"), maskedAuthConfig: try row.json("auth_config_masked"),
            mappingConfig: try row.optionalJSON("mapping_config"), status: status,
            lastSync: try row.optionalDate("last_sync"), errorCount: try row.int("error_count"),
            configVersion: try row.string("config_version"), lastTestedAt: try row.optionalDate("last_tested_at"),
            createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"))
    }

    private func mapErrors<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch SQLError.uniqueViolation {
            throw HubError.conflict(
                field: "system_id", reason: "an integration of this type is already registered for this system_id")
        }
    }
}
