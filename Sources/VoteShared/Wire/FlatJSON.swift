/// A strict parser for flat JSON objects (string, number, boolean and null values),
/// which is all the API accepts, without Foundation on the hot path.
public enum FlatJSON {
    public enum Value: Sendable, Equatable {
        case string(String)
        case number(Double, text: String)
        case bool(Bool)
        case null
    }

    /// Why a body is not a flat JSON object; the text goes into the 400 answer.
    public struct ParseError: Error, CustomStringConvertible, Sendable, Equatable {
        public var description: String
    }

    /// A parsed object: its fields in the order they came. Bodies the API accepts have a
    /// handful of fields, so lookups scan them (no hashing, one allocation).
    public struct Object: Sendable, Equatable {
        public struct Field: Sendable, Equatable {
            public var key: String
            public var value: Value
        }

        public private(set) var fields: [Field] = []

        /// The value of `key`, if the object has it.
        public subscript(key: String) -> Value? {
            for field in fields where field.key == key { return field.value }
            return nil
        }

        public var isEmpty: Bool { fields.isEmpty }
        public var count: Int { fields.count }

        mutating func append(_ key: String, _ value: Value) { fields.append(Field(key: key, value: value)) }
    }

    /// Fields one object may have: a request body needs a few; a bound keeps the duplicate
    /// check (a scan per field) cheap whatever the body.
    public static let maximumFields = 32

    /// Parses a whole body as one flat object; nested objects or arrays are refused.
    public static func parseObject(_ bytes: some Collection<UInt8>) throws(ParseError) -> Object {
        let parsed = bytes.withContiguousStorageIfAvailable { buffer in
            var parser = Parser(bytes: buffer)
            return parser.parse()
        }
        if let parsed { return try parsed.get() }
        return try Array(bytes).withUnsafeBufferPointer { buffer in
            var parser = Parser(bytes: buffer)
            return parser.parse()
        }.get()
    }

    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        mutating func parse() -> Result<Object, ParseError> {
            do throws(ParseError) {
                return .success(try object())
            } catch {
                return .failure(error)
            }
        }

        mutating func object() throws(ParseError) -> Object {
            skipSpace()
            try expect(UInt8(ascii: "{"), "a JSON object")
            var result = Object()
            skipSpace()
            if peek() == UInt8(ascii: "}") {
                index += 1
            } else {
                while true {
                    skipSpace()
                    let key = try string()
                    skipSpace()
                    try expect(UInt8(ascii: ":"), "':' after a key")
                    skipSpace()
                    guard result[key] == nil else { throw ParseError(description: "duplicate key \"\(key)\"") }
                    guard result.count < maximumFields else { throw ParseError(description: "more than \(maximumFields) fields") }
                    result.append(key, try value())
                    skipSpace()
                    if peek() == UInt8(ascii: ",") { index += 1; continue }
                    try expect(UInt8(ascii: "}"), "',' or '}'")
                    break
                }
            }
            skipSpace()
            guard index == bytes.count else { throw ParseError(description: "unexpected data after the object") }
            return result
        }

        mutating func value() throws(ParseError) -> Value {
            guard let byte = peek() else { throw ParseError(description: "unexpected end of input") }
            switch byte {
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
            case UInt8(ascii: "{"), UInt8(ascii: "["): throw ParseError(description: "nested objects and arrays are not accepted")
            default: throw ParseError(description: "unexpected character at byte \(index)")
            }
        }

        mutating func string() throws(ParseError) -> String {
            try expect(UInt8(ascii: "\""), "a string")
            // Most strings have no escape: validate them in place, without a copy.
            let start = index
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\"), bytes[end] >= 0x20 { end += 1 }
            if end < bytes.count, bytes[end] == UInt8(ascii: "\"") {
                guard let text = String(validating: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self) else {
                    throw ParseError(description: "string is not valid UTF-8")
                }
                index = end + 1
                return text
            }
            var out = Array(bytes[start..<end])
            index = end
            while true {
                guard let byte = peek() else { throw ParseError(description: "unterminated string") }
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    guard let text = String(validating: out, as: UTF8.self) else { throw ParseError(description: "string is not valid UTF-8") }
                    return text
                case UInt8(ascii: "\\"):
                    guard let escaped = peek() else { throw ParseError(description: "unterminated escape") }
                    index += 1
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escaped)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "u"):
                        var scalar = try hex4()
                        if (0xD800...0xDBFF).contains(scalar) {
                            guard peek() == UInt8(ascii: "\\") else { throw ParseError(description: "lone surrogate") }
                            index += 1
                            try expect(UInt8(ascii: "u"), "a low surrogate")
                            let low = try hex4()
                            guard (0xDC00...0xDFFF).contains(low) else { throw ParseError(description: "bad surrogate pair") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { throw ParseError(description: "bad \\u escape") }
                        out.append(contentsOf: String(Character(unicode)).utf8)
                    default: throw ParseError(description: "bad escape")
                    }
                case 0..<0x20:
                    throw ParseError(description: "control character in string")
                default:
                    out.append(byte)
                }
            }
        }

        mutating func hex4() throws(ParseError) -> UInt32 {
            guard index + 4 <= bytes.count else { throw ParseError(description: "short \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                index += 1
                let digit: UInt32
                switch byte {
                case 48...57: digit = UInt32(byte - 48)
                case 97...102: digit = UInt32(byte - 87)
                case 65...70: digit = UInt32(byte - 55)
                default: throw ParseError(description: "bad \\u escape")
                }
                value = value << 4 | digit
            }
            return value
        }

        mutating func number() throws(ParseError) -> Value {
            let start = index
            while let byte = peek(), byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".")
                || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") || (48...57).contains(byte) {
                index += 1
            }
            let text = String(decoding: bytes[start..<index], as: UTF8.self)
            guard Self.isJSONNumber(bytes[start..<index]), let number = Double(text), number.isFinite else {
                throw ParseError(description: "bad number \(text)")
            }
            return .number(number, text: text)
        }

        /// RFC 8259's grammar, `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`:
        /// no leading zeros, no `+`, no bare `.` (which `Double(_:)` would accept).
        static func isJSONNumber<Text: Collection<UInt8>>(_ text: Text) -> Bool where Text.SubSequence == Text {
            var rest = text
            func digits() -> Int {
                let count = rest.prefix { (48...57).contains($0) }.count
                rest = rest.dropFirst(count)
                return count
            }
            if rest.first == UInt8(ascii: "-") { rest = rest.dropFirst() }
            if rest.first == UInt8(ascii: "0") {
                rest = rest.dropFirst()
            } else if digits() == 0 {
                return false
            }
            if rest.first == UInt8(ascii: ".") {
                rest = rest.dropFirst()
                guard digits() > 0 else { return false }
            }
            if rest.first == UInt8(ascii: "e") || rest.first == UInt8(ascii: "E") {
                rest = rest.dropFirst()
                if rest.first == UInt8(ascii: "+") || rest.first == UInt8(ascii: "-") { rest = rest.dropFirst() }
                guard digits() > 0 else { return false }
            }
            return rest.isEmpty
        }

        mutating func literal(_ word: String) throws(ParseError) {
            for byte in word.utf8 { try expect(byte, word) }
        }

        mutating func expect(_ byte: UInt8, _ what: String) throws(ParseError) {
            guard peek() == byte else {
                throw ParseError(description: index < bytes.count ? "expected \(what) at byte \(index)" : "unexpected end of input, expected \(what)")
            }
            index += 1
        }

        func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipSpace() {
            while let byte = peek(), byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { index += 1 }
        }
    }
}
