import Foundation
import HubCore

/// A numbered, named schema step. The list is append-only: a released migration is never edited, and both
/// backends run the same list (each with its own DDL text).
public struct Migration: Sendable {
    /// The migration's number, unique and ascending; recorded in `schema_migrations`.
    public let version: Int
    /// A short snake_case name, recorded beside the version.
    public let name: String
    let postgres: [String]
    let sqlite: [String]

    func statements(for dialect: SQLDialect) -> [String] {
        dialect == .postgres ? postgres : sqlite
    }
}

/// Applies and checks migrations, recording each in `schema_migrations`.
public struct Migrator: Sendable {
    /// Every migration of this build, in order.
    public static let all: [Migration] = [
        Migration.designTables, Migration.apiKeys, Migration.syncEngine, Migration.webhookDelivery, Migration.healthMonitor,
        Migration.webhookClaims, Migration.deliveryWrites, Migration.bytewiseRecordKeys, Migration.batchTurns,
        Migration.recordEventRows,
    ]

    let database: any SQLDatabase

    /// A migrator for `database`.
    public init(database: any SQLDatabase) { self.database = database }

    /// The versions recorded in `schema_migrations` (empty for a new database).
    public func appliedVersions() async throws -> [Int] {
        try await ensureTable()
        return try await database.query("SELECT version FROM schema_migrations ORDER BY version", [])
            .map { Int(try $0.int("version")) }
    }

    /// Applies every pending migration, each in its own transaction. Safe to run from several processes at once:
    /// on PostgreSQL an advisory lock serialises them, on SQLite the write lock does; a migration applied by
    /// another process meanwhile is skipped. Returns the migrations applied by this call.
    @discardableResult
    public func migrate() async throws -> [Migration] {
        try await ensureTable()
        var applied: [Migration] = []
        for migration in Self.all {
            let didApply = try await database.transaction { executor in
                try await lock(executor)
                let existing = try await executor.queryOne(
                    "SELECT version FROM schema_migrations WHERE version = $1", [.int(Int64(migration.version))])
                guard existing == nil else { return false }
                for statement in migration.statements(for: database.dialect) {
                    _ = try await executor.query(statement, [])
                }
                _ = try await executor.query(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                    [.int(Int64(migration.version)), .text(migration.name), .timestamp(WallClock.system.now())])
                return true
            }
            if didApply { applied.append(migration) }
        }
        return applied
    }

    /// Throws `schemaMismatch` unless the database has exactly this build's migrations: pending ones mean
    /// `hub migrate` has not run; unknown ones mean the database was migrated by a newer build.
    public func check() async throws {
        let applied = try await appliedVersions()
        let known = Self.all.map(\.version)
        if let unknown = applied.first(where: { !known.contains($0) }) {
            throw HubError.schemaMismatch(reason: "the database has migration \(unknown), which this build does not know; upgrade hub")
        }
        let pending = known.filter { !applied.contains($0) }
        if !pending.isEmpty {
            throw HubError.schemaMismatch(
                reason: "migrations \(pending.map(String.init).joined(separator: ", ")) are pending; run `hub migrate`")
        }
    }

    private func ensureTable() async throws {
        let type = database.dialect == .postgres ? "timestamptz" : "INTEGER"
        // Under the migration lock: concurrent `CREATE TABLE IF NOT EXISTS` races on PostgreSQL's catalog.
        try await database.transaction { executor in
            try await lock(executor)
            _ = try await executor.query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at \(type) NOT NULL)",
                [])
        }
    }

    /// Serialises migrators: an advisory lock held until the transaction ends on PostgreSQL (SQLite's
    /// `BEGIN IMMEDIATE` already holds the write lock).
    private func lock(_ executor: any SQLExecutor) async throws {
        if database.dialect == .postgres {
            _ = try await executor.query("SELECT pg_advisory_xact_lock(7264110382)", [])
        }
    }
}

extension Migration {
    /// Migration 1: the nine tables of DAO-MDE-03-08 with the columns the design's statements name, plus
    /// what the steps need (counts, sums, error classes and a fixed latency histogram for statistics keyed by
    /// integration, endpoint template, method and UTC day; a one-running-job index; cascade rules).
    static let designTables = Migration(
        version: 1, name: "create_design_tables",
        postgres: [
            """
            CREATE TABLE external_integrations (
                integration_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                system_id text NOT NULL,
                integration_type text NOT NULL,
                endpoint_url text NOT NULL,
                auth_config jsonb NOT NULL,
                auth_config_masked jsonb NOT NULL DEFAULT '{}',
                mapping_config jsonb,
                status text NOT NULL DEFAULT 'active',
                last_sync timestamptz,
                error_count bigint NOT NULL DEFAULT 0,
                config_version text NOT NULL DEFAULT 'v1.0',
                config_revision integer NOT NULL DEFAULT 0,
                last_tested_at timestamptz,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                CONSTRAINT external_integrations_system_type_key UNIQUE (system_id, integration_type)
            )
            """,
            "CREATE INDEX external_integrations_created ON external_integrations (created_at DESC, integration_id DESC)",
            """
            CREATE TABLE sync_jobs (
                sync_job_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                integration_id uuid NOT NULL REFERENCES external_integrations (integration_id) ON DELETE CASCADE,
                sync_type text NOT NULL,
                entity_type text NOT NULL,
                filters jsonb,
                batch_size integer NOT NULL DEFAULT 1000,
                status text NOT NULL DEFAULT 'running',
                records_processed bigint NOT NULL DEFAULT 0,
                errors_count bigint NOT NULL DEFAULT 0,
                started_at timestamptz NOT NULL DEFAULT now(),
                last_batch_at timestamptz,
                completed_at timestamptz,
                created_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            "CREATE UNIQUE INDEX sync_jobs_one_running ON sync_jobs (integration_id, entity_type) WHERE status = 'running'",
            "CREATE INDEX sync_jobs_created ON sync_jobs (created_at DESC, sync_job_id DESC)",
            "CREATE INDEX sync_jobs_integration ON sync_jobs (integration_id, created_at DESC)",
            """
            CREATE TABLE sync_batches (
                batch_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                sync_job_id uuid NOT NULL REFERENCES sync_jobs (sync_job_id) ON DELETE CASCADE,
                batch_number integer NOT NULL,
                records_count integer NOT NULL,
                status text NOT NULL,
                processed_at timestamptz NOT NULL DEFAULT now(),
                CONSTRAINT sync_batches_job_number_key UNIQUE (sync_job_id, batch_number)
            )
            """,
            """
            CREATE TABLE api_operations (
                operation_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                integration_id uuid REFERENCES external_integrations (integration_id) ON DELETE SET NULL,
                operation_type text NOT NULL,
                endpoint text NOT NULL,
                headers jsonb,
                payload jsonb,
                timeout integer NOT NULL DEFAULT 30,
                status text NOT NULL DEFAULT 'pending',
                status_code integer,
                response_data jsonb,
                response_truncated boolean NOT NULL DEFAULT false,
                execution_time bigint,
                error_message text,
                started_at timestamptz NOT NULL DEFAULT now(),
                completed_at timestamptz,
                created_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            "CREATE INDEX api_operations_created ON api_operations (created_at DESC, operation_id DESC)",
            "CREATE INDEX api_operations_integration ON api_operations (integration_id, created_at DESC)",
            """
            CREATE TABLE api_statistics (
                integration_key text NOT NULL DEFAULT '',
                endpoint text NOT NULL,
                operation_type text NOT NULL,
                stat_date text NOT NULL,
                call_count bigint NOT NULL DEFAULT 0,
                error_count bigint NOT NULL DEFAULT 0,
                errors_4xx bigint NOT NULL DEFAULT 0,
                errors_5xx bigint NOT NULL DEFAULT 0,
                errors_timeout bigint NOT NULL DEFAULT 0,
                errors_connection bigint NOT NULL DEFAULT 0,
                latency_00 bigint NOT NULL DEFAULT 0,
                latency_01 bigint NOT NULL DEFAULT 0,
                latency_02 bigint NOT NULL DEFAULT 0,
                latency_03 bigint NOT NULL DEFAULT 0,
                latency_04 bigint NOT NULL DEFAULT 0,
                latency_05 bigint NOT NULL DEFAULT 0,
                latency_06 bigint NOT NULL DEFAULT 0,
                latency_07 bigint NOT NULL DEFAULT 0,
                latency_08 bigint NOT NULL DEFAULT 0,
                latency_09 bigint NOT NULL DEFAULT 0,
                latency_10 bigint NOT NULL DEFAULT 0,
                latency_11 bigint NOT NULL DEFAULT 0,
                latency_12 bigint NOT NULL DEFAULT 0,
                latency_13 bigint NOT NULL DEFAULT 0,
                latency_14 bigint NOT NULL DEFAULT 0,
                total_execution_time bigint NOT NULL DEFAULT 0,
                min_execution_time bigint NOT NULL DEFAULT 0,
                max_execution_time bigint NOT NULL DEFAULT 0,
                last_status_code integer,
                recorded_at timestamptz NOT NULL DEFAULT now(),
                last_call_at timestamptz NOT NULL DEFAULT now(),
                CONSTRAINT api_statistics_pkey PRIMARY KEY (integration_key, endpoint, operation_type, stat_date)
            )
            """,
            """
            CREATE TABLE webhooks (
                webhook_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                webhook_url text NOT NULL,
                event_types text[] NOT NULL,
                secret_key text,
                retry_config jsonb,
                headers jsonb,
                headers_masked jsonb,
                status text NOT NULL DEFAULT 'active',
                last_tested timestamptz,
                test_result jsonb,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            "CREATE INDEX webhooks_created ON webhooks (created_at DESC, webhook_id DESC)",
            """
            CREATE TABLE webhook_statistics (
                webhook_id uuid PRIMARY KEY REFERENCES webhooks (webhook_id) ON DELETE CASCADE,
                success_count bigint NOT NULL DEFAULT 0,
                failure_count bigint NOT NULL DEFAULT 0,
                last_triggered timestamptz,
                created_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            """
            CREATE TABLE system_connections (
                connection_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                system_name text NOT NULL,
                connection_type text NOT NULL,
                endpoint text NOT NULL,
                credentials jsonb NOT NULL,
                credentials_masked jsonb NOT NULL DEFAULT '{}',
                health_check_interval integer NOT NULL DEFAULT 5,
                status text NOT NULL DEFAULT 'pending',
                last_check timestamptz,
                response_time bigint,
                uptime_percentage numeric(5, 2),
                avg_response_time bigint,
                last_updated timestamptz,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                CONSTRAINT system_connections_system_name_key UNIQUE (system_name)
            )
            """,
            "CREATE INDEX system_connections_created ON system_connections (created_at DESC, connection_id DESC)",
            """
            CREATE TABLE connection_health (
                health_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                connection_id uuid NOT NULL REFERENCES system_connections (connection_id) ON DELETE CASCADE,
                check_timestamp timestamptz NOT NULL DEFAULT now(),
                status text NOT NULL,
                response_time bigint,
                created_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            "CREATE INDEX connection_health_connection ON connection_health (connection_id, created_at DESC, health_id DESC)",
        ],
        sqlite: [
            """
            CREATE TABLE external_integrations (
                integration_id TEXT PRIMARY KEY,
                system_id TEXT NOT NULL,
                integration_type TEXT NOT NULL,
                endpoint_url TEXT NOT NULL,
                auth_config TEXT NOT NULL,
                auth_config_masked TEXT NOT NULL DEFAULT '{}',
                mapping_config TEXT,
                status TEXT NOT NULL DEFAULT 'active',
                last_sync INTEGER,
                error_count INTEGER NOT NULL DEFAULT 0,
                config_version TEXT NOT NULL DEFAULT 'v1.0',
                config_revision INTEGER NOT NULL DEFAULT 0,
                last_tested_at INTEGER,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                CONSTRAINT external_integrations_system_type_key UNIQUE (system_id, integration_type)
            ) STRICT
            """,
            "CREATE INDEX external_integrations_created ON external_integrations (created_at DESC, integration_id DESC)",
            """
            CREATE TABLE sync_jobs (
                sync_job_id TEXT PRIMARY KEY,
                integration_id TEXT NOT NULL REFERENCES external_integrations (integration_id) ON DELETE CASCADE,
                sync_type TEXT NOT NULL,
                entity_type TEXT NOT NULL,
                filters TEXT,
                batch_size INTEGER NOT NULL DEFAULT 1000,
                status TEXT NOT NULL DEFAULT 'running',
                records_processed INTEGER NOT NULL DEFAULT 0,
                errors_count INTEGER NOT NULL DEFAULT 0,
                started_at INTEGER NOT NULL,
                last_batch_at INTEGER,
                completed_at INTEGER,
                created_at INTEGER NOT NULL
            ) STRICT
            """,
            "CREATE UNIQUE INDEX sync_jobs_one_running ON sync_jobs (integration_id, entity_type) WHERE status = 'running'",
            "CREATE INDEX sync_jobs_created ON sync_jobs (created_at DESC, sync_job_id DESC)",
            "CREATE INDEX sync_jobs_integration ON sync_jobs (integration_id, created_at DESC)",
            """
            CREATE TABLE sync_batches (
                batch_id TEXT PRIMARY KEY,
                sync_job_id TEXT NOT NULL REFERENCES sync_jobs (sync_job_id) ON DELETE CASCADE,
                batch_number INTEGER NOT NULL,
                records_count INTEGER NOT NULL,
                status TEXT NOT NULL,
                processed_at INTEGER NOT NULL,
                CONSTRAINT sync_batches_job_number_key UNIQUE (sync_job_id, batch_number)
            ) STRICT
            """,
            """
            CREATE TABLE api_operations (
                operation_id TEXT PRIMARY KEY,
                integration_id TEXT REFERENCES external_integrations (integration_id) ON DELETE SET NULL,
                operation_type TEXT NOT NULL,
                endpoint TEXT NOT NULL,
                headers TEXT,
                payload TEXT,
                timeout INTEGER NOT NULL DEFAULT 30,
                status TEXT NOT NULL DEFAULT 'pending',
                status_code INTEGER,
                response_data TEXT,
                response_truncated INTEGER NOT NULL DEFAULT 0,
                execution_time INTEGER,
                error_message TEXT,
                started_at INTEGER NOT NULL,
                completed_at INTEGER,
                created_at INTEGER NOT NULL
            ) STRICT
            """,
            "CREATE INDEX api_operations_created ON api_operations (created_at DESC, operation_id DESC)",
            "CREATE INDEX api_operations_integration ON api_operations (integration_id, created_at DESC)",
            """
            CREATE TABLE api_statistics (
                integration_key TEXT NOT NULL DEFAULT '',
                endpoint TEXT NOT NULL,
                operation_type TEXT NOT NULL,
                stat_date TEXT NOT NULL,
                call_count INTEGER NOT NULL DEFAULT 0,
                error_count INTEGER NOT NULL DEFAULT 0,
                errors_4xx INTEGER NOT NULL DEFAULT 0,
                errors_5xx INTEGER NOT NULL DEFAULT 0,
                errors_timeout INTEGER NOT NULL DEFAULT 0,
                errors_connection INTEGER NOT NULL DEFAULT 0,
                latency_00 INTEGER NOT NULL DEFAULT 0,
                latency_01 INTEGER NOT NULL DEFAULT 0,
                latency_02 INTEGER NOT NULL DEFAULT 0,
                latency_03 INTEGER NOT NULL DEFAULT 0,
                latency_04 INTEGER NOT NULL DEFAULT 0,
                latency_05 INTEGER NOT NULL DEFAULT 0,
                latency_06 INTEGER NOT NULL DEFAULT 0,
                latency_07 INTEGER NOT NULL DEFAULT 0,
                latency_08 INTEGER NOT NULL DEFAULT 0,
                latency_09 INTEGER NOT NULL DEFAULT 0,
                latency_10 INTEGER NOT NULL DEFAULT 0,
                latency_11 INTEGER NOT NULL DEFAULT 0,
                latency_12 INTEGER NOT NULL DEFAULT 0,
                latency_13 INTEGER NOT NULL DEFAULT 0,
                latency_14 INTEGER NOT NULL DEFAULT 0,
                total_execution_time INTEGER NOT NULL DEFAULT 0,
                min_execution_time INTEGER NOT NULL DEFAULT 0,
                max_execution_time INTEGER NOT NULL DEFAULT 0,
                last_status_code INTEGER,
                recorded_at INTEGER NOT NULL,
                last_call_at INTEGER NOT NULL,
                CONSTRAINT api_statistics_pkey PRIMARY KEY (integration_key, endpoint, operation_type, stat_date)
            ) STRICT
            """,
            """
            CREATE TABLE webhooks (
                webhook_id TEXT PRIMARY KEY,
                webhook_url TEXT NOT NULL,
                event_types TEXT NOT NULL,
                secret_key TEXT,
                retry_config TEXT,
                headers TEXT,
                headers_masked TEXT,
                status TEXT NOT NULL DEFAULT 'active',
                last_tested INTEGER,
                test_result TEXT,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            ) STRICT
            """,
            "CREATE INDEX webhooks_created ON webhooks (created_at DESC, webhook_id DESC)",
            """
            CREATE TABLE webhook_statistics (
                webhook_id TEXT PRIMARY KEY REFERENCES webhooks (webhook_id) ON DELETE CASCADE,
                success_count INTEGER NOT NULL DEFAULT 0,
                failure_count INTEGER NOT NULL DEFAULT 0,
                last_triggered INTEGER,
                created_at INTEGER NOT NULL
            ) STRICT
            """,
            """
            CREATE TABLE system_connections (
                connection_id TEXT PRIMARY KEY,
                system_name TEXT NOT NULL,
                connection_type TEXT NOT NULL,
                endpoint TEXT NOT NULL,
                credentials TEXT NOT NULL,
                credentials_masked TEXT NOT NULL DEFAULT '{}',
                health_check_interval INTEGER NOT NULL DEFAULT 5,
                status TEXT NOT NULL DEFAULT 'pending',
                last_check INTEGER,
                response_time INTEGER,
                uptime_percentage REAL,
                avg_response_time INTEGER,
                last_updated INTEGER,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                CONSTRAINT system_connections_system_name_key UNIQUE (system_name)
            ) STRICT
            """,
            "CREATE INDEX system_connections_created ON system_connections (created_at DESC, connection_id DESC)",
            """
            CREATE TABLE connection_health (
                health_id TEXT PRIMARY KEY,
                connection_id TEXT NOT NULL REFERENCES system_connections (connection_id) ON DELETE CASCADE,
                check_timestamp INTEGER NOT NULL,
                status TEXT NOT NULL,
                response_time INTEGER,
                created_at INTEGER NOT NULL
            ) STRICT
            """,
            "CREATE INDEX connection_health_connection ON connection_health (connection_id, created_at DESC, health_id DESC)",
        ])
}

extension Migration {
    /// Migration 2: API keys of the HTTP API, stored as SHA-256 hashes.
    static let apiKeys = Migration(
        version: 2, name: "create_api_keys",
        postgres: [
            """
            CREATE TABLE api_keys (
                key_id text PRIMARY KEY,
                name text NOT NULL,
                key_hash text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                last_used_at timestamptz,
                revoked_at timestamptz,
                CONSTRAINT api_keys_name_key UNIQUE (name)
            )
            """
        ],
        sqlite: [
            """
            CREATE TABLE api_keys (
                key_id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                key_hash TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                last_used_at INTEGER,
                revoked_at INTEGER,
                CONSTRAINT api_keys_name_key UNIQUE (name)
            ) STRICT
            """
        ])
}

extension Migration {
    /// Migration 3: the sync engine — job leases, checkpoints and reconciliation columns on `sync_jobs`; the records
    /// store (one row per integration, entity type and external id); the first errors of each job; schedules; and the
    /// events outbox (ordered by `event_seq`), written in the transaction of the change each event describes. Record
    /// events are thin rows (integration, entity type, external id, job); other events carry a JSON payload. Synced records
    /// have no foreign key to their integration (deleting an integration deletes them in its transaction): the check
    /// would cost every synced row a lookup. Their data is `json` on PostgreSQL (validated text: cheaper to write than
    /// `jsonb`, and never queried inside).
    static let syncEngine = Migration(
        version: 3, name: "create_sync_engine",
        postgres: [
            """
            ALTER TABLE sync_jobs ADD COLUMN checkpoint jsonb
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN high_water_mark text
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN lease_owner text
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN lease_expires_at timestamptz
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN source_total bigint
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN records_added bigint NOT NULL DEFAULT 0
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN records_updated bigint NOT NULL DEFAULT 0
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN records_unchanged bigint NOT NULL DEFAULT 0
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN records_deleted bigint NOT NULL DEFAULT 0
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN records_failed bigint NOT NULL DEFAULT 0
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN reconciliation_mismatch boolean NOT NULL DEFAULT false
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN failure_reason text
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN pages_done boolean NOT NULL DEFAULT false
            """,
            """
            CREATE INDEX sync_jobs_claimable ON sync_jobs (status, lease_expires_at)
            """,
            """
            CREATE TABLE sync_records (
                integration_id uuid NOT NULL,
                entity_type text NOT NULL,
                external_id text NOT NULL,
                data json NOT NULL,
                content_hash text NOT NULL,
                last_change text NOT NULL,
                created_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL,
                deleted_at timestamptz,
                last_job_id uuid,
                seen_job_id uuid,
                failed_job_id uuid,
                PRIMARY KEY (integration_id, entity_type, external_id)
            )
            """,
            """
            CREATE INDEX sync_records_changes ON sync_records (integration_id, entity_type, updated_at, external_id)
            """,
            """
            CREATE TABLE sync_errors (
                sync_job_id uuid NOT NULL REFERENCES sync_jobs (sync_job_id) ON DELETE CASCADE,
                error_number bigint NOT NULL,
                batch_number bigint NOT NULL,
                external_id text,
                reason text NOT NULL,
                created_at timestamptz NOT NULL,
                PRIMARY KEY (sync_job_id, error_number)
            )
            """,
            """
            CREATE TABLE sync_schedules (
                schedule_id uuid PRIMARY KEY,
                integration_id uuid NOT NULL REFERENCES external_integrations (integration_id) ON DELETE CASCADE,
                entity_type text NOT NULL,
                sync_type text NOT NULL,
                interval_minutes bigint NOT NULL,
                next_run_at timestamptz NOT NULL,
                last_job_id uuid,
                created_at timestamptz NOT NULL,
                CONSTRAINT sync_schedules_integration_entity_key UNIQUE (integration_id, entity_type)
            )
            """,
            """
            CREATE INDEX sync_schedules_due ON sync_schedules (next_run_at)
            """,
            """
            CREATE TABLE events (
                event_seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                event_type text NOT NULL,
                payload jsonb,
                integration_id uuid,
                entity_type text,
                external_id text,
                sync_job_id uuid,
                created_at timestamptz NOT NULL
            )
            """
        ],
        sqlite: [
            """
            ALTER TABLE sync_jobs ADD COLUMN checkpoint TEXT
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN high_water_mark TEXT
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN lease_owner TEXT
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN lease_expires_at INTEGER
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN source_total INTEGER
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN records_added INTEGER NOT NULL DEFAULT 0
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN records_updated INTEGER NOT NULL DEFAULT 0
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN records_unchanged INTEGER NOT NULL DEFAULT 0
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN records_deleted INTEGER NOT NULL DEFAULT 0
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN records_failed INTEGER NOT NULL DEFAULT 0
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN reconciliation_mismatch INTEGER NOT NULL DEFAULT 0
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN failure_reason TEXT
            """,
            """
            ALTER TABLE sync_jobs ADD COLUMN pages_done INTEGER NOT NULL DEFAULT 0
            """,
            """
            CREATE INDEX sync_jobs_claimable ON sync_jobs (status, lease_expires_at)
            """,
            """
            CREATE TABLE sync_records (
                integration_id TEXT NOT NULL,
                entity_type TEXT NOT NULL,
                external_id TEXT NOT NULL,
                data TEXT NOT NULL,
                content_hash TEXT NOT NULL,
                last_change TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                deleted_at INTEGER,
                last_job_id TEXT,
                seen_job_id TEXT,
                failed_job_id TEXT,
                PRIMARY KEY (integration_id, entity_type, external_id)
            ) STRICT
            """,
            """
            CREATE INDEX sync_records_changes ON sync_records (integration_id, entity_type, updated_at, external_id)
            """,
            """
            CREATE TABLE sync_errors (
                sync_job_id TEXT NOT NULL REFERENCES sync_jobs (sync_job_id) ON DELETE CASCADE,
                error_number INTEGER NOT NULL,
                batch_number INTEGER NOT NULL,
                external_id TEXT,
                reason TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                PRIMARY KEY (sync_job_id, error_number)
            ) STRICT
            """,
            """
            CREATE TABLE sync_schedules (
                schedule_id TEXT PRIMARY KEY,
                integration_id TEXT NOT NULL REFERENCES external_integrations (integration_id) ON DELETE CASCADE,
                entity_type TEXT NOT NULL,
                sync_type TEXT NOT NULL,
                interval_minutes INTEGER NOT NULL,
                next_run_at INTEGER NOT NULL,
                last_job_id TEXT,
                created_at INTEGER NOT NULL,
                CONSTRAINT sync_schedules_integration_entity_key UNIQUE (integration_id, entity_type)
            ) STRICT
            """,
            """
            CREATE INDEX sync_schedules_due ON sync_schedules (next_run_at)
            """,
            """
            CREATE TABLE events (
                event_seq INTEGER PRIMARY KEY AUTOINCREMENT,
                event_type TEXT NOT NULL,
                payload TEXT,
                integration_id TEXT,
                entity_type TEXT,
                external_id TEXT,
                sync_job_id TEXT,
                created_at INTEGER NOT NULL
            ) STRICT
            """
        ])
}

extension Migration {
    /// Migration 4: webhook delivery — per-endpoint settings (ordered delivery, rate limit, the failing clock, rotated
    /// secrets, the throttle) on `webhooks`; the outbox's fan-out state on `events` (events already there when the
    /// migration runs count as dispatched: nothing is sent for what happened before delivery existed); one message per
    /// event and subscribed webhook, with its lease and next attempt; and every attempt. A message needs no unique key on
    /// (webhook, event): the fan-out creates an event's messages and marks it dispatched in one transaction.
    static let webhookDelivery = Migration(
        version: 4, name: "create_webhook_delivery",
        postgres: [
            "ALTER TABLE webhooks ADD COLUMN ordered boolean NOT NULL DEFAULT false",
            "ALTER TABLE webhooks ADD COLUMN rate_limit integer",
            "ALTER TABLE webhooks ADD COLUMN failing_since timestamptz",
            "ALTER TABLE webhooks ADD COLUMN disabled_reason text",
            "ALTER TABLE webhooks ADD COLUMN previous_secrets text",
            "ALTER TABLE webhooks ADD COLUMN throttle_until timestamptz",
            "ALTER TABLE events ADD COLUMN dispatched boolean NOT NULL DEFAULT true",
            "ALTER TABLE events ALTER COLUMN dispatched SET DEFAULT false",
            // The writing transaction of each event: the fan-out takes only events of transactions older than every
            // one still running, in (transaction, sequence) order, so a late commit never lands behind a later event.
            "ALTER TABLE events ADD COLUMN xact_id xid8 NOT NULL DEFAULT pg_current_xact_id()",
            "CREATE INDEX events_undispatched ON events (xact_id, event_seq) WHERE NOT dispatched",
            """
            CREATE TABLE webhook_messages (
                message_seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                webhook_id uuid NOT NULL REFERENCES webhooks (webhook_id) ON DELETE CASCADE,
                event_seq bigint NOT NULL,
                event_type text NOT NULL,
                body text NOT NULL,
                status text NOT NULL DEFAULT 'pending',
                attempts integer NOT NULL DEFAULT 0,
                schedule_start integer NOT NULL DEFAULT 0,
                next_attempt_at timestamptz,
                lease_owner text,
                lease_expires_at timestamptz,
                last_status_code integer,
                last_error text,
                event_created_at timestamptz NOT NULL,
                created_at timestamptz NOT NULL,
                delivered_at timestamptz
            )
            """,
            "CREATE INDEX webhook_messages_due ON webhook_messages (webhook_id, message_seq) WHERE status = 'pending'",
            "CREATE INDEX webhook_messages_list ON webhook_messages (webhook_id, status, message_seq)",
            """
            CREATE TABLE webhook_attempts (
                message_seq bigint NOT NULL REFERENCES webhook_messages (message_seq) ON DELETE CASCADE,
                attempt_number integer NOT NULL,
                webhook_id uuid NOT NULL,
                status_code integer,
                latency_ms bigint NOT NULL,
                response_excerpt text,
                error text,
                succeeded boolean NOT NULL,
                next_attempt_at timestamptz,
                attempted_at timestamptz NOT NULL,
                CONSTRAINT webhook_attempts_pkey PRIMARY KEY (message_seq, attempt_number)
            )
            """,
        ],
        sqlite: [
            "ALTER TABLE webhooks ADD COLUMN ordered INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE webhooks ADD COLUMN rate_limit INTEGER",
            "ALTER TABLE webhooks ADD COLUMN failing_since INTEGER",
            "ALTER TABLE webhooks ADD COLUMN disabled_reason TEXT",
            "ALTER TABLE webhooks ADD COLUMN previous_secrets TEXT",
            "ALTER TABLE webhooks ADD COLUMN throttle_until INTEGER",
            "ALTER TABLE events ADD COLUMN dispatched INTEGER NOT NULL DEFAULT 0",
            "UPDATE events SET dispatched = 1",
            "CREATE INDEX events_undispatched ON events (event_seq) WHERE dispatched = 0",
            """
            CREATE TABLE webhook_messages (
                message_seq INTEGER PRIMARY KEY AUTOINCREMENT,
                webhook_id TEXT NOT NULL REFERENCES webhooks (webhook_id) ON DELETE CASCADE,
                event_seq INTEGER NOT NULL,
                event_type TEXT NOT NULL,
                body TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'pending',
                attempts INTEGER NOT NULL DEFAULT 0,
                schedule_start INTEGER NOT NULL DEFAULT 0,
                next_attempt_at INTEGER,
                lease_owner TEXT,
                lease_expires_at INTEGER,
                last_status_code INTEGER,
                last_error TEXT,
                event_created_at INTEGER NOT NULL,
                created_at INTEGER NOT NULL,
                delivered_at INTEGER
            ) STRICT
            """,
            "CREATE INDEX webhook_messages_due ON webhook_messages (webhook_id, message_seq) WHERE status = 'pending'",
            "CREATE INDEX webhook_messages_list ON webhook_messages (webhook_id, status, message_seq)",
            """
            CREATE TABLE webhook_attempts (
                message_seq INTEGER NOT NULL REFERENCES webhook_messages (message_seq) ON DELETE CASCADE,
                attempt_number INTEGER NOT NULL,
                webhook_id TEXT NOT NULL,
                status_code INTEGER,
                latency_ms INTEGER NOT NULL,
                response_excerpt TEXT,
                error TEXT,
                succeeded INTEGER NOT NULL,
                next_attempt_at INTEGER,
                attempted_at INTEGER NOT NULL,
                CONSTRAINT webhook_attempts_pkey PRIMARY KEY (message_seq, attempt_number)
            ) STRICT
            """,
        ])
}

extension Migration {
    /// Migration 6, for webhook claims on PostgreSQL: message pages keep half their room free, so that a claim's lease
    /// (columns no index holds) is a heap-only update, with no new entry in the message indexes for every claim, which
    /// claims and due probes would then walk (`hub-bench webhooks` with pg_stat_statements: a claim's update went from
    /// about 21 to 13 µs a message, planning included; pages written before keep their fill until rewritten); and the
    /// webhooks in claim order (least recently served first) as an index, so that a claim reads them by index.
    /// SQLite has neither need.
    static let webhookClaims = Migration(
        version: 6, name: "webhook_claims",
        postgres: [
            "ALTER TABLE webhook_messages SET (fillfactor = 50)",
            "CREATE INDEX webhooks_claim_order ON webhooks (throttle_until NULLS FIRST, webhook_id) WHERE status <> 'disabled'",
        ],
        sqlite: [])

    /// Migration 7, for webhook delivery on PostgreSQL: messages and attempts no longer have foreign keys (to their
    /// webhook and to their message). Each key's check ran per row: the attempt's locked its message row (`FOR KEY
    /// SHARE`, a write of the row and a WAL record) just before the same transaction updated that row anyway, and the
    /// message's locked a webhook row that the fan-out already holds `FOR SHARE`: together about a quarter of
    /// PostgreSQL's work per delivery in `hub-bench webhooks`. What the keys guaranteed the writers now keep: the fan-out
    /// writes messages only for the webhooks it holds; an outcome writes attempts only for messages that exist, after
    /// its transaction has updated the webhook's statistics row; deleting a webhook locks that row, the webhook's and
    /// its messages first, then deletes its attempts and messages in the same transaction (``WebhookStore/delete(_:)``).
    /// SQLite keeps its keys: it has no such cost here.
    ///
    /// And an event's payload is `json`, which keeps the canonical text the stores write, instead of `jsonb`, which
    /// respaces it: a message body takes the payload's text as it is instead of parsing it and writing it again (about
    /// 10 µs a message). SQLite stores that text already. Existing payloads keep `jsonb`'s rendering (other spacing and
    /// key order; still valid JSON, and a body is signed as sent); the change rewrites the events table once.
    ///
    /// And the message columns that every claim and outcome rewrites (status, attempts, schedule, lease, last answer)
    /// keep no statistics: a sample of them describes a moment of the queue (analyzed while a burst was still unleased,
    /// every `lease_owner` was NULL, and an outcome's `lease_owner = $owner` was then estimated at one row, so the
    /// planner read the whole table around it: 265 ms for 661 outcomes). Without statistics the planner uses its
    /// default selectivities, which keep plans driven by the given keys.
    static let deliveryWrites = Migration(
        version: 7, name: "delivery_writes",
        postgres: [
            "ALTER TABLE webhook_attempts DROP CONSTRAINT webhook_attempts_message_seq_fkey",
            "ALTER TABLE webhook_messages DROP CONSTRAINT webhook_messages_webhook_id_fkey",
            "ALTER TABLE events ALTER COLUMN payload TYPE json USING payload::json",
            """
            ALTER TABLE webhook_messages ALTER COLUMN status SET STATISTICS 0, ALTER COLUMN attempts SET STATISTICS 0, \
            ALTER COLUMN next_attempt_at SET STATISTICS 0, ALTER COLUMN lease_owner SET STATISTICS 0, \
            ALTER COLUMN lease_expires_at SET STATISTICS 0, ALTER COLUMN last_status_code SET STATISTICS 0, \
            ALTER COLUMN last_error SET STATISTICS 0, ALTER COLUMN delivered_at SET STATISTICS 0
            """,
        ],
        sqlite: [])

    /// Migration 8 (PostgreSQL): records' entity types and external ids compare byte by byte (`COLLATE "C"`), as SQLite
    /// compares them. They are identifiers, not words: a locale's collation made every index step of the records'
    /// upsert call `strcoll`. Under a UTF-8 database's usual default (`C.UTF-8`, code point order) the order is the same.
    static let bytewiseRecordKeys = Migration(
        version: 8, name: "bytewise_record_keys",
        postgres: [
            #"ALTER TABLE sync_records ALTER COLUMN entity_type TYPE text COLLATE "C", ALTER COLUMN external_id TYPE text COLLATE "C""#
        ],
        sqlite: [])

    /// Migration 9: each job keeps the number of its last committed batch, so that a batch commits only as the job's
    /// next one (on PostgreSQL a job's next batch is sent while the one before it is still committing, and waits for it
    /// on the job's row). A claim sets it from the job's `sync_batches` rows, so jobs begun before it resume in turn.
    static let batchTurns = Migration(
        version: 9, name: "sync_batch_turns",
        postgres: ["ALTER TABLE sync_jobs ADD COLUMN last_batch_number bigint NOT NULL DEFAULT 0"],
        sqlite: ["ALTER TABLE sync_jobs ADD COLUMN last_batch_number INTEGER NOT NULL DEFAULT 0"])

    /// Migration 10: record events of one batch and kind share one outbox row, their external ids in order in
    /// `external_ids` (PostgreSQL `text[]`, SQLite a JSON array); each is still an event of its own, numbered
    /// `event_seq`, `event_seq + 1`, … (an outbox row a record used to cost the sync ingest a fifth of the database's
    /// time). A row holds at most ``SyncEngineStore/idsPerEventRow`` ids, so the numbers of its events stay below the
    /// next row's: on PostgreSQL, where batches of many jobs insert at once, each row takes a block of 16,384 numbers
    /// (events written before keep theirs); SQLite, one writer, moves its sequence past a row's last event. The fan-out
    /// takes a row's events in parts (`fanned_out` counts those taken), so its transactions stay as small as before.
    static let recordEventRows = Migration(
        version: 10, name: "record_event_rows",
        postgres: [
            "ALTER TABLE events ADD COLUMN external_ids text[]",
            // Stored out of line uncompressed: compressing a batch's ids took the ingest about 2 % of the database's time.
            "ALTER TABLE events ALTER COLUMN external_ids SET STORAGE EXTERNAL",
            "ALTER TABLE events ALTER COLUMN event_seq SET INCREMENT BY 16384",
            "ALTER TABLE events ADD COLUMN fanned_out integer NOT NULL DEFAULT 0",
        ],
        sqlite: [
            "ALTER TABLE events ADD COLUMN external_ids TEXT",
            "ALTER TABLE events ADD COLUMN fanned_out INTEGER NOT NULL DEFAULT 0",
        ])

    /// Migration 5: the connectivity monitor — when each connection is next due (spread over its interval), its retries
    /// before down and the status last reported in an event; why each check ended as it did and whether it fell in a
    /// maintenance window; hourly and daily rollups (counts, response sums and extremes, and the fixed latency
    /// histogram of ``LatencyHistogram``, so percentiles merge across buckets); maintenance windows.
    static let healthMonitor = Migration(
        version: 5, name: "create_health_monitor",
        postgres: [
            "ALTER TABLE system_connections ADD COLUMN next_check_at timestamptz",
            "ALTER TABLE system_connections ADD COLUMN retries integer NOT NULL DEFAULT 1",
            "ALTER TABLE system_connections ADD COLUMN failed_attempts integer NOT NULL DEFAULT 0",
            "ALTER TABLE system_connections ADD COLUMN reported_status text",
            // Existing connections spread over their first interval, as new ones are.
            "UPDATE system_connections SET next_check_at = now() + random() * make_interval(mins => health_check_interval)",
            "CREATE INDEX system_connections_due ON system_connections (next_check_at)",
            "ALTER TABLE connection_health ADD COLUMN reason text",
            "ALTER TABLE connection_health ADD COLUMN in_maintenance boolean NOT NULL DEFAULT false",
            "CREATE INDEX connection_health_time ON connection_health (check_timestamp)",
            """
            CREATE TABLE connection_rollups (
                connection_id uuid NOT NULL REFERENCES system_connections (connection_id) ON DELETE CASCADE,
                bucket text NOT NULL,
                bucket_start timestamptz NOT NULL,
                checks bigint NOT NULL DEFAULT 0,
                healthy bigint NOT NULL DEFAULT 0,
                degraded bigint NOT NULL DEFAULT 0,
                down bigint NOT NULL DEFAULT 0,
                maintenance bigint NOT NULL DEFAULT 0,
                response_count bigint NOT NULL DEFAULT 0,
                response_sum bigint NOT NULL DEFAULT 0,
                response_min bigint,
                response_max bigint,
                h0 bigint NOT NULL DEFAULT 0,
                h1 bigint NOT NULL DEFAULT 0,
                h2 bigint NOT NULL DEFAULT 0,
                h3 bigint NOT NULL DEFAULT 0,
                h4 bigint NOT NULL DEFAULT 0,
                h5 bigint NOT NULL DEFAULT 0,
                h6 bigint NOT NULL DEFAULT 0,
                h7 bigint NOT NULL DEFAULT 0,
                h8 bigint NOT NULL DEFAULT 0,
                h9 bigint NOT NULL DEFAULT 0,
                h10 bigint NOT NULL DEFAULT 0,
                h11 bigint NOT NULL DEFAULT 0,
                h12 bigint NOT NULL DEFAULT 0,
                h13 bigint NOT NULL DEFAULT 0,
                h14 bigint NOT NULL DEFAULT 0,
                CONSTRAINT connection_rollups_pkey PRIMARY KEY (connection_id, bucket, bucket_start)
            )
            """,
            "CREATE INDEX connection_rollups_time ON connection_rollups (bucket, bucket_start)",
            backfillRollups(.postgres, bucket: "hour"),
            backfillRollups(.postgres, bucket: "day"),
            """
            CREATE TABLE connection_maintenance (
                window_id uuid PRIMARY KEY,
                connection_id uuid NOT NULL REFERENCES system_connections (connection_id) ON DELETE CASCADE,
                starts_at timestamptz NOT NULL,
                ends_at timestamptz NOT NULL,
                reason text,
                created_at timestamptz NOT NULL
            )
            """,
            "CREATE INDEX connection_maintenance_connection ON connection_maintenance (connection_id, starts_at)",
        ],
        sqlite: [
            "ALTER TABLE system_connections ADD COLUMN next_check_at INTEGER",
            "ALTER TABLE system_connections ADD COLUMN retries INTEGER NOT NULL DEFAULT 1",
            "ALTER TABLE system_connections ADD COLUMN failed_attempts INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE system_connections ADD COLUMN reported_status TEXT",
            """
            UPDATE system_connections SET next_check_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000000 \
            + abs(random()) % (health_check_interval * 60000000)
            """,
            "CREATE INDEX system_connections_due ON system_connections (next_check_at)",
            "ALTER TABLE connection_health ADD COLUMN reason TEXT",
            "ALTER TABLE connection_health ADD COLUMN in_maintenance INTEGER NOT NULL DEFAULT 0",
            "CREATE INDEX connection_health_time ON connection_health (check_timestamp)",
            """
            CREATE TABLE connection_rollups (
                connection_id TEXT NOT NULL REFERENCES system_connections (connection_id) ON DELETE CASCADE,
                bucket TEXT NOT NULL,
                bucket_start INTEGER NOT NULL,
                checks INTEGER NOT NULL DEFAULT 0,
                healthy INTEGER NOT NULL DEFAULT 0,
                degraded INTEGER NOT NULL DEFAULT 0,
                down INTEGER NOT NULL DEFAULT 0,
                maintenance INTEGER NOT NULL DEFAULT 0,
                response_count INTEGER NOT NULL DEFAULT 0,
                response_sum INTEGER NOT NULL DEFAULT 0,
                response_min INTEGER,
                response_max INTEGER,
                h0 INTEGER NOT NULL DEFAULT 0,
                h1 INTEGER NOT NULL DEFAULT 0,
                h2 INTEGER NOT NULL DEFAULT 0,
                h3 INTEGER NOT NULL DEFAULT 0,
                h4 INTEGER NOT NULL DEFAULT 0,
                h5 INTEGER NOT NULL DEFAULT 0,
                h6 INTEGER NOT NULL DEFAULT 0,
                h7 INTEGER NOT NULL DEFAULT 0,
                h8 INTEGER NOT NULL DEFAULT 0,
                h9 INTEGER NOT NULL DEFAULT 0,
                h10 INTEGER NOT NULL DEFAULT 0,
                h11 INTEGER NOT NULL DEFAULT 0,
                h12 INTEGER NOT NULL DEFAULT 0,
                h13 INTEGER NOT NULL DEFAULT 0,
                h14 INTEGER NOT NULL DEFAULT 0,
                CONSTRAINT connection_rollups_pkey PRIMARY KEY (connection_id, bucket, bucket_start)
            ) STRICT
            """,
            "CREATE INDEX connection_rollups_time ON connection_rollups (bucket, bucket_start)",
            backfillRollups(.sqlite, bucket: "hour"),
            backfillRollups(.sqlite, bucket: "day"),
            """
            CREATE TABLE connection_maintenance (
                window_id TEXT PRIMARY KEY,
                connection_id TEXT NOT NULL REFERENCES system_connections (connection_id) ON DELETE CASCADE,
                starts_at INTEGER NOT NULL,
                ends_at INTEGER NOT NULL,
                reason TEXT,
                created_at INTEGER NOT NULL
            ) STRICT
            """,
            "CREATE INDEX connection_maintenance_connection ON connection_maintenance (connection_id, starts_at)",
        ])
}

extension Migration {
    /// The rollups of the checks recorded before migration 5 (uptime keeps its history once raw checks are pruned):
    /// one row per connection and UTC hour or day, with the latency histogram of ``LatencyHistogram``.
    public static func backfillRollups(_ dialect: SQLDialect, bucket: String) -> String {
        let seconds = bucket == "hour" ? 3600 : 86_400
        let start = dialect == .postgres
            ? "date_trunc('\(bucket)', check_timestamp AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
            : "(check_timestamp / \(seconds)000000) * \(seconds)000000"
        let bounds = LatencyHistogram.bounds
        let histogram = (0..<LatencyHistogram.bucketCount).map { index -> String in
            var conditions = ["response_time IS NOT NULL"]
            if index > 0 { conditions.append("response_time > \(bounds[index - 1])") }
            if index < bounds.count { conditions.append("response_time <= \(bounds[index])") }
            return "SUM(CASE WHEN \(conditions.joined(separator: " AND ")) THEN 1 ELSE 0 END)"
        }
        let columns = (0..<LatencyHistogram.bucketCount).map { "h\($0)" }.joined(separator: ", ")
        return """
            INSERT INTO connection_rollups (connection_id, bucket, bucket_start, checks, healthy, degraded, down, maintenance, \
            response_count, response_sum, response_min, response_max, \(columns)) \
            SELECT connection_id, '\(bucket)', \(start), COUNT(*), SUM(CASE WHEN status = 'healthy' THEN 1 ELSE 0 END), \
            SUM(CASE WHEN status = 'degraded' THEN 1 ELSE 0 END), SUM(CASE WHEN status = 'down' THEN 1 ELSE 0 END), 0, \
            COUNT(response_time), COALESCE(SUM(response_time), 0), MIN(response_time), MAX(response_time), \
            \(histogram.joined(separator: ", ")) FROM connection_health GROUP BY connection_id, \(start)
            """
    }
}

