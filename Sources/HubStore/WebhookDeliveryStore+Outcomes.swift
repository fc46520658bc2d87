import Foundation
import HubCore

extension WebhookDeliveryStore {
    // MARK: - Outcomes

    /// Records `outcomes` in one transaction: each attempt row, its message's state (only while `owner` holds its
    /// lease), the webhooks' statistics (success_count, failure_count, last_triggered), their failing clocks, and the
    /// disabling of an endpoint that answered 410 Gone or has failed without a success for `disableAfter` (with a
    /// `webhook.disabled` event). Returns the webhooks disabled.
    @discardableResult
    public func record(_ outcomes: [Outcome], owner: String, disableAfter: Duration) async throws -> [WebhookID] {
        guard !outcomes.isEmpty else { return [] }
        let now = clock.now()
        let postgres = database.dialect == .postgres
        return try await database.transaction { executor in
            if postgres { try await Self.indexScansOnly(executor) }
            // Per webhook, in the order of the outcomes: statistics, the throttle and the failing clock.
            var byHook: [WebhookID: [Outcome]] = [:]
            for outcome in outcomes { byHook[outcome.webhookID, default: []].append(outcome) }
            // Webhook rows in one order in every process, so that two writers never wait on each other in a cycle.
            let order = byHook.keys.sorted { $0.uuid.uuidString < $1.uuid.uuidString }
            let tallies = order.map { hook in (hook, byHook[hook]!.filter(\.succeeded).count, byHook[hook]!.filter { !$0.succeeded }.count) }
            if postgres {
                _ = try await executor.query(
                    """
                    UPDATE webhook_statistics s SET success_count = s.success_count + u.ok::bigint, \
                    failure_count = s.failure_count + u.bad::bigint, last_triggered = $4 \
                    FROM unnest($1::text[], $2::text[], $3::text[]) AS u(hook, ok, bad) WHERE s.webhook_id = u.hook::uuid
                    """,
                    [
                        .textArray(tallies.map { $0.0.uuid.uuidString }), .textArray(tallies.map { String($0.1) }),
                        .textArray(tallies.map { String($0.2) }), .timestamp(now),
                    ])
            } else {
                for (hook, successes, failures) in tallies {
                    _ = try await executor.query(
                        """
                        UPDATE webhook_statistics SET success_count = success_count + $1, failure_count = failure_count + $2, \
                        last_triggered = $3 WHERE webhook_id = $4
                        """, [.int(Int64(successes)), .int(Int64(failures)), .timestamp(now), .uuid(hook.uuid)])
                }
            }
            // The messages and their attempts after the statistics rows: a webhook being deleted locks its statistics row
            // first, so the attempts below are either committed before its delete reads them or not written at all.
            if postgres {
                try await Self.recordRowsPostgres(outcomes, owner: owner, now: now, into: executor)
            } else {
                for outcome in outcomes { try await Self.recordRow(outcome, owner: owner, now: now, into: executor) }
            }
            // Webhooks whose last outcome here succeeded: their failing clocks stop.
            let recovered = order.filter { byHook[$0]!.last!.succeeded }
            for start in stride(from: 0, to: recovered.count, by: 500) {
                let chunk = recovered[start..<min(start + 500, recovered.count)]
                let placeholders = chunk.indices.map { "$\($0 - start + 1)" }.joined(separator: ", ")
                _ = try await executor.query(
                    "UPDATE webhooks SET failing_since = NULL WHERE webhook_id IN (\(placeholders)) AND failing_since IS NOT NULL",
                    chunk.map { .uuid($0.uuid) })
            }
            var disabled: [WebhookID] = []
            for hook in order {
                let list = byHook[hook]!
                let successes = list.filter(\.succeeded).count
                if let until = list.compactMap(\.throttleUntil).max() {
                    _ = try await executor.query(
                        """
                        UPDATE webhooks SET throttle_until = $2 WHERE webhook_id = $1 \
                        AND (throttle_until IS NULL OR throttle_until < $2)
                        """, [.uuid(hook.uuid), .timestamp(until)])
                }
                let last = list.last!
                if last.succeeded { continue }
                // Failing since the first failure after the last success of this batch (or earlier).
                let firstFailure = list.reversed().prefix { !$0.succeeded }.last!.attemptedAt
                guard
                    let row = try await executor.queryOne(
                        """
                        UPDATE webhooks SET failing_since = CASE WHEN $2 THEN $3 ELSE COALESCE(failing_since, $3) END \
                        WHERE webhook_id = $1 RETURNING failing_since, status
                        """, [.uuid(hook.uuid), .bool(successes > 0), .timestamp(firstFailure)])
                else { continue }
                let since = try row.date("failing_since")
                let reason: String
                if list.contains(where: \.gone) {
                    reason = "the endpoint answered 410 Gone"
                } else if last.attemptedAt.timeIntervalSince(since) >= disableAfter.seconds {
                    reason = "every attempt failed for \(Self.describe(disableAfter)) (since \(RFC3339.format(since)))"
                } else {
                    continue
                }
                let changed = try await executor.query(
                    """
                    UPDATE webhooks SET status = 'disabled', disabled_reason = $1, updated_at = $2 \
                    WHERE webhook_id = $3 AND status <> 'disabled' RETURNING webhook_id
                    """, [.text(reason), .timestamp(now), .uuid(hook.uuid)])
                if !changed.isEmpty {
                    disabled.append(hook)
                    try await SyncEngineStore.insertEvents(
                        [("webhook.disabled", ["webhook_id": .string(hook.description), "reason": .string(reason)])],
                        at: now, dialect: database.dialect, into: executor)
                }
            }
            return disabled
        }
    }

    /// Makes the rest of a PostgreSQL transaction prefer plain index scans, without JIT (settings local to the
    /// transaction). The messages table grows and shrinks by thousands of rows in a burst, faster than autoanalyze
    /// follows, and plans made with the statistics of a table that had just been near empty read every pending message
    /// to claim or probe for a few (seen in `hub-bench webhooks`): a bitmap scan and sort of a webhook's 15,000 pending
    /// messages, 12 ms a claim; a sequential scan of the table per webhook in the due probe, 18 ms a claim over 100
    /// webhooks. Claims and outcomes read the first due rows of an index in its order, or rows by key; every table they
    /// read has an index for it (webhooks: `webhooks_claim_order`, migration 6). JIT is off because a plan that has to
    /// fall back on a disabled scan carries its penalty cost, which passes `jit_above_cost`: a claim then took 205 ms to
    /// compile and 2 ms to run.
    static func indexScansOnly(_ executor: any SQLExecutor) async throws {
        _ = try await executor.query(
            """
            SELECT set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true), \
            set_config('jit', 'off', true)
            """, [])
    }

    /// One outcome's attempt row and message state (SQLite: statements in the caller's transaction are cheap).
    static func recordRow(_ outcome: Outcome, owner: String, now: Date, into executor: any SQLExecutor) async throws {
        _ = try await executor.query(
            """
            INSERT INTO webhook_attempts (message_seq, attempt_number, webhook_id, status_code, latency_ms, \
            response_excerpt, error, succeeded, next_attempt_at, attempted_at) \
            SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 WHERE EXISTS \
            (SELECT 1 FROM webhook_messages WHERE message_seq = $1) ON CONFLICT (message_seq, attempt_number) DO NOTHING
            """,
            [
                .int(outcome.sequence), .int(Int64(outcome.attemptNumber)), .uuid(outcome.webhookID.uuid),
                .optional(outcome.statusCode) { .int(Int64($0)) }, .int(outcome.latencyMilliseconds),
                .optional(outcome.responseExcerpt) { .text($0) }, .optional(outcome.error) { .text($0) },
                .bool(outcome.succeeded), .optional(outcome.nextAttemptAt) { .timestamp($0) }, .timestamp(outcome.attemptedAt),
            ])
        _ = try await executor.query(
            """
            UPDATE webhook_messages SET status = $1, attempts = MAX(attempts, $2), next_attempt_at = $3, \
            lease_owner = NULL, lease_expires_at = NULL, last_status_code = $4, last_error = $5, \
            delivered_at = CASE WHEN $6 THEN $7 ELSE delivered_at END WHERE message_seq = $8 AND lease_owner = $9
            """,
            [
                .text(outcome.status.rawValue), .int(Int64(outcome.attemptNumber)), .optional(outcome.nextAttemptAt) { .timestamp($0) },
                .optional(outcome.statusCode) { .int(Int64($0)) }, .optional(outcome.error) { .text($0) }, .bool(outcome.succeeded),
                .timestamp(now), .int(outcome.sequence), .text(owner),
            ])
    }

    /// Every outcome's attempt row and message state in two statements, from text arrays (an optional value is "" when
    /// absent, else "=" and the value; a time is microseconds since the epoch).
    static func recordRowsPostgres(_ outcomes: [Outcome], owner: String, now: Date, into executor: any SQLExecutor) async throws {
        func optional(_ value: String?) -> String { value.map { "=" + $0 } ?? "" }
        func time(_ date: Date?) -> String { optional(date.map { String(SQLValue.microseconds($0)) }) }
        let value = { (column: String) in "CASE WHEN \(column) = '' THEN NULL ELSE substr(\(column), 2) END" }
        let instant = { (column: String) in "timestamptz 'epoch' + (\(value(column)))::bigint * interval '1 microsecond'" }
        let sequences = SQLValue.textArray(outcomes.map { String($0.sequence) })
        let attempts = SQLValue.textArray(outcomes.map { String($0.attemptNumber) })
        let codes = SQLValue.textArray(outcomes.map { optional($0.statusCode.map(String.init)) })
        let errors = SQLValue.textArray(outcomes.map { optional($0.error) })
        let next = SQLValue.textArray(outcomes.map { time($0.nextAttemptAt) })
        let succeeded = SQLValue.textArray(outcomes.map { String($0.succeeded) })
        _ = try await executor.query(
            """
            INSERT INTO webhook_attempts (message_seq, attempt_number, webhook_id, status_code, latency_ms, \
            response_excerpt, error, succeeded, next_attempt_at, attempted_at) \
            SELECT u.seq::bigint, u.attempt::int, u.hook::uuid, (\(value("u.code")))::int, u.latency::bigint, \(value("u.excerpt")), \
            \(value("u.error")), u.ok::boolean, \(instant("u.next")), \(instant("u.at")) \
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
            $9::text[], $10::text[]) AS u(seq, attempt, hook, code, latency, excerpt, error, ok, next, at) \
            JOIN webhook_messages m ON m.message_seq = u.seq::bigint ON CONFLICT (message_seq, attempt_number) DO NOTHING
            """,
            [
                sequences, attempts, .textArray(outcomes.map { $0.webhookID.uuid.uuidString }), codes,
                .textArray(outcomes.map { String($0.latencyMilliseconds) }), .textArray(outcomes.map { optional($0.responseExcerpt) }),
                errors, succeeded, next, .textArray(outcomes.map { time($0.attemptedAt) }),
            ])
        _ = try await executor.query(
            """
            UPDATE webhook_messages m SET status = u.status, attempts = GREATEST(m.attempts, u.attempt::int), \
            next_attempt_at = \(instant("u.next")), lease_owner = NULL, lease_expires_at = NULL, \
            last_status_code = (\(value("u.code")))::int, last_error = \(value("u.error")), \
            delivered_at = CASE WHEN u.ok::boolean THEN $8 ELSE m.delivered_at END \
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) \
            AS u(seq, status, attempt, next, code, error, ok) WHERE m.message_seq = u.seq::bigint AND m.lease_owner = $9
            """,
            [
                sequences, .textArray(outcomes.map(\.status.rawValue)), attempts, next, codes, errors, succeeded, .timestamp(now),
                .text(owner),
            ])
    }

    static func describe(_ duration: Duration) -> String {
        let seconds = duration.components.seconds
        if seconds % 86_400 == 0 { return "\(seconds / 86_400) d" }
        if seconds % 3600 == 0 { return "\(seconds / 3600) h" }
        return "\(seconds) s"
    }
}
