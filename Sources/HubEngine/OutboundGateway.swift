import AsyncHTTPClient
import Foundation
import HubCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// The result of one outbound HTTP request. Failures (refused by policy, DNS, connection, timeout) are outcomes
/// too, with `statusCode` nil and `error` saying what happened in words safe to store and show.
public struct HTTPOutcome: Sendable, Hashable {
    /// The response status, or nil when no response arrived.
    public var statusCode: Int?
    /// The response body, at most the request's cap.
    public var body: Data
    /// Whether the body was cut at the cap.
    public var truncated: Bool
    /// Wall time of the request in milliseconds, from before resolution to the end of the (capped) body.
    public var elapsedMilliseconds: Int64
    /// Why no response arrived, if none did.
    public var error: String?
    /// Whether the exchange ran out of time.
    public var timedOut: Bool = false
    /// Whether the policy refused the destination (nothing was sent; retrying cannot help).
    public var refused: Bool = false
    /// The response's `Retry-After`, in seconds or as an HTTP date, as a delay from now.
    public var retryAfter: Duration?
    /// The response's `Link` header (RFC 8288), for paginated sources.
    public var link: String?

    /// Whether a retry may succeed: no answer (but not refused), 429, or a 5xx.
    public var isRetryable: Bool {
        guard let statusCode else { return !refused }
        return statusCode == 429 || statusCode >= 500
    }
}

/// Every outbound HTTP request the hub makes goes through here: one shared AsyncHTTPClient (redirects are not
/// followed), the outbound address policy checked on every address the host resolves to, the connection pinned to the
/// checked address (no second resolution that a rebinding DNS answer could change), one deadline for resolution,
/// connection, response and body, and a cap on the stored body.
public final class OutboundGateway: Sendable {
    private let client: HTTPClient
    /// Clients pinned to a checked address, one per (host, address), reused while the host keeps resolving there.
    private let pinnedClients: PinnedClients
    /// The policy in force.
    public let policy: OutboundPolicy
    /// How host names become addresses.
    let resolver: Resolver

    /// A gateway with its own client on the shared event loop group, keeping up to `connectionsPerHost` connections
    /// open to one host (at least the requests the hub's workers make to one host at once: a request waiting for a
    /// connection spends its own timeout waiting, so AsyncHTTPClient's default of 8 made a slow endpoint's queued
    /// deliveries time out while it was answering every one in time).
    public init(policy: OutboundPolicy, connectionsPerHost: Int = 64, resolver: Resolver = .system) {
        self.policy = policy
        self.resolver = resolver
        let configuration = Self.configuration(pinning: [:], connectionsPerHost: connectionsPerHost)
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.pinnedClients = PinnedClients(connectionsPerHost: connectionsPerHost)
    }

    /// `retryConnecting`: whether a failed connect is retried (with backoff, until the connect timeout) before the
    /// waiting requests fail; off for a name with other addresses to try instead.
    static func configuration(pinning: [String: String], connectionsPerHost: Int, retryConnecting: Bool = true) -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(30))
        configuration.dnsOverride = pinning
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = max(1, connectionsPerHost)
        configuration.connectionPool.retryConnectionEstablishment = retryConnecting
        // HTTP/1.1 only, with a guard on every connection against statuses below 100 (see StatusGuard): HTTP/2 stream
        // channels have no place before the client's handler to put one.
        configuration.httpVersion = .http1Only
        configuration.http1_1ConnectionDebugInitializer = StatusGuard.install
        return configuration
    }

    /// Shuts the client down; no request may follow.
    public func shutdown() async throws {
        await pinnedClients.shutdown()
        try await client.shutdown()
    }

    /// Sends one request and returns its outcome; never throws for network or policy failures. `timeout` bounds the
    /// whole exchange, DNS and body included.
    public func send(
        method: String, url: String, headers: [String: String] = [:], body: Data? = nil, timeout: Duration = .seconds(30),
        bodyCap: Int = 64 * 1024
    ) async -> HTTPOutcome {
        let start = ContinuousClock.now
        // The exchange runs in a task of its own that a timer on the client's event loop cancels at the timeout (one
        // task and one scheduled callback; a task group with a sleeping child cost about 35 µs a request more, measured
        // in `hub-bench webhooks`). The caller's cancellation reaches it too.
        let fired = SharedCounter()  // 1 once the timer fired
        let exchange = Task {
            await self.perform(method: method, url: url, headers: headers, body: body, timeout: timeout, bodyCap: bodyCap, start: start)
        }
        let timer = client.eventLoopGroup.any().scheduleTask(in: .nanoseconds(timeout.wholeNanoseconds)) {
            fired.value.store(1, ordering: .releasing)
            exchange.cancel()
        }
        let outcome = await withTaskCancellationHandler {
            await exchange.value
        } onCancel: {
            exchange.cancel()
        }
        timer.cancel()
        // An answer that was complete when the timer fired stands; anything the timer cut off timed out.
        if fired.value.load(ordering: .acquiring) == 1 && outcome.statusCode == nil {
            return HTTPOutcome(
                statusCode: nil, body: Data(), truncated: false, elapsedMilliseconds: (ContinuousClock.now - start).wholeMilliseconds,
                error: "timed out after \(timeout)", timedOut: true)
        }
        return outcome
    }

    private func perform(
        method: String, url: String, headers: [String: String], body: Data?, timeout: Duration, bodyCap: Int,
        start: ContinuousClock.Instant
    ) async -> HTTPOutcome {
        func elapsed() -> Int64 { (ContinuousClock.now - start).wholeMilliseconds }
        func failure(_ message: String) -> HTTPOutcome {
            HTTPOutcome(statusCode: nil, body: Data(), truncated: false, elapsedMilliseconds: elapsed(), error: message)
        }
        // Checked again where the request is written, whatever validated the headers before (stored rows may predate a
        // rule): a framing or routing header would send the request, and its credentials, elsewhere than its URL.
        if let (name, _) = headers.first(where: { !Validate.isHeaderName($0.key) || Validate.isReservedHeader($0.key) || !Validate.isHeaderValue($0.value) }) {
            var refusal = failure("the header \(Validate.isHeaderName(name) ? name : "name") is not allowed in an outbound request")
            refusal.refused = true
            return refusal
        }
        let pinned: (host: String, addresses: [IPAddress])
        do {
            pinned = try await checkDestination(url)
        } catch let error as HubError {
            var refusal = failure({ if case .validation(_, let reason) = error { return reason } else { return "\(error)" } }())
            refusal.refused = true
            return refusal
        } catch is CancellationError {
            return failure("cancelled")
        } catch {
            return failure("the destination could not be checked")
        }
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        // A host given as an address needs no pinning; a name is pinned to each checked address in turn, on a client
        // kept for that (host, address) (TLS still verifies and sends the name). A failed connect moves on to the next
        // address, as RFC 8305 does: nothing was sent on it.
        let isLiteral = IPAddress(pinned.host) != nil
        // The address that answered last time goes first.
        let addresses = isLiteral ? pinned.addresses : await pinnedClients.ordered(pinned.addresses, for: pinned.host)
        for (index, address) in addresses.enumerated() {
            let client = isLiteral
                ? self.client
                : await pinnedClients.client(host: pinned.host, address: address.description, retryConnecting: addresses.count == 1)
            let response: HTTPClientResponse
            do {
                let remaining = timeout - (ContinuousClock.now - start)
                let seconds = max(1, Int64(remaining.components.seconds) + (remaining.components.attoseconds > 0 ? 1 : 0))
                response = try await client.execute(request, timeout: .seconds(seconds))
            } catch let error where Self.isConnectFailure(error) && index + 1 < addresses.count && !Task.isCancelled {
                // No connection, so nothing was sent: the next address may have one.
                continue
            } catch {
                return Self.failed(error, timeout: timeout, failure)
            }
            do {
                var collected = Data()
                var truncated = false
                for try await chunk in response.body {
                    let room = bodyCap - collected.count
                    if chunk.readableBytes > room {
                        collected.append(contentsOf: chunk.readableBytesView.prefix(max(0, room)))
                        truncated = true
                        break
                    }
                    collected.append(contentsOf: chunk.readableBytesView)
                }
                // A status outside 100-599 is no HTTP answer: a protocol error, recorded as a failure (not passed on).
                guard (100...599).contains(Int(response.status.code)) else {
                    return failure("the server answered with an invalid status \(response.status.code)")
                }
                var outcome = HTTPOutcome(
                    statusCode: Int(response.status.code), body: collected, truncated: truncated, elapsedMilliseconds: elapsed(),
                    error: nil)
                outcome.retryAfter = response.headers.first(name: "Retry-After").flatMap(Self.retryAfter)
                let links = response.headers["Link"]
                outcome.link = links.isEmpty ? nil : links.joined(separator: ", ")
                if !isLiteral, index > 0 { await pinnedClients.prefer(address, for: pinned.host) }
                return outcome
            } catch {
                return Self.failed(error, timeout: timeout, failure)
            }
        }
        return failure("the connection failed")
    }

    /// The outcome of an exchange that threw: timed out, or the connection failed.
    private static func failed(_ error: any Error, timeout: Duration, _ failure: (String) -> HTTPOutcome) -> HTTPOutcome {
        if let error = error as? StatusGuard.InvalidStatus { return failure("the server answered with an invalid status \(error.code)") }
        if let error = error as? HTTPClientError, error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            var timedOut = failure("timed out after \(timeout)")
            timedOut.timedOut = true
            return timedOut
        }
        return failure("the connection failed")
    }

    /// `Retry-After` as a delay: delta-seconds, or an HTTP date (RFC 9110) from now; never negative.
    static func retryAfter(_ value: String) -> Duration? {
        // Bounded to a year before any conversion (callers bound it further).
        if let seconds = Int64(value.trimmingCharacters(in: .whitespaces)) { return .seconds(min(max(0, seconds), 31_536_000)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return .milliseconds(Int64(min(max(0, date.timeIntervalSinceNow), 31_536_000) * 1000))
    }

    /// Checks the URL's scheme and every address its host resolves to against the policy; returns the host and the
    /// addresses to connect to, in the resolver's order. - Throws: `validation(url)` with the reason (which never shows a resolved address).
    @discardableResult
    public func checkDestination(_ url: String) async throws -> (host: String, addresses: [IPAddress]) {
        guard let components = URLComponents(string: url), let scheme = components.scheme, let host = components.host, !host.isEmpty
        else {
            throw HubError.validation(field: "url", reason: "is not an absolute URL")
        }
        // Checked again here (stored URLs may predate the rule): the socket layer traps on a port beyond 65535.
        if let port = components.port, !(1...65535).contains(port) {
            throw HubError.validation(field: "url", reason: "has a port outside 1-65535")
        }
        if let refusal = policy.refusal(forScheme: scheme) { throw HubError.validation(field: "url", reason: refusal) }
        return (host, try await checkedAddresses(host, field: "url"))
    }

}

/// HTTP clients whose connections go to one checked address for one host name (AsyncHTTPClient's `dnsOverride`), so
/// repeated calls to a name reuse connections while the name keeps resolving to the same address. At most 64 are
/// kept; the least recently used is shut down first.
actor PinnedClients {
    private var clients: [String: (client: HTTPClient, used: ContinuousClock.Instant)] = [:]
    private var closed = false
    private let connectionsPerHost: Int

    init(connectionsPerHost: Int) { self.connectionsPerHost = connectionsPerHost }

    /// The address of each name that answered after an earlier one failed (at most 1,024 names kept).
    private var preferred: [String: IPAddress] = [:]

    /// `addresses` with the one that answered last for `host` first.
    func ordered(_ addresses: [IPAddress], for host: String) -> [IPAddress] {
        guard let first = preferred[host], let index = addresses.firstIndex(of: first), index > 0 else { return addresses }
        var ordered = addresses
        ordered.remove(at: index)
        ordered.insert(first, at: 0)
        return ordered
    }

    func prefer(_ address: IPAddress, for host: String) {
        if preferred.count >= 1024 { preferred.removeAll() }
        preferred[host] = address
    }

    func client(host: String, address: String, retryConnecting: Bool = true) -> HTTPClient {
        let key = "\(host)\u{0}\(address)\u{0}\(retryConnecting)"
        if let entry = clients[key] {
            clients[key] = (entry.client, .now)
            return entry.client
        }
        let client = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: OutboundGateway.configuration(
                pinning: [host: address], connectionsPerHost: connectionsPerHost, retryConnecting: retryConnecting))
        if closed {
            // Shutting down: serve this call, then close the client.
            Task { try? await Task.sleep(for: .seconds(60)); try? await client.shutdown() }
            return client
        }
        if clients.count >= 64, let oldest = clients.min(by: { $0.value.used < $1.value.used }) {
            clients[oldest.key] = nil
            let evicted = oldest.value.client
            // In-flight requests on the evicted client finish first: shut it down a little later.
            Task { try? await Task.sleep(for: .seconds(60)); try? await evicted.shutdown() }
        }
        clients[key] = (client, .now)
        return client
    }

    func shutdown() async {
        closed = true
        let all = clients.values.map(\.client)
        clients = [:]
        for client in all { try? await client.shutdown() }
    }
}

extension Duration {
    /// The duration in whole milliseconds (rounded down).
    public var wholeMilliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
    public var wholeNanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}

/// `body`'s result, or nil when `timeout` passes first (the body is cancelled).
func withTimeout<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async -> T) async -> T? {
    await withTaskGroup(of: T?.self) { group in
        group.addTask { await body() }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return nil
        }
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}
