public import Logging
public import ServiceLifecycle
import UnixSignals
import Foundation

/// Runs `services` in one `ServiceGroup` that owns SIGTERM and SIGINT: the first signal
/// shuts the services down gracefully, last one first; a second signal ends the process
/// at once. Any service that returns or throws shuts the whole group down too.
public func runServiceGroup(_ services: [any Service], logger: Logger) async throws {
    let configurations = ([SecondSignalExit(logger: logger)] + services).map { service in
        ServiceGroupConfiguration.ServiceConfiguration(
            service: service, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup
        )
    }
    let group = ServiceGroup(configuration: .init(services: configurations, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    try await group.run()
}

/// Watches for the signal after the one that started a graceful shutdown and exits then:
/// an operator who asks twice does not wait for the drain. First in the group, so it is
/// the last service shut down.
struct SecondSignalExit: Service {
    let logger: Logger

    func run() async throws {
        var seen = 0
        for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint).cancelOnGracefulShutdown() {
            seen += 1
            if seen == 1 {
                logger.info("Shutting down", metadata: ["signal": "\(signal)"])
            } else {
                logger.critical("Second signal: exiting without finishing the shutdown", metadata: ["signal": "\(signal)"])
                exit(1)
            }
        }
    }
}
