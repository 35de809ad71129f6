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

/// Where one connection's current request stands, written by `APIHandler` (after the
/// decoder) and read by `ConnectionDeadlines` (before it): both run on the connection's
/// event loop, so a plain object shared by the two is enough — no pipeline event per request.
final class RequestProgress {
    enum Phase {
        case idle(since: NIODeadline)
        case readingHead(since: NIODeadline)
        case readingBody(since: NIODeadline)
        case answering
        case closed
    }

    private(set) var phase = Phase.idle(since: .now())

    /// A request's first byte arrived while idle.
    func bytesArrived(at now: NIODeadline) {
        if case .idle = phase { phase = .readingHead(since: now) }
    }

    /// A request's headers are in: its body deadline starts.
    func headReceived(at now: NIODeadline) {
        switch phase {
        case .idle, .readingHead: phase = .readingBody(since: now)
        case .readingBody, .answering, .closed: break
        }
    }

    /// A whole request is in: no deadline while it is answered (the broker's confirm has its own).
    func requestReceived() {
        if case .closed = phase { return }
        phase = .answering
    }

    /// Nothing is received, answered or waiting: the keep-alive timeout starts.
    func becameIdle(at now: NIODeadline) {
        if case .closed = phase { return }
        phase = .idle(since: now)
    }

    func closed() {
        phase = .closed
    }
}

/// Closes connections that stall: idle between requests longer than `limits.idle` (closed),
/// or slower than `limits.header` / `limits.body` to send a request (`408`, then closed).
/// It sits before the HTTP decoder, so it sees a request's first byte; `APIHandler` tells it
/// the rest through their shared `RequestProgress`. Deadlines are checked once a second by
/// one timer per connection, so requests pay only a few clock reads (the event loop's,
/// which tests can move).
///
/// Inbound only: the answers' writes do not pass through it.
final class ConnectionDeadlines: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let limits: ConnectionLimits
    private let progress: RequestProgress
    private var check: RepeatedTask?

    init(limits: ConnectionLimits, progress: RequestProgress) {
        self.limits = limits
        self.progress = progress
    }

    func handlerAdded(context: ChannelHandlerContext) {
        progress.becameIdle(at: context.eventLoop.now)
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
        progress.closed()
        check?.cancel()
        check = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .idle = progress.phase { progress.bytesArrived(at: context.eventLoop.now) }
        context.fireChannelRead(data)
    }

    private func checkDeadline(context: ChannelHandlerContext) {
        let now = context.eventLoop.now
        switch progress.phase {
        case .idle(let since) where now - since > TimeAmount(limits.idle):
            Self.closed(reason: "idle_timeout")
            progress.closed()
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
        progress.closed()
        var buffer = context.channel.allocator.buffer(capacity: 256)
        HTTPResponseWriter.write(APIResponse(error: .requestTimeout), requestID: "-", keepAlive: false, http10: false, includeBody: true, into: &buffer)
        context.writeAndFlush(NIOAny(buffer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    /// Counts a connection the API closed on its own, by why.
    static func closed(reason: String) {
        Counter(label: "paredao_http_connections_closed_total", dimensions: [("reason", reason)]).increment()
    }
}
