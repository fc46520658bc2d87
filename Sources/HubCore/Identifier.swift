import Foundation

/// A UUID that knows what it identifies, so an integration id cannot be passed where a webhook id is expected.
public struct Identifier<Entity>: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The underlying UUID.
    public let uuid: UUID

    /// Wraps an existing UUID.
    public init(_ uuid: UUID) { self.uuid = uuid }

    /// A new random (version 4) identifier.
    public static func generate() -> Self { Self(UUID()) }

    /// Parses the canonical text form. Throws ``HubError/validation(field:reason:)`` naming `field` otherwise.
    public init(parsing text: String, field: String) throws {
        guard let uuid = UUID(uuidString: text) else {
            throw HubError.validation(field: field, reason: "is not a UUID")
        }
        self.uuid = uuid
    }

    /// Lower-case canonical text, as stored and as shown in the API.
    public var description: String { uuid.uuidString.lowercased() }

    /// Decodes the canonical text form (either letter case). - Throws: `DecodingError` when it is not a UUID.
    public init(from decoder: any Decoder) throws {
        self.uuid = try decoder.singleValueContainer().decode(UUID.self)
    }

    /// Encodes the lower-case canonical text, as ``description``.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Identifies a row of `external_integrations`.
public typealias IntegrationID = Identifier<Integration>
/// Identifies a row of `sync_jobs`.
public typealias SyncJobID = Identifier<SyncJob>
/// Identifies a row of `sync_batches`.
public typealias SyncBatchID = Identifier<SyncBatch>
/// Identifies a row of `api_operations`.
public typealias OperationID = Identifier<APIOperation>
/// Identifies a row of `webhooks`.
public typealias WebhookID = Identifier<Webhook>
/// Identifies a row of `system_connections`.
public typealias ConnectionID = Identifier<SystemConnection>
/// Identifies a row of `connection_health`.
public typealias HealthCheckID = Identifier<HealthCheck>
