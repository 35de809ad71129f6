public import ArgumentParser
import Foundation
public import RabbitMQ
public import VoteShared

/// Settings both services read: the broker, the queue, the store, the poll and the log level.
public struct CommonSettings: Sendable {
    public static let amqpURL = Setting("PAREDAO_AMQP_URL", default: "amqp://127.0.0.1:5672/", help: "RabbitMQ URL, or the URLs of a cluster's nodes separated by commas (a failed connect or a lost connection moves to the next one, round robin); credentials in a URL win over the user and password file")
    public static let amqpUser = Setting("PAREDAO_AMQP_USER", default: "", help: "broker user when the URL names none", defaultLabel: "the service's own: paredao-api or paredao-consumer")
    public static let secretsDir = Setting("PAREDAO_SECRETS_DIR", default: "var/secrets", help: "folder of the secrets scripts/make-secrets.sh generates")
    public static let amqpPasswordFile = Setting("PAREDAO_AMQP_PASSWORD_FILE", default: "", help: "file holding that user's password", defaultLabel: "<secrets dir>/rabbitmq-<user>.password")
    public static let amqpHeartbeatSeconds = Setting("PAREDAO_AMQP_HEARTBEAT_SECONDS", default: 30, help: "AMQP heartbeat; a silent broker connection counts as lost after about twice this (0 = off)").within(0...600)
    public static let queue = Setting("PAREDAO_QUEUE", default: "votes", help: "queue for votes; rejects go to <queue>.dead")
    public static let queueType = Setting("PAREDAO_QUEUE_TYPE", default: "quorum", help: "type of the durable vote queue").oneOf(["quorum", "classic"])
    public static let store = Setting("PAREDAO_STORE", default: "sqlite", help: "where totals live").oneOf(["sqlite", "mongodb"])
    public static let sqlitePath = Setting("PAREDAO_SQLITE_PATH", default: "var/data/votes.sqlite", help: "SQLite database file (WAL)")
    public static let mongoURL = Setting("PAREDAO_MONGO_URL", default: "mongodb://127.0.0.1:27017/paredao?replicaSet=rs0", help: "MongoDB connection string (PAREDAO_STORE=mongodb); the path names the database")
    public static let pollFile = Setting("PAREDAO_POLL_FILE", default: "config/poll.json", help: "poll definition: id, title, 2–3 participants")
    public static let logLevel = Setting("PAREDAO_LOG_LEVEL", default: "info", help: "log level").oneOf(["trace", "debug", "info", "notice", "warning", "error", "critical"])
    public static let metricsHost = Setting("PAREDAO_METRICS_HOST", default: "127.0.0.1", help: "address of the local /metrics endpoint")

    public var amqpURL: String
    /// The brokers ``amqpURL`` lists, in order, each checked; credentials only where a URL
    /// names them (``brokerURLs()`` adds the service's own).
    public var amqpURLs: [AMQPURL]
    public var amqpUser: String
    public var amqpPasswordFile: String
    public var amqpHeartbeatSeconds: Int
    public var queue: String
    public var quorumQueue: Bool
    public var store: String
    public var sqlitePath: String
    public var mongoURL: String
    public var pollFile: String
    public var logLevel: String
    public var metricsHost: String

    /// Reads the settings; `serviceUser` is the broker user of the calling service.
    public init(_ options: CommonOptions, environment: [String: String], serviceUser: String) throws(ConfigurationError) {
        amqpURL = try Self.amqpURL.value(flag: options.amqpURL, environment: environment)
        amqpURLs = try Self.brokerList(amqpURL, source: options.amqpURL == nil ? Self.amqpURL.key : "--" + Self.amqpURL.flag)
        let user = try Self.amqpUser.value(flag: options.amqpUser, environment: environment)
        amqpUser = user.isEmpty ? serviceUser : user
        let passwordFile = try Self.amqpPasswordFile.value(flag: options.amqpPasswordFile, environment: environment)
        let secretsDir = try Self.secretsDir.value(flag: options.secretsDir, environment: environment)
        amqpPasswordFile = passwordFile.isEmpty ? "\(secretsDir)/rabbitmq-\(amqpUser).password" : passwordFile
        amqpHeartbeatSeconds = try Self.amqpHeartbeatSeconds.value(flag: options.amqpHeartbeatSeconds, environment: environment)
        queue = try Self.queue.value(flag: options.queue, environment: environment)
        quorumQueue = try Self.queueType.value(flag: options.queueType, environment: environment).lowercased() == "quorum"
        store = try Self.store.value(flag: options.store, environment: environment).lowercased()
        sqlitePath = try Self.sqlitePath.value(flag: options.sqlitePath, environment: environment)
        mongoURL = try Self.mongoURL.value(flag: options.mongoURL, environment: environment)
        pollFile = try Self.pollFile.value(flag: options.pollFile, environment: environment)
        logLevel = try Self.logLevel.value(flag: options.logLevel, environment: environment).lowercased()
        metricsHost = try Self.metricsHost.value(flag: options.metricsHost, environment: environment)
    }

    /// The broker password of ``amqpUser``: the first line of ``amqpPasswordFile``.
    public func amqpPassword() throws(ConfigurationError) -> String {
        guard let text = try? String(contentsOfFile: amqpPasswordFile, encoding: .utf8),
              let line = text.split(whereSeparator: \.isNewline).first, !line.isEmpty else {
            throw ConfigurationError(key: Self.amqpPasswordFile.key, message: "cannot read a password from \(amqpPasswordFile) (run scripts/make-secrets.sh, or put credentials in \(Self.amqpURL.key))")
        }
        return String(line)
    }

    /// The brokers to connect to, in order: ``amqpURLs``, each with the service's user and
    /// password unless its URL names its own.
    public func brokerURLs() throws(ConfigurationError) -> [AMQPURL] {
        guard amqpURLs.contains(where: { !$0.hasCredentials }) else { return amqpURLs }
        let password = try amqpPassword()
        return amqpURLs.map { $0.hasCredentials ? $0 : $0.withCredentials(user: amqpUser, password: password) }
    }

    /// Parses a comma-separated list of AMQP URLs; an empty, malformed or repeated entry is
    /// refused, naming its place in the list (and never its password).
    static func brokerList(_ text: String, source: String) throws(ConfigurationError) -> [AMQPURL] {
        let entries = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        var urls: [AMQPURL] = []
        for (index, entry) in entries.enumerated() {
            let place = entries.count == 1 ? "" : "entry \(index + 1) of \(entries.count): "
            guard !entry.isEmpty else { throw ConfigurationError(key: source, message: "\(place)empty (separate broker URLs with single commas)") }
            guard let url = AMQPURL(entry) else {
                throw ConfigurationError(key: source, message: "\(place)not an amqp://[user[:password]@]host[:port][/vhost] URL: \(Self.withoutPassword(entry))")
            }
            if let first = urls.firstIndex(where: { $0.host == url.host && $0.port == url.port && $0.virtualHost == url.virtualHost }) {
                throw ConfigurationError(key: source, message: "\(place)\(url.host):\(url.port) is entry \(first + 1) already")
            }
            urls.append(url)
        }
        return urls
    }

    /// `entry` with anything between `://` and the last `@` masked, for error messages.
    private static func withoutPassword(_ entry: String) -> String {
        guard let at = entry.lastIndex(of: "@"), let scheme = entry.range(of: "://"), scheme.upperBound <= at else { return entry }
        return entry[..<scheme.upperBound] + "…" + entry[at...]
    }

    /// The queue that receives messages the consumer cannot decode.
    public var deadLetterQueue: String { queue + ".dead" }
}

/// The command-line flags of ``CommonSettings``.
public struct CommonOptions: ParsableArguments {
    @Option(name: .customLong(CommonSettings.amqpURL.flag), help: CommonSettings.amqpURL.argumentHelp) var amqpURL: String?
    @Option(name: .customLong(CommonSettings.amqpUser.flag), help: CommonSettings.amqpUser.argumentHelp) var amqpUser: String?
    @Option(name: .customLong(CommonSettings.secretsDir.flag), help: CommonSettings.secretsDir.argumentHelp) var secretsDir: String?
    @Option(name: .customLong(CommonSettings.amqpPasswordFile.flag), help: CommonSettings.amqpPasswordFile.argumentHelp) var amqpPasswordFile: String?
    @Option(name: .customLong(CommonSettings.amqpHeartbeatSeconds.flag), help: CommonSettings.amqpHeartbeatSeconds.argumentHelp) var amqpHeartbeatSeconds: String?
    @Option(name: .customLong(CommonSettings.queue.flag), help: CommonSettings.queue.argumentHelp) var queue: String?
    @Option(name: .customLong(CommonSettings.queueType.flag), help: CommonSettings.queueType.argumentHelp) var queueType: String?
    @Option(name: .customLong(CommonSettings.store.flag), help: CommonSettings.store.argumentHelp) var store: String?
    @Option(name: .customLong(CommonSettings.sqlitePath.flag), help: CommonSettings.sqlitePath.argumentHelp) var sqlitePath: String?
    @Option(name: .customLong(CommonSettings.mongoURL.flag), help: CommonSettings.mongoURL.argumentHelp) var mongoURL: String?
    @Option(name: .customLong(CommonSettings.pollFile.flag), help: CommonSettings.pollFile.argumentHelp) var pollFile: String?
    @Option(name: .customLong(CommonSettings.logLevel.flag), help: CommonSettings.logLevel.argumentHelp) var logLevel: String?
    @Option(name: .customLong(CommonSettings.metricsHost.flag), help: CommonSettings.metricsHost.argumentHelp) var metricsHost: String?

    public init() {}
}
