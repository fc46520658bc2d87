import Crypto
import Foundation

/// An API key of the HTTP API. Only a SHA-256 hash of the key is stored; the key itself is shown once, at creation.
public struct APIKey: Sendable, Hashable {
    /// The public part of the key (`hub_<key id>_…`), unique, used to find the key without scanning.
    public var keyID: String
    /// A name chosen by the operator, unique among keys (1–64 letters, digits, `.`, `_`, `-`).
    public var name: String
    public var createdAt: Date
    /// When the key last authenticated a request (updated at most once a minute).
    public var lastUsedAt: Date?
    /// When the key was revoked; a revoked key authenticates nothing.
    public var revokedAt: Date?

    /// Creates a value with every member given.
    public init(keyID: String, name: String, createdAt: Date, lastUsedAt: Date?, revokedAt: Date?) {
        self.keyID = keyID
        self.name = name
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt
    }

    /// The shape of a key: `hub_` + 12 hex characters of key id + `_` + 43 base64url characters of secret.
    public static func generate() -> (keyID: String, token: String) {
        var generator = SystemRandomNumberGenerator()
        let idBytes = (0..<6).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let secretBytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let keyID = idBytes.map { String(format: "%02x", $0) }.joined()
        let secret = Data(secretBytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return (keyID, "hub_\(keyID)_\(secret)")
    }

    /// The key id of a presented token, or `nil` when the token does not have the shape of a key.
    public static func keyID(of token: String) -> String? {
        let parts = token.split(separator: "_", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "hub", parts[1].count == 12, parts[1].allSatisfy(\.isHexDigit),
            parts[2].count >= 32
        else { return nil }
        return String(parts[1])
    }

    /// SHA-256 of the token, hex-encoded: what is stored.
    public static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Compares two hashes in time independent of where they differ.
    public static func constantTimeEquals(_ left: String, _ right: String) -> Bool {
        let a = Array(left.utf8)
        let b = Array(right.utf8)
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}

/// Storage of API keys.
public protocol APIKeyDAO: Sendable {
    /// Creates a key named `name`; returns it and the token, which is not stored and cannot be shown again.
    /// - Throws: `validation(name)`; `conflict(name)` when the name is taken.
    func create(name: String) async throws -> (key: APIKey, token: String)

    /// All keys, revoked ones included, oldest first.
    func list() async throws -> [APIKey]

    /// Revokes the key with this name or key id. - Throws: `notFound`.
    func revoke(_ nameOrKeyID: String) async throws -> APIKey

    /// The active key the token belongs to, or `nil` (unknown, malformed, wrong secret, revoked). The hash is
    /// compared in constant time.
    func authenticate(_ token: String) async throws -> APIKey?

    /// How many keys are not revoked.
    func activeCount() async throws -> Int
}
