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
    ]
    do {
        if let registry, configuration.metricsPort != 0 {
            let metrics = try await MetricsServer.bind(registry: registry, host: configuration.common.metricsHost, port: configuration.metricsPort, group: group)
            services.append(ChannelService(metrics, name: "metrics"))
        }
        let connections = ConnectionTracker()
        let http = try await bindHTTPServer(application: application, host: configuration.host, port: configuration.port, group: group, connections: connections, maxConnections: configuration.maxConnections)
        services.append(HTTPServerService(listener: http, connections: connections, drainTimeout: .seconds(configuration.drainSeconds)))
        let port = http.localAddress?.port ?? configuration.port
        Logger(label: "VoteAPI").info("VoteAPI listening", metadata: [
            "address": "\(configuration.host):\(port)",
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

/// Binds the API's HTTP/1.1 listener; every connection it accepts is tracked in
/// `connections`, and one over `maxConnections` is closed at once.
func bindHTTPServer(application: APIApplication, host: String, port: Int, group: any EventLoopGroup, connections: ConnectionTracker, maxConnections: Int) async throws -> any Channel {
    try await ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 1024)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
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
        .bind(host: host, port: port)
        .get()
}

extension ChannelPipeline.SynchronousOperations {
    /// The connection's deadlines and the API's handler, which parses requests and writes
    /// answers itself.
    func addAPIHandlers(application: APIApplication) throws {
        let progress = RequestProgress()
        try addHandler(ConnectionDeadlines(limits: application.connectionLimits, progress: progress))
        try addHandler(APIHandler(application: application, progress: progress))
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
