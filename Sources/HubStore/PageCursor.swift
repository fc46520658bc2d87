import Foundation
import HubCore

/// Keyset pagination over (created_at, id) descending: stable while rows are added, and each page costs the same.
struct PageCursor {
    var createdAt: Date
    var id: UUID

    /// The opaque text form: base64url of `microseconds:uuid`.
    var encoded: String {
        let raw = "\(SQLValue.microseconds(createdAt)):\(id.uuidString.lowercased())"
        return Data(raw.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    init(createdAt: Date, id: UUID) {
        self.createdAt = createdAt
        self.id = id
    }

    /// Parses a cursor. - Throws: `validation(cursor)` when it was not made by ``encoded``.
    init(parsing text: String) throws {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64) else {
            throw HubError.validation(field: "cursor", reason: "is not a cursor returned by this list")
        }
        let parts = String(decoding: data, as: UTF8.self).split(separator: ":")
        // The time is checked to lie in years 1-9999 before anything converts it (a value near Int64's bounds trapped
        // when bound).
        guard parts.count == 2, let micros = Int64(parts[0]), RFC3339.validMicroseconds.contains(micros),
            let id = UUID(uuidString: String(parts[1]))
        else {
            throw HubError.validation(field: "cursor", reason: "is not a cursor returned by this list")
        }
        self.init(createdAt: SQLValue.date(microseconds: micros), id: id)
    }
}

/// Builds keyset-paginated list statements: filters, then the cursor condition, then order and limit.
struct ListQuery {
    let table: String
    let idColumn: String
    let columns: String
    var conditions: [String] = []
    var binds: [SQLValue] = []

    init(table: String, idColumn: String, columns: String) {
        self.table = table
        self.idColumn = idColumn
        self.columns = columns
    }

    /// Adds `column = value`.
    mutating func filter(_ column: String, _ value: SQLValue) {
        filter(column, "=", value)
    }

    /// Adds `column <operator> value` (`operator` is one of `=`, `<`, `>=`, written by the store, never by a caller).
    mutating func filter(_ column: String, _ comparison: String, _ value: SQLValue) {
        binds.append(value)
        conditions.append("\(column) \(comparison) $\(binds.count)")
    }

    /// Runs the query for `page` and maps rows with `decode`, whose second result is the row's (createdAt, id).
    func run<Item: Sendable>(
        on executor: any SQLExecutor, page: PageRequest, decode: (SQLRow) throws -> (Item, PageCursor)
    ) async throws -> Page<Item> {
        try page.validate()
        var conditions = self.conditions
        var binds = self.binds
        if let cursorText = page.cursor {
            let cursor = try PageCursor(parsing: cursorText)
            binds.append(.timestamp(cursor.createdAt))
            let timeIndex = binds.count
            binds.append(.uuid(cursor.id))
            conditions.append(
                "(created_at < $\(timeIndex) OR (created_at = $\(timeIndex) AND \(idColumn) < $\(binds.count)))")
        }
        binds.append(.int(Int64(page.limit + 1)))
        let whereClause = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        let sql = "SELECT \(columns) FROM \(table)\(whereClause) ORDER BY created_at DESC, \(idColumn) DESC LIMIT $\(binds.count)"
        let rows = try await executor.query(sql, binds)
        var items: [Item] = []
        var lastCursor: PageCursor?
        for row in rows.prefix(page.limit) {
            let (item, cursor) = try decode(row)
            items.append(item)
            lastCursor = cursor
        }
        let hasMore = rows.count > page.limit
        return Page(items: items, nextCursor: hasMore ? lastCursor?.encoded : nil)
    }
}
