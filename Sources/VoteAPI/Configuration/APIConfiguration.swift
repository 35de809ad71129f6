import NIOCore
import VoteShared

/// Everything VoteAPI reads at start-up.
struct APIConfiguration: Sendable {
    var common: CommonSettings
    var host: String
    var port: Int
    var metricsHost: String
    var metricsPort: Int
    var eventLoops: Int
    var maxBodyBytes: Int
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
    var trustedProxies: [String]
    var maxTrackedSessions: Int
    var verifiedTokenSlots: Int

    static let descriptions: [SettingDescription] = CommonSettings.descriptions + [
        SettingDescription("PAREDAO_API_HOST", "127.0.0.1", "address the HTTP API binds"),
        SettingDescription("PAREDAO_API_PORT", "8080", "port of the HTTP API (0 picks a free one)"),
        SettingDescription("PAREDAO_METRICS_HOST", "127.0.0.1", "address of the local /metrics endpoint"),
        SettingDescription("PAREDAO_API_METRICS_PORT", "9101", "port of /metrics (0 disables)"),
        SettingDescription("PAREDAO_EVENT_LOOPS", "number of cores", "event-loop threads"),
        SettingDescription("PAREDAO_MAX_BODY_BYTES", "1024", "largest request body; larger gets 413"),
        SettingDescription("PAREDAO_CONFIRM_TIMEOUT_MS", "5000", "wait for a broker confirm before answering 503"),
        SettingDescription("PAREDAO_MAX_VOTES_PER_MESSAGE", "512", "votes packed into one AMQP message at most"),
        SettingDescription("PAREDAO_MAX_IN_FLIGHT", "2048", "unconfirmed AMQP messages at once (group commit window)"),
        SettingDescription("PAREDAO_MAX_QUEUED_VOTES", "100000", "votes waiting for the publisher before new ones get 503"),
        SettingDescription("PAREDAO_PUBLISH_LINGER_US", "3000", "under load, votes wait up to this long to share an AMQP message (0 = never)"),
        SettingDescription("PAREDAO_PUBLISH_LINGER_ABOVE", "4000", "votes/s above which the publisher lingers"),
        SettingDescription("PAREDAO_TOTALS_REFRESH_MS", "1000", "how often at most the totals snapshot is re-read"),
        SettingDescription("PAREDAO_SESSION_TTL_SECONDS", "1800", "session token lifetime"),
        SettingDescription("PAREDAO_SESSION_BUDGET", "200", "votes one session token may cast"),
        SettingDescription("PAREDAO_VOTE_RATE", "1", "votes per second per session token (sustained)"),
        SettingDescription("PAREDAO_VOTE_BURST", "5", "votes per session token in a burst"),
        SettingDescription("PAREDAO_CHALLENGE_TTL_SECONDS", "120", "how long a challenge may be solved"),
        SettingDescription("PAREDAO_POW_DIFFICULTY", "16", "leading zero bits asked when traffic is normal"),
        SettingDescription("PAREDAO_POW_MAX_DIFFICULTY", "19", "cap of the adaptive difficulty"),
        SettingDescription("PAREDAO_TRUSTED_PROXIES", "127.0.0.1,::1", "peers whose X-Real-IP / X-Forwarded-For is believed"),
        SettingDescription("PAREDAO_MAX_TRACKED_SESSIONS", "1000000", "sessions whose rate and budget are tracked in memory"),
        SettingDescription("PAREDAO_VERIFIED_TOKEN_SLOTS", "262144", "session tokens remembered as verified, so repeat votes skip the HMAC (80 B each; 0 = off)"),
        SettingDescription("PAREDAO_TOKEN_KEYS_FILE", "var/secrets/token-keys", "HMAC keys (id:base64 per line, last signs)"),
        SettingDescription("PAREDAO_TOKEN_KEYS", "(unset)", "inline keys, comma-separated, instead of the file"),
    ]

    init(_ reader: ConfigurationReader) throws(ConfigurationError) {
        common = try CommonSettings(reader)
        host = reader.string("PAREDAO_API_HOST", default: "127.0.0.1")
        port = try reader.int("PAREDAO_API_PORT", default: 8080, in: 0...65535)
        metricsHost = reader.string("PAREDAO_METRICS_HOST", default: "127.0.0.1")
        metricsPort = try reader.int("PAREDAO_API_METRICS_PORT", default: 9101, in: 0...65535)
        eventLoops = try reader.int("PAREDAO_EVENT_LOOPS", default: System.coreCount, in: 1...256)
        maxBodyBytes = try reader.int("PAREDAO_MAX_BODY_BYTES", default: 1024, in: 64...1_048_576)
        confirmTimeoutMillis = try reader.int("PAREDAO_CONFIRM_TIMEOUT_MS", default: 5000, in: 10...120_000)
        maxVotesPerMessage = try reader.int("PAREDAO_MAX_VOTES_PER_MESSAGE", default: 512, in: 1...VoteMessage.maximumVotes)
        maxInFlightMessages = try reader.int("PAREDAO_MAX_IN_FLIGHT", default: 2048, in: 1...1_000_000)
        maxQueuedVotes = try reader.int("PAREDAO_MAX_QUEUED_VOTES", default: 100_000, in: 1...10_000_000)
        publishLingerMicros = try reader.int("PAREDAO_PUBLISH_LINGER_US", default: 3000, in: 0...100_000)
        publishLingerAboveRate = try reader.int("PAREDAO_PUBLISH_LINGER_ABOVE", default: 4000, in: 0...100_000_000)
        totalsRefreshMillis = try reader.int("PAREDAO_TOTALS_REFRESH_MS", default: 1000, in: 10...60_000)
        sessionLifetimeSeconds = try reader.int("PAREDAO_SESSION_TTL_SECONDS", default: 1800, in: 1...86_400 * 7)
        sessionBudget = try reader.int("PAREDAO_SESSION_BUDGET", default: 200, in: 1...Int(UInt32.max))
        voteRatePerSecond = try reader.double("PAREDAO_VOTE_RATE", default: 1, in: 0.001...1_000_000)
        voteBurst = try reader.int("PAREDAO_VOTE_BURST", default: 5, in: 1...1_000_000)
        challengeLifetimeSeconds = try reader.int("PAREDAO_CHALLENGE_TTL_SECONDS", default: 120, in: 5...3600)
        baseDifficulty = try reader.int("PAREDAO_POW_DIFFICULTY", default: 16, in: 0...Challenge.maximumDifficulty)
        maxDifficulty = try reader.int("PAREDAO_POW_MAX_DIFFICULTY", default: 19, in: 0...Challenge.maximumDifficulty)
        trustedProxies = reader.list("PAREDAO_TRUSTED_PROXIES", default: ["127.0.0.1", "::1"])
        maxTrackedSessions = try reader.int("PAREDAO_MAX_TRACKED_SESSIONS", default: 1_000_000, in: 16...100_000_000)
        verifiedTokenSlots = try reader.int("PAREDAO_VERIFIED_TOKEN_SLOTS", default: 262_144, in: 0...100_000_000)
        guard maxDifficulty >= baseDifficulty else {
            throw ConfigurationError(key: "PAREDAO_POW_MAX_DIFFICULTY", message: "must be at least PAREDAO_POW_DIFFICULTY (\(baseDifficulty))")
        }
    }
}

