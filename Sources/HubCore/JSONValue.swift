import Foundation

/// A JSON document held as a value: configuration, filters, payloads and response data.
///
/// Integers and fractional numbers are kept apart so that identifiers and counts round-trip exactly.
/// Object keys are serialised in sorted order, so the same value always produces the same text.
public enum JSONValue: Sendable, Hashable, Codable {
    /// JSON `null`.
    case null
    /// JSON `true` or `false`.
    case bool(Bool)
    /// A number held as a 64-bit integer.
    case int(Int64)
    /// A number held as a double; decoding uses it only for numbers that do not decode as Int64.
    case double(Double)
    /// A JSON string.
    case string(String)
    /// A JSON array, in order.
    case array([JSONValue])
    /// A JSON object; serialised with its keys sorted.
    case object([String: JSONValue])

    /// Decodes any JSON value, trying in turn null, boolean, Int64, Double, string, array, then object.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    /// Encodes the value as the JSON it holds.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// Parses JSON text. Throws ``HubError/validation(field:reason:)`` naming `field` when the text is not JSON.
    public static func parse(_ text: String, field: String) throws -> JSONValue {
        guard let value = JSONValue.parse(bytes: text.utf8) else { throw HubError.validation(field: field, reason: "is not valid JSON") }
        return value
    }


    /// The members when this is an object, else `nil`.
    public var objectValue: [String: JSONValue]? {
        if case .object(let members) = self { return members }
        return nil
    }

    /// The text when this is a string, else `nil`.
    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// The integer when this is an integral number, else `nil`.
    public var intValue: Int64? {
        switch self {
        case .int(let value): return value
        case .double(let value) where value.rounded() == value && abs(value) < 9.0e15: return Int64(value)
        default: return nil
        }
    }

    /// The elements when this is an array, else `nil`.
    public var arrayValue: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// This value with every U+0000 in strings and keys replaced by U+FFFD: what to store of data a remote system sent
    /// (PostgreSQL cannot store NUL, and remote data must never fail validation).
    public var replacingNUL: JSONValue {
        guard containsNUL else { return self }
        // Scalar by scalar: Foundation's search does not find a NUL that a combining mark follows (found by fuzzing).
        func clean(_ text: String) -> String {
            guard text.utf8.contains(0) else { return text }
            var scalars = String.UnicodeScalarView()
            scalars.append(contentsOf: text.unicodeScalars.lazy.map { $0 == "\u{0}" ? "\u{FFFD}" : $0 })
            return String(scalars)
        }
        switch self {
        case .string(let text): return .string(clean(text))
        case .array(let elements): return .array(elements.map(\.replacingNUL))
        case .object(let members):
            return .object(Dictionary(members.map { (clean($0.key), $0.value.replacingNUL) }, uniquingKeysWith: { first, _ in first }))
        default: return self
        }
    }

    /// Whether any string or key holds U+0000.
    public var containsNUL: Bool {
        switch self {
        case .string(let text): text.utf8.contains(0)
        case .array(let elements): elements.contains { $0.containsNUL }
        case .object(let members): members.contains { $0.key.utf8.contains(0) || $0.value.containsNUL }
        default: false
        }
    }

    /// A short name of the JSON type, used in validation messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .int, .double: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByFloatLiteral
{
    /// Creates `.string(value)`.
    public init(stringLiteral value: String) { self = .string(value) }
    /// Creates `.int(value)`.
    public init(integerLiteral value: Int64) { self = .int(value) }
    /// Creates `.bool(value)`.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// Creates `.double(value)`.
    public init(floatLiteral value: Double) { self = .double(value) }
    /// Creates `.array(elements)`.
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    /// Creates `.object` of the pairs; of duplicate keys the last wins.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}
