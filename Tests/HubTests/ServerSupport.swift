import Foundation
import HTTPTypes
import HubCore
import HubEngine
import HubServer
import HubStore
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

/// Collects every log line (message and metadata) so tests can search them for secrets.
final class CapturedLogs: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }

    var logger: Logger {
        var logger = Logger(label: "test.server") { _ in CapturingHandler(sink: self) }
        logger.logLevel = .trace
        return logger
    }

    struct CapturingHandler: LogHandler {
        let sink: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            sink.append("\(event.level) \(event.message) \(merged)")
        }
    }
}

/// A server over one backend's stores, with an API key.
struct APIHarness {
    let stores: HubStores
    let token: String
    let logs = CapturedLogs()
    var configuration = ServerConfiguration(port: 0, outboundPolicy: try! OutboundPolicy(allowlist: ["127.0.0.0/8", "::1"]))
    /// One gateway for the test process (loopback allowed); never shut down before the process ends.
    static let gateway = OutboundGateway(policy: try! OutboundPolicy(allowlist: ["127.0.0.0/8", "::1"]))

    static func make(_ backend: Backend) async throws -> APIHarness {
        let stores = try await TestEnvironment.stores(backend)
        let (_, token) = try await stores.apiKeys.create(name: unique("test"))
        return APIHarness(stores: stores, token: token)
    }

    var application: some ApplicationProtocol {
        HubServer.application(stores: stores, configuration: configuration, gateway: Self.gateway, logger: logs.logger)
    }

    /// Runs `body` against the router (`.router`) or a live server on a free loopback port (`.live`).
    func test<Value>(_ setup: TestingSetup = .router, _ body: @escaping @Sendable (APIClient) async throws -> Value) async throws -> Value {
        let token = self.token
        return try await application.test(setup) { client in try await body(APIClient(client: client, token: token)) }
    }
}

/// A response decoded for assertions.
struct APIResponse {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let text: String
    var json: JSONValue { (try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))) ?? .null }
    subscript(key: String) -> JSONValue? { json.objectValue?[key] }
}

struct APIClient: Sendable {
    let client: any TestClientProtocol
    let token: String

    /// Sends a request; `json` is sent as `application/json`; `token: nil` sends no Authorization.
    func send(
        _ method: HTTPRequest.Method, _ uri: String, json: JSONValue? = nil, raw: String? = nil, contentType: String = "application/json",
        token: String?? = .some(nil)
    ) async throws -> APIResponse {
        var headers: HTTPFields = [:]
        let bearer: String? = switch token { case .none: nil; case .some(.none): self.token; case .some(.some(let value)): value }
        if let bearer { headers[.authorization] = "Bearer \(bearer)" }
        var body: ByteBuffer?
        if let text = raw ?? json?.jsonText {
            headers[.contentType] = contentType
            body = ByteBuffer(string: text)
        }
        let response = try await client.execute(uri: uri, method: method, headers: headers, body: body)
        return APIResponse(status: response.status, headers: response.headers, text: String(buffer: response.body))
    }
}

/// Checks JSON values against the OpenAPI document's schemas (the subset it uses: type, enum, properties,
/// required, additionalProperties, items, allOf, $ref).
struct SchemaChecker {
    let document: JSONValue

    func problems(_ value: JSONValue, against schema: JSONValue, at path: String = "$") -> [String] {
        guard let members = schema.objectValue else { return [] }
        if let ref = members["$ref"]?.stringValue {
            let name = String(ref.split(separator: "/").last ?? "")
            guard let target = document.objectValue?["components"]?.objectValue?["schemas"]?.objectValue?[name] else {
                return ["\(path): unknown schema \(ref)"]
            }
            return problems(value, against: target, at: path)
        }
        if let parts = members["allOf"]?.arrayValue {
            return parts.flatMap { problems(value, against: $0, at: path) }
        }
        if let options = members["anyOf"]?.arrayValue {
            let results = options.map { problems(value, against: $0, at: path) }
            return results.contains { $0.isEmpty } ? [] : ["\(path): matches none of anyOf: \(results.flatMap { $0 })"]
        }
        var found: [String] = []
        if let type = members["type"] {
            let allowed = type.arrayValue?.compactMap(\.stringValue) ?? [type.stringValue ?? ""]
            let actual: String = switch value {
            case .null: "null"
            case .bool: "boolean"
            case .int: "integer"
            case .double: "number"
            case .string: "string"
            case .array: "array"
            case .object: "object"
            }
            let matches = allowed.contains(actual) || (actual == "integer" && allowed.contains("number"))
            if !matches { return ["\(path): \(actual) is not \(allowed.joined(separator: "|"))"] }
        }
        if let options = members["enum"]?.arrayValue, !options.contains(value) {
            found.append("\(path): \(value.jsonText) is not one of \(JSONValue.array(options).jsonText)")
        }
        if case .object(let object) = value {
            let properties = members["properties"]?.objectValue ?? [:]
            for required in members["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where object[required] == nil {
                found.append("\(path): missing \(required)")
            }
            for (key, member) in object {
                if let property = properties[key] {
                    found += problems(member, against: property, at: "\(path).\(key)")
                } else if members["additionalProperties"] == .bool(false) {
                    found.append("\(path): unexpected member \(key)")
                }
            }
        }
        if case .array(let elements) = value, let items = members["items"] {
            for (index, element) in elements.enumerated() { found += problems(element, against: items, at: "\(path)[\(index)]") }
        }
        return found
    }

    /// The schema the document gives for `method path` answering `status`, if any.
    func responseSchema(_ method: String, _ path: String, _ status: Int) -> JSONValue? {
        let operation = document.objectValue?["paths"]?.objectValue?[path]?.objectValue?[method.lowercased()]
        let response = operation?.objectValue?["responses"]?.objectValue?["\(status)"]?.objectValue
        let content = response?["content"]?.objectValue
        return (content?["application/json"] ?? content?["application/problem+json"])?.objectValue?["schema"]
    }
}

extension APIClient {
    /// Sends a request and checks the response against the document: the status is documented for the route, and
    /// the body matches its schema.
    func checked(
        _ method: HTTPRequest.Method, _ uri: String, template: String? = nil, json: JSONValue? = nil, raw: String? = nil,
        contentType: String = "application/json", token: String?? = .some(nil), document: JSONValue,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> APIResponse {
        let response = try await send(method, uri, json: json, raw: raw, contentType: contentType, token: token)
        let path = template ?? String(uri.split(separator: "?").first ?? "")
        let checker = SchemaChecker(document: document)
        let documented = document.objectValue?["paths"]?.objectValue?[path]?.objectValue?[method.rawValue.lowercased()]?
            .objectValue?["responses"]?.objectValue?["\(response.status.code)"]
        #expect(documented != nil, "\(method) \(path) answered \(response.status.code), which the document does not list", sourceLocation: sourceLocation)
        if let schema = checker.responseSchema(method.rawValue, path, response.status.code) {
            let problems = checker.problems(response.json, against: schema)
            #expect(problems.isEmpty, "\(method) \(path) \(response.status.code): \(problems)", sourceLocation: sourceLocation)
        }
        return response
    }
}
