public import Prometheus
import Metrics
public import NIOCore
import NIOPosix
import NIOHTTP1

/// Histogram buckets fine enough for sub-millisecond answers, up to 10 s.
public let latencyBuckets: [Duration] = [
    .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
    .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
    .milliseconds(250), .milliseconds(500), .seconds(1), .microseconds(2_500_000), .seconds(5), .seconds(10),
]

/// Bootstraps swift-metrics with a Prometheus registry and returns the registry.
public func bootstrapMetrics(valueBuckets: [String: [Double]] = [:]) -> PrometheusCollectorRegistry {
    let registry = PrometheusCollectorRegistry()
    var factory = PrometheusMetricsFactory(registry: registry)
    factory.defaultDurationHistogramBuckets = latencyBuckets
    factory.valueHistogramBuckets = valueBuckets
    MetricsSystem.bootstrap(factory)
    return registry
}

/// Serves `GET /metrics` in the Prometheus text format on its own (local) port.
public enum MetricsServer {
    /// Binds `host:port` and serves the registry until the channel closes.
    public static func bind(registry: PrometheusCollectorRegistry, host: String, port: Int, group: any EventLoopGroup) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(MetricsHandler(registry: registry))
                }
            }
            .bind(host: host, port: port)
            .get()
    }
}

private final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let registry: PrometheusCollectorRegistry
    private var path = ""

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            path = head.uri
        case .body:
            break
        case .end:
            var bytes: [UInt8] = []
            let status: HTTPResponseStatus
            if path == "/metrics" || path.hasPrefix("/metrics?") {
                registry.emit(into: &bytes)
                status = .ok
            } else {
                bytes = Array("not found\n".utf8)
                status = .notFound
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
            headers.add(name: "Content-Length", value: String(bytes.count))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: bytes)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
