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
import ServiceLifecycle
import Testing

/// Runs `router` on a free loopback port for the duration of `body`, passing its base URL (`http://127.0.0.1:PORT`).
/// The server then shuts down gracefully (the listener closes and every accepted connection is served and closed):
/// cancelling it instead could drop a connection accepted at that moment before it is served, which NIO's async
/// channels treat as a fatal error.
func withLoopbackServer<T: Sendable>(_ router: Router<BasicRequestContext>, _ body: @Sendable (String) async throws -> T) async throws -> T {
    var quiet = Logger(label: "loopback")
    quiet.logLevel = .critical
    let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
    let app = Application(
        router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: quiet)
    let services = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: quiet))
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            try await services.run()
            return nil
        }
        var iterator = ports.makeAsyncIterator()
        let port = await iterator.next() ?? 0
        let result: Result<T, any Error>
        do { result = .success(try await body("http://127.0.0.1:\(port)")) } catch { result = .failure(error) }
        await services.triggerGracefulShutdown()
        try await group.waitForAll()
        return try result.get()
    }
}

/// A real HTTP server on a free loopback port that the outbound tests call.
actor TargetServer {
    struct Captured: Sendable {
        var path: String
        var headers: HTTPFields
        var body: Data
    }
    private(set) var captured: [Captured] = []
    private(set) var tokenRequests = 0
    private(set) var flakyCalls = 0
    func countFlaky() -> Int {
        flakyCalls += 1
        return flakyCalls
    }

    func record(_ request: Captured) { captured.append(request) }
    func countToken() { tokenRequests += 1 }

    /// Runs the server for the duration of `body`, passing its base URL.
    static func with<T: Sendable>(_ body: @Sendable (TargetServer, String) async throws -> T) async throws -> T {
        let target = TargetServer()
        let router = Router()
        router.get("/ok") { _, _ in "fine" }
        router.get("/fail") { _, _ -> Response in Response(status: .serviceUnavailable) }
        router.get("/json") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"a":1}"#)))
        }
        router.get("/trickle") { _, _ -> Response in
            Response(status: .ok, body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: "x"))
                try await Task.sleep(for: .seconds(30))
                try await writer.finish(nil)
            })
        }
        router.get("/big") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "application/json"],
                     body: .init(byteBuffer: ByteBuffer(string: "[" + String(repeating: "\"0123456789\",", count: 10_000) + "0]")))
        }
        router.get("/drop") { _, _ -> Response in
            Response(status: .ok, body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: "partial"))
                throw CancellationError()
            })
        }
        // 503 (Retry-After: 0) twice, then 200.
        router.get("/flaky") { _, _ -> Response in
            let call = await target.countFlaky()
            if call <= 2 { return Response(status: .serviceUnavailable, headers: [.retryAfter: "0"]) }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"ok":true}"#)))
        }
        router.put("/limited") { _, _ -> Response in Response(status: .tooManyRequests, headers: [.retryAfter: "0"]) }
        router.get("/redirect") { _, _ -> Response in
            Response(status: .found, headers: [.location: "http://169.254.169.254/latest/meta-data"])
        }
        router.get("/nul") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(bytes: [0x61, 0x00, 0x62])))
        }
        router.get("/auth") { request, _ -> Response in
            Response(status: request.headers[.authorization] == "Bearer good-token-0123456789" ? .ok : .unauthorized)
        }
        router.get("/oauth") { request, _ -> Response in
            Response(status: request.headers[.authorization] == "Bearer issued-access-token" ? .ok : .unauthorized)
        }
        router.post("/token") { request, _ -> Response in
            await target.countToken()
            let expected = "Basic " + Data("hub-client:hub-client-secret".utf8).base64EncodedString()
            guard request.headers[.authorization] == expected else { return Response(status: .unauthorized) }
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"access_token":"issued-access-token","expires_in":3600}"#)))
        }
        router.post("/hook") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 20)
            await target.record(Captured(path: "/hook", headers: request.headers, body: Data(buffer: buffer)))
            return Response(status: .noContent)
        }
        router.post("/echo") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 20)
            await target.record(Captured(path: "/echo", headers: request.headers, body: Data(buffer: buffer)))
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
        }
        return try await withLoopbackServer(router) { base in try await body(target, base) }
    }
}

@Suite("Outbound: tests, probes and executed operations", .timeLimit(.minutes(10)))
struct OutboundTests {
    @Test("integration test: auth applied, result recorded (design step 2), OAuth2 token fetched once", arguments: Backend.allCases)
    func integrationTest(backend: Backend) async throws {
        let harness = try await APIHarness.make(backend)
        try await TargetServer.with { target, base in
            try await harness.test { client in
                func register(_ path: String, _ auth: JSONValue) async throws -> String {
                    let response = try await client.send(.post, "/v1/integrations", json: [
                        "system_id": .string(unique("t")), "integration_type": "HR", "endpoint_url": .string(base + path), "auth_config": auth,
                    ])
                    return try #require(response["integration_id"]?.stringValue)
                }
                let good = try await register("/auth", ["type": "bearer", "token": "good-token-0123456789"])
                let passed = try await client.send(.post, "/v1/integrations/\(good)/test")
                #expect(passed.status == .ok)
                #expect(passed["status"] == "active")
                #expect(passed["test_result"]?.objectValue?["passed"] == true)
                #expect(passed["last_tested_at"] != .null)
                let wrong = try await register("/auth", ["type": "bearer", "token": "wrong-token"])
                let refused = try await client.send(.post, "/v1/integrations/\(wrong)/test")
                #expect(refused["status"] == "error")
                #expect(refused["test_result"]?.objectValue?["status_code"] == 401)
                let down = try await register("/fail", ["type": "none"])
                #expect(try await client.send(.post, "/v1/integrations/\(down)/test")["status"] == "error")
                let oauth = try await register("/oauth", [
                    "type": "oauth2_client_credentials", "token_url": .string(base + "/token"), "client_id": "hub-client",
                    "client_secret": "hub-client-secret",
                ])
                #expect(try await client.send(.post, "/v1/integrations/\(oauth)/test")["status"] == "active")
                #expect(try await client.send(.post, "/v1/integrations/\(oauth)/test")["status"] == "active")
                #expect(await target.tokenRequests == 1)
                // Knowing the token URL, client id and scope (all shown masked) is not enough to borrow the cached token.
                let impostor = try await register("/oauth", [
                    "type": "oauth2_client_credentials", "token_url": .string(base + "/token"), "client_id": "hub-client",
                    "client_secret": "guessed-secret",
                ])
                #expect(try await client.send(.post, "/v1/integrations/\(impostor)/test")["status"] == "error")
                #expect(await target.tokenRequests == 2)
                #expect(try await client.send(.post, "/v1/integrations/\(UUID())/test").status == .notFound)
            }
        }
    }

    @Test("webhook test: a signed webhook.test event that verifies with the secret", arguments: Backend.allCases)
    func webhookTest(backend: Backend) async throws {
        let harness = try await APIHarness.make(backend)
        try await TargetServer.with { target, base in
            try await harness.test { client in
                let created = try await client.send(.post, "/v1/webhooks", json: [
                    "webhook_url": .string(base + "/hook"), "event_types": ["webhook.test"],
                    "headers": ["X-Team": "hr", "Authorization": "Bearer receiver-token"],
                ])
                let id = try #require(created["webhook_id"]?.stringValue)
                let secret = try #require(created["secret"]?.stringValue)
                let tested = try await client.send(.post, "/v1/webhooks/\(id)/test")
                #expect(tested.status == .ok)
                #expect(tested["status"] == "active")
                #expect(tested["test_result"]?.objectValue?["passed"] == true)
                let delivery = try #require(await target.captured.last)
                let messageID = try #require(delivery.headers[HTTPField.Name("webhook-id")!])
                let timestamp = try #require(delivery.headers[HTTPField.Name("webhook-timestamp")!].flatMap { Int64($0) })
                let signature = try #require(delivery.headers[HTTPField.Name("webhook-signature")!])
                #expect(WebhookSignature.verify(header: signature, secret: secret, id: messageID, timestamp: timestamp, body: delivery.body))
                #expect(delivery.headers[HTTPField.Name("X-Team")!] == "hr")
                #expect(delivery.headers[.authorization] == "Bearer receiver-token")
                #expect(created["headers"] == ["X-Team": "hr", "Authorization": "****"])
                #expect(String(decoding: delivery.body, as: UTF8.self).contains("\"type\":\"webhook.test\""))
                let failing = try await client.send(.post, "/v1/webhooks", json: ["webhook_url": .string(base + "/fail-post"), "event_types": ["*"]])
                let failed = try await client.send(.post, "/v1/webhooks/\(failing["webhook_id"]?.stringValue ?? "")/test")
                #expect(failed["status"] == "failing")
            }
        }
    }

    @Test("connection check: TCP and API probes classify healthy, degraded and down (design steps 2-4)", arguments: Backend.allCases)
    func connectionCheck(backend: Backend) async throws {
        let harness = try await APIHarness.make(backend)
        try await TargetServer.with { _, base in
            try await harness.test { client in
                let port = base.split(separator: ":").last!
                func check(_ type: String, _ endpoint: String) async throws -> APIResponse {
                    let created = try await client.send(.post, "/v1/connections", json: [
                        "system_name": .string(unique("c")), "connection_type": .string(type), "endpoint": .string(endpoint), "credentials": [:],
                    ])
                    return try await client.send(.post, "/v1/connections/\(created["connection_id"]?.stringValue ?? "")/check")
                }
                let tcp = try await check("TCP", "127.0.0.1:\(port)")
                #expect(tcp["status"] == "healthy")
                #expect(tcp["uptime_percentage"] == 100)
                #expect(try await check("TCP", "127.0.0.1:1")["status"] == "down")
                #expect(try await check("API", base + "/ok")["status"] == "healthy")
                #expect(try await check("API", base + "/missing")["status"] == "degraded")
                #expect(try await check("API", base + "/fail")["status"] == "down")
            }
        }
    }

    @Test("executing an operation: logged, sent, measured and folded into statistics", arguments: Backend.allCases)
    func execute(backend: Backend) async throws {
        let harness = try await APIHarness.make(backend)
        try await TargetServer.with { target, base in
            try await harness.test { client in
                let executed = try await client.send(.post, "/v1/api-operations", json: [
                    "operation_type": "POST", "endpoint": .string(base + "/echo"), "payload": ["name": "Ada"],
                    "headers": ["X-Api-Key": "op-key-never-stored"],
                ])
                #expect(executed.status == .created)
                #expect(executed["status"] == "completed")
                #expect(executed["status_code"] == 200)
                #expect(executed["response_data"] == ["name": "Ada"])
                #expect(executed["headers"] == ["X-Api-Key": "[REDACTED]"])
                #expect(await target.captured.last?.headers[HTTPField.Name("X-Api-Key")!] == "op-key-never-stored")
                let integration = try await client.send(.post, "/v1/integrations", json: [
                    "system_id": .string(unique("x")), "integration_type": "HR", "endpoint_url": .string(base),
                    "auth_config": ["type": "bearer", "token": "good-token-0123456789"],
                ])
                let viaIntegration = try await client.send(.post, "/v1/api-operations", json: [
                    "operation_type": "GET", "endpoint": "/auth", "integration_id": integration["integration_id"] ?? .null,
                ])
                #expect(viaIntegration["status_code"] == 200)
                // The integration's credentials never go to another origin.
                let elsewhere = try await client.send(.post, "/v1/api-operations", json: [
                    "operation_type": "GET", "endpoint": "http://127.0.0.2:9/steal", "integration_id": integration["integration_id"] ?? .null,
                ])
                #expect(elsewhere.status == .unprocessableContent)
                #expect(elsewhere["field"] == "endpoint")
                // Nor under another virtual host: framing and routing headers are refused in every caller-supplied set.
                let sentBefore = await target.captured.count
                for header in ["Host", "host", "Content-Length", "Transfer-Encoding", "Connection", "Upgrade", "TE", "Trailer", "Proxy-Authorization"] {
                    let routed = try await client.send(.post, "/v1/api-operations", json: [
                        "operation_type": "GET", "endpoint": "/auth", "integration_id": integration["integration_id"] ?? .null,
                        "headers": .object([header: "evil.example"]),
                    ])
                    #expect(routed.status == .unprocessableContent, "\(header)")
                    #expect(routed["field"] == .string("headers.\(header)"))
                }
                let injected = try await client.send(.post, "/v1/api-operations", json: [
                    "operation_type": "GET", "endpoint": .string(base + "/echo"), "headers": ["X-A": "b\r\nHost: evil.example"],
                ])
                #expect(injected.status == .unprocessableContent && injected["field"] == "headers.X-A")
                #expect(await target.captured.count == sentBefore)
                let failed = try await client.send(.post, "/v1/api-operations", json: ["operation_type": "GET", "endpoint": .string(base + "/fail")])
                #expect(failed["status"] == "failed")
                #expect(failed["error_message"] == "the endpoint answered 503")
                let escaped = (base + "/echo").addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
                let statistics = try await client.send(.get, "/v1/api-statistics?endpoint=\(escaped)")
                #expect(statistics["items"]?.arrayValue?.first?.objectValue?["call_count"] == 1)
                // One deadline covers the body too: a server that sends headers and then trickles does not hold the call.
                let started = ContinuousClock.now
                let trickle = try await client.send(.post, "/v1/api-operations", json: [
                    "operation_type": "GET", "endpoint": .string(base + "/trickle"), "timeout": 1,
                ])
                #expect(trickle["status"] == "failed")
                #expect(trickle["error_message"]?.stringValue?.contains("timed out") == true)
                #expect(ContinuousClock.now - started < .seconds(25))  // not the trickle's 30 s (a loaded machine adds seconds)
                // Remote bytes the database cannot store are replaced, never a reason to lose the record.
                let nul = try await client.send(.post, "/v1/api-operations", json: ["operation_type": "GET", "endpoint": .string(base + "/nul")])
                #expect(nul["status"] == "completed")
                #expect(nul["response_data"] == "a\u{FFFD}b")
                // Bodies beyond the cap are cut and flagged; a connection dropped mid-body is a failed call.
                let big = try await client.send(.post, "/v1/api-operations", json: ["operation_type": "GET", "endpoint": .string(base + "/big")])
                #expect(big["status"] == "completed")
                #expect(big["response_truncated"] == true)
                #expect(big["response_data"]?.stringValue?.utf8.count == 64 * 1024)
                let dropped = try await client.send(.post, "/v1/api-operations", json: ["operation_type": "GET", "endpoint": .string(base + "/drop")])
                #expect(dropped["status"] == "failed")
                #expect(dropped["status_code"] == .null)
                #expect(dropped["error_message"] == "the connection failed")
                // A host name is resolved, checked and pinned: localhost (allowlisted here) is reached by name.
                let named = try await client.send(.post, "/v1/api-operations", json: [
                    "operation_type": "GET", "endpoint": .string(base.replacingOccurrences(of: "127.0.0.1", with: "localhost") + "/json"),
                ])
                #expect(named["status_code"] == 200)
                let path = try await client.send(.post, "/v1/api-operations", json: ["operation_type": "GET", "endpoint": "/relative"])
                #expect(path["field"] == "endpoint")
            }
        }
    }

    @Test("the gateway refuses framing, routing and control-character headers where it writes the request, whatever validated them")
    func gatewayHeaderCheck() async throws {
        let gateway = OutboundGateway(policy: try OutboundPolicy(allowlist: ["127.0.0.0/8"]))
        try await TargetServer.with { target, base in
            for headers in [["Host": "evil.example"], ["proxy-authorization": "x"], ["X-A": "b\r\nHost: evil.example"], ["X A": "b"]] {
                let outcome = await gateway.send(method: "GET", url: base + "/ok", headers: headers)
                #expect(outcome.statusCode == nil && outcome.refused, "\(headers)")
            }
            #expect(await target.captured.isEmpty)
            #expect(await gateway.send(method: "GET", url: base + "/ok", headers: ["X-A": "b\tc"]).statusCode == 200)
        }
        try await gateway.shutdown()
    }

    @Test("the default policy refuses loopback: the test fails with the reason and nothing is sent")
    func policyRefusal() async throws {
        let stores = try await TestEnvironment.stores(.sqlite)
        let (_, token) = try await stores.apiKeys.create(name: "policy")
        let strict = OutboundGateway(policy: try OutboundPolicy())
        let app = HubServer.application(stores: stores, configuration: ServerConfiguration(port: 0), gateway: strict, logger: Logger(label: "strict"))
        try await TargetServer.with { target, base in
            try await app.test(.router) { raw in
                let client = APIClient(client: raw, token: token)
                let created = try await client.send(.post, "/v1/webhooks", json: ["webhook_url": .string(base + "/hook"), "event_types": ["*"]])
                let tested = try await client.send(.post, "/v1/webhooks/\(created["webhook_id"]?.stringValue ?? "")/test")
                #expect(tested["status"] == "failing")
                let error = tested["test_result"]?.objectValue?["error"]?.stringValue ?? ""
                #expect(error.contains("loopback"))
                #expect(await target.captured.isEmpty)
                let metadata = try await client.send(.post, "/v1/api-operations", json: [
                    "operation_type": "GET", "endpoint": "http://169.254.169.254/latest/meta-data", "retries": 2,
                ])
                #expect(metadata["attempts"]?.arrayValue?.count == 1)
                #expect(metadata["status"] == "failed")
                let message = metadata["error_message"]?.stringValue ?? ""
                #expect(message.contains("cloud metadata"))
                // A name that resolves to loopback is refused like the address itself.
                let byName = try await client.send(.post, "/v1/api-operations", json: [
                    "operation_type": "GET", "endpoint": .string(base.replacingOccurrences(of: "127.0.0.1", with: "localhost") + "/json"),
                ])
                #expect((byName["error_message"]?.stringValue ?? "").contains("loopback"))
                #expect(await target.captured.isEmpty)
                // A private address is refused before any packet is sent.
                let privateAddress = try await client.send(.post, "/v1/api-operations", json: ["operation_type": "GET", "endpoint": "http://10.0.0.1/"])
                #expect((privateAddress["error_message"]?.stringValue ?? "").contains("private address"))
            }
        }
        try await strict.shutdown()
    }

    @Test("proxy: calls through an integration carry its auth, answer with the upstream response, and are logged", arguments: Backend.allCases)
    func proxy(backend: Backend) async throws {
        let harness = try await APIHarness.make(backend)
        try await TargetServer.with { target, base in
            try await harness.test { client in
                let integration = try await client.send(.post, "/v1/integrations", json: [
                    "system_id": .string(unique("p")), "integration_type": "HR", "endpoint_url": .string(base),
                    "auth_config": ["type": "bearer", "token": "good-token-0123456789"],
                ])
                let id = try #require(integration["integration_id"]?.stringValue)
                let authed = try await client.send(.get, "/v1/integrations/\(id)/proxy/auth")
                #expect(authed.status == .ok)
                let operationID = try #require(authed.headers[HTTPField.Name("X-Hub-Operation-Id")!])
                let operation = try await client.send(.get, "/v1/api-operations/\(operationID)")
                #expect(operation["integration_id"] == .string(id))
                #expect(operation["endpoint"] == "/auth")
                #expect(operation["status"] == "completed")
                let json = try await client.send(.get, "/v1/integrations/\(id)/proxy/json?page=2&token=hidden")
                #expect(json.json == ["a": 1])
                let logged = try await client.send(.get, "/v1/api-operations/\(json.headers[HTTPField.Name("X-Hub-Operation-Id")!] ?? "")")
                #expect(logged["endpoint"] == "/json?page=2&token=[REDACTED]")
                let echoed = try await client.send(.post, "/v1/integrations/\(id)/proxy/echo", json: ["name": "Ada"])
                #expect(echoed.json == ["name": "Ada"])
                #expect(await target.captured.last?.headers[.authorization] == "Bearer good-token-0123456789")
                // The credential never reaches a stored row.
                let stored = try await harness.stores.database.query(
                    "SELECT headers, endpoint, payload, response_data FROM api_operations WHERE integration_id = $1", [.uuid(UUID(uuidString: id)!)])
                #expect(stored.count >= 3)
                for row in stored { #expect(!"\(row.values)".contains("good-token-0123456789")) }
                // Redirects are answered, never followed (here: towards the metadata address).
                let redirected = try await client.send(.get, "/v1/integrations/\(id)/proxy/redirect")
                #expect(redirected.status == .found)
                let upstreamError = try await client.send(.get, "/v1/integrations/\(id)/proxy/fail")
                #expect(upstreamError.status == .serviceUnavailable)
                let notJSON = try await client.send(.post, "/v1/integrations/\(id)/proxy/echo", raw: "a=b", contentType: "application/x-www-form-urlencoded")
                #expect(notJSON.status == .unsupportedMediaType)
                #expect(try await client.send(.get, "/v1/integrations/\(UUID())/proxy/auth").status == .notFound)
            }
        }
    }

    @Test("proxy: no answer is a 502 problem naming the operation")
    func proxyUnreachable() async throws {
        let harness = try await APIHarness.make(.sqlite)
        try await harness.test { client in
            let integration = try await client.send(.post, "/v1/integrations", json: [
                "system_id": .string(unique("p")), "integration_type": "HR", "endpoint_url": "http://127.0.0.1:1", "auth_config": ["type": "none"],
            ])
            let response = try await client.send(.get, "/v1/integrations/\(integration["integration_id"]?.stringValue ?? "")/proxy/anything")
            #expect(response.status == .badGateway)
            #expect(response.headers[.contentType] == "application/problem+json")
            #expect(response.headers[HTTPField.Name("X-Hub-Operation-Id")!] != nil)
        }
    }

    @Test("retries: idempotent calls retry on 5xx and 429 honouring Retry-After, each attempt logged", arguments: Backend.allCases)
    func retries(backend: Backend) async throws {
        let harness = try await APIHarness.make(backend)
        try await TargetServer.with { target, base in
            try await harness.test { client in
                let flaky = try await client.send(.post, "/v1/api-operations", json: [
                    "operation_type": "GET", "endpoint": .string(base + "/flaky"), "retries": 3,
                ])
                #expect(flaky.status == .created)
                #expect(flaky["status"] == "completed")
                #expect(flaky["response_data"] == ["ok": true])
                let attempts = try #require(flaky["attempts"]?.arrayValue)
                #expect(attempts.count == 3)
                #expect(await target.flakyCalls == 3)
                for (index, attempt) in attempts.enumerated() {
                    let logged = try await client.send(.get, "/v1/api-operations/\(attempt.stringValue ?? "")")
                    #expect(logged["status_code"] == (index < 2 ? 503 : 200))
                }
                let limited = try await client.send(.post, "/v1/api-operations", json: [
                    "operation_type": "PUT", "endpoint": .string(base + "/limited"), "retries": 2,
                ])
                #expect(limited["status_code"] == 429)
                #expect(limited["attempts"]?.arrayValue?.count == 3)
                let notIdempotent = try await client.send(.post, "/v1/api-operations", json: [
                    "operation_type": "POST", "endpoint": .string(base + "/echo"), "retries": 1,
                ])
                #expect(notIdempotent["field"] == "retries")
                let tooMany = try await client.send(.post, "/v1/api-operations", json: ["operation_type": "GET", "endpoint": .string(base + "/ok"), "retries": 6])
                #expect(tooMany["field"] == "retries")
                // A success is not retried; a refused destination is not retried either.
                #expect(try await client.send(.post, "/v1/api-operations", json: [
                    "operation_type": "GET", "endpoint": .string(base + "/ok"), "retries": 3,
                ])["attempts"]?.arrayValue?.count == 1)
            }
        }
    }
}
