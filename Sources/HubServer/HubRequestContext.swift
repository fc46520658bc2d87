import HubCore
import Hummingbird
import Logging

/// The request context of the HTTP API: Hummingbird's core context (with its request id in the logger's
/// `hb.request.id` metadata) and the API key that authenticated the request.
public struct HubRequestContext: RequestContext {
    /// Hummingbird's per-request storage.
    public var coreContext: CoreRequestContextStorage
    /// The key that authenticated the request; `nil` on public routes.
    public var apiKey: APIKey?

    /// A context for a new request.
    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        apiKey = nil
    }
}

/// Requires `Authorization: Bearer <api key>` of an active key; answers 401 otherwise.
struct APIKeyMiddleware: RouterMiddleware {
    typealias Context = HubRequestContext
    let keys: any APIKeyDAO

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer "),
            let key = try await keys.authenticate(String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces))
        else {
            var problem = Problem(status: .unauthorized, title: "Unauthorized", detail: "send Authorization: Bearer <api key>")
            problem.headers[.wwwAuthenticate] = "Bearer"
            throw problem
        }
        var context = context
        context.apiKey = key
        context.logger[metadataKey: "api_key"] = .string(key.name)
        return try await next(request, context)
    }
}
