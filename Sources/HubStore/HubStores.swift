import HubCore

/// The five DAOs over one database, sealer and clock: what the server, the workers and the CLI use.
public struct HubStores: Sendable {
    public let database: any SQLDatabase
    public let integrations: any ExternalSystemIntegrationDAO
    public let syncJobs: any DataSynchronizationDAO
    public let apiOperations: any APIOperationDAO
    public let webhooks: any WebhookManagementDAO
    public let connections: any SystemConnectivityDAO

    /// The DAOs over `database`. Secrets are sealed with `sealer`; timestamps come from `clock`.
    public init(database: any SQLDatabase, sealer: SecretSealer, clock: WallClock = .system) {
        self.database = database
        integrations = IntegrationStore(database: database, sealer: sealer, clock: clock)
        syncJobs = SyncJobStore(database: database, clock: clock)
        apiOperations = APIOperationStore(database: database, clock: clock)
        webhooks = WebhookStore(database: database, sealer: sealer, clock: clock)
        connections = ConnectionStore(database: database, sealer: sealer, clock: clock)
    }

    /// Applies pending migrations (see ``Migrator``).
    public func migrate() async throws { try await Migrator(database: database).migrate() }
}
