import Crypto
import Foundation

/// Standard Webhooks (spec v1) signatures: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), where the
/// key is the base64 after `whsec_`. The webhook dispatcher signs with it; receivers verify with it.
public enum WebhookSignature {
    /// A secret's key, decoded once: what a sender that signs many messages with one secret keeps.
    public struct Key: Sendable {
        /// The key's bytes (`SymmetricKey` is not `Sendable`).
        let bytes: Data

        /// The key of `secret`. - Throws: `validation(secret_key)` for a malformed secret.
        public init(secret: String) throws {
            try WebhookSecret.validate(secret, field: "secret_key")
            bytes = Data(base64Encoded: String(secret.dropFirst("whsec_".count)))!
        }
    }

    /// The `webhook-signature` value for one secret. - Throws: `validation(secret_key)` for a malformed secret.
    public static func sign(secret: String, id: String, timestamp: Int64, body: Data) throws -> String {
        sign(keys: [try Key(secret: secret)], id: id, timestamp: timestamp, body: body)
    }

    /// The header value when several secrets are valid (during a rotation): each signature, space-separated.
    public static func sign(secrets: [String], id: String, timestamp: Int64, body: Data) throws -> String {
        sign(keys: try secrets.map { try Key(secret: $0) }, id: id, timestamp: timestamp, body: body)
    }

    /// The header value for decoded keys: each signature, space-separated (the body is hashed where it lies).
    public static func sign(keys: [Key], id: String, timestamp: Int64, body: Data) -> String {
        let prefix = Data("\(id).\(timestamp).".utf8)
        return keys.map { key in
            var hmac = HMAC<SHA256>(key: SymmetricKey(data: key.bytes))
            hmac.update(data: prefix)
            hmac.update(data: body)
            return "v1," + Data(hmac.finalize()).base64EncodedString()
        }.joined(separator: " ")
    }

    /// Whether `header` (one or more space-separated `v1,…` signatures) holds a valid signature for `secret`,
    /// compared in constant time.
    public static func verify(header: String, secret: String, id: String, timestamp: Int64, body: Data) -> Bool {
        guard let expected = try? sign(secret: secret, id: id, timestamp: timestamp, body: body) else { return false }
        return header.split(separator: " ").contains { APIKey.constantTimeEquals(String($0), expected) }
    }
}
