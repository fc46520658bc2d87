import Foundation
import HubCore
import HubStore
import Logging
import ServiceLifecycle
import Synchronization

/// Settings of a ``WebhookDispatcher``.
public struct WebhookDispatcherConfiguration: Sendable {
    /// Deliveries in flight at once in this process. A claim takes at least half this many messages and outcomes are
    /// written in groups, so the database's work per delivery falls as it rises: in `hub-bench webhooks`, 128 instead of
    /// 64 took PostgreSQL's CPU per delivery from about 85–125 to 67–85 µs and bursts from about 4,100–5,400 to
    /// 5,300–6,200 deliveries a second.
    public var concurrency = 128
    /// How long a claim's lease lasts without renewal. The dispatcher renews the leases of every message it holds (queued,
    /// being sent, or with its outcome waiting to be written) every quarter of this, so a delivery may take longer than
    /// the lease; a dispatcher that dies leaves its messages to others once this has passed since its last renewal.
    public var lease: Duration = .seconds(8)
    /// An endpoint with no success for this long is disabled (default 5 days).
    public var disableAfter: Duration = .seconds(5 * 86_400)
    /// How often an idle dispatcher looks for work.
    public var pollInterval: Duration = .milliseconds(100)
    /// The longest wait a Retry-After may ask for (429 and 503 wait at least 60 s).
    public var maximumRetryAfter: Duration = .seconds(6 * 3600)
    /// The lease owner's name: unique per process.
    public var owner = "dispatcher-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))"

    public init() {}
}

/// Delivers webhook messages: fans the outbox out into messages, claims due ones under leases, signs and sends each
/// through the outbound gateway (policy, no redirects, a timeout), and records every attempt with the webhook's
/// statistics in one transaction per group of outcomes. Many dispatchers may share one database.
///
/// A message is leased until its outcome is committed, so a dispatcher that dies mid-delivery leaves it to be claimed
/// again when the lease expires: delivery is at least once, and a message is never in flight in two places while its
/// lease holds. At graceful shutdown it stops claiming, lets deliveries in flight finish and records them.
public struct WebhookDispatcher: Service {
    let store: WebhookDeliveryStore
    let webhooks: any WebhookManagementDAO
    let gateway: OutboundGateway
    let configuration: WebhookDispatcherConfiguration
    let logger: Logger

    public init(
        store: WebhookDeliveryStore, webhooks: any WebhookManagementDAO, gateway: OutboundGateway,
        configuration: WebhookDispatcherConfiguration = WebhookDispatcherConfiguration(),
        logger: Logger = Logger(label: "hub.webhooks")
    ) {
        self.store = store
        self.webhooks = webhooks
        self.gateway = gateway
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        let stopping = SharedCounter()
        try await withGracefulShutdownHandler {
            await runLoop(stopping: stopping)
        } onGracefulShutdown: {
            stopping.value.store(1, ordering: .relaxed)
        }
    }

    /// Runs until cancelled.
    public func runLoop() async { await runLoop(stopping: SharedCounter()) }

    /// Runs until cancelled, or until `stopping` is set (then in-flight deliveries finish and are recorded).
    func runLoop(stopping: SharedCounter) async {
        let outcomes = OutcomeBuffer()
        let endpoints = EndpointCache()
        let leases = LeaseBook()
        let outstanding = SharedCounter()
        let nudged = SharedCounter()
        let queue = MessageQueue()
        let writerDone = SharedCounter()
        let writerFinished = SharedCounter()
        let renewal = Doorbell()
        let renewEvery = max(configuration.lease / 4, .milliseconds(50))
        /// Messages just claimed: held (and renewed) from now on; ordered ones go ahead of the queue.
        func enqueue(_ claimed: [WebhookDeliveryStore.Claimed]) -> Bool {
            guard !claimed.isEmpty else { return true }
            guard queue.push(claimed.filter { !$0.ordered }, urgent: claimed.filter(\.ordered)) else {
                // The senders have stopped: the leases run out and another dispatcher (or this one, restarted) sends.
                leases.release(claimed.map(\.sequence))
                outstanding.value.subtract(claimed.count, ordering: .relaxed)
                return false
            }
            return true
        }
        await withDiscardingTaskGroup { outer in
            // The lease keeper: renews every held lease while this dispatcher works, until the last outcome is written.
            // A message whose lease another owner took is dropped here and not sent.
            outer.addTask {
                while !Task.isCancelled, writerFinished.value.load(ordering: .relaxed) == 0 {
                    await renewal.wait(upTo: renewEvery)
                    let held = leases.sequences()
                    guard !held.isEmpty, writerFinished.value.load(ordering: .relaxed) == 0 else { continue }
                    let until = Date().addingTimeInterval(configuration.lease.seconds)
                    do {
                        let renewed = try await store.renew(held, owner: configuration.owner, lease: configuration.lease)
                        leases.renewed(held, kept: renewed, until: until)
                    } catch {
                        logger.warning("renewing webhook leases failed", metadata: ["error": "\(error)"])
                    }
                }
            }
            // The writer: records whatever outcomes queued meanwhile, in one transaction; keeps them until that works.
            // Then an ordered webhook's next message is claimed at once and goes ahead of the queue.
            outer.addTask {
                defer {
                    writerFinished.value.store(1, ordering: .relaxed)
                    renewal.ring()
                }
                while true {
                    let batch = outcomes.take()
                    if batch.isEmpty {
                        if writerDone.value.load(ordering: .relaxed) == 1 || Task.isCancelled { break }
                        await outcomes.arrival.wait()
                        continue
                    }
                    while true {
                        do {
                            let disabled = try await store.record(batch, owner: configuration.owner, disableAfter: configuration.disableAfter)
                            nudged.value.store(1, ordering: .relaxed)
                            for id in disabled { logger.notice("webhook disabled", metadata: ["webhook_id": "\(id)"]) }
                            break
                        } catch {
                            logger.warning("recording webhook attempts failed; retrying", metadata: ["error": "\(error)"])
                            if Task.isCancelled { return }
                            try? await Task.sleep(for: .seconds(1))
                        }
                    }
                    let ordered = leases.release(batch.map(\.sequence)).filter { $0.ordered && $0.rateLimit == nil }.map(\.webhookID)
                    guard !ordered.isEmpty, stopping.value.load(ordering: .relaxed) == 0, !Task.isCancelled else { continue }
                    do {
                        let next = leases.hold(try await store.claim(
                            owner: configuration.owner, lease: configuration.lease, limit: ordered.count, only: Array(Set(ordered))))
                        outstanding.value.add(next.count, ordering: .relaxed)
                        _ = enqueue(next)
                    } catch {
                        logger.warning("claiming webhook messages failed", metadata: ["error": "\(error)"])
                    }
                }
            }
            await withDiscardingTaskGroup { group in
                // The fan-out: the outbox into messages, in event order.
                group.addTask {
                    while !Task.isCancelled && stopping.value.load(ordering: .relaxed) == 0 {
                        let handled = (try? await store.fanOut()) ?? 0
                        if handled > 0 { nudged.value.store(1, ordering: .relaxed) } else { try? await Task.sleep(for: configuration.pollInterval) }
                    }
                }
                // The senders: each takes the next claimed message, delivers it and hands the outcome to the writer.
                for _ in 0..<configuration.concurrency {
                    group.addTask {
                        while let message = await queue.next() {
                            // No outcome when cancelled (nothing is known about a cut-off send) or when the lease was lost:
                            // the message is claimed again once its lease expires.
                            if let outcome = await deliver(message, endpoints: endpoints, leases: leases), !Task.isCancelled {
                                outcomes.add(outcome)
                            } else {
                                leases.release([message.sequence])
                            }
                            outstanding.value.subtract(1, ordering: .relaxed)
                        }
                    }
                }
                // The claimer keeps up to one claim's worth queued ahead of the senders, claiming in batches of at least
                // half the senders (a claim's statements cost the same for 16 messages as for 32).
                while !Task.isCancelled && stopping.value.load(ordering: .relaxed) == 0 {
                    let busy = outstanding.value.load(ordering: .relaxed)
                    let room = 2 * configuration.concurrency - busy
                    var claimed: [WebhookDeliveryStore.Claimed] = []
                    let claiming = room > 0 && (busy == 0 || room >= max(1, configuration.concurrency / 2))
                    if claiming {
                        do {
                            // A message this dispatcher holds already (its lease ran out before a renewal) is not sent twice.
                            claimed = leases.hold(try await store.claim(owner: configuration.owner, lease: configuration.lease, limit: room))
                        } catch {
                            logger.warning("claiming webhook messages failed", metadata: ["error": "\(error)"])
                        }
                    }
                    outstanding.value.add(claimed.count, ordering: .relaxed)
                    var paced: [WebhookID: [WebhookDeliveryStore.Claimed]] = [:]
                    for message in claimed where message.rateLimit != nil {
                        paced[message.webhookID, default: []].append(message)
                    }
                    _ = enqueue(claimed.filter { $0.rateLimit == nil })
                    // A rate-limited webhook's share: each request goes out at least 1/rate after the one before (the
                    // pacer is consulted right before sending, after everything that could delay one send and not another).
                    for (_, share) in paced {
                        let pacer = Pacer(interval: 1 / Double(share[0].rateLimit ?? 1))
                        for message in share {
                            group.addTask {
                                if let outcome = await deliver(message, endpoints: endpoints, leases: leases, pacer: pacer), !Task.isCancelled {
                                    outcomes.add(outcome)
                                } else {
                                    leases.release([message.sequence])
                                }
                                outstanding.value.subtract(1, ordering: .relaxed)
                            }
                        }
                    }
                    if claimed.isEmpty && claiming {
                        // Nothing due: look again after the poll interval, or as soon as this process fans new messages
                        // out or records outcomes (which release leases: a rate-limited webhook's next share).
                        let deadline = ContinuousClock.now + configuration.pollInterval
                        while ContinuousClock.now < deadline, !Task.isCancelled, nudged.value.exchange(0, ordering: .relaxed) == 0 {
                            try? await Task.sleep(for: .milliseconds(5))
                        }
                    } else if claimed.isEmpty {
                        // Waiting for the senders to make room (no database work).
                        try? await Task.sleep(for: .milliseconds(5))
                    }
                }
                // No more claims: the senders finish what is queued, then stop.
                queue.close()
            }
            // Every delivery has ended: record the last outcomes, then stop the writer.
            writerDone.value.store(1, ordering: .relaxed)
            outcomes.arrival.ring()
        }
    }

    /// One attempt: sign with every valid secret, POST through the gateway, classify, schedule the next attempt.
    func deliver(
        _ message: WebhookDeliveryStore.Claimed, endpoints: EndpointCache, leases: LeaseBook, pacer: Pacer? = nil
    ) async -> WebhookDeliveryStore.Outcome? {
        let attempt = message.attempts + 1
        let started = Date()
        var sendsAt: Date?  // a rate-limited send's slot
        func outcome(
            status: Int?, latency: Int64, excerpt: String?, error: String?, succeeded: Bool, gone: Bool = false,
            retry: RetryConfig, retryAfter: Duration? = nil, throttled: Bool = false
        ) -> WebhookDeliveryStore.Outcome {
            var next: Date?
            if !succeeded && !gone, let delay = retry.delay(afterFailedAttempts: attempt - message.scheduleStart) {
                var seconds = Double(delay) * Double.random(in: 0.8...1.2)
                if throttled {
                    // 429 and 503: at least 60 s, longer when Retry-After asks (up to the bound), never shorter than
                    // the schedule's own delay.
                    let asked = retryAfter.map { Double($0.components.seconds) } ?? 0
                    seconds = max(seconds, min(max(60, asked), Double(configuration.maximumRetryAfter.components.seconds)))
                }
                next = Date().addingTimeInterval(seconds)
            }
            return WebhookDeliveryStore.Outcome(
                sequence: message.sequence, webhookID: message.webhookID, attemptNumber: attempt, statusCode: status,
                latencyMilliseconds: latency, responseExcerpt: excerpt, error: error, succeeded: succeeded, gone: gone,
                nextAttemptAt: next, attemptedAt: started, throttleUntil: sendsAt.map { $0.addingTimeInterval(pacer?.interval ?? 0) })
        }
        let endpoint: Endpoint
        do {
            endpoint = try await endpoints.endpoint(for: message.webhookID, updatedAt: message.webhookUpdatedAt, webhooks: webhooks)
        } catch {
            return outcome(
                status: nil, latency: 0, excerpt: nil, error: "the webhook's settings could not be read", succeeded: false,
                retry: RetryConfig())
        }
        // Sent only while this dispatcher's lease on it has a quarter of its length left: a lease lost to another owner, or
        // renewals failing for that long, leave the message to whoever claims it next. (A send then in flight is covered
        // by the renewals made while it lasts.)
        guard leases.holds(message.sequence, until: Date().addingTimeInterval(configuration.lease.seconds / 4)) else { return nil }
        let body = Data(message.body.utf8)
        sendsAt = await pacer?.next()
        let timestamp = Int64(Date().timeIntervalSince1970)
        var headers = endpoint.headers
        headers["Content-Type"] = "application/json"
        headers["webhook-id"] = message.id
        headers["webhook-timestamp"] = String(timestamp)
        guard let keys = endpoint.keys else {
            return outcome(
                status: nil, latency: 0, excerpt: nil, error: "the signing secret is malformed", succeeded: false,
                retry: endpoint.retry)
        }
        headers["webhook-signature"] = WebhookSignature.sign(keys: keys, id: message.id, timestamp: timestamp, body: body)
        let response = await gateway.send(
            method: "POST", url: endpoint.url, headers: headers, body: body, timeout: endpoint.retry.timeout, bodyCap: 4096)
        let excerpt = response.statusCode == nil ? nil : JSONValue.string(String(decoding: response.body, as: UTF8.self)).replacingNUL.stringValue
        guard let status = response.statusCode else {
            return outcome(
                status: nil, latency: response.elapsedMilliseconds, excerpt: nil,
                error: response.refused ? "refused by the outbound policy: \(response.error ?? "")" : response.error,
                succeeded: false, retry: endpoint.retry)
        }
        switch status {
        case 200..<300:
            return outcome(status: status, latency: response.elapsedMilliseconds, excerpt: excerpt, error: nil, succeeded: true, retry: endpoint.retry)
        case 410:
            return outcome(
                status: status, latency: response.elapsedMilliseconds, excerpt: excerpt,
                error: "HTTP 410 Gone: the endpoint is disabled", succeeded: false, gone: true, retry: endpoint.retry)
        case 429, 503:
            return outcome(
                status: status, latency: response.elapsedMilliseconds, excerpt: excerpt, error: "HTTP \(status)", succeeded: false,
                retry: endpoint.retry, retryAfter: response.retryAfter, throttled: true)
        case 300..<400:
            return outcome(
                status: status, latency: response.elapsedMilliseconds, excerpt: excerpt,
                error: "HTTP \(status): redirects are not followed", succeeded: false, retry: endpoint.retry)
        default:
            return outcome(
                status: status, latency: response.elapsedMilliseconds, excerpt: excerpt, error: "HTTP \(status)", succeeded: false,
                retry: endpoint.retry)
        }
    }
}

