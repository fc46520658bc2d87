import Foundation
import HTTPTypes
import HubCore
import Hummingbird
import Logging
import NIOCore

/// A real HR source on a loopback port for the sync tests: a SCIM 2.0 `/scim/v2/Users` endpoint (startIndex/count,
/// `meta.lastModified ge` filters, sortBy, ServiceProviderConfig with maxResults, bearer auth) and a REST JSON
/// `/api/employees` endpoint with page, offset, cursor and Link pagination. It can fail on command (503 with
/// Retry-After, 500, 429), and can remove resources while pages are being read.
actor SourceServer {
    struct User: Sendable {
        var id: String
        var userName: String
        var email: String
        var lastModified: Date
        var sequence: Int
    }

    static let token = "source-token-0123456789"
    private(set) var users: [String: User] = [:]
    private var sequence = 0
    private var clock = Date(timeIntervalSince1970: 1_780_000_000)
    /// Status codes to answer before serving normally, in order (each with Retry-After: 0 where it applies).
    private var failures: [Int] = []
    /// After serving a page with this startIndex, remove the resources at these 0-based positions of the whole list.
    private var removeAfterPage: (startIndex: Int, positions: [Int])?
    private(set) var pageRequests = 0
    var maxResults = 50
    /// How long each SCIM page takes to answer.
    var pageDelay: Duration = .zero
    func setPageDelay(_ delay: Duration) { pageDelay = delay }
    /// Pages served by `/api/repeat`.
    private(set) var repeats = 0
    func countRepeat() -> Int {
        repeats += 1
        return repeats
    }

    /// Adds `count` users; returns their ids.
    @discardableResult
    func addUsers(_ count: Int, prefix: String = "u") -> [String] {
        (0..<count).map { _ in
            sequence += 1
            clock += 1
            let id = "\(prefix)\(String(format: "%05d", sequence))"
            users[id] = User(id: id, userName: "User.\(sequence)", email: "  User\(sequence)@Example.COM ", lastModified: clock, sequence: sequence)
            return id
        }
    }

    func modify(_ id: String, email: String) {
        clock += 1
        users[id]?.email = email
        users[id]?.lastModified = clock
    }

    func remove(_ id: String) { users[id] = nil }
    /// Retry-After sent with 429 and 503 answers, in seconds.
    private(set) var retryAfter = 0
    func failNext(_ statuses: [Int], retryAfter: Int = 0) {
        failures = statuses
        self.retryAfter = retryAfter
    }
    func removeWhileReading(afterPageStartingAt startIndex: Int, positions: [Int]) { removeAfterPage = (startIndex, positions) }

    func ordered(since: Date?, byModification: Bool) -> [User] {
        users.values.filter { since == nil || $0.lastModified >= since! }
            .sorted { byModification ? ($0.lastModified, $0.sequence) < ($1.lastModified, $1.sequence) : $0.sequence < $1.sequence }
    }

    static func iso(_ date: Date) -> String { date.formatted(Date.ISO8601FormatStyle()) }

    static func scim(_ user: User) -> JSONValue {
        [
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": .string(user.id), "userName": .string(user.userName),
            "emails": [["value": .string(user.email), "primary": true, "type": "work"]],
            "meta": ["resourceType": "User", "lastModified": .string(iso(user.lastModified))],
        ]
    }

    func nextFailure() -> Int? { failures.isEmpty ? nil : failures.removeFirst() }

    func scimPage(startIndex: Int, count: Int, since: Date?, sorted: Bool) -> JSONValue {
        pageRequests += 1
        let all = ordered(since: since, byModification: sorted)
        let count = min(count, maxResults)
        let slice = all.dropFirst(max(0, startIndex - 1)).prefix(count)
        let page: JSONValue = [
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": .int(Int64(all.count)),
            "startIndex": .int(Int64(startIndex)), "itemsPerPage": .int(Int64(slice.count)),
            "Resources": .array(slice.map(Self.scim)),
        ]
        if let removal = removeAfterPage, removal.startIndex == startIndex {
            removeAfterPage = nil
            for position in removal.positions.sorted(by: >) where position < all.count { users[all[position].id] = nil }
        }
        return page
    }

    func restPage(_ query: [String: String]) -> (JSONValue, String?) {
        pageRequests += 1
        let since = query["updated_since"].flatMap(RecordMapping.parseDateTime)
        let all = ordered(since: since, byModification: false)
        func row(_ user: User) -> JSONValue {
            ["employee_id": .string(user.id), "name": .string(user.userName), "mail": .string(user.email),
             "updated": .string(Self.iso(user.lastModified)), "hired": "2021-03-04T09:00:00+02:00"]
        }
        if let page = query["page"].flatMap(Int.init), let size = query["per_page"].flatMap(Int.init) {
            let slice = all.dropFirst((page - 1) * size).prefix(size)
            return (["data": .array(slice.map(row)), "total": .int(Int64(all.count))], nil)
        }
        if let offset = query["offset"].flatMap(Int.init), let limit = query["limit"].flatMap(Int.init) {
            return (["data": .array(all.dropFirst(offset).prefix(limit).map(row))], nil)
        }
        if let limit = query["limit"].flatMap(Int.init) {
            let start = query["cursor"].flatMap(Int.init) ?? 0
            let slice = Array(all.dropFirst(start).prefix(limit))
            let next: JSONValue = start + slice.count < all.count ? .string(String(start + slice.count)) : .null
            return (["items": .array(slice.map(row)), "next": next], nil)
        }
        let size = query["size"].flatMap(Int.init) ?? 10
        let after = query["after"].flatMap(Int.init) ?? 0
        let slice = Array(all.dropFirst(after).prefix(size))
        let link = after + slice.count < all.count ? "</api/linked?size=\(size)&after=\(after + slice.count)>; rel=\"next\"" : nil
        return (.array(slice.map(row)), link)
    }

    /// Runs the server for the duration of `body`, passing it and its base URL (`http://127.0.0.1:PORT`).
    static func with<T: Sendable>(_ body: @Sendable (SourceServer, String) async throws -> T) async throws -> T {
        let source = SourceServer()
        let router = Router()
        @Sendable func json(_ value: JSONValue, link: String? = nil) -> Response {
            var headers: HTTPFields = [.contentType: "application/scim+json"]
            if let link { headers[HTTPField.Name("Link")!] = link }
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: value.jsonText)))
        }
        @Sendable func gate(_ request: Request) async -> Response? {
            guard request.headers[.authorization] == "Bearer \(token)" else { return Response(status: .unauthorized) }
            if let status = await source.nextFailure() {
                return Response(status: .init(code: status), headers: status == 500 ? [:] : [.retryAfter: String(await source.retryAfter)])
            }
            return nil
        }
        router.get("/scim/v2") { request, _ -> Response in
            if let refusal = await gate(request) { return refusal }
            return json(["schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]])
        }
        router.get("/scim/v2/ServiceProviderConfig") { request, _ -> Response in
            if let refusal = await gate(request) { return refusal }
            return json(["filter": ["supported": true, "maxResults": .int(Int64(await source.maxResults))], "sort": ["supported": true]])
        }
        router.get("/scim/v2/Users") { request, _ -> Response in
            if let refusal = await gate(request) { return refusal }
            let query = request.uri.queryParameters
            var since: Date?
            if let filter = query.get("filter") {
                // meta.lastModified ge "…" is the only filter the hub sends.
                guard filter.hasPrefix("meta.lastModified ge \""), let date = RecordMapping.parseDateTime(String(filter.dropFirst(22).dropLast()))
                else { return Response(status: .badRequest) }
                since = date
            }
            let delay = await source.pageDelay
            if delay > .zero { try await Task.sleep(for: delay) }
            return json(await source.scimPage(
                startIndex: query.get("startIndex").flatMap(Int.init) ?? 1, count: query.get("count").flatMap(Int.init) ?? 100,
                since: since, sorted: query.get("sortBy") == "meta.lastModified"))
        }
        for path in ["/api/employees", "/api/linked"] {
            router.get(RouterPath(path)) { request, _ -> Response in
                if let refusal = await gate(request) { return refusal }
                var query: [String: String] = [:]
                for (key, value) in request.uri.queryParameters { query[String(key)] = String(value) }
                let (body, link) = await source.restPage(query)
                return json(body, link: link)
            }
        }
        // Sources that repeat themselves: one page whatever is asked (`/api/stuck`), and pages that differ but always
        // name the same cursor and next link (`/api/repeat`).
        router.get("/api/stuck") { request, _ -> Response in
            if let refusal = await gate(request) { return refusal }
            return json(["data": [["employee_id": "s1"], ["employee_id": "s2"]], "next": "more"])
        }
        router.get("/api/repeat") { request, _ -> Response in
            if let refusal = await gate(request) { return refusal }
            let served = await source.countRepeat()
            return json(["data": [["employee_id": .string("r\(served)")]], "next": "again"], link: "</api/repeat?cursor=again>; rel=\"next\"")
        }
        return try await withLoopbackServer(router) { base in try await body(source, base) }
    }
}
