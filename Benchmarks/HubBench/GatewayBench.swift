import AsyncHTTPClient
import Foundation
import HubCore
import HubEngine
import HubStore
import Hummingbird
import Logging
import NIOCore

/// The gateway's overhead: the same loopback call made directly with AsyncHTTPClient and through the executor
/// (log, policy, send, complete with statistics), from 64 concurrent callers.
enum GatewayBench {
    static func run(backend: String, stores: HubStores) async throws {
        let router = Router()
        router.get("/ping") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"ok":true}"#)))
        }
        try await HubBench.withLoopbackServer(router) { port in
            let url = "http://127.0.0.1:\(port)/ping"
            let direct = HTTPClient(eventLoopGroupProvider: .singleton)
            let gateway = OutboundGateway(policy: try OutboundPolicy(allowlist: ["127.0.0.0/8"]))
            // As `hub serve` records operations: write-behind through a journal.
            let journal = FileManager.default.temporaryDirectory.appendingPathComponent("hub-bench-journal-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: journal) }
            let recorder = try OperationRecorder(store: stores.apiOperations, journalDirectory: journal)
            let executor = OperationExecutor(
                gateway: gateway, auth: AuthApplier(gateway: gateway), integrations: stores.integrations, operations: recorder)
            let request = APIOperationRequest(operationType: .GET, endpoint: url)
            // Warm both paths.
            for _ in 0..<100 {
                _ = try await direct.execute(HTTPClientRequest(url: url), timeout: .seconds(5)).body.collect(upTo: 1 << 20)
                _ = try await executor.execute(request)
            }
            // Where one caller's overhead goes: the log (step 1) and the completion (steps 2-3) timed apart.
            var logTimes: [Double] = [], completeTimes: [Double] = []
            for _ in 0..<1000 {
                let t0 = ContinuousClock.now
                let operation = try await stores.apiOperations.log(request)
                let t1 = ContinuousClock.now
                _ = try await stores.apiOperations.complete(operation.id, APIOperationOutcome(statusCode: 200, executionTime: 1))
                let t2 = ContinuousClock.now
                logTimes.append(Double((t1 - t0).components.attoseconds) / 1e15 + Double((t1 - t0).components.seconds) * 1000)
                completeTimes.append(Double((t2 - t1).components.attoseconds) / 1e15 + Double((t2 - t1).components.seconds) * 1000)
            }
            logTimes.sort(); completeTimes.sort()
            print(String(format: "one caller on %@: log (step 1) p50 %.3f ms, p99 %.3f ms; complete + statistics (steps 2-3) p50 %.3f ms, p99 %.3f ms",
                         backend, logTimes[500], logTimes[990], completeTimes[500], completeTimes[990]))
            for (calls, callers) in [(1000, 1), (5000, 64)] {
                let (directSeconds, directLatencies) = try await HubBench.timed(total: calls, concurrency: callers) { _ in
                    _ = try await direct.execute(HTTPClientRequest(url: url), timeout: .seconds(5)).body.collect(upTo: 1 << 20)
                }
                let (gatewaySeconds, gatewayLatencies) = try await HubBench.timed(total: calls, concurrency: callers) { _ in
                    let operation = try await executor.execute(request)
                    guard operation.statusCode == 200 else { throw BenchError("gateway call failed: \(operation.errorMessage ?? "?")") }
                }
                let flushStart = ContinuousClock.now
                guard await recorder.flush() else { throw BenchError("the recorder did not commit") }
                let flush = ContinuousClock.now - flushStart
                let flushSeconds = Double(flush.components.seconds) + Double(flush.components.attoseconds) / 1e18
                print(String(format: "gateway, %d callers: all %d operations committed %.1f ms after the last call; %.0f committed operations/s",
                             callers, calls, flushSeconds * 1000, Double(calls) / (gatewaySeconds + flushSeconds)))
                HubBench.report("direct AsyncHTTPClient call, \(callers) callers", calls, directSeconds, directLatencies)
                HubBench.report("gateway call (log, policy, send, complete + statistics), \(callers) callers", calls, gatewaySeconds, gatewayLatencies)
                func percentile(_ values: [Double], _ p: Double) -> Double { values[min(values.count - 1, Int(Double(values.count) * p))] }
                print(String(format: "gateway overhead on %@, %d callers: p50 +%.2f ms, p99 +%.2f ms", backend, callers,
                             percentile(gatewayLatencies, 0.5) - percentile(directLatencies, 0.5),
                             percentile(gatewayLatencies, 0.99) - percentile(directLatencies, 0.99)))
            }
            await recorder.shutdown()
            try await direct.shutdown()
            try await gateway.shutdown()
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
