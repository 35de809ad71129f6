import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import VoteShared

/// HTTP/1.1 for the API, after NIO's request decoder: frames each request (with a body
/// limit), answers one request at a time and in order — pipelined requests wait their turn,
/// and reading pauses when too many wait — and writes each answer as one buffer (status
/// line, headers, body) straight to the socket, without NIO's response encoder.
final class APIHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Requests read ahead of the one being answered before the handler stops reading.
    static let maxWaitingRequests = 16

    private struct Received {
        enum Kind {
            case request
            /// Its body is over the limit: answered 413, then the connection closes.
            case tooLarge
            /// Not HTTP/1.1: answered 400, then the connection closes.
            case malformed
        }

        var kind: Kind
        var head: HTTPRequestHead
        var body: ByteBuffer?
        var started: ContinuousClock.Instant
    }

    private enum Incoming {
        case idle
        case receiving(Received)
    }

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
    private var incoming = Incoming.idle
    private var waiting = CircularBuffer<Received>(initialCapacity: 4)
    /// A request is being answered (its answer may wait for the broker).
    private var answering = false
    /// Set once a request that ends the connection is queued (413, 400, `Connection:
    /// close`): whatever follows it on the connection, its own body included, is ignored.
    private var acceptingRequests = true
    private var closed = false
    /// A `read` held back while too many requests wait.
    private var readHeld = false
    private var peer: Peer?
    private var cachedMetrics: CachedMetrics?

    init(application: APIApplication) {
        self.application = application
        logsEveryRequest = logger.logLevel <= .debug
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard acceptingRequests else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            if let length = head.headers.first(name: "Content-Length").flatMap(Int.init), length > application.configuration.maxBodyBytes {
                enqueue(Received(kind: .tooLarge, head: head, body: nil, started: .now), context: context)
                return
            }
            incoming = .receiving(Received(kind: .request, head: head, body: nil, started: .now))
        case .body(var chunk):
            guard case .receiving(var received) = incoming else { return }
            incoming = .idle  // drops the enum's reference so the body grows in place
            if (received.body?.readableBytes ?? 0) + chunk.readableBytes > application.configuration.maxBodyBytes {
                received.kind = .tooLarge
                received.body = nil
                enqueue(received, context: context)
                return
            }
            if received.body == nil {
                received.body = chunk
            } else {
                received.body!.writeBuffer(&chunk)
            }
            incoming = .receiving(received)
        case .end:
            guard case .receiving(let received) = incoming else {
                incoming = .idle
                return
            }
            incoming = .idle
            enqueue(received, context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError else {
            closed = true
            context.close(promise: nil)
            return
        }
        // A malformed request: answered 400 in its turn, then the connection closes.
        guard acceptingRequests else { return }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "-")
        enqueue(Received(kind: .malformed, head: head, body: nil, started: .now), context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        acceptingRequests = false
        waiting.removeAll()
        context.fireChannelInactive()
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        if waiting.count >= Self.maxWaitingRequests {
            readHeld = true
        } else {
            context.read()
        }
    }

    // MARK: Answering in order

    private func enqueue(_ received: Received, context: ChannelHandlerContext) {
        if received.kind != .request || !received.head.isKeepAlive { acceptingRequests = false }
        waiting.append(received)
        answerWaiting(context: context)
    }

    /// Answers waiting requests until one has to wait for its answer.
    private func answerWaiting(context: ChannelHandlerContext) {
        while !answering, !closed, let next = waiting.popFirst() {
            answer(next, context: context)
        }
        if readHeld, waiting.count < Self.maxWaitingRequests {
            readHeld = false
            context.read()
        }
    }

    private func answer(_ received: Received, context: ChannelHandlerContext) {
        let head = received.head
        switch received.kind {
        case .tooLarge:
            let limit = application.configuration.maxBodyBytes
            respond(APIResponse(error: .bodyTooLarge(limit: limit)), to: received, route: Route(uri: head.uri), requestID: "-", keepAlive: false, context: context)
            return
        case .malformed:
            let error = APIError.invalidField("request", "The request is not valid HTTP/1.1.")
            respond(APIResponse(error: error), to: received, route: .unmatched, requestID: "-", keepAlive: false, context: context)
            return
        case .request:
            break
        }
        let requestID = Self.requestID(from: head.headers)
        if peer == nil { peer = application.peer(address: context.channel.remoteAddress?.ipAddress) }
        let request = APIRequest(
            method: head.method, uri: head.uri, route: Route(uri: head.uri), headers: head.headers, body: received.body,
            peer: peer!, requestID: requestID
        )
        let keepAlive = head.isKeepAlive
        switch application.handle(request, on: context.eventLoop) {
        case .now(let response):
            respond(response, to: received, route: request.route, requestID: requestID, keepAlive: keepAlive, context: context)
        case .later(let future):
            answering = true
            future.hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
                let response: APIResponse
                switch result {
                case .success(let answer): response = answer
                case .failure: response = APIResponse(error: .internalError)
                }
                self.finish(response, to: received, route: request.route, requestID: requestID, keepAlive: keepAlive, context: context)
            }
        case .afterPublish(let published, let respond):
            answering = true
            published.hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
                self.finish(respond(result), to: received, route: request.route, requestID: requestID, keepAlive: keepAlive, context: context)
            }
        }
    }

    /// Writes an answer that came later, then goes on with the requests that waited.
    private func finish(_ response: APIResponse, to received: Received, route: Route, requestID: String, keepAlive: Bool, context: ChannelHandlerContext) {
        answering = false
        respond(response, to: received, route: route, requestID: requestID, keepAlive: keepAlive, context: context)
        answerWaiting(context: context)
    }

    /// The caller's X-Request-ID when it is a sane token (it is echoed back), else a new one.
    static func requestID(from headers: HTTPHeaders) -> String {
        if let given = headers.first(name: "X-Request-ID"), (1...64).contains(given.utf8.count),
           given.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) }) {
            return given
        }
        return String(nextRequestNumber.wrappingAdd(1, ordering: .relaxed).newValue, radix: 16)
    }

    /// Request ids: a random start per process, then a counter (no system call per request).
    private static let nextRequestNumber = Atomic<UInt64>(UInt64.random(in: 0...(UInt64.max >> 8)))

    // MARK: Writing

    private func respond(_ response: APIResponse, to received: Received, route: Route, requestID: String, keepAlive: Bool, context: ChannelHandlerContext) {
        let head = received.head
        var buffer = context.channel.allocator.buffer(capacity: 160 + requestID.utf8.count + response.body.count)
        HTTPResponseWriter.write(
            response, requestID: requestID, keepAlive: keepAlive, http10: head.version == .http1_0,
            includeBody: head.method != .HEAD, into: &buffer
        )
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        } else {
            acceptingRequests = false
            closed = true
            context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }

        let elapsed = ContinuousClock.now - received.started
        metricHandles(route: route, method: head.method, status: response.status.code).record(nanoseconds: elapsed.wholeNanoseconds)
        if response.status.code >= 500 {
            logger.error("Request failed", metadata: requestMetadata(head, route, response, elapsed, requestID))
        } else if logsEveryRequest {
            logger.debug("Request served", metadata: requestMetadata(head, route, response, elapsed, requestID))
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

    private func requestMetadata(_ head: HTTPRequestHead, _ route: Route, _ response: APIResponse, _ elapsed: Duration, _ requestID: String) -> Logger.Metadata {
        let micros = elapsed.wholeNanoseconds / 1000
        return [
            "request_id": "\(requestID)",
            "method": "\(head.method.rawValue)",
            "route": "\(route == .unmatched ? "unmatched" : route.rawValue)",
            "status": "\(response.status.code)",
            "duration_ms": "\(micros / 1000).\(String(micros % 1000 + 1000).dropFirst())",
        ]
    }
}

/// Serialises an answer as HTTP/1.1 bytes: the API's fixed headers, the answer's own, the body.
enum HTTPResponseWriter {
    static func write(_ response: APIResponse, requestID: String, keepAlive: Bool, http10: Bool, includeBody: Bool, into buffer: inout ByteBuffer) {
        let status = response.status
        buffer.writeStaticString("HTTP/1.1 ")
        buffer.writeDecimal(Int(status.code))
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(status.reasonPhrase)
        buffer.writeStaticString("\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ")
        buffer.writeDecimal(response.body.count)
        buffer.writeStaticString("\r\nCache-Control: no-store\r\nX-Request-ID: ")
        buffer.writeString(requestID)
        buffer.writeStaticString("\r\n")
        for (name, value) in response.headers {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        if !keepAlive {
            buffer.writeStaticString("Connection: close\r\n")
        } else if http10 {
            buffer.writeStaticString("Connection: keep-alive\r\n")
        }
        buffer.writeStaticString("\r\n")
        if includeBody { buffer.writeBytes(response.body) }
    }
}

extension ByteBuffer {
    /// Writes a non-negative integer in decimal without building a String.
    mutating func writeDecimal(_ value: Int) {
        precondition(value >= 0, "only non-negative values")
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { raw in
            var remaining = value
            var index = raw.count
            repeat {
                index -= 1
                raw[index] = UInt8(ascii: "0") + UInt8(remaining % 10)
                remaining /= 10
            } while remaining > 0
            writeBytes(UnsafeRawBufferPointer(rebasing: raw[index...]))
        }
    }
}
