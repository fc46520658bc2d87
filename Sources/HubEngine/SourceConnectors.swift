import Foundation
import HubCore

/// Why a sync job failed, in words safe to store and show.
public struct SyncFailure: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A connector's position in the source, committed with each batch as the job's checkpoint.
struct PageState: Codable, Sendable, Hashable {
    /// SCIM: the 1-based index of the next unread resource if nothing shifted.
    var startIndex = 1
    /// SCIM: ids of the last resources read, to find the place again when pages shift.
    var anchors: [String] = []
    /// REST: the next page number or offset.
    var position: Int?
    /// REST: records read so far (against the source's total).
    var read: Int?
    /// REST: the next cursor token, or the next page's URL (`Link: rel="next"`).
    var cursor: String?
    /// Incremental: the high-water mark the job started from.
    var since: String?
    /// REST: a hash of the last page's body (this process's hasher), to notice a source that sends one page forever.
    var pageHash: Int?
}

/// One page read from a source.
struct SourcePage: Sendable {
    var records: [ParsedRecord]
    var next: PageState
    var isLast: Bool
    var total: Int64?
}

protocol SourceConnector: Sendable {
    /// The page at `state`; parsing waits for `beforeParsing` (the request is already on its way).
    func fetch(_ state: PageState, beforeParsing: @escaping @Sendable () async -> Void) async throws -> SourcePage
}

/// GETs JSON from an integration's source through the executor (gateway, auth, policy, API operation recording),
/// retrying as the integration's retry settings say: 429 and 503 wait Retry-After (bounded by the longest delay);
/// other 5xx, 429 without Retry-After and connection errors back off exponentially with ±20 % jitter.
struct SourceClient: Sendable {
    let executor: OperationExecutor
    let integrationID: IntegrationID
    let retry: SyncConfiguration.Retry
    /// The integration and its credentials, read once for the job.
    var resolved: OperationExecutor.ResolvedIntegration?
    /// Largest page body read (32 MiB).
    static let readCap = 32 << 20
    /// Bytes of each page kept with its API operation (the records themselves go to the records store).
    static let storedCap = 4096

    /// The JSON body of `endpoint`, keeping what `projection` names; parsed once `beforeParsing` returns.
    func get(
        _ endpoint: String, projection: JSONProjection = .whole, beforeParsing: @Sendable () async -> Void = {}
    ) async throws -> (JSONValue, HTTPOutcome) {
        let (body, _, outcome) = try await getRecords(endpoint, projection: projection, beforeParsing: beforeParsing)
        return (body, outcome)
    }

    /// As ``get(_:projection:beforeParsing:)``, with the records read under record projections (see ``ParsedRecords``).
    func getRecords(
        _ endpoint: String, projection: JSONProjection, beforeParsing: @Sendable () async -> Void = {}
    ) async throws -> (JSONValue, ParsedRecords, HTTPOutcome) {
        var lastError = ""
        for attempt in 1...retry.maxAttempts {
            let (_, outcome) = try await executor.fetch(
                APIOperationRequest(operationType: .GET, endpoint: endpoint, headers: ["Accept": "application/scim+json, application/json"],
                                    integrationID: integrationID),
                resolved: resolved, readCap: Self.readCap, storedCap: Self.storedCap)
            guard let outcome else { throw SyncFailure("the source's credentials could not be obtained") }
            if let status = outcome.statusCode, (200..<300).contains(status) {
                guard !outcome.truncated else { throw SyncFailure("a page of \(endpoint) is larger than \(Self.readCap) bytes") }
                await beforeParsing()
                try Task.checkCancellation()
                guard let (body, records) = JSONValue.parseRecords(bytes: outcome.body, projection: projection) else {
                    throw SyncFailure("GET \(endpoint) did not answer JSON")
                }
                return (body, records, outcome)
            }
            lastError = outcome.statusCode.map { "the source answered \($0)" } ?? (outcome.error ?? "no answer")
            guard outcome.isRetryable else { throw SyncFailure("GET \(endpoint): \(lastError)") }
            guard attempt < retry.maxAttempts else { break }
            let maximum = Double(retry.maxDelayMilliseconds) / 1000
            let delay: Double
            if let retryAfter = outcome.retryAfter, outcome.statusCode == 429 || outcome.statusCode == 503 {
                delay = min(maximum, Double(retryAfter.components.seconds) + Double(retryAfter.components.attoseconds) / 1e18)
            } else {
                let base = Double(retry.baseDelayMilliseconds) / 1000 * pow(2, Double(attempt - 1))
                delay = min(maximum, base * Double.random(in: 0.8...1.2))
            }
            try await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
        }
        throw SyncFailure("GET \(endpoint): \(lastError) after \(retry.maxAttempts) attempts")
    }
}

/// SCIM 2.0 (RFC 7644 §3.4.2): `startIndex`/`count` pages, `totalResults`; incremental runs filter on
/// `meta.lastModified ge "<mark>"` sorted by it (`ge`, so that resources sharing the mark's time are read again and
/// found unchanged rather than skipped). Each page re-reads a few resources before its start and continues after the
/// last one it knows, so resources removed or added while pages are read shift nothing past it.
struct SCIMConnector: SourceConnector {
    let client: SourceClient
    let path: String
    let pageSize: Int
    let incremental: Bool
    /// The most resources the server returns per request (its maxResults), if it says.
    var maxCount: Int?
    /// Whether pages are asked sorted by `meta.lastModified` (then the high-water mark may move with them).
    var sorted = false
    /// What of each resource is read (the mapping's projection); the resource's id is kept for the anchors.
    var record: JSONProjection = .whole
    /// Reads each resource into slots (the mapping's reader with ``idPath``), when the mapping names fields.
    var reader: RecordReader?
    static let anchorCount = 5
    /// Where a resource's id is (the anchors'), the reader's extra path.
    static let idPath = try! JSONPath("id", field: "id")

    /// What of a page is read.
    var page: JSONProjection {
        .object(["Resources": .elements(reader?.projection ?? record.merged(with: .object(["id": .whole]))), "totalResults": .whole])
    }

    func fetch(_ state: PageState, beforeParsing: @escaping @Sendable () async -> Void) async throws -> SourcePage {
        var back = state.startIndex > 1 ? min(state.anchors.count, Self.anchorCount) : 0
        while true {
            let start = max(1, state.startIndex - back)
            var query = "startIndex=\(start)&count=\(min(pageSize + back, maxCount ?? .max))"
            if incremental, let since = state.since {
                query += "&filter=" + Self.encode("meta.lastModified ge \"\(since)\"")
            }
            if sorted { query += "&sortBy=meta.lastModified&sortOrder=ascending" }
            let (body, parsed, _) = try await client.getRecords("\(path)?\(query)", projection: page, beforeParsing: beforeParsing)
            let resources = (body.objectValue?["Resources"]?.arrayValue ?? []).map(parsed.record)
            let total = body.objectValue?["totalResults"]?.intValue
            var fresh = resources
            if state.startIndex > 1, !state.anchors.isEmpty {
                let known = Set(state.anchors)
                if let position = resources.lastIndex(where: { id($0).map(known.contains) ?? false }) {
                    fresh = Array(resources[(position + 1)...])
                } else if start > 1, back > 0 {
                    // Shifted further than the overlap (or the anchors were removed): look further back, at worst from
                    // the first resource (records read twice are stored once and found unchanged).
                    back = min(state.startIndex - 1, max(back * 4, pageSize))
                    continue
                }
            }
            let nextIndex = start + resources.count
            if back > 0, nextIndex <= state.startIndex, !resources.isEmpty {
                // Reading back brought nothing past the known position (a server that caps or aligns pages): read on
                // from the position itself, without overlap.
                back = 0
                continue
            }
            var next = state
            next.startIndex = nextIndex
            let ids = resources.compactMap(id)
            if !ids.isEmpty { next.anchors = Array(ids.suffix(Self.anchorCount)) }
            let isLast = resources.isEmpty || total.map { Int64(nextIndex) > $0 } ?? (resources.count < pageSize)
            return SourcePage(records: fresh, next: next, isLast: isLast, total: total)
        }
    }

    func id(_ resource: ParsedRecord) -> String? {
        if let reader { return reader.extra(0, in: resource, path: Self.idPath)?.stringValue }
        guard case .value(let value) = resource else { return nil }
        return value.objectValue?["id"]?.stringValue
    }

    static func encode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// The largest page the server allows (`filter.maxResults` of `/ServiceProviderConfig`), whether it filters and
    /// whether it sorts (unknown: filters assumed, sorting not).
    static func serviceProviderLimits(_ client: SourceClient) async -> (maxResults: Int?, filters: Bool, sorts: Bool) {
        guard let (body, _) = try? await client.get("/ServiceProviderConfig"), let config = body.objectValue else { return (nil, true, false) }
        let filter = config["filter"]?.objectValue ?? [:]
        let filters: Bool = if case .bool(let flag)? = filter["supported"] { flag } else { true }
        let sorts: Bool = if case .bool(let flag)? = config["sort"]?.objectValue?["supported"] { flag } else { false }
        return (filter["maxResults"]?.intValue.map { Int($0) }, filters, sorts)
    }
}

/// A JSON REST API: records at `records_path` (or the body when it is an array), pages by number, offset, cursor
/// token or `Link: rel="next"`; incremental runs pass the mark in `updated_since_param`.
struct RESTConnector: SourceConnector {
    let client: SourceClient
    let path: String
    let settings: SyncConfiguration.RESTSettings
    let pageSize: Int
    let incremental: Bool
    /// The integration's endpoint URL, against which relative `Link` targets resolve.
    let baseURL: String
    /// What of each record is read (the mapping's projection).
    var record: JSONProjection = .whole
    /// Reads each record into slots (the mapping's reader), when the mapping names fields.
    var reader: RecordReader?

    /// What of a page is read: the records, the total and the next cursor.
    var page: JSONProjection {
        // A page that is itself the list (no records path, or one the page lacks) is kept whole by a projection that
        // expects an object, so the fallback to the page reads the same.
        let each = reader?.projection ?? record
        var kept = settings.recordsPath?.projection(leaf: .elements(each)) ?? .elements(each)
        if let total = settings.totalPath { kept = kept.merged(with: total.projection()) }
        if case .cursor(_, let nextPath, _) = settings.pagination { kept = kept.merged(with: nextPath.projection()) }
        return kept
    }

    func fetch(_ state: PageState, beforeParsing: @escaping @Sendable () async -> Void) async throws -> SourcePage {
        var parameters: [(String, String)] = []
        var endpoint = path
        var next = state
        switch settings.pagination {
        case .page(let pageParam, let sizeParam, let start):
            parameters += [(pageParam, String(state.position ?? start)), (sizeParam, String(pageSize))]
        case .offset(let offsetParam, let limitParam):
            parameters += [(offsetParam, String(state.position ?? 0)), (limitParam, String(pageSize))]
        case .cursor(let cursorParam, _, let sizeParam):
            if let sizeParam { parameters.append((sizeParam, String(pageSize))) }
            if let cursor = state.cursor { parameters.append((cursorParam, cursor)) }
        case .link(let sizeParam):
            if let url = state.cursor {
                endpoint = url
            } else if let sizeParam {
                parameters.append((sizeParam, String(pageSize)))
            }
        }
        if incremental, let since = state.since, let name = settings.updatedSinceParam, endpoint == path {
            parameters.append((name, since))
        }
        if !parameters.isEmpty {
            endpoint += "?" + parameters.map { "\(SCIMConnector.encode($0.0))=\(SCIMConnector.encode($0.1))" }.joined(separator: "&")
        }
        let (body, parsed, outcome) = try await client.getRecords(endpoint, projection: page, beforeParsing: beforeParsing)
        let container = settings.recordsPath.flatMap { $0.value(in: body) } ?? body
        guard let records = container.arrayValue?.map(parsed.record) else {
            throw SyncFailure("GET \(endpoint): no list of records at \(settings.recordsPath?.description ?? "the top level")")
        }
        let total = settings.totalPath.flatMap { $0.value(in: body) }?.intValue
        // A source that answers the same page again (it ignores the page or offset asked for) would be read forever and
        // hold the integration's next runs: the job fails with the reason instead.
        var hasher = Hasher()
        outcome.body.withUnsafeBytes { hasher.combine(bytes: $0) }
        let pageHash = hasher.finalize()
        if !records.isEmpty, state.pageHash == pageHash {
            throw SyncFailure("GET \(endpoint): the source sent the same page again; stopped instead of reading it forever")
        }
        next.pageHash = pageHash
        var isLast: Bool
        switch settings.pagination {
        case .page(_, _, let start):
            // A server may return fewer than asked (its own page cap): only an empty page, or the total, ends the scan.
            next.position = (state.position ?? start) + 1
            next.read = (state.read ?? 0) + records.count
            isLast = total.map { Int64(next.read!) >= $0 } ?? false
        case .offset:
            let offset = (state.position ?? 0) + records.count
            next.position = offset
            isLast = total.map { Int64(offset) >= $0 } ?? false
        case .cursor(_, let nextPath, _):
            let token = nextPath.value(in: body).flatMap { $0.stringValue }
            if let token, !token.isEmpty, token == state.cursor {
                throw SyncFailure("GET \(endpoint): the source gave the same cursor again; stopped instead of reading it forever")
            }
            next.cursor = token
            isLast = token?.isEmpty ?? true
        case .link:
            let url = outcome.link.flatMap(Self.nextLink).flatMap { URL(string: $0, relativeTo: URL(string: baseURL))?.absoluteString }
            if let url, url == state.cursor {
                throw SyncFailure("GET \(endpoint): the source gave the same next link again; stopped instead of reading it forever")
            }
            next.cursor = url
            isLast = url == nil
        }
        if records.isEmpty { isLast = true }
        return SourcePage(records: records, next: next, isLast: isLast, total: total)
    }

    /// The target of `rel="next"` in a Link header.
    static func nextLink(_ header: String) -> String? {
        for part in header.split(separator: ",") {
            let pieces = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let target = pieces.first, target.hasPrefix("<"), target.hasSuffix(">") else { continue }
            let isNext = pieces.dropFirst().contains { piece in
                let lowered = piece.lowercased().replacingOccurrences(of: " ", with: "")
                return lowered == "rel=\"next\"" || lowered == "rel=next"
            }
            if isNext { return String(target.dropFirst().dropLast()) }
        }
        return nil
    }
}
