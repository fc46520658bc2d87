import Foundation
import HTTPTypes
import HubCore
import HubStore
import Hummingbird
import Logging

/// An RFC 9457 problem: the body of every error response (`application/problem+json`).
public struct Problem: Error, HTTPResponseError, Sendable {
    /// The HTTP status.
    public var status: HTTPResponse.Status
    /// A short, stable title for the kind of problem (`Validation failed`).
    public var title: String
    /// What went wrong in this request; never internal detail.
    public var detail: String
    /// The request field at fault (`auth_config.token`), for validation problems.
    public var field: String?
    /// Extra headers (for example `WWW-Authenticate`).
    public var headers: HTTPFields = [:]

    /// A problem with every member given.
    public init(status: HTTPResponse.Status, title: String, detail: String, field: String? = nil) {
        self.status = status
        self.title = title
        self.detail = detail
        self.field = field
    }

    /// The problem a domain error stands for.
    public init(_ error: HubError) {
        switch error {
        case .validation(let field, let reason):
            self.init(status: .unprocessableContent, title: "Validation failed", detail: "\(field): \(reason)", field: field)
        case .invalidReference(let field, let reason):
            self.init(status: .unprocessableContent, title: "Invalid reference", detail: "\(field): \(reason)", field: field)
        case .notFound(let entity, let id):
            self.init(status: .notFound, title: "Not found", detail: "\(entity) \(id) not found")
        case .conflict(let field, let reason):
            self.init(status: .conflict, title: "Conflict", detail: reason, field: field)
        case .unavailable(let reason):
            self.init(status: .serviceUnavailable, title: "Service unavailable", detail: reason)
        case .sealing:
            self.init(status: .internalServerError, title: "Internal error", detail: "a stored secret could not be opened")
        case .schemaMismatch(let reason):
            self.init(status: .serviceUnavailable, title: "Service unavailable", detail: reason)
        }
    }

    /// The problem+json response, carrying `requestID` so a caller can quote it.
    public func response(requestID: String?) -> Response {
        var members: [String: JSONValue] = [
            "type": "about:blank", "title": .string(title), "status": .int(Int64(status.code)), "detail": .string(detail),
        ]
        if let field { members["field"] = .string(field) }
        if let requestID { members["request_id"] = .string(requestID) }
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: JSONValue.object(members).jsonText)))
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        response(requestID: context.id)
    }
}

/// Turns every error into a problem+json response: domain errors by kind, Hummingbird's HTTP errors by status,
/// an unavailable database as 503, anything else as a 500 that is logged in full and says nothing internal.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let problem as Problem {
            return problem.response(requestID: context.id)
        } catch let error as HubError {
            if case .sealing = error { context.logger.error("secret could not be opened", metadata: ["error": "\(error)"]) }
            return Problem(error).response(requestID: context.id)
        } catch SQLError.unavailable {
            context.logger.warning("database unavailable")
            return Problem(status: .serviceUnavailable, title: "Service unavailable", detail: "the database is unavailable")
                .response(requestID: context.id)
        } catch SQLError.invalidText {
            return Problem(status: .unprocessableContent, title: "Validation failed", detail: "a value contains characters that cannot be stored")
                .response(requestID: context.id)
        } catch let error as HTTPError {
            let title = error.status.reasonPhrase
            return Problem(status: error.status, title: title, detail: error.body ?? title).response(requestID: context.id)
        } catch {
            context.logger.error("unexpected error", metadata: ["error": "\(String(reflecting: error))"])
            return Problem(status: .internalServerError, title: "Internal error", detail: "an unexpected error occurred")
                .response(requestID: context.id)
        }
    }
}
