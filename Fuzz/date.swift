// Fuzz target `date`: time parsing and formatting of outside values — Sources/HubCore/RFC3339.swift (`parse`, `format`),
// RecordMapping.swift's `date` transform (`normalizedDate`, `parseDateTime`: strings and Unix times from source
// records) and APIOperation.swift's `UTCDay.validate`.
//
// Input: text (first byte 0x08 or above); or a first byte 0x01 then 8 bytes of an Int64 (little-endian), or 0x02 then
// 8 bytes of a Double's bit pattern: a Unix time as a source record's number.
// Crashes: traps. Notes: RFC3339.format's text not read back by RFC3339.parse; a normalized date that normalizes
// to something else.
import Foundation
@testable import HubCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDate(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    if size >= 1, input[0] < 0x08 {
        var raw: UInt64 = 0
        for (index, byte) in input.dropFirst().prefix(8).enumerated() { raw |= UInt64(byte) << (8 * UInt64(index)) }
        switch input[0] {
        case 1: number(.int(Int64(bitPattern: raw)), input)
        case 2: number(.double(Double(bitPattern: raw)), input)
        default: string(text(input.dropFirst()), input)
        }
        return 0
    }
    string(text(input), input)
    return 0
}

private func number(_ value: JSONValue, _ input: UnsafeBufferPointer<UInt8>) {
    if let normalized = RecordMapping.normalizedDate(value) { idempotent(normalized, input) }
    if case .double(let seconds) = value {
        _ = RFC3339.format(Date(timeIntervalSince1970: seconds))
    }
}

private func string(_ text: String, _ input: UnsafeBufferPointer<UInt8>) {
    if let date = try? RFC3339.parse(text, field: "time") {
        let written = RFC3339.format(date)
        if (try? RFC3339.parse(written, field: "time")) == nil {
            note("format-not-parsed", "RFC3339.parse(\(short(text))) = \(date.timeIntervalSince1970), written \(written), which parse refuses", input)
        }
        _ = UTCDay.of(date)
    }
    _ = RecordMapping.parseDateTime(text)
    if let normalized = RecordMapping.normalizedDate(.string(text)) { idempotent(normalized, input) }
    try? UTCDay.validate(text, field: "day")
}

/// A normalized date is RFC 3339 UTC already: normalizing it again changes nothing.
private func idempotent(_ normalized: String, _ input: UnsafeBufferPointer<UInt8>) {
    let again = RecordMapping.normalizedDate(.string(normalized))
    if again != normalized { note("normalized-not-idempotent", "\(normalized) normalizes to \(short(again))", input) }
}
