import Foundation
import Logging
import MongoDB
public import VoteShared

/// The production store: MongoDB through libmongoc.
///
/// Schema (database from the URL, default `paredao`):
/// - `hourly_totals`: one document per (poll, UTC hour),
///   `{_id: "<poll>:<hour start, s>", poll, hour: <UTC date>, votes: {<participant>: <int64>}}`,
///   indexed on `{poll: 1, hour: 1}` for the totals read.
/// - `vote_ids`: one document per counted vote, `{_id: <UUID binary>, at: <accepted at>}`,
///   with a TTL index on `at` for the dedup window.
/// - `polls` and `audit_log`: see `MongoVoteStore+Polls.swift`.
///
/// On a replica set (or a sharded cluster) a batch's new ids and its counter increments
/// commit in one transaction: ids are upserted with `$setOnInsert` and only the ones the
/// server reports as upserted are counted, so a redelivered batch adds nothing and a
/// duplicate key never aborts the transaction. On a standalone server there are no
/// transactions: votes are then counted at least once (see ``prepareForWriting()``).
public final class MongoVoteStore: VoteStore {
    static let totalsCollection = "hourly_totals"
    static let idsCollection = "vote_ids"
    static let ttlIndexName = "at_ttl"

    /// How a failed write is retried before the error reaches the consumer (which then
    /// lets the broker redeliver the batch).
    public struct RetryPolicy: Sendable {
        public var attempts: Int
        public var firstBackoff: Duration
        public var maxBackoff: Duration
        public var commitAttempts: Int

        public static let standard = RetryPolicy(attempts: 5, firstBackoff: .milliseconds(50), maxBackoff: .seconds(1), commitAttempts: 3)
    }

    let client: MongoClient
    private let totals: MongoCollection
    private let ids: MongoCollection
    private let retentionSeconds: Int
    private let retry: RetryPolicy
    let majorityTimeoutMillis: Int32 = 10_000
    private let logger = Logger(label: "paredao.store.mongodb")
    private var transactions: Bool?
    /// Whether the `polls` index that allows one open poll was made (once per store).
    var pollIndexReady = false
    // Scratch documents reused for every vote of a batch: the bulk copies each update in.
    private let idFilter = BSONDocument()
    private let idUpdate = BSONDocument()
    private let idInsert = BSONDocument()

    /// Makes the client pool for `url`; nothing is sent until the first read or write.
    public init(url: String, voteIDRetentionSeconds: Int, appName: String, retry: RetryPolicy = .standard) throws(StoreError) {
        do {
            let pool = try MongoClientPool(url: url, appName: appName)
            client = pool.client()
        } catch {
            throw StoreError(operation: "open mongodb", code: Int(error.code), message: error.description)
        }
        totals = client.collection(Self.totalsCollection)
        ids = client.collection(Self.idsCollection)
        retentionSeconds = voteIDRetentionSeconds
        self.retry = retry
    }

    public func prepareForWriting() throws(StoreError) -> CountingGuarantee {
        let transactions = try ensureIndexesAndTopology()
        return transactions ? .exactlyOnce : .atLeastOnce
    }

    public func record(_ votes: [Vote]) throws(StoreError) -> RecordOutcome {
        guard !votes.isEmpty else { return RecordOutcome(counted: 0, duplicates: 0) }
        let transactions = try ensureIndexesAndTopology()
        return try retrying("record") { () throws(MongoError) -> RecordOutcome in
            transactions ? try recordInTransaction(votes) : try recordWithoutTransaction(votes)
        }
    }

    public func hourlyCounts(pollID: String) throws(StoreError) -> [HourlyCount] {
        let documents: [BSONDocument]
        do {
            documents = try totals.find(BSONDocument().append("poll", pollID), sort: BSONDocument().append("hour", int32: 1))
        } catch {
            throw Self.storeError("read totals", error)
        }
        var counts: [HourlyCount] = []
        for document in documents {
            counts += try Self.hourlyCounts(in: document.fields(), pollID: pollID)
        }
        return counts
    }

    public func forgetVoteIDs(acceptedBefore millis: Int64) throws(StoreError) -> Int {
        do {
            let filter = BSONDocument().append("at", document: BSONDocument().append("$lt", dateMillis: millis))
            return Int(try ids.deleteMany(filter, majorityTimeoutMillis: majorityTimeoutMillis))
        } catch {
            throw Self.storeError("forget vote ids", error)
        }
    }

    // MARK: Writing

    /// The commands of one batch, built but not sent: the id upserts and the counter
    /// upserts (for the microbenchmark and the wire tests' expectations).
    public func prepareCommands(for votes: [Vote]) throws(StoreError) -> (idUpserts: Int, counterUpserts: Int) {
        do {
            let idBulk = try ids.bulkWrite(ordered: false, session: nil, majorityTimeoutMillis: majorityTimeoutMillis)
            try addIDUpserts(votes, to: idBulk)
            let counterBulk = try totals.bulkWrite(ordered: false, session: nil, majorityTimeoutMillis: majorityTimeoutMillis)
            try addCounterUpserts(votes, to: counterBulk)
            return (idBulk.count, counterBulk.count)
        } catch {
            throw Self.storeError("build batch", error)
        }
    }

    private func recordInTransaction(_ votes: [Vote]) throws(MongoError) -> RecordOutcome {
        let session = try client.startSession()
        try session.startTransaction(majorityTimeoutMillis: majorityTimeoutMillis)
        do {
            let idBulk = try ids.bulkWrite(ordered: false, session: session, majorityTimeoutMillis: majorityTimeoutMillis)
            try addIDUpserts(votes, to: idBulk)
            let inserted = try idBulk.execute().upsertedIndices
            let newVotes = inserted.map { votes[$0] }
            if !newVotes.isEmpty {
                let counterBulk = try totals.bulkWrite(ordered: false, session: session, majorityTimeoutMillis: majorityTimeoutMillis)
                try addCounterUpserts(newVotes, to: counterBulk)
                _ = try counterBulk.execute()
            }
            try commit(session)
            return RecordOutcome(counted: newVotes.count, duplicates: votes.count - newVotes.count)
        } catch {
            session.abortTransaction()
            throw error
        }
    }

    /// Retries the commit alone while its outcome is unknown (committing twice is safe).
    private func commit(_ session: MongoSession) throws(MongoError) {
        var attempt = 1
        while true {
            do {
                return try session.commitTransaction()
            } catch where error.isUnknownCommitResult && attempt < retry.commitAttempts {
                logger.warning("MongoDB commit outcome unknown; committing again", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                attempt += 1
            }
        }
    }

    /// Standalone server: count the ids not seen yet, then remember them. A crash between
    /// the two writes counts those votes again on redelivery (at least once).
    private func recordWithoutTransaction(_ votes: [Vote]) throws(MongoError) -> RecordOutcome {
        let idList = BSONDocument()
        for (index, vote) in votes.enumerated() {
            idList.append(String(index), uuid: vote.id.bytes)
        }
        let known = try ids.find(BSONDocument().append("_id", document: BSONDocument().append("$in", arrayDocument: idList)))
        var seen = Set<[UInt8]>()
        for document in known {
            if case .binary(let bytes)? = document.fields()["_id"] { seen.insert(bytes) }
        }
        var newVotes: [Vote] = []
        for vote in votes where seen.insert(vote.id.bytes).inserted {
            newVotes.append(vote)
        }
        if !newVotes.isEmpty {
            let counterBulk = try totals.bulkWrite(ordered: false, session: nil, majorityTimeoutMillis: majorityTimeoutMillis)
            try addCounterUpserts(newVotes, to: counterBulk)
            _ = try counterBulk.execute()
            let idBulk = try ids.bulkWrite(ordered: false, session: nil, majorityTimeoutMillis: majorityTimeoutMillis)
            try addIDUpserts(newVotes, to: idBulk)
            _ = try idBulk.execute()
        }
        return RecordOutcome(counted: newVotes.count, duplicates: votes.count - newVotes.count)
    }

    /// `{q: {_id: <id>}, u: {$setOnInsert: {at: <accepted at>}}, upsert: true}` per vote.
    private func addIDUpserts(_ votes: [Vote], to bulk: MongoBulkWrite) throws(MongoError) {
        for vote in votes {
            idFilter.removeAll()
            idFilter.append("_id", uuid: vote.id.bytes)
            idInsert.removeAll()
            idInsert.append("at", dateMillis: vote.acceptedAtMillis)
            idUpdate.removeAll()
            idUpdate.append("$setOnInsert", document: idInsert)
            try bulk.upsertOne(filter: idFilter, update: idUpdate)
        }
    }

    /// One `$inc` upsert per (poll, hour), participants' counters in one sub-document.
    private func addCounterUpserts(_ votes: [Vote], to bulk: MongoBulkWrite) throws(MongoError) {
        struct Bucket: Hashable, Comparable {
            var poll: String
            var hour: Int64
            static func < (a: Bucket, b: Bucket) -> Bool { (a.poll, a.hour) < (b.poll, b.hour) }
        }
        var buckets: [Bucket: [String: Int64]] = [:]
        for vote in votes {
            buckets[Bucket(poll: vote.pollID, hour: vote.hourStart), default: [:]][vote.participantID, default: 0] += 1
        }
        for bucket in buckets.keys.sorted() {
            let increments = BSONDocument()
            for (participant, count) in (buckets[bucket] ?? [:]).sorted(by: { $0.key < $1.key }) {
                increments.append("votes.\(participant)", int64: count)
            }
            let update = BSONDocument()
                .append("$setOnInsert", document: BSONDocument().append("poll", bucket.poll).append("hour", dateMillis: bucket.hour * 1000))
                .append("$inc", document: increments)
            try bulk.upsertOne(filter: BSONDocument().append("_id", "\(bucket.poll):\(bucket.hour)"), update: update)
        }
    }

    // MARK: Set-up

    /// Creates the indexes (once per store) and finds whether the server has transactions.
    private func ensureIndexesAndTopology() throws(StoreError) -> Bool {
        if let transactions { return transactions }
        do {
            try client.runCommand(BSONDocument()
                .append("createIndexes", Self.totalsCollection)
                .append("indexes", array: [BSONDocument().append("key", document: BSONDocument().append("poll", int32: 1).append("hour", int32: 1)).append("name", "poll_hour")]))
            try ensureTTLIndex()
            let kind = try client.primaryKind()
            transactions = kind.supportsTransactions
            if !kind.supportsTransactions {
                logger.warning("MongoDB is not a replica set: no transactions, votes are counted at least once", metadata: ["server": "\(kind.rawValue)"])
            }
            return kind.supportsTransactions
        } catch {
            throw Self.storeError("prepare mongodb", error)
        }
    }

    /// The TTL index on `vote_ids.at`; a different retention updates it with `collMod`.
    private func ensureTTLIndex() throws(MongoError) {
        let index = BSONDocument()
            .append("key", document: BSONDocument().append("at", int32: 1))
            .append("name", Self.ttlIndexName)
            .append("expireAfterSeconds", int64: Int64(retentionSeconds))
        do {
            try client.runCommand(BSONDocument().append("createIndexes", Self.idsCollection).append("indexes", array: [index]))
        } catch where error.code == 85 || error.code == 86 {
            // IndexOptionsConflict / IndexKeySpecsConflict: same key, another expiry.
            try client.runCommand(BSONDocument()
                .append("collMod", Self.idsCollection)
                .append("index", document: BSONDocument().append("name", Self.ttlIndexName).append("expireAfterSeconds", int64: Int64(retentionSeconds))))
        }
    }

    // MARK: Retries and errors

    /// `url` without its password, for logs.
    static func redacted(_ url: String) -> String {
        MongoClientPool.redacting(url)
    }

    private func retrying<T>(_ operation: String, _ body: () throws(MongoError) -> T) throws(StoreError) -> T {
        var backoff = retry.firstBackoff
        var attempt = 1
        while true {
            do {
                return try body()
            } catch where error.isTransient && attempt < retry.attempts {
                let seconds = backoff.timeInterval
                logger.warning("MongoDB write failed; retrying", metadata: ["error": "\(error)", "attempt": "\(attempt)", "retry_in_ms": "\(Int(seconds * 1000))"])
                Thread.sleep(forTimeInterval: seconds)
                backoff = min(backoff * 2, retry.maxBackoff)
                attempt += 1
            } catch {
                throw Self.storeError(operation, error)
            }
        }
    }

    static func storeError(_ operation: String, _ error: MongoError) -> StoreError {
        StoreError(operation: operation, code: Int(error.code), message: error.description)
    }

    /// Checks one `hourly_totals` document before trusting it: the poll asked for, an hour
    /// on the hour, counters that are non-negative integers under valid participant ids.
    static func hourlyCounts(in fields: BSONFields, pollID: String) throws(StoreError) -> [HourlyCount] {
        func corrupt(_ reason: String) -> StoreError {
            let id = if case .string(let id)? = fields["_id"] { id } else { "?" }
            return StoreError(operation: "read totals", code: -2, message: "malformed \(totalsCollection) document \(id): \(reason)")
        }
        guard case .string(let poll)? = fields["poll"], poll == pollID else { throw corrupt("poll is not \(pollID)") }
        guard case .date(let hourMillis)? = fields["hour"], hourMillis % 3_600_000 == 0 else { throw corrupt("hour is not a date on the hour") }
        guard case .document(let votes)? = fields["votes"] else { throw corrupt("votes is not a document") }
        var counts: [HourlyCount] = []
        for element in votes.elements {
            guard Poll.isValidID(element.key) else { throw corrupt("bad participant id") }
            guard let count = element.value.integer, count >= 0 else { throw corrupt("count of \(element.key) is not a non-negative integer") }
            counts.append(HourlyCount(hourStart: hourMillis / 1000, participantID: element.key, votes: count))
        }
        return counts
    }
}
