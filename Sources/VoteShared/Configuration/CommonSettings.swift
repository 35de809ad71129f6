/// Settings both executables read: the broker, the queue, the store and the log level.
public struct CommonSettings: Sendable {
    public enum StoreKind: String, Sendable { case sqlite }

    public var amqpURL: String
    public var queue: String
    public var quorumQueue: Bool
    public var store: StoreKind
    public var sqlitePath: String
    public var pollFile: String
    public var logLevel: String

    public static let descriptions: [SettingDescription] = [
        SettingDescription("PAREDAO_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/", "RabbitMQ URL"),
        SettingDescription("PAREDAO_QUEUE", "votes", "queue for votes; rejects go to <queue>.dead"),
        SettingDescription("PAREDAO_QUEUE_TYPE", "quorum", "quorum or classic (durable either way)"),
        SettingDescription("PAREDAO_STORE", "sqlite", "where totals live: sqlite"),
        SettingDescription("PAREDAO_SQLITE_PATH", "var/data/votes.sqlite", "SQLite database file (WAL)"),
        SettingDescription("PAREDAO_POLL_FILE", "config/poll.json", "poll definition: id, title, 2–3 participants"),
        SettingDescription("PAREDAO_LOG_LEVEL", "info", "debug, info, warning or error"),
    ]

    public init(_ reader: ConfigurationReader) throws(ConfigurationError) {
        amqpURL = reader.string("PAREDAO_AMQP_URL", default: "amqp://guest:guest@127.0.0.1:5672/")
        queue = reader.string("PAREDAO_QUEUE", default: "votes")
        quorumQueue = try reader.oneOf("PAREDAO_QUEUE_TYPE", default: "quorum", allowed: ["quorum", "classic"]) == "quorum"
        let storeName = try reader.oneOf("PAREDAO_STORE", default: "sqlite", allowed: ["sqlite"])
        store = StoreKind(rawValue: storeName) ?? .sqlite
        sqlitePath = reader.string("PAREDAO_SQLITE_PATH", default: "var/data/votes.sqlite")
        pollFile = reader.string("PAREDAO_POLL_FILE", default: "config/poll.json")
        logLevel = try reader.oneOf("PAREDAO_LOG_LEVEL", default: "info", allowed: ["trace", "debug", "info", "notice", "warning", "error", "critical"])
    }

    /// The queue that receives messages the consumer cannot decode.
    public var deadLetterQueue: String { queue + ".dead" }
}
