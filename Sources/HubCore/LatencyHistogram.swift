import Foundation

/// A fixed latency histogram: counts per bucket with these inclusive upper bounds in milliseconds, the last bucket
/// open-ended. Fixed bounds make histograms add up across rows, days and processes, so percentiles merge exactly as
/// the counts do.
public enum LatencyHistogram {
    /// Upper bounds of the first 14 buckets, in milliseconds; bucket 14 holds everything slower.
    public static let bounds: [Int64] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000]
    /// Number of buckets (15).
    public static let bucketCount = bounds.count + 1

    /// The bucket of a latency in milliseconds.
    public static func bucket(for milliseconds: Int64) -> Int {
        bounds.firstIndex { milliseconds <= $0 } ?? bounds.count
    }

    /// The `p`-quantile (0 < p ≤ 1) of the latencies counted in `buckets`, interpolated linearly inside its bucket and
    /// kept within [`minimum`, `maximum`]; `nil` when nothing was counted. The true value lies in the same bucket.
    public static func percentile(_ p: Double, buckets: [Int64], minimum: Int64, maximum: Int64) -> Double? {
        let total = buckets.reduce(0, +)
        guard total > 0, buckets.count == bucketCount else { return nil }
        let rank = max(1, Int64((p * Double(total)).rounded(.up)))
        var seen: Int64 = 0
        for (index, count) in buckets.enumerated() where count > 0 {
            if seen + count >= rank {
                let lower = Double(index == 0 ? 0 : bounds[index - 1])
                let upper = Double(index < bounds.count ? bounds[index] : max(maximum, bounds.last!))
                let fraction = Double(rank - seen) / Double(count)
                let estimate = lower + (upper - lower) * fraction
                return min(max(estimate, Double(minimum)), Double(maximum))
            }
            seen += count
        }
        return Double(maximum)
    }
}

extension APIOperation {
    /// The statistics key of an endpoint: the query and fragment dropped, and every path segment that looks like an
    /// identifier (digits, a UUID, hex of 8 or more characters with a digit, or 16 or more letters and digits mixing
    /// both) replaced by `{id}`, so `/users/42` and `/users/43` count together as `/users/{id}`.
    public static func template(for endpoint: String) -> String {
        var text = endpoint
        if let cut = text.firstIndex(where: { $0 == "?" || $0 == "#" }) { text = String(text[..<cut]) }
        var prefix = ""
        if let schemeEnd = text.range(of: "://") {
            let afterScheme = text[schemeEnd.upperBound...]
            let pathStart = afterScheme.firstIndex(of: "/") ?? afterScheme.endIndex
            prefix = String(text[..<pathStart])
            text = String(text[pathStart...])
        }
        let segments = text.split(separator: "/", omittingEmptySubsequences: false).map { segment -> String in
            isIdentifier(segment) ? "{id}" : String(segment)
        }
        return prefix + segments.joined(separator: "/")
    }

    static func isIdentifier(_ segment: Substring) -> Bool {
        guard !segment.isEmpty else { return false }
        if segment.allSatisfy(\.isASCII), segment.allSatisfy(\.isNumber) { return true }
        if UUID(uuidString: String(segment)) != nil { return true }
        let hasDigit = segment.contains(where: \.isNumber)
        if segment.count >= 8, hasDigit, segment.allSatisfy(\.isHexDigit) { return true }
        let alphanumeric = segment.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
        return segment.count >= 16 && alphanumeric && hasDigit && segment.contains(where: \.isLetter)
    }
}
