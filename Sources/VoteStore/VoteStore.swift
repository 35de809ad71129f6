public import VoteShared
import MongoDB

/// What recording a batch did: votes newly counted, and repeats of ids already counted.
public struct RecordOutcome: Sendable, Equatable {
    public var counted: Int
    public var duplicates: Int

    public init(counted: Int, duplicates: Int) {
        self.counted = counted
        self.duplicates = duplicates
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

    public init(operation: String, code: Int, message: String) {
        self.operation = operation
        self.code = code
        self.message = message
    }

    public var description: String { "store \(operation) failed (\(code)): \(message)" }
}

/// Where hourly buckets live. One owner at a time: implementations are not thread-safe.
public protocol VoteStore: AnyObject {
    /// Makes what writing needs (tables, indexes) and says what the store guarantees.
    func prepareForWriting() throws(StoreError) -> CountingGuarantee

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
    /// How long vote ids are kept (the dedup window; MongoDB's TTL index).
    public var voteIDRetentionSeconds: Int
    /// The name the store's connections give the server (MongoDB's `appName`).
    public var appName: String

    /// `kind` is a store's name (`sqlite`, `mongodb`); an unknown name is an error of
    /// `PAREDAO_STORE`, a MongoDB URL the driver cannot parse one of `PAREDAO_MONGO_URL`.
    public init(
        kind: String, sqlitePath: String, mongoURL: String = "mongodb://127.0.0.1:27017/paredao?replicaSet=rs0",
        voteIDRetentionSeconds: Int = 86_400, appName: String = "paredao"
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
    }

    /// Opens the store this configuration names.
    public func open() throws(StoreError) -> any VoteStore {
        switch kind {
        case .sqlite: try SQLiteVoteStore(path: sqlitePath)
        case .mongodb: try MongoVoteStore(url: mongoURL, voteIDRetentionSeconds: voteIDRetentionSeconds, appName: appName)
        }
    }

    /// Opens the polls and audit log of the store this configuration names (a connection
    /// of its own).
    public func openPollStore() throws(StoreError) -> any PollStore {
        switch kind {
        case .sqlite: try SQLiteVoteStore(path: sqlitePath)
        case .mongodb: try MongoVoteStore(url: mongoURL, voteIDRetentionSeconds: voteIDRetentionSeconds, appName: appName)
        }
    }

    /// Where the store is, for logs (a MongoDB URL without its password).
    public var location: String {
        switch kind {
        case .sqlite: sqlitePath
        case .mongodb: MongoVoteStore.redacted(mongoURL)
        }
    }
}
