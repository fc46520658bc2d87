import Crypto
import Foundation
import HubCore

/// Turns an integration's auth configuration into request headers, fetching and caching OAuth2 client-credentials
/// tokens (until 30 s before they expire). Secrets stay in memory only; errors never quote them.
public actor AuthApplier {
    private let gateway: OutboundGateway
    private var tokens: [String: (token: String, expires: ContinuousClock.Instant)] = [:]
    private var inFlight: [String: Task<(token: String, expires: ContinuousClock.Instant), any Error>] = [:]

    /// SHA-256 of the configuration's full JSON (secret included), hex.
    static func cacheKey(_ auth: AuthConfig) -> String {
        SHA256.hash(data: Data(auth.json.jsonText.utf8)).map { String(format: "%02x", $0) }.joined()
    }

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
            // Keyed by the whole configuration, secret included: a caller who knows the token URL, client id and scope
            // (all visible in masked reads) but not the secret never gets a cached token.
            let key = Self.cacheKey(auth)
            let now = ContinuousClock.now
            if let cached = tokens[key], cached.expires > now { return ["Authorization": "Bearer \(cached.token)"] }
            // Concurrent callers share one fetch.
            let fetch: Task<(token: String, expires: ContinuousClock.Instant), any Error>
            if let running = inFlight[key] {
                fetch = running
            } else {
                fetch = Task { try await self.fetchToken(tokenURL: tokenURL, clientID: clientID, clientSecret: clientSecret, scope: scope) }
                inFlight[key] = fetch
            }
            defer { inFlight[key] = nil }
            let result = try await fetch.value
            tokens = tokens.filter { $0.value.expires > now }
            tokens[key] = result
            return ["Authorization": "Bearer \(result.token)"]
        }
    }

    private func fetchToken(tokenURL: String, clientID: String, clientSecret: String, scope: String?) async throws
        -> (token: String, expires: ContinuousClock.Instant)
    {
        // RFC 6749 §2.3.1: the client id and secret are form-encoded before Basic authentication.
        let formAllowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)...Unicode.Scalar(127)))
            .union(CharacterSet(charactersIn: "-._~"))
        func encode(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: formAllowed) ?? text }
        var form = "grant_type=client_credentials"
        if let scope { form += "&scope=" + encode(scope) }
        let outcome = await gateway.send(
            method: "POST", url: tokenURL,
            headers: [
                "Authorization": "Basic " + Data("\(encode(clientID)):\(encode(clientSecret))".utf8).base64EncodedString(),
                "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json",
            ],
            body: Data(form.utf8), timeout: .seconds(15))
        guard let status = outcome.statusCode else {
            throw HubError.unavailable(reason: "the OAuth2 token endpoint did not answer: \(outcome.error ?? "no response")")
        }
        guard (200..<300).contains(status),
            let object = JSONValue.parse(bytes: outcome.body)?.objectValue,
            let token = object["access_token"]?.stringValue
        else {
            throw HubError.unavailable(reason: "the OAuth2 token endpoint answered \(status) without an access_token")
        }
        // Clamped to 0 s…1 year before any arithmetic: a token endpoint's number is outside data (Int64.min overflowed
        // `lifetime - 30`).
        let answered = object["expires_in"]?.intValue ?? object["expires_in"]?.stringValue.flatMap { Int64($0) } ?? 300
        let lifetime = min(max(answered, 0), 31_536_000)
        return (token, .now + .seconds(max(0, lifetime - 30)))
    }
}
