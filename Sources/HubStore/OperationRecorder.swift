import Foundation
import HubCore
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Write-behind recording of API operations: steps 1-3 off the request path, without losing a call on a crash.
///
/// `log` and `complete` validate, build the operation in memory, append it to this process's journal (a local
/// append-only file: one `write`, so a record survives the process being killed) and return at once. A writer task
/// commits what is queued through ``APIOperationDAO/record(_:)``: everything that arrived during the previous commit
/// goes in the next one (group commit), so concurrent callers share transactions and statistics upserts. A committed
/// journal segment is emptied. At start-up ``recover()`` replays the journals of processes that died (journal
/// directories whose lock no live process holds); replay is idempotent, and an operation that was still running is
/// recorded as interrupted.
///
/// Reads stay consistent for this process: ``get(_:)`` answers from memory until the operation is committed, and
/// ``list(_:_:)``, ``statistics(_:)`` and ``prune(operationsBefore:statisticsBefore:)`` first wait (at most 5 s) for
/// what was queued before them. Other processes see an operation once it is committed, normally within one commit.
/// When the database is unreachable the queue is kept and retried with backoff. The queue is bounded in records
/// (`maximumQueued`) and in bytes (`maximumQueuedBytes`, each record counted as its journal line): a new call waits for
/// room at most `admissionWait` and is then refused with `unavailable` (a 503), before anything is sent. Outcomes of
/// calls already admitted are always taken.
///
/// Unlike the store, `log` does not check that the operation's integration exists (the executor has just read it);
/// an operation whose integration is gone by the time it is written keeps no integration.
public actor OperationRecorder: APIOperationDAO {
    let store: any APIOperationDAO
    let clock: WallClock
    let redactedHeaders: Set<String>
    let logger: Logger
    let maximumQueued: Int
    let maximumQueuedBytes: Int
    let admissionWait: Duration
    private let journal: OperationJournal?
    private let journalRoot: String?
    private var queue: [(sequence: Int, record: APIOperationRecord, bytes: Int)] = []
    private var queuedBytes = 0
    private var nextSequence = 1
    private var committedSequence = 0
    /// Logged here and not yet completed.
    private var open: [OperationID: APIOperation] = [:]
    /// The latest state of each operation not yet committed, with the sequence number that wrote it.
    private var uncommitted: [OperationID: (sequence: Int, operation: APIOperation)] = [:]
    private var writer: Task<Void, Never>?
    private var stopped = false

    /// A recorder over `store` journaling under `journalDirectory` (created 0700; this process gets its own
    /// subdirectory, locked while it lives). Without a directory nothing is journaled: a crash loses what is queued
    /// (for tools and tests that want that trade).
    /// - Throws: `unavailable` when the journal cannot be created.
    public init(
        store: any APIOperationDAO, journalDirectory: String?, clock: WallClock = .system, redactedHeaders: Set<String> = [],
        maximumQueued: Int = 50_000, maximumQueuedBytes: Int = 64 << 20, admissionWait: Duration = .seconds(3),
        logger: Logger = Logger(label: "hub.operations")
    ) throws {
        self.store = store
        self.clock = clock
        self.redactedHeaders = Set(redactedHeaders.map { $0.lowercased() })
        self.maximumQueued = maximumQueued
        self.maximumQueuedBytes = maximumQueuedBytes
        self.admissionWait = admissionWait
        self.logger = logger
        self.journalRoot = journalDirectory
        self.journal = try journalDirectory.map { try OperationJournal(root: $0) }
    }

    // MARK: - Steps 1-3, write-behind

    public func log(_ request: APIOperationRequest) async throws -> APIOperation {
        let operation = try APIOperation.pending(for: request, at: clock.now(), extraRedacted: redactedHeaders)
        let deadline = ContinuousClock.now + admissionWait
        while queue.count >= maximumQueued || queuedBytes >= maximumQueuedBytes, !stopped {
            guard ContinuousClock.now < deadline else {
                logger.warning("API operation refused: the recording queue is full", metadata: ["queued": "\(queue.count)", "bytes": "\(queuedBytes)"])
                throw HubError.unavailable(reason: "too many API operations are waiting to be recorded; try again shortly")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        try enqueue(APIOperationRecord(operation: operation))
        open[operation.id] = operation
        return operation
    }

    public func complete(_ id: OperationID, _ outcome: APIOperationOutcome) async throws -> APIOperation {
        try outcome.validate()
        guard let operation = open.removeValue(forKey: id) else {
            if let latest = uncommitted[id]?.operation, latest.status != .pending {
                throw HubError.conflict(field: nil, reason: "the operation is already \(latest.status.rawValue)")
            }
            // Not logged through this recorder: the store completes it directly.
            return try await store.complete(id, outcome)
        }
        let completed = operation.completed(with: outcome, at: clock.now())
        do {
            try enqueue(APIOperationRecord(operation: completed, timedOut: outcome.timedOut))
        } catch {
            open[id] = operation
            throw error
        }
        return completed
    }

    private func enqueue(_ record: APIOperationRecord) throws {
        guard !stopped else { throw HubError.unavailable(reason: "the operation recorder is stopped") }
        let sequence = nextSequence
        let bytes: Int
        if let journal {
            do {
                bytes = try journal.append(record, sequence: sequence)
            } catch {
                logger.error("the operation journal cannot be written", metadata: ["error": "\(error)"])
                throw HubError.unavailable(reason: "the operation journal cannot be written")
            }
        } else {
            bytes = (try? JSONEncoder().encode(record).count) ?? 0
        }
        nextSequence += 1
        queuedBytes += bytes
        queue.append((sequence, record, bytes))
        uncommitted[record.operation.id] = (sequence, record.operation)
        if writer == nil {
            writer = Task { await self.drain() }
        }
    }

    /// Commits the queue in batches until it is empty; on failure keeps it and retries with backoff.
    private func drain() async {
        var failures = 0
        var batchLimit = 2000
        while !queue.isEmpty, !stopped {
            let batch = Array(queue.prefix(batchLimit))
            do {
                try await store.record(batch.map(\.record))
            } catch let error where Self.isTransient(error) {
                failures += 1
                logger.warning("recording API operations failed; retrying", metadata: ["error": "\(error)", "queued": "\(queue.count)"])
                try? await Task.sleep(for: .milliseconds(min(5000, 50 << min(failures, 7))))
                continue
            } catch {
                if batch.count > 1 {
                    // One bad record must not hold the others back: write them one at a time to find it.
                    batchLimit = 1
                    continue
                }
                logger.error(
                    "an API operation could not be recorded and is dropped",
                    metadata: ["operation_id": "\(batch[0].record.operation.id)", "error": "\(error)"])
            }
            failures = 0
            if batchLimit == 1, batch.count == 1 { batchLimit = 2000 }
            // Only `enqueue` appends while `record` runs, so the batch is still the queue's prefix.
            queue.removeFirst(batch.count)
            queuedBytes -= batch.reduce(0) { $0 + $1.bytes }
            committedSequence = batch.last!.sequence
            for (sequence, record, _) in batch where uncommitted[record.operation.id]?.sequence == sequence {
                uncommitted[record.operation.id] = nil
            }
            if journal?.committed(upTo: committedSequence) == true {
                // Calls still running must stay in the journal until their outcome is: a crash marks them interrupted.
                for operation in open.values {
                    try? journal?.append(APIOperationRecord(operation: operation), sequence: committedSequence)
                }
            }
        }
        writer = nil
    }

    /// Whether retrying the same records may succeed. Only errors that name the records themselves are permanent; an
    /// unreachable, restarting or not yet migrated database is waited for.
    private static func isTransient(_ error: any Error) -> Bool {
        switch error {
        case HubError.validation, SQLError.invalidText, SQLError.checkViolation, SQLError.decoding: false
        default: true
        }
    }

    /// Waits until everything queued before the call is committed, at most `timeout`; returns whether it was.
    @discardableResult
    public func flush(timeout: Duration = .seconds(30)) async -> Bool {
        let target = nextSequence - 1
        let deadline = ContinuousClock.now + timeout
        while committedSequence < target, !stopped, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(1))
        }
        return committedSequence >= target
    }

    /// Graceful stop: commits what is queued (at most `timeout`), then closes the journal, removing it when everything
    /// was committed. What could not be committed stays in the journal for the next start's ``recover()``.
    public func shutdown(timeout: Duration = .seconds(30)) async {
        let done = await flush(timeout: timeout)
        stopped = true
        journal?.close(remove: done && queue.isEmpty && open.isEmpty)
    }

    /// Stops at once without committing what is queued: the journal keeps it, exactly as a crash would leave it.
    public func stop() {
        stopped = true
        writer?.cancel()
        journal?.close(remove: false)
    }

    /// Replays the journals of dead processes under the journal directory (each directory whose lock can be taken),
    /// then removes them. Idempotent; operations left running are recorded as failed ("interrupted") and not counted in
    /// the statistics. Returns the number of records replayed.
    /// - Throws: when the database refuses the records (the journal is kept for the next attempt).
    @discardableResult
    public func recover() async throws -> Int {
        guard let journalRoot else { return 0 }
        let own = journal?.directory
        var replayed = 0
        let names = (try? FileManager.default.contentsOfDirectory(atPath: journalRoot)) ?? []
        for name in names.sorted() {
            let directory = (journalRoot as NSString).appendingPathComponent(name)
            guard directory != own, let orphan = OperationJournal.Orphan(directory: directory) else { continue }
            defer { orphan.release() }
            var latest: [OperationID: APIOperationRecord] = [:]
            var order: [OperationID] = []
            for record in orphan.records() {
                let id = record.operation.id
                if latest[id] == nil { order.append(id) }
                if latest[id]?.operation.status ?? .pending == .pending { latest[id] = record }
            }
            let now = clock.now()
            var records: [APIOperationRecord] = order.map { id in
                var record = latest[id]!
                if record.operation.status == .pending {
                    let outcome = APIOperationOutcome(
                        statusCode: nil, executionTime: 0,
                        errorMessage: "interrupted: the hub process stopped before the call's outcome was recorded")
                    record = APIOperationRecord(operation: record.operation.completed(with: outcome, at: now), countsInStatistics: false)
                    record.operation.executionTime = nil
                }
                return record
            }
            while !records.isEmpty {
                let batch = Array(records.prefix(2000))
                try await store.record(batch)
                records.removeFirst(batch.count)
                replayed += batch.count
            }
            orphan.remove()
            logger.info("replayed the operation journal of a stopped process", metadata: ["records": "\(order.count)"])
        }
        return replayed
    }

    // MARK: - Reads, consistent with what this recorder queued

    public func record(_ batch: [APIOperationRecord]) async throws { try await store.record(batch) }

    public func get(_ id: OperationID) async throws -> APIOperation {
        if let operation = uncommitted[id]?.operation { return operation }
        return try await store.get(id)
    }

    public func list(_ filter: APIOperationFilter, _ page: PageRequest) async throws -> Page<APIOperation> {
        await flush(timeout: .seconds(30))
        return try await store.list(filter, page)
    }

    public func prune(operationsBefore: Date, statisticsBefore: String) async throws -> (operations: Int, statistics: Int) {
        await flush(timeout: .seconds(30))
        return try await store.prune(operationsBefore: operationsBefore, statisticsBefore: statisticsBefore)
    }

    public func statistics(_ query: APIStatisticsQuery) async throws -> [APIStatistics] {
        await flush(timeout: .seconds(30))
        return try await store.statistics(query)
    }
}

/// One process's journal: `<root>/<uuid>/lock` (held with `flock` while the process lives) and numbered segments of
/// JSON lines, 0600. A segment whose records are all committed is emptied (the current one) or deleted (older ones).
final class OperationJournal {
    let directory: String
    private let lockDescriptor: Int32
    private var segmentIndex = 0
    private var segmentDescriptor: Int32 = -1
    private var segmentSize = 0
    private var segmentLastSequence = 0
    private var sealed: [(index: Int, lastSequence: Int)] = []
    private let encoder = JSONEncoder()
    static let segmentLimit = 8 << 20

    init(root: String) throws {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        directory = (root as NSString).appendingPathComponent(UUID().uuidString.lowercased())
        guard mkdir(directory, 0o700) == 0 else { throw HubError.unavailable(reason: "cannot create the operation journal in \(root)") }
        lockDescriptor = open((directory as NSString).appendingPathComponent("lock"), O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard lockDescriptor >= 0, flock(lockDescriptor, LOCK_EX | LOCK_NB) == 0 else {
            throw HubError.unavailable(reason: "cannot lock the operation journal in \(root)")
        }
        try openSegment()
    }

    static func segmentName(_ index: Int) -> String { String(format: "segment-%08d.jsonl", index) }

    private func openSegment() throws {
        let path = (directory as NSString).appendingPathComponent(Self.segmentName(segmentIndex))
        segmentDescriptor = open(path, O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0o600)
        guard segmentDescriptor >= 0 else { throw HubError.unavailable(reason: "cannot open the operation journal") }
        segmentSize = 0
    }

    /// Appends one record as a line; returns the line's length.
    @discardableResult
    func append(_ record: APIOperationRecord, sequence: Int) throws -> Int {
        var line = try encoder.encode(record)
        line.append(0x0A)
        try line.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(segmentDescriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    let code = errno
                    // No torn line stays behind to spoil the next record.
                    _ = ftruncate(segmentDescriptor, off_t(segmentSize))
                    throw HubError.unavailable(reason: "journal write failed (errno \(code))")
                }
                offset += written
            }
        }
        segmentSize += line.count
        segmentLastSequence = max(segmentLastSequence, sequence)
        if segmentSize >= Self.segmentLimit {
            Glibc.close(segmentDescriptor)
            sealed.append((segmentIndex, segmentLastSequence))
            segmentIndex += 1
            try openSegment()
        }
        return line.count
    }

    /// Everything up to `sequence` is in the database: drop what the journal no longer needs. Returns whether anything
    /// was dropped (the caller then journals its still-running operations again: their outcome is still to come).
    @discardableResult
    func committed(upTo sequence: Int) -> Bool {
        var dropped = false
        while let first = sealed.first, first.lastSequence <= sequence {
            unlink((directory as NSString).appendingPathComponent(Self.segmentName(first.index)))
            sealed.removeFirst()
            dropped = true
        }
        if sealed.isEmpty, segmentSize > 0, segmentLastSequence <= sequence {
            _ = ftruncate(segmentDescriptor, 0)
            segmentSize = 0
            dropped = true
        }
        return dropped
    }

    func close(remove: Bool) {
        guard segmentDescriptor >= 0 else { return }
        Glibc.close(segmentDescriptor)
        segmentDescriptor = -1
        if remove { Self.removeDirectory(directory) }
        Glibc.close(lockDescriptor)
    }

    static func removeDirectory(_ directory: String) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            unlink((directory as NSString).appendingPathComponent(name))
        }
        rmdir(directory)
    }

    /// The journal of a process that is gone, locked for replay.
    struct Orphan {
        let directory: String
        let lockDescriptor: Int32

        /// Takes the directory's lock; nil when a live process holds it (or it is no journal).
        init?(directory: String) {
            let descriptor = open((directory as NSString).appendingPathComponent("lock"), O_RDWR | O_CLOEXEC)
            guard descriptor >= 0 else { return nil }
            guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
                Glibc.close(descriptor)
                return nil
            }
            self.directory = directory
            self.lockDescriptor = descriptor
        }

        /// Every complete record, in the order written (a torn last line is skipped).
        func records() -> [APIOperationRecord] {
            let decoder = JSONDecoder()
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix("segment-") }.sorted()
            var records: [APIOperationRecord] = []
            for name in names {
                guard let data = FileManager.default.contents(atPath: (directory as NSString).appendingPathComponent(name)) else { continue }
                for line in data.split(separator: 0x0A) {
                    if let record = try? decoder.decode(APIOperationRecord.self, from: Data(line)) { records.append(record) }
                }
            }
            return records
        }

        func remove() { OperationJournal.removeDirectory(directory) }

        func release() { Glibc.close(lockDescriptor) }
    }
}
