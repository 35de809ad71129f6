import Foundation
import SQLite
public import VoteShared

/// The embedded default store: one SQLite file in WAL mode, shared by the consumer
/// (writer) and the API (reader).
public final class SQLiteVoteStore: VoteStore {
    let database: SQLiteDatabase
    private let insertID: SQLiteStatement
    private let addVotes: SQLiteStatement
    private let selectCounts: SQLiteStatement
    private let deleteIDs: SQLiteStatement

    /// Opens or creates the database at `path` (creating its folder too).
    public init(path: String) throws(StoreError) {
        do {
            let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            database = try SQLiteDatabase(path: path)
            database.setBusyTimeout(milliseconds: 5000)
            try database.execute("PRAGMA journal_mode=WAL")
            try database.execute("PRAGMA synchronous=FULL")
            // 64 MiB of page cache (a ceiling, filled on demand): the id index's hot pages
            // stay in memory instead of being read again for every batch.
            try database.execute("PRAGMA cache_size=-65536")
            try database.execute("""
                CREATE TABLE IF NOT EXISTS vote_ids (
                    id BLOB PRIMARY KEY,
                    accepted_at INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX IF NOT EXISTS vote_ids_by_accepted_at ON vote_ids(accepted_at);
                CREATE TABLE IF NOT EXISTS hourly_counts (
                    poll TEXT NOT NULL,
                    hour INTEGER NOT NULL,
                    participant TEXT NOT NULL,
                    votes INTEGER NOT NULL,
                    PRIMARY KEY (poll, hour, participant)
                ) WITHOUT ROWID;
                """)
            try database.execute(Self.pollTablesSQL)
            insertID = try database.prepare("INSERT OR IGNORE INTO vote_ids (id, accepted_at) VALUES (?1, ?2)")
            addVotes = try database.prepare("""
                INSERT INTO hourly_counts (poll, hour, participant, votes) VALUES (?1, ?2, ?3, ?4)
                ON CONFLICT (poll, hour, participant) DO UPDATE SET votes = votes + excluded.votes
                """)
            selectCounts = try database.prepare("SELECT hour, participant, votes FROM hourly_counts WHERE poll = ?1 ORDER BY hour")
            deleteIDs = try database.prepare("DELETE FROM vote_ids WHERE accepted_at < ?1")
        } catch let error as SQLiteError {
            throw StoreError(operation: "open \(path)", code: Int(error.code), message: error.message)
        } catch {
            throw StoreError(operation: "open \(path)", code: -1, message: "\(error)")
        }
    }

    /// The tables exist once the store is open; ids and counters share one transaction.
    public func prepareForWriting() throws(StoreError) -> CountingGuarantee {
        .exactlyOnce
    }

    public func countingGuarantee() throws(StoreError) -> CountingGuarantee {
        .exactlyOnce
    }

    public func record(_ votes: [Vote]) throws(StoreError) -> RecordOutcome {
        struct Bucket: Hashable {
            var poll: String
            var hour: Int64
            var participant: String
        }
        do {
            return try database.transaction {
                var increments: [Bucket: Int64] = [:]
                var duplicates = 0
                for vote in votes {
                    insertID.reset()
                    try insertID.bind(vote.id.bytes, at: 1)
                    try insertID.bind(vote.acceptedAtMillis, at: 2)
                    try insertID.step()
                    if database.changes == 1 {
                        increments[Bucket(poll: vote.pollID, hour: vote.hourStart, participant: vote.participantID), default: 0] += 1
                    } else {
                        duplicates += 1
                    }
                }
                for (bucket, count) in increments {
                    addVotes.reset()
                    try addVotes.bind(bucket.poll, at: 1)
                    try addVotes.bind(bucket.hour, at: 2)
                    try addVotes.bind(bucket.participant, at: 3)
                    try addVotes.bind(count, at: 4)
                    try addVotes.step()
                }
                return RecordOutcome(counted: votes.count - duplicates, duplicates: duplicates)
            }
        } catch {
            throw Self.storeError("record", error)
        }
    }

    public func hourlyCounts(pollID: String) throws(StoreError) -> [HourlyCount] {
        do {
            selectCounts.reset()
            try selectCounts.bind(pollID, at: 1)
            var counts: [HourlyCount] = []
            while try selectCounts.step() {
                counts.append(HourlyCount(hourStart: selectCounts.int64(at: 0), participantID: selectCounts.string(at: 1), votes: selectCounts.int64(at: 2)))
            }
            selectCounts.reset()
            return counts
        } catch {
            throw Self.storeError("read totals", error)
        }
    }

    public func forgetVoteIDs(acceptedBefore millis: Int64) throws(StoreError) -> Int {
        do {
            deleteIDs.reset()
            try deleteIDs.bind(millis, at: 1)
            try deleteIDs.step()
            return database.changes
        } catch {
            throw Self.storeError("forget vote ids", error)
        }
    }

    static func storeError(_ operation: String, _ error: any Error) -> StoreError {
        if let error = error as? SQLiteError {
            return StoreError(operation: operation, code: Int(error.code), message: error.message)
        }
        return StoreError(operation: operation, code: -1, message: "\(error)")
    }
}
