import Foundation
import HubCore
import HubStore
import Testing

/// Runs every SQL statement of the design document (docs/spec, a copy of DAO-MDE-03-08) verbatim against the
/// PostgreSQL schema, with its placeholders bound. The two statements docs/design-notes.md calls flawed must fail
/// the way the note says; every other one must run and return the design's columns.
@Suite("Design statements, verbatim on PostgreSQL", .timeLimit(.minutes(10)))
struct DesignStatementTests {
    static func statements() throws -> [String] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/spec/integration-sync-dao-design.md"), encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            guard let start = line.range(of: "- SQL: `") else { return nil }
            return String(line[start.upperBound...].dropLast())
        }
    }

    @Test("all 15 statements run as the design wrote them, or fail as design-notes.md says")
    func verbatim() async throws {
        let database = try await TestEnvironment.database(.postgres)
        let statements = try Self.statements()
        try #require(statements.count == 15)
        let sealed = SQLValue.json(JSONValue.string("sealed:v1:1:placeholder").jsonText)
        let now = SQLValue.timestamp(Date())

        // DAO 1, step 1 and step 2.
        let integration = try #require(try await database.queryOne(
            statements[0], [.text(unique("sys")), .text("HR"), .text("https://hr.example.com"), sealed, .json("{}")]))
        let integrationID = try integration.uuid("integration_id")
        #expect(try integration.string("status") == "active")
        let tested = try #require(try await database.queryOne(
            statements[1], [.text("active"), now, .int(0), .text("v1.0"), .uuid(integrationID)]))
        #expect(try tested.string("config_version") == "v1.0")
        #expect(try tested.int("error_count") == 0)

        // DAO 2, steps 1 to 3.
        let job = try #require(try await database.queryOne(
            statements[2], [.uuid(integrationID), .text("full"), .text("users"), .json("{}"), .null]))
        let jobID = try job.uuid("sync_job_id")
        #expect(try job.string("status") == "running")
        let batch = try #require(try await database.queryOne(
            statements[3], [.uuid(jobID), .int(1), .int(40), .text("completed")]))
        #expect(try batch.int("records_processed") == 40)
        let finished = try #require(try await database.queryOne(statements[4], [.text("completed"), .int(0), .uuid(jobID)]))
        #expect(try finished.int("records_processed") == 40)
        #expect(try finished.optionalDate("completed_at") != nil)

        // DAO 3, steps 1 and 2; step 3 is flawed (see docs/design-notes.md).
        let operation = try #require(try await database.queryOne(
            statements[5], [.text("GET"), .text("/users"), .json("{}"), .null, .null]))
        let operationID = try operation.uuid("operation_id")
        let completed = try #require(try await database.queryOne(
            statements[6], [.text("completed"), .int(200), .json("{\"ok\":true}"), .int(12), .null, .uuid(operationID)]))
        #expect(try completed.int("status_code") == 200)
        await expectSQLState("42703", "api_statistics upsert names columns a counts-and-sums table does not have") {
            _ = try await database.query(statements[7], [.text("/users"), .text("GET"), .int(12), .int(200)])
        }

        // DAO 4, steps 1 to 3.
        let webhook = try #require(try await database.queryOne(
            statements[8], [.text("https://hooks.example.com"), .textArray(["sync.completed"]), .text("sealed:v1:1:x"), .null, .null]))
        let webhookID = try webhook.uuid("webhook_id")
        let webhookTested = try #require(try await database.queryOne(
            statements[9], [.text("active"), .json("{\"status_code\":204}"), .uuid(webhookID)]))
        #expect(try webhookTested.string("status") == "active")
        let statistics = try #require(try await database.queryOne(statements[10], [.uuid(webhookID)]))
        #expect(try statistics.int("success_count") == 0)
        #expect(statistics.isNull("last_triggered"))

        // DAO 5, steps 1 to 3; step 4 is flawed (ambiguous connection_id in RETURNING).
        let connection = try #require(try await database.queryOne(
            statements[11], [.text(unique("conn")), .text("TCP"), .text("host:1"), sealed, .null]))
        let connectionID = try connection.uuid("connection_id")
        #expect(try connection.string("status") == "pending")
        let checked = try #require(try await database.queryOne(statements[12], [.text("healthy"), .int(15), .uuid(connectionID)]))
        #expect(try checked.int("response_time") == 15)
        let health = try #require(try await database.queryOne(statements[13], [.uuid(connectionID), .text("healthy"), .int(15)]))
        #expect(try health.string("status") == "healthy")
        await expectSQLState("42702", "step 4's RETURNING connection_id is ambiguous between the table and the CTE") {
            _ = try await database.query(statements[14], [.uuid(connectionID)])
        }
        #expect(try await database.query("SELECT 1 AS one FROM system_connections WHERE connection_id = $1", [.uuid(connectionID)]).count == 1)
    }

    private func expectSQLState(
        _ state: String, _ why: Comment, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
    ) async {
        do {
            try await body()
            Issue.record("expected SQLSTATE \(state): \(why)", sourceLocation: sourceLocation)
        } catch {
            #expect(error as? SQLError == .other(code: state), why, sourceLocation: sourceLocation)
        }
    }
}
