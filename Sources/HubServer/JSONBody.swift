import Foundation
import HTTPTypes
import HubCore
import Hummingbird
import NIOCore

/// Reading request bodies: content type, size limit, JSON syntax, and typed members with field-named errors.
struct JSONBody {
    let members: [String: JSONValue]

    /// Reads the request's JSON object body. 415 unless `Content-Type: application/json`; 413 beyond `limit`
    /// bytes; 400 for malformed JSON; 422 when the body is JSON but not an object.
    static func read(_ request: Request, limit: Int) async throws -> JSONBody {
        let type = request.headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        guard type == "application/json" else {
            throw Problem(status: .unsupportedMediaType, title: "Unsupported media type", detail: "send Content-Type: application/json")
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw Problem(status: .contentTooLarge, title: "Content too large", detail: "the body exceeds \(limit) bytes")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch {
            throw Problem(status: .contentTooLarge, title: "Content too large", detail: "the body exceeds \(limit) bytes")
        }
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(buffer: buffer))
        } catch {
            throw Problem(status: .badRequest, title: "Malformed JSON", detail: "the body is not valid JSON")
        }
        guard let members = value.objectValue else {
            throw HubError.validation(field: "body", reason: "must be a JSON object, not \(value.typeName)")
        }
        return JSONBody(members: members)
    }

    /// Throws for a member outside `allowed`.
    func allowOnly(_ allowed: Set<String>) throws {
        if let unknown = members.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw HubError.validation(field: unknown, reason: "is not a known field")
        }
    }

    func string(_ key: String) throws -> String {
        guard let value = try optionalString(key) else { throw HubError.validation(field: key, reason: "is required") }
        return value
    }

    func optionalString(_ key: String) throws -> String? {
        guard let member = members[key], member != .null else { return nil }
        guard let text = member.stringValue else {
            throw HubError.validation(field: key, reason: "must be a string, not \(member.typeName)")
        }
        return text
    }

    func optionalInt(_ key: String) throws -> Int? {
        guard let member = members[key], member != .null else { return nil }
        guard let value = member.intValue, let int = Int(exactly: value) else {
            throw HubError.validation(field: key, reason: "must be an integer, not \(member.typeName)")
        }
        return int
    }

    func optionalBool(_ key: String) throws -> Bool? {
        guard let member = members[key], member != .null else { return nil }
        guard case .bool(let value) = member else {
            throw HubError.validation(field: key, reason: "must be true or false, not \(member.typeName)")
        }
        return value
    }

    func json(_ key: String) throws -> JSONValue {
        guard let member = members[key], member != .null else { throw HubError.validation(field: key, reason: "is required") }
        return member
    }

    func optionalJSON(_ key: String) -> JSONValue? {
        guard let member = members[key], member != .null else { return nil }
        return member
    }

    func optionalStringArray(_ key: String) throws -> [String]? {
        guard let member = members[key], member != .null else { return nil }
        guard let elements = member.arrayValue else {
            throw HubError.validation(field: key, reason: "must be an array of strings, not \(member.typeName)")
        }
        return try elements.enumerated().map { index, element in
            guard let text = element.stringValue else {
                throw HubError.validation(field: "\(key)[\(index)]", reason: "must be a string, not \(element.typeName)")
            }
            return text
        }
    }

    func optionalEnum<T: RawRepresentable & CaseIterable>(_ key: String, _ type: T.Type) throws -> T? where T.RawValue == String {
        guard let text = try optionalString(key) else { return nil }
        return try Validate.oneOf(text, as: type, field: key)
    }
}

/// JSON responses and query parameters.
extension JSONValue {
    /// A response with this value as its JSON body.
    func response(status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: jsonText)))
    }

    /// `date` as RFC 3339 UTC with milliseconds, or null.
    static func timestamp(_ date: Date?) -> JSONValue {
        guard let date else { return .null }
        return .string(RFC3339.format(date))
    }
}

extension Request {
    /// The query parameter `name`, if present (an empty value is a value: `?limit=` is refused as `limit`, not taken
    /// for the default).
    func query(_ name: String) -> String? {
        uri.queryParameters[name[...]].map(String.init)
    }

    /// `limit` and `cursor` from the query. - Throws: `validation(limit)` for a non-integer limit.
    func pageRequest() throws -> PageRequest {
        var page = PageRequest()
        if let limit = query("limit") {
            guard let value = Int(limit) else { throw HubError.validation(field: "limit", reason: "must be an integer") }
            page.limit = value
        }
        page.cursor = query("cursor")
        return page
    }
}

extension Page {
    /// `{"items": […], "next_cursor": …}`.
    public func json(_ item: (Item) -> JSONValue) -> JSONValue {
        ["items": .array(items.map(item)), "next_cursor": nextCursor.map(JSONValue.string) ?? .null]
    }
}
