import JSON
import Testing

struct JSONValueTests {
    @Test func keepsMemberOrder() throws {
        let value = try JSONValue.parse(Array(#"{"b": 1, "a": [true, null], "c": {"z": "x", "y": -2.5e3}}"#.utf8))
        guard case let .object(members) = value else {
            Issue.record("not an object")
            return
        }
        #expect(members.map(\.key) == ["b", "a", "c"])
        #expect(value["a"] == .array([.bool(true), .null]))
        guard case let .object(inner)? = value["c"] else {
            Issue.record("c is not an object")
            return
        }
        #expect(inner.map(\.key) == ["z", "y"])
    }

    @Test func decodesEscapes() throws {
        let value = try JSONValue.parse(Array(#"["a\"b\\c\/d\n\t\u00e9\ud83d\ude00"]"#.utf8))
        #expect(value == .array([.string("a\"b\\c/d\n\té😀")]))
    }

    @Test func rejectsInvalidDocuments() {
        let invalid = [
            "", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "\"\\x\"", "\"\\ud800\"", "nul", "[1] 2",
            "\"a\u{01}\"", String(repeating: "[", count: 600) + String(repeating: "]", count: 600),
        ]
        for text in invalid {
            #expect(throws: JSONSyntaxError.self, "\(text.prefix(20))") { try JSONValue.parse(Array(text.utf8)) }
        }
    }

    @Test func repeatedKeyLookupReturnsLastValue() throws {
        let value = try JSONValue.parse(Array(#"{"a": 1, "b": 2, "a": 3}"#.utf8))
        #expect(value["a"] == .number(3))
        guard case let .object(members) = value else { return }
        #expect(members.map(\.key) == ["a", "b", "a"])
    }

    @Test func syntaxErrorGivesLineAndColumn() {
        #expect(throws: JSONSyntaxError(message: "expected ',' or '}' in an object", line: 2, column: 9)) {
            try JSONValue.parse(Array("{\"a\": 1,\n \"b\": 2 \"c\"}".utf8))
        }
    }

    @Test func quotedStringsParseBack() throws {
        for text in ["plain", "quote \" and \\ backslash", "lines\nand\ttabs\r", "control \u{01}\u{1F}", "unicode é 😀"] {
            let parsed = try JSONValue.parse(Array(JSONValue.quoted(text).utf8))
            #expect(parsed == .string(text))
        }
    }
}
