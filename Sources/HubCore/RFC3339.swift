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

    /// Parses an RFC 3339 `date-time` (§5.6) in the years 0001 to 9999, strictly: a real calendar day, hours 00-23,
    /// minutes 00-59, seconds 00-59 (60 only at 23:59 UTC, a leap second, read as the next second), optional fractional seconds (kept to the
    /// microsecond), and `Z` or a `±hh:mm` offset; `T` and `Z` in either case.
    /// - Throws: `validation(field)`.
    public static func parse(_ text: String, field: String) throws -> Date {
        guard let micros = microseconds(Array(text.utf8)) else {
            throw HubError.validation(field: field, reason: "must be an RFC 3339 time such as 2026-11-27T08:00:00Z")
        }
        guard validMicroseconds.contains(micros) else {
            throw HubError.validation(field: field, reason: "must be in the years 0001 to 9999")
        }
        let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        let date = Date(timeIntervalSince1970: Double(seconds) + Double(micros - seconds * 1_000_000) / 1e6)
        // A Double cannot hold every microsecond of year 9999: the last ones would round up into year 10000.
        let last = Double(validMicroseconds.upperBound / 1_000_000) + 1
        return date.timeIntervalSince1970 < last ? date : Date(timeIntervalSince1970: last.nextDown)
    }

    /// Microseconds since 1970 of an RFC 3339 `date-time`, `nil` when `bytes` is not one. Every number is at most four
    /// digits, so nothing here can overflow.
    static func microseconds(_ bytes: [UInt8]) -> Int64? {
        var index = 0
        func digits(_ count: Int) -> Int64? {
            guard index + count <= bytes.count else { return nil }
            var value: Int64 = 0
            for _ in 0..<count {
                let byte = bytes[index]
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int64(byte - 0x30)
                index += 1
            }
            return value
        }
        func expect(_ characters: String) -> Bool {
            guard index < bytes.count, characters.utf8.contains(bytes[index]) else { return false }
            index += 1
            return true
        }
        guard let year = digits(4), expect("-"), let month = digits(2), expect("-"), let day = digits(2), expect("Tt"),
            let hour = digits(2), expect(":"), let minute = digits(2), expect(":"), let second = digits(2),
            (1...9999).contains(year), (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day),
            hour <= 23, minute <= 59, second <= 60
        else { return nil }
        var fraction: Int64 = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            var scale: Int64 = 100_000
            let start = index
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                fraction += Int64(bytes[index] - 0x30) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        var offset: Int64 = 0
        if expect("Zz") {
        } else if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            let sign: Int64 = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            index += 1
            guard let hours = digits(2), expect(":"), let minutes = digits(2), hours <= 23, minutes <= 59 else { return nil }
            offset = sign * (hours * 3600 + minutes * 60)
        } else {
            return nil
        }
        guard index == bytes.count else { return nil }
        // A leap second is the last second of a UTC day: 23:59:60 in UTC, whatever the offset it is written in.
        if second == 60, ((hour * 60 + minute - offset / 60) % 1440 + 1440) % 1440 != 1439 { return nil }
        let seconds = daysSince1970(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second - offset
        return seconds * 1_000_000 + fraction
    }

    static func isLeapYear(_ year: Int64) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    static func daysSince1970(year: Int64, month: Int64, day: Int64) -> Int64 {
        let shifted = month <= 2 ? year - 1 : year
        let era = (shifted >= 0 ? shifted : shifted - 399) / 400
        let yearOfEra = shifted - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
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
