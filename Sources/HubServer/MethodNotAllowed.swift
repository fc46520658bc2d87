import HTTPTypes
import Hummingbird

/// The served paths and their methods, filled while the routes are registered and read-only once the server runs.
final class RouteTable: @unchecked Sendable {
    private var templates: [(segments: [Substring], methods: Set<HTTPRequest.Method>)] = []

    /// Records that `method` is served at the OpenAPI template `path` (`{name}` one segment, `{path}` the rest).
    func add(_ method: HTTPRequest.Method, _ path: String) {
        let segments = path.split(separator: "/")
        if let index = templates.firstIndex(where: { $0.segments == segments }) {
            templates[index].methods.insert(method)
        } else {
            templates.append((segments, [method]))
        }
    }

    /// The methods served at `path`, an empty set when no template matches it.
    func methods(at path: String) -> Set<HTTPRequest.Method> {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        var found: Set<HTTPRequest.Method> = []
        for template in templates where Self.matches(template.segments, parts) { found.formUnion(template.methods) }
        return found
    }

    private static func matches(_ template: [Substring], _ parts: [Substring]) -> Bool {
        for (index, segment) in template.enumerated() {
            if segment == "{path}" { return parts.count > index }
            guard index < parts.count else { return false }
            if !segment.hasPrefix("{"), segment != parts[index] { return false }
        }
        return template.count == parts.count
    }
}

/// Answers a request the router did not match with 405 and `Allow` when its path is served with other methods
/// (RFC 9110 §15.5.6), instead of the router's 404.
struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let allowed = routes.methods(at: request.uri.path)
            guard !allowed.isEmpty, !allowed.contains(request.method) else { throw error }
            var problem = Problem(
                status: .methodNotAllowed, title: "Method not allowed",
                detail: "\(request.method.rawValue) is not served here; allowed: \(allowed.map(\.rawValue).sorted().joined(separator: ", "))")
            problem.headers[.allow] = allowed.map(\.rawValue).sorted().joined(separator: ", ")
            throw problem
        }
    }
}
