import Foundation
import Logging
import MongoDB
public import VoteShared

/// The production store: MongoDB through libmongoc.
///
/// Schema (database from the URL, default `paredao`):
/// - `hourly_totals`: one document per (poll, UTC hour, counter shard),
///   `{_id: "<poll>:<hour start, s>:<shard>", poll, hour: <UTC date>, shard: <int32>,
///   votes: {<participant>: <int64>}}`, indexed on `{poll: 1, hour: 1, shard: 1}` (the
///   totals read, and the shard key on a sharded cluster: every upsert's filter names all
///   three). Each consumer increments its own shard (`PAREDAO_COUNTER_SHARD`), so two
///   consumers' transactions never write the same document; the read sums the shards.
///   Documents of before the shards (`_id: "<poll>:<hour>"`, no `shard`) are read too.
/// - `vote_ids`: one document per counted vote, `{_id: <UUID binary>, at: <accepted at>}`,
///   with a TTL index on `at` for the dedup window and its margin (``DedupWindow``).
/// - `polls` and `audit_log`: see `MongoVoteStore+Polls.swift`.
///
/// On a replica set, a sharded cluster or behind a load balancer, a batch's new ids and
/// its counter increments commit in one transaction (read concern snapshot, write concern
/// majority): ids are upserted with `$setOnInsert` and only the ones the server reports as
/// upserted are counted, so a redelivered batch adds nothing and a duplicate key never
/// aborts the transaction. A standalone server has no transactions: the store refuses to
/// write to one unless `allowStandalone` (then votes are counted at least once).
public final class MongoVoteStore: VoteStore {
    static let totalsCollection = "hourly_totals"
    static let idsCollection = "vote_ids"
    static let ttlIndexName = "at_ttl"

    /// How a batch that met a transient error is run again (whole, or its commit alone
    /// when the commit's outcome is unknown) before the error reaches the consumer, which
    /// then lets the broker redeliver the batch: on a time budget, with jittered
    /// exponential backoff, as the drivers' `withTransaction` does. The budget is shorter
    /// than their 120 s because the consumer's thread waits in it without serving the
    /// broker's heartbeats (see `PAREDAO_STORE_RETRY_SECONDS`).
    public struct RetryPolicy: Sendable {
        public var budget: Duration
        public var firstBackoff: Duration
        public var maxBackoff: Duration

        public init(budget: Duration = .seconds(30), firstBackoff: Duration = .milliseconds(5), maxBackoff: Duration = .milliseconds(500)) {
            self.budget = budget
            self.firstBackoff = firstBackoff
            self.maxBackoff = maxBackoff
        }

        public static let standard = RetryPolicy()

        /// The pause before the retry after `backoff`: between half of it and all of it, so
        /// that writers who failed together do not retry together.
        func pause(_ backoff: Duration) -> Duration {
            backoff * Double.random(in: 0.5...1.0)
        }
    }

    let client: MongoClient
    private let totals: MongoCollection
    private let ids: MongoCollection
    private let retentionSeconds: Int
    private let counterShard: Int32
    private let allowStandalone: Bool
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
    public init(
        url: String, voteIDRetentionSeconds: Int, appName: String, counterShard: Int = 0, allowStandalone: Bool = false,
        retry: RetryPolicy = .standard
    ) throws(StoreError) {
        do {
            let pool = try MongoClientPool(url: url, appName: appName)
            client = pool.client()
        } catch {
            throw StoreError(operation: "open mongodb", code: Int(error.code), message: error.description)
        }
        totals = client.collection(Self.totalsCollection)
        ids = client.collection(Self.idsCollection)
        retentionSeconds = voteIDRetentionSeconds
        self.counterShard = Int32(clamping: counterShard)
        self.allowStandalone = allowStandalone
        self.retry = retry
    }

    public func prepareForWriting() throws(StoreError) -> CountingGuarantee {
        let transactions = try ensureIndexesAndTopology()
        return transactions ? .exactlyOnce : .atLeastOnce
    }

    public func countingGuarantee() throws(StoreError) -> CountingGuarantee {
        if let transactions { return transactions ? .exactlyOnce : .atLeastOnce }
        do {
            return try client.primaryKind().supportsTransactions ? .exactlyOnce : .atLeastOnce
        } catch {
            throw Self.storeError("find the server's kind", error)
        }
    }

    public func record(_ votes: [Vote]) throws(StoreError) -> RecordOutcome {
        guard !votes.isEmpty else { return RecordOutcome(counted: 0, duplicates: 0) }
        let transactions = try ensureIndexesAndTopology()
        let deadline = ContinuousClock.now + retry.budget
        var retries = 0
        var outcome = try retrying("record", until: deadline, retries: &retries) { (retries: inout Int) throws(MongoError) -> RecordOutcome in
            transactions ? try recordInTransaction(votes, until: deadline, retries: &retries) : try recordWithoutTransaction(votes)
        }
        outcome.retries = retries
        return outcome
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

    private func recordInTransaction(_ votes: [Vote], until deadline: ContinuousClock.Instant, retries: inout Int) throws(MongoError) -> RecordOutcome {
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
            try commit(session, until: deadline, retries: &retries)
            return RecordOutcome(counted: newVotes.count, duplicates: votes.count - newVotes.count)
        } catch {
            session.abortTransaction()
            throw error
        }
    }

    /// Retries the commit alone while its outcome is unknown (committing twice is safe),
    /// within the batch's budget.
    private func commit(_ session: MongoSession, until deadline: ContinuousClock.Instant, retries: inout Int) throws(MongoError) {
        var backoff = retry.firstBackoff
        while true {
            do {
                return try session.commitTransaction()
            } catch where error.isUnknownCommitResult {
                let pause = retry.pause(backoff)
                guard ContinuousClock.now + pause < deadline else { throw error }
                retries += 1
                logger.warning("MongoDB commit outcome unknown; committing again", metadata: ["error": "\(error)", "retries": "\(retries)"])
                Thread.sleep(forTimeInterval: pause.timeInterval)
                backoff = min(backoff * 2, retry.maxBackoff)
            }
        }
    }

    /// Standalone server (only with `allowStandalone`): count the ids not seen yet, then
    /// remember them. A crash or an error between the two writes counts those votes again
    /// on redelivery (at least once); once the counters were sent, an error is never
    /// retried here, where it would count them again at once.
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
            do {
                _ = try counterBulk.execute()
                let idBulk = try ids.bulkWrite(ordered: false, session: nil, majorityTimeoutMillis: majorityTimeoutMillis)
                try addIDUpserts(newVotes, to: idBulk)
                _ = try idBulk.execute()
            } catch {
                // The counters may have been applied: not transient, whatever the cause.
                throw MongoError(domain: 0, code: 0, message: "\(error.description); the counters may have been added, so the batch is not run again in this process")
            }
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

    /// One `$inc` upsert per (poll, hour) on this store's counter shard, participants'
    /// counters in one sub-document. The filter names the whole shard key (poll, hour,
    /// shard) besides the `_id`, which an upsert on a sharded collection needs; an upsert
    /// that inserts copies those equality fields into the new document.
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
            let filter = BSONDocument()
                .append("_id", "\(bucket.poll):\(bucket.hour):\(counterShard)")
                .append("poll", bucket.poll).append("hour", dateMillis: bucket.hour * 1000).append("shard", int32: counterShard)
            try bulk.upsertOne(filter: filter, update: BSONDocument().append("$inc", document: increments))
        }
    }

    // MARK: Set-up

    /// Creates the indexes (once per store) and finds whether the server has transactions;
    /// a server without them is refused unless `allowStandalone`.
    private func ensureIndexesAndTopology() throws(StoreError) -> Bool {
        if let transactions { return transactions }
        let kind: MongoServerKind
        do {
            kind = try client.primaryKind()
        } catch {
            throw Self.storeError("prepare mongodb", error)
        }
        if !kind.supportsTransactions && !allowStandalone {
            throw StoreError(
                operation: "prepare mongodb", code: -3,
                message: "the server is a \(kind.rawValue) without transactions, where a redelivered vote could be counted twice: use a replica set (one node is enough: mongod --replSet rs0, then rs.initiate()) or set PAREDAO_MONGO_ALLOW_STANDALONE=1 to count at least once",
                isPermanent: true
            )
        }
        do {
            try client.runCommand(BSONDocument()
                .append("createIndexes", Self.totalsCollection)
                .append("indexes", array: [BSONDocument().append("key", document: BSONDocument().append("poll", int32: 1).append("hour", int32: 1).append("shard", int32: 1)).append("name", "poll_hour_shard")]))
            try ensureTTLIndex()
        } catch {
            throw Self.storeError("prepare mongodb", error)
        }
        transactions = kind.supportsTransactions
        if !kind.supportsTransactions {
            logger.warning("MongoDB has no transactions (PAREDAO_MONGO_ALLOW_STANDALONE): votes are counted at least once", metadata: ["server": "\(kind.rawValue)"])
        }
        return kind.supportsTransactions
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

    /// Runs `body` again after each transient error, with jittered exponential backoff,
    /// while the next attempt can start before `deadline`; counts the attempts in `retries`.
    private func retrying<T>(_ operation: String, until deadline: ContinuousClock.Instant, retries: inout Int, _ body: (inout Int) throws(MongoError) -> T) throws(StoreError) -> T {
        var backoff = retry.firstBackoff
        var pause = retry.pause(backoff)
        while true {
            do {
                return try body(&retries)
            } catch where error.isTransient && ContinuousClock.now + pause < deadline {
                retries += 1
                logger.warning("MongoDB write failed; retrying", metadata: ["error": "\(error)", "retries": "\(retries)", "retry_in_ms": "\(pause.wholeMilliseconds)"])
                Thread.sleep(forTimeInterval: pause.timeInterval)
                backoff = min(backoff * 2, retry.maxBackoff)
                pause = retry.pause(backoff)
            } catch {
                let after = retries == 0 ? "" : " (after \(retries) retries)"
                throw StoreError(operation: operation, code: Int(error.code), message: error.description + after)
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
        if let shard = fields["shard"] {
            guard let number = shard.integer, StoreConfiguration.counterShards.contains(Int(number)) else { throw corrupt("shard is not a counter shard number") }
        }
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
