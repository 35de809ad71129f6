import HTTPFraming
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import VoteShared

/// HTTP/1.1 for the API: parses the connection's bytes itself (``HTTPRequestParser``, no
/// `ByteToMessageHandler` and no pipeline event per request part), feeds the parts to an
/// `HTTPConnectionStateMachine` (framing, body limit, answering one request at a time and
/// in order, pausing reads) and carries out its actions, writing each answer as one buffer
/// (status line, headers, body) straight to the socket, without NIO's response encoder.
final class APIHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    /// Outbound only for `read`, which the machine holds back while answers wait.
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Requests read ahead of the one being answered before the handler stops reading.
    static let maxWaitingRequests = 16

    private typealias Request = HTTPConnectionStateMachine.Request

    private struct CachedMetrics {
        var route: Route
        var method: HTTPMethod
        var status: UInt
        var handles: APIMetrics.RequestHandles
    }

    private let application: APIApplication
    private let logger = Logger(label: "VoteAPI.http")
    /// Whether each request gets a DEBUG line (read once: asking the log handler per
    /// request copies it).
    private let logsEveryRequest: Bool
    private var machine: HTTPConnectionStateMachine
    private var parser: HTTPRequestParser
    /// Bytes received but not parsed yet (part of a head), nil when every byte was used: the
    /// receive buffer is let go between reads, so NIO can reuse it.
    private var unparsed: ByteBuffer?
    /// Parsing stopped for good: the bytes were not HTTP, or the connection is gone.
    private var parsingEnded = false
    /// The connection's deadlines, checked once a second by `deadlineCheck`.
    private var deadlines: ConnectionDeadlines
    private var deadlineCheck: RepeatedTask?
    private var peer: Peer?
    private var cachedMetrics: CachedMetrics?
    /// The connection's deadlines were told it is idle (and nothing arrived since).
    private var idleReported = true

    init(application: APIApplication) {
        self.application = application
        deadlines = ConnectionDeadlines(limits: application.connectionLimits, openedAt: .now())
        logsEveryRequest = logger.logLevel <= .debug
        machine = HTTPConnectionStateMachine(maxBodyBytes: application.configuration.maxBodyBytes, maxWaitingRequests: Self.maxWaitingRequests)
        parser = HTTPRequestParser(limits: .init(maxHeaderFields: application.connectionLimits.maxHeaderFields, maxHeaderBytes: application.connectionLimits.maxHeaderBytes))
    }

    // MARK: Events

    func handlerAdded(context: ChannelHandlerContext) {
        deadlines.becameIdle(at: context.eventLoop.now)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        deadlineCheck = context.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            let (handler, context) = loopBound.value
            handler.checkDeadlines(context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadlineCheck?.cancel()
        deadlineCheck = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !parsingEnded else { return }
        var incoming = unwrapInboundIn(data)
        var buffer: ByteBuffer
        if var kept = unparsed {
            unparsed = nil
            kept.discardReadBytes()
            kept.writeBuffer(&incoming)
            buffer = kept
        } else {
            buffer = incoming
        }
        do {
            // Answering a part can close the connection (channelInactive runs inside it).
            while !parsingEnded, let part = try parser.next(&buffer) {
                received(part, context: context)
            }
        } catch {
            parsingEnded = true
            perform(machine.parseErrorCaught(now: context.eventLoop.now), context: context)
            return
        }
        if !parsingEnded, buffer.readableBytes > 0 {
            unparsed = buffer
            deadlines.headPending(at: context.eventLoop.now)
        }
    }

    private func received(_ part: HTTPRequestParser.Part, context: ChannelHandlerContext) {
        var action: HTTPConnectionStateMachine.Action
        switch part {
        case .request(let head, let facts, let body):
            // Head, body and end as the machine would have had them one by one; after a head
            // it refuses (an action at once), the rest would be ignored anyway.
            action = headReceived(head, facts, context: context)
            if case .none = action, let body { action = machine.bodyReceived(body) }
            deadlines.requestReceived()
            if case .none = action { action = machine.endReceived() }
        case .head(let head, let facts):
            action = headReceived(head, facts, context: context)
        case .body(let chunk):
            action = machine.bodyReceived(chunk)
        case .end:
            deadlines.requestReceived()
            action = machine.endReceived()
        }
        perform(action, context: context)
    }

    private func headReceived(_ head: HTTPRequestHead, _ facts: HeadFacts, context: ChannelHandlerContext) -> HTTPConnectionStateMachine.Action {
        idleReported = false
        let now = context.eventLoop.now
        deadlines.headReceived(at: now)
        // A client that waits for "100 Continue" before its body gets it, unless an
        // earlier answer is still to come (a 100 must not overtake it).
        let bodyLimit = application.configuration.bodyLimit(of: head.uri)
        if facts.expectsContinue, machine.isIdle, (facts.contentLength ?? 0) <= bodyLimit {
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(staticString: "HTTP/1.1 100 Continue\r\n\r\n")), promise: nil)
        }
        return machine.headReceived(head, contentLength: facts.contentLength, keepAlive: head.isKeepAlive, refusal: facts.refusal, bodyLimit: bodyLimit, now: now)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        perform(machine.errorCaught(), context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A request cut off by the end of the stream is not answered: the connection is gone.
        parsingEnded = true
        unparsed = nil
        deadlineCheck?.cancel()
        deadlineCheck = nil
        perform(machine.channelInactive(), context: context)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        perform(machine.quiesceRequested(), context: context)
    }

    func read(context: ChannelHandlerContext) {
        perform(machine.readRequested(), context: context)
    }

    // MARK: Actions

    /// Carries out `action`, and goes on with the next request for as long as answers are
    /// written at once.
    private func perform(_ action: HTTPConnectionStateMachine.Action, context: ChannelHandlerContext) {
        var action = action
        while true {
            switch action {
            case .none:
                reportIdle(context: context)
                return
            case .read:
                context.read()
                reportIdle(context: context)
                return
            case .close:
                context.close(promise: nil)
                return
            case .readAndAnswer(let request):
                context.read()
                action = .answer(request)
            case .answer(let request):
                guard answer(request, context: context) else { return }
                action = machine.answerFinished()
            }
        }
    }

    /// Tells the deadlines once the connection has nothing to receive, answer or send: its
    /// keep-alive timeout starts.
    private func reportIdle(context: ChannelHandlerContext) {
        guard !idleReported, machine.isIdle else { return }
        idleReported = true
        deadlines.becameIdle(at: context.eventLoop.now)
    }

    /// Closes a connection that stalls: idle past the keep-alive timeout (closed), or too
    /// slow to send a request (`408`, then closed).
    private func checkDeadlines(context: ChannelHandlerContext) {
        guard !parsingEnded else { return }
        switch deadlines.check(now: context.eventLoop.now, answersDue: machine.hasAnswersDue) {
        case .none:
            return
        case .closeIdle:
            ConnectionDeadlines.closed(reason: "idle_timeout")
            parsingEnded = true
            context.close(promise: nil)
        case .timeOut(let reason):
            ConnectionDeadlines.closed(reason: reason)
            parsingEnded = true
            unparsed = nil
            var buffer = context.channel.allocator.buffer(capacity: 256)
            HTTPResponseWriter.write(APIResponse(error: .requestTimeout), requestID: "-", keepAlive: false, http10: false, includeBody: true, into: &buffer)
            context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    /// Answers `request`: true when its answer is written already, false when it comes later
    /// (then `finish` reports it to the machine).
    private func answer(_ request: Request, context: ChannelHandlerContext) -> Bool {
        switch request {
        case .complete(let head, let body, let keepAlive, let started):
            return answer(head, body: body, keepAlive: keepAlive, started: started, context: context)
        case .tooLarge(let head, let started):
            let limit = application.configuration.bodyLimit(of: head.uri)
            respond(APIResponse(error: .bodyTooLarge(limit: limit)), to: Answering(head, route: Route(uri: head.uri), requestID: "-", keepAlive: false, started: started), context: context)
            return true
        case .refused(let head, let refusal, let started):
            let limits = application.connectionLimits
            let error: APIError
            switch refusal {
            case .headersTooLarge:
                ConnectionDeadlines.closed(reason: "headers_too_large")
                error = .headersTooLarge(fields: limits.maxHeaderFields, bytes: limits.maxHeaderBytes)
            case .missingHost:
                error = .invalidField("host", "An HTTP/1.1 request needs exactly one Host header.")
            case .unsupportedTransferEncoding:
                error = .unsupportedTransferEncoding
            }
            respond(APIResponse(error: error), to: Answering(head, route: Route(uri: head.uri), requestID: "-", keepAlive: false, started: started), context: context)
            return true
        case .malformed(let started):
            let error = APIError.invalidField("request", "The request is not valid HTTP/1.1.")
            let answering = Answering(method: .GET, http10: false, route: .unmatched, requestID: "-", keepAlive: false, started: started)
            respond(APIResponse(error: error), to: answering, context: context)
            return true
        }
    }

    /// Hands a whole request to the application; true when its answer is written already.
    private func answer(_ head: HTTPRequestHead, body: ByteBuffer?, keepAlive: Bool, started: NIODeadline, context: ChannelHandlerContext) -> Bool {
        let requestID = Self.requestID(from: head.headers)
        let route = Route(uri: head.uri)
        let answer = application.handle(
            APIRequest(
                method: head.method, uri: head.uri, route: route, headers: head.headers, body: body,
                peer: connectionPeer(context: context), requestID: requestID
            ),
            on: context.eventLoop
        )
        // What waits for a later answer keeps these facts, not the request: its body (a slice
        // of the connection's receive buffer) and headers need not live until the confirm.
        let answering = Answering(head, route: route, requestID: requestID, keepAlive: keepAlive, started: started)
        switch answer {
        case .now(let response):
            respond(response, to: answering, context: context)
            return true
        case .later(let future):
            future.hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
                let response: APIResponse
                switch result {
                case .success(let answer): response = answer
                case .failure: response = APIResponse(error: .internalError)
                }
                self.finish(response, to: answering, context: context)
            }
            return false
        case .publish(let admitted):
            application.publisher.publish(VoteAwaitingConfirm(admitted, answering: answering, handler: self, context: context))
            return false
        }
    }

    /// Writes an answer that came later, then goes on with the requests that waited.
    fileprivate func finish(_ response: APIResponse, to answering: Answering, context: ChannelHandlerContext) {
        respond(response, to: answering, context: context)
        perform(machine.answerFinished(), context: context)
    }

    /// The vote's answer once the publisher settled it (on this connection's event loop).
    fileprivate func voteSettled(_ vote: VoteAwaitingConfirm, _ result: Result<Void, PublishError>) {
        finish(application.answer(vote.admitted, settled: result), to: vote.answering, context: vote.context)
    }

    /// The connection's peer, worked out on its first request.
    private func connectionPeer(context: ChannelHandlerContext) -> Peer {
        if let peer { return peer }
        let onProxySocket = if case .unixDomainSocket? = context.channel.localAddress { true } else { false }
        let peer = application.peer(address: context.channel.remoteAddress?.ipAddress, onProxySocket: onProxySocket)
        self.peer = peer
        return peer
    }

    /// The caller's X-Request-ID when it is a sane token (it is echoed back), else a new one.
    static func requestID(from headers: HTTPHeaders) -> String {
        if let given = headers.first(name: "X-Request-ID"), (1...64).contains(given.utf8.count),
           given.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) }) {
            return given
        }
        return hexadecimal(nextRequestNumber.wrappingAdd(1, ordering: .relaxed).newValue)
    }

    /// `number` in lower-case hexadecimal, without leading zeros: what `String(_:radix:)`
    /// gives, written straight into the string's bytes (a small string: no allocation).
    static func hexadecimal(_ number: UInt64) -> String {
        let digits = max(1, (64 - number.leadingZeroBitCount + 3) / 4)
        return String(unsafeUninitializedCapacity: digits) { bytes in
            var rest = number
            for index in stride(from: digits - 1, through: 0, by: -1) {
                bytes[index] = Hexadecimal.digit(UInt8(truncatingIfNeeded: rest & 0xF))
                rest >>= 4
            }
            return digits
        }
    }

    /// Request ids: a random start per process, then a counter (no system call per request).
    private static let nextRequestNumber = Atomic<UInt64>(UInt64.random(in: 0...(UInt64.max >> 8)))

    // MARK: Writing

    /// Writes the answer (closing the connection after it unless `keepAlive`), counts and logs it.
    private func respond(_ response: APIResponse, to answering: Answering, context: ChannelHandlerContext) {
        let requestID = answering.requestID
        var buffer = context.channel.allocator.buffer(capacity: 160 + requestID.utf8.count + response.body.count)
        HTTPResponseWriter.write(
            response, requestID: requestID, keepAlive: answering.keepAlive, http10: answering.http10,
            includeBody: answering.method != .HEAD, into: &buffer
        )
        if answering.keepAlive {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        } else {
            context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }

        let elapsed = context.eventLoop.now - answering.started
        metricHandles(route: answering.route, method: answering.method, status: response.status.code).record(nanoseconds: elapsed.nanoseconds)
        if response.status.code >= 500 {
            logger.error("Request failed", metadata: requestMetadata(answering, response, elapsed))
        } else if logsEveryRequest {
            logger.debug("Request served", metadata: requestMetadata(answering, response, elapsed))
        }
    }

    /// The request counter and latency timer, remembered for the connection's last kind
    /// of request (a voter's connection sends the same one again and again).
    private func metricHandles(route: Route, method: HTTPMethod, status: UInt) -> APIMetrics.RequestHandles {
        if let cached = cachedMetrics, cached.status == status, cached.route == route, cached.method == method {
            return cached.handles
        }
        let handles = application.metrics.requestHandles(route: route, method: method, status: status)
        cachedMetrics = CachedMetrics(route: route, method: method, status: status, handles: handles)
        return handles
    }

    private func requestMetadata(_ answering: Answering, _ response: APIResponse, _ elapsed: TimeAmount) -> Logger.Metadata {
        let micros = elapsed.nanoseconds / 1000
        let route = answering.route
        return [
            "request_id": "\(answering.requestID)",
            "method": "\(answering.method.rawValue)",
            "route": "\(route == .unmatched ? "unmatched" : route.rawValue)",
            "status": "\(response.status.code)",
            "duration_ms": "\(micros / 1000).\(String(micros % 1000 + 1000).dropFirst())",
        ]
    }
}

/// What writing a request's answer needs, kept apart from the request (its headers and
/// body are let go as soon as the application has read them).
private struct Answering {
    var method: HTTPMethod
    var http10: Bool
    var route: Route
    var requestID: String
    var keepAlive: Bool
    var started: NIODeadline
}

extension Answering {
    init(_ head: HTTPRequestHead, route: Route, requestID: String, keepAlive: Bool, started: NIODeadline) {
        self.init(method: head.method, http10: head.version == .http1_0, route: route, requestID: requestID, keepAlive: keepAlive, started: started)
    }
}

/// A vote on its way to the broker: the one object the publisher keeps for it, settled on
/// the connection's event loop, which then writes the answer.
private final class VoteAwaitingConfirm: PublishTicket, @unchecked Sendable {
    // @unchecked: only `vote` (immutable) is read off the event loop; the handler and the
    // context are touched in `settle`, which the publisher runs on `eventLoop`.
    let admitted: AdmittedVote
    let answering: Answering
    let handler: APIHandler
    let context: ChannelHandlerContext
    let eventLoop: any EventLoop

    init(_ admitted: AdmittedVote, answering: Answering, handler: APIHandler, context: ChannelHandlerContext) {
        self.admitted = admitted
        self.answering = answering
        self.handler = handler
        self.context = context
        eventLoop = context.eventLoop
    }

    var vote: Vote { admitted.vote }

    func settle(_ result: Result<Void, PublishError>) {
        eventLoop.preconditionInEventLoop()
        handler.voteSettled(self, result)
    }
}
