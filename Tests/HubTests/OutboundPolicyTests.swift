import HubCore
@testable import HubEngine
import Testing

@Suite("Outbound address policy")
struct OutboundPolicyTests {
    @Test("refused ranges by default, with the reason", arguments: [
        ("127.0.0.1", "loopback"), ("10.0.0.1", "private"), ("172.31.255.255", "private"), ("192.168.1.10", "private"),
        ("169.254.169.254", "cloud metadata"), ("169.254.1.1", "link-local"), ("100.64.0.1", "CGNAT"), ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"), ("::1", "loopback"), ("fe80::1", "link-local"), ("fd12:3456::1", "private"),
        ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.1.2.3", "private"), ("64:ff9b::a9fe:a9fe", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"), ("255.255.255.255", "reserved"),
    ])
    func refused(address: String, reason: String) throws {
        let policy = try OutboundPolicy()
        let ip = try #require(IPAddress(address))
        let refusal = try #require(policy.refusal(for: ip))
        #expect(refusal.contains(reason))
    }

    @Test("public addresses pass", arguments: ["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "[2001:db8::1]"])
    func allowed(address: String) throws {
        let ip = try #require(IPAddress(address))
        #expect(try OutboundPolicy().refusal(for: ip) == nil)
    }

    @Test("an allowlist opens exceptions, and only them")
    func allowlist() throws {
        let policy = try OutboundPolicy(allowlist: ["127.0.0.0/8", "10.1.0.0/16", "::1"])
        #expect(policy.refusal(for: IPAddress("127.0.0.1")!) == nil)
        #expect(policy.refusal(for: IPAddress("10.1.200.3")!) == nil)
        #expect(policy.refusal(for: IPAddress("::1")!) == nil)
        #expect(policy.refusal(for: IPAddress("10.2.0.1")!) != nil)
        #expect(policy.refusal(for: IPAddress("169.254.169.254")!) != nil)
        #expect(throws: HubError.self) { try OutboundPolicy(allowlist: ["10.0.0.0/33"]) }
        #expect(throws: HubError.self) { try OutboundPolicy(allowlist: ["localhost"]) }
        #expect(IPAddress("example.com") == nil)
    }

    @Test("schemes: https always, http unless https is required, nothing else")
    func schemes() throws {
        #expect(try OutboundPolicy().refusal(forScheme: "http") == nil)
        #expect(try OutboundPolicy(requireHTTPS: true).refusal(forScheme: "http") != nil)
        #expect(try OutboundPolicy(requireHTTPS: true).refusal(forScheme: "HTTPS") == nil)
        #expect(try OutboundPolicy().refusal(forScheme: "file") != nil)
    }
}

@Suite("Connection endpoints for probes")
struct ProbeEndpointTests {
    @Test("URL and host:port forms give the host and port validation accepted", arguments: [
        ("postgres://db.example.com:6543?sslmode=require", ConnectionType.DB, "db.example.com", 6543),
        ("postgres://db.example.com?sslmode=require", .DB, "db.example.com", 5432),
        ("postgresql://db.example.com/hr", .DB, "db.example.com", 5432),
        ("ftp://files.example.com", .FTP, "files.example.com", 21),
        ("sftp://files.example.com:2222", .SFTP, "files.example.com", 2222),
        ("files.example.com:21", .FTP, "files.example.com", 21),
        ("tcp://ldap.example.com:389", .TCP, "ldap.example.com", 389),
        ("[::1]:5432", .TCP, "::1", 5432),
    ])
    func parse(endpoint: String, type: ConnectionType, host: String, port: Int) throws {
        let parsed = try ConnectivityTester.hostAndPort(endpoint, type: type)
        #expect(parsed.0 == host)
        #expect(parsed.1 == port)
    }

    @Test("more refused ranges: site-local, IPv4-compatible, local NAT64, Teredo, and 6to4 embedding a private address")
    func ranges() throws {
        let policy = try OutboundPolicy()
        for address in ["fec0::1", "::7f00:1", "64:ff9b:1::a00:1", "2001::1", "2002:7f00:1::1", "2002:a00:1::1"] {
            #expect(policy.refusal(for: IPAddress(address)!) != nil, "\(address)")
        }
        #expect(policy.refusal(for: IPAddress("2002:5db8:d822::1")!) == nil)
    }
}

@Suite("Pinned clients")
struct PinnedClientsTests {
    @Test("one client per host and checked address, reused; a new address gets a new client")
    func reuse() async throws {
        let pool = PinnedClients(connectionsPerHost: 8)
        let first = await pool.client(host: "api.example.com", address: "93.184.216.34")
        let again = await pool.client(host: "api.example.com", address: "93.184.216.34")
        let moved = await pool.client(host: "api.example.com", address: "93.184.216.35")
        #expect(first === again)
        #expect(first !== moved)
        await pool.shutdown()
    }
}
