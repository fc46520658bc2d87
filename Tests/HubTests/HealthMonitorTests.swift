import Foundation
import HubCore
import HubEngine
import HubPostgres
import HubStore
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Testing

/// The lines a test server received, in order.
actor LinesSeen {
    private(set) var all: [String] = []
    func add(_ line: String) { all.append(line) }
}

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
        // The server stops by closing its listener, after which the loop still serves every connection accepted before
        // (cancelling the loop could drop one unserved, which NIO's async channels treat as a fatal error).
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
            let result: Result<T, any Error>
            do { result = .success(try await body(port)) } catch { result = .failure(error) }
            try? await server.channel.close()
            try await group.waitForAll()
            return try result.get()
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

@Suite("Connectivity monitor", .timeLimit(.minutes(10)))
struct HealthMonitorTests {
    static let gateway = OutboundGateway(policy: try! OutboundPolicy(allowlist: ["127.0.0.0/8"]))

    static func monitor(_ stores: HubStores, clock: WallClock = .system, _ tweak: (inout HealthMonitorConfiguration) -> Void = { _ in })
        -> HealthMonitor
    {
        var configuration = HealthMonitorConfiguration()
        configuration.probeTimeout = .seconds(20)  // generous: a loaded machine must not turn a slow answer into an outage
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
        // A generous timeout: on a loaded machine a login can take seconds; what fails here must fail for its reason.
        let prober = HealthProber(gateway: Self.gateway, timeout: .seconds(20))
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
        // sslmode: the test server has no TLS, so prefer (the default) and disable open a session and require does not.
        let credentials: JSONValue = ["username": .string(url.user ?? ""), "password": .string(url.password ?? "")]
        #expect(try await probe(.DB, endpoint + "?sslmode=disable", credentials).status == .healthy)
        #expect(try await probe(.DB, endpoint + "?sslmode=require", credentials).status == .down)
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
            // An FTP server never sends an SSH identification: down, at the latest when a short timeout ends.
            let connection = try await stores.connections.create(ConnectionRegistration(
                systemName: unique("p"), connectionType: .SFTP, endpoint: "127.0.0.1:\(port)", credentials: [:]))
            let notSSH = await HealthProber(gateway: Self.gateway, timeout: .seconds(3)).probe(connection, credentials: [:])
            #expect(notSSH.status == .down)
        }
        // The policy: a metadata address is refused before anything is sent.
        let metadata = try await probe(.TCP, "169.254.169.254:80")
        #expect(metadata.status == .down && metadata.reason.hasPrefix("refused:"), "\(metadata.reason)")
    }

    @Test("an FTP probe never writes a credential with a line break: the stored value is checked again where the line is written")
    func ftpLineInjection() async throws {
        let stores = try await TestEnvironment.stores(.sqlite)
        let lines = LinesSeen()
        try await LineServer.with({ input, output in
            try await output.write(ByteBuffer(string: "220 Ready\r\n"))
            for try await line in LineServer.lines(input) {
                await lines.add(line)
                try await output.write(ByteBuffer(string: line.hasPrefix("USER ") ? "331 Password required\r\n" : "221 Bye\r\n"))
                if line == "QUIT" { return }
            }
        }) { port in
            // Registered credentials are refused (ConnectionContractTests); these reach the probe as a stored row made
            // before that rule could, or by hand, would.
            let connection = try await stores.connections.create(ConnectionRegistration(
                systemName: unique("ftp"), connectionType: .FTP, endpoint: "ftp://127.0.0.1:\(port)", credentials: [:]))
            let prober = HealthProber(gateway: Self.gateway, timeout: .seconds(10))
            for credentials: JSONValue in [["username": "a\r\nDELE y", "password": "p"], ["username": "a", "password": "x\r\nMAIL FROM:<x>"]] {
                let result = await prober.probe(connection, credentials: credentials)
                #expect(result.status == .down && result.reason.contains("control characters"), "\(result.reason)")
            }
            let seen = await lines.all
            #expect(seen.allSatisfy { $0 == "QUIT" }, "\(seen)")
        }
    }

    @Test("probes cut off by their timeout at every moment around connect and login never crash the process")
    func probesCancelledAnywhere() async throws {
        let stores = try await TestEnvironment.stores(.sqlite)
        try await LineServer.ftp(password: "ftp-secret") { port in
            let credentials: JSONValue = ["username": "hub", "password": "ftp-secret"]
            let ftp = try await stores.connections.create(ConnectionRegistration(
                systemName: unique("cut"), connectionType: .FTP, endpoint: "ftp://127.0.0.1:\(port)", credentials: credentials))
            let ssh = try await stores.connections.create(ConnectionRegistration(
                systemName: unique("cut"), connectionType: .SFTP, endpoint: "127.0.0.1:\(port)", credentials: [:]))
            let tcp = try await stores.connections.create(ConnectionRegistration(
                systemName: unique("cut"), connectionType: .TCP, endpoint: "127.0.0.1:\(port)", credentials: [:]))
            // Timeouts from 0 to 3 ms land before, during and after the connect, the banner and the login; the cut-off
            // probes end as down, the others as healthy, and the process goes on.
            var outcomes: [ConnectionStatus: Int] = [:]
            for round in 0..<300 {
                let prober = HealthProber(gateway: Self.gateway, timeout: .microseconds(Int64(round % 30) * 100))
                let connection = [ftp, ssh, tcp][round % 3]
                let result = await prober.probe(connection, credentials: round % 3 == 0 ? credentials : [:])
                outcomes[result.status, default: 0] += 1
            }
            #expect(outcomes[.down, default: 0] > 0, "\(outcomes)")
            // A full timeout after all that: the server and the prober still work.
            let login = await HealthProber(gateway: Self.gateway, timeout: .seconds(10)).probe(ftp, credentials: credentials)
            #expect(login.status == .healthy, "\(login.reason)")
        }
    }
}

extension HealthMonitorTests {
    /// What the test's HTTP target answers at a time of the test's clock: hours since the start → behaviour.
    struct Schedule: Sendable {
        let start: Date
        static let down: [Range<Double>] = [50..<52, 200..<201.5]
        static let degraded: [Range<Double>] = [100..<104]
        static let maintenance: Range<Double> = 150..<156

        func status(at date: Date) -> HTTPResponse.Status {
            let hours = date.timeIntervalSince(start) / 3600
            if Self.down.contains(where: { $0.contains(hours) }) || Self.maintenance.contains(hours) { return .internalServerError }
            if Self.degraded.contains(where: { $0.contains(hours) }) { return .notFound }
            return .ok
        }
    }

    @Test("two weeks of scheduled checks on a deterministic clock: uptime windows, percentiles, events, retries, maintenance and retention match the raw checks", arguments: Backend.allCases)
    func weeksOfChecks(backend: Backend) async throws {
        let clock = ManualClock(Date(timeIntervalSince1970: 1_790_208_000))  // a midnight UTC
        let start = clock.wallClock.now()
        let schedule = Schedule(start: start)
        let database = try await DeliveryDatabase.make(backend)
        defer { Task { await database.cleanup() } }
        let stores = HubStores(database: database.database, sealer: TestEnvironment.sealer, clock: clock.wallClock)
        let monitorStore = HealthMonitorStore(database: database.database, clock: clock.wallClock)
        let router = Router()
        let wallClock = clock.wallClock
        router.get("/health") { _, _ -> Response in
            // A few milliseconds of real work, varying, so that response times spread over histogram buckets.
            try await Task.sleep(for: .microseconds(Int64.random(in: 0...3000)))
            return Response(status: schedule.status(at: wallClock.now()))
        }
        try await withLoopbackServer(router) { base in
            let connection = try await stores.connections.create(ConnectionRegistration(
                systemName: unique("hr-api"), connectionType: .API, endpoint: base + "/health", credentials: [:],
                healthCheckInterval: 30, retries: 1))
            _ = try await monitorStore.addMaintenance(
                connection.id, startsAt: start.addingTimeInterval(Schedule.maintenance.lowerBound * 3600),
                endsAt: start.addingTimeInterval(Schedule.maintenance.upperBound * 3600), reason: "upgrade")
            let monitor = Self.monitor(stores, clock: clock.wallClock)
            let end = start.addingTimeInterval(14 * 86_400)
            while let next = try await monitorStore.nextDue(), next < end {
                clock.set(to: next)
                try await monitor.runDue()
            }
            clock.set(to: end)
            // The raw checks, read straight from the table.
            let raw = try await database.database.query(
                "SELECT check_timestamp, status, response_time, in_maintenance FROM connection_health WHERE connection_id = $1 ORDER BY check_timestamp",
                [.uuid(connection.id.uuid)]
            ).map { (time: try $0.date("check_timestamp"), status: try $0.string("status"), response: try $0.optionalInt("response_time"),
                     maintenance: try $0.bool("in_maintenance")) }
            #expect(raw.count > 14 * 48 - 2 && raw.count < 14 * 48 + 6, "\(raw.count) checks")
            // Retries: each down period starts with a failed check retried 20 s later (the connection pending meanwhile).
            let retried = zip(raw, raw.dropFirst()).filter { $1.time.timeIntervalSince($0.time) == 20 }
            #expect(retried.count == Schedule.down.count)
            #expect(raw.filter(\.maintenance).count >= 11)
            // Events: down and up for each outage, degraded and up for the degraded period, nothing for maintenance.
            let events = try await SyncEngineStore(database: database.database).events()
            #expect(events.filter { $0.type == "connection.down" }.count == Schedule.down.count)
            #expect(events.filter { $0.type == "connection.degraded" }.count == Schedule.degraded.count)
            #expect(events.filter { $0.type == "connection.up" }.count == Schedule.down.count + Schedule.degraded.count)
            // Uptime windows and percentiles, computed here from the raw checks with the same window alignment.
            let windows = try await monitorStore.uptime(connection.id)
            let now = clock.wallClock.now()
            let hour = floor(now.timeIntervalSince1970 / 3600) * 3600
            let day = floor(now.timeIntervalSince1970 / 86_400) * 86_400
            let starts: [String: Double] = ["24h": hour - 23 * 3600, "7d": hour - (7 * 24 - 1) * 3600, "30d": day - 29 * 86_400, "all": 0]
            for window in windows {
                let counted = raw.filter { !$0.maintenance && $0.time.timeIntervalSince1970 >= starts[window.name]! }
                let healthy = counted.filter { $0.status == "healthy" }.count
                #expect(window.checks == Int64(counted.count), "\(window.name)")
                #expect(window.healthy == Int64(healthy), "\(window.name)")
                #expect(window.uptimePercentage == (Double(healthy) * 10_000 / Double(counted.count)).rounded() / 100, "\(window.name)")
                let times = counted.compactMap(\.response)
                #expect(window.averageResponseTime == Double(times.reduce(0, +)) / Double(times.count), "\(window.name)")
                var histogram = [Int64](repeating: 0, count: LatencyHistogram.bucketCount)
                for time in times { histogram[LatencyHistogram.bucket(for: time)] += 1 }
                for (p, value) in [(0.5, window.p50), (0.95, window.p95), (0.99, window.p99)] {
                    #expect(value == LatencyHistogram.percentile(p, buckets: histogram, minimum: times.min()!, maximum: times.max()!), "\(window.name) p\(p)")
                    // The estimate lies in the bucket of the exact percentile (the nearest-rank one, as the estimate ranks;
                    // an estimate lies in (lower, upper] of its bucket, so its ceiling names the bucket).
                    let exact = times.sorted()[max(1, Int((Double(times.count) * p).rounded(.up))) - 1]
                    #expect(LatencyHistogram.bucket(for: Int64(value!.rounded(.up))) == LatencyHistogram.bucket(for: exact),
                        "\(window.name) p\(p): \(value!) vs \(exact)")
                }
            }
            let all = try #require(windows.first { $0.name == "all" })
            #expect(all.uptimePercentage! < 100 && all.uptimePercentage! > 95)
            #expect(all.maintenance >= 11 && all.degraded >= 8)
            // The design's returns agree with the all-time window.
            let current = try await stores.connections.get(connection.id)
            #expect(abs(try #require(current.uptimePercentage) - all.uptimePercentage!) < 0.001)  // numeric(5,2) read as a double
            #expect(current.avgResponseTime == Int64(all.averageResponseTime!.rounded()))
            // Retention: raw checks older than 7 days go, rollups stay, the windows do not change.
            try await monitorStore.prune(rawDays: 7, rollupDays: 400)
            let kept = try await count(database.database, "connection_health", where: "connection_id = $1", .uuid(connection.id.uuid))
            #expect(kept > 0 && kept < Int64(raw.count / 2 + 5))
            #expect(try await monitorStore.uptime(connection.id) == windows)
        }
    }

    @Test("two monitors on one database check each due connection once per interval")
    func twoMonitors() async throws {
        let clock = ManualClock()
        let database = try await DeliveryDatabase.make(.postgres)
        defer { Task { await database.cleanup() } }
        let stores = HubStores(database: database.database, sealer: TestEnvironment.sealer, clock: clock.wallClock)
        let router = Router()
        try await withLoopbackServer(router) { base in
            let port = base.split(separator: ":").last!
            var ids: [ConnectionID] = []
            for _ in 0..<24 {
                ids.append(try await stores.connections.create(ConnectionRegistration(
                    systemName: unique("tcp"), connectionType: .TCP, endpoint: "127.0.0.1:\(port)", credentials: [:],
                    healthCheckInterval: 1)).id)
            }
            let first = Self.monitor(stores, clock: clock.wallClock) { $0.concurrency = 5 }
            let second = Self.monitor(stores, clock: clock.wallClock) { $0.concurrency = 5 }
            for _ in 0..<4 {
                clock.advance(by: 60)
                async let a = first.runDue()
                async let b = second.runDue()
                let (ranFirst, ranSecond) = try await (a, b)
                #expect(ranFirst + ranSecond == 24)
            }
            for id in ids {
                #expect(try await count(database.database, "connection_health", where: "connection_id = $1", .uuid(id.uuid)) == 4)
            }
            #expect(first.statistics.checksStarted + second.statistics.checksStarted == 96)
        }
    }
}

extension HealthMonitorTests {
    @Test("migration 5 rolls up the checks recorded before it exactly as the monitor rolls up new ones", arguments: Backend.allCases)
    func backfill(backend: Backend) async throws {
        let clock = ManualClock()
        let database = try await DeliveryDatabase.make(backend)
        defer { Task { await database.cleanup() } }
        let stores = HubStores(database: database.database, sealer: TestEnvironment.sealer, clock: clock.wallClock)
        let connection = try await stores.connections.create(ConnectionRegistration(
            systemName: unique("c"), connectionType: .TCP, endpoint: "127.0.0.1:9", credentials: [:]))
        let statuses: [ConnectionStatus] = [.healthy, .healthy, .degraded, .down, .healthy]
        for index in 0..<60 {
            let status = statuses[index % statuses.count]
            _ = try await stores.connections.recordCheck(
                connection.id, status: status, responseTime: status == .down ? nil : Int64([1, 3, 7, 40, 400, 2600, 45_000][index % 7]))
            clock.advance(by: 1800)
        }
        let select = "SELECT * FROM connection_rollups ORDER BY bucket, bucket_start"
        func snapshot() async throws -> [String] {
            try await database.database.query(select, []).map { row in
                try (["bucket", "checks", "healthy", "degraded", "down", "maintenance", "response_count", "response_sum"]
                    .map { column in column == "bucket" ? try row.string(column) : String(try row.int(column)) }
                    + [String(try row.date("bucket_start").timeIntervalSince1970), String(describing: try row.optionalInt("response_min")),
                       String(describing: try row.optionalInt("response_max"))]
                    + (0..<LatencyHistogram.bucketCount).map { String(try row.int("h\($0)")) }).joined(separator: ",")
            }
        }
        let recorded = try await snapshot()
        #expect(recorded.count > 30)
        _ = try await database.database.query("DELETE FROM connection_rollups", [])
        for bucket in ["hour", "day"] {
            _ = try await database.database.query(Migration.backfillRollups(database.database.dialect, bucket: bucket), [])
        }
        #expect(try await snapshot() == recorded)
    }
}

extension HealthMonitorTests {
    @Test("https API probes report the certificate's days to expiry; an untrusted certificate still fails the request")
    func certificateExpiry() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hub-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // A self-signed certificate valid for 20 days, made by openssl.
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", directory + "/key.pem", "-out", directory + "/cert.pem",
            "-days", "20", "-subj", "/CN=localhost",
        ]
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        await openssl.exited()
        #expect(openssl.terminationStatus == 0)
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(directory + "/cert.pem").map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: directory + "/key.pem", format: .pem)))
        let context = try NIOSSLContext(configuration: configuration)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { server.close(promise: nil) }
        let port = server.localAddress?.port ?? 0
        let stores = try await TestEnvironment.stores(.sqlite)
        let connection = try await stores.connections.create(ConnectionRegistration(
            systemName: unique("tls"), connectionType: .API, endpoint: "https://127.0.0.1:\(port)/health", credentials: [:]))
        let result = await HealthProber(gateway: Self.gateway, timeout: .seconds(3)).probe(connection, credentials: [:])
        #expect(result.tlsDaysRemaining == 19 || result.tlsDaysRemaining == 20, "\(String(describing: result.tlsDaysRemaining))")
        #expect(result.status == .down)  // the request itself does not trust a self-signed certificate
        #expect(result.json.objectValue?["tls_days_remaining"] == .int(Int64(result.tlsDaysRemaining ?? -1)))
    }
}
