import Foundation
import HubCore

/// Settings from flags, environment variables and an optional JSON configuration file (`--config FILE` or
/// `HUB_CONFIG`). A flag wins over the environment, which wins over the file, which wins over the default.
///
/// File keys (all optional; unknown keys are refused): `database_url`, `data_dir`, `host`, `port`, `body_limit`,
/// `migrate`, `key_file`, `sealing_keys`, `log_level`, `outbound_allowlist`, `require_https`. Each matches the environment variable `HUB_<KEY>`.
struct Settings {
    static let keys: Set<String> = [
        "database_url", "data_dir", "host", "port", "body_limit", "migrate", "key_file", "sealing_keys", "log_level",
        "outbound_allowlist", "require_https",
    ]

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
        case let other?: throw HubError.validation(field: "config.\(key)", reason: "must be a string or number, not \(other.typeName)")
        }
    }

    /// The integer setting `key` (flag, environment, file). - Throws: `validation(key)` when it is not an integer.
    func int(_ key: String, flag: Int?) throws -> Int? {
        if let flag { return flag }
        guard let text = try string(key, flag: nil) else { return nil }
        guard let value = Int(text) else { throw HubError.validation(field: key, reason: "must be an integer") }
        return value
    }
}
