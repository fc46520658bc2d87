import Foundation
import HubCore
import HubEngine
import HubPostgres
import HubSQLite
import HubStore
import Hummingbird
import Logging
import NIOCore

/// The sync ingest path: a fast loopback SCIM source serving pre-built pages → mapping → records store → batch
/// bookkeeping, for `count` users in pages of 1,000; records per second and peak memory (resident set sampled every
/// 20 ms, above the level before the sync); then a full sync of the same users again (all unchanged). On PostgreSQL, beside a plain `COPY` (psql `\copy`) of the same rows into
/// an equivalent table (the same columns and indexes as `sync_records`), measured in the same run.
enum SyncBench {
    /// Records per page and batch (`HUB_BENCH_PAGE_SIZE`, default 1000).
    static let pageSize = ProcessInfo.processInfo.environment["HUB_BENCH_PAGE_SIZE"].flatMap(Int.init) ?? 1000

    static func user(_ index: Int) -> JSONValue {
        let id = String(format: "u%07d", index)
        return [
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": .string(id), "userName": .string("user.\(index)@example.com"),
            "name": ["givenName": .string("Given\(index)"), "familyName": .string("Family\(index)")],
            "emails": [["value": .string("  User.\(index)@Example.com "), "primary": true, "type": "work"]],
            "active": true, "title": "Engineer",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": ["employeeNumber": .string(String(100_000 + index)), "department": "R&D"],
            "meta": ["resourceType": "User", "lastModified": "2026-11-01T10:00:00Z"],
        ]
    }

    static let mapping: JSONValue = [
        "connector": ["type": "scim"],
        "entities": ["users": [
            "path": "/Users", "external_id": "id",
            "fields": [
                "user_name": "userName", "given_name": "name.givenName", "family_name": "name.familyName",
                "email": ["path": "emails[primary=true].value", "transforms": ["trim", "lowercase"]],
                "active": ["path": "active", "transforms": ["boolean"]], "title": "title",
                "employee_number": "[\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"].employeeNumber",
                "department": "[\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"].department",
            ],
        ]],
    ]

    /// Resident set size in bytes (from /proc/self/statm).
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }

    static func run(counts: [Int], databases: [(String, any SQLDatabase)], postgresURL: String?) async throws {
        let total = counts.max() ?? 0
        // Pre-built resources, joined by commas in one buffer: a page is a header, one slice of it and a trailer, so the
        // source (which shares the hub's process and cores) does little more than a real one's network card would.
        var served: [UInt8] = []
        var offsets: [Int] = [0]
        offsets.reserveCapacity(total + 1)
        for index in 1...total {
            served += Array(user(index).jsonText.utf8)
            served.append(UInt8(ascii: ","))
            offsets.append(served.count)
        }
        let resources = served
        let starts = offsets
        let limit = Limit()
        let router = Router()
        router.get("/scim/v2/ServiceProviderConfig") { _, _ -> Response in
            Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: #"{"filter":{"supported":true,"maxResults":\#(pageSize)},"sort":{"supported":true}}"#)))
        }
        router.get("/scim/v2/Users") { request, _ -> Response in
            let start = max(1, request.uri.queryParameters.get("startIndex").flatMap(Int.init) ?? 1)
            let wanted = min(pageSize, request.uri.queryParameters.get("count").flatMap(Int.init) ?? pageSize)
            let total = await limit.value
            let end = min(total, start - 1 + wanted)
            let header = #"{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":\#(total),"startIndex":\#(start),"#
                + #""itemsPerPage":\#(max(0, end - start + 1)),"Resources":["#
            let slice = start <= end ? resources[starts[start - 1]..<(starts[end] - 1)] : []
            var body = ByteBufferAllocator().buffer(capacity: header.utf8.count + slice.count + 2)
            body.writeString(header)
            body.writeBytes(slice)
            body.writeString("]}")
            return Response(status: .ok, headers: [.contentType: "application/scim+json"], body: .init(byteBuffer: body))
        }
        try await HubBench.withLoopbackServer(router) { port in
            let base = "http://127.0.0.1:\(port)/scim/v2"
            for (name, database) in databases {
                for count in counts {
                    await limit.set(count)
                    try await ingest(name: name, database: database, base: base, count: count)
                }
                if name == "postgres", let postgresURL, let count = counts.max() {
                    try copyBaseline(url: postgresURL, count: count)
                }
            }
        }
    }

    actor Limit {
        var value = 0
        func set(_ count: Int) { value = count }
    }

    static func ingest(name: String, database: any SQLDatabase, base: String, count: Int) async throws {
        try await Migrator(database: database).migrate()
        let stores = HubStores(database: database, sealer: try SecretSealer(keyRing: "1:\(SecretSealer.generateKey())"))
        let gateway = OutboundGateway(policy: try OutboundPolicy(allowlist: ["127.0.0.0/8"]))
        let journal = FileManager.default.temporaryDirectory.appendingPathComponent("hub-bench-sync-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: journal) }
        let recorder = try OperationRecorder(store: stores.apiOperations, journalDirectory: journal)
        let executor = OperationExecutor(
            gateway: gateway, auth: AuthApplier(gateway: gateway), integrations: stores.integrations, operations: recorder)
        let engine = SyncEngineStore(database: database)
        let runner = SyncRunner(store: engine, integrations: stores.integrations, executor: executor, owner: "bench")
        let integration = try await stores.integrations.register(IntegrationRegistration(
            systemID: "bench-\(UUID().uuidString.prefix(8))", integrationType: "HR", endpointURL: base,
            authConfig: ["type": "bearer", "token": "bench-token-0123456789"], mappingConfig: mapping))
        // The ingest of new records, then a second full sync of the same ones (all unchanged: the upsert's path).
        for (phase, again) in [("ingest", false), ("re-sync", true)] {
            let job = try await stores.syncJobs.start(SyncJobRequest(integrationID: integration.id, syncType: .full, entityType: "users", batchSize: pageSize))
            guard let claim = try await engine.claim(owner: "bench", lease: .seconds(60), jobID: job.id) else { throw BenchError("claim failed") }
            let before = residentBytes()
            let peak = Peak(before)
            let sampler = Task {
                while !Task.isCancelled {
                    await peak.note(residentBytes())
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
            let cpuBefore = HubBench.processCPUSeconds()
            let postgresBefore = name == "postgres" ? HubBench.postgresCPUSeconds() : 0
            let start = ContinuousClock.now
            guard let finished = await runner.run(claim), finished.status == .completed,
                (again ? finished.summary.unchanged : finished.summary.added) == Int64(count)
            else {
                throw BenchError("the sync did not complete with \(count) \(again ? "unchanged" : "added")")
            }
            let seconds = (ContinuousClock.now - start).seconds
            let cpu = HubBench.processCPUSeconds() - cpuBefore
            let postgresCPU = name == "postgres" ? HubBench.postgresCPUSeconds() - postgresBefore : 0
            sampler.cancel()
            HubBench.printWindow(phase, seconds: seconds)
            let grown = await peak.value - before
            print(String(
                format: "sync %@ on %@: %d records in %.2f s = %.0f records/s; peak resident memory +%.1f MiB over the %.1f MiB before",
                again ? "re-sync (all unchanged)" : "ingest", name, count, seconds, Double(count) / seconds, Double(grown) / 1_048_576,
                Double(before) / 1_048_576))
            // CPU a record: the benchmark's process (the hub with the source it reads) and, on PostgreSQL, every backend.
            print(String(format: "  CPU per record: hub with source %.1f µs%@; idle %.0f %% of 2 cores", 1e6 * cpu / Double(count),
                         name == "postgres" ? String(format: ", PostgreSQL %.1f µs", 1e6 * postgresCPU / Double(count)) : "",
                         max(0, 100 * (1 - (cpu + postgresCPU) / (2 * seconds)))))
        }
        await recorder.shutdown()
        try await gateway.shutdown()
    }

    actor Peak {
        var value: Int
        init(_ value: Int) { self.value = value }
        func note(_ sample: Int) { value = max(value, sample) }
    }

    /// `\copy` of the same mapped rows with psql into a table made `LIKE sync_records INCLUDING ALL` (its columns and indexes).
    static func copyBaseline(url: String, count: Int) throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("hub-bench-copy-\(UUID().uuidString).tsv").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        let mappingConfig = try SyncConfiguration.parse(mapping)!.entities["users"]!.mapping
        var text = ""
        text.reserveCapacity(count * 400)
        let integration = UUID().uuidString.lowercased()
        let job = UUID().uuidString.lowercased()
        let now = "2026-11-27 00:00:00+00"
        for index in 1...count {
            let mapped = try mappingConfig.apply(user(index))
            let json = mapped.text
            let escaped = json.replacingOccurrences(of: "\\", with: "\\\\")
            text += "\(integration)\tusers\t\(mapped.externalID)\t\(escaped)\t\(JSONValue.sha256Hex(json))\tcreated\t\(now)\t\(now)\t\\N\t\(job)\t\(job)\t\\N\n"
        }
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let setup = """
            DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy (LIKE sync_records INCLUDING ALL);
            """
        try psql(url, ["-c", setup])
        let start = ContinuousClock.now
        try psql(url, ["-c", "\\copy bench_copy FROM '\(file)'"])
        let seconds = (ContinuousClock.now - start).seconds
        try psql(url, ["-c", "DROP TABLE bench_copy"])
        print(String(format: "psql \\copy of the same %d rows into an equivalent table: %.2f s = %.0f rows/s", count, seconds, Double(count) / seconds))
    }

    static func psql(_ url: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["psql", url, "-q", "-v", "ON_ERROR_STOP=1"] + arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchError("psql failed (\(process.terminationStatus))") }
    }
}
