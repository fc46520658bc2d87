import Foundation
import HubCore

extension SyncEngineStore {
    // MARK: - Reads

    /// Stored records of an integration and entity type in change order (updated_at, then external id), one page at a
    /// time. - Throws: `validation(cursor)`, `validation(limit)`.
    public func records(
        _ integrationID: IntegrationID, entityType: String, filter: SyncRecordFilter, page: PageRequest
    ) async throws -> Page<SyncRecord> {
        try page.validate()
        var binds: [SQLValue] = [.uuid(integrationID.uuid), .text(entityType)]
        var conditions = ["integration_id = $1", "entity_type = $2"]
        if let after = filter.modifiedAfter {
            binds.append(.timestamp(after))
            conditions.append("updated_at > $\(binds.count)")
        }
        if let change = filter.change {
            binds.append(.text(change.rawValue))
            conditions.append("last_change = $\(binds.count)")
        }
        if let cursor = page.cursor {
            let (time, externalID) = try Self.parseRecordCursor(cursor)
            binds.append(.timestamp(time))
            binds.append(.text(externalID))
            conditions.append("(updated_at > $\(binds.count - 1) OR (updated_at = $\(binds.count - 1) AND external_id > $\(binds.count)))")
        }
        binds.append(.int(Int64(page.limit + 1)))
        let rows = try await database.query(
            """
            SELECT integration_id, entity_type, external_id, data, content_hash, last_change, created_at, updated_at, deleted_at, \
            last_job_id FROM sync_records WHERE \(conditions.joined(separator: " AND ")) ORDER BY updated_at, external_id \
            LIMIT $\(binds.count)
            """, binds)
        let items = try rows.prefix(page.limit).map { row in
            guard let change = RecordChange(rawValue: try row.string("last_change")) else { throw SQLError.decoding(column: "last_change") }
            return SyncRecord(
                integrationID: IntegrationID(try row.uuid("integration_id")), entityType: try row.string("entity_type"),
                externalID: try row.string("external_id"), data: try row.json("data"), contentHash: try row.string("content_hash"),
                lastChange: change, createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"),
                deletedAt: try row.optionalDate("deleted_at"), lastJobID: try row.optionalUUID("last_job_id").map(SyncJobID.init))
        }
        let next = rows.count > page.limit ? items.last.map { Self.recordCursor($0.updatedAt, $0.externalID) } : nil
        return Page(items: items, nextCursor: next)
    }

    /// `<microseconds>_<external id>` (``CursorPattern/record``).
    static func recordCursor(_ time: Date, _ externalID: String) -> String { "\(SQLValue.microseconds(time))_\(externalID)" }

    static func parseRecordCursor(_ text: String) throws -> (Date, String) {
        guard let (micros, externalID) = CursorPattern.split(text), !externalID.isEmpty, !externalID.utf8.contains(0) else {
            throw HubError.validation(field: "cursor", reason: "is not a cursor of this list (<microseconds>_<external id>)")
        }
        return (SQLValue.date(microseconds: micros), String(externalID))
    }

    /// The first errors of a job, in order.
    public func errors(of jobID: SyncJobID) async throws -> [SyncErrorEntry] {
        try await database.query(
            """
            SELECT sync_job_id, error_number, batch_number, external_id, reason, created_at FROM sync_errors \
            WHERE sync_job_id = $1 ORDER BY error_number
            """, [.uuid(jobID.uuid)]
        ).map { row in
            SyncErrorEntry(
                jobID: SyncJobID(try row.uuid("sync_job_id")), number: Int(try row.int("error_number")),
                batchNumber: Int(try row.int("batch_number")), externalID: try row.optionalString("external_id"),
                reason: try row.string("reason"), createdAt: try row.date("created_at"))
        }
    }

    /// The sequence number of the newest event (0 when there is none).
    public func lastEventSequence() async throws -> Int64 {
        try await database.queryOne(
            "SELECT \(Self.lastOfRow(database.dialect)) AS n FROM events e ORDER BY e.event_seq DESC LIMIT 1", []
        )?.int("n") ?? 0
    }

    /// Events after `sequence` in outbox order, at most `limit`, optionally of one type. A record event's payload is
    /// `{integration_id, entity_type, external_id, sync_job_id, data}` with the record's data as stored now (none once
    /// it is deleted).
    public func events(after sequence: Int64 = 0, type: String? = nil, limit: Int = 1000) async throws -> [HubEvent] {
        var binds: [SQLValue] = [.int(sequence), .int(Int64(limit)), .int(sequence - Int64(Self.idsPerEventRow))]
        var typeCondition = ""
        if let type {
            binds.append(.text(type))
            typeCondition = " AND o.event_type = $4"
        }
        // The first `limit` outbox rows with an event after `sequence` (each holds at least one; a row's events are at
        // most idsPerEventRow, numbered below the next row's, so rows from there on are looked at), then their events.
        let dialect = database.dialect
        let rows = """
            (SELECT * FROM events o WHERE o.event_seq > $3 AND \(Self.lastOfRow(dialect, "o")) > $1\(typeCondition) \
            ORDER BY o.event_seq LIMIT $2)
            """
        let events = try await database.query(
            "SELECT \(Self.eventColumns(dialect, from: rows)) WHERE \(Self.eventSequence(dialect)) > $1 ORDER BY seq LIMIT $2", binds)
        let data = try await Self.recordData(for: events, dialect: dialect, in: database)
        return try zip(events, data).map { try Self.decodeEvent($0, data: $1) }
    }

    /// The stored data (canonical JSON text) of the record each of `events` (rows of ``eventColumns(_:from:)``) names,
    /// in order: none for an event with a payload or a record deleted since. Records are looked up by key, the ids of
    /// one integration and entity type at once (a join of the events with the records could not count on the key:
    /// without statistics of a freshly filled table, the planner looked each event up among all of the integration's
    /// records, 66 s for 21,000 events).
    static func recordData(for events: [SQLRow], dialect: SQLDialect, in executor: any SQLExecutor) async throws -> [String?] {
        // Per integration and entity type, each external id and the positions of the events naming it.
        var wanted: [UUID: [String: [String: [Int]]]] = [:]
        for (position, event) in events.enumerated() where event.isNull("payload") && !event.isNull("external_id") {
            wanted[try event.uuid("integration_id"), default: [:]][try event.string("entity_type"), default: [:]][
                try event.string("external_id"), default: []].append(position)
        }
        let ids = dialect == .postgres ? #"external_id = ANY(($3::text[]) COLLATE "C")"# : dialect.isIn("external_id", textArray: "$3", as: "text")
        var data = [String?](repeating: nil, count: events.count)
        for (integrationID, entities) in wanted {
            for (entityType, positions) in entities {
                let rows = try await executor.query(
                    "SELECT external_id, data FROM sync_records WHERE integration_id = $1 AND entity_type = $2 AND deleted_at IS NULL AND \(ids)",
                    [.uuid(integrationID), .text(entityType), .textArray(Array(positions.keys))])
                for row in rows {
                    let text = try row.jsonText("data")
                    for position in positions[try row.string("external_id")] ?? [] { data[position] = text }
                }
            }
        }
        return data
    }

    /// The number of one event of an outbox row `e` (a record event row holds many, numbered from its `event_seq` on;
    /// see ``eventColumns(_:from:)``).
    static func eventSequence(_ dialect: SQLDialect) -> String {
        dialect == .postgres ? "e.event_seq + x.position - 1" : "e.event_seq + COALESCE(x.key, 0)"
    }

    /// The number of the last event of outbox row `alias`.
    static func lastOfRow(_ dialect: SQLDialect, _ alias: String = "e") -> String {
        dialect == .postgres
            ? "\(alias).event_seq + COALESCE(cardinality(\(alias).external_ids), 1) - 1"
            : "\(alias).event_seq + COALESCE(json_array_length(\(alias).external_ids), 1) - 1"
    }

    /// The columns ``decodeEvent(_:data:)`` reads, one row an event: outbox rows (alias `e`, from `source`) with
    /// their record events' external ids unnested (`x`). `seq` is the event's number, `row_seq` its row's. A WHERE
    /// clause follows. The records' data is read by ``recordData(for:dialect:in:)``.
    static func eventColumns(_ dialect: SQLDialect, from source: String = "events") -> String {
        // PostgreSQL: every row gives at least one (an event's own external id, or none).
        let (ids, id) = dialect == .postgres
            ? ("CROSS JOIN LATERAL unnest(COALESCE(e.external_ids, ARRAY[e.external_id])) WITH ORDINALITY AS x(external_id, position)",
               "x.external_id")
            : ("LEFT JOIN json_each(e.external_ids) AS x", "COALESCE(x.value, e.external_id)")
        return """
            \(eventSequence(dialect)) AS seq, e.event_seq AS row_seq, e.event_type, e.payload, e.integration_id, e.entity_type, \
            \(id) AS external_id, e.sync_job_id, e.created_at FROM \(source) e \(ids)
            """
    }

    /// An event row of ``eventColumns(_:from:)``: a record event's payload is assembled from its thin row and its
    /// record's `data` (``recordData(for:dialect:in:)``).
    static func decodeEvent(_ row: SQLRow, data: String?) throws -> HubEvent {
        let payload: JSONValue
        if let stored = try row.optionalJSON("payload") {
            payload = stored
        } else {
            var members: [String: JSONValue] = [
                "integration_id": .string(try row.uuid("integration_id").uuidString.lowercased()),
                "entity_type": .string(try row.string("entity_type")), "external_id": .string(try row.string("external_id")),
                "sync_job_id": .string(try row.uuid("sync_job_id").uuidString.lowercased()),
            ]
            if let data { members["data"] = try JSONValue.parse(data, field: "data") }
            payload = .object(members)
        }
        let sequence = try row.int("seq")
        return HubEvent(
            sequence: sequence, id: "evt_\(sequence)", type: try row.string("event_type"), payload: payload,
            createdAt: try row.date("created_at"))
    }
}
