import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import VoteShared

/// Frames HTTP/1.1 requests (with a body limit) and writes the application's answers.
/// One instance per connection; `HTTPServerPipelineHandler` before it guarantees one
/// request at a time.
final class APIHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case receiving(HTTPRequestHead, ByteBuffer?, started: ContinuousClock.Instant)
        case discarding
    }

    private let application: APIApplication
    private let logger = Logger(label: "VoteAPI.http")
    private var state = State.idle

    init(application: APIApplication) {
        self.application = application
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            let limit = application.configuration.maxBodyBytes
            if let length = head.headers.first(name: "Content-Length").flatMap(Int.init), length > limit {
                state = .discarding
                write(APIResponse(error: .bodyTooLarge(limit: limit)), for: head, route: Route(uri: head.uri), started: .now, requestID: "-", keepAlive: false, context: context)
                return
            }
            state = .receiving(head, nil, started: .now)
        case .body(var chunk):
            guard case .receiving(let head, var body, let started) = state else { return }
            let limit = application.configuration.maxBodyBytes
            if (body?.readableBytes ?? 0) + chunk.readableBytes > limit {
                state = .discarding
                write(APIResponse(error: .bodyTooLarge(limit: limit)), for: head, route: Route(uri: head.uri), started: started, requestID: "-", keepAlive: false, context: context)
                return
            }
            if body == nil {
                body = chunk
            } else {
                body?.writeBuffer(&chunk)
            }
            state = .receiving(head, body, started: started)
        case .end:
            guard case .receiving(let head, let body, let started) = state else {
                state = .idle
                return
            }
            state = .idle
            let requestID = Self.requestID(from: head.headers)
            let request = APIRequest(
                method: head.method, uri: head.uri, route: Route(uri: head.uri), headers: head.headers, body: body,
                peerAddress: context.channel.remoteAddress?.ipAddress, requestID: requestID
            )
            let keepAlive = head.isKeepAlive
            switch application.handle(request, on: context.eventLoop) {
            case .now(let response):
                write(response, for: head, route: request.route, started: started, requestID: requestID, keepAlive: keepAlive, context: context)
            case .later(let future):
                future.hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
                    let response: APIResponse
                    switch result {
                    case .success(let answer): response = answer
                    case .failure: response = APIResponse(error: .internalError)
                    }
                    self.write(response, for: head, route: request.route, started: started, requestID: requestID, keepAlive: keepAlive, context: context)
                }
            case .afterPublish(let published, let respond):
                published.hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
                    self.write(respond(result), for: head, route: request.route, started: started, requestID: requestID, keepAlive: keepAlive, context: context)
                }
            }
        }
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

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A malformed request: answer 400 if nothing was written yet, then close.
        if error is HTTPParserError {
            var headers = HTTPHeaders()
            let body = APIError.invalidField("request", "The request is not valid HTTP/1.1.").body()
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(body.count))
            headers.add(name: "Connection", value: "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .badRequest, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        context.close(promise: nil)
    }

    private func write(_ response: APIResponse, for head: HTTPRequestHead, route: Route, started: ContinuousClock.Instant, requestID: String, keepAlive: Bool, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.reserveCapacity(5 + response.headers.count)
        headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
        headers.add(name: "Content-Length", value: String(response.body.count))
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "X-Request-ID", value: requestID)
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: response.status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { done.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }

        let elapsed = ContinuousClock.now - started
        application.metrics.requestFinished(route: route, method: head.method, status: response.status, nanoseconds: elapsed.wholeNanoseconds)
        if response.status.code >= 500 {
            logger.error("Request failed", metadata: requestMetadata(head, route, response, elapsed, requestID))
        } else if logger.logLevel <= .debug {
            logger.debug("Request served", metadata: requestMetadata(head, route, response, elapsed, requestID))
        }
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
