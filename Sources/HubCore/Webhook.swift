import Foundation

/// Status of a webhook registration.
public enum WebhookStatus: String, Sendable, Codable, CaseIterable {
    /// Receives deliveries; the last test (if any) passed.
    case active
    /// The last test failed; deliveries are still attempted.
    case failing
    /// Receives nothing until re-enabled.
    case disabled
}

/// Retry settings of a webhook (`retry_config`). Every member is optional; unknown members are rejected.
///
/// `{"max_attempts": 1…20, "backoff_seconds": [0…604800, …] (1–20 entries), "timeout_seconds": 1…60}`
public struct RetryConfig: Sendable, Hashable {
    /// Maximum delivery attempts, 1…20; `nil` when not given.
    public var maxAttempts: Int?
    /// Backoff delays in seconds, 1–20 entries of 0…604800; `nil` when not given.
    public var backoffSeconds: [Int]?
    /// Timeout of a delivery in seconds, 1…60; `nil` when not given.
    public var timeoutSeconds: Int?

    /// No member given: every default.
    public init() {}

    /// Validates and parses `json`; errors name the member, e.g. `retry_config.max_attempts`.
    public init(json: JSONValue, field: String = "retry_config") throws {
        guard let object = json.objectValue else {
            throw HubError.validation(field: field, reason: "must be a JSON object, not \(json.typeName)")
        }
        try object.rejectUnknown(["max_attempts", "backoff_seconds", "timeout_seconds"], field: field)
        maxAttempts = try object.optionalInt("max_attempts", in: 1...20, field: field)
        timeoutSeconds = try object.optionalInt("timeout_seconds", in: 1...60, field: field)
        if let member = object["backoff_seconds"], member != .null {
            guard let elements = member.arrayValue, (1...20).contains(elements.count) else {
                throw HubError.validation(
                    field: "\(field).backoff_seconds", reason: "must be an array of 1 to 20 integers")
            }
            backoffSeconds = try elements.enumerated().map { index, element in
                guard let value = element.intValue, (0...604_800).contains(value) else {
                    throw HubError.validation(
                        field: "\(field).backoff_seconds[\(index)]", reason: "must be an integer between 0 and 604800")
                }
                return Int(value)
            }
        }
    }
}

/// The arguments of DAO-MDE-03-08-04 (Webhook Management).
public struct WebhookRegistration: Sendable, Hashable {
    /// Absolute http(s) URL that receives deliveries.
    public var webhookURL: String
    /// Event types: exact dotted names (`sync.completed`), prefixes (`sync.*`) or `*`; at least one.
    public var eventTypes: [String]
    /// `whsec_` + base64 of 24–64 bytes (Standard Webhooks); generated when `nil`.
    public var secretKey: String?
    /// Retry settings (see ``RetryConfig``), or `nil`.
    public var retryConfig: JSONValue?
    /// Custom request headers; they may not override the signature headers, Content-Type or Host.
    public var headers: JSONValue?
    /// Ordered delivery: messages to this endpoint go one at a time, in event order.
    public var ordered: Bool
    /// At most this many deliveries a second (1…10000); nil for no limit.
    public var rateLimit: Int?

    /// Creates a registration with every member given; nothing is validated until ``validate()``.
    public init(
        webhookURL: String, eventTypes: [String], secretKey: String? = nil, retryConfig: JSONValue? = nil,
        headers: JSONValue? = nil, ordered: Bool = false, rateLimit: Int? = nil
    ) {
        self.webhookURL = webhookURL
        self.eventTypes = eventTypes
        self.secretKey = secretKey
        self.retryConfig = retryConfig
        self.headers = headers
        self.ordered = ordered
        self.rateLimit = rateLimit
    }

    /// Step 1's data validation.
    public func validate() throws {
        try Validate.httpURL(webhookURL, field: "webhook_url")
        try Validate.noNUL(retryConfig, field: "retry_config")
        try Validate.noNUL(headers, field: "headers")
        try Webhook.validateEventTypes(eventTypes)
        if let secretKey { try WebhookSecret.validate(secretKey, field: "secret_key") }
        if let retryConfig, retryConfig != .null { _ = try RetryConfig(json: retryConfig) }
        if let headers, headers != .null { try Webhook.validateHeaders(headers) }
        if let rateLimit { try Validate.range(rateLimit, 1...10_000, field: "rate_limit") }
    }
}

/// A change to a webhook; `nil` members stay as they are.
public struct WebhookUpdate: Sendable, Hashable {
    /// New absolute http(s) URL, or `nil` to keep it.
    public var webhookURL: String?
    /// New event types (same rules as registration), or `nil` to keep them.
    public var eventTypes: [String]?
    /// New retry settings (see ``RetryConfig``), or `nil` to keep them.
    public var retryConfig: JSONValue?
    /// New custom headers (same rules as registration), or `nil` to keep them.
    public var headers: JSONValue?
    /// New status, or `nil` to keep it.
    public var status: WebhookStatus?
    /// New ordered-delivery setting, or `nil` to keep it.
    public var ordered: Bool?
    /// New rate limit (deliveries a second, 1…10000; 0 removes the limit), or `nil` to keep it.
    public var rateLimit: Int?

    /// Creates an update with every member given; ``validate()`` requires at least one non-nil member.
    public init(
        webhookURL: String? = nil, eventTypes: [String]? = nil, retryConfig: JSONValue? = nil,
        headers: JSONValue? = nil, status: WebhookStatus? = nil, ordered: Bool? = nil, rateLimit: Int? = nil
    ) {
        self.webhookURL = webhookURL
        self.eventTypes = eventTypes
        self.retryConfig = retryConfig
        self.headers = headers
        self.status = status
        self.ordered = ordered
        self.rateLimit = rateLimit
    }

    /// Validates every present member.
    public func validate() throws {
        guard webhookURL != nil || eventTypes != nil || retryConfig != nil || headers != nil || status != nil
            || ordered != nil || rateLimit != nil
        else {
            throw HubError.validation(field: "body", reason: "must change at least one field")
        }
        if let webhookURL { try Validate.httpURL(webhookURL, field: "webhook_url") }
        try Validate.noNUL(retryConfig, field: "retry_config")
        try Validate.noNUL(headers, field: "headers")
        if let eventTypes { try Webhook.validateEventTypes(eventTypes) }
        if let retryConfig { _ = try RetryConfig(json: retryConfig) }
        if let headers { try Webhook.validateHeaders(headers) }
        if let rateLimit { try Validate.range(rateLimit, 0...10_000, field: "rate_limit") }
    }
}

/// A webhook: the design's returns (webhook_id, status, last_triggered, success_count, failure_count) and its
/// registration. The secret is never part of it.
public struct Webhook: Sendable, Hashable {
    /// The webhook's id (webhook_id).
    public var id: WebhookID
    /// Absolute http(s) URL that receives deliveries.
    public var webhookURL: String
    /// Subscribed event types: exact dotted names, prefixes (`sync.*`) or `*`.
    public var eventTypes: [String]
    /// Retry settings (see ``RetryConfig``), or `nil`.
    public var retryConfig: JSONValue?
    /// Custom request headers (a JSON object of strings), or `nil`.
    public var headers: JSONValue?
    /// `active` at registration; set by endpoint tests (`active` or `failing`) and by updates.
    public var status: WebhookStatus
    /// When the last endpoint test was recorded; `nil` if never tested.
    public var lastTested: Date?
    /// Details of the last endpoint test as recorded; `nil` if never tested.
    public var testResult: JSONValue?
    /// Deliveries counted as succeeded.
    public var successCount: Int64
    /// Deliveries counted as failed.
    public var failureCount: Int64
    /// When the last delivery was counted; `nil` before the first.
    public var lastTriggered: Date?
    /// When the webhook was registered; lists are ordered by it.
    public var createdAt: Date
    /// When the registration last changed: registration, test or update (deliveries do not count).
    public var updatedAt: Date
    /// Ordered delivery: one message at a time, in event order.
    public var ordered: Bool = false
    /// Deliveries a second at most; nil for no limit.
    public var rateLimit: Int?
    /// Since when every attempt failed (nil after a success); the endpoint is disabled when this lasts too long.
    public var failingSince: Date?
    /// Why the webhook was disabled, while it is.
    public var disabledReason: String?

    /// Creates a value with every member given; nothing is validated.
    public init(
        id: WebhookID, webhookURL: String, eventTypes: [String], retryConfig: JSONValue?, headers: JSONValue?,
        status: WebhookStatus, lastTested: Date?, testResult: JSONValue?, successCount: Int64, failureCount: Int64,
        lastTriggered: Date?, createdAt: Date, updatedAt: Date, ordered: Bool = false, rateLimit: Int? = nil,
        failingSince: Date? = nil, disabledReason: String? = nil
    ) {
        self.ordered = ordered
        self.rateLimit = rateLimit
        self.failingSince = failingSince
        self.disabledReason = disabledReason
        self.id = id
        self.webhookURL = webhookURL
        self.eventTypes = eventTypes
        self.retryConfig = retryConfig
        self.headers = headers
        self.status = status
        self.lastTested = lastTested
        self.testResult = testResult
        self.successCount = successCount
        self.failureCount = failureCount
        self.lastTriggered = lastTriggered
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// `headers` with the values of credential-like headers (Authorization, cookies, names containing key, token,
    /// secret, password, auth or signature) replaced by `****`: what reads return, while the dispatcher sends the
    /// sealed originals.
    public static func mask(headers: JSONValue) -> JSONValue {
        guard let members = headers.objectValue else { return headers }
        let words = ["key", "token", "secret", "password", "auth", "signature", "cookie", "credential"]
        return .object(Dictionary(uniqueKeysWithValues: members.map { name, value in
            let lower = name.lowercased()
            let sensitive = APIOperation.redactedHeaders.contains(lower) || words.contains { lower.contains($0) }
            return (name, sensitive ? JSONValue.string("****") : value)
        }))
    }

    /// Header names a webhook may not set (compared case-insensitively), beside the framing and routing headers that
    /// ``Validate/headers(_:field:)`` refuses in every header set.
    public static let reservedHeaders: Set<String> = ["webhook-id", "webhook-timestamp", "webhook-signature", "content-type"]

    static func validateHeaders(_ headers: JSONValue) throws {
        let parsed = try Validate.headers(headers, field: "headers")
        if let reserved = parsed.keys.sorted().first(where: { reservedHeaders.contains($0.lowercased()) }) {
            throw HubError.validation(field: "headers.\(reserved)", reason: "is set by the hub and cannot be overridden")
        }
    }

    static func validateEventTypes(_ eventTypes: [String]) throws {
        guard !eventTypes.isEmpty else {
            throw HubError.validation(field: "event_types", reason: "must contain at least one event type")
        }
        guard eventTypes.count <= 100 else {
            throw HubError.validation(field: "event_types", reason: "must contain at most 100 event types")
        }
        var seen = Set<String>()
        for (index, eventType) in eventTypes.enumerated() {
            let field = "event_types[\(index)]"
            guard seen.insert(eventType).inserted else {
                throw HubError.validation(field: field, reason: "is listed twice")
            }
            guard isValidEventPattern(eventType) else {
                throw HubError.validation(
                    field: field,
                    reason: "must be a dotted lower-case event name (sync.completed), a prefix (sync.*) or *")
            }
            guard EventCatalog.isKnown(eventType) else {
                throw HubError.validation(
                    field: field,
                    reason: "matches no event type; known types: \(EventCatalog.types.keys.sorted().joined(separator: ", "))")
            }
        }
    }

    static func isValidEventPattern(_ pattern: String) -> Bool {
        if pattern == "*" { return true }
        guard pattern.count <= 128 else { return false }
        let segments = pattern.split(separator: ".", omittingEmptySubsequences: false)
        for (index, segment) in segments.enumerated() {
            if segment == "*" { if index == segments.count - 1 && index > 0 { continue } else { return false } }
            guard let first = segment.first, first >= "a" && first <= "z",
                segment.allSatisfy({ ($0 >= "a" && $0 <= "z") || ($0 >= "0" && $0 <= "9") || $0 == "_" })
            else { return false }
        }
        return true
    }
}

/// What registration returns: the webhook and its signing secret, shown this once.
public struct RegisteredWebhook: Sendable, Hashable {
    /// The registered webhook.
    public var webhook: Webhook
    /// The signing secret (`whsec_…`). It is not returned again by any read.
    public var secret: String

    /// Creates a value with every member given.
    public init(webhook: Webhook, secret: String) {
        self.webhook = webhook
        self.secret = secret
    }
}

/// Standard Webhooks secrets: `whsec_` followed by the base64 of 24 to 64 random bytes.
public enum WebhookSecret {
    /// A new secret of 32 random bytes.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return "whsec_" + Data(bytes).base64EncodedString()
    }

    /// Throws unless `secret` is `whsec_` + base64 of 24–64 bytes.
    public static func validate(_ secret: String, field: String) throws {
        guard secret.hasPrefix("whsec_"), let key = Data(base64Encoded: String(secret.dropFirst(6))) else {
            throw HubError.validation(field: field, reason: "must be 'whsec_' followed by base64")
        }
        guard (24...64).contains(key.count) else {
            throw HubError.validation(field: field, reason: "must encode 24 to 64 bytes")
        }
    }
}

/// DAO-MDE-03-08-04, Webhook Management: registrations, endpoint tests and delivery statistics.
public protocol WebhookManagementDAO: Sendable {
    /// Steps 1 and 3 in one transaction: validates and registers the webhook (status `active`, secret generated
    /// when none is given and sealed at rest) and creates its statistics row (0 successes, 0 failures).
    /// - Throws: `validation` naming the field.
    func register(_ registration: WebhookRegistration) async throws -> RegisteredWebhook

    /// Step 2: records an endpoint test: status `active` when `passed`, else `failing`; `result` holds the
    /// test's details (status code, latency, error).
    /// - Throws: `notFound`.
    func recordTestResult(_ id: WebhookID, passed: Bool, result: JSONValue) async throws -> Webhook

    /// Counts one delivery outcome and sets last_triggered, in one statement.
    /// - Throws: `notFound`.
    func recordDelivery(_ id: WebhookID, succeeded: Bool) async throws -> Webhook

    /// The webhook with this id (statistics included). - Throws: `notFound`.
    func get(_ id: WebhookID) async throws -> Webhook

    /// Webhooks, newest first, one page at a time.
    func list(_ page: PageRequest) async throws -> Page<Webhook>

    /// Applies `update`. - Throws: `validation`, `notFound`.
    func update(_ id: WebhookID, _ update: WebhookUpdate) async throws -> Webhook

    /// Deletes the webhook and its statistics. - Throws: `notFound`.
    func delete(_ id: WebhookID) async throws

    /// The custom headers in clear, for the dispatcher (reads return them masked). Never log or return them.
    /// - Throws: `notFound`; `sealing`.
    func deliveryHeaders(for id: WebhookID) async throws -> [String: String]

    /// The signing secret in clear, for the dispatcher. Never log or return it.
    /// - Throws: `notFound`; `sealing`.
    func signingSecret(for id: WebhookID) async throws -> String

    /// Every secret that signs now: the current one first, then rotated ones still in their grace period.
    /// - Throws: `notFound`; `sealing`.
    func signingSecrets(for id: WebhookID) async throws -> [String]

    /// Replaces the signing secret (`newSecret`, or a generated one); the old one keeps signing for `grace`.
    /// - Throws: `validation(secret_key | grace_seconds)`, `notFound`.
    func rotateSecret(_ id: WebhookID, newSecret: String?, grace: Duration) async throws -> RotatedSecret
}

/// What a rotation returns: the new secret (shown this once) and until when the previous one still signs.
public struct RotatedSecret: Sendable, Hashable {
    public var secret: String
    public var previousValidUntil: Date?

    public init(secret: String, previousValidUntil: Date?) {
        self.secret = secret
        self.previousValidUntil = previousValidUntil
    }
}
