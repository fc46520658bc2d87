import HubCore

/// The request bodies, typed as the server validates them (HubCore's checks and the route handlers in ``APIRoutes``):
/// a body these schemas allow passes validation, except for the rules each schema's `description` lists, which JSON
/// Schema cannot state (they compare two members with each other or with stored state). Strings are matched by
/// ECMA-262 patterns that read the same in Python's `re` (no `\d`, `\w`, `\s`; anchored with `^…$`); where the server's
/// rule is wider than a pattern can follow (URLs, Unicode in paths), the pattern is the safe part of it.
extension Schemas {
    /// `#/components/schemas/name`.
    static func ref(_ name: String) -> JSONValue { ["$ref": .string("#/components/schemas/\(name)")] }

    /// `word` in either letter case: `[Hh][Oo][Ss][Tt]`.
    static func caseless(_ word: String) -> String {
        word.map { $0.isLetter ? "[\($0.uppercased())\($0.lowercased())]" : String($0) }.joined()
    }

    /// `schema` admitting null as well: its `type` (and `enum`) widened, or a `$ref` wrapped in `anyOf`.
    static func nullable(_ schema: JSONValue) -> JSONValue {
        guard case .object(var members) = schema else { return schema }
        switch members["type"] {
        case .string(let type)?:
            members["type"] = [.string(type), "null"]
        case .array(let types)?:
            if !types.contains(.string("null")) { members["type"] = .array(types + [.string("null")]) }
        default:
            return ["anyOf": [schema, ["type": "null"]]]
        }
        if case .array(let values)? = members["enum"], !values.contains(.null) { members["enum"] = .array(values + [.null]) }
        return .object(members)
    }

    /// An integer in `range`.
    static func int(_ range: ClosedRange<Int64>, nullable: Bool = false, _ description: String? = nil) -> JSONValue {
        var schema: [String: JSONValue] = [
            "type": nullable ? JSONValue.array(["integer", "null"]) : JSONValue.string("integer"),
            "minimum": .int(range.lowerBound), "maximum": .int(range.upperBound),
        ]
        if let description { schema["description"] = .string(description) }
        return .object(schema)
    }

    /// A string matching `pattern`.
    static func text(
        _ pattern: String, minLength: Int? = nil, maxLength: Int? = nil, nullable: Bool = false, _ description: String? = nil
    ) -> JSONValue {
        var schema: [String: JSONValue] = [
            "type": nullable ? JSONValue.array(["string", "null"]) : JSONValue.string("string"), "pattern": .string(pattern),
        ]
        if let minLength { schema["minLength"] = .int(Int64(minLength)) }
        if let maxLength { schema["maxLength"] = .int(Int64(maxLength)) }
        if let description { schema["description"] = .string(description) }
        return .object(schema)
    }

    /// A request body: `properties`, the `required` ones, nothing else; `extra` adds keywords (`allOf`, `anyOf`, …).
    static func body(
        _ properties: [String: JSONValue], required: [String], description: String, extra: [String: JSONValue] = [:]
    ) -> JSONValue {
        var schema: [String: JSONValue] = [
            "type": "object", "properties": .object(properties), "required": .array(required.map(JSONValue.string)),
            "additionalProperties": false, "description": .string(description),
        ]
        schema.merge(extra) { _, new in new }
        return .object(schema)
    }

    /// `anyOf` branches saying that at least one of `members` (name, non-null type) is present and not null: what a
    /// PATCH body needs, since the server reads null as "keep".
    static func someNonNull(_ members: [(String, JSONValue)]) -> JSONValue {
        .array(members.map { name, type in ["required": [.string(name)], "properties": [name: ["type": type]]] })
    }

    /// The regular expressions of the request schemas.
    enum Pattern {
        /// No U+0000 (PostgreSQL cannot store it; every request string is checked for it).
        static let noNUL = #"^[^\u0000]*$"#
        /// What `trimmingCharacters(in: .whitespacesAndNewlines)` removes (and `Character.isWhitespace` is), as the
        /// inside of a character class: tab to CR, space, NEL, NBSP, the Unicode spaces, line and paragraph separators.
        static let whitespace = #"\u0009-\u000d \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"#

        /// `Validate.nonEmpty`: not only whitespace, no NUL (nor any character of `excluding`, a class's inside).
        static func nonBlank(excluding extra: String = "") -> String {
            #"^[^\u0000"# + extra + #"]*[^\u0000"# + extra + whitespace + #"][^\u0000"# + extra + #"]*$"#
        }

        /// `Validate.token` (system_id): 1-64 ASCII letters, digits, `.`, `_`, `-`, starting with a letter or digit.
        static let systemID = #"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"#
        /// `Integration.validateType`: 2-32 of `A-Z`, `0-9`, `_`, starting with a letter.
        static let integrationType = #"^[A-Z][A-Z0-9_]{1,31}$"#
        /// `SyncJob.validateEntityType`: 1-64 of `a-z`, `0-9`, `_`, starting with a letter.
        static let entityType = #"^[a-z][a-z0-9_]{0,63}$"#

        /// A port, 1-65535.
        static let port = #"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"#
        /// An RFC 3986 reg-name Foundation keeps as the host: ASCII unreserved and sub-delims (no `@`, so no user info),
        /// no label starting with the IDNA prefix `xn--` (Foundation cannot decode those and finds no host).
        static let host = #"(?![Xx][Nn]--)(?:[A-Za-z0-9!$&'()*+,;=_~-]|\.(?![Xx][Nn]--))+"#
        /// An optional path and query of RFC 3986 characters (percent-encoded otherwise); no fragment.
        static let pathAndQuery = #"(?:[/?](?:[A-Za-z0-9!$&'()*+,;=_~.:@/?-]|%[0-9A-Fa-f]{2})*)?"#

        /// `scheme://host[:port][/path][?query]`, `scheme` a pattern.
        static func url(scheme: String) -> String { "^" + scheme + "://" + host + "(?::" + port + ")?" + pathAndQuery + "$" }

        /// `Validate.httpURL`: http or https (either case), a host, a port in 1-65535, no user info, no fragment.
        static let httpURL = url(scheme: Schemas.caseless("http") + "[Ss]?")
        /// `host:port` as `SystemConnection` reads it: an ASCII DNS name or IPv4 address, or a bracketed IPv6 address.
        static let hostPort = #"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):"# + port
        /// An API operation's relative endpoint: `/`, then no second `/`, no whitespace. (The character after the slash is
        /// ASCII: a combining mark there would join the slash into one Swift `Character`, which the server then does
        /// not read as a leading `/`.)
        static let pathEndpoint = #"^/(?:[!-.0-~][^\u0000"# + whitespace + #"]*)?$"#

        /// `RFC3339.parse`: `YYYY-MM-DDThh:mm:ss[.frac](Z|±hh:mm)`, `T` and `Z` in either case, in the years 0001-9999
        /// once the offset is applied (the first and last day refuse offsets that would leave them).
        static let timestamp = #"^(?!0000)(?!0001-01-01[Tt][^+]*\+(?!00:00$))(?!9999-12-31[Tt][^-]*-(?!00:00$))"#
            + #"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)"#
            + #"(?:\.[0-9]+)?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"#

        /// `WebhookSecret.validate`: `whsec_` and the (padded) base64 of 24 to 64 bytes.
        static let webhookSecret: String = {
            let digit = "[A-Za-z0-9+/]"
            return "^whsec_(?:(?:\(digit){4}){8,21}(?:\(digit){2}==)?|(?:\(digit){4}){8,20}\(digit){3}=)$"
        }()

        /// `Validate.isHeaderName` and not `Validate.isReservedHeader` (nor one of `reserved`, any case).
        static func headerName(reserved: [String] = []) -> String {
            let names = (Validate.reservedHeaderNames.sorted() + reserved.sorted()).map(Schemas.caseless).joined(separator: "|")
            return "^(?!(?:\(names))$)(?!\(Schemas.caseless("proxy-")))[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
        }
        /// `Validate.isHeaderValue`: no control character but the tab.
        static let headerValue = #"^[^\u0000-\u0008\u000a-\u001f\u007f]*$"#
        /// `Validate.lineSafe`: no C0, DEL or C1 control, no line or paragraph separator.
        static let lineSafe = #"^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]*$"#
        /// The control characters `Validate.isLineSafe` refuses, for a character class (NUL is refused everywhere).
        static let controls = #"\u0001-\u001f\u007f-\u009f\u2028\u2029"#
        /// A connection probe's method (compared upper-cased).
        static let probeMethod = "^(?:" + ["GET", "HEAD", "POST", "PUT", "OPTIONS"].map(Schemas.caseless).joined(separator: "|") + ")$"

        /// `JSONPath`: names joined by `.`, `[index]`, `["quoted name"]`, `[key=value]`; printable ASCII (the server
        /// reads Swift `Character`s, which a combining mark would join to a delimiter).
        static let jsonPath: String = {
            let name = #"[\u0020-\u002d\u002f-\u005a\u005c-\u007e]+"#
            let quoted = #"\u0022[\u0020-\u005c\u005e-\u007e]*\u0022"#
            let index = #"\+?[0-9]{1,18}"#
            let match = #"[\u0020\u0021\u0023-\u003c\u003e-\u005c\u005e-\u007e][\u0020-\u003c\u003e-\u005c\u005e-\u007e]*"#
                + #"=[\u0020-\u005c\u005e-\u007e]*"#
            let bracket = #"\[(?:"# + quoted + "|" + index + "|" + match + #")\]"#
            return "^(?:" + name + "|" + bracket + ")(?:" + bracket + #"|\.(?:"# + name + "|" + bracket + "))*$"
        }()
        /// A sync entity's source path: `/` and printable ASCII without `?` and `#`.
        static let entityPath = #"^/[\u0020-\u0022\u0024-\u003e\u0040-\u007e]*$"#
    }

    // MARK: Shared pieces

    /// `Validate.nonEmpty` with the given limit (counted in Swift `Character`s, which never exceed code points).
    static func nonBlank(maxLength: Int, nullable: Bool = false, excluding extra: String = "", _ description: String? = nil) -> JSONValue {
        text(Pattern.nonBlank(excluding: extra), minLength: 1, maxLength: maxLength, nullable: nullable, description)
    }
    /// An absolute http(s) URL as `Validate.httpURL` takes it.
    static let httpURL: JSONValue = text(
        Pattern.httpURL, maxLength: 2048,
        "Absolute http or https URL with a host (no user info, no fragment, port 1-65535), at most 2048 characters")
    /// A request timestamp as `RFC3339.parse` takes it.
    static let requestTimestamp: JSONValue = [
        "type": "string", "format": "date-time", "pattern": .string(Pattern.timestamp),
        "description": "RFC 3339 date-time in the years 0001-9999 (T and Z in either case, any fraction, Z or ±hh:mm)",
    ]
    /// A JSON object without U+0000 in any string or member name.
    static let freeObject: JSONValue = [
        "type": "object", "propertyNames": ["pattern": .string(Pattern.noNUL)], "additionalProperties": ref("NoNULJSON"),
    ]
    /// A `JSONPath` string.
    static let jsonPath: JSONValue = text(Pattern.jsonPath, "Path into a record: a.b, list[0], list[key=value], [\"name.with.dots\"]")

    /// The event patterns the server takes: each event of the catalog, each of its dotted prefixes with `.*`, and `*`.
    static let eventPatterns: [String] = {
        var patterns: Set<String> = ["*"]
        for name in EventCatalog.types.keys {
            patterns.insert(name)
            let segments = name.split(separator: ".")
            for end in segments.indices.dropFirst() { patterns.insert(segments[..<end].joined(separator: ".") + ".*") }
        }
        return patterns.sorted()
    }()
    static let eventTypes: JSONValue = [
        "type": "array", "minItems": 1, "maxItems": 100, "uniqueItems": true,
        "items": ["type": "string", "enum": .array(eventPatterns.map(JSONValue.string))],
        "description": "1-100 distinct event types: exact event names of the catalog, a prefix of them (sync.*), or *",
    ]

    /// HTTP headers as `Validate.headers` takes them (names not in `reserved` either), or null.
    static func headers(reserved: [String] = [], _ description: String) -> JSONValue {
        [
            "type": ["object", "null"], "description": .string(description),
            "propertyNames": ["pattern": .string(Pattern.headerName(reserved: reserved))],
            "additionalProperties": ["type": "string", "pattern": .string(Pattern.headerValue)],
        ]
    }

    // MARK: Components used by the request bodies

    static let requests: [String: JSONValue] = [
        "NoNULJSON": [
            "description": "Any JSON value without U+0000 in a string or member name",
            "type": ["null", "boolean", "number", "string", "array", "object"],
            "pattern": .string(Pattern.noNUL), "propertyNames": ["pattern": .string(Pattern.noNUL)],
            "items": ref("NoNULJSON"), "additionalProperties": ref("NoNULJSON"),
        ],
        "AuthConfig": authConfig,
        "AuthNone": authNone,
        "AuthAPIKey": authAPIKey,
        "AuthBasic": authBasic,
        "AuthBearer": authBearer,
        "AuthOAuth2ClientCredentials": authOAuth2,
        "MappingConfig": requestMappingConfig,
        "WebhookRetryConfig": webhookRetryConfig,
        "WebhookHeaders": headers(
            reserved: Array(Webhook.reservedHeaders),
            """
            Custom headers sent with every delivery, or null: token names (not Host, Content-Length, Transfer-Encoding, \
            Connection, Upgrade, TE, Trailer, Keep-Alive, Proxy-*, Content-Type or webhook-*), values without control \
            characters but tab
            """),
        "IntegrationCreate": integrationCreate,
        "IntegrationUpdate": integrationUpdate,
        "SyncJobCreate": syncJobCreate,
        "SyncScheduleCreate": syncScheduleCreate,
        "APIOperationCreate": apiOperationCreate,
        "WebhookCreate": webhookCreate,
        "WebhookUpdate": webhookUpdate,
        "WebhookRecover": webhookRecover,
        "WebhookRotate": webhookRotate,
        "ConnectionCreate": connectionCreate,
        "MaintenanceWindowCreate": maintenanceWindowCreate,
    ]

    // MARK: auth_config (AuthConfig.init(json:))

    static let authConfig: JSONValue = [
        "description": """
            How the hub authenticates to the system; `type` selects the shape, unknown members are refused. Sealed at rest, \
            masked in reads.
            """,
        "oneOf": [ref("AuthNone"), ref("AuthAPIKey"), ref("AuthBasic"), ref("AuthBearer"), ref("AuthOAuth2ClientCredentials")],
        "discriminator": [
            "propertyName": "type",
            "mapping": [
                "none": "#/components/schemas/AuthNone", "api_key": "#/components/schemas/AuthAPIKey",
                "basic": "#/components/schemas/AuthBasic", "bearer": "#/components/schemas/AuthBearer",
                "oauth2_client_credentials": "#/components/schemas/AuthOAuth2ClientCredentials",
            ],
        ],
    ]
    /// A secret or name member of auth_config: required, not blank, at most 4096 characters, no NUL.
    /// A secret or name of an auth config: written into a header or a form, so without control characters.
    static let authText: JSONValue = nonBlank(maxLength: 4096, excluding: Pattern.controls)
    static func authShape(_ type: String, _ members: [String: JSONValue], required: [String]) -> JSONValue {
        var properties = members
        properties["type"] = ["const": .string(type)]
        return .object([
            "type": "object", "properties": .object(properties), "required": .array((["type"] + required).map(JSONValue.string)),
            "additionalProperties": false,
        ])
    }
    static let authNone = authShape("none", [:], required: [])
    static let authAPIKey = authShape(
        "api_key",
        [
            "api_key": authText,
            "header": text(
                Pattern.headerName(), maxLength: 4096, nullable: true,
                "Header carrying the key (default X-Api-Key): a token name that neither frames nor routes the request"),
        ],
        required: ["api_key"])
    static let authBasic = authShape(
        "basic", ["username": nonBlank(maxLength: 4096, excluding: ":" + Pattern.controls, "Without ':'"), "password": authText],
        required: ["username", "password"])
    static let authBearer = authShape("bearer", ["token": authText], required: ["token"])
    static let authOAuth2 = authShape(
        "oauth2_client_credentials",
        ["token_url": httpURL, "client_id": authText, "client_secret": authText, "scope": nonBlank(maxLength: 4096, nullable: true, excluding: Pattern.controls)],
        required: ["token_url", "client_id", "client_secret"])

    // MARK: mapping_config (SyncConfiguration.parse, RecordMapping)

    /// A `text()` setting of the rest_json connector: a non-empty string.
    static let settingName: JSONValue = ["type": "string", "minLength": 1, "pattern": .string(Pattern.noNUL)]
    /// One entity type's settings (`RecordMapping` and its path); the path is required unless the connector supplies it.
    static let entitySpec: JSONValue = [
        "type": "object", "additionalProperties": false,
        "properties": [
            "path": text(Pattern.entityPath, "Source path: starts with /, no query or fragment"),
            "external_id": jsonPath, "updated_field": jsonPath,
            "fields": [
                "type": "object", "propertyNames": ["pattern": .string(Pattern.noNUL)],
                "additionalProperties": ["anyOf": [jsonPath, fieldSpec]],
            ],
            "source": ref("NoNULJSON"), "records_path": ref("NoNULJSON"), "updated_since_param": ref("NoNULJSON"),
        ],
    ]
    /// A target field given as an object: exactly one of `path` and `constant`.
    static let fieldSpec: JSONValue = [
        "type": "object", "additionalProperties": false,
        "properties": [
            "path": jsonPath, "constant": ref("NoNULJSON"), "default": ref("NoNULJSON"), "required": ["type": "boolean"],
            "transforms": ["type": "array", "items": enumeration(RecordMapping.Transform.allCases.map(\.rawValue))],
        ],
        "oneOf": [["required": ["path"]], ["required": ["constant"]]],
    ]
    static let pagination: JSONValue = [
        "type": "object", "required": ["type"],
        "properties": ["type": ["enum": ["page", "offset", "cursor", "link"]]],
        "oneOf": [
            [
                "properties": [
                    "type": ["const": "page"], "page_param": settingName, "size_param": settingName,
                    "start": ["type": "integer", "minimum": 0, "maximum": 1],
                ],
            ],
            ["properties": ["type": ["const": "offset"], "offset_param": settingName, "limit_param": settingName]],
            [
                "required": ["next_path"],
                "properties": ["type": ["const": "cursor"], "cursor_param": settingName, "next_path": jsonPath, "size_param": settingName],
            ],
            ["properties": ["type": ["const": "link"], "size_param": settingName]],
        ],
    ]
    static let connector: JSONValue = [
        "type": "object", "required": ["type"],
        "oneOf": [
            ["properties": ["type": ["const": "scim"]]],
            [
                "required": ["pagination"], "additionalProperties": false,
                "properties": [
                    "type": ["const": "rest_json"], "records_path": jsonPath, "total_path": jsonPath, "updated_since_param": settingName,
                    "pagination": pagination,
                ],
            ],
        ],
    ]
    static let requestMappingConfig: JSONValue = [
        "type": ["object", "null"],
        "description": """
            Data mapping configuration, or null: any JSON object; with a `connector` it configures syncing and is checked: \
            {"connector": {"type": "scim"} | {"type": "rest_json", "records_path", "total_path", "updated_since_param", "pagination": \
            {"type": "page"|"offset"|"cursor"|"link", …}}, "retry": {"max_attempts": 1-20, "base_delay_ms": 1-600000, \
            "max_delay_ms": 1-3600000}, "entities": {ENTITY: {"path", "external_id", "updated_field", "fields": {NAME: PATH | \
            {"path" | "constant", "transforms", "default", "required"}}}}}. SCIM supplies the paths of users (/Users) and groups \
            (/Groups); every other entity needs its path.
            """,
        "propertyNames": ["pattern": .string(Pattern.noNUL)], "additionalProperties": ref("NoNULJSON"),
        "if": ["type": "object", "required": ["connector"]],
        "then": [
            "properties": [
                "connector": connector,
                "retry": [
                    "type": "object",
                    "properties": [
                        "max_attempts": int(1...20), "base_delay_ms": int(1...600_000), "max_delay_ms": int(1...3_600_000),
                    ],
                ],
                "entities": [
                    "type": "object", "propertyNames": ["pattern": .string(Pattern.entityType)], "additionalProperties": entitySpec,
                ],
            ],
            "if": ["properties": ["connector": ["properties": ["type": ["const": "scim"]]]]],
            "then": [
                "properties": [
                    "entities": ["properties": ["users": true, "groups": true], "additionalProperties": ["required": ["path"]]],
                ],
            ],
            "else": ["properties": ["entities": ["additionalProperties": ["required": ["path"]]]]],
        ],
    ]

    // MARK: Webhooks (RetryConfig, Webhook.validateHeaders)

    static let webhookRetryConfig: JSONValue = [
        "type": ["object", "null"], "additionalProperties": false,
        "description": """
            {"max_attempts": 1-20, "backoff_seconds": [delay before attempt 1, 2, …] (1-20 delays of 0-604800; the last repeats), \
            "timeout_seconds": 1-60}, or null. Default: 8 attempts, immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (±20 % jitter), \
            15 s timeout. 429 and 503 wait at least 60 s and the schedule's delay (Retry-After up to 6 h); 410 Gone disables it.
            """,
        "properties": [
            "max_attempts": int(1...20, nullable: true), "timeout_seconds": int(1...60, nullable: true),
            "backoff_seconds": ["type": ["array", "null"], "minItems": 1, "maxItems": 20, "items": int(0...604_800)],
        ],
    ]
}
