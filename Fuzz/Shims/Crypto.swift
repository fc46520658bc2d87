// A stand-in for swift-crypto's `Crypto` module, for the fuzz build only (scripts/fuzz.sh), which compiles HubCore's
// files with swiftc outside SwiftPM. It declares just what the HubCore files in that build name (SHA256.hash, used by
// CanonicalJSON.swift's sha256Hex and APIKey.swift's hash), and traps if called: no fuzz target reaches either.
import Foundation

public enum SHA256 {
    public static func hash<D: DataProtocol>(data: D) -> [UInt8] {
        fatalError("Fuzz/Shims/Crypto.swift: SHA256 is not available in the fuzz build")
    }
}
