import Testing
import VoteShared

@Suite("Flat JSON parser")
struct FlatJSONTests {
    @Test func parsesFlatObjects() throws {
        let fields = try FlatJSON.parseObject(Array(#" {"participant": "aline", "voteId": null, "n": 12, "ok": true, "s": "a\"b\u00e9\ud83d\ude00"} "#.utf8))
        #expect(fields["participant"] == .string("aline"))
        #expect(fields["voteId"] == .null)
        #expect(fields["n"] == .number(12, text: "12"))
        #expect(fields["ok"] == .bool(true))
        #expect(fields["s"] == .string("a\"bé😀"))
        #expect(try FlatJSON.parseObject(Array("{}".utf8)).isEmpty)
    }

    @Test(arguments: ["", "[]", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":{}}", "{\"a\":[1]}", "{\"a\":1}x", "{\"a\":\"\u{01}\"}", "{\"a\":tru}", "{\"a\":1,\"a\":2}", "{\"a\":\"\\ud800\"}", "null", "{'a':1}"])
    func rejectsMalformedInput(_ text: String) {
        #expect(throws: FlatJSON.ParseError.self) { try FlatJSON.parseObject(Array(text.utf8)) }
    }

    @Test func escapesAfterPlainTextAndNonContiguousInputParseAlike() throws {
        let text = #"{"a":"plain then \"quoted\" and \u00e9","b":"","c":"no escapes"}"#
        let fields = try FlatJSON.parseObject(Array(text.utf8))
        #expect(fields["a"] == .string("plain then \"quoted\" and é"))
        #expect(fields["b"] == .string(""))
        #expect(fields["c"] == .string("no escapes"))
        #expect(fields.fields.map(\.key) == ["a", "b", "c"])
        // A collection without contiguous storage takes the copying path to the same result.
        #expect(try FlatJSON.parseObject(text.utf8.lazy.map { $0 }) == fields)
    }

    @Test func boundsTheNumberOfFields() throws {
        func body(_ count: Int) -> [UInt8] {
            Array(("{" + (0..<count).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + "}").utf8)
        }
        #expect(try FlatJSON.parseObject(body(FlatJSON.maximumFields)).count == FlatJSON.maximumFields)
        let error = #expect(throws: FlatJSON.ParseError.self) { try FlatJSON.parseObject(body(FlatJSON.maximumFields + 1)) }
        #expect(error?.description == "more than \(FlatJSON.maximumFields) fields")
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: FlatJSON.ParseError.self) { try FlatJSON.parseObject([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]) }
    }

    @Test(arguments: ["01", "-01", "+1", ".5", "1.", "1e", "1e+", "--1", "0x10", "1.5.2", "00"])
    func numbersFollowTheJSONGrammar(_ number: String) {
        #expect(throws: FlatJSON.ParseError.self) { try FlatJSON.parseObject(Array(#"{"n":\#(number)}"#.utf8)) }
    }

    @Test(arguments: ["0", "-0", "10", "1.5", "-1.25e-3", "2E10", "0.0"])
    func validNumbersParse(_ number: String) throws {
        let object = try FlatJSON.parseObject(Array(#"{"n":\#(number)}"#.utf8))
        guard case .number(_, let text)? = object["n"] else {
            Issue.record("\(number) did not parse as a number")
            return
        }
        #expect(text == number)
    }
}
