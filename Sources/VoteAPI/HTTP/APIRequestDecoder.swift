import HTTPFraming
import NIOCore

/// What the API's request decoder delivers: a head with what the API checks of it, the body
/// in pieces, the end.
typealias APIRequestPart = HTTPRequestParser.Part

/// NIO's `ByteToMessageDecoder` around ``HTTPRequestParser``.
struct APIRequestDecoder: ByteToMessageDecoder {
    typealias InboundOut = APIRequestPart

    private var parser: HTTPRequestParser

    init(limits: HTTPRequestParser.Limits) {
        parser = HTTPRequestParser(limits: limits)
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        while let part = try parser.next(&buffer) {
            context.fireChannelRead(wrapInboundOut(part))
        }
        return .needMoreData
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A request cut off by the end of the stream is not answered: the connection is gone.
        while let part = try parser.next(&buffer) {
            context.fireChannelRead(wrapInboundOut(part))
        }
        return .needMoreData
    }
}
