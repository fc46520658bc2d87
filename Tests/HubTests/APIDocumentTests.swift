import Foundation
import HTTPTypes
import HubCore
import Testing

/// What `/openapi.json` promises about parameters, methods and links, checked against the server's answers.
@Suite("OpenAPI contract", .timeLimit(.minutes(10)))
struct APIDocumentTests {
    /// Resources to put in a path's `{id}`, by the path's first segment after `/v1`.
    static func resources(_ client: APIClient) async throws -> [String: String] {
        let integration = try await client.send(.post, "/v1/integrations", json: [
            "system_id": .string(unique("doc")), "integration_type": "HR", "endpoint_url": "https://hr.example.com",
            "auth_config": ServerTests.bearer,
        ])
        let webhook = try await client.send(.post, "/v1/webhooks", json: ["webhook_url": "https://hooks.example.com", "event_types": ["*"]])
        let connection = try await client.send(.post, "/v1/connections", json: [
            "system_name": .string(unique("doc")), "connection_type": "API", "endpoint": "https://127.0.0.1:1",
            "credentials": ["token": "doc-token-0123456789"],
        ])
        return [
            "integrations": try #require(integration["integration_id"]?.stringValue),
            "webhooks": try #require(webhook["webhook_id"]?.stringValue),
            "connections": try #require(connection["connection_id"]?.stringValue),
        ]
    }

    /// `path` with `{id}` replaced by a resource of its kind and `{entity_type}` by `users`.
    static func concrete(_ path: String, _ resources: [String: String]) -> String {
        let kind = path.split(separator: "/").dropFirst().first.map(String.init) ?? ""
        return path.replacingOccurrences(of: "{id}", with: resources[kind] ?? UUID().uuidString)
            .replacingOccurrences(of: "{entity_type}", with: "users")
    }

    /// Values a parameter's schema rules out, with what makes each invalid.
    static func invalidValues(_ schema: [String: JSONValue]) -> [String] {
        // An empty value is a value: refused, not taken for the default.
        var values: [String] = schema.count > 1 ? [""] : []
        if schema["type"] == "integer" {
            values += ["abc", "1.5", "99999999999999999999"]
            if case .int(let minimum)? = schema["minimum"] { values.append(String(minimum - 1)) }
            if case .int(let maximum)? = schema["maximum"] { values.append(String(maximum + 1)) }
        }
        if schema["type"] == "boolean" { values.append("maybe") }
        if schema["enum"] != nil { values.append("no-such-value") }
        switch schema["format"]?.stringValue {
        case "uuid": values += ["not-a-uuid", "123"]
        case "date-time": values += ["yesterday", "2026-02-30T00:00:00Z", "2026-01-01T25:00:00Z"]
        case "date": values += ["2026-13-01", "01/02/2026"]
        default: break
        }
        if schema["pattern"] != nil { values += ["Not-Valid"] }
        return values
    }

    @Test("every query parameter is typed as parsed: the server refuses what the schema rules out, naming the parameter")
    func queryParameters() async throws {
        let harness = try await APIHarness.make(.sqlite)
        try await harness.test { client in
            let document = try await ServerTests.document(client)
            let resources = try await Self.resources(client)
            let paths = try #require(document.objectValue?["paths"]?.objectValue)
            var checked = 0
            for (path, operations) in paths {
                for (method, operation) in operations.objectValue ?? [:] {
                    for parameter in operation.objectValue?["parameters"]?.arrayValue ?? [] {
                        let parameter = try #require(parameter.objectValue)
                        let name = try #require(parameter["name"]?.stringValue)
                        let schema = try #require(parameter["schema"]?.objectValue)
                        let location = parameter["in"]?.stringValue
                        // Only free text stays a plain string: an endpoint and the proxied path.
                        if schema.count == 1, schema["type"] == "string" {
                            #expect(["endpoint", "path"].contains(name), "\(method) \(path): \(name) is an untyped string")
                        }
                        if name == "limit" {
                            #expect(schema["type"] == "integer" && schema["minimum"] == 1 && schema["maximum"] == 500)
                        }
                        if location == "path", name.hasSuffix("id"), name != "message_id" { #expect(schema["format"] == "uuid", "\(path): \(name)") }
                        guard location == "query", method == "get" else { continue }
                        for value in Self.invalidValues(schema) {
                            let encoded = value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? value
                            let response = try await client.send(.get, Self.concrete(path, resources) + "?\(name)=\(encoded)")
                            #expect(response.status == .unprocessableContent, "GET \(path)?\(name)=\(value) answered \(response.status)")
                            #expect(response["field"]?.stringValue == name, "GET \(path)?\(name)=\(value): \(response.text)")
                            checked += 1
                        }
                    }
                }
            }
            #expect(checked >= 40)
        }
    }

    @Test("a method a known path does not serve answers 405 with Allow naming the methods it does")
    func methodNotAllowed() async throws {
        let harness = try await APIHarness.make(.sqlite)
        try await harness.test { client in
            let document = try await ServerTests.document(client)
            let paths = try #require(document.objectValue?["paths"]?.objectValue)
            var checked = 0
            for (path, operations) in paths {
                let served = Set((operations.objectValue ?? [:]).keys.map { $0.uppercased() })
                guard let missing = ["GET", "POST", "PUT", "PATCH", "DELETE"].first(where: { !served.contains($0) }) else { continue }
                let uri = path.replacingOccurrences(of: "{id}", with: UUID().uuidString).replacingOccurrences(of: "{entity_type}", with: "users")
                    .replacingOccurrences(of: "{message_id}", with: "msg_1").replacingOccurrences(of: "{window_id}", with: UUID().uuidString)
                let response = try await client.send(.init(missing)!, uri, raw: missing == "GET" || missing == "DELETE" ? nil : "{}")
                #expect(response.status == .methodNotAllowed, "\(missing) \(path) answered \(response.status)")
                #expect(response.headers[.allow] == served.sorted().joined(separator: ", "), "\(missing) \(path)")
                #expect(response.headers[.contentType] == "application/problem+json")
                checked += 1
            }
            #expect(checked >= 20)
            #expect(try await client.send(.get, "/v1/nothing-here").status == .notFound)
            #expect(try await client.send(.put, "/v1/integrations/\(UUID())/nothing").status == .notFound)
        }
    }

    @Test("each create links to the operations on what it created, and following the links reaches it")
    func links() async throws {
        let harness = try await APIHarness.make(.sqlite)
        try await harness.test { client in
            let document = try await ServerTests.document(client)
            let paths = try #require(document.objectValue?["paths"]?.objectValue)
            var operations: [String: (method: String, path: String)] = [:]
            for (path, entries) in paths {
                for (method, operation) in entries.objectValue ?? [:] {
                    if let id = operation.objectValue?["operationId"]?.stringValue { operations[id] = (method, path) }
                }
            }
            func links(_ method: String, _ path: String, _ status: String) throws -> [String: JSONValue] {
                let operation = try #require(paths[path]?.objectValue?[method]?.objectValue)
                let response = try #require(operation["responses"]?.objectValue?[status]?.objectValue)
                return try #require(response["links"]?.objectValue, "\(method) \(path) has no links")
            }
            let fromIntegration = try links("post", "/v1/integrations", "201")
            for expected in ["get_v1_integrations_id", "patch_v1_integrations_id", "delete_v1_integrations_id", "post_v1_integrations_id_test"] {
                #expect(fromIntegration[expected]?.objectValue?["parameters"] == ["id": "$response.body#/integration_id"], "\(expected)")
            }
            for create in [("post", "/v1/sync-jobs", "201"), ("post", "/v1/webhooks", "201"), ("post", "/v1/connections", "201"),
                           ("post", "/v1/api-operations", "201"), ("post", "/v1/connections/{id}/maintenance", "201"),
                           ("put", "/v1/integrations/{id}/schedules", "200")] {
                let found = try links(create.0, create.1, create.2)
                #expect(!found.isEmpty, "\(create)")
                for (_, link) in found {
                    let target = try #require(link.objectValue?["operationId"]?.stringValue)
                    #expect(operations[target] != nil, "\(create.1) links to unknown \(target)")
                }
            }
            // Follow every GET link of a real create.
            let created = try await client.send(.post, "/v1/integrations", json: [
                "system_id": .string(unique("links")), "integration_type": "HR", "endpoint_url": "https://hr.example.com",
                "auth_config": ServerTests.bearer,
            ])
            #expect(created.status == .created)
            var followed = 0
            for (_, link) in fromIntegration {
                let link = try #require(link.objectValue)
                guard let target = operations[link["operationId"]?.stringValue ?? ""], target.method == "get" else { continue }
                var uri = target.path
                for (name, expression) in link["parameters"]?.objectValue ?? [:] {
                    let member = try #require(expression.stringValue?.split(separator: "/").last.map(String.init))
                    uri = uri.replacingOccurrences(of: "{\(name)}", with: try #require(created[member]?.stringValue))
                }
                #expect(try await client.send(.get, uri).status == .ok, "\(uri)")
                followed += 1
            }
            #expect(followed >= 2)
        }
    }
}
