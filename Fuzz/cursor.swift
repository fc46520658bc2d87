// Fuzz target `cursor`: the list cursor, Sources/HubStore/PageCursor.swift `PageCursor(parsing:)` (a `cursor` query
// parameter of every list), and its `encoded` form read back.
//
// Input: the cursor text.
// Crashes: traps. Notes: an accepted cursor whose re-encoded form is refused or names another position (a time is held
// as a Double of seconds, exact to the microsecond only up to about 2^53 µs, the year 2255).
import Foundation
@testable import HubCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCursor(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    let cursorText = text(input)
    guard let cursor = try? PageCursor(parsing: cursorText) else { return 0 }
    let encoded = cursor.encoded
    guard let again = try? PageCursor(parsing: encoded) else {
        note("re-encoded-refused", "\(short(cursorText)) re-encodes as \(encoded), which is refused", input)
        return 0
    }
    if again.id != cursor.id || SQLValue.microseconds(again.createdAt) != SQLValue.microseconds(cursor.createdAt) {
        note("cursor-moves", "\(short(cursorText)) re-encodes as \(encoded), another position", input)
    }
    return 0
}
