// Shared by every fuzz target (compiled into each one's module; see scripts/fuzz.sh).
import Foundation

/// Stops the run as a crash: a broken invariant of the code under test (libFuzzer saves the input as `crash-*`).
func defect(_ message: @autoclosure () -> String, _ input: UnsafeBufferPointer<UInt8>) -> Never {
    let text = "FUZZ-DEFECT: \(message())\n  input (base64): \(Data(input).base64EncodedString())\n"
    FileHandle.standardError.write(Data(text.utf8))
    fatalError("FUZZ-DEFECT")
}

/// How many notes of each kind were printed (a few of each, so a log stays readable).
nonisolated(unsafe) private var printedNotes: [String: Int] = [:]
/// Whether notes stop the run (`FUZZ_STRICT=1`, to minimise a note's input with libFuzzer).
private let strictNotes = ProcessInfo.processInfo.environment["FUZZ_STRICT"] == "1"

/// A difference worth a look that is not a crash (an oracle disagreeing in a known-legitimate way, say): printed as
/// `FUZZ-NOTE[kind]` with the input in base64, at most three times per kind, never stopping the run unless
/// `FUZZ_STRICT=1`.
func note(_ kind: String, _ detail: @autoclosure () -> String, _ input: UnsafeBufferPointer<UInt8>) {
    if strictNotes { defect("note \(kind): \(detail())", input) }
    let count = printedNotes[kind, default: 0]
    printedNotes[kind] = count + 1
    guard count < 3 else { return }
    let text = "FUZZ-NOTE[\(kind)]: \(detail())\n  input (base64): \(Data(input).base64EncodedString())\n"
    FileHandle.standardError.write(Data(text.utf8))
}

/// The input as text, invalid UTF-8 repaired (as a server's request decoding would leave it).
func text(_ bytes: some Collection<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }

/// The input split at its first NUL byte (a header, such as a path or a configuration, and a document), or nil
/// when it has none.
func splitAtNUL(_ input: UnsafeBufferPointer<UInt8>) -> (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>)? {
    guard let nul = input.firstIndex(of: 0) else { return nil }
    return (UnsafeBufferPointer(rebasing: input[..<nul]), UnsafeBufferPointer(rebasing: input[(nul + 1)...]))
}

/// A short rendering of a value for messages, control characters escaped.
func short(_ value: Any?) -> String {
    var text = ""
    for scalar in (value.map { String(describing: $0) } ?? "nil").unicodeScalars.prefix(300) {
        if scalar.properties.generalCategory == .control { text += "\\u{\(String(scalar.value, radix: 16))}" } else { text.unicodeScalars.append(scalar) }
    }
    return text
}
