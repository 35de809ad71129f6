import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import RabbitMQ
import VoteShared
import VoteStore

extension ChannelPipeline.SynchronousOperations {
    /// NIO's HTTP/1.1 request decoder and the API's handler, which writes answers itself.
    func addAPIHandlers(application: APIApplication) throws {
        try addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        try addHandler(APIHandler(application: application))
    }
}

/// A running VoteAPI: HTTP listener, metrics listener, publisher thread and totals cache.
final class APIServer: Sendable {
    let application: APIApplication
    let group: MultiThreadedEventLoopGroup
    let channel: any Channel
    let metricsChannel: (any Channel)?
    private let summaryTask: RepeatedTask

    /// The HTTP port actually bound (useful with port 0).
    var port: Int { channel.localAddress?.port ?? 0 }

    private init(application: APIApplication, group: MultiThreadedEventLoopGroup, channel: any Channel, metricsChannel: (any Channel)?, summaryTask: RepeatedTask) {
        self.application = application
        self.group = group
        self.channel = channel
        self.metricsChannel = metricsChannel
        self.summaryTask = summaryTask
    }

    /// Builds every part from `configuration` and starts listening.
    static func start(configuration: APIConfiguration, registry: PrometheusCollectorRegistry?) async throws -> APIServer {
        let logger = Logger(label: "VoteAPI")
        let poll = try Poll.load(from: configuration.common.pollFile)
        let keyring = try TokenKeyring.load(ConfigurationReader()).rememberingVerifiedTokens(slots: configuration.verifiedTokenSlots)
        guard let url = AMQPURL(configuration.common.amqpURL) else {
            throw ConfigurationError(key: "PAREDAO_AMQP_URL", message: "not an amqp:// URL: \(configuration.common.amqpURL)")
        }
        let publisher = VotePublisher(settings: .init(
            url: url, queue: configuration.common.queue, quorum: configuration.common.quorumQueue,
            deadLetterQueue: configuration.common.deadLetterQueue,
            confirmTimeout: .milliseconds(configuration.confirmTimeoutMillis),
            maxVotesPerMessage: configuration.maxVotesPerMessage, maxInFlight: configuration.maxInFlightMessages,
            maxQueued: configuration.maxQueuedVotes,
            linger: .microseconds(configuration.publishLingerMicros), lingerAboveRate: configuration.publishLingerAboveRate
        ))
        let settings = configuration.common
        let totals = TotalsCache(poll: poll, refreshInterval: .milliseconds(configuration.totalsRefreshMillis)) { () throws(StoreError) -> any VoteStore in
            try openVoteStore(settings)
        }
        let application = APIApplication(configuration: configuration, poll: poll, keyring: keyring, publisher: publisher, totals: totals)
        publisher.start()
        _ = totals.latest()

        let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoops)
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.maxMessagesPerRead, value: 16)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addAPIHandlers(application: application)
                    }
                }
                .bind(host: configuration.host, port: configuration.port)
                .get()
        } catch {
            publisher.stop()
            await totals.shutdown()
            try? await group.shutdownGracefully()
            throw error
        }
        var metricsChannel: (any Channel)?
        if let registry, configuration.metricsPort != 0 {
            metricsChannel = try await MetricsServer.start(registry: registry, host: configuration.metricsHost, port: configuration.metricsPort, group: group)
        }
        let summaryTask = group.next().scheduleRepeatedTask(initialDelay: .seconds(10), delay: .seconds(10)) { _ in
            let (accepted, rejected) = application.metrics.takeRecentCounts()
            guard accepted + rejected > 0 else { return }
            logger.info("Votes in the last 10 s", metadata: ["accepted": "\(accepted)", "rejected": "\(rejected)"])
        }
        logger.info("VoteAPI listening", metadata: [
            "address": "\(configuration.host):\(channel.localAddress?.port ?? configuration.port)",
            "metrics": "\(configuration.metricsHost):\(configuration.metricsPort)",
            "poll": "\(poll.id)", "broker": "\(url)", "store": "\(configuration.common.store.rawValue)",
        ])
        return APIServer(application: application, group: group, channel: channel, metricsChannel: metricsChannel, summaryTask: summaryTask)
    }

    /// Stops accepting, fails unconfirmed votes (503) and releases threads.
    func shutdown() async {
        summaryTask.cancel()
        try? await channel.close()
        try? await metricsChannel?.close()
        application.publisher.stop()
        await application.totals.shutdown()
        try? await group.shutdownGracefully()
    }
}
