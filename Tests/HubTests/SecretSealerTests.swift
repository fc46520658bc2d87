import Foundation
import HubCore
import HubStore
import Testing

@Suite("Secret sealing")
struct SecretSealerTests {
    @Test("a sealed value opens with its context only")
    func roundTrip() throws {
        let sealer = try SecretSealer(keyRing: "1:\(SecretSealer.generateKey())")
        let sealed = try sealer.seal("s3cret", context: "webhooks.secret_key:a")
        #expect(sealed.hasPrefix("sealed:v1:1:"))
        #expect(!sealed.contains("s3cret"))
        #expect(try sealer.open(sealed, context: "webhooks.secret_key:a") == "s3cret")
        #expect(throws: HubError.sealing(reason: "sealed secret failed authentication")) {
            try sealer.open(sealed, context: "webhooks.secret_key:b")
        }
        #expect(try sealer.seal("s3cret", context: "x") != sealer.seal("s3cret", context: "x"))
    }

    @Test("tampered ciphertext and foreign keys are refused")
    func tamper() throws {
        let sealer = try SecretSealer(keyRing: "1:\(SecretSealer.generateKey())")
        let sealed = try sealer.seal("s3cret", context: "c")
        var bytes = Data(base64Encoded: String(sealed.split(separator: ":")[3]))!
        bytes[bytes.count / 2] ^= 0x01
        let tampered = "sealed:v1:1:" + bytes.base64EncodedString()
        #expect(throws: HubError.self) { try sealer.open(tampered, context: "c") }
        let other = try SecretSealer(keyRing: "1:\(SecretSealer.generateKey())")
        #expect(throws: HubError.self) { try other.open(sealed, context: "c") }
        #expect(throws: HubError.sealing(reason: "stored value is not a sealed secret")) { try sealer.open("plain", context: "c") }
    }

    @Test("rotation: the newest key seals, older keys still open")
    func rotation() throws {
        let oldKey = SecretSealer.generateKey()
        let old = try SecretSealer(keyRing: "1:\(oldKey)")
        let sealedWithOld = try old.seal("v", context: "c")
        let rotated = try SecretSealer(keyRing: "# comment\n1:\(oldKey)\n2:\(SecretSealer.generateKey())\n")
        #expect(rotated.currentVersion == 2)
        #expect(try rotated.open(sealedWithOld, context: "c") == "v")
        #expect(rotated.needsResealing(sealedWithOld))
        #expect(try rotated.seal("v", context: "c").hasPrefix("sealed:v1:2:"))
        #expect(throws: HubError.sealing(reason: "sealing key version 1 is not configured")) {
            try SecretSealer(keyRing: "2:\(SecretSealer.generateKey())").open(sealedWithOld, context: "c")
        }
    }

    @Test("bad key rings are refused")
    func badRings() {
        #expect(throws: HubError.self) { try SecretSealer(keyRing: "") }
        #expect(throws: HubError.self) { try SecretSealer(keyRing: "one:abc") }
        #expect(throws: HubError.self) { try SecretSealer(keyRing: "1:c2hvcnQ=") }
    }

    @Test("the key file is created once with mode 0600 and refused when others can read it")
    func keyFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("sealing.keys").path
        let first = try SecretSealer.loadOrCreateKeyFile(at: path)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
        let sealed = try first.seal("v", context: "c")
        #expect(try SecretSealer.loadOrCreateKeyFile(at: path).open(sealed, context: "c") == "v")
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        #expect(throws: HubError.self) { try SecretSealer.loadOrCreateKeyFile(at: path) }
    }
}

/// API keys, on both backends.
@Suite("API keys", .timeLimit(.minutes(10)))
struct APIKeyContractTests {
    @Test("a created key authenticates until revoked; only its hash is stored", arguments: Backend.allCases)
    func lifecycle(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let name = unique("ci")
        let (key, token) = try await stores.apiKeys.create(name: name)
        #expect(token.hasPrefix("hub_\(key.keyID)_"))
        #expect(try await stores.apiKeys.authenticate(token)?.name == name)
        let raw = try await stores.database.query("SELECT key_hash FROM api_keys WHERE name = $1", [.text(name)])
        #expect(try raw.first?.string("key_hash") == APIKey.hash(token))
        #expect(try !(raw.first?.string("key_hash").contains(token) ?? true))
        #expect(try await stores.apiKeys.authenticate(token.dropLast() + "x") == nil)
        #expect(try await stores.apiKeys.authenticate("hub_000000000000_" + String(repeating: "a", count: 43)) == nil)
        #expect(try await stores.apiKeys.authenticate("Bearer nonsense") == nil)
        await expectHubError({ $0.isConflict }) { _ = try await stores.apiKeys.create(name: name) }
        await expectValidation("name") { _ = try await stores.apiKeys.create(name: "has space") }
        #expect(try await stores.apiKeys.revoke(name).revokedAt != nil)
        #expect(try await stores.apiKeys.authenticate(token) == nil)
        #expect(try await stores.apiKeys.list().contains { $0.name == name && $0.revokedAt != nil })
        await expectHubError({ $0.isNotFound }) { _ = try await stores.apiKeys.revoke(unique("none")) }
        // A name that looks like a key id revokes that name's key only, never another key whose id it is.
        let (other, _) = try await stores.apiKeys.create(name: unique("other"))
        let (lookalike, lookalikeToken) = try await stores.apiKeys.create(name: other.keyID)
        #expect(try await stores.apiKeys.revoke(other.keyID).keyID == lookalike.keyID)
        #expect(try await stores.apiKeys.list().first { $0.keyID == other.keyID }?.revokedAt == nil)
        #expect(try await stores.apiKeys.authenticate(lookalikeToken) == nil)
    }

    @Test("hash comparison is exact")
    func compare() {
        #expect(APIKey.constantTimeEquals("abc", "abc"))
        #expect(!APIKey.constantTimeEquals("abc", "abd"))
        #expect(!APIKey.constantTimeEquals("abc", "abcd"))
    }
}
