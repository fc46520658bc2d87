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
        var quiet = Logger(label: "bench.target")
        quiet.logLevel = .critical
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let target = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: quiet)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await target.run() }
            var iterator = ports.makeAsyncIterator()
            let url = "http://127.0.0.1:\(await iterator.next() ?? 0)/ping"
            let direct = HTTPClient(eventLoopGroupProvider: .singleton)
            let gateway = OutboundGateway(policy: try OutboundPolicy(allowlist: ["127.0.0.0/8"]))
            let executor = OperationExecutor(
                gateway: gateway, auth: AuthApplier(gateway: gateway), integrations: stores.integrations, operations: stores.apiOperations)
            let request = APIOperationRequest(operationType: .GET, endpoint: url)
            // Warm both paths.
            for _ in 0..<100 {
                _ = try await direct.execute(HTTPClientRequest(url: url), timeout: .seconds(5)).body.collect(upTo: 1 << 20)
                _ = try await executor.execute(request)
            }
            for (calls, callers) in [(1000, 1), (5000, 64)] {
                let (directSeconds, directLatencies) = try await HubBench.timed(total: calls, concurrency: callers) { _ in
                    _ = try await direct.execute(HTTPClientRequest(url: url), timeout: .seconds(5)).body.collect(upTo: 1 << 20)
                }
                let (gatewaySeconds, gatewayLatencies) = try await HubBench.timed(total: calls, concurrency: callers) { _ in
                    let operation = try await executor.execute(request)
                    guard operation.statusCode == 200 else { throw BenchError("gateway call failed: \(operation.errorMessage ?? "?")") }
                }
                HubBench.report("direct AsyncHTTPClient call, \(callers) callers", calls, directSeconds, directLatencies)
                HubBench.report("gateway call (log, policy, send, complete + statistics), \(callers) callers", calls, gatewaySeconds, gatewayLatencies)
                func percentile(_ values: [Double], _ p: Double) -> Double { values[min(values.count - 1, Int(Double(values.count) * p))] }
                print(String(format: "gateway overhead on %@, %d callers: p50 +%.2f ms, p99 +%.2f ms", backend, callers,
                             percentile(gatewayLatencies, 0.5) - percentile(directLatencies, 0.5),
                             percentile(gatewayLatencies, 0.99) - percentile(directLatencies, 0.99)))
            }
            try await direct.shutdown()
            try await gateway.shutdown()
            group.cancelAll()
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
