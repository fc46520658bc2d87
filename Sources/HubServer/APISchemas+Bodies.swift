import HubCore

/// The request bodies themselves, built from the pieces in APISchemas+Requests.swift.
extension Schemas {
    static let integrationCreate = body(
        [
            "system_id": text(Pattern.systemID, "1-64 ASCII letters, digits, '.', '_', '-', starting with a letter or digit"),
            "integration_type": text(Pattern.integrationType, "Upper-case code of 2-32 of A-Z, 0-9, '_' (HR, ERP, PAYROLL)"),
            "endpoint_url": httpURL, "auth_config": ref("AuthConfig"), "mapping_config": ref("MappingConfig"),
        ],
        required: ["system_id", "integration_type", "endpoint_url", "auth_config"],
        description: "Registers an external system. Not stated by the schema: system_id must not be registered already (409).")

    static let integrationUpdate = body(
        [
            "integration_type": nullable(text(Pattern.integrationType, "Upper-case code of 2-32 of A-Z, 0-9, '_'")),
            "endpoint_url": nullable(httpURL), "auth_config": nullable(ref("AuthConfig")), "mapping_config": ref("MappingConfig"),
            "status": nullable(enumeration(IntegrationStatus.allCases.map(\.rawValue))),
        ],
        required: [],
        description: """
            Changes at least one member; a null member keeps its value (and does not count as a change). Not stated by the \
            schema: moving endpoint_url to another origin (scheme, host or port) needs auth_config in the same request (422).
            """,
        extra: [
            "minProperties": 1,
            "anyOf": someNonNull([
                ("integration_type", "string"), ("endpoint_url", "string"), ("auth_config", "object"), ("mapping_config", "object"),
                ("status", "string"),
            ]),
        ])

    static let syncJobCreate = body(
        [
            "integration_id": uuid, "sync_type": enumeration(SyncType.allCases.map(\.rawValue)),
            "entity_type": text(Pattern.entityType, "1-64 of a-z, 0-9, '_', starting with a letter"),
            "filters": nullable(freeObject), "batch_size": int(1...10_000, nullable: true, "Records per batch (default 1000)"),
        ],
        required: ["integration_id", "sync_type", "entity_type"],
        description: """
            Starts a sync job. Not stated by the schema: the integration must exist (422) and not be disabled (409), and no \
            job of it may be running for the entity type (409).
            """)

    static let syncScheduleCreate = body(
        [
            "entity_type": text(Pattern.entityType, "1-64 of a-z, 0-9, '_', starting with a letter"),
            "sync_type": enumeration(SyncType.allCases.map(\.rawValue)),
            "interval_minutes": int(1...525_600, "Minutes between runs, up to a year"),
        ],
        required: ["entity_type", "sync_type", "interval_minutes"],
        description: "Creates or replaces the schedule of an entity type.")

    static let apiOperationCreate = body(
        [
            "operation_type": enumeration(HTTPMethod.allCases.map(\.rawValue)),
            "endpoint": [
                "type": "string", "maxLength": 2048,
                "description": "An absolute http(s) URL, or a path starting with a single / (relative to the integration's endpoint_url)",
                "anyOf": [["pattern": .string(Pattern.pathEndpoint)], ["pattern": .string(Pattern.httpURL)]],
            ],
            "headers": headers(
                """
                Request headers, or null: token names (not Host, Content-Length, Transfer-Encoding, Connection, Upgrade, TE, \
                Trailer, Keep-Alive, Proxy-*), values without control characters but tab
                """),
            "payload": ref("NoNULJSON"),
            "timeout": int(1...300, nullable: true, "Seconds (default 30)"),
            "integration_id": nullable(uuid),
            "retries": int(
                0...5, nullable: true,
                "GET, PUT and DELETE only (POST and PATCH: 0 or null): retries on no answer, 429 and 5xx, honouring Retry-After"),
        ],
        required: ["operation_type", "endpoint"],
        description: """
            Executes one API call. A path endpoint needs integration_id. Not stated by the schema: with integration_id, an \
            absolute endpoint must be on the integration's own origin (422), and the integration must exist (404).
            """,
        extra: [
            "allOf": [
                [
                    "if": ["required": ["operation_type"], "properties": ["operation_type": ["enum": ["POST", "PATCH"]]]],
                    "then": ["properties": ["retries": ["enum": [0, .null]]]],
                ],
                [
                    "if": ["required": ["endpoint"], "properties": ["endpoint": ["type": "string", "pattern": "^/"]]],
                    "then": ["required": ["integration_id"], "properties": ["integration_id": ["type": "string"]]],
                ],
            ],
        ])

    static let webhookCreate = body(
        [
            "webhook_url": httpURL, "event_types": eventTypes,
            "secret_key": text(Pattern.webhookSecret, nullable: true, "whsec_ + base64 of 24-64 bytes; generated when omitted or null"),
            "retry_config": ref("WebhookRetryConfig"), "headers": ref("WebhookHeaders"),
            "ordered": ["type": ["boolean", "null"], "description": "One delivery at a time, in event order (default false)"],
            "rate_limit": int(1...10_000, nullable: true, "Deliveries a second at most; null for no limit"),
        ],
        required: ["webhook_url", "event_types"],
        description: "Registers a webhook; the response shows its signing secret this once.")

    static let webhookUpdate = body(
        [
            "webhook_url": nullable(httpURL), "event_types": nullable(eventTypes),
            "retry_config": ref("WebhookRetryConfig"), "headers": ref("WebhookHeaders"),
            "status": nullable(enumeration(WebhookStatus.allCases.map(\.rawValue))),
            "ordered": ["type": ["boolean", "null"]],
            "rate_limit": int(0...10_000, nullable: true, "Deliveries a second at most; 0 removes the limit"),
        ],
        required: [],
        description: """
            Changes at least one member; a null member keeps its value (and does not count as a change). Not stated by the \
            schema: moving webhook_url to another origin (scheme, host or port) while the webhook has custom headers needs \
            headers in the same request ({} drops them) (422).
            """,
        extra: [
            "minProperties": 1,
            "anyOf": someNonNull([
                ("webhook_url", "string"), ("event_types", "array"), ("retry_config", "object"), ("headers", "object"),
                ("status", "string"), ("ordered", "boolean"), ("rate_limit", "integer"),
            ]),
        ])

    static let webhookRecover = body(
        ["since": requestTimestamp, "until": nullable(requestTimestamp)],
        required: ["since"],
        description: """
            Sends again the failed messages created in [since, until). Not stated by the schema: until must be after since, \
            and without until, since must not be in the future (422).
            """)

    static let webhookRotate = body(
        [
            "secret_key": text(Pattern.webhookSecret, nullable: true, "whsec_ + base64 of 24-64 bytes; generated when omitted or null"),
            "grace_seconds": int(0...2_592_000, nullable: true, "How long the old secret keeps signing (default 86400)"),
        ],
        required: [],
        description: "Replaces the signing secret. The body may also be left out altogether (no Content-Type, no content).")

    static let connectionCreate: JSONValue = {
        let lineText: JSONValue = text(Pattern.lineSafe, "A string without control characters")
        let probe: JSONValue = [
            "type": "object", "additionalProperties": false,
            "description": "API connections only. expected_status_min must not exceed expected_status_max (defaults 200 and 399).",
            "properties": [
                "method": text(Pattern.probeMethod, "GET, HEAD, POST, PUT or OPTIONS, any case"),
                "expected_status_min": int(100...599, nullable: true), "expected_status_max": int(100...599, nullable: true),
                "body_contains": ["type": "string", "minLength": 1, "pattern": .string(Pattern.noNUL)],
                "degraded_after_ms": int(1...600_000, nullable: true),
            ],
            "allOf": [
                [
                    "if": ["required": ["expected_status_max"], "properties": ["expected_status_max": ["type": "integer"]]],
                    "else": ["properties": ["expected_status_min": ["maximum": 399]]],
                ],
                [
                    "if": ["required": ["expected_status_min"], "properties": ["expected_status_min": ["type": "integer"]]],
                    "else": ["properties": ["expected_status_max": ["minimum": 200]]],
                ],
            ],
        ]
        var credentialMembers: [String: JSONValue] = ["probe": probe, "header": text(Pattern.headerName(), "API key header name")]
        for key in SystemConnection.lineCredentialKeys where key != "header" { credentialMembers[key] = lineText }
        let credentials: JSONValue = [
            "type": "object", "properties": .object(credentialMembers),
            "propertyNames": ["pattern": .string(Pattern.noNUL)], "additionalProperties": ref("NoNULJSON"),
            "description": """
                Sealed at rest; at most 16 KiB as JSON. API: token | username+password | api_key (+ header), and optionally \
                "probe": {"method", "expected_status_min", "expected_status_max" (default 200-399), "body_contains", \
                "degraded_after_ms"}. DB: username, password (, database). FTP: username, password (banner only without them).
                """,
        ]
        let endpoints: [(ConnectionType, String)] = [
            (.API, Pattern.httpURL),
            (.DB, Pattern.url(scheme: caseless("postgres") + "(?:" + caseless("ql") + ")?")),
            (.FTP, "^(?:" + String(Pattern.url(scheme: caseless("ftp")).dropFirst().dropLast()) + "|" + Pattern.hostPort + ")$"),
            (.SFTP, "^(?:" + String(Pattern.url(scheme: caseless("sftp")).dropFirst().dropLast()) + "|" + Pattern.hostPort + ")$"),
            (.TCP, "^(?:tcp://)?" + Pattern.hostPort + "$"),
        ]
        var rules: [JSONValue] = endpoints.map { type, pattern in
            [
                "if": ["required": ["connection_type"], "properties": ["connection_type": ["const": .string(type.rawValue)]]],
                "then": ["properties": ["endpoint": ["pattern": .string(pattern)]]],
            ]
        }
        rules.append([
            "if": ["required": ["connection_type"], "properties": ["connection_type": ["const": .string(ConnectionType.API.rawValue)]]],
            "else": ["properties": ["credentials": ["not": ["required": ["probe"]]]]],
        ])
        return body(
            [
                "system_name": nonBlank(maxLength: 128, "Unique name, 1-128 characters"),
                "connection_type": enumeration(ConnectionType.allCases.map(\.rawValue)),
                "endpoint": [
                    "type": "string", "minLength": 1, "maxLength": 2048,
                    "description": """
                        By connection_type: API http(s)://host[:port][/path]; DB postgres(ql)://host[:port][/database]; FTP \
                        ftp://host[:port] or host:port; SFTP sftp://host[:port] or host:port; TCP host:port or tcp://host:port
                        """,
                ],
                "credentials": credentials,
                "health_check_interval": int(1...1440, nullable: true, "Minutes between health checks (default 5)"),
                "retries": int(0...10, nullable: true, "Failing checks retried 20 s apart (status pending) before down; default 1"),
            ],
            required: ["system_name", "connection_type", "endpoint", "credentials"],
            description: """
                Creates a connection and checks it. Not stated by the schema: system_name must not be taken (409); credentials \
                must be at most 16 KiB as JSON, and a probe's expected_status_min must not exceed its expected_status_max (422).
                """,
            extra: ["allOf": .array(rules)])
    }()

    static let maintenanceWindowCreate = body(
        [
            "starts_at": requestTimestamp, "ends_at": requestTimestamp,
            "reason": ["type": ["string", "null"], "maxLength": 500, "pattern": .string(Pattern.noNUL)],
        ],
        required: ["starts_at", "ends_at"],
        description: "Adds a maintenance window. Not stated by the schema: ends_at must be after starts_at (422).")
}
