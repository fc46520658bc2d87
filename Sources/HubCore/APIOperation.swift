import Foundation

/// HTTP methods accepted as operation_type.
public enum HTTPMethod: String, Sendable, Codable, CaseIterable {
    /// The five HTTP methods, stored and shown by name (`GET`, `POST`, `PUT`, `PATCH`, `DELETE`).
    case GET, POST, PUT, PATCH, DELETE
}

/// Status of an API operation: `pending` from step 1 until step 2 records the outcome.
public enum APIOperationStatus: String, Sendable, Codable, CaseIterable {
    /// Logged by step 1; no outcome recorded yet.
    case pending
    /// Step 2 recorded a status code below 400 and no error message.
    case completed
    /// Step 2 recorded a status code of 400 or more, no response, or an error message.
    case failed
}

/// The arguments of DAO-MDE-03-08-03 (API Operation).
public struct APIOperationRequest: Sendable, Hashable {
    /// The HTTP method of the call (operation_type).
    public var operationType: HTTPMethod
    /// An absolute http(s) URL, or a path starting with `/` relative to an integration's endpoint.
    public var endpoint: String
    /// Request headers (a JSON object of strings). Credential-bearing headers are redacted before storage.
    public var headers: JSONValue?
    /// Request payload (any JSON).
    public var payload: JSONValue?
    /// Timeout in seconds, 1…300; `nil` means the design's default of 30.
    public var timeout: Int?
    /// The integration the call belongs to, if any.
    public var integrationID: IntegrationID?

    /// Creates a request with every member given; nothing is validated until ``validate()``.
    public init(
        operationType: HTTPMethod, endpoint: String, headers: JSONValue? = nil, payload: JSONValue? = nil,
        timeout: Int? = nil, integrationID: IntegrationID? = nil
    ) {
        self.operationType = operationType
        self.endpoint = endpoint
        self.headers = headers
        self.payload = payload
        self.timeout = timeout
        self.integrationID = integrationID
    }

    /// Step 1's data validation: endpoint format, headers structure, timeout range. Returns the headers.
    @discardableResult
    public func validate() throws -> [String: String] {
        try Validate.noNUL(endpoint, field: "endpoint")
        try Validate.noNUL(headers, field: "headers")
        try Validate.noNUL(payload, field: "payload")
        try APIOperation.validateEndpoint(endpoint)
        if let timeout { try Validate.range(timeout, 1...300, field: "timeout") }
        guard let headers, headers != .null else { return [:] }
        return try Validate.headers(headers, field: "headers")
    }
}

/// An API operation: the design's returns (operation_id, status_code, response_data, execution_time,
/// error_message) and its request.
public struct APIOperation: Sendable, Hashable, Codable {
    /// The operation's id (operation_id).
    public var id: OperationID
    /// The integration the call belongs to; `nil` when none was given or that integration was deleted.
    public var integrationID: IntegrationID?
    /// The HTTP method of the call (operation_type).
    public var operationType: HTTPMethod
    /// The endpoint as given: an absolute http(s) URL or a path starting with `/`.
    public var endpoint: String
    /// The request headers as stored: credential-bearing values are `[REDACTED]`.
    public var headers: JSONValue?
    /// The request payload as given (any JSON), or `nil` when there was none.
    public var payload: JSONValue?
    /// Timeout in seconds, 1…300 (30 when the request gave none).
    public var timeout: Int
    /// `pending` until step 2 records the outcome, then `completed` or `failed`.
    public var status: APIOperationStatus
    /// The HTTP status code (100…599); `nil` while pending or when no response arrived.
    public var statusCode: Int?
    /// The response data (any JSON; a body that is not JSON is stored as a string); `nil` while pending or when none
    /// was recorded.
    public var responseData: JSONValue?
    /// Whether the response body was cut at the stored-body cap.
    public var responseTruncated: Bool
    /// Execution time in milliseconds.
    public var executionTime: Int64?
    /// Why the call failed; `nil` while pending or when no error was recorded.
    public var errorMessage: String?
    /// When step 1 logged the operation.
    public var startedAt: Date
    /// When step 2 recorded the outcome; `nil` while pending.
    public var completedAt: Date?
    /// When the row was inserted (the same instant as `startedAt`); lists are ordered by it.
    public var createdAt: Date

    /// Creates a value with every member given; nothing is validated.
    public init(
        id: OperationID, integrationID: IntegrationID?, operationType: HTTPMethod, endpoint: String,
        headers: JSONValue?, payload: JSONValue?, timeout: Int, status: APIOperationStatus, statusCode: Int?,
        responseData: JSONValue?, responseTruncated: Bool = false, executionTime: Int64?, errorMessage: String?, startedAt: Date,
        completedAt: Date?, createdAt: Date
    ) {
        self.id = id
        self.integrationID = integrationID
        self.operationType = operationType
        self.endpoint = endpoint
        self.headers = headers
        self.payload = payload
        self.timeout = timeout
        self.status = status
        self.statusCode = statusCode
        self.responseData = responseData
        self.responseTruncated = responseTruncated
        self.executionTime = executionTime
        self.errorMessage = errorMessage
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.createdAt = createdAt
    }

    /// Step 1 without a database: validates `request` and returns the `pending` operation to store, with credential
    /// headers and query parameters redacted (`extraRedacted` adds header names) and times at microsecond precision,
    /// exactly as the stores keep them.
    /// - Throws: `validation`.
    public static func pending(
        for request: APIOperationRequest, id: OperationID = .generate(), at now: Date, extraRedacted: Set<String> = []
    ) throws -> APIOperation {
        let headers = try request.validate()
        let now = Self.microsecondPrecision(now)
        let storedHeaders: JSONValue? =
            request.headers == nil || request.headers == .null
            ? nil : .object(redact(headers, extra: extraRedacted).mapValues { .string($0) })
        return APIOperation(
            id: id, integrationID: request.integrationID, operationType: request.operationType, endpoint: redactQuery(request.endpoint),
            headers: storedHeaders, payload: request.payload, timeout: request.timeout ?? 30,
            status: .pending, statusCode: nil, responseData: nil, executionTime: nil, errorMessage: nil, startedAt: now,
            completedAt: nil, createdAt: now)
    }

    /// Step 2 without a database: this operation with `outcome` recorded at `now`.
    public func completed(with outcome: APIOperationOutcome, at now: Date) -> APIOperation {
        var operation = self
        operation.status = outcome.status
        operation.statusCode = outcome.statusCode
        operation.responseData = outcome.responseData
        operation.responseTruncated = outcome.responseTruncated
        operation.executionTime = outcome.executionTime
        operation.errorMessage = outcome.errorMessage
        operation.completedAt = Self.microsecondPrecision(now)
        return operation
    }

    /// `date` rounded to whole microseconds, the precision both backends store.
    public static func microsecondPrecision(_ date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1_000_000).rounded() / 1_000_000)
    }

    /// Header names whose values are never stored (compared case-insensitively).
    public static let redactedHeaders: Set<String> = [
        "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key", "x-auth-token",
    ]

    /// `headers` with every credential-bearing value replaced by `[REDACTED]`.
    public static func redact(_ headers: [String: String], extra: Set<String> = []) -> [String: String] {
        var result = headers
        for name in headers.keys
        where redactedHeaders.contains(name.lowercased()) || extra.contains(name.lowercased()) {
            result[name] = "[REDACTED]"
        }
        return result
    }

    /// Query parameter names whose values are never stored (compared case-insensitively).
    public static let redactedQueryParameters: Set<String> = [
        "api_key", "apikey", "key", "token", "access_token", "refresh_token", "id_token", "client_secret", "secret",
        "password", "passwd", "signature", "sig", "auth", "code",
    ]

    /// `endpoint` with the values of credential-bearing query parameters replaced by `[REDACTED]`; the rest of the
    /// text is kept as it was written.
    public static func redactQuery(_ endpoint: String) -> String {
        guard let mark = endpoint.firstIndex(of: "?") else { return endpoint }
        let fragmentStart = endpoint[mark...].firstIndex(of: "#") ?? endpoint.endIndex
        let query = endpoint[endpoint.index(after: mark)..<fragmentStart]
        let redacted = query.split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = (parts[0].removingPercentEncoding ?? String(parts[0])).lowercased()
            guard parts.count == 2, redactedQueryParameters.contains(name) else { return String(pair) }
            return "\(parts[0])=[REDACTED]"
        }.joined(separator: "&")
        return String(endpoint[...mark]) + redacted + String(endpoint[fragmentStart...])
    }

    static func validateEndpoint(_ endpoint: String) throws {
        if endpoint.hasPrefix("/") {
            guard endpoint.count <= 2048 else {
                throw HubError.validation(field: "endpoint", reason: "must be at most 2048 characters")
            }
            guard !endpoint.hasPrefix("//"), URLComponents(string: endpoint) != nil,
                !endpoint.contains(where: { $0.isWhitespace })
            else {
                throw HubError.validation(field: "endpoint", reason: "is not a valid path")
            }
        } else {
            guard endpoint.contains("://") else {
                throw HubError.validation(
                    field: "endpoint", reason: "must be an absolute http(s) URL or a path starting with '/'")
            }
            try Validate.httpURL(endpoint, field: "endpoint")
        }
    }
}

/// One state of an operation to write in a batch (``APIOperationDAO/record(_:)``): `pending` as step 1 logged it, or
/// finished (steps 2 and 3). Writing a record twice changes nothing the second time.
public struct APIOperationRecord: Sendable, Hashable, Codable {
    /// The operation in this state.
    public var operation: APIOperation
    /// Whether a finished operation ran out of time (its statistics error class).
    public var timedOut: Bool
    /// Whether a finished operation is folded into the statistics (an operation interrupted by a crash is not: its
    /// latency and outcome are unknown).
    public var countsInStatistics: Bool

    /// A record of `operation` in its current state.
    public init(operation: APIOperation, timedOut: Bool = false, countsInStatistics: Bool = true) {
        self.operation = operation
        self.timedOut = timedOut
        self.countsInStatistics = countsInStatistics
    }

    /// The outcome a finished record carries (statistics class, latency, status code).
    public var outcome: APIOperationOutcome {
        APIOperationOutcome(
            statusCode: operation.statusCode, responseData: operation.responseData, executionTime: operation.executionTime ?? 0,
            errorMessage: operation.errorMessage, timedOut: timedOut, responseTruncated: operation.responseTruncated)
    }
}

/// The outcome of executing an operation, recorded by step 2.
public struct APIOperationOutcome: Sendable, Hashable {
    /// The HTTP status code, or `nil` when no response arrived (timeout, connection error, refused by policy).
    public var statusCode: Int?
    /// The response data (any JSON), or `nil`.
    public var responseData: JSONValue?
    /// Whether the response body was cut at the stored-body cap before it became `responseData`.
    public var responseTruncated: Bool
    /// Execution time in milliseconds (≥ 0).
    public var executionTime: Int64
    /// Why the call failed, or `nil`; a message makes the outcome `failed` whatever the status code.
    public var errorMessage: String?
    /// Whether the call ran out of time (counted as a timeout, not a connection error, when no response arrived).
    public var timedOut: Bool

    /// Creates an outcome with every member given; nothing is validated until ``validate()``.
    public init(
        statusCode: Int?, responseData: JSONValue? = nil, executionTime: Int64, errorMessage: String? = nil, timedOut: Bool = false,
        responseTruncated: Bool = false
    ) {
        self.statusCode = statusCode
        self.responseData = responseData
        self.responseTruncated = responseTruncated
        self.executionTime = executionTime
        self.errorMessage = errorMessage
        self.timedOut = timedOut
    }

    /// The error class the statistics count: `4xx`, `5xx`, `timeout` or `connection`; `nil` for a success.
    public var errorClass: String? {
        if let statusCode {
            if statusCode >= 500 { return "5xx" }
            if statusCode >= 400 { return "4xx" }
            return errorMessage == nil ? nil : "connection"
        }
        return timedOut ? "timeout" : "connection"
    }

    /// `completed` for a response below 400, `failed` otherwise.
    public var status: APIOperationStatus {
        if let statusCode, statusCode < 400, errorMessage == nil { return .completed }
        return .failed
    }

    /// Validates the execution time and status code range.
    public func validate() throws {
        guard executionTime >= 0 else {
            throw HubError.validation(field: "execution_time", reason: "must not be negative")
        }
        if let statusCode { try Validate.range(statusCode, 100...599, field: "status_code") }
        try Validate.noNUL(responseData, field: "response_data")
        if let errorMessage { try Validate.noNUL(errorMessage, field: "error_message") }
    }
}

/// Daily statistics of one endpoint template, method and integration (UTC day), stored as counts, sums and a fixed
/// latency histogram; averages and percentiles are derived, so rows merge exactly across days and processes.
public struct APIStatistics: Sendable, Hashable {
    /// The integration the calls belong to; `nil` for calls made without one.
    public var integrationID: IntegrationID?
    /// The endpoint template (``APIOperation/template(for:)``): `/users/{id}`, not `/users/42`.
    public var endpoint: String
    /// The HTTP method.
    public var operationType: HTTPMethod
    /// The UTC day, `YYYY-MM-DD` (for merged rows, `first..last`).
    public var day: String
    /// Calls completed (≥ 1).
    public var callCount: Int64
    /// Calls that failed (status ≥ 400 or no response).
    public var errorCount: Int64
    /// Failed calls by class: answered 4xx, answered 5xx, timed out, no connection (refused, DNS, reset, policy).
    public var errors4xx: Int64
    /// See ``errors4xx``.
    public var errors5xx: Int64
    /// See ``errors4xx``.
    public var errorsTimeout: Int64
    /// See ``errors4xx``.
    public var errorsConnection: Int64
    /// Sum of execution times in milliseconds.
    public var totalExecutionTime: Int64
    /// Shortest execution time, in milliseconds.
    public var minExecutionTime: Int64
    /// Longest execution time, in milliseconds.
    public var maxExecutionTime: Int64
    /// Calls per latency bucket (``LatencyHistogram/bounds``), 15 counts.
    public var latencyHistogram: [Int64]
    /// Status code of the call folded in last; `nil` when that call got no response.
    public var lastStatusCode: Int?
    /// Latest completion time among the calls.
    public var lastCallAt: Date

    /// Creates a value with every member given.
    public init(
        integrationID: IntegrationID?, endpoint: String, operationType: HTTPMethod, day: String, callCount: Int64,
        errorCount: Int64, errors4xx: Int64, errors5xx: Int64, errorsTimeout: Int64, errorsConnection: Int64,
        totalExecutionTime: Int64, minExecutionTime: Int64, maxExecutionTime: Int64, latencyHistogram: [Int64],
        lastStatusCode: Int?, lastCallAt: Date
    ) {
        self.integrationID = integrationID
        self.endpoint = endpoint
        self.operationType = operationType
        self.day = day
        self.callCount = callCount
        self.errorCount = errorCount
        self.errors4xx = errors4xx
        self.errors5xx = errors5xx
        self.errorsTimeout = errorsTimeout
        self.errorsConnection = errorsConnection
        self.totalExecutionTime = totalExecutionTime
        self.minExecutionTime = minExecutionTime
        self.maxExecutionTime = maxExecutionTime
        self.latencyHistogram = latencyHistogram
        self.lastStatusCode = lastStatusCode
        self.lastCallAt = lastCallAt
    }

    /// The design's avg_execution_time, derived exactly from the sum and the count.
    public var averageExecutionTime: Double {
        callCount == 0 ? 0 : Double(totalExecutionTime) / Double(callCount)
    }

    /// The `p`-quantile of execution time in milliseconds, estimated from the histogram (see
    /// ``LatencyHistogram/percentile(_:buckets:minimum:maximum:)``).
    public func percentile(_ p: Double) -> Double? {
        LatencyHistogram.percentile(p, buckets: latencyHistogram, minimum: minExecutionTime, maximum: maxExecutionTime)
    }

    /// Rows of the same integration, endpoint and method added together (counts, sums and histograms add; minimum
    /// and maximum combine), with `day` spanning the first to the last day. Returns one row per key, in the order
    /// of first appearance.
    public static func merged(_ rows: [APIStatistics]) -> [APIStatistics] {
        var order: [String] = []
        var merged: [String: APIStatistics] = [:]
        for row in rows {
            let key = "\(row.integrationID?.description ?? "")\u{0}\(row.endpoint)\u{0}\(row.operationType.rawValue)"
            guard var total = merged[key] else {
                order.append(key)
                merged[key] = row
                continue
            }
            let days = total.day.components(separatedBy: "..")
            let first = min(days.first ?? row.day, row.day)
            let last = max(days.last ?? row.day, row.day)
            total.day = first == last ? first : "\(first)..\(last)"
            total.callCount += row.callCount
            total.errorCount += row.errorCount
            total.errors4xx += row.errors4xx
            total.errors5xx += row.errors5xx
            total.errorsTimeout += row.errorsTimeout
            total.errorsConnection += row.errorsConnection
            total.totalExecutionTime += row.totalExecutionTime
            total.minExecutionTime = min(total.minExecutionTime, row.minExecutionTime)
            total.maxExecutionTime = max(total.maxExecutionTime, row.maxExecutionTime)
            total.latencyHistogram = zip(total.latencyHistogram, row.latencyHistogram).map(+)
            if row.lastCallAt > total.lastCallAt {
                total.lastCallAt = row.lastCallAt
                total.lastStatusCode = row.lastStatusCode
            }
            merged[key] = total
        }
        return order.compactMap { merged[$0] }
    }
}

/// A statistics query: all filters optional; days are inclusive `YYYY-MM-DD` (UTC).
public struct APIStatisticsQuery: Sendable, Hashable {
    /// Only rows for this endpoint (given as a template or as a concrete endpoint, which is templated); `nil` for all.
    public var endpoint: String?
    /// Only this integration's rows; `nil` for all.
    public var integrationID: IntegrationID?
    /// Only rows for this method; `nil` for every method.
    public var operationType: HTTPMethod?
    /// First day included (`YYYY-MM-DD`, UTC); `nil` for no lower bound.
    public var fromDay: String?
    /// Last day included (`YYYY-MM-DD`, UTC); `nil` for no upper bound.
    public var toDay: String?

    /// Creates a query with every member given; `nil` members do not filter.
    public init(
        endpoint: String? = nil, operationType: HTTPMethod? = nil, fromDay: String? = nil, toDay: String? = nil,
        integrationID: IntegrationID? = nil
    ) {
        self.endpoint = endpoint
        self.integrationID = integrationID
        self.operationType = operationType
        self.fromDay = fromDay
        self.toDay = toDay
    }

    /// Validates the day formats and order.
    public func validate() throws {
        if let fromDay { try UTCDay.validate(fromDay, field: "from") }
        if let toDay { try UTCDay.validate(toDay, field: "to") }
        if let fromDay, let toDay, fromDay > toDay {
            throw HubError.validation(field: "from", reason: "must not be after 'to'")
        }
    }
}

/// UTC calendar days as `YYYY-MM-DD` text, the key of daily rollups on both backends.
public enum UTCDay {
    /// The UTC day of `date`.
    public static func of(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", parts.year!, parts.month!, parts.day!)
    }

    /// Throws unless `text` is a real calendar day written `YYYY-MM-DD`.
    public static func validate(_ text: String, field: String) throws {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard text.count == 10, parts.count == 3, let year = Int(parts[0]), let month = Int(parts[1]),
            let day = Int(parts[2]), parts[0].count == 4, parts[1].count == 2, parts[2].count == 2
        else {
            throw HubError.validation(field: field, reason: "must be a day written YYYY-MM-DD")
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        guard let date = calendar.date(from: DateComponents(year: year, month: month, day: day)), of(date) == text
        else {
            throw HubError.validation(field: field, reason: "is not a calendar day")
        }
    }
}

/// Filters for listing operations.
public struct APIOperationFilter: Sendable, Hashable {
    /// Only operations of this integration; `nil` for all.
    public var integrationID: IntegrationID?
    /// Only operations with this status; `nil` for all.
    public var status: APIOperationStatus?
    /// Only operations logged at or after this time; `nil` for no lower bound.
    public var createdFrom: Date?
    /// Only operations logged before this time; `nil` for no upper bound.
    public var createdBefore: Date?

    /// Creates a filter with every member given; `nil` members do not filter.
    public init(
        integrationID: IntegrationID? = nil, status: APIOperationStatus? = nil, createdFrom: Date? = nil, createdBefore: Date? = nil
    ) {
        self.integrationID = integrationID
        self.status = status
        self.createdFrom = createdFrom
        self.createdBefore = createdBefore
    }
}

/// DAO-MDE-03-08-03, API Operation: every outbound call logged, completed and folded into daily statistics.
///
/// Statistics are kept as counts, sums and a latency histogram in one row per (integration, endpoint template,
/// operation_type, UTC day), updated by a single upsert, so any number of concurrent writers in any number of processes
/// produce exact totals.
public protocol APIOperationDAO: Sendable {
    /// Step 1: validates and logs a `pending` operation (timeout defaults to 30 s). Credential-bearing headers and
    /// query parameters are stored as `[REDACTED]` (the statistics key is the redacted endpoint too).
    /// - Throws: `validation`; `invalidReference(integration_id)` for an unknown integration.
    func log(_ request: APIOperationRequest) async throws -> APIOperation

    /// Steps 2 and 3 in one transaction: records the outcome of a pending operation and folds it into the daily
    /// statistics of its endpoint and method.
    /// - Throws: `validation`; `notFound`; `conflict` when the operation was already completed.
    func complete(_ id: OperationID, _ outcome: APIOperationOutcome) async throws -> APIOperation

    /// Writes a batch of operation states in one transaction, the bulk form of steps 1-3 that write-behind recording
    /// uses: a `pending` record is inserted when its operation is absent; a finished record is inserted, or moves a
    /// `pending` operation to its outcome, and is then folded into the statistics, exactly once however often the same
    /// record is written. Records of one operation in one batch keep the finished one. An operation of an integration
    /// deleted meanwhile is kept without its integration (as deleting one does to its operations).
    /// - Throws: `validation` for an invalid outcome.
    func record(_ batch: [APIOperationRecord]) async throws

    /// The operation with this id. - Throws: `notFound`.
    func get(_ id: OperationID) async throws -> APIOperation

    /// Operations matching `filter`, newest first, one page at a time.
    func list(_ filter: APIOperationFilter, _ page: PageRequest) async throws -> Page<APIOperation>

    /// Retention: deletes operations created before `operationsBefore` and statistics rows of days before
    /// `statisticsBefore` (`YYYY-MM-DD`), in batches so no statement holds locks for long. Returns how many of each
    /// were deleted.
    func prune(operationsBefore: Date, statisticsBefore: String) async throws -> (operations: Int, statistics: Int)

    /// Daily statistics rows matching `query`, ordered by day, endpoint, method.
    func statistics(_ query: APIStatisticsQuery) async throws -> [APIStatistics]
}
