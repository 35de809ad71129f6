public import VoteShared

/// What recording a batch did: votes newly counted, and repeats of ids already counted.
public struct RecordOutcome: Sendable, Equatable {
    public var counted: Int
    public var duplicates: Int

    public init(counted: Int, duplicates: Int) {
        self.counted = counted
        self.duplicates = duplicates
    }
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
    }

    public var kind: Kind
    public var sqlitePath: String

    /// `kind` is a store's name (`sqlite`); an unknown name is an error of `PAREDAO_STORE`.
    public init(kind: String, sqlitePath: String) throws(ConfigurationError) {
        guard let known = Kind(rawValue: kind.lowercased()) else {
            throw ConfigurationError(key: "PAREDAO_STORE", message: "unknown store \"\(kind)\" (known: \(Kind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        self.kind = known
        self.sqlitePath = sqlitePath
    }

    /// Opens the store this configuration names.
    public func open() throws(StoreError) -> any VoteStore {
        switch kind {
        case .sqlite: try SQLiteVoteStore(path: sqlitePath)
        }
    }
}
