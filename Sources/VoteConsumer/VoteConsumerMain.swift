import Foundation
import Logging
import NIOPosix
import RabbitMQ
import ServiceLifecycle
import ServiceSupport
import VoteShared

/// `VoteConsumer`: reads its flags and environment, then drains RabbitMQ into the store
/// until SIGTERM/SIGINT.
@main
enum VoteConsumerMain {
    static func main() async {
        let command = VoteConsumerCommand.parseOrExit()
        let configuration: ConsumerConfiguration
        let urls: [AMQPURL]
        let poll: Poll
        do {
            configuration = try ConsumerConfiguration(command, environment: ProcessInfo.processInfo.environment)
            urls = try configuration.common.brokerURLs()
            poll = try Poll.load(from: configuration.common.pollFile)
        } catch {
            exitWithSettingError(error, command: "VoteConsumer")
        }
        bootstrapLogging(level: configuration.common.logLevel)
        let registry = bootstrapMetrics(valueBuckets: ["paredao_consumer_batch_size": ConsumerMetrics.batchSizeBuckets])
        let logger = Logger(label: "VoteConsumer")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var services: [any Service] = [ThreadService(VoteConsumer(configuration: configuration, urls: urls, validator: configuration.validator(catalog: configuration.pollCatalog(seed: poll))), threadName: "vote-consumer")]
        do {
            if configuration.metricsPort != 0 {
                let metrics = try await MetricsServer.bind(registry: registry, host: configuration.common.metricsHost, port: configuration.metricsPort, group: group)
                services.append(ChannelService(metrics, name: "metrics"))
            }
        } catch {
            logger.critical("Cannot serve metrics", metadata: ["error": "\(error)", "port": "\(configuration.metricsPort)"])
            exit(1)
        }
        do {
            try await runServiceGroup(services, logger: logger)
        } catch {
            logger.critical("VoteConsumer stopped on an error", metadata: ["error": "\(error)"])
            exit(1)
        }
        try? await group.shutdownGracefully()
    }
}
