import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Seals secrets (auth configurations, credentials, webhook secrets) with AES-256-GCM before they are stored.
///
/// A sealed value is the text `sealed:v1:<key version>:<base64 of nonce ‖ ciphertext ‖ tag>`. The key version
/// lets keys rotate: the newest key seals, every key in the ring opens. The additional authenticated data binds
/// each sealed value to its column and row, so a ciphertext copied into another row or column does not open.
public struct SecretSealer: Sendable {
    private let keys: [UInt32: Data]
    /// The version that seals new values (the highest in the ring).
    public let currentVersion: UInt32

    /// A sealer over `keys` (version → 32-byte key). - Throws: `sealing` when the ring is empty or a key is not
    /// 32 bytes.
    public init(keys: [UInt32: Data]) throws {
        guard let newest = keys.keys.max() else { throw HubError.sealing(reason: "no sealing key configured") }
        for (version, key) in keys where key.count != 32 {
            throw HubError.sealing(reason: "sealing key version \(version) must be 32 bytes")
        }
        self.keys = keys
        self.currentVersion = newest
    }

    /// Parses a key ring written as `version:base64key` entries separated by commas or newlines (the format of
    /// `HUB_SEALING_KEYS` and of the key file). Blank lines and lines starting with `#` are ignored.
    public init(keyRing text: String) throws {
        var keys: [UInt32: Data] = [:]
        let entries = text.split(separator: "\n")
            .filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("#") }
            .flatMap { $0.split(separator: ",") }
        for entry in entries {
            let line = entry.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let version = UInt32(parts[0]), let key = Data(base64Encoded: String(parts[1]))
            else {
                throw HubError.sealing(reason: "key ring entries must be written version:base64key")
            }
            keys[version] = key
        }
        try self.init(keys: keys)
    }

    /// A new random 32-byte key, base64-encoded, for a key ring entry.
    public static func generateKey() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
    }

    /// Loads the key ring from `path`, creating it with one new key and mode 0600 when the file does not exist.
    /// - Throws: `sealing` when the file cannot be read, created, or is readable by others.
    public static func loadOrCreateKeyFile(at path: String) throws -> SecretSealer {
        let manager = FileManager.default
        if !manager.fileExists(atPath: path) {
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty {
                try? PrivateFiles.directory(directory, own: false)
            }
            // O_EXCL: of two processes starting at once exactly one creates the file, with mode 0600 from the start;
            // the other reads it.
            let descriptor = Glibc.open(path, O_CREAT | O_EXCL | O_WRONLY, 0o600)
            if descriptor >= 0 {
                let contents = Array("# IntegrationHub sealing keys: version:base64key; the newest version seals\n1:\(generateKey())\n".utf8)
                let written = contents.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
                fsync(descriptor)
                Glibc.close(descriptor)
                guard written == contents.count else { throw HubError.sealing(reason: "cannot write the key file at \(path)") }
            } else if errno != EEXIST {
                throw HubError.sealing(reason: "cannot create the key file at \(path)")
            }
        }
        guard let data = manager.contents(atPath: path) else {
            throw HubError.sealing(reason: "cannot read the key file at \(path)")
        }
        if let permissions = try? manager.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber,
            permissions.intValue & 0o077 != 0
        {
            throw HubError.sealing(reason: "the key file at \(path) must not be readable by group or others (chmod 600)")
        }
        return try SecretSealer(keyRing: String(decoding: data, as: UTF8.self))
    }

    /// Seals `plaintext` for `context` (for example `external_integrations.auth_config:<id>`).
    public func seal(_ plaintext: String, context: String) throws -> String {
        let key = SymmetricKey(data: keys[currentVersion]!)
        do {
            let box = try AES.GCM.seal(Data(plaintext.utf8), using: key, authenticating: Data(context.utf8))
            guard let combined = box.combined else { throw HubError.sealing(reason: "cannot seal") }
            return "sealed:v1:\(currentVersion):\(combined.base64EncodedString())"
        } catch let error as HubError {
            throw error
        } catch {
            throw HubError.sealing(reason: "cannot seal")
        }
    }

    /// Opens a value sealed by ``seal(_:context:)`` with the same `context`.
    /// - Throws: `sealing` when the format is wrong, the key version is unknown, or authentication fails.
    public func open(_ sealed: String, context: String) throws -> String {
        let parts = sealed.split(separator: ":", maxSplits: 3)
        guard parts.count == 4, parts[0] == "sealed", parts[1] == "v1", let version = UInt32(parts[2]),
            let combined = Data(base64Encoded: String(parts[3]))
        else {
            throw HubError.sealing(reason: "stored value is not a sealed secret")
        }
        guard let keyData = keys[version] else {
            throw HubError.sealing(reason: "sealing key version \(version) is not configured")
        }
        do {
            let box = try AES.GCM.SealedBox(combined: combined)
            let plaintext = try AES.GCM.open(box, using: SymmetricKey(data: keyData), authenticating: Data(context.utf8))
            return String(decoding: plaintext, as: UTF8.self)
        } catch {
            throw HubError.sealing(reason: "sealed secret failed authentication")
        }
    }

    /// Whether `value` was sealed with an older key than ``currentVersion`` (a candidate for re-sealing).
    public func needsResealing(_ value: String) -> Bool {
        let parts = value.split(separator: ":", maxSplits: 3)
        guard parts.count == 4, let version = UInt32(parts[2]) else { return false }
        return version != currentVersion
    }
}

/// The source of the current time for every timestamp the DAOs write. Tests pass a clock they control.
public struct WallClock: Sendable {
    private let read: @Sendable () -> Date

    /// A clock that reads `read`.
    public init(_ read: @escaping @Sendable () -> Date) { self.read = read }

    /// The system clock.
    public static let system = WallClock { Date() }

    /// The current time, truncated to whole microseconds (the precision both backends store).
    public func now() -> Date {
        Date(timeIntervalSince1970: (read().timeIntervalSince1970 * 1_000_000).rounded(.down) / 1_000_000)
    }
}
