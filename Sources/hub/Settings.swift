import Foundation
import HubCore
import HubEngine
import Logging

/// Settings from flags, environment variables and an optional JSON configuration file (`--config FILE` or
/// `HUB_CONFIG`). A flag wins over the environment, which wins over the file, which wins over the default.
///
/// File keys (all optional; unknown keys are refused): `database_url`, `data_dir`, `host`, `port`, `body_limit`,
/// `migrate`, `key_file`, `sealing_keys`, `log_level`, `outbound_allowlist`, `require_https`,
/// `operations_retention_days`, `statistics_retention_days`, `response_body_cap`, `redact_headers`, `journal_dir`,
/// `sync_lease_seconds`, `sync_concurrency`, `webhook_concurrency`, `webhook_lease_seconds`, `webhook_disable_after_hours`,
/// `monitor_concurrency`, `health_raw_retention_days`, `health_rollup_retention_days`, `webhook_retention_days`. Each matches the environment variable `HUB_<KEY>`.
struct Settings {
    static let keys: Set<String> = [
        "database_url", "data_dir", "host", "port", "body_limit", "migrate", "key_file", "sealing_keys", "log_level",
        "outbound_allowlist", "require_https", "operations_retention_days", "statistics_retention_days", "response_body_cap",
        "redact_headers", "journal_dir", "sync_lease_seconds", "sync_concurrency", "webhook_concurrency",
        "webhook_lease_seconds", "webhook_disable_after_hours", "monitor_concurrency", "health_raw_retention_days",
        "health_rollup_retention_days", "webhook_retention_days",
    ]

    /// The connectivity monitor's settings: `monitor_concurrency` (probes in flight, 1-1024, default 64),
    /// `health_raw_retention_days` (raw checks, 1-3650, default 7), `health_rollup_retention_days` (hourly and daily
    /// rollups, 1-3650, default 400).
    func healthMonitor() throws -> HealthMonitorConfiguration {
        var configuration = HealthMonitorConfiguration()
        configuration.concurrency = try int("monitor_concurrency", flag: nil) ?? 64
        try Validate.range(configuration.concurrency, 1...1024, field: "monitor_concurrency")
        configuration.rawRetentionDays = try int("health_raw_retention_days", flag: nil) ?? 7
        try Validate.range(configuration.rawRetentionDays, 1...3650, field: "health_raw_retention_days")
        configuration.rollupRetentionDays = try int("health_rollup_retention_days", flag: nil) ?? 400
        try Validate.range(configuration.rollupRetentionDays, 1...3650, field: "health_rollup_retention_days")
        return configuration
    }

    /// The webhook dispatcher's settings: `webhook_concurrency` (deliveries in flight, 1-1024, default 128),
    /// `webhook_lease_seconds` (1-3600, default 90: keep it above every webhook's timeout_seconds, at most 60, or a slow
    /// delivery may be claimed again while it runs), and
    /// `webhook_disable_after_hours` (an endpoint failing this long with no success is disabled; 1-8760, default 120).
    func webhookDispatcher() throws -> WebhookDispatcherConfiguration {
        var configuration = WebhookDispatcherConfiguration()
        configuration.concurrency = try int("webhook_concurrency", flag: nil) ?? WebhookDispatcherConfiguration().concurrency
        try Validate.range(configuration.concurrency, 1...1024, field: "webhook_concurrency")
        let lease = try int("webhook_lease_seconds", flag: nil) ?? 8
        try Validate.range(lease, 1...3600, field: "webhook_lease_seconds")
        configuration.lease = .seconds(lease)
        let hours = try int("webhook_disable_after_hours", flag: nil) ?? 120
        try Validate.range(hours, 1...8760, field: "webhook_disable_after_hours")
        configuration.disableAfter = .seconds(hours * 3600)
        return configuration
    }

    /// How long a sync job's lease lasts without renewal (`sync_lease_seconds`, 1-3600, default 30).
    func syncLease() throws -> Duration {
        let seconds = try int("sync_lease_seconds", flag: nil) ?? 30
        try Validate.range(seconds, 1...3600, field: "sync_lease_seconds")
        return .seconds(seconds)
    }

    let file: [String: JSONValue]
    let environment: [String: String]

    /// Loads the file named by `path` (or `HUB_CONFIG`), if any. - Throws: `validation(config…)` naming the problem.
    static func load(path: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Settings {
        guard let path = path ?? environment["HUB_CONFIG"], !path.isEmpty else { return Settings(file: [:], environment: environment) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HubError.validation(field: "config", reason: "cannot read \(path)")
        }
        let value = try JSONValue.parse(String(decoding: data, as: UTF8.self), field: "config")
        guard let members = value.objectValue else { throw HubError.validation(field: "config", reason: "must be a JSON object") }
        if let unknown = members.keys.sorted().first(where: { !keys.contains($0) }) {
            throw HubError.validation(field: "config.\(unknown)", reason: "is not a known setting")
        }
        return Settings(file: members, environment: environment)
    }

    /// The setting `key`: the flag's value, else `HUB_<KEY>`, else the file's value.
    func string(_ key: String, flag: String?) throws -> String? {
        if let flag { return flag }
        if let value = environment["HUB_" + key.uppercased()], !value.isEmpty { return value }
        switch file[key] {
        case nil, .null?: return nil
        case .string(let text)?: return text
        case .int(let value)?: return String(value)
        case .bool(let value)?: return String(value)
        case let other?: throw HubError.validation(field: "config.\(key)", reason: "must be a string or number, not \(other.typeName)")
        }
    }

    /// The boolean setting `key` (`true`/`false`, `1`/`0`, `yes`/`no`, any case; a JSON boolean in the file).
    /// - Throws: `validation(key)` for anything else.
    func bool(_ key: String, flag: Bool?) throws -> Bool? {
        if let flag { return flag }
        guard let text = try string(key, flag: nil)?.lowercased() else { return nil }
        switch text {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: throw HubError.validation(field: key, reason: "must be true or false")
        }
    }

    /// The log level (`log_level`): trace, debug, info, notice, warning, error or critical. - Throws: `validation`.
    func logLevel(default fallback: Logger.Level) throws -> Logger.Level {
        guard let text = try string("log_level", flag: nil) else { return fallback }
        guard let level = Logger.Level(rawValue: text.lowercased()) else {
            throw HubError.validation(field: "log_level", reason: "must be trace, debug, info, notice, warning, error or critical")
        }
        return level
    }

    /// The outbound address policy from `outbound_allowlist` (comma-separated CIDRs) and `require_https`.
    func outboundPolicy(allowlistFlag: String?) throws -> OutboundPolicy {
        let allowlist = try string("outbound_allowlist", flag: allowlistFlag) ?? ""
        return try OutboundPolicy(
            allowlist: allowlist.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty },
            requireHTTPS: try bool("require_https", flag: nil) ?? false)
    }

    /// Extra header names never stored with API operations (`redact_headers`, comma-separated).
    func redactedHeaders() throws -> Set<String> {
        Set((try string("redact_headers", flag: nil) ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }

    /// The integer setting `key` (flag, environment, file). - Throws: `validation(key)` when it is not an integer.
    func int(_ key: String, flag: Int?) throws -> Int? {
        if let flag { return flag }
        guard let text = try string(key, flag: nil) else { return nil }
        guard let value = Int(text) else { throw HubError.validation(field: key, reason: "must be an integer") }
        return value
    }
}
