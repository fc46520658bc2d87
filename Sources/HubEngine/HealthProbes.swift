import Foundation
import HubCore
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

/// How a probe classified a connection, with the measured response time and why.
public struct ProbeResult: Sendable, Hashable {
    /// healthy, degraded or down (never pending).
    public var status: ConnectionStatus
    /// Milliseconds from the start of the probe to its answer; nil when nothing answered.
    public var responseTime: Int64?
    /// Why, in words safe to store and show (never a credential).
    public var reason: String
    /// The answer's HTTP status (API probes).
    public var statusCode: Int?
    /// Whole days until the server's TLS certificate expires (https API probes; negative once expired).
    public var tlsDaysRemaining: Int?

    public init(status: ConnectionStatus, responseTime: Int64?, reason: String, statusCode: Int? = nil, tlsDaysRemaining: Int? = nil) {
        self.status = status
        self.responseTime = responseTime
        self.reason = reason
        self.statusCode = statusCode
        self.tlsDaysRemaining = tlsDaysRemaining
    }

    /// The details the API shows for a check.
    public var json: JSONValue {
        [
            "passed": .bool(status == .healthy), "status": .string(status.rawValue),
            "response_time_ms": responseTime.map(JSONValue.int) ?? .null, "reason": .string(reason),
            "status_code": statusCode.map { .int(Int64($0)) } ?? .null,
            "tls_days_remaining": tlsDaysRemaining.map { .int(Int64($0)) } ?? .null,
        ]
    }
}

/// Real protocol probes, one per connection type, each bounded by a timeout and the outbound address policy:
/// - API: an HTTP(S) request through the gateway with the connection's credentials (bearer `token`,
///   `username`/`password`, or `api_key` with optional `header`); `probe` settings in the credentials choose the
///   method, the expected status range (default 200–399), a body substring, and a response time above which the
///   connection is degraded.
/// - DB: a PostgreSQL session authenticated with `username`/`password` (database from the endpoint or `database`)
///   that runs `SELECT 1`.
/// - FTP: the control channel: the 220 banner, `USER`/`PASS` answered 230 (when a username is given), `QUIT`.
/// - SFTP: the SSH identification exchange (`SSH-2.0-…`).
/// - TCP: a connection.
/// Credentials are never logged nor part of a reason.
public struct HealthProber: Sendable {
    let gateway: OutboundGateway
    let timeout: Duration

    public init(gateway: OutboundGateway, timeout: Duration = .seconds(10)) {
        self.gateway = gateway
        self.timeout = timeout
    }

    /// Probes `connection` with its clear `credentials`.
    public func probe(_ connection: SystemConnection, credentials: JSONValue) async -> ProbeResult {
        let credentials = credentials.objectValue ?? [:]
        let start = ContinuousClock.now
        func elapsed() -> Int64 { (ContinuousClock.now - start).wholeMilliseconds }
        if connection.connectionType == .API {
            var result = await probeAPI(connection.endpoint, credentials: credentials)
            // https: the certificate's days to expiry, read in a handshake of its own; under a week degrades.
            if let components = URLComponents(string: connection.endpoint), components.scheme?.lowercased() == "https",
                let host = components.host, let address = await withTimeout(timeout, { try? await self.gateway.checkHost(host) }) ?? nil,
                (1...65535).contains(components.port ?? 443),
                let socketAddress = try? SocketAddress(ipAddress: address.description, port: components.port ?? 443),
                let expiry = await Self.certificateExpiry(host: host, address: socketAddress, timeout: timeout)
            {
                let days = Int((expiry.timeIntervalSinceNow / 86_400).rounded(.down))
                result.tlsDaysRemaining = days
                if result.status == .healthy && days < 7 {
                    result.status = .degraded
                    result.reason = "the TLS certificate expires in \(days) day(s)"
                }
            }
            return result
        }
        let host: String
        let port: Int
        do {
            (host, port) = try ConnectivityTester.hostAndPort(connection.endpoint, type: connection.connectionType)
        } catch {
            return ProbeResult(status: .down, responseTime: nil, reason: "the endpoint has no usable host and port")
        }
        // The policy on every resolved address, within the probe's time; the probe connects to the checked addresses
        // themselves, in the resolver's order, moving on to the next while one gives no answer (RFC 8305).
        let resolved: Result<[IPAddress], any Error>? = await withTimeout(timeout) {
            do { return .success(try await gateway.checkedAddresses(host)) } catch { return .failure(error) }
        }
        let addresses: [IPAddress]
        switch resolved {
        case .success(let found)?: addresses = found
        case .failure(HubError.validation(_, let reason))?: return ProbeResult(status: .down, responseTime: nil, reason: "refused: \(reason)")
        case .failure?: return ProbeResult(status: .down, responseTime: nil, reason: "\(host) could not be checked")
        case nil: return ProbeResult(status: .down, responseTime: nil, reason: "\(host) did not resolve within \(timeout)")
        }
        var outcome: Result<String, ProbeFailure> = .failure(ProbeFailure("\(host) has no usable address"))
        for (position, address) in addresses.enumerated() {
            let remaining = timeout - (ContinuousClock.now - start)
            guard remaining > .zero else { break }
            // With more addresses to try, one that never answers may not take all the time that is left.
            let left = addresses.count - position
            let share = left > 1 ? max(remaining / left, min(remaining, .seconds(2))) : remaining
            guard let socketAddress = try? SocketAddress(ipAddress: address.description, port: port) else { continue }
            outcome = await withTimeout(share) {
                switch connection.connectionType {
                case .DB: return await Self.postgres(socketAddress, endpoint: connection.endpoint, credentials: credentials)
                case .FTP: return await Self.ftp(socketAddress, credentials: credentials, timeout: share)
                case .SFTP: return await Self.ssh(socketAddress, timeout: share)
                case .TCP, .API: return await Self.tcp(socketAddress, timeout: share)
                }
            } ?? .failure(ProbeFailure("no answer within \(timeout)"))
            if case .failure(let failure) = outcome, !failure.answered { continue }
            break
        }
        switch outcome {
        case .success(let reason): return ProbeResult(status: .healthy, responseTime: elapsed(), reason: reason)
        case .failure(let failure): return ProbeResult(status: .down, responseTime: failure.answered ? elapsed() : nil, reason: failure.reason)
        }
    }

    // MARK: - API

    func probeAPI(_ endpoint: String, credentials: [String: JSONValue]) async -> ProbeResult {
        var headers: [String: String] = [:]
        if let token = credentials["token"]?.stringValue {
            headers["Authorization"] = "Bearer \(token)"
        } else if let user = credentials["username"]?.stringValue, let password = credentials["password"]?.stringValue {
            headers["Authorization"] = "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
        } else if let key = credentials["api_key"]?.stringValue {
            headers[credentials["header"]?.stringValue ?? "X-Api-Key"] = key
        }
        let settings = credentials["probe"]?.objectValue ?? [:]
        let method = settings["method"]?.stringValue?.uppercased() ?? "GET"
        let low = settings["expected_status_min"]?.intValue.map(Int.init) ?? 200
        let high = settings["expected_status_max"]?.intValue.map(Int.init) ?? 399
        let substring = settings["body_contains"]?.stringValue
        let degradedAfter = settings["degraded_after_ms"]?.intValue
        let outcome = await gateway.send(
            method: method, url: endpoint, headers: headers, timeout: timeout, bodyCap: substring == nil ? 0 : 256 * 1024)
        guard let code = outcome.statusCode else {
            let reason = outcome.refused ? "refused: \(outcome.error ?? "")" : (outcome.error ?? "no answer")
            return ProbeResult(status: .down, responseTime: nil, reason: reason)
        }
        let time = outcome.elapsedMilliseconds
        if !(low...high).contains(code) {
            // An answer outside the expected range: a server error is down, anything else (4xx, an unexpected redirect)
            // means the system is up but not serving as expected.
            let status: ConnectionStatus = code >= 500 ? .down : .degraded
            return ProbeResult(
                status: status, responseTime: time, reason: "HTTP \(code), expected \(low)-\(high)", statusCode: code)
        }
        if let substring, !String(decoding: outcome.body, as: UTF8.self).contains(substring) {
            return ProbeResult(status: .degraded, responseTime: time, reason: "the body does not contain the expected text", statusCode: code)
        }
        if let degradedAfter, time > degradedAfter {
            return ProbeResult(status: .degraded, responseTime: time, reason: "answered in \(time) ms, slower than \(degradedAfter) ms", statusCode: code)
        }
        return ProbeResult(status: .healthy, responseTime: time, reason: "HTTP \(code)", statusCode: code)
    }

    // MARK: - Protocols

    struct ProbeFailure: Error, Sendable {
        var reason: String
        /// Whether the system answered at all (a refused login answers; a closed port does not).
        var answered: Bool
        init(_ reason: String, answered: Bool = false) {
            self.reason = reason
            self.answered = answered
        }
    }

    static func tcp(_ address: SocketAddress, timeout: Duration) async -> Result<String, ProbeFailure> {
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.milliseconds(max(1, timeout.wholeMilliseconds)))
                .connect(to: address).get()
            try? await channel.close()
            return .success("connected")
        } catch {
            return .failure(ProbeFailure("the connection was refused or timed out"))
        }
    }

    static func postgres(_ address: SocketAddress, endpoint: String, credentials: [String: JSONValue]) async -> Result<String, ProbeFailure> {
        let database = credentials["database"]?.stringValue
            ?? URLComponents(string: endpoint)?.path.split(separator: "/").first.map(String.init)
        guard let username = credentials["username"]?.stringValue ?? credentials["user"]?.stringValue else {
            return .failure(ProbeFailure("the credentials name no username"))
        }
        // The startup message carries them as NUL-ended strings: a control character is refused before connecting.
        guard [username, database ?? "", credentials["password"]?.stringValue ?? ""].allSatisfy(Validate.isLineSafe) else {
            return .failure(ProbeFailure("the credentials contain control characters; nothing was sent"))
        }
        // sslmode as libpq reads it: disable, prefer (the default) or require encrypt without verifying; verify-ca
        // verifies the certificate's chain against the system's trusted roots; verify-full also checks the name.
        let components = URLComponents(string: endpoint)
        let mode = components?.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        let tls: PostgresConnection.Configuration.TLS
        do {
            var configuration = TLSConfiguration.makeClientConfiguration()
            switch mode {
            case "verify-full": configuration.certificateVerification = .fullVerification
            case "verify-ca": configuration.certificateVerification = .noHostnameVerification
            default: configuration.certificateVerification = .none
            }
            switch mode {
            case "disable": tls = .disable
            case "prefer", "allow": tls = .prefer(try NIOSSLContext(configuration: configuration))
            case "require", "verify-ca", "verify-full": tls = .require(try NIOSSLContext(configuration: configuration))
            default: return .failure(ProbeFailure("sslmode must be disable, allow, prefer, require, verify-ca or verify-full"))
            }
        } catch {
            return .failure(ProbeFailure("no TLS context could be made"))
        }
        return await postgresAt(
            address.ipAddress ?? "", port: address.port ?? 5432, serverName: components?.host, username: username,
            credentials: credentials, database: database, tls: tls)
    }

    static func postgresAt(
        _ host: String, port: Int, serverName: String?, username: String, credentials: [String: JSONValue], database: String?,
        tls: PostgresConnection.Configuration.TLS
    ) async -> Result<String, ProbeFailure> {
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: username, password: credentials["password"]?.stringValue, database: database, tls: tls)
        // The probe connects to the checked address; TLS still presents and verifies the endpoint's name.
        if let serverName, IPAddress(serverName) == nil { configuration.options.tlsServerName = serverName }
        configuration.options.connectTimeout = .seconds(10)
        var logger = Logger(label: "hub.probe.postgres")
        logger.logLevel = .critical
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(
                on: MultiThreadedEventLoopGroup.singleton.next(), configuration: configuration, id: 1, logger: logger
            ).get()
        } catch let error as PSQLError {
            if let code = error.serverInfo?[.sqlState] {
                let reason = code == "28P01" || code == "28000" ? "authentication failed" : "the server refused the session (SQLSTATE \(code))"
                return .failure(ProbeFailure(reason, answered: true))
            }
            return .failure(ProbeFailure("no PostgreSQL session could be opened"))
        } catch {
            return .failure(ProbeFailure("no PostgreSQL session could be opened"))
        }
        defer { Task { try? await connection.close() } }
        // The query does not stop for cancellation: closing the connection does (the probe's timeout cancels).
        return await withTaskCancellationHandler {
            do {
                let rows = try await connection.query("SELECT 1 AS one", logger: logger)
                for try await _ in rows {}
                return .success("SELECT 1 answered")
            } catch {
                return .failure(ProbeFailure("SELECT 1 failed", answered: true))
            }
        } onCancel: {
            connection.close().whenComplete { _ in }
        }
    }

    /// Lines from a line-based server (FTP replies, the SSH identification).
    final class LineReader {
        private var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
        private var pending = ""

        init(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>) { iterator = inbound.makeAsyncIterator() }

        func line() async throws -> String? {
            while true {
                if let newline = pending.firstIndex(where: \.isNewline) {
                    let line = String(pending[..<newline]).trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
                    pending = String(pending[pending.index(after: newline)...])
                    if line.isEmpty { continue }  // "\r" and "\n" split across reads
                    return line
                }
                guard pending.utf8.count < 8192, let chunk = try await iterator.next() else { return nil }
                pending += String(buffer: chunk)
            }
        }

        /// An FTP reply: its code and last line (multi-line replies end with "NNN ").
        func reply() async throws -> (Int, String)? {
            while let line = try await line() {
                let prefix = line.prefix(4)
                if prefix.count == 4, let code = Int(prefix.prefix(3)), prefix.last == " " { return (code, line) }
                if prefix.count == 3, let code = Int(prefix) { return (code, line) }
            }
            return nil
        }
    }

    static func session<T: Sendable>(
        _ address: SocketAddress, timeout: Duration, _ body: @Sendable (LineReader, NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws -> T
    ) async throws -> T {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.milliseconds(max(1, timeout.wholeMilliseconds)))
            .connect(to: address) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await body(LineReader(inbound), outbound)
        }
    }

    static func ftp(_ address: SocketAddress, credentials: [String: JSONValue], timeout: Duration) async -> Result<String, ProbeFailure> {
        do {
            return try await session(address, timeout: timeout) { reader, writer in
                func send(_ line: String) async throws { try await writer.write(ByteBuffer(string: line + "\r\n")) }
                guard let (banner, _) = try await reader.reply() else { return .failure(ProbeFailure("no FTP banner")) }
                guard banner == 220 else { return .failure(ProbeFailure("the FTP banner was \(banner), not 220", answered: true)) }
                guard let user = credentials["username"]?.stringValue ?? credentials["user"]?.stringValue else {
                    try? await send("QUIT")
                    return .success("FTP banner 220")
                }
                // Checked again where the line is written: a control character would end the line and start a command.
                let password = credentials["password"]?.stringValue ?? ""
                guard Validate.isLineSafe(user), Validate.isLineSafe(password) else {
                    try? await send("QUIT")
                    return .failure(ProbeFailure("the FTP credentials contain control characters; nothing was sent"))
                }
                try await send("USER \(user)")
                guard var (code, _) = try await reader.reply() else { return .failure(ProbeFailure("no answer to USER", answered: true)) }
                if code == 331 {
                    try await send("PASS \(password)")
                    guard let (passCode, _) = try await reader.reply() else { return .failure(ProbeFailure("no answer to PASS", answered: true)) }
                    code = passCode
                }
                try? await send("QUIT")
                guard code == 230 else { return .failure(ProbeFailure("the FTP login was answered \(code), not 230", answered: true)) }
                return .success("FTP login accepted (230)")
            }
        } catch {
            return .failure(ProbeFailure("the FTP control connection failed"))
        }
    }

    static func ssh(_ address: SocketAddress, timeout: Duration) async -> Result<String, ProbeFailure> {
        do {
            return try await session(address, timeout: timeout) { reader, writer in
                try await writer.write(ByteBuffer(string: "SSH-2.0-IntegrationHub_probe\r\n"))
                // RFC 4253: the server may send other lines before its identification string.
                for _ in 0..<20 {
                    guard let line = try await reader.line() else { break }
                    if line.hasPrefix("SSH-") {
                        guard line.hasPrefix("SSH-2.0-") || line.hasPrefix("SSH-1.99-") else {
                            return .failure(ProbeFailure("the server speaks \(line.prefix(12)), not SSH 2", answered: true))
                        }
                        return .success("SSH identification \(line.prefix(64))")
                    }
                }
                return .failure(ProbeFailure("no SSH identification string", answered: true))
            }
        } catch {
            return .failure(ProbeFailure("the SSH connection failed"))
        }
    }
}

extension HealthProber {
    /// When the leaf certificate `host` presents at `address` expires: read in a TLS handshake of its own that trusts
    /// nothing (the probe's request verifies as usual), closed at once.
    static func certificateExpiry(host: String, address: SocketAddress, timeout: Duration) async -> Date? {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .noHostnameVerification
        guard let context = try? NIOSSLContext(configuration: configuration) else { return nil }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let expiry = loop.makePromise(of: Date?.self)
        let serverName = IPAddress(host) == nil ? host : nil
        do {
            let channel = try await ClientBootstrap(group: loop)
                .connectTimeout(.milliseconds(max(1, timeout.wholeMilliseconds)))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handler = try NIOSSLClientHandler(context: context, serverHostname: serverName) { certificates, verification in
                            expiry.succeed(certificates.first.map { Date(timeIntervalSince1970: TimeInterval($0.notValidAfter)) })
                            // Reading the date is all this handshake is for; it carries no request.
                            verification.succeed(.certificateVerified)
                        }
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .connect(to: address).get()
            channel.closeFuture.whenComplete { _ in expiry.succeed(nil) }  // no certificate came (ignored after one did)
            // The handshake gets `timeout`; closing the channel then completes the promise with nil.
            let closer = loop.scheduleTask(in: .milliseconds(max(1, timeout.wholeMilliseconds))) { channel.close(promise: nil) }
            let date = (try? await expiry.futureResult.get()) ?? nil
            closer.cancel()
            try? await channel.close()
            return date
        } catch {
            expiry.succeed(nil)
            return nil
        }
    }
}
