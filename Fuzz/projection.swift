// Fuzz target `projection`: JSONPath parsing (Sources/HubCore/RecordMapping.swift) and projected parsing
// (Sources/HubCore/JSONParser.swift: `parse(_:projection:)`, `parseRecords` with a record projection).
//
// Input: one or more paths, one a line, then a NUL byte, then a JSON document (no NUL: the whole input is one path).
// Crashes (defects): a trap; a document that parses whole but not under the paths' projection; a path finding another
// value in the projected document than in the whole one; the same through a record projection, read from slots as
// RecordReader reads them.
import Foundation
@testable import HubCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProjection(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    guard let (header, document) = splitAtNUL(input) else {
        // A path alone: parse it and use it on a fixed document.
        if let path = try? JSONPath(text(input), field: "path") {
            _ = path.value(in: sample)
            _ = path.projection()
            _ = path.leadingNames
        }
        return 0
    }
    var paths: [JSONPath] = []
    for line in header.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).prefix(8) {
        guard let path = try? JSONPath(text(line), field: "path") else { return 0 }
        if path.description != text(line) { defect("path description \(path.description) is not its text", input) }
        paths.append(path)
    }
    guard let first = paths.first else { return 0 }
    let projection = paths.dropFirst().reduce(first.projection()) { $0.merged(with: $1.projection()) }

    let whole = try? JSONParser.parse(document)
    let projected = try? JSONParser.parse(document, projection: projection)
    if let whole {
        guard let projected else { defect("parses whole but not under the projection", input) }
        for path in paths where path.value(in: whole) != path.value(in: projected) {
            defect("path \(path) finds \(short(path.value(in: projected))) in the projected document, \(short(path.value(in: whole))) in the whole", input)
        }
    }

    // A record projection of the document itself (an object read into slots), each path read as RecordReader reads it.
    guard let record = JSONProjection.record(projection) else { return 0 }
    let parsed = try? JSONParser.parseRecords(document, projection: record)
    if let whole {
        guard let (value, records) = parsed else { defect("parses whole but not under the record projection", input) }
        let item = records.record(value)
        for path in paths {
            let found: JSONValue?
            switch item {
            case .value(let value): found = path.value(in: value)
            case .slots(let slots):
                guard let (slot, depth) = record.slot(of: path.leadingNames) else { continue }
                let rest = depth == path.steps.count ? nil : path.dropping(depth)
                found = slots[slot].flatMap { value in rest.map { $0.value(in: value) } ?? value }
            }
            if found != path.value(in: whole) {
                defect("path \(path) finds \(short(found)) in the record's slots, \(short(path.value(in: whole))) in the whole document", input)
            }
        }
    }
    return 0
}

private let sample: JSONValue = [
    "id": "2819c223", "name": ["given": "Barbara", "family": "Jensen"], "active": true, "count": 3,
    "emails": [["type": "work", "value": "bjensen@example.com", "primary": true], ["type": "home", "value": "b@example.org"]],
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": ["employeeNumber": "701984"],
    "meta": ["lastModified": "2026-11-27T08:01:56Z"], "a.b": 1, "": [1, [2, [3]]],
]
