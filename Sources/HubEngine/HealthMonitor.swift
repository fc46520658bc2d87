import Foundation
import HubCore
import HubStore
import Logging
import ServiceLifecycle
import Synchronization

/// Settings of a ``HealthMonitor``.
public struct HealthMonitorConfiguration: Sendable {
    /// Probes in flight at once in this process.
    public var concurrency = 64
    /// How often an idle monitor looks for due connections.
    public var pollInterval: Duration = .seconds(1)
    /// Raw checks are kept this many days (their rollups stay).
    public var rawRetentionDays = 7
    /// Hourly and daily rollups are kept this many days.
    public var rollupRetentionDays = 400
    /// How often old checks and rollups are pruned.
    public var pruneInterval: Duration = .seconds(3600)
    /// A probe's timeout.
    public var probeTimeout: Duration = .seconds(10)

    public init() {}
}

/// Checks every connection every health_check_interval minutes, continuously: due connections are claimed (the claim
/// moves them one interval on, so many monitors on one database never check one twice in an interval), probed with
/// bounded concurrency (a slow probe holds one slot, never the others), and recorded with retries, rollups and
/// status-change events. Old raw checks and rollups are pruned.
public struct HealthMonitor: Service {
    let store: HealthMonitorStore
    let connections: any SystemConnectivityDAO
    let prober: HealthProber
    let configuration: HealthMonitorConfiguration
    let logger: Logger
    let counters = Counters()

    /// How many checks this monitor started, and how many of them more than 5 s after they were due.
    public final class Counters: Sendable {
        let started = Atomic<Int>(0)
        let late = Atomic<Int>(0)
        public var checksStarted: Int { started.load(ordering: .relaxed) }
        public var checksLate: Int { late.load(ordering: .relaxed) }
    }

    public var statistics: Counters { counters }

    public init(
        store: HealthMonitorStore, connections: any SystemConnectivityDAO, gateway: OutboundGateway,
        configuration: HealthMonitorConfiguration = HealthMonitorConfiguration(), logger: Logger = Logger(label: "hub.monitor")
    ) {
        self.store = store
        self.connections = connections
        self.prober = HealthProber(gateway: gateway, timeout: configuration.probeTimeout)
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown { await runLoop() }
    }

    /// Runs until cancelled.
    public func runLoop() async {
        let inFlight = SharedCounter()
        var lastPrune = ContinuousClock.now - configuration.pruneInterval
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                if ContinuousClock.now - lastPrune >= configuration.pruneInterval {
                    lastPrune = ContinuousClock.now
                    do {
                        try await store.prune(rawDays: configuration.rawRetentionDays, rollupDays: configuration.rollupRetentionDays)
                    } catch {
                        logger.warning("pruning health checks failed", metadata: ["error": "\(error)"])
                    }
                }
                let free = configuration.concurrency - inFlight.value.load(ordering: .relaxed)
                var claimed: [HealthMonitorStore.Due] = []
                if free > 0 {
                    do {
                        claimed = try await store.claimDue(limit: free)
                    } catch {
                        logger.warning("claiming due connections failed", metadata: ["error": "\(error)"])
                    }
                }
                for due in claimed {
                    inFlight.value.add(1, ordering: .relaxed)
                    group.addTask {
                        await check(due)
                        inFlight.value.subtract(1, ordering: .relaxed)
                    }
                }
                if claimed.count < free { try? await Task.sleep(for: claimed.isEmpty ? configuration.pollInterval : .milliseconds(50)) }
            }
        }
    }

    /// Runs every check due now to its end (for tests and tools driving the clock themselves); returns how many ran.
    @discardableResult
    public func runDue() async throws -> Int {
        var total = 0
        while true {
            let claimed = try await store.claimDue(limit: configuration.concurrency)
            if claimed.isEmpty { return total }
            total += claimed.count
            await withDiscardingTaskGroup { group in
                for due in claimed { group.addTask { await check(due) } }
            }
        }
    }

    /// One check: probe with the clear credentials, record with retries, rollups and events.
    func check(_ due: HealthMonitorStore.Due) async {
        counters.started.add(1, ordering: .relaxed)
        if store.now().timeIntervalSince(due.dueAt) > 5 { counters.late.add(1, ordering: .relaxed) }
        let result: ProbeResult
        do {
            result = await prober.probe(due.connection, credentials: try await connections.credentials(for: due.connection.id))
        } catch is CancellationError {
            return
        } catch HubError.notFound {
            return  // deleted meanwhile
        } catch {
            result = ProbeResult(status: .down, responseTime: nil, reason: "the credentials could not be read")
        }
        // A probe cut off by shutdown found nothing: record no check (the connection is due again next interval).
        if Task.isCancelled { return }
        do {
            try await store.record(
                due.connection.id, CheckOutcome(status: result.status, responseTime: result.responseTime, reason: result.reason),
                monitored: true)
        } catch HubError.notFound {
            // Deleted while it was probed.
        } catch {
            logger.warning("recording a health check failed", metadata: ["connection_id": "\(due.connection.id)", "error": "\(error)"])
        }
    }
}
