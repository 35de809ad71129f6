import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import RabbitMQ
import ServiceLifecycle
import ServiceSupport
import VoteShared
import VoteStore

/// A VoteAPI ready to run: its application, and its services with their listeners bound.
struct VoteAPI {
    let application: APIApplication
    /// Publisher, polls and totals refreshers, vote summary, metrics and HTTP, in start order (the
    /// group stops them in reverse: HTTP first — it drains its connections while the
    /// publisher still confirms their votes — and the publisher last).
    let services: [any Service]
    /// The HTTP port actually bound (useful with port 0).
    let port: Int
}

/// The application with the polls, keys and admin credentials the configuration names,
/// behind the given seams. `main` and the tests both build it here.
func buildAPIApplication(configuration: APIConfiguration, polls: PollDirectory, publisher: any VotePublishing, totals: any TotalsReading) throws -> APIApplication {
    let keyring = try TokenKeyring.load(inlineKeys: configuration.tokenKeys, keysFile: configuration.tokenKeysFile)
        .rememberingVerifiedTokens(slots: configuration.verifiedTokenSlots)
    let admins = try AdminCredentials.load(file: configuration.adminTokenFile)
    if admins.isEmpty {
        Logger(label: "VoteAPI").warning("No admin credential: the admin API is disabled", metadata: ["file": "\(configuration.adminTokenFile)"])
    }
    return APIApplication(configuration: configuration, polls: polls, keyring: keyring, adminCredentials: admins, publisher: publisher, totals: totals)
}

/// The polls directory of `configuration`'s store, seeded from the definition file.
func buildPollDirectory(configuration: APIConfiguration) throws -> PollDirectory {
    PollDirectory(
        store: configuration.store, seed: try Poll.load(from: configuration.common.pollFile),
        refreshInterval: .milliseconds(configuration.pollsRefreshMillis), closeDelayMillis: Int64(configuration.pollCloseDelayMillis)
    )
}

/// Builds every part of VoteAPI from `configuration` and binds its listeners on `group`.
func buildVoteAPI(configuration: APIConfiguration, group: any EventLoopGroup, registry: PrometheusCollectorRegistry?) async throws -> VoteAPI {
    let urls = try configuration.common.brokerURLs()
    let polls = try buildPollDirectory(configuration: configuration)
    await polls.load(on: group.next())
    let publisher = VotePublisher(settings: .init(
        urls: urls, queue: configuration.common.queue, deadLetterQueue: configuration.common.deadLetterQueue,
        quorum: configuration.common.quorumQueue, maxQueued: configuration.maxQueuedVotes,
        machine: .init(
            maxVotesPerMessage: configuration.maxVotesPerMessage, maxInFlight: configuration.maxInFlightMessages,
            confirmTimeout: .milliseconds(configuration.confirmTimeoutMillis),
            linger: .microseconds(configuration.publishLingerMicros), lingerAboveRate: configuration.publishLingerAboveRate,
            heartbeat: .seconds(configuration.common.amqpHeartbeatSeconds)
        )
    ))
    let refreshInterval = Duration.milliseconds(configuration.totalsRefreshMillis)
    let totals = TotalsBoard(refreshInterval: refreshInterval, store: configuration.store)
    let application = try buildAPIApplication(configuration: configuration, polls: polls, publisher: publisher, totals: totals)
    var services: [any Service] = [
        ThreadService(publisher, threadName: "amqp-publisher"),
        PollRefresher(directory: polls, interval: .milliseconds(configuration.pollsRefreshMillis)),
        TotalsRefresher(board: totals, polls: polls, interval: refreshInterval),
        VoteSummary(metrics: application.metrics),
        AdminRefusalAudit(application: application, eventLoop: group.next()),
    ]
    do {
        if let registry, configuration.metricsPort != 0 {
            let metrics = try await MetricsServer.bind(registry: registry, host: configuration.common.metricsHost, port: configuration.metricsPort, group: group)
            services.append(ChannelService(metrics, name: "metrics"))
        }
        let connections = ConnectionTracker()
        var listeners = [try await bindHTTPServer(
            application: application, at: .tcp(host: configuration.host, port: configuration.port), group: group,
            connections: connections, maxConnections: configuration.maxConnections
        )]
        let port = listeners[0].localAddress?.port ?? configuration.port
        if !configuration.proxySocket.isEmpty {
            do {
                listeners.append(try await bindHTTPServer(
                    application: application, at: .unixSocket(path: configuration.proxySocket), group: group,
                    connections: connections, maxConnections: configuration.maxConnections
                ))
            } catch {
                try? await listeners[0].close()
                throw error
            }
        }
        services.append(HTTPServerService(listeners: listeners, connections: connections, drainTimeout: .seconds(configuration.drainSeconds)))
        Logger(label: "VoteAPI").info("VoteAPI listening", metadata: [
            "address": "\(configuration.host):\(port)", "proxy_socket": "\(configuration.proxySocket.isEmpty ? "none" : configuration.proxySocket)",
            "metrics": "\(configuration.common.metricsHost):\(configuration.metricsPort)",
            "poll": "\(polls.current(atMillis: Timestamp.nowMillis())?.id ?? "none")", "broker": "\(urls.map(\.description).joined(separator: ","))", "store": "\(configuration.store.kind.rawValue)",
        ])
        return VoteAPI(application: application, services: services, port: port)
    } catch {
        await totals.shutdown()
        await polls.shutdown()
        throw error
    }
}

/// Where the API listens: a TCP address, or the unix socket the local proxy connects to.
enum ListenAddress: CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unixSocket(path: String)

    var description: String {
        switch self {
        case .tcp(let host, let port): "\(host):\(port)"
        case .unixSocket(let path): "unix:\(path)"
        }
    }
}

/// Binds one of the API's HTTP/1.1 listeners; every connection it accepts is tracked in
/// `connections` (shared by all listeners), and one over `maxConnections` is closed at once.
/// A unix socket replaces a stale socket file and is made readable and writable by its
/// owner and group only (the proxy's user must be one of them).
func bindHTTPServer(application: APIApplication, at address: ListenAddress, group: any EventLoopGroup, connections: ConnectionTracker, maxConnections: Int) async throws -> any Channel {
    var bootstrap = ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 1024)
        .childChannelOption(.maxMessagesPerRead, value: 16)
        .childChannelInitializer { channel in
            guard connections.openConnections < maxConnections else {
                ConnectionDeadlines.closed(reason: "too_many_connections")
                return channel.close()
            }
            connections.track(channel)
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addAPIHandlers(application: application)
            }
        }
    switch address {
    case .tcp(let host, let port):
        bootstrap = bootstrap
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
        return try await bootstrap.bind(host: host, port: port).get()
    case .unixSocket(let path):
        let channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        guard chmod(path, 0o660) == 0 else {
            try? await channel.close()
            throw ConfigurationError(key: APISettings.proxySocket.key, message: "cannot restrict \(path) to its owner and group (errno \(errno))")
        }
        return channel
    }
}

extension ChannelPipeline.SynchronousOperations {
    /// The API's handler, which parses requests, keeps the connection's deadlines and
    /// writes answers itself.
    func addAPIHandlers(application: APIApplication) throws {
        try addHandler(APIHandler(application: application))
    }
}

/// One INFO line every 10 s with the votes accepted and rejected (no line per vote).
struct VoteSummary: Service, CustomStringConvertible {
    let metrics: APIMetrics
    private let logger = Logger(label: "VoteAPI")

    init(metrics: APIMetrics) {
        self.metrics = metrics
    }

    var description: String { "VoteSummary" }

    func run() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(10))
                let (accepted, rejected) = metrics.takeRecentCounts()
                guard accepted + rejected > 0 else { continue }
                logger.info("Votes in the last 10 s", metadata: ["accepted": "\(accepted)", "rejected": "\(rejected)"])
            }
        }
    }
}

/// Writes the refused admin attempts of each window as one audit row (see ``AdminGate``),
/// and those of the last window when the API stops.
struct AdminRefusalAudit: Service, CustomStringConvertible {
    let application: APIApplication
    let eventLoop: any EventLoop

    var description: String { "AdminRefusalAudit" }

    func run() async {
        let window = Duration.seconds(application.configuration.adminRefusalWindowSeconds)
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: window)
                try? await application.auditAdminRefusals(on: eventLoop).get()
            }
        }
        try? await application.auditAdminRefusals(on: eventLoop).get()
    }
}
