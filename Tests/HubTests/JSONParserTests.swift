import Foundation
import HubCore
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

    @Test("canonical text round-trips and sorts keys")
    func canonical() throws {
        for text in Self.documents {
            let value = try #require(JSONValue.parse(bytes: Array(text.utf8)))
            #expect(JSONValue.parse(bytes: Array(value.jsonText.utf8)) == value)
        }
        #expect(JSONValue.object(["b": 1, "a": ["c": "\u{1}\"/"]]).jsonText == #"{"a":{"c":"\u0001\"/"},"b":1}"#)
    }
}
