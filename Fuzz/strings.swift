// Fuzz target `strings`: validation of strings from outside, Sources/HubCore — Validation.swift (URLs, origins,
// tokens, header names and values), APIOperation.swift (endpoints, query redaction) and LatencyHistogram.swift
// (endpoint templates), SystemConnection.swift (endpoints per connection type), Webhook.swift / WebhookDelivery.swift
// (event patterns, secrets, message ids), APIKey.swift (presented tokens), Identifier.swift, SyncJob.swift and
// Integration.swift (entity and integration types).
//
// Input: a first byte choosing the group (its value modulo 6: ASCII '0'…'5'), then the text.
// Crashes: traps; a redacted endpoint that redacts differently a second time.
import Foundation
@testable import HubCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStrings(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    guard size >= 1 else { return 0 }
    let value = text(input.dropFirst())
    switch input[0] % 6 {
    case 0:
        if let url = try? Validate.httpURL(value, field: "url") { _ = url.absoluteString }
        _ = Validate.origin(of: value)
    case 1:
        try? APIOperation.validateEndpoint(value)
        let redacted = APIOperation.redactQuery(value)
        if APIOperation.redactQuery(redacted) != redacted { defect("redactQuery is not idempotent: \(short(redacted))", input) }
        _ = APIOperation.template(for: value)
        _ = APIOperation.template(for: redacted)
    case 2:
        try? Validate.token(value, field: "name")
        try? Validate.nonEmpty(value, field: "name")
        _ = Validate.isHeaderName(value)
        _ = Validate.isHeaderValue(value)
        _ = Validate.isLineSafe(value)
        _ = Validate.isReservedHeader(value)
        _ = AuthConfig.mask(value)
    case 3:
        for type in ConnectionType.allCases { try? SystemConnection.validateEndpoint(value, type: type) }
    case 4:
        _ = Webhook.isValidEventPattern(value)
        _ = EventCatalog.isKnown(value)
        try? Webhook.validateEventTypes([value])
        try? WebhookSecret.validate(value, field: "secret")
        _ = try? WebhookMessage.sequence(of: value)
    default:
        _ = APIKey.keyID(of: value)
        _ = try? IntegrationID(parsing: value, field: "id")
        try? SyncJob.validateEntityType(value)
        try? Integration.validateType(value)
    }
    return 0
}
