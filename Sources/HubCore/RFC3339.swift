import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// RFC 3339 timestamps as the API writes and reads them: written in UTC with microseconds (the precision the stores
/// keep), `2026-11-27T08:01:56.123456Z`.
public enum RFC3339 {
    /// Microseconds since 1970 of 0001-01-01T00:00:00Z through 9999-12-31T23:59:59.999999Z: every time the hub accepts
    /// from outside lies in these years (RFC 3339's four-digit years), so no later conversion can overflow.
    public static let validMicroseconds: ClosedRange<Int64> = -62_135_596_800_000_000...253_402_300_799_999_999

    /// Parses an RFC 3339 time (with or without fractional seconds) in the years 0001 to 9999.
    /// - Throws: `validation(field)`.
    public static func parse(_ text: String, field: String) throws -> Date {
        let plain = ISO8601DateFormatter()
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let date = fractional.date(from: text) ?? plain.date(from: text) else {
            throw HubError.validation(field: field, reason: "must be an RFC 3339 time such as 2026-11-27T08:00:00Z")
        }
        let seconds = date.timeIntervalSince1970
        guard seconds >= Double(validMicroseconds.lowerBound) / 1e6, seconds <= Double(validMicroseconds.upperBound) / 1e6 else {
            throw HubError.validation(field: field, reason: "must be in the years 0001 to 9999")
        }
        return date
    }

    /// `date` in UTC with microseconds, written digit by digit (`String(format:)` cost about 5 µs a call, once per
    /// webhook message body among others).
    public static func format(_ date: Date) -> String {
        // Clamped before converting (a stored date need not be one the API accepted): ±9.2e18 µs is ±292,000 years.
        let raw = (date.timeIntervalSince1970 * 1_000_000).rounded(.down)
        let micros = raw.isFinite ? Int64(min(max(raw, -9.2e18), 9.2e18)) : 0
        var seconds = time_t(micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let fraction = Int(micros - Int64(seconds) * 1_000_000)
        let year = Int(parts.tm_year) + 1900
        guard (0...9999).contains(year) else {
            // Outside RFC 3339's four-digit years (a far "forever" given with an offset, say): written as it comes.
            return String(
                format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", year, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), fraction)
        }
        let fields: [(value: Int, digits: Int, separator: UInt8)] = [
            (year, 4, UInt8(ascii: "-")), (Int(parts.tm_mon) + 1, 2, UInt8(ascii: "-")),
            (Int(parts.tm_mday), 2, UInt8(ascii: "T")), (Int(parts.tm_hour), 2, UInt8(ascii: ":")),
            (Int(parts.tm_min), 2, UInt8(ascii: ":")), (Int(parts.tm_sec), 2, UInt8(ascii: ".")), (fraction, 6, UInt8(ascii: "Z")),
        ]
        return String(unsafeUninitializedCapacity: 27) { buffer in
            var index = 0
            for field in fields {
                var value = field.value
                for position in stride(from: index + field.digits - 1, through: index, by: -1) {
                    buffer[position] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
                index += field.digits
                buffer[index] = field.separator
                index += 1
            }
            return index
        }
    }
}
