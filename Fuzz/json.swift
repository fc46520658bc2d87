// Fuzz target `json`: Sources/HubCore/JSONParser.swift's whole-document parse on arbitrary bytes.
//
// Crashes (defects): traps in the parser; a parsed value whose canonical text (CanonicalJSON.swift) does not parse back
// to the same value; the same bytes parsing differently through a contiguous and a non-contiguous collection.
// Notes (not crashes): disagreements with Foundation's JSONSerialization, by kind (see `compare`).
import Foundation
@testable import HubCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    let ours = try? JSONParser.parse(input)

    // The same bytes through the copying path (a collection without contiguous storage).
    if size <= 4096 {
        let other = try? JSONParser.parse(input.lazy.map { $0 })
        if other != ours { defect("contiguous and non-contiguous parses differ: \(short(ours)) vs \(short(other))", input) }
    }

    if let ours {
        // Canonical text parses back to the same value.
        let canonical = ours.jsonText
        guard let again = try? JSONParser.parse(Array(canonical.utf8)) else {
            defect("canonical text does not parse: \(short(canonical))", input)
        }
        if again != ours { defect("canonical text parses to another value: \(short(ours)) vs \(short(again))", input) }
    }

    // Foundation's parser as an oracle.
    let theirs = try? JSONSerialization.jsonObject(with: Data(input), options: [.fragmentsAllowed])
    switch (ours, theirs) {
    case (nil, nil): break
    case (let value?, nil):
        note(acceptKind(input), "ours accepts \(short(value)), JSONSerialization rejects", input)
    case (nil, let value?):
        note(rejectKind(input), "ours rejects, JSONSerialization accepts \(short(value))", input)
    case (let value?, let other?):
        if let difference = compare(value, other, at: "$") { note("values-differ", difference, input) }
    }
    return 0
}

/// Why ours may accept what JSONSerialization refuses: documented leniencies, else `accepts-UNEXPECTED`.
private func acceptKind(_ input: UnsafeBufferPointer<UInt8>) -> String {
    if String(validating: input, as: UTF8.self) == nil { return "accepts-invalid-UTF-8 (decoded with U+FFFD)" }
    if hasSurrogateEscape(input) { return "accepts-surrogate-escape (lone surrogate read as U+FFFD)" }
    return "accepts-UNEXPECTED"
}

/// Why ours may refuse what JSONSerialization reads (a byte order mark, UTF-16/32, deep nesting), else
/// `rejects-UNEXPECTED`.
private func rejectKind(_ input: UnsafeBufferPointer<UInt8>) -> String {
    if input.starts(with: [0xEF, 0xBB, 0xBF]) { return "rejects-BOM" }
    if input.contains(0) || input.starts(with: [0xFE, 0xFF]) || input.starts(with: [0xFF, 0xFE]) { return "rejects-UTF-16-or-32" }
    if input.filter({ $0 == UInt8(ascii: "[") || $0 == UInt8(ascii: "{") }).count > 512 { return "rejects-deep-nesting" }
    if hasTrailingComma(input) { return "rejects-trailing-comma (JSONSerialization allows one)" }
    return "rejects-UNEXPECTED"
}

/// Whether a comma is followed (after whitespace) by a closing bracket or brace, outside strings or not: a hint only.
private func hasTrailingComma(_ input: UnsafeBufferPointer<UInt8>) -> Bool {
    var afterComma = false
    for byte in input {
        switch byte {
        case UInt8(ascii: ","): afterComma = true
        case 0x20, 0x0A, 0x0D, 0x09: continue
        case UInt8(ascii: "]"), UInt8(ascii: "}"): if afterComma { return true }
        default: afterComma = false
        }
    }
    return false
}

private func hasSurrogateEscape(_ input: UnsafeBufferPointer<UInt8>) -> Bool {
    guard input.count >= 4 else { return false }
    for index in 0..<(input.count - 3) where input[index] == UInt8(ascii: "\\") && (input[index + 1] | 0x20) == UInt8(ascii: "u") {
        if (input[index + 2] | 0x20) == UInt8(ascii: "d"), (UInt8(ascii: "8")...UInt8(ascii: "9")).contains(input[index + 3])
            || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(input[index + 3] | 0x20)
        {
            return true
        }
    }
    return false
}

/// JSONSerialization keeps a number of many digits as an NSDecimalNumber, whose `doubleValue` is not correctly rounded
/// (ours is, through `Double(_: String)`): such a number only has to be close.
private func closeDecimal(_ number: NSNumber, _ value: Double) -> Bool {
    guard number is NSDecimalNumber else { return false }
    return abs(number.doubleValue - value) <= abs(value) * 1e-12
}

/// Where `ours` and JSONSerialization's `theirs` differ, or nil. Numbers compare as doubles (JSONSerialization keeps
/// large integers as unsigned or decimal numbers); true/false are NSNumbers whose type is `c`.
private func compare(_ ours: JSONValue, _ theirs: Any, at path: String) -> String? {
    switch ours {
    case .null:
        return theirs is NSNull ? nil : "\(path): null vs \(short(theirs))"
    case .bool(let flag):
        guard let number = theirs as? NSNumber, String(cString: number.objCType) == "c", number.boolValue == flag else {
            return "\(path): \(flag) vs \(short(theirs))"
        }
        return nil
    case .int(let integer):
        guard let number = theirs as? NSNumber, String(cString: number.objCType) != "c" else { return "\(path): \(integer) vs \(short(theirs))" }
        if number.doubleValue == Double(integer) || closeDecimal(number, Double(integer)) { return nil }
        return "\(path): int \(integer) vs \(number) (\(String(cString: number.objCType)))"
    case .double(let value):
        guard let number = theirs as? NSNumber, String(cString: number.objCType) != "c" else { return "\(path): \(value) vs \(short(theirs))" }
        if number.doubleValue == value || closeDecimal(number, value) { return nil }
        return "\(path): double \(value) vs \(number) (\(String(cString: number.objCType)))"
    case .string(let text):
        guard let other = theirs as? String else { return "\(path): string vs \(short(theirs))" }
        return other == text ? nil : "\(path): \(short(text.unicodeScalars.map { String($0.value, radix: 16) })) vs \(short(other.unicodeScalars.map { String($0.value, radix: 16) }))"
    case .array(let elements):
        guard let other = theirs as? [Any] else { return "\(path): array vs \(short(theirs))" }
        guard other.count == elements.count else { return "\(path): \(elements.count) vs \(other.count) elements" }
        for (index, element) in elements.enumerated() {
            if let difference = compare(element, other[index], at: "\(path)[\(index)]") { return difference }
        }
        return nil
    case .object(let members):
        guard let other = theirs as? [String: Any] else { return "\(path): object vs \(short(theirs))" }
        guard Set(other.keys) == Set(members.keys) else {
            return "\(path): keys \(short(members.keys.sorted())) vs \(short(other.keys.sorted()))"
        }
        for (key, member) in members {
            if let difference = compare(member, other[key]!, at: "\(path).\(key)") { return difference }
        }
        return nil
    }
}
