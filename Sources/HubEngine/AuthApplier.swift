import Foundation
import HubCore

/// Turns an integration's auth configuration into request headers, fetching and caching OAuth2 client-credentials
/// tokens (until 30 s before they expire). Secrets stay in memory only; errors never quote them.
public actor AuthApplier {
    private let gateway: OutboundGateway
    private var tokens: [String: (token: String, expires: ContinuousClock.Instant)] = [:]

    /// An applier that fetches tokens through `gateway`.
    public init(gateway: OutboundGateway) { self.gateway = gateway }

    /// The headers that authenticate a request under `auth`.
    /// - Throws: `unavailable` when an OAuth2 token cannot be obtained (with the token endpoint's status, never its body).
    public func headers(for auth: AuthConfig) async throws -> [String: String] {
        switch auth {
        case .none:
            return [:]
        case .apiKey(let key, let header):
            return [header: key]
        case .basic(let username, let password):
            return ["Authorization": "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()]
        case .bearer(let token):
            return ["Authorization": "Bearer \(token)"]
        case .oauth2ClientCredentials(let tokenURL, let clientID, let clientSecret, let scope):
            let cacheKey = "\(tokenURL)\u{0}\(clientID)\u{0}\(scope ?? "")"
            if let cached = tokens[cacheKey], cached.expires > .now { return ["Authorization": "Bearer \(cached.token)"] }
            var form = "grant_type=client_credentials"
            if let scope { form += "&scope=" + (scope.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "") }
            let outcome = await gateway.send(
                method: "POST", url: tokenURL,
                headers: [
                    "Authorization": "Basic " + Data("\(clientID):\(clientSecret)".utf8).base64EncodedString(),
                    "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json",
                ],
                body: Data(form.utf8), timeout: .seconds(15))
            guard let status = outcome.statusCode else {
                throw HubError.unavailable(reason: "the OAuth2 token endpoint did not answer: \(outcome.error ?? "no response")")
            }
            guard (200..<300).contains(status),
                let object = try? JSONDecoder().decode(JSONValue.self, from: outcome.body).objectValue,
                let token = object["access_token"]?.stringValue
            else {
                throw HubError.unavailable(reason: "the OAuth2 token endpoint answered \(status) without an access_token")
            }
            let lifetime = object["expires_in"]?.intValue ?? 300
            tokens[cacheKey] = (token, .now + .seconds(max(0, lifetime - 30)))
            return ["Authorization": "Bearer \(token)"]
        }
    }
}
