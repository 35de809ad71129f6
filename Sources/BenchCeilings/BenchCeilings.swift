import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import RabbitMQ
import VoteShared

/// `paredao-ceilings`: what this machine can do at most, measured next to the real stack.
///
/// - `http204 PORT [THREADS]`: a bare SwiftNIO HTTP/1.1 server answering every request 204.
/// - `publish URL COUNT [WINDOW]`: publishes COUNT persistent 1-vote messages to a fresh
///   quorum queue with publisher confirms, WINDOW in flight, and prints messages/s.
@main
enum BenchCeilings {
    static let usage = """
        Usage: paredao-ceilings http204 PORT [EVENT_LOOPS]
               paredao-ceilings publish AMQP_URL COUNT [WINDOW] [QUEUE_TYPE]

        http204   a bare SwiftNIO server that answers every request 204 (until SIGTERM)
        publish   confirmed publishes of one-vote messages to a fresh queue; prints
                  RESULT {"messages":…,"seconds":…,"per_second":…}

        """

    static func main() async throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        switch arguments.first {
        case "http204":
            guard arguments.count >= 2, let port = Int(arguments[1]) else { fail() }
            let loops = arguments.count > 2 ? Int(arguments[2]) ?? 1 : 1
            try await serve204(port: port, loops: loops)
        case "publish":
            guard arguments.count >= 3, let url = AMQPURL(arguments[1]), let count = Int(arguments[2]) else { fail() }
            let window = arguments.count > 3 ? Int(arguments[3]) ?? 1000 : 1000
            let quorum = arguments.count > 4 ? arguments[4] != "classic" : true
            try publish(url: url, count: count, window: window, quorum: quorum)
        case "-h", "--help":
            writeStandardOutput(usage)
        default:
            fail()
        }
    }

    static func fail() -> Never {
        FileHandle.standardError.write(Data(usage.utf8))
        exit(2)
    }

    static func serve204(port: Int, loops: Int) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: loops)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: false)
                    try channel.pipeline.syncOperations.addHandler(NoContentHandler())
                }
            }
            .bind(host: "127.0.0.1", port: port)
            .get()
        _ = await waitForTerminationSignal()
        try await channel.close()
        try await group.shutdownGracefully()
    }

    static func publish(url: AMQPURL, count: Int, window: Int, quorum: Bool) throws {
        let connection = try AMQPConnection(url: url)
        let queue = "ceiling-\(UUID().uuidString.prefix(8))"
        try connection.declareQueue(queue, quorum: quorum, deadLetterQueue: nil)
        try connection.enableConfirms()
        let body = VoteMessage.encode([Vote(id: .random(), pollID: "bbb26-paredao-10", participantID: "aline", acceptedAtMillis: Timestamp.nowMillis())])
        let started = ContinuousClock.now
        var sent: UInt64 = 0
        var confirmed: UInt64 = 0
        while confirmed < UInt64(count) {
            while sent < UInt64(count), sent - confirmed < UInt64(window) {
                try body.withUnsafeBytes { try connection.publish(to: queue, body: $0) }
                sent += 1
            }
            var timeout: Duration = .milliseconds(100)
            while let confirm = try connection.nextConfirm(timeout: timeout) {
                timeout = .zero
                switch confirm {
                case .ack(let tag, _), .nack(let tag, _): confirmed = max(confirmed, tag)
                }
            }
        }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        writeStandardOutput("RESULT {\"messages\":\(count),\"seconds\":\(seconds),\"per_second\":\(Int(Double(count) / seconds))}\n")
    }
}

private final class NoContentHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Length", value: "0")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .noContent, headers: headers))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
