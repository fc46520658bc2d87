import AsyncHTTPClient
import Foundation
import HubCore
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// How the gateway turns a host name into addresses: a blocking lookup (getaddrinfo by default) that the gateway runs
/// on a thread of its own and abandons when the caller's deadline passes or the caller is cancelled.
public struct Resolver: Sendable {
    /// The addresses of a host name, in the order to try them; empty when it does not resolve. May block.
    let lookup: @Sendable (String) -> [IPAddress]

    public init(_ lookup: @escaping @Sendable (String) -> [IPAddress]) { self.lookup = lookup }

    /// The system's resolver (getaddrinfo: /etc/hosts, DNS), in its order (RFC 6724 address selection).
    public static let system = Resolver { host in
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0 else { return [] }
        defer { freeaddrinfo(result) }
        var addresses: [IPAddress] = []
        var cursor = result
        while let info = cursor?.pointee {
            if info.ai_family == AF_INET, let raw = info.ai_addr {
                var address = raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                if let ip = IPAddress(bytes: withUnsafeBytes(of: &address) { Array($0) }) { addresses.append(ip) }
            } else if info.ai_family == AF_INET6, let raw = info.ai_addr {
                var address = raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                if let ip = IPAddress(bytes: withUnsafeBytes(of: &address) { Array($0) }) { addresses.append(ip) }
            }
            cursor = info.ai_next
        }
        return addresses
    }
}

extension OutboundGateway {
    /// Checks every address `host` resolves to against the policy (for probes that speak other protocols than HTTP);
    /// returns the first address to connect to. - Throws: `validation(field)` with the reason; `CancellationError`.
    public func checkHost(_ host: String, field: String = "endpoint") async throws -> IPAddress {
        try await checkedAddresses(host, field: field)[0]
    }

    /// Every address `host` resolves to, in the resolver's order without repeats, each allowed by the policy.
    /// - Throws: `validation(field)` when it does not resolve or the policy refuses any of its addresses (the reason
    ///   never shows an address); `CancellationError` when the caller is cancelled while the name resolves.
    public func checkedAddresses(_ host: String, field: String = "endpoint") async throws -> [IPAddress] {
        let addresses = try await resolve(host)
        guard !addresses.isEmpty else { throw HubError.validation(field: field, reason: "\(host) does not resolve") }
        for address in addresses {
            if let refusal = policy.refusal(for: address) {
                throw HubError.validation(field: field, reason: "\(host) is \(refusal), which the outbound address policy refuses")
            }
        }
        return addresses
    }

    /// The addresses `host` resolves to (an IP literal resolves to itself), in order, without repeats. The lookup runs
    /// on a thread of its own; a cancelled caller stops waiting for it at once (the lookup's answer is then dropped).
    /// - Throws: `CancellationError`.
    public func resolve(_ host: String) async throws -> [IPAddress] {
        if let literal = IPAddress(host) { return [literal] }
        let lookup = resolver.lookup
        let answer = OneAnswer<[IPAddress]>()
        let found = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                answer.wait(continuation)
                DispatchQueue.global().async { answer.give(.success(lookup(host))) }
            }
        } onCancel: {
            answer.give(.failure(CancellationError()))
        }
        var seen = Set<IPAddress>()
        return found.filter { seen.insert($0).inserted }
    }

    /// Whether `error`, thrown before any answer arrived, says a connection could not be opened (nothing was sent on it),
    /// so the next address may be tried. (On an open connection Linux reports unreachable hosts as soft errors and gives
    /// up on retransmissions after minutes, so these numbers come from connects.)
    static func isConnectFailure(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError { return error == .connectTimeout }
        if error is NIOConnectionError { return true }
        if let error = error as? ChannelError, case .connectTimeout = error { return true }
        if let error = error as? IOError {
            return [ECONNREFUSED, ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL, EAFNOSUPPORT, ETIMEDOUT].contains(error.errnoCode)
        }
        return false
    }
}

/// A continuation resumed exactly once, by whichever comes first: the answer or a cancellation (which may come before
/// the continuation is there).
final class OneAnswer<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Value, any Error>?
    private var early: Result<Value, any Error>?
    private var done = false

    func wait(_ continuation: CheckedContinuation<Value, any Error>) {
        let resume: Result<Value, any Error>? = lock.withLock {
            if let early {
                done = true
                return early
            }
            self.continuation = continuation
            return nil
        }
        if let resume { continuation.resume(with: resume) }
    }

    func give(_ result: Result<Value, any Error>) {
        let waiting: CheckedContinuation<Value, any Error>? = lock.withLock {
            guard !done else { return nil }
            guard let continuation else {
                if early == nil { early = result }
                return nil
            }
            done = true
            self.continuation = nil
            return continuation
        }
        waiting?.resume(with: result)
    }
}
