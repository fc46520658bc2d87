import Foundation
import HubCore
import HubEngine
import HubPostgres
import HubStore
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import Testing

/// Line-protocol servers on loopback for the probes: a minimal FTP control channel (banner 220, USER → 331,
/// PASS → 230 for the right password, 530 otherwise, QUIT → 221) and an SSH server's identification string.
enum LineServer {
    static func with<T: Sendable>(
        _ handle: @escaping @Sendable (NIOAsyncChannelInboundStream<ByteBuffer>, NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws -> Void,
        _ body: @Sendable (Int) async throws -> T
    ) async throws -> T {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        let port = server.channel.localAddress?.port ?? 0
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try? await server.executeThenClose { inbound in
                    try await withThrowingDiscardingTaskGroup { connections in
                        for try await connection in inbound {
                            connections.addTask {
                                try? await connection.executeThenClose { input, output in try await handle(input, output) }
                            }
                        }
                    }
                }
                return nil
            }
            let result = try await body(port)
            group.cancelAll()
            return result
        }
    }

    static func lines(_ input: NIOAsyncChannelInboundStream<ByteBuffer>) -> AsyncThrowingStream<String, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                var pending = ""
                do {
                    for try await chunk in input {
                        pending += String(buffer: chunk)
                        while let newline = pending.firstIndex(where: \.isNewline) {
                            let line = String(pending[..<newline]).trimmingCharacters(in: .whitespacesAndNewlines)
                            if !line.isEmpty { continuation.yield(line) }
                            pending = String(pending[pending.index(after: newline)...])
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    static func ftp(password: String, _ body: @Sendable (Int) async throws -> Void) async throws {
        try await with({ input, output in
            try await output.write(ByteBuffer(string: "220-Welcome to the test FTP server\r\n220 Ready\r\n"))
            for try await line in lines(input) {
                if line.hasPrefix("USER ") {
                    try await output.write(ByteBuffer(string: "331 Password required\r\n"))
                } else if line.hasPrefix("PASS ") {
                    try await output.write(ByteBuffer(string: line == "PASS \(password)" ? "230 Logged in\r\n" : "530 Login incorrect\r\n"))
                } else if line == "QUIT" {
                    try await output.write(ByteBuffer(string: "221 Bye\r\n"))
                    return
                } else {
                    try await output.write(ByteBuffer(string: "502 Not implemented\r\n"))
                }
            }
        }, body)
    }

    static func ssh(_ body: @Sendable (Int) async throws -> Void) async throws {
        try await with({ input, output in
            try await output.write(ByteBuffer(string: "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"))
            for try await _ in lines(input) { return }
        }, body)
    }

    /// A port nothing listens on.
    static func closedPort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 1
        try await channel.close()
        return port
    }
}

@Suite("Connectivity monitor", .timeLimit(.minutes(3)))
struct HealthMonitorTests {
    static let gateway = OutboundGateway(policy: try! OutboundPolicy(allowlist: ["127.0.0.0/8"]))

    static func monitor(_ stores: HubStores, clock: WallClock = .system, _ tweak: (inout HealthMonitorConfiguration) -> Void = { _ in })
        -> HealthMonitor
    {
        var configuration = HealthMonitorConfiguration()
        configuration.probeTimeout = .seconds(3)
        tweak(&configuration)
        var logger = Logger(label: "test.monitor")
        logger.logLevel = .critical
        return HealthMonitor(
            store: HealthMonitorStore(database: stores.database, clock: clock), connections: stores.connections, gateway: gateway,
            configuration: configuration, logger: logger)
    }

    @Test("each connection type's probe against a real server: healthy, degraded and down with a reason")
    func probes() async throws {
        let stores = try await TestEnvironment.stores(.sqlite)
        let prober = HealthProber(gateway: Self.gateway, timeout: .seconds(3))
        @Sendable func probe(_ type: ConnectionType, _ endpoint: String, _ credentials: JSONValue = [:]) async throws -> ProbeResult {
            let connection = try await stores.connections.create(ConnectionRegistration(
                systemName: unique("p"), connectionType: type, endpoint: endpoint, credentials: credentials))
            return await prober.probe(connection, credentials: credentials)
        }
        let closed = try await LineServer.closedPort()
        // HTTP: status range, body text, degraded threshold, credentials.
        let router = Router()
        router.get("/ok") { request, _ -> Response in
            let authorized = request.headers[.authorization] == "Bearer probe-token"
            return Response(status: authorized ? .ok : .unauthorized, body: .init(byteBuffer: ByteBuffer(string: "status: all systems go")))
        }
        router.get("/slow") { _, _ -> Response in
            try await Task.sleep(for: .milliseconds(150))
            return Response(status: .ok)
        }
        router.get("/fail") { _, _ -> Response in Response(status: .internalServerError) }
        try await withLoopbackServer(router) { base in
            let port = Int(base.split(separator: ":").last!)!
            let ok = try await probe(.API, base + "/ok", ["token": "probe-token", "probe": ["body_contains": "all systems go"]])
            #expect(ok.status == .healthy && ok.statusCode == 200 && ok.responseTime != nil)
            let unauthorized = try await probe(.API, base + "/ok")
            #expect(unauthorized.status == .degraded && unauthorized.reason == "HTTP 401, expected 200-399")
            let text = try await probe(.API, base + "/ok", ["token": "probe-token", "probe": ["body_contains": "maintenance"]])
            #expect(text.status == .degraded && text.reason == "the body does not contain the expected text")
            let slow = try await probe(.API, base + "/slow", ["probe": ["degraded_after_ms": 50]])
            #expect(slow.status == .degraded && slow.reason.hasPrefix("answered in"))
            #expect(try await probe(.API, base + "/fail").status == .down)
            #expect(try await probe(.API, "http://127.0.0.1:\(closed)/").status == .down)
            // TCP: a listener, a closed port.
            let tcp = try await probe(.TCP, "127.0.0.1:\(port)")
            #expect(tcp.status == .healthy && tcp.reason == "connected")
            let refused = try await probe(.TCP, "127.0.0.1:\(closed)")
            #expect(refused.status == .down && refused.responseTime == nil)
        }
        // PostgreSQL: the test server with the right and a wrong password.
        let postgresURL = try #require(TestEnvironment.postgresURL)
        let url = try #require(URLComponents(string: postgresURL))
        let endpoint = "postgres://127.0.0.1:\(url.port ?? 5432)/\(url.path.dropFirst())"
        let session = try await probe(.DB, endpoint, ["username": .string(url.user ?? ""), "password": .string(url.password ?? "")])
        #expect(session.status == .healthy && session.reason == "SELECT 1 answered", "\(session.reason)")
        let wrong = try await probe(.DB, endpoint, ["username": .string(url.user ?? ""), "password": "not-the-password"])
        #expect(wrong.status == .down && wrong.reason == "authentication failed", "\(wrong.reason)")
        #expect(!wrong.reason.contains("not-the-password"))
        #expect(try await probe(.DB, "postgres://127.0.0.1:\(closed)/x", ["username": "u", "password": "p"]).status == .down)
        // FTP: banner and login.
        try await LineServer.ftp(password: "ftp-secret") { port in
            let login = try await probe(.FTP, "ftp://127.0.0.1:\(port)", ["username": "hub", "password": "ftp-secret"])
            #expect(login.status == .healthy && login.reason == "FTP login accepted (230)", "\(login.reason) \(String(describing: login.responseTime))")
            let bad = try await probe(.FTP, "ftp://127.0.0.1:\(port)", ["username": "hub", "password": "nope"])
            #expect(bad.status == .down && bad.reason == "the FTP login was answered 530, not 230")
            let banner = try await probe(.FTP, "127.0.0.1:\(port)")
            #expect(banner.status == .healthy && banner.reason == "FTP banner 220")
        }
        // SFTP: the SSH identification string; a server that is not SSH.
        try await LineServer.ssh { port in
            let ssh = try await probe(.SFTP, "sftp://127.0.0.1:\(port)")
            #expect(ssh.status == .healthy && ssh.reason.hasPrefix("SSH identification SSH-2.0-OpenSSH"), "\(ssh.reason)")
        }
        try await LineServer.ftp(password: "x") { port in
            let notSSH = try await probe(.SFTP, "127.0.0.1:\(port)")
            #expect(notSSH.status == .down)
        }
        // The policy: a metadata address is refused before anything is sent.
        let metadata = try await probe(.TCP, "169.254.169.254:80")
        #expect(metadata.status == .down && metadata.reason.hasPrefix("refused:"), "\(metadata.reason)")
    }
}
