import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address as its network-order bytes (4 or 16).
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes for IPv4, 16 for IPv6.
    public let bytes: [UInt8]

    /// Parses dotted IPv4 or textual IPv6 (brackets allowed). Returns `nil` for anything else (a host name).
    public init?(_ text: String) {
        // inet_pton reads a C string: it would stop at a NUL and take what precedes it.
        guard !text.utf8.contains(0) else { return nil }
        var text = text
        if text.hasPrefix("["), text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            return nil
        }
    }

    /// An address from raw bytes (4 or 16).
    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// The IPv4 address an IPv6 address embeds (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4
    /// `2002:aabb:ccdd::`), if any.
    public var embeddedIPv4: IPAddress? {
        guard bytes.count == 16 else { return nil }
        let mapped = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff
        let nat64 = bytes[0..<12] == [0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0][...]
        if mapped || nat64 { return IPAddress(bytes: Array(bytes[12..<16])) }
        if bytes[0] == 0x20, bytes[1] == 0x02 { return IPAddress(bytes: Array(bytes[2..<6])) }
        return nil
    }

    public var description: String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: 16, by: 2).map { String(format: "%x", UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1])) }
            .joined(separator: ":")
    }
}

/// A network in CIDR notation (`10.0.0.0/8`, `fd00::/8`).
public struct CIDR: Sendable, Hashable {
    public let network: IPAddress
    public let prefixLength: Int

    /// Parses `address/prefix` (a bare address is a single-host network). - Throws: `validation(field)`.
    public init(_ text: String, field: String = "allowlist") throws {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let address = IPAddress(parts[0]) else {
            throw HubError.validation(field: field, reason: "\(text) is not an IP network in CIDR notation")
        }
        let maximum = address.bytes.count * 8
        let length = parts.count == 2 ? Int(parts[1]) : maximum
        guard let length, (0...maximum).contains(length) else {
            throw HubError.validation(field: field, reason: "\(text) has an invalid prefix length")
        }
        network = address
        prefixLength = length
    }

    /// Whether `address` (of the same family) lies in this network.
    public func contains(_ address: IPAddress) -> Bool {
        guard address.bytes.count == network.bytes.count else { return false }
        var remaining = prefixLength
        for index in network.bytes.indices where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xff << (8 - bits))
            if address.bytes[index] & mask != network.bytes[index] & mask { return false }
            remaining -= bits
        }
        return true
    }
}

/// Where outbound requests may go. By default every public address is allowed and loopback, private, link-local,
/// CGNAT, multicast, reserved and cloud-metadata addresses are refused; an allowlist of networks opens exceptions
/// (tests and local development allow `127.0.0.0/8`). The gateway checks the address it actually connects to.
public struct OutboundPolicy: Sendable {
    /// Networks allowed even though they are in a refused range.
    public var allowlist: [CIDR]
    /// Whether plain `http` is refused.
    public var requireHTTPS: Bool

    /// A policy with `allowlist` (CIDR strings) and the https requirement. - Throws: `validation(allowlist)`.
    public init(allowlist: [String] = [], requireHTTPS: Bool = false) throws {
        self.allowlist = try allowlist.map { try CIDR($0) }
        self.requireHTTPS = requireHTTPS
    }

    /// Refused ranges, each with the reason given in refusals.
    static let refused: [(CIDR, String)] = [
        ("169.254.169.254/32", "a cloud metadata address"), ("fd00:ec2::254/128", "a cloud metadata address"),
        ("0.0.0.0/8", "an unspecified address"), ("127.0.0.0/8", "a loopback address"), ("10.0.0.0/8", "a private address"),
        ("172.16.0.0/12", "a private address"), ("192.168.0.0/16", "a private address"),
        ("100.64.0.0/10", "a shared (CGNAT) address"), ("169.254.0.0/16", "a link-local address"),
        ("192.0.0.0/24", "a reserved address"), ("198.18.0.0/15", "a reserved address"), ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"), ("::/128", "an unspecified address"), ("::1/128", "a loopback address"),
        ("fc00::/7", "a private address"), ("fe80::/10", "a link-local address"), ("ff00::/8", "a multicast address"),
        ("fec0::/10", "a private (site-local) address"), ("::/96", "a reserved address"), ("64:ff9b:1::/48", "a reserved address"),
        ("2001::/32", "a reserved (Teredo) address"),
    ].map { (try! CIDR($0.0), $0.1) }

    /// `nil` when `address` may be connected to, else what kind of address it is (`a loopback address`). The address
    /// itself is not repeated, so messages built from it do not reveal how internal names resolve.
    public func refusal(for address: IPAddress) -> String? {
        if allowlist.contains(where: { $0.contains(address) }) { return nil }
        if let embedded = address.embeddedIPv4 { return refusal(for: embedded) }
        return Self.refused.first(where: { $0.0.contains(address) })?.1
    }

    /// `nil` when the URL's scheme is allowed, else the reason.
    public func refusal(forScheme scheme: String) -> String? {
        switch scheme.lowercased() {
        case "https": return nil
        case "http": return requireHTTPS ? "plain http is refused: the outbound policy requires https" : nil
        default: return "the \(scheme) scheme is not allowed"
        }
    }
}
