import Foundation

/// The events the hub emits, by dotted name. Webhooks subscribe by exact name, by `prefix.*` or by `*`; a pattern
/// that matches no event here is refused at registration.
public enum EventCatalog {
    /// Every event type with what it reports.
    public static let types: [String: String] = [
        "sync.completed": "A sync job ended completed or completed_with_errors (its summary)",
        "sync.failed": "A sync job failed (its summary and reason)",
        "sync.cancelled": "A sync job was cancelled (its summary)",
        "record.created": "A synced record appeared (or returned after a deletion)",
        "record.updated": "A synced record's content changed",
        "record.deleted": "A full sync no longer found a record",
        "integration.created": "An integration was registered",
        "integration.updated": "An integration's registration changed",
        "integration.deleted": "An integration was deleted",
        "connection.up": "A connection became healthy",
        "connection.down": "A connection was declared down",
        "connection.degraded": "A connection answered, degraded",
        "webhook.disabled": "A webhook was disabled (410 Gone, or failing for the configured period)",
        "webhook.test": "An endpoint test (sent by the test step, not through subscriptions)",
    ]

    /// Whether `pattern` (`name`, `prefix.*` or `*`) matches the event type `type`.
    public static func matches(_ pattern: String, _ type: String) -> Bool {
        if pattern == "*" { return true }
        if pattern.hasSuffix(".*") { return type.hasPrefix(pattern.dropLast()) }
        return pattern == type
    }

    /// Whether `pattern` matches at least one event of the catalog.
    public static func isKnown(_ pattern: String) -> Bool {
        types.keys.contains { matches(pattern, $0) }
    }
}

/// Where a message stands.
public enum WebhookMessageStatus: String, Sendable, Codable, CaseIterable {
    /// Waiting for its next attempt (or being attempted).
    case pending
    /// A 2xx answer was received.
    case succeeded
    /// No attempt remains (or the endpoint answered 410 Gone); replay or recover sends it again.
    case failed
}

/// One event for one webhook: what the dispatcher delivers, with the same `webhook-id` on every attempt.
public struct WebhookMessage: Sendable, Hashable {
    /// `msg_<sequence>`: the `webhook-id` header of every attempt.
    public var id: String { "msg_\(sequence)" }
    /// The message's order of creation (per-endpoint order of ordered endpoints).
    public var sequence: Int64
    public var webhookID: WebhookID
    /// The event's outbox sequence (`evt_<n>`).
    public var eventSequence: Int64
    public var eventType: String
    /// The exact body every attempt sends.
    public var body: String
    public var status: WebhookMessageStatus
    /// Attempts made so far.
    public var attempts: Int
    /// When the next attempt is due (pending messages).
    public var nextAttemptAt: Date?
    public var lastStatusCode: Int?
    public var lastError: String?
    public var eventCreatedAt: Date
    public var createdAt: Date
    public var deliveredAt: Date?

    public init(
        sequence: Int64, webhookID: WebhookID, eventSequence: Int64, eventType: String, body: String,
        status: WebhookMessageStatus, attempts: Int, nextAttemptAt: Date?, lastStatusCode: Int?, lastError: String?,
        eventCreatedAt: Date, createdAt: Date, deliveredAt: Date?
    ) {
        self.sequence = sequence
        self.webhookID = webhookID
        self.eventSequence = eventSequence
        self.eventType = eventType
        self.body = body
        self.status = status
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.lastStatusCode = lastStatusCode
        self.lastError = lastError
        self.eventCreatedAt = eventCreatedAt
        self.createdAt = createdAt
        self.deliveredAt = deliveredAt
    }

    /// Parses `msg_<n>`. - Throws: `validation(field)`.
    public static func sequence(of id: String, field: String = "message_id") throws -> Int64 {
        // Exactly `msg_` and 1-18 digits without a leading zero (no sign, no spaces): what the API document's pattern says.
        let digits = id.utf8.dropFirst(4)
        guard id.hasPrefix("msg_"), (1...18).contains(digits.count), digits.first != UInt8(ascii: "0"),
            digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = Int64(id.dropFirst(4)), value > 0
        else {
            throw HubError.validation(field: field, reason: "must be a message id like msg_42")
        }
        return value
    }
}

/// One delivery attempt as recorded.
public struct WebhookAttempt: Sendable, Hashable {
    public var messageSequence: Int64
    /// 1 for the first attempt of the message.
    public var attemptNumber: Int
    public var webhookID: WebhookID
    /// The answer's status, or nil when none arrived.
    public var statusCode: Int?
    public var latencyMilliseconds: Int64
    /// The first 4 KB of the answer's body.
    public var responseExcerpt: String?
    /// Why the attempt failed, in words (nil on success).
    public var error: String?
    public var succeeded: Bool
    /// When the next attempt is due; nil when none follows.
    public var nextAttemptAt: Date?
    public var attemptedAt: Date

    public init(
        messageSequence: Int64, attemptNumber: Int, webhookID: WebhookID, statusCode: Int?, latencyMilliseconds: Int64,
        responseExcerpt: String?, error: String?, succeeded: Bool, nextAttemptAt: Date?, attemptedAt: Date
    ) {
        self.messageSequence = messageSequence
        self.attemptNumber = attemptNumber
        self.webhookID = webhookID
        self.statusCode = statusCode
        self.latencyMilliseconds = latencyMilliseconds
        self.responseExcerpt = responseExcerpt
        self.error = error
        self.succeeded = succeeded
        self.nextAttemptAt = nextAttemptAt
        self.attemptedAt = attemptedAt
    }
}

extension RetryConfig {
    /// Standard Webhooks' schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (delay before each attempt).
    public static let defaultSchedule: [Int] = [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
    /// The delivery timeout when none is configured.
    public static let defaultTimeoutSeconds = 15

    /// The settings of `json` (a webhook's retry_config), defaults where it is nil or a member is missing.
    public static func resolved(_ json: JSONValue?) -> RetryConfig {
        guard let json, json != .null, let config = try? RetryConfig(json: json) else { return RetryConfig() }
        return config
    }

    /// The delay in seconds before attempt `attempt + 1` of a schedule after `attempt` attempts failed (1-based), before
    /// jitter; nil when no attempt remains. The schedule's last delay repeats when max_attempts is longer.
    public func delay(afterFailedAttempts attempt: Int) -> Int? {
        let schedule = backoffSeconds ?? Self.defaultSchedule
        guard attempt >= 1, attempt < (maxAttempts ?? schedule.count) else { return nil }
        return schedule[min(attempt, schedule.count - 1)]
    }

    /// The timeout of one delivery.
    public var timeout: Duration { .seconds(timeoutSeconds ?? Self.defaultTimeoutSeconds) }
}
