import Foundation
import Testing

/// Runs the built `hub` executable as a subprocess.
enum HubProcess {
    static var executable: URL {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/hub")
    }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs the executable to completion on a thread of its own, so waiting never blocks Swift's cooperative pool (an
    /// in-process test server needs those threads while the child talks to it).
    /// Runs `program` (the `hub` executable by default) to completion on a thread of its own, so waiting never blocks
    /// Swift's cooperative pool (an in-process test server needs those threads while the child talks to it). The
    /// child gets this process's environment without `HUB_*`, plus `environment`.
    static func run(_ arguments: [String], environment: [String: String] = [:], program: URL = executable) async throws -> Output {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try runBlocking(arguments, environment: environment, program: program) })
            }
        }
    }

    /// Starts `hub` with `arguments` in the background; its stdout is read as it comes. With `umask`, the process starts
    /// under that file mode creation mask (through `/bin/sh`).
    static func start(
        _ arguments: [String], environment: [String: String] = [:], umask: String? = nil, standardError: Pipe? = nil
    ) throws -> (Process, ServeCommandTests.LineReader) {
        let process = try prepare(arguments, environment: environment, program: executable)
        if let umask {
            process.arguments = ["-c", "umask \(umask) && exec \"$0\" \"$@\"", executable.path] + arguments
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
        }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = standardError ?? FileHandle.nullDevice
        let reader = ServeCommandTests.LineReader(out)
        try process.run()
        return (process, reader)
    }

    private static func prepare(_ arguments: [String], environment: [String: String], program: URL) throws -> Process {
        guard FileManager.default.isExecutableFile(atPath: program.path) else {
            throw TestSetupError("\(program.path) is missing: build it with `swift build` (scripts/test.sh does)")
        }
        let process = Process()
        process.executableURL = program
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HUB_") }.merging(environment) { _, new in new }
        return process
    }

    private static func runBlocking(_ arguments: [String], environment: [String: String], program: URL) throws -> Output {
        let process = try prepare(arguments, environment: environment, program: program)
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(
            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self))
    }
}

@Suite("hub migrate", .timeLimit(.minutes(10)))
struct MigrateCommandTests {
    @Test("the embedded default: --check fails before, migrate applies, --check passes after")
    func embedded() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hub-cli-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let before = try await HubProcess.run(["migrate", "--check", "--data-dir", directory])
        #expect(before.status == 6)
        #expect(before.stderr.contains("pending"))
        let applied = try await HubProcess.run(["migrate"], environment: ["HUB_DATA_DIR": directory])
        #expect(applied.status == 0, "\(applied.stderr)")
        #expect(applied.stdout.contains("applied 1 create_design_tables"))
        #expect(FileManager.default.fileExists(atPath: directory + "/hub.sqlite"))
        let again = try await HubProcess.run(["migrate", "--data-dir", directory])
        #expect(again.status == 0)
        #expect(!again.stdout.contains("applied"))
        #expect(try await HubProcess.run(["migrate", "--check", "--database-url", "sqlite://\(directory)/hub.sqlite"]).status == 0)
    }

    @Test("PostgreSQL by URL, with the password never printed")
    func postgres() async throws {
        let url = try #require(TestEnvironment.postgresURL, "HUB_TEST_DATABASE_URL must be set (scripts/test.sh)")
        let result = try await HubProcess.run(["migrate"], environment: ["HUB_DATABASE_URL": url])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("schema is up to date"))
        #expect(!result.stdout.contains("hub-test-password"))
        #expect(try await HubProcess.run(["migrate", "--check", "--database-url", url]).status == 0)
    }

    @Test("bad input exits 2 naming the field; an unreachable database exits 5")
    func failures() async throws {
        let bad = try await HubProcess.run(["migrate", "--database-url", "mysql://db/x"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("database_url"))
        let down = try await HubProcess.run(["migrate", "--database-url", "postgres://hub:pw-never-shown@127.0.0.1:1/x?sslmode=disable"])
        #expect(down.status == 5)
        #expect(down.stderr.contains("unavailable"))
        #expect(!down.stderr.contains("pw-never-shown"))
    }
}
