import Foundation
import HubCore
import HubEngine
import HubPostgres
import HubStore
import Hummingbird
import Logging
import NIOCore

/// The connectivity monitor at scale on PostgreSQL: `count` connections at a 5-minute interval (half TCP, half HTTP
/// GET, all against loopback targets in this process), checked by one `HealthMonitor` as `hub serve` runs it, for
/// `seconds`: sustained checks a second, the share of checks started more than 5 s after they were due, the process's
/// CPU time and peak resident memory, and the PostgreSQL backends' CPU time.
enum MonitorBench {
    static func run(database: PostgresDatabase, sealer: SecretSealer, count: Int, seconds: Int) async throws {
        try await Migrator(database: database).migrate()
        let stores = HubStores(database: database, sealer: sealer)
        let router = Router()
        router.get("/ok") { _, _ -> Response in Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ok"))) }
        let gateway = OutboundGateway(policy: try OutboundPolicy(allowlist: ["127.0.0.0/8"]))
        try await HubBench.withLoopbackServer(router) { port in
            // The connections, each first due at a random point of its first interval (as creation spreads them).
            let created = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { creators in
                for worker in 0..<8 {
                    creators.addTask {
                        for index in stride(from: worker, to: count, by: 8) {
                            let http = index % 2 == 0
                            _ = try await stores.connections.create(ConnectionRegistration(
                                systemName: "bench-\(index)", connectionType: http ? .API : .TCP,
                                endpoint: http ? "http://127.0.0.1:\(port)/ok" : "127.0.0.1:\(port)", credentials: [:],
                                healthCheckInterval: 5))
                        }
                    }
                }
                try await creators.waitForAll()
            }
            print(String(format: "monitor: %d connections created in %.1f s", count, (ContinuousClock.now - created).seconds))
            var configuration = HealthMonitorConfiguration()
            configuration.pollInterval = .milliseconds(250)
            var logger = Logger(label: "bench.monitor")
            logger.logLevel = .critical
            let monitor = HealthMonitor(
                store: HealthMonitorStore(database: database), connections: stores.connections, gateway: gateway,
                configuration: configuration, logger: logger)
            let cpuBefore = HubBench.processCPUSeconds()
            let postgresBefore = HubBench.postgresCPUSeconds()
            let residentBefore = SyncBench.residentBytes()
            let peak = PeakResident()
            let start = ContinuousClock.now
            let running = Task { await monitor.runLoop() }
            while ContinuousClock.now - start < .seconds(seconds) {
                try await Task.sleep(for: .milliseconds(200))
                await peak.sample()
            }
            running.cancel()
            await running.value
            let elapsed = (ContinuousClock.now - start).seconds
            let started = monitor.statistics.checksStarted
            let late = monitor.statistics.checksLate
            let cpu = HubBench.processCPUSeconds() - cpuBefore
            let postgresCPU = HubBench.postgresCPUSeconds() - postgresBefore
            print(String(
                format: "monitor: %d connections every 5 min for %.0f s: %d checks = %.1f/s (due: %.1f/s); %d started > 5 s late (%.3f %%); hub CPU %.1f s (%.0f %% of a core), PostgreSQL backends CPU %.1f s (%.0f %%); peak RSS +%.1f MiB",
                count, elapsed, started, Double(started) / elapsed, Double(count) / 300, late, started == 0 ? 0 : 100 * Double(late) / Double(started),
                cpu, 100 * cpu / elapsed, postgresCPU, 100 * postgresCPU / elapsed, Double(await peak.value - residentBefore) / 1_048_576))
            try await gateway.shutdown()
        }
    }

    actor PeakResident {
        var value = 0
        func sample() { value = max(value, SyncBench.residentBytes()) }
    }
}
