// Fuzz target `config`: JSON configuration members validated on their way in, Sources/HubCore — AuthConfig.swift
// (`auth_config`), Webhook.swift (`retry_config`, headers), SystemConnection.swift (credentials, probe),
// APIOperation.swift (operation headers and payload), Validation.swift (header maps, NUL checks) and
// SyncConfiguration.swift (`mapping_config`).
//
// Input: a JSON document (Sources/HubCore/JSONParser.swift reads it first).
// Crashes: traps; a value whose NUL-free copy still holds a NUL.
import Foundation
@testable import HubCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    guard let json = try? JSONParser.parse(input) else { return 0 }
    if let auth = try? AuthConfig(json: json) {
        _ = auth.masked
        _ = auth.json
    }
    if let retry = try? RetryConfig(json: json) {
        for attempt in 0...25 { _ = retry.delay(afterFailedAttempts: attempt) }
        _ = retry.timeout
    }
    _ = RetryConfig.resolved(json)
    _ = try? Validate.headers(json, field: "headers")
    try? Webhook.validateHeaders(json)
    _ = Webhook.mask(headers: json)
    try? SystemConnection.validateProbe(json, type: .API)
    _ = SystemConnection.mask(credentials: json)
    try? SystemConnection.validateLineCredentials(json)
    try? ConnectionRegistration(systemName: "fuzz", connectionType: .API, endpoint: "https://example.com", credentials: json).validate()
    _ = try? APIOperationRequest(operationType: .POST, endpoint: "/x", headers: json, payload: json).validate()
    _ = try? APIOperation.pending(
        for: APIOperationRequest(operationType: .POST, endpoint: "/x", headers: json), at: Date(timeIntervalSince1970: 0))
    try? Validate.noNUL(json, field: "payload")
    if json.replacingNUL.containsNUL { defect("replacingNUL leaves a NUL", input) }
    try? Validate.objectIfPresent(json, field: "x")
    _ = try? SyncConfiguration.parse(json)
    _ = try? SyncConfiguration.parse(.object(["connector": json]))
    return 0
}
