import Foundation
import HubCore

/// The forms of the lists' cursors, as patterns for the API document: every string a pattern matches is a cursor the
/// list accepts (a position in its order), and the list refuses every other string.
public enum CursorPattern {
    /// `<microseconds>_<uuid>`: lists ordered by (created_at, id).
    public static let keyset = "^[0-9]{1,17}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    /// `<microseconds>_<external id>`: synced records ordered by (updated_at, external_id).
    public static let record = "^[0-9]{1,17}_[^\\x00]+$"
    /// `msg_<n>`: a webhook's messages.
    public static let message = "^msg_[1-9][0-9]{0,17}$"

    /// The microseconds before the first `_` of `text` (1 to 17 digits: year 5138 at most, so nothing overflows) and
    /// the rest, or `nil`.
    /// (Searched byte by byte: a `_` that a combining mark follows is one Character with it.)
    static func split(_ text: String) -> (micros: Int64, rest: Substring)? {
        let bytes = text.utf8
        guard let separator = bytes.firstIndex(of: UInt8(ascii: "_")) else { return nil }
        let digits = bytes[..<separator]
        guard (1...17).contains(digits.count), digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let micros = Int64(Substring(digits))
        else { return nil }
        return (micros, Substring(bytes[bytes.index(after: separator)...]))
    }
}

/// Keyset pagination over (created_at, id) descending: stable while rows are added, and each page costs the same.
struct PageCursor {
    var createdAt: Date
    var id: UUID

    /// The text form, `<microseconds>_<uuid>` (``CursorPattern/keyset``).
    /// (A time past what 17 digits hold is written as the largest: a Double does not keep every microsecond that far.)
    var encoded: String { "\(min(SQLValue.microseconds(createdAt), 99_999_999_999_999_999))_\(id.uuidString.lowercased())" }

    init(createdAt: Date, id: UUID) {
        self.createdAt = createdAt
        self.id = id
    }

    /// Parses a cursor, exactly as ``CursorPattern/keyset`` describes it.
    /// - Throws: `validation(cursor)` otherwise.
    init(parsing text: String) throws {
        guard let (micros, rest) = CursorPattern.split(text), rest.utf8.count == 36,
            rest.utf8.enumerated().allSatisfy({ index, byte in
                [8, 13, 18, 23].contains(index) ? byte == UInt8(ascii: "-") : (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66)
            }),
            let id = UUID(uuidString: String(rest))
        else {
            throw HubError.validation(field: "cursor", reason: "is not a cursor of this list (<microseconds>_<uuid>)")
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
