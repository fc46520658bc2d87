import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Files and directories that hold the hub's data (the embedded database, its WAL and shared memory, the sealing keys,
/// the operation journal): readable by the hub's user alone, whatever the process's umask.
public enum PrivateFiles {
    /// Creates `path` (and missing parents) as a directory of mode 0700; an existing `path` is set to 0700 when
    /// `own` (the hub's own data directory), else left as it is. - Throws: `unavailable` naming the failure.
    public static func directory(_ path: String, own: Bool) throws {
        var isDirectory: ObjCBool = false
        let existed = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if !existed {
            do {
                try FileManager.default.createDirectory(
                    atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw HubError.unavailable(reason: "cannot create the directory \(path)")
            }
        }
        // The mode given at creation passes through the umask: set it exactly.
        if !existed || own, chmod(path, 0o700) != 0 {
            throw HubError.unavailable(reason: "cannot make the directory \(path) private (mode 0700)")
        }
    }

    /// Creates `path` as an empty file of mode 0600 when missing, and sets an existing one to 0600.
    /// - Throws: `unavailable` naming the failure.
    public static func file(_ path: String) throws {
        let descriptor = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw HubError.unavailable(reason: "cannot create the file \(path)") }
        defer { close(descriptor) }
        guard fchmod(descriptor, 0o600) == 0 else { throw HubError.unavailable(reason: "cannot make the file \(path) private (mode 0600)") }
    }

    /// Sets `path` to mode 0600 if it exists.
    public static func restrictIfPresent(_ path: String) throws {
        if FileManager.default.fileExists(atPath: path), chmod(path, 0o600) != 0 {
            throw HubError.unavailable(reason: "cannot make the file \(path) private (mode 0600)")
        }
    }
}
