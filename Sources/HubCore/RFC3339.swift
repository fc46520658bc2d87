import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// RFC 3339 timestamps in UTC with microseconds (the precision the stores keep): `2026-11-27T08:01:56.123456Z`.
/// RFC 3339 timestamps as the API writes and reads them.
public enum RFC3339 {
    /// Parses an RFC 3339 time (with or without fractional seconds). - Throws: `validation(field)`.
    public static func parse(_ text: String, field: String) throws -> Date {
        let plain = ISO8601DateFormatter()
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let date = fractional.date(from: text) ?? plain.date(from: text) else {
            throw HubError.validation(field: field, reason: "must be an RFC 3339 time such as 2026-11-27T08:00:00Z")
        }
        return date
    }

    /// `date` in UTC with microseconds.
    public static func format(_ date: Date) -> String {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down))
        var seconds = time_t(micros / 1_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
            Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(micros % 1_000_000))
    }
}
