public import VoteShared
import MongoDB

/// What recording a batch did: votes newly counted, repeats of ids already counted, and
/// how often the store ran the batch again after a transient error (a write conflict, a new
/// primary, a lost connection) before it committed.
public struct RecordOutcome: Sendable, Equatable {
    public var counted: Int
    public var duplicates: Int
    public var retries: Int

    public init(counted: Int, duplicates: Int, retries: Int = 0) {
        self.counted = counted
        self.duplicates = duplicates
        self.retries = retries
    }
}

/// How long vote ids are kept to catch a redelivered vote.
///
/// The consumer refuses (dead-letters) a vote accepted more than `acceptedSeconds` ago; the
/// ids of those it counts are kept `marginSeconds` longer than that (the TTL index, the
/// prune). The margin covers what can pass between the consumer's age check and the commit
/// that stores the id — the batch window and the store's retry budget — plus how far the
/// clock that removes ids (mongod's TTL monitor, another consumer's prune) may run ahead of
/// the consumer's. Without it, a vote checked at age R − 1 s whose id a prune removed
/// before the commit is counted again when it is redelivered.
public struct DedupWindow: Sendable, Equatable {
    public var acceptedSeconds: Int
    public var marginSeconds: Int

    public init(acceptedSeconds: Int, marginSeconds: Int) {
        self.acceptedSeconds = acceptedSeconds
        self.marginSeconds = marginSeconds
    }

    /// How long an id is kept: the TTL index's `expireAfterSeconds`.
    public var keptSeconds: Int { acceptedSeconds + marginSeconds }

    /// Ids accepted before this (milliseconds since 1970) may be forgotten at `nowMillis`.
    public func pruneCutoff(nowMillis: Int64) -> Int64 {
        nowMillis - Int64(keptSeconds) * 1000
    }
}

/// What a store promises about a redelivered vote.
public enum CountingGuarantee: String, Sendable {
    /// Ids and counters commit together: a redelivered vote is never counted again.
    case exactlyOnce = "exactly once"
    /// Counters and ids are separate writes (a MongoDB server without transactions): a
    /// crash between them counts the batch's new votes again when it is redelivered.
    case atLeastOnce = "at least once"
}

/// A store failure, with the database's own code and message.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var code: Int
    public var message: String
    /// Trying again cannot help (the store is not one this configuration may write to).
    public var isPermanent: Bool

    public init(operation: String, code: Int, message: String, isPermanent: Bool = false) {
        self.operation = operation
        self.code = code
        self.message = message
        self.isPermanent = isPermanent
    }

    public var description: String { "store \(operation) failed (\(code)): \(message)" }
}

/// Where hourly buckets live. One owner at a time: implementations are not thread-safe.
public protocol VoteStore: AnyObject {
    /// Makes what writing needs (tables, indexes) and says what the store guarantees; a
    /// store that cannot count exactly once throws unless its configuration allows that.
    func prepareForWriting() throws(StoreError) -> CountingGuarantee

    /// What the store guarantees, without writing anything (for `/readyz`).
    func countingGuarantee() throws(StoreError) -> CountingGuarantee

    /// Adds each vote to its (poll, UTC hour, participant) bucket exactly once, in one
    /// transaction together with the votes' ids: a redelivered id is not counted again.
    func record(_ votes: [Vote]) throws(StoreError) -> RecordOutcome

    /// Every bucket of `pollID`.
    func hourlyCounts(pollID: String) throws(StoreError) -> [HourlyCount]

    /// Forgets vote ids accepted before `millis`; returns how many were removed.
    func forgetVoteIDs(acceptedBefore millis: Int64) throws(StoreError) -> Int
}

/// Which store to open, and where.
public struct StoreConfiguration: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case sqlite
        case mongodb
    }

    public var kind: Kind
    public var sqlitePath: String
    public var mongoURL: String
    /// How long vote ids are kept (the dedup window with its margin; MongoDB's TTL index).
    public var voteIDRetentionSeconds: Int
    /// The name the store's connections give the server (MongoDB's `appName`).
    public var appName: String
    /// Which of a (poll, hour)'s counter documents this writer increments (MongoDB): one per
    /// consumer, so that two consumers' transactions never write the same document.
    public var counterShard: Int
    /// MongoDB: write to a standalone server (no transactions, votes counted at least once)
    /// instead of refusing to start.
    public var allowStandalone: Bool
    /// MongoDB: how long a batch is run again after transient errors before the error
    /// reaches the consumer.
    public var retryBudget: Duration

    /// The counter shards a writer may use (`PAREDAO_COUNTER_SHARD`).
    public static let counterShards = 0...1023

    /// `kind` is a store's name (`sqlite`, `mongodb`); an unknown name is an error of
    /// `PAREDAO_STORE`, a MongoDB URL the driver cannot parse one of `PAREDAO_MONGO_URL`.
    public init(
        kind: String, sqlitePath: String, mongoURL: String = "mongodb://127.0.0.1:27017/paredao?replicaSet=rs0",
        voteIDRetentionSeconds: Int = 86_400, appName: String = "paredao",
        counterShard: Int = 0, allowStandalone: Bool = false, retryBudget: Duration = .seconds(30)
    ) throws(ConfigurationError) {
        guard let known = Kind(rawValue: kind.lowercased()) else {
            throw ConfigurationError(key: "PAREDAO_STORE", message: "unknown store \"\(kind)\" (known: \(Kind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        if known == .mongodb {
            do {
                try MongoClientPool.check(url: mongoURL)
            } catch {
                throw ConfigurationError(key: "PAREDAO_MONGO_URL", message: "not a usable MongoDB connection string: \(error.message)")
            }
        }
        self.kind = known
        self.sqlitePath = sqlitePath
        self.mongoURL = mongoURL
        self.voteIDRetentionSeconds = voteIDRetentionSeconds
        self.appName = appName
        self.counterShard = counterShard
        self.allowStandalone = allowStandalone
        self.retryBudget = retryBudget
    }

    /// Opens the store this configuration names.
    public func open() throws(StoreError) -> any VoteStore {
        switch kind {
        case .sqlite: try SQLiteVoteStore(path: sqlitePath)
        case .mongodb: try openMongo()
        }
    }

    /// Opens the polls and audit log of the store this configuration names (a connection
    /// of its own).
    public func openPollStore() throws(StoreError) -> any PollStore {
        switch kind {
        case .sqlite: try SQLiteVoteStore(path: sqlitePath)
        case .mongodb: try openMongo()
        }
    }

    private func openMongo() throws(StoreError) -> MongoVoteStore {
        try MongoVoteStore(
            url: mongoURL, voteIDRetentionSeconds: voteIDRetentionSeconds, appName: appName,
            counterShard: counterShard, allowStandalone: allowStandalone, retry: .init(budget: retryBudget)
        )
    }

    /// Where the store is, for logs (a MongoDB URL without its password).
    public var location: String {
        switch kind {
        case .sqlite: sqlitePath
        case .mongodb: MongoVoteStore.redacted(mongoURL)
        }
    }
}
