import Foundation
import HubCore
import HubStore
import Logging
import ServiceLifecycle

/// Prunes raw API operations older than `operationDays` (default 30), daily statistics older than `statisticsDays`
/// (default 400) and, given the delivery store, finished webhook messages with their attempts and dispatched events
/// older than `webhookDays` (default 30), once at start and then every `interval`. A `Service`: it stops at graceful
/// shutdown. Many instances may run it at once; deletes are idempotent.
public struct RetentionService: Service {
    let operations: any APIOperationDAO
    let webhookDeliveries: WebhookDeliveryStore?
    let operationDays: Int
    let statisticsDays: Int
    let webhookDays: Int
    let interval: Duration
    let clock: WallClock
    let logger: Logger

    /// A service over `operations` (and `webhookDeliveries`) with the given periods.
    /// - Throws: `validation` for periods outside 1…36500 days.
    public init(
        operations: any APIOperationDAO, webhookDeliveries: WebhookDeliveryStore? = nil, operationDays: Int = 30,
        statisticsDays: Int = 400, webhookDays: Int = 30, interval: Duration = .seconds(3600), clock: WallClock = .system,
        logger: Logger
    ) throws {
        try Validate.range(operationDays, 1...36_500, field: "operations_retention_days")
        try Validate.range(statisticsDays, 1...36_500, field: "statistics_retention_days")
        try Validate.range(webhookDays, 1...36_500, field: "webhook_retention_days")
        self.operations = operations
        self.webhookDeliveries = webhookDeliveries
        self.operationDays = operationDays
        self.statisticsDays = statisticsDays
        self.webhookDays = webhookDays
        self.interval = interval
        self.clock = clock
        self.logger = logger
    }

    /// One pruning pass at the clock's current time; returns what was deleted.
    @discardableResult
    public func pruneOnce() async throws -> (operations: Int, statistics: Int, webhookMessages: Int, events: Int) {
        let now = clock.now()
        let operationsBefore = now.addingTimeInterval(-Double(operationDays) * 86_400)
        let statisticsBefore = UTCDay.of(now.addingTimeInterval(-Double(statisticsDays) * 86_400))
        let result = try await operations.prune(operationsBefore: operationsBefore, statisticsBefore: statisticsBefore)
        let webhooks = try await webhookDeliveries?.prune(before: now.addingTimeInterval(-Double(webhookDays) * 86_400)) ?? (messages: 0, events: 0)
        if result.operations > 0 || result.statistics > 0 || webhooks.messages > 0 || webhooks.events > 0 {
            logger.info(
                "retention pruned",
                metadata: [
                    "operations": "\(result.operations)", "statistics_rows": "\(result.statistics)",
                    "webhook_messages": "\(webhooks.messages)", "events": "\(webhooks.events)",
                ])
        }
        return (result.operations, result.statistics, webhooks.messages, webhooks.events)
    }

    public func run() async throws {
        while !Task.isCancelledOrShuttingDownGracefully {
            do {
                try await pruneOnce()
            } catch {
                logger.warning("retention pass failed; will retry", metadata: ["error": "\(error)"])
            }
            // Wakes at graceful shutdown instead of sleeping through it.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}

extension Task where Success == Never, Failure == Never {
    /// Whether the current task is cancelled or its service group is shutting down gracefully.
    static var isCancelledOrShuttingDownGracefully: Bool { Task.isCancelled || Task.isShuttingDownGracefully }
}
