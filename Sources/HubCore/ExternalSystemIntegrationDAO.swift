/// DAO-MDE-03-08-01, External System Integration: registers HR/ERP systems and records their connectivity.
///
/// Every method validates its input before writing and throws ``HubError``; a failed call writes nothing.
/// Implementations are safe to call concurrently from many tasks and, on PostgreSQL, many processes.
public protocol ExternalSystemIntegrationDAO: Sendable {
    /// Step 1: validates the registration (system_id format, endpoint_url, auth_config shape, mapping_config)
    /// and inserts the integration with status `active`, `config_version` `v1.0` and `error_count` 0. The auth
    /// configuration is sealed before it is written.
    /// - Throws: `validation` naming the field; `conflict` when (system_id, integration_type) is already registered.
    func register(_ registration: IntegrationRegistration) async throws -> Integration

    /// Step 2: records the result of a connectivity test: status `active` when `reachable`, else `error`, and
    /// the test time. Returns the design's step-2 returns (status, last_sync, error_count, config_version).
    /// - Throws: `notFound` for an unknown id.
    func recordConnectivityTest(_ id: IntegrationID, reachable: Bool) async throws -> Integration

    /// The integration with this id, auth configuration masked. - Throws: `notFound`.
    func get(_ id: IntegrationID) async throws -> Integration

    /// Integrations, newest first, one page at a time.
    func list(_ page: PageRequest) async throws -> Page<Integration>

    /// Applies `update` in one statement and bumps `config_version` (v1.0 → v1.1 → …). Credentials are bound to the
    /// endpoint's origin: moving `endpoint_url` to another scheme, host or port requires `auth_config` in the same update.
    /// - Throws: `validation` (`auth_config` when the origin moves without it), `notFound`, `conflict` for a duplicate
    ///   (system_id, integration_type).
    func updateConfig(_ id: IntegrationID, _ update: IntegrationConfigUpdate) async throws -> Integration

    /// Deletes the integration with its sync jobs and batches.
    /// - Throws: `notFound`; `conflict` while one of its sync jobs is running.
    func delete(_ id: IntegrationID) async throws

    /// The auth configuration in clear, for the engines that call the external system. Never log or return it.
    /// - Throws: `notFound`; `sealing` when the sealing key is missing or the ciphertext was tampered with.
    func authConfig(for id: IntegrationID) async throws -> AuthConfig
}
