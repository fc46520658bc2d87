import Foundation
import HubCore

/// DAO-MDE-03-08-04 over any ``SQLDatabase``. The signing secret and the custom headers are sealed with the row id
/// as context; reads return the headers masked (``Webhook/mask(headers:)``).
public struct WebhookStore: WebhookManagementDAO {
    let database: any SQLDatabase
    let sealer: SecretSealer
    let clock: WallClock

    public init(database: any SQLDatabase, sealer: SecretSealer, clock: WallClock = .system) {
        self.database = database
        self.sealer = sealer
        self.clock = clock
    }

    /// Webhook columns joined with their statistics (alias `w` for webhooks, `s` for webhook_statistics).
    static let columns = """
        w.webhook_id, w.webhook_url, w.event_types, w.retry_config, w.headers_masked, w.status, w.last_tested, \
        w.test_result, w.created_at, w.updated_at, w.ordered, w.rate_limit, w.failing_since, w.disabled_reason, \
        s.success_count, s.failure_count, s.last_triggered
        """
    static let joined = "webhooks w JOIN webhook_statistics s ON s.webhook_id = w.webhook_id"

    public func register(_ registration: WebhookRegistration) async throws -> RegisteredWebhook {
        // Step 1's validation: webhook_url, event_types, retry_config (and secret and headers).
        try registration.validate()
        let id = WebhookID.generate()
        let secret = registration.secretKey ?? WebhookSecret.generate()
        let sealed = try sealer.seal(secret, context: context(id))
        let headers = registration.headers.flatMap { $0 == .null ? nil : $0 }
        let sealedHeaders = try headers.map { try sealer.seal($0.jsonText, context: headersContext(id)) }
        let now = clock.now()
        try await database.transaction { executor in
            // Step 1: register the endpoint.
            _ = try await executor.query(
                """
                INSERT INTO webhooks (webhook_id, webhook_url, event_types, secret_key, retry_config, headers, \
                headers_masked, status, created_at, updated_at, ordered, rate_limit) \
                VALUES ($1, $2, $3, $4, $5, $6, $8, 'active', $7, $7, $9, $10) RETURNING webhook_id
                """,
                [
                    .uuid(id.uuid), .text(registration.webhookURL), .textArray(registration.eventTypes), .text(sealed),
                    .optional(registration.retryConfig.flatMap { $0 == .null ? nil : $0 }) { .json($0.jsonText) },
                    .optional(try sealedHeaders) { .json(JSONValue.string($0).jsonText) }, .timestamp(now),
                    .optional(headers) { .json(Webhook.mask(headers: $0).jsonText) }, .bool(registration.ordered),
                    .optional(registration.rateLimit) { .int(Int64($0)) },
                ])
            // Step 3: initialise its statistics in the same transaction, so every webhook has a row to count into.
            _ = try await executor.query(
                """
                INSERT INTO webhook_statistics (webhook_id, success_count, failure_count, last_triggered, created_at) \
                VALUES ($1, 0, 0, NULL, $2) RETURNING webhook_id, success_count, failure_count, last_triggered
                """, [.uuid(id.uuid), .timestamp(now)])
        }
        return RegisteredWebhook(webhook: try await get(id), secret: secret)
    }

    public func recordTestResult(_ id: WebhookID, passed: Bool, result: JSONValue) async throws -> Webhook {
        // Step 2: status from the test, with its details.
        try Validate.noNUL(result, field: "test_result")
        let status: WebhookStatus = passed ? .active : .failing
        let row = try await database.queryOne(
            """
            UPDATE webhooks SET status = $1, last_tested = $2, test_result = $3, updated_at = $2 \
            WHERE webhook_id = $4 AND status <> 'disabled' RETURNING webhook_id
            """, [.text(status.rawValue), .timestamp(clock.now()), .json(result.jsonText), .uuid(id.uuid)])
        let webhook = try await get(id)
        if row == nil {
            throw HubError.conflict(field: "status", reason: "the webhook is disabled; enable it before testing")
        }
        return webhook
    }

    public func recordDelivery(_ id: WebhookID, succeeded: Bool) async throws -> Webhook {
        let row = try await database.queryOne(
            """
            UPDATE webhook_statistics SET success_count = success_count + $1, failure_count = failure_count + $2, \
            last_triggered = $3 WHERE webhook_id = $4 RETURNING webhook_id
            """, [.int(succeeded ? 1 : 0), .int(succeeded ? 0 : 1), .timestamp(clock.now()), .uuid(id.uuid)])
        guard row != nil else { throw HubError.notFound(entity: "webhook", id: id.description) }
        return try await get(id)
    }

    public func get(_ id: WebhookID) async throws -> Webhook {
        let row = try await database.queryOne(
            "SELECT \(Self.columns) FROM \(Self.joined) WHERE w.webhook_id = $1", [.uuid(id.uuid)])
        guard let row else { throw HubError.notFound(entity: "webhook", id: id.description) }
        return try decode(row)
    }

    public func list(_ page: PageRequest) async throws -> Page<Webhook> {
        // The join as a derived table, so the list orders by the webhook's own created_at and id.
        let query = ListQuery(
            table: "(SELECT \(Self.columns) FROM \(Self.joined)) AS l", idColumn: "webhook_id", columns: "*")
        return try await query.run(on: database, page: page) { row in
            let webhook = try decode(row)
            return (webhook, PageCursor(createdAt: webhook.createdAt, id: webhook.id.uuid))
        }
    }

    public func update(_ id: WebhookID, _ update: WebhookUpdate) async throws -> Webhook {
        try update.validate()
        // Custom headers (often an Authorization) are bound to the URL's origin: moving the URL to another scheme, host or
        // port needs them given again (or `{}`), so a caller who cannot read them cannot send them elsewhere. The row is
        // locked while checked.
        let lock = database.dialect == .postgres ? " FOR UPDATE" : ""
        let row: SQLRow? = try await database.transaction { executor in
            if let url = update.webhookURL, update.headers == nil {
                guard
                    let current = try await executor.queryOne(
                        "SELECT webhook_url, headers_masked FROM webhooks WHERE webhook_id = $1\(lock)", [.uuid(id.uuid)])
                else { return nil }
                let hasHeaders = try current.optionalJSON("headers_masked").map { $0.objectValue?.isEmpty != true } ?? false
                if hasHeaders, Validate.origin(of: url) != Validate.origin(of: try current.string("webhook_url")) {
                    throw HubError.validation(field: "headers", reason: "must be given again when webhook_url moves to another origin")
                }
            }
            return try await executor.queryOne(
                """
                UPDATE webhooks SET webhook_url = COALESCE($1, webhook_url), event_types = COALESCE($2, event_types), \
                retry_config = COALESCE($3, retry_config), headers = COALESCE($4, headers), \
                headers_masked = COALESCE($8, headers_masked), status = COALESCE($5, status), updated_at = $6, \
                ordered = COALESCE($9, ordered), \
                rate_limit = CASE WHEN CAST($10 AS integer) IS NULL THEN rate_limit WHEN CAST($10 AS integer) = 0 THEN NULL \
                ELSE CAST($10 AS integer) END, \
                failing_since = CASE WHEN CAST($5 AS text) = 'active' THEN NULL ELSE failing_since END, \
                disabled_reason = CASE WHEN CAST($5 AS text) = 'disabled' THEN 'disabled by a user' \
                WHEN CAST($5 AS text) IS NULL THEN disabled_reason ELSE NULL END \
                WHERE webhook_id = $7 RETURNING webhook_id
                """,
                [
                    .optional(update.webhookURL) { .text($0) }, .optional(update.eventTypes) { .textArray($0) },
                    .optional(update.retryConfig) { .json($0.jsonText) },
                    .optional(try update.headers.map { try sealer.seal($0.jsonText, context: headersContext(id)) }) {
                        .json(JSONValue.string($0).jsonText)
                    },
                    .optional(update.status) { .text($0.rawValue) }, .timestamp(clock.now()), .uuid(id.uuid),
                    .optional(update.headers) { .json(Webhook.mask(headers: $0).jsonText) },
                    .optional(update.ordered) { .bool($0) }, .optional(update.rateLimit) { .int(Int64($0)) },
                ])
        }
        guard row != nil else { throw HubError.notFound(entity: "webhook", id: id.description) }
        return try await get(id)
    }

    /// Deletes the webhook with its statistics, messages and their attempts, in one transaction. On PostgreSQL messages
    /// and attempts have no foreign keys (migration 7), so this transaction takes the rows their writers take, in their
    /// order: the statistics row (outcome transactions update it before they write attempts), the webhook row (the
    /// fan-out holds it while it writes messages), then its messages (retention locks them before their attempts). A
    /// writer that began earlier has committed by then, and one that begins later finds the webhook gone.
    public func delete(_ id: WebhookID) async throws {
        try await database.transaction { executor in
            let forUpdate = database.dialect == .postgres ? " FOR UPDATE" : ""
            guard
                try await executor.queryOne(
                    "SELECT webhook_id FROM webhook_statistics WHERE webhook_id = $1\(forUpdate)", [.uuid(id.uuid)]) != nil,
                try await executor.queryOne("SELECT webhook_id FROM webhooks WHERE webhook_id = $1\(forUpdate)", [.uuid(id.uuid)]) != nil
            else { throw HubError.notFound(entity: "webhook", id: id.description) }
            // Messages before their attempts, as retention locks them (skipping locked ones): the two never wait in a cycle.
            if database.dialect == .postgres {
                _ = try await executor.query(
                    "SELECT message_seq FROM webhook_messages WHERE webhook_id = $1 ORDER BY message_seq FOR UPDATE", [.uuid(id.uuid)])
            }
            _ = try await executor.query(
                "DELETE FROM webhook_attempts WHERE message_seq IN (SELECT message_seq FROM webhook_messages WHERE webhook_id = $1)",
                [.uuid(id.uuid)])
            _ = try await executor.query("DELETE FROM webhook_messages WHERE webhook_id = $1", [.uuid(id.uuid)])
            _ = try await executor.query("DELETE FROM webhooks WHERE webhook_id = $1", [.uuid(id.uuid)])
        }
    }

    public func signingSecret(for id: WebhookID) async throws -> String {
        try await signingSecrets(for: id)[0]
    }

    public func deliveryHeaders(for id: WebhookID) async throws -> [String: String] {
        let row = try await database.queryOne("SELECT headers FROM webhooks WHERE webhook_id = $1", [.uuid(id.uuid)])
        guard let row else { throw HubError.notFound(entity: "webhook", id: id.description) }
        guard let stored = try row.optionalJSON("headers") else { return [:] }
        guard let sealed = stored.stringValue else { throw HubError.sealing(reason: "stored headers are not sealed") }
        let text = try sealer.open(sealed, context: headersContext(id))
        return try Validate.stringMap(try JSONValue.parse(text, field: "headers"), field: "headers")
    }

    public func signingSecrets(for id: WebhookID) async throws -> [String] {
        let row = try await database.queryOne(
            "SELECT secret_key, previous_secrets FROM webhooks WHERE webhook_id = $1", [.uuid(id.uuid)])
        guard let row else { throw HubError.notFound(entity: "webhook", id: id.description) }
        guard let sealed = try row.optionalString("secret_key") else {
            throw HubError.sealing(reason: "the webhook has no stored secret")
        }
        let current = try sealer.open(sealed, context: context(id))
        return [current] + (try previousSecrets(row, id: id).filter { $0.expiresAt > clock.now() }.map(\.secret))
    }

    public func rotateSecret(_ id: WebhookID, newSecret: String?, grace: Duration) async throws -> RotatedSecret {
        if let newSecret { try WebhookSecret.validate(newSecret, field: "secret_key") }
        let seconds = grace.components.seconds
        guard (0...(30 * 86_400)).contains(seconds) else {
            throw HubError.validation(field: "grace_seconds", reason: "must be between 0 and 2592000 (30 days)")
        }
        let secret = newSecret ?? WebhookSecret.generate()
        let now = clock.now()
        let expiresAt = now.addingTimeInterval(TimeInterval(seconds))
        return try await database.transaction { executor in
            guard let row = try await executor.queryOne(
                "SELECT secret_key, previous_secrets FROM webhooks WHERE webhook_id = $1\(database.dialect == .postgres ? " FOR UPDATE" : "")",
                [.uuid(id.uuid)])
            else { throw HubError.notFound(entity: "webhook", id: id.description) }
            // Without a grace period every earlier secret stops signing at once.
            var kept = grace > .zero ? try previousSecrets(row, id: id).filter { $0.expiresAt > now } : []
            if let sealed = try row.optionalString("secret_key"), grace > .zero {
                kept.insert((try sealer.open(sealed, context: context(id)), expiresAt), at: 0)
            }
            let list: JSONValue = .array(kept.map {
                ["secret": .string($0.secret), "expires_at": .int(SQLValue.microseconds($0.expiresAt))]
            })
            _ = try await executor.query(
                "UPDATE webhooks SET secret_key = $1, previous_secrets = $2, updated_at = $3 WHERE webhook_id = $4",
                [
                    .text(try sealer.seal(secret, context: context(id))),
                    kept.isEmpty ? .null : .text(try sealer.seal(list.jsonText, context: previousContext(id))), .timestamp(now),
                    .uuid(id.uuid),
                ])
            return RotatedSecret(secret: secret, previousValidUntil: kept.isEmpty ? nil : expiresAt)
        }
    }

    private func previousSecrets(_ row: SQLRow, id: WebhookID) throws -> [(secret: String, expiresAt: Date)] {
        guard let sealed = try row.optionalString("previous_secrets") else { return [] }
        let list = try JSONValue.parse(try sealer.open(sealed, context: previousContext(id)), field: "previous_secrets")
        return (list.arrayValue ?? []).compactMap { entry in
            guard let members = entry.objectValue, let secret = members["secret"]?.stringValue,
                let expires = members["expires_at"]?.intValue
            else { return nil }
            return (secret, SQLValue.date(microseconds: expires))
        }
    }

    private func context(_ id: WebhookID) -> String { "webhooks.secret_key:\(id)" }
    private func previousContext(_ id: WebhookID) -> String { "webhooks.previous_secrets:\(id)" }
    private func headersContext(_ id: WebhookID) -> String { "webhooks.headers:\(id)" }

    private func decode(_ row: SQLRow) throws -> Webhook {
        guard let status = WebhookStatus(rawValue: try row.string("status")) else {
            throw SQLError.decoding(column: "status")
        }
        return Webhook(
            id: WebhookID(try row.uuid("webhook_id")), webhookURL: try row.string("webhook_url"),
            eventTypes: try row.stringArray("event_types"), retryConfig: try row.optionalJSON("retry_config"),
            headers: try row.optionalJSON("headers_masked"), status: status, lastTested: try row.optionalDate("last_tested"),
            testResult: try row.optionalJSON("test_result"), successCount: try row.int("success_count"),
            failureCount: try row.int("failure_count"), lastTriggered: try row.optionalDate("last_triggered"),
            createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"), ordered: try row.bool("ordered"),
            rateLimit: try row.optionalInt("rate_limit").map(Int.init), failingSince: try row.optionalDate("failing_since"),
            disabledReason: try row.optionalString("disabled_reason"))
    }
}
