import Foundation
import HubCore
import HubEngine
import HubStore
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// Settings of the HTTP server.
public struct ServerConfiguration: Sendable {
    /// Address to listen on (default 127.0.0.1).
    public var host: String
    /// Port to listen on (default 8080; 0 picks a free port).
    public var port: Int
    /// Largest accepted request body in bytes (default 1 MiB); larger bodies get 413.
    public var bodyLimit: Int
    /// Where outbound requests (tests, probes, executed operations) may go.
    public var outboundPolicy: OutboundPolicy
    /// Response bytes stored per API operation (default 64 KiB).
    public var responseBodyCap: Int = 64 * 1024
    /// How long a connection may stay open without a request part arriving (default 60 s): an idle keep-alive
    /// connection, and a client that sends a request's headers slowly or never finishes them, is closed then (the timer
    /// restarts only when a whole request head, a body part or a request's end has been read). A request being handled
    /// is never cut.
    public var idleTimeout: Duration = .seconds(60)

    /// A configuration with every member given.
    public init(
        host: String = "127.0.0.1", port: Int = 8080, bodyLimit: Int = 1 << 20, outboundPolicy: OutboundPolicy = try! OutboundPolicy()
    ) {
        self.host = host
        self.port = port
        self.bodyLimit = bodyLimit
        self.outboundPolicy = outboundPolicy
    }
}

/// Process-wide metrics: swift-metrics bootstrapped once onto a Prometheus registry.
public enum HubMetrics {
    /// The registry `/metrics` renders.
    public static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()
}

/// Builds the HTTP API over the stores.
public enum HubServer {
    /// The router with every route: `/healthz`, `/readyz`, `/metrics`, `/openapi.json` and the authenticated `/v1`.
    public static func router(stores: HubStores, configuration: ServerConfiguration, gateway: OutboundGateway) -> Router<HubRequestContext> {
        let registry = HubMetrics.registry
        let router = Router(context: HubRequestContext.self)
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: RequestLogMiddleware())
        router.add(middleware: ProblemMiddleware())
        let table = RouteTable()
        router.add(middleware: MethodNotAllowedMiddleware(routes: table))
        let routes = APIRoutes(
            router: router, stores: stores, bodyLimit: configuration.bodyLimit, gateway: gateway, table: table,
            responseBodyCap: configuration.responseBodyCap)
        routes.add(.get, "/healthz", on: nil, summary: "The process is up", tag: "Operations", response: "Status") { _, _ in
            JSONValue.object(["status": "ok"]).response()
        }
        routes.add(.get, "/readyz", on: nil, summary: "The database answers", tag: "Operations", response: "Status", errors: [503]) { _, _ in
            try await stores.database.ping(timeout: .seconds(2))
            return JSONValue.object(["status": "ready"]).response()
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        routes.registerV1()
        let document = APIDocument.build(routes: routes.specs + [metricsSpec, openAPISpec])
        router.get("/openapi.json") { _, _ in document.response() }
        table.add(.get, "/metrics")
        table.add(.get, "/openapi.json")
        return router
    }

    static let metricsSpec = RouteSpec(
        method: .get, path: "/metrics", summary: "Prometheus metrics (text format)", tag: "Operations", requestSchema: nil, query: [],
        successStatus: 200, successSchema: nil, errorStatuses: [], authenticated: false)
    static let openAPISpec = RouteSpec(
        method: .get, path: "/openapi.json", summary: "This document", tag: "Operations", requestSchema: nil, query: [],
        successStatus: 200, successSchema: nil, errorStatuses: [], authenticated: false)

    /// The application: the router on `configuration`'s address, with `services` run beside it. Outbound requests
    /// go through `gateway` (the caller owns it and shuts it down).
    public static func application(
        stores: HubStores, configuration: ServerConfiguration, gateway: OutboundGateway, services: [any Service] = [],
        logger: Logger, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router(stores: stores, configuration: configuration, gateway: gateway),
            server: .http1(configuration: .init(idleTimeout: .nanoseconds(configuration.idleTimeout.wholeNanoseconds))),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "IntegrationHub"),
            services: services,
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
    }
}

/// Logs one line per request with its request id (Hummingbird puts `hb.request.id` on the context's logger), method,
/// path without the query (which could carry data), status and duration. Bodies and headers are never logged.
struct RequestLogMiddleware: RouterMiddleware {
    typealias Context = HubRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let elapsed = ContinuousClock.now - start
        context.logger.info(
            "request",
            metadata: [
                "method": .string(request.method.rawValue), "path": .string(request.uri.path),
                "status": .stringConvertible(response.status.code),
                "duration_ms": .stringConvertible(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000),
            ])
        return response
    }
}
