import Foundation
import Logging
import VoteShared

/// `VoteAPI`: reads its configuration from the environment and serves until SIGTERM/SIGINT.
@main
enum VoteAPIMain {
    static func main() async {
        if CommandLine.arguments.contains("--help") || CommandLine.arguments.contains("-h") {
            writeStandardOutput(helpText(command: "VoteAPI", summary: "Paredão vote API: challenges, session tokens, votes (published to RabbitMQ with confirms) and totals.", settings: APIConfiguration.descriptions))
            return
        }
        let configuration: APIConfiguration
        do {
            configuration = try APIConfiguration(ConfigurationReader())
        } catch {
            exitWithConfigurationError(error)
        }
        bootstrapLogging(level: configuration.common.logLevel)
        let registry = bootstrapMetrics()
        let logger = Logger(label: "VoteAPI")
        let server: APIServer
        do {
            server = try await APIServer.start(configuration: configuration, registry: registry)
        } catch {
            logger.critical("VoteAPI could not start", metadata: ["error": "\(error)"])
            exit(1)
        }
        let signal = await waitForTerminationSignal()
        logger.info("Shutting down", metadata: ["signal": "\(signal)"])
        await server.shutdown()
    }
}
