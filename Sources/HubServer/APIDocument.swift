import HTTPTypes
import HubCore
import HubStore
import Hummingbird

/// One documented route: what `/openapi.json` says about it. Routes are registered through ``APIRoutes/add``, so
/// every route is documented and every documented route exists.
struct RouteSpec: Sendable {
    var method: HTTPRequest.Method
    /// OpenAPI path template, e.g. `/v1/integrations/{id}`.
    var path: String
    var summary: String
    var tag: String
    var requestSchema: String?
    var query: [QueryParameter]
    var successStatus: Int
    /// Component name of the success body; `nil` for an empty body (204).
    var successSchema: String?
    var errorStatuses: [Int]
    var authenticated: Bool
    /// The success body's member holding the created resource's id (creates only): the document links the create to
    /// every operation on that resource (OpenAPI `links`), so a client or a stateful fuzzer can follow them.
    var createdID: String? = nil
    /// The request body may be left out (the route then takes its defaults).
    var bodyOptional = false

    /// `get_v1_integrations_id` for `GET /v1/integrations/{id}`.
    var operationID: String {
        method.rawValue.lowercased()
            + path.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "{", with: "")
            .replacingOccurrences(of: "}", with: "").replacingOccurrences(of: "-", with: "_")
    }
}

/// Builds the OpenAPI 3.1 document from the registered routes and the component schemas.
enum APIDocument {
    static func build(routes: [RouteSpec]) -> JSONValue {
        var paths: [String: [String: JSONValue]] = [:]
        for route in routes {
            var responses: [String: JSONValue] = [:]
            if let schema = route.successSchema {
                var success: [String: JSONValue] = [
                    "description": "Success",
                    "content": ["application/json": ["schema": ["$ref": .string("#/components/schemas/\(schema)")]]],
                ]
                if let field = route.createdID { success["links"] = .object(links(from: route, field: field, routes: routes)) }
                responses["\(route.successStatus)"] = .object(success)
            } else {
                responses["\(route.successStatus)"] = ["description": "Success, no body"]
            }
            var errors = route.errorStatuses
            if route.authenticated { errors.append(401) }
            errors.append(500)
            for status in Set(errors).sorted() {
                responses["\(status)"] = [
                    "description": .string(HTTPResponse.Status(code: status).reasonPhrase),
                    "content": ["application/problem+json": ["schema": ["$ref": "#/components/schemas/Problem"]]],
                ]
            }
            var operation: [String: JSONValue] = [
                "summary": .string(route.summary), "tags": [.string(route.tag)],
                "operationId": .string(route.operationID),
                "responses": .object(responses),
            ]
            var parameters: [JSONValue] = route.path.split(separator: "/").filter { $0.hasPrefix("{") }.map { segment in
                let name = String(segment.dropFirst().dropLast())
                return ["name": .string(name), "in": "path", "required": true, "schema": pathSchema(name)]
            }
            parameters += route.query.map { item in
                ["name": .string(item.name), "in": "query", "required": false, "description": .string(item.description), "schema": item.schema]
            }
            if !parameters.isEmpty { operation["parameters"] = .array(parameters) }
            if let schema = route.requestSchema {
                operation["requestBody"] = [
                    "required": .bool(!route.bodyOptional),
                    "content": ["application/json": ["schema": ["$ref": .string("#/components/schemas/\(schema)")]]],
                ]
            }
            if !route.authenticated { operation["security"] = [] }
            paths[route.path, default: [:]][route.method.rawValue.lowercased()] = .object(operation)
        }
        return [
            "openapi": "3.1.0",
            "info": [
                "title": "IntegrationHub API", "version": "1.0.0",
                "description": "Integrations, synchronization jobs, API operations, webhooks and connectivity (DAO-MDE-03-08). Timestamps are RFC 3339 UTC; lists are paginated with `limit` (1-500, default 50) and the opaque `cursor` from `next_cursor`; errors are RFC 9457 problem+json.",
            ],
            "servers": [["url": "/"]],
            "security": [["bearerAuth": []]],
            "paths": .object(paths.mapValues { .object($0) }),
            "components": ["securitySchemes": ["bearerAuth": ["type": "http", "scheme": "bearer", "description": "An API key from `hub keys create`"]], "schemas": .object(Schemas.all)],
        ]
    }
}

extension APIDocument {
    /// Links from a create to each operation on the created resource: the paths under the create's path whose next
    /// segment is a parameter, that parameter taken from the body's `field` and the create's own path parameters
    /// passed on. Catch-all paths (`{path}`) are left out.
    static func links(from create: RouteSpec, field: String, routes: [RouteSpec]) -> [String: JSONValue] {
        let prefix = create.path + "/{"
        var links: [String: JSONValue] = [:]
        for route in routes where route.path.hasPrefix(prefix) && !route.path.contains("{path}") {
            let rest = route.path.dropFirst(create.path.count + 1)
            guard let first = rest.split(separator: "/").first else { continue }
            var parameters: [String: JSONValue] = [String(first.dropFirst().dropLast()): .string("$response.body#/\(field)")]
            for segment in create.path.split(separator: "/") where segment.hasPrefix("{") {
                let name = String(segment.dropFirst().dropLast())
                parameters[name] = .string("$request.path.\(name)")
            }
            // Parameters after the created one are not known from the create: such operations are not linked.
            guard rest.split(separator: "/").dropFirst().allSatisfy({ !$0.hasPrefix("{") }) else { continue }
            links[route.operationID] = ["operationId": .string(route.operationID), "parameters": .object(parameters)]
        }
        return links
    }

    /// A path parameter's schema, as the routes parse it: ids are UUIDs, `message_id` is `msg_<n>`, `entity_type`
    /// follows the entity type rule, `{path}` is the rest of the path.
    static func pathSchema(_ name: String) -> JSONValue {
        switch name {
        case "id", "window_id": Schemas.uuid
        case "message_id": ["type": "string", "pattern": "^msg_[1-9][0-9]{0,17}$"]
        case "entity_type": ["type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"]
        default: ["type": "string"]
        }
    }
}

/// One documented query parameter, typed as the server parses it (a generated client or a fuzzer then sends only
/// values the server can accept, and the server's refusals of anything else are what the document promises).
struct QueryParameter: Sendable {
    var name: String
    var description: String
    var schema: JSONValue

    static let limit = QueryParameter(
        name: "limit", description: "Items per page, 1-500 (default 50)",
        schema: ["type": "integer", "minimum": 1, "maximum": 500, "default": 50])
    /// `next_cursor` of the previous page, in the list's form (`pattern`, one of ``CursorPattern``'s).
    static func cursor(_ pattern: String) -> QueryParameter {
        QueryParameter(
            name: "cursor", description: "next_cursor of the previous page", schema: ["type": "string", "pattern": .string(pattern)])
    }
    /// `limit` and `cursor` of a list ordered by (created_at, id).
    static let paging = [limit, cursor(CursorPattern.keyset)]

    static func uuid(_ name: String, _ description: String) -> QueryParameter {
        QueryParameter(name: name, description: description, schema: Schemas.uuid)
    }
    static func dateTime(_ name: String, _ description: String) -> QueryParameter {
        QueryParameter(name: name, description: description, schema: Schemas.timestamp)
    }
    static func date(_ name: String, _ description: String) -> QueryParameter {
        QueryParameter(name: name, description: description, schema: ["type": "string", "format": "date"])
    }
    static func oneOf<Value: RawRepresentable & CaseIterable>(_ name: String, _ description: String, _ type: Value.Type) -> QueryParameter
    where Value.RawValue == String {
        QueryParameter(name: name, description: description, schema: Schemas.enumeration(type.allCases.map(\.rawValue)))
    }
    static func string(_ name: String, _ description: String, schema: JSONValue = ["type": "string"]) -> QueryParameter {
        QueryParameter(name: name, description: description, schema: schema)
    }
}
