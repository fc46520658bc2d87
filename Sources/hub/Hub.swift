import ArgumentParser
import Foundation
import HubCore
import HubStore
import Logging

/// The `hub` command: the integration service and its tools.
@main
struct Hub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hub",
        abstract: "IntegrationHub: integrations, synchronization, API operations, webhooks and connectivity.",
        subcommands: [Serve.self, Worker.self, Migrate.self, Keys.self, SealingKey.self, Integrations.self, Sync.self, Records.self, Ops.self, Webhooks.self, Connections.self])
}

/// Options every command that touches the database shares.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: "postgres://… URL, sqlite://PATH or a file path (env HUB_DATABASE_URL). Default: <data dir>/hub.sqlite.")
    var databaseURL: String?

    @Option(name: .long, help: "Directory of the embedded database and key file (env HUB_DATA_DIR, default ./hub-data).")
    var dataDir: String?

    @Option(name: .long, help: "JSON configuration file (env HUB_CONFIG); flags and environment variables override it.")
    var config: String?

    /// Flags, environment and the configuration file, merged.
    func settings() throws -> Settings { try Settings.load(path: config) }

    func resolvedDataDirectory() throws -> String { try settings().string("data_dir", flag: dataDir) ?? "./hub-data" }

    /// Whether no database was named, so the embedded default in the data directory is used.
    func isEmbeddedDefault() throws -> Bool { try settings().string("database_url", flag: databaseURL) == nil }

    func location() throws -> DatabaseLocation {
        try DatabaseLocation(url: try settings().string("database_url", flag: databaseURL), dataDirectory: try resolvedDataDirectory())
    }
}

/// Exit codes: 0 success, 1 unexpected failure, 2 invalid input, 3 not found, 4 conflict, 5 unavailable,
/// 6 schema mismatch or sealing key problem.
enum ExitStatus {
    static func code(for error: HubError) -> Int32 {
        switch error {
        case .validation, .invalidReference: 2
        case .notFound: 3
        case .conflict: 4
        case .unavailable: 5
        case .schemaMismatch, .sealing: 6
        }
    }
}

/// Runs `body`, turning domain and driver errors into a message on stderr and a meaningful exit code.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as HubError {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(ExitStatus.code(for: error))
    } catch let error as SQLError {
        let message = error == .unavailable ? "error: the database is unavailable\n" : "error: \(error)\n"
        FileHandle.standardError.write(Data(message.utf8))
        throw ExitCode(error == .unavailable ? 5 : error == .invalidText ? 2 : 1)
    }
}

/// The logger of a command: `log_level` from the settings (default warning).
func makeLogger(_ options: DatabaseOptions) throws -> Logger {
    var logger = Logger(label: "hub")
    logger.logLevel = try options.settings().logLevel(default: .warning)
    return logger
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending database migrations (or, with --check, verify that none is pending).")

    @OptionGroup var database: DatabaseOptions

    @Flag(help: "Apply nothing; exit 6 when migrations are pending or unknown.")
    var check = false

    func run() async throws {
        let check = self.check
        try await reportingErrors {
            let location = try database.location()
            try await location.withDatabase(logger: try makeLogger(database)) { database in
                let migrator = Migrator(database: database)
                if check {
                    try await migrator.check()
                    print("\(location.redacted): schema is up to date (\(Migrator.all.count) migrations)")
                } else {
                    let applied = try await migrator.migrate()
                    for migration in applied { print("applied \(migration.version) \(migration.name)") }
                    print("\(location.redacted): schema is up to date (\(Migrator.all.count) migrations)")
                }
            }
        }
    }
}
