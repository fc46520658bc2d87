import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HubCore
import Testing

/// `hub serve` and `hub keys`, run as subprocesses of the built executable.
@Suite("hub serve and hub keys", .timeLimit(.minutes(10)))
struct ServeCommandTests {
    /// Reads the child's stdout line by line until `predicate` matches or 30 s pass.
    final class LineReader: @unchecked Sendable {
        private let lock = NSLock()
        private var buffer = ""
        init(_ pipe: Pipe) {
            pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
                let data = handle.availableData
                guard let self, !data.isEmpty else { return }
                self.lock.withLock { self.buffer += String(decoding: data, as: UTF8.self) }
            }
        }
        var text: String { lock.withLock { buffer } }
        func wait(for needle: String) async throws -> String {
            for _ in 0..<300 {
                if text.contains(needle) { return text }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw TestSetupError("timed out waiting for '\(needle)'; output so far: \(text)")
        }
    }

    static func get(_ url: String, token: String?) async throws -> (Int, String) {
        var request = URLRequest(url: URL(string: url)!)
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as! HTTPURLResponse).statusCode, String(decoding: data, as: UTF8.self))
    }

    @Test("the embedded database is private: its directory 0700, the database, WAL, shared memory and keys 0600, under umask 000")
    func privateDataDirectory() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hub-private-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (process, reader) = try HubProcess.start(["serve", "--port", "0", "--data-dir", directory], umask: "000")
        _ = try await reader.wait(for: "listening on")
        func mode(_ path: String) throws -> Int {
            try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber).intValue
        }
        #expect(try mode(directory) == 0o700)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory)
        for name in ["hub.sqlite", "hub.sqlite-wal", "hub.sqlite-shm", "sealing.keys"] {
            #expect(files.contains(name), "\(files)")
        }
        for name in files {
            let path = (directory as NSString).appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            #expect(try mode(path) == (isDirectory.boolValue ? 0o700 : 0o600), "\(name)")
        }
        process.terminate()
        await process.exited()
    }

    @Test("the embedded default starts with no set-up, prints where it listens and an admin key once, stops on SIGTERM")
    func embedded() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hub-serve-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func start() throws -> (Process, LineReader) { try HubProcess.start(["serve", "--port", "0", "--data-dir", directory]) }
        let (process, reader) = try start()
        let output = try await reader.wait(for: "listening on")
        let lines = output.split(separator: "\n").map(String.init)
        let keyLine = try #require(lines.firstIndex { $0.hasPrefix("First start") })
        let token = lines[keyLine + 1]
        #expect(token.hasPrefix("hub_"))
        let listening = try #require(lines.first { $0.contains("listening on") })
        let base = try #require(listening.split(separator: " ").first { $0.hasPrefix("http://") }).description
        #expect(base.hasPrefix("http://127.0.0.1:"))
        #expect(try await Self.get(base + "/v1/integrations", token: token).0 == 200)
        #expect(try await Self.get(base + "/v1/integrations", token: nil).0 == 401)
        #expect(try await Self.get(base + "/healthz", token: nil).0 == 200)
        process.terminate()
        await process.exited()
        #expect(process.terminationStatus == 0)
        let keyFile = directory + "/sealing.keys"
        let mode = try FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)

        // A second start keeps the key and prints no new one; after the admin key is revoked, a restart does not
        // bring it (or a new one) back.
        let (again, againReader) = try start()
        let secondOutput = try await againReader.wait(for: "listening on")
        #expect(!secondOutput.contains("First start"))
        let secondBase = try #require(secondOutput.split(separator: " ").first { $0.hasPrefix("http://") }).description
        #expect(try await Self.get(secondBase + "/v1/integrations", token: token).0 == 200)
        again.terminate()
        await again.exited()
        #expect(try await HubProcess.run(["keys", "revoke", "admin", "--data-dir", directory]).status == 0)
        let (third, thirdReader) = try start()
        let thirdOutput = try await thirdReader.wait(for: "listening on")
        #expect(thirdOutput.contains("Every API key is revoked"))
        #expect(!thirdOutput.contains("hub_"))
        let thirdBase = try #require(thirdOutput.split(separator: " ").first { $0.hasPrefix("http://") }).description
        #expect(try await Self.get(thirdBase + "/v1/integrations", token: token).0 == 401)
        third.terminate()
        await third.exited()
    }

    static func post(_ url: String, token: String, body: String) async throws -> (Int, String) {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(body.utf8)
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as! HTTPURLResponse).statusCode, String(decoding: data, as: UTF8.self))
    }

    @Test("API operations executed by hub serve survive kill -9: the next start replays the journal; a graceful stop leaves none")
    func operationsSurviveKill() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hub-serve-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let journal = directory + "/journal"
        try await TargetServer.with { _, target in
            func start() throws -> (Process, LineReader) {
                try HubProcess.start(
                    ["serve", "--port", "0", "--data-dir", directory], environment: ["HUB_OUTBOUND_ALLOWLIST": "127.0.0.0/8"])
            }
            func base(_ output: String) throws -> String {
                try #require(output.split(separator: " ").first { $0.hasPrefix("http://") }).description
            }
            let (process, reader) = try start()
            let output = try await reader.wait(for: "listening on")
            let lines = output.split(separator: "\n").map(String.init)
            let token = lines[try #require(lines.firstIndex { $0.hasPrefix("First start") }) + 1]
            var ids: [String] = []
            for _ in 0..<20 {
                let (status, body) = try await Self.post(
                    try base(output) + "/v1/api-operations", token: token, body: #"{"operation_type":"GET","endpoint":"\#(target)/json"}"#)
                #expect(status == 201, "\(body)")
                let id = try #require(try JSONDecoder().decode(JSONValue.self, from: Data(body.utf8)).objectValue?["operation_id"]?.stringValue)
                ids.append(id)
            }
            kill(process.processIdentifier, SIGKILL)
            await process.exited()
            // The killed process's journal is left behind (with whatever it had not committed).
            #expect(try FileManager.default.contentsOfDirectory(atPath: journal).count == 1)

            let (again, againReader) = try start()
            let againOutput = try await againReader.wait(for: "listening on")
            let (status, body) = try await Self.get(try base(againOutput) + "/v1/api-operations?limit=100", token: token)
            #expect(status == 200)
            let listed = (try JSONDecoder().decode(JSONValue.self, from: Data(body.utf8)).objectValue?["items"]?.arrayValue ?? [])
                .compactMap(\.objectValue)
            let listedIDs = Set(listed.compactMap { $0["operation_id"]?.stringValue })
            #expect(Set(ids).isSubset(of: listedIDs))
            #expect(listed.allSatisfy { $0["status"]?.stringValue == "completed" && $0["status_code"]?.intValue == 200 })
            // Replayed and removed: only the running process's journal remains; a graceful stop removes it too.
            #expect(try FileManager.default.contentsOfDirectory(atPath: journal).count == 1)
            again.terminate()
            await again.exited()
            #expect(again.terminationStatus == 0)
            #expect(try FileManager.default.contentsOfDirectory(atPath: journal).isEmpty)
        }
    }

    @Test("keys create prints the key alone on the last line; list never shows it; revoke stops it")
    func keys() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hub-keys-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(try await HubProcess.run(["migrate", "--data-dir", directory]).status == 0)
        let created = try await HubProcess.run(["keys", "create", "--name", "ci", "--data-dir", directory])
        #expect(created.status == 0)
        let token = try #require(created.stdout.split(separator: "\n").last.map(String.init))
        #expect(token.hasPrefix("hub_") && !token.contains(" "))
        let listed = try await HubProcess.run(["keys", "list", "--json", "--data-dir", directory])
        #expect(listed.stdout.contains("\"name\":\"ci\""))
        #expect(!listed.stdout.contains(token))
        #expect(try await HubProcess.run(["keys", "create", "--name", "ci", "--data-dir", directory]).status == 4)
        #expect(try await HubProcess.run(["keys", "revoke", "ci", "--data-dir", directory]).status == 0)
        #expect(try await HubProcess.run(["keys", "list", "--data-dir", directory]).stdout.contains("revoked"))
        #expect(try await HubProcess.run(["keys", "revoke", "nobody", "--data-dir", directory]).status == 3)
    }

    @Test("settings come from a JSON file, overridden by environment and flags; unknown keys are refused")
    func configFile() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hub-config-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = directory + "/hub.json"
        try Data(#"{"data_dir": "\#(directory)/data", "port": 0, "host": "127.0.0.1", "body_limit": 4096}"#.utf8).write(to: URL(fileURLWithPath: config))
        let (process, reader) = try HubProcess.start(["serve", "--config", config])
        let output = try await reader.wait(for: "listening on")
        #expect(output.contains(directory + "/data/hub.sqlite"))
        process.terminate()
        await process.exited()
        #expect(FileManager.default.fileExists(atPath: directory + "/data/sealing.keys"))

        // The environment overrides the file: a migrate against another data directory.
        let other = try await HubProcess.run(["migrate", "--config", config], environment: ["HUB_DATA_DIR": directory + "/other"])
        #expect(other.status == 0)
        #expect(other.stdout.contains(directory + "/other/hub.sqlite"))
        // A flag overrides both.
        let flagged = try await HubProcess.run(["migrate", "--config", config, "--data-dir", directory + "/flag"], environment: ["HUB_DATA_DIR": directory + "/other"])
        #expect(flagged.stdout.contains(directory + "/flag/hub.sqlite"))

        // Booleans: a JSON boolean in the file, any common spelling in the environment, anything else refused.
        try Data(#"{"data_dir": "\#(directory)/data", "require_https": true, "outbound_allowlist": "127.0.0.0/8"}"#.utf8)
            .write(to: URL(fileURLWithPath: config))
        let refusedHTTP = try await HubProcess.run(["ops", "run", "--method", "GET", "--endpoint", "http://127.0.0.1:9/x", "--config", config])
        #expect(refusedHTTP.status == 7)
        #expect(refusedHTTP.stdout.contains("requires https"))
        let envFalse = try await HubProcess.run(
            ["ops", "run", "--method", "GET", "--endpoint", "http://127.0.0.1:9/x", "--config", config], environment: ["HUB_REQUIRE_HTTPS": "FALSE"])
        #expect(envFalse.stdout.contains("the connection failed"))
        let maybe = try await HubProcess.run(
            ["ops", "run", "--method", "GET", "--endpoint", "http://127.0.0.1:9/x", "--config", config], environment: ["HUB_REQUIRE_HTTPS": "maybe"])
        #expect(maybe.status == 2)
        #expect(maybe.stderr.contains("require_https"))
        #expect(try await HubProcess.run(["ops", "list", "--config", config], environment: ["HUB_LOG_LEVEL": "loud"]).status == 2)

        try Data(#"{"prot": 8080}"#.utf8).write(to: URL(fileURLWithPath: config))
        let unknown = try await HubProcess.run(["migrate", "--config", config])
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("config.prot"))
    }
}
