// Fuzz target `mapping`: a sync configuration (Sources/HubCore/SyncConfiguration.swift, RecordMapping.swift) and a page
// of records read and mapped as the sync engine does (Sources/HubEngine/SourceConnectors.swift, SyncEngine.swift):
// parsed under the page's projection with records read into slots (RecordReader), and each record mapped.
//
// Input: an integration's `mapping_config` JSON, a NUL byte, then a page body (no NUL: the configuration alone).
// Crashes (defects): a trap; a page that parses whole but not under the page projection; a record mapped from slots
// differently from the same record mapped from the whole document (result, error, total or next cursor); mapped text
// that is not JSON or still holds a NUL.
import Foundation
@testable import HubCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMapping(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    let (header, document) = splitAtNUL(input) ?? (input, UnsafeBufferPointer(start: data, count: 0))
    guard let config = try? JSONParser.parse(header), let configuration = try? SyncConfiguration.parse(config) else { return 0 }
    guard document.count > 0 || splitAtNUL(input) != nil else {
        // The configuration alone: its projections and readers are built as a sync builds them.
        for (_, entity) in configuration.entities {
            _ = entity.mapping.projection
            _ = RecordReader(entity.mapping)
            _ = RecordReader(entity.mapping, extra: [idPath])
        }
        return 0
    }
    let whole = try? JSONParser.parse(document)
    for name in configuration.entities.keys.sorted().prefix(4) {
        let mapping = configuration.entities[name]!.mapping
        switch configuration.connector {
        case .scim:
            let reader = RecordReader(mapping, extra: [idPath])
            let page = JSONProjection.object([
                "Resources": .elements(reader?.projection ?? mapping.projection.merged(with: .object(["id": .whole]))), "totalResults": .whole,
            ])
            guard let (body, parsed) = read(document, page, whole: whole, input) else { continue }
            let resources = (body.objectValue?["Resources"]?.arrayValue ?? []).map(parsed.record)
            let wholeResources = whole!.objectValue?["Resources"]?.arrayValue ?? []
            if body.objectValue?["totalResults"]?.intValue != whole!.objectValue?["totalResults"]?.intValue {
                defect("totalResults differs", input)
            }
            check(mapping, reader, resources, wholeResources, scimID: true, input)
        case .restJSON(let settings):
            let reader = RecordReader(mapping)
            let each = reader?.projection ?? mapping.projection
            var kept = settings.recordsPath?.projection(leaf: .elements(each)) ?? .elements(each)
            if let total = settings.totalPath { kept = kept.merged(with: total.projection()) }
            if case .cursor(_, let nextPath, _) = settings.pagination { kept = kept.merged(with: nextPath.projection()) }
            guard let (body, parsed) = read(document, kept, whole: whole, input) else { continue }
            let container = settings.recordsPath.flatMap { $0.value(in: body) } ?? body
            let wholeContainer = settings.recordsPath.flatMap { $0.value(in: whole!) } ?? whole!
            let records = container.arrayValue?.map(parsed.record)
            let wholeRecords = wholeContainer.arrayValue
            if (records == nil) != (wholeRecords == nil) { defect("records found in one parse only", input) }
            if settings.totalPath.flatMap({ $0.value(in: body) })?.intValue != settings.totalPath.flatMap({ $0.value(in: whole!) })?.intValue {
                defect("total differs", input)
            }
            if case .cursor(_, let nextPath, _) = settings.pagination,
                nextPath.value(in: body).flatMap({ $0.stringValue }) != nextPath.value(in: whole!).flatMap({ $0.stringValue })
            {
                defect("next cursor differs", input)
            }
            check(mapping, reader, records ?? [], wholeRecords ?? [], scimID: false, input)
        }
    }
    return 0
}

private let idPath = try! JSONPath("id", field: "id")

/// The page parsed under `projection` (with records read into slots); nil when it is not JSON. A page that parses
/// whole must parse under the projection too (the reverse need not hold: a skipped number beyond a double passes).
private func read(
    _ document: UnsafeBufferPointer<UInt8>, _ projection: JSONProjection, whole: JSONValue?, _ input: UnsafeBufferPointer<UInt8>
) -> (JSONValue, ParsedRecords)? {
    let parsed = try? JSONParser.parseRecords(document, projection: projection)
    guard whole != nil else { return nil }
    guard let parsed else { defect("the page parses whole but not under the page projection", input) }
    return parsed
}

/// Each record mapped from slots (or its placeholder's value) and from the whole document: the same outcome.
private func check(
    _ mapping: RecordMapping, _ reader: RecordReader?, _ records: [ParsedRecord], _ wholeRecords: [JSONValue], scimID: Bool,
    _ input: UnsafeBufferPointer<UInt8>
) {
    guard records.count == wholeRecords.count else { defect("\(records.count) records vs \(wholeRecords.count)", input) }
    for (record, wholeRecord) in zip(records, wholeRecords).prefix(64) {
        let fromSlots = Result { () throws(MappingError) in try mapping.apply(record, reader: reader) }
        let fromWhole = Result { () throws(MappingError) in try mapping.apply(wholeRecord) }
        switch (fromSlots, fromWhole) {
        case (.success(let a), .success(let b)):
            if a != b { defect("mapped differently: \(short(a)) from slots, \(short(b)) from the whole record", input) }
            guard let data = try? JSONParser.parse(Array(a.text.utf8)) else { defect("mapped text is not JSON: \(short(a.text))", input) }
            // Mapping replaces U+0000 (replacingNUL): PostgreSQL stores no NUL, and remote data must not fail a sync.
            if data.containsNUL { defect("mapped data holds a NUL: \(short(a.text))", input) }
        case (.failure(let a), .failure(let b)):
            if a != b { defect("failed differently: \(a.reason) from slots, \(b.reason) from the whole record", input) }
        default:
            defect("mapping outcome differs: \(short(fromSlots)) from slots, \(short(fromWhole)) from the whole record", input)
        }
        if scimID, let reader {
            let id = reader.extra(0, in: record, path: idPath)?.stringValue
            if id != idPath.value(in: wholeRecord)?.stringValue { defect("SCIM id differs: \(short(id))", input) }
        }
    }
}
