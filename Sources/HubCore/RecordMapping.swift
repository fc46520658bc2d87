import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A path into a JSON document: `name.given`, `emails[0].value`, `emails[type=work].value`,
/// `["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].employeeNumber`.
public struct JSONPath: Sendable, Hashable, CustomStringConvertible {
    enum Step: Sendable, Hashable {
        case member(String)
        case index(Int)
        /// The first array element whose member `key` has the text (or number/boolean) `value`.
        case match(key: String, value: String)
    }

    let steps: [Step]
    public let description: String

    /// Parses `text`. - Throws: `validation(field)` naming what is wrong.
    public init(_ text: String, field: String) throws {
        description = text
        var steps: [Step] = []
        var characters = Substring(text)
        func fail(_ reason: String) -> HubError { .validation(field: field, reason: "path '\(text)': \(reason)") }
        guard !text.isEmpty else { throw HubError.validation(field: field, reason: "path must not be empty") }
        var expectMember = true
        while !characters.isEmpty {
            if characters.first == "[" {
                guard let close = characters.firstIndex(of: "]") else { throw fail("a '[' is not closed") }
                let inside = characters[characters.index(after: characters.startIndex)..<close]
                if inside.hasPrefix("\"") {
                    guard inside.count >= 2, inside.hasSuffix("\"") else { throw fail("a quoted name is not closed") }
                    steps.append(.member(String(inside.dropFirst().dropLast())))
                } else if let index = Int(inside), index >= 0 {
                    steps.append(.index(index))
                } else if let equals = inside.firstIndex(of: "="), equals != inside.startIndex {
                    steps.append(.match(key: String(inside[..<equals]), value: String(inside[inside.index(after: equals)...])))
                } else {
                    throw fail("'[\(inside)]' is neither an index, a quoted name nor key=value")
                }
                characters = characters[characters.index(after: close)...]
                expectMember = false
            } else if characters.first == "." {
                guard !expectMember else { throw fail("an empty name") }
                characters = characters.dropFirst()
                expectMember = true
                if characters.first == "[" { continue }
                guard !characters.isEmpty else { throw fail("ends with '.'") }
            } else {
                guard expectMember else { throw fail("a name must follow '.'") }
                let end = characters.firstIndex { $0 == "." || $0 == "[" } ?? characters.endIndex
                steps.append(.member(String(characters[..<end])))
                characters = characters[end...]
                expectMember = false
            }
        }
        self.steps = steps
    }

    private init(steps: [Step], description: String) {
        self.steps = steps
        self.description = description
    }

    /// The names of the path's leading member steps.
    var leadingNames: [String] {
        var names: [String] = []
        for case .member(let name) in steps.prefix(while: { if case .member = $0 { true } else { false } }) { names.append(name) }
        return names
    }

    /// The path without its first `count` steps.
    func dropping(_ count: Int) -> JSONPath { JSONPath(steps: Array(steps.dropFirst(count)), description: description) }

    /// The value at this path in `document`, or nil when any step is missing.
    public func value(in document: JSONValue) -> JSONValue? {
        var current = document
        for step in steps {
            switch step {
            case .member(let name):
                guard case .object(let members) = current, let next = members[name] else { return nil }
                current = next
            case .index(let index):
                guard case .array(let elements) = current, index < elements.count else { return nil }
                current = elements[index]
            case .match(let key, let value):
                guard case .array(let elements) = current,
                    let found = elements.first(where: { element in
                        guard case .object(let members) = element, let candidate = members[key] else { return false }
                        return JSONPath.text(of: candidate) == value
                    })
                else { return nil }
                current = found
            }
        }
        return current
    }

    /// What a document must keep for this path to find the same value in it (``JSONProjection``), with `leaf` for the
    /// value found.
    public func projection(leaf: JSONProjection = .whole) -> JSONProjection {
        steps.reversed().reduce(leaf) { inner, step in
            switch step {
            case .member(let name): JSONProjection.object([name: inner])
            // An index counts every element, so every element is kept (projected as the rest of the path says).
            case .index: JSONProjection.elements(inner)
            case .match(let key, _): JSONProjection.elements(JSONProjection.object([key: .whole]).merged(with: inner))
            }
        }
    }

    /// A scalar as text (`true`, `42`, `x`); nil for arrays, objects and null.
    static func text(of value: JSONValue) -> String? {
        switch value {
        case .string(let text): text
        case .int(let number): String(number)
        case .double(let number): String(number)
        case .bool(let flag): flag ? "true" : "false"
        default: nil
        }
    }
}

/// How one entity type's source records become stored records: the external id's path and the target fields, each
/// from a path (with transforms, a default, or required) or a constant. Without fields the whole source record is
/// stored.
public struct RecordMapping: Sendable, Hashable {
    /// A transform applied to a field's value, in order.
    public enum Transform: String, Sendable, Hashable, CaseIterable {
        case trim, lowercase, uppercase, string, number, boolean
        /// A date or date-time in ISO 8601 / RFC 3339 (or a Unix time in seconds) → RFC 3339 UTC (`…Z`); a plain
        /// `YYYY-MM-DD` stays a date.
        case date
    }

    /// One target field (a class: mapping reads every field of every record, and a reference is one retain).
    public final class Field: Sendable, Hashable {
        public let name: String
        public let path: JSONPath?
        public let constant: JSONValue?
        public let transforms: [Transform]
        public let defaultValue: JSONValue?
        public let required: Bool
        /// The name as a JSON string literal.
        let quotedName: String

        init(name: String, path: JSONPath?, constant: JSONValue?, transforms: [Transform], defaultValue: JSONValue?, required: Bool) {
            self.name = name
            self.path = path
            self.constant = constant
            self.transforms = transforms
            self.defaultValue = defaultValue
            self.required = required
            self.quotedName = JSONValue.quoted(name)
        }

        public static func == (lhs: Field, rhs: Field) -> Bool {
            lhs.name == rhs.name && lhs.path == rhs.path && lhs.constant == rhs.constant && lhs.transforms == rhs.transforms
                && lhs.defaultValue == rhs.defaultValue && lhs.required == rhs.required
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(name)
            hasher.combine(path)
        }
    }

    /// Where the record's external id is.
    public var externalID: JSONPath
    /// Where the record's last-modified time is (the incremental high-water mark), if the source has one.
    public var updatedField: JSONPath?
    /// The target fields; empty keeps the whole record.
    public var fields: [Field]

    /// Parses an entity's mapping (`{"external_id": "id", "updated_field": "meta.lastModified", "fields": {...}}`),
    /// naming fields from `field`. - Throws: `validation`.
    public init(_ value: JSONValue, field: String, defaultUpdatedField: String? = nil) throws {
        guard case .object(let members) = value else { throw HubError.validation(field: field, reason: "must be an object") }
        let known: Set<String> = ["external_id", "updated_field", "fields", "source", "path", "records_path", "updated_since_param"]
        if let unknown = members.keys.sorted().first(where: { !known.contains($0) }) {
            throw HubError.validation(field: "\(field).\(unknown)", reason: "is not a mapping setting")
        }
        // A member of the wrong type is refused, not replaced by the default.
        func path(_ name: String) throws -> String? {
            guard let raw = members[name] else { return nil }
            guard let text = raw.stringValue else { throw HubError.validation(field: "\(field).\(name)", reason: "must be a path (text)") }
            return text
        }
        let idPath = try path("external_id") ?? "id"
        externalID = try JSONPath(idPath, field: "\(field).external_id")
        if let updated = try path("updated_field") ?? defaultUpdatedField {
            updatedField = try JSONPath(updated, field: "\(field).updated_field")
        }
        var fields: [Field] = []
        if let raw = members["fields"] {
            guard case .object(let specs) = raw else { throw HubError.validation(field: "\(field).fields", reason: "must be an object") }
            for (name, spec) in specs.sorted(by: { $0.key < $1.key }) {
                let here = "\(field).fields.\(name)"
                try Validate.noNUL(name, field: here)
                switch spec {
                case .string(let path):
                    fields.append(Field(name: name, path: try JSONPath(path, field: here), constant: nil, transforms: [], defaultValue: nil, required: false))
                case .object(let options):
                    let allowed: Set<String> = ["path", "constant", "transforms", "default", "required"]
                    if let unknown = options.keys.sorted().first(where: { !allowed.contains($0) }) {
                        throw HubError.validation(field: "\(here).\(unknown)", reason: "is not a field setting (path, constant, transforms, default, required)")
                    }
                    var transforms: [Transform] = []
                    if let list = options["transforms"] {
                        guard case .array(let names) = list else { throw HubError.validation(field: "\(here).transforms", reason: "must be a list") }
                        for (index, item) in names.enumerated() {
                            guard let transform = item.stringValue.flatMap(Transform.init(rawValue:)) else {
                                throw HubError.validation(
                                    field: "\(here).transforms[\(index)]",
                                    reason: "must be one of \(Transform.allCases.map(\.rawValue).joined(separator: ", "))")
                            }
                            transforms.append(transform)
                        }
                    }
                    let path = try options["path"].map { value -> JSONPath in
                        guard let text = value.stringValue else { throw HubError.validation(field: "\(here).path", reason: "must be text") }
                        return try JSONPath(text, field: "\(here).path")
                    }
                    guard (path == nil) != (options["constant"] == nil) else {
                        throw HubError.validation(field: here, reason: "needs exactly one of path and constant")
                    }
                    var required = false
                    if let flag = options["required"] {
                        guard case .bool(let value) = flag else { throw HubError.validation(field: "\(here).required", reason: "must be true or false") }
                        required = value
                    }
                    fields.append(Field(
                        name: name, path: path, constant: options["constant"], transforms: transforms, defaultValue: options["default"],
                        required: required))
                default:
                    throw HubError.validation(field: here, reason: "must be a path or an object with path or constant")
                }
            }
        }
        self.fields = fields
    }

    /// What of a source record mapping reads: the external id, the last-modified time and the fields' paths; the whole
    /// record when no fields are named (the record is kept as it is).
    public var projection: JSONProjection {
        guard !fields.isEmpty else { return .whole }
        var paths = [externalID] + fields.compactMap(\.path)
        if let updatedField { paths.append(updatedField) }
        return paths.dropFirst().reduce(paths[0].projection()) { $0.merged(with: $1.projection()) }
    }

    /// A mapped record: its data as canonical JSON text (written as the fields are mapped, in name order).
    public struct Mapped: Sendable, Hashable {
        public var externalID: String
        /// The mapped data, canonical JSON (``JSONValue/jsonText``).
        public var text: String
        /// The source's last-modified value, as given.
        public var updated: String?
    }

    /// Maps one source record. - Throws: ``MappingError`` with the reason (the record is counted as an error).
    public func apply(_ record: JSONValue) throws(MappingError) -> Mapped {
        try apply(whole: record) { path in
            switch path {
            case .externalID: externalID.value(in: record)
            case .updated: updatedField?.value(in: record)
            case .field(let index): fields[index].path?.value(in: record)
            }
        }
    }

    /// Maps one record read by `reader` (built from this mapping; slots come only from one). - Throws: ``MappingError``.
    public func apply(_ record: ParsedRecord, reader: RecordReader?) throws(MappingError) -> Mapped {
        switch record {
        case .value(let value): try apply(value)
        case .slots(let slots): try apply(whole: nil) { reader!.value(of: $0, in: slots) }
        }
    }

    /// A path of the mapping.
    public enum Path: Sendable, Hashable {
        case externalID, updated
        case field(Int)
    }

    /// Maps the record whose paths have the values `value` gives (`whole` is the record, kept when there are no fields).
    private func apply(whole record: JSONValue?, _ value: (Path) -> JSONValue?) throws(MappingError) -> Mapped {
        guard let idValue = value(.externalID), let id = JSONPath.text(of: idValue), !id.isEmpty else {
            throw MappingError(externalID: nil, reason: "external_id: nothing at '\(externalID)'")
        }
        guard id.count <= 255, !id.unicodeScalars.contains("\u{0}") else {
            throw MappingError(externalID: nil, reason: "external_id: longer than 255 characters or contains NUL")
        }
        let updated = value(.updated).flatMap(JSONPath.text(of:))
        guard !fields.isEmpty else { return Mapped(externalID: id, text: (record ?? .null).replacingNUL.jsonText, updated: updated) }
        // Fields are sorted by name, as canonical text orders keys: the text is written directly.
        var text = "{"
        text.reserveCapacity(256)
        for (index, field) in fields.enumerated() {
            if index > 0 { text += "," }
            text += field.quotedName
            text += ":"
            if let constant = field.constant {
                constant.writeCanonical(into: &text)
                continue
            }
            var value = value(.field(index))
            if value == .null { value = nil }
            if var present = value {
                for transform in field.transforms {
                    guard let next = Self.apply(transform, to: present) else {
                        throw MappingError(externalID: id, reason: "\(field.name): cannot apply \(transform.rawValue) to \(present.jsonText.prefix(60))")
                    }
                    present = next
                }
                value = present
            }
            if value == nil { value = field.defaultValue }
            if value == nil, field.required {
                throw MappingError(externalID: id, reason: "\(field.name): required, nothing at '\(field.path!)'")
            }
            (value?.replacingNUL ?? .null).writeCanonical(into: &text)
        }
        text += "}"
        return Mapped(externalID: id, text: text, updated: updated)
    }

    static func apply(_ transform: Transform, to value: JSONValue) -> JSONValue? {
        switch transform {
        case .trim:
            guard case .string(let text) = value else { return value }
            // Most values have nothing to trim: look at both ends before asking Foundation.
            func isSpace(_ byte: UInt8?) -> Bool { byte.map { $0 == 0x20 || ($0 >= 0x09 && $0 <= 0x0D) || $0 >= 0x80 } ?? false }
            guard isSpace(text.utf8.first) || isSpace(text.utf8.last) else { return value }
            let utf8 = text.utf8
            if !utf8.contains(where: { $0 >= 0x80 }) {
                // ASCII: cut the spaces at both ends without Foundation.
                guard let first = utf8.firstIndex(where: { !isSpace($0) }) else { return .string("") }
                let last = utf8.lastIndex(where: { !isSpace($0) })!
                return .string(String(text[first...last]))
            }
            return .string(text.trimmingCharacters(in: .whitespacesAndNewlines))
        case .lowercase:
            guard case .string(let text) = value else { return value }
            return .string(text.lowercased())
        case .uppercase:
            guard case .string(let text) = value else { return value }
            return .string(text.uppercased())
        case .string:
            return JSONPath.text(of: value).map(JSONValue.string)
        case .number:
            switch value {
            case .int, .double: return value
            case .string(let text):
                let trimmed = text.trimmingCharacters(in: .whitespaces)
                if let int = Int64(trimmed) { return .int(int) }
                return Double(trimmed).map(JSONValue.double)
            default: return nil
            }
        case .boolean:
            switch value {
            case .bool: return value
            case .int(let number): return number == 0 || number == 1 ? .bool(number == 1) : nil
            case .string(let text):
                switch text.lowercased() {
                case "true", "yes", "1": return .bool(true)
                case "false", "no", "0": return .bool(false)
                default: return nil
                }
            default: return nil
            }
        case .date:
            return RecordMapping.normalizedDate(value).map(JSONValue.string)
        }
    }

    /// A date or date-time as RFC 3339 UTC, or nil when `value` is neither.
    public static func normalizedDate(_ value: JSONValue) -> String? {
        switch value {
        // Unix seconds outside the years 0001-9999 (NaN and infinities too) are no date.
        case .int(let seconds): return validUnixSeconds.contains(Double(seconds)) ? formatUTC(Date(timeIntervalSince1970: Double(seconds))) : nil
        case .double(let seconds): return validUnixSeconds.contains(seconds) ? formatUTC(Date(timeIntervalSince1970: seconds)) : nil
        case .string(let text):
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            if trimmed.count == 10, let day = try? Date(trimmed + "T00:00:00Z", strategy: .iso8601), formatUTC(day).hasPrefix(trimmed) {
                return trimmed
            }
            if let date = parseDateTime(trimmed) { return formatUTC(date) }
            return nil
        default: return nil
        }
    }

    /// Parses an RFC 3339 / ISO 8601 date-time, with or without fractional seconds.
    public static func parseDateTime(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return date }
        return try? Date(text, strategy: .iso8601)
    }

    /// Unix seconds of 0001-01-01T00:00:00Z through 9999-12-31T23:59:59.999Z.
    static let validUnixSeconds: ClosedRange<Double> = -62_135_596_800...253_402_300_799.999

    /// `date` in UTC to the nearest millisecond: `2026-11-27T08:01:56Z`, or with `.SSS` when the milliseconds are not
    /// zero. Rounded, not truncated: a time like `.007` is held by a Double a hair below it.
    static func formatUTC(_ date: Date) -> String {
        let raw = (date.timeIntervalSince1970 * 1000).rounded()
        let millis = raw.isFinite ? Int64(min(max(raw, -62_135_596_800_000), 253_402_300_799_999)) : 0
        var seconds = time_t(millis >= 0 ? millis / 1000 : (millis - 999) / 1000)
        let fraction = Int(millis - Int64(seconds) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let head = String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
        return fraction == 0 ? head + "Z" : head + String(format: ".%03dZ", fraction)
    }
}

/// Reads the records of one mapping without building them: a record projection (``JSONProjection/record(_:)``) of
/// everything the mapping (and `extra` paths) read gives each a slot, and each path is its slot and the steps after it.
/// Nil when the mapping keeps whole records.
public final class RecordReader: Sendable {
    /// What a page's record is parsed with.
    public let projection: JSONProjection
    private let externalID: Access
    private let updated: Access?
    private let fields: [Access?]
    private let extra: [Access]

    /// A path's slot and the steps after it.
    struct Access: Sendable {
        let slot: Int
        let rest: JSONPath?

        func value(in slots: [JSONValue?]) -> JSONValue? {
            guard let value = slots[slot] else { return nil }
            return rest.map { $0.value(in: value) } ?? value
        }
    }

    public init?(_ mapping: RecordMapping, extra paths: [JSONPath] = []) {
        guard !mapping.fields.isEmpty else { return nil }
        let members = paths.reduce(mapping.projection) { $0.merged(with: $1.projection()) }
        guard let projection = JSONProjection.record(members) else { return nil }
        func access(_ path: JSONPath) -> Access? {
            guard let (slot, depth) = projection.slot(of: path.leadingNames) else { return nil }
            return Access(slot: slot, rest: depth == path.steps.count ? nil : path.dropping(depth))
        }
        guard let externalID = access(mapping.externalID) else { return nil }
        var fields: [Access?] = []
        for field in mapping.fields {
            guard let path = field.path else {
                fields.append(nil)
                continue
            }
            guard let found = access(path) else { return nil }
            fields.append(found)
        }
        var extra: [Access] = []
        for path in paths {
            guard let found = access(path) else { return nil }
            extra.append(found)
        }
        var updated: Access?
        if let path = mapping.updatedField {
            guard let found = access(path) else { return nil }
            updated = found
        }
        self.projection = projection
        self.externalID = externalID
        self.updated = updated
        self.fields = fields
        self.extra = extra
    }

    /// The value of the mapping's `path` in `slots`.
    func value(of path: RecordMapping.Path, in slots: [JSONValue?]) -> JSONValue? {
        switch path {
        case .externalID: externalID.value(in: slots)
        case .updated: updated?.value(in: slots)
        case .field(let index): fields[index]?.value(in: slots)
        }
    }

    /// The value of the `index`th extra path in `record`.
    public func extra(_ index: Int, in record: ParsedRecord, path: JSONPath) -> JSONValue? {
        switch record {
        case .slots(let slots): extra[index].value(in: slots)
        case .value(let value): path.value(in: value)
        }
    }
}

/// Why a source record could not be mapped.
public struct MappingError: Error, Sendable, Hashable {
    /// The record's external id, when it was found.
    public var externalID: String?
    /// What failed, naming the target field.
    public var reason: String

    public init(externalID: String?, reason: String) {
        self.externalID = externalID
        self.reason = reason
    }
}
