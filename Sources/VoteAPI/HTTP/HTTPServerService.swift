import Logging
import Metrics
import NIOCore
import ServiceLifecycle
import Synchronization

/// The open connections of the API's listener, so that a shutdown can ask each to finish.
final class ConnectionTracker: Sendable {
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])
    private let openGauge = Gauge(label: "paredao_http_open_connections")

    /// Remembers `channel` until it closes.
    func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        openGauge.record(channels.withLock { channels in
            channels[id] = channel
            return channels.count
        })
        channel.closeFuture.whenComplete { [self] _ in
            openGauge.record(channels.withLock { channels in
                channels.removeValue(forKey: id)
                return channels.count
            })
        }
    }

    var openConnections: Int { channels.withLock { $0.count } }

    /// Asks every connection to finish what it holds and close (`ChannelShouldQuiesceEvent`).
    func quiesceAll() {
        for channel in channels.withLock({ Array($0.values) }) {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }

    /// Closes whatever is still open.
    func closeAll() {
        for channel in channels.withLock({ Array($0.values) }) { channel.close(promise: nil) }
    }
}

/// The API's HTTP listeners as a `Service`. On graceful shutdown it stops accepting, lets every
/// connection finish the requests it holds — votes waiting for their confirm included, since
/// the publisher stops only after this service — closes idle keep-alive connections, and
/// after `drainTimeout` closes what is left.
struct HTTPServerService: Service, CustomStringConvertible {
    let listeners: [any Channel]
    let connections: ConnectionTracker
    let drainTimeout: Duration
    private let logger = Logger(label: "VoteAPI.http")

    init(listeners: [any Channel], connections: ConnectionTracker, drainTimeout: Duration) {
        self.listeners = listeners
        self.connections = connections
        self.drainTimeout = drainTimeout
    }

    var description: String { "HTTPServer" }

    func run() async {
        await withTaskCancellationOrGracefulShutdownHandler {
            // Any listener closing (shutdown, or a failure) stops them all.
            await withTaskGroup(of: Void.self) { group in
                for listener in listeners { group.addTask { try? await listener.closeFuture.get() } }
                await group.next()
                for listener in listeners { listener.close(promise: nil) }
            }
        } onCancelOrGracefulShutdown: { [listeners] in
            for listener in listeners { listener.close(promise: nil) }
        }
        let open = connections.openConnections
        logger.info("Draining connections", metadata: ["connections": "\(open)", "timeout_ms": "\(drainTimeout.wholeMilliseconds)"])
        connections.quiesceAll()
        let deadline = ContinuousClock.now + drainTimeout
        while connections.openConnections > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        let left = connections.openConnections
        if left > 0 {
            logger.warning("Connections still open after the drain timeout; closing them", metadata: ["connections": "\(left)"])
            connections.closeAll()
        } else {
            logger.info("Connections drained")
        }
    }
}
