import HubCore

/// The five DAOs over one database, sealer and clock: what the server, the workers and the CLI use.
public struct HubStores: Sendable {
    /// The database every DAO runs on.
    public let database: any SQLDatabase
    /// DAO-MDE-03-08-01, External System Integration.
    public let integrations: any ExternalSystemIntegrationDAO
    /// DAO-MDE-03-08-02, Data Synchronization.
    public let syncJobs: any DataSynchronizationDAO
    /// DAO-MDE-03-08-03, API Operation: the store, or an ``OperationRecorder`` in front of it (`hub serve`).
    public var apiOperations: any APIOperationDAO
    /// DAO-MDE-03-08-04, Webhook Management.
    public let webhooks: any WebhookManagementDAO
    /// DAO-MDE-03-08-05, System Connectivity.
    public let connections: any SystemConnectivityDAO
    /// API keys of the HTTP API.
    public let apiKeys: any APIKeyDAO

    /// The DAOs over `database`. Secrets are sealed with `sealer`; timestamps come from `clock`.
    /// `redactedHeaders` adds header names to the ones API operations never store.
    public init(database: any SQLDatabase, sealer: SecretSealer, clock: WallClock = .system, redactedHeaders: Set<String> = []) {
        self.database = database
        integrations = IntegrationStore(database: database, sealer: sealer, clock: clock)
        syncJobs = SyncJobStore(database: database, clock: clock)
        apiOperations = APIOperationStore(database: database, clock: clock, redactedHeaders: redactedHeaders)
        webhooks = WebhookStore(database: database, sealer: sealer, clock: clock)
        connections = ConnectionStore(database: database, sealer: sealer, clock: clock)
        apiKeys = APIKeyStore(database: database, clock: clock)
    }

    /// Applies pending migrations (see ``Migrator``).
    public func migrate() async throws { try await Migrator(database: database).migrate() }
}
