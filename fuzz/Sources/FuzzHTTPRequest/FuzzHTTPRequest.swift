import FuzzSupport
import HTTPFraming
import NIOCore
import NIOEmbedded
import NIOHTTP1

/// The API's HTTP/1.1 request framing (HTTPRequestParser), which reads every byte a client
/// sends before anything else does.
///
/// Properties: the parser never traps; it frames the same requests (heads, bodies, refusal or
/// error) however the bytes are split into reads; and where NIO's own decoder (llhttp) reads
/// the same bytes, every request both framed completely has the same method, target, version
/// and body in both — the two never disagree on where a request ends, which is what request
/// smuggling needs. (The parser is stricter: what it refuses, or llhttp refuses, is not
/// compared.)
@main enum FuzzHTTPRequest { static func main() { FuzzDriver.run(fuzzHTTPRequest) } }

private let limits = HTTPRequestParser.Limits(maxHeaderFields: 16, maxHeaderBytes: 512)

/// One framed request, or how the framing stopped.
private enum Framed: Equatable {
    case request(method: String, uri: String, version: String, body: [UInt8])
    /// A head the parser refused: nothing after it is framed.
    case refused(String)
    case error(String)
}

@_cdecl("LLVMFuzzerTestOneInput") public func fuzzHTTPRequest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(FuzzDriver.bytes(data, size))
    let whole = frame(bytes, step: bytes.count)
    let step = 1 + Int(bytes.last ?? 0) % 5
    let split = frame(bytes, step: step)
    trace("whole: \(whole)")
    require(whole == split, "reads of \(step) bytes frame \(split), one read frames \(whole)")
    let ours = whole.compactMap { if case .request = $0 { $0 } else { nil } }
    let theirs = nioFrame(bytes)
    trace("NIO: \(theirs)")
    for (mine, nio) in zip(ours, theirs) {
        require(mine == nio, "HTTPRequestParser framed \(mine), NIO's decoder \(nio)")
    }
    return 0
}

/// What the parser makes of `bytes` fed `step` at a time.
private func frame(_ bytes: [UInt8], step: Int) -> [Framed] {
    var parser = HTTPRequestParser(limits: limits)
    var buffer = ByteBuffer()
    var framed: [Framed] = []
    var current: (method: String, uri: String, version: String, body: [UInt8])?
    var offset = 0
    repeat {
        let end = min(bytes.count, offset + max(step, 1))
        buffer.writeBytes(bytes[offset..<end])
        offset = end
        do {
            while let part = try parser.next(&buffer) {
                switch part {
                case .request(let head, let facts, let body):
                    require(current == nil, "a request inside a request")
                    require(facts.refusal == nil, "a refused head as a whole request")
                    framed.append(.request(method: head.method.rawValue, uri: head.uri, version: "\(head.version)", body: body.map { Array($0.readableBytesView) } ?? []))
                case .head(let head, let facts):
                    require(current == nil, "a head inside a request")
                    if let refusal = facts.refusal {
                        framed.append(.refused("\(refusal)"))
                    } else {
                        current = (head.method.rawValue, head.uri, "\(head.version)", [])
                    }
                case .body(let chunk):
                    require(current != nil, "a body outside a request")
                    current?.body += chunk.readableBytesView
                case .end:
                    guard let request = current else { require(false, "an end outside a request"); return framed }
                    framed.append(.request(method: request.method, uri: request.uri, version: request.version, body: request.body))
                    current = nil
                }
            }
        } catch {
            framed.append(.error("\(error)"))
            return framed
        }
    } while offset < bytes.count
    return framed
}

/// Collects what NIO's decoder delivers.
private final class Collector: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    var framed: [Framed] = []
    private var current: (method: String, uri: String, version: String, body: [UInt8])?
    /// llhttp hands what follows an Upgrade or CONNECT head over as the new protocol's bytes;
    /// the API upgrades nothing and frames them as HTTP (RFC 9110 §7.8 lets it): not compared.
    private var upgraded = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !upgraded else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            if head.method == .CONNECT || head.headers.contains(name: "Upgrade") {
                upgraded = true
                return
            }
            current = (head.method.rawValue, head.uri, "\(head.version)", [])
        case .body(let chunk):
            current?.body += chunk.readableBytesView
        case .end:
            if let request = current {
                framed.append(.request(method: request.method, uri: request.uri, version: request.version, body: request.body))
            }
            current = nil
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}

/// The complete requests NIO's HTTPRequestDecoder frames from `bytes` before any error.
private func nioFrame(_ bytes: [UInt8]) -> [Framed] {
    let channel = EmbeddedChannel()
    let collector = Collector()
    do {
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        try channel.pipeline.syncOperations.addHandler(collector)
        try channel.writeInbound(ByteBuffer(bytes: bytes))
    } catch {
        // An error ends what NIO frames; what it framed before still counts.
    }
    _ = try? channel.finish()
    return collector.framed
}
