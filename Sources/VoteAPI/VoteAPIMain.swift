import Foundation
import Logging
import NIOPosix
import ServiceSupport

/// `VoteAPI`: reads its flags and environment, builds the services and runs them until
/// SIGTERM/SIGINT.
@main
enum VoteAPIMain {
    static func main() async {
        let command = VoteAPICommand.parseOrExit()
        let configuration: APIConfiguration
        do {
            configuration = try APIConfiguration(command, environment: ProcessInfo.processInfo.environment)
        } catch {
            exitWithSettingError(error, command: "VoteAPI")
        }
        bootstrapLogging(level: configuration.common.logLevel)
        let registry = bootstrapMetrics()
        let logger = Logger(label: "VoteAPI")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoops)
        let api: VoteAPI
        do {
            api = try await buildVoteAPI(configuration: configuration, group: group, registry: registry)
        } catch {
            logger.critical("VoteAPI could not start", metadata: ["error": "\(error)"])
            exit(1)
        }
        do {
            try await runServiceGroup(api.services, logger: logger)
        } catch {
            logger.critical("VoteAPI stopped on an error", metadata: ["error": "\(error)"])
            exit(1)
        }
        try? await group.shutdownGracefully()
        logger.info("VoteAPI stopped")
    }
}
