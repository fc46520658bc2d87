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
    /// How long a claimed message stays leased; it must outlast the longest delivery timeout (60 s).
    public var lease: Duration = .seconds(90)
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
        let outstanding = SharedCounter()
        let nudged = SharedCounter()
        let queue = MessageQueue()
        let writerDone = SharedCounter()
        await withDiscardingTaskGroup { outer in
            // The writer: records whatever outcomes queued meanwhile, in one transaction; keeps them until that works.
            outer.addTask {
                while true {
                    let batch = outcomes.take()
                    if batch.isEmpty {
                        if writerDone.value.load(ordering: .relaxed) == 1 || Task.isCancelled { break }
                        try? await Task.sleep(for: .milliseconds(5))
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
                            // No outcome when cancelled (nothing is known about a cut-off send) or when the lease would
                            // not outlast the send: the message is claimed again once its lease expires.
                            if let outcome = await deliver(message, endpoints: endpoints), !Task.isCancelled {
                                outcomes.add(outcome)
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
                            claimed = try await store.claim(owner: configuration.owner, lease: configuration.lease, limit: room)
                        } catch {
                            logger.warning("claiming webhook messages failed", metadata: ["error": "\(error)"])
                        }
                    }
                    outstanding.value.add(claimed.count, ordering: .relaxed)
                    var paced: [WebhookID: [WebhookDeliveryStore.Claimed]] = [:]
                    for message in claimed where message.rateLimit != nil {
                        paced[message.webhookID, default: []].append(message)
                    }
                    queue.push(claimed.filter { $0.rateLimit == nil })
                    // A rate-limited webhook's share: each request goes out at least 1/rate after the one before (the
                    // pacer is consulted right before sending, after everything that could delay one send and not another).
                    for (_, share) in paced {
                        let pacer = Pacer(interval: 1 / Double(share[0].rateLimit ?? 1))
                        for message in share {
                            group.addTask {
                                if let outcome = await deliver(message, endpoints: endpoints, pacer: pacer), !Task.isCancelled {
                                    outcomes.add(outcome)
                                }
                                outstanding.value.subtract(1, ordering: .relaxed)
                            }
                        }
                    }
                    if claimed.isEmpty && claiming {
                        // Nothing due: look again after the poll interval, or as soon as this process fans new messages
                        // out or records outcomes (which release leases: an ordered endpoint's next message, a share).
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
        }
    }

    /// One attempt: sign with every valid secret, POST through the gateway, classify, schedule the next attempt.
    func deliver(
        _ message: WebhookDeliveryStore.Claimed, endpoints: EndpointCache, pacer: Pacer? = nil
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
        // A message that waited too long for a sender is left to its lease's end rather than sent while another
        // dispatcher may claim it.
        // (A lease configured shorter than the timeout cannot be kept anyway; such messages are sent as they come.)
        let needed = Double(endpoint.retry.timeout.components.seconds) + 1
        if needed <= Double(configuration.lease.components.seconds), Date().addingTimeInterval(needed) > message.leaseExpiresAt {
            return nil
        }
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

/// What a delivery to one webhook needs, read once per change of the webhook (and at least every 10 s, so rotated
/// secrets leave when their grace ends).
struct Endpoint: Sendable {
    var url: String
    /// The keys of every valid secret, decoded once per read; nil when one is malformed.
    var keys: [WebhookSignature.Key]?
    var headers: [String: String]
    var retry: RetryConfig
}

final class EndpointCache: Sendable {
    private struct State {
        var entries: [WebhookID: (updatedAt: Date, fetched: ContinuousClock.Instant, endpoint: Endpoint)] = [:]
        /// Reads in progress: senders that miss at once wait for one read instead of each reading.
        var reading: [WebhookID: (updatedAt: Date, task: Task<Endpoint, any Error>)] = [:]
    }

    /// A lock, not an actor: a hit (nearly every delivery) takes it for a dictionary lookup, with no hop.
    private let state = Mutex(State())

    func endpoint(for id: WebhookID, updatedAt: Date, webhooks: any WebhookManagementDAO) async throws -> Endpoint {
        enum Found { case cached(Endpoint), read(Task<Endpoint, any Error>) }
        let found: Found = state.withLock { state in
            if let entry = state.entries[id], entry.updatedAt == updatedAt, ContinuousClock.now - entry.fetched < .seconds(10) {
                return .cached(entry.endpoint)
            }
            if let read = state.reading[id], read.updatedAt == updatedAt { return .read(read.task) }
            let task = Task {
                let webhook = try await webhooks.get(id)
                let secrets = try await webhooks.signingSecrets(for: id)
                return Endpoint(
                    url: webhook.webhookURL, keys: try? secrets.map { try WebhookSignature.Key(secret: $0) },
                    headers: try await webhooks.deliveryHeaders(for: id), retry: RetryConfig.resolved(webhook.retryConfig))
            }
            state.reading[id] = (updatedAt, task)
            return .read(task)
        }
        let task: Task<Endpoint, any Error>
        switch found {
        case .cached(let endpoint): return endpoint
        case .read(let read): task = read
        }
        let result = await task.result
        state.withLock { state in
            if state.reading[id]?.task == task { state.reading[id] = nil }
            // A read of an older registration that ends late does not replace a newer one.
            if case .success(let endpoint) = result, state.entries[id].map({ $0.updatedAt <= updatedAt }) ?? true {
                state.entries[id] = (updatedAt, ContinuousClock.now, endpoint)
            }
        }
        return try result.get()
    }
}

/// Spaces the sends of a rate-limited webhook's share: each takes the next slot, at least `interval` after the one
/// before (the slot is taken before waiting, so concurrent sends never share one).
actor Pacer {
    nonisolated let interval: TimeInterval
    private var previous: Date?

    init(interval: TimeInterval) { self.interval = interval }

    /// Waits for this send's slot and returns it.
    func next() async -> Date {
        let slot = max(Date(), previous.map { $0.addingTimeInterval(interval) } ?? .distantPast)
        previous = slot
        let wait = slot.timeIntervalSinceNow
        if wait > 0 { try? await Task.sleep(for: .microseconds(Int64(wait * 1_000_000))) }
        return slot
    }
}

/// Claimed messages waiting for a sender (a lock, not an actor: a sender that finds a message takes it with no hop;
/// one that finds none waits on a continuation that the next push resumes).
final class MessageQueue: Sendable {
    private struct State {
        var items: [WebhookDeliveryStore.Claimed] = []
        var head = 0
        var waiting: [CheckedContinuation<WebhookDeliveryStore.Claimed?, Never>] = []
        var closed = false

        mutating func pop() -> WebhookDeliveryStore.Claimed? {
            guard head < items.count else { return nil }
            let item = items[head]
            head += 1
            if head == items.count { items.removeAll(keepingCapacity: true); head = 0 }
            return item
        }
    }

    private let state = Mutex(State())

    func push(_ messages: [WebhookDeliveryStore.Claimed]) {
        guard !messages.isEmpty else { return }
        // Waiting senders are resumed outside the lock.
        let handed: [(CheckedContinuation<WebhookDeliveryStore.Claimed?, Never>, WebhookDeliveryStore.Claimed)] = state.withLock { state in
            var handed: [(CheckedContinuation<WebhookDeliveryStore.Claimed?, Never>, WebhookDeliveryStore.Claimed)] = []
            for message in messages {
                if state.waiting.isEmpty { state.items.append(message) } else { handed.append((state.waiting.removeFirst(), message)) }
            }
            return handed
        }
        for (waiter, message) in handed { waiter.resume(returning: message) }
    }

    /// The next message; nil once the queue is closed and empty.
    func next() async -> WebhookDeliveryStore.Claimed? {
        if let item = state.withLock({ $0.pop() }) { return item }
        return await withCheckedContinuation { continuation in
            // Checked again under the lock: a push or close may have come in between.
            let now: WebhookDeliveryStore.Claimed?? = state.withLock { state in
                if let item = state.pop() { return .some(item) }
                if state.closed { return .some(nil) }
                state.waiting.append(continuation)
                return .none
            }
            if let now { continuation.resume(returning: now) }
        }
    }

    func close() {
        let waiters = state.withLock { state in
            state.closed = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for waiter in waiters { waiter.resume(returning: nil) }
    }
}

/// Outcomes waiting for the writer (a lock, not an actor: every delivery adds one, with no hop).
final class OutcomeBuffer: Sendable {
    private let items = Mutex<[WebhookDeliveryStore.Outcome]>([])

    func add(_ outcome: WebhookDeliveryStore.Outcome) { items.withLock { $0.append(outcome) } }

    func take() -> [WebhookDeliveryStore.Outcome] {
        items.withLock { items in
            defer { items = [] }
            return items
        }
    }
}
