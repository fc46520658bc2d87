import Foundation
import HubCore
@testable import HubStore
import Testing

/// The direct JSON parser gives what JSONDecoder gives for `JSONValue`, and refuses what RFC 8259 does (JSONDecoder
/// also accepts trailing commas).
@Suite("JSON parser")
struct JSONParserTests {
    static let documents = [
        #"{"a":1,"b":[true,false,null],"c":{"d":"e"}}"#, #"[]"#, #"{}"#, #"  [ 1 , -2 , 3.5 , -0.25e2 , 1E3 , 1.0 ]  "#,
        #""plain""#, #""esc \" \\ \/ \b \f \n \r \t""#, #""\u00e9\u4e2d\ud83d\ude00""#, #""naïve ünïcödé 😀""#,
        #"9223372036854775807"#, #"-9223372036854775808"#, #"92233720368547758070"#, #"0.1"#, #"1e-7"#,
        #"{"nested":[[[[{"x":[1,{"y":"z"}]}]]]]}"#, "12", "true", "null",
    ]
    static let invalid = [
        "", "{", "[1,]", #"{"a" 1}"#, #"{"a":1,}"#, "01", "1.", ".5", "-", "tru", #""unterminated"#, "[1] 2", #""\x""#,
        "\"tab\tinside\"", "NaN", "{\"a\":}", "[", "1e", "+1",
    ]

    @Test("valid documents parse as JSONDecoder reads them", arguments: documents)
    func valid(_ text: String) throws {
        let expected = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(JSONValue.parse(bytes: Array(text.utf8)) == expected)
    }

    @Test("invalid documents are refused", arguments: invalid)
    func refused(_ text: String) {
        #expect(JSONValue.parse(bytes: Array(text.utf8)) == nil)
    }

    @Test("remote data is read leniently where RFC 8259 allows: a lone surrogate becomes U+FFFD; the last duplicate key wins")
    func lenient() {
        #expect(JSONValue.parse(bytes: Array(#""\ud800 lone""#.utf8)) == .string("\u{FFFD} lone"))
        #expect(JSONValue.parse(bytes: Array(#"{"dup":1,"dup":2}"#.utf8)) == ["dup": 2])
        // A high surrogate followed by an escape that is no low surrogate: U+FFFD, and the escape kept.
        #expect(JSONValue.parse(bytes: Array(#""\uD83D\u0041""#.utf8)) == .string("\u{FFFD}A"))
    }

    /// A mapping reading every kind of path: members, nested and quoted members, an index, a match, the updated field.
    static let projectedMapping: JSONValue = [
        "external_id": "id", "updated_field": "meta.lastModified",
        "fields": [
            "user": "userName", "given": "name.givenName", "email": ["path": "emails[primary=true].value", "transforms": ["lowercase"]],
            "second": "emails[1].type", "number": "[\"urn:ext\"].employeeNumber", "whole_name": "name",
        ],
    ]
    static let projectedRecords = [
        #"{"id":"1","userName":"a","name":{"givenName":"G","familyName":"F","extra":[1,{"x":null}]},"meta":{"lastModified":"2026-01-01T00:00:00Z","resourceType":"User"},"emails":[{"value":"X@Y","primary":false,"type":"home"},{"value":"P@Q","primary":true,"type":"work","display":"d"}],"urn:ext":{"employeeNumber":7,"department":"R"},"groups":[{"value":"g1","$ref":"https://x/Groups/g1"}],"photos":"skip me \" \\ \u00e9"}"#,
        // Escaped keys still match; the last of duplicate keys wins; kinds other than the path expects read as nothing.
        #"{"\u0069d":"2","userName":"first","userName":"second","name":"not an object","emails":{"value":"no list"},"urn:ext":[1,2]}"#,
        // Nothing the mapping needs but the id.
        #"{"id":3,"unrelated":{"deep":[[[{"a":1e400}]]]}}"#,
        // No id: the mapping fails the same way.
        #"{"userName":"z","emails":[]}"#,
    ]

    @Test("a mapping's projection keeps what it reads: mapping the projected record gives what mapping the whole one gives")
    func projection() throws {
        let mapping = try RecordMapping(Self.projectedMapping, field: "mapping")
        let projection = mapping.projection
        for text in Self.projectedRecords {
            let projected = JSONValue.parse(bytes: Array(text.utf8), projection: projection)
            let whole = JSONValue.parse(bytes: Array(text.utf8))
            if text.contains("1e400") {
                // A number beyond a double is refused where it is read, and passed over where it is not.
                #expect(whole == nil)
                #expect(projected == ["id": 3])
                continue
            }
            let full = try #require(whole)
            let kept = try #require(projected)
            func mapped(_ record: JSONValue) -> Result<RecordMapping.Mapped, MappingError> {
                do throws(MappingError) { return .success(try mapping.apply(record)) } catch { return .failure(error) }
            }
            #expect(mapped(kept) == mapped(full), "\(text)")
        }
        // What no path reads is not built.
        let first = try #require(JSONValue.parse(bytes: Array(Self.projectedRecords[0].utf8), projection: projection))
        #expect(first.objectValue.map { Set($0.keys) } == ["id", "userName", "name", "meta", "emails", "urn:ext"])
        #expect(first.objectValue?["meta"] == ["lastModified": "2026-01-01T00:00:00Z"])
        #expect(first.objectValue?["urn:ext"] == ["employeeNumber": 7])
        // The match keeps its key and the rest of its path in every element; the index keeps the same in every element.
        #expect(first.objectValue?["emails"] == [["value": "X@Y", "primary": false, "type": "home"], ["value": "P@Q", "primary": true, "type": "work"]])
        // A path to a whole object keeps it whole, though another path reads into it.
        #expect(first.objectValue?["name"]?.objectValue?.count == 3)
        // Keys are matched as the full parse's dictionary matches them: canonically equivalent text is the same key
        // (a precomposed 'é' for 'e' and a combining accent; the Kelvin sign for 'K').
        let unicode = try RecordMapping(["external_id": "id", "fields": ["c": "cafe\u{301}", "k": "\u{212A}"]], field: "mapping")
        let text = "{\"id\":\"1\",\"caf\u{E9}\":\"v\",\"K\":\"kelvin\",\"other\":1}"
        let unicodeWhole = try #require(JSONValue.parse(bytes: Array(text.utf8)))
        let unicodeKept = try #require(JSONValue.parse(bytes: Array(text.utf8), projection: unicode.projection))
        #expect(try unicode.apply(unicodeKept) == unicode.apply(unicodeWhole))
        #expect(try unicode.apply(unicodeKept).text == #"{"c":"v","k":"kelvin"}"#)
        // No fields: the record is kept whole.
        #expect(try RecordMapping(["external_id": "id"], field: "mapping").projection.isWhole)
    }

    /// A mapping that reads through objects (containers) without keeping them whole.
    static let containerMapping: JSONValue = [
        "external_id": "id", "updated_field": "meta.lastModified",
        "fields": [
            "given": "name.givenName", "family": "name.familyName", "deep": "a.b.c", "email": "emails[primary=true].value",
            "flag": ["path": "x.flag", "transforms": ["boolean"], "default": false], "fixed": ["constant": "k"],
        ],
    ]
    static let containerRecords = [
        #"{"id":"4","name":{"givenName":"A","familyName":"X"},"name":{"familyName":"B"},"meta":{"lastModified":"2026-02-02T00:00:00Z"}}"#,
        #"{"id":"5","name":"not an object","a":{"b":[1]},"x":{"flag":"yes"}}"#,
        #"{"id":"6","a":{"b":{"c":"deep","d":1}},"a2":1,"emails":[{"value":"E","primary":true}]}"#,
        #"{"id":"7","a":{"b":{"c":"first"}},"a":{"x":1},"meta":"no object","x":{"flag":"maybe"}}"#,
        #"{"id":"8","a":{"b":{"c":{"nested":[1,{"y":"é"}]}}},"name":{}}"#,
        #""not a record""#, "42", "null", "[1,2]", "{}",
    ]

    @Test("records read into slots map as the whole records do, whatever their shape", arguments: [
        (projectedMapping, projectedRecords.filter { !$0.contains("1e400") }), (containerMapping, containerRecords),
    ])
    func slots(_ spec: JSONValue, _ records: [String]) throws {
        let mapping = try RecordMapping(spec, field: "mapping")
        let idPath = try JSONPath("id", field: "id")
        let reader = try #require(RecordReader(mapping, extra: [idPath]))
        let document = "[" + records.joined(separator: ",") + "]"
        let (page, parsed) = try #require(JSONValue.parseRecords(bytes: Array(document.utf8), projection: .elements(reader.projection)))
        let whole = try #require(JSONValue.parse(bytes: Array(document.utf8))?.arrayValue)
        let read = try #require(page.arrayValue).map(parsed.record)
        #expect(read.count == whole.count)
        func mapped(_ body: () throws(MappingError) -> RecordMapping.Mapped) -> Result<RecordMapping.Mapped, MappingError> {
            do throws(MappingError) { return .success(try body()) } catch { return .failure(error) }
        }
        for (record, full) in zip(read, whole) {
            // Objects are read into slots; other values are kept as they are.
            if case .object = full {
                guard case .slots = record else { Issue.record("not read into slots: \(full.jsonText)"); continue }
            } else {
                #expect(record == .value(full))
            }
            #expect(mapped { () throws(MappingError) in try mapping.apply(record, reader: reader) } == mapped { () throws(MappingError) in try mapping.apply(full) },
                    "\(full.jsonText)")
            #expect(reader.extra(0, in: record, path: idPath) == idPath.value(in: full))
        }
        // A mapping without fields keeps whole records: no reader.
        #expect(RecordReader(try RecordMapping(["external_id": "id"], field: "mapping")) == nil)
    }

    @Test("what a projection passes over is still checked: a malformed value anywhere refuses the document",
          arguments: invalid.filter { !$0.isEmpty })
    func projectionChecksSkipped(_ fragment: String) {
        let keepNothing = JSONProjection.object(["kept": .whole])
        #expect(JSONValue.parse(bytes: Array(#"{"skipped":\#(fragment),"kept":1}"#.utf8), projection: keepNothing) == nil)
        #expect(JSONValue.parse(bytes: Array(#"[{"skipped":[\#(fragment)]}]"#.utf8), projection: .elements(keepNothing)) == nil)
        #expect(JSONValue.parse(bytes: Array(#"{"kept":1} \#(fragment)"#.utf8), projection: keepNothing) == nil)
    }

    @Test("a projection that keeps everything it meets parses as the plain parser does", arguments: documents)
    func projectionWhole(_ text: String) {
        let expected = JSONValue.parse(bytes: Array(text.utf8))
        #expect(JSONValue.parse(bytes: Array(text.utf8), projection: .whole) == expected)
        // Objects and arrays projected onto nothing keep their kind; other values are kept whole.
        let projected = JSONValue.parse(bytes: Array(text.utf8), projection: .object([:]))
        switch expected {
        case .object?: #expect(projected == .object([:]))
        default: #expect(projected == expected)
        }
    }

    @Test("canonical text round-trips and sorts keys")
    func canonical() throws {
        for text in Self.documents {
            let value = try #require(JSONValue.parse(bytes: Array(text.utf8)))
            #expect(JSONValue.parse(bytes: Array(value.jsonText.utf8)) == value)
        }
        #expect(JSONValue.object(["b": 1, "a": ["c": "\u{1}\"/"]]).jsonText == #"{"a":{"c":"\u0001\"/"},"b":1}"#)
    }

    @Test("RFC 3339 times are written in UTC with microseconds, before and after 1970, and read back")
    func rfc3339() throws {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let cases: [(Double, String)] = [
            (0, "1970-01-01T00:00:00.000000Z"), (1_795_766_516.123456, "2026-11-27T08:01:56.123456Z"),
            (951_825_600.5, "2000-02-29T12:00:00.500000Z"), (-0.25, "1969-12-31T23:59:59.750000Z"),
            (-2_208_988_800, "1900-01-01T00:00:00.000000Z"), (253_402_300_799.5, "9999-12-31T23:59:59.500000Z"),
        ]
        // Past year 9999 (and before year 0) the year takes the digits it needs instead of losing some or trapping.
        #expect(RFC3339.format(Date(timeIntervalSince1970: 253_402_300_800.5)) == "10000-01-01T00:00:00.500000Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: -62_167_219_201)).hasPrefix("-001-12-31T23:59:59"))
        for (seconds, expected) in cases {
            let text = RFC3339.format(Date(timeIntervalSince1970: seconds))
            #expect(text == expected)
            #expect(abs(try RFC3339.parse(text, field: "t").timeIntervalSince1970 - seconds) < 0.001)
            #expect(formatter.date(from: text) != nil)
        }
    }

    @Test("RFC 3339 times are read strictly: offsets and fractions honoured, impossible days and times refused")
    func rfc3339Strict() throws {
        let accepted: [(String, Double)] = [
            ("2026-11-27T08:01:56Z", 1_795_766_516), ("2026-11-27t08:01:56.5z", 1_795_766_516.5),
            ("2026-11-27T10:01:56+02:00", 1_795_766_516), ("2026-11-27T07:31:56.123456789-00:30", 1_795_766_516.123456),
            ("2024-02-29T00:00:00Z", 1_709_164_800), ("1969-12-31T23:59:59.75Z", -0.25), ("0001-01-01T00:00:00Z", -62_135_596_800),
            ("2016-12-31T23:59:60Z", 1_483_228_800), ("1990-12-31T15:59:60-08:00", 662_688_000),
        ]
        for (text, seconds) in accepted {
            #expect(abs(try RFC3339.parse(text, field: "t").timeIntervalSince1970 - seconds) < 0.000_01, "\(text)")
        }
        let refused = [
            "2026-02-30T00:00:00Z", "2025-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z",
            "2026-01-01T24:00:00Z", "2026-01-01T23:60:00Z", "2026-01-01T23:59:61Z", "2026-01-01T00:00:00", "2026-01-01 00:00:00Z",
            "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00+2:00", "2026-01-01T00:00:00+24:00", "0000-01-01T00:00:00Z",
            "+2026-01-01T00:00:00Z", "2026-01-01T00:00:00Zjunk", "", "yesterday", "0001-01-01T00:00:00+00:01",
            "9999-12-31T23:59:59-00:01", "2026-1-01T00:00:00Z", "6045-11-09T22:05:60Z", "2026-01-01T23:59:60+05:00",
        ]
        for text in refused {
            #expect(throws: HubError.self, "\(text)") { try RFC3339.parse(text, field: "t") }
        }
    }

    @Test("what fuzzing found: NUL before a combining mark, dates at the edges, the largest cursor, NUL in an address")
    func fuzzFindings() throws {
        // Foundation's search does not find a NUL that a combining mark follows: it reached the database unreplaced.
        let dirty: JSONValue = ["k\u{0}\u{301}": ["\u{0}\u{0C00}", .string("a\u{0}\u{301}b")]]
        #expect(dirty.containsNUL)
        #expect(!dirty.replacingNUL.containsNUL)
        #expect(dirty.replacingNUL == ["k\u{FFFD}\u{301}": ["\u{FFFD}\u{0C00}", .string("a\u{FFFD}\u{301}b")]])
        // The date transform rounds to the millisecond (a truncating formatter lost one) and refuses times outside
        // the years 0001-9999 instead of writing impossible dates.
        #expect(RecordMapping.normalizedDate("2026-11-27T08:01:56.007Z") == "2026-11-27T08:01:56.007Z")
        #expect(RecordMapping.normalizedDate(.double(1.061)) == "1970-01-01T00:00:01.061Z")
        #expect(RecordMapping.normalizedDate(.int(1_795_766_516)) == "2026-11-27T08:01:56Z")
        #expect(RecordMapping.normalizedDate(.double(-0.25)) == "1969-12-31T23:59:59.750Z")
        for value: JSONValue in [.double(.nan), .double(.infinity), .double(-.infinity), .int(.max), .int(.min), .double(1e20), .int(253_402_300_800)] {
            #expect(RecordMapping.normalizedDate(value) == nil, "\(value)")
        }
        // The last microseconds of year 9999 stay in it (a Double rounded them into year 10000, which parse refuses).
        for text in ["9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999998Z"] {
            let date = try RFC3339.parse(text, field: "t")
            #expect(RFC3339.format(date).hasPrefix("9999-12-31T23:59:59.99"))
            _ = try RFC3339.parse(RFC3339.format(date), field: "t")
        }
        // The largest cursor a list accepts is written back as one it accepts.
        let largest = try PageCursor(parsing: "99999999999999999_ffffffff-ffff-ffff-ffff-ffffffffffff")
        _ = try PageCursor(parsing: largest.encoded)
        // A record cursor whose external id starts with a combining mark reads back (a Character search for '_' missed
        // it: the list refused its own next_cursor).
        let when = Date(timeIntervalSince1970: 1_795_766_516.25)
        let (time, externalID) = try SyncEngineStore.parseRecordCursor(SyncEngineStore.recordCursor(when, "\u{301}x_1"))
        #expect(externalID == "\u{301}x_1" && abs(time.timeIntervalSince1970 - when.timeIntervalSince1970) < 0.000_01)
        // An address with a NUL is not the address before the NUL.
        #expect(IPAddress("fd00:ec2::254\u{0}junk") == nil)
        #expect(IPAddress("127.0.0.1\u{0}") == nil)
        #expect(IPAddress("fd00:ec2::254") != nil)
    }

    @Test("a mapping member of the wrong type is refused naming it, not replaced by its default (found by Schemathesis)")
    func mappingMemberTypes() async throws {
        func config(_ entity: JSONValue, pagination: JSONValue = ["type": "page"]) -> JSONValue {
            ["connector": ["type": "rest_json", "pagination": pagination], "entities": ["users": entity]]
        }
        await expectValidation("mapping_config.entities.users.external_id") {
            _ = try SyncConfiguration.parse(config(["path": "/u", "external_id": [:]]))
        }
        await expectValidation("mapping_config.entities.users.updated_field") {
            _ = try SyncConfiguration.parse(config(["path": "/u", "updated_field": 5]))
        }
        await expectValidation("mapping_config.entities.users.path") {
            _ = try SyncConfiguration.parse(config(["path": true]))
        }
        await expectValidation("mapping_config.connector.pagination.start") {
            _ = try SyncConfiguration.parse(config(["path": "/u"], pagination: ["type": "page", "start": "1"]))
        }
        #expect(try SyncConfiguration.parse(config(["path": "/u", "external_id": "id", "updated_field": "updated"])) != nil)
    }
}
