import Foundation

/// How the hub authenticates to an external system. Sealed at rest; only the engines that call the system
/// read it in clear (``ExternalSystemIntegrationDAO/authConfig(for:)``).
///
/// JSON shapes (`type` selects the shape; unknown members are rejected):
/// - `{"type": "none"}`
/// - `{"type": "api_key", "api_key": "…", "header": "X-Api-Key"}` (`header` optional, default `X-Api-Key`)
/// - `{"type": "basic", "username": "…", "password": "…"}`
/// - `{"type": "bearer", "token": "…"}`
/// - `{"type": "oauth2_client_credentials", "token_url": "https://…", "client_id": "…", "client_secret": "…",
///   "scope": "…"}` (`scope` optional)
public enum AuthConfig: Sendable, Hashable {
    case none
    case apiKey(key: String, header: String)
    case basic(username: String, password: String)
    case bearer(token: String)
    case oauth2ClientCredentials(tokenURL: String, clientID: String, clientSecret: String, scope: String?)

    /// The value of `type` in the JSON shape.
    public var type: String {
        switch self {
        case .none: "none"
        case .apiKey: "api_key"
        case .basic: "basic"
        case .bearer: "bearer"
        case .oauth2ClientCredentials: "oauth2_client_credentials"
        }
    }

    /// The auth types accepted in `auth_config.type`.
    public static let types = ["none", "api_key", "basic", "bearer", "oauth2_client_credentials"]

    /// Validates and parses `json` (the `auth_config` argument). Errors name the member, e.g. `auth_config.token`.
    public init(json: JSONValue, field: String = "auth_config") throws {
        guard let object = json.objectValue else {
            throw HubError.validation(field: field, reason: "must be a JSON object, not \(json.typeName)")
        }
        let type = try object.requiredString("type", field: field)
        // Every value ends up in a header or a form: no control characters (a CR/LF in a token would end its header line).
        for (name, value) in object where name != "type" {
            if let text = value.stringValue, !Validate.isLineSafe(text) {
                throw HubError.validation(field: "\(field).\(name)", reason: "must not contain control characters")
            }
        }
        switch type {
        case "none":
            try object.rejectUnknown(["type"], field: field)
            self = .none
        case "api_key":
            try object.rejectUnknown(["type", "api_key", "header"], field: field)
            let header = try object.optionalString("header", field: field) ?? "X-Api-Key"
            _ = try Validate.headers(.object([header: ""]), field: "\(field).header")
            self = .apiKey(key: try object.requiredString("api_key", field: field), header: header)
        case "basic":
            try object.rejectUnknown(["type", "username", "password"], field: field)
            let username = try object.requiredString("username", field: field)
            guard !username.contains(":") else {
                throw HubError.validation(field: "\(field).username", reason: "must not contain ':'")
            }
            self = .basic(username: username, password: try object.requiredString("password", field: field))
        case "bearer":
            try object.rejectUnknown(["type", "token"], field: field)
            self = .bearer(token: try object.requiredString("token", field: field))
        case "oauth2_client_credentials":
            try object.rejectUnknown(["type", "token_url", "client_id", "client_secret", "scope"], field: field)
            let tokenURL = try object.requiredString("token_url", field: field)
            try Validate.httpURL(tokenURL, field: "\(field).token_url")
            self = .oauth2ClientCredentials(
                tokenURL: tokenURL,
                clientID: try object.requiredString("client_id", field: field),
                clientSecret: try object.requiredString("client_secret", field: field),
                scope: try object.optionalString("scope", field: field))
        default:
            throw HubError.validation(
                field: "\(field).type", reason: "must be one of \(Self.types.joined(separator: ", "))")
        }
    }

    /// The full JSON shape, secrets included. Only for sealing and for the engines.
    public var json: JSONValue { json(mask: { $0 }) }

    /// The JSON shape with every secret value masked: tokens and keys as `****` plus, when long, their last four
    /// characters (to tell keys apart); passwords and client secrets as `****` alone.
    public var masked: JSONValue {
        switch self {
        case .basic(let username, _):
            return ["type": "basic", "username": .string(username), "password": "****"]
        case .oauth2ClientCredentials:
            guard case .object(var members) = json(mask: Self.mask) else { return .null }
            members["client_secret"] = "****"
            return .object(members)
        default:
            return json(mask: Self.mask)
        }
    }

    /// Masks a token or key for display: never more than its last four characters, and only when it is long.
    public static func mask(_ secret: String) -> String {
        secret.count >= 16 ? "****" + secret.suffix(4) : "****"
    }

    private func json(mask: (String) -> String) -> JSONValue {
        switch self {
        case .none:
            return ["type": "none"]
        case .apiKey(let key, let header):
            return ["type": "api_key", "api_key": .string(mask(key)), "header": .string(header)]
        case .basic(let username, let password):
            return ["type": "basic", "username": .string(username), "password": .string(mask(password))]
        case .bearer(let token):
            return ["type": "bearer", "token": .string(mask(token))]
        case .oauth2ClientCredentials(let tokenURL, let clientID, let clientSecret, let scope):
            var object: [String: JSONValue] = [
                "type": "oauth2_client_credentials", "token_url": .string(tokenURL),
                "client_id": .string(clientID), "client_secret": .string(mask(clientSecret)),
            ]
            if let scope { object["scope"] = .string(scope) }
            return .object(object)
        }
    }
}
