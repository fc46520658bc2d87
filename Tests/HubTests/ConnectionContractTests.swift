import Foundation
import HubCore
import HubStore
import Testing

/// DAO-MDE-03-08-05 contract, on both backends.
@Suite("System Connectivity DAO", .timeLimit(.minutes(10)))
struct ConnectionContractTests {
    static func registration(
        name: String = unique("payroll-db"), type: ConnectionType = .DB, endpoint: String = "postgres://db.example.com:5432/payroll"
    ) -> ConnectionRegistration {
        ConnectionRegistration(
            systemName: name, connectionType: type, endpoint: endpoint,
            credentials: ["username": "monitor", "password": "db-password-do-not-leak"])
    }

    @Test("step 1 creates a pending connection with a 5-minute interval by default", arguments: Backend.allCases)
    func create(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let connection = try await stores.connections.create(Self.registration())
        #expect(connection.status == .pending)
        #expect(connection.healthCheckInterval == 5)
        #expect(connection.lastCheck == nil)
        #expect(connection.uptimePercentage == nil)
        #expect(connection.avgResponseTime == nil)
        #expect(connection.maskedCredentials == ["username": "monitor", "password": "****"])
        #expect(try await stores.connections.get(connection.id) == connection)
        #expect(try await stores.connections.credentials(for: connection.id) == ["username": "monitor", "password": "db-password-do-not-leak"])
        let raw = try await stores.database.queryOne(
            "SELECT credentials FROM system_connections WHERE connection_id = $1", [.uuid(connection.id.uuid)])!.jsonText("credentials")
        #expect(!raw.contains("db-password") && !raw.contains("monitor"))
        #expect(SystemConnection.mask(credentials: ["user": ["password": "nested"], "header": "Bearer x", "database": "hr"])
            == ["user": "****", "header": "Bearer x", "database": "hr"])
        var custom = Self.registration()
        custom.healthCheckInterval = 1440
        #expect(try await stores.connections.create(custom).healthCheckInterval == 1440)
    }

    @Test("step 1 validation names the field and writes nothing", arguments: Backend.allCases)
    func validation(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let name = unique("bad")
        func attempt(_ field: String, _ type: ConnectionType, _ endpoint: String, _ change: (inout ConnectionRegistration) -> Void = { _ in }) async {
            var registration = Self.registration(name: name, type: type, endpoint: endpoint)
            change(&registration)
            await expectValidation(field) { _ = try await stores.connections.create(registration) }
        }
        await attempt("system_name", .TCP, "host:1") { $0.systemName = "  " }
        await attempt("system_name", .TCP, "host:1") { $0.systemName = "nul\u{0}name" }
        await attempt("credentials.password", .TCP, "host:1") { $0.credentials = ["password": "p\u{0}w"] }
        await attempt("system_name", .TCP, "host:1") { $0.systemName = String(repeating: "n", count: 129) }
        await attempt("endpoint", .API, "ftp://files.example.com")
        await attempt("endpoint", .API, "api.example.com")
        await attempt("endpoint", .DB, "mysql://db.example.com/x")
        await attempt("endpoint", .DB, "postgres://user:pw@db.example.com/x")
        await attempt("endpoint", .FTP, "ftp.example.com")
        await attempt("endpoint", .FTP, "ftp.example.com:99999")
        await attempt("endpoint", .SFTP, "https://sftp.example.com")
        await attempt("endpoint", .TCP, "host")
        await attempt("endpoint", .TCP, "bad host:80")
        await attempt("endpoint", .TCP, "[zz::1]:80")
        await attempt("credentials", .TCP, "host:80") { $0.credentials = "secret" }
        // Members written into a protocol line or a header: no control character (CR/LF would start FTP commands).
        await attempt("credentials.password", .FTP, "ftp://files.example.com") { $0.credentials = ["username": "a", "password": "x\r\nDELE y"] }
        await attempt("credentials.username", .FTP, "ftp://files.example.com") { $0.credentials = ["username": "a\r\nMAIL FROM:<x>"] }
        await attempt("credentials.user", .DB, "postgres://db.example.com/hr") { $0.credentials = ["user": "hub\n"] }
        await attempt("credentials.database", .DB, "postgres://db.example.com/hr") { $0.credentials = ["username": "hub", "database": "hr\u{1}x"] }
        await attempt("credentials.token", .API, "https://api.example.com") { $0.credentials = ["token": "t\r\nHost: evil.example"] }
        await attempt("credentials.api_key", .API, "https://api.example.com") { $0.credentials = ["api_key": "k\u{85}"] }
        await attempt("credentials.password", .FTP, "ftp://files.example.com") { $0.credentials = ["username": "a", "password": 42] }
        await attempt("credentials.header", .API, "https://api.example.com") { $0.credentials = ["api_key": "k", "header": "Host"] }
        await attempt("credentials.header", .API, "https://api.example.com") { $0.credentials = ["api_key": "k", "header": "X Key"] }
        await attempt("health_check_interval", .TCP, "host:80") { $0.healthCheckInterval = 0 }
        await attempt("health_check_interval", .TCP, "host:80") { $0.healthCheckInterval = 1441 }
        #expect(try await count(stores.database, "system_connections", where: "system_name = $1", .text(name)) == 0)
        let accepted: [(ConnectionType, String)] = [
            (.API, "https://api.example.com/health"), (.DB, "postgresql://db.example.com/hr"), (.FTP, "ftp://files.example.com:21"),
            (.FTP, "files.example.com:21"), (.SFTP, "sftp://files.example.com"), (.SFTP, "10.1.2.3:22"),
            (.TCP, "tcp://ldap.example.com:389"), (.TCP, "[::1]:5432"),
        ]
        for (type, endpoint) in accepted {
            var registration = Self.registration(type: type, endpoint: endpoint)
            registration.credentials = [:]
            #expect(try await stores.connections.create(registration).endpoint == endpoint)
        }
    }

    @Test("system_name is unique, also under concurrent creates", arguments: Backend.allCases)
    func uniqueName(backend: Backend) async throws {
        let stores = try await TestEnvironment.stores(backend)
        let registration = Self.registration()
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    do { _ = try await stores.connections.create(registration); return true } catch let error as HubError {
                        #expect(error == .conflict(field: "system_name", reason: "a connection with this system_name already exists"))
                        return false
                    } catch {
                        Issue.record("unexpected \(error)")
                        return false
                    }
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 1)
    }

    @Test("steps 2 to 4 record a check and recompute uptime and average response time", arguments: Backend.allCases)
    func checks(backend: Backend) async throws {
        let clock = ManualClock()
        let stores = try await TestEnvironment.stores(backend, clock: clock.wallClock)
        let connection = try await stores.connections.create(Self.registration())
        let checks: [(ConnectionStatus, Int64?)] = [(.healthy, 100), (.healthy, 200), (.degraded, 900), (.down, nil), (.healthy, 101), (.healthy, 99)]
        var latest = connection
        for (status, time) in checks {
            clock.advance(by: 300)
            latest = try await stores.connections.recordCheck(connection.id, status: status, responseTime: time)
            #expect(latest.status == status)
            #expect(latest.responseTime == time)
            #expect(latest.lastCheck == clock.wallClock.now())
        }
        // 4 healthy of 6 checks; average over the 5 measured times (100+200+900+101+99)/5 = 280.
        #expect(latest.uptimePercentage == 66.67)
        #expect(latest.avgResponseTime == 280)
        #expect(latest.lastUpdated == clock.wallClock.now())
        #expect(try await stores.connections.get(connection.id) == latest)

        let page = try await stores.connections.healthHistory(connection.id, PageRequest(limit: 4))
        #expect(page.items.map(\.status) == [.healthy, .healthy, .down, .degraded])
        let rest = try await stores.connections.healthHistory(connection.id, PageRequest(limit: 4, cursor: page.nextCursor))
        #expect(rest.items.map(\.responseTime) == [200, 100])
        #expect(rest.nextCursor == nil)

        await expectValidation("status") { _ = try await stores.connections.recordCheck(connection.id, status: .pending, responseTime: 1) }
        await expectValidation("response_time") { _ = try await stores.connections.recordCheck(connection.id, status: .healthy, responseTime: -1) }
        #expect(try await count(stores.database, "connection_health", where: "connection_id = $1", .uuid(connection.id.uuid)) == 6)
        await expectHubError({ $0.isNotFound }) { _ = try await stores.connections.recordCheck(.generate(), status: .healthy, responseTime: 1) }
        await expectHubError({ $0.isNotFound }) { _ = try await stores.connections.healthHistory(.generate(), PageRequest()) }
    }

    @Test("list and delete", arguments: Backend.allCases)
    func lifecycle(backend: Backend) async throws {
        let clock = ManualClock(Date(timeIntervalSince1970: 1_950_000_000 + Double.random(in: 0..<1_000_000)))
        let stores = try await TestEnvironment.stores(backend, clock: clock.wallClock)
        let first = try await stores.connections.create(Self.registration())
        clock.advance(by: 1)
        let second = try await stores.connections.create(Self.registration())
        _ = try await stores.connections.recordCheck(first.id, status: .healthy, responseTime: 10)
        let page = try await stores.connections.list(PageRequest(limit: 500))
        let ours = page.items.map(\.id).filter { $0 == first.id || $0 == second.id }
        #expect(ours == [second.id, first.id])
        try await stores.connections.delete(first.id)
        await expectHubError({ $0.isNotFound }) { _ = try await stores.connections.get(first.id) }
        #expect(try await count(stores.database, "connection_health", where: "connection_id = $1", .uuid(first.id.uuid)) == 0)
        await expectHubError({ $0.isNotFound }) { try await stores.connections.delete(first.id) }
    }
}
