import MongoDB
import Testing
import VoteShared
@testable import VoteStore

/// The MongoDB store's own rules that need no server: the trust checks on what it reads,
/// the commands it builds, its error classes. (The store contract runs against a real
/// server when MONGO_URL is set; Tests/mongo checks the wire commands against mockupdb.)
@Suite("MongoDB store without a server")
struct MongoVoteStoreTests {
    let hour: Int64 = 1_795_352_400_000

    func document(_ json: String) throws -> BSONFields {
        try BSONDocument(json: json).fields()
    }

    func hourDocument(poll: String = "p1", hour: String = "1795352400000", votes: String = #"{"a": {"$numberLong": "5"}, "b": 7}"#) -> String {
        #"{"_id": "p1:1795352400", "poll": "\#(poll)", "hour": {"$date": {"$numberLong": "\#(hour)"}}, "votes": \#(votes)}"#
    }

    @Test func aWellFormedHourDocumentGivesItsCounts() throws {
        let counts = try MongoVoteStore.hourlyCounts(in: document(hourDocument()), pollID: "p1")
        #expect(counts == [
            HourlyCount(hourStart: hour / 1000, participantID: "a", votes: 5),
            HourlyCount(hourStart: hour / 1000, participantID: "b", votes: 7),
        ])
    }

    @Test func aShardedHourDocumentGivesItsCountsAndABadShardIsRefused() throws {
        let sharded = #"{"_id": "p1:1795352400:3", "poll": "p1", "hour": {"$date": {"$numberLong": "1795352400000"}}, "shard": 3, "votes": {"a": 2}}"#
        #expect(try MongoVoteStore.hourlyCounts(in: document(sharded), pollID: "p1") == [HourlyCount(hourStart: hour / 1000, participantID: "a", votes: 2)])
        for shard in ["-1", "1024", #""3""#, "1.5"] {
            let bad = try document(#"{"_id": "x", "poll": "p1", "hour": {"$date": {"$numberLong": "1795352400000"}}, "shard": \#(shard), "votes": {"a": 2}}"#)
            #expect(throws: StoreError.self, "shard \(shard)") { try MongoVoteStore.hourlyCounts(in: bad, pollID: "p1") }
        }
    }

    @Test(arguments: [
        ("another poll", #"{"_id": "x", "poll": "p2", "hour": {"$date": {"$numberLong": "1795352400000"}}, "votes": {"a": 1}}"#),
        ("no poll", #"{"_id": "x", "hour": {"$date": {"$numberLong": "1795352400000"}}, "votes": {"a": 1}}"#),
        ("hour off the hour", #"{"_id": "x", "poll": "p1", "hour": {"$date": {"$numberLong": "1795352400001"}}, "votes": {"a": 1}}"#),
        ("hour as a number", #"{"_id": "x", "poll": "p1", "hour": 1795352400, "votes": {"a": 1}}"#),
        ("negative count", #"{"_id": "x", "poll": "p1", "hour": {"$date": {"$numberLong": "1795352400000"}}, "votes": {"a": -1}}"#),
        ("count as a double", #"{"_id": "x", "poll": "p1", "hour": {"$date": {"$numberLong": "1795352400000"}}, "votes": {"a": 1.5}}"#),
        ("count as a string", #"{"_id": "x", "poll": "p1", "hour": {"$date": {"$numberLong": "1795352400000"}}, "votes": {"a": "1"}}"#),
        ("bad participant id", #"{"_id": "x", "poll": "p1", "hour": {"$date": {"$numberLong": "1795352400000"}}, "votes": {"A B": 1}}"#),
        ("votes not a document", #"{"_id": "x", "poll": "p1", "hour": {"$date": {"$numberLong": "1795352400000"}}, "votes": [1, 2]}"#),
    ])
    func aMalformedHourDocumentIsAStoreErrorNotACount(_ reason: String, _ json: String) throws {
        let fields = try document(json)
        #expect(throws: StoreError.self, "\(reason)") { try MongoVoteStore.hourlyCounts(in: fields, pollID: "p1") }
    }

    @Test func aBatchIsOneIdUpsertPerVoteAndOneCounterUpsertPerPollHour() throws {
        let store = try MongoVoteStore(url: "mongodb://127.0.0.1:1/paredao", voteIDRetentionSeconds: 3600, appName: "test")
        let votes = (0..<10).map { Vote(id: .random(), pollID: $0 < 8 ? "p1" : "p2", participantID: $0 % 2 == 0 ? "a" : "b", acceptedAtMillis: hour + Int64($0) * 600_000) }
        let commands = try store.prepareCommands(for: votes)
        // p1: hours h (0–5) and h+1 (6, 7); p2: hour h+1 (8, 9).
        #expect(commands.idUpserts == 10)
        #expect(commands.counterUpserts == 3)
    }

    @Test func noServerIsAStoreErrorWhenTheBudgetIsSpent() throws {
        let store = try MongoVoteStore(
            url: "mongodb://127.0.0.1:1/paredao?serverSelectionTimeoutMS=100&connectTimeoutMS=100", voteIDRetentionSeconds: 3600, appName: "test",
            retry: .init(budget: .seconds(2), firstBackoff: .milliseconds(10), maxBackoff: .milliseconds(10))
        )
        // Finding the server's kind is not retried (the consumer reopens the store itself).
        let error = #expect(throws: StoreError.self) {
            try store.record([Vote(id: .random(), pollID: "p1", participantID: "a", acceptedAtMillis: hour)])
        }
        #expect(error?.message.contains("mongodb error 15.") == true)
        #expect(throws: StoreError.self) { try store.hourlyCounts(pollID: "p1") }
    }

    @Test func theRetryPauseIsJitteredBetweenHalfTheBackoffAndAllOfIt() {
        let policy = MongoVoteStore.RetryPolicy(budget: .seconds(1), firstBackoff: .milliseconds(100), maxBackoff: .seconds(1))
        let pauses = (0..<1000).map { _ in policy.pause(.milliseconds(100)) }
        #expect(pauses.allSatisfy { $0 >= .milliseconds(50) && $0 <= .milliseconds(100) })
        // Two writers that failed together do not pause alike.
        #expect(Set(pauses.map(\.components.attoseconds)).count > 900)
    }

    @Test func configurationRefusesAnUnparsableURL() {
        let error = #expect(throws: ConfigurationError.self) {
            try StoreConfiguration(kind: "mongodb", sqlitePath: "unused", mongoURL: "mongodb://")
        }
        #expect(error?.key == "PAREDAO_MONGO_URL")
        let kind = #expect(throws: ConfigurationError.self) { try StoreConfiguration(kind: "postgres", sqlitePath: "x") }
        #expect(kind?.message.contains("sqlite, mongodb") == true)
    }

    @Test func logsNeverShowTheMongoPassword() throws {
        let configuration = try StoreConfiguration(kind: "mongodb", sqlitePath: "unused", mongoURL: "mongodb://paredao:s3cret@db1:27017,db2:27017/paredao?replicaSet=rs0")
        #expect(configuration.location == "mongodb://paredao:***@db1:27017,db2:27017/paredao?replicaSet=rs0")
        #expect(MongoClientPool.redacting("mongodb://db1/paredao") == "mongodb://db1/paredao")
    }

    @Test func aTestDatabaseReplacesTheURLsOwn() {
        #expect(MongoClientPool.url("mongodb://h1:1,h2:2/old?replicaSet=rs0", withDatabase: "t1") == "mongodb://h1:1,h2:2/t1?replicaSet=rs0")
        #expect(MongoClientPool.url("mongodb://h1/?replicaSet=rs0", withDatabase: "t1") == "mongodb://h1/t1?replicaSet=rs0")
        #expect(MongoClientPool.url("mongodb://u:p@h1", withDatabase: "t1") == "mongodb://u:p@h1/t1")
    }
}

@Suite("BSON and driver errors")
struct BSONWrapperTests {
    @Test func valuesReadBackAsWritten() {
        let nested = BSONDocument().append("n", int32: 3)
        let document = BSONDocument()
            .append("s", "olá").append("i", int64: Int64.max).append("b", bool: true)
            .append("d", dateMillis: -1).append("u", uuid: Array(0..<16)).append("doc", document: nested)
            .append("list", strings: ["x", "y"])
        let fields = document.fields()
        #expect(fields["s"] == .string("olá"))
        #expect(fields["i"] == .int64(Int64.max))
        #expect(fields["b"] == .bool(true))
        #expect(fields["d"] == .date(millis: -1))
        #expect(fields["u"] == .binary(Array(0..<16)))
        #expect(fields["doc"] == .document(BSONFields(elements: [.init(key: "n", value: .int32(3))])))
        #expect(fields["list"] == .array([.string("x"), .string("y")]))
        #expect(fields["missing"] == nil)
        document.removeAll()
        #expect(document.fields().elements.isEmpty)
    }

    @Test func badJSONIsAnError() {
        #expect(throws: MongoError.self) { try BSONDocument(json: "{not json") }
    }

    @Test func whatIsRetried() {
        // Each rule on its own: the write-conflict code, the label on any code, a not-primary code.
        #expect(MongoError(domain: 17, code: 112, message: "WriteConflict").isTransient)
        #expect(MongoError(domain: 17, code: 2, message: "whatever", labels: ["TransientTransactionError"]).isTransient)
        #expect(MongoError(domain: 17, code: 2, message: "whatever", labels: ["RetryableWriteError"]).isTransient)
        #expect(MongoError(domain: 17, code: 10107, message: "not primary").isTransient)
        // An error after a standalone batch's counters were sent is never retried.
        #expect(!MongoError(domain: 0, code: 0, message: "counters may have been added").isTransient)
        #expect(MongoError(domain: 2, code: 4, message: "socket error").isTransient)
        #expect(MongoError(domain: 15, code: 13053, message: "No suitable servers").isTransient)
        #expect(!MongoError(domain: 17, code: 2, message: "BadValue").isTransient)
        #expect(!MongoError(domain: 17, code: 11000, message: "duplicate key").isTransient)
        #expect(MongoError(domain: 16, code: 64, message: "waiting for replication timed out", labels: ["UnknownTransactionCommitResult"]).isUnknownCommitResult)
    }
}
