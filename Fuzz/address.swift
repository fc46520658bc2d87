// Fuzz target `address`: Sources/HubCore/OutboundPolicy.swift — IPAddress and CIDR parsing (the outbound allowlist,
// addresses checked against the policy) and the policy's refusals.
//
// Input: lines of text, each read as an address and as a network; all of them together as an allowlist.
// Crashes: traps; an address whose description does not parse back to it. Notes: text with a NUL accepted (the C
// parser reads only up to it).
import Foundation
@testable import HubCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAddress(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    let lines = input.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).prefix(8).map { text($0) }
    let policy = OutboundPolicy.defaultForFuzzing
    var networks: [CIDR] = []
    for line in lines {
        if let address = IPAddress(line) {
            if line.utf8.contains(0) { note("nul-accepted", "IPAddress(\(short(line))) = \(address)", input) }
            guard let again = IPAddress(address.description), again == address else {
                defect("\(address) (from \(short(line))) does not parse back", input)
            }
            _ = address.embeddedIPv4
            _ = policy.refusal(for: address)
            for network in networks { _ = network.contains(address) }
        }
        if let network = try? CIDR(line) { networks.append(network) }
        _ = policy.refusal(forScheme: line)
    }
    if let custom = try? OutboundPolicy(allowlist: lines, requireHTTPS: true) {
        for network in custom.allowlist { _ = custom.refusal(for: network.network) }
    }
    return 0
}

extension OutboundPolicy {
    static let defaultForFuzzing = try! OutboundPolicy(allowlist: ["127.0.0.0/8"])
}
