import VoteShared

/// Everything VoteConsumer reads at start-up.
struct ConsumerConfiguration: Sendable {
    var common: CommonSettings
    var batchSize: Int
    var batchMillis: Int
    var prefetch: Int
    var retentionHours: Int
    var metricsHost: String
    var metricsPort: Int

    static let descriptions: [SettingDescription] = CommonSettings.descriptions + [
        SettingDescription("PAREDAO_CONSUMER_BATCH_SIZE", "1000", "most votes folded into one store transaction"),
        SettingDescription("PAREDAO_CONSUMER_BATCH_MS", "50", "longest wait to fill a batch, in milliseconds"),
        SettingDescription("PAREDAO_CONSUMER_PREFETCH", "2000", "unacknowledged messages the broker may send (AMQP prefetch)"),
        SettingDescription("PAREDAO_DEDUP_RETENTION_HOURS", "24", "how long vote ids are kept to catch redeliveries"),
        SettingDescription("PAREDAO_METRICS_HOST", "127.0.0.1", "address of the local /metrics endpoint"),
        SettingDescription("PAREDAO_CONSUMER_METRICS_PORT", "9102", "port of /metrics (0 disables)"),
    ]

    init(_ reader: ConfigurationReader) throws(ConfigurationError) {
        common = try CommonSettings(reader)
        batchSize = try reader.int("PAREDAO_CONSUMER_BATCH_SIZE", default: 1000, in: 1...100_000)
        batchMillis = try reader.int("PAREDAO_CONSUMER_BATCH_MS", default: 50, in: 1...60_000)
        prefetch = try reader.int("PAREDAO_CONSUMER_PREFETCH", default: 2000, in: 1...65_535)
        retentionHours = try reader.int("PAREDAO_DEDUP_RETENTION_HOURS", default: 24, in: 1...24 * 30)
        metricsHost = reader.string("PAREDAO_METRICS_HOST", default: "127.0.0.1")
        metricsPort = try reader.int("PAREDAO_CONSUMER_METRICS_PORT", default: 9102, in: 0...65535)
    }
}
