import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import RabbitMQ
import ServiceSupport
import VoteShared

/// `paredao-ceilings`: what this machine can do at most, measured next to the real stack.
@main
struct BenchCeilings: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paredao-ceilings",
        abstract: "The machine's ceilings for bench/run.sh, measured next to the real stack.",
        subcommands: [HTTP204.self, Publish.self]
    )

    /// A bare SwiftNIO HTTP/1.1 server on 127.0.0.1 answering every request 204, until SIGTERM.
    struct HTTP204: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "http204", abstract: "A bare SwiftNIO server answering every request 204 (until SIGTERM).")
        @Argument(help: "port on 127.0.0.1") var port: Int
        @Argument(help: "event-loop threads") var eventLoops: Int = 1

        func run() async throws {
            try await BenchCeilings.serve204(port: port, loops: eventLoops)
        }
    }

    /// Confirmed publishes of one-vote messages to a fresh queue.
    struct Publish: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "publish",
            abstract: "Confirmed publishes of one-vote messages to a fresh queue; prints RESULT {\"messages\":…,\"seconds\":…,\"per_second\":…}."
        )
        @Argument(help: "RabbitMQ URL (amqp://user:password@host:port/)") var url: String
        @Argument(help: "messages to publish") var count: Int
        @Argument(help: "unconfirmed messages at once") var window: Int = 1000
        @Argument(help: "quorum or classic") var queueType: String = "quorum"

        func validate() throws {
            guard AMQPURL(url) != nil else { throw ValidationError("not an amqp:// URL: \(url)") }
            guard count > 0, window > 0 else { throw ValidationError("count and window must be positive") }
        }

        func run() throws {
            guard let parsed = AMQPURL(url) else { return }
            try BenchCeilings.publish(url: parsed, count: count, window: window, quorum: queueType != "classic")
        }
    }

    static func serve204(port: Int, loops: Int) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: loops)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: false)
                    try channel.pipeline.syncOperations.addHandler(NoContentHandler())
                }
            }
            .bind(host: "127.0.0.1", port: port)
            .get()
        try await runServiceGroup([ChannelService(channel, name: "http204")], logger: Logger(label: "paredao-ceilings"))
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
                sent += 1
                try body.withUnsafeBytes { try connection.publish(to: queue, tag: sent, body: $0) }
            }
            var timeout: Duration = .milliseconds(100)
            while let confirm = try connection.nextConfirm(timeout: timeout) {
                timeout = .zero
                switch confirm {
                case .ack(let tag, _), .nack(let tag, _): confirmed = max(confirmed, tag)
                case .returned, .blocked, .unblocked: break
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
