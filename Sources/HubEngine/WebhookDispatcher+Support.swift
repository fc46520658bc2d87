import Foundation
import HubCore
import HubStore
import NIOCore
import Synchronization

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

/// Claimed messages waiting for a sender, urgent ones (an ordered webhook's next message) first (a lock, not an actor: a
/// sender that finds a message takes it with no hop; one that finds none waits on a continuation that the next push
/// resumes).
final class MessageQueue: Sendable {
    private struct State {
        var urgent: CircularBuffer<WebhookDeliveryStore.Claimed> = []
        var items: CircularBuffer<WebhookDeliveryStore.Claimed> = []
        var waiting: CircularBuffer<CheckedContinuation<WebhookDeliveryStore.Claimed?, Never>> = []
        var closed = false

        mutating func pop() -> WebhookDeliveryStore.Claimed? {
            if !urgent.isEmpty { return urgent.removeFirst() }
            return items.isEmpty ? nil : items.removeFirst()
        }
    }

    private let state = Mutex(State())

    /// Queues `messages` behind those waiting and `urgent` ahead of them. Returns false (queuing nothing) once closed.
    func push(_ messages: [WebhookDeliveryStore.Claimed], urgent: [WebhookDeliveryStore.Claimed] = []) -> Bool {
        guard !messages.isEmpty || !urgent.isEmpty else { return true }
        // Waiting senders are resumed outside the lock.
        let handed: [(CheckedContinuation<WebhookDeliveryStore.Claimed?, Never>, WebhookDeliveryStore.Claimed)]? = state.withLock { state in
            guard !state.closed else { return nil }
            state.urgent.append(contentsOf: urgent)
            state.items.append(contentsOf: messages)
            var handed: [(CheckedContinuation<WebhookDeliveryStore.Claimed?, Never>, WebhookDeliveryStore.Claimed)] = []
            while !state.waiting.isEmpty, let message = state.pop() { handed.append((state.waiting.removeFirst(), message)) }
            return handed
        }
        guard let handed else { return false }
        for (waiter, message) in handed { waiter.resume(returning: message) }
        return true
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

/// Outcomes waiting for the writer (a lock, not an actor: every delivery adds one, with no hop), and the bell that
/// wakes the writer when one arrives.
final class OutcomeBuffer: Sendable {
    private let items = Mutex<[WebhookDeliveryStore.Outcome]>([])
    let arrival = Doorbell()

    func add(_ outcome: WebhookDeliveryStore.Outcome) {
        items.withLock { $0.append(outcome) }
        arrival.ring()
    }

    func take() -> [WebhookDeliveryStore.Outcome] {
        items.withLock { items in
            defer { items = [] }
            return items
        }
    }
}

/// The messages a dispatcher holds leases on, from its claim until their outcome is written (or they are dropped), with
/// when each lease ends as far as the dispatcher knows (its claim or its last renewal).
final class LeaseBook: Sendable {
    struct Entry: Sendable {
        var webhookID: WebhookID
        var ordered: Bool
        var rateLimit: Int?
        var expires: Date
    }

    private let entries = Mutex<[Int64: Entry]>([:])

    /// Takes `claimed` into the book and returns those not held already (a message whose lease ran out before its renewal
    /// and that this dispatcher claimed again is in flight here once, not twice).
    func hold(_ claimed: [WebhookDeliveryStore.Claimed]) -> [WebhookDeliveryStore.Claimed] {
        entries.withLock { entries in
            claimed.filter { message in
                if var entry = entries[message.sequence] {
                    entry.expires = max(entry.expires, message.leaseExpiresAt)
                    entries[message.sequence] = entry
                    return false
                }
                entries[message.sequence] = Entry(
                    webhookID: message.webhookID, ordered: message.ordered, rateLimit: message.rateLimit, expires: message.leaseExpiresAt)
                return true
            }
        }
    }

    /// Drops `sequences` from the book and returns the entries that were held.
    @discardableResult
    func release(_ sequences: [Int64]) -> [Entry] {
        entries.withLock { entries in sequences.compactMap { entries.removeValue(forKey: $0) } }
    }

    /// Every sequence held.
    func sequences() -> [Int64] { entries.withLock { Array($0.keys) } }

    /// After a renewal of `held`: those `kept` last until `until`; the others are no longer this dispatcher's.
    func renewed(_ held: [Int64], kept: [Int64], until: Date) {
        let kept = Set(kept)
        entries.withLock { entries in
            for sequence in held {
                if kept.contains(sequence) { entries[sequence]?.expires = until } else { entries[sequence] = nil }
            }
        }
    }

    /// Whether `sequence` is held with a lease lasting past `date`.
    func holds(_ sequence: Int64, until date: Date) -> Bool {
        entries.withLock { $0[sequence].map { $0.expires > date } ?? false }
    }
}

/// Wakes one waiting task: `ring` resumes the task waiting, or the next `wait` when none is (rings in between count once).
final class Doorbell: Sendable {
    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    func ring() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.rung = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns once rung (at once when rung since the last wait), or when the task is cancelled. One task waits at a time.
    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state -> Bool in
                    if state.rung || Task.isCancelled {
                        state.rung = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            ring()
        }
    }

    /// Returns once rung, or after `timeout`.
    func wait(upTo timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }
}
