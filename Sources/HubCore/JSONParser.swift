import Foundation

/// A direct UTF-8 JSON parser into ``JSONValue`` (RFC 8259): several times faster than decoding `JSONValue` through
/// `JSONDecoder`, which tries each type in turn. Integers that fit Int64 (no fraction or exponent) become `.int`,
/// other numbers `.double`; duplicate object keys keep the last value; nesting is limited to 512 levels.
struct JSONParser {
    struct Failure: Error {}

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private var depth = 0
    /// Records read into slots (a ``JSONProjection/record(_:)`` projection), in the order met.
    private var records: [ParsedRecord] = []

    private init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// Parses a whole document as ``parse(_:projection:)`` does; each value under a record projection is read into
    /// slots (an object) and stands in the document as its ``ParsedRecords`` placeholder.
    static func parseRecords<Bytes: Collection>(_ data: Bytes, projection: JSONProjection) throws -> (JSONValue, ParsedRecords)
    where Bytes.Element == UInt8 {
        func run(_ buffer: UnsafeBufferPointer<UInt8>) throws -> (JSONValue, ParsedRecords) {
            var parser = JSONParser(buffer)
            let value = try parser.parseDocument(projection)
            return (value, ParsedRecords(records: parser.records))
        }
        if let result = try data.withContiguousStorageIfAvailable(run) { return result }
        return try Array(data).withUnsafeBufferPointer(run)
    }

    /// Parses a whole document, keeping only what `projection` names (the rest is checked for syntax and skipped).
    /// - Throws: ``Failure`` when `data` is not exactly one JSON value.
    static func parse<Bytes: Collection>(_ data: Bytes, projection: JSONProjection = .whole) throws -> JSONValue
    where Bytes.Element == UInt8 {
        try parseRecords(data, projection: projection).0
    }

    private mutating func parseDocument(_ projection: JSONProjection) throws -> JSONValue {
        skipWhitespace()
        let value = try parseValue(projection)
        skipWhitespace()
        guard index == bytes.count else { throw Failure() }
        return value
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    private mutating func parseValue() throws -> JSONValue {
        guard index < bytes.count else { throw Failure() }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject(keeping: nil)
        case UInt8(ascii: "["): return try parseArray(each: nil)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        default: return try parseNumber()
        }
    }

    private mutating func expect(_ word: StaticString) throws {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw Failure() }
        let pointer = word.utf8Start
        for offset in 0..<count where bytes[index + offset] != pointer[offset] { throw Failure() }
        index += count
    }

    /// A value as `projection` has it: whole, or an object of only the named members, or an array of projected
    /// elements. A value of another kind than the projection expects is kept whole.
    private mutating func parseValue(_ projection: JSONProjection) throws -> JSONValue {
        guard index < bytes.count else { throw Failure() }
        switch projection.kind {
        case .whole: return try parseValue()
        case .members: return bytes[index] == UInt8(ascii: "{") ? try parseObject(keeping: projection) : try parseValue()
        case .elements: return bytes[index] == UInt8(ascii: "[") ? try parseArray(each: projection.element) : try parseValue()
        case .record:
            if bytes[index] == UInt8(ascii: "{") {
                var slots = [JSONValue?](repeating: nil, count: projection.slotRange.count)
                try parseSlots(projection, into: &slots)
                records.append(.slots(slots))
            } else {
                records.append(.value(try parseValue()))
            }
            return ParsedRecords.placeholder(records.count - 1)
        }
    }

    /// An object's kept members into `slots`: a member projected as an object (a container) into its own members'
    /// slots, any other kept member into its slot, others skipped. As in a parsed object, the last of duplicate keys
    /// wins: a container met again is read afresh.
    private mutating func parseSlots(_ node: JSONProjection, into slots: inout [JSONValue?]) throws {
        depth += 1
        guard depth <= 512 else { throw Failure() }
        defer { depth -= 1 }
        index += 1
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            let found = try member(of: node)
            try colon()
            if let found {
                let child = node.children[found]
                let slot = node.slots[found]
                if slot >= 0 {
                    slots[slot] = try parseValue(child)
                } else {
                    for cleared in child.slotRange { slots[cleared] = nil }
                    guard index < bytes.count else { throw Failure() }
                    // Another kind of value is read as the full parse reads it (which refuses, say, a number beyond a
                    // double), and then reads as nothing.
                    if bytes[index] == UInt8(ascii: "{") { try parseSlots(child, into: &slots) } else { _ = try parseValue() }
                }
            } else {
                try skipValue()
            }
            guard try another(before: UInt8(ascii: "}")) else { return }
        }
    }

    /// Reads a member's key (at its opening quote) and gives the index of the member of `wanted` it names, if any.
    /// Keys are compared as bytes. A key with escapes, or one that misses where text may be written in more than one
    /// way (non-ASCII: Swift strings, and so the full parse's dictionary keys, compare canonically equivalent text as
    /// equal), is decoded and compared as a string.
    private mutating func member(of wanted: JSONProjection) throws -> Int? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw Failure() }
        let keyStart = index + 1
        try skipString()
        let keyBytes = UnsafeBufferPointer(rebasing: bytes[keyStart..<(index - 1)])
        let escaped = keyBytes.contains(UInt8(ascii: "\\"))
        var found = escaped ? nil : wanted.member(keyBytes)
        if found == nil, escaped || wanted.hasNonASCIIName || keyBytes.contains(where: { $0 >= 0x80 }) {
            var decoder = JSONParser(UnsafeBufferPointer(rebasing: bytes[(keyStart - 1)..<index]))
            found = wanted.names.firstIndex(of: try decoder.parseString())
        }
        return found
    }

    /// Passes over one value, checking its syntax as ``parseValue()`` would, without building it. (A number too large
    /// for a double, which parsing refuses, passes here.)
    private mutating func skipValue() throws {
        guard index < bytes.count else { throw Failure() }
        switch bytes[index] {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let isObject = bytes[index] == UInt8(ascii: "{")
            let close = isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
            depth += 1
            guard depth <= 512 else { throw Failure() }
            defer { depth -= 1 }
            index += 1
            skipWhitespace()
            if index < bytes.count, bytes[index] == close {
                index += 1
                return
            }
            while true {
                skipWhitespace()
                if isObject {
                    guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw Failure() }
                    try skipString()
                    try colon()
                }
                try skipValue()
                guard try another(before: close) else { return }
            }
        case UInt8(ascii: "\""): try skipString()
        case UInt8(ascii: "t"): try expect("true")
        case UInt8(ascii: "f"): try expect("false")
        case UInt8(ascii: "n"): try expect("null")
        default: _ = try scanNumber()
        }
    }

    /// After a member's key: passes the colon and the whitespace around it.
    private mutating func colon() throws {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw Failure() }
        index += 1
        skipWhitespace()
    }

    /// After a member or an element: true at a comma (another follows), false at `close` (passed).
    private mutating func another(before close: UInt8) throws -> Bool {
        skipWhitespace()
        guard index < bytes.count else { throw Failure() }
        if bytes[index] == UInt8(ascii: ",") {
            index += 1
            return true
        }
        guard bytes[index] == close else { throw Failure() }
        index += 1
        return false
    }

    /// Passes over a string (at its opening quote), checking its escapes and that it has no control characters.
    private mutating func skipString() throws {
        index += 1
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if byte == UInt8(ascii: "\"") { return }
            if byte == UInt8(ascii: "\\") {
                guard index < bytes.count else { throw Failure() }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
                    UInt8(ascii: "r"), UInt8(ascii: "t"):
                    continue
                case UInt8(ascii: "u"): _ = try hex4()
                default: throw Failure()
                }
            } else {
                guard byte >= 0x20 else { throw Failure() }
            }
        }
        throw Failure()
    }

    /// An object: every member, or (`wanted`) only the members it keeps, each projected in turn; others are skipped.
    private mutating func parseObject(keeping wanted: JSONProjection?) throws -> JSONValue {
        depth += 1
        guard depth <= 512 else { throw Failure() }
        defer { depth -= 1 }
        index += 1
        // Members are gathered first and hashed once into a dictionary of the right size (inserted one by one, the
        // dictionary grew and rehashed every member at 2, 4, 8, …: a sixth of the sync ingest's parsing).
        var members: [(String, JSONValue)] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object([:])
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw Failure() }
            var key: String?
            var found: Int?
            if let wanted {
                found = try member(of: wanted)
            } else {
                key = try parseString()
            }
            try colon()
            if let key {
                members.append((key, try parseValue()))
            } else if let wanted, let found {
                members.append((wanted.names[found], try parseValue(wanted.children[found])))
            } else {
                try skipValue()
            }
            // The last of duplicate keys wins, as JSONDecoder has it.
            guard try another(before: UInt8(ascii: "}")) else { return .object(Dictionary(members, uniquingKeysWith: { _, last in last })) }
        }
    }

    /// An array: its elements whole, or each projected by `each`.
    private mutating func parseArray(each: JSONProjection?) throws -> JSONValue {
        depth += 1
        guard depth <= 512 else { throw Failure() }
        defer { depth -= 1 }
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try each.map { try parseValue($0) } ?? parseValue())
            guard try another(before: UInt8(ascii: "]")) else { return .array(elements) }
        }
    }

    private mutating func parseString() throws -> String {
        index += 1  // the opening quote
        let start = index
        // Fast path: no escapes.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                index += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            guard byte >= 0x20 else { throw Failure() }
            index += 1
        }
        var scalars = Array(bytes[start..<index])
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return String(decoding: scalars, as: UTF8.self)
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw Failure() }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): scalars.append(0x22)
                case UInt8(ascii: "\\"): scalars.append(0x5C)
                case UInt8(ascii: "/"): scalars.append(0x2F)
                case UInt8(ascii: "b"): scalars.append(0x08)
                case UInt8(ascii: "f"): scalars.append(0x0C)
                case UInt8(ascii: "n"): scalars.append(0x0A)
                case UInt8(ascii: "r"): scalars.append(0x0D)
                case UInt8(ascii: "t"): scalars.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800...0xDBFF).contains(code) {
                        // A surrogate pair, else U+FFFD.
                        if index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                            let rewind = index
                            index += 2
                            let low = try hex4()
                            if (0xDC00...0xDFFF).contains(low) {
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                            } else {
                                // Not a low surrogate: U+FFFD for the lone high one; the next escape is read on its own.
                                code = 0xFFFD
                                index = rewind
                            }
                        } else {
                            code = 0xFFFD
                        }
                    } else if (0xDC00...0xDFFF).contains(code) {
                        code = 0xFFFD
                    }
                    scalars.append(contentsOf: Array(String(Character(Unicode.Scalar(code) ?? "\u{FFFD}")).utf8))
                default: throw Failure()
                }
            default:
                guard byte >= 0x20 else { throw Failure() }
                scalars.append(byte)
                index += 1
            }
        }
        throw Failure()
    }

    private mutating func hex4() throws -> UInt32 {
        guard index + 4 <= bytes.count else { throw Failure() }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw Failure()
            }
            value = value * 16 + digit
            index += 1
        }
        return value
    }

    private mutating func parseNumber() throws -> JSONValue {
        let start = index
        let integral = try scanNumber()
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        if integral, let value = Int64(text) { return .int(value) }
        guard let value = Double(text), value.isFinite else { throw Failure() }
        // As JSONDecoder reads `JSONValue`: a number with an exact integer value (`1.0`, `1e2`) is an integer.
        if value.rounded() == value, abs(value) < 9.2e18 { return .int(Int64(value)) }
        return .double(value)
    }

    /// Passes over a number's text (RFC 8259's grammar); returns whether it has neither fraction nor exponent.
    private mutating func scanNumber() throws -> Bool {
        var integral = true
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else { throw Failure() }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            integral = false
            index += 1
            guard index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else { throw Failure() }
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            integral = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else { throw Failure() }
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
        }
        return integral
    }
}

/// The parts of a JSON document a reader needs: parsing with a projection builds only those (a sync maps a handful of
/// fields from records of dozens), and checks the rest for syntax without building it. Immutable; its member names
/// are kept as one block of bytes, so matching a key costs no reference counting.
public final class JSONProjection: @unchecked Sendable {
    /// `record`: a member projection whose object is read into slots (``record(_:)``).
    enum Kind { case whole, members, elements, record }

    let kind: Kind
    /// Of a member projection: the names, sorted, and each one's projection.
    let names: [String]
    let children: [JSONProjection]
    /// Of an element projection: each element's.
    let element: JSONProjection?
    /// Of a record and its containers (``record(_:)``): each member's slot, or -1 for a container (a member projected
    /// as an object, whose members have slots of their own); and the slots of all of this object's members.
    let slots: [Int]
    let slotRange: Range<Int>
    /// Whether a name has a non-ASCII character (then an unmatched key is also compared as a string).
    let hasNonASCIIName: Bool
    /// The names' UTF-8 bytes, one after the other, and where each one ends.
    private let keyBytes: UnsafeMutableBufferPointer<UInt8>
    private let keyEnds: UnsafeMutableBufferPointer<Int>

    private init(
        kind: Kind, members: [(String, JSONProjection)] = [], element: JSONProjection? = nil, slots: [Int] = [],
        slotRange: Range<Int> = 0..<0
    ) {
        self.kind = kind
        self.names = members.map(\.0)
        self.children = members.map(\.1)
        self.element = element
        self.slots = slots
        self.slotRange = slotRange
        self.hasNonASCIIName = names.contains { $0.utf8.contains { $0 >= 0x80 } }
        let bytes = members.flatMap { Array($0.0.utf8) }
        keyBytes = .allocate(capacity: bytes.count)
        _ = keyBytes.initialize(from: bytes)
        keyEnds = .allocate(capacity: members.count)
        var end = 0
        for (index, member) in members.enumerated() {
            end += member.0.utf8.count
            keyEnds[index] = end
        }
    }

    deinit {
        keyBytes.deallocate()
        keyEnds.deallocate()
    }

    /// The whole value.
    public static let whole = JSONProjection(kind: .whole)

    /// Of an object, only `members` (names with their projections); another kind of value is kept whole.
    public static func object(_ members: [String: JSONProjection]) -> JSONProjection {
        JSONProjection(kind: .members, members: members.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }

    /// Of an array, every element projected by `each`; another kind of value is kept whole.
    public static func elements(_ each: JSONProjection) -> JSONProjection {
        JSONProjection(kind: .elements, element: each)
    }

    /// Whether this keeps the whole value.
    public var isWhole: Bool { kind == .whole }

    /// `members` (an object's projection) read into slots instead of built: each kept member that is not itself
    /// projected as an object gets a slot (numbered in name order, depth first); nil for another kind of projection.
    /// A record parsed so (``JSONValue/parseRecords(bytes:projection:)``) is a ``ParsedRecord/slots(_:)``.
    public static func record(_ members: JSONProjection) -> JSONProjection? {
        guard members.kind == .members else { return nil }
        var next = 0
        func slotted(_ node: JSONProjection, kind: Kind) -> JSONProjection {
            let start = next
            var children: [JSONProjection] = []
            var slots: [Int] = []
            for child in node.children {
                if child.kind == .members {
                    children.append(slotted(child, kind: .members))
                    slots.append(-1)
                } else {
                    children.append(child)
                    slots.append(next)
                    next += 1
                }
            }
            return JSONProjection(kind: kind, members: Array(zip(node.names, children)), slots: slots, slotRange: start..<next)
        }
        return slotted(members, kind: .record)
    }

    /// The slot of the value at the member path `names` of a record projection, with how many names lead to it (the
    /// rest are read from the slot's value); nil when the path does not end in or pass through a slot.
    func slot(of names: [String]) -> (slot: Int, depth: Int)? {
        var node = self
        for (depth, name) in names.enumerated() {
            guard !node.slots.isEmpty, let position = node.names.firstIndex(of: name) else { return nil }
            if node.slots[position] >= 0 { return (node.slots[position], depth + 1) }
            node = node.children[position]
        }
        return nil
    }

    /// What both `self` and `other` keep. An object and an array projection of one value keep it whole.
    public func merged(with other: JSONProjection) -> JSONProjection {
        switch (kind, other.kind) {
        case (.whole, _), (_, .whole): return .whole
        case (.elements, .elements): return .elements(element!.merged(with: other.element!))
        case (.members, .members):
            var merged: [String: JSONProjection] = [:]
            for (name, child) in zip(names + other.names, children + other.children) {
                merged[name] = merged[name].map { $0.merged(with: child) } ?? child
            }
            return .object(merged)
        default: return .whole
        }
    }

    /// The index of the member whose name is `key` (unescaped UTF-8), if kept.
    func member(_ key: UnsafeBufferPointer<UInt8>) -> Int? {
        var start = 0
        for index in 0..<keyEnds.count {
            let end = keyEnds[index]
            if end - start == key.count, key.count == 0 || memcmp(keyBytes.baseAddress! + start, key.baseAddress!, key.count) == 0 {
                return index
            }
            start = end
        }
        return nil
    }
}

/// A source record as read under a record projection: its slots, or the value itself when it is not an object.
public enum ParsedRecord: Sendable, Hashable {
    case slots([JSONValue?])
    case value(JSONValue)
}

/// The records read from one document under record projections. In the document each stands as a placeholder: a
/// `.double` NaN carrying its position (parsing never makes a NaN).
public struct ParsedRecords: Sendable {
    let records: [ParsedRecord]

    static func placeholder(_ position: Int) -> JSONValue {
        .double(Double(bitPattern: 0x7FF8_0000_0000_0000 | UInt64(position)))
    }

    /// The record `element` stands for, or `element` itself when it is not a placeholder (a value that was not under
    /// a record projection).
    public func record(_ element: JSONValue) -> ParsedRecord {
        if case .double(let number) = element, number.isNaN {
            let position = Int(number.bitPattern & 0x0007_FFFF_FFFF_FFFF)
            if position < records.count { return records[position] }
        }
        return .value(element)
    }
}

extension JSONValue {
    /// Parses JSON bytes as ``parse(bytes:projection:)`` does, each value under a record projection read into slots
    /// (see ``ParsedRecords``); nil when they are not exactly one JSON value.
    public static func parseRecords(bytes: some Collection<UInt8>, projection: JSONProjection) -> (JSONValue, ParsedRecords)? {
        try? JSONParser.parseRecords(bytes, projection: projection)
    }

    /// Parses JSON bytes directly (see ``JSONParser``); nil when they are not exactly one JSON value.
    public static func parse(bytes: some Collection<UInt8>) -> JSONValue? {
        try? JSONParser.parse(bytes)
    }

    /// Parses JSON bytes keeping only what `projection` names; nil when they are not exactly one JSON value.
    public static func parse(bytes: some Collection<UInt8>, projection: JSONProjection) -> JSONValue? {
        try? JSONParser.parse(bytes, projection: projection)
    }
}
