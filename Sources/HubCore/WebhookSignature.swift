import Crypto
import Foundation

/// Standard Webhooks (spec v1) signatures: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), where the
/// key is the base64 after `whsec_`. The webhook dispatcher signs with it; receivers verify with it.
public enum WebhookSignature {
    /// The `webhook-signature` value for one secret. - Throws: `validation(secret_key)` for a malformed secret.
    public static func sign(secret: String, id: String, timestamp: Int64, body: Data) throws -> String {
        try WebhookSecret.validate(secret, field: "secret_key")
        let key = SymmetricKey(data: Data(base64Encoded: String(secret.dropFirst("whsec_".count)))!)
        var message = Data("\(id).\(timestamp).".utf8)
        message.append(body)
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: key)
        return "v1," + Data(mac).base64EncodedString()
    }

    /// The header value when several secrets are valid (during a rotation): each signature, space-separated.
    public static func sign(secrets: [String], id: String, timestamp: Int64, body: Data) throws -> String {
        try secrets.map { try sign(secret: $0, id: id, timestamp: timestamp, body: body) }.joined(separator: " ")
    }

    /// Whether `header` (one or more space-separated `v1,…` signatures) holds a valid signature for `secret`,
    /// compared in constant time.
    public static func verify(header: String, secret: String, id: String, timestamp: Int64, body: Data) -> Bool {
        guard let expected = try? sign(secret: secret, id: id, timestamp: timestamp, body: body) else { return false }
        return header.split(separator: " ").contains { APIKey.constantTimeEquals(String($0), expected) }
    }
}
