import HTTPFraming
import NIOCore
import NIOHTTP1
import Testing
@testable import VoteAPI

/// What the parser made of some bytes: the parts, or the error it stopped at.
private struct Parsed {
    var parts: [Part] = []
    var error: HTTPParserError?
    /// Requests that came out as one part (head and body had arrived together).
    var whole = 0

    enum Part: Equatable {
        case head(method: HTTPMethod, uri: String, version: HTTPVersion, headers: [String], facts: HeadFacts)
        case body(String)
        case end
    }

    var heads: [HeadFacts] {
        parts.compactMap { if case .head(_, _, _, _, let facts) = $0 { facts } else { nil } }
    }

    /// The bodies of the requests, each the concatenation of its pieces.
    var bodies: [String] {
        var bodies: [String] = []
        var current: String?
        for part in parts {
            switch part {
            case .head: current = ""
            case .body(let piece): current? += piece
            case .end: bodies.append(current ?? ""); current = nil
            }
        }
        return bodies
    }
}

/// Feeds `input` to a parser `step` bytes at a time, as APIHandler does (unread bytes stay
/// in the buffer, new ones are appended).
private func parse(_ input: String, step: Int = .max, maxHeaderFields: Int = 64, maxHeaderBytes: Int = 8192) -> Parsed {
    parse(Array(input.utf8), step: step, maxHeaderFields: maxHeaderFields, maxHeaderBytes: maxHeaderBytes)
}

private func parse(_ input: [UInt8], step: Int = .max, maxHeaderFields: Int = 64, maxHeaderBytes: Int = 8192) -> Parsed {
    var parser = HTTPRequestParser(limits: .init(maxHeaderFields: maxHeaderFields, maxHeaderBytes: maxHeaderBytes))
    var buffer = ByteBuffer()
    var result = Parsed()
    var offset = 0
    while offset < input.count {
        let end = min(input.count, offset + step)
        buffer.writeBytes(input[offset..<end])
        offset = end
        do {
            while let part = try parser.next(&buffer) {
                switch part {
                case .request(let head, let facts, let body):
                    result.parts.append(.head(method: head.method, uri: head.uri, version: head.version, headers: head.headers.map { "\($0.name): \($0.value)" }, facts: facts))
                    if let body { result.parts.append(.body(String(buffer: body))) }
                    result.parts.append(.end)
                    result.whole += 1
                case .head(let head, let facts):
                    result.parts.append(.head(method: head.method, uri: head.uri, version: head.version, headers: head.headers.map { "\($0.name): \($0.value)" }, facts: facts))
                case .body(let chunk):
                    result.parts.append(.body(String(buffer: chunk)))
                case .end:
                    result.parts.append(.end)
                }
            }
        } catch {
            result.error = error
            return result
        }
    }
    return result
}

@Suite("HTTP request parser")
struct HTTPRequestParserTests {
    static let vote = "POST /api/v1/votes HTTP/1.1\r\nHost: h\r\nUser-Agent: x/1\r\nContent-Type: application/json\r\nAuthorization: Bearer abc\r\nContent-Length: 23\r\n\r\n{\"participant\":\"aline\"}"

    @Test(arguments: [1, 2, 3, 7, 1000])
    func aVoteParsesTheSameWhateverTheReadsLookLike(step: Int) {
        let parsed = parse(Self.vote, step: step)
        #expect(parsed.error == nil)
        guard case .head(let method, let uri, let version, let headers, let facts)? = parsed.parts.first else {
            Issue.record("no head: \(parsed.parts)")
            return
        }
        #expect(method == .POST)
        #expect(uri == "/api/v1/votes")
        #expect(version == .http1_1)
        // The fields the API reads are kept, in order; the others are checked and dropped.
        #expect(headers == ["Host: h", "Content-Type: application/json", "Authorization: Bearer abc", "Content-Length: 23"])
        #expect(facts == HeadFacts(contentLength: 23, refusal: nil, expectsContinue: false))
        #expect(parsed.bodies == [#"{"participant":"aline"}"#])
        #expect(parsed.parts.last == .end)
    }

    @Test func aRequestThatArrivedWholeIsOnePart() {
        #expect(parse(Self.vote).whole == 1)
        #expect(parse(Self.vote, step: 1).whole == 0, "byte by byte: head, body pieces, end")
        #expect(parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n", step: 1).whole == 1, "no body: whole once the head is there")
    }

    @Test func pipelinedRequestsComeOutInOrder() {
        let input = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n" + Self.vote + "GET /b?x=1 HTTP/1.0\r\n\r\n"
        for step in [1, 5, .max] {
            let parsed = parse(input, step: step)
            #expect(parsed.error == nil)
            let uris = parsed.parts.compactMap { if case .head(_, let uri, _, _, _) = $0 { uri } else { nil } }
            #expect(uris == ["/a", "/api/v1/votes", "/b?x=1"])
            #expect(parsed.bodies == ["", #"{"participant":"aline"}"#, ""])
        }
    }

    @Test(arguments: [1, 4, 1000])
    func chunkedBodiesWithExtensionsAndTrailers(step: Int) {
        let input = "POST /api/v1/votes HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n"
            + "5;ext=1\r\n{\"par\r\n12\r\nticipant\":\"aline\"}\r\n0\r\nX-Trailer: y\r\n\r\n" + "GET /next HTTP/1.1\r\nHost: h\r\n\r\n"
        let parsed = parse(input, step: step)
        #expect(parsed.error == nil)
        #expect(parsed.bodies == [#"{"participant":"aline"}"#, ""])
        #expect(parsed.heads.first == HeadFacts(contentLength: nil, refusal: nil, expectsContinue: false))
    }

    @Test func emptyLinesBeforeARequestAreSkipped() {
        let parsed = parse("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(parsed.error == nil)
        #expect(parsed.heads.count == 1)
    }

    @Test func expectContinueIsNotedForHTTP11Only() {
        #expect(parse("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx").heads.first?.expectsContinue == true)
        #expect(parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx").heads.first?.expectsContinue == false)
        #expect(parse("POST / HTTP/1.1\r\nHost: h\r\nExpect: later\r\nContent-Length: 1\r\n\r\nx").heads.first?.expectsContinue == false)
    }

    /// Input that is not HTTP/1.1 as RFC 9112 spells it: an error (400), never a guess.
    @Test(arguments: [
        ("get / HTTP/1.1\r\nHost: h\r\n\r\n", HTTPParserError.invalidMethod),
        ("\u{16}\u{03}\u{01}", .invalidMethod),  // TLS: refused at the first byte
        (" GET / HTTP/1.1\r\n\r\n", .invalidMethod),
        ("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", .invalidURL),
        ("GET / HTTP/1.2\r\nHost: h\r\n\r\n", .invalidVersion),
        ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", .invalidVersion),
        ("GET / HTTP/1.1\nHost: h\n\n", .lfExpected),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-Space : v\r\n\r\n", .invalidHeaderToken),
        ("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", .invalidHeaderToken),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-Fold: a\r\n  b\r\n\r\n", .invalidHeaderToken),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-Nul: a\u{0}b\r\n\r\n", .invalidHeaderToken),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-CR: a\rb\r\n\r\n", .invalidHeaderToken),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", .invalidContentLength),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2, 40\r\n\r\n{}", .invalidContentLength),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +2\r\n\r\n{}", .invalidContentLength),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x2\r\n\r\n{}", .invalidContentLength),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000000000000000\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", .unexpectedContentLength),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", .unexpectedContentLength),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", .invalidChunkSize),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", .invalidChunkSize),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n", .invalidChunkSize),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\n{}\r\n0\r\n\r\n", .invalidChunkSize),
    ])
    func malformedInputIsAnError(input: String, error: HTTPParserError) {
        for step in [1, .max] {
            let parsed = parse(input, step: step)
            #expect(parsed.error == error, "\(input.debugDescription) fed \(step) at a time: \(parsed.parts)")
            #expect(parsed.parts.isEmpty || parsed.heads.count == 1)
        }
    }

    @Test func randomBytesFailAtOnce() {
        let parsed = parse(Array(0...255) + Array("\r\n\r\n".utf8), step: 1)
        #expect(parsed.error == .invalidMethod)
        #expect(parsed.parts.isEmpty)
    }

    /// Heads the API answers with an error of its own and then closes: the rest of the
    /// connection's bytes are never parsed (their framing is not known).
    @Test func refusedHeadsEndTheConnectionsInput() {
        let hidden = "GET /hidden HTTP/1.1\r\nHost: h\r\n\r\n"
        let cases: [(String, HTTPConnectionStateMachine.HeadRefusal)] = [
            ("GET / HTTP/1.1\r\n\r\n", .missingHost),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", .missingHost),
            ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", .unsupportedTransferEncoding),
            ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n", .unsupportedTransferEncoding),
            ("GET / HTTP/1.1\r\nHost: h\r\n" + (0..<65).map { "X-H\($0): v\r\n" }.joined() + "\r\n", .headersTooLarge),
            ("GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + String(repeating: "a", count: 8200) + "\r\n\r\n", .headersTooLarge),
            // RFC 9112 §6.1: a transfer coding in HTTP/1.0 is faulty framing.
            ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", .unsupportedTransferEncoding),
        ]
        for (input, refusal) in cases {
            let parsed = parse(input + hidden, step: 3)
            #expect(parsed.error == nil)
            #expect(parsed.heads.map(\.refusal) == [refusal], "\(input.prefix(60).debugDescription)")
            #expect(parsed.parts.count == 1, "nothing after a refused head")
        }
        // 64 fields and 8,192 bytes of names and values are still served.
        let atLimit = "GET / HTTP/1.1\r\nHost: h\r\n" + (0..<63).map { "X-H\($0): v\r\n" }.joined() + "\r\n"
        #expect(parse(atLimit).heads.map(\.refusal) == [nil])
    }

    @Test func aHeadThatNeverEndsIsRefusedWithoutBeingBuffered() {
        var input = Array("GET / HTTP/1.1\r\nHost: h\r\nX-Endless: ".utf8)
        input += [UInt8](repeating: UInt8(ascii: "a"), count: 100_000)
        let parsed = parse(input, step: 4096)
        #expect(parsed.error == nil)
        #expect(parsed.heads.map(\.refusal) == [.headersTooLarge])
    }

    @Test func http10NeedsNoHostAndKeepsConnectionForKeepAlive() throws {
        var parser = HTTPRequestParser(limits: .init(maxHeaderFields: 64, maxHeaderBytes: 8192))
        var buffer = ByteBuffer(string: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n")
        guard case .request(let first, let facts, nil)? = try parser.next(&buffer) else { Issue.record("no request"); return }
        #expect(facts.refusal == nil)
        #expect(first.isKeepAlive)
        guard case .request(let second, _, nil)? = try parser.next(&buffer) else { Issue.record("no second request"); return }
        #expect(!second.isKeepAlive)
        #expect(try parser.next(&buffer) == nil)
    }
}
