import Foundation
import HTTPTypes
import HubCore
import HubEngine
import HubServer
import HubStore
import Hummingbird
import NIOCore
import NIOPosix
import Testing

/// What one API key holder (or a system the hub calls) can send that once trapped the process: each is answered with a
/// 4xx naming the field, or recorded as a failure, and the hub goes on serving.
@Suite("Hostile input", .timeLimit(.minutes(10)))
struct HostileInputTests {
    @Test("cursors with times near Int64's bounds or beyond year 9999 are a 422 on every list", arguments: Backend.allCases)
    func cursorTimes(backend: Backend) async throws {
        let harness = try await APIHarness.make(backend)
        let integration = try await harness.stores.integrations.register(IntegrationRegistration(
            systemID: unique("c"), integrationType: "HR", endpointURL: "https://hr.example.com", authConfig: ["type": "none"]))
        try await harness.test { client in
            let uuid = "00000000-0000-0000-0000-000000000000"
            for micros in ["9223372036854775807", "-9223372036854775808", "9223372036854774273", "253402300800000000"] {
                for path in ["/v1/integrations", "/v1/sync-jobs", "/v1/webhooks", "/v1/connections", "/v1/api-operations"] {
                    let response = try await client.send(.get, path + "?cursor=\(micros)_\(uuid)")
                    #expect(response.status == .unprocessableContent, "\(path) \(micros)")
                    #expect(response["field"] == "cursor")
                }
                let records = try await client.send(
                    .get, "/v1/integrations/\(integration.id)/records/users?cursor=\(micros)_x")
                #expect(records.status == .unprocessableContent, "records \(micros)")
                #expect(records["field"] == "cursor")
            }
            // Any cursor of the documented form is a position in the list: accepted, however far.
            for path in ["/v1/integrations", "/v1/sync-jobs", "/v1/webhooks", "/v1/connections", "/v1/api-operations"] {
                #expect(try await client.send(.get, path + "?cursor=99999999999999999_\(uuid)").status == .ok, "\(path)")
            }
            #expect(try await client.send(.get, "/v1/integrations/\(integration.id)/records/users?cursor=0_x").status == .ok)
            // Times beyond RFC 3339's four-digit years are refused where they enter.
            let far = try await client.send(
                .get, "/v1/integrations/\(integration.id)/records/users?modified_after=300000-01-01T00:00:00Z")
            #expect(far.status == .unprocessableContent && far["field"] == "modified_after", "\(far.text)")
            #expect(try await client.send(.get, "/v1/integrations").status == .ok)
        }
    }

    @Test("URLs with a port beyond 65535 are a 422 naming the field; the server goes on", arguments: [Backend.sqlite])
    func urlPorts(backend: Backend) async throws {
        let harness = try await APIHarness.make(backend)
        try await harness.test { client in
            let operation = try await client.send(.post, "/v1/api-operations", json: ["operation_type": "GET", "endpoint": "http://127.0.0.1:65536/"])
            #expect(operation.status == .unprocessableContent && operation["field"] == "endpoint", "\(operation.text)")
            let webhook = try await client.send(.post, "/v1/webhooks", json: ["webhook_url": "https://example.com:70000/", "event_types": ["*"]])
            #expect(webhook.status == .unprocessableContent && webhook["field"] == "webhook_url", "\(webhook.text)")
            let integration = try await client.send(.post, "/v1/integrations", json: [
                "system_id": .string(unique("p")), "integration_type": "HR", "endpoint_url": "https://hr.example.com:99999",
                "auth_config": ["type": "none"],
            ])
            #expect(integration.status == .unprocessableContent && integration["field"] == "endpoint_url", "\(integration.text)")
            #expect(try await client.send(.get, "/v1/integrations").status == .ok)
        }
        // A stored URL from before the rule is refused where the request is written.
        let gateway = OutboundGateway(policy: try OutboundPolicy(allowlist: ["127.0.0.0/8"]))
        let outcome = await gateway.send(method: "GET", url: "http://127.0.0.1:65536/")
        #expect(outcome.statusCode == nil && outcome.refused)
        try await gateway.shutdown()
    }

    @Test("a token endpoint's expires_in at Int64's bounds is clamped: the token is used, nothing traps")
    func tokenLifetime() async throws {
        let harness = try await APIHarness.make(.sqlite)
        let router = Router()
        let lifetimes = ["-9223372036854775808", "9223372036854775807", "\"-9223372036854775808\"", "1e300", "-1"]
        router.post("/token/:n") { _, context -> Response in
            let index = Int(context.parameters.get("n") ?? "0") ?? 0
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"access_token":"issued","expires_in":\#(lifetimes[index])}"#)))
        }
        router.get("/api") { request, _ -> Response in
            Response(status: request.headers[.authorization] == "Bearer issued" ? .ok : .unauthorized)
        }
        try await withLoopbackServer(router) { base in
            try await harness.test { client in
                for index in lifetimes.indices {
                    let created = try await client.send(.post, "/v1/integrations", json: [
                        "system_id": .string(unique("o")), "integration_type": "HR", "endpoint_url": .string(base + "/api"),
                        "auth_config": [
                            "type": "oauth2_client_credentials", "token_url": .string(base + "/token/\(index)"), "client_id": "c",
                            "client_secret": "s",
                        ],
                    ])
                    let id = try #require(created["integration_id"]?.stringValue, "\(created.text)")
                    let tested = try await client.send(.post, "/v1/integrations/\(id)/test")
                    #expect(tested["status"] == "active", "expires_in \(lifetimes[index]): \(tested.text)")
                }
            }
        }
    }

    @Test("a client that never finishes its headers, or stays idle, is disconnected after the idle timeout")
    func slowClients() async throws {
        var harness = try await APIHarness.make(.sqlite)
        harness.configuration.idleTimeout = .seconds(2)
        try await harness.test(.live) { client in
            let port = try #require(client.client.port)
            for opening in ["GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1", ""] {
                let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connect(host: "127.0.0.1", port: port).get()
                // (On a busy machine the server may already have closed the connection as idle before this write: the
                // write then fails, and the connection is closed by the server all the same.)
                if !opening.isEmpty { try? await channel.writeAndFlush(ByteBuffer(string: opening)).get() }
                // Closed by the server (the deadline only bounds a failing test: a slow machine waits longer).
                let closed = channel.eventLoop.makePromise(of: Bool.self)
                channel.closeFuture.whenComplete { _ in closed.succeed(true) }
                let guardTask = channel.eventLoop.scheduleTask(in: .seconds(60)) { closed.succeed(false) }
                let byServer = try await closed.futureResult.get()
                guardTask.cancel()
                #expect(byServer, "\(opening.isEmpty ? "an idle" : "a half-sent") connection stayed open")
                try? await channel.close()
            }
            // (The test client's own kept-alive connection has idled out meanwhile too; nothing else is sent on it.)
        }
    }

    /// (AsyncHTTPClient 1.37 traps on a status below 100, in its response state machine: the gateway's StatusGuard
    /// refuses one before it gets there.)
    @Test("an upstream status outside 100-599 (000-099, 600-999) is recorded as a protocol error; the process lives")
    func invalidUpstreamStatus() async throws {
        let gateway = OutboundGateway(policy: try OutboundPolicy(allowlist: ["127.0.0.0/8"]))
        for status in ["099", "000", "042", "600", "999"] {
            try await LineServer.with({ input, output in
                // The request line is enough to answer.
                for try await _ in LineServer.lines(input) { break }
                try await output.write(ByteBuffer(string: "HTTP/1.1 \(status) Odd\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
            }) { port in
                let outcome = await gateway.send(method: "GET", url: "http://127.0.0.1:\(port)/")
                #expect(outcome.statusCode == nil, "\(status): \(String(describing: outcome.statusCode))")
                #expect(outcome.error?.hasPrefix("the server answered with an invalid status") == true, "\(status): \(outcome.error ?? "")")
            }
        }
        try await gateway.shutdown()
    }

    @Test("auth_config values are refused with control characters: a token is written into a header line")
    func authConfigControlCharacters() async throws {
        for (config, member) in [
            (["type": "bearer", "token": "t0k3n\r\nX-Evil: 1"], "token"), (["type": "api_key", "api_key": "k\n"], "api_key"),
            (["type": "basic", "username": "u", "password": "p\u{7}"], "password"),
            (["type": "oauth2_client_credentials", "token_url": "https://id.example.com/token", "client_id": "c\u{85}", "client_secret": "s"], "client_id"),
        ] as [(JSONValue, String)] {
            await expectValidation("auth_config.\(member)") { _ = try AuthConfig(json: config) }
        }
        #expect(try AuthConfig(json: ["type": "bearer", "token": "a token with spaces and ünïcode"]) == .bearer(token: "a token with spaces and ünïcode"))
    }
}
