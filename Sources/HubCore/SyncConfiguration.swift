import Foundation

/// What an integration's `mapping_config` says about syncing: the connector and its settings, retry limits, and per
/// entity type the source path and the record mapping.
///
/// ```json
/// {"connector": {"type": "scim"},
///  "retry": {"max_attempts": 6, "base_delay_ms": 500, "max_delay_ms": 60000},
///  "entities": {"users": {"path": "/Users", "external_id": "id", "fields": {"email": {"path": "emails[primary=true].value", "transforms": ["trim", "lowercase"]}}}}}
/// ```
///
/// A `rest_json` connector adds `records_path`, `total_path`, `updated_since_param` and `pagination`
/// (`{"type": "page", "page_param": "page", "size_param": "per_page", "start": 1}`, `{"type": "offset",
/// "offset_param": "offset", "limit_param": "limit"}`, `{"type": "cursor", "cursor_param": "cursor", "next_path":
/// "next_cursor", "size_param": "limit"}` or `{"type": "link", "size_param": "per_page"}` for `Link: rel="next"`).
public struct SyncConfiguration: Sendable, Hashable {
    /// The connector kinds.
    public enum Connector: Sendable, Hashable {
        /// SCIM 2.0 (RFC 7643/7644): `/Users` and `/Groups`, startIndex/count, `meta.lastModified` filters.
        case scim
        /// A JSON REST API with one of four pagination styles.
        case restJSON(RESTSettings)
    }

    /// Pagination of a REST JSON source.
    public enum Pagination: Sendable, Hashable {
        case page(pageParam: String, sizeParam: String, start: Int)
        case offset(offsetParam: String, limitParam: String)
        case cursor(cursorParam: String, nextPath: JSONPath, sizeParam: String?)
        case link(sizeParam: String?)
    }

    /// Settings of the REST JSON connector.
    public struct RESTSettings: Sendable, Hashable {
        public var recordsPath: JSONPath?
        public var totalPath: JSONPath?
        public var updatedSinceParam: String?
        public var pagination: Pagination
    }

    /// Retries of failed source requests.
    public struct Retry: Sendable, Hashable {
        /// Attempts per request, the first included (1-20, default 6).
        public var maxAttempts = 6
        /// First backoff in milliseconds, doubled per attempt with ±20 % jitter (default 500).
        public var baseDelayMilliseconds = 500
        /// Longest backoff or honoured Retry-After, in milliseconds (default 60,000).
        public var maxDelayMilliseconds = 60_000
        public init() {}
    }

    /// One entity type: where it is read and how it is mapped.
    public struct Entity: Sendable, Hashable {
        public var path: String
        public var mapping: RecordMapping
    }

    public var connector: Connector
    public var retry: Retry
    public var entities: [String: Entity]

    /// The sync configuration in `mappingConfig`, or nil when it names no connector. - Throws: `validation` naming
    /// the member (`mapping_config.entities.users.fields.email.transforms[0]`).
    public static func parse(_ mappingConfig: JSONValue?) throws -> SyncConfiguration? {
        guard case .object(let members)? = mappingConfig, let connectorValue = members["connector"] else { return nil }
        let field = "mapping_config"
        guard case .object(let connectorMembers) = connectorValue, let type = connectorMembers["type"]?.stringValue else {
            throw HubError.validation(field: "\(field).connector.type", reason: "must be scim or rest_json")
        }
        let connector: Connector
        switch type {
        case "scim":
            connector = .scim
        case "rest_json":
            connector = .restJSON(try restSettings(connectorMembers, field: "\(field).connector"))
        default:
            throw HubError.validation(field: "\(field).connector.type", reason: "must be scim or rest_json")
        }
        var retry = Retry()
        if let retryValue = members["retry"] {
            guard case .object(let options) = retryValue else { throw HubError.validation(field: "\(field).retry", reason: "must be an object") }
            func int(_ name: String, _ range: ClosedRange<Int>) throws -> Int? {
                guard let value = options[name] else { return nil }
                guard let number = value.intValue else { throw HubError.validation(field: "\(field).retry.\(name)", reason: "must be an integer") }
                try Validate.range(Int(number), range, field: "\(field).retry.\(name)")
                return Int(number)
            }
            retry.maxAttempts = try int("max_attempts", 1...20) ?? retry.maxAttempts
            retry.baseDelayMilliseconds = try int("base_delay_ms", 1...600_000) ?? retry.baseDelayMilliseconds
            retry.maxDelayMilliseconds = try int("max_delay_ms", 1...3_600_000) ?? retry.maxDelayMilliseconds
        }
        var entities: [String: Entity] = [:]
        if case .scim = connector {
            for (name, path) in [("users", "/Users"), ("groups", "/Groups")] {
                entities[name] = Entity(path: path, mapping: try RecordMapping(.object([:]), field: field, defaultUpdatedField: "meta.lastModified"))
            }
        }
        if let entityValue = members["entities"] {
            guard case .object(let specs) = entityValue else { throw HubError.validation(field: "\(field).entities", reason: "must be an object") }
            for (name, spec) in specs {
                let here = "\(field).entities.\(name)"
                do {
                    try SyncJob.validateEntityType(name)
                } catch {
                    throw HubError.validation(field: here, reason: "entity type must be 1 to 64 lower-case letters, digits or '_'")
                }
                guard case .object(let options) = spec else { throw HubError.validation(field: here, reason: "must be an object") }
                let defaultPath = entities[name]?.path
                if let raw = options["path"], raw.stringValue == nil {
                    throw HubError.validation(field: "\(here).path", reason: "must be a path (text)")
                }
                guard let path = options["path"]?.stringValue ?? defaultPath else {
                    throw HubError.validation(field: "\(here).path", reason: "is required: the source path of this entity type")
                }
                guard path.hasPrefix("/"), !path.contains("?"), !path.contains("#") else {
                    throw HubError.validation(field: "\(here).path", reason: "must be a path starting with '/', without query")
                }
                let isSCIM = connector == .scim
                entities[name] = Entity(
                    path: path, mapping: try RecordMapping(spec, field: here, defaultUpdatedField: isSCIM ? "meta.lastModified" : nil))
            }
        }
        return SyncConfiguration(connector: connector, retry: retry, entities: entities)
    }

    static func restSettings(_ members: [String: JSONValue], field: String) throws -> RESTSettings {
        let allowed: Set<String> = ["type", "records_path", "total_path", "updated_since_param", "pagination"]
        if let unknown = members.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw HubError.validation(field: "\(field).\(unknown)", reason: "is not a rest_json setting")
        }
        func path(_ name: String) throws -> JSONPath? {
            guard let value = members[name] else { return nil }
            guard let text = value.stringValue else { throw HubError.validation(field: "\(field).\(name)", reason: "must be a path") }
            return try JSONPath(text, field: "\(field).\(name)")
        }
        func text(_ options: [String: JSONValue], _ name: String, _ fallback: String?, _ here: String) throws -> String? {
            guard let value = options[name] else { return fallback }
            guard let string = value.stringValue, !string.isEmpty else { throw HubError.validation(field: "\(here).\(name)", reason: "must be text") }
            return string
        }
        let here = "\(field).pagination"
        guard case .object(let options)? = members["pagination"], let kind = options["type"]?.stringValue else {
            throw HubError.validation(field: "\(here).type", reason: "must be page, offset, cursor or link")
        }
        let pagination: Pagination
        switch kind {
        case "page":
            if let raw = options["start"], raw.intValue == nil {
                throw HubError.validation(field: "\(here).start", reason: "must be 0 or 1")
            }
            let start = options["start"]?.intValue ?? 1
            try Validate.range(Int(start), 0...1, field: "\(here).start")
            pagination = .page(
                pageParam: try text(options, "page_param", "page", here)!, sizeParam: try text(options, "size_param", "per_page", here)!,
                start: Int(start))
        case "offset":
            pagination = .offset(
                offsetParam: try text(options, "offset_param", "offset", here)!, limitParam: try text(options, "limit_param", "limit", here)!)
        case "cursor":
            guard let next = options["next_path"]?.stringValue else {
                throw HubError.validation(field: "\(here).next_path", reason: "is required: where the next cursor is in a page")
            }
            pagination = .cursor(
                cursorParam: try text(options, "cursor_param", "cursor", here)!, nextPath: try JSONPath(next, field: "\(here).next_path"),
                sizeParam: try text(options, "size_param", nil, here))
        case "link":
            pagination = .link(sizeParam: try text(options, "size_param", nil, here))
        default:
            throw HubError.validation(field: "\(here).type", reason: "must be page, offset, cursor or link")
        }
        return RESTSettings(
            recordsPath: try path("records_path"), totalPath: try path("total_path"),
            updatedSinceParam: try text(members, "updated_since_param", nil, field), pagination: pagination)
    }
}
