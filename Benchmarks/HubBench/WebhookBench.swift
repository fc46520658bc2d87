import AsyncHTTPClient
import Foundation
import HubCore
import HubEngine
import HubPostgres
import HubStore
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Webhook delivery on PostgreSQL, as `hub serve` runs it (fan-out, leased claims, signing, the gateway, attempts and
/// statistics recorded), against a loopback receiver in this process that answers 204: `total` deliveries to one
/// endpoint, then to 100 endpoints (`total / 100` events each fanned out to all of them). Beside it, the same number of
/// plain AsyncHTTPClient POSTs of the same body to the same receiver at the same concurrency, in the same run.
/// Event-to-delivery latency is the end of the successful attempt minus the event's creation; in the burst scenarios
/// every event is committed at once, so it includes the time spent queued behind the others; the steady scenario
/// commits 100 events every 100 ms (1,000 a second) for `total / 2` events. Last, an ordered endpoint (one message at a
/// time, each sent once the one before it is recorded) gets `total / 10` events, alone and beside a burst of `total`
/// deliveries to 10 other endpoints, against plain POSTs one after another on one connection.
enum WebhookBench {
    static func run(database: PostgresDatabase, sealer: SecretSealer, total: Int) async throws {
        try await Migrator(database: database).migrate()
        let stores = HubStores(database: database, sealer: sealer)
        let received = Atomic<Int>(0)
        let router = Router()
        router.post("/hooks/:n") { request, _ -> Response in
            _ = try await request.body.collect(upTo: 1 << 20)
            received.add(1, ordering: .relaxed)
            return Response(status: .noContent)
        }
        let gateway = OutboundGateway(policy: try OutboundPolicy(allowlist: ["127.0.0.0/8"]))
        // The dispatcher's default (or HUB_BENCH_WEBHOOK_CONCURRENCY), for the dispatcher and the plain POSTs alike.
        let concurrency = Int(ProcessInfo.processInfo.environment["HUB_BENCH_WEBHOOK_CONCURRENCY"] ?? "") ?? WebhookDispatcherConfiguration().concurrency
        try await HubBench.withLoopbackServer(router) { port in
            let base = "http://127.0.0.1:\(port)/hooks"

            // The events' payload: a changed record of about 500 bytes.
            let payload = """
                json_build_object('integration_id', '0b6c3f4e-5d1a-4c7e-9a51-2f7d8e9c1a20', 'entity_type', 'users', \
                'external_id', 'u' || g, 'data', json_build_object('user_name', 'user' || g, 'email', 'user' || g || '@example.com', \
                'display_name', 'User Number ' || g, 'department', 'Engineering', 'title', 'Senior Engineer', \
                'manager', 'u' || (g / 10), 'note', repeat('x', 200)))
                """
            let sample = try await database.queryOne(
                "SELECT \(payload)::text AS p FROM generate_series(1, 1) g", [])!.string("p")
            let body = Data(#"{"data":\#(sample),"id":"evt_1","timestamp":"2026-11-27T12:00:00.000000Z","type":"record.updated"}"#.utf8)

            // Plain AsyncHTTPClient POSTs of the same body, same receiver, same concurrency: with the client's defaults (8
            // connections per host; the issue's comparison), and with 64 connections per host as the gateway keeps.
            var plainRates: [Double] = []
            for connections in [8, 64] {
                var plainConfiguration = HTTPClient.Configuration()
                plainConfiguration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = connections
                let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: plainConfiguration)
                let plainCPUBefore = HubBench.processCPUSeconds()
                let plainSeconds = try await HubBench.timed(total: total, concurrency: concurrency) { index in
                    try await Self.post(body, to: base + "/\(index % 100)", with: client)
                }.0
                HubBench.printWindow("plain, \(connections) connections", seconds: plainSeconds)
                try await client.shutdown()
                plainRates.append(Double(total) / plainSeconds)
                let plainCPU = HubBench.processCPUSeconds() - plainCPUBefore
                print(String(
                    format: "plain AsyncHTTPClient POSTs, %d connections per host: %d in %.2f s = %.0f/s (concurrency %d); CPU per POST (client and receiver) %.0f µs",
                    connections, total, plainSeconds, plainRates.last!, concurrency, 1e6 * plainCPU / Double(total)))
            }
            let plainRate = plainRates[0]

            // Bursts: every event of the scenario committed at once; then a steady flow of 1,000 events a second.
            for (endpoints, steady) in [(1, false), (100, false), (1, true)] {
                // A fresh set of webhooks for the scenario (the previous ones are deleted with their messages).
                for table in ["webhook_attempts", "webhook_messages", "webhooks"] {
                    _ = try await database.query("DELETE FROM \(table)", [])
                }
                _ = try await database.query("DELETE FROM events", [])
                for index in 0..<endpoints {
                    _ = try await stores.webhooks.register(WebhookRegistration(webhookURL: base + "/\(index)", eventTypes: ["record.*"]))
                }
                let events = steady ? total / 2 : total / endpoints
                let insert = { (count: Int) in
                    _ = try await database.query(
                        "INSERT INTO events (event_type, payload, created_at) SELECT 'record.updated', \(payload), clock_timestamp() FROM generate_series(1, \(count)) g",
                        [])
                }
                let start = ContinuousClock.now
                if !steady { try await insert(events) }
                // A burst's rate and CPU are the delivery's, from the moment every event is in the outbox (the insert is
                // the producer's work; the plain POSTs do not count making their requests either). Its latency counts
                // from each event's creation, and the rate with the insert is printed beside.
                let inserted = ContinuousClock.now
                let cpuBefore = HubBench.processCPUSeconds()
                let postgresBefore = HubBench.postgresCPUSeconds()
                let dispatcher = Self.dispatcher(database: database, stores: stores, gateway: gateway, concurrency: concurrency)
                let running = Task { await dispatcher.runLoop() }
                let expected = events * endpoints
                if steady {
                    // 100 events every 100 ms.
                    for tick in 0..<(events / 100) {
                        try await insert(100)
                        let next = start + .milliseconds(100 * (tick + 1))
                        if next > ContinuousClock.now { try await Task.sleep(until: next) }
                    }
                }
                // Done when the webhooks' statistics count every delivery (recorded in the transaction of the messages'
                // outcomes). Cheap on purpose: counting pending messages every 20 ms cost the database a fifth of its work.
                while true {
                    try await Task.sleep(for: .milliseconds(20))
                    let succeeded = try await database.queryOne(
                        "SELECT COALESCE(sum(success_count), 0)::bigint AS n FROM webhook_statistics", [])!.int("n")
                    if succeeded >= expected { break }
                }
                let end = ContinuousClock.now
                let cpu = (HubBench.processCPUSeconds() - cpuBefore) * 1e6 / Double(expected)
                let postgresCPU = (HubBench.postgresCPUSeconds() - postgresBefore) * 1e6 / Double(expected)
                let seconds = (end - inserted).seconds
                HubBench.printWindow("\(endpoints) endpoint(s)\(steady ? " steady" : "")", seconds: (ContinuousClock.now - inserted).seconds)
                let withInsert = (end - start).seconds
                let delivered = try await database.queryOne(
                    "SELECT count(*) AS n FROM webhook_messages WHERE status = 'succeeded'", [])!.int("n")
                guard delivered == expected else { throw HubError.conflict(field: nil, reason: "\(delivered) of \(expected) delivered") }
                running.cancel()
                await running.value
                let latency = try await database.queryOne(
                    """
                    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d) AS p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY d) AS p99 \
                    FROM (SELECT extract(epoch FROM (a.attempted_at - m.event_created_at)) * 1000 + a.latency_ms AS d \
                    FROM webhook_attempts a JOIN webhook_messages m ON m.message_seq = a.message_seq WHERE a.succeeded) AS l
                    """, [])!
                let attempts = try await database.queryOne("SELECT count(*) AS n FROM webhook_attempts", [])!.int("n")
                let rate = Double(expected) / seconds
                if steady {
                    print(String(
                        format: "webhooks, steady 1,000 events/s to 1 endpoint: %d deliveries in %.2f s; event-to-delivery p50 %.0f ms, p99 %.0f ms; CPU per delivery: hub and receiver %.0f µs, PostgreSQL %.0f µs",
                        expected, seconds, try latency.double("p50"), try latency.double("p99"), cpu, postgresCPU))
                } else {
                    print(String(
                        format: "webhooks, burst, %d endpoint(s), %d events: %d deliveries in %.2f s after the events' insert = %.0f/s (%.0f %% of plain, %.0f %% of plain with 64 connections; with the %.2f s insert %.0f/s, %.0f %% of plain); event-to-delivery p50 %.0f ms, p99 %.0f ms; %d attempts; CPU per delivery: hub and receiver %.0f µs, PostgreSQL %.0f µs",
                        endpoints, events, expected, seconds, rate, 100 * rate / plainRate, 100 * rate / plainRates[1], withInsert - seconds, Double(expected) / withInsert,
                        100 * Double(expected) / withInsert / plainRate, try latency.double("p50"), try latency.double("p99"), attempts, cpu,
                        postgresCPU))
                }
            }
            try await ordered(database: database, stores: stores, gateway: gateway, base: base, body: body, total: total, concurrency: concurrency)
            try await gateway.shutdown()
        }
    }

    /// One plain POST of `body`, its answer read whole.
    static func post(_ body: Data, to url: String, with client: HTTPClient) async throws {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(data: body))
        let response = try await client.execute(request, timeout: .seconds(30))
        _ = try await response.body.collect(upTo: 1 << 20)
    }

    /// A dispatcher as `hub serve` runs one, with `concurrency` senders and no log below critical.
    static func dispatcher(database: PostgresDatabase, stores: HubStores, gateway: OutboundGateway, concurrency: Int) -> WebhookDispatcher {
        var configuration = WebhookDispatcherConfiguration()
        configuration.concurrency = concurrency
        var logger = Logger(label: "bench.dispatcher")
        logger.logLevel = .critical
        return WebhookDispatcher(
            store: WebhookDeliveryStore(database: database), webhooks: stores.webhooks, gateway: gateway,
            configuration: configuration, logger: logger)
    }

    /// The ordered scenarios: each message's round trip (claim, send, outcome written) one after another, compared with
    /// plain POSTs of the same body one after another on one kept-alive connection.
    static func ordered(
        database: PostgresDatabase, stores: HubStores, gateway: OutboundGateway, base: String, body: Data, total: Int, concurrency: Int
    ) async throws {
        let count = max(100, total / 10)
        var plainConfiguration = HTTPClient.Configuration()
        plainConfiguration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 1
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: plainConfiguration)
        let plainStart = ContinuousClock.now
        for _ in 0..<count { try await post(body, to: base + "/ordered", with: client) }
        let plainRate = Double(count) / (ContinuousClock.now - plainStart).seconds
        try await client.shutdown()
        print(String(format: "plain AsyncHTTPClient POSTs one after another: %d in %.2f s = %.0f/s", count, Double(count) / plainRate, plainRate))
        for beside in [false, true] {
            for table in ["webhook_attempts", "webhook_messages", "webhooks", "events"] {
                _ = try await database.query("DELETE FROM \(table)", [])
            }
            let hook = try await stores.webhooks.register(WebhookRegistration(
                webhookURL: base + "/ordered", eventTypes: ["record.created"], ordered: true))
            if beside {
                for index in 0..<10 {
                    _ = try await stores.webhooks.register(WebhookRegistration(webhookURL: base + "/\(index)", eventTypes: ["record.updated"]))
                }
            }
            _ = try await database.query(
                """
                INSERT INTO events (event_type, payload, created_at) SELECT 'record.created', json_build_object('n', g), \
                clock_timestamp() FROM generate_series(1, \(count)) g
                """, [])
            if beside {
                _ = try await database.query(
                    """
                    INSERT INTO events (event_type, payload, created_at) SELECT 'record.updated', json_build_object('n', g), \
                    clock_timestamp() FROM generate_series(1, \(total / 10)) g
                    """, [])
            }
            let dispatcher = Self.dispatcher(database: database, stores: stores, gateway: gateway, concurrency: concurrency)
            let start = ContinuousClock.now
            let running = Task { await dispatcher.runLoop() }
            var others: Int64 = 0
            while true {
                try await Task.sleep(for: .milliseconds(20))
                let row = try await database.queryOne(
                    """
                    SELECT COALESCE(sum(success_count) FILTER (WHERE webhook_id = $1), 0)::bigint AS mine, \
                    COALESCE(sum(success_count) FILTER (WHERE webhook_id <> $1), 0)::bigint AS others FROM webhook_statistics
                    """, [.uuid(hook.webhook.id.uuid)])!
                others = try row.int("others")
                if try row.int("mine") >= count { break }
            }
            let seconds = (ContinuousClock.now - start).seconds
            running.cancel()
            await running.value
            let attempts = try await database.queryOne(
                "SELECT count(*) AS n FROM webhook_attempts WHERE webhook_id = $1", [.uuid(hook.webhook.id.uuid)])!.int("n")
            let rate = Double(count) / seconds
            let scenario = beside ? " beside a burst to 10 endpoints (\(others) of \(total) delivered meanwhile)" : ""
            print("webhooks, ordered, 1 endpoint, \(count) events\(scenario): " + String(
                format: "%.2f s = %.0f/s (%.0f %% of plain POSTs one after another), %d attempts", seconds, rate, 100 * rate / plainRate,
                attempts))
        }
    }
}
