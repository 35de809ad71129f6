import Metrics
import NIOCore

/// How long one connection on the API's port may take for each part of a request —
/// `idle` between requests on a keep-alive connection, `header` from a request's first
/// byte to the end of its headers (slowloris), `body` from there to the end of the body —
/// and how many header fields, and bytes of header names and values, a request may have.
struct ConnectionLimits: Sendable {
    var idle, header, body: Duration
    var maxHeaderFields, maxHeaderBytes: Int
}

/// What `APIHandler` tells `ConnectionDeadlines` of a request's progress (an outbound user
/// event: it travels towards the socket, where the deadline handler sits).
enum RequestProgress: Sendable {
    /// The headers of a request are in: its body deadline starts.
    case headReceived
    /// A whole request is in: no deadline while it is answered (the broker's confirm has its own).
    case requestReceived
    /// Nothing is received, answered or waiting: the keep-alive timeout starts.
    case idle
}

/// Closes connections that stall: idle between requests longer than `limits.idle` (closed),
/// or slower than `limits.header` / `limits.body` to send a request (`408`, then closed).
/// It sits before the HTTP decoder, so it sees a request's first byte; deadlines are checked
/// once a second by one timer per connection, so requests pay only a clock read (the event
/// loop's, which tests can move).
final class ConnectionDeadlines: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        case idle(since: NIODeadline)
        case readingHead(since: NIODeadline)
        case readingBody(since: NIODeadline)
        case answering
        case closed
    }

    private let limits: ConnectionLimits
    private var phase = Phase.idle(since: .uptimeNanoseconds(0))
    private var check: RepeatedTask?

    init(limits: ConnectionLimits) {
        self.limits = limits
    }

    func handlerAdded(context: ChannelHandlerContext) {
        phase = .idle(since: context.eventLoop.now)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        check = context.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            let (handler, context) = loopBound.value
            handler.checkDeadline(context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        check?.cancel()
        check = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        phase = .closed
        check?.cancel()
        check = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .idle = phase { phase = .readingHead(since: context.eventLoop.now) }
        context.fireChannelRead(data)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let progress = event as? RequestProgress else {
            return context.triggerUserOutboundEvent(event, promise: promise)
        }
        switch (progress, phase) {
        case (_, .closed):
            break
        case (.headReceived, .readingHead), (.headReceived, .idle):
            phase = .readingBody(since: context.eventLoop.now)
        case (.headReceived, _):
            break
        case (.requestReceived, _):
            phase = .answering
        case (.idle, _):
            phase = .idle(since: context.eventLoop.now)
        }
        promise?.succeed()
    }

    private func checkDeadline(context: ChannelHandlerContext) {
        let now = context.eventLoop.now
        switch phase {
        case .idle(let since) where now - since > TimeAmount(limits.idle):
            Self.closed(reason: "idle_timeout")
            phase = .closed
            context.close(promise: nil)
        case .readingHead(let since) where now - since > TimeAmount(limits.header):
            timeOut(context: context, reason: "header_timeout")
        case .readingBody(let since) where now - since > TimeAmount(limits.body):
            timeOut(context: context, reason: "body_timeout")
        default:
            break
        }
    }

    /// Answers 408 with the API's error shape, then closes.
    private func timeOut(context: ChannelHandlerContext, reason: String) {
        Self.closed(reason: reason)
        phase = .closed
        var buffer = context.channel.allocator.buffer(capacity: 256)
        HTTPResponseWriter.write(APIResponse(error: .requestTimeout), requestID: "-", keepAlive: false, http10: false, includeBody: true, into: &buffer)
        context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    /// Counts a connection the API closed on its own, by why.
    static func closed(reason: String) {
        Counter(label: "paredao_http_connections_closed_total", dimensions: [("reason", reason)]).increment()
    }
}
