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

    init(_ command: VoteConsumerCommand, environment: [String: String]) throws(ConfigurationError) {
        let env = environment
        common = try CommonSettings(command.common, environment: env, serviceUser: "paredao-consumer")
        retentionHours = try ConsumerSettings.retentionHours.value(flag: command.retentionHours, environment: env)
        store = try StoreConfiguration(
            kind: common.store, sqlitePath: common.sqlitePath, mongoURL: common.mongoURL,
            voteIDRetentionSeconds: retentionHours * 3600, appName: "paredao-consumer"
        )
        batchSize = try ConsumerSettings.batchSize.value(flag: command.batchSize, environment: env)
        batchMillis = try ConsumerSettings.batchMillis.value(flag: command.batchMillis, environment: env)
        prefetch = try ConsumerSettings.prefetch.value(flag: command.prefetch, environment: env)
        maxClockSkewSeconds = try ConsumerSettings.maxClockSkewSeconds.value(flag: command.maxClockSkewSeconds, environment: env)
        metricsPort = try ConsumerSettings.metricsPort.value(flag: command.metricsPort, environment: env)
    }

    /// What a vote must be to count: a poll of `catalog`, accepted while it was open, no
    /// longer ago than the ids are kept to catch repeats, and no later than the allowed skew.
    func validator(catalog: PollCatalog) -> VoteValidator {
        VoteValidator(catalog: catalog, maxAge: .seconds(retentionHours * 3600), maxSkew: .seconds(maxClockSkewSeconds))
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
