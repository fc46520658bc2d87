import Foundation
import HubCore

/// API keys over any ``SQLDatabase``: only hashes are stored.
public struct APIKeyStore: APIKeyDAO {
    let database: any SQLDatabase
    let clock: WallClock

    /// A store over `database`, with timestamps from `clock`.
    public init(database: any SQLDatabase, clock: WallClock = .system) {
        self.database = database
        self.clock = clock
    }

    static let columns = "key_id, name, created_at, last_used_at, revoked_at"

    public func create(name: String) async throws -> (key: APIKey, token: String) {
        try Validate.token(name, field: "name")
        let (keyID, token) = APIKey.generate()
        do {
            let row = try await database.queryOne(
                "INSERT INTO api_keys (key_id, name, key_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING \(Self.columns)",
                [.text(keyID), .text(name), .text(APIKey.hash(token)), .timestamp(clock.now())])
            return (try decode(row!), token)
        } catch SQLError.uniqueViolation {
            throw HubError.conflict(field: "name", reason: "an API key with this name already exists")
        }
    }

    public func list() async throws -> [APIKey] {
        try await database.query("SELECT \(Self.columns) FROM api_keys ORDER BY created_at, key_id", []).map(decode)
    }

    public func revoke(_ nameOrKeyID: String) async throws -> APIKey {
        // A key id (12 hex characters) is matched as an id only when no key has that name, so one argument never
        // revokes two keys.
        let isKeyID = nameOrKeyID.count == 12 && nameOrKeyID.allSatisfy(\.isHexDigit)
        let byName = try await database.queryOne("SELECT key_id FROM api_keys WHERE name = $1", [.text(nameOrKeyID)])
        let column = byName == nil && isKeyID ? "key_id" : "name"
        let row = try await database.queryOne(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE \(column) = $2 RETURNING \(Self.columns)",
            [.timestamp(clock.now()), .text(nameOrKeyID)])
        guard let row else { throw HubError.notFound(entity: "API key", id: nameOrKeyID) }
        return try decode(row)
    }

    public func authenticate(_ token: String) async throws -> APIKey? {
        guard let keyID = APIKey.keyID(of: token) else { return nil }
        guard
            let row = try await database.queryOne(
                "SELECT \(Self.columns), key_hash FROM api_keys WHERE key_id = $1 AND revoked_at IS NULL", [.text(keyID)]),
            APIKey.constantTimeEquals(try row.string("key_hash"), APIKey.hash(token))
        else { return nil }
        let key = try decode(row)
        let now = clock.now()
        if key.lastUsedAt.map({ now.timeIntervalSince($0) >= 60 }) ?? true {
            _ = try await database.query(
                "UPDATE api_keys SET last_used_at = $1 WHERE key_id = $2", [.timestamp(now), .text(keyID)])
        }
        return key
    }

    public func activeCount() async throws -> Int {
        Int(try await database.queryOne("SELECT COUNT(*) AS n FROM api_keys WHERE revoked_at IS NULL", [])!.int("n"))
    }

    private func decode(_ row: SQLRow) throws -> APIKey {
        APIKey(
            keyID: try row.string("key_id"), name: try row.string("name"), createdAt: try row.date("created_at"),
            lastUsedAt: try row.optionalDate("last_used_at"), revokedAt: try row.optionalDate("revoked_at"))
    }
}
