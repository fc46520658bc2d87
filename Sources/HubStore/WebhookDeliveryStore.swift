import Foundation
import HubCore

/// The delivery side of webhooks over any ``SQLDatabase``: the outbox's fan-out into one message per event and
/// subscribed webhook, leased claims of due messages, attempts recorded with their statistics, and replay.
///
/// Every message is in flight in at most one place: a claim leases it (the webhook's row is locked while its messages
/// are claimed, `FOR UPDATE SKIP LOCKED` on PostgreSQL, so claimers never wait on each other), and only the lease's
/// owner may record its outcome. A worker that dies leaves leases that expire; the messages are then claimed again
/// (delivery is at least once).
public struct WebhookDeliveryStore: Sendable {
    let database: any SQLDatabase
    let clock: WallClock

    public init(database: any SQLDatabase, clock: WallClock = .system) {
        self.database = database
        self.clock = clock
    }

    /// A leased message with what its delivery needs.
    public struct Claimed: Sendable, Hashable {
        public var sequence: Int64
        public var webhookID: WebhookID
        public var eventType: String
        public var body: String
        /// Attempts made before this one (this one is number `attempts + 1`).
        public var attempts: Int
        /// Attempts made before the last replay (the retry schedule counts from there).
        public var scheduleStart: Int
        public var eventCreatedAt: Date
        /// When the webhook's registration last changed (settings caches are keyed by it).
        public var webhookUpdatedAt: Date
        /// The webhook's rate limit: its share of a claim is sent at most this many a second.
        public var rateLimit: Int?
        /// The webhook delivers one message at a time, in event order.
        public var ordered: Bool
        /// When the claim's lease ends.
        public var leaseExpiresAt: Date
        public var id: String { "msg_\(sequence)" }
    }

    /// The result of one attempt, as the dispatcher hands it back.
    public struct Outcome: Sendable, Hashable {
        public var sequence: Int64
        public var webhookID: WebhookID
        public var attemptNumber: Int
        public var statusCode: Int?
        public var latencyMilliseconds: Int64
        public var responseExcerpt: String?
        public var error: String?
        public var succeeded: Bool
        /// The endpoint answered 410 Gone: it is disabled at once.
        public var gone: Bool
        /// When the next attempt is due; nil when none follows (the message fails, unless it succeeded).
        public var nextAttemptAt: Date?
        public var attemptedAt: Date
        /// For a rate-limited webhook: no claim of its messages before this (its last send plus one interval).
        public var throttleUntil: Date?
        /// The message's status after this attempt.
        var status: WebhookMessageStatus { succeeded ? .succeeded : (nextAttemptAt == nil ? .failed : .pending) }

        public init(
            sequence: Int64, webhookID: WebhookID, attemptNumber: Int, statusCode: Int?, latencyMilliseconds: Int64,
            responseExcerpt: String?, error: String?, succeeded: Bool, gone: Bool, nextAttemptAt: Date?, attemptedAt: Date,
            throttleUntil: Date? = nil
        ) {
            self.throttleUntil = throttleUntil
            self.sequence = sequence
            self.webhookID = webhookID
            self.attemptNumber = attemptNumber
            self.statusCode = statusCode
            self.latencyMilliseconds = latencyMilliseconds
            self.responseExcerpt = responseExcerpt
            self.error = error
            self.succeeded = succeeded
            self.gone = gone
            self.nextAttemptAt = nextAttemptAt
            self.attemptedAt = attemptedAt
        }
    }

    // MARK: - Emitting

    /// Stores one event of the catalog in the outbox (delivered to subscribed webhooks by the dispatcher).
    /// - Throws: `validation(event_type)` for a type the catalog does not list, `validation(payload)` for NUL.
    @discardableResult
    public func emit(_ type: String, payload: JSONValue) async throws -> Int64 {
        guard EventCatalog.types[type] != nil else {
            throw HubError.validation(field: "event_type", reason: "is not an event type of the catalog")
        }
        try Validate.noNUL(payload, field: "payload")
        return try await SyncEngineStore.insertEvents([(type, payload)], at: clock.now(), dialect: database.dialect, into: database)[0]
    }

    // MARK: - Fan-out

    /// Turns up to `limit` undispatched events, in outbox order, into messages for every webhook (not disabled) whose
    /// subscriptions match, and marks them dispatched, in one transaction. One fan-out runs at a time per database
    /// (others return 0 at once), so messages are created in event order. Returns the number of events handled.
    public func fanOut(limit: Int = 500) async throws -> Int {
        let now = clock.now()
        let (handled, written) = try await database.transaction { executor -> (Int, Int) in
            if database.dialect == .postgres {
                let locked = try await executor.queryOne("SELECT pg_try_advisory_xact_lock(7370019) AS locked", [])!
                guard try locked.bool("locked") else { return (0, 0) }
            }
            // Up to `limit` events of the oldest rows, in order. A row of a batch's record events is taken in parts: its
            // `fanned_out` counts the events of it already taken, and the row is dispatched once all are.
            let dialect = database.dialect
            let candidates = try await executor.query(
                dialect == .postgres
                    // Events are numbered when inserted, not when committed: only events of transactions older than
                    // every running one that may still commit an earlier-numbered event are taken (Self.eventHorizon), in
                    // (transaction, sequence) order. SQLite has one writer: its order is the commit order.
                    ? """
                    SELECT e.event_seq, \(SyncEngineStore.lastOfRow(dialect)) - e.event_seq + 1 AS n, e.fanned_out FROM events e \
                    WHERE NOT e.dispatched AND e.xact_id < \(Self.eventHorizon) ORDER BY e.xact_id, e.event_seq LIMIT $1
                    """
                    : """
                    SELECT e.event_seq, \(SyncEngineStore.lastOfRow(dialect)) - e.event_seq + 1 AS n, e.fanned_out FROM events e \
                    WHERE e.dispatched = 0 ORDER BY e.event_seq LIMIT $1
                    """,
                [.int(Int64(limit))])
            // Each row taken, with the part of its events (by position, from 1): after `from`, up to `to`.
            var parts: [(row: Int64, from: Int64, to: Int64, size: Int64)] = []
            var count: Int64 = 0
            for candidate in candidates where count < Int64(limit) {
                let size = try candidate.int("n")
                let from = try candidate.int("fanned_out")
                let to = min(size, from + Int64(limit) - count)
                parts.append((try candidate.int("event_seq"), from, to, size))
                count += to - from
            }
            guard !parts.isEmpty else { return (0, 0) }
            let picked = parts.indices.map { "($\(3 * $0 + 1), $\(3 * $0 + 2), $\(3 * $0 + 3))" }.joined(separator: ", ")
            let position = dialect == .postgres ? "x.position" : "COALESCE(x.key, 0) + 1"
            let source = """
                (SELECT events.*, pick.column2 AS part_from, pick.column3 AS part_to FROM events \
                JOIN (VALUES \(picked)) AS pick ON events.event_seq = pick.column1)
                """
            let rows = try await executor.query(
                """
                SELECT \(SyncEngineStore.eventColumns(dialect, from: source)) WHERE \(position) > e.part_from \
                AND \(position) <= e.part_to ORDER BY \(dialect == .postgres ? "e.xact_id, " : "")seq
                """,
                parts.flatMap { [SQLValue.int($0.row), .int($0.from), .int($0.to)] })
            let data = try await SyncEngineStore.recordData(for: rows, dialect: dialect, in: executor)
            let events = try zip(rows, data).map { try OutboxEvent($0, data: $1) }
            // Rows whose events are all taken are dispatched; a row taken in part (the last one, at most) moves on.
            let done = parts.filter { $0.to == $0.size }.map { String($0.row) }
            let partial = parts.filter { $0.to < $0.size }
            func markDispatched() async throws {
                if !done.isEmpty {
                    _ = try await executor.query(
                        """
                        UPDATE events SET dispatched = \(dialect == .postgres ? "true" : "1") \
                        WHERE \(dialect.isIn("event_seq", textArray: "$1", as: "bigint"))
                        """, [.textArray(done)])
                }
                for part in partial {
                    _ = try await executor.query(
                        "UPDATE events SET fanned_out = $1 WHERE event_seq = $2", [.int(part.to), .int(part.row)])
                }
            }
            guard !events.isEmpty else {
                try await markDispatched()
                return (0, 0)
            }
            let hooks = try await executor.query(
                // FOR SHARE: a webhook deleted meanwhile waits for this fan-out, then deletes the messages it wrote.
                "SELECT webhook_id, event_types FROM webhooks WHERE status <> 'disabled'\(database.dialect == .postgres ? " FOR SHARE" : "")", []
            ).map { (WebhookID(try $0.uuid("webhook_id")), try $0.stringArray("event_types")) }
            // Which webhooks get which event; each event's body is rendered once.
            var pairs: [(hook: WebhookID, event: Int)] = []
            var bodies: [Int: String] = [:]
            for (index, event) in events.enumerated() {
                for (hook, patterns) in hooks where patterns.contains(where: { EventCatalog.matches($0, event.type) }) {
                    if bodies[index] == nil { bodies[index] = try event.body() }
                    pairs.append((hook, index))
                }
            }
            if database.dialect == .postgres {
                // One statement: the events' bodies once, and the (webhook, event) pairs in order, each naming its event
                // by position. The pairs alone are put in order, and each row then takes its event's columns by position
                // (joining first and then sorting every row with its body spilled to disk at 20,000 messages: 200 ms).
                // The rows reach the insert, which numbers the messages, in the subquery's order: nothing above it
                // reorders them.
                let used = bodies.keys.sorted()
                let position = Dictionary(uniqueKeysWithValues: used.enumerated().map { ($0.element, $0.offset + 1) })
                if !pairs.isEmpty {
                    _ = try await executor.query(
                        """
                        INSERT INTO webhook_messages (webhook_id, event_seq, event_type, body, status, next_attempt_at, \
                        event_created_at, created_at) SELECT p.hook::uuid, ($3::text[])[p.e]::bigint, ($4::text[])[p.e], \
                        ($5::text[])[p.e], 'pending', $7, timestamptz 'epoch' + ($6::text[])[p.e]::bigint * interval '1 microsecond', $7 \
                        FROM (SELECT u.hook, u.e::int AS e FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(hook, e, position) \
                        ORDER BY u.position) AS p
                        """,
                        [
                            .textArray(pairs.map { $0.hook.uuid.uuidString }), .textArray(pairs.map { String(position[$0.event]!) }),
                            .textArray(used.map { String(events[$0].sequence) }), .textArray(used.map { events[$0].type }),
                            .textArray(used.map { bodies[$0]! }), .textArray(used.map { String(SQLValue.microseconds(events[$0].createdAt)) }),
                            .timestamp(now),
                        ])
                }
                try await markDispatched()
                return (events.count, pairs.count)
            }
            for start in stride(from: 0, to: pairs.count, by: 1000) {
                let chunk = pairs[start..<min(start + 1000, pairs.count)]
                var binds: [SQLValue] = []
                var tuples: [String] = []
                for pair in chunk {
                    let base = binds.count
                    let event = events[pair.event]
                    binds += [
                        .uuid(pair.hook.uuid), .int(event.sequence), .text(event.type), .text(bodies[pair.event]!), .timestamp(now),
                        .timestamp(event.createdAt),
                    ]
                    tuples.append(
                        "($\(base + 1), $\(base + 2), $\(base + 3), $\(base + 4), 'pending', $\(base + 5), $\(base + 6), $\(base + 5))")
                }
                _ = try await executor.query(
                    """
                    INSERT INTO webhook_messages (webhook_id, event_seq, event_type, body, status, next_attempt_at, \
                    event_created_at, created_at) VALUES \(tuples.joined(separator: ", "))
                    """, binds)
            }
            try await markDispatched()
            return (events.count, pairs.count)
        }
        if database.dialect == .postgres, written >= 500 { await refreshMessageStatistics(written: written) }
        return handled
    }

    /// The oldest transaction (PostgreSQL, as `xid8`) whose events the fan-out must wait for: the oldest transaction
    /// in progress in the statement's snapshot, leaving out those that are still running and hold no lock on this
    /// database's `events` table (a transaction that inserted an event holds one until it ends; one that has not may still
    /// insert, but later and so after every event taken now). Without that, any long transaction in the cluster, in any
    /// database (a report, a dump, an outcome transaction waiting on a lock), held back every event numbered after it
    /// began. One that ended since the snapshot is waited for once more (its events show in the next snapshot). The
    /// snapshot's next transaction id when none is left.
    static let eventHorizon = """
        (SELECT COALESCE((SELECT min(xid) FROM pg_snapshot_xip(s.snapshot) AS xid \
        WHERE (xid::text::bigint % 4294967296)::text::xid NOT IN (SELECT t.transactionid FROM pg_locks t \
        WHERE t.locktype = 'transactionid' AND t.mode = 'ExclusiveLock' AND NOT EXISTS (SELECT 1 FROM pg_locks r \
        WHERE r.pid = t.pid AND r.locktype = 'relation' AND r.relation = 'events'::regclass \
        AND r.database = (SELECT oid FROM pg_database WHERE datname = current_database())))), pg_snapshot_xmax(s.snapshot)) \
        FROM (SELECT pg_current_snapshot() AS snapshot) AS s)
        """

    /// After a large fan-out, analyzes the messages table if its statistics count fewer rows than were just written.
    /// That happens when a burst follows the table's emptying (autovacuum then records it empty): the planner, taking
    /// it for empty, finds every index equally cheap and picks scans of a whole index per claimed or recorded message
    /// (`hub-bench webhooks`, one run in ten: claims of 1–2 s, a 100-endpoint burst taking 62 s instead of 3).
    /// Autoanalyze would come, but only after the burst. Best effort: a lock held elsewhere (autovacuum) is not waited
    /// for long, and a role that does not own the table only gets a warning.
    func refreshMessageStatistics(written: Int) async {
        do {
            let row = try await database.queryOne(
                "SELECT reltuples < $1 AS stale FROM pg_class WHERE oid = 'webhook_messages'::regclass", [.int(Int64(written))])
            guard let row, try row.bool("stale") else { return }
            try await database.transaction { executor in
                _ = try await executor.query("SELECT set_config('lock_timeout', '200ms', true)", [])
                _ = try await executor.query("ANALYZE webhook_messages", [])
            }
        } catch {
            // The next large fan-out tries again; autoanalyze comes anyway.
        }
    }

    /// An event as the fan-out reads it (``SyncEngineStore/eventColumns(_:from:)``). Its body is written from the stored JSON
    /// text as it is (payloads and records are stored canonical), never parsed and written again: the body that
    /// ``SyncEngineStore/decodeEvent(_:data:)`` would give, canonical as well, for about 10 µs less a message.
    struct OutboxEvent {
        let sequence: Int64
        let type: String
        let createdAt: Date
        let row: SQLRow
        /// A record event's record data as stored (none once the record is deleted).
        let data: String?

        init(_ row: SQLRow, data: String?) throws {
            sequence = try row.int("seq")
            type = try row.string("event_type")
            createdAt = try row.date("created_at")
            self.row = row
            self.data = data
        }

        /// The body every attempt of the event's messages sends (Standard Webhooks' shape: type, timestamp, data), its
        /// members in canonical order. A record event's data is its thin row with the record's data (none once the
        /// record is deleted).
        func body() throws -> String {
            var text = #"{"data":"#
            if !row.isNull("payload") {
                text += try row.jsonText("payload")
            } else {
                text += "{"
                if let data { text += #""data":"# + data + "," }
                text += #""entity_type":"# + JSONValue.quoted(try row.string("entity_type"))
                text += #","external_id":"# + JSONValue.quoted(try row.string("external_id"))
                text += #","integration_id":""# + (try row.uuid("integration_id")).uuidString.lowercased()
                text += #"","sync_job_id":""# + (try row.uuid("sync_job_id")).uuidString.lowercased() + #""}"#
            }
            text += #","id":"evt_"# + String(sequence) + #"","timestamp":""# + RFC3339.format(createdAt) + #"","type":"#
            text += JSONValue.quoted(type) + "}"
            return text
        }
    }

    // MARK: - Retention

    /// Deletes finished messages (succeeded or failed) created before `cutoff` and not attempted since (a replayed
    /// message counts from its last attempt) with their attempts, and dispatched events created before it; pending
    /// messages and undispatched events stay however old. In batches of 5,000 messages, each one transaction (its
    /// messages locked, so a replay waits or keeps its message), then 5,000 events a statement. Rows are numbered in
    /// creation order, so each scan walks the key from the start only up to the first row created since `cutoff`, not the
    /// whole table. Returns how many messages and events went.
    @discardableResult
    public func prune(before cutoff: Date) async throws -> (messages: Int, events: Int) {
        let postgres = database.dialect == .postgres
        var messages = 0
        while true {
            let count = try await database.transaction { executor -> Int in
                let sequences = try await executor.query(
                    """
                    SELECT message_seq FROM webhook_messages m WHERE message_seq < COALESCE((SELECT message_seq \
                    FROM webhook_messages WHERE created_at >= $1 ORDER BY message_seq LIMIT 1), 9223372036854775807) \
                    AND status <> 'pending' AND created_at < $1 AND NOT EXISTS (SELECT 1 FROM webhook_attempts a \
                    WHERE a.message_seq = m.message_seq AND a.attempted_at >= $1) \
                    ORDER BY message_seq LIMIT 5000\(postgres ? " FOR UPDATE SKIP LOCKED" : "")
                    """, [.timestamp(cutoff)]
                ).map { try $0.int("message_seq") }
                // Attempts first: on PostgreSQL they have no foreign key to their message (migration 7).
                let chosen = database.dialect.isIn("message_seq", textArray: "$1", as: "bigint")
                for table in ["webhook_attempts", "webhook_messages"] {
                    _ = try await executor.query("DELETE FROM \(table) WHERE \(chosen)", [.textArray(sequences.map(String.init))])
                }
                return sequences.count
            }
            messages += count
            if count < 5000 { break }
        }
        var events = 0
        while true {
            let count = try await database.query(
                """
                DELETE FROM events WHERE event_seq IN (SELECT event_seq FROM events WHERE event_seq < COALESCE((SELECT event_seq \
                FROM events WHERE created_at >= $1 ORDER BY event_seq LIMIT 1), 9223372036854775807) \
                AND dispatched = $2 AND created_at < $1 ORDER BY event_seq LIMIT 5000) RETURNING 1 AS gone
                """, [.timestamp(cutoff), .bool(true)]).count
            events += count
            if count < 5000 { break }
        }
        return (messages, events)
    }

    // MARK: - Reads and replay

    static let messageColumns = """
        message_seq, webhook_id, event_seq, event_type, body, status, attempts, next_attempt_at, last_status_code, \
        last_error, event_created_at, created_at, delivered_at
        """

    static func decodeMessage(_ row: SQLRow) throws -> WebhookMessage {
        guard let status = WebhookMessageStatus(rawValue: try row.string("status")) else {
            throw SQLError.decoding(column: "status")
        }
        return WebhookMessage(
            sequence: try row.int("message_seq"), webhookID: WebhookID(try row.uuid("webhook_id")),
            eventSequence: try row.int("event_seq"), eventType: try row.string("event_type"), body: try row.string("body"),
            status: status, attempts: Int(try row.int("attempts")),
            nextAttemptAt: status == .pending ? try row.optionalDate("next_attempt_at") : nil,
            lastStatusCode: try row.optionalInt("last_status_code").map(Int.init), lastError: try row.optionalString("last_error"),
            eventCreatedAt: try row.date("event_created_at"), createdAt: try row.date("created_at"),
            deliveredAt: try row.optionalDate("delivered_at"))
    }

    /// Messages of a webhook, newest first, optionally of one status; the cursor is the last message's id.
    /// - Throws: `notFound` for an unknown webhook; `validation(limit | cursor)`.
    public func messages(
        of webhookID: WebhookID, status: WebhookMessageStatus? = nil, page: PageRequest = PageRequest()
    ) async throws -> Page<WebhookMessage> {
        try page.validate()
        try await requireWebhook(webhookID)
        var binds: [SQLValue] = [.uuid(webhookID.uuid)]
        var conditions = ["webhook_id = $1"]
        if let status {
            binds.append(.text(status.rawValue))
            conditions.append("status = $\(binds.count)")
        }
        if let cursor = page.cursor {
            binds.append(.int(try WebhookMessage.sequence(of: cursor, field: "cursor")))
            conditions.append("message_seq < $\(binds.count)")
        }
        binds.append(.int(Int64(page.limit + 1)))
        let rows = try await database.query(
            """
            SELECT \(Self.messageColumns) FROM webhook_messages WHERE \(conditions.joined(separator: " AND ")) \
            ORDER BY message_seq DESC LIMIT $\(binds.count)
            """, binds)
        let items = try rows.prefix(page.limit).map(Self.decodeMessage)
        return Page(items: items, nextCursor: rows.count > page.limit ? items.last?.id : nil)
    }

    /// One message of a webhook. - Throws: `notFound`.
    public func message(_ sequence: Int64, of webhookID: WebhookID) async throws -> WebhookMessage {
        guard
            let row = try await database.queryOne(
                "SELECT \(Self.messageColumns) FROM webhook_messages WHERE message_seq = $1 AND webhook_id = $2",
                [.int(sequence), .uuid(webhookID.uuid)])
        else { throw HubError.notFound(entity: "message", id: "msg_\(sequence)") }
        return try Self.decodeMessage(row)
    }

    /// Every attempt of a message, first first. - Throws: `notFound`.
    public func attempts(of sequence: Int64, webhookID: WebhookID) async throws -> [WebhookAttempt] {
        _ = try await message(sequence, of: webhookID)
        return try await database.query(
            """
            SELECT message_seq, attempt_number, webhook_id, status_code, latency_ms, response_excerpt, error, succeeded, \
            next_attempt_at, attempted_at FROM webhook_attempts WHERE message_seq = $1 ORDER BY attempt_number
            """, [.int(sequence)]
        ).map { row in
            WebhookAttempt(
                messageSequence: try row.int("message_seq"), attemptNumber: Int(try row.int("attempt_number")),
                webhookID: WebhookID(try row.uuid("webhook_id")), statusCode: try row.optionalInt("status_code").map(Int.init),
                latencyMilliseconds: try row.int("latency_ms"), responseExcerpt: try row.optionalString("response_excerpt"),
                error: try row.optionalString("error"), succeeded: try row.bool("succeeded"),
                nextAttemptAt: try row.optionalDate("next_attempt_at"), attemptedAt: try row.date("attempted_at"))
        }
    }

    /// Sends a message again now, whatever its status, with a fresh retry schedule (its id stays the same).
    /// - Throws: `notFound`.
    public func replay(_ sequence: Int64, of webhookID: WebhookID) async throws -> WebhookMessage {
        let rows = try await database.query(
            """
            UPDATE webhook_messages SET status = 'pending', schedule_start = attempts, next_attempt_at = $1 \
            WHERE message_seq = $2 AND webhook_id = $3 RETURNING message_seq
            """, [.timestamp(clock.now()), .int(sequence), .uuid(webhookID.uuid)])
        guard !rows.isEmpty else { throw HubError.notFound(entity: "message", id: "msg_\(sequence)") }
        return try await message(sequence, of: webhookID)
    }

    /// Sends again every failed message of the webhook created in `since..<until`, with fresh retry schedules.
    /// Returns how many. - Throws: `notFound`; `validation(until)` when until is not after since.
    public func recover(_ webhookID: WebhookID, since: Date, until: Date? = nil) async throws -> Int {
        let end = until ?? clock.now().addingTimeInterval(1)
        guard end > since else { throw HubError.validation(field: "until", reason: "must be after since") }
        try await requireWebhook(webhookID)
        return try await database.query(
            """
            UPDATE webhook_messages SET status = 'pending', schedule_start = attempts, next_attempt_at = $1 \
            WHERE webhook_id = $2 AND status = 'failed' AND created_at >= $3 AND created_at < $4 RETURNING message_seq
            """, [.timestamp(clock.now()), .uuid(webhookID.uuid), .timestamp(since), .timestamp(end)]
        ).count
    }

    /// Counts of the webhook's messages by status.
    public func counts(of webhookID: WebhookID) async throws -> [WebhookMessageStatus: Int64] {
        var counts: [WebhookMessageStatus: Int64] = [:]
        for row in try await database.query(
            "SELECT status, count(*) AS n FROM webhook_messages WHERE webhook_id = $1 GROUP BY status", [.uuid(webhookID.uuid)])
        {
            if let status = WebhookMessageStatus(rawValue: try row.string("status")) { counts[status] = try row.int("n") }
        }
        return counts
    }

    private func requireWebhook(_ id: WebhookID) async throws {
        guard try await database.queryOne("SELECT webhook_id FROM webhooks WHERE webhook_id = $1", [.uuid(id.uuid)]) != nil
        else { throw HubError.notFound(entity: "webhook", id: id.description) }
    }
}
