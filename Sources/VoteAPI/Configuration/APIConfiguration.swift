import ArgumentParser
import NIOCore
import ServiceSupport
import VoteShared
import VoteStore

/// Every setting of VoteAPI: its environment variable, flag, default, range and help, once.
enum APISettings {
    static let host = Setting("PAREDAO_API_HOST", default: "127.0.0.1", help: "address the HTTP API binds")
    static let port = Setting("PAREDAO_API_PORT", default: 8080, help: "port of the HTTP API (0 picks a free one)").within(0...65535)
    static let metricsPort = Setting("PAREDAO_API_METRICS_PORT", default: 9101, help: "port of /metrics (0 disables)").within(0...65535)
    static let eventLoops = Setting("PAREDAO_EVENT_LOOPS", default: System.coreCount, help: "event-loop threads", defaultLabel: "number of cores").within(1...256)
    static let maxBodyBytes = Setting("PAREDAO_MAX_BODY_BYTES", default: 1024, help: "largest request body; larger gets 413").within(64...1_048_576)
    static let maxAdminBodyBytes = Setting("PAREDAO_MAX_ADMIN_BODY_BYTES", default: 8192, help: "largest request body of an admin route (a poll with its participants); larger gets 413").within(64...1_048_576)
    static let confirmTimeoutMillis = Setting("PAREDAO_CONFIRM_TIMEOUT_MS", default: 5000, help: "wait for a broker confirm before answering 503").within(10...120_000)
    static let maxVotesPerMessage = Setting("PAREDAO_MAX_VOTES_PER_MESSAGE", default: 512, help: "votes packed into one AMQP message at most").within(1...VoteMessage.maximumVotes)
    static let maxInFlight = Setting("PAREDAO_MAX_IN_FLIGHT", default: 2048, help: "unconfirmed AMQP messages at once (group commit window)").within(1...1_000_000)
    static let maxQueuedVotes = Setting("PAREDAO_MAX_QUEUED_VOTES", default: 100_000, help: "votes waiting for the publisher before new ones get 503").within(1...10_000_000)
    static let lingerMicros = Setting("PAREDAO_PUBLISH_LINGER_US", default: 6000, help: "under load, votes wait up to this long to share an AMQP message (0 = never)").within(0...100_000)
    static let lingerAboveRate = Setting("PAREDAO_PUBLISH_LINGER_ABOVE", default: 4000, help: "votes/s above which the publisher lingers").within(0...100_000_000)
    static let totalsRefreshMillis = Setting("PAREDAO_TOTALS_REFRESH_MS", default: 1000, help: "how often the totals snapshot is re-read from the store").within(10...60_000)
    static let sessionLifetimeSeconds = Setting("PAREDAO_SESSION_TTL_SECONDS", default: 1800, help: "session token lifetime").within(1...86_400 * 7)
    static let sessionBudget = Setting("PAREDAO_SESSION_BUDGET", default: 200, help: "votes one session token may cast").within(1...Int(UInt32.max))
    static let voteRate = Setting("PAREDAO_VOTE_RATE", default: 1.0, help: "votes per second per session token (sustained)").within(0.001...1_000_000)
    static let voteBurst = Setting("PAREDAO_VOTE_BURST", default: 5, help: "votes per session token in a burst").within(1...1_000_000)
    static let challengeLifetimeSeconds = Setting("PAREDAO_CHALLENGE_TTL_SECONDS", default: 120, help: "how long a challenge may be solved").within(5...3600)
    static let baseDifficulty = Setting("PAREDAO_POW_DIFFICULTY", default: 16, help: "leading zero bits asked when traffic is normal").within(0...Challenge.maximumDifficulty)
    static let maxDifficulty = Setting("PAREDAO_POW_MAX_DIFFICULTY", default: 19, help: "cap of the adaptive difficulty").within(0...Challenge.maximumDifficulty)
    static let powOverallStep = Setting("PAREDAO_POW_OVERALL_STEP", default: 3000, help: "challenges per 10 s at this instance, all networks together, that add one difficulty bit; each doubling adds another").within(1...100_000_000)
    static let networkSessionRate = Setting("PAREDAO_NETWORK_SESSION_RATE", default: 20.0, help: "challenges, and sessions, per client network (/24 or /48) per second, sustained; more get 429").within(0.01...1_000_000)
    static let networkSessionBurst = Setting("PAREDAO_NETWORK_SESSION_BURST", default: 60, help: "challenges, and sessions, per client network in a burst").within(1...10_000_000)
    static let proxySocket = Setting("PAREDAO_API_SOCKET", default: "", help: "also listen on this unix socket, for the local nginx: only its connections may say who the client is (X-Real-IP); empty = none")
    static let trustedProxies = Setting("PAREDAO_TRUSTED_PROXIES", default: [String](), help: "TCP peers whose X-Real-IP / X-Forwarded-For is believed (a proxy on another host); empty = none, since any local process can reach the TCP port")
    static let maxTrackedSessions = Setting("PAREDAO_MAX_TRACKED_SESSIONS", default: 1_000_000, help: "sessions whose rate and budget are tracked in memory").within(16...100_000_000)
    static let verifiedTokenSlots = Setting("PAREDAO_VERIFIED_TOKEN_SLOTS", default: 262_144, help: "session tokens remembered as verified, so repeat votes skip the HMAC (80 B each; 0 = off)").within(0...100_000_000)
    static let idleTimeoutSeconds = Setting("PAREDAO_IDLE_TIMEOUT_SECONDS", default: 75, help: "a keep-alive connection idle this long is closed (keep it above nginx's upstream keepalive_timeout, 60 s)").within(1...3600)
    static let headerTimeoutSeconds = Setting("PAREDAO_HEADER_TIMEOUT_SECONDS", default: 10, help: "a request's headers must arrive within this long of its first byte, else 408").within(1...300)
    static let bodyTimeoutSeconds = Setting("PAREDAO_BODY_TIMEOUT_SECONDS", default: 10, help: "a request's body must arrive within this long of its headers, else 408").within(1...300)
    static let maxConnections = Setting("PAREDAO_MAX_CONNECTIONS", default: 16384, help: "open connections at most; more are closed at once").within(1...1_000_000)
    static let maxHeaderFields = Setting("PAREDAO_MAX_HEADER_FIELDS", default: 64, help: "header fields per request; more get 431").within(4...10_000)
    static let maxHeaderBytes = Setting("PAREDAO_MAX_HEADER_BYTES", default: 8192, help: "bytes of header names and values per request; more get 431").within(256...1_048_576)
    static let drainSeconds = Setting("PAREDAO_DRAIN_SECONDS", default: 10, help: "on SIGTERM, how long open requests (votes waiting for their confirm) may take to finish").within(0...300)
    static let tokenKeysFile = Setting("PAREDAO_TOKEN_KEYS_FILE", default: "var/secrets/token-keys", help: "HMAC keys (id:base64 per line, last signs)")
    static let tokenKeys = Setting("PAREDAO_TOKEN_KEYS", default: "", help: "inline keys, comma-separated, instead of the file")
    static let pollsRefreshMillis = Setting("PAREDAO_POLLS_REFRESH_MS", default: 1000, help: "how often the polls are re-read from the store (an admin change reaches every instance within this)").within(10...60_000)
    static let pollCloseDelayMillis = Setting("PAREDAO_POLL_CLOSE_DELAY_MS", default: 2500, help: "\"close now\" stops counting votes this long after the click, so every instance knows first (more than the polls refresh)").within(0...600_000)
    static let adminTokenFile = Setting("PAREDAO_ADMIN_TOKEN_FILE", default: "var/secrets/admin-token", help: "admin credentials (name:secret per line); missing = admin API disabled")
    static let adminRate = Setting("PAREDAO_ADMIN_RATE", default: 10.0, help: "authenticated admin requests per credential per second, sustained; more get 429").within(0.001...1000)
    static let adminBurst = Setting("PAREDAO_ADMIN_BURST", default: 200, help: "authenticated admin requests per credential in a burst").within(1...100_000)
    static let adminFailureRate = Setting("PAREDAO_ADMIN_FAILURE_RATE", default: 0.2, help: "refused admin attempts (no or wrong credential) per client network per second, sustained; more get 429").within(0.001...1000)
    static let adminFailureBurst = Setting("PAREDAO_ADMIN_FAILURE_BURST", default: 10, help: "refused admin attempts per client network in a burst").within(1...10_000)
    static let adminRefusalWindowSeconds = Setting("PAREDAO_ADMIN_REFUSAL_WINDOW_SECONDS", default: 60, help: "refused admin attempts are summed into one audit row per window this long").within(1...86_400)
}

/// `VoteAPI`'s command line: every setting as a flag that wins over its environment variable.
struct VoteAPICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "VoteAPI",
        abstract: "Paredão vote API: challenges, session tokens, votes (published to RabbitMQ with confirms) and totals.",
        discussion: "Every option can also be set through its environment variable (PAREDAO_…); a flag wins over the environment. SIGTERM or SIGINT shuts down gracefully; a second one exits at once."
    )

    @OptionGroup(title: "Broker, store and logs") var common: CommonOptions
    @Option(name: .customLong(APISettings.host.flag), help: APISettings.host.argumentHelp) var host: String?
    @Option(name: .customLong(APISettings.port.flag), help: APISettings.port.argumentHelp) var port: String?
    @Option(name: .customLong(APISettings.metricsPort.flag), help: APISettings.metricsPort.argumentHelp) var metricsPort: String?
    @Option(name: .customLong(APISettings.eventLoops.flag), help: APISettings.eventLoops.argumentHelp) var eventLoops: String?
    @Option(name: .customLong(APISettings.maxBodyBytes.flag), help: APISettings.maxBodyBytes.argumentHelp) var maxBodyBytes: String?
    @Option(name: .customLong(APISettings.maxAdminBodyBytes.flag), help: APISettings.maxAdminBodyBytes.argumentHelp) var maxAdminBodyBytes: String?
    @Option(name: .customLong(APISettings.confirmTimeoutMillis.flag), help: APISettings.confirmTimeoutMillis.argumentHelp) var confirmTimeoutMillis: String?
    @Option(name: .customLong(APISettings.maxVotesPerMessage.flag), help: APISettings.maxVotesPerMessage.argumentHelp) var maxVotesPerMessage: String?
    @Option(name: .customLong(APISettings.maxInFlight.flag), help: APISettings.maxInFlight.argumentHelp) var maxInFlight: String?
    @Option(name: .customLong(APISettings.maxQueuedVotes.flag), help: APISettings.maxQueuedVotes.argumentHelp) var maxQueuedVotes: String?
    @Option(name: .customLong(APISettings.lingerMicros.flag), help: APISettings.lingerMicros.argumentHelp) var lingerMicros: String?
    @Option(name: .customLong(APISettings.lingerAboveRate.flag), help: APISettings.lingerAboveRate.argumentHelp) var lingerAboveRate: String?
    @Option(name: .customLong(APISettings.totalsRefreshMillis.flag), help: APISettings.totalsRefreshMillis.argumentHelp) var totalsRefreshMillis: String?
    @Option(name: .customLong(APISettings.sessionLifetimeSeconds.flag), help: APISettings.sessionLifetimeSeconds.argumentHelp) var sessionLifetimeSeconds: String?
    @Option(name: .customLong(APISettings.sessionBudget.flag), help: APISettings.sessionBudget.argumentHelp) var sessionBudget: String?
    @Option(name: .customLong(APISettings.voteRate.flag), help: APISettings.voteRate.argumentHelp) var voteRate: String?
    @Option(name: .customLong(APISettings.voteBurst.flag), help: APISettings.voteBurst.argumentHelp) var voteBurst: String?
    @Option(name: .customLong(APISettings.challengeLifetimeSeconds.flag), help: APISettings.challengeLifetimeSeconds.argumentHelp) var challengeLifetimeSeconds: String?
    @Option(name: .customLong(APISettings.baseDifficulty.flag), help: APISettings.baseDifficulty.argumentHelp) var baseDifficulty: String?
    @Option(name: .customLong(APISettings.maxDifficulty.flag), help: APISettings.maxDifficulty.argumentHelp) var maxDifficulty: String?
    @Option(name: .customLong(APISettings.powOverallStep.flag), help: APISettings.powOverallStep.argumentHelp) var powOverallStep: String?
    @Option(name: .customLong(APISettings.networkSessionRate.flag), help: APISettings.networkSessionRate.argumentHelp) var networkSessionRate: String?
    @Option(name: .customLong(APISettings.networkSessionBurst.flag), help: APISettings.networkSessionBurst.argumentHelp) var networkSessionBurst: String?
    @Option(name: .customLong(APISettings.proxySocket.flag), help: APISettings.proxySocket.argumentHelp) var proxySocket: String?
    @Option(name: .customLong(APISettings.trustedProxies.flag), help: APISettings.trustedProxies.argumentHelp) var trustedProxies: String?
    @Option(name: .customLong(APISettings.maxTrackedSessions.flag), help: APISettings.maxTrackedSessions.argumentHelp) var maxTrackedSessions: String?
    @Option(name: .customLong(APISettings.verifiedTokenSlots.flag), help: APISettings.verifiedTokenSlots.argumentHelp) var verifiedTokenSlots: String?
    @Option(name: .customLong(APISettings.idleTimeoutSeconds.flag), help: APISettings.idleTimeoutSeconds.argumentHelp) var idleTimeoutSeconds: String?
    @Option(name: .customLong(APISettings.headerTimeoutSeconds.flag), help: APISettings.headerTimeoutSeconds.argumentHelp) var headerTimeoutSeconds: String?
    @Option(name: .customLong(APISettings.bodyTimeoutSeconds.flag), help: APISettings.bodyTimeoutSeconds.argumentHelp) var bodyTimeoutSeconds: String?
    @Option(name: .customLong(APISettings.maxConnections.flag), help: APISettings.maxConnections.argumentHelp) var maxConnections: String?
    @Option(name: .customLong(APISettings.maxHeaderFields.flag), help: APISettings.maxHeaderFields.argumentHelp) var maxHeaderFields: String?
    @Option(name: .customLong(APISettings.maxHeaderBytes.flag), help: APISettings.maxHeaderBytes.argumentHelp) var maxHeaderBytes: String?
    @Option(name: .customLong(APISettings.drainSeconds.flag), help: APISettings.drainSeconds.argumentHelp) var drainSeconds: String?
    @Option(name: .customLong(APISettings.tokenKeysFile.flag), help: APISettings.tokenKeysFile.argumentHelp) var tokenKeysFile: String?
    @Option(name: .customLong(APISettings.tokenKeys.flag), help: APISettings.tokenKeys.argumentHelp) var tokenKeys: String?
    @Option(name: .customLong(APISettings.pollsRefreshMillis.flag), help: APISettings.pollsRefreshMillis.argumentHelp) var pollsRefreshMillis: String?
    @Option(name: .customLong(APISettings.pollCloseDelayMillis.flag), help: APISettings.pollCloseDelayMillis.argumentHelp) var pollCloseDelayMillis: String?
    @Option(name: .customLong(APISettings.adminTokenFile.flag), help: APISettings.adminTokenFile.argumentHelp) var adminTokenFile: String?
    @Option(name: .customLong(APISettings.adminRate.flag), help: APISettings.adminRate.argumentHelp) var adminRate: String?
    @Option(name: .customLong(APISettings.adminBurst.flag), help: APISettings.adminBurst.argumentHelp) var adminBurst: String?
    @Option(name: .customLong(APISettings.adminFailureRate.flag), help: APISettings.adminFailureRate.argumentHelp) var adminFailureRate: String?
    @Option(name: .customLong(APISettings.adminFailureBurst.flag), help: APISettings.adminFailureBurst.argumentHelp) var adminFailureBurst: String?
    @Option(name: .customLong(APISettings.adminRefusalWindowSeconds.flag), help: APISettings.adminRefusalWindowSeconds.argumentHelp) var adminRefusalWindowSeconds: String?
}

/// Everything VoteAPI reads at start-up.
struct APIConfiguration: Sendable {
    var common: CommonSettings
    var store: StoreConfiguration
    var host: String
    var port: Int
    var metricsPort: Int
    var eventLoops: Int
    var maxBodyBytes: Int
    var maxAdminBodyBytes: Int
    var confirmTimeoutMillis: Int
    var maxVotesPerMessage: Int
    var maxInFlightMessages: Int
    var maxQueuedVotes: Int
    var publishLingerMicros: Int
    var publishLingerAboveRate: Int
    var totalsRefreshMillis: Int
    var sessionLifetimeSeconds: Int
    var sessionBudget: Int
    var voteRatePerSecond: Double
    var voteBurst: Int
    var challengeLifetimeSeconds: Int
    var baseDifficulty: Int
    var maxDifficulty: Int
    var networkSessionRate: Double
    var powOverallStep: Int
    var networkSessionBurst: Int
    var trustedProxies: [String]
    var proxySocket: String
    var maxTrackedSessions: Int
    var verifiedTokenSlots: Int
    var connectionLimits: ConnectionLimits
    var maxConnections: Int
    var drainSeconds: Int
    var tokenKeysFile: String
    var tokenKeys: String
    var pollsRefreshMillis: Int
    var pollCloseDelayMillis: Int
    var adminTokenFile: String
    var adminRate: Double
    var adminBurst: Int
    var adminFailureRate: Double
    var adminFailureBurst: Int
    var adminRefusalWindowSeconds: Int

    init(_ command: VoteAPICommand, environment: [String: String]) throws(ConfigurationError) {
        let env = environment
        common = try CommonSettings(command.common, environment: env, serviceUser: "paredao-api")
        store = try StoreConfiguration(kind: common.store, sqlitePath: common.sqlitePath, mongoURL: common.mongoURL, appName: "paredao-api")
        host = try APISettings.host.value(flag: command.host, environment: env)
        port = try APISettings.port.value(flag: command.port, environment: env)
        metricsPort = try APISettings.metricsPort.value(flag: command.metricsPort, environment: env)
        eventLoops = try APISettings.eventLoops.value(flag: command.eventLoops, environment: env)
        maxBodyBytes = try APISettings.maxBodyBytes.value(flag: command.maxBodyBytes, environment: env)
        maxAdminBodyBytes = try APISettings.maxAdminBodyBytes.value(flag: command.maxAdminBodyBytes, environment: env)
        confirmTimeoutMillis = try APISettings.confirmTimeoutMillis.value(flag: command.confirmTimeoutMillis, environment: env)
        maxVotesPerMessage = try APISettings.maxVotesPerMessage.value(flag: command.maxVotesPerMessage, environment: env)
        maxInFlightMessages = try APISettings.maxInFlight.value(flag: command.maxInFlight, environment: env)
        maxQueuedVotes = try APISettings.maxQueuedVotes.value(flag: command.maxQueuedVotes, environment: env)
        publishLingerMicros = try APISettings.lingerMicros.value(flag: command.lingerMicros, environment: env)
        publishLingerAboveRate = try APISettings.lingerAboveRate.value(flag: command.lingerAboveRate, environment: env)
        totalsRefreshMillis = try APISettings.totalsRefreshMillis.value(flag: command.totalsRefreshMillis, environment: env)
        sessionLifetimeSeconds = try APISettings.sessionLifetimeSeconds.value(flag: command.sessionLifetimeSeconds, environment: env)
        sessionBudget = try APISettings.sessionBudget.value(flag: command.sessionBudget, environment: env)
        voteRatePerSecond = try APISettings.voteRate.value(flag: command.voteRate, environment: env)
        voteBurst = try APISettings.voteBurst.value(flag: command.voteBurst, environment: env)
        challengeLifetimeSeconds = try APISettings.challengeLifetimeSeconds.value(flag: command.challengeLifetimeSeconds, environment: env)
        baseDifficulty = try APISettings.baseDifficulty.value(flag: command.baseDifficulty, environment: env)
        maxDifficulty = try APISettings.maxDifficulty.value(flag: command.maxDifficulty, environment: env)
        powOverallStep = try APISettings.powOverallStep.value(flag: command.powOverallStep, environment: env)
        networkSessionRate = try APISettings.networkSessionRate.value(flag: command.networkSessionRate, environment: env)
        networkSessionBurst = try APISettings.networkSessionBurst.value(flag: command.networkSessionBurst, environment: env)
        trustedProxies = try APISettings.trustedProxies.value(flag: command.trustedProxies, environment: env)
        proxySocket = try APISettings.proxySocket.value(flag: command.proxySocket, environment: env)
        guard proxySocket.utf8.count < 100 else {
            throw ConfigurationError(key: APISettings.proxySocket.key, message: "a unix socket path must be shorter than 100 bytes (\(proxySocket.utf8.count))")
        }
        maxTrackedSessions = try APISettings.maxTrackedSessions.value(flag: command.maxTrackedSessions, environment: env)
        verifiedTokenSlots = try APISettings.verifiedTokenSlots.value(flag: command.verifiedTokenSlots, environment: env)
        connectionLimits = ConnectionLimits(
            idle: .seconds(try APISettings.idleTimeoutSeconds.value(flag: command.idleTimeoutSeconds, environment: env)),
            header: .seconds(try APISettings.headerTimeoutSeconds.value(flag: command.headerTimeoutSeconds, environment: env)),
            body: .seconds(try APISettings.bodyTimeoutSeconds.value(flag: command.bodyTimeoutSeconds, environment: env)),
            maxHeaderFields: try APISettings.maxHeaderFields.value(flag: command.maxHeaderFields, environment: env),
            maxHeaderBytes: try APISettings.maxHeaderBytes.value(flag: command.maxHeaderBytes, environment: env)
        )
        maxConnections = try APISettings.maxConnections.value(flag: command.maxConnections, environment: env)
        drainSeconds = try APISettings.drainSeconds.value(flag: command.drainSeconds, environment: env)
        tokenKeysFile = try APISettings.tokenKeysFile.value(flag: command.tokenKeysFile, environment: env)
        tokenKeys = try APISettings.tokenKeys.value(flag: command.tokenKeys, environment: env)
        pollsRefreshMillis = try APISettings.pollsRefreshMillis.value(flag: command.pollsRefreshMillis, environment: env)
        pollCloseDelayMillis = try APISettings.pollCloseDelayMillis.value(flag: command.pollCloseDelayMillis, environment: env)
        adminTokenFile = try APISettings.adminTokenFile.value(flag: command.adminTokenFile, environment: env)
        adminRate = try APISettings.adminRate.value(flag: command.adminRate, environment: env)
        adminBurst = try APISettings.adminBurst.value(flag: command.adminBurst, environment: env)
        adminFailureRate = try APISettings.adminFailureRate.value(flag: command.adminFailureRate, environment: env)
        adminFailureBurst = try APISettings.adminFailureBurst.value(flag: command.adminFailureBurst, environment: env)
        adminRefusalWindowSeconds = try APISettings.adminRefusalWindowSeconds.value(flag: command.adminRefusalWindowSeconds, environment: env)
        guard maxDifficulty >= baseDifficulty else {
            throw ConfigurationError(key: APISettings.maxDifficulty.key, message: "must be at least \(APISettings.baseDifficulty.key) (\(baseDifficulty))")
        }
    }

    /// The configuration `arguments` and `environment` give (tests, tools).
    init(arguments: [String] = [], environment: [String: String]) throws {
        try self.init(VoteAPICommand.parse(arguments), environment: environment)
    }
}

extension APIConfiguration {
    /// The largest body a request to `uri` may have: the admin routes take a whole poll
    /// (up to 3 participants with names and photo URLs), every other route a few fields.
    /// A path that only looks like an admin one is still answered 404 after its body.
    func bodyLimit(of uri: String) -> Int {
        uri.utf8.starts(with: Route.adminPrefix.utf8) ? maxAdminBodyBytes : maxBodyBytes
    }
}
