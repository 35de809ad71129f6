import ArgumentParser
import ServiceSupport
import VoteShared
import VoteStore

/// Every setting of VoteConsumer: its environment variable, flag, default, range and help, once.
enum ConsumerSettings {
    static let batchSize = Setting("PAREDAO_CONSUMER_BATCH_SIZE", default: 1000, help: "most votes folded into one store transaction").within(1...100_000)
    static let batchMillis = Setting("PAREDAO_CONSUMER_BATCH_MS", default: 50, help: "longest wait to fill a batch, in milliseconds").within(1...60_000)
    static let prefetch = Setting("PAREDAO_CONSUMER_PREFETCH", default: 2000, help: "unacknowledged messages the broker may send (AMQP prefetch)").within(1...65_535)
    static let retentionHours = Setting("PAREDAO_DEDUP_RETENTION_HOURS", default: 24, help: "how long vote ids are kept to catch redeliveries").within(1...24 * 30)
    static let maxClockSkewSeconds = Setting("PAREDAO_MAX_CLOCK_SKEW_SECONDS", default: 300, help: "votes accepted later than now plus this are dead-lettered (older than the dedup retention too)").within(0...86_400)
    static let dedupMarginSeconds = Setting("PAREDAO_DEDUP_MARGIN_SECONDS", default: 900, help: "how much longer than the retention vote ids are kept (TTL and prune): at least the clock skew plus the store retry budget plus the batch window").within(0...86_400 * 7)
    static let counterShard = Setting("PAREDAO_COUNTER_SHARD", default: -1, help: "MongoDB: the hourly counter document this consumer increments; give each running consumer its own", defaultLabel: "a random one of 0–63").within(-1...StoreConfiguration.counterShards.upperBound)
    static let storeRetrySeconds = Setting("PAREDAO_STORE_RETRY_SECONDS", default: 0, help: "MongoDB: how long a batch is run again after transient errors (write conflicts, a new primary) before the broker redelivers it; at most the AMQP heartbeat", defaultLabel: "the AMQP heartbeat, at most 30").within(0...600)
    static let mongoAllowStandalone = Setting("PAREDAO_MONGO_ALLOW_STANDALONE", default: 0, help: "1 lets the consumer write to a MongoDB server without transactions (counted at least once); else it refuses to start").within(0...1)
    static let metricsPort = Setting("PAREDAO_CONSUMER_METRICS_PORT", default: 9102, help: "port of /metrics (0 disables)").within(0...65535)
}

/// `VoteConsumer`'s command line: every setting as a flag that wins over its environment variable.
struct VoteConsumerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "VoteConsumer",
        abstract: "Paredão vote consumer: RabbitMQ → hourly buckets in the store, exactly once.",
        discussion: "Every option can also be set through its environment variable (PAREDAO_…); a flag wins over the environment. SIGTERM or SIGINT finishes the batch and stops; a second one exits at once."
    )

    @OptionGroup(title: "Broker, store and logs") var common: CommonOptions
    @Option(name: .customLong(ConsumerSettings.batchSize.flag), help: ConsumerSettings.batchSize.argumentHelp) var batchSize: String?
    @Option(name: .customLong(ConsumerSettings.batchMillis.flag), help: ConsumerSettings.batchMillis.argumentHelp) var batchMillis: String?
    @Option(name: .customLong(ConsumerSettings.prefetch.flag), help: ConsumerSettings.prefetch.argumentHelp) var prefetch: String?
    @Option(name: .customLong(ConsumerSettings.retentionHours.flag), help: ConsumerSettings.retentionHours.argumentHelp) var retentionHours: String?
    @Option(name: .customLong(ConsumerSettings.maxClockSkewSeconds.flag), help: ConsumerSettings.maxClockSkewSeconds.argumentHelp) var maxClockSkewSeconds: String?
    @Option(name: .customLong(ConsumerSettings.dedupMarginSeconds.flag), help: ConsumerSettings.dedupMarginSeconds.argumentHelp) var dedupMarginSeconds: String?
    @Option(name: .customLong(ConsumerSettings.counterShard.flag), help: ConsumerSettings.counterShard.argumentHelp) var counterShard: String?
    @Option(name: .customLong(ConsumerSettings.storeRetrySeconds.flag), help: ConsumerSettings.storeRetrySeconds.argumentHelp) var storeRetrySeconds: String?
    @Option(name: .customLong(ConsumerSettings.mongoAllowStandalone.flag), help: ConsumerSettings.mongoAllowStandalone.argumentHelp) var mongoAllowStandalone: String?
    @Option(name: .customLong(ConsumerSettings.metricsPort.flag), help: ConsumerSettings.metricsPort.argumentHelp) var metricsPort: String?
}

/// Everything VoteConsumer reads at start-up.
struct ConsumerConfiguration: Sendable {
    var common: CommonSettings
    var store: StoreConfiguration
    var batchSize: Int
    var batchMillis: Int
    var prefetch: Int
    var retentionHours: Int
    var maxClockSkewSeconds: Int
    var metricsPort: Int
    /// Votes older than the retention are refused; ids are kept for the retention plus a margin.
    var dedupWindow: DedupWindow

    init(_ command: VoteConsumerCommand, environment: [String: String]) throws(ConfigurationError) {
        let env = environment
        common = try CommonSettings(command.common, environment: env, serviceUser: "paredao-consumer")
        retentionHours = try ConsumerSettings.retentionHours.value(flag: command.retentionHours, environment: env)
        batchSize = try ConsumerSettings.batchSize.value(flag: command.batchSize, environment: env)
        batchMillis = try ConsumerSettings.batchMillis.value(flag: command.batchMillis, environment: env)
        prefetch = try ConsumerSettings.prefetch.value(flag: command.prefetch, environment: env)
        maxClockSkewSeconds = try ConsumerSettings.maxClockSkewSeconds.value(flag: command.maxClockSkewSeconds, environment: env)
        metricsPort = try ConsumerSettings.metricsPort.value(flag: command.metricsPort, environment: env)
        var retrySeconds = try ConsumerSettings.storeRetrySeconds.value(flag: command.storeRetrySeconds, environment: env)
        if retrySeconds == 0 { retrySeconds = common.amqpHeartbeatSeconds > 0 ? min(common.amqpHeartbeatSeconds, 30) : 30 }
        if common.amqpHeartbeatSeconds > 0 && retrySeconds > common.amqpHeartbeatSeconds {
            // The thread retrying serves no heartbeats: past about two of them the broker
            // closes the connection and redelivers the batch (counting toward its limit).
            throw ConfigurationError(key: ConsumerSettings.storeRetrySeconds.key, message: "\(retrySeconds) s is longer than the AMQP heartbeat (\(common.amqpHeartbeatSeconds) s, \(CommonSettings.amqpHeartbeatSeconds.key)), during which the consumer cannot answer the broker")
        }
        let margin = try ConsumerSettings.dedupMarginSeconds.value(flag: command.dedupMarginSeconds, environment: env)
        let needed = maxClockSkewSeconds + retrySeconds + (batchMillis + 999) / 1000
        guard margin >= needed else {
            throw ConfigurationError(key: ConsumerSettings.dedupMarginSeconds.key, message: "\(margin) s is less than the clock skew, the store retry budget and the batch window together (\(maxClockSkewSeconds) + \(retrySeconds) + \((batchMillis + 999) / 1000) = \(needed) s): an id could be forgotten before the vote that was checked against it commits")
        }
        dedupWindow = DedupWindow(acceptedSeconds: retentionHours * 3600, marginSeconds: margin)
        var shard = try ConsumerSettings.counterShard.value(flag: command.counterShard, environment: env)
        if shard < 0 { shard = Int.random(in: 0..<64) }
        let allowStandalone = try ConsumerSettings.mongoAllowStandalone.value(flag: command.mongoAllowStandalone, environment: env) == 1
        store = try StoreConfiguration(
            kind: common.store, sqlitePath: common.sqlitePath, mongoURL: common.mongoURL,
            voteIDRetentionSeconds: dedupWindow.keptSeconds, appName: "paredao-consumer",
            counterShard: shard, allowStandalone: allowStandalone, retryBudget: .seconds(retrySeconds)
        )
    }

    /// What a vote must be to count: a poll of `catalog`, accepted while it was open, no
    /// longer ago than the dedup window accepts, and no later than the allowed skew.
    func validator(catalog: PollCatalog) -> VoteValidator {
        VoteValidator(catalog: catalog, maxAge: .seconds(dedupWindow.acceptedSeconds), maxSkew: .seconds(maxClockSkewSeconds))
    }

    /// The polls of the store, seeded from `seed` (the definition file) when it has none.
    func pollCatalog(seed: Poll) -> PollCatalog {
        PollCatalog(loader: PollLoader(store: store, seed: seed))
    }

    /// The configuration `arguments` and `environment` give (tests, tools).
    init(arguments: [String] = [], environment: [String: String]) throws {
        try self.init(VoteConsumerCommand.parse(arguments), environment: environment)
    }
}
