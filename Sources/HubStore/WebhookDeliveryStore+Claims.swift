import Foundation
import HubCore

extension WebhookDeliveryStore {
    // MARK: - Claims

    /// Leases up to `limit` due messages for `owner` for `lease`, oldest first per webhook, over at most 100 webhooks
    /// (least recently served first). An ordered webhook gets one message at a time, its oldest pending one, and only
    /// when none of its messages is in flight; a rate-limited webhook gets at most `rate_limit` a second. With `only`,
    /// just those webhooks are looked at (a dispatcher claims an ordered webhook's next message right after recording
    /// the outcome of the one before).
    public func claim(
        owner: String, lease: Duration, limit: Int, perWebhook: Int = 200, only: [WebhookID]? = nil
    ) async throws -> [Claimed] {
        guard limit > 0, only?.isEmpty != true else { return [] }
        let now = clock.now()
        let expires = now.addingTimeInterval(lease.seconds)
        let lock = database.dialect == .postgres ? " FOR UPDATE OF w SKIP LOCKED" : ""
        let free = "(m.lease_expires_at IS NULL OR m.lease_expires_at <= $1)"
        return try await database.transaction { executor in
            if database.dialect == .postgres { try await Self.indexScansOnly(executor) }
            // Webhooks with a due message: a probe of each webhook's due index that stops at its first due message
            // (PostgreSQL: lateral, so that it stays a probe per webhook; messages waiting for a retry or in flight are
            // stepped over).
            let due = "m.webhook_id = w.webhook_id AND m.status = 'pending' AND m.next_attempt_at <= $1 AND \(free)"
            // Webhooks already looked at in this claim are left out of the next look.
            var unseen = "NOT (\(database.dialect.isIn("w.webhook_id", textArray: "$3", as: "uuid")))"
            if only != nil { unseen += " AND \(database.dialect.isIn("w.webhook_id", textArray: "$4", as: "uuid"))" }
            let chosen = only.map { [SQLValue.textArray($0.map { $0.uuid.uuidString.lowercased() })] } ?? []
            let probe = database.dialect == .postgres
                ? """
                SELECT w.webhook_id, w.ordered, w.rate_limit, w.updated_at FROM webhooks w \
                CROSS JOIN LATERAL (SELECT 1 FROM webhook_messages m WHERE \(due) LIMIT 1) AS d \
                WHERE w.status <> 'disabled' AND (w.throttle_until IS NULL OR w.throttle_until <= $1) AND \(unseen) \
                ORDER BY w.throttle_until NULLS FIRST, w.webhook_id LIMIT $2\(lock)
                """
                : """
                SELECT w.webhook_id, w.ordered, w.rate_limit, w.updated_at FROM webhooks w WHERE w.status <> 'disabled' \
                AND (w.throttle_until IS NULL OR w.throttle_until <= $1) AND \(unseen) AND EXISTS (SELECT 1 FROM webhook_messages m \
                WHERE \(due)) ORDER BY w.throttle_until NULLS FIRST, w.webhook_id LIMIT $2
                """
            var claimed: [Claimed] = []
            // A look at a few webhooks at a time, more each time while room remains, at most 100 in all: a claim that
            // one or two webhooks fill probes no others (it probed 100 for them before: a tenth of PostgreSQL's work in
            // a 100-endpoint burst).
            var seen: [String] = []
            var batch = 8
            while claimed.count < limit, seen.count < 100 {
                let size = min(batch, 100 - seen.count)
                let hooks = try await executor.query(probe, [.timestamp(now), .int(Int64(size)), .textArray(seen)] + chosen)
                seen += try hooks.map { try $0.uuid("webhook_id").uuidString.lowercased() }
                for hook in hooks {
                    let room = limit - claimed.count
                    guard room > 0 else { break }
                    let id = WebhookID(try hook.uuid("webhook_id"))
                    let ordered = try hook.bool("ordered")
                    let rate = try hook.optionalInt("rate_limit").flatMap { $0 > 0 ? Int(clamping: $0) : nil }  // a stored 0 or less: no limit
                    var count = min(room, perWebhook)
                    if let rate {
                        // One share at a time: the next is claimed once the last one's sends are recorded (they move the
                        // throttle past the last send), so sends never bunch even when a dispatcher falls behind.
                        count = min(count, rate)
                        let busy = try await executor.queryOne(
                            """
                            SELECT message_seq FROM webhook_messages WHERE webhook_id = $1 AND status = 'pending' \
                            AND lease_expires_at > $2 LIMIT 1
                            """, [.uuid(id.uuid), .timestamp(now)])
                        if busy != nil { continue }
                    }
                    let candidates: String
                    if ordered {
                        // The head of the webhook's queue, if it is due and not in flight.
                        count = 1
                        candidates = "SELECT message_seq FROM webhook_messages WHERE webhook_id = $3 AND status = 'pending' ORDER BY message_seq LIMIT $4"
                    } else {
                        candidates = """
                            SELECT message_seq FROM webhook_messages m WHERE webhook_id = $3 AND status = 'pending' \
                            AND next_attempt_at <= $1 AND \(free) ORDER BY message_seq LIMIT $4
                            """
                    }
                    let rows = try await executor.query(
                        """
                        UPDATE webhook_messages SET lease_owner = $2, lease_expires_at = $5 WHERE message_seq IN (\(candidates)) \
                        AND next_attempt_at <= $1 AND (lease_expires_at IS NULL OR lease_expires_at <= $1) \
                        RETURNING message_seq, event_type, body, attempts, schedule_start, event_created_at
                        """, [.timestamp(now), .text(owner), .uuid(id.uuid), .int(Int64(count)), .timestamp(expires)])
                    let sorted = try rows.map { (try $0.int("message_seq"), $0) }.sorted { $0.0 < $1.0 }
                    for (sequence, row) in sorted {
                        claimed.append(Claimed(
                            sequence: sequence, webhookID: id, eventType: try row.string("event_type"), body: try row.string("body"),
                            attempts: Int(try row.int("attempts")), scheduleStart: Int(try row.int("schedule_start")),
                            eventCreatedAt: try row.date("event_created_at"), webhookUpdatedAt: try hook.date("updated_at"),
                            rateLimit: rate, ordered: ordered, leaseExpiresAt: expires))
                    }
                    // The least recently served webhooks come first next time; a rate-limited one waits for its share.
                    let until = rate.map { now.addingTimeInterval(Double(max(rows.count, 1)) / Double($0)) } ?? now
                    _ = try await executor.query(
                        "UPDATE webhooks SET throttle_until = $1 WHERE webhook_id = $2", [.timestamp(until), .uuid(id.uuid)])
                }
                if hooks.count < size { break }
                batch *= 2
            }
            return claimed
        }
    }

    /// Extends `owner`'s leases on `sequences` to `lease` from now, for those still pending and leased to `owner`
    /// (whatever their expiry: a message whose lease ran out is still `owner`'s until another claim takes it). Returns
    /// the sequences renewed; a sequence left out was recorded meanwhile or claimed by another owner, and must not be
    /// sent by `owner` any more.
    public func renew(_ sequences: [Int64], owner: String, lease: Duration) async throws -> [Int64] {
        guard !sequences.isEmpty else { return [] }
        let expires = clock.now().addingTimeInterval(lease.seconds)
        return try await database.query(
            """
            UPDATE webhook_messages SET lease_expires_at = $1 \
            WHERE lease_owner = $2 AND status = 'pending' AND \(database.dialect.isIn("message_seq", textArray: "$3", as: "bigint")) \
            RETURNING message_seq
            """, [.timestamp(expires), .text(owner), .textArray(sequences.map(String.init))]
        ).map { try $0.int("message_seq") }
    }
}
