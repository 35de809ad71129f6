import Foundation
import Logging
import NIOCore
import NIOPosix
import RabbitMQ
import VoteShared

/// `VoteConsumer`: drains RabbitMQ into the store until SIGTERM/SIGINT.
@main
enum VoteConsumerMain {
    static func main() async {
        if CommandLine.arguments.contains("--help") || CommandLine.arguments.contains("-h") {
            writeStandardOutput(helpText(command: "VoteConsumer", summary: "Paredão vote consumer: RabbitMQ → hourly buckets in the store, exactly once.", settings: ConsumerConfiguration.descriptions))
            return
        }
        let configuration: ConsumerConfiguration
        let url: AMQPURL
        do {
            configuration = try ConsumerConfiguration(ConfigurationReader())
            guard let parsed = AMQPURL(configuration.common.amqpURL) else {
                throw ConfigurationError(key: "PAREDAO_AMQP_URL", message: "not an amqp:// URL: \(configuration.common.amqpURL)")
            }
            url = parsed
        } catch {
            exitWithConfigurationError(error)
        }
        bootstrapLogging(level: configuration.common.logLevel)
        let registry = bootstrapMetrics(valueBuckets: ["paredao_consumer_batch_size": ConsumerMetrics.batchSizeBuckets])
        let logger = Logger(label: "VoteConsumer")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let metricsChannel: (any Channel)?
        do {
            metricsChannel = configuration.metricsPort == 0 ? nil : try await MetricsServer.start(registry: registry, host: configuration.metricsHost, port: configuration.metricsPort, group: group)
        } catch {
            logger.critical("Cannot serve metrics", metadata: ["error": "\(error)", "port": "\(configuration.metricsPort)"])
            exit(1)
        }
        let consumer = VoteConsumer(configuration: configuration, url: url)
        consumer.start()
        let signal = await waitForTerminationSignal()
        logger.info("Shutting down", metadata: ["signal": "\(signal)"])
        consumer.stop()
        try? await metricsChannel?.close()
        try? await group.shutdownGracefully()
    }
}
