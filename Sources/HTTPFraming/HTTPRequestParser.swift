public import NIOCore
public import NIOHTTP1

/// Why a server refuses a head it parsed (it answers with an error, then closes the
/// connection: the framing of what follows is not known).
public enum HeadRefusal: Equatable, Sendable {
    /// More header fields or bytes than allowed: 431.
    case headersTooLarge
    /// HTTP/1.1 without exactly one Host: 400.
    case missingHost
    /// A transfer coding other than plain `chunked`: 501.
    case unsupportedTransferEncoding
}

/// What a server decides on from a head, found in the one pass that parses it.
public struct HeadFacts: Equatable, Sendable {
    public var contentLength: Int?
    /// Why the request is not served (answered, then the connection closes).
    public var refusal: HeadRefusal?
    /// The client waits for `100 Continue` before sending its body (HTTP/1.1 only).
    public var expectsContinue = false

    public init(contentLength: Int? = nil, refusal: HeadRefusal? = nil, expectsContinue: Bool = false) {
        self.contentLength = contentLength
        self.refusal = refusal
        self.expectsContinue = expectsContinue
    }
}

/// HTTP/1.1 request framing for the API (and the fuzz target that holds it to NIO's decoder),
/// without I/O: bytes go in, request parts come out. It replaces NIO's `HTTPRequestDecoder`, whose head is every header as a pair of `String`s
/// and three pipeline events of copies per request; this one keeps only the header fields
/// the API reads (Host, Content-Length, Transfer-Encoding, Expect, Connection,
/// Authorization, Content-Type, X-Real-IP, X-Forwarded-For, X-Request-ID) and checks and
/// counts the others where they lie.
///
/// Strict, as RFC 9112 lets a server be; anything else is an `HTTPParserError` (a 400, then
/// the connection closes):
/// - request line `METHOD SP target SP HTTP/1.1` (or `HTTP/1.0`) CRLF: an upper-case method
///   (checked from the first byte, so garbage fails at once), a target of visible ASCII;
///   empty lines before it are skipped;
/// - every line ends in CRLF (a bare LF is an error); field names are tokens, with the colon
///   right after them; values are visible ASCII, obs-text, spaces and tabs (no NUL or other
///   control); no obsolete line folding;
/// - Content-Length is 1–18 digits and appears once, never with Transfer-Encoding (either
///   would let a request hide in another's body);
/// - chunked bodies: 1–16 hex digits of size, extensions up to 256 bytes, CRLF after each
///   chunk, trailers like header lines (discarded).
///
/// A head over `maxHeaderFields` fields or `maxHeaderBytes` bytes of names and values (or
/// one that does not end within `maxHeadBytes`) is refused (431) rather than an error, like
/// an HTTP/1.1 head without exactly one Host (400) and a transfer coding other than one
/// plain `chunked`, or any in HTTP/1.0 (501). After a refused head, whose body's framing is not known, every
/// byte is ignored: the connection closes after its answer.
public struct HTTPRequestParser: Sendable {
    public struct Limits: Sendable {
        public var maxHeaderFields: Int
        public var maxHeaderBytes: Int

        public init(maxHeaderFields: Int, maxHeaderBytes: Int) {
            self.maxHeaderFields = maxHeaderFields
            self.maxHeaderBytes = maxHeaderBytes
        }

        /// The longest head (request line, field lines, line ends) waited for.
        public var maxHeadBytes: Int { maxHeaderBytes + 4 * maxHeaderFields + 8192 }
    }

    /// One part of a request, or a whole one.
    public enum Part {
        /// A whole request: its head, and its body when it has one, had arrived together (a
        /// vote, nearly always): one part instead of three.
        case request(HTTPRequestHead, HeadFacts, body: ByteBuffer?)
        /// The head of a request whose body comes in pieces (or of a refused one).
        case head(HTTPRequestHead, HeadFacts)
        case body(ByteBuffer)
        case end
    }

    private enum State {
        /// Waiting for a head; `scanned` bytes of it are checked already.
        case head(scanned: Int)
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(bytes: Int)
        /// The head is out; its (empty) request ends next.
        case end
        /// After a refused head: everything is ignored.
        case discarding
    }

    static let maxChunkLine = 256 + 18
    static let maxTrailerBytes = 8192

    public let limits: Limits
    private var state = State.head(scanned: 0)

    public init(limits: Limits) {
        self.limits = limits
    }

    /// The next part in `buffer`, consuming its bytes; `nil` when more bytes are needed.
    public mutating func next(_ buffer: inout ByteBuffer) throws(HTTPParserError) -> Part? {
        switch state {
        case .head(let scanned):
            return try head(&buffer, scanned: scanned)
        case .end:
            state = .head(scanned: 0)
            return .end
        case .fixedBody(let remaining):
            return bodyPiece(&buffer, remaining: remaining, then: .end, rest: State.fixedBody)
        case .chunkSize:
            guard let size = try chunkSize(&buffer) else { return nil }
            state = size == 0 ? .trailers(bytes: 0) : .chunkData(remaining: size)
            return try next(&buffer)
        case .chunkData(let remaining):
            return bodyPiece(&buffer, remaining: remaining, then: .chunkDataEnd, rest: State.chunkData)
        case .chunkDataEnd:
            guard buffer.readableBytes >= 2 else { return nil }
            guard buffer.readInteger(as: UInt16.self) == 0x0D0A else { throw .invalidChunkSize }
            state = .chunkSize
            return try next(&buffer)
        case .trailers(let bytes):
            return try trailers(&buffer, bytes: bytes)
        case .discarding:
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return nil
        }
    }

    /// Up to `remaining` bytes of body as they are there; the state is `then` once all are
    /// out, else `rest` of what is still to come.
    private mutating func bodyPiece(_ buffer: inout ByteBuffer, remaining: Int, then: State, rest: (Int) -> State) -> Part? {
        guard buffer.readableBytes > 0 else { return nil }
        let length = min(remaining, buffer.readableBytes)
        let chunk = buffer.readSlice(length: length)!
        state = remaining == length ? then : rest(remaining - length)
        return .body(chunk)
    }

    // MARK: The head

    private mutating func head(_ buffer: inout ByteBuffer, scanned: Int) throws(HTTPParserError) -> Part? {
        // Empty lines before a request line are skipped (RFC 9112 §2.2).
        while scanned == 0, buffer.readableBytes >= 2, buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == 0x0D0A {
            buffer.moveReaderIndex(forwardBy: 2)
        }
        // A lone CR may be the start of an empty line: wait for the byte after it.
        if scanned == 0, buffer.readableBytes == 1, buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == 0x0D { return nil }
        // Only the first maxHeadBytes (and the CRLF CRLF after them) are looked at, however
        // many have arrived: the outcome is the same whatever the reads looked like.
        let window = limits.maxHeadBytes + 4
        let found = try buffer.withUnsafeReadableBytes { bytes throws(HTTPParserError) -> (end: Int?, scanned: Int) in
            try Self.checkMethodPrefix(bytes)
            return try Self.findHeadEnd(UnsafeRawBufferPointer(rebasing: bytes.prefix(window)), from: scanned)
        }
        guard let end = found.end else {
            if buffer.readableBytes >= window {
                state = .discarding
                buffer.moveReaderIndex(to: buffer.writerIndex)
                let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "-")
                return .head(head, HeadFacts(refusal: .headersTooLarge))
            }
            state = .head(scanned: found.scanned)
            return nil
        }
        let parsed = try buffer.withUnsafeReadableBytes { bytes throws(HTTPParserError) in
            try Self.parseHead(UnsafeRawBufferPointer(rebasing: bytes[..<end]), limits: limits)
        }
        buffer.moveReaderIndex(forwardBy: end + 4)
        let facts = parsed.facts
        if facts.refusal != nil {
            state = .discarding
            buffer.moveReaderIndex(to: buffer.writerIndex)
        } else if parsed.chunked {
            state = .chunkSize
        } else if let length = facts.contentLength, length > 0 {
            if let body = buffer.readSlice(length: length) {
                state = .head(scanned: 0)
                return .request(parsed.head, facts, body: body)
            }
            state = .fixedBody(remaining: length)
        } else {
            state = .head(scanned: 0)
            return .request(parsed.head, facts, body: nil)
        }
        return .head(parsed.head, facts)
    }

    /// Fails at once when the bytes so far cannot begin a request line.
    private static func checkMethodPrefix(_ bytes: UnsafeRawBufferPointer) throws(HTTPParserError) {
        for (index, byte) in bytes.prefix(21).enumerated() {
            if byte == UInt8(ascii: " ") {
                if index == 0 { throw .invalidMethod }
                return
            }
            guard byte >= UInt8(ascii: "A"), byte <= UInt8(ascii: "Z") else { throw .invalidMethod }
        }
        if bytes.count > 20 { throw .invalidMethod }
    }

    /// The offset of the CRLF CRLF that ends the head, checking from `from` on that every LF
    /// follows a CR; else how far it checked.
    private static func findHeadEnd(_ bytes: UnsafeRawBufferPointer, from: Int) throws(HTTPParserError) -> (end: Int?, scanned: Int) {
        var index = max(from, 1)
        while index < bytes.count {
            if bytes[index] == 0x0A {
                guard bytes[index - 1] == 0x0D else { throw .lfExpected }
                if index >= 3, bytes[index - 2] == 0x0A, bytes[index - 3] == 0x0D { return (index - 3, index) }
            }
            index += 1
        }
        if bytes.first == 0x0A { throw .lfExpected }
        return (nil, max(from, bytes.count - 3, 0))
    }

    private struct ParsedHead {
        var head: HTTPRequestHead
        var facts: HeadFacts
        var chunked: Bool
    }

    /// Parses a head (without its final CRLF CRLF).
    private static func parseHead(_ bytes: UnsafeRawBufferPointer, limits: Limits) throws(HTTPParserError) -> ParsedHead {
        var lines = LineCursor(bytes: bytes)
        guard let requestLine = lines.next() else { throw .invalidMethod }
        let (method, uri, version) = try parseRequestLine(requestLine)

        // Collected first and handed to HTTPHeaders at once: its add(name:value:) checks every
        // name for non-ASCII bytes and grows its array one field at a time.
        var kept: [(String, String)] = []
        kept.reserveCapacity(KnownField.count)
        var fields = 0
        var fieldBytes = 0
        var hosts = 0
        var codings = 0
        var plainChunked = true
        var contentLength: Int?
        var expectsContinue = false
        while let line = lines.next() {
            let (nameRange, valueRange) = try parseFieldLine(line)
            fields += 1
            fieldBytes += nameRange.count + valueRange.count
            let name = UnsafeRawBufferPointer(rebasing: line[nameRange])
            let value = UnsafeRawBufferPointer(rebasing: line[valueRange])
            guard let known = KnownField(name) else { continue }
            switch known {
            case .host:
                hosts += 1
            case .contentLength:
                guard contentLength == nil, let length = Self.contentLength(value) else { throw .invalidContentLength }
                contentLength = length
            case .transferEncoding:
                codings += 1
                plainChunked = plainChunked && Self.equalsIgnoringCase(value, "chunked")
            case .expect:
                expectsContinue = Self.equalsIgnoringCase(value, "100-continue")
            case .connection, .authorization, .contentType, .xRealIP, .xForwardedFor, .xRequestID:
                break
            }
            if fields <= limits.maxHeaderFields, fieldBytes <= limits.maxHeaderBytes {
                kept.append((known.name, String(decoding: value, as: UTF8.self)))
            }
        }
        if codings > 0, contentLength != nil { throw .unexpectedContentLength }

        var facts = HeadFacts(contentLength: contentLength)
        if fields > limits.maxHeaderFields || fieldBytes > limits.maxHeaderBytes {
            facts.refusal = .headersTooLarge
        } else if version == .http1_1, hosts != 1 {
            facts.refusal = .missingHost
        } else if codings > 1 || (codings == 1 && !plainChunked) || (codings > 0 && version == .http1_0) {
            // One plain "chunked" only; in HTTP/1.0 a transfer coding means faulty framing
            // (RFC 9112 §6.1).
            facts.refusal = .unsupportedTransferEncoding
        }
        facts.expectsContinue = expectsContinue && version == .http1_1 && facts.refusal == nil
        let head = HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(kept))
        return ParsedHead(head: head, facts: facts, chunked: codings == 1 && facts.refusal == nil)
    }

    private static func parseRequestLine(_ line: UnsafeRawBufferPointer.SubSequence) throws(HTTPParserError) -> (HTTPMethod, String, HTTPVersion) {
        guard let firstSpace = line.firstIndex(of: UInt8(ascii: " ")) else { throw .invalidMethod }
        let methodBytes = line[..<firstSpace]
        guard !methodBytes.isEmpty, methodBytes.allSatisfy({ $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) else { throw .invalidMethod }
        let rest = line[(firstSpace + 1)...]
        guard let secondSpace = rest.firstIndex(of: UInt8(ascii: " ")) else { throw .invalidURL }
        let target = line[(firstSpace + 1)..<secondSpace]
        guard !target.isEmpty, target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw .invalidURL }
        let versionBytes = line[(secondSpace + 1)...]
        let version: HTTPVersion
        if versionBytes.elementsEqual("HTTP/1.1".utf8) {
            version = .http1_1
        } else if versionBytes.elementsEqual("HTTP/1.0".utf8) {
            version = .http1_0
        } else {
            throw .invalidVersion
        }
        let method = HTTPMethod(rawValue: String(decoding: UnsafeRawBufferPointer(rebasing: methodBytes), as: UTF8.self))
        return (method, String(decoding: UnsafeRawBufferPointer(rebasing: target), as: UTF8.self), version)
    }

    /// A field line's name and value (indices of `line`; the value without the spaces and
    /// tabs around it).
    private static func parseFieldLine(_ line: UnsafeRawBufferPointer.SubSequence) throws(HTTPParserError) -> (name: Range<Int>, value: Range<Int>) {
        let start = line.startIndex
        var index = start
        while index < line.endIndex, isTokenByte(line[index]) { index += 1 }
        // No name (a leading space is obsolete line folding), or no colon right after it.
        guard index > start, index < line.endIndex, line[index] == UInt8(ascii: ":") else { throw .invalidHeaderToken }
        let nameEnd = index
        index += 1
        while index < line.endIndex, line[index] == 0x20 || line[index] == 0x09 { index += 1 }
        let valueStart = index
        var valueEnd = index
        while index < line.endIndex {
            let byte = line[index]
            guard byte >= 0x20 || byte == 0x09, byte != 0x7F else { throw .invalidHeaderToken }
            index += 1
            if byte != 0x20, byte != 0x09 { valueEnd = index }
        }
        return (start..<nameEnd, valueStart..<valueEnd)
    }

    // MARK: Chunked bodies

    /// A chunk's size from its size line, consuming it; `nil` until the whole line is there.
    private func chunkSize(_ buffer: inout ByteBuffer) throws(HTTPParserError) -> Int? {
        let line = try buffer.withUnsafeReadableBytes { bytes throws(HTTPParserError) -> (size: Int, length: Int)? in
            let window = bytes.prefix(Self.maxChunkLine + 2)
            guard let lf = window.firstIndex(of: 0x0A) else {
                if window.count > Self.maxChunkLine + 1 { throw .invalidChunkSize }
                return nil
            }
            guard lf > 0, bytes[lf - 1] == 0x0D else { throw .lfExpected }
            var size = 0
            var digits = 0
            var index = 0
            while index < lf - 1, let digit = Self.hexValue(bytes[index]) {
                digits += 1
                guard digits <= 16 else { throw .invalidChunkSize }
                size = size << 4 | digit
                index += 1
            }
            guard digits > 0, size >= 0 else { throw .invalidChunkSize }
            // Only an extension may follow the size: ";name[=value]", visible ASCII and spaces.
            if index < lf - 1 {
                guard bytes[index] == UInt8(ascii: ";") else { throw .invalidChunkSize }
                guard bytes[index..<(lf - 1)].allSatisfy({ ($0 >= 0x20 && $0 < 0x7F) || $0 == 0x09 }) else { throw .invalidChunkSize }
            }
            return (size, lf + 1)
        }
        guard let line else { return nil }
        buffer.moveReaderIndex(forwardBy: line.length)
        return line.size
    }

    /// Trailer lines after the last chunk, up to the empty line that ends the request: checked
    /// like header lines, then dropped.
    private mutating func trailers(_ buffer: inout ByteBuffer, bytes seen: Int) throws(HTTPParserError) -> Part? {
        var seen = seen
        while true {
            let line = try buffer.withUnsafeReadableBytes { [seen] bytes throws(HTTPParserError) -> Int? in
                guard let lf = bytes.firstIndex(of: 0x0A) else { return nil }
                // The size first: the same error whether the line came in one read or many.
                guard seen + lf + 1 <= Self.maxTrailerBytes else { throw .headerOverflow }
                guard lf > 0, bytes[lf - 1] == 0x0D else { throw .lfExpected }
                if lf > 1 { _ = try Self.parseFieldLine(bytes[0..<(lf - 1)]) }
                return lf + 1
            }
            guard let length = line else {
                if seen + buffer.readableBytes > Self.maxTrailerBytes { throw .headerOverflow }
                state = .trailers(bytes: seen)
                return nil
            }
            buffer.moveReaderIndex(forwardBy: length)
            seen += length
            if length == 2 {
                state = .head(scanned: 0)
                return .end
            }
        }
    }

    // MARK: Bytes

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// tchar (RFC 9110 §5.6.2).
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    /// 1–18 decimal digits, nothing else.
    private static func contentLength(_ value: UnsafeRawBufferPointer) -> Int? {
        guard (1...18).contains(value.count) else { return nil }
        var length = 0
        for byte in value {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            length = length * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return length
    }

    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        return lowercase.withUTF8Buffer { expected in
            for index in 0..<bytes.count {
                let byte = bytes[index]
                // Only A-Z fold to a-z: no other byte may stand for a letter.
                if (byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte) != expected[index] { return false }
            }
            return true
        }
    }
}

/// The header fields the API reads (kept in the head); every other field is checked and
/// counted, then dropped.
private enum KnownField: CaseIterable {
    case host, contentLength, transferEncoding, expect, connection, authorization, contentType, xRealIP, xForwardedFor, xRequestID

    static let count = allCases.count

    /// The field's name as the API's headers carry it (names match in any case).
    var name: String {
        switch self {
        case .host: "Host"
        case .contentLength: "Content-Length"
        case .transferEncoding: "Transfer-Encoding"
        case .expect: "Expect"
        case .connection: "Connection"
        case .authorization: "Authorization"
        case .contentType: "Content-Type"
        case .xRealIP: "X-Real-IP"
        case .xForwardedFor: "X-Forwarded-For"
        case .xRequestID: "X-Request-ID"
        }
    }

    init?(_ name: UnsafeRawBufferPointer) {
        let eq = HTTPRequestParser.equalsIgnoringCase
        switch name.count {
        case 4 where eq(name, "host"): self = .host
        case 6 where eq(name, "expect"): self = .expect
        case 9 where eq(name, "x-real-ip"): self = .xRealIP
        case 10 where eq(name, "connection"): self = .connection
        case 12 where eq(name, "content-type"): self = .contentType
        case 12 where eq(name, "x-request-id"): self = .xRequestID
        case 13 where eq(name, "authorization"): self = .authorization
        case 14 where eq(name, "content-length"): self = .contentLength
        case 15 where eq(name, "x-forwarded-for"): self = .xForwardedFor
        case 17 where eq(name, "transfer-encoding"): self = .transferEncoding
        default: return nil
        }
    }
}

/// The lines of a head, split at CRLF (the head's bytes end before its final CRLF CRLF).
private struct LineCursor {
    let bytes: UnsafeRawBufferPointer
    var position = 0

    init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    mutating func next() -> UnsafeRawBufferPointer.SubSequence? {
        guard position < bytes.count else { return nil }
        var index = position
        while index + 1 < bytes.count, !(bytes[index] == 0x0D && bytes[index + 1] == 0x0A) { index += 1 }
        let end = index + 1 < bytes.count ? index : bytes.count
        let line = bytes[position..<end]
        position = end + 2
        return line
    }
}
