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

/// Opens the store the settings name.
public func openVoteStore(_ settings: CommonSettings) throws(StoreError) -> any VoteStore {
    switch settings.store {
    case .sqlite: try SQLiteVoteStore(path: settings.sqlitePath)
    }
}
