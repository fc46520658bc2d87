import Foundation
import HubCore
@testable import HubEngine
import HubStore
import Testing

/// Name resolution on the outbound path: every address in the resolver's order, a failed connect falling back to the
/// next (RFC 8305), and resolution within the request's deadline. Names resolve through a resolver given to the gateway
/// (the machine's own DNS cannot be made slow or dual-stack here); it fails the test on any name it was not told about.
@Suite("Outbound name resolution", .timeLimit(.minutes(10)))
struct ResolutionTests {
    static let loopback = try! OutboundPolicy(allowlist: ["127.0.0.0/8"])

    /// Resolves `name` to `addresses`; anything else is a test failure.
    static func resolver(_ name: String, _ addresses: [String]) -> Resolver {
        Resolver { host in
            guard host == name else {
                Issue.record("unexpected lookup of \(host)")
                return []
            }
            return addresses.map { IPAddress($0)! }
        }
    }

    /// A lookup that blocks its thread as a getaddrinfo waiting on a dead DNS server does, until released.
    final class BlockedLookup: @unchecked Sendable {
        let release = DispatchSemaphore(value: 0)
        private let lock = NSLock()
        private var finished = false
        var isFinished: Bool { lock.withLock { finished } }

        var resolver: Resolver {
            Resolver { host in
                #expect(host == "slow.test")
                _ = self.release.wait(timeout: .now() + 120)
                self.lock.withLock { self.finished = true }
                return [IPAddress("127.0.0.1")!]
            }
        }
    }

    @Test("HTTP: a refused connect to the first address falls back to the next, in the resolver's order")
    func httpFallback() async throws {
        try await TargetServer.with { _, base in
            let port = try #require(URL(string: base)?.port)
            // 127.0.0.2 is loopback too, but nothing listens there: the connect is refused.
            let gateway = OutboundGateway(policy: Self.loopback, resolver: Self.resolver("dual.test", ["127.0.0.2", "127.0.0.1"]))
            for _ in 0..<3 {
                let outcome = await gateway.send(method: "GET", url: "http://dual.test:\(port)/json", timeout: .seconds(30))
                #expect(outcome.statusCode == 200, "\(outcome.error ?? "")")
            }
            // Every address is checked by the policy before any is tried: one refused address refuses the name.
            let mixed = OutboundGateway(policy: Self.loopback, resolver: Self.resolver("mixed.test", ["127.0.0.1", "10.0.0.1"]))
            let refused = await mixed.send(method: "GET", url: "http://mixed.test:\(port)/json")
            #expect(refused.refused && refused.statusCode == nil)
            try await gateway.shutdown()
            try await mixed.shutdown()
        }
    }

    @Test("HTTP: resolution counts against the deadline; the request ends while the lookup is still blocked")
    func httpResolutionDeadline() async throws {
        let lookup = BlockedLookup()
        let gateway = OutboundGateway(policy: Self.loopback, resolver: lookup.resolver)
        let outcome = await gateway.send(method: "GET", url: "http://slow.test:1/", timeout: .seconds(1))
        #expect(!lookup.isFinished)
        #expect(outcome.timedOut && outcome.statusCode == nil, "\(outcome)")
        lookup.release.signal()
        try await gateway.shutdown()
    }

    @Test("probes: resolution within the probe's time, and a TCP probe falls back to the next address")
    func probes() async throws {
        let stores = try await TestEnvironment.stores(.sqlite)
        @Sendable func connection(_ endpoint: String, _ type: ConnectionType = .TCP) async throws -> SystemConnection {
            try await stores.connections.create(ConnectionRegistration(
                systemName: unique("r"), connectionType: type, endpoint: endpoint, credentials: [:]))
        }
        let lookup = BlockedLookup()
        let slowGateway = OutboundGateway(policy: Self.loopback, resolver: lookup.resolver)
        let stuck = await HealthProber(gateway: slowGateway, timeout: .seconds(1)).probe(try await connection("slow.test:22"), credentials: [:])
        #expect(!lookup.isFinished)
        #expect(stuck.status == .down && stuck.reason.contains("did not resolve within"), "\(stuck.reason)")
        lookup.release.signal()
        try await slowGateway.shutdown()

        let dualGateway = OutboundGateway(policy: Self.loopback, resolver: Self.resolver("dual.test", ["127.0.0.2", "127.0.0.1"]))
        try await LineServer.ssh { port in
            // SSH: the probe reads the server's identification, so the server has served the connection before it
            // stops (a connection NIO's server accepts and drops unserved at close is a fatal error in NIO).
            let result = await HealthProber(gateway: dualGateway, timeout: .seconds(20)).probe(
                try await connection("dual.test:\(port)", .SFTP), credentials: [:])
            #expect(result.status == .healthy && result.reason.hasPrefix("SSH identification"), "\(result.reason)")
        }
        try await dualGateway.shutdown()
    }
}
