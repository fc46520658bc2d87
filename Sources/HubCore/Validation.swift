import Foundation

/// Field validation shared by every DAO. Each check throws ``HubError/validation(field:reason:)`` naming the
/// field and the reason, and runs before anything is written.
public enum Validate {
    /// `value` must be 1…`maxLength` characters from letters, digits and `extra`, starting with a letter or digit.
    public static func token(
        _ value: String, field: String, maxLength: Int = 64, extra: Set<Character> = ["-", "_", "."]
    ) throws {
        guard !value.isEmpty else { throw HubError.validation(field: field, reason: "must not be empty") }
        guard value.count <= maxLength else {
            throw HubError.validation(field: field, reason: "must be at most \(maxLength) characters")
        }
        guard let first = value.first, first.isASCII, first.isLetter || first.isNumber else {
            throw HubError.validation(field: field, reason: "must start with a letter or digit")
        }
        for character in value where !(character.isASCII && (character.isLetter || character.isNumber)) {
            guard extra.contains(character) else {
                let allowed = extra.sorted().map { "'\($0)'" }.joined(separator: ", ")
                throw HubError.validation(
                    field: field, reason: "may contain only letters, digits and \(allowed)")
            }
        }
    }

    /// `value` must be an absolute `http` or `https` URL with a host, no user info and at most 2048 characters.
    @discardableResult
    public static func httpURL(_ value: String, field: String) throws -> URL {
        guard !value.isEmpty else { throw HubError.validation(field: field, reason: "must not be empty") }
        try noNUL(value, field: field)
        guard value.count <= 2048 else {
            throw HubError.validation(field: field, reason: "must be at most 2048 characters")
        }
        guard let components = URLComponents(string: value), let scheme = components.scheme?.lowercased(),
            let url = components.url
        else {
            throw HubError.validation(field: field, reason: "is not a valid URL")
        }
        guard scheme == "http" || scheme == "https" else {
            throw HubError.validation(field: field, reason: "must use http or https")
        }
        guard let host = components.host, !host.isEmpty else {
            throw HubError.validation(field: field, reason: "must include a host")
        }
        // Foundation's parser takes any digits as a port; the socket layer traps beyond 65535.
        if let port = components.port, !(1...65535).contains(port) {
            throw HubError.validation(field: field, reason: "has a port outside 1-65535")
        }
        guard components.user == nil, components.password == nil else {
            throw HubError.validation(field: field, reason: "must not embed credentials; put them in the auth configuration")
        }
        guard components.fragment == nil else {
            throw HubError.validation(field: field, reason: "must not have a fragment")
        }
        return url
    }

    /// The origin (lower-cased scheme, host and effective port) of an absolute URL, or nil. Credentials bound to one
    /// origin are never sent to another.
    public static func origin(of url: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            let host = components.host?.lowercased(), !host.isEmpty
        else { return nil }
        let port = components.port ?? (scheme == "https" ? 443 : scheme == "http" ? 80 : 0)
        return "\(scheme)://\(host):\(port)"
    }

    /// `value` must lie in `range`.
    public static func range(_ value: Int, _ range: ClosedRange<Int>, field: String) throws {
        guard range.contains(value) else {
            throw HubError.validation(
                field: field, reason: "must be between \(range.lowerBound) and \(range.upperBound)")
        }
    }

    /// Parses `value` as one of the raw values of `T`.
    public static func oneOf<T: RawRepresentable & CaseIterable>(_ value: String, as type: T.Type, field: String) throws -> T
    where T.RawValue == String {
        guard let parsed = T(rawValue: value) else {
            let allowed = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw HubError.validation(field: field, reason: "must be one of \(allowed)")
        }
        return parsed
    }

    /// `value`, when present, must be a JSON object.
    public static func objectIfPresent(_ value: JSONValue?, field: String) throws {
        guard let value, value != .null else { return }
        guard value.objectValue != nil else {
            throw HubError.validation(field: field, reason: "must be a JSON object, not \(value.typeName)")
        }
    }

    /// `value` must be a JSON object whose members are all strings; returns them.
    public static func stringMap(_ value: JSONValue, field: String) throws -> [String: String] {
        guard let members = value.objectValue else {
            throw HubError.validation(field: field, reason: "must be a JSON object, not \(value.typeName)")
        }
        var result: [String: String] = [:]
        for (key, member) in members {
            guard let text = member.stringValue else {
                throw HubError.validation(field: "\(field).\(key)", reason: "must be a string, not \(member.typeName)")
            }
            result[key] = text
        }
        return result
    }

    /// Header names that frame or route a request (RFC 9110, 9112): the HTTP client sets them from the URL and the body,
    /// and a caller's value would send a request (and its credentials) somewhere other than its URL says, or smuggle a
    /// second one. `Proxy-*` too (compared case-insensitively).
    public static let reservedHeaderNames: Set<String> = [
        "host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer", "keep-alive",
    ]

    /// Whether `name` is a framing or routing header (``reservedHeaderNames``, or `Proxy-…`).
    public static func isReservedHeader(_ name: String) -> Bool {
        let lowered = name.lowercased()
        return reservedHeaderNames.contains(lowered) || lowered.hasPrefix("proxy-")
    }

    /// Whether `name` is an RFC 9110 token (a valid header name).
    public static func isHeaderName(_ name: String) -> Bool {
        let tokenCharacters = Set("!#$%&'*+-.^_`|~")
        return !name.isEmpty && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || tokenCharacters.contains($0)) }
    }

    /// Whether `value` is a valid header value: no control character but the horizontal tab (RFC 9110 field-value).
    public static func isHeaderValue(_ value: String) -> Bool {
        !value.unicodeScalars.contains { ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F }
    }

    /// `value` must be a JSON object of HTTP headers: RFC 9110 token names that do not frame or route the request
    /// (``isReservedHeader(_:)``), string values without control characters.
    public static func headers(_ value: JSONValue, field: String) throws -> [String: String] {
        let headers = try stringMap(value, field: field)
        for (name, headerValue) in headers.sorted(by: { $0.key < $1.key }) {
            guard isHeaderName(name) else {
                throw HubError.validation(field: "\(field).\(name)", reason: "is not a valid header name")
            }
            guard !isReservedHeader(name) else {
                throw HubError.validation(field: "\(field).\(name)", reason: "frames or routes the request and is set by the hub")
            }
            guard isHeaderValue(headerValue) else {
                throw HubError.validation(field: "\(field).\(name)", reason: "must not contain control characters")
            }
        }
        return headers
    }

    /// `value` must contain no control character (C0, DEL, C1, or a Unicode line or paragraph separator): it is written
    /// into a line of a protocol (an FTP command, a PostgreSQL startup message, a header), where one would end the line
    /// and start a command of the sender's choosing.
    public static func lineSafe(_ value: String, field: String) throws {
        if !isLineSafe(value) {
            throw HubError.validation(field: field, reason: "must not contain control characters")
        }
    }

    /// Whether `value` contains no control character (see ``lineSafe(_:field:)``).
    public static func isLineSafe(_ value: String) -> Bool {
        !value.unicodeScalars.contains { $0.properties.generalCategory == .control || $0 == "\u{2028}" || $0 == "\u{2029}" }
    }

    /// `value` must not contain U+0000, which PostgreSQL cannot store in text or JSON.
    public static func noNUL(_ value: String, field: String) throws {
        if value.unicodeScalars.contains("\u{0}") {
            throw HubError.validation(field: field, reason: "must not contain the NUL character")
        }
    }

    /// No string (or object key) anywhere in `value` may contain U+0000; the error names the path (`payload.a[2]`).
    public static func noNUL(_ value: JSONValue?, field: String) throws {
        switch value {
        case .string(let text)?: try noNUL(text, field: field)
        case .array(let elements)?:
            for (index, element) in elements.enumerated() { try noNUL(element, field: "\(field)[\(index)]") }
        case .object(let members)?:
            for (key, member) in members {
                try noNUL(key, field: field)
                try noNUL(member, field: "\(field).\(key)")
            }
        default: break
        }
    }

    /// `value` must be a non-empty string.
    public static func nonEmpty(_ value: String, field: String, maxLength: Int = 1024) throws {
        try noNUL(value, field: field)
        guard !value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw HubError.validation(field: field, reason: "must not be empty")
        }
        guard value.count <= maxLength else {
            throw HubError.validation(field: field, reason: "must be at most \(maxLength) characters")
        }
    }
}

extension Dictionary where Key == String, Value == JSONValue {
    /// Throws when the object has a member outside `allowed`, naming the first one (sorted) under `field`.
    func rejectUnknown(_ allowed: Set<String>, field: String) throws {
        if let unknown = keys.sorted().first(where: { !allowed.contains($0) }) {
            throw HubError.validation(field: "\(field).\(unknown)", reason: "is not a known field")
        }
    }

    /// The required non-empty string member `key`.
    func requiredString(_ key: String, field: String) throws -> String {
        guard let member = self[key], member != .null else {
            throw HubError.validation(field: "\(field).\(key)", reason: "is required")
        }
        guard let text = member.stringValue else {
            throw HubError.validation(field: "\(field).\(key)", reason: "must be a string, not \(member.typeName)")
        }
        try Validate.nonEmpty(text, field: "\(field).\(key)", maxLength: 4096)
        return text
    }

    /// The optional string member `key`.
    func optionalString(_ key: String, field: String) throws -> String? {
        guard let member = self[key], member != .null else { return nil }
        guard let text = member.stringValue else {
            throw HubError.validation(field: "\(field).\(key)", reason: "must be a string, not \(member.typeName)")
        }
        try Validate.nonEmpty(text, field: "\(field).\(key)", maxLength: 4096)
        return text
    }

    /// The optional integer member `key`, checked against `range`.
    func optionalInt(_ key: String, in range: ClosedRange<Int>, field: String) throws -> Int? {
        guard let member = self[key], member != .null else { return nil }
        guard let value = member.intValue else {
            throw HubError.validation(field: "\(field).\(key)", reason: "must be an integer, not \(member.typeName)")
        }
        guard value >= Int64(range.lowerBound), value <= Int64(range.upperBound) else {
            throw HubError.validation(
                field: "\(field).\(key)", reason: "must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return Int(value)
    }
}
