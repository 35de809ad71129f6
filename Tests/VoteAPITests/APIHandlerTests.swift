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
        let channel = EmbeddedChannel(loop: app.loop)
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: false)
        try channel.pipeline.syncOperations.addHandler(APIHandler(application: app.application))
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

    @Test func aBodyOverTheLimitIs413AndTheConnectionCloses() throws {
        let (channel, _) = try channel()
        let body = String(repeating: "x", count: 65)
        try channel.writeInbound(ByteBuffer(string: "POST /api/v1/votes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n\(body)"))
        let text = try output(channel)
        #expect(text.hasPrefix("HTTP/1.1 413"))
        #expect(text.contains(#""code":"body_too_large""#))
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
}
