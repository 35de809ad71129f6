import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import VoteAPI

/// The HTTP layer on an `EmbeddedChannel`: raw bytes in, raw bytes out.
@Suite("HTTP framing")
struct APIHandlerTests {
    func channel() throws -> (EmbeddedChannel, TestApplication) {
        let app = try TestApplication(environment: ["PAREDAO_MAX_BODY_BYTES": "64"])
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addAPIHandlers(application: app.application)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000)).wait()
        return (channel, app)
    }

    func output(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            text += buffer.readString(length: buffer.readableBytes) ?? ""
        }
        return text
    }

    /// `text` with every server-made request id blanked (they differ between connections).
    func withoutRequestIDs(_ text: String) -> String {
        text.replacingOccurrences(of: #"X-Request-ID: [0-9a-f]+"#, with: "X-Request-ID: -", options: .regularExpression)
    }

    @Test func serverMadeRequestIDsAreLowerCaseHexadecimalAsStringRadix16Writes() {
        var values: [UInt64] = [0, 1, 9, 10, 15, 16, 255, 256, 0xABCDEF, UInt64.max >> 8, UInt64.max - 1, UInt64.max]
        var generator = SystemRandomNumberGenerator()
        values += (0..<200).map { _ in UInt64.random(in: 0...UInt64.max, using: &generator) >> UInt64.random(in: 0...63, using: &generator) }
        for value in values {
            #expect(APIHandler.hexadecimal(value) == String(value, radix: 16), "\(value)")
        }
        let first = APIHandler.requestID(from: HTTPHeaders())
        let second = APIHandler.requestID(from: HTTPHeaders())
        #expect(first != second)
        #expect(first.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) })
        // A sane id the caller sent is echoed; anything else is replaced.
        #expect(APIHandler.requestID(from: HTTPHeaders([("X-Request-ID", "abc-123")])) == "abc-123")
        #expect(APIHandler.requestID(from: HTTPHeaders([("X-Request-ID", "a b")])) != "a b")
    }

    @Test func onlyAConnectionOnTheProxySocketIsBelievedAboutTheClient() throws {
        let app = try TestApplication(environment: ["PAREDAO_NETWORK_SESSION_BURST": "1", "PAREDAO_NETWORK_SESSION_RATE": "0.01"])
        func challenges(onProxySocket: Bool) throws -> [String] {
            let channel = EmbeddedChannel()
            if onProxySocket { channel.localAddress = try SocketAddress(unixDomainSocketPath: "/tmp/paredao-test.sock") }
            try channel.pipeline.syncOperations.addAPIHandlers(application: app.application)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000)).wait()
            return try ["198.51.100.1", "198.51.101.1"].map { address in
                try channel.writeInbound(ByteBuffer(string: "POST /api/v1/challenges HTTP/1.1\r\nHost: x\r\nX-Real-IP: \(address)\r\nContent-Length: 0\r\n\r\n"))
                return String(try output(channel).prefix(12))
            }
        }
        // Over TCP (loopback) the header is ignored: both count against 127.0.0.0/24, the second is 429.
        #expect(try challenges(onProxySocket: false) == ["HTTP/1.1 201", "HTTP/1.1 429"])
        // On the socket each is its own network.
        #expect(try challenges(onProxySocket: true) == ["HTTP/1.1 201", "HTTP/1.1 201"])
    }

    @Test func madeUpMethodsAndPathsDoNotMintMetricSeries() throws {
        let (channel, app) = try channel()
        // 1,000 made-up methods on a real route and 1,000 made-up paths, as one client would.
        let letters = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        for index in 0..<1000 {
            let method = "Q" + String(letters[index / 26 % 26]) + String(letters[index % 26]) + String(letters[index / 676])
            try channel.writeInbound(ByteBuffer(string: "\(method) /api/v1/poll HTTP/1.1\r\nHost: x\r\n\r\n"))
            try channel.writeInbound(ByteBuffer(string: "GET /made-up/\(index) HTTP/1.1\r\nHost: x\r\n\r\n"))
            let text = try output(channel)
            #expect(text.hasPrefix("HTTP/1.1 405") && text.contains("HTTP/1.1 404"), "\(method): \(text.prefix(40))")
        }
        let series = app.application.metrics.requestSeriesCount
        // poll × {other} × 405 and unmatched × {other} × 404: two counters, two timers.
        #expect(series.counters == 2 && series.timers == 2, "\(series)")
        #expect(series.counters <= APIMetrics.maxRequestSeries)
    }

    @Test func aBodyOverTheLimitIs413AndTheConnectionCloses() throws {
        let (channel, _) = try channel()
        let body = String(repeating: "x", count: 65)
        try channel.writeInbound(ByteBuffer(string: "POST /api/v1/votes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n\(body)"))
        let text = try output(channel)
        #expect(text.hasPrefix("HTTP/1.1 413"))
        #expect(text.contains(#""code":"body_too_large""#))
        #expect(!channel.isActive)
    }

    @Test func anAdminRouteTakesAPollSizedBodyAndNoMore() throws {
        let (channel, _) = try channel()
        // Over the 64-byte limit of the public routes, under the admin routes' 8 KiB: read
        // and answered by the admin API (401 without a credential), not 413.
        let poll = String(repeating: "p", count: 2000)
        try channel.writeInbound(ByteBuffer(string: "POST /api/v1/admin/polls HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(poll.count)\r\n\r\n\(poll)"))
        var text = try output(channel)
        #expect(text.hasPrefix("HTTP/1.1 401"), "\(text.prefix(60))")
        #expect(channel.isActive)
        // A chunked one is held to the same limit.
        let chunk = String(repeating: "q", count: 4096)
        try channel.writeInbound(ByteBuffer(string: "PUT /api/v1/admin/polls/p1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n\(chunk)\r\n1000\r\n\(chunk)\r\n1\r\nq\r\n0\r\n\r\n"))
        text = try output(channel)
        #expect(text.hasPrefix("HTTP/1.1 413"), "\(text.prefix(60))")
        #expect(text.contains("8192"))
        #expect(!channel.isActive)
    }

    @Test func aChunkedBodyOverTheLimitIs413() throws {
        let (channel, _) = try channel()
        let chunk = String(repeating: "y", count: 40)
        try channel.writeInbound(ByteBuffer(string: "POST /api/v1/votes HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n28\r\n\(chunk)\r\n28\r\n\(chunk)\r\n0\r\n\r\n"))
        #expect(try output(channel).hasPrefix("HTTP/1.1 413"))
    }

    @Test func garbageIsAnswered400AndClosed() throws {
        let (channel, _) = try channel()
        _ = try? channel.writeInbound(ByteBuffer(string: "\u{01}\u{02}NOT HTTP AT ALL\r\n\r\n"))
        let text = try output(channel)
        #expect(text.hasPrefix("HTTP/1.1 400"))
        #expect(text.contains(#""code":"invalid_request""#))
        #expect(!channel.isActive)
    }

    @Test func requestsSplitAcrossReadsAnywhereAreAnsweredAsWhole() throws {
        let requests = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nPOST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        let (whole, _) = try channel()
        try whole.writeInbound(ByteBuffer(string: requests))
        let expected = try withoutRequestIDs(output(whole))
        #expect(expected.components(separatedBy: "HTTP/1.1 ").count == 4)
        // One byte per read, then three bytes per read: every split point of a head, a body
        // and the boundary between two requests.
        for step in [1, 3] {
            let (split, _) = try channel()
            let bytes = Array(requests.utf8)
            for start in stride(from: 0, to: bytes.count, by: step) {
                try split.writeInbound(ByteBuffer(bytes: bytes[start..<min(start + step, bytes.count)]))
            }
            let text = try withoutRequestIDs(output(split))
            #expect(text == expected, "\(step) byte(s) per read")
            #expect(split.isActive)
        }
    }

    @Test func nothingAfterBytesThatAreNotHTTPIsAnswered() throws {
        let (channel, _) = try channel()
        _ = try? channel.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /\u{01} HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
        _ = try? channel.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
        let text = try output(channel)
        #expect(text.hasPrefix("HTTP/1.1 200"))
        #expect(text.components(separatedBy: "HTTP/1.1 ").count == 3, "one 200, one 400, nothing for what followed: \(text)")
        #expect(text.contains("HTTP/1.1 400"))
        #expect(!channel.isActive)
    }

    @Test func keepAliveServesPipelinedRequestsInOrder() throws {
        let (channel, _) = try channel()
        try channel.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n"))
        let text = try output(channel)
        let first = try #require(text.range(of: "HTTP/1.1 200"))
        let second = try #require(text.range(of: "HTTP/1.1 404"))
        #expect(first.lowerBound < second.lowerBound)
        #expect(channel.isActive)
        #expect(text.contains("X-Request-ID:"))
    }

    @Test func aPipelinedRequestWaitsForTheDeferredAnswerBeforeIt() async throws {
        // The first read of the totals goes to the store on another thread, which completes
        // it on the channel's loop: a thread-safe testing loop, not the embedded one.
        let app = try TestApplication()
        let channel = NIOAsyncTestingChannel()
        try await channel.testingEventLoop.executeInContext {
            try channel.pipeline.syncOperations.addAPIHandlers(application: app.application)
        }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000)).get()
        // /healthz could be answered at once but must come second.
        try await channel.writeInbound(ByteBuffer(string: "GET /api/v1/totals HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
        var text = ""
        for _ in 0..<500 where text.components(separatedBy: "HTTP/1.1 ").count < 3 {
            await channel.testingEventLoop.run()
            while var buffer = try await channel.readOutbound(as: ByteBuffer.self) {
                text += buffer.readString(length: buffer.readableBytes) ?? ""
            }
            if text.components(separatedBy: "HTTP/1.1 ").count < 3 { try await Task.sleep(for: .milliseconds(10)) }
        }
        let totals = try #require(text.range(of: #""participants""#))
        let health = try #require(text.range(of: #"{"status":"ok"}"#))
        #expect(totals.lowerBound < health.lowerBound)
        #expect(channel.isActive)
    }

    /// A vote's request on the wire, for `app`'s scripted publisher.
    func voteRequest(_ app: TestApplication, participant: String) -> String {
        let body = #"{"participant":"\#(participant)"}"#
        return "POST /api/v1/votes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(app.token())\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    @Test func votesAreAnsweredWhenThePublisherSettlesThemInOrderAndWhatWaitedFollows() throws {
        let app = try TestApplication(publisher: ScriptedPublisher(outcome: .success(()), holding: true))
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addAPIHandlers(application: app.application)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000)).wait()
        try channel.writeInbound(ByteBuffer(string: voteRequest(app, participant: "aline") + voteRequest(app, participant: "camila") + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
        channel.embeddedEventLoop.run()
        #expect(try output(channel).isEmpty, "nothing is answered before the broker's confirm")
        #expect(app.publisher.published.map(\.participantID) == ["aline"], "the second vote waits for the first one's answer")

        app.publisher.release()
        channel.embeddedEventLoop.run()
        #expect(app.publisher.published.map(\.participantID) == ["aline", "camila"])
        app.publisher.release()
        channel.embeddedEventLoop.run()
        let text = try output(channel)
        let answers = text.components(separatedBy: "HTTP/1.1 ").dropFirst()
        #expect(answers.map { $0.prefix(3) } == ["202", "202", "200"])
        let first = try #require(text.range(of: #""participant":"aline""#))
        let second = try #require(text.range(of: #""participant":"camila""#))
        #expect(first.lowerBound < second.lowerBound)
        // Each 202's Content-Length is its body's length.
        for answer in answers.prefix(2) {
            let parts = answer.components(separatedBy: "\r\n\r\n")
            let length = try #require(parts[0].components(separatedBy: "\r\n").first { $0.hasPrefix("Content-Length: ") }.flatMap { Int($0.dropFirst(16)) })
            #expect(parts[1].utf8.count == length)
        }
        #expect(channel.isActive)
    }

    @Test func aVoteThePublisherRefusesAtOnceIs503InTheSameReadAndTheConnectionGoesOn() throws {
        let app = try TestApplication(publisher: ScriptedPublisher(outcome: .failure(.overloaded)))
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addAPIHandlers(application: app.application)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000)).wait()
        try channel.writeInbound(ByteBuffer(string: voteRequest(app, participant: "aline") + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
        let text = try output(channel)
        #expect(text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) } == ["503", "200"])
        #expect(text.contains(#""code":"overloaded""#))
        #expect(channel.isActive)
    }

    @Test func headGetsTheLengthButNoBody() throws {
        let (channel, _) = try channel()
        try channel.writeInbound(ByteBuffer(string: "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
        let text = try output(channel)
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(text.contains("Content-Length: 15\r\n"))
        #expect(text.hasSuffix("\r\n\r\n"))
    }

    @Test func http10ClosesUnlessAskedToKeepAlive() throws {
        let (closing, _) = try channel()
        try closing.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.0\r\n\r\n"))
        #expect(try output(closing).contains("Connection: close\r\n"))
        #expect(!closing.isActive)

        let (kept, _) = try channel()
        try kept.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"))
        #expect(try output(kept).contains("Connection: keep-alive\r\n"))
        #expect(kept.isActive)
    }

    @Test func decimalsAreWrittenWithoutStrings() {
        for value in [0, 7, 10, 202, 65_535, Int(Int64.max)] {
            var buffer = ByteBuffer()
            buffer.writeDecimal(value)
            #expect(buffer.readString(length: buffer.readableBytes) == String(value))
        }
    }

    // MARK: Timeouts and caps

    @Test func manyHeadersAre431AndTheConnectionCloses() throws {
        let (channel, _) = try channel()
        let headers = (0..<5000).map { "X-H\($0): v\r\n" }.joined()
        try channel.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: x\r\n\(headers)\r\n"))
        let text = try output(channel)
        #expect(text.hasPrefix("HTTP/1.1 431"))
        #expect(text.contains(#""code":"headers_too_large""#))
        #expect(!channel.isActive)
    }

    @Test func headersOverTheByteLimitAre431() throws {
        let (channel, _) = try channel()
        let big = String(repeating: "a", count: 9000)
        try channel.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: \(big)\r\n\r\n"))
        #expect(try output(channel).hasPrefix("HTTP/1.1 431"))
    }

    @Test func anIdleKeepAliveConnectionIsClosedAfterTheIdleTimeout() throws {
        let (channel, _) = try channel()
        try channel.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(try output(channel).hasPrefix("HTTP/1.1 200"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(70))
        #expect(channel.isActive, "70 s idle is within the 75 s timeout")
        channel.embeddedEventLoop.advanceTime(by: .seconds(7))
        #expect(!channel.isActive)
    }

    @Test func headersThatTrickleInAre408() throws {
        let (channel, _) = try channel()
        try channel.writeInbound(ByteBuffer(string: "POST /api/v1/votes HTTP/1.1\r\nHost: x\r\n"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        try channel.writeInbound(ByteBuffer(string: "Content-Type: application/json\r\n"))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(7))
        let text = try output(channel)
        #expect(text.hasPrefix("HTTP/1.1 408"))
        #expect(text.contains(#""code":"request_timeout""#))
        #expect(!channel.isActive)
    }

    @Test func aBodyThatTricklesInIs408() throws {
        let (channel, _) = try channel()
        try channel.writeInbound(ByteBuffer(string: "POST /api/v1/votes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n{\"par"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(12))
        #expect(try output(channel).hasPrefix("HTTP/1.1 408"))
        #expect(!channel.isActive)
    }

    /// A connection whose first request is answered later (a vote waiting for its confirm).
    func holdingChannel() throws -> (EmbeddedChannel, TestApplication) {
        let app = try TestApplication(publisher: ScriptedPublisher(outcome: .success(()), holding: true))
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addAPIHandlers(application: app.application)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000)).wait()
        return (channel, app)
    }

    @Test func aHeadPipelinedBehindAVoteWaitingForItsConfirmStillHasItsBodyDeadline() throws {
        // Issue 27: a vote, then a second head whose body never comes, then silence. The
        // connection was never timed out (the body deadline was lost while the vote was
        // being answered); one such socket per slot filled the connection limit.
        let (channel, app) = try holdingChannel()
        try channel.writeInbound(ByteBuffer(string: voteRequest(app, participant: "aline") + "POST /api/v1/votes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 30\r\n\r\n"))
        channel.embeddedEventLoop.run()
        channel.embeddedEventLoop.advanceTime(by: .seconds(3))
        app.publisher.release()
        channel.embeddedEventLoop.run()
        #expect(try output(channel).hasPrefix("HTTP/1.1 202"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        #expect(channel.isActive, "9 s after the second head: within the 10 s body deadline")
        channel.embeddedEventLoop.advanceTime(by: .seconds(3))
        let text = try output(channel)
        #expect(text.hasPrefix("HTTP/1.1 408"))
        #expect(text.contains(#""code":"request_timeout""#))
        #expect(!channel.isActive)
    }

    @Test func aPartialHeadPipelinedBehindAVoteWaitingForItsConfirmStillHasItsHeaderDeadline() throws {
        let (channel, app) = try holdingChannel()
        try channel.writeInbound(ByteBuffer(string: voteRequest(app, participant: "aline") + "GET /healthz HTTP/1.1\r\nHo"))
        channel.embeddedEventLoop.run()
        app.publisher.release()
        channel.embeddedEventLoop.run()
        #expect(try output(channel).hasPrefix("HTTP/1.1 202"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(12))
        #expect(try output(channel).hasPrefix("HTTP/1.1 408"))
        #expect(!channel.isActive)
    }

    @Test func aReceiveDeadlineThatPassesWhileAnAnswerIsDueWaitsForItSoThe408NeverOvertakesIt() throws {
        let (channel, app) = try holdingChannel()
        try channel.writeInbound(ByteBuffer(string: voteRequest(app, participant: "aline") + "GET /healthz HTTP/1.1\r\nHo"))
        channel.embeddedEventLoop.run()
        channel.embeddedEventLoop.advanceTime(by: .seconds(15))
        #expect(try output(channel).isEmpty, "the vote's answer comes first")
        #expect(channel.isActive)
        app.publisher.release()
        channel.embeddedEventLoop.run()
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        let answers = try output(channel).components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) }
        #expect(answers == ["202", "408"])
        #expect(!channel.isActive)
    }

    @Test func aConnectionThatKeepsAskingInTimeStaysOpen() throws {
        let (channel, _) = try channel()
        for _ in 0..<5 {
            try channel.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
            #expect(try output(channel).hasPrefix("HTTP/1.1 200"))
            channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        }
        #expect(channel.isActive)
    }

    // MARK: What a head must be

    @Test func anHTTP11RequestWithoutHostIs400() throws {
        let (channel, _) = try channel()
        try channel.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.1\r\n\r\n"))
        let text = try output(channel)
        #expect(text.hasPrefix("HTTP/1.1 400"))
        #expect(text.contains(#""code":"invalid_host""#))
        #expect(!channel.isActive)
    }

    @Test func twoHostsAre400AndHTTP10NeedsNone() throws {
        let (two, _) = try channel()
        try two.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"))
        #expect(try output(two).hasPrefix("HTTP/1.1 400"))
        let (old, _) = try channel()
        try old.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.0\r\n\r\n"))
        #expect(try output(old).hasPrefix("HTTP/1.1 200"))
    }

    @Test func aTransferCodingOtherThanChunkedIs501() throws {
        let (channel, _) = try channel()
        try channel.writeInbound(ByteBuffer(string: "POST /api/v1/votes HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"))
        let text = try output(channel)
        #expect(text.hasPrefix("HTTP/1.1 501"))
        #expect(text.contains(#""code":"not_implemented""#))
        #expect(!channel.isActive)
    }

    @Test func aClientWaitingFor100ContinueGetsItThenTheAnswer() throws {
        let (channel, _) = try channel()
        try channel.writeInbound(ByteBuffer(string: "POST /api/v1/votes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"))
        #expect(try output(channel) == "HTTP/1.1 100 Continue\r\n\r\n")
        try channel.writeInbound(ByteBuffer(string: "{}"))
        #expect(try output(channel).hasPrefix("HTTP/1.1 401"), "then the real answer (no token here)")
    }

    @Test func noContinueForABodyOverTheLimit() throws {
        let (channel, _) = try channel()
        try channel.writeInbound(ByteBuffer(string: "POST /api/v1/votes HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n"))
        #expect(try output(channel).hasPrefix("HTTP/1.1 413"))
    }
}
