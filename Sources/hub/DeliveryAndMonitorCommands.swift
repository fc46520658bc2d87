import ArgumentParser
import Foundation
import HubCore
import HubServer
import HubStore

// MARK: - hub webhooks: deliveries

extension Webhooks {
    static let messageColumns = ["message_id", "event_type", "status", "attempts", "last_status_code", "next_attempt_at", "created_at"]

    struct Messages: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a webhook's messages, newest first.")
        @OptionGroup var options: ResourceOptions
        @OptionGroup var page: PageOptions
        @Argument(help: "webhook_id") var id: String
        @Option(help: "Only messages with this status: pending, succeeded or failed.") var status: String?

        func run() async throws {
            let (id, status, request, json) = (id, status, page.request, options.json)
            try await options.withStores { stores in
                let filter = try status.map { text in
                    guard let status = WebhookMessageStatus(rawValue: text) else {
                        throw HubError.validation(field: "status", reason: "must be one of pending, succeeded, failed")
                    }
                    return status
                }
                let messages = try await WebhookDeliveryStore(database: stores.database)
                    .messages(of: try parseID(id), status: filter, page: request)
                output(messages.json(\.json), json: json, columns: Webhooks.messageColumns)
            }
        }
    }

    struct Attempts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show every delivery attempt of a message.")
        @OptionGroup var options: ResourceOptions
        @Argument(help: "webhook_id") var id: String
        @Argument(help: "message_id (msg_…)") var message: String

        func run() async throws {
            let (id, message, json) = (id, message, options.json)
            try await options.withStores { stores in
                let attempts = try await WebhookDeliveryStore(database: stores.database)
                    .attempts(of: try WebhookMessage.sequence(of: message), webhookID: try parseID(id))
                output(
                    ["items": .array(attempts.map(\.json))], json: json,
                    columns: ["attempt_number", "status_code", "latency_ms", "succeeded", "error", "next_attempt_at", "attempted_at"])
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send a message again now (same webhook-id), with a fresh retry schedule.")
        @OptionGroup var options: ResourceOptions
        @Argument(help: "webhook_id") var id: String
        @Argument(help: "message_id (msg_…)") var message: String

        func run() async throws {
            let (id, message, json) = (id, message, options.json)
            try await options.withStores { stores in
                let replayed = try await WebhookDeliveryStore(database: stores.database)
                    .replay(try WebhookMessage.sequence(of: message), of: try parseID(id))
                output(replayed.json, json: json, columns: Webhooks.messageColumns)
            }
        }
    }

    struct Recover: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send again every failed message of a webhook created in a time range.")
        @OptionGroup var options: ResourceOptions
        @Argument(help: "webhook_id") var id: String
        @Option(help: "RFC 3339 start of the range.") var since: String
        @Option(help: "RFC 3339 end of the range (default now).") var until: String?

        func run() async throws {
            let (id, since, until, json) = (id, since, until, options.json)
            try await options.withStores { stores in
                let count = try await WebhookDeliveryStore(database: stores.database).recover(
                    try parseID(id), since: try RFC3339.parse(since, field: "since"),
                    until: try until.map { try RFC3339.parse($0, field: "until") })
                if json { say(JSONValue.object(["recovered": .int(Int64(count))]).jsonText) } else { say("recovered \(count) message(s)") }
            }
        }
    }

    struct RotateSecret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace the signing secret; the old one keeps signing during the grace period. The new secret is printed this once.")
        @OptionGroup var options: ResourceOptions
        @Argument(help: "webhook_id") var id: String
        @Option(help: "Seconds the old secret keeps signing (0-2592000, default 86400).") var graceSeconds = 86_400
        @Option(help: "whsec_… secret; generated when omitted.") var secret: String?

        func run() async throws {
            let (id, grace, secret, json) = (id, graceSeconds, secret, options.json)
            try await options.withStores { stores in
                let webhookID: WebhookID = try parseID(id)
                let rotated = try await stores.webhooks.rotateSecret(webhookID, newSecret: secret, grace: .seconds(grace))
                let value: JSONValue = [
                    "webhook_id": .string(webhookID.description), "secret": .string(rotated.secret),
                    "previous_valid_until": rotated.previousValidUntil.map { .string(RFC3339.format($0)) } ?? .null,
                ]
                if json {
                    say(value.jsonText)
                } else {
                    say("new signing secret (shown this once): \(rotated.secret)")
                    if let until = rotated.previousValidUntil { say("the previous secret keeps signing until \(RFC3339.format(until))") }
                }
            }
        }
    }

    /// enable and disable: the webhook's status through the DAO's update (which also clears or sets its reason).
    static func setStatus(_ status: WebhookStatus, id: String, options: ResourceOptions) async throws {
        let json = options.json
        try await options.withStores { stores in
            output(try await stores.webhooks.update(try parseID(id), WebhookUpdate(status: status)).json, json: json, columns: Webhooks.columns)
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a webhook (its failing clock starts again).")
        @OptionGroup var options: ResourceOptions
        @Argument(help: "webhook_id") var id: String

        func run() async throws {
            try await Webhooks.setStatus(.active, id: id, options: options)
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a webhook: nothing is sent to it until it is enabled.")
        @OptionGroup var options: ResourceOptions
        @Argument(help: "webhook_id") var id: String

        func run() async throws {
            try await Webhooks.setStatus(.disabled, id: id, options: options)
        }
    }
}

// MARK: - hub connections: history, uptime, maintenance

extension Connections {
    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A connection's checks, newest first.")
        @OptionGroup var options: ResourceOptions
        @OptionGroup var page: PageOptions
        @Argument(help: "connection_id") var id: String

        func run() async throws {
            let (id, request, json) = (id, page.request, options.json)
            try await options.withStores { stores in
                output(
                    try await stores.connections.healthHistory(try parseID(id), request).json(\.json), json: json,
                    columns: ["check_timestamp", "status", "response_time"])
            }
        }
    }

    struct Uptime: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Uptime and response times over the last 24 h, 7 d, 30 d and all time.")
        @OptionGroup var options: ResourceOptions
        @Argument(help: "connection_id") var id: String

        func run() async throws {
            let (id, json) = (id, options.json)
            try await options.withStores { stores in
                let windows = try await HealthMonitorStore(database: stores.database).uptime(try parseID(id))
                output(
                    ["items": .array(windows.map(\.json))], json: json,
                    columns: ["window", "checks", "uptime_percentage", "avg_response_time", "p50_response_time", "p95_response_time",
                              "p99_response_time", "maintenance"])
            }
        }
    }

    struct Maintenance: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Maintenance windows: checks inside them are kept but not counted in uptime and raise no events.",
            subcommands: [Add.self, List.self, Delete.self])

        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Add a maintenance window.")
            @OptionGroup var options: ResourceOptions
            @Argument(help: "connection_id") var id: String
            @Option(help: "RFC 3339 start.") var start: String
            @Option(help: "RFC 3339 end.") var end: String
            @Option(help: "Why (shown with the window).") var reason: String?

            func run() async throws {
                let (id, start, end, reason, json) = (id, start, end, reason, options.json)
                try await options.withStores { stores in
                    let window = try await HealthMonitorStore(database: stores.database).addMaintenance(
                        try parseID(id), startsAt: try RFC3339.parse(start, field: "start"), endsAt: try RFC3339.parse(end, field: "end"),
                        reason: reason)
                    output(window.json, json: json, columns: ["window_id", "starts_at", "ends_at", "reason"])
                }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List a connection's maintenance windows.")
            @OptionGroup var options: ResourceOptions
            @Argument(help: "connection_id") var id: String

            func run() async throws {
                let (id, json) = (id, options.json)
                try await options.withStores { stores in
                    let windows = try await HealthMonitorStore(database: stores.database).maintenance(try parseID(id))
                    output(["items": .array(windows.map(\.json))], json: json, columns: ["window_id", "starts_at", "ends_at", "reason"])
                }
            }
        }

        struct Delete: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Delete a maintenance window.")
            @OptionGroup var options: ResourceOptions
            @Argument(help: "connection_id") var id: String
            @Argument(help: "window_id") var window: String

            func run() async throws {
                let (id, window) = (id, window)
                try await options.withStores { stores in
                    guard let windowID = UUID(uuidString: window) else { throw HubError.notFound(entity: "maintenance window", id: window) }
                    try await HealthMonitorStore(database: stores.database).deleteMaintenance(try parseID(id), window: windowID)
                    say("deleted")
                }
            }
        }
    }
}
